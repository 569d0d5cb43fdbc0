"""Read a connectivity matrix (between cells, or between units such as voxels or regions)."""

from __future__ import annotations

import csv
import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .._errors import SpaconInputError, SpaconWarning
from .._utils import label_strings

logger = logging.getLogger(__name__)

FORMATS = (".npz", ".npy", ".csv", ".tsv", ".h5", ".hdf5", ".mat")


@dataclass
class Connectivity:
    """A square connectivity matrix, rows = sources, columns = targets.

    Attributes
    ----------
    matrix
        ``(n, n)`` sparse CSR matrix of connection strengths.
    labels
        Names of the ``n`` rows/columns (cell names or unit ids), or ``None`` when the
        file carries none; then rows are matched by position.
    source
        The file it was read from (:func:`read_connectivity`), else ``None``.
    said_by_position
        Whether matching its rows to cells by position (it has no labels) was said in a
        warning already, so that a run matching it twice says it once.
    """

    matrix: sp.csr_matrix
    labels: np.ndarray | None = None
    source: str | None = field(default=None, compare=False)
    # whether matching it by position was said already (a run matches one matrix twice)
    said_by_position: bool = field(default=False, compare=False, repr=False)

    def __post_init__(self):
        self.matrix = check_connectivity_matrix(self.matrix)
        if self.labels is not None:
            labels = np.asarray(self.labels)
            if labels.ndim == 2 and 1 in labels.shape:  # a column (or row) of them
                labels = labels.ravel()
            if labels.ndim != 1:
                raise SpaconInputError(f"connectivity labels must be one per row, a 1-D array; "
                                       f"got an array of shape {labels.shape}.")
            self.labels = label_strings(labels)
            if self.labels.shape != (self.matrix.shape[0],):
                raise SpaconInputError(
                    f"connectivity has {self.matrix.shape[0]} rows but {self.labels.size} labels."
                )
            _, counts = np.unique(self.labels, return_counts=True)
            if (counts > 1).any():
                raise SpaconInputError("connectivity labels are not unique; each row needs its own.")

    @property
    def n(self) -> int:
        """Number of rows (= columns)."""
        return self.matrix.shape[0]


def check_connectivity_matrix(matrix, name: str = "connectivity") -> sp.csr_matrix:
    """Validate a connectivity matrix (2-D, square, finite) and return it as float32 CSR."""
    if sp.issparse(matrix):
        m = sp.csr_matrix(matrix)
        values = m.data
    else:
        arr = np.asarray(matrix)
        if arr.dtype == object:  # numbers held as Python objects (e.g. a DataFrame's .values)
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError):
                pass
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
            raise SpaconInputError(f"{name} must be numeric, got dtype {arr.dtype}.")
        if np.iscomplexobj(arr):
            raise SpaconInputError(f"{name} holds complex numbers; a connectivity is real.")
        if arr.ndim != 2:
            raise SpaconInputError(f"{name} must be a 2-D matrix, got shape {arr.shape}.")
        values = arr
        m = None
    shape = m.shape if m is not None else values.shape
    if len(shape) != 2 or shape[0] != shape[1]:
        raise SpaconInputError(
            f"{name} must be square (sources x targets over the same cells or units), "
            f"got shape {tuple(shape)}."
        )
    if shape[0] == 0:
        raise SpaconInputError(f"{name} is empty.")
    if m is not None and np.iscomplexobj(values):
        raise SpaconInputError(f"{name} holds complex numbers; a connectivity is real.")
    bad = ~np.isfinite(values)
    n_bad = int(bad.sum())
    if n_bad:
        if m is None:
            on_diagonal = int(np.diagonal(bad).sum())
        else:
            coo = m.tocoo()
            on_diagonal = int((bad & (coo.row == coo.col)).sum())
        if n_bad == on_diagonal:
            raise SpaconInputError(
                f"{name} has NaN or infinite values on its diagonal alone ({n_bad} of "
                f"{shape[0]} self-connections; e.g. the Fisher z of r = 1 in a functional "
                "connectivity matrix): set the diagonal first, to 0 (np.fill_diagonal(m, 0)) "
                "or, for a unit's cells to link as closely as their strongest connection, to "
                "each row's largest finite value.")
        raise SpaconInputError(
            f"{name} has {n_bad} NaN or infinite values; replace them (e.g. with 0 for "
            "'no connection') before running spacon."
        )
    largest = float(np.abs([values.min(), values.max()]).max()) if values.size else 0.0
    if largest > float(np.finfo(np.float32).max):  # as float32 these would become inf
        raise SpaconInputError(
            f"{name} has values up to {largest:.3g}, beyond what float32 holds "
            f"({np.finfo(np.float32).max:.3g}); rescale it (e.g. divide by its largest value).")
    if m is None:
        m = sp.csr_matrix(values.astype(np.float32))
    m = m.astype(np.float32)
    m.sum_duplicates()
    m.eliminate_zeros()
    return m


def as_connectivity(connectivity) -> Connectivity:
    """The argument as a :class:`Connectivity`.

    It may be one already, a file path (read with :func:`read_connectivity`), a square array
    or sparse matrix (matched by position), or a pandas DataFrame labelled by cells or units
    (matched by its labels, columns put in the rows' order; one with the default 0..n-1
    labels on both axes is matched by position).
    """
    import pandas as pd

    if isinstance(connectivity, Connectivity):
        return connectivity
    if isinstance(connectivity, (str, Path)):
        return read_connectivity(connectivity)
    if isinstance(connectivity, pd.DataFrame):
        default = pd.RangeIndex(len(connectivity))
        if connectivity.index.equals(default) and connectivity.columns.equals(
                pd.RangeIndex(connectivity.shape[1])):
            return Connectivity(connectivity.to_numpy())
        return Connectivity(*_labelled_table(connectivity, "the connectivity DataFrame"))
    return Connectivity(connectivity)


