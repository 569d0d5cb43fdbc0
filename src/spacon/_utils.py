"""Small helpers shared by the whole package."""

from __future__ import annotations

import contextlib
import numbers
import os
import re
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from ._errors import SpaconInputError, SpaconWarning


def check_option(name: str, value: Any, valid: Iterable[Any]) -> None:
    """Raise a clear error when ``value`` is not one of ``valid``."""
    valid = list(valid)
    if value not in valid:
        raise SpaconInputError(
            f"{name}={value!r} is not a valid choice; use one of {', '.join(map(repr, valid))}."
        )


def check_anndata(adata, what: str) -> None:
    """Refuse what is not an :class:`anndata.AnnData`, saying how to make one."""
    from anndata import AnnData

    if isinstance(adata, AnnData):
        return
    shape = getattr(adata, "shape", None)
    got = type(adata).__name__ + (f" of shape {tuple(shape)}" if shape is not None else "")
    raise SpaconInputError(
        f"{what} takes an AnnData (cells x genes), got {got}. Make one with "
        "anndata.AnnData(X=expression, obs=cell_table) and put the coordinates in "
        ".obsm['spatial'], or read one with spacon.io.read_h5ad / scanpy.read_h5ad.")


def check_numbers(**values) -> None:
    """Refuse what is not a real number (a string, a boolean, a list) among ``values``, by
    name; ``None`` passes. The range is the caller's to check.
    """
    for name, value in values.items():
        if value is not None and (isinstance(value, (bool, np.bool_))
                                  or not isinstance(value, numbers.Real)):
            raise SpaconInputError(f"{name} must be a number, got {value!r}.")


