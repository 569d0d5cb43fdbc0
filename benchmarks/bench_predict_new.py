"""How well does ``SpaCon.predict_connectivity`` (``spacon predict``) predict the connectivity of
tissue it never saw?

Run:  python benchmarks/bench_predict_new.py [--epochs N] [--connectivity-code K] [--harder]

The default synthetic brain (``harder``: the harder brain of ``bench_predict_features.py``)
is split by section: the model trains on ten sections with their connectome (threshold 0.4,
as ``spacon run`` in the README), fits its connectivity map, and predicts the two middle
sections (s005, s006) as new tissue without connectivity. Each held-out cell's (and unit's)
predicted profile is scored against its true row (Pearson r, AUROC of the targets above 0.4)
next to the same ridge map (penalty by spatial CV inside the training cells) from expression
(all genes, 30 PCs) and from the 30 PCs averaged over 3 hops of each tissue's own spatial graph
(smoothing, no training), and the baselines without expression: distance decay fitted on the
training profiles (as ``tl.predict_connectivity``'s, with one intercept and on each
target's training mean), the mean
profile of the 50 training cells nearest in space (spatial k-NN), the training cells' mean
profile and the spatially-aware null (SpaCon's predictions moved along the held-out cells'
spatial order). As in ``tl.predict_connectivity``, each cell's own target (its unit's column)
is left out of its scores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HELD_OUT = ("s005", "s006")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=None, help="default: SpaCon.train's")
    p.add_argument("--connectivity-code", type=int, default=0)
    p.add_argument("--harder", action="store_true")
    args = p.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_predict_features import brain

    import spacon
    from spacon.graph._stored import spatial_graph_of
    from spacon.model._connectivity_map import fit_on_training_data, training_profiles
    from spacon.tl._expression_pca import expression_pcs
    from spacon.tl._predict import _expression_genes
    from spacon.tl._smooth import average_over_graph

    t0 = time.perf_counter()
    adata, conn = brain(harder=args.harder)  # normalised, spatial graph built
    new = adata.obs["section"].astype(str).isin(HELD_OUT).to_numpy()
    train, tissue = adata[~new].copy(), adata[new].copy()
    info = adata.uns["synthetic_brain"]
    for a in (train, tissue):
        spacon.pp.spatial_graph(a, radius=info["suggested_radius"], section_key="section",
                                z_radius=info["suggested_z_radius"])
    spacon.pp.connectome_graph(train, conn, unit_key="unit", threshold=0.4)
    model = spacon.SpaCon(train)
    auxiliary = None
    if args.connectivity_code:
        profiles, _ = training_profiles(train, conn, "unit")
        auxiliary = spacon.model.ConnectivityCodeObjective(
            profiles, np.ones(train.n_obs, bool), args.connectivity_code, 16)
    model.train(args.epochs, progress=False, auxiliary=auxiliary)
    t1 = time.perf_counter()
    model.fit_connectivity_map(conn, unit_key="unit")
    t2 = time.perf_counter()
    predicted = {"SpaCon (spacon predict)": model.predict_connectivity(tissue).to_numpy()}
    t3 = time.perf_counter()
    pcs = expression_pcs(adata, ~new, 30, 0)
    smoothed = np.empty_like(pcs, dtype=np.float64)
    for part, cells in ((train, ~new), (tissue, new)):  # each tissue over its own graph
        smoothed[cells] = average_over_graph(pcs[cells], spatial_graph_of(part), 3)
    for name, features in (("expression, all genes", _expression_genes(adata, ~new)),
                           ("expression, 30 PCs", pcs),
                           ("smoothed expression (30 PCs, 3 hops)", smoothed)):
        cmap = fit_on_training_data(train, conn, features[~new], unit_key="unit",
                                    section_key="section")
        predicted[name] = cmap.predict(features[new])
    rows = spacon.io.positions_in(tissue.obs["unit"], conn.labels)
    truth = conn.matrix.toarray().clip(0)[rows]
    mean = conn.matrix.toarray().clip(0)[spacon.io.positions_in(train.obs["unit"],
                                                                conn.labels)].mean(axis=0)
    predicted.update(_baselines(train, tissue, conn))
    predicted["training cells' mean profile"] = np.tile(mean, (len(truth), 1))
    perm = spacon.tl._predict.spatial_null_order(tissue.obsm["spatial"])
    predicted["spatial null (SpaCon's, shifted)"] = predicted["SpaCon (spacon predict)"][perm]
    _report(predicted, truth, tissue.obs["unit"].astype(str).to_numpy(), rows)
    print(f"\ntraining {t1 - t0:.0f} s (with data), connectivity map {t2 - t1:.1f} s, "
          f"prediction {t3 - t2:.1f} s; {train.n_obs} training cells, {tissue.n_obs} new")


def _baselines(train, tissue, conn) -> dict:
    """Distance decay and spatial k-NN (k = 50) from the training cells' profiles."""
    from sklearn.neighbors import NearestNeighbors

    from spacon.tl._predict import (
        _distances,
        _fit_distance_decay,
        _mean_profile,
        _target_centres,
    )

    matrix = conn.matrix.tocsr().maximum(0)
    n_targets = matrix.shape[1]
    rows = spacon_rows(train, conn)
    xy = np.vstack([train.obsm["spatial"], tissue.obsm["spatial"]]).astype(np.float64)
    fit = np.arange(train.n_obs)
    y = matrix[rows]
    mean = _mean_profile(y, rows, n_targets)
    # each target at its training cells' centroid (targets without training cells: the mean)
    centres = _target_centres(xy[fit], rows, n_targets)
    d = _distances(xy[train.n_obs:], centres)
    located = np.isfinite(centres[:, 0])
    out = {}
    for name, level in (("distance decay (no expression)", np.zeros_like(mean)),
                        ("distance decay + each target's mean (no expression)", mean)):
        decay, a, c, b = _fit_distance_decay(xy, centres, rows, fit, y, level, 0)
        out[name] = a * np.exp(-d / decay) + c * level + b
        out[name][:, ~located] = mean[~located]
    near = NearestNeighbors(n_neighbors=50).fit(xy[fit]).kneighbors(
        xy[train.n_obs:], return_distance=False)
    dense = y.toarray()
    out["spatial k-NN, 50 training cells (no expression)"] = dense[near].mean(axis=1)
    return out


