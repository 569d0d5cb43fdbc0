"""Agreement of domains with known labels: ARI, NMI, V-measure, Hungarian-matched F1."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from .._errors import SpaconInputError, SpaconWarning
from .._utils import check_anndata, no_obs_column

# what :func:`score` returns, as a table or a printout names it
SCORE_NAMES = {"ari": "ARI", "nmi": "NMI", "v_measure": "V-measure", "hungarian_f1": "F1"}


def hungarian_f1(truth, predicted) -> float:
    """Macro F1 over the true classes after matching predicted labels one-to-one to classes.

    Labels are matched by the Hungarian algorithm to maximise the cells in agreement; a true
    class left unmatched (more classes than predicted labels) scores 0.
    """
    truth, predicted = np.asarray(truth).ravel(), np.asarray(predicted).ravel()
    if len(truth) != len(predicted):
        raise SpaconInputError(f"hungarian_f1: {len(truth)} true labels but {len(predicted)} "
                               "predicted; give one of each per cell.")
    table = pd.crosstab(truth, predicted).to_numpy()
    rows, cols = linear_sum_assignment(-table)
    f1 = np.zeros(table.shape[0])
    for r, c in zip(rows, cols):
        tp = table[r, c]
        if tp:
            precision, recall = tp / table[:, c].sum(), tp / table[r].sum()
            f1[r] = 2 * precision * recall / (precision + recall)
    return float(f1.mean())


def score(truth, predicted, *, _stacklevel: int = 2) -> dict:
    """ARI, NMI, V-measure and Hungarian-matched F1 of ``predicted`` against ``truth``.

    Cells without a known label (``NaN`` or ``None`` in ``truth``, e.g. unannotated spots)
    are left out, as :func:`hungarian_f1` leaves them out; they are not a class of their own.
    So are cells without a predicted label (domains called on a subset and written back):
    they are not scored, rather than counted as one more domain.
    """
    from sklearn import metrics

    def missing(labels):
        return pd.isna(pd.Series(np.asarray(labels, dtype=object))).to_numpy()

    for name, labels in (("true", truth), ("predicted", predicted)):
        if np.ndim(labels) != 1:
            raise SpaconInputError(f"the {name} labels must be one per cell (1-D), got shape "
                                   f"{np.shape(labels)}.")
    truth_missing, predicted_missing = missing(truth), missing(predicted)
    truth, predicted = np.asarray(truth).astype(str), np.asarray(predicted).astype(str)
    if truth.shape != predicted.shape:
        raise SpaconInputError(f"label arrays differ in length: {truth.shape} vs {predicted.shape}.")
    if truth_missing.all():
        raise SpaconInputError("the true labels are all missing (NaN): nothing to score against.")
    known = ~truth_missing & ~predicted_missing
    if not known.any():
        raise SpaconInputError("no cell has both a true and a predicted label (the predicted "
                               "labels are missing wherever the truth is known).")
    unlabelled = int((~truth_missing & predicted_missing).sum())
    if unlabelled:
        import warnings

        warnings.warn(f"{unlabelled} of {int((~truth_missing).sum())} cells with a true label "
                      "have no predicted label (NaN) and are left out of the scores.",
                      SpaconWarning, stacklevel=_stacklevel)
    truth, predicted = truth[known], predicted[known]
    if len(np.unique(truth)) == 1:
        import warnings

        warnings.warn(f"the true labels hold one value ({str(truth[0])!r}) among the cells scored: "
                      "no partition agrees with them beyond chance, so the adjusted Rand index "
                      "is 0 (or 1 for one domain); score against a column of several classes.",
                      SpaconWarning, stacklevel=_stacklevel)
    return {
        "ari": float(metrics.adjusted_rand_score(truth, predicted)),
        "nmi": float(metrics.normalized_mutual_info_score(truth, predicted)),
        "v_measure": float(metrics.v_measure_score(truth, predicted)),
        "hungarian_f1": hungarian_f1(truth, predicted),
    }


def score_domains(adata, truth_key: str, key: str) -> dict:
    """:func:`score` of ``obs[key]`` against ``obs[truth_key]``.

    Parameters
    ----------
    adata
        Annotated data with both ``obs`` columns.
    truth_key
        Known labels.
    key
        Labels to score (e.g. domains).

    Returns
    -------
    ``{"ari", "nmi", "v_measure", "hungarian_f1"}``.
    """
    check_anndata(adata, "spacon.tl.score_domains")
    for k in (truth_key, key):
        if k not in adata.obs:
            raise SpaconInputError(no_obs_column(adata, k))
    return score(adata.obs[truth_key], adata.obs[key], _stacklevel=3)