def positions_in(labels, reference) -> np.ndarray:
    """Position of each of ``labels`` in ``reference``, -1 where absent.

    Both are compared as text (:func:`spacon._utils.label_strings`: ``1``, ``1.0`` and
    ``'1.0'`` are one label); this is how cells, or their units, are matched to connectivity
    rows.
    """
    import pandas as pd

    reference = pd.Index(label_strings(reference))
    return reference.get_indexer(label_strings(labels)).astype(np.int64)


def cell_rows(obs_names, connectivity, stacklevel: int = 3) -> np.ndarray:
    """The row of a cell-level ``connectivity`` that belongs to each cell: found by label, or by
    position where the matrix has no labels. A file without labels is matched by position
    with a warning, unless the cells are named ``0..n-1`` as well: a ``.npy`` or unlabelled
    ``.npz`` in another order than the cells would be read as another cell's wiring without
    a word; an array passed in Python is the caller's own, aligned with the cells.
    """
    import warnings

    from .._errors import SpaconWarning

    if connectivity.labels is not None:
        rows = positions_in(obs_names, connectivity.labels)
        if (rows < 0).any():
            raise SpaconInputError(unlabelled_cells(obs_names, connectivity.labels))
        return rows
    n = len(obs_names)
    if connectivity.n != n:
        raise SpaconInputError(
            f"cell-level connectivity is {connectivity.n} x {connectivity.n} but adata has "
            f"{n} cells; pass unit_key= if the matrix is between units.")
    if (connectivity.source is not None and not connectivity.said_by_position
            and list(label_strings(obs_names)) != [str(i) for i in range(n)]):
        connectivity.said_by_position = True
        warnings.warn(
            f"{connectivity.source} has no labels: its rows and columns are taken to be the "
            f"{n} cells in adata's order (row 0 = {str(obs_names[0])!r}, ...). If it is in "
            "another order, give it labels (a CSV's header and first column, or a 'labels' "
            "array of text beside the matrix in an .npz).", SpaconWarning, stacklevel=stacklevel)
    return np.arange(n)


def unlabelled_cells(names, labels) -> str:
    """The message for cells (``names``) that no connectivity label (``labels``) matches:
    some of both, and whether they differ only in case, spaces or a hemisphere's mark.
    """
    names, labels = label_strings(names), label_strings(labels)
    found = set(labels)
    missing = [n for n in names if n not in found]
    hint = (label_difference(missing, labels)
            or "; pass unit_key= if the matrix is between units")
    return (f"{len(missing)} cells are not labelled in the connectivity matrix (e.g. "
            f"{', '.join(map(str, missing[:5]))}; its labels are e.g. "
            f"{', '.join(map(str, labels[:5]))}){hint}.")


# a hemisphere's mark before or after a region's name: AAA-L, AAA_R, L_AAA, lh.AAA, Left-AAA
_SIDE = re.compile(r"^(?:(?:left|right|lh|rh|l|r)[-_. ])?(.*?)(?:[-_. ](?:left|right|lh|rh|l|r))?$",
                   re.IGNORECASE)


def label_difference(missing, labels) -> str:
    """How names the matrix lacks (``missing``) differ from its ``labels``, when they differ
    only in case and spaces, or by a hemisphere's mark ("" otherwise): a message's ending.
    """
    def folded(x):
        return str(x).strip().lower()

    def sideless(x):
        return _SIDE.match(folded(x)).group(1)

    if not len(missing):
        return ""
    if {folded(x) for x in missing} <= {folded(x) for x in labels}:
        return "; they differ from the matrix's labels only in case or spaces: make them the same"
    if {sideless(x) for x in missing} <= {sideless(x) for x in labels}:
        marked = [x for x in missing if sideless(x) != folded(x)]
        if marked and not [x for x in labels if sideless(x) != folded(x)]:
            return ("; they carry a hemisphere's mark the matrix's labels do not (e.g. "
                    f"{str(marked[0])!r}): a matrix of one hemisphere needs a unit per side, "
                    "e.g. spacon.datasets.read_mouse_tracer(..., hemispheres='both') for the "
                    "Allen tracer connectome, or labels written as the data's")
        if not marked:
            return ("; the matrix's labels carry a hemisphere's mark these do not (e.g. "
                    f"{str(labels[0])!r}): give the data's units their side (e.g. by the "
                    "midline) so that each matches one of the matrix's")
        return "; they differ from the matrix's labels only by a hemisphere's mark"
    return ""


