"""Torch layers and the SpaCon module (no AnnData here)."""

from ._adjacency import Adjacency, BlockAdjacency, aggregate
from ._gat import GATConv
from ._module import GATDecoder, GATEncoder, SpaConModule

__all__ = [
    "Adjacency", "BlockAdjacency", "GATConv", "GATDecoder", "GATEncoder", "SpaConModule",
    "aggregate",
]
