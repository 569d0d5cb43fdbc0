"""Read the spatial and connectome graphs that :mod:`spacon.pp` stored on an AnnData (no torch)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .. import _keys
from .._errors import SpaconInputError
from .._utils import label_strings
from ..io import positions_in
from ._factored import FactoredGraph


def spatial_graph_of(adata, key: str = _keys.SPATIAL_GRAPH) -> FactoredGraph:
    """Incoming spatial edges of each cell: row ``i`` of ``obsp['<key>_connectivities']`` lists
    cell ``i``'s neighbours (scanpy's and squidpy's convention), which send to ``i``. spacon's
    own graphs are symmetric; a k-nearest-neighbour graph built elsewhere need not be, and a
    cell then pools its own ``k`` neighbours, not the cells that list it.
    """
    name = _keys.connectivities(key)
    if name not in adata.obsp:
        raise SpaconInputError(missing_spatial_graph(adata, key))
    return FactoredGraph.from_cell_graph(sp.csr_matrix(adata.obsp[name]))


def missing_spatial_graph(adata, key: str) -> str:
    """What to do when ``adata`` has no spatial graph under ``key``. Here ``spatial_key``
    names a graph (pp.spatial_graph's ``key_added``), where pp.spatial_graph's own
    ``spatial_key`` names coordinates: a user passing the coordinates' key is told so.
    """
    name = _keys.connectivities(key)
    prefixes = [k[: -len("_connectivities")] for k in adata.obsp if k.endswith("_connectivities")]
    # pp.spatial_graph's graphs record the coordinates they were built on
    built = sorted(p for p in prefixes if "spatial_key" in
                   dict(adata.uns.get(_keys.neighbors(p), {})).get("params", {}))
    if key != _keys.SPATIAL_GRAPH and key in adata.obsm:  # (both defaults are 'spatial')
        return (f"adata.obsp has no {name!r}: spatial_key= names the spatial graph here (what "
                f"spacon.pp.spatial_graph wrote, its key_added), not the coordinates "
                f"obsm[{key!r}]; "
                + ("the spatial graph built is under the default key: leave spatial_key= "
                   "unset here." if built == [_keys.SPATIAL_GRAPH] else
                   f"the spatial graph built is spatial_key={built[0]!r}." if len(built) == 1 else
                   "build it with spacon.pp.spatial_graph(adata, n_neighbors=..., "
                   f"spatial_key={key!r}) and leave spatial_key= unset here."))
    return (f"adata.obsp has no {name!r}; build the spatial graph first with "
            f"spacon.pp.spatial_graph(adata, radius=...) (key_added={key!r}).")


def connectome_graph_of(adata, key: str = _keys.CONNECTOME_GRAPH) -> FactoredGraph:
    """Incoming connectivity edges of each cell (rows of the stored matrix are sources)."""
    cell_level = _keys.connectivities(key)
    if cell_level in adata.obsp:
        return FactoredGraph.from_cell_graph(sp.csr_matrix(adata.obsp[cell_level]).T.tocsr())
    stored = adata.uns.get(_keys.neighbors(key))
    if not stored or "unit_connectivities" not in stored:
        raise SpaconInputError(
            f"no connectome graph under key {key!r}: build it with "
            "spacon.pp.connectome_graph(adata, connectivity, ...), or train without "
            "connectivity (connectome_key=None / --no-connectivity)."
        )
    unit_key = stored["params"]["unit_key"]
    if unit_key not in adata.obs:
        raise SpaconInputError(f"adata.obs lost the unit column {unit_key!r} of the connectome.")
    units = np.asarray(stored["units"]).astype(str)
    labels = label_strings(adata.obs[unit_key])
    unique, inverse = np.unique(labels, return_inverse=True)
    codes = positions_in(unique, units)
    if (codes < 0).any():
        raise SpaconInputError(
            f"cells of units {', '.join(unique[codes < 0][:5])} are not in the stored connectome; "
            "rebuild it with spacon.pp.connectome_graph."
        )
    unit_graph = sp.csr_matrix(stored["unit_connectivities"])
    return FactoredGraph(unit_graph.T.tocsr(), codes[inverse.ravel()])


def unconnected_cells(adata, key: str = _keys.CONNECTOME_GRAPH) -> np.ndarray | None:
    """Which cells have no incoming edge in the stored connectome graph, the edges the
    connectivity encoder averages over; ``None`` where there is no readable graph.
    """
    try:
        graph = connectome_graph_of(adata, key)
    except SpaconInputError:
        return None
    return np.diff(graph.unit_in.indptr)[graph.cell_unit] == 0
