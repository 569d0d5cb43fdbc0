"""Spatial neighbour graph: radius or k nearest neighbours, 2-D, 3-D, or stacked sections."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.spatial import cKDTree

from .. import _keys
from .._errors import SpaconInputError, SpaconWarning
from .._utils import (
    check_anndata,
    check_memory,
    check_numbers,
    label_strings,
    label_text,
    spatial_coordinates,
    writable,
)

logger = logging.getLogger(__name__)


BYTES_PER_KNN_EDGE = 80


DEFAULT_N_NEIGHBORS = 10  # neighbours when neither radius nor n_neighbors is given


def spatial_graph(
    adata,
    *,
    radius: float | None = None,
    n_neighbors: int | None = None,
    spatial_key: str = _keys.SPATIAL,
    section_key: str | None = None,
    section_order: list | None = None,
    z_radius: float | None = None,
    key_added: str = _keys.SPATIAL_GRAPH,
    copy: bool = False,
):
    """Build the spatial neighbour graph of cells (or spots).

    Three modes:

    * one 2-D section, or plain 3-D coordinates (``section_key=None``): neighbours in the
      coordinates of ``obsm[spatial_key]``;
    * sections (``section_key`` given): neighbours within each section in the first two
      (in-plane) coordinates; with ``z_radius``, a stack of serial sections: also neighbours
      in the *adjacent* sections of ``section_order`` within ``z_radius`` in-plane (the
      original's ``rad_cutoff_Zaxis``). Without it the sections are separate samples, as
      squidpy's ``library_key`` keeps them, with ``radius`` and ``n_neighbors`` alike.

    Give one of ``radius`` and ``n_neighbors``; with neither, each cell's
    ``DEFAULT_N_NEIGHBORS`` (10) nearest, as ``spacon run`` builds it. k-nearest-neighbour
    graphs are made symmetric (an edge if either cell is among the other's k nearest).
    Self-loops are not stored.

    Parameters
    ----------
    adata
        Annotated data with coordinates in ``obsm[spatial_key]``.
    radius
        Connect cells closer than this (same units as the coordinates).
    n_neighbors
        Connect each cell to its k nearest neighbours (within its section); 10 when neither
        this nor ``radius`` is given.
    spatial_key
        Key of the coordinates in ``obsm``.
    section_key
        ``obs`` column with each cell's section.
    section_order
        Order of the sections along the stacking axis. Defaults to the category order of an
        ordered categorical ``section_key``, else sorted labels.
    z_radius
        In-plane radius for neighbours in adjacent sections of a stack (e.g. ``radius``, or
        ``radius`` / 2 where sections lie closer than cells in a plane). Not given (or ``0``):
        no section is linked to another: separate samples (several Visium slides, squidpy's
        ``library_key``). (Before 29 Nov 2026 a ``radius`` graph linked sections within
        ``radius`` unless told otherwise.)
    key_added
        Prefix of the keys written.
    copy
        Return a copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or a copy of ``adata`` if ``copy=True``. Sets:

    ``obsp[f'{key_added}_connectivities']``
        Binary symmetric CSR adjacency.
    ``obsp[f'{key_added}_distances']``
        Edge lengths, same sparsity.
    ``uns[f'{key_added}_neighbors']['params']``
        The parameters used and the mean number of neighbours.
    """
    adata = writable(adata, copy, "spacon.pp.spatial_graph")
    if radius is not None and n_neighbors is not None:
        raise SpaconInputError("spatial_graph takes one of radius= or n_neighbors=, not both.")
    if radius is None and n_neighbors is None:
        n_neighbors = DEFAULT_N_NEIGHBORS
    coords = spatial_coordinates(adata, spatial_key)  # a missing key named first
    check_numbers(radius=radius, n_neighbors=n_neighbors, z_radius=z_radius)
    if radius is not None and not (np.isfinite(radius) and radius > 0):
        raise SpaconInputError(f"radius must be a positive number, got {radius!r}.")
    if n_neighbors is not None and (int(n_neighbors) != n_neighbors or n_neighbors < 1):
        raise SpaconInputError(f"n_neighbors must be a positive integer, got {n_neighbors!r}.")
    if z_radius is not None and not (np.isfinite(z_radius) and z_radius >= 0):
        raise SpaconInputError(f"z_radius must be a positive number, or 0 to link no "
                               f"sections, got {z_radius!r}.")
    if z_radius is not None and section_key is None:
        raise SpaconInputError("z_radius= links cells of adjacent sections, and needs "
                               "section_key= naming the sections (without it, it did nothing).")
    n = adata.n_obs
    if n_neighbors is not None:
        # k-NN query output, the symmetrised edge lists and the two CSR matrices
        check_memory(n * min(n_neighbors, n) * BYTES_PER_KNN_EDGE, f"a {n_neighbors}-nearest-"
                     "neighbour graph", "choose a smaller n_neighbors= (spatial graphs use ~6-30).")
        if n_neighbors >= n:
            raise SpaconInputError(f"n_neighbors={n_neighbors} links every cell to all others: "
                                   f"there are {n} cells (spatial graphs use ~6-30 neighbours).")

    if section_key is None:
        rows, cols = _neighbors(coords, radius, n_neighbors)
        order = None
    else:
        codes, order = section_codes(adata, section_key, section_order)
        if z_radius is None:
            _warn_if_a_stack(coords, codes, section_key)
        rows, cols = _stacked_neighbors(coords[:, :2], codes, order, radius, n_neighbors,
                                        z_radius or None)  # None, 0: separate samples

    # edge lengths in full coordinates: cross-section edges get their true 3-D length
    adjacency, dist = _to_csr(rows, cols, coords, n)
    degree = np.diff(adjacency.indptr)
    isolated = int((degree == 0).sum())
    logger.info("spatial graph: %d edges, %.2f neighbours per cell on average", adjacency.nnz,
                degree.mean())
    if isolated == n and n > 1 and radius is not None:
        raise SpaconInputError(
            f"no cell has a spatial neighbour within radius={radius:g} (the median distance "
            f"from a cell to its nearest one is {_nearest_distance(coords):.3g}); increase the "
            "radius or check the coordinates' units.")
    if isolated:
        warnings.warn(
            f"{isolated} of {n} cells have no spatial neighbour at this radius/k; they are linked "
            "only to themselves. Increase radius= or check the coordinates.",
            SpaconWarning,
            stacklevel=2,
        )
    adata.obsp[_keys.connectivities(key_added)] = adjacency
    adata.obsp[_keys.distances(key_added)] = dist
    adata.uns[_keys.neighbors(key_added)] = {
        "params": {
            "radius": radius, "n_neighbors": n_neighbors, "spatial_key": spatial_key,
            "section_key": section_key, "section_order": None if order is None else list(order),
            "z_radius": z_radius, "mean_neighbors": float(degree.mean()),
            "isolated_cells": isolated,
        },
        "connectivities_key": _keys.connectivities(key_added),
        "distances_key": _keys.distances(key_added),
    }
    # anndata cannot store None: drop the unset parameters
    params = adata.uns[_keys.neighbors(key_added)]["params"]
    for k in [k for k, v in params.items() if v is None]:
        del params[k]
    return adata if copy else None


def _warn_if_a_stack(coords: np.ndarray, codes: np.ndarray, section_key: str) -> None:
    """Sections at different depths (3-D coordinates, z differing between sections) look like
    a stack of serial sections; without ``z_radius`` they are not linked: say so.
    """
    if coords.shape[1] < 3 or codes.max(initial=0) < 1:
        return
    depth = np.bincount(codes, weights=coords[:, 2]) / np.maximum(np.bincount(codes), 1)
    if len(np.unique(depth[np.bincount(codes) > 0])) > 1:
        warnings.warn(
            f"the sections of obs[{section_key!r}] lie at different depths (z) but are not "
            "linked: give z_radius= (e.g. the radius, or the in-plane spacing of cells) to "
            "link adjacent sections of a stack, or z_radius=0 to keep them separate samples.",
            SpaconWarning, stacklevel=3)


def _stacked_neighbors(plane, codes, order, radius, n_neighbors, z_radius):
    """Edges of stacked sections: in-plane neighbours within each section, and pairs within
    ``z_radius`` in-plane between adjacent sections (both directions).
    """
    by_section = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[by_section], np.arange(len(order) + 1))
    members = [by_section[bounds[s] : bounds[s + 1]] for s in range(len(order))]
    lonely = [str(order[s]) for s, m in enumerate(members) if len(m) == 1]
    if lonely:
        warnings.warn(
            f"{len(lonely)} section(s) hold a single cell (e.g. {', '.join(lonely[:3])}); "
            "check the section labels: such a cell has no in-plane neighbour.",
            SpaconWarning,
            stacklevel=3,
        )
    rows, cols = [], []
    trees = [cKDTree(plane[m]) if len(m) else None for m in members]
    _check_graph_size(plane, members, trees, radius, n_neighbors, z_radius)
    for s, m in enumerate(members):
        if len(m) < 2:
            continue
        r, c = _neighbors(plane[m], radius, n_neighbors, tree=trees[s], check=False)
        rows.append(m[r])
        cols.append(m[c])
    if z_radius is not None:
        for s in range(len(order) - 1):
            a, b = members[s], members[s + 1]
            if not len(a) or not len(b):
                continue
            pairs = trees[s].sparse_distance_matrix(trees[s + 1], z_radius, output_type="ndarray")
            ia, ib = a[pairs["i"]], b[pairs["j"]]
            rows += [ia, ib]
            cols += [ib, ia]
    rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    cols = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    return rows, cols


def natural_order(labels) -> list[str]:
    """Labels sorted as people read them: numerically when all are numbers, else with
    embedded numbers compared as numbers (``BZ5, BZ9, BZ14``, not ``BZ14, BZ5, BZ9``).
    """
    import natsort

    labels = [str(x) for x in labels]
    try:
        return sorted(labels, key=float)
    except ValueError:
        return natsort.natsorted(labels)


def section_codes(adata, section_key: str, section_order=None):
    """Map each cell to the position of its section in ``section_order``.

    Parameters
    ----------
    adata
        Annotated data with ``obs[section_key]``.
    section_key
        ``obs`` column of each cell's section.
    section_order
        Section labels in order (default: the column's categories if ordered, else the
        labels in natural order, see ``spacon.pp._spatial.natural_order``).

    Returns
    -------
    The integer code of each cell's section and the order used. Raises a clear error for a
    missing column, a section absent from the order, or an order naming sections that do not
    exist.
    """
    check_anndata(adata, "spacon.pp.section_codes")
    if section_key not in adata.obs:
        raise SpaconInputError(
            f"adata.obs has no section column {section_key!r}; columns are: "
            f"{', '.join(map(str, adata.obs.columns))}."
        )
    labels = adata.obs[section_key]
    if labels.isna().any():
        raise SpaconInputError(f"adata.obs[{section_key!r}] has missing section labels.")
    labels = pd.Series(label_strings(labels), index=labels.index)
    present = pd.unique(labels)
    if section_order is None:
        col = adata.obs[section_key]
        if isinstance(col.dtype, pd.CategoricalDtype) and col.cat.ordered:
            order = [label_text(c) for c in col.cat.categories if label_text(c) in set(present)]
        else:
            order = natural_order(present)
            logger.info("sections in natural order of their labels: %s", ", ".join(order))
    else:
        order = [label_text(s) for s in section_order]
        if len(set(order)) != len(order):
            raise SpaconInputError("section_order lists a section more than once.")
        unknown = [s for s in order if s not in set(present)]
        if unknown:
            raise SpaconInputError(
                f"section_order names sections that are not in adata.obs[{section_key!r}]: "
                f"{', '.join(unknown[:5])}."
            )
        missing = [s for s in present if s not in set(order)]
        if missing:
            raise SpaconInputError(
                f"sections {', '.join(missing[:5])} of adata.obs[{section_key!r}] are absent from "
                "section_order; list every section in stacking order."
            )
    position = {s: i for i, s in enumerate(order)}
    codes = labels.map(position).to_numpy(dtype=np.int64)
    return codes, order


def _nearest_distance(coords, n_sample: int = 2000) -> float:
    """Median distance from a cell to its nearest other cell (over a sample of cells)."""
    pick = np.random.default_rng(0).choice(len(coords), min(n_sample, len(coords)),
                                           replace=False)
    distance = cKDTree(coords).query(coords[pick], k=2)[0][:, 1]
    return float(np.median(distance))


def _neighbors(coords, radius, n_neighbors, tree=None, check=True):
    """Directed edge list (both directions) of a radius or symmetrised kNN graph (``check``:
    refuse a radius graph that cannot fit first; stacked sections are checked as a whole).
    """
    tree = cKDTree(coords) if tree is None else tree
    if radius is not None:
        if check:
            _check_graph_size(coords, [np.arange(len(coords))], [tree], radius, None, None)
        pairs = tree.query_pairs(radius, output_type="ndarray")
        return np.concatenate([pairs[:, 0], pairs[:, 1]]), np.concatenate([pairs[:, 1], pairs[:, 0]])
    k = min(int(n_neighbors), len(coords) - 1)
    _, idx = tree.query(coords, k=k + 1)
    idx = idx.reshape(len(coords), k + 1)
    src = np.repeat(np.arange(len(coords)), k + 1)
    dst = idx.ravel()
    keep = src != dst
    src, dst = src[keep], dst[keep]
    return np.concatenate([src, dst]), np.concatenate([dst, src])


RADIUS_SAMPLE = 1000  # cells whose neighbours are counted to estimate a radius graph's size


def _check_graph_size(plane, members, trees, radius, n_neighbors, z_radius) -> None:
    """Refuse, before it is built, a spatial graph that would not fit in memory: its edges
    estimated from a sample of cells' neighbours in their own section and, within
    ``z_radius``, in the sections beside it (``members``: each section's cells, one section
    for unstacked data). A radius in other units than the coordinates links every cell to
    every other: 8,000 cells took 6.3 GB.
    """
    n = sum(len(m) for m in members)
    if n == 0 or (radius is None and not z_radius):
        return
    section = np.empty(n, dtype=np.int64)
    for s, m in enumerate(members):
        section[m] = s
    pick = np.random.default_rng(0).choice(n, min(n, RADIUS_SAMPLE), replace=False)
    edges = 0.0
    for s in np.unique(section[pick]):
        points = plane[pick[section[pick] == s]]
        if radius is not None:
            edges += np.sum(trees[s].query_ball_point(points, radius, return_length=True) - 1)
        else:
            edges += len(points) * min(int(n_neighbors), len(members[s]) - 1)
        for t in (s - 1, s + 1):
            if z_radius and 0 <= t < len(members) and trees[t] is not None:
                edges += np.sum(trees[t].query_ball_point(points, z_radius, return_length=True))
    degree = edges / len(pick)
    stacked = len(members) > 1
    check_memory(n * degree * BYTES_PER_KNN_EDGE,
                 f"a {'spatial' if stacked else 'radius'} graph of about {degree:,.0f} neighbours "
                 f"per cell over {n:,} cells" + (f" in {len(members)} sections" if stacked else ""),
                 f"choose a smaller radius={' or z_radius=' if stacked else ''} (in the "
                 "coordinates' units: are they um, not mm?), or n_neighbors= instead.")


def _to_csr(rows, cols, coords, n):
    """Binary adjacency and distances with the same sparsity (duplicate edges merged)."""
    keys = np.sort(rows.astype(np.int64) * n + cols.astype(np.int64))
    keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys  # (one sort)
    rows, cols = keys // n, keys % n
    d = np.linalg.norm(coords[rows] - coords[cols], axis=1).astype(np.float32)
    indptr = np.searchsorted(rows, np.arange(n + 1)).astype(np.int64)
    adjacency = sp.csr_matrix((np.ones(len(rows), np.float32), cols, indptr), shape=(n, n))
    dist = sp.csr_matrix((d, cols.copy(), indptr.copy()), shape=(n, n))
    return adjacency, dist
