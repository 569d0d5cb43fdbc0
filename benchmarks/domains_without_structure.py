"""How many domains the default finds where there are none: a slice with its coordinates shuffled.

Run:  OMP_NUM_THREADS=1 python benchmarks/domains_without_structure.py [--seeds 0 1 2]
                                                                       [--n-cells 3000]

The layered slice (``spacon.datasets.layered_slice``: 7 layers, cell types mixed everywhere) as
``spacon run --no-connectivity`` treats it (normalised, 10-neighbour spatial graph, 3 hops of
smoothed expression PCs), once as drawn and once with its cells' coordinates shuffled, so no
expression program follows space: the truth there is one domain. Printed per seed: the number
of domains of the default ``tl.domains`` with its score (stability x modularity), next to the
previous default (the BIC elbow, ``bench_domains.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))


def call(adata, seed: int) -> tuple[int, float, int]:
    """Default domains (count, score) and the old BIC elbow's count on the smoothed PCs."""
    from bench_domains import old_bic_default

    import spacon

    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, n_neighbors=10)
    spacon.tl.smoothed_expression(adata, graph="spatial", seed=seed, key_added="X_smoothed")
    spacon.tl.domains(adata, use_rep="X_smoothed", alpha=0, seed=seed, key_added="domain")
    selection = adata.uns["domain"]["selection"]
    k = int(selection["chosen"])
    family = selection[selection["family"]]
    score = family["score"][list(family["k"]).index(k)]
    bic_k = len(np.unique(old_bic_default(adata.obsm["X_smoothed"], seed)))
    return k, float(score), bic_k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n-cells", type=int, default=3000)
    args = parser.parse_args()
    import spacon

    print(f"{'slice':<26}{'seed':>5}{'default k':>11}{'score':>8}{'old BIC k':>11}")
    for seed in args.seeds:
        drawn = spacon.datasets.layered_slice(n_cells=args.n_cells, seed=seed)
        shuffled = drawn.copy()
        order = np.random.default_rng(seed).permutation(shuffled.n_obs)
        shuffled.obsm["spatial"] = shuffled.obsm["spatial"][order]
        for name, adata in (("7 layers", drawn), ("shuffled (1 domain)", shuffled)):
            k, score, bic_k = call(adata, seed)
            print(f"{name:<26}{seed:>5}{k:>11}{score:>8.3f}{bic_k:>11}", flush=True)


if __name__ == "__main__":
    main()
