"""Data-parallel training with torch.distributed: one process vs N ranks under torchrun.

Run:  python benchmarks/bench_distributed.py [--nproc 2] [--epochs 2] [--n-cells 6000]

Trains SpaCon on the synthetic brain for the same number of sampled epochs (every cell a seed
once per epoch) in one process with all cores, then with ``--nproc`` ranks launched by
``torchrun`` (gloo on CPU, one thread each unless OMP_NUM_THREADS is set), and prints the
seconds per epoch and the final loss of each. On one machine the ranks share its cores, so this
measures the overhead of the distributed path; the gain comes from adding machines or GPUs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

WORKER = """
import json, sys, time
import spacon
n_cells, epochs = int(sys.argv[1]), int(sys.argv[2])
distributed = len(sys.argv) > 4
if distributed:
    import torch.distributed as dist
    dist.init_process_group("gloo")
adata, conn = spacon.datasets.synthetic_brain(n_cells=n_cells, seed=0)
info = adata.uns["synthetic_brain"]
spacon.pp.normalize(adata)
spacon.pp.spatial_graph(adata, radius=info["suggested_radius"], section_key="section",
                        z_radius=info["suggested_z_radius"])
spacon.pp.connectome_graph(adata, conn, unit_key="unit", threshold=0.4)
model = spacon.SpaCon(adata, seed=0)
t0 = time.perf_counter()
# the batches of the README's table (the default until 28 Nov; now 64 seeds, 5/3/3, 8)
model.train(epochs=epochs, mode="sampled", progress=False, seed=0, batch_size=256,
            fanouts=(10, 5, 5), spatial_fanout=20)
seconds = time.perf_counter() - t0
if not distributed or dist.get_rank() == 0:
    json.dump({"seconds": seconds, "steps": model.train_params["steps"],
               "loss": model.history[-1]["loss"]}, open(sys.argv[3], "w"))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--n-cells", type=int, default=6000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "worker.py"
        script.write_text(textwrap.dedent(WORKER))
        common = [str(script), str(args.n_cells), str(args.epochs)]
        subprocess.run([sys.executable, *common, f"{tmp}/single.json"], check=True)
        subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc-per-node", str(args.nproc), *common, f"{tmp}/ddp.json",
                        "distributed"], check=True)
        rows = {"1 process": json.loads(Path(f"{tmp}/single.json").read_text()),
                f"{args.nproc} ranks (torchrun, gloo)":
                    json.loads(Path(f"{tmp}/ddp.json").read_text())}
    print(f"\n{args.n_cells} cells, {args.epochs} sampled epochs, batch 256 seeds per rank")
    print(f"{'':<28}{'steps':>7}{'s/epoch':>10}{'final loss':>12}")
    for name, r in rows.items():
        print(f"{name:<28}{r['steps']:>7}{r['seconds'] / args.epochs:>10.1f}{r['loss']:>12.2f}")


if __name__ == "__main__":
    main()
