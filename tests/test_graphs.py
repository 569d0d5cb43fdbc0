
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.spatial.distance import cdist

import spacon
from spacon import SpaconInputError, SpaconWarning
from spacon.io import Connectivity


def make_adata(coords, obs=None):
    names = [f"c{i}" for i in range(len(coords))]
    if obs is not None:
        obs = obs.set_axis(names)
    adata = ad.AnnData(np.ones((len(coords), 3), dtype=np.float32), obs=obs)
    adata.obs_names = [f"c{i}" for i in range(len(coords))]
    adata.obsm["spatial"] = np.asarray(coords, dtype=float)
    return adata


def brute_radius(coords, r):
    d = cdist(coords, coords)
    a = (d <= r) & ~np.eye(len(coords), dtype=bool)
    return a, d


def test_radius_2d_matches_brute_force(rng):
    coords = rng.uniform(0, 10, size=(200, 2))
    adata = make_adata(coords)
    spacon.pp.spatial_graph(adata, radius=1.5)
    a, d = brute_radius(coords, 1.5)
    conn = adata.obsp["spatial_connectivities"]
    assert (conn.toarray().astype(bool) == a).all()
    dist = adata.obsp["spatial_distances"].toarray()
    assert np.allclose(dist[a], d[a])
    params = adata.uns["spatial_neighbors"]["params"]
    assert params["radius"] == 1.5 and np.isclose(params["mean_neighbors"], a.sum(1).mean())


def test_plain_3d(rng):
    coords = rng.uniform(0, 5, size=(150, 3))
    adata = make_adata(coords)
    spacon.pp.spatial_graph(adata, radius=1.6)
    a, _ = brute_radius(coords, 1.6)
    assert (adata.obsp["spatial_connectivities"].toarray().astype(bool) == a).all()


def test_knn_is_symmetric_union(rng):
    coords = rng.uniform(0, 10, size=(100, 2))
    adata = make_adata(coords)
    spacon.pp.spatial_graph(adata, n_neighbors=4)
    a = adata.obsp["spatial_connectivities"].toarray().astype(bool)
    d = cdist(coords, coords)
    np.fill_diagonal(d, np.inf)
    knn = np.zeros_like(a)
    np.put_along_axis(knn, np.argsort(d, axis=1)[:, :4], True, axis=1)
    assert (a == (knn | knn.T)).all()
    assert not a.diagonal().any()


def test_sections_link_only_adjacent_sections_in_the_given_order(rng):
    n = 60
    coords2d = rng.uniform(0, 3, size=(3 * n, 2))
    section = np.repeat(["b", "a", "c"], n)  # stacking order will be c, a, b
    z = np.repeat([2.0, 1.0, 0.0], n)
    adata = make_adata(np.column_stack([coords2d, z]), obs=pd.DataFrame({"sec": section}))
    adata.obs_names = [f"c{i}" for i in range(3 * n)]
    spacon.pp.spatial_graph(
        adata, radius=0.8, section_key="sec", section_order=["c", "a", "b"], z_radius=0.5
    )
    a = adata.obsp["spatial_connectivities"].toarray().astype(bool)
    d2 = cdist(coords2d, coords2d)
    same = section[:, None] == section[None]
    order = {"c": 0, "a": 1, "b": 2}
    pos = np.array([order[s] for s in section])
    adjacent = np.abs(pos[:, None] - pos[None]) == 1
    expected = (same & (d2 <= 0.8)) | (adjacent & (d2 <= 0.5))
    np.fill_diagonal(expected, False)
    assert (a == expected).all()
    # cross-section edge lengths are 3-D
    dist = adata.obsp["spatial_distances"].toarray()
    xyz = adata.obsm["spatial"]
    i, j = np.argwhere(a & adjacent)[0]
    assert np.isclose(dist[i, j], np.linalg.norm(xyz[i] - xyz[j]), atol=1e-4)
    assert adata.uns["spatial_neighbors"]["params"]["section_order"] == ["c", "a", "b"]
    # z_radius=0: separate samples (several slides), no spot linked to another sample's
    spacon.pp.spatial_graph(adata, radius=0.8, section_key="sec", z_radius=0)
    a = adata.obsp["spatial_connectivities"].toarray().astype(bool)
    within = same & (d2 <= 0.8)
    np.fill_diagonal(within, False)
    assert (a == within).all()
    # without z_radius, too (as with n_neighbors; squidpy's library_key): sections are linked
    # only when asked, and sections at different depths (a stack, it seems) are said to be not
    for how in ({"radius": 0.8}, {"n_neighbors": 3}):
        with pytest.warns(SpaconWarning, match=r"sections of obs\['sec'\] lie at different "
                                               r"depths \(z\) but are not linked: give z_radius="):
            spacon.pp.spatial_graph(adata, section_key="sec", **how)
        a = adata.obsp["spatial_connectivities"].toarray().astype(bool)
        assert not (a & ~same).any()
        assert "z_radius" not in adata.uns["spatial_neighbors"]["params"]
    flat = adata.copy()
    flat.obsm["spatial"] = flat.obsm["spatial"][:, :2]  # 2-D slides: separate samples, quietly
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spacon.pp.spatial_graph(flat, radius=0.8, section_key="sec")


