"""Edge-aware (bilateral) smoothing against plain smoothing: a rejected idea, kept rerunnable.

Run:  OMP_NUM_THREADS=1 python benchmarks/smoothing_bilateral.py [--tissues slice starmap]
          [--seed 0] [--data ../shared/data]

Plain smoothing averages a cell's expression PCs over its neighbours with equal weights, so it
blurs domain boundaries. A bilateral filter weights neighbour j of cell i by
exp(-|g_i - g_j|^2 / (tau * median)), g being the PCs smoothed plainly over the same hops (the
guide), so that cells unlike their neighbours are averaged less across. Prints, per tissue,
the true-k ARI of both over the run graph and 10/20/30-neighbour graphs and 1-3 hops, and the
best of each.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).parent))

import bench_encoders as be  # noqa: E402

from spacon import _keys  # noqa: E402
from spacon.tl._smooth import expression_pcs  # noqa: E402

TAUS = (0.5, 1.0, 2.0)


def binary_graph(adata, key):
    """The graph symmetrised and binarised, a self-loop on every cell."""
    g = adata.obsp[_keys.connectivities(key)].tocsr().copy()
    g.data[:] = 1.0
    g = ((g + g.T) > 0).astype(np.float64).tocsr()
    g.setdiag(1.0)
    g.eliminate_zeros()
    return g.tocsr()


def average(h, weights, hops):
    degree = np.asarray(weights.sum(1)).ravel()
    for _ in range(hops):
        h = (weights @ h) / degree[:, None]
    return h


def bilateral_weights(graph, guide, tau):
    coo = graph.tocoo()
    g = guide / np.sqrt(guide.var(0).sum())
    d2 = ((g[coo.row] - g[coo.col]) ** 2).sum(1)
    scale = np.median(d2[coo.row != coo.col])
    return sp.csr_matrix((np.exp(-d2 / (tau * scale)), (coo.row, coo.col)), shape=graph.shape)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="/work/shared/data")
    p.add_argument("--tissues", nargs="+", default=["slice", "starmap"])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    for tissue in args.tissues:
        for case in [c for c in be.TISSUES[tissue](Path(args.data), args.seed) if c.alpha == 0]:
            a, seed = case.adata, args.seed
            pcs = expression_pcs(a, 30, None, seed)
            scores = {}
            for knn in (None, *be.KNN_GRID):
                key = _keys.SPATIAL_GRAPH if knn is None else f"bench_knn{knn}"
                if _keys.connectivities(key) not in a.obsp:
                    case.knn_graph(a, knn, key)
                graph = binary_graph(a, key)
                for hops in be.HOP_GRID:
                    guide = average(pcs, graph, hops)
                    a.obsm["X_b"] = guide.astype(np.float32)
                    scores[(knn, hops, "plain")] = be.ari(a, "X_b", case.truth, case.k, seed)
                    for tau in TAUS:
                        weights = bilateral_weights(graph, guide, tau)
                        a.obsm["X_b"] = average(pcs, weights, hops).astype(np.float32)
                        scores[(knn, hops, f"tau {tau}")] = be.ari(a, "X_b", case.truth,
                                                                    case.k, seed)
            for kind in ("plain", *(f"tau {t}" for t in TAUS)):
                (knn, hops, _), value = max(
                    ((k, v) for k, v in scores.items() if k[2] == kind), key=lambda kv: kv[1])
                where = "run graph" if knn is None else f"{knn} nn"
                print(f"{case.name:<40} {kind:<8} best {value:.3f} ({where}, {hops} hops)",
                      flush=True)


if __name__ == "__main__":
    main()
