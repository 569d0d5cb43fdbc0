"""Predicted connectivity profiles as a labelled matrix file: rows = cells or units,
columns = the connectome's targets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .._errors import SpaconInputError
from ._atomic import atomic_path


def save_profiles(path: str | Path, profiles, rows, columns) -> None:
    """Save a dense ``rows x columns`` matrix with its row and column labels, atomically.

    The ``.npz`` holds ``profiles`` (float32), ``rows`` and ``columns`` (strings); read it
    with :func:`read_profiles` or ``numpy.load``.
    """
    profiles = np.asarray(profiles, dtype=np.float32)
    rows, columns = np.asarray(rows).astype(str), np.asarray(columns).astype(str)
    if profiles.shape != (len(rows), len(columns)):
        raise ValueError(f"{profiles.shape} profiles for {len(rows)} rows x {len(columns)} "
                         "columns")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, profiles=profiles, rows=rows, columns=columns)


def read_profiles(path: str | Path) -> pd.DataFrame:
    """Read a file written by :func:`save_profiles` as a labelled DataFrame."""
    path = Path(path)
    if not path.exists():
        raise SpaconInputError(f"profile file {str(path)!r} does not exist.")
    if path.is_dir():
        raise SpaconInputError(f"profile file {str(path)!r} is a folder: give the .npz file "
                               "in it (spacon predict writes predicted_connectivity.npz).")
    try:
        with np.load(path, allow_pickle=False) as f:
            if not hasattr(f, "files") or not {"profiles", "rows", "columns"} <= set(f.files):
                raise SpaconInputError(f"{path.name!r} holds no predicted profiles "
                                       "(arrays profiles, rows, columns).")
            return pd.DataFrame(f["profiles"], index=pd.Index(f["rows"]),
                                columns=pd.Index(f["columns"]))
    except SpaconInputError:
        raise
    except Exception as err:  # a damaged or foreign file: say which, not NumPy's words
        raise SpaconInputError(f"could not read the profile file {str(path)!r} "
                               f"({type(err).__name__}): it is damaged or not one written by "
                               "spacon.io.save_profiles.") from None
