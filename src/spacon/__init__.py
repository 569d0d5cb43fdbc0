"""spacon: integrate spatial transcriptomics with brain connectivity.

The submodules (``spacon.pp``, ``spacon.tl``, ...) and :class:`SpaCon` load on first use, so
that a process needing one small part (a worker fitting mixtures for ``tl.domains``) does not
load torch.
"""

import importlib
import os
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from ._errors import SpaconInputError, SpaconWarning
from ._settings import settings

# Intel MKL (torch's CPU matrix products) splits a product's inner sum between threads by a
# rule that depends on their number: the weight gradients of one training step differed in
# the last bits on 1 and 2 threads, and so did the trained model. Its strict reproducible mode
# keeps that sum's order fixed (benchmarks/thread_invariance.py). MKL reads it at its first
# product, so it works when spacon is imported before torch computes anything; a value the
# user set is kept.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

if TYPE_CHECKING:  # what type checkers and IDEs see: the names, eagerly
    from . import datasets, graph, io, nn, pl, pp, tl
    from .model import SpaCon

try:
    __version__ = version("spacon")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

_SUBMODULES = ("datasets", "graph", "io", "model", "nn", "pl", "pp", "tl")

__all__ = [
    "SpaCon", "SpaconInputError", "SpaconWarning", "datasets", "graph", "io", "nn", "pl", "pp",
    "settings", "tl",
    "__version__",
]


def __getattr__(name: str):
    if name == "SpaCon":
        from .model import SpaCon

        return SpaCon
    try:  # the public submodules, and private ones (``spacon._utils``) as eager imports gave
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise  # the submodule exists, one of its imports does not
        raise AttributeError(f"module 'spacon' has no attribute {name!r}") from None


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
