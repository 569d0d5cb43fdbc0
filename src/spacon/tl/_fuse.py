"""Mix the connectivity and spatial embeddings with SpaCon's alpha."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Literal

import numpy as np

from .. import _keys
from .._errors import SpaconInputError
from .._utils import check_option, writable

Scale = Literal["embedding", "dimension"]


def alpha_weight(alpha: float) -> float:
    """Weight of the connectivity embedding at ``alpha``: ``(e^{-4a} - 1) / (e^{-4} - 1)``."""
    alpha = check_alpha(alpha)
    return float((np.exp(-4 * alpha) - 1) / (np.exp(-4) - 1)) + 0.0  # 0.0, not -0.0, at 0


def check_alpha(alpha) -> float:
    """``alpha`` as a float, refused unless it is a number in ``[0, 1]``."""
    if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, numbers.Real):
        raise SpaconInputError(f"alpha must be a number in [0, 1], got {alpha!r}.")
    if not (np.isfinite(alpha) and 0 <= alpha <= 1):
        raise SpaconInputError(f"alpha must be in [0, 1], got {alpha!r}.")
    return float(alpha)


def fuse(adata, alpha: float, *, scale: Scale = "embedding",
         key_added: str = _keys.EMBEDDING_FUSED, copy: bool = False):
    """Mix the connectivity and spatial embeddings, each scaled to a common size.

    ``alpha = 0`` keeps the spatial embedding (local, molecular domains); ``alpha = 1`` the
    connectivity embedding (global domains that may be spatially distant). The weight on the
    connectivity embedding rises steeply: ``w = (exp(-4 alpha) - 1) / (exp(-4) - 1)``. The
    trained model does not depend on alpha, so many alphas reuse one training run.

    Each embedding is centred and scaled before mixing. ``scale="embedding"`` (default)
    divides it by one number, the root of its mean variance per dimension, so the two weigh
    alike and each keeps the relative variance of its dimensions: the smoothing encoder's
    leading principal components stay leading, where scaling every dimension to unit variance
    made its 30th component (mostly smoothed noise) count as much as its first. Measured
    (``benchmarks/bench_domains.py``, true-number mixtures, 5 seeds): STARmap layers from
    smoothed expression 0.29-0.59 -> 0.58-0.87 ARI, demo brain regions at alpha 0 0.77 -> 0.80.
    ``scale="dimension"`` gives every dimension unit variance, as spacon 0.1 did.

    Parameters
    ----------
    adata
        Data with ``obsm['X_spacon_spa']`` and (unless ``alpha == 0``) ``obsm['X_spacon_con']``.
    alpha
        Mixing parameter in ``[0, 1]``.
    scale
        ``"embedding"`` or ``"dimension"`` (see above).
    key_added
        ``obsm`` key of the fused embedding.
    copy
        Return a copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or a copy if ``copy=True``. Sets ``obsm[key_added]`` and
    ``uns['spacon_fuse'] = {'alpha': alpha, 'weight': w, 'scale': scale, 'key': key_added,
    'alphas': {key: alpha}}``, where ``'alphas'`` keeps the alpha of every key fused so far
    (:func:`spacon.tl.domains` reads the alpha of the embedding it clusters from it).
    """
    adata = writable(adata, copy, "spacon.tl.fuse")
    check_alpha(alpha)
    check_option("scale", scale, ("embedding", "dimension"))
    if _keys.EMBEDDING_SPA not in adata.obsm:
        raise SpaconInputError(
            f"adata.obsm has no {_keys.EMBEDDING_SPA!r}; train and embed a SpaCon model first."
        )
    w = alpha_weight(alpha)
    spa = standardise(_finite(adata, _keys.EMBEDDING_SPA), scale)
    if _keys.EMBEDDING_CON in adata.obsm:
        con = standardise(_finite(adata, _keys.EMBEDDING_CON), scale)
        if w in (0.0, 1.0):  # one embedding alone: the other's shape does not matter
            fused = con if w == 1.0 else spa
        elif con.shape != spa.shape:
            raise SpaconInputError(
                f"obsm[{_keys.EMBEDDING_CON!r}] ({con.shape[0]} x {con.shape[1]}) and "
                f"obsm[{_keys.EMBEDDING_SPA!r}] ({spa.shape[0]} x {spa.shape[1]}) must have "
                f"the same shape to be mixed at alpha={alpha:g}.")
        else:
            fused = w * con + (1 - w) * spa
    elif alpha == 0:
        fused = spa
    else:
        raise SpaconInputError(
            f"alpha={alpha:g} needs the connectivity embedding obsm[{_keys.EMBEDDING_CON!r}], "
            "which this data lacks (spatial-only run); use alpha=0."
        )
    adata.obsm[key_added] = fused.astype(np.float32)
    before = adata.uns.get(_keys.FUSE)
    alphas = dict(before.get("alphas", {})) if isinstance(before, Mapping) else {}
    alphas[key_added] = float(alpha)
    adata.uns[_keys.FUSE] = {"alpha": float(alpha), "weight": w, "scale": scale,
                             "key": key_added, "alphas": alphas}
    return adata if copy else None


def _finite(adata, key: str) -> np.ndarray:
    """``obsm[key]`` as an array, refused with NaN or infinite values: centring and scaling
    would spread one cell's to every cell.
    """
    x = np.asarray(adata.obsm[key])
    bad = ~np.isfinite(x).reshape(len(x), -1).all(axis=1)
    if bad.any():
        names = ", ".join(map(str, adata.obs_names[bad][:3]))
        raise SpaconInputError(
            f"adata.obsm[{key!r}] has NaN or infinite values in {int(bad.sum())} cells (e.g. "
            f"{names}); embed them again, or leave those cells out.")
    return x


def alpha_of(adata, key: str) -> float | None:
    """The alpha of the embedding in ``obsm[key]``: as :func:`fuse` or
    :func:`spacon.tl.smoothed_expression` recorded it, 0 for the spatial embedding and 1 for
    the connectivity embedding; ``None`` when unknown.
    """
    record = adata.uns.get(_keys.FUSE)
    record = record if isinstance(record, Mapping) else {}
    if key in record.get("alphas", {}):
        return float(record["alphas"][key])
    smoothed = adata.uns.get(key)
    params = smoothed.get("params") if isinstance(smoothed, Mapping) else None
    if isinstance(params, Mapping) and params.get("graph") in ("spatial", "connectome", "both"):
        return {"spatial": 0.0, "connectome": 1.0}.get(params["graph"], params.get("alpha"))
    if "alphas" not in record and key == _keys.EMBEDDING_FUSED and "alpha" in record:
        return float(record["alpha"])  # written by spacon before 0.2: the last call's alpha
    return {_keys.EMBEDDING_SPA: 0.0, _keys.EMBEDDING_CON: 1.0}.get(key)


def standardise(x, scale: Scale = "embedding") -> np.ndarray:
    """Centre ``x``; scale it to mean variance 1 per dimension (``"embedding"``: one factor
    for all dimensions) or every dimension to variance 1 (``"dimension"``).
    """
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=0)
    sd = x.std(axis=0)
    if scale == "dimension":
        return x / np.where(sd > 0, sd, 1.0)
    size = float(np.sqrt(np.mean(sd**2)))
    return x / (size if size > 0 else 1.0)
