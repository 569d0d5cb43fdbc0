"""How the default domain count behaves as a layered slice gets smaller.

Run:  OMP_NUM_THREADS=1 python benchmarks/domains_by_slice_size.py [--cells 600 1000 2000 4000]
          [--seeds 0 1]

Each case is ``spacon.datasets.layered_slice(n_cells=N, seed=S)`` (7 layers, cell types mixed
everywhere) prepared as ``spacon run --no-connectivity`` prepares it (normalised, a
10-neighbour spatial graph, the smoothing encoder's 30 PCs over 3 hops, fused at alpha 0),
then the default ``tl.domains`` with the same seed. Printed per case: the number chosen, its
ARI against the layers, the ARI of the mixture given the true 7 (the reference of issue 13's
test, one fit) and the mixture's stability at 7 and at the chosen number. The cells of a slice
are spread over the same area, so fewer cells mean thinner layers in cells: with 600, the
thinnest layer is about one cell thick.
"""

from __future__ import annotations

import argparse

import numpy as np


def one(n_cells: int, seed: int) -> dict:
    import spacon
    from spacon.tl._domain_selection import assign, mixture
    from spacon.tl._domains import merge_near_identical

    adata = spacon.datasets.layered_slice(n_cells=n_cells, seed=seed)
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, n_neighbors=10)
    spacon.tl.smoothed_expression(adata, graph="spatial", seed=seed, key_added="X_spacon_spa")
    spacon.tl.fuse(adata, 0)
    spacon.tl.domains(adata, alpha=0.0, seed=seed)
    truth = adata.obs["layer"].astype(str).to_numpy()
    selection = adata.uns["spacon_domain"]["selection"]
    chosen = int(selection["chosen"])
    table = selection["mixture"]
    stability = dict(zip(np.asarray(table["k"]).tolist(), np.asarray(table["stability"])))
    group, points = merge_near_identical(np.asarray(adata.obsm["X_spacon"], float), 0.02)
    true_k = len(set(truth))
    reference = spacon.tl.score(truth, assign(mixture(points, true_k, seed, 20_000, group=group),
                                              points)[group])["ari"]
    return {"cells": n_cells, "seed": seed, "chosen": chosen,
            "ari": spacon.tl.score(truth, adata.obs["spacon_domain"].astype(str))["ari"],
            "reference": reference, "stability_true": stability.get(true_k, np.nan),
            "stability_chosen": stability.get(chosen, np.nan),
            "cells_per_domain": n_cells / chosen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[600, 1000, 2000, 4000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    print("| cells | seed | domains chosen (7 layers) | cells per domain | ARI | mixture with 7 "
          "(reference) | stability at 7 | at the chosen number |")
    print("|---|---|---|---|---|---|---|---|")
    for n_cells in args.cells:
        for seed in args.seeds:
            r = one(n_cells, seed)
            print(f"| {r['cells']} | {r['seed']} | {r['chosen']} | {r['cells_per_domain']:.0f} | "
                  f"{r['ari']:.3f} | {r['reference']:.3f} | {r['stability_true']:.2f} | "
                  f"{r['stability_chosen']:.2f} |", flush=True)


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")  # the library's notes on near-limit choices: in the table
    main()
