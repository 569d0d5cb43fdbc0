"""Epoch time and peak memory of full-batch and sampled training, and of exact embedding.

Run:  python benchmarks/bench_training.py [--sizes 10000 100000] [--genes 300]

Full-batch: the mean of --steps steps (one step = one epoch). Sampled: the mean time of --steps
batches (default size) times the number of batches in an epoch.

Each (size, mode) runs in a fresh process so its peak RSS is its own. Full-batch training is
skipped (and said so) when its memory estimate exceeds --budget-gb.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def model_batches(model, n_cells: int) -> int:
    """Batches per sampled epoch at the batch size the model was trained with."""
    return -(-n_cells // model.train_params["batch_size"])


def one(n_cells: int, n_genes: int, mode: str, budget_gb: float, steps: int) -> dict:
    from _measure import Stages, prepared_brain

    import spacon

    stages = Stages()
    with stages.stage("prepare"):
        adata = prepared_brain(n_cells, n_genes, max(12, n_cells // 2000))
    model = spacon.SpaCon(adata)
    row = {"n_cells": n_cells, "n_genes": n_genes, "mode": mode,
           "implied_edges": adata.uns["connectome_neighbors"]["params"]["implied_cell_edges"],
           "full_batch_estimate_gb": round(model.full_batch_bytes() / 1024**3, 2)}
    if mode == "full" and model.full_batch_bytes() > budget_gb * 1024**3:
        row["skipped"] = f"full batch needs ~{row['full_batch_estimate_gb']} GB > {budget_gb} GB"
        return row
    with stages.stage("train") as r:
        t = time.perf_counter()
        if mode == "full":
            model.train(steps, mode="full", progress=False)
            per_epoch = (time.perf_counter() - t) / steps
        else:
            model.train(1, mode="sampled", progress=False, max_steps=steps)
            per_batch = (time.perf_counter() - t) / model.train_params["steps"]
            per_epoch = per_batch * model_batches(model, n_cells)
        r["seconds_per_epoch"] = per_epoch
    with stages.stage("embed"):
        model.embed()
    train, embed = stages.rows[1], stages.rows[2]
    row.update(seconds_per_epoch=round(train["seconds_per_epoch"], 2),
               train_peak_rss_gb=train["peak_rss_gb"], embed_seconds=embed["seconds"],
               embed_peak_rss_gb=embed["peak_rss_gb"],
               steps_per_epoch=1 if mode == "full" else model_batches(model, n_cells))
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--genes", type=int, default=300)
    parser.add_argument("--budget-gb", type=float, default=6.0)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--_one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._one:
        n, mode = int(args._one[0]), args._one[1]
        print(json.dumps(one(n, args.genes, mode, args.budget_gb, args.steps)))
        return
    rows = []
    for n in args.sizes:
        for mode in ("full", "sampled"):
            res = subprocess.run(
                [sys.executable, __file__, "--_one", str(n), mode, "--genes", str(args.genes),
                 "--budget-gb", str(args.budget_gb), "--steps", str(args.steps)],
                capture_output=True, text=True, check=True,
            )
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'cells':>8} {'mode':>8} {'implied edges':>14} {'s/epoch':>9} {'train GB':>9} "
          f"{'embed s':>8} {'embed GB':>9}")
    for r in rows:
        if "skipped" in r:
            print(f"{r['n_cells']:>8} {r['mode']:>8} {r['implied_edges']:>14,}  {r['skipped']}")
            continue
        print(f"{r['n_cells']:>8} {r['mode']:>8} {r['implied_edges']:>14,} "
              f"{r['seconds_per_epoch']:>9.2f} {r['train_peak_rss_gb']:>9.2f} "
              f"{r['embed_seconds']:>8.1f} {r['embed_peak_rss_gb']:>9.2f}")


if __name__ == "__main__":
    main()
