"""Graph structures and neighbour sampling (NumPy and torch; no compiled extensions).

``FactoredGraph`` and the graphs stored on an AnnData (``_stored``) need no torch, so domain
calling and smoothing do not import it; the sampler and the device-resident graph, which do, are
loaded on first use.
"""

import importlib
from typing import TYPE_CHECKING

from ._factored import FactoredGraph

if TYPE_CHECKING:  # what type checkers and IDEs see: the names, eagerly
    from ._device import GraphOnDevice
    from ._sampler import NeighborSampler, Subgraph

__all__ = ["FactoredGraph", "GraphOnDevice", "NeighborSampler", "Subgraph"]
_LAZY = {"GraphOnDevice": "._device", "NeighborSampler": "._sampler", "Subgraph": "._sampler"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