def read_connectivity(path: str | Path, *, key: str | None = None) -> Connectivity:
    """Read a square connectivity matrix from a file.

    Parameters
    ----------
    path
        ``.npz`` (a scipy sparse matrix from :func:`scipy.sparse.save_npz`, or a dense array
        stored under ``key``, optionally with a ``labels`` array of text; when ``key`` is not
        needed, a dense one's labels may also be its one other 1-D array of text, e.g.
        ``acronym``), ``.npy`` (dense),
        ``.csv``/``.tsv`` (square table with row and column labels, or plain numbers),
        ``.h5``/``.hdf5``/``.mat`` (HDF5 or MATLAB v7.3, dataset ``key``; older MATLAB files too;
        an HDF5 file's ``labels`` dataset, or its one 1-D text dataset, labels the rows, as
        in an ``.npz``).
    key
        Name of the array inside ``.npz``/HDF5/``.mat`` files holding several. A matrix inside
        a 3-D array is named with its index, in NumPy's way (``"a[:, :, 0]"``, from 0) or
        MATLAB's (``"a(:,:,1)"``, from 1, the array's own axes even in a v7.3 file), e.g. the
        ipsilateral weights of the Oh et al. 2014 file. A ``.mat`` file's labels are its one
        text array with an entry per row (e.g. ``acronym``, a cell array or a char matrix), where
        it holds one.

    Returns
    -------
    A :class:`Connectivity` with the matrix as float32 CSR and its labels, if the file has any.
    """
    path = Path(path)
    if not path.exists():
        raise SpaconInputError(f"connectivity file {str(path)!r} does not exist.")
    if path.is_dir():
        raise SpaconInputError(f"connectivity file {str(path)!r} is a folder: give the file in "
                               "it (.npz, .npy, .csv, .h5, .mat).")
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        excel = (" (a spreadsheet: save its sheet as CSV, e.g. pandas.read_excel(path, "
                 "sheet_name=..., index_col=0).to_csv('connectivity.csv'))"
                 if suffix in (".xlsx", ".xls", ".ods") else "")
        raise SpaconInputError(
            f"connectivity file {path.name!r} has an unknown format; use one of "
            f"{', '.join(FORMATS)}{excel}.")
    if key is not None and suffix in (".npy", ".csv", ".tsv"):
        raise SpaconInputError(f"a {suffix} file holds one matrix: key={key!r} "
                               "(--connectivity-key) names an array inside .npz, .h5 or .mat "
                               "files only.")
    if path.stat().st_size == 0 or (suffix in (".csv", ".tsv") and path.stat().st_size < 2**20
                                    and not path.read_bytes().lstrip(b"\xef\xbb\xbf").strip()):
        raise SpaconInputError(f"connectivity file {str(path)!r} is empty.")
    try:
        _check_signature(path, suffix)
        if suffix == ".npz":
            matrix, labels = _read_npz(path, key)
        elif suffix == ".npy":
            matrix, labels = np.load(path, allow_pickle=False), None
        elif suffix in (".csv", ".tsv"):
            matrix, labels = _read_table(path, "\t" if suffix == ".tsv" else ",")
        else:
            matrix, labels = _read_hdf5_or_mat(path, key)
    except SpaconInputError:
        raise
    except UnicodeDecodeError as err:
        if suffix not in (".csv", ".tsv"):
            raise SpaconInputError(f"could not read connectivity file {str(path)!r}: its text "
                                   f"is not UTF-8 ({err.reason}).") from None
        raise SpaconInputError(
            f"could not read connectivity file {str(path)!r}: it is not UTF-8 text (it holds "
            f"the byte {err.object[err.start]:#x}); save it as UTF-8 (Excel: 'CSV UTF-8'), or "
            "read it with pandas.read_csv(path, encoding='latin-1', index_col=0) and pass the "
            "table.") from None
    except Exception as err:  # corrupt or foreign files: say which file, not a deep traceback
        raise SpaconInputError(f"could not read connectivity file {str(path)!r}: {err}") from err
    conn = Connectivity(matrix, labels, source=path.name)
    logger.info("read %s: %d x %d, %d non-zero", path.name, conn.n, conn.n, conn.matrix.nnz)
    return conn


# what a file of each binary format starts with (HDF5 and MATLAB v7.3 have a 512-byte user block)
_SIGNATURES = {".npz": (b"PK\x03\x04", "a NumPy .npz file (a zip of arrays)"),
               ".npy": (b"\x93NUMPY", "a NumPy .npy file")}


def _check_signature(path: Path, suffix: str) -> None:
    """Refuse a file whose contents are not its suffix's format (a CSV renamed ``.npz``) with an
    error that says so, before a reader gives a confusing one.
    """
    if suffix not in _SIGNATURES:
        return
    magic, what = _SIGNATURES[suffix]
    with path.open("rb") as f:
        head = f.read(len(magic))
    if head != magic:
        text = head.strip() and all(32 <= b < 127 or b in b"\t\r\n" for b in head)
        raise SpaconInputError(
            f"connectivity file {path.name!r} is not {what}"
            + ("; it looks like text (a CSV? name it .csv)." if text else ".")
        )


# a matrix inside an array: NAME[:, :, 0] (NumPy, from 0) or NAME(:,:,1) (MATLAB, from 1)
_INDEXED = re.compile(r"^\s*(?P<name>[^\[\]()]+?)\s*(?P<open>[\[(])(?P<index>[^\[\]()]*)"
                      r"(?P<close>[\])])\s*$")


def _resolve(key: str | None, held) -> tuple[str | None, tuple | None]:
    """The array a key names and the index of a matrix inside it (``None``: the array): a
    name the file holds is taken as written, even one with brackets (``"W (ipsi)"``).
    """
    if key is None or key in held:
        return key, None
    return _split_key(key)


def _split_key(key: str) -> tuple[str, tuple | None]:
    """``key`` as an array name and the index of a matrix inside that array (or ``None``)."""
    match = _INDEXED.match(key)
    if match is None:
        return key, None
    matlab = match["open"] == "("
    if matlab != (match["close"] == ")"):
        raise SpaconInputError(f"connectivity key {key!r}: the brackets do not match.")
    parts = [part.strip() for part in match["index"].split(",")]
    whole = [part == ":" for part in parts]
    if sum(whole) != 2 or not all(w or part.isdigit() for w, part in zip(whole, parts)):
        raise SpaconInputError(
            f"connectivity key {key!r} does not name one matrix: take two whole axes and one "
            "position of the others, e.g. 'a[:, :, 0]' (NumPy, from 0) or 'a(:,:,1)' (MATLAB, "
            "from 1).")
    if matlab and any(not w and int(part) == 0 for w, part in zip(whole, parts)):
        raise SpaconInputError(f"connectivity key {key!r}: MATLAB's (...) positions count from "
                               "1; write [...] to count from 0 as NumPy does.")
    index = tuple(slice(None) if w else int(part) - matlab for w, part in zip(whole, parts))
    return match["name"], index


