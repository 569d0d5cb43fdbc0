"""Smoothed expression: the graph-averaging baseline encoder (tl.smoothed_expression)."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import spacon
from spacon import _keys
from spacon.graph import FactoredGraph
from spacon.graph._stored import spatial_graph_of
from spacon.tl._smooth import average_over_graph, expression_pcs


def _path_graph_adata(directed=False):
    """Four cells on a line 0 - 1 - 2 - 3 with a spatial graph written by hand."""
    rng = np.random.default_rng(0)
    adata = ad.AnnData(rng.poisson(3.0, (4, 6)).astype(np.float32))
    adata.obsm["spatial"] = np.column_stack([np.arange(4.0), np.zeros(4)])
    if directed:
        a = sp.csr_matrix(([1.0], ([0], [1])), shape=(4, 4))  # one edge 0 -> 1
    else:
        rows, cols = [0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]
        a = sp.csr_matrix((np.full(6, 0.3), (rows, cols)), shape=(4, 4))  # weights ignored
    adata.obsp["spatial_connectivities"] = a
    return adata


def test_one_hop_by_hand():
    x = np.array([[1.0], [2.0], [4.0], [8.0]])
    graph = spatial_graph_of(_path_graph_adata())
    # each cell: mean over itself and its neighbours on the line
    assert np.allclose(average_over_graph(x, graph, 1).ravel(), [1.5, 7 / 3, 14 / 3, 6.0])
    # two hops: the one-hop values averaged again
    one = np.array([1.5, 7 / 3, 14 / 3, 6.0])
    two = [(one[0] + one[1]) / 2, one[:3].mean(), one[1:].mean(), (one[2] + one[3]) / 2]
    assert np.allclose(average_over_graph(x, graph, 2).ravel(), two)
    assert np.allclose(average_over_graph(x, graph, 0), x)


def test_a_cell_pools_the_neighbours_in_its_own_row():
    x = np.array([[1.0], [2.0], [4.0], [8.0]])
    graph = spatial_graph_of(_path_graph_adata(directed=True))
    # row i lists cell i's neighbours, as a k-nearest-neighbour graph of squidpy's or
    # scanpy's does: cell 0 pools cell 1; cell 1, which lists nobody, keeps its own value
    assert np.allclose(average_over_graph(x, graph, 1).ravel(), [1.5, 2.0, 4.0, 8.0])
    # a 1-nearest-neighbour graph on the line: cell 3's nearest is 2, listed by nobody else
    adata = _path_graph_adata()
    adata.obsp["spatial_connectivities"] = sp.csr_matrix(
        (np.ones(4), ([0, 1, 2, 3], [1, 0, 1, 2])), shape=(4, 4))
    pcs = expression_pcs(adata, 2)
    spacon.tl.smoothed_expression(adata, n_hops=1, n_comps=2)
    assert np.allclose(adata.obsm[_keys.SMOOTHED][3], (pcs[3] + pcs[2]) / 2, atol=1e-5)


def test_smoothed_expression_averages_the_pcs():
    adata = _path_graph_adata()
    pcs = expression_pcs(adata, 3)
    spacon.tl.smoothed_expression(adata, n_hops=1, n_comps=3, key_added="X_s")
    z = adata.obsm["X_s"]
    assert z.shape == (4, 3) and z.dtype == np.float32
    assert np.allclose(z[0], (pcs[0] + pcs[1]) / 2, atol=1e-5)
    assert np.allclose(z[1], pcs[:3].mean(0), atol=1e-5)
    assert adata.uns["X_s"]["params"] == {
        "graph": "spatial", "n_hops": 1, "alpha": 0.0, "n_comps": 3, "components": "pca",
        "seed": 0}
    spacon.tl.smoothed_expression(adata, n_hops=0, n_comps=3)
    assert np.allclose(adata.obsm[_keys.SMOOTHED], pcs, atol=1e-5)


def test_factored_graph_equals_its_expansion():
    # unit 0 sends to itself and unit 1; unit 1 sends to 2; unit 2 to 0; unit 3 hears nobody
    unit_in = sp.csr_matrix(np.array([  # rows = targets
        [1, 0, 1, 0],
        [1, 0, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 0, 0],
    ], dtype=np.float32))
    cell_unit = np.array([0, 1, 0, 2, 2, 1, 3, 0, 2])
    factored = FactoredGraph(unit_in, cell_unit)
    expanded = FactoredGraph.from_cell_graph(factored.expand())
    x = np.random.default_rng(1).normal(size=(9, 5))
    for hops in (1, 3):
        got = average_over_graph(x, factored, hops)
        assert np.allclose(got, average_over_graph(x, expanded, hops))
    one = average_over_graph(x, factored, 1)
    assert np.allclose(one[6], x[6])  # no incoming edges: the cell keeps its own value
    # cell 1 (unit 1) hears all of unit 0 (cells 0, 2, 7) and itself
    assert np.allclose(one[1], x[[0, 2, 7, 1]].mean(0))
    # cell 0 (unit 0) hears units 0 and 2: cells 0, 2, 7, 3, 4, 8 (itself among them)
    assert np.allclose(one[0], x[[0, 2, 7, 3, 4, 8]].mean(0))


def test_unit_connectome_equals_cell_connectome(brain):
    adata, conn = brain
    spacon.pp.normalize(adata)
    cell_level = adata.copy()
    spacon.pp.connectome_graph(adata, conn, unit_key="unit", threshold=0.4)
    # the same graph given between cells
    rows = np.asarray(conn.labels).astype(str).tolist()
    codes = np.array([rows.index(u) for u in adata.obs["unit"].astype(str)])
    dense = conn.matrix[codes][:, codes]
    spacon.pp.connectome_graph(
        cell_level, spacon.io.Connectivity(dense, cell_level.obs_names.to_numpy()),
        threshold=0.4)
    for a in (adata, cell_level):
        spacon.tl.smoothed_expression(a, graph="connectome", n_hops=2)
    assert np.allclose(adata.obsm[_keys.SMOOTHED], cell_level.obsm[_keys.SMOOTHED], atol=1e-4)


def test_both_mixes_like_fuse(brain):
    adata, conn = brain
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, n_neighbors=10)
    spacon.pp.connectome_graph(adata, conn, unit_key="unit", threshold=0.4)
    before = adata.copy()
    spa = spacon.tl.smoothed_expression(adata, graph="spatial", copy=True).obsm[_keys.SMOOTHED]
    con = spacon.tl.smoothed_expression(adata, graph="connectome", copy=True).obsm[
        _keys.SMOOTHED]
    assert set(adata.obsm) == set(before.obsm)  # copy=True left the input alone
    adata.obsm[_keys.EMBEDDING_SPA], adata.obsm[_keys.EMBEDDING_CON] = spa, con
    for alpha in (0.0, 0.3, 1.0):
        spacon.tl.smoothed_expression(adata, graph="both", alpha=alpha, key_added="X_both")
        spacon.tl.fuse(adata, alpha, key_added="X_fused")
        assert np.allclose(adata.obsm["X_both"], adata.obsm["X_fused"], atol=1e-4)
    assert spa.shape == (adata.n_obs, 30)


def test_bad_input_is_refused(brain):
    adata, _ = brain
    spacon.pp.normalize(adata)
    with pytest.raises(spacon.SpaconInputError, match="spatial_connectivities"):
        spacon.tl.smoothed_expression(adata)
    spacon.pp.spatial_graph(adata, n_neighbors=5)
    with pytest.raises(spacon.SpaconInputError, match="no connectome graph"):
        spacon.tl.smoothed_expression(adata, graph="both", alpha=0.5)
    with pytest.raises(spacon.SpaconInputError, match="graph='both' mixes .* pass alpha="):
        spacon.tl.smoothed_expression(adata, graph="both")
    # one graph is one alpha: another is refused rather than ignored
    with pytest.raises(spacon.SpaconInputError, match="graph='spatial' .* alpha 0; got alpha=0.5"):
        spacon.tl.smoothed_expression(adata, graph="spatial", alpha=0.5)
    for bad in ("0.5", np.complex128(0.5), True):
        with pytest.raises(spacon.SpaconInputError, match="must be a number"):
            spacon.tl.smoothed_expression(adata, graph="both", alpha=bad)
    with pytest.raises(spacon.SpaconInputError, match="graph="):
        spacon.tl.smoothed_expression(adata, graph="spatal")
    with pytest.raises(spacon.SpaconInputError, match="n_hops"):
        spacon.tl.smoothed_expression(adata, n_hops=-1)
    assert _keys.SMOOTHED not in adata.obsm


@pytest.mark.slow  # the whole job: domains, figures and UMAP (about half a minute)
def test_run_with_smoothing_encoder(sim_inputs, tmp_path):
    from spacon.cli import main

    out = tmp_path / "run"
    rc = main(["run", "--adata", str(sim_inputs / "synthetic_brain.h5ad"),
               "--connectivity", str(sim_inputs / "connectome.npz"), "--unit-key", "unit",
               "--threshold", "0.4", "--encoder", "smoothing", "--components", "multispati",
               "--n-domains", "6", "--out", str(out), "--quiet"])
    assert rc == 0
    result = ad.read_h5ad(out / "result.h5ad")
    assert result.obsm[_keys.EMBEDDING_SPA].shape == (result.n_obs, 30)
    assert result.obsm[_keys.EMBEDDING_CON].shape == (result.n_obs, 30)
    for alpha in (0, 1):
        assert result.obs[_keys.domain_for_alpha(alpha)].nunique() == 6
    summary = json.loads((out / "summary.json").read_text())
    assert summary["training"]["encoder"] == "smoothing"
    assert summary["training"]["n_hops"] == 3  # the default
    assert summary["training"]["components"] == "multispati"
    assert not (out / "model").exists()
    # the regions are spatial: smoothing over the spatial graph finds them
    assert spacon.tl.score(result.obs["region"], result.obs[_keys.domain_for_alpha(0)])[
        "ari"] > 0.3


def test_run_on_an_earlier_result_with_some_genes_marked(sim_inputs, tmp_path, caplog):
    """A result read back (its domains in uns) and highly variable genes marked: the run
    replaces the domains and says, in its own words, that it uses every gene."""
    from spacon.cli import main

    common = ["--connectivity", str(sim_inputs / "connectome.npz"), "--unit-key", "unit",
              "--threshold", "0.4", "--encoder", "smoothing", "--n-domains", "4",
              "--alpha", "0", "--figures", "none", "--no-report"]
    assert main(["run", "--adata", str(sim_inputs / "synthetic_brain.h5ad"), *common,
                 "--out", str(tmp_path / "first"), "--quiet"]) == 0
    earlier = ad.read_h5ad(tmp_path / "first" / "result.h5ad")
    earlier.var["highly_variable"] = np.arange(earlier.n_vars) % 2 == 0
    earlier.write_h5ad(tmp_path / "earlier.h5ad")
    caplog.clear()
    with caplog.at_level("INFO"):
        assert main(["run", "--adata", str(tmp_path / "earlier.h5ad"), "--no-normalize",
                     "--n-hops", "1", "--method", "leiden", *common,
                     "--out", str(tmp_path / "second")]) == 0
    err = caplog.text
    assert "replacing the domains of an earlier run" in err
    assert f"marks {(earlier.n_vars + 1) // 2} of {earlier.n_vars} genes; spacon run uses " \
        "every gene" in err
    assert "called afresh" not in err and "adata[:, " not in err  # no Python advice
    result = ad.read_h5ad(tmp_path / "second" / "result.h5ad")
    called = result.uns[_keys.domain_for_alpha(0)]
    assert called["params"]["method"] == "leiden" and "tree" not in called  # this run's


def test_run_refuses_unknown_encoder(tmp_path):
    from spacon._pipeline import RunConfig, run

    config = RunConfig(adata="x.h5ad", no_connectivity=True, encoder="gcn", out=str(tmp_path))
    with pytest.raises(spacon.SpaconInputError, match="encoder"):
        run(config)
    config = RunConfig(adata="x.h5ad", no_connectivity=True, components="ica",
                       out=str(tmp_path))
    with pytest.raises(spacon.SpaconInputError, match="components"):
        run(config)
    config = RunConfig(adata="x.h5ad", connectivity="c.npz", encoder="spacon",
                       components="multispati", out=str(tmp_path))
    with pytest.raises(spacon.SpaconInputError, match="applies to --encoder smoothing"):
        run(config)


@pytest.mark.slow  # domains by BIC search: twenty mixture fits per alpha
def test_demo_baseline_finds_regions_and_modules(brain):
    from spacon._baselines import smoothing_baseline

    adata, conn = brain
    spacon.pp.normalize(adata)
    info = adata.uns["synthetic_brain"]
    spacon.pp.spatial_graph(adata, radius=info["suggested_radius"], section_key="section",
                            z_radius=info["suggested_z_radius"])
    spacon.pp.connectome_graph(adata, conn, unit_key="unit", threshold=0.4)
    regions = smoothing_baseline(adata, 0.0)
    modules = smoothing_baseline(adata, 1.0)
    assert len(regions) == adata.n_obs and "smoothed_domain" not in adata.obs  # input untouched
    # expression alone scores about 0 on the regions (cell types dominate it)
    assert spacon.tl.score(adata.obs["region"], regions)["ari"] > 0.2
    assert spacon.tl.score(adata.obs["module"], modules)["ari"] > 0.5


def test_raw_counts_are_warned_about(brain):
    """Smoothing, MULTISPATI-PCA and coupling model log-normalised expression: raw counts in X
    (or in a layer) are warned about, normalised expression is not."""
    import warnings

    adata, conn = brain
    spacon.pp.spatial_graph(adata, n_neighbors=5)
    with pytest.warns(spacon.SpaconWarning, match=r"adata.X looks like raw counts.*normalize") \
            as smoothing:
        spacon.tl.smoothed_expression(adata, n_comps=5)
    with pytest.warns(spacon.SpaconWarning, match="adata.X looks like raw counts") as pca:
        spacon.tl.spatial_pca(adata, n_comps=5, n_pcs=10)
    with pytest.warns(spacon.SpaconWarning, match="co-expression of counts") as coupling:
        spacon.tl.coupling(adata, conn, unit_key="unit", n_perm=0)
    for record in (smoothing, pca, coupling):  # each points at the caller's line
        assert [w.filename for w in record if "raw counts" in str(w.message)] == [__file__]
    spacon.pp.normalize(adata)
    with warnings.catch_warnings():
        warnings.simplefilter("error", spacon.SpaconWarning)
        spacon.tl.smoothed_expression(adata, n_comps=5)
        spacon.tl.spatial_pca(adata, n_comps=5, n_pcs=10)
    with pytest.warns(spacon.SpaconWarning, match=r"adata.layers\['counts'\] looks like raw"):
        spacon.tl.smoothed_expression(adata, n_comps=5, layer="counts")


def test_genes_marked_highly_variable_are_said_to_be_all_used():
    """scanpy's pp.pca takes only var['highly_variable']; spacon takes every gene, and says so."""
    adata = _path_graph_adata()
    adata.var["highly_variable"] = [True, True, True, False, False, False]
    with pytest.warns(spacon.SpaconWarning, match=r"marks only some genes \(3 of 6\), but "
                      "the expression PCs use every gene in X"):
        spacon.tl.smoothed_expression(adata, n_hops=1, n_comps=2)
    with pytest.warns(spacon.SpaconWarning, match=r"\(3 of 6\)"):
        spacon.tl.spatial_pca(adata, n_comps=2)
    subset = adata[:, adata.var["highly_variable"]].copy()  # as the warning says: no warning
    spacon.tl.smoothed_expression(subset, n_hops=1, n_comps=2)
    assert subset.obsm[_keys.SMOOTHED].shape == (4, 2)
    # a nullable boolean column with missing values: those genes are not marked
    adata.var["highly_variable"] = pd.array([True, None, True, False, None, False],
                                            dtype="boolean")
    with pytest.warns(spacon.SpaconWarning, match=r"\(2 of 6\)"):
        spacon.tl.smoothed_expression(adata, n_hops=1, n_comps=2)
    adata.var["highly_variable"] = ["True"] * 6  # not a boolean column: nothing said
    spacon.tl.smoothed_expression(adata, n_hops=1, n_comps=2)


