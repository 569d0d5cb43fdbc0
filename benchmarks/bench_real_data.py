"""spacon on real data: human regions (HCP connectivity + AHBA expression), STARmap layers.

Run:  python benchmarks/bench_real_data.py [--data ../shared/data] [--json out.json]

1. ``enigma_hcp_ahba`` (Desikan-Killiany, 68 cortical regions; the two with no AHBA samples
   dropped): regions are the nodes, AHBA expression (1,645 stable genes, already scaled, so
   ``normalize`` is skipped) their features, fsaverage5 centroids their positions (6 nearest
   neighbours). Connectivity of held-out regions is predicted with 5 spatial-block folds
   (:func:`spacon.tl.predict_connectivity`) from SpaCon's spatial embedding, expression PCs,
   position, both, and the spatially-shifted null, for functional (FC; graph and "connected" =
   the strongest quarter of the values) and structural connectivity (SC; connected = any
   streamlines).
2. ``starmap_mpfc_bass`` (3 slices, ~1,050 cells x 166 genes, 4 cortical layers): no
   connectome, so SpaCon runs its spatial encoder alone (``connectome_key=None``); domains
   with the true number of layers (4) and with spacon's default (BIC), scored by ARI against
   the layers, next to PCA + Gaussian mixture on expression alone.

Files that are missing are reported and that part is skipped.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def human(root: Path, seed: int) -> dict:
    import anndata as ad
    import pandas as pd

    import spacon

    base = root / "enigma_hcp_ahba"
    labels = pd.read_csv(base / "hcp_connectivity" / "funcLabels_ctx.csv", header=None)
    labels = labels.iloc[0].astype(str).tolist() if labels.shape[0] == 1 else \
        labels.iloc[:, 0].astype(str).tolist()
    expr = pd.read_csv(base / "ahba" / "allgenes_stable_r0.6.csv").set_index("label")
    expr = expr.loc[[r for r in labels if r in expr.index]]
    expr = expr.dropna(axis=0, how="any")
    centroids = pd.read_csv(base / "derived_dk68_centroids_fsa5.csv").set_index("region")
    regions = [r for r in labels if r in expr.index]
    keep = [labels.index(r) for r in regions]
    adata = ad.AnnData(expr.loc[regions].to_numpy(np.float32),
                       obs=pd.DataFrame(index=regions),
                       var=pd.DataFrame(index=expr.columns))
    adata.obsm["spatial"] = centroids.loc[regions, ["x", "y", "z"]].to_numpy(float)
    adata.X = adata.X - min(0.0, float(adata.X.min()))  # scaled expression, kept >= 0
    spacon.pp.spatial_graph(adata, n_neighbors=6)
    out = {"n_regions": adata.n_obs, "n_genes": adata.n_vars}
    for name, file in (("FC", "funcMatrix_ctx.csv"), ("SC", "strucMatrix_ctx.csv")):
        m = pd.read_csv(base / "hcp_connectivity" / file, header=None).to_numpy(float)
        m = m[np.ix_(keep, keep)]
        np.fill_diagonal(m, 0)
        conn = spacon.io.Connectivity(np.maximum(m, 0), np.array(regions))
        positive = m[m > 0]
        threshold = float(np.quantile(positive, 0.75)) if name == "FC" else None
        t0 = time.perf_counter()
        res = spacon.tl.predict_connectivity(
            adata, conn, folds=5, threshold=threshold,
            model_kwargs={"hidden_dims": (64, 32, 8)}, seed=seed)
        out[name] = {m_: {k: v for k, v in d.items() if k != "per_fold"}
                     for m_, d in res.items()}
        out[name]["threshold"] = threshold
        out[name]["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def starmap(root: Path, seed: int) -> dict:
    import anndata as ad
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    import spacon

    out = {}
    for path in sorted((root / "starmap_mpfc_bass").glob("starmap_mpfc_*.h5ad")):
        adata = ad.read_h5ad(path)
        layers = adata.obs["z"].astype(str)
        k = layers.nunique()
        spacon.pp.normalize(adata)
        spacon.pp.spatial_graph(adata, n_neighbors=10)
        t0 = time.perf_counter()
        model = spacon.SpaCon(adata, connectome_key=None, seed=seed)
        model.train(progress=False, seed=seed)
        model.embed()
        seconds = time.perf_counter() - t0
        spacon.tl.fuse(adata, 0)
        row = {"n_cells": adata.n_obs, "train_mode": model.train_params["mode"],
               "seconds": round(seconds, 1)}
        spacon.tl.domains(adata, n_domains=k, seed=seed, key_added="d_k")
        row["spacon_true_k_ari"] = round(spacon.tl.score(layers, adata.obs["d_k"])["ari"], 3)
        spacon.tl.domains(adata, seed=seed, key_added="d_bic")
        row["spacon_default_ari"] = round(spacon.tl.score(layers, adata.obs["d_bic"])["ari"], 3)
        row["spacon_default_domains"] = int(adata.obs["d_bic"].nunique())
        x = adata.X.toarray() if hasattr(adata.X, "toarray") else adata.X
        pcs = PCA(30, random_state=seed).fit_transform(x)
        base = GaussianMixture(k, covariance_type="tied", random_state=seed).fit_predict(pcs)
        row["expression_true_k_ari"] = round(spacon.tl.score(layers, base)["ari"], 3)
        out[path.stem.replace("starmap_mpfc_", "")] = row
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / ".." / "shared"
                                         / "data"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    root = Path(args.data)
    results = {}
    for name, fn, folder in (("human_hcp_ahba", human, "enigma_hcp_ahba"),
                             ("starmap_mpfc", starmap, "starmap_mpfc_bass")):
        if not (root / folder).is_dir():
            print(f"{name}: {root / folder} is missing; skipped")
            continue
        results[name] = fn(root, args.seed)
        print(json.dumps({name: results[name]}, indent=1), flush=True)
    if "human_hcp_ahba" in results:
        h = results["human_hcp_ahba"]
        print(f"\nHuman cortex, {h['n_regions']} regions x {h['n_genes']} genes: connectivity of "
              "held-out regions (5 spatial folds), mean ± sd over folds")
        print(f"{'method':<22}{'FC r':>14}{'FC AUROC':>14}{'SC r':>14}{'SC AUROC':>14}")
        for m in ("spacon", "expression", "position", "expression+position", "null"):
            cells = ""
            for c in ("FC", "SC"):
                d = h[c][m]
                cells += f"{d['pearson_r']:>8.3f}±{d['pearson_r_sd']:.2f}"
                cells += f"{d['auroc']:>8.3f}±{d['auroc_sd']:.2f}"
            print(f"{m:<22}{cells}")
    if "starmap_mpfc" in results:
        print("\nSTARmap mPFC, layer ARI (spatial encoder only)")
        print(f"{'slice':<22}{'spacon k=4':>12}{'spacon BIC':>12}{'domains':>9}{'PCA+GMM k=4':>13}")
        for s, r in results["starmap_mpfc"].items():
            print(f"{s:<22}{r['spacon_true_k_ari']:>12.3f}{r['spacon_default_ari']:>12.3f}"
                  f"{r['spacon_default_domains']:>9d}{r['expression_true_k_ari']:>13.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
