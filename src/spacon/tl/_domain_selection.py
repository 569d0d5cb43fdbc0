"""How many domains: the number whose mixtures are both reproducible and coherent on their graph.

Every candidate number of domains ``k`` is fitted several times (tied-covariance Gaussian
mixtures, each on its own random subsample and seed) and judged twice:

* **stability** -- the mean adjusted Rand index between the runs' partitions of the same cells
  (consensus clustering; chooseR and MultiK in single-cell work). Splitting a domain that is
  not really two lands in a different place on every run; merging two real domains is
  reproducible but is caught by the next score;
* **coherence** -- the partition's modularity on the graph that defines domains at the
  embedding's alpha: the spatial graph at ``alpha = 0`` (a domain should be contiguous), the
  connectome at ``alpha = 1`` (a domain should be a community of connections), both weighted
  as :func:`spacon.tl.fuse` weights the embeddings in between; without either graph, the
  embedding's own k-nearest-neighbour graph.

The score is stability x modularity; the chosen ``k`` is the fewest domains whose score is
within one standard error (of the best score's stability) of the best (Breiman's one-standard-
error rule: the stability comes from a few runs, and a finer split that is not clearly better
is not taken). Neither score
depends on the mixture's likelihood, so non-Gaussian (elongated, curved) domains do not inflate
the count as the BIC does. Candidates start at ``1 .. 20`` and grow by ten while the choice lies
in the top quarter of those tried (while at least 10 cells per domain remain), so no fixed ceiling decides the answer.
"""

from __future__ import annotations

import logging

import numpy as np

from .. import _keys
from ._fuse import alpha_weight
from ._modularity import group_graph, modularity_of_merge

logger = logging.getLogger(__name__)

FIRST_MAX_K = 20  # candidates 1..FIRST_MAX_K first, then ten more at a time
MIN_POINTS_PER_DOMAIN = 10
SUBSAMPLE = 2000  # cells per stability run
EVALUATION = 5000  # cells on which the runs' partitions are compared


def mixture(points: np.ndarray, k: int, seed: int, max_fit_cells: int, n_init: int = 2):
    """Tied-covariance Gaussian mixture with ``k`` components on a random subsample."""
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(seed)
    fit = points if len(points) <= max_fit_cells else points[
        np.sort(rng.choice(len(points), max_fit_cells, replace=False))]
    return GaussianMixture(k, covariance_type="tied", random_state=seed, n_init=n_init).fit(fit)


def coherence_graphs(adata, alpha: float | None, group: np.ndarray, points: np.ndarray,
                     n_neighbors: int) -> list[tuple[str, float, object, np.ndarray]]:
    """``(name, weight, unit_in, cell_unit)`` of the graphs that domains are judged on."""
    from ..model._graphs import connectome_graph_of, spatial_graph_of

    found = {}
    if _keys.connectivities(_keys.SPATIAL_GRAPH) in adata.obsp:
        g = spatial_graph_of(adata)
        found["spatial"] = (g.unit_in, g.cell_unit)
    if (_keys.connectivities(_keys.CONNECTOME_GRAPH) in adata.obsp
            or "unit_connectivities" in adata.uns.get(_keys.neighbors(_keys.CONNECTOME_GRAPH), {})):
        g = connectome_graph_of(adata)
        found["connectome"] = (g.unit_in, g.cell_unit)
    if alpha is None:  # unknown: every graph present counts equally
        weights = {name: 1.0 / len(found) for name in found}
    else:
        w = alpha_weight(alpha)
        weights = {"spatial": 1.0 - w if "connectome" in found else 1.0,
                   "connectome": w if "spatial" in found else 1.0}
    chosen = [(n, weights[n], *found[n]) for n in found if weights[n] > 0]
    if not chosen:
        chosen = [("embedding_knn", 1.0, _knn_graph(points, n_neighbors), group)]
    return chosen


def select_n_domains(points: np.ndarray, group: np.ndarray, graphs, seed: int,
                     n_runs: int = 4) -> dict:
    """Score every candidate ``k`` (see the module docstring); the best and every score."""
    rng = np.random.default_rng(seed)
    evaluation = np.sort(rng.choice(len(points), min(len(points), EVALUATION), replace=False))
    limit = max(1, len(points) // MIN_POINTS_PER_DOMAIN)
    rows: dict[int, tuple] = {1: (1.0, 0.0, {name: 0.0 for name, *_ in graphs})}
    top = min(FIRST_MAX_K, limit)
    while True:
        for k in range(max(rows) + 1, top + 1):
            rows[k] = _score_k(points, group, evaluation, k, graphs, seed, n_runs)
        ks = np.array(sorted(rows))
        stability = np.array([rows[k][0] for k in ks])
        stability_se = np.array([rows[k][1] for k in ks])
        per_graph = {name: np.array([rows[k][2][name] for k in ks]) for name, *_ in graphs}
        modularity = sum(w * per_graph[name] for name, w, *_ in graphs)
        score = stability * np.clip(modularity, 0, None)
        top_k = int(np.argmax(np.round(score, 12)))
        # one-standard-error rule: the fewest domains scoring within the best's uncertainty
        floor = score[top_k] - stability_se[top_k] * max(modularity[top_k], 0.0)
        best = int(ks[np.flatnonzero(score >= floor)[0]])
        if best <= 0.75 * top or top >= limit:
            break
        logger.info("domains: k=%d is near the top of 1..%d; trying up to %d", best, top,
                    min(top + 10, limit))
        top = min(top + 10, limit)
    return {"chosen": best, "best_score_k": int(ks[top_k]), "k": ks, "stability": stability,
            "stability_se": stability_se, "modularity": modularity, "score": score,
            "per_graph": per_graph, "n_runs": n_runs,
            "weights": {name: float(w) for name, w, *_ in graphs},
            "at_limit": bool(best > 0.75 * top)}


def _score_k(points, group, evaluation, k, graphs, seed, n_runs):
    """Stability and mean modularity of ``n_runs`` mixtures with ``k`` components."""
    from sklearn.metrics import adjusted_rand_score

    seeds = np.random.SeedSequence([seed, k]).generate_state(n_runs)
    size = min(SUBSAMPLE, int(0.8 * len(points)))  # every run sees different cells
    on_evaluation, modularity = [], {name: [] for name, *_ in graphs}
    for s in seeds:
        gmm = mixture(points, k, int(s), size, n_init=1)
        labels = gmm.predict(points)
        on_evaluation.append(labels[evaluation])
        for name, _, unit_in, cell_unit in graphs:
            merged = group_graph(unit_in, cell_unit, labels[group], k)
            modularity[name].append(modularity_of_merge(merged, np.arange(k)))
    agreement = [adjusted_rand_score(on_evaluation[i], on_evaluation[j])
                 for i in range(n_runs) for j in range(i + 1, n_runs)]
    se = float(np.std(agreement) / np.sqrt(len(agreement)))
    return float(np.mean(agreement)), se, {name: float(np.mean(v)) for name, v in
                                           modularity.items()}


def _knn_graph(points: np.ndarray, n_neighbors: int):
    """Symmetric k-nearest-neighbour graph of the points (units are the points)."""
    import scipy.sparse as sp
    from scipy.spatial import cKDTree

    n = len(points)
    k = max(1, min(n_neighbors, n - 1))
    _, idx = cKDTree(points).query(points, k=k + 1)
    rows = np.repeat(np.arange(n), k)
    a = sp.csr_matrix((np.ones(n * k), (rows, idx[:, 1:].ravel())), shape=(n, n))
    return ((a + a.T) > 0).astype(np.float64)
