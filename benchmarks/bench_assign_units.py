"""Cells -> connectome voxels at whole-brain scale: spacon.pp.assign_units against a per-section loop.

Run:  python benchmarks/bench_assign_units.py [--cells 1000000] [--sections 129]
      python benchmarks/bench_assign_units.py --only spacon     # one method per process, for
      python benchmarks/bench_assign_units.py --only baseline   # farm-bench ... --vs ...

A brain-shaped ellipsoid on the 100 µm CCF grid (132 x 80 x 114 voxels) holds ~400,000 voxels;
1,000,000 cells lie in it on 129 coronal section planes. Printed:

* spacon: ``assign_units`` on a voxel model (the voxel holding a cell is its nearest when it is
  in the model; a KD-tree over the voxels, queried by all cores, for the others; max_distance
  150 µm), for both hemispheres' voxels and for an ipsilateral model mirrored across the
  midline; and on the same voxels given as a plain array of positions (KD-tree for every cell);
* baseline: the co-registration as the original's authors describe it, section by section: one
  KD-tree over the voxel positions queried with each section's cells in turn (one worker,
  scipy's default); it must find voxels at the same distances (ties aside, the same voxels);
* the voxel model's unit graph (``VoxelModel.unit_graph``, top 50 per row) for a slice of the
  units, to show how that step grows (units^2 x rank).
"""

from __future__ import annotations

import argparse
import time

import anndata as ad
import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

import spacon

SHAPE, RESOLUTION = (132, 80, 114), 100.0
SEMI_AXES = np.array([57.0, 34.0, 49.0])  # voxels; ~398,000 voxels inside


def brain(n_cells: int, n_sections: int, seed: int = 0):
    grid = np.indices(SHAPE).reshape(3, -1).T
    centre = (np.array(SHAPE) - 1) / 2
    inside = (((grid - centre) / SEMI_AXES) ** 2).sum(axis=1) <= 1
    voxels = grid[inside]
    rng = np.random.default_rng(seed)
    planes = np.linspace(centre[0] - SEMI_AXES[0] * 0.95, centre[0] + SEMI_AXES[0] * 0.95,
                         n_sections)
    cells = []
    while sum(len(c) for c in cells) < n_cells:
        p = rng.uniform(-1, 1, (n_cells, 3)) * SEMI_AXES + centre
        p[:, 0] = rng.choice(planes, n_cells)
        cells.append(p[(((p - centre) / SEMI_AXES) ** 2).sum(axis=1) <= 1])
    cells = np.concatenate(cells)[:n_cells]
    adata = ad.AnnData(sp.csr_matrix((n_cells, 1), dtype=np.float32))
    adata.obsm["ccf"] = (cells + 0.5) * RESOLUTION
    adata.obs["section"] = np.searchsorted(planes, cells[:, 0]).astype(str)
    return adata, voxels


def model_of(voxels, hemisphere: int, rank: int = 1, seed: int = 0):
    source = voxels if hemisphere == 3 else voxels[voxels[:, 2] >= SHAPE[2] // 2]
    rng = np.random.default_rng(seed)
    return spacon.io.VoxelModel(
        rng.random((len(source), rank), dtype=np.float32),
        rng.random((rank, len(voxels)), dtype=np.float32), source, voxels, SHAPE, RESOLUTION,
        hemisphere,
    )


def per_section_baseline(adata, positions):
    """Nearest voxel of each cell and its distance, section by section, one worker."""
    coords = adata.obsm["ccf"]
    tree = cKDTree(positions)
    index = np.empty(adata.n_obs, dtype=np.int64)
    distance = np.empty(adata.n_obs)
    sections = adata.obs["section"].to_numpy()
    for section in np.unique(sections):
        rows = np.flatnonzero(sections == section)
        distance[rows], index[rows] = tree.query(coords[rows], k=1)
    return index, distance


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1_000_000)
    parser.add_argument("--sections", type=int, default=129)
    parser.add_argument("--only", choices=["spacon", "baseline"],
                        help="time only spacon's voxel-model assignment, or only the baseline")
    parser.add_argument("--graph-units", type=int, default=20_000)
    parser.add_argument("--rank", type=int, default=128)
    args = parser.parse_args()

    t0 = time.perf_counter()
    adata, voxels = brain(args.cells, args.sections)
    print(f"{adata.n_obs:,} cells in {args.sections} sections, {len(voxels):,} voxels "
          f"(simulated in {time.perf_counter() - t0:.1f} s)")
    both = model_of(voxels, 3)
    if args.only != "baseline":
        t0 = time.perf_counter()
        spacon.pp.assign_units(adata, both, max_distance=150)
        spacon_s = time.perf_counter() - t0
        print(f"spacon assign_units, both hemispheres: {spacon_s:.2f} s "
              f"({adata.obs['unit'].cat.categories.size:,} voxels hold cells)")
    if args.only is None:
        ipsi = model_of(voxels, 2)
        mirrored = adata.copy()
        t0 = time.perf_counter()
        spacon.pp.assign_units(mirrored, ipsi, max_distance=150, hemisphere="mirror")
        print(f"spacon assign_units, ipsilateral model mirrored ({ipsi.n_source:,} source "
              f"voxels): {time.perf_counter() - t0:.2f} s")
        plain = adata.copy()
        t0 = time.perf_counter()
        spacon.pp.assign_units(plain, both.source_positions(), max_distance=150)
        print(f"spacon assign_units, voxel positions as an array (KD-tree for every cell): "
              f"{time.perf_counter() - t0:.2f} s")
    if args.only != "spacon":
        t0 = time.perf_counter()
        index, distance = per_section_baseline(adata, both.source_positions())
        base_s = time.perf_counter() - t0
        print(f"baseline per-section KD-tree loop, one worker: {base_s:.2f} s")
        if args.only is None:
            same = (both.labels[index] == adata.obs["unit"].astype(str).to_numpy()).mean()
            close = np.isclose(distance, adata.obs["unit_distance"], rtol=1e-5).mean()
            print(f"baseline and spacon: same voxel for {same:.2%} of cells, same distance for "
                  f"{close:.4%} (the rest are ties); spacon {base_s / spacon_s:.1f}x faster")
    if args.only is None and args.graph_units:
        model = model_of(voxels, 3, rank=args.rank)
        units = model.labels[:: max(1, model.n_source // args.graph_units)][: args.graph_units]
        t0, cpu0 = time.perf_counter(), time.process_time()
        graph = model.unit_graph(units, top_k=50)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        print(f"unit graph of {len(units):,} voxel units, rank {args.rank}, top 50 per row: "
              f"{seconds:.1f} s wall, {cpu:.1f} s CPU, {graph.matrix.nnz:,} connections "
              "(grows with units^2 x rank)")


if __name__ == "__main__":
    main()
