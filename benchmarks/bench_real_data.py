"""spacon on real data: human regions (HCP connectivity + AHBA expression), STARmap layers.

Run:  python benchmarks/bench_real_data.py [--data ../shared/data] [--json out.json]

1. ``enigma_hcp_ahba`` (Desikan-Killiany, 68 cortical regions; the two with no AHBA samples
   dropped): regions are the nodes, AHBA expression (1,645 stable genes, already scaled, so
   ``normalize`` is skipped) their features, fsaverage5 centroids their positions (6 nearest
   neighbours). Connectivity of held-out regions is predicted with 5 spatial-block folds
   (:func:`spacon.tl.predict_connectivity`) from SpaCon's spatial embedding, the same PCs
   smoothed over the spatial graph (no training), expression PCs,
   all genes, position, PCs + position, distance decay (one intercept, and on each target's
   mean), the training mean profile and the
   spatially-shifted null, each with ridge
   regression (penalty by inner CV) and with k-NN, for functional (FC; graph and "connected" =
   the strongest quarter of the values) and structural connectivity (SC; connected = any
   streamlines).
2. ``starmap_mpfc_bass`` (3 slices, ~1,050 cells x 166 genes, 4 cortical layers): no
   connectome, so SpaCon runs its spatial encoder alone (``connectome_key=None``); domains
   with the true number of layers (4) and with the number spacon chooses by default
   (``tl.domains``: stability x modularity over the domain tree), scored by ARI against the
   layers, next to the two baselines: expression PCs smoothed over the same spatial graph
   (``tl.smoothed_expression``, no training; the same domain calls) and PCA + Gaussian mixture
   on expression alone (tied covariance, the best of as many starts as ``tl.domains``). PLS
   marker genes of each true layer (:func:`spacon.tl.marker_genes`), checked against layer
   markers from the literature. Subtype classification (:func:`spacon.tl.classify_subtypes`):
   the excitatory neurons' five transcriptomic types, and the two layer-6 types (the analogue
   of the original's layer-6 corticothalamic tutorial), as alpha-0 domains vs expression
   alone.

``--mirror-folds`` keeps each region and its mirror region of the other hemisphere in the
same outer and inner folds (``predict_connectivity(mirror_axis=0)``), ``--nested-penalty``
chooses SpaCon's ridge penalty on embeddings trained without each inner fold.

Files that are missing are reported and that part is skipped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np


def human(root: Path, seed: int, export_to: Path | None = None, mirror: bool = False,
          nested: bool = False) -> dict:
    from _human import export, human_regions

    import spacon

    adata, matrices = human_regions(root)
    if export_to is not None:
        export(adata, matrices, export_to)
    spacon.pp.spatial_graph(adata, n_neighbors=6)
    out = {"n_regions": adata.n_obs, "n_genes": adata.n_vars}
    for name, conn in matrices.items():
        m = conn.matrix.toarray()
        threshold = float(np.quantile(m[m > 0], 0.75)) if name == "FC" else None
        out[name] = {"threshold": threshold}
        for predictor in ("ridge", "knn"):
            t0 = time.perf_counter()
            res = spacon.tl.predict_connectivity(
                adata, conn, folds=5, threshold=threshold, predictor=predictor,
                model_kwargs={"hidden_dims": (64, 32, 8)}, seed=seed,
                mirror_axis=0 if mirror else None, nested_penalty=nested)
            out[name][predictor] = {m_: {k: v for k, v in d.items() if k != "per_fold"}
                                    for m_, d in res.items()}
            out[name][predictor]["seconds"] = round(time.perf_counter() - t0, 1)
        out[name]["connected"] = adata.uns["spacon_connectivity_prediction"]["connected"]
    if export_to is not None:
        t = out["FC"]["threshold"]
        print(f"wrote {export_to}/human_regions.h5ad, human_fc.csv, human_sc.csv; the FC row "
              f"again through the command line:\n  spacon evaluate connectivity --adata "
              f"{export_to}/human_regions.h5ad --connectivity {export_to}/human_fc.csv "
              f"--no-normalize --n-neighbors 6 --folds 5 --hidden-dims 64 32 8 --threshold {t!r} "
              f"--predictor ridge --out human_fc_prediction")
    return out


def starmap(root: Path, seed: int) -> dict:
    import anndata as ad
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    import spacon
    from spacon.tl._domain_selection import FINAL_INITS

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
        spacon.tl.domains(adata, seed=seed, key_added="d_auto")
        row["spacon_default_ari"] = round(spacon.tl.score(layers, adata.obs["d_auto"])["ari"], 3)
        row["spacon_default_domains"] = int(adata.obs["d_auto"].nunique())
        spacon.tl.smoothed_expression(adata, seed=seed)
        for name, n in (("true_k", k), ("default", None)):
            spacon.tl.domains(adata, n_domains=n, seed=seed, use_rep="X_smoothed",
                              key_added=f"s_{name}")
            row[f"smoothing_{name}_ari"] = round(
                spacon.tl.score(layers, adata.obs[f"s_{name}"])["ari"], 3)
        row["smoothing_default_domains"] = int(adata.obs["s_default"].nunique())
        x = adata.X.toarray() if hasattr(adata.X, "toarray") else adata.X
        pcs = PCA(30, random_state=seed).fit_transform(x)
        base = GaussianMixture(k, covariance_type="tied", random_state=seed,
                               n_init=FINAL_INITS).fit_predict(pcs)
        row["expression_true_k_ari"] = round(spacon.tl.score(layers, base)["ari"], 3)
        row["markers"] = layer_markers(adata, layers)
        row["subtypes"] = subtypes(adata, seed)
        out[path.stem.replace("starmap_mpfc_", "")] = row
    return out


# layer markers expected from the literature (present in the 166-gene STARmap panel)
# (chosen before the first run and kept as chosen)
KNOWN_LAYER_MARKERS = {"L1": ["Ndnf", "Reln"], "L2/3": ["Cux2", "Otof"], "L5": ["Pcp4"],
                       "L6": ["Syt6", "Foxp2"]}
LAYER_NAMES = {"1": "L1", "2": "L2/3", "3": "L5", "4": "L6"}


def layer_markers(adata, layers, n_genes: int = 10) -> dict:
    """PLS marker genes of each true layer; which expected markers are among the top."""
    import spacon

    adata.obs["layer"] = layers.map(LAYER_NAMES).to_numpy()
    table = spacon.tl.marker_genes(adata, "layer", n_genes=n_genes)
    out = {}
    for layer, known in KNOWN_LAYER_MARKERS.items():
        top = table.loc[table["domain"] == layer, "gene"].tolist()
        out[layer] = {"top5": top[:5], "known_in_top10": [g for g in known if g in top],
                      "known": known}
    return out


def subtypes(adata, seed: int) -> dict:
    """Excitatory subtypes (and the two layer-6 ones) as low-alpha domains vs expression."""
    import spacon

    kind = adata.obs["c"].astype(str)
    adata.obs["population"] = np.where(kind.str.startswith("eL6"), "eL6",
                                       np.where(kind.str.startswith("eL"), "eL other", "other"))
    adata.obs["excitatory"] = np.where(kind.str.startswith("eL"), "yes", "no")
    out = {}
    for name, key, value in (("excitatory (eL2/3, eL5-2, eL5-3, eL6-1, eL6-2)", "excitatory",
                              "yes"), ("layer 6 (eL6-1, eL6-2)", "population", "eL6")):
        table = spacon.tl.classify_subtypes(adata, "c", population_key=key, population=value,
                                            alphas=(0.0,), seed=seed)
        out[name] = table.round(3).to_dict("records")
    return out


def main() -> None:
    from _measure import real_data_parser

    p = real_data_parser(__doc__)
    p.add_argument("--export", default=None,
                   help="also write the human regions as .h5ad + .csv files here, for the CLI")
    p.add_argument("--mirror-folds", action="store_true",
                   help="human: mirror regions of the two hemispheres in the same folds "
                        "(predict_connectivity(mirror_axis=0))")
    p.add_argument("--nested-penalty", action="store_true",
                   help="human: SpaCon's ridge penalty chosen on embeddings trained without "
                        "each inner fold (predict_connectivity(nested_penalty=True))")
    p.add_argument("--parts", nargs="+", choices=["human", "starmap"], default=["human", "starmap"],
                   help="which data sets to run (both)")
    args = p.parse_args()
    root = Path(args.data)
    results = {}
    for name, folder in (("human_hcp_ahba", "enigma_hcp_ahba"),
                         ("starmap_mpfc", "starmap_mpfc_bass")):
        if name.split("_")[0] not in args.parts:
            continue
        if not (root / folder).is_dir():
            print(f"{name}: {root / folder} is missing; skipped")
            continue
        if name == "human_hcp_ahba":
            results[name] = human(root, args.seed,
                                  None if args.export is None else Path(args.export),
                                  args.mirror_folds, args.nested_penalty)
        else:
            results[name] = starmap(root, args.seed)
        print(json.dumps({name: results[name]}, indent=1), flush=True)
    if "human_hcp_ahba" in results:
        h = results["human_hcp_ahba"]
        for c in ("FC", "SC"):
            print(f"\nHuman cortex {c}, {h['n_regions']} regions x {h['n_genes']} genes: "
                  "connectivity of held-out regions (5 spatial folds"
                  f"{', mirror regions together' if args.mirror_folds else ''}"
                  f"{', nested penalty' if args.nested_penalty else ''}), mean ± sd over folds; "
                  f"connected: {h[c]['connected']['description']}")
            print(f"{'features':<22}{'predictor':<10}{'Pearson r':>14}{'AUROC':>14}{'MSE':>12}")
            from spacon.tl._predict import METHODS

            for m in [m for m in METHODS if m in h[c]["ridge"]]:
                for predictor in ("ridge", "knn"):
                    d = h[c][predictor][m]
                    print(f"{m:<22}{predictor:<10}{d['pearson_r']:>8.3f}±{d['pearson_r_sd']:.2f}"
                          f"{d['auroc']:>8.3f}±{d['auroc_sd']:.2f}{d['mse']:>12.4g}")
    if "starmap_mpfc" in results:
        print("\nSTARmap mPFC, layer ARI (spatial encoder only)")
        print(f"{'slice':<22}{'spacon k=4':>12}{'spacon auto':>12}{'domains':>9}"
              f"{'smoothed k=4':>14}{'smoothed auto':>15}{'domains':>9}{'PCA+GMM k=4':>13}")
        for s, r in results["starmap_mpfc"].items():
            print(f"{s:<22}{r['spacon_true_k_ari']:>12.3f}{r['spacon_default_ari']:>12.3f}"
                  f"{r['spacon_default_domains']:>9d}{r['smoothing_true_k_ari']:>14.3f}"
                  f"{r['smoothing_default_ari']:>15.3f}{r['smoothing_default_domains']:>9d}"
                  f"{r['expression_true_k_ari']:>13.3f}")
        print("\nSTARmap mPFC, PLS marker genes of the true layers (top 5; expected markers "
              "found in the top 10)")
        for s, r in results["starmap_mpfc"].items():
            for layer, m in r["markers"].items():
                print(f"{s:<24}{layer:<6}{', '.join(m['top5']):<45}"
                      f"{len(m['known_in_top10'])}/{len(m['known'])} {', '.join(m['known_in_top10'])}")
        print("\nSTARmap mPFC, subtype classification (ARI / NMI / Hungarian F1)")
        for s, r in results["starmap_mpfc"].items():
            for population, rows in r["subtypes"].items():
                for row in rows:
                    print(f"{s:<24}{population:<48}{row['method']:<30}{row['n_cells']:>5}"
                          f"{row['ari']:>8.3f}{row['nmi']:>8.3f}{row['hungarian_f1']:>8.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
