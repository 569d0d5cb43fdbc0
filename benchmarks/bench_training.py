"""Where a sampled training step's time goes, on the CPU or a GPU, at whole-brain tier sizes.

Run:  python benchmarks/bench_training.py [--sizes 50000 250000] [--genes 1000] [--device cpu]
      [--steps 10] [--schedule] [--cells-per-unit 4 --density 0.02]

The brain is the one of ``bench_scaling.py`` (40 regions, 5 connectivity modules, ~60 cells per
connectivity unit, ~1,940 cells per section), preprocessed as ``spacon run`` does. Each size runs
in a fresh process. Printed per size, over ``--steps`` sampled steps with the default settings
(64 seeds, fan-outs 5/3/3, 8 spatial neighbours since 28 Nov; the README's CPU table was
measured with the former 256 seeds, 10/5/5 and 20):

- the step's parts: **sample** (the subgraph, drawn on the training device), **build** (its
  adjacencies and expression rows, built on the device: nothing is copied from the host) and
  **train** (forward, backward, optimiser step), each timed with the device synchronised;
- seconds per step of ``SpaCon.train`` itself (the real loop, parts not synchronised);
- on a GPU, the share of the loop's wall time the GPU was computing (kernel time over wall
  time, from the torch profiler over the same steps);
- with ``--schedule``: the wall time of the default schedule (``SpaCon.train()``: 500 steps).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_scaling import add_brain_options, brain_flags  # noqa: E402


def whole_brain(n_cells: int, n_genes: int, brain: dict):
    """A brain of bench_scaling's tiers, normalised, with both graphs."""
    from _measure import prepared_brain
    from bench_scaling import THRESHOLD

    return prepared_brain(n_cells, n_genes, max(12, round(n_cells / 1940)), threshold=THRESHOLD,
                          **brain)


