"""The simple baselines a result is judged beside: domains from expression alone, and from
expression smoothed over the graphs instead of SpaCon's encoders.
"""

from __future__ import annotations

import contextlib
import warnings

from . import _keys
from ._errors import SpaconWarning

EXPRESSION_ONLY = "expression only (PCA + Leiden)"


def expression_baseline(adata, seed: int = 0):
    """Domains from expression alone: PCA (30) + Leiden on a 15-neighbour graph (scanpy).

    The neighbours are exact (scikit-learn) with Gaussian-kernel weights: scanpy's default
    UMAP weights compile numba code on first use, 10 s of the demo's time for the same
    partition of the demo brain.
    """
    import numpy as np
    import scanpy as sc

    tmp = adata.copy()
    # at most 30 components, fewer for a few features (9 cell-type densities per region)
    sc.pp.pca(tmp, n_comps=max(1, min(30, tmp.n_obs - 1, tmp.n_vars - 1)), random_state=seed)
    from scipy.sparse import SparseEfficiencyWarning

    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", SparseEfficiencyWarning)  # scanpy's, on such cells
        sc.pp.neighbors(tmp, n_neighbors=min(15, tmp.n_obs - 1), random_state=seed,
                        transformer="sklearn", method="gauss")
    # cells whose neighbours all coincide with them (regions sharing one profile) have a kernel
    # width of 0, so their weights are 0 / 0: identical cells are as near as can be, weight 1
    weights = tmp.obsp["connectivities"]
    weights.data = np.nan_to_num(weights.data, nan=1.0)
    sc.tl.leiden(tmp, resolution=1.0, random_state=seed, flavor="igraph", n_iterations=2,
                 directed=False)
    return tmp.obs["leiden"]


def smoothing_baseline(adata, alpha: float, seed: int = 0, *, smoothing: dict | None = None,
                       domains: dict | None = None, refine: dict | None = None):
    """Domains at ``alpha`` from smoothed expression instead of SpaCon's encoders.

    Expression PCs averaged over the spatial graph (alpha 0) or the connectome (alpha 1),
    mixed as ``tl.fuse`` mixes between, and domains called as the run calls its own: with its
    ``smoothing`` options (``n_hops``, ``components`` of ``tl.smoothed_expression``), its
    ``domains`` options (``method``, ``resolution``, ``n_domains``, ``n_jobs`` of
    ``tl.domains``) and, when given, its ``refine`` options (``tl.refine``).
    """
    from . import tl

    tmp = adata.copy()
    graph = "spatial" if alpha == 0 else "connectome" if alpha == 1 else "both"
    tl.smoothed_expression(tmp, graph=graph, alpha=alpha, seed=seed, key_added="X_smoothed",
                           **(smoothing or {}))
    tl.domains(tmp, use_rep="X_smoothed", alpha=alpha, seed=seed, key_added="smoothed_domain",
               **(domains or {}))
    if refine:
        tl.refine(tmp, key="smoothed_domain", key_added="smoothed_domain", **refine)
    return tmp.obs["smoothed_domain"]


def baseline_rows(adata, truths: dict[str, str], alphas, seed: int = 0, *,
                  smoothing: bool = True, encoder: str = "spacon",
                  options: dict | None = None) -> dict:
    """The run's domains at each alpha, smoothing's (unless ``smoothing`` is off: the run's
    encoder is smoothing) and expression alone, each scored against every truth.

    ``truths`` maps a title to an ``obs`` column; ``options``: the run's options for the
    smoothing baseline (:func:`smoothing_baseline`'s ``smoothing``, ``domains``, ``refine``);
    returns ``{name: {title: score dict (see :func:`spacon.tl.score`), "n_domains": k}}`` in
    that order of methods.
    """
    from .tl import score

    methods = [(f"{encoder} alpha={a:g}", adata.obs[_keys.domain_for_alpha(a)]) for a in alphas]
    baselines = [(f"smoothed expression alpha={a:g}", f"the smoothing baseline at alpha {a:g}",
                  lambda a=a: smoothing_baseline(adata, a, seed, **(options or {})))
                 for a in alphas if smoothing]
    baselines.append((EXPRESSION_ONLY, "the expression-only baseline",
                      lambda: expression_baseline(adata, seed)))
    for name, said, call in baselines:
        try:
            with _said_of(said):
                methods.append((name, call()))
        except Exception as err:  # noqa: BLE001 -- a baseline must not cost the run
            warnings.warn(f"{said} could not be computed, and is left out: "
                          f"{type(err).__name__}: {err}", SpaconWarning, stacklevel=2)
    rows = {}
    for name, labels in methods:
        rows[name] = {title: score(adata.obs[column], labels) for title, column in truths.items()}
        rows[name]["n_domains"] = int(labels.nunique())
    return rows


@contextlib.contextmanager
def _said_of(name: str):
    """Warnings of spacon while a baseline's domains are called, said of that baseline: they
    are not about the run's own domains (a baseline's near-empty domain read as the run's).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SpaconWarning)
        yield
    for w in caught:
        if issubclass(w.category, SpaconWarning):
            warnings.warn(f"{name}, not the run's domains: {w.message}",
                          SpaconWarning, stacklevel=3)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def baseline_summary(rows: dict, truths: dict[str, str], *, planted: bool = False) -> dict:
    """``rows``' adjusted Rand indices as the summary and the report keep them; ``planted``:
    the truth is a simulation's (the report says "the planted truth", else names the columns).
    """
    return {"truths": dict(truths), "planted": planted,
            "rows": {name: {**{t: r[t]["ari"] for t in truths}, "n_domains": r["n_domains"]}
                     for name, r in rows.items()}}
