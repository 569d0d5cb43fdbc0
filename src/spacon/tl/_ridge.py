"""Multi-output ridge regression whose penalty is chosen by cross-validation inside the
training cells only.

Targets may be sparse (connectivity rows) and many: fits keep ``p x targets`` numbers, and
predictions are made for a block of rows at a time.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# the penalty grid, relative to the mean eigenvalue of the centred training features
RELATIVE_ALPHAS = np.logspace(-4, 4, 17)


def ridge_fit(x: np.ndarray, y, fit_rows: np.ndarray) -> dict:
    """Everything ridge needs to predict at any penalty, fit on ``fit_rows`` (with intercept).

    One eigendecomposition serves every penalty: of the ``p x p`` Gram matrix when there are
    more fitting rows than features, of the ``n x n`` kernel matrix otherwise.

    Parameters
    ----------
    x
        Features of all rows (``n_rows x p``); only ``fit_rows`` are read.
    y
        Targets of ``fit_rows``, in that order (dense or sparse, ``len(fit_rows) x targets``).
    fit_rows
        Row indices into ``x``.

    Returns
    -------
    The fit, for :func:`ridge_predict`.
    """
    xf = x[fit_rows]
    centre = xf.mean(axis=0)
    xf = xf - centre
    y_mean = np.asarray(y.mean(axis=0), dtype=np.float64).ravel()
    if xf.shape[0] >= xf.shape[1]:
        # xf is centred, so xf' (y - mean) = xf' y: sparse targets are never centred densely
        xty = np.asarray((y.T @ xf).T) if sp.issparse(y) else xf.T @ y
        evals, vecs = np.linalg.eigh(xf.T @ xf)
        coef, dual = vecs.T @ xty, None  # p x targets, in the eigenbasis
    else:
        evals, vecs = np.linalg.eigh(xf @ xf.T)
        yc = (y.toarray() if sp.issparse(y) else y) - y_mean  # n < p rows: small
        coef, dual = vecs.T @ yc, xf  # the dual form, W = X'(K + a I)^-1 Y
    return {"centre": centre, "y_mean": y_mean, "evals": np.clip(evals, 0, None),
            "vecs": vecs, "coef": coef, "dual": dual}


def ridge_predict(fit: dict, x: np.ndarray, rows: np.ndarray, alpha: float) -> np.ndarray:
    """Predicted targets of ``rows`` of ``x`` (dense ``len(rows) x targets``) at ``alpha``."""
    xp = x[rows] - fit["centre"]
    proj = (xp if fit["dual"] is None else xp @ fit["dual"].T) @ fit["vecs"]
    return proj @ (fit["coef"] / (fit["evals"] + alpha)[:, None]) + fit["y_mean"]


def ridge_weights(fit: dict, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """The fit at ``alpha`` as explicit ``(weights, intercept)``: ``x @ weights + intercept``
    is :func:`ridge_predict`'s prediction (``weights`` is ``p x targets``).
    """
    basis = fit["vecs"] if fit["dual"] is None else fit["dual"].T @ fit["vecs"]
    weights = basis @ (fit["coef"] / (fit["evals"] + alpha)[:, None])
    return weights, fit["y_mean"] - fit["centre"] @ weights


def row_blocks(n_rows: int, n_targets: int, max_values: int = 2**24):
    """Consecutive blocks of row positions whose dense targets hold at most ``max_values``."""
    step = max(1, max_values // max(1, n_targets))
    return [np.arange(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]


def dense_rows(y, positions: np.ndarray) -> np.ndarray:
    """Rows ``positions`` of ``y`` as a dense float array."""
    block = y[positions]
    return np.asarray(block.toarray() if sp.issparse(block) else block, dtype=np.float64)


def choose_alpha(x: np.ndarray, y, fit_rows: np.ndarray, groups: np.ndarray,
                 inner: dict | None = None) -> float:
    """The penalty with the smallest squared error summed over inner folds.

    Each value of ``groups`` (one per fitting row) is held out in turn and predicted from
    the other fitting rows; only ``fit_rows`` and their targets ``y`` are read.

    Parameters
    ----------
    x
        Features of all rows.
    y
        Targets of ``fit_rows``, in that order (dense or sparse).
    fit_rows
        Row indices into ``x``.
    groups
        Inner fold of each fitting row (at least two distinct values).
    inner
        Features of all rows to use while group ``g`` is held out (``inner[g]``), where they
        differ from ``x`` (learned features trained without that group: a nested choice);
        the grid's scale stays ``x``'s.

    Returns
    -------
    The chosen penalty, from a log grid scaled to the features.
    """
    fit_rows = np.asarray(fit_rows)
    xf = x[fit_rows] - x[fit_rows].mean(axis=0)
    # the mean non-zero eigenvalue of the centred Gram matrix sets the grid's scale
    scale = float((xf**2).sum()) / max(1, min(xf.shape))
    alphas = (scale if scale > 0 else 1.0) * RELATIVE_ALPHAS
    error = np.zeros(len(alphas))
    for g in np.unique(groups):
        val = np.flatnonzero(groups == g)
        rest = np.flatnonzero(groups != g)
        xg = x if inner is None else inner[g]
        fit = ridge_fit(xg, y[rest], fit_rows[rest])
        for block in row_blocks(len(val), y.shape[1]):
            truth = dense_rows(y, val[block])
            for i, alpha in enumerate(alphas):
                pred = ridge_predict(fit, xg, fit_rows[val[block]], alpha)
                error[i] += float(((pred - truth) ** 2).sum())
    return float(alphas[int(np.argmin(error))])
