"""Expression checks and normalisation (total counts + log1p)."""

from __future__ import annotations

import logging
import math
import numbers
import warnings

import numpy as np
import scipy.sparse as sp

from .. import _keys
from .._errors import SpaconInputError, SpaconWarning
from .._utils import check_anndata, expression_matrix, writable

logger = logging.getLogger(__name__)


def check_cells_and_values(adata, layer: str | None = None):
    """Refuse empty data, repeated cell names, and non-numeric, NaN or infinite expression
    (what every reader of expression needs; scaled, negative values pass). Returns the stored
    values (a sparse matrix's non-zeros) and how to name them.
    """
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise SpaconInputError(f"adata is empty ({adata.n_obs} cells x {adata.n_vars} genes).")
    if not adata.obs_names.is_unique:
        dup = adata.obs_names[adata.obs_names.duplicated()].unique()[:3]
        raise SpaconInputError(
            f"cell names are not unique (e.g. {', '.join(map(str, dup))}); call "
            "adata.obs_names_make_unique()."
        )
    x = expression_matrix(adata, layer)
    where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
    values = x.data if sp.issparse(x) else np.asarray(x)
    if not np.issubdtype(values.dtype, np.number):
        raise SpaconInputError(f"{where} must be numeric, got dtype {values.dtype}.")
    bad = ~np.isfinite(values)
    if bad.any():
        # which cells: a few rows of NaN (e.g. parcels without samples) are fixed by name
        if sp.issparse(x):  # (CSC stores its values by column: their rows from CSR's order)
            csr = sp.csr_matrix(x)
            rows = np.unique(np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))[
                ~np.isfinite(csr.data)])
        else:
            rows = np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1))
        names = ", ".join(map(str, adata.obs_names[rows[:5]]))
        raise SpaconInputError(
            f"{where} has {int(bad.sum())} NaN or infinite values in {len(rows)} of "
            f"{adata.n_obs} cells (e.g. {names}); fix them, or remove those cells "
            "(adata[keep].copy()).")
    return values, where


def check_expression(adata, *, layer: str | None = None, counts: bool = False) -> None:
    """Check expression values before training.

    Raises a clear error for NaN/inf or negative expression, duplicate cell names, or (with
    ``counts=True``) non-integer values where raw counts are expected.

    Parameters
    ----------
    adata
        Annotated data; ``X`` is checked.
    layer
        Check ``adata.layers[layer]`` instead of ``X``.
    counts
        Also require integer values (raw counts).

    Returns
    -------
    ``None``; raises :class:`~spacon.SpaconInputError` on the first problem found.
    """
    check_anndata(adata, "spacon.pp.check_expression")
    # scanpy's habit: adata.raw = adata before sc.pp.scale keeps the log-normalised values
    raw = ("; scanpy's adata.raw holds the values before scaling where it was set: "
           "adata.raw.to_adata()" if layer is None and adata.raw is not None else "")
    _check_values(*check_cells_and_values(adata, layer), counts, raw)


def _check_values(values, where: str, counts: bool, raw: str = "") -> None:
    """No negative values, and whole numbers where ``counts`` (see :func:`check_expression`)."""
    if (values < 0).any():
        raise SpaconInputError(
            f"{where} has negative values; spacon expects counts or log-normalised expression "
            "(scaled/centred data are not supported). Where a layer holds the raw counts, use "
            "it: spacon.pp.normalize(adata, layer='counts') (spacon run: --layer counts); "
            f"where one holds log-normalised values, pass layer= (spacon run: --layer NAME "
            f"--no-normalize){raw}."
        )
    if counts and not np.allclose(values, np.round(values)):
        normalised = ("if the data are already normalised, do not normalise them again (skip "
                      "spacon.pp.normalize; spacon run: --no-normalize)")
        fractional = ("if they are counts that are not whole numbers (ambient-corrected, e.g. "
                      "by CellBender or SoupX, or imputed), normalise them anyway: "
                      "spacon.pp.normalize(adata, integer_counts=False); spacon run: "
                      "--fractional-counts")
        high = float(values.max()) if values.size else 0.0
        first, second = ((normalised, fractional) if high <= COUNTS_ABOVE else
                         (fractional, normalised))
        raise SpaconInputError(
            f"{where} does not hold integer counts (largest value {high:.4g}), and normalising "
            f"expects raw counts. {first[0].upper() + first[1:]}; {second}."
        )


