"""Connectome graph: threshold, sparsify and store connectivity between cells or units."""

from __future__ import annotations

import logging
import warnings
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .. import _keys
from .._errors import SpaconInputError, SpaconWarning
from .._utils import (
    check_anndata,
    check_numbers,
    check_option,
    label_strings,
    spatial_coordinates,
    writable,
)
from ..io import Connectivity, VoxelModel, as_connectivity, positions_in
from ..io._connectivity import cell_rows, label_difference

logger = logging.getLogger(__name__)

Negative = Literal["drop", "absolute", "error"]


# a kept graph denser than this (fraction of all pairs) draws a warning; a brain of two
# connectivity modules legitimately keeps ~35% (each unit to its whole module)
DENSE_GRAPH = 0.5


def connectome_graph(
    adata,
    connectivity,
    *,
    unit_key: str | None = None,
    threshold: float | None = None,
    top_k: int | None = None,
    top_fraction: float | None = None,
    negative: Negative = "drop",
    distance_scale: float | None = None,
    spatial_key: str = _keys.SPATIAL,
    symmetrize: bool = False,
    self_loops: bool | None = None,
    key_added: str = _keys.CONNECTOME_GRAPH,
    copy: bool = False,
):
    """Turn a connectivity matrix into the graph SpaCon's connectivity encoder uses.

    Connectivity may be given between cells (``unit_key=None``) or between units — voxels,
    regions, parcels — with ``obs[unit_key]`` saying which unit each cell lies in. A unit-level
    connectome is kept **factored** (unit graph + cell -> unit map): cell ``i`` in unit ``u``
    is connected to every cell of every unit ``v`` with an edge ``u -> v``. Memory then grows
    with units and cells, never with the (possibly billions of) implied cell-cell edges.

    Steps, in order: handle negative values; optional distance weighting; keep entries above
    ``threshold``; keep each row's ``top_k`` or ``top_fraction`` strongest entries; set the
    diagonal; optionally symmetrise.

    Parameters
    ----------
    adata
        Annotated data of the cells.
    connectivity
        A :class:`~spacon.io.Connectivity`, a path readable by :func:`~spacon.io.read_connectivity`,
        a square array / sparse matrix, or a factored :class:`~spacon.io.VoxelModel` (then
        ``obs[unit_key]`` holds voxel units from :func:`~spacon.pp.assign_units` and only the
        rows and columns of those units are computed, block by block, with ``threshold`` and
        ``top_k`` applied per block). Rows are sources, columns targets. If it has labels,
        they are matched to ``obs_names`` (cell level) or to ``obs[unit_key]`` (unit level);
        without labels rows are matched by position (unit ids ``0..n-1``).
    unit_key
        ``obs`` column mapping each cell to a connectivity unit.
    threshold
        Keep entries strictly greater than this (after ``negative`` handling). Default: all
        positive entries.
    top_k, top_fraction
        Keep at most the ``top_k`` strongest targets per row, or the strongest ``top_fraction``
        of all possible targets per row; given both, the smaller number applies.
    negative
        Signed data (functional correlations): ``"drop"`` negative entries (anticorrelation is
        not treated as a connection), use their ``"absolute"`` value, or raise an ``"error"``.
    distance_scale
        Multiply each weight by ``1 - exp(-d / distance_scale)``, ``d`` the distance between the
        cells (or unit centroids): damps the short-range correlation that dominates widefield and
        fMRI data so that long-range structure decides the graph.
    spatial_key
        Coordinates used by ``distance_scale`` and for unit centroids.
    symmetrize
        Make the graph undirected (``max(w_ij, w_ji)``).
    self_loops
        ``None`` keeps the diagonal as in the data (at unit level: connections between cells of
        the same unit), ``False`` removes it, ``True`` sets it for every row.
    key_added
        Prefix of the keys written.
    copy
        Return a copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or a copy of ``adata`` if ``copy=True``. Sets, at cell level,
    ``obsp[f'{key_added}_connectivities']`` (cells x cells CSR of kept weights); at unit level
    ``uns[f'{key_added}_neighbors']['unit_connectivities']`` (units x units CSR) and
    ``uns[f'{key_added}_neighbors']['units']`` (unit ids, as strings). Both set
    ``uns[f'{key_added}_neighbors']['params']`` (parameters, edge counts, implied cell edges).
    """
    adata = writable(adata, copy, "spacon.pp.connectome_graph")
    check_option("negative", negative, ("drop", "absolute", "error"))
    _check_numbers(threshold, top_k, top_fraction, distance_scale)
    if isinstance(connectivity, VoxelModel):
        connectivity = _voxel_unit_graph(adata, connectivity, unit_key, threshold, top_k,
                                         top_fraction)
    connectivity = as_connectivity(connectivity)

    if unit_key is None:
        matrix = _align_cells(adata, connectivity)
        cell_unit, units = None, None
        positions = (
            spatial_coordinates(adata, spatial_key) if distance_scale is not None else None
        )
    else:
        cell_unit, used = unit_codes(adata, unit_key, connectivity)
        matrix = connectivity.matrix[used][:, used]
        units = (connectivity.labels[used] if connectivity.labels is not None
                 else used.astype(str))
        positions = None
        if distance_scale is not None:
            coords = spatial_coordinates(adata, spatial_key)
            sizes = np.bincount(cell_unit, minlength=len(used))[:, None]
            positions = np.column_stack(
                [np.bincount(cell_unit, weights=c, minlength=len(used)) for c in coords.T]
            ) / sizes

    graph = sparsify(
        matrix, threshold=threshold, top_k=top_k, top_fraction=top_fraction, negative=negative,
        distance_scale=distance_scale, positions=positions, symmetrize=symmetrize,
        self_loops=self_loops,
    )
    values = matrix.data if sp.issparse(matrix) else np.asarray(matrix)
    params = {
        "unit_key": unit_key, "threshold": threshold, "top_k": top_k,
        "top_fraction": top_fraction, "negative": negative,
        "n_negative": int((values < 0).sum()),  # (signed data) handled by ``negative``
        "distance_scale": distance_scale,
        "symmetrize": symmetrize, "self_loops": self_loops, "n_edges": int(graph.nnz),
        # rows of a matrix measured on more units (or cells) than the data hold: left out
        "unmatched_rows": int(connectivity.n - graph.shape[0]),
    }
    if unit_key is None:
        implied = graph.nnz
        adata.obsp[_keys.connectivities(key_added)] = graph
        stored = {"connectivities_key": _keys.connectivities(key_added)}
    else:
        sizes = np.bincount(cell_unit, minlength=graph.shape[0]).astype(np.float64)
        coo = graph.tocoo()
        implied = int(np.sum(sizes[coo.row] * sizes[coo.col]))
        stored = {"unit_connectivities": graph, "units": np.asarray(units).astype(str)}
        params["n_units"] = int(graph.shape[0])
        # a cell-level graph built earlier under this key would be read before this one
        adata.obsp.pop(_keys.connectivities(key_added), None)
        adata.obsp.pop(_keys.distances(key_added), None)
    params["implied_cell_edges"] = int(implied)
    params.update(_check_kept_graph(graph, cell_unit, adata.n_obs, implied))
    adata.uns[_keys.neighbors(key_added)] = {
        "params": {k: v for k, v in params.items() if v is not None}, **stored
    }
    return adata if copy else None