def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def parts(model, device, steps: int, batches: dict) -> dict:
    """Mean seconds of sample / build / train over ``steps`` steps, device synchronised."""
    import torch

    from spacon.graph import NeighborSampler
    from spacon.graph import _ops as ops
    from spacon.model import SampledBatches, TrainConfig
    from spacon.model._distributed import LocalSync
    from spacon.model._train import training_step

    config = TrainConfig(epochs=1, mode="sampled", **batches)
    sampler = NeighborSampler(model.data.connectome, model.data.spatial, config.fanouts,
                              config.batch_size, spatial_fanout=config.spatial_fanout, seed=0,
                              device=device)
    batches = SampledBatches(model.data, sampler)
    module = model.module.to(device).train()
    optimizer = torch.optim.Adam(module.parameters(), lr=config.lr)
    order = ops.permutation(ops.generator([0], device), sampler.n_cells, device)
    totals = {"sample": 0.0, "build": 0.0, "train": 0.0}
    nodes = edges = 0
    for b in range(steps + 1):  # the first step warms up and is not counted
        seeds = order[b * config.batch_size:(b + 1) * config.batch_size]
        _sync(device)
        t0 = time.perf_counter()
        subgraph = sampler.sample(seeds, ops.generator([0, b], device))
        _sync(device)
        t1 = time.perf_counter()
        batch = batches.assemble(subgraph)
        _sync(device)
        t2 = time.perf_counter()
        training_step(module, optimizer, batch, config, LocalSync())
        _sync(device)
        t3 = time.perf_counter()
        if b:
            for key, dt in zip(totals, (t1 - t0, t2 - t1, t3 - t2)):
                totals[key] += dt
            nodes += len(batch.x)
            edges += batch.adj_con.n_edges + batch.adj_spa.n_edges
    model.module.to("cpu")
    out = {key: round(v / steps, 4) for key, v in totals.items()}
    out.update(mean_nodes=nodes // steps, mean_edges=edges // steps)
    return out


def gpu_busy_share(adata, device, steps: int, batches: dict) -> float:
    """Kernel time over wall time of ``steps`` steps of ``SpaCon.train`` (torch profiler)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    import spacon

    model = spacon.SpaCon(adata, seed=0)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        model.train(1, mode="sampled", progress=False, max_steps=steps, device=str(device),
                    **batches)
        torch.cuda.synchronize(device)
        wall = time.perf_counter() - t0
    kernel_us = sum(e.self_device_time_total for e in prof.key_averages())
    return round(kernel_us / 1e6 / wall, 3)


def one(n_cells: int, n_genes: int, device_name: str, steps: int, schedule: bool,
        brain: dict, batches: dict) -> dict:
    import torch

    import spacon
    from spacon._utils import flush_denormals

    device = torch.device(device_name)
    t0 = time.perf_counter()
    adata = whole_brain(n_cells, n_genes, brain)
    row = {"n_cells": n_cells, "n_genes": n_genes, "device": device_name,
           "card": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
           "threads": torch.get_num_threads(), "prepare_s": round(time.perf_counter() - t0, 1),
           "brain": brain,
           "implied_edges": adata.uns["connectome_neighbors"]["params"]["implied_cell_edges"]}
    with flush_denormals():  # as SpaCon.train does
        row.update(parts(spacon.SpaCon(adata, seed=0), device, steps, batches))
    model = spacon.SpaCon(adata, seed=0)
    t0 = time.perf_counter()
    model.train(1, mode="sampled", progress=False, max_steps=steps, device=device_name,
                **batches)
    row["train_s_per_step"] = round((time.perf_counter() - t0) / steps, 4)
    if device.type == "cuda":
        row["gpu_busy_share"] = gpu_busy_share(adata, device, steps, batches)
    if schedule:
        model = spacon.SpaCon(adata, seed=0)
        t0, start = time.perf_counter(), time.time()
        model.train(progress=False, device=device_name, **batches)
        row.update(schedule_steps=model.train_params["steps"],
                   schedule_s=round(time.perf_counter() - t0, 1),
                   schedule_unix=[round(start, 1), round(time.time(), 1)],
                   schedule_final_loss=round(model.history[-1]["loss"], 1))
    return row


def main():
    from _measure import add_batch_option, batch_options, run_child

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 250_000])
    parser.add_argument("--genes", type=int, default=1000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--schedule", action="store_true", help="also time the 500-step default")
    add_brain_options(parser)
    add_batch_option(parser)
    parser.add_argument("--_one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._one:
        from bench_scaling import brain_params

        brain = brain_params(args._one, args.cells_per_unit, args.density)
        print(json.dumps(one(args._one, args.genes, args.device, args.steps, args.schedule,
                             brain, batch_options(args))))
        return
    rows = []
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--_one", str(n), "--genes", str(args.genes), "--device",
               args.device, "--steps", str(args.steps)] + ["--schedule"] * args.schedule
        cmd += ["--former-batches"] * args.former_batches
        cmd += brain_flags(args)
        row = run_child(cmd, f"{n} cells")
        if row is None:
            break
        rows.append(row)
    print(f"\n{'cells':>8} {'device':>22} {'nodes/step':>10} {'sample s':>9} {'build s':>8} "
          f"{'train s':>8} {'loop s/step':>11} {'GPU busy':>8}")
    for r in rows:
        busy = f"{r['gpu_busy_share']:.0%}" if "gpu_busy_share" in r else "-"
        print(f"{r['n_cells']:>8} {r['card']:>22} {r['mean_nodes']:>10} {r['sample']:>9.3f} "
              f"{r['build']:>8.3f} {r['train']:>8.3f} {r['train_s_per_step']:>11.3f} {busy:>8}")
        if "schedule_s" in r:
            print(f"{'':>8} default schedule: {r['schedule_steps']} steps in {r['schedule_s']} s "
                  f"(final loss {r['schedule_final_loss']}; unix time "
                  f"{r['schedule_unix'][0]}-{r['schedule_unix'][1]}, for benchmarks/gpu_busy.py)")


if __name__ == "__main__":
    main()