def _refuse_normalised(adata, layer: str | None, values) -> None:
    """With ``integer_counts=False`` values are not checked to be counts: refuse those that
    say they are normalised (a record of it, or log scale throughout), which normalising again
    would distort.
    """
    where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
    recorded = layer is None and ("log1p" in adata.uns or _keys.NORMALIZE in adata.uns)
    high = float(values.max()) if values.size else 0.0
    if recorded or high <= COUNTS_ABOVE:
        why = ("adata.uns records that X was log-normalised" if recorded else
               f"its largest value is {high:.3g}, log scale")
        raise SpaconInputError(
            f"{where} looks normalised already ({why}): integer_counts=False is for counts "
            "that are not whole numbers. Do not normalise it again (skip spacon.pp.normalize; "
            "spacon run: --no-normalize), or normalise the raw counts (layer=).")


def warn_zero_genes(adata, layer: str | None = None, for_model: bool = False) -> None:
    """Warn about genes that are zero in every cell (harmless, but they carry nothing).

    ``for_model``: the data are new tissue for a trained model, which needs every one of its
    genes, so the advice is not to remove them.
    """
    x = expression_matrix(adata, layer)
    zero = int((np.asarray((x != 0).sum(axis=0)).ravel() == 0).sum())
    if zero:
        advice = ("keep them: a trained model needs every one of its genes, and reads them "
                  "as not expressed" if for_model else
                  "remove them with scanpy.pp.filter_genes(adata, min_cells=1)")
        warnings.warn(
            f"{zero} of {adata.n_vars} genes are zero in every cell and carry no information; "
            f"{advice}.",
            SpaconWarning,
            stacklevel=3,
        )


SHALLOW_SHARE = 0.01  # cells with fewer counts than this share of the median cell's are named


def warn_shallow_cells(totals: np.ndarray) -> None:
    """Warn about cells with almost no counts (below ``SHALLOW_SHARE`` of the median cell's):
    scaled to the same total, their few counts become extreme values, which domain calling
    can give domains of their own (two empty spots of the olfactory bulb's 262 did).
    """
    median = float(np.median(totals))
    shallow = totals < SHALLOW_SHARE * median
    if shallow.any():
        n, least = int(shallow.sum()), float(totals[shallow].min())
        floor = max(1, math.ceil(SHALLOW_SHARE * median))  # (the filter keeps >= floor)
        warnings.warn(
            f"{n} cell{'s have' if n > 1 else ' has'} fewer than {SHALLOW_SHARE:.0%} of the "
            f"median cell's {median:g} counts (the fewest: {least:g}); normalised, their few "
            "counts become extreme values that can form domains of their own. Filter them "
            f"first, e.g. scanpy.pp.filter_cells(adata, min_counts={floor}).",
            SpaconWarning, stacklevel=3)


