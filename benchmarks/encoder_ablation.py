"""Ablation of the spatial encoder's training recipe: true-k ARI per tissue, seed and variant.

Run:  OMP_NUM_THREADS=1 python benchmarks/encoder_ablation.py --variants default masked \\
          "default+input=pca" --tissues slice starmap1 brain --seeds 0 1

Variants are those of ``_encoder_variants.py`` (``name+key=value+...``). Tissues are kept
small so that one variant trains in well under a minute on one core: ``slice`` (layered slice,
2,000 cells), ``starmapN`` (STARmap mPFC slice N of 3), ``brain`` (synthetic brain, 3,000 cells,
6 sections, regions), ``human`` (66 regions, lobes). Each row also prints the best smoothing
baseline on the same graph (1-3 hops) for reference.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import spacon
from spacon import _keys


def tissue(name: str, seed: int, root: Path):
    if name == "slice":
        a = spacon.datasets.layered_slice(2000, seed=seed)
        spacon.pp.normalize(a)
        spacon.pp.spatial_graph(a, n_neighbors=10)
        return a, a.obs["layer"].to_numpy()
    if name.startswith("starmap"):
        import anndata as ad

        paths = sorted((root / "starmap_mpfc_bass").glob("starmap_mpfc_*.h5ad"))
        a = ad.read_h5ad(paths[int(name[-1]) - 1])
        spacon.pp.normalize(a)
        spacon.pp.spatial_graph(a, n_neighbors=10)
        return a, a.obs["z"].astype(str).to_numpy()
    if name == "brain":
        a, _ = spacon.datasets.synthetic_brain(3000, n_sections=6, seed=seed)
        info = a.uns["synthetic_brain"]
        spacon.pp.normalize(a)
        spacon.pp.spatial_graph(a, radius=info["suggested_radius"], section_key="section",
                                z_radius=info["suggested_z_radius"])
        return a, a.obs["region"].to_numpy()
    if name == "human":
        from _human import human_regions
        from bench_encoders import LOBES

        a, _ = human_regions(root)
        lobe_of = {r: lobe for lobe, regions in LOBES.items() for r in regions}
        spacon.pp.spatial_graph(a, n_neighbors=6)
        return a, np.array([lobe_of[n[2:]] for n in a.obs_names])
    raise ValueError(name)


def ari(a, rep, truth, seed):
    k = len(np.unique(truth))
    spacon.tl.domains(a, n_domains=k, use_rep=rep, seed=seed, key_added="_d")
    return round(spacon.tl.score(truth, a.obs["_d"])["ari"], 3)


def main():
    from _encoder_variants import train_variant

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", nargs="+", default=["default"])
    p.add_argument("--tissues", nargs="+", default=["slice"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--data", default="/work/shared/data")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    rows = []
    for t in args.tissues:
        for seed in args.seeds:
            a, truth = tissue(t, seed, Path(args.data))
            smooth = {}
            for hops in (1, 2, 3):
                spacon.tl.smoothed_expression(a, n_hops=hops, seed=seed, key_added="X_s")
                smooth[hops] = ari(a, "X_s", truth, seed)
            for v in args.variants:
                info = train_variant(a, v, seed=seed)
                row = {"tissue": t, "seed": seed, "variant": v,
                       "ari": ari(a, _keys.EMBEDDING_SPA, truth, seed),
                       "smoothing_best": max(smooth.values()), "seconds": info["seconds"],
                       "loss": [round(info["loss_first"], 4), round(info["loss_last"], 4)]}
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