def _index_example(name: str, shape: tuple) -> tuple[str, str]:
    """How to name the first matrix of a 3-D array of ``shape``: NumPy's and MATLAB's way,
    with the two equal (square) axes whole.
    """
    square = next(((a, b) for a, b in ((0, 1), (1, 2), (0, 2)) if shape[a] == shape[b]),
                  (0, 1))
    numpy = ", ".join(":" if axis in square else "0" for axis in range(3))
    matlab = ",".join(":" if axis in square else "1" for axis in range(3))
    return f"{name}[{numpy}]", f"{name}({matlab})"


def _take(array, key: str, index: tuple | None, path: Path):
    """The matrix at ``index`` of the array named ``key`` (the array itself without one)."""
    if index is None:
        return array
    shape = np.shape(array)
    if len(shape) != len(index):
        raise SpaconInputError(
            f"{path.name!r}: {key!r} has {len(shape)} axes ({' x '.join(map(str, shape))}), "
            f"the key indexes {len(index)}.")
    for axis, (i, n) in enumerate(zip(index, shape)):
        if isinstance(i, int) and i >= n:
            raise SpaconInputError(
                f"{path.name!r}: {key!r} is {' x '.join(map(str, shape))}; axis {axis + 1} has "
                f"{n} positions only: 0 to {n - 1} in NumPy's [...], 1 to {n} in MATLAB's (...).")
    return np.asarray(array)[index]


def _read_npz(path: Path, key: str | None):
    with np.load(path, allow_pickle=False) as f:
        names = list(f.keys())
        if {"format", "shape", "data"} <= set(names) and key is None:  # scipy's, any format
            matrix = sp.load_npz(path)
            return matrix, _npz_labels(f, path, "labels" if "labels" in names else None)
        headers = _npz_headers(f)
        arrays = {n: h for n, h in headers.items() if n != "labels"}
        name, index = _resolve(key, arrays)
        if index is not None and name in arrays:
            matrix = _take(f[name], name, index, path)
        else:
            shapes = {n: (shape, dtype.kind in "biuf") for n, (shape, dtype) in arrays.items()}
            matrix = f[_pick_dataset(path, name, list(arrays), shapes)]
        if "labels" in names:
            return matrix, _npz_labels(f, path, "labels")
        if key is not None:  # the matrix named: other arrays are the user's own business
            return matrix, None
        # as in a .mat file: the one 1-D array of text with an entry per row (e.g. 'acronym')
        text = [n for n, (shape, dtype) in arrays.items()
                if dtype.kind in "US" and shape == (np.shape(matrix)[0],)]
        labels = f[text[0]] if len(text) == 1 else None
        # names that repeat label nothing (then rows match by position, as without names)
        return matrix, (labels if labels is not None and len(set(labels)) == len(labels)
                        else None)


def _npz_headers(f) -> dict[str, tuple[tuple, np.dtype]]:
    """Each array's shape and dtype in an open ``.npz``, read from its header (no array is
    loaded: one of Python objects could not be, without unpickling).
    """
    out = {}
    members = set(f.zip.namelist())
    for name in f.files:
        member = f"{name}.npy" if f"{name}.npy" in members else name
        try:
            with f.zip.open(member) as handle:
                version = np.lib.format.read_magic(handle)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0) else
                        np.lib.format.read_array_header_2_0)
                shape, _, dtype = read(handle)
        except ValueError:  # not a .npy member (NumPy reads those as raw bytes)
            value = f[name]
            shape, dtype = value.shape, value.dtype
        out[name] = (shape, dtype)
    return out


def _npz_labels(f, path: Path, name: str | None) -> np.ndarray | None:
    """The labels array ``name`` of an ``.npz``; one saved as Python objects (a pandas
    index's ``.values``) is refused with how to save it as text, as it is never unpickled.
    """
    if name is None:
        return None
    try:
        return f[name]
    except ValueError as err:
        if "allow_pickle" not in str(err):
            raise
        raise SpaconInputError(
            f"{path.name!r}: its labels {name!r} were saved as Python objects (e.g. a pandas "
            "index's .values), which spacon does not unpickle; save them as text: np.savez(..., "
            f"{name}=np.asarray(labels, dtype=str)).") from None


