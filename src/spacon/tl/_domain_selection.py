"""How many domains: the partition that is both reproducible and coherent on its graph.

Two families of candidate partitions are scored for every number of domains ``k``:

* **mixtures** -- a tied-covariance Gaussian mixture with ``k`` components;
* **tree cuts** -- a mixture with more components (ten more than the largest ``k`` tried),
  merged pairwise by entropy (:mod:`._mixture_tree`, Baudry et al. 2010) and cut at ``k``.
  Merging lets one domain be described by several components, so elongated, curved or
  skewed domains are candidates too.

Each candidate is fitted several times (each on its own random subsample and seed) and judged
twice:

* **stability** -- the mean adjusted Rand index between the runs' partitions of the same cells
  (consensus clustering; chooseR and MultiK in single-cell work). Splitting a domain that is
  not really two lands in a different place on every run;
* **coherence** -- the partition's modularity on the graph that defines domains at the
  embedding's alpha: the spatial graph at ``alpha = 0`` (a domain should be contiguous), the
  connectome at ``alpha = 1`` (a domain should be a community of connections), both weighted
  as :func:`spacon.tl.fuse` weights the embeddings in between; without either graph, the
  embedding's own k-nearest-neighbour graph. Merging two real domains, or splitting by cell
  types that are mixed everywhere, lowers it.

The score is stability x modularity. The choice weighs it against the number of domains: the
score is charged 3 % for every doubling of ``k`` (``score x 0.97 ** log2(k)``), and of the
candidates within one standard error (from the spread of the runs' agreement; at least 0.01) of
the best charged score, the one with the fewest domains wins. Where nothing scores above 0.01,
one domain is chosen. The charge is relative, so it weighs a partition against one with half or
twice its domains alike at any scale: 3 domains against 11 differ by almost two doublings (5.5 %),
14 against 16 by a fifth of one (0.6 %). The fixed 5 % margin it replaced let the fewest domains
within 5 % of the best win, which was too much between neighbours (14 of 16 regions of the demo
brain, 3.7 % below 16, won) and too little between distant numbers (10 domains for STARmap's 4
layers, more than 5 % above 3). Neither
score depends on the mixture's likelihood, so non-Gaussian domains do not inflate the count as
the BIC does. Candidates start at ``1 .. 20`` and grow by ten while the choice lies in the top
quarter of those tried (while at least 10 cells per domain remain), so no fixed ceiling decides
the answer.
"""

from __future__ import annotations

import logging

import numpy as np

from .. import _keys
from .._errors import SpaconInputError
from ._fuse import alpha_weight
from ._mixture_tree import merge_by_entropy
from ._modularity import group_graph, modularity_of_merge
from ._tied_mixture import tied_mixture_class

logger = logging.getLogger(__name__)
BACKEND = "loky"  # joblib's backend for the runs: processes ("loky") or "threading"

FIRST_MAX_K = 20  # candidates 1..FIRST_MAX_K first, then ten more at a time
MIN_POINTS_PER_DOMAIN = 10
SUBSAMPLE = 2000  # cells per stability run
SUBSAMPLE_SHARE = 0.8  # and at most this share of them, so that runs differ (0.5 chose the same)
EVALUATION = 5000  # cells on which the runs' partitions are compared
RUN_INITS = 3  # initialisations per run: with one, the runs' disagreement measured the
# k-means starts more than the data (STARmap's 3-4 layers scored 0.3-0.5, now 0.9-1.0)
FINAL_INITS = 8  # initialisations of the mixture that labels the cells
TREE_EXTRA_LEAVES = 10  # the tree family starts from this many more components than candidates
PER_DOUBLING = 0.03  # the score's charge for each doubling of the number of domains
# (benchmarks/domain_rules_offline.py: 2-4 % choose alike on its 32 tables; 22 pass, the 5 %
# margin it replaced 19)
ABSOLUTE_TOLERANCE = 0.01  # scores within this much of the best count as equally good: when
# no partition scores above it (one clump of coinciding cells beside a few others), one domain
# is the answer
MIN_DOMAIN_SHARE = 0.02  # when merging, clusters smaller than this share of cells go first
CHUNKS_PER_JOB = 3  # the runs go to the worker processes in this many chunks per process
ALTERNATIVE_SHARE = 0.8  # other peaks of the score reported when they reach this share of the
# chosen number's score


