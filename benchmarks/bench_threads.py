"""Training speed on an idle machine and next to a busy process, by thread choice.

Run:  python benchmarks/bench_threads.py [--steps 40] [--cells 6000]

Trains --steps sampled steps of the default model on the default synthetic brain three
ways: on an idle machine with the default thread choice; with a busy-loop process started
by this script, first with the default choice (which leaves busy CPUs out) and then with
one thread per usable CPU (what torch does by itself). The busy process is stopped when the
script ends (and stops itself after 15 minutes). Prints seconds per step and the ratio to
the idle run; the issue's target is a ratio of at most 1.5 for the default.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

BUSY = "import time\nend = time.time() + 900\nwhile time.time() < end:\n    pass\n"


def seconds_per_step(adata, steps: int, threads: int | None) -> tuple[float, int]:
    import spacon

    model = spacon.SpaCon(adata, seed=0)
    start = time.perf_counter()
    model.train(1, mode="sampled", max_steps=steps, progress=False, threads=threads)
    return (time.perf_counter() - start) / model.train_params["steps"], \
        model.train_params["threads"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--cells", type=int, default=6000)
    args = parser.parse_args()

    from _measure import prepared_brain

    from spacon._utils import available_cpus

    adata = prepared_brain(args.cells, 300, 12)
    rows = [("idle, default threads", *seconds_per_step(adata, args.steps, None))]
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        time.sleep(1.0)
        rows.append(("busy, default threads", *seconds_per_step(adata, args.steps, None)))
        rows.append(("busy, one thread per CPU",
                     *seconds_per_step(adata, args.steps, available_cpus())))
    finally:
        busy.kill()
        busy.wait()
    idle = rows[0][1]
    print(f"{'':<28}{'threads':>8}{'s/step':>9}{'x idle':>8}")
    for name, seconds, threads in rows:
        print(f"{name:<28}{threads:>8}{seconds:>9.3f}{seconds / idle:>8.2f}")


if __name__ == "__main__":
    main()
