"""Two ideas for a spatial-only encoder, each printed next to plain smoothing (the default).

Run:  OMP_NUM_THREADS=1 python benchmarks/spatial_encoder_variants.py [--data ../shared/data]
          [--tissues starmap slice]

For each tissue (STARmap mPFC BZ5/BZ9/BZ14 [obs['z'], 4 layers] when ``--data`` holds them;
the 4,000-cell layered slice [obs['layer'], 7]), on the 10-neighbour spatial graph ``spacon
run --no-connectivity`` builds, the mean ARI over 3 mixture seeds of ``tl.domains`` given the
true number of domains, on:

* ``smoothing``: 30 expression PCs averaged over 3 hops (``tl.smoothed_expression``, what
  ``spacon run`` uses without a connectome);
* ``guided``: the same PCs averaged over 3 hops with each edge weighted by how alike its two
  cells' plain smoothed PCs are (a bilateral, edge-aware filter: exp(-d^2 / 2 s^2), s^2 the
  median squared distance over edges), meant to stop averaging across layer boundaries;
* ``spacon``: the trained spatial encoder alone (``SpaCon(connectome_key=None)``, default
  schedule), ``spacon, 2 epochs``, and ``spacon on smoothed``: trained on expression that was
  first averaged over 3 hops (a smoothing-like input, to see whether training itself loses
  the layers).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp

SEEDS = 3


def true_k_ari(adata, embedding: np.ndarray, truth: np.ndarray) -> float:
    """Mean ARI of the domains given the true number (mixture seeds 0..SEEDS-1)."""
    import anndata as ad

    import spacon

    b = ad.AnnData(np.zeros((adata.n_obs, 1), np.float32), obs=adata.obs[[]])
    b.obsp = {k: v for k, v in adata.obsp.items()}
    b.uns = {k: v for k, v in adata.uns.items() if k.startswith("spatial")}
    b.obsm["X_spacon_spa"] = np.asarray(embedding, np.float32)
    spacon.tl.fuse(b, 0)
    k = len(set(truth))
    scores = []
    for seed in range(SEEDS):
        spacon.tl.domains(b, n_domains=k, seed=seed, n_jobs=1, key_added=f"d{seed}")
        scores.append(spacon.tl.score(truth, b.obs[f"d{seed}"])["ari"])
    return float(np.mean(scores))


def guided(adata, pcs: np.ndarray, hops: int = 3) -> np.ndarray:
    """PCs averaged over ``hops`` with edge weights from the plain smoothed PCs' likeness."""
    from spacon.tl._smooth import _spatial_graph, average_over_graph

    guide = average_over_graph(pcs, _spatial_graph(adata, "spatial"), hops)
    a = adata.obsp["spatial_connectivities"]
    a = ((a + a.T + sp.identity(adata.n_obs)) > 0).tocoo()
    d2 = ((guide[a.row] - guide[a.col]) ** 2).sum(1)
    w = np.exp(-d2 / (2 * np.median(d2[a.row != a.col])))
    weights = sp.csr_matrix((w, (a.row, a.col)), shape=a.shape)
    total = np.asarray(weights.sum(1)).ravel()
    h = pcs
    for _ in range(hops):
        h = weights @ h / total[:, None]
    return h


def trained(adata, **train) -> np.ndarray:
    import spacon

    model = spacon.SpaCon(adata, connectome_key=None, seed=0)
    model.train(progress=False, seed=0, **train)
    model.embed()
    return np.asarray(adata.obsm["X_spacon_spa"])


def tissue(name: str, adata, truth_key: str) -> dict:
    import spacon
    from spacon.tl._smooth import _spatial_graph, average_over_graph, expression_pcs

    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, n_neighbors=10)
    truth = adata.obs[truth_key].astype(str).to_numpy()
    pcs = expression_pcs(adata, 30, None, 0)
    row = {"tissue": name, "cells": adata.n_obs, "true k": len(set(truth))}
    row["smoothing"] = true_k_ari(adata, average_over_graph(pcs, _spatial_graph(adata, "spatial"),
                                                            3), truth)
    row["guided"] = true_k_ari(adata, guided(adata, pcs), truth)
    row["spacon"] = true_k_ari(adata, trained(adata.copy()), truth)
    row["spacon, 2 epochs"] = true_k_ari(adata, trained(adata.copy(), epochs=2), truth)
    smoothed = adata.copy()
    x = smoothed.X.toarray() if sp.issparse(smoothed.X) else np.asarray(smoothed.X)
    smoothed.X = average_over_graph(x, _spatial_graph(adata, "spatial"), 3).astype(np.float32)
    row["spacon on smoothed"] = true_k_ari(smoothed, trained(smoothed), truth)
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}),
          flush=True)
    return row


def main() -> None:
    import anndata as ad

    import spacon

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--tissues", nargs="+", default=["starmap", "slice"],
                   choices=["starmap", "slice"])
    args = p.parse_args()
    rows = []
    if "starmap" in args.tissues:
        for path in sorted((args.data / "starmap_mpfc_bass").glob("starmap_mpfc_*.h5ad")):
            rows.append(tissue(f"STARmap {path.stem.split('_')[3]}", ad.read_h5ad(path), "z"))
    if "slice" in args.tissues:
        rows.append(tissue("layered slice", spacon.datasets.layered_slice(seed=0), "layer"))
    columns = ["smoothing", "guided", "spacon", "spacon, 2 epochs", "spacon on smoothed"]
    print("\n| tissue (true k) | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for r in rows:
        print(f"| {r['tissue']} ({r['true k']}) | "
              + " | ".join(f"{r[c]:.3f}" for c in columns) + " |")


if __name__ == "__main__":
    main()
