"""Cells -> connectome units: the nearest voxel, or the connectome's region of each cell."""

from __future__ import annotations

import logging
import numbers
import warnings
from typing import Literal

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from .. import _keys
from .._errors import SpaconInputError, SpaconWarning
from .._utils import check_anndata, check_option, label_strings, spatial_coordinates
from ..io import Connectivity
from ..io._voxel_model import SIDE, VoxelModel

logger = logging.getLogger(__name__)


def assign_units(
    adata,
    units,
    *,
    region_key: str | list[str] | None = None,
    max_distance: float | None = None,
    hemisphere: Literal["none", "mirror"] = "none",
    midline: float | None = None,
    ml_axis: int = 2,
    drop: bool = False,
    spatial_key: str = _keys.CCF,
    key_added: str = _keys.UNIT,
    copy: bool = False,
):
    """Assign each cell to a unit of a connectome, for :func:`~spacon.pp.connectome_graph`.

    Two ways: by position, each cell to its nearest voxel (a KD-tree over the voxel positions,
    queried in parallel), at most ``max_distance`` away; or by region, ``obs[region_key]``
    matched to the labels of a region-level connectome.

    Parameters
    ----------
    adata
        Annotated data of the cells.
    units
        A :class:`~spacon.io.VoxelModel` (its source voxels; labels are their grid indices), an
        ``(n, d)`` array of voxel positions (labels ``0..n-1``, matching an unlabelled
        connectome by position), or, with ``region_key``, a labelled
        :class:`~spacon.io.Connectivity` or the list of its labels.
    region_key
        ``obs`` column(s) of region labels. With several, finest first (e.g.
        ``["parcellation_substructure", "parcellation_structure"]``), each cell takes the first
        one the connectome knows.
    max_distance
        Cells farther than this from every voxel (units of the coordinates) get no unit.
    hemisphere
        ``"mirror"``: the connectome covers one hemisphere (ipsilateral injections); cells on
        the other side of ``midline`` are reflected onto it and their side is recorded. With a
        voxel model, units carry the side (``-L``/``-R``) so that the unit graph tells ipsi-
        from contralateral connections; so do region labels when the connectome's are all
        ``REGION-L``/``REGION-R`` (both hemispheres, e.g.
        :func:`~spacon.datasets.read_mouse_tracer` with ``hemispheres="both"``); otherwise
        both sides share the units.
    midline
        Position of the midline along ``ml_axis`` (default: the voxel model's).
    ml_axis
        Column of the coordinates that runs medio-laterally (2 for CCF ``x, y, z``).
    drop
        Remove cells that got no unit (otherwise they keep a missing unit and a warning says
        how many; :func:`~spacon.pp.connectome_graph` needs every cell to have one).
    spatial_key
        ``obsm`` key of coordinates in the units' frame (default ``'ccf'``, as
        :func:`~spacon.datasets.read_abc_merfish` writes).
    key_added
        Name of the ``obs`` unit column.
    copy
        Return a copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or a copy of ``adata`` if ``copy=True``. Sets ``obs[key_added]`` (categorical unit
    labels); by position ``obs[f'{key_added}_distance']`` (distance to the voxel); with
    ``hemisphere='mirror'`` ``obs[f'{key_added}_side']`` (``L``/``R``);
    ``uns[f'{key_added}_assignment']`` (parameters, cells assigned, unassigned and dropped,
    units used, unknown region labels). With ``drop=True`` the unassigned cells are removed.
    """
    check_anndata(adata, "spacon.pp.assign_units")
    adata = adata.copy() if copy else adata
    check_option("hemisphere", hemisphere, ("none", "mirror"))
    info = {"hemisphere": hemisphere, "n_cells": int(adata.n_obs)}
    if max_distance is not None and not (isinstance(max_distance, numbers.Real)
                                         and max_distance > 0):
        raise SpaconInputError(f"max_distance must be a positive distance, got {max_distance!r}.")
    if region_key is None and isinstance(units, Connectivity):
        raise SpaconInputError(
            "a Connectivity's units are regions: give region_key= (the obs column naming each "
            "cell's region), or pass voxel positions or a VoxelModel to assign by position.")
    if region_key is not None:
        labels, side = _by_region(adata, units, region_key, hemisphere, midline, ml_axis,
                                  spatial_key, info)
    else:
        labels, side = _by_position(adata, units, max_distance, hemisphere, midline, ml_axis,
                                    spatial_key, key_added, info)
    assigned = labels.notna().to_numpy()
    info.update(n_assigned=int(assigned.sum()), n_unassigned=int((~assigned).sum()),
                n_units=int(labels.dropna().nunique()))
    if not assigned.any():
        raise SpaconInputError(
            f"no cell could be assigned to a unit ({_why(info)}); check that the cells and the "
            "connectome share a coordinate frame and units (µm) or region names."
        )
    adata.obs[key_added] = labels.array  # categorical, kept as such
    if side is not None:
        adata.obs[_keys.unit_side(key_added)] = pd.Categorical(side, categories=["L", "R"])
    info["n_dropped"] = 0
    if not assigned.all():
        if drop:
            info["n_dropped"] = info["n_unassigned"]
            adata._inplace_subset_obs(assigned)
            logger.info("assign_units: dropped %d cells without a unit", info["n_dropped"])
        else:
            warnings.warn(
                f"{info['n_unassigned']} of {info['n_cells']} cells got no unit ({_why(info)}); "
                f"obs[{key_added!r}] is missing for them: drop them (drop=True) before "
                "connectome_graph.", SpaconWarning, stacklevel=2,
            )
    adata.uns[_keys.assignment(key_added)] = info
    logger.info("assign_units: %d cells to %d units", info["n_assigned"], info["n_units"])
    return adata if copy else None