def mixture(points: np.ndarray, k: int, seed: int, max_fit_cells: int,
            n_init: int = FINAL_INITS, group: np.ndarray | None = None):
    """Tied-covariance Gaussian mixture with ``k`` components on a random subsample of cells,
    the best of ``n_init`` starts.

    ``group`` gives each cell's point when near-identical cells were merged into one point
    (:func:`spacon.tl._domains.merge_near_identical`): cells are drawn, so a point weighs as
    many cells as it stands for (5 clumps of 10,000 cells are 5 heavy points, not 5 of many).
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.default_rng(seed)
    cells = np.arange(len(points)) if group is None else np.asarray(group)
    fit = cells if len(cells) <= max_fit_cells else cells[
        np.sort(rng.choice(len(cells), max_fit_cells, replace=False))]
    if len(np.unique(fit)) < min(k, len(points)):
        # a big clump can crowd the other points out of the sample: keep one of each, so
        # that ``k`` components have ``k`` distinct points to sit on
        fit = np.concatenate([fit, np.setdiff1d(np.arange(len(points)), fit)])
    with warnings.catch_warnings():
        # a sample of merged points may hold fewer distinct points than components: k-means
        # (scikit-learn's class, where spacon.tl._kmeans falls back to it) says so, and the
        # mixture still fits
        warnings.filterwarnings("ignore", message="Number of distinct clusters",
                                category=ConvergenceWarning)
        return tied_mixture_class()(k, covariance_type="tied", random_state=seed,
                                    n_init=n_init).fit(points[fit])


def assign(gmm, points: np.ndarray, chunk: int = 100_000) -> np.ndarray:
    """Most probable component of each point under a tied-covariance mixture.

    The same answer as ``gmm.predict``, from one whitening of the points: with a shared
    covariance the log-density differs between components only by ``x P . m_k P -
    |m_k P|^2 / 2`` (``P`` the precision's Cholesky factor), several times faster on many cells.
    """
    whiten = gmm.precisions_cholesky_
    means = gmm.means_ @ whiten
    offset = np.log(gmm.weights_) - 0.5 * (means**2).sum(axis=1)
    out = np.empty(len(points), dtype=np.int64)
    for lo in range(0, len(points), chunk):
        out[lo:lo + chunk] = np.argmax((points[lo:lo + chunk] @ whiten) @ means.T + offset, axis=1)
    return out


def coherence_graphs(adata, alpha: float | None, group: np.ndarray, points: np.ndarray,
                     n_neighbors: int, spatial_key: str = _keys.SPATIAL_GRAPH,
                     connectome_key: str = _keys.CONNECTOME_GRAPH,
                     ) -> list[tuple[str, float, object, np.ndarray]]:
    """``(name, weight, unit_in, cell_unit)`` of the graphs that domains are judged on."""
    from ..graph._stored import connectome_graph_of, missing_spatial_graph, spatial_graph_of

    found = {}
    if spatial_key != _keys.SPATIAL_GRAPH and _keys.connectivities(spatial_key) not in adata.obsp:
        # a key given and missing is a mistake (often the coordinates' key), not "no graph"
        raise SpaconInputError(missing_spatial_graph(adata, spatial_key))
    if (connectome_key != _keys.CONNECTOME_GRAPH
            and _keys.connectivities(connectome_key) not in adata.obsp
            and "unit_connectivities" not in adata.uns.get(_keys.neighbors(connectome_key), {})):
        raise SpaconInputError(f"no connectome graph under connectome_key={connectome_key!r}: "
                               "give the key_added of spacon.pp.connectome_graph, or leave it "
                               "unset.")
    if _keys.connectivities(spatial_key) in adata.obsp:
        g = spatial_graph_of(adata, spatial_key)
        found["spatial"] = (g.unit_in, g.cell_unit)
    if (_keys.connectivities(connectome_key) in adata.obsp
            or "unit_connectivities" in adata.uns.get(_keys.neighbors(connectome_key), {})):
        g = connectome_graph_of(adata, connectome_key)
        found["connectome"] = (g.unit_in, g.cell_unit)
    weights = graph_weights(found, alpha)
    chosen = [(n, weights[n], *found[n]) for n in found if weights[n] > 0]
    if not chosen:
        sizes = np.bincount(group, minlength=len(points))
        chosen = [("embedding_knn", 1.0, _knn_graph(points, n_neighbors, sizes), group)]
    return chosen


def graph_weights(found, alpha: float | None) -> dict[str, float]:
    """Each present graph's weight in judging domains (``found``: ``"spatial"`` and/or
    ``"connectome"``): as :func:`spacon.tl.fuse` weighs the embeddings at ``alpha``; every
    graph equally when the alpha is unknown.
    """
    found = list(found)
    if alpha is None:
        return {name: 1.0 / len(found) for name in found}
    w = alpha_weight(alpha)
    weights = {"spatial": 1.0 - w if "connectome" in found else 1.0,
               "connectome": w if "spatial" in found else 1.0}
    return {name: weights[name] for name in found}


def select_n_domains(points: np.ndarray, group: np.ndarray, graphs, seed: int,
                     n_runs: int = 8, n_jobs: int = 1) -> dict:
    """Score every candidate of both families (see the module docstring); the choice and scores.

    ``points`` are the distinct points of the embedding and ``group`` each cell's point;
    ``evaluation`` below holds points, one per sampled cell (repeated where cells share one).
    The runs are independent fits, spread over ``n_jobs`` processes; each is seeded on its
    own, so the answer does not depend on ``n_jobs``.
    Returns ``chosen`` and ``family``, ``n_tree_leaves``, and per family (``mixture``,
    ``tree``) the arrays ``k``, ``stability``, ``stability_se``, ``modularity`` (weighted over
    the graphs), ``modularity_<graph>`` and ``score``; and ``evaluation`` with
    ``run_partitions``, the chosen candidate's runs' partitions of those cells.
    """
    rng = np.random.default_rng(seed)
    n_cells = len(group)
    # the runs are compared on cells, so a merged point counts as the cells it stands for
    evaluation = group[np.sort(rng.choice(n_cells, min(n_cells, EVALUATION), replace=False))]
    limit = max(1, min(len(points), n_cells // MIN_POINTS_PER_DOMAIN))
    mixtures: dict[int, tuple] = {1: (1.0, 0.0, {name: 0.0 for name, *_ in graphs})}
    partitions = {1: [np.zeros(len(evaluation), dtype=np.int64)] * n_runs}  # mixtures' runs
    top = min(FIRST_MAX_K, limit)
    while True:
        ks = list(range(max(mixtures) + 1, top + 1))
        n_tree_leaves = min(limit, top + TREE_EXTRA_LEAVES)
        # the tree's fits first: they are the longest
        jobs = [(n_tree_leaves, s, True) for s in _run_seeds(seed, n_runs, 0, n_tree_leaves)]
        jobs += [(k, s, False) for k in ks for s in _run_seeds(seed, n_runs, k)]
        runs = _parallel_map(_one_run, jobs, n_jobs, shared=(points, group, evaluation, graphs),
                             costs=[_run_cost(k, tree) for k, _, tree in jobs])
        cuts = _score_tree_cuts(runs[:n_runs])
        for i, k in enumerate(ks):
            mine = runs[n_runs * (i + 1):n_runs * (i + 2)]
            partitions[k] = [labels for labels, _ in mine]
            mixtures[k] = _agreement(partitions[k], [m for _, m in mine])
        families = {"mixture": _table(mixtures, graphs, top),
                    "tree": _table(cuts, graphs, top)}
        family, best, top_family, top_k, margin = _choose(families)
        if best <= 0.75 * top or top >= limit:
            break
        logger.info("domains: k=%d is near the top of 1..%d; trying up to %d", best, top,
                    min(top + 10, limit))
        top = min(top + 10, limit)
    if family == "tree":
        partitions[best] = [tree.cut(best)[leaf] for tree, leaf, _ in runs[:n_runs]]
    return {"chosen": best, "family": family, "best_score": (top_family, top_k),
            "margin": margin,
            "evaluation": evaluation, "run_partitions": partitions[best],
            "n_tree_leaves": n_tree_leaves, "families": families, "n_runs": n_runs,
            "weights": {name: float(w) for name, w, *_ in graphs},
            # more domains may exist when the cap came from the cells per domain, not from
            # the number of distinct points
            # (or the best score is, where the cells allow no more candidates)
            "at_limit": bool((best > 0.75 * top or (top_k > 0.75 * top and top >= limit))
                             and top < len(points))}


def _table(rows: dict, graphs, top: int) -> dict:
    """Arrays of one family's scores for ``k = 1 .. top``."""
    ks = np.array([k for k in sorted(rows) if k <= top])
    table = {"k": ks, "stability": np.array([rows[k][0] for k in ks]),
             "stability_se": np.array([rows[k][1] for k in ks])}
    for name, *_ in graphs:
        table[f"modularity_{name}"] = np.array([rows[k][2][name] for k in ks])
    table["modularity"] = sum(w * table[f"modularity_{name}"] for name, w, *_ in graphs)
    table["score"] = table["stability"] * np.clip(table["modularity"], 0, None)
    return table