def test_section_order_defaults_to_ordered_categories(brain):
    adata, _ = brain
    spacon.pp.spatial_graph(adata, radius=600, section_key="section", z_radius=600)
    order = adata.uns["spatial_neighbors"]["params"]["section_order"]
    assert order == list(adata.obs["section"].cat.categories)


def test_spatial_graph_without_radius_or_neighbours_links_ten_as_spacon_run_does(rng):
    adata = make_adata(rng.uniform(size=(60, 2)))
    spacon.pp.spatial_graph(adata)
    ten = make_adata(adata.obsm["spatial"])
    spacon.pp.spatial_graph(ten, n_neighbors=10)
    graph = adata.obsp["spatial_connectivities"]
    assert (graph != ten.obsp["spatial_connectivities"]).nnz == 0
    assert (np.diff(graph.indptr) >= 10).all()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(radius=1.0, n_neighbors=3), "not both"),
        (dict(spatial_key="xy"), "no 'xy' coordinates"),  # named before the graph's options
        (dict(radius=-1.0), "positive"),
        (dict(n_neighbors=0), "positive integer"),
        (dict(radius="1300"), "radius must be a number, got '1300'"),
        (dict(n_neighbors="5"), "n_neighbors must be a number"),
        (dict(radius=1.0, z_radius=True), "z_radius must be a number"),
        (dict(radius=1.0, z_radius=2.0), "needs section_key= naming the sections"),
        (dict(radius=1.0, spatial_key="nope"), "no 'nope' coordinates"),
        (dict(radius=1.0, section_key="nope"), "no section column"),
        (dict(radius=1.0, section_key="sec", section_order=["a"]), "absent from section_order"),
        (dict(radius=1.0, section_key="sec", section_order=["a", "b", "x"]), "not in adata.obs"),
        (dict(radius=1.0, section_key="sec", section_order=["a", "a", "b"]), "more than once"),
    ],
)
def test_spatial_graph_errors(kwargs, match, rng):
    adata = make_adata(rng.uniform(size=(20, 2)), obs=pd.DataFrame({"sec": ["a"] * 10 + ["b"] * 10}))
    with pytest.raises(SpaconInputError, match=match):
        spacon.pp.spatial_graph(adata, **kwargs)


@pytest.mark.parametrize("n_columns", [1, 4])
def test_bad_coordinate_shapes(n_columns):
    adata = ad.AnnData(np.ones((10, 2), dtype=np.float32))
    adata.obsm["spatial"] = np.zeros((10, n_columns))
    with pytest.raises(SpaconInputError, match="coordinates need 2"):
        spacon.pp.spatial_graph(adata, radius=1.0)


def test_nan_coordinates(rng):
    coords = rng.uniform(size=(10, 2))
    coords[3, 1] = np.nan
    with pytest.raises(SpaconInputError, match="NaN or infinite coordinates for 1 cells"):
        spacon.pp.spatial_graph(make_adata(coords), radius=1.0)


def test_isolated_cells_warn():
    adata = make_adata([[0, 0], [0.1, 0], [10, 10]])
    with pytest.warns(SpaconWarning, match="1 of 3 cells have no spatial neighbour"):
        spacon.pp.spatial_graph(adata, radius=1.0)


def test_graphs_that_link_everything_or_nothing_are_refused():
    adata = make_adata([[0, 0], [0.1, 0], [10, 10], [20, 20]])
    with pytest.raises(SpaconInputError, match="n_neighbors=4 links every cell .* 4 cells"):
        spacon.pp.spatial_graph(adata, n_neighbors=4)
    with pytest.raises(SpaconInputError, match="within radius=0.01 .* nearest one is 7.09"):
        spacon.pp.spatial_graph(adata, radius=0.01)
    assert "spatial_connectivities" not in adata.obsp


