"""Full-batch training speed on the 4,000-cell layered slice: today's SpaCon and the recipe.

Run:  OMP_NUM_THREADS=1 python benchmarks/bench_full_batch_speed.py [--epochs 20]
      python benchmarks/bench_full_batch_speed.py --default-run   (time it with farm-bench)

Times ``--epochs`` full-batch steps (spatial encoder alone, 10 nearest neighbours) and prints
CPU seconds per step and the 500-step projection, for: ``SpaCon.train`` as it is; the same
with denormal floats flushed to zero (``torch.set_flush_denormal(True)``); and the recipe of
``_encoder_variants.py`` (30 expression PCs in and out) with denormals flushed. CPU time is
reported next to wall time because on a shared machine wall time measures the neighbours.

``--default-run`` instead trains as a user's call does (``SpaCon.train(mode="full")``: 500
steps, the thread count spacon chooses), embeds, and prints the wall seconds of training and
the layer ARI of a Gaussian mixture with the true number of layers on the embedding, next to
the same score for the smoothing baseline (``tl.smoothed_expression``, 3 hops): the speed and
the quality in one run.
"""

from __future__ import annotations

import argparse
import time

import torch

import spacon


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--variant", default="default+input=pca")
    p.add_argument("--default-run", action="store_true",
                   help="train 500 default full-batch steps with default threads; time + ARI")
    args = p.parse_args()
    a = spacon.datasets.layered_slice(4000, seed=0)
    spacon.pp.normalize(a)
    spacon.pp.spatial_graph(a, n_neighbors=10)
    if args.default_run:
        default_run(a)
        return
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


def default_run(a) -> None:
    """500 default full-batch steps as a user runs them: wall time and layer ARI."""
    from spacon.tl._domain_selection import mixture

    k = a.obs["layer"].nunique()

    def layer_ari(key):
        z = spacon.tl._fuse.standardise(a.obsm[key])
        return spacon.tl.score(a.obs["layer"], mixture(z, k, 0, 20_000).predict(z))["ari"]

    model = spacon.SpaCon(a, connectome_key=None, seed=0)
    wall = time.perf_counter()
    model.train(mode="full", progress=False)
    seconds = time.perf_counter() - wall
    model.embed()
    spacon.tl.smoothed_expression(a, graph="spatial", seed=0, key_added="smoothed")
    print(f"layered slice {a.n_obs} cells: {model.train_params['steps']} full-batch steps in "
          f"{seconds:.1f} s wall ({model.train_params['threads']} threads); true-k layer ARI "
          f"SpaCon {layer_ari('X_spacon_spa'):.3f}, smoothing (3 hops) {layer_ari('smoothed'):.3f}")


if __name__ == "__main__":
    main()
