"""Split a domain only where its cells are two groups: a rejected idea for issue 13, rerunnable.

Run:  pip install diptest && OMP_NUM_THREADS=1 python benchmarks/domain_split_unimodality.py
          [--seeds 0 1 2] [--data ../shared/data]

The default rule takes too few domains on the layered slices (5 of 7 layers at seed 0: it joins
L3 with L4 and L6 with L7). Divisive rules in the family of G-means (Hamerly & Elkan 2003) and
dip-means (Kalogeratos & Likas 2012) would split each chosen domain where its cells are not one
unimodal group: a domain made of two layers should be two modes along the direction that
separates them. For every domain (the default's, and the true layers for comparison) this
script splits a random half of its cells in two with k-means, projects the other half onto the
discriminant direction of that split (the within-cluster covariance's inverse times the centres'
difference: fitted on one half and tested on the other, since a direction fitted to the tested
cells makes even a Gaussian look bimodal in 30 dimensions) and prints Hartigan's dip statistic
and its p-value. A split rule needs the merged domains to reject unimodality and the true layers
not to.

Measured (30 Nov, this 2-core machine, 2 min):

* slice, seed 0 (5 domains): the two domains that each hold two layers (L3+L4, L6+L7) give dip
  0.012 (p 0.92 and 0.96), the most unimodal of all, while 4 of the 7 true layers reject
  unimodality (p < 0.02).
* slice, seed 1 (6 domains): 5 of the 7 true layers reject unimodality (p < 0.05), and so do 5
  of the 6 domains, the two that hold two layers among them: a split rule splits everything.
* STARmap BZ5, BZ9, BZ14 (4 layers): 2, 3 and 2 of the true layers reject unimodality (BZ5's
  third layer: dip 0.081, p < 0.001), so a split rule would split STARmap's true layers too.

The test points the wrong way on the slice (the true layers look more bimodal than the joined
pairs: within a layer the type mix changes with depth and the boundaries wave, while two joined
layers of a smooth gradient are one mode) and splits real layers on STARmap. Not adopted.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np


def split_dip(z: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """Hartigan's dip (and p-value) of held-out cells along a 2-means split's discriminant."""
    import diptest
    from sklearn.cluster import KMeans

    half = np.random.default_rng(seed).random(len(z)) < 0.5
    fit, test = z[half], z[~half]
    km = KMeans(2, n_init=4, random_state=seed).fit(fit)
    centres = km.cluster_centers_
    within = fit - centres[km.labels_]
    cov = within.T @ within / len(fit) + 1e-6 * np.eye(z.shape[1])
    x = test @ np.linalg.solve(cov, centres[1] - centres[0])
    dip, p = diptest.diptest((x - x.mean()) / x.std())
    return float(dip), float(p)


def report(z: np.ndarray, groups: np.ndarray, truth: np.ndarray | None = None) -> None:
    for g in np.unique(groups):
        cells = groups == g
        if cells.sum() < 40:
            continue
        dip, p = split_dip(z[cells])
        held = ""
        if truth is not None:  # which true layers the domain holds (>= 20 % of its cells)
            names, counts = np.unique(truth[cells], return_counts=True)
            held = " holds " + "+".join(names[counts >= 0.2 * cells.sum()])
        print(f"    {g}: {cells.sum()} cells{held}, dip {dip:.3f} (p {p:.3f})")


def main() -> None:
    from domain_embedding_variants import cases  # the slices and STARmap, with their truth

    import spacon
    from spacon._pipeline import RunConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    for name, adata, truth_key in cases(args.seeds, args.data):
        spacon.pp.normalize(adata)  # prepared as spacon run --no-connectivity prepares it
        spacon.pp.spatial_graph(adata, n_neighbors=10)
        spacon.tl.smoothed_expression(adata, graph="spatial", n_hops=RunConfig.n_hops,
                                      components=RunConfig.components, key_added="X_spacon_spa")
        spacon.tl.fuse(adata, 0)
        spacon.tl.domains(adata, key_added="domain")
        z = np.asarray(adata.obsm["X_spacon"], dtype=float)
        chosen = adata.obs["domain"].astype(str).to_numpy()
        truth = adata.obs[truth_key].astype(str).to_numpy()
        print(f"{name}: {len(np.unique(chosen))} domains chosen for {len(np.unique(truth))}")
        print("  chosen domains:")
        report(z, chosen, truth)
        print("  true layers:")
        report(z, truth)


if __name__ == "__main__":
    main()