def test_inputs_not_modified_and_copy(rng):
    adata = make_adata(rng.uniform(size=(30, 2)))
    before = adata.obsm["spatial"].copy()
    out = spacon.pp.spatial_graph(adata, radius=0.3, copy=True)
    assert "spatial_connectivities" not in adata.obsp and "spatial_connectivities" in out.obsp
    assert np.array_equal(adata.obsm["spatial"], before)


# ---------------------------------------------------------------- connectome


def test_cell_level_threshold_and_diagonal(rng):
    w = rng.uniform(size=(6, 6))
    adata = make_adata(rng.uniform(size=(6, 2)))
    expected = np.where(w > 0.5, w, 0)
    np.fill_diagonal(expected, 0)
    unreached = int((expected.sum(axis=0) == 0).sum())  # cells nothing connects into
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        spacon.pp.connectome_graph(adata, w, threshold=0.5, self_loops=False)
    assert [str(m.message).split(" cells")[0] for m in said] == (
        [f"{unreached} of 6"] if unreached else [])
    g = adata.obsp["connectome_connectivities"].toarray()
    assert np.allclose(g, expected, atol=1e-6)
    params = adata.uns["connectome_neighbors"]["params"]
    assert params["n_edges"] == (expected > 0).sum() == params["implied_cell_edges"]


def test_top_k_and_top_fraction(rng):
    w = rng.uniform(0.1, 1, size=(8, 8))
    adata = make_adata(rng.uniform(size=(8, 2)))
    spacon.pp.connectome_graph(adata, w, top_k=3)
    g = adata.obsp["connectome_connectivities"].toarray()
    for i in range(8):
        assert set(np.flatnonzero(g[i])) == set(np.argsort(-w[i])[:3])
    spacon.pp.connectome_graph(adata, w, top_fraction=0.25, key_added="frac")
    g = adata.obsp["frac_connectivities"].toarray()
    assert ((g > 0).sum(1) == 2).all()


def test_negative_values_handled_deliberately():
    w = np.array([[0.0, -0.5, 0.3], [0.2, 0.0, -0.9], [0.4, 0.1, 0.0]])
    adata = make_adata(np.zeros((3, 2)))
    spacon.pp.connectome_graph(adata, w)
    assert (adata.obsp["connectome_connectivities"].toarray() >= 0).all()
    assert adata.obsp["connectome_connectivities"].nnz == 4
    spacon.pp.connectome_graph(adata, w, negative="absolute")
    assert np.allclose(adata.obsp["connectome_connectivities"].toarray(), np.abs(w))
    with pytest.raises(SpaconInputError, match="2 negative values"):
        spacon.pp.connectome_graph(adata, w, negative="error")
    with pytest.raises(SpaconInputError, match="not a valid choice"):
        spacon.pp.connectome_graph(adata, w, negative="flip")


def test_distance_weighting_damps_short_range():
    coords = np.array([[0.0, 0], [1, 0], [10, 0]])
    adata = make_adata(coords)
    w = np.ones((3, 3)) - np.eye(3)
    spacon.pp.connectome_graph(adata, w, distance_scale=2.0)
    g = adata.obsp["connectome_connectivities"].toarray()
    assert np.isclose(g[0, 1], 1 - np.exp(-0.5)) and np.isclose(g[0, 2], 1 - np.exp(-5))


def test_symmetrize_and_self_loops():
    w = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    adata = make_adata(np.zeros((3, 2)))
    with pytest.warns(SpaconWarning, match="1 of 3 cells have no incoming"):  # cell 0
        spacon.pp.connectome_graph(adata, w)
    spacon.pp.connectome_graph(adata, w, symmetrize=True, self_loops=True)
    g = adata.obsp["connectome_connectivities"].toarray()
    assert np.allclose(g, g.T) and (g.diagonal() > 0).all()


def test_labelled_cell_level_is_aligned_to_obs_names():
    adata = make_adata(np.zeros((3, 2)))
    w = np.array([[0.0, 1.0, 2.0], [3.0, 0.0, 4.0], [5.0, 6.0, 0.0]])
    conn = Connectivity(w, labels=["c2", "c0", "c1"])
    spacon.pp.connectome_graph(adata, conn)
    g = adata.obsp["connectome_connectivities"].toarray()
    # c0 is row 1 of w, c1 row 2, c2 row 0
    assert np.allclose(g, w[[1, 2, 0]][:, [1, 2, 0]])