def _why(info: dict) -> str:
    if "unknown_labels" in info:
        return f"region labels unknown to the connectome, e.g. {', '.join(info['unknown_labels'][:5])}"
    return f"farther than max_distance={info.get('max_distance')} from every voxel"


def _sides(coords, hemisphere, midline, ml_axis, unit_side: str | None):
    """Each cell's side, and the coordinates with the off side reflected onto ``unit_side``."""
    if hemisphere == "none":
        return coords, None
    if midline is None:
        raise SpaconInputError("hemisphere='mirror' needs midline= (position along ml_axis).")
    if not 0 <= ml_axis < coords.shape[1]:
        raise SpaconInputError(f"ml_axis={ml_axis} is not a column of the coordinates.")
    side = np.where(coords[:, ml_axis] >= midline, "R", "L")
    if unit_side is not None:
        coords = coords.copy()
        off = side != unit_side
        coords[off, ml_axis] = 2 * midline - coords[off, ml_axis]
    return coords, side


def _by_position(adata, units, max_distance, hemisphere, midline, ml_axis, spatial_key,
                 key_added, info):
    if isinstance(units, VoxelModel):
        positions, ids = units.source_positions(), units.source_flat
        midline = units.midline if midline is None else midline
        unit_side = SIDE.get(units.source_hemisphere)
        if hemisphere == "mirror" and unit_side is None:
            raise SpaconInputError("the voxel model's sources cover both hemispheres; nothing "
                                   "to mirror: use hemisphere='none'.")
        sided_labels = True
    else:
        positions = np.asarray(units, dtype=np.float64)
        if positions.ndim != 2 or not np.isfinite(positions).all():
            raise SpaconInputError(
                "units must be a VoxelModel, an (n, d) array of finite voxel positions, or "
                "region labels with region_key=."
            )
        ids = np.arange(len(positions))
        unit_side, sided_labels = None, False
        if hemisphere == "mirror" and midline is not None:
            unit_side = "R" if np.median(positions[:, ml_axis]) >= midline else "L"
    coords = spatial_coordinates(adata, spatial_key)
    if coords.shape[1] != positions.shape[1]:
        raise SpaconInputError(
            f"adata.obsm[{spatial_key!r}] has {coords.shape[1]} columns but the voxel positions "
            f"have {positions.shape[1]}; they must be in the same frame."
        )
    coords, side = _sides(coords, hemisphere, midline, ml_axis, unit_side)
    bound = np.inf if max_distance is None else float(max_distance)
    distance, index = _nearest(units, positions, coords, bound)
    found = np.isfinite(distance)
    adata.obs[_keys.unit_distance(key_added)] = np.where(found, distance, np.nan).astype(np.float32)
    info.update(method="nearest voxel", n_voxels=len(positions), max_distance=max_distance,
                midline=midline)
    code = np.where(found, index, 0).astype(np.int64)
    sided = sided_labels and side is not None
    if sided:
        code = 2 * code + (side == "R")
    count = np.bincount(code[found], minlength=2 * len(positions) if sided else len(positions))
    used = np.flatnonzero(count)  # sorted, in O(n) where np.unique would sort the cells
    categories = ids[used // 2 if sided else used].astype(str)
    if sided:
        categories = np.char.add(categories, np.where(used % 2, "-R", "-L"))
    position = np.cumsum(count > 0) - 1
    codes = np.where(found, position[code], -1)
    return pd.Series(pd.Categorical.from_codes(codes, categories=categories)), side


def _nearest(units, positions, coords, bound):
    """Nearest position to each cell (inf distance beyond ``bound``).

    On a voxel grid the voxel containing a cell is its nearest when it is one of the units, so
    only the cells in other voxels (white matter, outside the mask) need the KD-tree.
    """
    distance = np.full(len(coords), np.inf)
    index = np.full(len(coords), len(positions), dtype=np.int64)
    todo = np.arange(len(coords))
    if isinstance(units, VoxelModel):
        row = np.full(int(np.prod(units.shape)), -1, dtype=np.int64)
        row[units.source_flat] = np.arange(units.n_source)
        voxel = np.floor(coords / units.resolution).astype(np.int64)
        inside = ((voxel >= 0) & (voxel < np.array(units.shape))).all(axis=1)
        hit = np.full(len(coords), -1, dtype=np.int64)
        hit[inside] = row[np.ravel_multi_index(tuple(voxel[inside].T), units.shape)]
        direct = np.flatnonzero(hit >= 0)
        d = np.linalg.norm(coords[direct] - positions[hit[direct]], axis=1)
        close = d <= bound
        distance[direct[close]], index[direct[close]] = d[close], hit[direct[close]]
        todo = np.flatnonzero(hit < 0)
    if len(todo):
        tree = cKDTree(positions, balanced_tree=False, compact_nodes=False)
        distance[todo], index[todo] = tree.query(coords[todo], k=1, distance_upper_bound=bound,
                                                 workers=-1)
    return distance, index


def _by_region(adata, units, region_key, hemisphere, midline, ml_axis, spatial_key, info):
    known = units.labels if isinstance(units, Connectivity) else units
    if known is None or isinstance(known, VoxelModel):
        raise SpaconInputError("region_key= needs a labelled region-level connectome.")
    known = set(label_strings(known))
    # a connectome of both hemispheres labels its units REGION-L / REGION-R (read_mouse_tracer
    # with hemispheres="both"): cells are matched by region, then take their side's unit
    sided = hemisphere == "mirror" and bool(known) and all(
        label.endswith(("-L", "-R")) for label in known)
    if sided:
        known = {label[:-2] for label in known}
    keys = [region_key] if isinstance(region_key, str) else list(region_key)
    missing = [k for k in keys if k not in adata.obs]
    if missing:
        raise SpaconInputError(f"adata.obs has no region column(s) {', '.join(missing)}.")
    labels = pd.Series(np.nan, index=range(adata.n_obs), dtype=object)
    for key in keys:
        values = label_strings(adata.obs[key])
        take = labels.isna().to_numpy() & np.isin(values, list(known))
        labels[take] = values[take]
    unknown = pd.Series(label_strings(adata.obs[keys[0]]))[labels.isna().to_numpy()]
    unknown = unknown.value_counts()
    info.update(method="region", region_key=keys,
                unknown_labels=[str(u) for u in unknown.index[:20]])
    side = None
    if hemisphere == "mirror":
        coords = spatial_coordinates(adata, spatial_key)
        _, side = _sides(coords, hemisphere, midline, ml_axis, None)
    info["sided_units"] = sided
    if sided:
        named = labels.notna().to_numpy()
        labels[named] = labels[named].astype(str) + "-" + side[named]
    return labels.astype("category"), side
