"""A rejected variant of the domain-count rule: stability measured on interior cells only.

Run:  python benchmarks/domain_rule_interior.py {plain,interior,interior-share} [SEED ...]

The default rule's stability is the mean ARI between runs over sampled cells. Here the ARI of
a pair of runs is taken over the cells *interior* to their domain in both runs (every spatial
neighbour shares the label), so that a boundary moving by a cell or two does not count;
``interior-share`` multiplies it by the square root of the share of such cells. Alpha-1 cases
(no spatial meaning) keep the plain agreement. Prints each case's chosen number and the
mixture family's scores; the cases and cached embeddings are those of ``bench_domains.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from spacon.tl import _domain_selection as ds
from spacon.tl._domains import merge_near_identical


def interior(labels: np.ndarray, graph: sp.csr_matrix) -> np.ndarray:
    """Whether every neighbour of each cell in ``graph`` has the cell's label."""
    degree = np.diff(graph.indptr)
    rows = np.repeat(np.arange(len(degree)), degree)
    differs = labels[graph.indices] != labels[rows]
    return np.bincount(rows[differs], minlength=len(degree)) == 0


def full_run(points, group, evaluation, graphs, k, seed, tree):
    """``_domain_selection._one_run``, returning every point's label (interior cells need
    the labels of all cells, not only the evaluation cells').
    """
    gmm = ds.mixture(points, k, seed, ds._run_size(len(group), k), ds.RUN_INITS, group)
    labels = ds.assign(gmm, points)
    if tree:
        merged = ds.merge_by_entropy(gmm.predict_proba(points[evaluation]), ds.MIN_DOMAIN_SHARE)
        return merged, labels, {
            name: ds.group_graph(unit_in, cell_unit, labels[group], merged.n_leaves)
            for name, _, unit_in, cell_unit in graphs}
    return labels, {name: ds.modularity_of_merge(
        ds.group_graph(unit_in, cell_unit, labels[group], k), np.arange(k))
        for name, _, unit_in, cell_unit in graphs}


def agreement(variant, partitions, cores, modularities):
    """Like ``_domain_selection._agreement``, on interior cells for the variants."""
    aris = []
    for i in range(len(partitions)):
        for j in range(i + 1, len(partitions)):
            if variant == "plain" or cores is None:
                aris.append(ds.adjusted_rand(partitions[i], partitions[j]))
                continue
            both = cores[i] & cores[j]
            a = ds.adjusted_rand(partitions[i][both], partitions[j][both]) \
                if both.sum() >= 10 else 0.0
            aris.append(a * both.mean() ** 0.5 if variant == "interior-share" else a)
    return (float(np.mean(aris)), float(np.std(aris) / np.sqrt(len(aris))),
            {name: float(np.mean([m[name] for m in modularities])) for name in modularities[0]})


def select(variant, points, group, graphs, cell_graph, seed, n_runs=8):
    """The default selection over candidates 1..20 with ``variant``'s stability."""
    rng = np.random.default_rng(seed)
    cells = np.sort(rng.choice(len(group), min(len(group), ds.EVALUATION), replace=False))
    evaluation = group[cells]
    limit = max(1, min(len(points), len(group) // ds.MIN_POINTS_PER_DOMAIN))
    top = min(ds.FIRST_MAX_K, limit)
    ks = list(range(2, top + 1))
    n_leaves = min(limit, top + ds.TREE_EXTRA_LEAVES)
    jobs = [(n_leaves, s, True) for s in ds._run_seeds(seed, n_runs, 0, n_leaves)]
    jobs += [(k, s, False) for k in ks for s in ds._run_seeds(seed, n_runs, k)]
    runs = ds._parallel_map(full_run, jobs, 2, shared=(points, group, evaluation, graphs),
                            costs=[ds._run_cost(k, tree) for k, _, tree in jobs])

    def core(labels):
        return None if cell_graph is None else interior(labels[group], cell_graph)[cells]

    mixtures = {1: (1.0, 0.0, {name: 0.0 for name, *_ in graphs})}
    for i, k in enumerate(ks):
        mine = runs[n_runs * (i + 1):n_runs * (i + 2)]
        cores = None if cell_graph is None else [core(labels) for labels, _ in mine]
        mixtures[k] = agreement(variant, [labels[evaluation] for labels, _ in mine], cores,
                                [m for _, m in mine])
    trees, cuts = runs[:n_runs], {}
    for k in range(1, min(t.n_leaves for t, _, _ in trees) + 1):
        cut = [t.cut(k) for t, _, _ in trees]
        cores = None if cell_graph is None else [core(c[leaf]) for c, (_, leaf, _) in
                                                 zip(cut, trees)]
        cuts[k] = agreement(variant, [c[leaf[evaluation]] for c, (_, leaf, _) in zip(cut, trees)],
                            cores, [{name: ds.modularity_of_merge(g, c) for name, g in
                                     summed.items()} for c, (_, _, summed) in zip(cut, trees)])
    families = {"mixture": ds._table(mixtures, graphs, top), "tree": ds._table(cuts, graphs, top)}
    family, best, *_ = ds._choose(families)
    return family, best, families


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_domains

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=["plain", "interior", "interior-share"],
                        help="plain: the default rule's stability (the baseline, printed "
                        "before any other variant too); interior: "
                        "over interior cells; interior-share: times the root of their share")
    parser.add_argument("seeds", type=int, nargs="*", default=[0])
    args = parser.parse_args()
    variant = args.variant
    for seed in args.seeds:
        for name, adata, rep, alpha, truth in bench_domains.cases(
                Path("../shared/data"), Path("/tmp/spacon_bench_domains"), seed):
            group, points = merge_near_identical(np.asarray(adata.obsm[rep], np.float64), 0.02)
            graphs = ds.coherence_graphs(adata, alpha, group, points, 40)
            cell_graph = sp.csr_matrix(adata.obsp["spatial_connectivities"]) if alpha == 0 \
                else None
            # the default rule (plain) first, as the baseline the variant is judged against
            for rule in dict.fromkeys(["plain", variant]):
                family, best, families = select(rule, points, group, graphs, cell_graph, seed)
                t = families["mixture"]
                print(f"{rule} seed {seed} {name}: {best} domains ({family}), truth "
                      f"{adata.obs[truth].nunique()}; mixture scores "
                      + " ".join(f"{k}:{v:.3f}" for k, v in zip(t["k"][:12], t["score"][:12])),
                      flush=True)


if __name__ == "__main__":
    main()