def spacon_rows(adata, conn) -> np.ndarray:
    import spacon

    return spacon.io.positions_in(adata.obs["unit"], conn.labels)


def _report(predicted: dict, truth: np.ndarray, units: np.ndarray, own: np.ndarray) -> None:
    from spacon.tl._predict import auroc_rows, pearson_rows

    names, unit = np.unique(units, return_inverse=True)
    counts = np.bincount(unit)
    first = np.array([np.flatnonzero(unit == u)[0] for u in range(len(names))])
    others = np.ones(truth.shape, dtype=bool)
    others[np.arange(len(truth)), own] = False  # each cell's own target left out, as scored

    def drop_own(values, keep=others):
        return values[keep].reshape(len(keep), truth.shape[1] - 1)

    unit_others = others[first]
    print(f"{len(truth)} held-out cells in {len(names)} units (sections {', '.join(HELD_OUT)})")
    print(f"{'predictor':<54}{'r, cells':>10}{'AUROC':>8}{'r, units':>10}")
    for name, p in predicted.items():
        r = np.nanmean(pearson_rows(drop_own(p), drop_own(truth)))
        auc = np.nanmean(auroc_rows(drop_own(p), drop_own(truth) > 0.4))
        unit_p = np.zeros((len(names), p.shape[1]))
        np.add.at(unit_p, unit, p)
        r_units = np.nanmean(pearson_rows(drop_own(unit_p / counts[:, None], unit_others),
                                          drop_own(truth[first], unit_others)))
        print(f"{name:<54}{r:>10.3f}{auc:>8.3f}{r_units:>10.3f}", flush=True)


if __name__ == "__main__":
    main()
