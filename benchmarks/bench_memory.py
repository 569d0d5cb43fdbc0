"""How close spacon's memory estimates are to the measured peak, at several sizes.

Run:  python benchmarks/bench_memory.py [--sizes 5000 20000] [--genes 300]

For each size, in a fresh process: build the graphs, note the resident memory, then run the
step and measure the peak above that baseline (VmHWM after resetting it). Compared:

* full-batch training (two steps) against :meth:`SpaCon.full_batch_bytes`, which
  ``mode="auto"`` uses to choose between full-batch and sampled training and which
  ``mode="full"`` checks against the free memory before it starts;
* exact layer-wise embedding against :meth:`SpaCon.embed_bytes`.

The target (reliability issue) is an estimate within 25% of the measured peak.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def one(n_cells: int, n_genes: int, what: str) -> dict:
    from _measure import _peak_rss_gb, _reset_peak, prepared_brain

    import spacon

    adata = prepared_brain(n_cells, n_genes, max(12, n_cells // 500))
    model = spacon.SpaCon(adata, seed=0)
    # (embedding an untrained model costs the same memory as a trained one)
    _reset_peak()
    base = _peak_rss_gb()
    if what == "full":
        estimate = model.full_batch_bytes() / 1024**3
        model.train(2, mode="full", progress=False)
    else:
        estimate = model.embed_bytes() / 1024**3
        model.embed()
    measured = _peak_rss_gb() - base
    return {"n_cells": n_cells, "n_genes": n_genes, "step": what,
            "connectome_edges": int(model.data.connectome.n_edges),
            "spatial_edges": int(model.data.spatial.n_edges), "estimate_gb": round(estimate, 3),
            "measured_gb": round(measured, 3), "error": round(estimate / measured - 1, 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    p.add_argument("--genes", type=int, default=300)
    p.add_argument("--_one", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._one:
        print(json.dumps(one(int(args._one[0]), args.genes, args._one[1])))
        return
    rows = []
    for n in args.sizes:
        for what in ("full", "embed"):
            out = subprocess.run([sys.executable, __file__, "--_one", str(n), what, "--genes",
                                  str(args.genes)], check=True, capture_output=True, text=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'cells':>8}{'step':>7}{'conn. edges':>13}{'estimate GB':>13}{'measured GB':>13}"
          f"{'error':>8}")
    for r in rows:
        print(f"{r['n_cells']:>8,}{r['step']:>7}{r['connectome_edges']:>13,}"
              f"{r['estimate_gb']:>13.3f}{r['measured_gb']:>13.3f}{r['error']:>+8.0%}")


if __name__ == "__main__":
    main()
