"""Reading connectivity files and writing outputs atomically."""

from ._atomic import atomic_path, save_npz, write_h5ad, write_text
from ._connectivity import Connectivity, as_connectivity, positions_in, read_connectivity
from ._profiles import read_profiles, save_profiles
from ._voxel_model import VoxelModel, read_voxel_model

__all__ = ["Connectivity", "VoxelModel", "as_connectivity", "atomic_path", "positions_in",
           "read_connectivity", "read_profiles", "read_voxel_model", "save_npz", "save_profiles",
           "write_h5ad", "write_text"]