def test_unit_level_is_factored(brain):
    adata, conn = brain
    spacon.pp.connectome_graph(adata, conn, unit_key="unit")
    stored = adata.uns["connectome_neighbors"]
    assert "connectome_connectivities" not in adata.obsp
    units = stored["units"]
    assert stored["unit_connectivities"].shape == (len(units), len(units))
    assert stored["params"]["implied_cell_edges"] == spacon.datasets.implied_cell_edges(
        conn.matrix, adata.obs["unit"].to_numpy()
    )


def test_unit_level_drops_unused_units_and_matches_labels():
    w = np.arange(16, dtype=float).reshape(4, 4) + 1
    conn = Connectivity(w, labels=["A", "B", "C", "D"])
    adata = make_adata(np.zeros((3, 2)), obs=pd.DataFrame({"region": ["D", "B", "D"]}))
    spacon.pp.connectome_graph(adata, conn, unit_key="region")
    stored = adata.uns["connectome_neighbors"]
    assert list(stored["units"]) == ["B", "D"]
    assert np.allclose(stored["unit_connectivities"].toarray(), w[[1, 3]][:, [1, 3]])


def test_a_labelled_dataframe_is_matched_by_its_labels():
    w = np.arange(16, dtype=float).reshape(4, 4) + 1
    labels = ["A", "B", "C", "D"]
    adata = make_adata(np.zeros((3, 2)), obs=pd.DataFrame({"region": ["D", "B", "D"]}))
    def edges():  # unit -> unit weights, whatever the units' order
        stored = adata.uns["connectome_neighbors"]
        m, units = stored["unit_connectivities"].tocoo(), list(stored["units"])
        return {(units[i], units[j]): v for i, j, v in zip(m.row, m.col, m.data)}

    spacon.pp.connectome_graph(adata, Connectivity(w, labels=labels), unit_key="region")
    expected = edges()
    shuffled = pd.DataFrame(w, index=labels, columns=labels).iloc[[2, 0, 3, 1], [3, 1, 0, 2]]
    spacon.pp.connectome_graph(adata, shuffled, unit_key="region")
    assert edges() == expected and expected[("D", "B")] == w[3, 1]
    cells = make_adata(np.zeros((3, 2)))  # cell level: the labels are cell names
    m = pd.DataFrame(w[:3, :3], index=cells.obs_names, columns=cells.obs_names).iloc[::-1, ::-1]
    spacon.pp.connectome_graph(cells, m)
    np.testing.assert_array_equal(cells.obsp["connectome_connectivities"].toarray(), w[:3, :3])
    with pytest.raises(SpaconInputError, match="not in the connectivity"):
        spacon.pp.connectome_graph(adata, pd.DataFrame(w, index=list("WXYZ"),
                                                       columns=list("WXYZ")), unit_key="region")


@pytest.mark.parametrize(
    "units,matrix,kwargs,match",
    [
        (["0", "1", "7"], np.ones((3, 3)), dict(unit_key="u"), "not in the connectivity"),
        (["0", None, "1"], np.ones((3, 3)), dict(unit_key="u"), "have no unit"),
        (["0", "1", "2"], np.ones((3, 3)), dict(unit_key="missing"), "no unit column"),
        (["0", "1", "2"], np.ones((4, 4)), dict(), "adata has 3 cells"),
        (["0", "1", "2"], np.ones((3, 3)), dict(threshold=5.0), "no connections are left"),
        (["0", "1", "2"], np.ones((3, 3)), dict(top_k=0), "positive integer"),
        (["0", "1", "2"], np.ones((3, 3)), dict(top_fraction=1.5), r"\(0, 1\]"),
        (["0", "1", "2"], np.ones((3, 3)), dict(threshold=np.nan), "finite"),
        (["0", "1", "2"], np.ones((3, 4)), dict(), "square"),
    ],
)
def test_connectome_errors(units, matrix, kwargs, match):
    adata = make_adata(np.zeros((3, 2)), obs=pd.DataFrame({"u": units}))
    with pytest.raises(SpaconInputError, match=match):
        spacon.pp.connectome_graph(adata, matrix, **kwargs)


