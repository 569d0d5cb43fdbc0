"""End to end at three sizes: how each stage's time and memory grow from 6k to 250k cells.

Run:  python benchmarks/bench_scaling.py [--tiers 6000 50000 250000] [--genes 1000]

Every tier is the same simulated brain (40 regions, 5 distant connectivity modules, ~60 cells
per connectivity unit, so the implied cell-cell connectome grows with the square of the cell
count: > 1e9 edges at 250k) sampled at a different density, with 1,000 genes and ~1,940 cells
per coronal section (129 sections at 250k). Each tier runs in a fresh process, stage by stage as
``spacon run`` does with its defaults: load the files, normalise, spatial graph, connectome
graph, training (mode chosen automatically), exact embedding, domains at alpha 0 and 1
(``tl.domains``' own number), then the baseline with no training: expression PCs smoothed over
each graph (``tl.smoothed_expression``, 3 hops) and the same domain calls. Printed per stage:
wall time and peak RSS, as JSON and a table, then the log-log slope of each stage between tiers
(1 = linear in the cell count). Quality is the adjusted Rand index of a true-k Gaussian mixture
against regions (alpha 0) and modules (alpha 1), the same score as ``bench_vs_original.py``,
for SpaCon and for the smoothing baseline, and that of the default domains of each.

Real density:  python benchmarks/bench_scaling.py --tiers 250000 --cells-per-unit 4 --density 0.02
gives the connectome its real whole-brain density: ~77,000 occupied units (voxels) of ~3 cells
each, every unit projecting to ~2% of all units (1e8 unit edges, 1.1e9 implied cell-cell edges;
the published whole-brain run had 1.3e9 edges between 250k spots).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

BRAIN = dict(n_regions=40, n_modules=5, cells_per_unit=60, long_range_degree=40)
THRESHOLD = 0.4


def brain_params(n_cells: int, cells_per_unit: float | None, density: float | None) -> dict:
    """The simulated brain's parameters: BRAIN, or a unit graph of the given density."""
    params = dict(BRAIN)
    if cells_per_unit is not None:
        params["cells_per_unit"] = cells_per_unit
    if density is not None:  # long-range targets per unit: a share of all units
        params["long_range_degree"] = max(1, round(density * n_cells / params["cells_per_unit"]))
    return params


def add_brain_options(parser) -> None:
    """--cells-per-unit and --density: the unit graph of a real-density tier."""
    parser.add_argument("--cells-per-unit", type=float, default=None,
                        help=f"cells per connectivity unit (default {BRAIN['cells_per_unit']})")
    parser.add_argument("--density", type=float, default=None,
                        help="share of all units each unit projects to (sets the long-range "
                        "degree)")


def brain_flags(args) -> list[str]:
    """The brain options of ``args`` as command-line flags for a tier's own process."""
    flags = []
    for flag, value in (("--cells-per-unit", args.cells_per_unit), ("--density", args.density)):
        flags += [] if value is None else [flag, str(value)]
    return flags


def tier(n_cells: int, n_genes: int, folder: Path, steps: int | None, brain: dict) -> dict:
    """One tier, in this process: simulate to files, then run and measure every stage."""
    from _measure import Stages
    from bench_vs_original import score

    import spacon

    n_sections = max(12, round(n_cells / 1940))
    t0 = time.perf_counter()
    adata, conn = spacon.datasets.synthetic_brain(n_cells, n_genes, n_sections, seed=0, **brain)
    info = adata.uns["synthetic_brain"]
    units = {"n_units": info["n_units"], "unit_edges": int(conn.matrix.nnz),
             "unit_density": round(conn.matrix.nnz / info["n_units"] ** 2, 4)}
    spacon.io.write_h5ad(adata, folder / "brain.h5ad")
    spacon.io.save_npz(folder / "connectome.npz", conn.matrix, conn.labels)
    simulate_s = time.perf_counter() - t0
    del adata, conn

    stages = Stages()
    with stages.stage("load"):
        import anndata as ad

        adata = ad.read_h5ad(folder / "brain.h5ad")
        conn = spacon.io.read_connectivity(folder / "connectome.npz")
    with stages.stage("normalize"):
        spacon.pp.normalize(adata)
    with stages.stage("spatial_graph") as row:
        spacon.pp.spatial_graph(adata, radius=info["suggested_radius"], section_key="section",
                                z_radius=info["suggested_z_radius"])
        row["mean_neighbors"] = round(adata.uns["spatial_neighbors"]["params"]["mean_neighbors"], 1)
    with stages.stage("connectome_graph") as row:
        spacon.pp.connectome_graph(adata, conn, unit_key="unit", threshold=THRESHOLD)
        row["implied_edges"] = int(adata.uns["connectome_neighbors"]["params"]["implied_cell_edges"])
    with stages.stage("training") as row:
        model = spacon.SpaCon(adata, seed=0)
        model.train(progress=False, max_steps=steps)
        row.update(mode=model.train_params["mode"], steps=model.train_params["steps"],
                   final_loss=round(model.history[-1]["loss"], 1))
    with stages.stage("embedding"):
        model.embed()
    with stages.stage("domains") as row:
        for alpha in (0, 1):
            spacon.tl.fuse(adata, alpha, key_added=f"X_alpha{alpha}")
            default_domains(adata, row, alpha, f"X_alpha{alpha}")
    quality = score(adata, adata.obsm["X_spacon_spa"], adata.obsm["X_spacon_con"])
    with stages.stage("smoothing_baseline") as row:
        for alpha, graph in ((0, "spatial"), (1, "connectome")):
            spacon.tl.smoothed_expression(adata, graph=graph, key_added=f"X_smooth{alpha}")
            default_domains(adata, row, alpha, f"X_smooth{alpha}")
    baseline = score(adata, adata.obsm["X_smooth0"], adata.obsm["X_smooth1"])
    quality.update({f"smoothing_{k}": v for k, v in baseline.items()})
    return {"n_cells": n_cells, "n_genes": n_genes, "n_sections": n_sections, **units,
            "simulate_seconds": round(simulate_s, 1), "stages": stages.rows,
            "total_seconds": round(sum(r["seconds"] for r in stages.rows), 1),
            "max_peak_rss_gb": max(r["peak_rss_gb"] for r in stages.rows),
            "quality_true_k": quality}