def _pick_dataset(path: Path, key: str | None, names: list[str],
                  shapes: dict[str, tuple[tuple, bool]] | None = None) -> str:
    """The array ``key`` names, or the file's only candidate; ``shapes`` (every array's shape
    and whether it holds numbers, where known) lets the candidates be square numeric matrices
    and the messages say what the other arrays are.
    """
    if shapes is not None:
        names = [n for n, (shape, numeric) in shapes.items()  # (a 1 x 1 is a MATLAB scalar)
                 if numeric and len(shape) == 2 and shape[0] == shape[1] > 1]
        held = ", ".join(f"{n} ({' x '.join(map(str, shape))}{'' if numeric else ', text'})"
                         for n, (shape, numeric) in shapes.items())
    else:
        held = ", ".join(names)
    if key is not None:
        if key in names:
            return key
        if shapes is not None and key in shapes:
            if len(shapes[key][0]) == 3 and shapes[key][1]:
                numpy, matlab = _index_example(key, shapes[key][0])
                raise SpaconInputError(
                    f"{path.name!r}: {key!r} holds several matrices "
                    f"({' x '.join(map(str, shapes[key][0]))}); name one with its index, e.g. "
                    f"{numpy!r} (NumPy, from 0) or {matlab!r} (MATLAB, from 1) (the file "
                    f"holds: {held}).")
            raise SpaconInputError(
                f"{path.name!r}: {key!r} is no square numeric matrix; a connectivity is one "
                f"(the file holds: {held}).")
        raise SpaconInputError(f"{path.name!r} has no dataset {key!r}; it has: "
                               f"{held or 'nothing'}.")
    if len(names) != 1:
        what = "arrays" if shapes is None else "square numeric matrices"
        stacks = [(n, shape) for n, (shape, numeric) in (shapes or {}).items()
                  if numeric and len(shape) == 3]
        raise SpaconInputError(
            f"{path.name!r} holds {'several' if names else 'no'} {what} ({held or 'nothing'}); "
            + ("say which one with key=... (--connectivity-key on the command line)." if names
               else f"name one matrix of {stacks[0][0]!r} with key=... (--connectivity-key), "
               f"e.g. {_index_example(*stacks[0])[0]!r}." if stacks else
               "a connectivity is one.")
        )
    return names[0]


def _read_table(path: Path, sep: str):
    """A .csv/.tsv table: plain numbers; labelled rows and columns; a header row of labels
    alone (rows in the columns' order, as pandas' ``to_csv(index=False)`` writes); or a row-label
    column alone. Labels may be numbers (e.g. Allen structure ids). The delimiter is the file's
    own where its name says otherwise (a tab-separated ``.csv``).
    """
    import pandas as pd

    text = "utf-8-sig"  # (Excel's "CSV UTF-8" starts with a byte-order mark)
    with path.open(newline="", encoding=text) as f:  # the first two lines that are not blank
        head = [line for line, _ in zip((line for line in f if line.strip()), range(2))]
    head += [""] * (2 - len(head))
    sep = _delimiter(head, sep, path.name)
    first = next(csv.reader([head[0]], delimiter=sep), [])
    second = next(csv.reader([head[1]], delimiter=sep), [])
    if second and len(first) + 1 == len(second):
        # R's write.table: a header of column labels, one field shorter than the rows below,
        # which start with their labels (numbers too, e.g. Allen structure ids)
        return _labelled_table(_read_labelled(path, sep), repr(path.name))
    if (first and any(_is_number(x) for x in first)
            and all(_is_number_or_blank(x) for x in first + second)):
        values = _numbers(path, sep, text)
        n_rows, n_cols = values.shape
        if np.isnan(values[0, 0]) and min(n_rows, n_cols) > 1 and (
                (_id_like(values[0, 1:]) and _id_like(values[1:, 0]))
                or (n_rows == n_cols and not np.isnan(np.diag(values)[1:]).any())):
            # an empty corner over numeric labels both ways (e.g. Allen structure ids), or the
            # only empty diagonal entry: labels. An empty diagonal throughout (NaN, as pandas
            # writes it) is a matrix's own, refused later by name
            return _labelled_table(_read_labelled(path, sep), repr(path.name))
        # numeric labels are whole numbers (e.g. Allen structure ids), each its own
        if n_rows == n_cols + 1 and _id_like(values[0]):  # a header of them over the matrix
            return values[1:], np.asarray([x.strip() for x in first])
        if n_cols == n_rows + 1 and _id_like(values[:, 0]):  # a column of them beside it
            labels = pd.read_csv(path, sep=sep, header=None, usecols=[0], dtype=str,
                                 encoding=text)[0]
            return values[:, 1:], np.asarray(labels.str.strip())
        if n_rows != n_cols:
            raise SpaconInputError(f"{path.name!r} is not square: {n_rows} rows of {n_cols} "
                                   "numbers (and no row or column of unit labels).")
        return values, None
    if first and not first[0].strip():  # an empty corner: labels over the columns and rows
        return _labelled_table(_read_labelled(path, sep), repr(path.name))
    _, trailing = _check_row_widths(path, sep, text)
    raw = pd.read_csv(path, sep=sep, header=None, dtype=str, encoding=text)
    if trailing:  # a delimiter ending every row: no column after it
        raw = raw.iloc[:, :-1]
    numbers, bad = _as_numbers(raw)  # every cell once
    n_body = len(raw) - 1
    numeric = not bad[1:].any()  # below the first row
    if pd.notna(raw.iat[0, 0]) and numeric and n_body not in (raw.shape[1], raw.shape[1] - 1):
        raise SpaconInputError(f"{path.name!r} is not square: {n_body} rows of numbers "
                               f"under a header of {raw.shape[1]} labels.")
    if pd.notna(raw.iat[0, 0]) and numeric and n_body == raw.shape[1]:
        # a header of labels over rows of numbers only: the rows are the columns' units
        labels = raw.iloc[0].str.strip().to_numpy()
        return _labelled_table(pd.DataFrame(numbers[1:], index=labels, columns=labels),
                               repr(path.name))
    if (raw.shape[1] - 1 == len(raw) and raw.iloc[:, 0].notna().all()
            and not bad[:, 1:].any()):
        # a column of row labels beside rows of numbers, no header: the rows' units
        labels = raw.iloc[:, 0].str.strip().to_numpy()
        return _labelled_table(pd.DataFrame(numbers[:, 1:], index=labels, columns=labels),
                               repr(path.name))
    return _labelled_table(_read_labelled(path, sep), repr(path.name))


MISSING_WORDS = ("", "nan", "na", "n/a", "#n/a", "null")  # empty cells and NaN as written


NAN_WORDS = ("nan", "+nan", "-nan")  # NaN as float() reads it, in any case ('NAN')


