"""Count splitting as a check on the number of domains: domains from half the counts, judged
on the other half.

Run:  OMP_NUM_THREADS=1 python benchmarks/domain_count_splitting.py [--layers 7] [--seed 0]

Under a Poisson model, each count split binomially in two halves gives two independent data
sets of the same cells (Neufeld et al. 2022, count splitting; data thinning). Domains found
on one half by spurious structure (smoothed noise) should explain none of the other half's
variance, and real domains some: the held-out share of variance between domains would stop
rising at the true number. Here: the layered slice (``spacon.datasets.layered_slice``), half
the counts through spacon run's smoothing encoder (normalise, 10-neighbour spatial graph, 30
PCs averaged over 3 hops), tied mixtures with k = 2..12 components on it, and the other half
(normalised, PCs averaged the same way, and not averaged) scored by the share of its variance
between those domains.

Measured (29 Nov, the 7-layer slice of seed 0, 17 s): the held-out PCs' share rises with k
from 2 to 12 domains without a plateau at the true 7 (0.0057 at 2, 0.0145 at 7, 0.0174 at
12), and with half the counts the domains match the layers less well (ARI 0.43 at 7, against
0.73 with all counts in ``bench_domains.py``). The smoothed column (0.119, 0.263, 0.301)
cannot show a plateau by design: smoothing the held-out half over the same graph makes its
noise spatially correlated, and finer contiguous domains explain more of it. Not pursued
(README, "Choosing the number of domains").
"""

from __future__ import annotations

import argparse

import numpy as np


def embedding(counts, coords, hops: int):
    """spacon run's smoothing encoder on these counts (``hops`` 0: the PCs alone)."""
    import anndata as ad
    import scipy.sparse as sp

    import spacon

    adata = ad.AnnData(sp.csr_matrix(counts.astype(np.float32)))
    adata.obsm["spatial"] = coords
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, n_neighbors=10)
    spacon.tl.smoothed_expression(adata, graph="spatial", seed=0, n_hops=hops, key_added="E")
    return adata, adata.obsm["E"]


def between_share(z: np.ndarray, labels: np.ndarray) -> float:
    """The share of ``z``'s variance between the groups of ``labels``."""
    z = z - z.mean(axis=0)
    counts = np.bincount(labels)
    means = np.array([z[labels == g].mean(axis=0) for g in range(len(counts))])
    return float((counts[:, None] * means**2).sum() / (z**2).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import scipy.sparse as sp
    from sklearn.metrics import adjusted_rand_score

    import spacon

    data = spacon.datasets.layered_slice(seed=args.seed, n_layers=args.layers)
    truth = data.obs["layer"].cat.codes.to_numpy()
    counts = sp.csr_matrix(data.X).astype(np.int64)
    rng = np.random.default_rng(args.seed)
    half = counts.copy()
    half.data = rng.binomial(counts.data, 0.5)
    other = counts - half
    coords = data.obsm["spatial"]
    found, z = embedding(half, coords, 3)
    _, held_smoothed = embedding(other, coords, 3)
    _, held_pcs = embedding(other, coords, 0)
    print(f"{args.layers}-layer slice, seed {args.seed}: held-out share of variance between "
          "the domains found on the other half")
    print(f"{'k':>3} {'ARI':>6} {'smoothed':>9} {'PCs':>8}")
    found.obsm["Z"] = z
    for k in range(2, 13):
        spacon.tl.domains(found, use_rep="Z", n_domains=k, seed=0, key_added="d", n_jobs=1)
        labels = found.obs["d"].cat.codes.to_numpy()
        print(f"{k:>3} {adjusted_rand_score(truth, labels):6.3f} "
              f"{between_share(held_smoothed, labels):9.4f} {between_share(held_pcs, labels):8.5f}")


if __name__ == "__main__":
    main()