def whole_number(name: str, value, minimum: int = 1) -> int:
    """``value`` as an ``int``, refused by name unless it is a whole number >= ``minimum``
    (``3.0`` is taken; ``None``, ``True``, ``2.5``, ``nan`` and strings are not).
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise SpaconInputError(f"{name} must be a number, got {value!r}.")
    if not np.isfinite(value) or int(value) != value or value < minimum:
        raise SpaconInputError(f"{name} must be a whole number >= {minimum}, got {value!r}.")
    return int(value)


def check_seed(seed) -> None:
    """A seed is ``None`` or a whole number from 0 to 2**32 - 1 (NumPy's generators take no
    other; 0.5 and 0.9 were both seed 0, -1 failed deep in NumPy).
    """
    if seed is None:
        return
    if (isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral)
            or not 0 <= seed < 2**32):
        raise SpaconInputError(f"seed must be a whole number from 0 to 2**32 - 1 (or None), "
                               f"got {seed!r}.")


def check_obsm(adata, key: str) -> None:
    """Refuse a missing ``obsm[key]``, naming the keys there are (and ``tl.fuse`` for the
    fused embeddings it writes).
    """
    if key in adata.obsm:
        return
    held = ", ".join(repr(k) for k in adata.obsm) or "nothing"
    hint = ("; run spacon.tl.fuse first (key_added=... for other keys)"
            if key.startswith("X_spacon") else "")
    raise SpaconInputError(f"adata.obsm has no {key!r} (it holds {held}){hint}.")


def jsonable(value):
    """``json.dumps``'s ``default=``: NumPy scalars and arrays (a parameter computed with NumPy,
    a list read back from an ``.h5ad``) as Python numbers and lists, paths as text; anything else
    is refused, before a file is written.
    """
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} {value!r} cannot be written as JSON")


def expression_matrix(adata, layer: str | None = None):
    """``adata.X`` or ``adata.layers[layer]``; a sparse matrix left on disk (an ``.h5ad`` read
    with ``backed='r'``) is refused with what to do, instead of reading as objects.
    """
    import scipy.sparse as sp

    x = adata.X if layer is None else adata.layers[layer]
    if not (sp.issparse(x) or isinstance(x, np.ndarray)) and type(x).__module__.startswith(
            "anndata"):
        where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
        raise SpaconInputError(f"{where} is a sparse matrix left on disk (the file was read with "
                               "backed='r'); read it into memory first: adata = adata.to_memory().")
    return x


WHOLE_NUMBER = r"^(-?\d+)\.0+$"  # '1.0' is label '1'


def label_text(value) -> str:
    """A label as text, a whole number written as a float as an integer (``1.0`` and ``'1.0'``
    -> ``'1'``), so that labels match whichever way they were written.
    """
    import re

    return re.sub(WHOLE_NUMBER, r"\1", str(value))


def label_strings(values) -> np.ndarray:
    """Labels (units, sections, cells) as text, as :func:`label_text` writes them: pandas makes
    an integer column float once it held a missing value, and ``'1.0'`` would then match no
    unit ``1``.
    """
    import pandas as pd

    codes, uniques = pd.factorize(pd.Series(np.asarray(values, dtype=object)
                                            if not isinstance(values, pd.Series) else values),
                                  use_na_sentinel=False)
    text = pd.Index(uniques).astype(str).str.replace(WHOLE_NUMBER, r"\1", regex=True)
    return np.asarray(text, dtype=str)[codes]


def no_obs_column(adata, key, what: str = "", kind: str = "") -> str:
    """The message for an ``obs`` column that is missing (``kind``: e.g. ``"unit column "``):
    the columns there are, and the closest name when one is near (a typo or another case).
    """
    import difflib

    columns = [str(c) for c in adata.obs.columns]
    close = difflib.get_close_matches(str(key), columns, n=1) or [
        c for c in columns if c.lower() == str(key).lower()][:1]
    shown = ", ".join(columns[:30]) + (f", ... ({len(columns)} in all)" if len(columns) > 30
                                       else "")
    return (f"adata.obs has no {kind}{key!r}{' with ' + what if what else ''} (it has: "
            f"{shown or 'no columns'}){f'; did you mean {close[0]!r}?' if close else '.'}")


def labels_column(adata, key: str, what: str = "domains"):
    """``obs[key]``, refused when missing or when it holds measurements (floats that are not
    whole numbers), not labels. Whole-number floats (integer labels that pandas made float
    once a cell had none) come back as categories written as integers, in numeric order:
    ``1.0`` is domain ``'1'``, as it was before the NaN, for every caller alike.
    """
    import pandas as pd

    if key not in adata.obs:
        raise SpaconInputError(no_obs_column(adata, key, what))
    column = adata.obs[key]
    numeric = pd.api.types.is_float_dtype(column) or (
        pd.api.types.is_integer_dtype(column) and not pd.api.types.is_bool_dtype(column))
    if not numeric:
        return column
    known = column.notna().to_numpy()
    values = column[known].to_numpy(dtype=np.float64) + 0.0  # -0.0 is 0
    if not np.array_equal(values, np.round(values)):
        raise SpaconInputError(
            f"adata.obs[{key!r}] holds numbers ({column.nunique()} distinct), not {what}: "
            "name a categorical column.")
    if pd.api.types.is_integer_dtype(column):  # exact, whatever their size
        values = column[known].to_numpy(dtype=np.int64)
    numbers, codes = np.unique(values, return_inverse=True)
    all_codes = np.full(len(column), -1, dtype=np.int64)
    all_codes[known] = codes
    names = [str(int(v)) if abs(v) < 2**63 else label_text(v) for v in numbers]
    return pd.Series(pd.Categorical.from_codes(all_codes, names), index=column.index,
                     name=column.name)


def writable(adata, copy: bool, what: str, stacklevel: int = 3):
    """``adata`` to write results to: a copy with ``copy``, else ``adata`` itself; a view
    (``adata[mask]``) becomes its own AnnData first, with a warning that the AnnData it was
    taken from will not see the results (what scanpy's functions do, but said at the user's
    line: a view passed inline, ``f(adata[mask])``, loses them).
    """
    check_anndata(adata, what)
    if copy:
        return adata.copy()
    if getattr(adata, "is_view", False):
        import warnings

        warnings.warn(
            f"adata is a view (adata[...]): {what} writes its results to the view's own copy, "
            "which the AnnData it was taken from does not see. Take a copy and keep it in a "
            "variable: sub = adata[...].copy().", SpaconWarning, stacklevel=stacklevel)
        adata._init_as_actual(adata.copy())
    return adata


def resolve_device(device: str = "auto"):
    """Turn ``"auto"`` into ``"cuda"`` when a GPU is present, else ``"cpu"``."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not re.fullmatch(r"cpu|cuda(:\d+)?", str(device).strip().lower()):
        raise SpaconInputError(f"device={device!r} is not a device spacon runs on; use 'auto', "
                               "'cpu' or 'cuda' (or 'cuda:N').")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise SpaconInputError(f"device={device!r} was asked for but no CUDA GPU is available.")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise SpaconInputError(f"device={device!r} is not a device; use 'auto', 'cpu' or "
                               "'cuda' (or 'cuda:N').") from None


