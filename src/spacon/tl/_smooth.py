"""Expression PCs averaged over the spatial graph, the connectome, or both: the baseline encoder."""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import scipy.sparse as sp

from .. import _keys
from .._errors import SpaconInputError
from .._utils import (
    check_option,
    expression_matrix,
    warn_unused_highly_variable,
    whole_number,
    writable,
)
from ..graph import FactoredGraph
from ..pp._normalize import warn_if_counts
from ._fuse import alpha_weight, check_alpha, standardise

logger = logging.getLogger(__name__)

Graph = Literal["spatial", "connectome", "both"]
Components = Literal["multispati", "pca"]
COMPONENTS = ("multispati", "pca")


def smoothed_expression(
    adata,
    *,
    graph: Graph = "spatial",
    n_hops: int = 3,
    alpha: float | None = None,
    n_comps: int = 30,
    components: Components = "pca",
    spatial_key: str = _keys.SPATIAL_GRAPH,
    connectome_key: str = _keys.CONNECTOME_GRAPH,
    layer: str | None = None,
    seed: int = 0,
    key_added: str = _keys.SMOOTHED,
    copy: bool = False,
):
    """Expression PCs averaged over each cell's graph neighbourhood, ``n_hops`` times.

    The simplest spatially (or connectivity-) aware embedding, and the baseline a learned
    encoder has to beat: each hop replaces a cell's PCs by their mean over the cell and its
    incoming neighbours (the graph binarised, a self-loop added, as the attention layers see
    it). A factored, unit-level connectome is averaged through its unit graph: every cell of a
    unit shares its neighbours, so one hop is a unit x unit sparse product and the cell x cell
    graph is never built. Only sparse products: seconds for a million cells.

    Parameters
    ----------
    adata
        Log-normalised expression in ``X`` (or ``layers[layer]``) and the graph(s): a spatial
        graph from :func:`spacon.pp.spatial_graph` and/or a connectome graph from
        :func:`spacon.pp.connectome_graph`.
    graph
        ``"spatial"``, ``"connectome"``, or ``"both"``: the two averages mixed by ``alpha`` as
        :func:`spacon.tl.fuse` mixes SpaCon's embeddings (each scaled as a whole, its
        components keeping their relative variance).
    n_hops
        Rounds of neighbourhood averaging (``0``: the PCs themselves).
    alpha
        Mixing parameter in ``[0, 1]`` for ``graph="both"`` (0 = spatial, 1 = connectome),
        which needs it. ``"spatial"`` is alpha 0 and ``"connectome"`` alpha 1; another value
        with them is refused.
    n_comps
        Components averaged (fewer if the data has fewer cells or genes).
    components
        What is averaged: ``"pca"``, the expression's principal components (plain smoothing),
        or ``"multispati"``, the components of the first 100 PCs that vary most smoothly over
        the graph averaged on (variance x Moran's I; :func:`spacon.tl.spatial_pca`).
    spatial_key, connectome_key
        Keys the graphs were stored under.
    layer
        Use ``adata.layers[layer]`` instead of ``X``.
    seed
        Seed of the PCA solver.
    key_added
        ``obsm`` key of the embedding.
    copy
        Return a copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or a copy if ``copy=True``. Sets ``obsm[key_added]`` (cells x components,
    float32) and ``uns[key_added] = {'params': {...}}`` (graph, n_hops, alpha, n_comps).
    """
    adata = writable(adata, copy, "spacon.tl.smoothed_expression")
    check_option("graph", graph, ("spatial", "connectome", "both"))
    check_option("components", components, COMPONENTS)
    n_hops, n_comps = whole_number("n_hops", n_hops, 0), whole_number("n_comps", n_comps)
    alpha = _graph_alpha(graph, alpha)
    # read the graphs first: a missing one fails before any work
    graphs = {}
    if graph in ("spatial", "both"):
        graphs["spatial"] = _spatial_graph(adata, spatial_key)
    if graph in ("connectome", "both"):
        graphs["connectome"] = _connectome_graph(adata, connectome_key)
    if components == "pca":
        pcs = expression_pcs(adata, n_comps, layer, seed)
        start = {name: pcs for name in graphs}
    else:
        from ._spatial_pca import N_INPUT_PCS, multispati

        pcs = expression_pcs(adata, max(N_INPUT_PCS, int(n_comps)), layer, seed)
        start = {name: multispati(pcs, g, int(n_comps))[0] for name, g in graphs.items()}
    smoothed = {name: average_over_graph(start[name], g, int(n_hops))
                for name, g in graphs.items()}
    if graph == "both":
        w = alpha_weight(alpha)
        out = w * standardise(smoothed["connectome"]) + (1 - w) * standardise(
            smoothed["spatial"])
    else:
        out = smoothed[graph]
    adata.obsm[key_added] = np.asarray(out, dtype=np.float32)
    adata.uns[key_added] = {"params": {
        "graph": graph, "n_hops": int(n_hops), "alpha": float(alpha),
        "n_comps": int(out.shape[1]), "components": components, "seed": seed,
    }}
    logger.info("smoothed expression: %d %s components averaged over %d hops of the %s "
                "graph%s, in obsm[%r]", out.shape[1], components, n_hops, graph,
                "s" if graph == "both" else "", key_added)
    return adata if copy else None


