"""The tl/pl functions other than domains on the inputs a scanpy user hands them: each case
gave a wrong result silently or a traceback from deep inside NumPy, SciPy or scikit-learn."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import spacon
from spacon import SpaconInputError


@pytest.fixture
def prepared(brain_with_graph):
    return brain_with_graph


def test_a_unit_level_connectome_replaces_a_cell_level_one_under_the_same_key(prepared):
    adata, conn = prepared
    cells = sp.random(adata.n_obs, adata.n_obs, density=0.01, random_state=0, format="csr")
    spacon.pp.connectome_graph(adata, cells)
    spacon.pp.connectome_graph(adata, conn, unit_key="unit", threshold=0.4)
    assert "connectome_connectivities" not in adata.obsp
    fresh = adata.copy()
    spacon.tl.smoothed_expression(adata, graph="connectome")
    del fresh.obsp  # (nothing to remove: the same graph as built on clean data)
    spacon.pp.connectome_graph(fresh, conn, unit_key="unit", threshold=0.4)
    spacon.tl.smoothed_expression(fresh, graph="connectome")
    np.testing.assert_array_equal(adata.obsm["X_smoothed"], fresh.obsm["X_smoothed"])


def test_the_domain_tree_of_reordered_cells_is_refused(prepared):
    adata, _ = prepared
    spacon.tl.smoothed_expression(adata, key_added="X_spacon_spa")
    spacon.tl.fuse(adata, 0)
    spacon.tl.domains(adata, n_domains=4, seed=0, n_jobs=1)
    spacon.pl.domain_tree(adata, key="spacon_domain")  # as called
    renamed = adata.copy()
    renamed.obs_names = [f"c{i}" for i in range(adata.n_obs)]
    spacon.pl.domain_tree(renamed, key="spacon_domain")  # the same cells under other names
    shuffled = adata[np.random.default_rng(0).permutation(adata.n_obs)].copy()
    with pytest.raises(SpaconInputError, match="the cells were reordered"):
        spacon.pl.domain_tree(shuffled, key="spacon_domain")
    spacon.tl.domains(adata, seed=0, n_jobs=1, key_added="chosen")  # the number chosen
    spacon.pl.domain_tree(adata, key="chosen")


def test_markers_of_a_rare_domain_survive_the_cell_subset(prepared):
    adata, _ = prepared
    labels = np.where(adata.obs["region"].astype(str) < "r4", "a", "b").astype(object)
    labels[:3] = "rare"
    adata.obs["lab"] = pd.Categorical(labels)
    table = spacon.tl.marker_genes(adata, "lab", max_cells=100, n_genes=5.0)
    assert (table["domain"] == "rare").sum() > 0
    assert np.ptp(adata.obs["lab_metagene_rare"]) > 0
    with pytest.raises(SpaconInputError, match="n_genes must be a whole number >= 1"):
        spacon.tl.marker_genes(adata, "lab", n_genes=2.5)


def test_fuse_refuses_non_finite_embeddings_by_cell(prepared):
    adata, _ = prepared
    spacon.tl.smoothed_expression(adata, key_added="X_spacon_spa")
    adata.obsm["X_spacon_spa"][5, 0] = np.nan
    with pytest.raises(SpaconInputError, match=r"NaN or infinite values in 1 cells \(e\.g\."):
        spacon.tl.fuse(adata, 0)
    assert "X_spacon" not in adata.obsm


@pytest.mark.parametrize("call, message", [
    (lambda a: spacon.tl.smoothed_expression(a, n_hops=None), "n_hops must be a number"),
    (lambda a: spacon.tl.smoothed_expression(a, n_comps=2.5), "n_comps must be a whole number"),
    (lambda a: spacon.tl.spatial_pca(a, n_comps=None), "n_comps must be a number"),
    (lambda a: spacon.tl.spatial_folds(a, 3.5), "folds must be a whole number >= 2"),
    (lambda a: spacon.tl.refine(a, key="region", k=None), "k must be a number"),
    (lambda a: spacon.pl.domains(a, key="region", max_sections=0),
     "max_sections must be a whole number >= 1"),
])
def test_counts_that_are_not_whole_numbers_are_named(prepared, call, message):
    adata, _ = prepared
    with pytest.raises(SpaconInputError, match=message):
        call(adata)


def test_whole_number_floats_are_taken(prepared):
    adata, _ = prepared
    a = spacon.tl.smoothed_expression(adata, n_hops=2.0, n_comps=5.0, copy=True)
    b = spacon.tl.smoothed_expression(adata, n_hops=2, n_comps=5, copy=True)
    np.testing.assert_array_equal(a.obsm["X_smoothed"], b.obsm["X_smoothed"])
    assert len(np.unique(spacon.tl.spatial_folds(adata, 3.0))) == 3
    spacon.pl.domains(adata, key="region", max_sections=2.0)
    spacon.pl.domains(adata, key="region", max_sections=np.inf)  # all


def test_a_nullable_boolean_hold_out_column_is_one_fold(prepared):
    from spacon.tl._predict import _folds

    adata, _ = prepared
    held = (adata.obs["section"].astype(str) == adata.obs["section"].astype(str).iloc[0])
    adata.obs["numpy_bool"] = held.to_numpy()
    adata.obs["nullable"] = pd.array(held.to_numpy(), dtype="boolean")
    args = (None, None, "spatial", None, 0)
    np.testing.assert_array_equal(_folds(adata, 3, "nullable", *args),
                                  _folds(adata, 3, "numpy_bool", *args))
    assert set(_folds(adata, 3, "nullable", *args)) == {-1, 0}


def test_plots_of_tables_name_what_they_draw(prepared):
    adata, _ = prepared
    with pytest.raises(SpaconInputError, match="what spacon.tl.predict_connectivity returns"):
        spacon.pl.connectivity_prediction(adata)
    with pytest.raises(SpaconInputError, match="the table spacon.tl.coupling returns"):
        spacon.pl.coupling({"a": 1})
    spacon.tl.smoothed_expression(adata, key_added="X_spacon_spa")
    adata.obsm["X_spacon_spa"][0, 0] = np.inf
    with pytest.raises(SpaconInputError, match="NaN or infinite values"):
        spacon.pl.umap(adata, key="region", use_rep="X_spacon_spa")


def test_classify_subtypes_names_nan_expression_first(prepared):
    adata, _ = prepared
    adata.X = adata.X.toarray() if sp.issparse(adata.X) else adata.X
    adata.X[3, 2] = np.nan
    with pytest.raises(SpaconInputError, match="NaN"):
        spacon.tl.classify_subtypes(adata, "region")


def test_coupling_refuses_measurements_as_groups(prepared):
    adata, conn = prepared
    adata.obs["depth"] = np.random.default_rng(0).random(adata.n_obs)
    with pytest.raises(SpaconInputError, match="holds numbers .* not groups"):
        spacon.tl.coupling(adata, conn, unit_key="unit", groupby="depth", n_perm=0)


def test_embedding_over_region_sized_units_stays_within_max_edges(prepared, monkeypatch):
    """A unit whose dense attention block alone exceeds max_edges goes a slice of its cells
    at a time (a region-level unit was one block of cells x all its sources), with the same
    embedding."""
    from spacon.nn import _gat

    adata, conn = prepared
    adata.obs["region_unit"] = adata.obs["region"].astype(str)
    regions = sorted(set(adata.obs["region_unit"]))
    m = np.ones((len(regions), len(regions)))
    spacon.pp.connectome_graph(adata, spacon.io.Connectivity(m, np.array(regions)),
                               unit_key="region_unit")
    model = spacon.SpaCon(adata, hidden_dims=(8, 4, 2), seed=0)
    model.train(1, mode="sampled", batch_size=256, max_steps=1, progress=False)
    a, b = adata.copy(), adata.copy()
    model.embed(a, max_edges=10**9)
    largest = []
    real = _gat.GATConv._forward_blocks

    def spy(self, h, score_src, score_dst, adj):
        largest.append(max(len(t) * len(s) for t, s, _ in adj.groups))
        return real(self, h, score_src, score_dst, adj)

    monkeypatch.setattr(_gat.GATConv, "_forward_blocks", spy)
    model.embed(b, max_edges=20_000)
    assert max(largest) <= 20_000 and len(largest) > 3
    np.testing.assert_allclose(b.obsm["X_spacon_con"], a.obsm["X_spacon_con"], rtol=1e-5,
                               atol=1e-6)


def test_a_radius_graph_that_cannot_fit_is_refused_before_it_is_built(prepared):
    adata, _ = prepared
    adata.obsm["mm"] = adata.obsm["spatial"] / 1000.0  # coordinates in mm, radius in um
    with pytest.raises(SpaconInputError, match="neighbours per cell .* needs about"):
        from spacon.pp import _spatial

        _spatial.BYTES_PER_KNN_EDGE, saved = 10**9, _spatial.BYTES_PER_KNN_EDGE
        try:
            spacon.pp.spatial_graph(adata, radius=700, spatial_key="mm")
        finally:
            _spatial.BYTES_PER_KNN_EDGE = saved
    # stacked sections: checked as a whole, in-plane and between sections, before building
    from spacon.pp import _spatial

    monkeypatch_bytes = _spatial.BYTES_PER_KNN_EDGE
    _spatial.BYTES_PER_KNN_EDGE = 10**9
    try:
        with pytest.raises(SpaconInputError, match="in 4 sections"):
            spacon.pp.spatial_graph(adata, radius=700, spatial_key="mm", section_key="section",
                                    z_radius=700)
    finally:
        _spatial.BYTES_PER_KNN_EDGE = monkeypatch_bytes
    spacon.pp.spatial_graph(adata, radius=700, section_key="section", z_radius=350)  # fits


def _takes_adata_first():
    import inspect

    for module in (spacon.pp, spacon.tl, spacon.pl):
        for name in module.__all__:
            func = getattr(module, name)
            if callable(func) and list(inspect.signature(func).parameters)[:1] == ["adata"]:
                yield f"{module.__name__}.{name}", func


@pytest.mark.parametrize("name, func", list(_takes_adata_first()), ids=lambda v: v
                         if isinstance(v, str) else "")
def test_every_function_of_an_anndata_names_what_it_got_instead(name, func):
    expected = rf"{name} takes an AnnData .* got ndarray of shape \(10, 5\)"
    with pytest.raises(SpaconInputError, match=expected):
        func(np.zeros((10, 5)), *([None] * _required_after_first(func)))


def _required_after_first(func) -> int:
    import inspect

    params = list(inspect.signature(func).parameters.values())[1:]
    return sum(p.default is inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD
               for p in params)
