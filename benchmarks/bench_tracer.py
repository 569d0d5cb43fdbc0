"""SpaCon on a real region-level tracer connectome mapped onto simulated cells.

Run:  python benchmarks/bench_tracer.py [--data ../shared/data] [--json out.json]
          [--methods distance distance+mean mean]   (those methods only, no domains)

The Allen mouse connectome (Oh et al. 2014; ipsilateral, 213 regions, connections with
p < 0.05) is read by :func:`spacon.datasets.read_mouse_tracer`; 30 cells per region are placed
at the regions' CCF positions in 400 µm coronal sections with simulated expression
(:func:`spacon.datasets.tracer_brain`: cell types, a program per region, and no program shared
by a major division, so only the connectome links the regions of a division). Region is the
cell -> unit map (``unit_key="region"``), the connectome is symmetrised.

1. Domains (13, the number of major divisions) at alpha = 0 and 1, scored by ARI against the
   13 major divisions, next to: expression alone (PCA + GMM), position alone (GMM on
   coordinates) and the connectome alone (regions clustered by their connectivity rows).
2. Connectivity of held-out regions (5 spatial-block folds, whole regions held out, 5 sampled
   epochs per fold): each held-out cell's region's row predicted from SpaCon's spatial
   embedding, expression PCs, position, both, distance decay (one intercept, and on each
   target's mean) and the training mean profile (no features), and the spatially-shifted
   null; once with the expression above (it says nothing about wiring: a negative control)
   and once with a program shared by each major division (weak, 4 genes per division), which
   ties expression to the real connectome's division structure.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np


def prepare(root: Path, seed: int, division_strength: float = 0.0):
    import spacon

    conn, regions = spacon.datasets.read_mouse_tracer(root / "mouse_oh2014_sc_synaptome")
    adata = spacon.datasets.tracer_brain(conn, regions, division_strength=division_strength,
                                         seed=seed)
    spacon.pp.normalize(adata)
    spacing = float(np.median(_in_plane_spacing(adata)))
    spacon.pp.spatial_graph(adata, radius=4 * spacing, section_key="section",
                            z_radius=1.1 * adata.uns["tracer_brain"]["section_thickness"])
    return adata, conn


def _in_plane_spacing(adata) -> np.ndarray:
    from scipy.spatial import cKDTree

    xy = np.asarray(adata.obsm["spatial"])
    codes = adata.obs["section"].cat.codes.to_numpy()
    out = []
    for s in np.unique(codes):
        pts = xy[codes == s, :2]
        if len(pts) > 1:
            out.append(cKDTree(pts).query(pts, k=2)[0][:, 1])
    return np.concatenate(out)


def domains(adata, conn, seed: int) -> dict:
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    import spacon
    from spacon.tl._domain_selection import FINAL_INITS

    truth = adata.obs["division"].astype(str)
    k = truth.nunique()
    work = adata.copy()
    spacon.pp.connectome_graph(work, conn, unit_key="region", symmetrize=True)
    t0 = time.perf_counter()
    model = spacon.SpaCon(work, seed=seed)
    model.train(progress=False, seed=seed)
    model.embed()
    seconds = time.perf_counter() - t0
    out = {"n_cells": work.n_obs, "n_regions": int(work.obs["region"].nunique()),
           "n_divisions": k, "train_and_embed_seconds": round(seconds, 1), "ari": {}}
    for alpha in (0.0, 1.0):
        spacon.tl.fuse(work, alpha, key_added=f"X_alpha{alpha:g}")
        spacon.tl.domains(work, n_domains=k, seed=seed, use_rep=f"X_alpha{alpha:g}",
                          key_added=f"d{alpha:g}")
        out["ari"][f"spacon alpha={alpha:g}"] = spacon.tl.score(truth, work.obs[f"d{alpha:g}"])[
            "ari"]
    x = work.X.toarray() if hasattr(work.X, "toarray") else np.asarray(work.X)
    pcs = PCA(30, random_state=seed).fit_transform(x)
    # tied covariance, the best of as many starts as tl.domains takes
    gmm = GaussianMixture(k, covariance_type="tied", random_state=seed, n_init=FINAL_INITS)
    out["ari"]["expression (PCA + GMM)"] = spacon.tl.score(truth, gmm.fit_predict(pcs))["ari"]
    xyz = np.asarray(work.obsm["spatial"], dtype=float)
    out["ari"]["position (GMM)"] = spacon.tl.score(truth, gmm.fit_predict(xyz))["ari"]
    # the connectome alone: regions clustered by their (symmetrised, log) connectivity rows
    labels = np.asarray(conn.labels)
    m = conn.matrix.toarray()
    rows = np.log1p(np.hstack([m, m.T]) / m[m > 0].min())
    region_pcs = PCA(20, random_state=seed).fit_transform(rows)
    region_label = GaussianMixture(k, covariance_type="tied", random_state=seed,
                                   n_init=FINAL_INITS).fit_predict(region_pcs)
    lookup = dict(zip(labels, region_label))
    cell_label = [lookup[r] for r in work.obs["region"].astype(str)]
    out["ari"]["connectome rows (PCA + GMM)"] = spacon.tl.score(truth, cell_label)["ari"]
    out["ari"] = {m_: round(float(v), 3) for m_, v in out["ari"].items()}
    return out


def prediction(adata, conn, seed: int, methods=None) -> dict:
    import spacon
    from spacon.tl._predict import METHODS

    t0 = time.perf_counter()
    res = spacon.tl.predict_connectivity(
        adata, conn, unit_key="region", folds=5, train_kwargs={"epochs": 5}, seed=seed,
        methods=methods or METHODS)
    out = {m: {k: round(v, 3) for k, v in d.items() if k != "per_fold"} for m, d in res.items()}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def main() -> None:
    from _measure import real_data_parser

    p = real_data_parser(__doc__)
    from spacon.tl._predict import METHODS

    p.add_argument("--methods", nargs="+", default=None, choices=METHODS,
                   help="prediction methods only (e.g. distance distance+mean mean: no "
                        "training; the domains are skipped)")
    args = p.parse_args()
    root = Path(args.data)
    if not (root / "mouse_oh2014_sc_synaptome").is_dir():
        print(f"{root / 'mouse_oh2014_sc_synaptome'} is missing; nothing to run")
        return
    adata, conn = prepare(root, args.seed)
    planted, _ = prepare(root, args.seed, division_strength=0.6)
    results = {"prediction": {
        label: prediction(data, conn, args.seed, args.methods)
        for label, data in (("no shared program", adata), ("division program", planted))}}
    if args.methods is None:  # the domains too
        results["domains"] = domains(adata, conn, args.seed)
        d = results["domains"]
        print(f"\nTracer brain: {d['n_cells']} cells in {d['n_regions']} regions, ARI against "
              f"the {d['n_divisions']} major divisions ({d['n_divisions']} domains each)")
        for method, ari in d["ari"].items():
            print(f"  {method:<32}{ari:>7.3f}")
    for label, pr in results["prediction"].items():
        print(f"\nConnectivity of held-out regions, expression with {label} (5 folds, "
              f"{pr['seconds']} s), mean ± sd over folds")
        print(f"  {'method':<22}{'Pearson r':>16}{'AUROC':>16}")
        for m in (m_ for m_ in pr if m_ != "seconds"):  # the baselines without features too
            print(f"  {m:<22}{pr[m]['pearson_r']:>9.3f}±{pr[m]['pearson_r_sd']:.3f}"
                  f"{pr[m]['auroc']:>9.3f}±{pr[m]['auroc_sd']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
