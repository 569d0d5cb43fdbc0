"""Spatially autocorrelated components (tl.spatial_pca, smoothed_expression(components=...))."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

import spacon
from spacon import _keys
from spacon.graph._stored import spatial_graph_of
from spacon.tl._smooth import average_over_graph, neighbour_mean
from spacon.tl._spatial_pca import multispati


def _planted(n_side=40, seed=0):
    """Cells on a grid; genes 0-4 follow a smooth gradient across the tissue (small
    variance), genes 5-9 a strong signal that is random from cell to cell, the rest noise."""
    rng = np.random.default_rng(seed)
    xy = np.array([(i, j) for i in range(n_side) for j in range(n_side)], dtype=float)
    n = len(xy)
    gradient = np.sin(xy[:, 0] / n_side * np.pi)  # smooth over space
    identity = rng.normal(size=n)  # no spatial structure, large
    x = 0.3 * rng.normal(size=(n, 30))
    x[:, :5] += 2.0 * gradient[:, None]
    x[:, 5:10] += 2.0 * identity[:, None]
    adata = ad.AnnData((x + 15.0).astype(np.float32))  # non-negative, as expression is
    adata.obsm["spatial"] = xy
    spacon.pp.spatial_graph(adata, n_neighbors=8)
    return adata, gradient, identity


def _abs_corr(a, b):
    return abs(np.corrcoef(a, b)[0, 1])


def test_first_component_is_the_smooth_signal_not_the_largest():
    adata, gradient, identity = _planted()
    spacon.tl.spatial_pca(adata, n_comps=5, n_pcs=20)
    first = adata.obsm["X_spatial_pca"][:, 0]
    # the best a direction can do is about 0.98 (the genes' own noise); the large random
    # signal leaks in a little through its chance autocorrelation
    assert _abs_corr(first, gradient) > 0.9
    assert _abs_corr(first, identity) < 0.4
    # plain PCA puts the large, spatially random signal first
    pc1 = spacon.tl._smooth.expression_pcs(adata, 5)[:, 0]
    assert _abs_corr(pc1, identity) > 0.95 and _abs_corr(pc1, gradient) < 0.1
    info = adata.uns["X_spatial_pca"]
    assert info["morans_i"][0] > 0.8 > 0.1 > info["morans_i"][1]
    assert info["params"] == {"n_comps": 5, "n_pcs": 20, "graph": "spatial", "seed": 0}


def test_components_solve_the_eigenproblem():
    adata, *_ = _planted(n_side=15)
    graph = spatial_graph_of(adata)
    y = np.random.default_rng(2).normal(size=(adata.n_obs, 6))
    scores, variance, morans = multispati(y, graph, 6)
    yc = y - y.mean(0)
    cross = yc.T @ neighbour_mean(yc, graph) / len(y)
    cross = (cross + cross.T) / 2
    # scores = yc @ V with V orthonormal eigenvectors, in decreasing eigenvalue order
    v = np.linalg.lstsq(yc, scores, rcond=None)[0]
    assert np.allclose(v.T @ v, np.eye(6), atol=1e-8)
    values = np.diag(v.T @ cross @ v)
    assert np.all(np.diff(values) <= 1e-12)
    assert np.allclose(cross @ v, v * values, atol=1e-8)
    assert np.allclose(morans, values / variance)


def test_repeatable_and_input_untouched():
    adata, *_ = _planted(n_side=20)
    before = adata.X.copy()
    one = spacon.tl.spatial_pca(adata, copy=True).obsm["X_spatial_pca"]
    two = spacon.tl.spatial_pca(adata, copy=True).obsm["X_spatial_pca"]
    assert np.array_equal(one, two)
    assert np.array_equal(adata.X, before) and "X_spatial_pca" not in adata.obsm


def test_smoothing_multispati_components(brain):
    adata, conn = brain
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, n_neighbors=10)
    spacon.pp.connectome_graph(adata, conn, unit_key="unit", threshold=0.4)
    graph = spatial_graph_of(adata)
    spacon.tl.spatial_pca(adata, n_comps=12)
    spacon.tl.smoothed_expression(adata, n_hops=2, n_comps=12, components="multispati")
    want = average_over_graph(adata.obsm["X_spatial_pca"].astype(float), graph, 2)
    assert np.allclose(adata.obsm[_keys.SMOOTHED], want, atol=1e-4)
    assert adata.uns[_keys.SMOOTHED]["params"]["components"] == "multispati"
    # on the connectome the components are those of the connectome graph
    spacon.tl.smoothed_expression(adata, graph="both", alpha=0.5, components="multispati")
    spacon.tl.spatial_pca(adata, graph="connectome", key_added="X_con")
    assert adata.obsm[_keys.SMOOTHED].shape == adata.obsm["X_con"].shape == (adata.n_obs, 30)


def test_bad_input_is_refused(brain):
    adata, _ = brain
    spacon.pp.normalize(adata)
    with pytest.raises(spacon.SpaconInputError, match="spatial_connectivities"):
        spacon.tl.spatial_pca(adata)
    spacon.pp.spatial_graph(adata, n_neighbors=5)
    with pytest.raises(spacon.SpaconInputError, match="no connectome graph"):
        spacon.tl.spatial_pca(adata, graph="connectome")
    with pytest.raises(spacon.SpaconInputError, match="n_comps"):
        spacon.tl.spatial_pca(adata, n_comps=0)
    with pytest.raises(spacon.SpaconInputError, match="components="):
        spacon.tl.smoothed_expression(adata, components="ica")
    with pytest.raises(spacon.SpaconInputError, match="n_comps=50 .* n_pcs=20"):
        spacon.tl.spatial_pca(adata, n_comps=50, n_pcs=20)
    assert "X_spatial_pca" not in adata.obsm and _keys.SMOOTHED not in adata.obsm


def test_duplicate_edges_leave_the_graph_intact():
    adata, *_ = _planted(n_side=12)
    g = adata.obsp["spatial_connectivities"].tocsr()
    # row 0's first edge stored twice (a CSR built by hand may hold it)
    indices = np.insert(g.indices, 0, g.indices[0])
    data = np.insert(g.data, 0, g.data[0])
    indptr = g.indptr + 1
    indptr[0] = 0
    adata.obsp["spatial_connectivities"] = sp.csr_matrix((data, indices, indptr), shape=g.shape)
    assert not adata.obsp["spatial_connectivities"].has_canonical_format
    graph = spatial_graph_of(adata)
    indptr, indices = graph.unit_in.indptr.copy(), graph.unit_in.indices.copy()
    y = np.random.default_rng(0).normal(size=(adata.n_obs, 3))
    neighbour_mean(y, graph)
    assert np.array_equal(graph.unit_in.indptr, indptr)
    assert np.array_equal(graph.unit_in.indices, indices)
    spacon.tl.smoothed_expression(adata, components="multispati", n_comps=5)
    # the stored edge counts once: same as the graph without the duplicate
    clean = adata.copy()
    clean.obsp["spatial_connectivities"] = g
    spacon.tl.smoothed_expression(clean, components="multispati", n_comps=5)
    assert np.allclose(adata.obsm[_keys.SMOOTHED], clean.obsm[_keys.SMOOTHED], atol=1e-5)
