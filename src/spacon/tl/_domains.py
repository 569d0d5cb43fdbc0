"""Domains from the fused embedding: Gaussian mixture (default) or Leiden/Louvain."""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pandas as pd

from .. import _keys
from .._errors import SpaconInputError
from .._utils import check_option

logger = logging.getLogger(__name__)

Method = Literal["gmm", "leiden", "louvain"]


def domains(
    adata,
    *,
    method: Method = "gmm",
    n_domains: int | None = None,
    resolution: float | None = None,
    max_domains: int = 20,
    n_neighbors: int = 40,
    use_rep: str = _keys.EMBEDDING_FUSED,
    max_fit_cells: int = 50_000,
    merge_radius: float = 0.02,
    seed: int = 0,
    key_added: str = _keys.DOMAIN,
    copy: bool = False,
):
    """Call spatial domains on the fused embedding.

    Cells that share a connectivity unit have identical connectome rows, so at high alpha their
    embeddings nearly coincide and Leiden/Louvain on a kNN graph shatters them into dozens of
    tiny communities. The default therefore fits a Gaussian mixture with one shared full
    covariance (R mclust's "EEE" model, here scikit-learn's ``"tied"``), in pure Python:

    * with ``n_domains``: that many components;
    * without: the number is chosen by BIC over ``1..max_domains`` at the elbow, the smallest
      ``k`` after which three successive extra components each gain less than a tenth of the
      largest single gain (the BIC minimum if the curve has no such elbow).

    ``method="leiden"``/``"louvain"`` cluster a ``n_neighbors``-nearest-neighbour graph of the
    embedding at ``resolution``; with ``n_domains`` the resolution is searched to match it.

    Parameters
    ----------
    adata
        Data with ``obsm[use_rep]`` (see :func:`spacon.tl.fuse`).
    method
        ``"gmm"``, ``"leiden"`` or ``"louvain"``.
    n_domains
        Number of domains wanted (optional).
    resolution
        Leiden/Louvain resolution (default 1.0).
    max_domains
        Largest number of mixture components tried by the BIC search.
    n_neighbors
        Neighbours of the kNN graph (Leiden/Louvain).
    use_rep
        ``obsm`` key of the embedding.
    max_fit_cells
        Mixture models are fitted on at most this many randomly chosen cells, then every cell
        is assigned; keeps whole-brain data fast.
    merge_radius
        Cells whose embeddings lie within ``merge_radius`` times the embedding's overall scale
        (root of the summed variances) of each other, directly or through a chain, are
        clustered as one point. At ``alpha = 1`` this merges the cells of one connectivity
        unit, so neither the mixture nor the kNN graph fits single units; distinct cells at
        low alpha lie much farther apart and are left alone. ``0`` turns merging off.
    seed
        Random seed.
    key_added
        ``obs`` column written.
    copy
        Return a copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or a copy if ``copy=True``. Sets ``obs[key_added]`` (categorical) and
    ``uns[key_added] = {'params': ..., 'n_domains': k, 'n_merged_points': m}`` (with the BIC
    curve when searched).
    """
    adata = adata.copy() if copy else adata
    check_option("method", method, ("gmm", "leiden", "louvain"))
    if use_rep not in adata.obsm:
        raise SpaconInputError(f"adata.obsm has no {use_rep!r}; run spacon.tl.fuse first.")
    if n_domains is not None and not (1 <= n_domains <= adata.n_obs):
        raise SpaconInputError(f"n_domains must be between 1 and the number of cells, got {n_domains}.")
    z = np.asarray(adata.obsm[use_rep], dtype=np.float64)
    info: dict = {"params": {"method": method, "use_rep": use_rep, "seed": seed,
                             "merge_radius": merge_radius}}
    # cells sharing a connectivity unit nearly coincide at high alpha: cluster one point per
    # group of near-identical cells, then give every cell its group's label
    group, points = merge_near_identical(z, merge_radius)
    info["n_merged_points"] = int(len(points))
    if method == "gmm":
        labels, chosen = _gmm(points, n_domains, max_domains, max_fit_cells, seed, info)
    else:
        labels, chosen = _community(points, method, n_domains, resolution, n_neighbors, seed,
                                    info)
    labels = labels[group]
    chosen = len(np.unique(labels))
    info["n_domains"] = int(chosen)
    logger.info("domains: %s gave %d domains", method, chosen)
    adata.obs[key_added] = _categorical(labels)
    adata.uns[key_added] = info
    return adata if copy else None


