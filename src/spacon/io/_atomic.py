"""Write outputs atomically: to a temporary name in the same folder, then rename into place."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

# a full disk or quota, a failing device: errors of the machine, not of the path given
DEVICE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EIO)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    If the body raises, the temporary file is removed and ``path`` is left as it was, so a
    reader never sees a half-written file.
    """
    from .._errors import SpaconInputError

    path = Path(path)
    if path.is_dir():
        raise SpaconInputError(f"{path} is a folder, not a file; give the path of the file to "
                               "write (in that folder, or elsewhere).")
    make_folder(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        if err.errno in DEVICE_ERRORS:  # not the path's fault: said as the OS says it
            raise
        raise SpaconInputError(f"cannot write {path}: {err.strerror or err} (in "
                               f"{path.parent}).") from None
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual mode
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def make_folder(path: str | Path) -> Path:
    """Create folder ``path`` (and its parents) unless it exists; a clear error where a file
    stands in the way or the folder cannot be made.
    """
    from .._errors import SpaconInputError

    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocking = next((p for p in [path, *path.parents]
                         if (p.exists() or p.is_symlink()) and not p.is_dir()), path)
        what = "a link to nothing" if blocking.is_symlink() and not blocking.exists() else \
            "a file"
        raise SpaconInputError(f"cannot make the folder {path}: {blocking} is {what}, not a "
                               "folder.") from None
    except OSError as err:
        if err.errno in DEVICE_ERRORS:
            raise
        raise SpaconInputError(f"cannot make the folder {path}: {err.strerror or err}.") from None
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_h5ad(adata, path: str | Path) -> None:
    """Write ``adata`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp)


def write_text(text: str, path: str | Path) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_npz(path: str | Path, matrix, labels=None) -> None:
    """Save a connectivity matrix (and its row labels) atomically.

    ``matrix`` is a sparse or dense square array, a :class:`spacon.io.Connectivity` (as
    :func:`spacon.io.read_connectivity` and :func:`spacon.datasets.read_mouse_tracer` return)
    or a labelled pandas DataFrame, whose labels are saved unless ``labels`` is given. The
    file is readable by :func:`scipy.sparse.load_npz` and by
    :func:`spacon.io.read_connectivity`, which also picks up the labels.
    """
    import numpy as np

    from ._connectivity import Connectivity, as_connectivity

    if hasattr(matrix, "columns") and hasattr(matrix, "index"):  # a labelled DataFrame
        matrix = as_connectivity(matrix)
    if isinstance(matrix, Connectivity):
        matrix, labels = matrix.matrix, matrix.labels if labels is None else labels
    conn = Connectivity(matrix, labels)  # checked as read_connectivity checks what it reads
    m, labels = conn.matrix, conn.labels
    arrays = dict(
        format=np.array("csr"), shape=np.array(m.shape), data=m.data, indices=m.indices,
        indptr=m.indptr,
    )
    if labels is not None:
        arrays["labels"] = np.asarray(labels).astype(str)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
