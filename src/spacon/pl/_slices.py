"""The slices a tissue is drawn in, one panel each: its sections, or slabs of a 3-D volume.

A 3-D volume without sections is cut along the axis with the fewest distinct values (the
sectioning axis of voxel or serial-section data); when every axis is continuous, into slabs of
equal depth along z. Drawing every depth on one panel would project the volume flat.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _keys
from .._utils import check_anndata, spatial_coordinates

AXIS_NAMES = ("x", "y", "z")
MAX_DISTINCT_DEPTHS = 64  # more distinct values along the thinnest axis: cut it into slabs
MAX_SLABS = 12


class Slices(NamedTuple):
    """Each cell's slice, the slices' names in order, the two in-plane axes and the depth axis."""

    codes: np.ndarray
    names: list[str]
    plane: tuple[int, int]
    depth: str | None  # "section", an axis name, or None for a single 2-D plane


def check_section_key(adata, section_key: str | None) -> None:
    """Refuse a section column that was named and is not in ``obs`` (the default
    ``"section"`` may be absent: then there are no sections).
    """
    if section_key is not None and section_key != "section" and section_key not in adata.obs:
        from .._errors import SpaconInputError

        raise SpaconInputError(
            f"adata.obs has no section column {section_key!r}; its columns: "
            f"{', '.join(map(repr, list(adata.obs.columns)[:12])) or 'none'} (section_key=None "
            "draws without sections).")


def slices(adata, *, section_key: str | None = None, section_order=None,
           spatial_key: str = "spatial") -> Slices:
    """Cut the tissue into the slices to draw.

    Parameters
    ----------
    adata
        Annotated data with ``obsm[spatial_key]`` (and ``obs[section_key]``).
    section_key
        ``obs`` column of sections; ``"section"`` is used when present, any other name must
        be in ``obs`` (a misspelt sample column drew every sample overlaid, unsaid).
    section_order
        Section labels in order (see :func:`spacon.pp.section_codes`).
    spatial_key
        ``obsm`` key of the 2-D or 3-D coordinates.

    Returns
    -------
    A :class:`Slices`: sections when there are any; for 3-D coordinates without sections, the
    distinct values of the axis with the fewest of them, or equal-depth slabs along z; for
    2-D coordinates, one slice of every cell.
    """
    check_anndata(adata, "spacon.pl.slices")
    check_section_key(adata, section_key)
    if section_key == "section" and section_key not in adata.obs:
        # the sections the spatial graph was built with (e.g. samples in obs['library_id']),
        # not every sample drawn over the others
        params = adata.uns.get(_keys.neighbors(_keys.SPATIAL_GRAPH), {}).get("params", {})
        if params.get("section_key") in adata.obs:
            section_key = params["section_key"]
            if section_order is None and params.get("section_order") is not None:
                section_order = list(params["section_order"])
    if section_key is not None and section_key in adata.obs:
        from ..pp import section_codes

        codes, order = section_codes(adata, section_key, section_order)
        return Slices(np.asarray(codes), [str(s) for s in order], (0, 1), "section")
    coords = spatial_coordinates(adata, spatial_key)
    if coords.shape[1] == 2:
        return Slices(np.zeros(len(coords), dtype=np.int64), ["all cells"], (0, 1), None)
    distinct = [np.unique(coords[:, a]) for a in range(3)]
    axis = int(np.argmin([len(d) for d in distinct]))
    stepped = len(distinct[axis]) <= MAX_DISTINCT_DEPTHS
    axis = axis if stepped else 2
    plane = tuple(a for a in range(3) if a != axis)
    depth, name = coords[:, axis], AXIS_NAMES[axis]
    if stepped:
        codes = np.searchsorted(distinct[axis], depth)
        return Slices(codes, [f"{name} = {v:.4g}" for v in distinct[axis]], plane, name)
    n_slabs = int(np.clip(np.sqrt(len(coords)) / 2, 1, MAX_SLABS))
    edges = np.linspace(depth.min(), depth.max(), n_slabs + 1)
    slab = np.clip(np.searchsorted(edges, depth, side="right") - 1, 0, n_slabs - 1)
    used, codes = np.unique(slab, return_inverse=True)  # empty slabs are not drawn
    names = [f"{name} {edges[s]:.4g} to {edges[s + 1]:.4g}" for s in used]  # not "-38--15"
    return Slices(codes.astype(np.int64), names, plane, name)
