"""Seconds per sampled training step (default settings) on the default synthetic brain.

Run:  python benchmarks/bench_step_time.py --cells 50000 [--genes 1000] [--steps 5]
            [--baseline-src OTHER_CHECKOUT/src [--repeats 3]]

Preparation (simulate, normalise, graphs) is not timed; one warm-up step runs first. With
``--baseline-src`` (e.g. a ``git worktree`` of the commit before), each measurement runs in a
fresh process, this checkout's ``src`` and the baseline's in turn, ``--repeats`` times each,
and the medians and their ratio are printed; the losses show whether both trained identically.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
SRC = Path(__file__).resolve().parents[1] / "src"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", type=int, default=50_000)
    p.add_argument("--genes", type=int, default=1000)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--baseline-src", type=Path, default=None,
                   help="another checkout's src: measured in turn with this one")
    p.add_argument("--repeats", type=int, default=3, help="runs of each, with --baseline-src")
    args = p.parse_args()
    if args.baseline_src is None:
        measure(args)
    else:
        compare(args)


def compare(args) -> None:
    """This checkout and the baseline in turn, each run a fresh process."""
    flags = ["--cells", str(args.cells), "--genes", str(args.genes), "--steps", str(args.steps)]
    runs: dict[str, list[dict]] = {"this": [], "baseline": []}
    for _ in range(args.repeats):
        for label, src in (("this", SRC), ("baseline", args.baseline_src.resolve())):
            env = {**os.environ, "PYTHONPATH": str(src)}
            done = subprocess.run([sys.executable, __file__, *flags], env=env, check=True,
                                  capture_output=True, text=True)
            row = json.loads(done.stdout.strip().splitlines()[-1])
            runs[label].append(row)
            print(f"{label:>8}: {json.dumps(row)}", flush=True)
    this, base = (statistics.median(r["s_per_step"] for r in runs[k])
                  for k in ("this", "baseline"))
    same = {r["loss"] for r in runs["this"]} == {r["loss"] for r in runs["baseline"]}
    print(f"median s per step: this {this:.3f}, baseline {base:.3f}, ratio {this / base:.3f}; "
          f"losses {'identical' if same else 'differ'}")


def measure(args) -> None:
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
