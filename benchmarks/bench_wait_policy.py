"""Training time with OpenMP's waiting threads spinning (its default) or passive (spacon's),
on an idle machine and beside one busy process.

Run:  python benchmarks/bench_wait_policy.py [--repeats 2] [--threads 2] [--work DIR]

Simulates the demo brain once, then trains it for one epoch with ``spacon run ... --threads
THREADS`` (Leiden domains, no figures or report: the training stage is what is compared),
alternating the two settings, first idle, then with a pure-Python busy loop on one core
beside it. ``spacon`` sets ``OMP_WAIT_POLICY=PASSIVE`` unless the user set it; the default
here is OpenMP's own (the variable removed before torch loads). Prints the training stage's
seconds (``summary.json``) per run.

Measured (28 Nov, the 2-core machine, 2 threads, 24 steps): idle, 22.6 / 14.7 s spinning and
22.2 / 15.1 s passive (the first pair with a cold cache); beside the busy process 159.2 /
150.8 s spinning and 43.4 / 40.2 s passive. Rerun as this script (``--repeats 1``) a few
minutes later, while the host's pace had dropped (nothing else ran in the machine): idle 86.4 s
spinning, 40.4 s passive; busy 126.0 s spinning, 26.7 s passive. With threads that spin,
the thread that shares its core with the busy process waits for CPU time its partner spends
spinning, at every parallel step. ``spacon run`` chooses its threads from the idle CPUs
when it starts (a core already busy is left out); this is for load that comes later.
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

DEFAULT = ("import os, sys\nfrom spacon.cli import main\n"
           "os.environ.pop('OMP_WAIT_POLICY', None)\nsys.exit(main(sys.argv[1:]))")
PASSIVE = "import sys\nfrom spacon.cli import main\nsys.exit(main(sys.argv[1:]))"


def train_seconds(code: str, sim: Path, out: Path, threads: int) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    subprocess.run([sys.executable, "-c", code, "run", "--adata",
                    str(sim / "synthetic_brain.h5ad"), "--connectivity",
                    str(sim / "connectome.npz"), "--unit-key", "unit", "--section-key",
                    "section", "--radius", "675", "--z-radius", "337", "--threshold", "0.4",
                    "--epochs", "1", "--threads", str(threads), "--figures", "none",
                    "--no-report", "--method", "leiden", "--quiet", "--overwrite", "--out",
                    str(out)], check=True, env=env, capture_output=True)
    return json.loads((out / "summary.json").read_text())["timings_seconds"]["training"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", default=None)
    args = p.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="spacon_wait_"))
    sim = work / "sim"
    if not (sim / "synthetic_brain.h5ad").exists():
        subprocess.run(["spacon", "simulate", "--out", str(sim)], check=True,
                       capture_output=True)
    for load in ("idle", "one busy process beside it"):
        busy = None
        if load != "idle":
            busy = subprocess.Popen([sys.executable, "-c", "while True: sum(range(10**6))"])
            time.sleep(1)
        try:
            for _ in range(args.repeats):
                for name, code in (("spinning (OpenMP default)", DEFAULT),
                                   ("passive (spacon)", PASSIVE)):
                    seconds = train_seconds(code, sim, work / "out", args.threads)
                    print(f"{load:<28} {name:<27} training {seconds:7.1f} s", flush=True)
        finally:
            if busy is not None:
                busy.kill()


if __name__ == "__main__":
    main()
