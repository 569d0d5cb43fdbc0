"""Can the number of smoothing hops be chosen from the data? A rejected rule, kept to rerun.

Run:  OMP_NUM_THREADS=1 python benchmarks/smoothing_hops_cv.py [--data /work/shared/data]
          [--tissues brain slice starmap human mob] [--seeds 0]

The rule: for each number of hops, how well a cell's neighbourhood average predicts its own
expression PCs when its own expression is left out (10 folds; the average of the other folds'
cells over ``h`` rounds of :func:`spacon.tl.smoothed_expression`'s averaging, normalised by the
weight that reached the cell). It would pick the hops with the smallest error. Printed per
tissue (alpha 0, the graph ``spacon run`` builds): the error at 1..6 hops relative to the
smallest, the hops the rule picks, and the true-k ARI of smoothing at 1..3 hops next to
expression alone (0 hops), as ``bench_encoders.py`` scores them.

Measured (``--seeds 0 1 2``): it picks 5-6 hops on the synthetic brain, where 2 hops score
best and 3 already less; cell identity, which no neighbourhood predicts, dominates the error at
every count.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from bench_encoders import TISSUES, ari

import spacon
from spacon import _keys
from spacon.tl._smooth import _spatial_graph, _summing, expression_pcs

MAX_HOPS = 6
FOLDS = 10


def held_out_error(adata, seed: int) -> np.ndarray:
    """Mean squared error of each cell's PCs predicted by the other folds, per number of hops."""
    total, count = _summing(_spatial_graph(adata, _keys.SPATIAL_GRAPH))
    x = expression_pcs(adata, 30, None, seed)
    fold = np.random.default_rng(seed).permutation(len(x)) % FOLDS
    error = np.zeros(MAX_HOPS)
    for f in range(FOLDS):
        kept = (fold != f).astype(np.float64)
        signal, weight = x * kept[:, None], kept[:, None]
        for h in range(MAX_HOPS):
            signal = total(signal) / count[:, None]
            weight = total(weight) / count[:, None]
            scored = (fold == f) & (weight[:, 0] > 1e-12)
            error[h] += ((signal[scored] / weight[scored] - x[scored]) ** 2).sum()
    return error / len(x)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="/work/shared/data")
    p.add_argument("--tissues", nargs="+", default=["brain", "slice", "starmap", "human", "mob"],
                   choices=list(TISSUES))
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = p.parse_args()
    print(f"{'tissue':<40}{'seed':>5}  error at 1..{MAX_HOPS} hops (/ smallest)"
          f"{'':>14}rule  ARI at 0 (expression), 1, 2, 3 hops")
    for tissue in args.tissues:
        for seed in args.seeds:
            for case in TISSUES[tissue](Path(args.data), seed):
                if case.alpha != 0:
                    continue
                error = held_out_error(case.adata, seed)
                scores = []
                for hops in range(4):
                    spacon.tl.smoothed_expression(case.adata, graph="spatial", n_hops=hops,
                                                  seed=seed, key_added="X_bench")
                    scores.append(ari(case.adata, "X_bench", case.truth, case.k, seed))
                print(f"{case.name:<40}{seed:>5}  "
                      + " ".join(f"{e:.4f}" for e in error / error.min())
                      + f"{int(np.argmin(error)) + 1:>6}  "
                      + " ".join(f"{a:.3f}" for a in scores), flush=True)


if __name__ == "__main__":
    main()