def _refuse_other_counts_layer(adata, layer: str | None) -> None:
    """``layers['counts']``, where normalising keeps the counts it read, may hold only those:
    a layer of other values (the user's own) would be lost.
    """
    if _keys.COUNTS not in adata.layers or layer == _keys.COUNTS:
        return
    held, x = adata.layers[_keys.COUNTS], expression_matrix(adata, layer)
    if held.shape != x.shape or not _same_values(held, x):
        if layer is None and _keys.NORMALIZE in adata.uns:  # spacon's own, called twice
            raise SpaconInputError(
                "X is normalised already (spacon.pp.normalize was called on it: uns"
                f"[{_keys.NORMALIZE!r}]; its counts are in layers[{_keys.COUNTS!r}]): do not "
                "normalise it again.")
        if layer is None:
            raise SpaconInputError(
                f"adata.layers[{_keys.COUNTS!r}] holds other values than X, and spacon.pp."
                f"normalize would replace it with X's counts. If X is normalised already, do not "
                f"normalise it again (skip spacon.pp.normalize; spacon run: --no-normalize); if "
                f"that layer holds the raw counts, normalise those: spacon.pp.normalize(adata, "
                f"layer={_keys.COUNTS!r}) (spacon run: --layer {_keys.COUNTS}); else rename "
                "the layer first.")
        raise SpaconInputError(
            f"adata.layers[{_keys.COUNTS!r}] holds other values than layers[{layer!r}], and "
            f"spacon.pp.normalize would replace it with the counts of layers[{layer!r}]: rename "
            f"it first (or, if it holds the raw counts, normalise from it: layer="
            f"{_keys.COUNTS!r}).")


def _same_values(a, b, chunk: int = 8192) -> bool:
    """Whether two matrices of one shape (dense or sparse) hold the same values, compared a
    block of rows at a time (no whole-matrix temporaries).
    """
    for lo in range(0, a.shape[0], chunk):
        x, y = a[lo:lo + chunk], b[lo:lo + chunk]
        if sp.issparse(x) or sp.issparse(y):
            if (sp.csr_matrix(x) != sp.csr_matrix(y)).nnz:
                return False
        elif not np.array_equal(np.asarray(x), np.asarray(y)):
            return False
    return True


