"""The first ``tl.domains`` call of a fresh Python process, on a busy machine.

Run:  python benchmarks/bench_first_domains_call.py [--busy 2] [--repeats 2]
          [--baseline-src OTHER_CHECKOUT/src]

A user who reads a saved result back and calls domains again (``import anndata, spacon``, no
scanpy, no torch) starts a process where scikit-learn is not yet imported. ``tl.domains`` fits
its mixtures with one thread each (``threadpoolctl``), but a limit covers only the thread pools
loaded when it is set: scikit-learn's OpenMP (its k-means) loaded later and ran with every core,
which beside busy processes made each k-means wait on the others. Here: a 900-cell synthetic
brain, the smoothed-expression embedding (no training), and the wall seconds of the first
``tl.domains`` in each fresh process, with ``--busy`` spinning processes beside it; with
``--baseline-src``, the same with another checkout's ``src``, in turn.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
CALL = """
import sys, time
import anndata, spacon
a = anndata.read_h5ad(sys.argv[1])
t = time.perf_counter()
spacon.tl.domains(a, use_rep="X_smoothed")
print(f"{time.perf_counter() - t:.2f} {a.obs['spacon_domain'].nunique()}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=2, help="spinning processes beside it")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--baseline-src", type=Path, default=None)
    args = parser.parse_args()
    import spacon

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "brain.h5ad"
        adata, _ = spacon.datasets.synthetic_brain(900, 80, 3, n_regions=6, n_modules=2, seed=0)
        spacon.pp.normalize(adata)
        spacon.pp.spatial_graph(adata, n_neighbors=8, section_key="section", z_radius=0)
        spacon.tl.smoothed_expression(adata)
        adata.write_h5ad(path)
        sources = [("this", SRC)] + ([("baseline", args.baseline_src.resolve())]
                                      if args.baseline_src else [])
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(args.busy)]
        try:
            for _ in range(args.repeats):
                for label, src in sources:
                    done = subprocess.run([sys.executable, "-c", CALL, str(path)], check=True,
                                          capture_output=True, text=True,
                                          env={**os.environ, "PYTHONPATH": str(src)})
                    seconds, n = done.stdout.split()
                    print(f"{label:>8}: first tl.domains {float(seconds):6.1f} s ({n} domains; "
                          f"{args.busy} busy processes beside it)", flush=True)
        finally:
            for process in busy:
                process.kill()


if __name__ == "__main__":
    main()