# obs column names that hold coordinates in common layouts (MERFISH/Xenium centroids, Visium's
# array and pixel positions, plain x/y/z), each set in x, y(, z) order
_COORDINATE_NAMES = (
    ("x", "y", "z"), ("x_centroid", "y_centroid", "z_centroid"), ("center_x", "center_y"),
    ("centroid_x", "centroid_y", "centroid_z"), ("x_section", "y_section", "z_section"),
    ("x_reconstructed", "y_reconstructed", "z_reconstructed"),
    # Visium: pixel positions before the grid's indices, whose rows and columns are spaced
    # differently (a hexagonal grid)
    ("pxl_col_in_fullres", "pxl_row_in_fullres"), ("imagecol", "imagerow"),
    ("array_col", "array_row"),
    ("spatial_x", "spatial_y", "spatial_z"), ("coord_x", "coord_y", "coord_z"),
)


def coordinate_columns(obs) -> list[str]:
    """The numeric obs columns that look like x, y(, z) coordinates (first matching layout;
    case-insensitive names), or ``[]``.
    """
    numeric = {str(c).lower(): str(c) for c in obs.columns
               if np.issubdtype(np.asarray(obs[c]).dtype, np.number)}
    for names in _COORDINATE_NAMES:
        found = []
        for name in names:  # a prefix: x, y or x, y, z
            if name not in numeric:
                break
            found.append(numeric[name])
        if len(found) >= 2:
            return found
    return []


COORDINATE_WORDS = ("spatial", "coord", "xy", "position", "centroid", "location")


def spatial_coordinates(adata, spatial_key: str = "spatial") -> np.ndarray:
    """Return ``adata.obsm[spatial_key]`` as a checked float64 array of 2 or 3 columns."""
    if spatial_key not in adata.obsm:
        in_obs = coordinate_columns(adata.obs)
        if in_obs and not len(adata.obsm.keys()):
            columns = ", ".join(repr(c) for c in in_obs)
            raise SpaconInputError(
                f"adata.obsm has no {spatial_key!r} coordinates; they look to be in obs "
                f"columns {columns}. Copy them into obsm first: adata.obsm[{spatial_key!r}] = "
                f"adata.obs[[{columns}]].to_numpy(), then save the .h5ad again."
            )
        columns = ", ".join(repr(c) for c in in_obs)
        also = (f"; or, as obs columns {columns} look like coordinates, copy them: "
                f"adata.obsm[{spatial_key!r}] = adata.obs[[{columns}]].to_numpy()"
                if in_obs else "")
        # keys of 2 or 3 columns named as coordinates are (not X_umap, a layout of 2 columns)
        held = [k for k in adata.obsm.keys() if len(getattr(adata.obsm[k], "shape", ())) == 2
                and adata.obsm[k].shape[1] in (2, 3)
                and any(w in k.lower() for w in COORDINATE_WORDS)]
        if held:
            also = (f", e.g. spatial_key={held[0]!r} (obsm[{held[0]!r}] holds "
                    f"{adata.obsm[held[0]].shape[1]} columns){also}")
        raise SpaconInputError(
            f"adata.obsm has no {spatial_key!r} coordinates (it has: "
            f"{', '.join(adata.obsm.keys()) or 'nothing'}); pass spatial_key= the key holding "
            f"x/y(/z) coordinates{also}."
        )
    raw = adata.obsm[spatial_key]
    try:
        coords = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as err:
        if hasattr(raw, "isna") and raw.isna().to_numpy().any():  # pandas' <NA> in a column
            bad = int(raw.isna().to_numpy().any(axis=1).sum())
            cells = f"{bad} cell" + ("s" if bad != 1 else "")
            raise SpaconInputError(f"adata.obsm[{spatial_key!r}] has missing coordinates for "
                                   f"{cells}; drop or fix them.") from err
        columns = [str(c) for c in getattr(raw, "columns", [])
                   if not np.issubdtype(np.asarray(raw[c]).dtype, np.number)]
        which = f" (not numbers: {', '.join(columns)})" if columns else ""
        raise SpaconInputError(
            f"adata.obsm[{spatial_key!r}] must hold numeric x, y(, z) coordinates{which}; keep "
            f"only those columns, e.g. adata.obsm[{spatial_key!r}] = "
            f"adata.obsm[{spatial_key!r}][['x', 'y']].to_numpy()."
        ) from err
    if coords.ndim != 2 or coords.shape[1] not in (2, 3):
        raise SpaconInputError(
            f"adata.obsm[{spatial_key!r}] has shape {coords.shape}; spatial coordinates need 2 "
            "(x, y) or 3 (x, y, z) columns."
        )
    bad = ~np.isfinite(coords).all(axis=1)
    if bad.any():
        raise SpaconInputError(
            f"adata.obsm[{spatial_key!r}] has NaN or infinite coordinates for {int(bad.sum())} "
            f"cells (first: {adata.obs_names[np.flatnonzero(bad)[0]]!r}); drop or fix them."
        )
    return coords