def most_reproducible(candidates: list, partition_of, runs: list,
                      tolerance: float = 0.01) -> tuple[int, list[float]]:
    """The first candidate whose partition agrees with the runs' (mean ARI) within
    ``tolerance`` of the best agreement, and each one's agreement.
    """
    agreement = [float(np.mean([adjusted_rand(partition_of(c), r) for r in runs]))
                 for c in candidates]
    return int(np.flatnonzero(np.asarray(agreement) >= max(agreement) - tolerance)[0]), agreement


def charged(score, k, per_doubling: float = PER_DOUBLING):
    """The score charged ``per_doubling`` for each doubling of the number of domains ``k``."""
    return np.asarray(score) * (1.0 - per_doubling) ** np.log2(np.asarray(k, dtype=float))


def _choose(families: dict) -> tuple[str, int, str, int, tuple[str, float]]:
    """The fewest domains whose charged score (:func:`charged`) is within one standard error
    (at least ``ABSOLUTE_TOLERANCE``) of the best charged score: ``(family, k, best family,
    best k, (which margin, its value))``.
    """
    # rounded, so that scores equal but for rounding tie, and ties go to fewer domains
    charges = {f: np.round(charged(t["score"], t["k"]), 12) for f, t in families.items()}
    top_family, top_i = max(((f, int(np.argmax(charges[f]))) for f in families),
                            key=lambda c: (charges[c[0]][c[1]], -families[c[0]]["k"][c[1]]))
    t = families[top_family]
    top = charges[top_family][top_i]
    error = float(charged(t["stability_se"][top_i] * max(t["modularity"][top_i], 0.0),
                          t["k"][top_i]))
    which, margin = max([("one standard error", error), (f"{ABSOLUTE_TOLERANCE:g}",
                                                        ABSOLUTE_TOLERANCE)], key=lambda m: m[1])
    candidates = [(int(t["k"][i]), -charges[f][i], f) for f, t in families.items()
                  for i in np.flatnonzero(charges[f] >= top - margin)]
    k, _, family = min(candidates)
    return family, k, top_family, int(t["k"][top_i]), (which, float(margin))