def test_unlabelled_cell_mismatch_with_labels():
    adata = make_adata(np.zeros((3, 2)))
    with pytest.raises(SpaconInputError, match=r"not labelled.*its labels are e\.g\. x, y, z"
                                               r".*unit_key="):
        spacon.pp.connectome_graph(adata, Connectivity(np.ones((3, 3)), ["x", "y", "z"]))
    # names that differ only in case are said to (predict_connectivity says the same)
    upper = [str(n).upper() for n in adata.obs_names]
    with pytest.raises(SpaconInputError, match="differ from the matrix's labels only in case"):
        spacon.pp.connectome_graph(adata, Connectivity(np.ones((3, 3)), upper))
    with pytest.raises(SpaconInputError, match="differ from the matrix's labels only in case"):
        spacon.tl._predict.profile_rows(adata, Connectivity(np.ones((3, 3)), upper), None)


def test_path_input_and_roundtrip(tmp_path, brain):
    adata, conn = brain
    spacon.io.save_npz(tmp_path / "c.npz", conn.matrix, conn.labels)
    spacon.pp.connectome_graph(adata, tmp_path / "c.npz", unit_key="unit")
    adata.uns.pop("synthetic_brain")
    spacon.pp.spatial_graph(adata, radius=500, section_key="section", z_radius=500)
    adata.write_h5ad(tmp_path / "a.h5ad")
    back = ad.read_h5ad(tmp_path / "a.h5ad")
    assert (back.uns["connectome_neighbors"]["unit_connectivities"] != conn.matrix[
        np.unique(adata.obs["unit"])][:, np.unique(adata.obs["unit"])]).nnz == 0
    assert (back.obsp["spatial_connectivities"] != adata.obsp["spatial_connectivities"]).nnz == 0
    assert sp.issparse(back.obsp["spatial_distances"])


def test_the_run_says_what_the_connectome_graph_kept(brain):
    """Unit-level graphs are described as unit connections and the cell edges they imply
    (one number for each: a unit count read as cell edges misled), cell-level ones as edges."""
    from spacon._pipeline import describe_connectome_graph

    adata, conn = brain
    spacon.pp.connectome_graph(adata, conn, unit_key="unit", threshold=0.4)
    params = adata.uns["connectome_neighbors"]["params"]
    text = describe_connectome_graph(params)
    assert f"{params['n_edges']:,} unit-unit connections kept" in text
    assert f"{params['implied_cell_edges']:,} cell-cell edges" in text
    assert f"{params['n_units']:,} units" in text
    assert describe_connectome_graph({"n_edges": 1200, "density": 0.012}) == (
        "1,200 cell-cell edges kept (1.2% of all pairs)")
    # a matrix over more units than the cells fill: the ones without cells are counted, not
    # dropped in silence (213 regions of a connectome against 137 with expression)
    few = adata[adata.obs["unit"].astype(int) < 40].copy()
    spacon.pp.connectome_graph(few, conn, unit_key="unit", threshold=0.4)
    params = few.uns["connectome_neighbors"]["params"]
    held = few.obs["unit"].nunique()
    assert params["unmatched_rows"] == conn.n - held > 0
    assert describe_connectome_graph(params).endswith(
        f"; {conn.n - held:,} of the matrix's rows match no unit of the data and are left out")


def test_the_run_counts_the_negative_values_it_drops(brain):
    """Signed connectivity (functional correlations) under the default negative='drop': the
    values dropped are counted in the graph's params and in the run's line about the graph."""
    from spacon._pipeline import describe_connectome_graph
    from spacon.io import Connectivity

    adata, conn = brain
    signed = conn.matrix.tocsr(copy=True)
    signed.data[::4] *= -1
    signed = Connectivity(signed, conn.labels)
    used = np.isin(signed.labels, adata.obs["unit"].astype(str).unique())
    expected = int((signed.matrix[used][:, used].data < 0).sum())
    spacon.pp.connectome_graph(adata, signed, unit_key="unit", threshold=0.4)
    params = adata.uns["connectome_neighbors"]["params"]
    assert params["n_negative"] == expected > 0
    assert describe_connectome_graph(params).endswith(
        f"; {expected:,} negative values dropped (--negative absolute keeps their strength)")
    spacon.pp.connectome_graph(adata, signed, unit_key="unit", threshold=0.4,
                               negative="absolute")
    assert "dropped" not in describe_connectome_graph(adata.uns["connectome_neighbors"]["params"])
