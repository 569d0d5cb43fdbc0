"""How often torch's CPU ``exp`` differs between processes for the same inputs, with and
without spacon's resolving of MKL's vector functions first (``_utils.resolve_vector_math``).

Run:  python benchmarks/bench_vector_math.py [--training 45] [--waves 60] [--at-once 8]

oneMKL 2024.2 (in torch's CPU wheels) chooses a vector function's kernel on its first call;
first calls from several threads at once can run a low-accuracy kernel on one thread's share
(pytorch/pytorch#188792). Each wave starts ``--at-once`` processes together, half of them
"cold" (torch as it comes) and half "resolved" (one-element calls first); each takes the
``exp`` of the same 68,269 numbers with two threads (the first attention layer's size in
``tests/test_repeatable.py``) and prints a digest. Prints how many distinct digests each kind
gave. ``--training N`` also runs N processes of each kind of that test's whole training script,
two at a time beside a busy process (the resolving is switched off by marking it done).

What it was (28 Nov, the 2-core machine): before the warm-up, about 5 in 400 processes of that
training script, three at a time beside a busy process, differed from the rest. Logging every
op of the first step (a ``TorchDispatchMode``) showed the first difference at the first
``exp``, on identical inputs; its output is, bit for bit, MKL's low-accuracy (``VML_EP``) AVX2
``exp`` on the first thread's half and the requested accurate one on the second (34,108 of
34,135 values off, by up to 1.5e-4 relative). The ``exp`` part alone (this script's waves) did
not reproduce it in 90 processes of each kind. With ``--training 45`` after the fix, neither
kind differed (0 of 45 each, the same digest as before the fix): at a rate near 1% that shows
the warm-up changes no normal result, not that it removes the race. Upstream's storm with the
same one-element warm-up (the fix, pytorch/pytorch#188791, citing #188792): 216 of 4,160
first calls corrupted without it, 0 of 5,200 with it.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
from pathlib import Path

EXP = """
import hashlib, sys, torch
torch.set_num_threads(2)
x = torch.sigmoid(torch.randn(68269, generator=torch.Generator().manual_seed(0)))
if sys.argv[1] == "resolved":
    from spacon._utils import resolve_vector_math
    resolve_vector_math()
print(hashlib.sha256(torch.exp(x).numpy().tobytes()).hexdigest()[:12])
"""

COLD = "import spacon._utils\nspacon._utils._vector_math_resolved = True\n"


def count(kind_commands: dict, waves: int, at_once: int, busy: bool = False) -> None:
    """Start the commands of every kind together, ``waves`` times; print the digests."""
    counts = {kind: collections.Counter() for kind in kind_commands}
    hog = (subprocess.Popen([sys.executable, "-c", "while True: sum(range(10**6))"])
           if busy else None)
    try:
        for _ in range(waves):
            procs = [(kind, subprocess.Popen(command, stdout=subprocess.PIPE,
                                             stderr=subprocess.DEVNULL, text=True))
                     for _ in range(max(at_once // len(kind_commands), 1))
                     for kind, command in kind_commands.items()]
            for kind, proc in procs:
                out = proc.communicate()[0].strip().splitlines()
                counts[kind][out[-1][:12] if out else "failed"] += 1
    finally:
        if hog is not None:
            hog.kill()
    for kind, digests in counts.items():
        print(f"{kind:<10} {sum(digests.values())} processes, {len(digests)} distinct digests: "
              f"{dict(digests.most_common())}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--waves", type=int, default=0, help="0: skip")
    p.add_argument("--at-once", type=int, default=8)
    p.add_argument("--training", type=int, default=45, help="training processes per kind")
    args = p.parse_args()
    if args.waves:
        print(f"exp of 68,269 numbers, two threads, {args.at_once} processes at once:")
        count({kind: [sys.executable, "-c", EXP, kind] for kind in ("cold", "resolved")},
              args.waves, args.at_once)
    if args.training:
        sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
        from test_repeatable import SCRIPT as script
        print("tests/test_repeatable.py's training, two at a time beside a busy process:")
        count({"cold": [sys.executable, "-c", COLD + script],
               "resolved": [sys.executable, "-c", script]}, args.training, 2, busy=True)


if __name__ == "__main__":
    main()