def available_memory_bytes() -> int | None:
    """Memory the system can give this process now (Linux ``MemAvailable``), or ``None``."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


HIGHLY_VARIABLE_WARNING = "marks only some genes"  # the start of its warning's message


def highly_variable_marked(adata) -> int | None:
    """How many genes a boolean ``var['highly_variable']`` marks, when it marks some but not
    all (missing values unmarked); ``None`` otherwise, or for a column that is not boolean.
    """
    import pandas as pd

    column = adata.var["highly_variable"] if "highly_variable" in adata.var else None
    if column is None or not pd.api.types.is_bool_dtype(column.dtype):
        return None
    marked = int(column.fillna(False).astype(bool).sum())
    return marked if 0 < marked < len(column) else None


def warn_unused_highly_variable(adata, what: str, stacklevel: int = 3) -> None:
    """Say that every gene is used where ``var['highly_variable']`` marks only some: scanpy's
    ``pp.pca`` would take only those; spacon's embeddings (the model's and the smoothing
    baseline's) take ``X`` as it is.
    """
    marked = highly_variable_marked(adata)
    if marked is None:
        return
    import warnings

    from ._errors import SpaconWarning

    warnings.warn(
        f"var['highly_variable'] {HIGHLY_VARIABLE_WARNING} ({marked:,} of {adata.n_vars:,}), "
        f"but {what} every gene in X (unlike scanpy.pp.pca); to use only those, pass "
        "adata[:, adata.var['highly_variable']].copy().", SpaconWarning, stacklevel=stacklevel)


def check_memory(need_bytes: float, what: str, fix: str) -> None:
    """Stop with a clear message, before starting, if ``what`` would not fit in free memory."""
    from ._errors import SpaconInputError

    free = available_memory_bytes()
    if free is not None and need_bytes > free:
        raise SpaconInputError(
            f"{what} needs about {need_bytes / 1024**3:.1f} GB but only "
            f"{free / 1024**3:.1f} GB are available; {fix}"
        )


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup CPU quota."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cpus = min(cpus, max(1, int(quota + 0.5)))
    return max(1, cpus or 1)


def _cgroup_cpu_quota() -> float | None:
    """CPUs allowed by the cgroup (v2 ``cpu.max`` or v1 ``cfs_quota_us``), ``None`` if unlimited."""
    from pathlib import Path

    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def busy_cpus(cpus: Iterable[int], seconds: float = 0.2) -> float | None:
    """How many of ``cpus`` other processes keep busy, measured over ``seconds`` from
    ``/proc/stat`` (``None`` where it cannot be read).
    """
    import time

    def sample():
        times = {}
        with open("/proc/stat") as f:
            for line in f:
                name, *values = line.split()
                if name.startswith("cpu") and name[3:].isdigit():
                    values = [int(v) for v in values[:8]]
                    times[int(name[3:])] = (sum(values), values[3] + values[4])  # idle+iowait
        return times

    try:
        before = sample()
        time.sleep(seconds)
        after = sample()
    except (OSError, ValueError):
        return None
    busy = 0.0
    for cpu in cpus:
        if cpu in before and cpu in after:
            total = after[cpu][0] - before[cpu][0]
            idle = after[cpu][1] - before[cpu][1]
            busy += 0.0 if total <= 0 else 1.0 - idle / total
    return busy


def choose_threads(threads: int | None = None) -> int:
    """Threads for torch and BLAS: ``threads``, else ``OMP_NUM_THREADS``, else the CPUs this
    process may use that other processes do not keep busy now.

    Torch's threads wait for each other at every parallel step: one thread sharing its core
    with a busy process makes all of them wait (a 2-thread run on 2 cores with one busy
    process was ~18x slower than with 1 thread), so busy cores are left out.
    """
    if threads is not None:
        if int(threads) < 1:
            raise SpaconInputError(f"threads must be >= 1, got {threads}.")
        return int(threads)
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    cpus = available_cpus()
    if cpus == 1:
        return 1
    mask = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(cpus)
    busy = busy_cpus(mask)
    return cpus if busy is None else max(1, min(cpus, round(len(mask) - busy)))


# torch's CPU float functions that Intel MKL's vector maths library (VML) computes (torch
# 2.13; checked with breakpoints on MKL's entry points: expm1, log1p, sinh, cosh, sigmoid,
# rsqrt, pow and elu do not reach it)
VECTOR_MATH = ("exp", "log", "log2", "log10", "sqrt", "tanh", "erf", "erfc", "erfinv", "sin",
               "cos", "tan", "asin", "acos", "atan", "trunc")
_vector_math_resolved = False


def resolve_vector_math() -> None:
    """Call each of MKL's vector functions once, on this thread, before torch's worker
    threads do (once per process).

    oneMKL 2024.2, which torch's CPU wheels carry, chooses a function's kernel on its first
    call; first calls made at once from several threads can run another, low-accuracy kernel
    on one thread's share (pytorch/pytorch#188792). Here about one training process in a
    hundred, under load, computed another ``exp`` of the same inputs in its first attention
    layer, and its whole result differed in the last digits. A one-element call per function
    and precision settles the choice first (``benchmarks/bench_vector_math.py``).
    """
    global _vector_math_resolved
    if _vector_math_resolved:
        return
    import torch

    for dtype in (torch.float32, torch.float64):
        x = torch.full((1,), 0.5, dtype=dtype)
        for name in VECTOR_MATH:
            getattr(torch, name)(x)
    _vector_math_resolved = True


@contextlib.contextmanager
def cpu_threads(threads: int) -> Iterator[int]:
    """Run torch and BLAS with ``threads`` threads inside (restored afterwards); MKL's vector
    functions are resolved first (:func:`resolve_vector_math`).
    """
    import torch
    from threadpoolctl import threadpool_limits

    resolve_vector_math()
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(threads):
            yield threads
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def deterministic_algorithms(device) -> Iterator[None]:
    """Use torch's deterministic kernels on the CPU while inside (restored afterwards).

    With two or more threads, the backward of a gather (``index_put_`` with accumulation)
    otherwise sums in an order that differs between processes; the deterministic kernel made
    no measurable difference to training speed here.

    Deterministic mode also fills every new tensor with NaN before use (a debugging aid for
    kernels that read memory they never wrote; none of spacon's does, so results are the same
    to the bit). Those fills took 30 ms of a demo step (855 calls; ``python
    benchmarks/bench_step_ops.py``), so they are off while inside, and restored afterwards.
    """
    import torch

    if str(device) != "cpu":
        yield
        return
    before = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    get_fill = getattr(torch._C, "_get_deterministic_fill_uninitialized_memory", None)
    set_fill = getattr(torch._C, "_set_deterministic_fill_uninitialized_memory", None)
    fill = get_fill() if get_fill is not None and set_fill is not None else None
    _use_deterministic_algorithms(True)
    if fill is not None:
        set_fill(False)
    try:
        yield
    finally:
        _use_deterministic_algorithms(before, warn_only=warn_only)
        if fill is not None:
            set_fill(fill)


def _use_deterministic_algorithms(mode: bool, warn_only: bool = False) -> None:
    """``torch.use_deterministic_algorithms`` without importing torch's compiler.

    The public function also sets the compiler's flag, and importing the compiler's
    configuration (``torch._inductor``, ``torch._dynamo`` and SymPy) took 1.5-2.2 s of every
    training process here, and 8.6 s where packages have no compiled bytecode. spacon compiles
    nothing, so only the kernels' flag is set, unless the compiler is loaded already (then the
    public function costs nothing and keeps both in step).
    """
    import sys

    import torch

    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None or "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    else:
        setter(mode, warn_only=warn_only)


@contextlib.contextmanager
def flush_denormals() -> Iterator[None]:
    """Treat denormal floats as zero on the CPU while inside (off again afterwards).

    Late in training many gradients and Adam moments are denormal, and arithmetic on them is
    many times slower; flushing them cut the CPU time of 500 full-batch steps on a 4,000-spot
    slice from 80 s to 61 s (``benchmarks/bench_full_batch_speed.py``).
    """
    import torch

    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