def alternatives(families: dict, chosen: int, share: float = ALTERNATIVE_SHARE,
                 most: int = 3) -> list[dict]:
    """Other numbers of domains the scores also support: peaks of the score over ``k``.

    The profile is the better family's score at each ``k``; a peak scores at least both its
    neighbours (``k - 1`` and ``k + 1``, both tried). Peaks other than ``chosen`` that score
    at least ``share`` of the chosen number's score (and more than ``ABSOLUTE_TOLERANCE``)
    are returned, the ``most`` best-scoring ones in order of ``k``: ``{"k", "family", "score",
    "ratio"}``, the ratio to the chosen number's score. Where domains merge or split
    reproducibly, several numbers stand out and the rule's choice among them is close (a
    7-layer slice: 5 chosen, 7 also a peak, 7 % lower).
    """
    profile: dict[int, tuple[float, str]] = {}
    for family, table in families.items():
        for k, score in zip(np.asarray(table["k"]).tolist(), np.asarray(table["score"]).tolist()):
            if k not in profile or score > profile[k][0]:
                profile[k] = (float(score), family)
    if chosen not in profile or profile[chosen][0] <= ABSOLUTE_TOLERANCE:
        return []
    floor = max(share * profile[chosen][0], ABSOLUTE_TOLERANCE)
    # both neighbours tried: the last number tried may only be where a rising score stopped
    peaks = [k for k, (score, _) in profile.items() if k != chosen and score >= floor
             and all(n in profile and score >= profile[n][0] for n in (k - 1, k + 1))]
    best = sorted(sorted(peaks, key=lambda k: (-profile[k][0], k))[:most])
    return [{"k": int(k), "family": profile[k][1], "score": profile[k][0],
             "ratio": profile[k][0] / profile[chosen][0]} for k in best]


def _run_seeds(seed: int, n_runs: int, *key: int) -> list[int]:
    """The seeds of one candidate's runs (``key``: ``k``, or ``0, n_leaves`` for the tree)."""
    return [int(s) for s in np.random.SeedSequence([seed, *key]).generate_state(n_runs)]


