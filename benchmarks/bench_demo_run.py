"""Wall time and stages of ``spacon run`` on the default synthetic brain, against a baseline.

Run:  python benchmarks/bench_demo_run.py [--device cuda] [--repeats 2]
                                          [--baseline-src OTHER_CHECKOUT/src] [--work DIR]

Simulates the demo's data (``spacon simulate``) once, then runs the README's GPU check command
(``spacon run ... --device DEVICE --quiet``) ``--repeats`` times in fresh processes, each
with this checkout's ``src`` first on ``PYTHONPATH``, and once with ``--baseline-src`` (e.g.
``git archive OLD src | tar -x -C /tmp/old`` gives ``/tmp/old/src``) between them, so both
run on the same machine. Prints per run the wall time of the process (Python's start-up
included), the sum of the stages ``summary.json`` records, the stages, the training loop's
seconds and threads, and the number of domains per alpha.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
RUN = ["--unit-key", "unit", "--section-key", "section", "--radius", "675", "--z-radius", "337",
       "--threshold", "0.4", "--quiet", "--overwrite"]


def _with_src(src: Path) -> dict:
    """This environment with ``src`` first on ``PYTHONPATH`` (the rest kept: packages there)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(src), *filter(None, [os.environ.get("PYTHONPATH")])])}


def one(label: str, src: Path, work: Path, device: str) -> None:
    env = _with_src(src)
    out = work / label
    cmd = [sys.executable, "-m", "spacon.cli", "run", "--adata",
           str(work / "sim" / "synthetic_brain.h5ad"), "--connectivity",
           str(work / "sim" / "connectome.npz"), "--device", device, "--out", str(out), *RUN]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        print(f"{label}: failed\n{done.stderr[-2000:]}")
        return
    summary = json.loads((out / "summary.json").read_text())
    stages = summary["timings_seconds"]
    print(f"{label:>10}: wall {wall:5.1f} s, stages {sum(stages.values()):5.1f} s "
          f"(training {stages['training']:.1f}, loop {summary['training']['seconds']:.1f} on "
          f"{summary['training'].get('threads', '?')} threads; "
          f"domains {stages['domains']:.1f}; figures {stages['figures']:.1f}); "
          f"domains per alpha {summary['n_domains']}", flush=True)
    print(" " * 12 + json.dumps(stages))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--baseline-src", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=None,
                        help="keep the data and the runs' outputs here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) if args.work is None else args.work
        if not (work / "sim" / "synthetic_brain.h5ad").exists():  # (--work used before)
            subprocess.run([sys.executable, "-m", "spacon.cli", "simulate", "--out",
                            str(work / "sim")], check=True, env=_with_src(SRC))
        for i in range(args.repeats):
            one(f"this {i + 1}", SRC, work, args.device)
            if i == 0 and args.baseline_src is not None:
                one("baseline", args.baseline_src.resolve(), work, args.device)


if __name__ == "__main__":
    main()
