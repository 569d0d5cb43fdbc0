"""Which features predict held-out connectivity best, with no new training objective?

Run:  python benchmarks/bench_predict_features.py [--data ../shared/data] [--json out.json]
      [--only default,harder,human] [--epochs 5]

Same folds, targets and metrics as :func:`spacon.tl.predict_connectivity` (SpaCon trained
once per fold with the held-out connectivity hidden), ridge (penalty by inner CV inside the
training cells) and k-NN, on:

* ``default``: the default synthetic brain (6,000 cells, voxel units, 4 folds by section,
  threshold 0.4, 5 epochs per fold: the README's ``spacon evaluate connectivity`` command);
* ``harder``: a harder simulated brain: weaker region and module programs
  (``region_strength=0.6, module_strength=0.3``), noisier counts (``dispersion=2``) and more
  off-module edges (``off_module_fraction=0.3``);
* ``human FC`` / ``human SC``: the ENIGMA regions of ``bench_real_data.py``.

Candidates beyond the tool's feature spaces:

* ``spacon+expression``: the spatial embedding and expression PCs side by side (each block
  scaled to unit total variance);
* ``expression smoothed``: expression PCs averaged twice over the spatial graph (held-out
  tissue's expression used transductively; no connectivity of it is used);
* ``genes smoothed``: the same for all genes;
* ``spacon+expression smoothed``;
* ``... low-rank``: ridge onto the top 10 principal components of the training rows'
  connectivity profiles (a low-rank code), mapped back.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

RANK = 10


def smooth(features: np.ndarray, graph: sp.csr_matrix, hops: int = 2) -> np.ndarray:
    """Mean over each cell and its spatial neighbours, ``hops`` times."""
    g = (graph + sp.identity(graph.shape[0], format="csr")).tocsr()
    g = sp.diags(1.0 / np.asarray(g.sum(axis=1)).ravel()) @ g
    out = features
    for _ in range(hops):
        out = g @ out
    return out


def blocks(*parts):
    return np.hstack([p / np.sqrt(p.shape[1]) for p in parts])


def low_rank_ridge(x, y_train, fit_rows, predict_rows, groups, rank=RANK):
    """Ridge onto the top ``rank`` principal components of the training profiles."""
    from spacon.tl import _ridge

    mean = y_train.mean(axis=0)
    _, _, vt = np.linalg.svd(y_train - mean, full_matrices=False)
    basis = vt[:rank].T
    code = (y_train - mean) @ basis
    alpha = _ridge.choose_alpha(x, code, fit_rows, groups)
    fit = _ridge.ridge_fit(x, code, fit_rows)
    return _ridge.ridge_predict(fit, x, predict_rows, alpha) @ basis.T + mean


def evaluate(adata, conn, *, unit_key, folds, section_key, threshold, top_k, train_kwargs,
             model_kwargs, seed=0):
    from spacon.tl import _predict as P

    rows = P.profile_rows(adata, conn, unit_key)
    fold = P.spatial_folds(adata, folds, section_key=section_key, unit_key=unit_key, seed=seed)
    matrix = conn.matrix.tocsr().maximum(0)
    kept, _ = P.connected_targets(conn, threshold=threshold, top_k=top_k)
    coords = P.spatial_coordinates(adata, "spatial")
    graph = adata.obsp["spatial_connectivities"].tocsr().astype(np.float64)
    methods = ("spacon", "expression", "genes", "position", "expression+position")
    per_fold = {}
    for f in np.unique(fold):
        test, train = fold == f, fold != f
        y_train = matrix[rows[train]].toarray().astype(np.float64)
        y_test = matrix[rows[test]].toarray().astype(np.float64)
        emb = P._spacon_embedding(adata, conn, rows, test, unit_key,
                                  {"threshold": threshold, "top_k": top_k, "negative": "drop"},
                                  {"seed": seed, **model_kwargs}, {"seed": seed, **train_kwargs})
        # position as the plain coordinates, for both predictors (the table in the README was
        # measured so; predict_connectivity gives ridge Gaussian bumps over them since 27 Nov)
        feats = P.fold_features(adata, methods, train, coords=coords, n_pcs=30, seed=seed,
                                spacon=emb, predictor="knn")
        pcs_s = P._standardise(smooth(feats["expression"], graph), train)
        genes_s = P._standardise(smooth(feats["genes"], graph), train)
        feats["spacon+expression"] = blocks(feats["spacon"], feats["expression"])
        feats["expression smoothed"] = pcs_s
        feats["genes smoothed"] = genes_s
        feats["spacon+expression smoothed"] = blocks(feats["spacon"], pcs_s)
        groups = P._inner_groups(adata, train, section_key, None, "spatial", unit_key, seed)
        fit_rows, predict_rows = np.flatnonzero(train), np.flatnonzero(test)
        preds, everyone = {}, np.arange(int(test.sum()))
        perm = P.spatial_null_order(coords[test])
        for predictor in ("ridge", "knn"):
            p, _ = P.predict_fold(feats, predictor, train, test, y_train, groups, 15)
            preds |= {f"{m} | {predictor}": fn(everyone) for m, fn in p.items()}
            preds[f"null | {predictor}"] = preds[f"spacon | {predictor}"][perm]
        for m in ("expression", "genes", "spacon", "spacon+expression", "expression smoothed",
                  "spacon+expression smoothed"):
            preds[f"{m} low-rank | ridge"] = low_rank_ridge(feats[m], y_train, fit_rows,
                                                            predict_rows, groups)
        scores = P._score_fold({m: (lambda pos, v=v: v[pos]) for m, v in preds.items()},
                               y_test, kept[rows[test]], rows[test])
        for m, s in scores.items():
            for metric, v in s.items():
                per_fold.setdefault(m, {}).setdefault(metric, []).append(v)
        print(f"  fold {f}: " + ", ".join(f"{m} {s['pearson_r']:.3f}" for m, s in scores.items()
                                          if m.endswith("ridge")), flush=True)
    return {m: {k: v for k, v in d.items() if k != "per_fold"}
            for m, d in P._summarise(per_fold).items()}


def brain(harder: bool):
    import spacon

    kwargs = (dict(region_strength=0.6, module_strength=0.3, dispersion=2.0,
                   off_module_fraction=0.3) if harder else {})
    adata, conn = spacon.datasets.synthetic_brain(seed=0, **kwargs)
    info = adata.uns["synthetic_brain"]
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, radius=info["suggested_radius"], section_key="section",
                            z_radius=info["suggested_z_radius"])
    return adata, conn


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--json", default=None)
    p.add_argument("--only", default="default,harder,human")
    p.add_argument("--epochs", type=int, default=5)
    args = p.parse_args()
    results = {}
    for name in args.only.split(","):
        t0 = time.perf_counter()
        if name in ("default", "harder"):
            adata, conn = brain(name == "harder")
            results[name] = evaluate(adata, conn, unit_key="unit", folds=4,
                                     section_key="section", threshold=0.4, top_k=None,
                                     train_kwargs={"epochs": args.epochs, "progress": False},
                                     model_kwargs={})
            results[name]["seconds"] = round(time.perf_counter() - t0, 1)
        elif name == "human":
            import sys

            sys.path.insert(0, str(Path(__file__).parent))
            from _human import prediction_cases

            for kind, adata, conn, threshold in prediction_cases(Path(args.data)):
                results[f"human {kind}"] = evaluate(
                    adata, conn, unit_key=None, folds=5, section_key=None, threshold=threshold,
                    top_k=None, train_kwargs={"progress": False},
                    model_kwargs={"hidden_dims": (64, 32, 8)})
        for key in [k for k in results if k.startswith(name)]:
            print(f"\n{key}: mean ± sd over folds")
            print(f"{'features | predictor':<42}{'Pearson r':>16}{'AUROC':>16}{'MSE':>12}")
            for m, d in sorted(((m, d) for m, d in results[key].items() if m != "seconds"),
                               key=lambda kv: -kv[1]["pearson_r"]):
                print(f"{m:<42}{d['pearson_r']:>9.3f} ± {d['pearson_r_sd']:.3f}"
                      f"{d['auroc']:>9.3f} ± {d['auroc_sd']:.3f}{d['mse']:>12.4g}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