def _one_run(points, group, evaluation, graphs, k, seed, tree):
    """One run: a mixture with ``k`` components on its own subsample of cells.

    Returns the components of the ``evaluation`` cells and, for a tree run, ``(tree, those
    leaves, summed graphs)`` (the entropy-merged tree and the graphs summed over its leaves,
    which every cut of the tree reuses); else ``(those labels, modularity per graph)``. Only
    the evaluation cells' labels are kept: some 160 runs are held at once.
    """
    gmm = mixture(points, k, seed, _run_size(len(group), k), RUN_INITS, group)
    labels = assign(gmm, points)
    if tree:
        merged = merge_by_entropy(gmm.predict_proba(points[evaluation]), MIN_DOMAIN_SHARE)
        return merged, labels[evaluation], {
            name: group_graph(unit_in, cell_unit, labels[group], merged.n_leaves)
            for name, _, unit_in, cell_unit in graphs}
    return labels[evaluation], {name: modularity_of_merge(
        group_graph(unit_in, cell_unit, labels[group], k), np.arange(k))
        for name, _, unit_in, cell_unit in graphs}


def _score_tree_cuts(trees: list) -> dict:
    """Stability and mean modularity of every cut of the runs' entropy-merged trees."""
    rows = {}
    for k in range(1, min(t.n_leaves for t, _, _ in trees) + 1):
        cuts = [tree.cut(k) for tree, _, _ in trees]
        rows[k] = _agreement(
            [cut[leaf] for cut, (_, leaf, _) in zip(cuts, trees)],
            [{name: modularity_of_merge(g, cut) for name, g in summed.items()}
             for cut, (_, _, summed) in zip(cuts, trees)])
    return rows


def _parallel_map(function, jobs: list[tuple], n_jobs: int, shared: tuple = (),
                  costs: list[float] | None = None) -> list:
    """``function(*shared, *job)`` for every job, in order, on up to ``n_jobs`` workers
    (``BACKEND``), each with one BLAS thread (many small fits: more threads only contend).

    The jobs go out in ``CHUNKS_PER_JOB * n_jobs`` chunks of about equal total ``costs``
    (longest job first, each to the cheapest chunk), so ``shared`` (the points and graphs:
    megabytes, against tens of milliseconds of work per job) is sent once per chunk, not once
    per job: sending it 160 times kept the parent busy while the workers waited.
    """
    costs = np.ones(len(jobs)) if costs is None else np.asarray(costs, dtype=float)
    if costs.shape != (len(jobs),) or not np.all(costs >= 0):
        raise ValueError(f"{len(jobs)} jobs need as many costs >= 0, got {costs.tolist()}.")
    if n_jobs <= 1 or len(jobs) < 2:
        return [function(*shared, *job) for job in jobs]
    from joblib import Parallel, delayed

    chunks = _balanced_chunks(costs, min(len(jobs), CHUNKS_PER_JOB * n_jobs))
    options = {"inner_max_num_threads": 1} if BACKEND == "loky" else {}
    # one chunk per dispatch: joblib's automatic batching would group the short last chunks
    done = Parallel(n_jobs=min(n_jobs, len(chunks)), backend=BACKEND, batch_size=1, **options)(
        delayed(_run_chunk)(function, shared, [jobs[i] for i in chunk]) for chunk in chunks)
    results = [None] * len(jobs)
    for chunk, outputs in zip(chunks, done):
        for i, output in zip(chunk, outputs):
            results[i] = output
    return results


def _balanced_chunks(costs: np.ndarray, n_chunks: int) -> list[list[int]]:
    """Job indices in ``n_chunks`` chunks of about equal total cost, the costliest chunk first
    (longest processing time first: each job, longest first, joins the cheapest chunk).
    """
    chunks, totals = [[] for _ in range(n_chunks)], np.zeros(n_chunks)
    for i in np.argsort(-costs, kind="stable"):
        j = min(range(n_chunks), key=lambda c: (totals[c], len(chunks[c])))  # (costs of 0)
        chunks[j].append(int(i))
        totals[j] += costs[i]
    return [chunks[j] for j in np.argsort(-totals, kind="stable") if chunks[j]]


def _run_chunk(function, shared: tuple, jobs: list[tuple]) -> list:
    """A worker's chunk of :func:`_parallel_map`."""
    return [function(*shared, *job) for job in jobs]


def _run_cost(k: int, tree: bool) -> float:
    """A run's expected time, relative (measured on the demo brain: 20-80 ms for a mixture,
    rising with ``k``; about 200 ms for a tree run of 30 components, which is also merged).
    """
    return (k + 10) * (3 if tree else 1)


