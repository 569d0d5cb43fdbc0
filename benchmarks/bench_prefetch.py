"""Sampled training with batches made ahead in a thread (the GPU default) against in line.

Run:  python benchmarks/bench_prefetch.py [--device cuda] [--repeats 2] [--n-cells 6000]

Trains the default schedule (``SpaCon.train()``: 500 sampled steps on the 6,000-cell demo
brain) alternately with ``SampledBatches(prefetch=False)`` and ``prefetch=True``, in one
process after a warm-up, and prints each run's seconds, the loop's seconds and the last loss
(the same batches either way, so the same loss on the CPU and close on a GPU). On the CPU
(NumPy sampling) prefetching is off by default: the thread only contends with torch's.
"""

from __future__ import annotations

import argparse
import time

from _measure import prepared_brain

import spacon
from spacon.model import _batches


def train(adata, device: str, prefetch: bool, max_steps=None):
    original = _batches.SampledBatches.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **{**kwargs, "prefetch": prefetch})

    _batches.SampledBatches.__init__ = init
    try:
        model = spacon.SpaCon(adata, seed=0)
        t0 = time.perf_counter()
        model.train(progress=False, device=device, max_steps=max_steps)
        return model, time.perf_counter() - t0
    finally:
        _batches.SampledBatches.__init__ = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--n-cells", type=int, default=6000)
    args = parser.parse_args()
    adata = prepared_brain(args.n_cells)
    train(adata, args.device, False, max_steps=5)  # warm-up: first kernels, allocator
    for _ in range(args.repeats):
        for prefetch in (False, True):
            model, seconds = train(adata, args.device, prefetch)
            print(f"prefetch {str(prefetch):>5}: {model.train_params['steps']} steps in "
                  f"{seconds:.2f} s (loop {model.train_params['seconds']:.2f} s), last loss "
                  f"{model.history[-1]['loss']:.2f}", flush=True)


if __name__ == "__main__":
    main()
