"""Whether CPU training gives the same bits on 1, 2 and 4 threads, and where it parts if not.

Run:  python benchmarks/thread_invariance.py [--steps 3] [--threads 2 4]
      MKL_CBWR=AUTO python benchmarks/thread_invariance.py   (without MKL's strict mode)
      PYTHONPATH=OTHER_CHECKOUT/src python benchmarks/thread_invariance.py   (another commit)

``spacon run`` and ``spacon demo`` train on the CPUs idle when they start, so the same command
can train on 1 thread one time and 2 the next. Before 29 Nov that changed the result (the demo
brain at alpha 0: ARI 0.832 with 15 domains on 1 thread, 0.777 with 14 on 2): torch splits
sums, matrix-vector products, batch norm's statistics and SIMD loops between threads at points
that depend on their number (see ``spacon/nn/_invariant.py``). On a 1,500-cell synthetic brain
this prints, for 1 thread against each other count: the largest difference of every module's
output and of every parameter's gradient after one full-batch forward and backward (in eval
mode, without dropout and batch statistics, and in train mode), the loss of each, and the
parameters after ``--steps`` steps of ``SpaCon.train``. The baseline is the 1-thread run; zeros
everywhere mean training does not depend on the thread count.
"""

from __future__ import annotations

import argparse

import torch


def brain():
    """A 1,500-cell synthetic brain, normalised, with both graphs (``_measure``'s helper)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from _measure import prepared_brain

    return prepared_brain(1500, 120, 3, n_regions=6, n_modules=2)


def one_pass(model, batch, threads: int, train: bool):
    """Module outputs, gradients and loss of one forward and backward on ``threads``."""
    from spacon.nn._invariant import squared_error

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    module = model.module
    module.train(train)
    module.zero_grad()
    outputs = {}
    hooks = [sub.register_forward_hook(
        lambda _, __, out, name=name: outputs.__setitem__(
            name, (out[0] if isinstance(out, tuple) else out).detach().clone()))
        for name, sub in module.named_modules() if name and not list(sub.children())]
    _, _, x_hat = module(batch.x, batch.adj_con, batch.adj_spa)
    loss = squared_error(x_hat, batch.x, "sum")  # as training_step computes it
    loss.backward()
    loss = loss.item()
    for hook in hooks:
        hook.remove()
    grads = {n: p.grad.detach().clone() for n, p in module.named_parameters()}
    return outputs, grads, loss


def differences(a: dict, b: dict) -> dict:
    return {n: float((a[n] - b[n]).abs().max()) for n in a if not torch.equal(a[n], b[n])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="training steps compared at the end")
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 4],
                        help="thread counts compared with 1")
    args = parser.parse_args()
    import spacon
    from spacon.model._batches import FullBatch

    adata = brain()
    model = spacon.SpaCon(adata, seed=0)
    batch = FullBatch(model.data, "cpu").batch
    for threads in args.threads:
        print(f"\n=== 1 thread against {threads}")
        for train in (False, True):
            (o1, g1, l1), (o2, g2, l2) = (one_pass(model, batch, t, train) for t in (1, threads))
            outs, grads = differences(o1, o2), differences(g1, g2)
            print(f"{'train' if train else 'eval'} mode: loss {l1!r} (1 thread) vs {l2!r} "
                  f"({threads})")
            print(f"  module outputs that differ: {len(outs)} of {len(o1)}"
                  + "".join(f"\n    {n}: {d:.3g}" for n, d in list(outs.items())[:8]))
            print(f"  gradients that differ: {len(grads)} of {len(g1)}"
                  + "".join(f"\n    {n}: {d:.3g}" for n, d in list(grads.items())[:8]))
    params = {}
    for threads in (1, *args.threads):
        trained = spacon.SpaCon(adata, seed=0)
        trained.train(max_steps=args.steps, progress=False, threads=threads)
        params[threads] = {n: p.detach().clone() for n, p in trained.module.named_parameters()}
    for threads in args.threads:
        diff = differences(params[1], params[threads])
        print(f"\nafter {args.steps} training steps, 1 thread against {threads}: {len(diff)} of "
              f"{len(params[1])} parameters differ, by up to {max(diff.values(), default=0.0):.3g}")


if __name__ == "__main__":
    main()
