"""spacon: integrate spatial transcriptomics with brain connectivity."""

from importlib.metadata import PackageNotFoundError, version

from . import datasets, graph, io, nn, pl, pp, tl
from ._errors import SpaconInputError, SpaconWarning
from .model import SpaCon

try:
    __version__ = version("spacon")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "SpaCon", "SpaconInputError", "SpaconWarning", "datasets", "graph", "io", "nn", "pl", "pp",
    "tl",
    "__version__",
]
