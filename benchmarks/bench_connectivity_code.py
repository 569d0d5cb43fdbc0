"""Does the auxiliary connectivity-code objective make SpaCon predict held-out connectivity
better?

Run:  python benchmarks/bench_connectivity_code.py [--data ../shared/data] [--only default,human]
      [--weights 1,10] [--components 10] [--epochs 5] [--json out.json]

:func:`spacon.tl.predict_connectivity` (ridge, same folds and targets as
``bench_predict_features.py``) with SpaCon trained as published (reconstruction only) and with
``connectivity_code=K``: the spatial embedding also predicts the top K principal components
of the training cells' connectivity rows through a linear head (held-out rows and columns
removed), at each loss weight. Printed next to the expression baselines (30 PCs, all genes)
and the spatially-aware null, on the default synthetic brain (4 folds by section, threshold
0.4, 5 epochs per fold), the harder brain of ``bench_predict_features.py`` (``--only harder``)
and the human ENIGMA FC / SC regions (5 spatial-block folds).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def run(adata, conn, *, weights, components, **kwargs) -> dict:
    """Baselines and SpaCon without, then with the objective at each weight."""
    import spacon

    out = {}
    base = spacon.tl.predict_connectivity(
        adata, conn, methods=("spacon", "expression", "genes", "null"), **kwargs)
    out.update({("SpaCon" if m == "spacon" else m): v for m, v in base.items()})
    for w in weights:
        t0 = time.perf_counter()
        res = spacon.tl.predict_connectivity(adata, conn, methods=("spacon", "null"),
                                             connectivity_code=components,
                                             connectivity_code_weight=w, **kwargs)
        out[f"SpaCon + code (K={components}, weight {w:g})"] = res["spacon"]
        out[f"null of SpaCon + code (weight {w:g})"] = res["null"]
        print(f"  weight {w:g}: r {res['spacon']['pearson_r']:.3f} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--only", default="default,human")
    p.add_argument("--weights", default="1,10")
    p.add_argument("--components", type=int, default=10)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--json", default=None)
    args = p.parse_args()

    weights = [float(w) for w in args.weights.split(",")]
    results = {}
    for name in args.only.split(","):
        t0 = time.perf_counter()
        if name in ("default", "harder"):
            sys.path.insert(0, str(Path(__file__).parent))
            from bench_predict_features import brain

            adata, conn = brain(harder=name == "harder")
            results[name] = run(adata, conn, weights=weights, components=args.components,
                                unit_key="unit", folds=4, section_key="section",
                                threshold=0.4,
                                train_kwargs={"epochs": args.epochs, "progress": False})
        elif name == "human":
            sys.path.insert(0, str(Path(__file__).parent))
            from _human import prediction_cases

            for kind, adata, conn, threshold in prediction_cases(Path(args.data)):
                results[f"human {kind}"] = run(
                    adata, conn, weights=weights, components=args.components, folds=5,
                    threshold=threshold, model_kwargs={"hidden_dims": (64, 32, 8)},
                    train_kwargs={"progress": False})
        for key in [k for k in results if k.startswith(name)]:
            print(f"\n{key}: ridge, mean ± sd over folds ({time.perf_counter() - t0:.0f} s)")
            print(f"{'features':<42}{'Pearson r':>16}{'AUROC':>16}{'MSE':>12}")
            for m, d in results[key].items():
                print(f"{m:<42}{d['pearson_r']:>9.3f} ± {d['pearson_r_sd']:.3f}"
                      f"{d['auroc']:>9.3f} ± {d['auroc_sd']:.3f}{d['mse']:>12.4g}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
