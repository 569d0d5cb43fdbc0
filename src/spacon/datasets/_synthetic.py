"""A synthetic brain with known ground truth: cell types, molecular regions, connectivity modules.

The tissue is an ellipsoid cut into ordered coronal sections (or one 2-D section). Three layers
of truth are planted, each with its own expression program:

* **cell types** are mixed everywhere and carry the strongest program, so clustering on
  expression alone finds cell types, not places;
* **regions** are spatially contiguous (Voronoi cells of well-spread seeds) with a moderate
  program;
* **connectivity modules** group regions that are far apart; regions of one module are strongly
  connected to each other and share a weak program. This coupling between expression and wiring
  is what SpaCon exploits.

Connectivity is defined, as in tracer connectomes, between spatial **units** (voxels, split at
region boundaries as atlas-labelled voxels are) with a cell -> unit map: long-range edges within
each module, a few off-module edges, and short-range distance-decay edges. The cell x cell graph
it implies is never materialised.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.spatial import cKDTree

from .._errors import SpaconInputError
from ..io import Connectivity

logger = logging.getLogger(__name__)

# ellipsoid semi-axes in micrometres: medio-lateral (x), dorso-ventral (y), antero-posterior (z)
BRAIN_AXES = np.array([4000.0, 3000.0, 5000.0])


@dataclass(frozen=True)
class SyntheticBrainParams:
    """Size and difficulty of a synthetic brain (see :func:`synthetic_brain`)."""

    n_cells: int = 6000
    n_genes: int = 300
    n_sections: int = 12
    n_regions: int = 16
    n_modules: int = 4
    n_cell_types: int = 6
    cells_per_unit: float = 25.0
    long_range_degree: int = 30
    off_module_fraction: float = 0.1
    type_strength: float = 2.0
    region_strength: float = 1.0
    module_strength: float = 0.6
    dispersion: float = 4.0
    seed: int = 0


def synthetic_brain(
    n_cells: int = 6000,
    n_genes: int = 300,
    n_sections: int = 12,
    *,
    n_regions: int = 16,
    n_modules: int = 4,
    n_cell_types: int = 6,
    cells_per_unit: float = 25.0,
    long_range_degree: int = 30,
    off_module_fraction: float = 0.1,
    type_strength: float = 2.0,
    region_strength: float = 1.0,
    module_strength: float = 0.6,
    dispersion: float = 4.0,
    seed: int = 0,
):
    """Simulate a brain with planted cell types, regions and distant connectivity modules.

    Parameters
    ----------
    n_cells, n_genes
        Size of the expression matrix.
    n_sections
        Number of ordered coronal sections; ``1`` gives a single 2-D section.
    n_regions, n_modules, n_cell_types
        Number of contiguous molecular regions, of connectivity modules (each a group of
        spatially distant regions; ``n_regions >= 2 * n_modules``) and of cell types.
    cells_per_unit
        Mean number of cells in a connectivity unit (voxel); sets the voxel size.
    long_range_degree
        Long-range targets per unit inside its module.
    off_module_fraction
        Extra long-range edges to other modules, as a fraction of ``long_range_degree`` (noise).
    type_strength, region_strength, module_strength
        Log-fold change of each program's marker genes; lower is harder.
    dispersion
        Negative-binomial size parameter (smaller = noisier counts).
    seed
        Random seed; the same seed gives the same data.

    Returns
    -------
    adata
        Counts in ``X`` (CSR, float32); ``obsm['spatial']`` with x, y (in-section) and z
        (section position; absent for one section); ``obs``: ``section`` (ordered categorical),
        ``cell_type``, ``region``, ``module`` (ground truth), ``unit`` (connectivity unit id);
        ``var``: ``program`` (which program each gene marks); ``uns['synthetic_brain']``:
        parameters, section order and suggested graph radii.
    connectivity
        Unit x unit :class:`~spacon.io.Connectivity` (rows are sources), labelled by unit id.
    """
    params = SyntheticBrainParams(
        n_cells, n_genes, n_sections, n_regions, n_modules, n_cell_types, cells_per_unit,
        long_range_degree, off_module_fraction, type_strength, region_strength, module_strength,
        dispersion, seed,
    )
    _check_params(params)
    from .._utils import check_memory

    # the expression is drawn dense, a few float64 copies of cells x genes
    check_memory(4 * 8 * float(n_cells) * float(n_genes), f"simulating {n_cells:,} cells x "
                 f"{n_genes:,} genes", "simulate fewer cells or genes.")
    rng = np.random.default_rng(seed)
    coords, section = _place_cells(params, rng)

    region, seeds = _regions(coords, params, rng)
    module_of_region = _modules(seeds, params.n_modules)
    module = module_of_region[region]
    cell_type = _cell_types(region, params, rng)
    unit, unit_size = _units(coords, region, params)
    n_units = int(unit.max()) + 1
    unit_region = _majority(unit, region, n_units, params.n_regions)
    unit_centre = _centroids(coords, unit, n_units)
    conn = _unit_connectome(unit_centre, module_of_region[unit_region], unit_size, params, rng)
    counts, program = _expression(cell_type, region, module, params, rng)

    import anndata as ad

    section_labels = [f"s{i:03d}" for i in range(params.n_sections)]
    obs = pd.DataFrame(
        {
            "section": pd.Categorical.from_codes(section, section_labels, ordered=True),
            "cell_type": pd.Categorical.from_codes(
                cell_type, [f"type{i}" for i in range(params.n_cell_types)]
            ),
            "region": pd.Categorical.from_codes(
                region, [f"region{i}" for i in range(params.n_regions)]
            ),
            "module": pd.Categorical.from_codes(
                module, [f"module{i}" for i in range(params.n_modules)]
            ),
            "unit": unit.astype(np.int64),
        },
        index=pd.Index([f"cell{i}" for i in range(params.n_cells)]),
    )
    var = pd.DataFrame({"program": program}, index=[f"gene{i}" for i in range(params.n_genes)])
    adata = ad.AnnData(counts, obs=obs, var=var)
    adata.obsm["spatial"] = coords.astype(np.float32)
    spacing = _cell_spacing(coords, section)
    adata.uns["synthetic_brain"] = {
        "params": asdict(params),
        "section_order": section_labels,
        "unit_size": float(unit_size),
        "suggested_radius": float(3.0 * spacing),
        "suggested_z_radius": float(1.5 * spacing),
        "n_units": n_units,
        "implied_cell_edges": int(implied_cell_edges(conn, unit)),
        "ground_truth": ["cell_type", "region", "module"],
    }
    logger.info(
        "synthetic brain: %d cells x %d genes, %d sections, %d units, %d unit edges implying %d "
        "cell-cell edges", params.n_cells, params.n_genes, params.n_sections, n_units, conn.nnz,
        adata.uns["synthetic_brain"]["implied_cell_edges"],
    )
    return adata, Connectivity(conn, np.arange(n_units))


def implied_cell_edges(unit_graph: sp.spmatrix, cell_unit: np.ndarray) -> int:
    """Number of cell -> cell edges a unit graph implies (sum over unit edges of n_u * n_v)."""
    sizes = np.bincount(cell_unit, minlength=unit_graph.shape[0]).astype(np.float64)
    coo = sp.coo_matrix(unit_graph)
    return int(np.sum(sizes[coo.row] * sizes[coo.col]))


def _check_params(p: SyntheticBrainParams) -> None:
    problems = []
    if p.n_cells < 50:
        problems.append(f"n_cells={p.n_cells} (need >= 50)")
    if p.n_sections < 1:
        problems.append(f"n_sections={p.n_sections} (need >= 1)")
    if p.n_modules < 2 or p.n_regions < 2 * p.n_modules:
        problems.append(
            f"n_regions={p.n_regions}, n_modules={p.n_modules} (need n_modules >= 2 and "
            "n_regions >= 2 * n_modules so each module holds distant regions)"
        )
    if p.n_cell_types < 2:
        problems.append(f"n_cell_types={p.n_cell_types} (need >= 2)")
    n_markers = p.n_cell_types + p.n_regions + p.n_modules
    if p.n_genes < 2 * n_markers:
        problems.append(f"n_genes={p.n_genes} (need >= {2 * n_markers} for marker programs)")
    if p.cells_per_unit < 1 or p.dispersion <= 0 or p.long_range_degree < 1:
        problems.append("cells_per_unit >= 1, dispersion > 0 and long_range_degree >= 1 are needed")
    if p.n_cells < p.n_sections * 10:
        problems.append(f"{p.n_cells} cells are too few for {p.n_sections} sections (>= 10 each)")
    if problems:
        raise SpaconInputError("synthetic_brain: " + "; ".join(problems) + ".")


def _place_cells(p: SyntheticBrainParams, rng: np.random.Generator):
    """Uniform cells in each coronal section of the ellipsoid; cells per section ~ its area."""
    a, b, c = BRAIN_AXES
    if p.n_sections == 1:
        z_pos = np.zeros(1)
    else:
        z_pos = np.linspace(-0.85 * c, 0.85 * c, p.n_sections)
    shrink = np.sqrt(1 - (z_pos / c) ** 2)  # cross-section semi-axes scale
    area = shrink**2
    per_section = rng.multinomial(p.n_cells - 10 * p.n_sections, area / area.sum()) + 10
    section = np.repeat(np.arange(p.n_sections), per_section)
    # uniform points in a unit disc, stretched to each section's ellipse
    r = np.sqrt(rng.random(p.n_cells))
    theta = rng.random(p.n_cells) * 2 * np.pi
    s = shrink[section]
    x = a * s * r * np.cos(theta)
    y = b * s * r * np.sin(theta)
    if p.n_sections == 1:
        return np.column_stack([x, y]), section
    return np.column_stack([x, y, z_pos[section]]), section


def _regions(coords: np.ndarray, p: SyntheticBrainParams, rng: np.random.Generator):
    """Contiguous regions: nearest of n_regions well-spread seeds (farthest-point sampling)."""
    pool = coords[rng.choice(len(coords), size=min(len(coords), 5000), replace=False)]
    chosen = [int(rng.integers(len(pool)))]
    dist = np.linalg.norm(pool - pool[chosen[0]], axis=1)
    for _ in range(p.n_regions - 1):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(pool - pool[nxt], axis=1))
    seeds = pool[chosen]
    _, region = cKDTree(seeds).query(coords)
    return region.astype(np.int64), seeds


def _modules(seeds: np.ndarray, n_modules: int) -> np.ndarray:
    """Assign regions to modules so that regions of one module are far apart (balanced sizes)."""
    n = len(seeds)
    cap = int(np.ceil(n / n_modules))
    d = np.linalg.norm(seeds[:, None] - seeds[None], axis=-1)  # regions x regions: tiny
    module = np.full(n, -1)
    for region in np.argsort(-d.sum(axis=1)):  # most peripheral regions first
        best, best_score = -1, -np.inf
        for m in range(n_modules):
            members = np.flatnonzero(module == m)
            if len(members) >= cap:
                continue
            score = np.inf if len(members) == 0 else d[region, members].min()
            if score > best_score:
                best, best_score = m, score
        module[region] = best
    return module


def _cell_types(region: np.ndarray, p: SyntheticBrainParams, rng: np.random.Generator):
    """Cell types everywhere, with mildly region-dependent proportions."""
    props = rng.dirichlet(np.full(p.n_cell_types, 20.0), size=p.n_regions)
    cum = np.cumsum(props, axis=1)[region]
    u = rng.random(len(region))[:, None]
    return np.minimum((u > cum).sum(axis=1), p.n_cell_types - 1)


def _units(coords: np.ndarray, region: np.ndarray, p: SyntheticBrainParams):
    """Voxel units sized so that each holds about cells_per_unit cells.

    A voxel crossed by a region boundary is split by region, as when voxels carry an atlas
    label: every unit lies in one region, so its connectivity follows that region's module.
    """
    n_units_target = max(p.n_cells / p.cells_per_unit, 1.0)
    extent = np.ptp(coords, axis=0) + 1e-9
    if coords.shape[1] == 2 or p.n_sections == 1:
        size = np.sqrt(np.prod(extent[:2]) * (np.pi / 4) / n_units_target)
    else:
        # cells lie on section planes: voxels thinner than the section spacing hold one plane
        spacing = extent[2] / max(p.n_sections - 1, 1)
        planar = np.sqrt(np.prod(extent[:2]) * (np.pi / 4) * p.n_sections * (2 / 3)
                         / n_units_target)
        size = planar if planar <= spacing else (
            np.prod(extent) * (np.pi / 6) / n_units_target) ** (1 / 3)
    grid = np.floor((coords - coords.min(axis=0)) / size).astype(np.int64)
    _, unit = np.unique(np.column_stack([grid, region]), axis=0, return_inverse=True)
    return unit.ravel(), float(size)


def _majority(unit: np.ndarray, label: np.ndarray, n_units: int, n_labels: int) -> np.ndarray:
    table = sp.coo_matrix((np.ones(len(unit)), (unit, label)), shape=(n_units, n_labels)).tocsr()
    return np.asarray(table.argmax(axis=1)).ravel()


def _centroids(coords: np.ndarray, unit: np.ndarray, n_units: int) -> np.ndarray:
    sizes = np.bincount(unit, minlength=n_units)[:, None]
    sums = np.column_stack([np.bincount(unit, weights=c, minlength=n_units) for c in coords.T])
    return sums / np.maximum(sizes, 1)


def _unit_connectome(centre, unit_module, unit_size, p: SyntheticBrainParams, rng):
    """Directed unit graph: in-module long-range edges, off-module noise, short-range decay."""
    n_units = len(centre)
    rows, cols, vals = [], [], []
    for m in range(p.n_modules):
        members = np.flatnonzero(unit_module == m)
        if len(members) < 2:
            continue
        k = min(p.long_range_degree, len(members) - 1)
        targets = members[rng.integers(0, len(members), size=(len(members), k))]
        rows.append(np.repeat(members, k))
        cols.append(targets.ravel())
        vals.append(rng.lognormal(0.0, 0.5, size=len(members) * k))
    k_off = int(round(p.off_module_fraction * p.long_range_degree))
    if k_off:
        rows.append(np.repeat(np.arange(n_units), k_off))
        cols.append(rng.integers(0, n_units, size=n_units * k_off))
        vals.append(0.5 * rng.lognormal(0.0, 0.5, size=n_units * k_off))
    pairs = cKDTree(centre).query_pairs(2.5 * unit_size, output_type="ndarray")
    if len(pairs):
        d = np.linalg.norm(centre[pairs[:, 0]] - centre[pairs[:, 1]], axis=1)
        w = np.exp(-d / unit_size)
        rows += [pairs[:, 0], pairs[:, 1]]
        cols += [pairs[:, 1], pairs[:, 0]]
        vals += [w, w]
    rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    keep = rows != cols
    conn = sp.csr_matrix(
        (vals[keep].astype(np.float32), (rows[keep], cols[keep])), shape=(n_units, n_units)
    )
    conn.sum_duplicates()
    return conn


def _expression(cell_type, region, module, p: SyntheticBrainParams, rng):
    """Negative-binomial counts from baseline + type + region + module programs."""
    n_markers_type = max(2, int(0.35 * p.n_genes / p.n_cell_types))
    n_markers_region = max(2, int(0.35 * p.n_genes / p.n_regions))
    n_markers_module = max(2, int(0.06 * p.n_genes / p.n_modules))
    order = rng.permutation(p.n_genes)
    program = np.array(["background"] * p.n_genes, dtype=object)
    effects = []  # (labels per cell, n_groups, genes per group, strength, name)
    start = 0
    for labels, n_groups, per_group, strength, name in (
        (cell_type, p.n_cell_types, n_markers_type, p.type_strength, "type"),
        (region, p.n_regions, n_markers_region, p.region_strength, "region"),
        (module, p.n_modules, n_markers_module, p.module_strength, "module"),
    ):
        lfc = np.zeros((n_groups, p.n_genes), dtype=np.float32)
        for g in range(n_groups):
            genes = order[start : start + per_group]
            start += per_group
            lfc[g, genes] = strength * rng.uniform(0.7, 1.3, size=len(genes))
            program[genes] = f"{name}{g}"
        effects.append((labels, lfc))
    base = rng.normal(np.log(0.4), 0.8, size=p.n_genes).astype(np.float32)
    library = rng.lognormal(0.0, 0.25, size=p.n_cells).astype(np.float32)
    blocks = []
    chunk = max(1, 4_000_000 // p.n_genes)  # bound memory: ~4M values at a time
    for lo in range(0, p.n_cells, chunk):
        hi = min(lo + chunk, p.n_cells)
        log_mu = base + sum(lfc[labels[lo:hi]] for labels, lfc in effects)
        mu = np.exp(log_mu) * library[lo:hi, None]
        lam = rng.gamma(p.dispersion, mu / p.dispersion)
        blocks.append(sp.csr_matrix(rng.poisson(lam).astype(np.float32)))
    return sp.vstack(blocks, format="csr"), program.astype(str)


def _cell_spacing(coords, section) -> float:
    """Typical distance between neighbouring cells within a section."""
    sizes = np.bincount(section)
    largest = int(np.argmax(sizes))
    pts = coords[section == largest, :2]
    area = np.pi * (np.ptp(pts[:, 0]) / 2) * (np.ptp(pts[:, 1]) / 2)
    return float(np.sqrt(area / max(len(pts), 1)))
