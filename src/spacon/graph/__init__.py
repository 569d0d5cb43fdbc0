"""Graph structures and neighbour sampling (NumPy and torch; no compiled extensions)."""

from ._device import GraphOnDevice
from ._factored import FactoredGraph
from ._sampler import NeighborSampler, Subgraph

__all__ = ["FactoredGraph", "GraphOnDevice", "NeighborSampler", "Subgraph"]