def test_a_baselines_warnings_are_said_of_the_baseline():
    """--baselines printed the smoothing baseline's near-empty domains as if the run had them."""
    import warnings

    from spacon._baselines import _said_of
    from spacon._errors import SpaconWarning

    with pytest.warns(SpaconWarning, match=r"^the smoothing baseline at alpha 1, not the run's "
                                           r"domains: 3 of the 5 domains found"):
        with _said_of("the smoothing baseline at alpha 1"):
            warnings.warn("3 of the 5 domains found ...", SpaconWarning, stacklevel=1)
    with pytest.warns(FutureWarning, match="^scanpy's own$"):  # others pass unchanged
        with _said_of("the expression-only baseline"):
            warnings.warn("scanpy's own", FutureWarning, stacklevel=1)


def test_expression_baseline_on_few_features_and_repeated_profiles():
    """Regions x 9 cell-type densities, many regions sharing one profile: --baselines failed
    after training (30 PCs of 9 features), and shared profiles gave 0/0 weights, so every
    region became a domain of its own."""
    from spacon._baselines import EXPRESSION_ONLY, baseline_rows

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (3, 9))
    truth = np.repeat([0, 1, 2], 40)
    x = centres[truth] + rng.normal(0, 0.3, (120, 9))
    x[:30] = x[0]  # 30 regions of one group share one profile
    adata = ad.AnnData(np.abs(x).astype(np.float32))
    adata.obs["group"] = truth.astype(str)
    rows = baseline_rows(adata, {"group": "group"}, [], smoothing=False)
    assert list(rows) == [EXPRESSION_ONLY]
    assert rows[EXPRESSION_ONLY]["n_domains"] <= 10
    assert rows[EXPRESSION_ONLY]["group"]["ari"] > 0.5


def test_a_baseline_that_fails_is_left_out_with_a_warning(monkeypatch):
    import spacon._baselines as baselines

    def broken(adata, seed=0):
        raise ValueError("n_components=30 must be between 1 and 9")

    monkeypatch.setattr(baselines, "expression_baseline", broken)
    adata = ad.AnnData(np.ones((10, 3), np.float32))
    adata.obs["t"] = list("aabbccddee")
    adata.obs["spacon_domain_alpha0"] = pd.Categorical(list("0011223344"))
    with pytest.warns(spacon.SpaconWarning, match=r"^the expression-only baseline could not be "
                                                  r"computed, and is left out: ValueError: "
                                                  r"n_components=30"):
        rows = baselines.baseline_rows(adata, {"t": "t"}, [0.0], smoothing=False)
    assert list(rows) == ["spacon alpha=0"] and rows["spacon alpha=0"]["t"]["ari"] == 1.0
