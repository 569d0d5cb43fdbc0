"""Reading connectivity files and writing outputs atomically."""

from ._atomic import atomic_path, save_npz, write_h5ad, write_text
from ._connectivity import Connectivity, read_connectivity

__all__ = ["Connectivity", "atomic_path", "read_connectivity", "save_npz", "write_h5ad", "write_text"]
