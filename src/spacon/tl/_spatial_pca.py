"""Spatially autocorrelated components of expression (MULTISPATI-PCA on a graph)."""

from __future__ import annotations

import numpy as np

from .. import _keys
from .._errors import SpaconInputError
from .._utils import check_anndata, check_option, whole_number, writable
from ..graph import FactoredGraph

N_INPUT_PCS = 100  # expression PCs the components are found among


def spatial_pca(
    adata,
    *,
    n_comps: int = 30,
    n_pcs: int = N_INPUT_PCS,
    graph: str = "spatial",
    spatial_key: str = _keys.SPATIAL_GRAPH,
    connectome_key: str = _keys.CONNECTOME_GRAPH,
    layer: str | None = None,
    seed: int = 0,
    key_added: str = _keys.SPATIAL_PCA,
    copy: bool = False,
):
    """Components of expression that vary smoothly over a graph (MULTISPATI-PCA).

    Principal components rank directions of expression by variance, so in a tissue where every
    cell type is everywhere they rank cell identity first. MULTISPATI-PCA (Dray, Said & Debias
    2008) ranks them by variance x Moran's I instead: the covariance of each cell's expression
    with its neighbours' mean. Its top components are what neighbouring cells share (tissue
    domains, layers, gradients) rather than what tells one cell from the next. They are found
    among the first ``n_pcs`` expression PCs: one small eigenproblem, one sparse product.

    Parameters
    ----------
    adata
        Log-normalised expression in ``X`` (or ``layers[layer]``) and the graph: a spatial graph
        from :func:`spacon.pp.spatial_graph` or a connectome graph from
        :func:`spacon.pp.connectome_graph`.
    n_comps
        Components kept.
    n_pcs
        Expression PCs they are found among (fewer if the data has fewer cells or genes).
    graph
        ``"spatial"`` or ``"connectome"``: the graph whose neighbours define the autocorrelation.
    spatial_key, connectome_key
        Keys the graphs were stored under.
    layer
        Use ``adata.layers[layer]`` instead of ``X``.
    seed
        Seed of the PCA solver.
    key_added
        ``obsm`` key of the components.
    copy
        Return a copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or a copy if ``copy=True``. Sets ``obsm[key_added]`` (cells x components,
    float32) and ``uns[key_added]``: ``params``, ``variance`` (of each component) and
    ``morans_i`` (Moran's I of each component on the graph).
    """
    check_anndata(adata, "spacon.tl.spatial_pca")
    from ._smooth import _connectome_graph, _spatial_graph, expression_pcs

    adata = writable(adata, copy, "spacon.tl.spatial_pca")
    check_option("graph", graph, ("spatial", "connectome"))
    n_comps, n_pcs = whole_number("n_comps", n_comps), whole_number("n_pcs", n_pcs)
    if n_comps > n_pcs:
        raise SpaconInputError(
            f"n_comps={n_comps} components cannot be found among n_pcs={n_pcs} expression PCs; "
            "raise n_pcs to at least n_comps.")
    g = (_spatial_graph(adata, spatial_key) if graph == "spatial"
         else _connectome_graph(adata, connectome_key))
    pcs = expression_pcs(adata, int(n_pcs), layer, seed)
    scores, variance, morans_i = multispati(pcs, g, int(n_comps))
    adata.obsm[key_added] = scores.astype(np.float32)
    adata.uns[key_added] = {
        "params": {"n_comps": int(scores.shape[1]), "n_pcs": int(pcs.shape[1]),
                   "graph": graph, "seed": seed},
        "variance": variance, "morans_i": morans_i,
    }
    return adata if copy else None


def multispati(features: np.ndarray, graph: FactoredGraph, n_comps: int):
    """The ``n_comps`` directions of ``features`` with the largest variance x Moran's I.

    With ``Y`` the centred features and ``W`` the graph's row-normalised neighbour average
    (each cell's in-neighbours, itself left out: with itself in, a large signal that is random
    from cell to cell would score by its variance alone), the directions are the top
    eigenvectors of the symmetrised ``Y^T W Y / n``. Returns the scores (cells x
    components), each component's variance and its Moran's I; signs are fixed so that each
    direction's largest loading is positive (the same answer for the same input features).
    """
    from ._smooth import neighbour_mean

    y = np.asarray(features, dtype=np.float64)
    y = y - y.mean(axis=0)
    n = len(y)
    cross = y.T @ neighbour_mean(y, graph) / n
    cross = (cross + cross.T) / 2
    values, vectors = np.linalg.eigh(cross)
    order = np.argsort(values)[::-1][: min(n_comps, len(values))]
    values, vectors = values[order], vectors[:, order]
    biggest = np.abs(vectors).argmax(axis=0)
    vectors = vectors * np.sign(vectors[biggest, np.arange(vectors.shape[1])])
    scores = y @ vectors
    variance = scores.var(axis=0)
    morans_i = values / np.maximum(variance, np.finfo(float).tiny)
    return scores, variance, morans_i
