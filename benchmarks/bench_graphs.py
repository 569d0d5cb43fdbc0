"""Graph building at whole-brain scale: spatial graph and factored connectome.

Run:  python benchmarks/bench_graphs.py [--n-cells 250000 --n-sections 129]

Targets (issue: foundation): a 250k-cell, 129-section spatial graph in < 10 s and a factored
whole-brain connectome (> 1e9 implied cell edges) in < 30 s, each under 4 GB peak RSS.
Each stage runs in a fresh process that reads only what it needs from the simulated files, so
its peak RSS is its own. The baseline beside them: the radius graph as squidpy builds it
(scikit-learn's ``radius_neighbors_graph`` over every cell's coordinates at once, one radius in
3-D, no sections), and for the connectome the memory its cell-cell edges would take as a CSR
matrix (float32 values, int64 indices), which is not built.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def simulate(args, out: Path):
    from _measure import Stages

    import spacon

    stages = Stages()
    with stages.stage("simulate") as row:
        adata, conn = spacon.datasets.synthetic_brain(
            args.n_cells, args.n_genes, args.n_sections, n_regions=40, n_modules=5,
            cells_per_unit=60, long_range_degree=40, seed=0,
        )
        row["implied_cell_edges"] = adata.uns["synthetic_brain"]["implied_cell_edges"]
    adata.write_h5ad(out / "brain.h5ad")
    spacon.io.save_npz(out / "connectome.npz", conn.matrix, conn.labels)
    info = adata.uns["synthetic_brain"]
    return stages.rows[0], info["suggested_radius"], info["suggested_z_radius"]


def stage(kind: str, out: Path, radius: float, z_radius: float) -> None:
    """One stage in this (fresh) process: print its JSON row."""
    import anndata as ad
    from _measure import Stages

    import spacon

    adata = ad.read_h5ad(out / "brain.h5ad", backed="r")  # obs/obsm in memory, X stays on disk
    adata = ad.AnnData(obs=adata.obs.copy(), obsm={"spatial": adata.obsm["spatial"][:]})
    stages = Stages()
    if kind == "baseline":
        from sklearn.neighbors import radius_neighbors_graph

        with stages.stage("baseline: sklearn radius graph") as row:
            graph = radius_neighbors_graph(adata.obsm["spatial"], radius, mode="connectivity")
            row["edges"] = int(graph.nnz)
            row["mean_neighbors"] = round(graph.nnz / adata.n_obs, 1)
    elif kind == "spatial":
        sections = adata.obs["section"].nunique()
        with stages.stage(f"spatial graph ({sections} sections)") as row:
            spacon.pp.spatial_graph(adata, radius=radius, section_key="section", z_radius=z_radius)
            row["edges"] = int(adata.obsp["spatial_connectivities"].nnz)
            row["mean_neighbors"] = adata.uns["spatial_neighbors"]["params"]["mean_neighbors"]
    else:
        with stages.stage("connectome graph (factored)") as row:
            conn = spacon.io.read_connectivity(out / "connectome.npz")
            spacon.pp.connectome_graph(adata, conn, unit_key="unit")
            p = adata.uns["connectome_neighbors"]["params"]
            row["unit_edges"] = p["n_edges"]
            row["implied_cell_edges"] = p["implied_cell_edges"]
    print(json.dumps(stages.rows[0]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-cells", type=int, default=250_000)
    parser.add_argument("--n-genes", type=int, default=1000)
    parser.add_argument("--n-sections", type=int, default=129)
    parser.add_argument("--_stage", help=argparse.SUPPRESS)
    parser.add_argument("--_dir", help=argparse.SUPPRESS)
    parser.add_argument("--_radius", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--_z_radius", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._stage:
        stage(args._stage, Path(args._dir), args._radius, args._z_radius)
        return
    from _measure import Stages

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        sim_row, radius, z_radius = simulate(args, out)
        rows = [sim_row]
        for kind in ("baseline", "spatial", "connectome"):
            res = subprocess.run(
                [sys.executable, __file__, "--_stage", kind, "--_dir", tmp, "--_radius",
                 str(radius), "--_z_radius", str(z_radius)],
                check=True, capture_output=True, text=True,
            )
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    stages = Stages()
    stages.rows = rows
    implied = next(r["implied_cell_edges"] for r in rows if "unit_edges" in r)
    rows.append({"stage": "baseline: cell-cell connectome CSR (not built)", "seconds": None,
                 "peak_rss_gb": round(implied * 12 / 1e9, 1), "edges": implied})
    stages.report(
        "graph building",
        {"n_cells": args.n_cells, "n_genes": args.n_genes, "n_sections": args.n_sections},
    )


if __name__ == "__main__":
    main()