def _voxel_unit_graph(adata, model: VoxelModel, unit_key, threshold, top_k, top_fraction):
    """The unit x unit graph of the voxel units that hold cells, thresholded block by block."""
    if unit_key is None or unit_key not in adata.obs:
        raise SpaconInputError("a voxel model needs unit_key= naming the obs column of "
                               "voxel units (spacon.pp.assign_units writes it).")
    units = pd.unique(label_strings(adata.obs[unit_key].dropna()))
    k = top_k
    if top_fraction is not None:  # applied per block, as top_k is
        k = min(k or len(units), max(1, int(np.ceil(top_fraction * len(units)))))
    return model.unit_graph(units, threshold=threshold, top_k=k)


def _check_kept_graph(graph, cell_unit, n_cells: int, implied: int) -> dict:
    """Log what was kept; warn about isolated cells and a nearly complete graph."""
    # the encoder averages each cell's incoming edges (rows of the graph are sources)
    degree = np.bincount(sp.csr_matrix(graph).indices, minlength=graph.shape[1])
    isolated = int((degree == 0).sum() if cell_unit is None else (degree[cell_unit] == 0).sum())
    level = "cell" if cell_unit is None else "unit"
    if isolated:
        warnings.warn(
            f"{isolated} of {n_cells} cells have no incoming connection in the graph"
            + ("" if cell_unit is None else
               f" (the cells of {int((degree == 0).sum())} units)")
            + "; the connectivity encoder sees only the "
            "cell itself there, so at high alpha such cells look alike and can form a domain "
            "of their own. A lower threshold=, or top_k= with symmetrize=True, keeps "
            "connections into every cell that has any.",
            SpaconWarning,
            stacklevel=3,
        )
    n_nodes = graph.shape[0]
    density = float(graph.nnz / max(n_nodes * n_nodes, 1))
    logger.info(
        "connectome graph: %d %s edges kept, %.1f%% of all pairs, implying %d cell-cell edges "
        "(%.1f per cell)", graph.nnz, level, 100 * density, implied, implied / n_cells,
    )
    if density > DENSE_GRAPH and n_nodes >= 10:
        warnings.warn(
            f"the connectome graph keeps {100 * density:.0f}% of all {level} pairs "
            f"({graph.nnz:,} of "
            f"{n_nodes * n_nodes:,}): nearly everything connects to everything, so "
            "connectivity-defined domains (high alpha) merge into one. Keep the strongest "
            "connections only: threshold=, or top_k= (e.g. 8) with symmetrize=True.",
            SpaconWarning, stacklevel=3,
        )
    return {"isolated_cells": isolated, "density": density}


