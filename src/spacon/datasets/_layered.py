"""A 2-D cortex-like slice: curved layers, cell types mixed through all of them, no connectome.

Cells fill a sector of an annulus (a cortical column bent like a gyrus). The sector is cut along
its depth into layers of unequal thickness whose boundaries wave gently, so no straight line or
single coordinate separates them. Every cell type occurs in every layer, with a mild
layer-dependent preference, and carries the strongest expression program: clustering on
expression alone finds cell types. Each layer adds a weaker program of its own, which only
pooling a cell's neighbours brings out: the task of a spatial domain method.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._errors import SpaconInputError

# relative layer thicknesses, superficial to deep (cortex-like: a thin L1, a thick L5/L6)
_THICKNESS = (0.6, 1.0, 1.0, 0.8, 1.4, 1.3, 0.9)


def layered_slice(
    n_cells: int = 4000,
    n_genes: int = 200,
    *,
    n_layers: int = 7,
    n_cell_types: int = 6,
    type_strength: float = 2.0,
    layer_strength: float = 0.5,
    dispersion: float = 4.0,
    seed: int = 0,
):
    """Simulate a 2-D slice with curved layers and cell types mixed everywhere.

    Parameters
    ----------
    n_cells, n_genes
        Size of the expression matrix.
    n_layers
        Number of curved layers (the ground-truth domains).
    n_cell_types
        Number of cell types, each present in every layer.
    type_strength, layer_strength
        Log-fold change of the cell-type and layer marker genes; the layer program is the weak
        one.
    dispersion
        Negative-binomial size parameter (smaller = noisier counts).
    seed
        Random seed; the same seed gives the same data.

    Returns
    -------
    AnnData with counts in ``X`` (CSR, float32); ``obsm['spatial']`` (x, y in micrometres);
    ``obs['layer']`` (ordered categorical ``L1``.., the truth) and ``obs['cell_type']``;
    ``var['program']`` (which program each gene marks); ``uns['layered_slice']`` (parameters
    and the typical distance between neighbouring cells).
    """
    _check(n_cells, n_genes, n_layers, n_cell_types, dispersion)
    from .._utils import check_memory

    # the counts are drawn dense, a few float64 copies of cells x genes
    check_memory(4 * 8 * float(n_cells) * float(n_genes), f"simulating {n_cells:,} cells x "
                 f"{n_genes:,} genes", "simulate fewer cells or genes.")
    rng = np.random.default_rng(seed)
    # uniform density over an annular sector: radius ~ sqrt(uniform) between the two arcs
    inner, outer, angle = 2000.0, 3500.0, np.pi / 2
    r = np.sqrt(rng.uniform(inner**2, outer**2, n_cells))
    theta = rng.uniform(-angle / 2, angle / 2, n_cells)
    coords = np.column_stack([r * np.sin(theta), r * np.cos(theta)])
    # depth below the outer (pial) arc in [0, 1], with wavy layer boundaries
    depth = (outer - r) / (outer - inner)
    depth = depth + 0.03 * np.sin(5 * theta + 1.0) * np.sin(np.pi * depth)
    thickness = np.resize(np.asarray(_THICKNESS), n_layers)
    bounds = np.cumsum(thickness) / thickness.sum()
    layer = np.minimum(np.searchsorted(bounds, depth), n_layers - 1)
    # every type everywhere, each type most common in its own band of layers
    preference = np.exp(-0.5 * ((np.arange(n_layers)[:, None] / max(n_layers - 1, 1)
                                 - np.linspace(0, 1, n_cell_types)[None]) / 0.5) ** 2)
    preference /= preference.sum(axis=1, keepdims=True)
    u = rng.random(n_cells)[:, None]
    cell_type = (u > np.cumsum(preference[layer], axis=1)).sum(axis=1)
    cell_type = np.minimum(cell_type, n_cell_types - 1)
    counts, program = _counts(cell_type, layer, n_genes, n_cell_types, n_layers,
                              type_strength, layer_strength, dispersion, rng)

    import anndata as ad

    obs = pd.DataFrame({
        "layer": pd.Categorical.from_codes(layer, [f"L{i + 1}" for i in range(n_layers)],
                                           ordered=True),
        "cell_type": pd.Categorical.from_codes(cell_type,
                                               [f"type{i}" for i in range(n_cell_types)]),
    }, index=pd.Index([f"cell{i}" for i in range(n_cells)]))
    var = pd.DataFrame({"program": program}, index=[f"gene{i}" for i in range(n_genes)])
    adata = ad.AnnData(counts, obs=obs, var=var)
    adata.obsm["spatial"] = coords.astype(np.float32)
    area = angle / 2 * (outer**2 - inner**2)
    adata.uns["layered_slice"] = {
        "params": {"n_cells": n_cells, "n_genes": n_genes, "n_layers": n_layers,
                   "n_cell_types": n_cell_types, "type_strength": type_strength,
                   "layer_strength": layer_strength, "dispersion": dispersion, "seed": seed},
        "cell_spacing": float(np.sqrt(area / n_cells)),
        "ground_truth": ["layer", "cell_type"],
    }
    return adata


def _counts(cell_type, layer, n_genes, n_types, n_layers, type_strength, layer_strength,
            dispersion, rng):
    """Negative-binomial counts from a baseline plus a cell-type and a layer program."""
    per_type = max(2, int(0.35 * n_genes / n_types))
    per_layer = max(2, int(0.35 * n_genes / n_layers))
    order = rng.permutation(n_genes)
    program = np.array(["background"] * n_genes, dtype=object)
    log_mu = rng.normal(np.log(0.4), 0.8, size=n_genes)[None, :].repeat(len(layer), 0)
    start = 0
    for labels, n_groups, per_group, strength, name in (
        (cell_type, n_types, per_type, type_strength, "type"),
        (layer, n_layers, per_layer, layer_strength, "layer"),
    ):
        lfc = np.zeros((n_groups, n_genes))
        for g in range(n_groups):
            genes = order[start : start + per_group]
            start += per_group
            lfc[g, genes] = strength * rng.uniform(0.7, 1.3, size=len(genes))
            program[genes] = f"{name}{g}"
        log_mu += lfc[labels]
    mu = np.exp(log_mu) * rng.lognormal(0.0, 0.25, size=len(layer))[:, None]
    counts = rng.poisson(rng.gamma(dispersion, mu / dispersion))
    return sp.csr_matrix(counts.astype(np.float32)), program.astype(str)


def _check(n_cells, n_genes, n_layers, n_cell_types, dispersion) -> None:
    problems = []
    if n_layers < 2 or n_cell_types < 2:
        problems.append(f"n_layers={n_layers}, n_cell_types={n_cell_types} (need >= 2 each)")
    if n_cells < 10 * n_layers:
        problems.append(f"n_cells={n_cells} (need >= 10 per layer)")
    if n_genes < 2 * (n_layers + n_cell_types):
        problems.append(f"n_genes={n_genes} (need >= {2 * (n_layers + n_cell_types)} for "
                        "marker programs)")
    if not dispersion > 0:
        problems.append(f"dispersion={dispersion} (need > 0)")
    if problems:
        raise SpaconInputError("layered_slice: " + "; ".join(problems) + ".")
