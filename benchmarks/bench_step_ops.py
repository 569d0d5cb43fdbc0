"""Where a CPU training step's time goes, by torch operation (the torch profiler's self time).

Run:  python benchmarks/bench_step_ops.py RESULT.h5ad [--steps 12] [--threads 2] [--top 12]

``RESULT.h5ad`` is a ``spacon run`` result (it holds both graphs), e.g. ``spacon_demo/result.h5ad``
of ``spacon demo``. After 3 warm-up steps, ``--steps`` sampled steps of a new model (the
defaults of ``spacon run``) run under the profiler; printed: the wall time per step, then the
operations with the most self time per step, their share of the profiled self time and calls
per step. Sampling and building the batch are NumPy work outside torch (``bench_training.py``
times them); the profiled share is the model's forward, backward and optimiser step.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    from _measure import add_batch_option, batch_options

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--top", type=int, default=12)
    add_batch_option(parser)
    args = parser.parse_args()
    batches = batch_options(args)
    import anndata
    from torch.profiler import ProfilerActivity, profile

    import spacon

    adata = anndata.read_h5ad(args.result)
    spacon.SpaCon(adata, seed=0).train(max_steps=3, progress=False, threads=args.threads,
                                       **batches)
    model = spacon.SpaCon(adata, seed=0)
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model.train(max_steps=args.steps, progress=False, threads=args.threads, **batches)
    wall = (time.perf_counter() - start) / args.steps
    rows = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    total = sum(e.self_cpu_time_total for e in rows)
    print(f"{args.steps} steps, {args.threads} threads: {wall * 1e3:.0f} ms per step (wall); "
          f"torch operations {total / 1e3 / args.steps:.0f} ms of CPU time per step")
    print(f"{'operation':<32}{'ms / step':>10}{'share':>8}{'calls / step':>14}")
    for e in sorted(rows, key=lambda e: -e.self_cpu_time_total)[: args.top]:
        print(f"{e.key:<32}{e.self_cpu_time_total / 1e3 / args.steps:>10.1f}"
              f"{e.self_cpu_time_total / total:>8.0%}{e.count / args.steps:>14.0f}")


if __name__ == "__main__":
    main()