def sparsify(
    matrix: sp.csr_matrix,
    *,
    threshold: float | None = None,
    top_k: int | None = None,
    top_fraction: float | None = None,
    negative: Negative = "drop",
    distance_scale: float | None = None,
    positions: np.ndarray | None = None,
    symmetrize: bool = False,
    self_loops: bool | None = None,
) -> sp.csr_matrix:
    """Threshold and sparsify a square connectivity matrix.

    ``matrix`` is a square array, sparse matrix, labelled DataFrame (taken by position) or
    :class:`~spacon.io.Connectivity`; ``positions`` holds one row of coordinates per row of
    it, which ``distance_scale`` needs. The other options are :func:`connectome_graph`'s.
    Returns the kept connections as a float32 CSR matrix.
    """
    check_option("negative", negative, ("drop", "absolute", "error"))
    _check_numbers(threshold, top_k, top_fraction, distance_scale)
    if distance_scale is not None and positions is None:
        raise SpaconInputError("distance_scale needs positions= (one row of coordinates per "
                               "row of the matrix).")
    # checked as a connectome file is (square, finite); a DataFrame is taken by position
    conn = as_connectivity(matrix.to_numpy() if hasattr(matrix, "to_numpy") else matrix)
    m = sp.csr_matrix(conn.matrix, dtype=np.float32, copy=True)
    n = m.shape[0]
    if distance_scale is not None:
        positions = np.asarray(positions, dtype=np.float64)
        if positions.ndim != 2 or positions.shape[0] != n:
            raise SpaconInputError(f"positions must be {n} rows of coordinates (one per row of "
                                   f"the {n} x {n} matrix), got shape {positions.shape}.")
        if not np.isfinite(positions).all():
            bad = np.flatnonzero(~np.isfinite(positions).all(axis=1))
            raise SpaconInputError(f"positions has NaN or infinite coordinates in "
                                   f"{len(bad)} rows (first: row {bad[0]}).")
    if (m.data < 0).any():
        n_neg = int((m.data < 0).sum())
        if negative == "error":
            raise SpaconInputError(
                f"connectivity has {n_neg} negative values (signed data such as functional "
                "correlations); choose negative='drop' or 'absolute'."
            )
        if negative == "absolute":
            m.data = np.abs(m.data)
        else:
            m.data[m.data < 0] = 0
        logger.info("connectivity: %d negative values handled with negative=%r", n_neg, negative)
    if distance_scale is not None:
        coo = m.tocoo()
        d = np.linalg.norm(positions[coo.row] - positions[coo.col], axis=1)
        m.data *= (1 - np.exp(-d / distance_scale)).astype(np.float32)
    cut = 0.0 if threshold is None else threshold
    m.data[m.data <= cut] = 0
    m.eliminate_zeros()
    if top_fraction is not None:
        k = max(1, int(np.ceil(top_fraction * n)))
        top_k = k if top_k is None else min(top_k, k)
    if top_k is not None:
        m = _top_k_per_row(m, int(top_k))
    if self_loops is False:
        m.setdiag(0)
        m.eliminate_zeros()
    elif self_loops:
        row_max = np.asarray(m.max(axis=1).todense()).ravel()
        m = m.tolil()
        m.setdiag(np.where(row_max > 0, row_max, 1.0))
        m = m.tocsr()
    if symmetrize:
        m = m.maximum(m.T).tocsr()
    if m.nnz == 0:
        raise SpaconInputError(
            f"no connections are left after thresholding (threshold {threshold}, top-k {top_k}, "
            f"negative values: {negative}); lower the threshold or check the connectivity "
            "values."
        )
    m.sort_indices()
    return m.astype(np.float32)


