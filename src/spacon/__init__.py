"""spacon: integrate spatial transcriptomics with brain connectivity.

The submodules (``spacon.pp``, ``spacon.tl``, ...) and :class:`SpaCon` load on first use, so
that a process needing one small part (a worker fitting mixtures for ``tl.domains``) does not
load torch.
"""

import importlib
from importlib.metadata import PackageNotFoundError, version

from ._errors import SpaconInputError, SpaconWarning

try:
    __version__ = version("spacon")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

_SUBMODULES = ("datasets", "graph", "io", "model", "nn", "pl", "pp", "tl")

__all__ = [
    "SpaCon", "SpaconInputError", "SpaconWarning", "datasets", "graph", "io", "nn", "pl", "pp",
    "tl",
    "__version__",
]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name == "SpaCon":
        from .model import SpaCon

        return SpaCon
    raise AttributeError(f"module 'spacon' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