def _as_numbers(cells) -> tuple[np.ndarray, np.ndarray]:
    """A table read as text as numbers (a missing cell, NaN in any spelling and infinities
    are numbers here, refused later by name), and which cells hold no number.
    """
    import pandas as pd

    text = cells.to_numpy(dtype=object)
    numbers = pd.to_numeric(pd.Series(text.ravel()), errors="coerce")  # (blanks around: fine)
    numbers = numbers.to_numpy(dtype=np.float64, na_value=np.nan).reshape(text.shape)
    bad = np.isnan(numbers) & cells.notna().to_numpy()
    if bad.any():  # the few cells left: NaN spelled as float() reads it ('NAN') is a number
        bad[bad] = [str(v).strip().lower() not in NAN_WORDS for v in text[bad]]
    return numbers, bad


def _is_number_or_blank(text: str) -> bool:
    """A number, or an empty cell (pandas' ``to_csv`` writes NaN as one)."""
    return _is_number(text) or not text.strip()


def _numbers(path: Path, sep: str, text: str) -> np.ndarray:
    """A table of numbers alone; empty cells and NaN read as NaN (refused later by name), a
    delimiter ending every row ignored, and rows of different lengths or anything else that
    is not a number refused with its row and column (from 1, as a spreadsheet counts).
    """
    import pandas as pd

    try:
        return np.loadtxt(path, delimiter=sep, dtype=np.float64, ndmin=2, encoding=text)
    except ValueError:  # empty cells, rows of other lengths, or words: find which
        pass
    common, trailing = _check_row_widths(path, sep, text, header=False)
    columns = list(range(common - trailing))
    try:  # (pandas reads empty cells, NaN, NA and the like as NaN)
        return pd.read_csv(path, sep=sep, header=None, usecols=columns, dtype=np.float64,
                           encoding=text).to_numpy()
    except ValueError:
        pass
    cells = pd.read_csv(path, sep=sep, header=None, usecols=columns, dtype=str,
                        keep_default_na=False, encoding=text)
    cells = cells.apply(lambda column: column.str.strip())
    bad = (cells.apply(pd.to_numeric, errors="coerce").isna().to_numpy()
           & ~cells.apply(lambda column: column.str.lower().isin(MISSING_WORDS)).to_numpy())
    row, col = np.argwhere(bad)[0]
    raise SpaconInputError(
        f"{path.name!r}: the entry in row {row + 1}, column {col + 1} is "
        f"{cells.iat[row, col]!r}, not a number ({int(bad.sum())} such entries).")


def _read_labelled(path: Path, sep: str):
    """A table with a header of labels and a first column of labels, both read as text (a
    label ``001`` is not the number 1; a repeated label kept as written), its values as
    numbers (empty cells, NaN, NA and the like as NaN, refused later by name). The header may
    be one field shorter than the rows (R's ``write.table``), and a delimiter may end every
    row. Rows of other lengths and entries that are not numbers are refused with their row
    and column (from 1, as a spreadsheet counts).
    """
    import pandas as pd

    text = "utf-8-sig"
    width, trailing = _check_row_widths(path, sep, text)
    with path.open(newline="", encoding=text) as f:  # the first line that is not blank
        lines = (line for line in f if line.strip())
        header = [x.strip() for x in next(csv.reader(lines, delimiter=sep))]
    with path.open(newline="", encoding=text) as f:  # lines up to the header, blank ones too
        skip = next(i for i, line in enumerate(f) if line.strip()) + 1
    if trailing:  # a delimiter ending every row (the header's too): no column after it
        width, header = width - 1, header[:-1]
    names = pd.read_csv(path, sep=sep, header=None, usecols=[0], dtype=str, skiprows=skip,
                        keep_default_na=False, encoding=text)[0].str.strip().to_numpy()
    values = pd.read_csv(path, sep=sep, header=None, usecols=range(1, width), skiprows=skip,
                         encoding=text)  # (NaN, NA, #N/A and empty cells as NaN)
    # columns pandas left as text (or read as TRUE/FALSE): numbers pandas does not read
    # ('NAN', 20-digit integers) are taken, anything else is named by its row and column
    words = [c for c in values.columns if not pd.api.types.is_numeric_dtype(values[c])
             or pd.api.types.is_bool_dtype(values[c])]
    if words:
        cells = pd.read_csv(path, sep=sep, header=None, usecols=words, skiprows=skip,
                            dtype=str, encoding=text)
        numbers, bad = _as_numbers(cells)
        if bad.any():
            row, col = np.argwhere(bad)[0]  # (the first row's first)
            raise SpaconInputError(
                f"{path.name!r}: the entry in row {row + skip + 1}, column {words[col] + 1} is "
                f"{cells.iat[row, col].strip()!r}, not a number ({int(bad.sum())} such entries)."
                f"{_edge_list_hint(*values.shape)}")
        values[words] = numbers
    if (len(header) == values.shape[1] and not header[0] and values.shape[1] > 1
            and values.iloc[:, -1].isna().all()):
        # an empty corner, so not R's header (which has none): a delimiter ends every row but
        # the header
        values = values.iloc[:, :-1]
    columns = header if len(header) == values.shape[1] else header[1:]
    return pd.DataFrame(values.to_numpy(dtype=np.float64), index=names, columns=columns)


