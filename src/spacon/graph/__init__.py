"""Graph structures and neighbour sampling (NumPy; no compiled extensions)."""

from ._factored import FactoredGraph
from ._sampler import NeighborSampler, Subgraph

__all__ = ["FactoredGraph", "NeighborSampler", "Subgraph"]
