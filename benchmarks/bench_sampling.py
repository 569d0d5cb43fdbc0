"""Sampled training's default batch against the former one: time per schedule and domains.

Run:  python benchmarks/bench_sampling.py [--brains 0 1 2] [--tier 50000 --tier-steps 500 50]

Each setting trains a new model with ``SpaCon.train``'s default schedule (20 sampled epochs,
at most 500 steps) on 2 threads, embeds, and calls domains as ``spacon run`` does, at alpha 0
(against the regions) and alpha 1 (against the modules). Printed per brain and setting: steps,
cells per step (the mean subgraph of 5 batches), training seconds, the default domains (their
number and ARI) and the ARI of the domain tree cut at the true number.

- ``--brains``: the demo brain (``synthetic_brain(seed=S)``, 6,000 cells, prepared as
  ``spacon demo`` prepares it).
- ``--tier N``: the ``bench_scaling.py`` brain of N cells with 1,000 genes, where the former
  default's full schedule is too slow to run here: ``--tier-steps NEW OLD`` caps each
  setting's steps (the true-k ARI only: 16 or 40 regions make the default's choice slow).

Settings: the default (64 seeds, fan-outs 5/3/3, 8 spatial neighbours) and the former one
(256 seeds, 10/5/5, 20), the baseline it replaced.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

SETTINGS = {
    "default (64 seeds, 5/3/3, 8)": dict(batch_size=64, fanouts=(5, 3, 3), spatial_fanout=8),
    "former (256 seeds, 10/5/5, 20)": dict(batch_size=256, fanouts=(10, 5, 5),
                                           spatial_fanout=20),
}


def demo_brain(seed: int):
    """The demo brain of ``seed``, prepared as ``spacon demo`` prepares it."""
    from _measure import prepared_brain

    return prepared_brain(seed=seed)


def cells_per_step(model, setting: dict) -> int:
    from spacon.graph import NeighborSampler

    sampler = NeighborSampler(model.data.connectome, model.data.spatial, setting["fanouts"],
                              setting["batch_size"], "neighbors", setting["spatial_fanout"])
    sizes = [len(g.n_id) for _, g in zip(range(5), sampler.epoch(0))]
    return round(sum(sizes) / len(sizes))


def measure(adata, setting: dict, max_steps: int | None, choose: bool) -> dict:
    import spacon

    model = spacon.SpaCon(adata, seed=0)
    row = {"cells_per_step": cells_per_step(model, setting)}
    start = time.perf_counter()
    model.train(mode="sampled", max_steps=max_steps, progress=False, threads=2, **setting)
    row.update(steps=model.train_params["steps"],
               train_s=round(time.perf_counter() - start, 1))
    model.embed(threads=2)
    for alpha, truth in ((0, "region"), (1, "module")):
        rep, key = f"X_alpha{alpha}", f"domain_alpha{alpha}"
        spacon.tl.fuse(adata, alpha, key_added=rep)
        k = adata.obs[truth].nunique()
        if choose:
            spacon.tl.domains(adata, use_rep=rep, key_added=key, seed=0)
            row[f"alpha{alpha}_default"] = [int(adata.obs[key].nunique()), round(
                spacon.tl.score(adata.obs[truth], adata.obs[key])["ari"], 3)]
            spacon.tl.domains(adata, use_rep=rep, key_added="cut", n_domains=k, tree_key=key,
                              seed=0)
        else:
            spacon.tl.domains(adata, use_rep=rep, key_added="cut", n_domains=k, seed=0)
        row[f"alpha{alpha}_true_k"] = round(
            spacon.tl.score(adata.obs[truth], adata.obs["cut"])["ari"], 3)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--brains", type=int, nargs="*", default=[0, 1, 2])
    p.add_argument("--tier", type=int, default=None)
    p.add_argument("--tier-steps", type=int, nargs=2, default=[500, 50])
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    rows = []
    for seed in args.brains:
        for name, setting in SETTINGS.items():
            row = {"brain": f"demo brain, seed {seed}", "setting": name,
                   **measure(demo_brain(seed), setting, None, choose=True)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    if args.tier:
        from _measure import prepared_brain
        from bench_scaling import BRAIN, THRESHOLD

        for (name, setting), steps in zip(SETTINGS.items(), args.tier_steps):
            adata = prepared_brain(args.tier, 1000, max(12, round(args.tier / 1940)),
                                   threshold=THRESHOLD, **BRAIN)
            row = {"brain": f"{args.tier:,} cells", "setting": name,
                   **measure(adata, setting, steps, choose=False)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(f"\n{'brain':<20}{'setting':<33}{'steps':>6}{'cells/step':>11}{'train s':>9}"
          f"{'alpha 0: k, ARI':>17}{'true k':>8}{'alpha 1: k, ARI':>17}{'true k':>8}")
    for r in rows:
        cols = []
        for alpha in (0, 1):
            k, ari = r.get(f"alpha{alpha}_default", ("-", None))
            cols.append(f"{k}, {ari:.3f}" if ari is not None else "-")
            cols.append(f"{r[f'alpha{alpha}_true_k']:.3f}")
        print(f"{r['brain']:<20}{r['setting']:<33}{r['steps']:>6}{r['cells_per_step']:>11}"
              f"{r['train_s']:>9}{cols[0]:>17}{cols[1]:>8}{cols[2]:>17}{cols[3]:>8}")


if __name__ == "__main__":
    main()
