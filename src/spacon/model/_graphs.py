"""Read the spatial and connectome graphs that :mod:`spacon.pp` stored on an AnnData."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .. import _keys
from .._errors import SpaconInputError
from .._utils import label_strings
from ..graph import FactoredGraph
from ..io import positions_in


def spatial_graph_of(adata, key: str = _keys.SPATIAL_GRAPH) -> FactoredGraph:
    """Incoming spatial edges of each cell."""
    name = _keys.connectivities(key)
    if name not in adata.obsp:
        raise SpaconInputError(
            f"adata.obsp has no {name!r}; build the spatial graph first with "
            f"spacon.pp.spatial_graph(adata, radius=...) (key_added={key!r})."
        )
    return FactoredGraph.from_cell_graph(sp.csr_matrix(adata.obsp[name]).T.tocsr())


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
