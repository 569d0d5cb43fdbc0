"""Connectivity prediction on the default synthetic brain, every feature space and baseline.

Run:  python benchmarks/bench_predict_baselines.py [--predictor ridge|knn] [--epochs 5]
          [--methods spacon smoothed ...] [--json out.json]

What the README's ``spacon evaluate connectivity`` command under Usage measures (the default
synthetic brain of ``spacon simulate``: 6,000 cells, 560 voxel units as targets, 4 folds by
section, connected = value > 0.4, SpaCon trained 5 epochs per fold), called through
:func:`spacon.tl.predict_connectivity` with every method: SpaCon's spatial embedding, smoothed
expression, expression PCs, all genes, position, PCs + position, the three baselines without
features (distance decay fitted on training profiles, with one intercept and on each target's
mean, and the training mean profile) and the
spatial null. Prints Pearson r, AUROC and MSE, mean +- sd over folds, and the seconds taken.
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    from spacon.tl._predict import METHODS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictor", choices=["ridge", "knn"], default="ridge")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    import spacon

    start = time.perf_counter()
    adata, conn = spacon.datasets.synthetic_brain(seed=args.seed)
    info = adata.uns["synthetic_brain"]
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, radius=info["suggested_radius"], section_key="section",
                            z_radius=info["suggested_z_radius"])
    result = spacon.tl.predict_connectivity(
        adata, conn, unit_key="unit", folds=4, section_key="section", threshold=0.4,
        predictor=args.predictor, methods=args.methods, seed=args.seed,
        train_kwargs={"epochs": args.epochs, "progress": False})
    seconds = time.perf_counter() - start
    print(f"default synthetic brain, {args.predictor}, 4 folds by section, connected = value > "
          f"0.4; {seconds:.0f} s")
    print(f"{'method':<22}{'Pearson r':>16}{'AUROC':>16}{'MSE':>18}")
    for method, row in result.items():
        print(f"{method:<22}{row['pearson_r']:>9.3f} ± {row['pearson_r_sd']:.3f}"
              f"{row['auroc']:>9.3f} ± {row['auroc_sd']:.3f}"
              f"{row['mse']:>10.4f} ± {row['mse_sd']:.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seconds": seconds, "predictor": args.predictor,
                       "metrics": {m: {k: v for k, v in r.items() if k != "per_fold"}
                                   for m, r in result.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