def start_workers(n_jobs: int):
    """Start the ``n_jobs`` worker processes of :func:`select_n_domains` in the background.

    A worker imports NumPy, SciPy and scikit-learn as it starts: seconds each on a GPU
    machine whose packages have no compiled bytecode. Started while the caller has other work
    (training on a GPU leaves the CPUs idle), they are ready when the domains are called,
    which reuse them (joblib stops workers idle for 300 s: a longer wait loses the head
    start, nothing else). Each worker is likely, not certain, to get one of the ``2 *
    n_jobs`` warm-up jobs. Returns the thread starting them (join it before calling the
    domains), or ``None`` when there is nothing to start.
    """
    import threading

    if n_jobs <= 1 or BACKEND != "loky":
        return None

    def start():
        try:
            _parallel_map(_ready, [()] * (2 * n_jobs), n_jobs)
        except Exception as err:  # noqa: BLE001 - only a head start: the selection starts them
            logger.debug("domain workers not started ahead: %s", err)

    thread = threading.Thread(target=start, name="spacon-domain-workers", daemon=True)
    thread.start()
    return thread


def _ready() -> None:
    """A worker's first job: import what the runs use (scikit-learn's mixture and k-means)."""
    tied_mixture_class()


def _run_size(n_cells: int, n_components: int) -> int:
    """Cells per run: every run sees different cells, and enough for its components."""
    return max(min(SUBSAMPLE, int(SUBSAMPLE_SHARE * n_cells)), min(n_cells, 2 * n_components))


def _agreement(partitions: list, modularities: list[dict]):
    """Mean pairwise ARI, its standard error, and the mean modularity per graph."""
    n = len(partitions)
    ari = [adjusted_rand(partitions[i], partitions[j]) for i in range(n) for j in range(i + 1, n)]
    return (float(np.mean(ari)), float(np.std(ari) / np.sqrt(len(ari))),
            {name: float(np.mean([m[name] for m in modularities])) for name in modularities[0]})


def adjusted_rand(a: np.ndarray, b: np.ndarray) -> float:
    """scikit-learn's ``adjusted_rand_score`` of two labellings by small non-negative integers,
    from one ``bincount`` (the same pair counts and formula; 20x faster on 5,000 cells, and
    selection compares thousands of pairs).
    """
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    n = len(a)
    pairs = np.bincount(a * (int(b.max()) + 1) + b)
    same_both = int((pairs**2).sum())
    same_a = int((np.bincount(a) ** 2).sum()) - same_both
    same_b = int((np.bincount(b) ** 2).sum()) - same_both
    together = same_both - n
    apart = n * n - same_a - same_b - same_both
    if same_a == 0 and same_b == 0:
        return 1.0
    return 2.0 * (together * apart - same_a * same_b) / (
        (together + same_a) * (same_a + apart) + (together + same_b) * (same_b + apart))


def _knn_graph(points: np.ndarray, n_neighbors: int, sizes: np.ndarray | None = None):
    """The cells' symmetric k-nearest-neighbour graph, on points that stand for ``sizes`` cells.

    A cell's ``n_neighbors`` nearest cells are first the other cells of its own point, then
    the cells of the nearest points in turn; ``W[u, v]`` is the share of ``v``'s cells that
    each cell of ``u`` counts as neighbours (the weight :func:`group_graph` gives every cell
    pair), symmetrised by the larger of the two directions. Without merged points (every size
    1) this is the plain binary kNN graph of the points.
    """
    import scipy.sparse as sp
    from scipy.spatial import cKDTree

    n = len(points)
    sizes = np.ones(n, dtype=np.int64) if sizes is None else np.asarray(sizes, dtype=np.int64)
    if n < 2:
        return sp.diags(np.minimum(sizes - 1, n_neighbors) / sizes).tocsr()
    k = max(1, min(n_neighbors, n - 1))
    _, idx = cKDTree(points).query(points, k=k + 1)
    near = idx[:, 1:]
    own = np.minimum(sizes - 1, n_neighbors)  # neighbours inside the cell's own point
    wanted = (n_neighbors - own)[:, None]
    size_near = sizes[near]
    before = np.cumsum(size_near, axis=1) - size_near  # neighbour cells taken from closer points
    share = np.clip(wanted - before, 0, size_near) / size_near
    rows = np.repeat(np.arange(n), k)
    a = sp.csr_matrix((share.ravel(), (rows, near.ravel())), shape=(n, n))
    a.eliminate_zeros()
    graph = (a.maximum(a.T) + sp.diags(own / sizes)).tocsr()
    graph.eliminate_zeros()
    return graph
