"""Spatially smoothed labels in the stability runs (a Potts prior): a rejected idea, rerunnable.

Run:  OMP_NUM_THREADS=1 python benchmarks/domain_spatial_labels.py {slice,starmap} --seeds 0 1
          [--data ../shared/data] [--betas 0 2 5 10 20]

The cases that defeat domain selection (``domain_rules_offline.py``: the 7-layer slices,
STARmap BZ5 and BZ14 at some seeds) might lose stability to boundary cells that flip from run
to run. Spatial methods (BayesSpace, Giotto's HMRF) smooth labels with a Potts prior. Here each
stability run's mixture labels its cells by iterated conditional modes: a cell takes the
component maximising its log-density plus ``beta`` x the share of its spatial neighbours with
that label (``beta`` in nats; 0 is the library's plain assignment). Printed per case and number
of domains ``k``: the runs' stability (mean pairwise ARI, 8 runs as ``tl.domains`` fits them)
and their mean ARI against the truth, for each ``beta``.

Measured (27 Nov, slice seeds 0-1, STARmap seed 1): no effect. At every ``k`` and ``beta`` up to
20 nats stability moved by at most 0.02 and ARI by at most 0.01 (e.g. slice seed 0, k = 7:
stability 0.77 -> 0.78, ARI 0.68 -> 0.67; BZ5, k = 4 and 6: 0.87 and 0.83 either way). The
smoothing encoder's embedding is already smooth in space, so a run's labels are already
contiguous: the runs disagree on which layers to merge or split, not on boundary cells.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from domain_rules_offline import cases

import spacon
from spacon import _keys
from spacon.tl._domain_selection import (
    RUN_INITS,
    _run_seeds,
    _run_size,
    adjusted_rand,
    mixture,
)

N_RUNS = 8


def log_density(gmm, x: np.ndarray) -> np.ndarray:
    """Each cell's log-density under each component, up to a constant (tied covariance)."""
    whiten = gmm.precisions_cholesky_
    means = gmm.means_ @ whiten
    return (x @ whiten) @ means.T + np.log(gmm.weights_) - 0.5 * (means**2).sum(axis=1)


def potts_labels(density: np.ndarray, share, beta: float, iterations: int = 10) -> np.ndarray:
    """Iterated conditional modes: log-density plus ``beta`` x neighbours' label shares."""
    labels = density.argmax(axis=1)
    eye = np.eye(density.shape[1])
    for _ in range(iterations if beta else 0):
        new = (density + beta * (share @ eye[labels])).argmax(axis=1)
        if (new == labels).all():
            break
        labels = new
    return labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=["slice", "starmap"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--betas", type=float, nargs="+", default=[0, 2, 5, 10, 20])
    parser.add_argument("--ks", type=int, nargs="+", default=list(range(2, 13)))
    args = parser.parse_args()
    for seed in args.seeds:
        for name, adata, rep, _, truth in cases(args.which, seed, args.data, Path("/tmp")):
            x = np.asarray(adata.obsm[rep], dtype=np.float64)
            truth = truth.astype(str).values
            graph = adata.obsp[_keys.connectivities(_keys.SPATIAL_GRAPH)]
            graph = ((graph + graph.T) > 0).astype(np.float64).tolil()
            graph.setdiag(0)
            graph = graph.tocsr()
            share = sp.diags(1 / np.maximum(graph.sum(axis=1).A1, 1)) @ graph
            evaluation = np.random.default_rng(seed).choice(len(x), min(len(x), 5000),
                                                            replace=False)
            print(f"== {name} seed {seed}: {len(x)} cells, {len(set(truth))} true domains",
                  flush=True)
            for k in args.ks:
                runs = {beta: [] for beta in args.betas}
                for run_seed in _run_seeds(seed, N_RUNS, k):
                    density = log_density(mixture(x, k, run_seed, _run_size(len(x), k),
                                                  RUN_INITS), x)
                    for beta in args.betas:
                        runs[beta].append(potts_labels(density, share, beta))
                row = []
                for beta, labels in runs.items():
                    stability = np.mean([adjusted_rand(a[evaluation], b[evaluation])
                                         for i, a in enumerate(labels) for b in labels[i + 1:]])
                    ari = np.mean([spacon.tl.score(truth, lab.astype(str))["ari"]
                                   for lab in labels])
                    row.append(f"beta {beta:g}: stability {stability:.2f} ARI {ari:.2f}")
                print(f"k={k:2d}  " + " | ".join(row), flush=True)


if __name__ == "__main__":
    main()