def unit_codes(adata, unit_key: str, connectivity: Connectivity):
    """Map cells to connectivity rows.

    Parameters
    ----------
    adata
        Annotated data with ``obs[unit_key]``.
    unit_key
        ``obs`` column naming each cell's unit.
    connectivity
        Unit-level :class:`~spacon.io.Connectivity` (labels, or positions ``0..n-1``).

    Returns
    -------
    ``(cell_unit, used)``: for each cell the index of its unit among the units used by any
    cell, and for each used unit its row in ``connectivity``.
    """
    check_anndata(adata, "spacon.pp.unit_codes")
    connectivity = as_connectivity(connectivity)
    if unit_key not in adata.obs:
        raise SpaconInputError(
            f"adata.obs has no unit column {unit_key!r} mapping cells to connectivity units; "
            f"columns are: {', '.join(map(str, adata.obs.columns))}."
        )
    col = adata.obs[unit_key]
    if col.isna().any():
        raise SpaconInputError(
            f"{int(col.isna().sum())} cells have no unit in adata.obs[{unit_key!r}]; every cell "
            "needs one (drop cells outside the connectome first)."
        )
    cell_labels = label_strings(col)
    labels = (connectivity.labels if connectivity.labels is not None
              else np.arange(connectivity.n).astype(str))
    unique, inverse = np.unique(cell_labels, return_inverse=True)
    rows = positions_in(unique, labels)
    if (rows < 0).any():
        missing = unique[rows < 0]
        raise SpaconInputError(
            f"{len(missing)} units in adata.obs[{unit_key!r}] are not in the connectivity "
            f"matrix (e.g. {', '.join(missing[:5])}); the matrix has {connectivity.n} units"
            + (f" labelled e.g. {', '.join(labels[:5])}{label_difference(missing, labels)}"
               if connectivity.labels is not None else " identified by position 0..n-1")
            + (f". To leave their cells out: adata = adata[adata.obs[{unit_key!r}].astype("
               "str).isin(labels)].copy(), labels being the matrix's"
               if connectivity.labels is not None and (rows >= 0).any() else "") + "."
        )
    # keep the used units in the matrix's own order
    used = np.sort(rows)
    position = np.empty(connectivity.n, dtype=np.int64)
    position[used] = np.arange(len(used))
    return position[rows[inverse.ravel()]], used.astype(np.int64)


def _align_cells(adata, connectivity: Connectivity) -> sp.csr_matrix:
    rows = cell_rows(adata.obs_names, connectivity, stacklevel=4)
    return connectivity.matrix if connectivity.labels is None else connectivity.matrix[rows][:, rows]


def _top_k_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest entries of each row (vectorised: one sort over all entries)."""
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((-m.data, rows))
    rank = np.arange(len(order)) - m.indptr[rows[order]]
    keep = order[rank < k]
    return sp.csr_matrix((m.data[keep], (rows[keep], m.indices[keep])), shape=m.shape)


def _check_numbers(threshold, top_k, top_fraction, distance_scale):
    check_numbers(threshold=threshold, top_k=top_k, top_fraction=top_fraction,
                  distance_scale=distance_scale)
    if threshold is not None and not np.isfinite(threshold):
        raise SpaconInputError(f"threshold must be a finite number, got {threshold!r}.")
    if top_k is not None and (not np.isfinite(top_k) or int(top_k) != top_k or top_k < 1):
        raise SpaconInputError(f"top_k must be a positive integer, got {top_k!r}.")
    if top_fraction is not None and not (0 < top_fraction <= 1):
        raise SpaconInputError(f"top_fraction must be in (0, 1], got {top_fraction!r}.")
    if distance_scale is not None and not (np.isfinite(distance_scale) and distance_scale > 0):
        raise SpaconInputError(f"distance_scale must be a positive number, got {distance_scale!r}.")
