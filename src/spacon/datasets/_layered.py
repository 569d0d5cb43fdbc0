"""A 2-D cortex-like slice: curved layers of uneven thickness, cell types mixed everywhere.

Cells fill a curved band (a sector of an annulus, as a coronal slice of cortex). The band is cut
into layers by radius; the layer boundaries wave along the band, and the layers differ in
thickness. Cell types are found in every layer (with layer-dependent proportions) and carry the
strongest expression program, so expression alone clusters cell types; the layers carry a
weaker program and are recovered only by using space. No connectome: the slice is for spatial
domain calling (``connectome_key=None``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._errors import SpaconInputError


def layered_slice(
    n_cells: int = 3000,
    n_genes: int = 150,
    *,
    n_layers: int = 5,
    n_cell_types: int = 6,
    type_strength: float = 2.0,
    layer_strength: float = 1.0,
    dispersion: float = 4.0,
    seed: int = 0,
):
    """Simulate one 2-D slice of curved cortical layers with cell types mixed everywhere.

    Parameters
    ----------
    n_cells, n_genes
        Size of the expression matrix.
    n_layers
        Number of layers (the domains to recover), at least 2.
    n_cell_types
        Number of cell types, present in every layer.
    type_strength, layer_strength
        Log-fold change of the cell-type and layer marker genes; lower is harder.
    dispersion
        Negative-binomial size parameter (smaller = noisier counts).
    seed
        Random seed; the same seed gives the same data.

    Returns
    -------
    AnnData with counts in ``X`` (CSR, float32), ``obsm['spatial']`` (x, y in micrometres),
    ``obs['layer']`` (``L1`` = outermost) and ``obs['cell_type']`` (ground truth),
    ``var['program']`` and ``uns['layered_slice']`` (parameters and a suggested graph radius).
    """
    if n_layers < 2 or n_cell_types < 1 or n_cells < 10 * n_layers or n_genes < 4 * n_layers:
        raise SpaconInputError(
            "layered_slice: needs n_layers >= 2, n_cell_types >= 1, n_cells >= 10 * n_layers "
            "and n_genes >= 4 * n_layers."
        )
    rng = np.random.default_rng(seed)
    inner, outer, angle = 2000.0, 3500.0, 0.6 * np.pi  # micrometres, radians
    # uniform over the annulus sector: radius with density ~ r
    r = np.sqrt(rng.uniform(inner**2, outer**2, n_cells))
    theta = rng.uniform(-angle / 2, angle / 2, n_cells) + np.pi / 2
    depth = (outer - r) / (outer - inner)  # 0 at the pia, 1 at the white matter
    # uneven thicknesses, and boundaries that wave along the band
    thickness = rng.uniform(0.5, 1.5, n_layers)
    edges = np.cumsum(thickness)[:-1] / thickness.sum()
    wave = 0.04 * np.sin(3.0 * theta + rng.uniform(0, 2 * np.pi))
    layer = np.searchsorted(edges, depth + wave)
    props = rng.dirichlet(np.full(n_cell_types, 5.0), size=n_layers)
    cum = np.cumsum(props, axis=1)[layer]
    cell_type = np.minimum((rng.random(n_cells)[:, None] > cum).sum(axis=1), n_cell_types - 1)
    counts, program = _counts(
        [(cell_type, n_cell_types, type_strength, "type"),
         (layer, n_layers, layer_strength, "layer")],
        n_cells, n_genes, dispersion, rng,
    )
    import anndata as ad

    obs = pd.DataFrame(
        {"layer": pd.Categorical.from_codes(layer, [f"L{i + 1}" for i in range(n_layers)]),
         "cell_type": pd.Categorical.from_codes(
             cell_type, [f"type{i}" for i in range(n_cell_types)])},
        index=pd.Index([f"cell{i}" for i in range(n_cells)]),
    )
    adata = ad.AnnData(counts, obs=obs,
                       var=pd.DataFrame({"program": program},
                                        index=[f"gene{i}" for i in range(n_genes)]))
    adata.obsm["spatial"] = np.column_stack([r * np.cos(theta), r * np.sin(theta)]).astype(
        np.float32)
    spacing = np.sqrt(0.5 * angle * (outer**2 - inner**2) / n_cells)
    adata.uns["layered_slice"] = {
        "params": {"n_cells": n_cells, "n_genes": n_genes, "n_layers": n_layers,
                   "n_cell_types": n_cell_types, "type_strength": type_strength,
                   "layer_strength": layer_strength, "dispersion": dispersion, "seed": seed},
        "suggested_radius": float(3.0 * spacing),
        "ground_truth": ["layer", "cell_type"],
    }
    return adata


def _counts(programs, n_cells, n_genes, dispersion, rng):
    """Negative-binomial counts: a baseline plus one marker-gene program per label set."""
    order = rng.permutation(n_genes)
    program = np.array(["background"] * n_genes, dtype=object)
    log_mu = np.broadcast_to(rng.normal(np.log(0.4), 0.8, n_genes), (n_cells, n_genes)).copy()
    start = 0
    for labels, n_groups, strength, name in programs:
        per_group = max(2, int(0.35 * n_genes / n_groups))
        for g in range(n_groups):
            genes = order[start : start + per_group]
            start += per_group
            log_mu[np.ix_(labels == g, genes)] += strength * rng.uniform(0.7, 1.3, len(genes))
            program[genes] = f"{name}{g}"
    mu = np.exp(log_mu) * rng.lognormal(0.0, 0.25, n_cells)[:, None]
    counts = rng.poisson(rng.gamma(dispersion, mu / dispersion)).astype(np.float32)
    return sp.csr_matrix(counts), program.astype(str)
