"""Where a GPU step's kernel launches and synchronisations come from, counted on the CPU.

Run:  python benchmarks/device_path_ops.py [--steps 10] [--n-cells 6000]

Sampled training on a GPU runs the torch code path of the sampler and batch builder
(``spacon.graph._ops`` dispatches on the array type; on the CPU the same code runs on NumPy).
This script runs that torch path on CPU tensors, trains ``--steps`` sampled steps of the
default synthetic brain (``spacon demo``'s data and defaults) and counts, per step, every torch
op dispatched (on a GPU each is at least one kernel launch) by where it was called, and the ops
that make a GPU wait for the host: reading a value (``.item()``, ``int(tensor)``), ``nonzero``
and indexing with a boolean mask (their output size depends on the data). At the demo's size
a GPU step is bound by launches and synchronisations, not by GPU work (README, "Training on a
GPU"), so these counts are what a faster small-data step has to reduce.

The optimiser (``spacon.model._adam``) is counted as on a GPU: multi-tensor (``foreach``)
calls, each a few launches for all parameters. Gradient clipping's count is the CPU's: torch
loops over the parameters there and uses multi-tensor kernels on a GPU. Batches are made in
line here (on a GPU a second thread makes them one step ahead, with the same ops), since the
counter sees its own thread only.
"""

from __future__ import annotations

import argparse
import collections
import traceback

import torch
from _measure import prepared_brain
from torch.utils._python_dispatch import TorchDispatchMode

import spacon
from spacon.graph import _ops
from spacon.model import _batches

DATA_DEPENDENT = {"aten.nonzero.default", "aten.masked_select.default", "aten._unique2.default",
                  "aten.unique_consecutive.default", "aten.unique_dim.default"}
PHASES = {"graph/": "sampling", "nn/_adjacency": "building", "model/_rows": "building",
          "model/_batches": "building", "nn/": "forward", "model/_adam": "optimiser"}


def place() -> tuple[str, str]:
    """(phase, file:line function) of the innermost spacon frame calling the op."""
    frames = [f for f in traceback.extract_stack() if "/spacon/" in f.filename]
    if not frames:
        return "other", "outside spacon"
    f = frames[-1]
    where = f"{f.filename.split('/spacon/')[1]}:{f.lineno} {f.name}"
    text = f.line or ""
    if "backward" in text:
        return "backward", where
    if "clip_grad" in text:
        return "gradient clipping (CPU variant)", where
    for prefix, phase in PHASES.items():
        if where.startswith(prefix):
            return phase, where
    return "other", where


class OpCounter(TorchDispatchMode):
    """Counts dispatched ops per phase, and the synchronising ones per call site."""

    def __init__(self):
        super().__init__()
        self.per_phase = collections.Counter()
        self.syncs = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        phase, where = place()
        self.per_phase[phase] += 1
        name = str(func)
        syncing = None
        if name == "aten._local_scalar_dense.default":
            syncing = "value read"
        elif name in DATA_DEPENDENT:
            syncing = name.split(".")[1]
        elif name == "aten.index.Tensor" and any(
                i is not None and i.dtype == torch.bool for i in args[1]):
            syncing = "boolean mask"
        elif name.startswith("aten.repeat_interleave") and kwargs.get("output_size") is None:
            syncing = "repeat_interleave without output_size"
        if syncing and not phase.startswith("optimiser"):
            self.syncs[f"{syncing:<12} {where}"] += 1
        return func(*args, **kwargs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--n-cells", type=int, default=6000)
    args = p.parse_args()
    adata = prepared_brain(args.n_cells)
    model = spacon.SpaCon(adata, seed=0)
    _ops.is_cpu = lambda device: False  # the device (torch) path, on CPU tensors
    # batches made in line: the op counter sees this thread only (on a GPU a second thread
    # makes them, with the same ops)
    original = _batches.SampledBatches.__init__
    _batches.SampledBatches.__init__ = lambda self, *a, **k: original(
        self, *a, **{**k, "prefetch": False})
    counter = OpCounter()
    with counter:
        model.train(mode="sampled", epochs=1, max_steps=args.steps, progress=False, seed=0)
    n = args.steps
    print(f"synthetic brain, {adata.n_obs} cells; torch ops per sampled step "
          f"(mean of {n} steps):")
    for phase, count in counter.per_phase.most_common():
        print(f"  {count / n:8.1f}  {phase}")
    print(f"  {sum(counter.per_phase.values()) / n:8.1f}  in all")
    print("ops that make a GPU wait, per step, by call site (optimiser excluded):")
    for site, count in counter.syncs.most_common():
        print(f"  {count / n:8.1f}  {site}")
    print(f"  {sum(counter.syncs.values()) / n:8.1f}  in all")


if __name__ == "__main__":
    main()