def _check_row_widths(path: Path, sep: str, text: str, header: bool = True) -> tuple[int, bool]:
    """Refuse rows of another length than the others (a ``header``, the first row, may be
    one field shorter); the rows' length, and whether a delimiter ends every row.
    """
    widths, trailing = [], True
    with path.open(newline="", encoding=text) as f:  # one pass, nothing kept but the lengths
        for row in csv.reader(f, delimiter=sep):
            if any(field.strip() for field in row):  # (blank lines are skipped, as pandas does)
                widths.append(len(row))
                trailing = trailing and len(row) > 1 and not row[-1].strip()
    skip = int(header and len(widths) > 1)
    body = np.asarray(widths[skip:])
    common = int(np.bincount(body).argmax())
    odd = np.flatnonzero(body != common)
    if len(odd):
        raise SpaconInputError(
            f"{path.name!r}: row {odd[0] + 1 + skip} has {body[odd[0]]} entries, the other "
            f"rows {common}; every row of a matrix has as many.")
    if widths[0] not in (common, common - 1):
        raise SpaconInputError(
            f"{path.name!r}: its first row has {widths[0]} entries and the rows below "
            f"{common}; a header of labels has as many, or one fewer (no corner).")
    return common, trailing


def _edge_list_hint(n_rows: int, n_cols: int) -> str:
    """What to do with a table of a few columns and many rows: an edge list."""
    if not (n_cols <= 2 and n_rows > n_cols + 1):
        return ""
    return (" It looks like an edge list (source, target, weight per row): make it a square "
            "matrix first, e.g. df.pivot_table(index='source', columns='target', "
            "values='weight', fill_value=0) in pandas.")


def _id_like(values: np.ndarray) -> bool:
    """Whether a row or column of numbers reads as unit labels: whole numbers, no repeats."""
    return bool(np.all(values == np.round(values)) and len(np.unique(values)) == len(values))


def _delimiter(head: list[str], sep: str, name: str) -> str:
    """The delimiter that splits the first two lines into the same number of fields (or the
    header one fewer), ``sep`` where it does; quoted labels holding delimiters are kept whole.
    """
    if head[0].lstrip().startswith("#"):  # (np.savetxt's header=, R's comment lines)
        raise SpaconInputError(f"{name!r} starts with a comment line ({head[0].strip()[:40]!r}); "
                               "remove comment lines, the table's first line is its first row.")
    for candidate in dict.fromkeys([sep, "\t", ",", ";"]):
        counts = [len(next(csv.reader([line], delimiter=candidate), [])) for line in head]
        if counts[0] > 1 and (not head[1].strip() or counts[1] in (counts[0], counts[0] + 1)):
            if candidate != sep:
                logger.info("%s: fields are separated by %r, not %r", name, candidate, sep)
            return candidate
    if len(head[0].split()) > 1:  # np.savetxt's default, R's write.table's
        raise SpaconInputError(
            f"{name!r}: its fields are separated by spaces; spacon reads tables separated by "
            "commas, tabs or semicolons: write it with np.savetxt(path, matrix, delimiter=',') "
            "or write.table(m, path, sep='\\t'), or save a .npy.")
    return sep


def _is_number(text: str) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def _labelled_table(table, name: str):
    """A square table labelled by units (rows = sources): its values with the columns put in
    the rows' order, and the labels.
    """
    rows, cols = table.index.astype(str), table.columns.astype(str)
    if len(rows) != len(cols):
        raise SpaconInputError(f"{name} is not square: {len(rows)} labelled rows, "
                               f"{len(cols)} columns.{_edge_list_hint(len(rows), len(cols))}")
    if set(rows) != set(cols):
        missing = sorted(set(rows) ^ set(cols))[:5]
        raise SpaconInputError(
            f"{name}: row and column labels differ (e.g. {', '.join(missing)}); a "
            "connectivity table needs the same units as rows and columns."
        )
    if rows.duplicated().any():
        raise SpaconInputError(f"{name} has duplicate labels (e.g. "
                               f"{', '.join(rows[rows.duplicated()][:3])}).")
    table = table.set_axis(cols, axis=1)[list(rows)]  # put columns in row order
    values = table.to_numpy()
    if not np.issubdtype(values.dtype, np.number):
        raise SpaconInputError(f"{name} has non-numeric entries.")
    return values.astype(np.float64), np.asarray(rows)


def _read_hdf5_or_mat(path: Path, key: str | None):
    import h5py

    if not h5py.is_hdf5(path):
        if path.suffix.lower() != ".mat":
            raise SpaconInputError(f"{path.name!r} is not an HDF5 file.")
        import scipy.io

        contents = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
        shapes = {k: (np.shape(v), sp.issparse(v) or np.issubdtype(np.asarray(v).dtype,
                                                                    np.number))
                  for k, v in contents.items()}
        name, index = _resolve(key, contents)
        if index is not None and name in contents:
            matrix = _take(contents[name], name, index, path)
        else:
            matrix = contents[_pick_dataset(path, name, list(contents), shapes)]
        return matrix, _mat_labels(contents, np.shape(matrix))
    with h5py.File(path, "r") as f:
        datasets: dict[str, h5py.Dataset] = {}
        sparse: dict[str, h5py.Group] = {}  # MATLAB v7.3's sparse matrices: data, ir, jc

        def visit(name, obj):
            if name.startswith("#"):  # (MATLAB v7.3 keeps cell arrays' contents under #refs#)
                return
            if isinstance(obj, h5py.Group) and "MATLAB_sparse" in obj.attrs:
                sparse[name] = obj
            elif isinstance(obj, h5py.Dataset) and name.rsplit("/", 1)[0] not in sparse:
                datasets[name] = obj

        f.visititems(visit)
        # MATLAB stores column-major, so h5py sees the transpose: shapes and indices are
        # MATLAB's own, and the matrix is transposed back to keep sources as rows
        matlab = {n: path.suffix.lower() == ".mat" or "MATLAB_class" in d.attrs
                  for n, d in datasets.items()}
        shapes = {n: (d.shape[::-1] if matlab[n] else d.shape, d.dtype.kind in "biuf"
                      and d.attrs.get("MATLAB_class") not in (b"char", "char"))  # (text)
                  for n, d in datasets.items()}
        shapes.update({n: ((int(g.attrs["MATLAB_sparse"]), len(g["jc"]) - 1), True)
                       for n, g in sparse.items()})
        name, index = _resolve(None if key is None else key.lstrip("/"), shapes)
        if index is None or name not in shapes:
            name = _pick_dataset(path, name, list(shapes), shapes)
        if name in sparse:
            group = sparse[name]
            data = group["data"][()] if "data" in group else np.zeros(0)
            matrix = sp.csc_matrix((data, group["ir"][()], group["jc"][()]),
                                   shape=shapes[name][0])
        else:
            values = datasets[name][()]
            matrix = _take(values.T if matlab[name] else values, name, index, path)
        if any(matlab.values()) or sparse:
            return matrix, _h5_mat_labels(f, datasets, np.shape(matrix))
        return matrix, _h5_labels(datasets, name, np.shape(matrix), key is not None)


