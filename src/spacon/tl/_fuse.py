"""Mix the connectivity and spatial embeddings with SpaCon's alpha."""

from __future__ import annotations

import numpy as np

from .. import _keys
from .._errors import SpaconInputError


def alpha_weight(alpha: float) -> float:
    """Weight of the connectivity embedding at ``alpha``: ``(e^{-4a} - 1) / (e^{-4} - 1)``."""
    return float((np.exp(-4 * alpha) - 1) / (np.exp(-4) - 1))


def fuse(adata, alpha: float, *, key_added: str = _keys.EMBEDDING_FUSED, copy: bool = False):
    """Mix the standardised connectivity and spatial embeddings.

    ``alpha = 0`` keeps the spatial embedding (local, molecular domains); ``alpha = 1`` the
    connectivity embedding (global domains that may be spatially distant). The weight on the
    connectivity embedding rises steeply: ``w = (exp(-4 alpha) - 1) / (exp(-4) - 1)``. The
    trained model does not depend on alpha, so many alphas reuse one training run.

    Parameters
    ----------
    adata
        Data with ``obsm['X_spacon_spa']`` and (unless ``alpha == 0``) ``obsm['X_spacon_con']``.
    alpha
        Mixing parameter in ``[0, 1]``.
    key_added
        ``obsm`` key of the fused embedding.
    copy
        Return a copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or a copy if ``copy=True``. Sets ``obsm[key_added]`` and
    ``uns['spacon_fuse'] = {'alpha': alpha, 'weight': w}``.
    """
    adata = adata.copy() if copy else adata
    if not (np.isfinite(alpha) and 0 <= alpha <= 1):
        raise SpaconInputError(f"alpha must be in [0, 1], got {alpha!r}.")
    if _keys.EMBEDDING_SPA not in adata.obsm:
        raise SpaconInputError(
            f"adata.obsm has no {_keys.EMBEDDING_SPA!r}; train and embed a SpaCon model first."
        )
    w = alpha_weight(alpha)
    spa = _standardise(adata.obsm[_keys.EMBEDDING_SPA])
    if _keys.EMBEDDING_CON in adata.obsm:
        fused = w * _standardise(adata.obsm[_keys.EMBEDDING_CON]) + (1 - w) * spa
    elif alpha == 0:
        fused = spa
    else:
        raise SpaconInputError(
            f"alpha={alpha:g} needs the connectivity embedding obsm[{_keys.EMBEDDING_CON!r}], "
            "which this data lacks (spatial-only run); use alpha=0."
        )
    adata.obsm[key_added] = fused.astype(np.float32)
    adata.uns[_keys.FUSE] = {"alpha": float(alpha), "weight": w}
    return adata if copy else None


def _standardise(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