def default_domains(adata, row: dict, alpha: int, use_rep: str) -> None:
    """``tl.domains``' own number on ``use_rep``: the count and the ARI against the regions
    (alpha 0) or the modules (alpha 1), into ``row``."""
    import spacon

    key = f"domains_{use_rep}"
    spacon.tl.domains(adata, use_rep=use_rep, key_added=key)
    truth = "region" if alpha == 0 else "module"
    row[f"alpha{alpha}_domains"] = int(adata.obs[key].nunique())
    row[f"alpha{alpha}_{truth}_ari"] = round(spacon.tl.score(adata.obs[truth], adata.obs[key])["ari"], 3)


def main() -> None:
    from _measure import run_child

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiers", type=int, nargs="+", default=[6000, 50_000, 250_000])
    p.add_argument("--genes", type=int, default=1000)
    p.add_argument("--steps", type=int, default=None, help="cap training steps (quick checks)")
    add_brain_options(p)
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--_tier", type=int, help=argparse.SUPPRESS)
    p.add_argument("--_dir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._tier:
        brain = brain_params(args._tier, args.cells_per_unit, args.density)
        print(json.dumps(tier(args._tier, args.genes, Path(args._dir), args.steps, brain)))
        return

    results = []
    for n in args.tiers:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, __file__, "--_tier", str(n), "--_dir", tmp, "--genes",
                   str(args.genes)] + ([] if args.steps is None else ["--steps", str(args.steps)])
            cmd += brain_flags(args)
            row = run_child(cmd, f"tier {n}")
        if row is None:
            break
        results.append(row)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if not results:
        return

    names = [r["stage"] for r in results[0]["stages"]]
    head = "".join(f"{r['n_cells']:>16,}" for r in results)
    print(f"\n{'stage (s / GB peak)':<20}{head}" + ("   slope s, GB" if len(results) > 1 else ""))
    for i, name in enumerate(names):
        cells = "".join(f"{r['stages'][i]['seconds']:>9.1f} /{r['stages'][i]['peak_rss_gb']:>5.2f}"
                        for r in results)
        slope = ""
        if len(results) > 1:
            a, b = results[0], results[-1]
            ratio = math.log(b["n_cells"] / a["n_cells"])
            ts = math.log(max(b["stages"][i]["seconds"], 1e-3) / max(a["stages"][i]["seconds"],
                                                                      1e-3)) / ratio
            ms = math.log(b["stages"][i]["peak_rss_gb"] / a["stages"][i]["peak_rss_gb"]) / ratio
            slope = f"   {ts:5.2f}, {ms:5.2f}"
        print(f"{name:<20}{cells}{slope}")
    print(f"{'total':<20}" + "".join(f"{r['total_seconds']:>9.1f} /{r['max_peak_rss_gb']:>5.2f}"
                                     for r in results))
    for key in results[0]["quality_true_k"]:
        print(f"{key:<20}" + "".join(f"{r['quality_true_k'][key]:>16.3f}" for r in results))
    for r in results:
        d = next(s for s in r["stages"] if s["stage"] == "domains")
        b = next(s for s in r["stages"] if s["stage"] == "smoothing_baseline")
        t = next(s for s in r["stages"] if s["stage"] == "training")
        c = next(s for s in r["stages"] if s["stage"] == "connectome_graph")
        print(f"{r['n_cells']:,} cells: {r['n_units']:,} units, {r['unit_edges']:,} unit edges "
              f"(density {r['unit_density']:.2%}), {c['implied_edges']:,} implied connectome edges; "
              f"training {t['mode']}, {t['steps']} steps")
        for name, x in (("spacon", d), ("smoothing", b)):
            print(f"  default domains, {name:<9} alpha 0: {x['alpha0_domains']} (region ARI "
                  f"{x['alpha0_region_ari']}), alpha 1: {x['alpha1_domains']} (module ARI "
                  f"{x['alpha1_module_ari']})")


if __name__ == "__main__":
    main()