def _h5_labels(datasets: dict, name: str, shape: tuple, named: bool) -> np.ndarray | None:
    """A plain HDF5 file's labels, as an ``.npz``'s: its ``labels`` dataset with an entry per
    row (beside the matrix, or at the top), else, where the matrix was not named with a key,
    its one 1-D text dataset with a different entry for each row (e.g. ``acronym``).
    """
    if len(shape) != 2:
        return None
    group = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
    for candidate in dict.fromkeys([f"{group}labels", "labels"]):
        d = datasets.get(candidate)
        if d is not None and d.size == shape[0] and max(d.shape, default=1) == d.size:
            labels = _h5_text(d[()])  # (a row or a column of them, too)
            if len(set(labels)) == len(labels):
                return labels
        if d is not None:  # (e.g. cluster ids, which repeat): the rows match by position
            warnings.warn(
                f"the file's {candidate!r} ({' x '.join(map(str, d.shape))}) is not one "
                f"distinct label per row of the {shape[0]} x {shape[1]} matrix {name!r}, so it "
                "labels nothing: rows are matched by position.", SpaconWarning, stacklevel=4)
    if named:  # the matrix named: other datasets are the user's own business
        return None
    text = [d for d in datasets.values() if d.shape == (shape[0],) and d.dtype.kind in "OSU"]
    labels = _h5_text(text[0][()]) if len(text) == 1 else None
    # names that repeat label nothing (then rows match by position, as without names)
    return labels if labels is not None and len(set(labels)) == len(labels) else None


def _h5_text(values: np.ndarray) -> np.ndarray:
    """Labels read from HDF5 as text (h5py gives variable-length strings as bytes)."""
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values.ravel()])


def _h5_mat_labels(f, datasets: dict, shape: tuple) -> np.ndarray | None:
    """A MATLAB v7.3 file's labels: its cell arrays of text with an entry per row of the
    matrix (each entry a reference to a char array under ``#refs#``), as
    :func:`_mat_labels` reads older files' (one such array, no label repeated).
    """
    if len(shape) != 2:
        return None
    contents = {}
    for name, d in datasets.items():
        if (d.attrs.get("MATLAB_class") in (b"char", "char") and d.ndim == 2
                and d.shape[1] == shape[0] and d.shape[0] > 1):
            # a char matrix, a name per row padded with blanks (char({'VISp', 'MOs'})), seen
            # transposed: one column per name
            contents[name] = np.array(["".join(map(chr, column)) for column in d[()].T])
            continue
        if d.attrs.get("MATLAB_class") not in (b"cell", "cell") or d.size != shape[0]:
            continue
        try:
            entries = [f[ref] for ref in d[()].ravel()]
        except (TypeError, ValueError, KeyError):
            continue
        if all(e.attrs.get("MATLAB_class") in (b"char", "char") for e in entries):
            contents[name] = np.array(  # a column, as scipy.io.loadmat gives older files' cells
                ["".join(map(chr, np.asarray(e[()]).ravel())) for e in entries],
                dtype=object)[:, None]
    return _mat_labels(contents, shape)


def _mat_labels(contents: dict, shape: tuple) -> np.ndarray | None:
    """The file's one text array with a different entry for each row of the matrix (e.g. Oh
    et al.'s ``acronym``, a cell array of strings), as strings; ``None`` when it holds none or
    several.
    """
    if len(shape) != 2:
        return None
    found = []
    for name, value in contents.items():
        value = np.asarray(value)
        # (a char matrix of names, one per row, reads as a 1-D array of strings)
        if value.dtype.kind not in "OUS" or value.size != shape[0] or value.ndim > 2 \
                or (value.ndim == 2 and min(value.shape) > 1):
            continue
        entries = [np.asarray(v).ravel() for v in value.ravel()] if value.dtype == object \
            else [np.asarray([v]) for v in value.ravel()]
        if all(e.size == 1 and e.dtype.kind in "US" for e in entries):
            found.append((name, np.array([str(e[0]).strip() for e in entries])))
    # names that repeat label nothing (then rows match by position, as without names)
    found = [(name, labels) for name, labels in found if len(set(labels)) == len(labels)]
    cells = [(name, labels) for name, labels in found
             if np.asarray(contents[name]).dtype == object]
    if len(found) > 1 and len(cells) == 1:  # a cell array of names beside a char matrix of
        found = cells  # others (acronyms, full names): the cell array, as before char matrices
    if len(found) != 1:
        return None
    logger.info("connectivity labels: the file's %r", found[0][0])
    return found[0][1]