def merge_near_identical(z: np.ndarray, radius: float):
    """Group points within ``radius`` x scale of each other (single linkage, KD-tree).

    Returns each point's group and the group means.
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    n = len(z)
    if radius <= 0 or n < 2:
        return np.arange(n), z
    scale = float(np.sqrt(z.var(axis=0).sum())) or 1.0
    pairs = cKDTree(z).query_pairs(radius * scale, output_type="ndarray")
    if len(pairs) == 0:
        return np.arange(n), z
    graph = sp.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, group = connected_components(graph, directed=False)
    sizes = np.bincount(group)
    means = np.column_stack([np.bincount(group, weights=c) for c in z.T]) / sizes[:, None]
    return group, means


def _categorical(labels: np.ndarray) -> pd.Categorical:
    """Domains renumbered by size (0 = largest)."""
    uniq, counts = np.unique(labels, return_counts=True)
    order = uniq[np.argsort(-counts, kind="stable")]
    rank = np.empty(uniq.max() + 1, dtype=np.int64)
    rank[order] = np.arange(len(order))
    codes = rank[labels]
    return pd.Categorical.from_codes(codes, [str(i) for i in range(len(order))])


def _gmm(z, n_domains, max_domains, max_fit_cells, seed, info, max_search_cells=5000):
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(seed)
    fit = z if len(z) <= max_fit_cells else z[rng.choice(len(z), max_fit_cells, replace=False)]

    def model(k, data):
        return GaussianMixture(k, covariance_type="tied", random_state=seed, n_init=2).fit(data)

    if n_domains is None:
        # BIC search, stopped once three successive components each gain < 1/10 of the best gain
        search = fit[: min(len(fit), max_search_cells)]
        fitted, bic = [], []
        for k in range(1, min(max_domains, len(search) - 1) + 1):
            fitted.append(model(k, search))
            bic.append(fitted[-1].bic(search))
            gains = -np.diff(bic)
            if len(gains) >= 4 and (gains[-3:] < 0.1 * gains.max()).all():
                break
        bic = np.array(bic)
        n_domains = _elbow(bic) + 1
        gmm = model(n_domains, fit)
        info["bic"] = {"k": np.arange(1, len(bic) + 1), "bic": bic}
        info["params"]["selection"] = "BIC elbow"
    else:
        gmm = model(n_domains, fit)
    return gmm.predict(z), n_domains


def _elbow(bic: np.ndarray, patience: int = 3) -> int:
    """Index of the smallest k after which ``patience`` successive components each gain less
    than a tenth of the largest single gain; the BIC minimum when there is no such k.
    """
    gains = bic[:-1] - bic[1:]  # gain of going from k to k + 1
    if len(gains) == 0 or gains.max() <= 0:
        return 0
    small = gains < 0.1 * gains.max()
    for k in range(len(gains) - patience + 1):
        if small[k : k + patience].all():
            return k
    return int(np.argmin(bic))


def _community(z, method, n_domains, resolution, n_neighbors, seed, info):
    import anndata as ad
    import scanpy as sc

    tmp = ad.AnnData(obs=pd.DataFrame(index=[str(i) for i in range(len(z))]), obsm={"z": z})
    sc.pp.neighbors(tmp, n_neighbors=max(2, min(n_neighbors, len(z) - 1)), use_rep="z",
                    random_state=seed)

    def run(res):
        if method == "leiden":
            sc.tl.leiden(tmp, resolution=res, random_state=seed, flavor="igraph",
                         n_iterations=2, directed=False)
            return tmp.obs["leiden"].cat.codes.to_numpy()
        import igraph as ig

        g = ig.Graph.Weighted_Adjacency(tmp.obsp["connectivities"], mode="undirected")
        import random

        random.seed(seed)  # igraph's Louvain draws from Python's random module
        ig.set_random_number_generator(random)
        return np.asarray(g.community_multilevel(weights="weight", resolution=res).membership)

    if n_domains is None:
        res = 1.0 if resolution is None else resolution
        labels = run(res)
    else:
        # bisection on the resolution; keep the closest count if none matches exactly
        lo, hi = 0.01, 5.0
        best = None
        for _ in range(20):
            res = (lo + hi) / 2
            labels = run(res)
            k = len(np.unique(labels))
            if best is None or abs(k - n_domains) < abs(best[2] - n_domains):
                best = (res, labels, k)
            if k == n_domains:
                break
            lo, hi = (res, hi) if k < n_domains else (lo, res)
        res, labels, k = best
        if k != n_domains:
            logger.warning("resolution search found %d domains, not %d; the closest is kept",
                           k, n_domains)
        info["params"]["resolution_search"] = True
    info["params"]["resolution"] = float(res)
    info["params"]["n_neighbors"] = n_neighbors
    return labels, len(np.unique(labels))
