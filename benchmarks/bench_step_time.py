"""Seconds per sampled training step (default settings) on the default synthetic brain.

Run:  python benchmarks/bench_step_time.py --cells 50000 [--genes 1000] [--steps 5]

Preparation (simulate, normalise, graphs) is not timed; one warm-up step runs first. To compare
two commits, run it in alternation with ``PYTHONPATH=<checkout>/src`` for each and the same
``OMP_NUM_THREADS``; the printed loss shows whether both trained identically.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", type=int, default=50_000)
    p.add_argument("--genes", type=int, default=1000)
    p.add_argument("--steps", type=int, default=5)
    args = p.parse_args()
    from _measure import prepared_brain

    import spacon

    t0 = time.perf_counter()
    adata = prepared_brain(args.cells, args.genes, max(12, round(args.cells / 1940)))
    prepare = time.perf_counter() - t0
    spacon.SpaCon(adata, seed=0).train(1, mode="sampled", progress=False, max_steps=1)
    model = spacon.SpaCon(adata, seed=0)
    t0 = time.perf_counter()
    model.train(1, mode="sampled", progress=False, max_steps=args.steps)
    per_step = (time.perf_counter() - t0) / args.steps
    print(json.dumps({"n_cells": args.cells, "prepare_s": round(prepare, 1), "steps": args.steps,
                      "s_per_step": round(per_step, 3), "loss": model.history[-1]["loss"]}))


if __name__ == "__main__":
    main()