def _graph_alpha(graph: str, alpha) -> float:
    """The alpha an embedding on ``graph`` stands for; ``alpha`` is needed for ``"both"`` only."""
    fixed = {"spatial": 0.0, "connectome": 1.0}.get(graph)
    if alpha is None:
        if fixed is None:
            raise SpaconInputError("graph='both' mixes the two graphs' averages by alpha; pass "
                                   "alpha= in [0, 1] (0 = spatial, 1 = connectome).")
        return fixed
    check_alpha(alpha)
    if fixed is not None and float(alpha) != fixed:
        raise SpaconInputError(
            f"graph={graph!r} averages over one graph, which is alpha {fixed:g}; got "
            f"alpha={alpha!r}. To mix the two graphs use graph='both'.")
    return float(alpha)


def expression_pcs(adata, n_comps: int = 30, layer: str | None = None, seed: int = 0):
    """The first ``n_comps`` principal components of the expression (sparse data kept sparse)."""
    import scanpy as sc

    from ..pp import check_expression

    if layer is not None and layer not in adata.layers:
        raise SpaconInputError(f"adata.layers has no {layer!r}.")
    check_expression(adata, layer=layer)
    # user -> smoothed_expression / spatial_pca -> here -> warn_if_counts
    warn_if_counts(adata, layer, "their principal components follow each cell's depth",
                   stacklevel=4)
    warn_unused_highly_variable(adata, "the expression PCs use", stacklevel=4)
    x = expression_matrix(adata, layer)
    x = sp.csr_matrix(x, dtype=np.float32) if sp.issparse(x) else np.asarray(x, np.float32)
    n = int(min(n_comps, x.shape[0] - 1, x.shape[1] - 1))
    if n < 1:
        raise SpaconInputError(
            f"expression PCs need at least 2 cells and 2 genes, got {x.shape[0]} x {x.shape[1]}.")
    mean, variance = _gene_moments(x)
    varying = int((variance > 1e-10 * np.maximum(mean**2, 1.0)).sum())  # beyond rounding
    if varying < 2:
        raise SpaconInputError(
            f"{'no gene varies' if varying == 0 else 'one gene alone varies'} across the "
            f"{x.shape[0]} cells: expression PCs need at least 2 genes whose values differ "
            "between cells (is X a constant or a placeholder?).")
    return np.asarray(sc.pp.pca(x, n_comps=n, random_state=seed), dtype=np.float64)


def _gene_moments(x, chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """Each gene's mean and variance over the cells, summed in float64 a block of cells at a
    time (no float64 copy of the whole matrix; sparse kept sparse).
    """
    total = np.zeros(x.shape[1])
    square = np.zeros(x.shape[1])
    for lo in range(0, x.shape[0], chunk):
        block = x[lo:lo + chunk]
        block = block.astype(np.float64) if sp.issparse(block) else np.asarray(block, np.float64)
        total += np.asarray(block.sum(axis=0)).ravel()
        square += np.asarray(block.multiply(block).sum(axis=0) if sp.issparse(block)
                             else np.square(block).sum(axis=0)).ravel()
    mean = total / x.shape[0]
    return mean, np.maximum(square / x.shape[0] - mean**2, 0.0)


def average_over_graph(features: np.ndarray, graph: FactoredGraph, n_hops: int) -> np.ndarray:
    """``n_hops`` rounds of averaging each cell's features over itself and its in-neighbours.

    ``graph`` is a :class:`~spacon.graph.FactoredGraph` (a cell graph is the case of one cell
    per unit). Cell ``i`` of unit ``u`` averages the cells of every unit sending to ``u``, plus
    itself when ``u`` does not send to itself: with ``M`` the cell -> unit membership and ``B``
    the binarised unit graph, the sum is ``M B M^T h (+ h_i)``, all sparse products.
    """
    total, count = _summing(graph)
    h = np.asarray(features, dtype=np.float64)
    for _ in range(n_hops):
        h = total(h) / count[:, None]
    return h


def neighbour_mean(features: np.ndarray, graph: FactoredGraph) -> np.ndarray:
    """Each cell's mean of its in-neighbours' features, itself left out (0 with none)."""
    total, count = _summing(graph)
    h = np.asarray(features, dtype=np.float64)
    others = count - 1
    return (total(h) - h) / np.maximum(others, 1)[:, None] * (others > 0)[:, None]


def _summing(graph: FactoredGraph):
    """The sum over each cell and its in-neighbours (each once) as a function, and the count."""
    n_units = graph.unit_in.shape[0]
    membership = sp.csr_matrix(
        (np.ones(graph.n_cells), (np.arange(graph.n_cells), graph.cell_unit)),
        shape=(graph.n_cells, n_units),
    )
    unit_in = graph.unit_in
    # copies: sum_duplicates rewrites the index arrays, which must stay the graph's own
    unit_graph = sp.csr_matrix(
        (np.ones(unit_in.nnz), unit_in.indices.copy(), unit_in.indptr.copy()),
        shape=unit_in.shape)
    unit_graph.sum_duplicates()
    unit_graph.data[:] = 1.0
    sends_to_self = np.asarray(unit_graph.diagonal() > 0)[graph.cell_unit]
    add_self = (~sends_to_self).astype(np.float64)
    count = membership @ (unit_graph @ graph.unit_size.astype(np.float64)) + add_self

    def total(h):
        return membership @ (unit_graph @ (membership.T @ h)) + add_self[:, None] * h

    return total, count


def _spatial_graph(adata, key: str) -> FactoredGraph:
    from ..graph._stored import spatial_graph_of

    return spatial_graph_of(adata, key)


def _connectome_graph(adata, key: str) -> FactoredGraph:
    from ..graph._stored import connectome_graph_of

    return connectome_graph_of(adata, key)
