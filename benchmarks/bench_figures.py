"""Time of the figure stage of `spacon run` on a finished result (e.g. `spacon demo`'s).

Reruns the stage (`spacon._pipeline.draw_figures`) on DIR/result.h5ad with the run's own options at
each `--figures` level, each in a fresh process (as a run would: imports and any compilation
included), and, as the baseline, the UMAP figure the stage drew before: umap-learn on every
cell (up to 20,000), whose numba kernels compile in each new process.

    spacon demo --out spacon_demo
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_figures.py spacon_demo
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile

STAGE = """
import json, sys, time
from pathlib import Path
from types import SimpleNamespace
start = time.perf_counter()
import anndata as ad
from spacon._pipeline import RunConfig, draw_figures
directory, level, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
adata = ad.read_h5ad(directory / "result.h5ad")
summary = json.loads((directory / "summary.json").read_text())
params = {k: v for k, v in summary["parameters"].items() if k in RunConfig.__dataclass_fields__}
config = RunConfig(**{**params, "figures": level})
model = SimpleNamespace(history=[{"loss": v} for v in summary["loss_history"]])
loaded, cpu = time.perf_counter(), time.process_time()
if level == "umap-learn":
    import matplotlib
    matplotlib.use("Agg")
    import spacon
    spacon.pl.umap(adata, max_cells=20_000, backend="umap-learn").savefig(out / "umap.png")
    written = ["umap.png"]
else:
    written = draw_figures(adata, config, out, model)
print(f"{time.perf_counter() - loaded:.2f} {time.process_time() - cpu:.2f} {len(written)}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", help="a spacon run/demo output directory")
    parser.add_argument("--no-baseline", action="store_true", help="skip the umap-learn figure")
    args = parser.parse_args()
    levels = ["basic", "all"] + ([] if args.no_baseline else ["umap-learn"])
    rows = []
    for level in levels:
        with tempfile.TemporaryDirectory() as out:
            done = subprocess.run([sys.executable, "-c", STAGE, args.result, level, out],
                                  capture_output=True, text=True, check=True)
        seconds, cpu, count = done.stdout.split()[-3:]
        rows.append((level, float(seconds), float(cpu), int(count)))
    # CPU seconds of the (single-threaded) stage: what the wall time is on an idle machine
    print(f"figure stage on {args.result}, after reading the result")
    print(f"{'--figures':<48}{'figures':>8}{'wall s':>9}{'CPU s':>9}")
    for level, seconds, cpu, count in rows:
        name = ("umap.png alone, umap-learn (before; baseline)" if level == "umap-learn"
                else level)
        print(f"{name:<48}{count:>8}{seconds:>9.1f}{cpu:>9.1f}")


if __name__ == "__main__":
    main()
