"""spacon against the original SpaCon (PyPI ``spacon==0.1.3``) on the same synthetic brain.

Run:  python benchmarks/bench_vs_original.py [--n-cells 6000] [--original-python PATH]

Both get the same log-normalised data, the same spatial radius / adjacent-section radius and
the same connectome threshold. spacon runs with its defaults; the original runs its tutorial
pipeline (``benchmarks/original_spacon.py``) under ``--original-python``, the interpreter of
an environment where it is installed (it needs torch-sparse and torch-scatter built from
source). If that interpreter cannot import it, the script says so and reports spacon alone.

Embeddings are scored the same way for both: the two embeddings fused at alpha (spacon's
``tl.fuse``, the original's formula), a shared-covariance Gaussian mixture with the true
number of groups, adjusted Rand index against the planted regions (alpha = 0) and
connectivity modules (alpha = 1). Stage times and peak RSS are printed side by side.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))


def score(adata, z_spa, z_con, seed: int = 0) -> dict:
    """ARI of a true-k Gaussian mixture at alpha 0 (regions) and 1 (modules)."""
    import spacon

    adata.obsm["X_spacon_spa"], adata.obsm["X_spacon_con"] = z_spa, z_con
    out = {}
    for alpha, truth in ((0.0, "region"), (1.0, "module")):
        spacon.tl.fuse(adata, alpha, key_added="_fused")
        k = adata.obs[truth].nunique()
        spacon.tl.domains(adata, n_domains=k, use_rep="_fused", seed=seed, key_added="_d")
        out[f"alpha{alpha:g}_{truth}_ari"] = round(spacon.tl.score(adata.obs[truth],
                                                                   adata.obs["_d"])["ari"], 3)
    return out


def run_spacon(adata, info, threshold: float, seed: int,
               batches: dict | None = None) -> tuple[dict, dict]:
    from _measure import Stages

    import spacon

    stages = Stages()
    with stages.stage("spatial_graph"):
        spacon.pp.spatial_graph(adata, radius=info["suggested_radius"], section_key="section",
                                z_radius=info["suggested_z_radius"])
    with stages.stage("connectome_graph"):
        spacon.pp.connectome_graph(adata, adata.uns["_conn"], unit_key="unit",
                                   threshold=threshold)
    with stages.stage("training") as row:
        model = spacon.SpaCon(adata, seed=seed).train(seed=seed, progress=False,
                                                       **(batches or {}))
        row.update(mode=model.train_params["mode"], epochs=model.train_params["epochs"])
    with stages.stage("embedding"):
        model.embed()
    quality = score(adata, adata.obsm["X_spacon_spa"], adata.obsm["X_spacon_con"], seed)
    return {r["stage"]: r for r in stages.rows}, quality


def run_original(python: str, adata_path, conn_path, info, threshold, epochs, seed, work):
    check = subprocess.run([python, "-c", "import torch_sparse, spacon.utils"],
                           capture_output=True, text=True)
    if check.returncode != 0:
        reason = (check.stderr.strip().splitlines() or ["unknown error"])[-1]
        return None, f"the original is not importable with {python}: {reason}"
    out = Path(work) / "original"
    cmd = [python, str(Path(__file__).parent / "original_spacon.py"), "--adata", str(adata_path),
           "--connectivity", str(conn_path), "--radius", str(info["suggested_radius"]),
           "--z-radius", str(info["suggested_z_radius"]), "--threshold", str(threshold),
           "--epochs", str(epochs), "--seed", str(seed), "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return None, f"the original failed ({proc.returncode}): {proc.stderr.strip()[-500:]}"
    result = json.loads(Path(f"{out}.json").read_text())
    result["total_seconds"] = round(time.perf_counter() - t0, 1)
    result["embeddings"] = dict(np.load(f"{out}.npz"))
    return result, None


def main() -> None:
    from _measure import add_batch_option, batch_options

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-cells", type=int, default=6000)
    p.add_argument("--n-genes", type=int, default=300)
    p.add_argument("--threshold", type=float, default=0.4)
    p.add_argument("--original-python", default=None,
                   help="python of an environment with spacon==0.1.3 (default: skip)")
    p.add_argument("--original-epochs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the results here")
    add_batch_option(p)
    args = p.parse_args()

    import spacon

    adata, conn = spacon.datasets.synthetic_brain(args.n_cells, args.n_genes, seed=args.seed)
    info = adata.uns["synthetic_brain"]
    spacon.pp.normalize(adata)
    results = {"n_cells": adata.n_obs, "n_genes": adata.n_vars, "threshold": args.threshold}
    with tempfile.TemporaryDirectory() as work:
        adata_path, conn_path = Path(work) / "brain.h5ad", Path(work) / "connectome.npz"
        plain = adata.copy()
        plain.uns.pop("synthetic_brain")
        plain.write_h5ad(adata_path)
        spacon.io.save_npz(conn_path, conn.matrix, conn.labels)
        adata.uns["_conn"] = conn
        ours, quality = run_spacon(adata, info, args.threshold, args.seed, batch_options(args))
        del adata.uns["_conn"]
        results["spacon"] = {"stages": ours, "quality": quality,
                             "implied_edges": int(adata.uns["connectome_neighbors"]["params"][
                                 "implied_cell_edges"])}
        original, why = (None, "no --original-python given") if args.original_python is None \
            else run_original(args.original_python, adata_path, conn_path, info,
                              args.threshold, args.original_epochs, args.seed, work)
    if original is not None:
        emb = original.pop("embeddings")
        original["quality"] = score(adata, emb["feature_spa"], emb["feature_con"], args.seed)
        results["original"] = original
    else:
        results["original"] = {"skipped": why}

    print(json.dumps(results, indent=1, default=str))
    print(f"\n{results['n_cells']} cells x {results['n_genes']} genes, "
          f"{results['spacon']['implied_edges']:,} connectome edges after threshold")
    print(f"{'stage':<18}{'spacon s':>10}{'GB':>7}{'original s':>12}{'GB':>7}{'ratio':>8}")
    for stage in ("spatial_graph", "connectome_graph", "training", "embedding"):
        s = ours[stage]
        line = f"{stage:<18}{s['seconds']:>10.2f}{s['peak_rss_gb']:>7.2f}"
        if original is not None:
            o_s = original["timings_seconds"][stage]
            o_gb = original["peak_rss_gb_after"][stage]
            line += f"{o_s:>12.2f}{o_gb:>7.2f}{o_s / max(s['seconds'], 1e-3):>8.1f}"
        print(line)
    print(f"\n{'ARI (true-k GMM)':<28}{'spacon':>8}{'original':>10}")
    for key, value in results["spacon"]["quality"].items():
        other = results["original"].get("quality", {}).get(key)
        print(f"{key:<28}{value:>8.3f}{'' if other is None else f'{other:>10.3f}'}")
    if original is None:
        print(f"\noriginal: {why}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