def normalize(adata, *, target_sum: float = 1e4, genes=None, layer: str | None = None,
              integer_counts: bool = True, copy: bool = False):
    """Normalise each cell to ``target_sum`` total counts and take ``log1p`` (scanpy's way).

    Parameters
    ----------
    adata
        Annotated data with raw counts in ``X`` (or in ``layers[layer]``).
    target_sum
        Total counts per cell after scaling (a positive number; scanpy's ``None``, the median
        of the totals, is not taken: a fixed number lets new tissue be normalised alike).
    genes
        Each cell's total is taken over these genes only (default: all). How new tissue is
        normalised as a model's training data were when the two hold different genes: a saved
        model records the genes its data were normalised over.
    layer
        Read the raw counts from ``adata.layers[layer]`` instead of ``X`` (e.g. ``"counts"``,
        where ``X`` holds something else); ``X`` receives their log-normalised values, as
        without it.
    integer_counts
        Refuse values that are not whole numbers (the default: they are usually normalised
        already). ``False`` takes counts that are not whole numbers, as ambient-RNA removal
        (CellBender, SoupX) or imputation leave them, unless they look normalised already
        (``uns`` records ``log1p`` or a spacon normalisation, or no value exceeds 20, the
        range of log-scale data); negative values are refused either way. A saved model
        records it, so new tissue is taken alike.
    copy
        Return a copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or a copy if ``copy=True``. ``X`` is replaced by log-normalised values, the
    counts are kept in ``layers['counts']`` and ``uns['spacon_normalize']`` records how
    (``target_sum`` and the ``genes`` totalled; a saved model keeps it, so new tissue is
    normalised the same way).
    """
    check_anndata(adata, "spacon.pp.normalize")
    if (isinstance(target_sum, (bool, np.bool_)) or not isinstance(target_sum, numbers.Real)
            or not (np.isfinite(target_sum) and target_sum > 0)):
        raise SpaconInputError(
            f"target_sum must be a positive number of counts per cell (e.g. 1e4, the default), "
            f"got {target_sum!r}.")
    if adata.isbacked:
        raise SpaconInputError("adata is read with backed= (its X stays in the file, which "
                               "normalising would overwrite); read it into memory first: "
                               "adata = adata.to_memory().")
    if layer is not None and layer not in adata.layers:
        raise SpaconInputError(f"adata.layers has no {layer!r} (it has: "
                               f"{', '.join(map(repr, adata.layers)) or 'no layers'}).")
    adata = writable(adata, copy, "spacon.pp.normalize")
    checked = check_cells_and_values(adata, layer)  # empty, repeated names, NaN: named first
    if not adata.var_names.is_unique:  # a model matches new tissue's genes by name
        dup = adata.var_names[adata.var_names.duplicated()].unique()[:3]
        warnings.warn(
            f"gene names are not unique (e.g. {', '.join(map(str, dup))}): a model trained on "
            "them cannot be matched to new tissue by gene name; call "
            "adata.var_names_make_unique() (and save the file again) first.",
            SpaconWarning, stacklevel=2)
    _refuse_other_counts_layer(adata, layer)  # then where the counts kept there would go
    _check_values(*checked, counts=bool(integer_counts))
    if not integer_counts:
        _refuse_normalised(adata, layer, checked[0])
    warn_zero_genes(adata, layer, for_model=genes is not None)
    counts = expression_matrix(adata, layer)
    x = counts.tocsr() if sp.issparse(counts) else np.array(counts)  # a copy, as a CSR or array
    if sp.issparse(x) and x is counts:
        x = x.copy()
    if np.issubdtype(x.dtype, np.integer) or x.dtype == bool or x.dtype == np.float16:
        # half precision holds totals only up to 65,504: a deep cell's became inf, its row 0
        x = x.astype(np.float32)
    if isinstance(genes, str):  # one gene's name, as scanpy takes a name or a list
        genes = [genes]
    keep = None if genes is None else np.flatnonzero(
        adata.var_names.isin(list(np.asarray(genes, dtype=str).ravel())))
    if keep is not None and not len(keep):
        raise SpaconInputError("genes= names none of the data's genes: no counts to total.")
    totalled = adata.var_names if keep is None else adata.var_names[keep]
    totals = _row_totals(x if keep is None else x[:, keep])
    if (totals == 0).any():
        raise SpaconInputError(
            f"{int((totals == 0).sum())} cells have no counts at all; filter them first "
            "(e.g. scanpy.pp.filter_cells(adata, min_counts=1))."
        )
    warn_shallow_cells(totals)
    # scanpy's normalize_total and log1p, to the last bit: each value divided by its cell's
    # total / target_sum (in the data's precision), then log1p
    scale = totals / x.dtype.type(target_sum)
    # a total so small that total / target_sum underflows to 0 (denormal counts) would give
    # inf: those cells are divided in double precision instead
    tiny = scale == 0
    scale[tiny] = 1
    if sp.issparse(x):
        x.data /= np.repeat(scale, np.diff(x.indptr))
        if tiny.any():
            at = np.repeat(tiny, np.diff(x.indptr))
            rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))[at]
            x.data[at] = (x.data[at].astype(np.float64) * target_sum
                          / _row_totals_f64(x)[rows]).astype(x.dtype)
        np.log1p(x.data, out=x.data)
    else:
        x /= scale[:, None]
        if tiny.any():
            x[tiny] = (x[tiny].astype(np.float64) * target_sum
                       / _row_totals_f64(x)[tiny][:, None]).astype(x.dtype)
        np.log1p(x, out=x)
    adata.layers[_keys.COUNTS] = counts.copy()
    adata.X = x
    adata.uns["log1p"] = {"base": None}  # as scanpy records it
    adata.uns[_keys.NORMALIZE] = {"target_sum": float(target_sum), "log1p": True,
                                  "genes": np.asarray(totalled, dtype=str),
                                  "integer_counts": bool(integer_counts)}
    logger.info("normalize: %d cells to %g counts each, then log1p (the counts kept in "
                "layers[%r])", adata.n_obs, target_sum, _keys.COUNTS)
    return adata if copy else None


