"""spacon: integrate spatial transcriptomics with brain connectivity."""

from importlib.metadata import PackageNotFoundError, version

from . import datasets, io, pp
from ._errors import SpaconInputError, SpaconWarning

try:
    __version__ = version("spacon")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["SpaconInputError", "SpaconWarning", "datasets", "io", "pp", "__version__"]
