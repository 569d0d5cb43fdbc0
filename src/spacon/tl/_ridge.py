"""Multi-output ridge regression whose penalty is chosen by cross-validation inside the
training cells only.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

# the penalty grid, relative to the mean eigenvalue of the centred training features
RELATIVE_ALPHAS = np.logspace(-4, 4, 17)


def ridge_path(x: np.ndarray, y: np.ndarray, fit_rows: np.ndarray, predict_rows: np.ndarray,
               alphas) -> Iterator[np.ndarray]:
    """Ridge predictions (with intercept) for ``predict_rows`` at each penalty in ``alphas``.

    One eigendecomposition serves every penalty: of the ``p x p`` Gram matrix when there are
    more fitting rows than features, of the ``n x n`` kernel matrix otherwise, so memory stays
    ``min(n, p)^2`` plus the targets.

    Parameters
    ----------
    x
        Features of all rows (``n_rows x p``); only ``fit_rows`` and ``predict_rows`` are read.
    y
        Targets of ``fit_rows``, in that order (``len(fit_rows) x n_targets``).
    fit_rows, predict_rows
        Row indices into ``x``.
    alphas
        Penalties (>= 0).

    Yields
    ------
    The predicted targets of ``predict_rows`` (``len(predict_rows) x n_targets``), per alpha.
    """
    xf = x[fit_rows]
    centre = xf.mean(axis=0)
    xf = xf - centre
    xp = x[predict_rows] - centre
    y_mean = y.mean(axis=0)
    yc = y - y_mean
    if xf.shape[0] >= xf.shape[1]:
        evals, vecs = np.linalg.eigh(xf.T @ xf)
        coef = vecs.T @ (xf.T @ yc)  # p x targets, in the eigenbasis
        proj = xp @ vecs
    else:
        evals, vecs = np.linalg.eigh(xf @ xf.T)
        coef = vecs.T @ yc  # n x targets: the dual form, W = X'(K + a I)^-1 Y
        proj = (xp @ xf.T) @ vecs
    evals = np.clip(evals, 0, None)
    for alpha in alphas:
        yield proj @ (coef / (evals + alpha)[:, None]) + y_mean


def ridge_cv_predict(x: np.ndarray, y: np.ndarray, fit_rows: np.ndarray,
                     predict_rows: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, float]:
    """Predict ``predict_rows`` by ridge fit on ``fit_rows``, the penalty chosen by grouped CV.

    The penalty minimises the squared error summed over inner folds: each value of ``groups``
    (one per fitting row) is held out in turn and predicted from the other fitting rows. Only
    ``fit_rows`` enter the choice; ``predict_rows`` are predicted once, at the chosen penalty.

    Parameters
    ----------
    x
        Features of all rows.
    y
        Targets of ``fit_rows``, in that order.
    fit_rows, predict_rows
        Row indices into ``x``.
    groups
        Inner fold of each fitting row (at least two distinct values).

    Returns
    -------
    ``(prediction, alpha)``: predicted targets of ``predict_rows`` and the chosen penalty.
    """
    fit_rows = np.asarray(fit_rows)
    xf = x[fit_rows] - x[fit_rows].mean(axis=0)
    # mean non-zero eigenvalue of the centred Gram matrix sets the grid's scale
    scale = float((xf**2).sum()) / max(1, min(xf.shape))
    alphas = (scale if scale > 0 else 1.0) * RELATIVE_ALPHAS
    error = np.zeros(len(alphas))
    for g in np.unique(groups):
        inner_val = groups == g
        path = ridge_path(x, y[~inner_val], fit_rows[~inner_val], fit_rows[inner_val], alphas)
        for i, pred in enumerate(path):
            error[i] += float(((pred - y[inner_val]) ** 2).sum())
    best = float(alphas[int(np.argmin(error))])
    return next(ridge_path(x, y, fit_rows, predict_rows, [best])), best