def _row_totals_f64(x) -> np.ndarray:
    """Each cell's total in double precision (read for the tiny-total cells, whose values are
    not yet divided).
    """
    if sp.issparse(x):
        at = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
        return np.bincount(at, weights=x.data.astype(np.float64), minlength=x.shape[0])
    return x.sum(axis=1, dtype=np.float64)


def _row_totals(x) -> np.ndarray:
    """Each cell's total counts, summed in double precision and stored in the data's (exact
    for counts, whatever the order of the sum).
    """
    if sp.issparse(x):
        rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
        totals = np.bincount(rows, weights=x.data, minlength=x.shape[0])
    else:
        totals = x.sum(axis=1, dtype=np.float64)
    return totals.astype(x.dtype)


COUNTS_WARNING = "looks like raw counts"  # the start of every raw-count warning's message
UNLOGGED_WARNING = "beyond any log-normalised value"  # and of every unlogged one's
LOG_SCALE_MAX = 50.0  # log1p of normalised counts stays below this (log1p(1e9) = 20.7)
COUNTS_ABOVE = 20  # counts reach beyond this somewhere; log1p of 1e4-normalised data stays ~10


def warn_if_unlogged(adata, layer: str | None = None, stacklevel: int = 3) -> bool:
    """Warn when non-negative expression reaches beyond any log scale (normalised, never
    logged); returns whether it warned. Negative values (scaled data) are no such sign.
    """
    sample = _sample(adata, layer)
    sample = sample[np.isfinite(sample)]  # NaN is refused where values are checked
    if not sample.size or sample.min() < 0 or sample.max() <= LOG_SCALE_MAX:
        return False
    where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
    warnings.warn(f"{where} reaches {sample.max():.4g}, {UNLOGGED_WARNING} (normalised but "
                  "not log-transformed?): spacon expects log-normalised expression; apply "
                  "log1p first (scanpy: sc.pp.log1p).", SpaconWarning, stacklevel=stacklevel)
    return True


def warn_if_counts(adata, layer: str | None, consequence: str, stacklevel: int = 3,
                   advice: str | None = None) -> None:
    """Warn when ``X`` (or ``layers[layer]``) looks like raw counts.

    ``X`` is trusted after :func:`spacon.pp.normalize` (``uns['spacon_normalize']``); a layer is
    always checked. ``consequence`` says what counts would do to the result, ``advice`` what
    to do. The layer must exist.
    """
    if layer is None and _keys.NORMALIZE in adata.uns:
        return
    where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
    if not looks_like_counts(adata, layer):
        warn_if_unlogged(adata, layer, stacklevel + 1)
        return
    if advice is None:
        advice = ("call spacon.pp.normalize(adata) first (it keeps the counts in "
                  "layers['counts'])" if layer is None else
                  "leave layer= unset to use the log-normalised X, or log-normalise the layer")
    warnings.warn(f"{where} {COUNTS_WARNING}; {consequence}: {advice}.", SpaconWarning,
                  stacklevel=stacklevel)


def looks_like_counts(adata, layer: str | None = None, integer: bool = True) -> bool:
    """Whether ``X`` (or ``layers[layer]``) holds raw counts: non-negative integers (any
    values with ``integer=False``: ambient-corrected counts) reaching beyond log scale.
    """
    sample = _sample(adata, layer)
    return bool(sample.size and (not integer or np.allclose(sample, np.round(sample)))
                and sample.max() > COUNTS_ABOVE)


def holds_integers(adata, layer: str | None = None) -> bool:
    """Whether ``X`` (or ``layers[layer]``) holds whole numbers only (counts of any depth)."""
    sample = _sample(adata, layer)
    return bool(sample.size and np.allclose(sample, np.round(sample)))


def _sample(adata, layer: str | None) -> np.ndarray:
    """Up to about 100,000 stored values of ``X`` (or ``layers[layer]``), evenly spaced."""
    x = expression_matrix(adata, layer)
    values = x.data if sp.issparse(x) else np.asarray(x).ravel()
    return values[:: max(1, values.size // 100_000)]
