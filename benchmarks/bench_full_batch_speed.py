"""Full-batch training speed on the 4,000-cell layered slice: today's SpaCon and the recipe.

Run:  OMP_NUM_THREADS=1 python benchmarks/bench_full_batch_speed.py [--epochs 20]

Times ``--epochs`` full-batch steps (spatial encoder alone, 10 nearest neighbours) and prints
CPU seconds per step and the 500-step projection, for: ``SpaCon.train`` as it is; the same
with denormal floats flushed to zero (``torch.set_flush_denormal(True)``); and the recipe of
``_encoder_variants.py`` (30 expression PCs in and out) with denormals flushed. CPU time is
reported next to wall time because on a shared machine wall time measures the neighbours.
"""

from __future__ import annotations

import argparse
import time

import torch

import spacon


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--variant", default="default+input=pca")
    args = p.parse_args()
    a = spacon.datasets.layered_slice(4000, seed=0)
    spacon.pp.normalize(a)
    spacon.pp.spatial_graph(a, n_neighbors=10)
    rows = []
    for flush in (False, True):
        torch.set_flush_denormal(flush)
        model = spacon.SpaCon(a, connectome_key=None, seed=0)
        cpu, wall = time.process_time(), time.perf_counter()
        model.train(args.epochs, mode="full", progress=False)
        rows.append((f"SpaCon.train, genes, flush_denormal={flush}",
                     time.process_time() - cpu, time.perf_counter() - wall))
    from _encoder_variants import train_variant

    name = f"{args.variant}+epochs={args.epochs}"
    cpu, wall = time.process_time(), time.perf_counter()
    train_variant(a, name)
    rows.append((f"recipe {name}, flush_denormal=True", time.process_time() - cpu,
                 time.perf_counter() - wall))
    print(f"\nfull-batch training, layered slice {a.n_obs} cells x {a.n_vars} genes, "
          f"{args.epochs} steps, one thread")
    print(f"{'':<58}{'cpu s/step':>11}{'500 steps cpu s':>17}{'wall s/step':>13}")
    for name, cpu, wall in rows:
        print(f"{name:<58}{cpu / args.epochs:>11.3f}{500 * cpu / args.epochs:>17.0f}"
              f"{wall / args.epochs:>13.3f}")


if __name__ == "__main__":
    main()
