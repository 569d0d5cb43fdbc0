"""A rejected speed-up of the demo on CPUs: more seed cells per sampled step, fewer steps.

Run:  python benchmarks/demo_batch_size.py [--batch-size 1024] [--seed 0] [--lr 5e-3]

On the demo brain (6,000 cells) a sampled step with 256 seed cells and fan-outs 10/5/5
(the default until 28 Nov) already reaches every cell, so a step costs about a full-batch
step (the loss covers every cell of the subgraph, not only the seeds). With 20 epochs fixed,
a larger batch means proportionally fewer steps (1,024: 120 instead of 480). The opposite
direction, smaller batches whose subgraphs hold fewer cells, became the default:
``bench_sampling.py``. The table below was measured with the fan-outs of then; the script
now runs with today's (5/3/3, 8 spatial neighbours), so its numbers differ.

Runs ``spacon run``'s pipeline as ``spacon demo`` does (no figures, no report) with that batch
size and prints the steps, training seconds, and the domains' ARI
against the regions (alpha 0) and the modules (alpha 1), with the number of domains; then the
same for the baseline with no training (``--encoder smoothing``), on the same brain.

Measured (27 Nov, seed 0, the idle 2-core machine, 2 threads):

| seeds per step | steps | training | alpha-0 ARI (regions) | domains |
|---|---|---|---|---|
| 256 (default; ``spacon demo`` in a fresh clone) | 480 | 130 s | 0.816 | 15 |
| 512 | 240 | 73 s | 0.663 | 13 |
| 1,024 | 120 | 35 s | 0.521 | 11 |

(1,024 on the machine loaded by another job, so with 1 thread: 0.274, 5 domains.) The
modules were found as before at every size (ARI 1.000, 4 domains). Fewer updates undertrain
the spatial encoder: rejected. A larger learning rate does not make up for them (28 Nov, the
script with ``LR``): 1,024 seeds 0.350 with 1e-2 and 0.239 with 2e-2; 512 seeds 0.582 with
1e-2 and 0.667 with 2.5e-3.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def main() -> None:
    from spacon import _keys
    from spacon._pipeline import RunConfig, run
    from spacon.datasets import synthetic_brain
    from spacon.io import save_npz, write_h5ad
    from spacon.tl import score

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=1024, help="seed cells per step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=5e-3, help="learning rate")
    args = parser.parse_args()
    batch_size, seed, lr = args.batch_size, args.seed, args.lr
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        adata, conn = synthetic_brain(seed=seed)
        info = adata.uns["synthetic_brain"]
        write_h5ad(adata, out / "input" / "brain.h5ad")
        save_npz(out / "input" / "connectome.npz", conn.matrix, conn.labels)
        config = RunConfig(
            adata=str(out / "input" / "brain.h5ad"),
            connectivity=str(out / "input" / "connectome.npz"), unit_key="unit",
            section_key="section", radius=info["suggested_radius"],
            z_radius=info["suggested_z_radius"], threshold=0.4, alpha=[0.0, 1.0], seed=seed,
            out=str(out / "run"), overwrite=True, progress=False, batch_size=batch_size, lr=lr,
            figures="none", no_report=True)
        for encoder in ("spacon", "smoothing"):
            result, summary = run(config.updated({"encoder": encoder}))
            row = {"encoder": encoder, "batch_size": batch_size, "lr": lr, "seed": seed,
                   "steps": summary["training"].get("steps"),
                   "training_seconds": summary["timings_seconds"].get("training")}
            for alpha, truth in ((0, "region"), (1, "module")):
                labels = result.obs[_keys.domain_for_alpha(alpha)]
                row[f"alpha{alpha}_ari"] = round(score(result.obs[truth], labels)["ari"], 3)
                row[f"alpha{alpha}_domains"] = int(labels.nunique())
            print(json.dumps(row))


if __name__ == "__main__":
    main()
