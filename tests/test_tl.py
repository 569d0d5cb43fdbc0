import anndata as ad
import numpy as np
import pandas as pd
import pytest

import spacon
from spacon import SpaconInputError, SpaconWarning
from spacon.tl import alpha_weight, hungarian_f1, score


def embedded(rng, n=600):
    """Cells with a connectivity embedding that separates 3 groups and a spatial one that
    separates 2 others; plus 2-D coordinates where the spatial groups are halves."""
    con_truth = rng.integers(0, 3, n)
    xy = rng.uniform(0, 10, size=(n, 2))
    spa_truth = (xy[:, 0] > 5).astype(int)
    adata = ad.AnnData(np.zeros((n, 1), dtype=np.float32))
    adata.obs_names = [f"c{i}" for i in range(n)]
    adata.obsm["X_spacon_con"] = np.eye(3)[con_truth] * 5 + rng.normal(0, 0.3, (n, 3))
    adata.obsm["X_spacon_spa"] = rng.normal(0, 0.3, (n, 3))
    adata.obsm["X_spacon_spa"][:, 0] += spa_truth * 5
    adata.obsm["spatial"] = xy
    adata.obs["con_truth"] = con_truth.astype(str)
    adata.obs["spa_truth"] = spa_truth.astype(str)
    return adata


def test_alpha_weight_endpoints_and_shape():
    assert alpha_weight(0) == 0 and np.isclose(alpha_weight(1), 1)
    assert str(alpha_weight(0)) == "0.0"  # not -0.0 in uns['spacon_fuse']['weight']
    assert np.isclose(alpha_weight(0.5), (np.exp(-2) - 1) / (np.exp(-4) - 1))
    assert alpha_weight(0.25) > 0.25  # rises steeply


def test_fuse_mixes_scaled_embeddings(rng):
    adata = embedded(rng)
    # the spatial embedding's dimensions differ in variance, as a PCA-like embedding's do
    adata.obsm["X_spacon_spa"] = adata.obsm["X_spacon_spa"] * np.linspace(3, 0.1, 8)[
        : adata.obsm["X_spacon_spa"].shape[1]]
    spacon.tl.fuse(adata, 0)
    spa = adata.obsm["X_spacon_spa"]
    centred = spa - spa.mean(0)
    # one factor for the whole embedding: mean variance 1, the dimensions' ratios kept
    assert np.allclose(adata.obsm["X_spacon"], centred / np.sqrt((spa.var(0)).mean()),
                       atol=1e-5)
    assert np.isclose(adata.obsm["X_spacon"].var(0).mean(), 1.0, atol=1e-4)
    assert adata.uns["spacon_fuse"]["scale"] == "embedding"
    spacon.tl.fuse(adata, 0, scale="dimension")  # spacon 0.1: every dimension to variance 1
    assert np.allclose(adata.obsm["X_spacon"], centred / spa.std(0), atol=1e-5)
    spacon.tl.fuse(adata, 1)
    con = adata.obsm["X_spacon_con"]
    assert np.allclose(adata.obsm["X_spacon"], (con - con.mean(0)) / np.sqrt(con.var(0).mean()),
                       atol=1e-5)
    assert adata.uns["spacon_fuse"]["alpha"] == 1
    with pytest.raises(SpaconInputError, match=r"\[0, 1\]"):
        spacon.tl.fuse(adata, 1.5)
    with pytest.raises(SpaconInputError, match="a number"):
        spacon.tl.fuse(adata, "0")
    with pytest.raises(SpaconInputError, match="scale"):
        spacon.tl.fuse(adata, 1, scale="column")
    del adata.obsm["X_spacon_con"]
    with pytest.raises(SpaconInputError, match="spatial-only"):
        spacon.tl.fuse(adata, 0.5)


def test_domains_gmm_finds_the_number_of_groups(rng):
    adata = embedded(rng)
    spacon.tl.fuse(adata, 1)
    spacon.tl.domains(adata)
    assert adata.uns["spacon_domain"]["n_domains"] == 3
    assert score(adata.obs["con_truth"], adata.obs["spacon_domain"])["ari"] > 0.95
    assert adata.obs["spacon_domain"].dtype.name == "category"
    spacon.tl.fuse(adata, 0)
    with pytest.warns(spacon.SpaconWarning, match="alpha 1 then, 0 now.*called afresh"):
        spacon.tl.domains(adata, n_domains=2)  # the alpha-1 domains are replaced, as said
    assert score(adata.obs["spa_truth"], adata.obs["spacon_domain"])["ari"] > 0.95


def test_gmm_does_not_shatter_coinciding_embeddings(rng):
    """Cells sharing a unit have near-identical embeddings: Leiden shatters, GMM does not."""
    n_units, per_unit = 60, 20
    module = np.repeat(rng.integers(0, 4, n_units), per_unit)
    centres = np.eye(4)[module] * 4 + np.repeat(rng.normal(0, 0.8, (n_units, 4)), per_unit, 0)
    adata = ad.AnnData(np.zeros((len(module), 1), dtype=np.float32))
    adata.obsm["X_spacon"] = centres + rng.normal(0, 1e-3, centres.shape)
    spacon.tl.domains(adata)
    gmm = score(module, adata.obs["spacon_domain"])
    assert adata.uns["spacon_domain"]["n_domains"] <= 6 and gmm["ari"] > 0.8
    assert adata.uns["spacon_domain"]["n_merged_points"] == n_units
    # without merging, Leiden on the kNN graph shatters the units; with it, it does not
    spacon.tl.domains(adata, method="leiden", merge_radius=0, key_added="raw")
    spacon.tl.domains(adata, method="leiden", key_added="merged")
    assert adata.obs["raw"].nunique() > 10
    assert adata.obs["merged"].nunique() < adata.obs["raw"].nunique()


def test_domains_judge_an_embedding_at_the_alpha_it_was_fused_at(rng):
    """Each fused key keeps its alpha: clustering alpha 0's embedding after fusing alpha 1
    into another key judged it on the connectome (the last call's alpha).
    """
    adata = embedded(rng, n=120)
    spacon.tl.fuse(adata, 0, key_added="X_a0")
    spacon.tl.fuse(adata, 1, key_added="X_a1")
    assert adata.uns["spacon_fuse"]["alphas"] == {"X_a0": 0.0, "X_a1": 1.0}
    adata.obsm["X_other"] = adata.obsm["X_a0"].copy()
    for use_rep, alpha in (("X_a0", 0.0), ("X_a1", 1.0), ("X_spacon_spa", 0.0),
                           ("X_spacon_con", 1.0), ("X_other", None)):
        spacon.tl.domains(adata, use_rep=use_rep, n_domains=2, n_runs=2, key_added="d")
        assert adata.uns["d"]["params"].get("alpha") == alpha, use_rep
    spacon.tl.domains(adata, use_rep="X_other", alpha=0.5, n_domains=2, n_runs=2, key_added="d")
    assert adata.uns["d"]["params"]["alpha"] == 0.5  # given for an embedding of no record: kept
    with pytest.raises(SpaconInputError, match=r"alpha=0.5, but adata.obsm\['X_a1'\] holds the "
                       "embedding at alpha 1"):  # given against the record: refused
        spacon.tl.domains(adata, use_rep="X_a1", alpha=0.5, n_domains=2, n_runs=2)
    # smoothed expression: the alpha of the graph it was averaged over
    from spacon.tl._fuse import alpha_of

    for graph, params, alpha in (("spatial", {}, 0.0), ("connectome", {}, 1.0),
                                 ("both", {"alpha": 0.3}, 0.3)):
        adata.uns["X_smooth"] = {"params": {"graph": graph, "n_hops": 3, **params}}
        assert alpha_of(adata, "X_smooth") == alpha, graph
    with pytest.raises(SpaconInputError, match=r"no 'X_pca' \(it holds .*'X_a0'") as err:
        spacon.tl.domains(adata, use_rep="X_pca")
    assert "tl.fuse" not in str(err.value)
    with pytest.raises(SpaconInputError, match="spacon.tl.fuse first"):
        spacon.pl.umap(adata, use_rep="X_spacon_alpha0.5")


@pytest.mark.parametrize("alpha", [5, -1, "1", np.nan, True])
def test_domains_refuse_an_alpha_outside_0_1(rng, alpha):
    adata = embedded(rng, n=60)
    spacon.tl.fuse(adata, 0)
    with pytest.raises(SpaconInputError, match="alpha must be"):
        spacon.tl.domains(adata, alpha=alpha, n_domains=2, n_runs=2)
    assert "spacon_domain" not in adata.obs


def test_domains_are_judged_on_graphs_under_other_keys(rng):
    adata = embedded(rng, n=200)
    spacon.tl.fuse(adata, 0)
    spacon.pp.spatial_graph(adata, n_neighbors=6, key_added="knn")
    spacon.tl.domains(adata, n_runs=2, key_added="default_keys")
    assert adata.uns["default_keys"]["selection"]["weights"] == {"embedding_knn": 1.0}
    spacon.tl.domains(adata, n_runs=2, spatial_key="knn", key_added="d")
    assert adata.uns["d"]["selection"]["weights"] == {"spatial": 1.0}
    assert adata.uns["d"]["params"]["spatial_key"] == "knn"
    assert adata.obs["d"].nunique() == 2
    # the tree of a call with the named graph is cut by a call with the same options only
    spacon.tl.domains(adata, n_runs=2, spatial_key="knn", n_domains=1, tree_key="d",
                      key_added="cut")
    with pytest.raises(SpaconInputError, match="built from another embedding or options"):
        spacon.tl.domains(adata, n_runs=2, n_domains=1, tree_key="d", key_added="cut")


def test_leiden_resolution_search_hits_n_domains(rng):
    adata = embedded(rng)
    spacon.tl.fuse(adata, 1)
    spacon.tl.domains(adata, method="leiden", n_domains=3)
    assert adata.obs["spacon_domain"].nunique() == 3
    with pytest.warns(spacon.SpaconWarning, match="not the 500 asked for"):
        spacon.tl.domains(adata, method="leiden", n_domains=500, key_added="many")
    assert 3 < adata.obs["many"].nunique() < 500
    spacon.tl.domains(adata, method="louvain", resolution=0.5, key_added="lv")
    assert adata.obs["lv"].nunique() >= 2


def test_domain_errors(rng):
    adata = embedded(rng)
    with pytest.raises(SpaconInputError, match="run spacon.tl.fuse"):
        spacon.tl.domains(adata)
    spacon.tl.fuse(adata, 1)
    with pytest.raises(SpaconInputError, match="not a valid choice"):
        spacon.tl.domains(adata, method="kmeans")
    with pytest.raises(SpaconInputError, match="n_domains"):
        spacon.tl.domains(adata, n_domains=0)
    with pytest.raises(SpaconInputError, match="n_domains must be a whole number, got '4'"):
        spacon.tl.domains(adata, n_domains="4")
    with pytest.raises(SpaconInputError, match="no domain tree under 'spacon_domian'"):
        spacon.tl.domains(adata, n_domains=2, tree_key="spacon_domian")
    with pytest.raises(SpaconInputError, match="resolution must be a positive number"):
        spacon.tl.domains(adata, method="leiden", resolution=-1)


def test_refine_majority_vote_by_hand():
    xy = np.array([[0, 0], [1, 0], [2, 0], [10, 0], [11, 0], [12, 0]], dtype=float)
    adata = ad.AnnData(np.zeros((6, 1), dtype=np.float32))
    adata.obsm["spatial"] = xy
    adata.obs["spacon_domain"] = pd.Categorical(["a", "b", "a", "b", "b", "a"])
    spacon.tl.refine(adata, k=3)
    # cell 1's 3 nearest: itself (b), 0 (a), 2 (a) -> a; cell 5: itself (a), 4 (b), 3 (b) -> b
    assert list(adata.obs["spacon_domain_refined"]) == ["a", "a", "a", "b", "b", "b"]
    with pytest.raises(SpaconInputError, match="no 'nope'"):
        spacon.tl.refine(adata, key="nope")
    with pytest.raises(SpaconInputError, match="every one of the 6 cells"):
        spacon.tl.refine(adata, k=6)
    # a cell without a label neither votes nor gets one: cell 1 keeps NaN; cell 0's votes
    # are a (itself), b (cell 2) and none (cell 1): a tie, so it keeps a
    adata.obs["partial"] = pd.Categorical(["a", None, "b", "b", "b", "a"])
    spacon.tl.refine(adata, k=3, key="partial")
    assert list(adata.obs["partial_refined"].astype(object).fillna("-")) == \
        ["a", "-", "b", "b", "b", "b"]
    adata.obs["depth"] = np.linspace(0, 1, 6)
    with pytest.raises(SpaconInputError, match="holds numbers"):
        spacon.tl.refine(adata, key="depth")
    adata.obs["read_back"] = [0.0, 1.0, np.nan, 1.0, 1.0, 0.0]  # labels read back with NaN
    spacon.tl.refine(adata, k=3, key="read_back")
    refined = adata.obs["read_back_refined"]
    assert refined.isna().sum() == 1 and set(refined.dropna().astype(float)) == {0.0, 1.0}
    adata.obs["none"] = pd.Categorical([None] * 6, categories=["a"])  # was numpy's argmax error
    with pytest.raises(SpaconInputError, match=r"obs\['none'\] has no label at all"):
        spacon.tl.refine(adata, k=3, key="none")


def test_refine_within_sections():
    xy = np.array([[0, 0], [0.1, 0], [0.2, 0], [0, 0], [0.1, 0]], dtype=float)
    adata = ad.AnnData(np.zeros((5, 1), dtype=np.float32))
    adata.obs_names = [f"c{i}" for i in range(5)]
    adata.obsm["spatial"] = xy
    adata.obs["sec"] = ["s1", "s1", "s1", "s2", "s2"]
    adata.obs["d"] = pd.Categorical(["x", "x", "x", "y", "y"])
    spacon.tl.refine(adata, k=3, key="d", section_key="sec", key_added="r")
    # without sections, the s2 cells would be outvoted by the three s1 cells on top of them
    assert list(adata.obs["r"]) == ["x", "x", "x", "y", "y"]


def test_hungarian_f1_by_hand():
    truth = ["a", "a", "a", "b", "b", "c"]
    pred = [1, 1, 2, 2, 2, 2]
    # matching: a->1 (2 cells), b->2 (2 cells), c unmatched
    f1_a = 2 * 1.0 * (2 / 3) / (1 + 2 / 3)
    f1_b = 2 * (2 / 4) * 1.0 / (2 / 4 + 1)
    assert np.isclose(hungarian_f1(truth, pred), (f1_a + f1_b + 0) / 3)
    assert hungarian_f1(truth, truth) == 1.0


def test_score_permutation_invariant_and_errors():
    s = score([0, 0, 1, 1], ["x", "x", "y", "y"])
    assert s == {"ari": 1.0, "nmi": 1.0, "v_measure": 1.0, "hungarian_f1": 1.0}
    assert score([0, 0, 1, 1], [0, 1, 0, 1])["ari"] < 0
    with pytest.raises(SpaconInputError, match="differ in length"):
        score([0, 1], [0])
    with pytest.raises(SpaconInputError, match=r"predicted labels must be one per cell \(1-D\), "
                                               r"got shape \(2, 1\)"):
        score([0, 1], np.array([[0], [1]]))  # was pandas' "ValueError: 2"
    # unlabelled cells are left out, not scored as a class "nan"
    truth = pd.Categorical(["a", "a", "b", None, None, "b"])
    assert score(truth, [0, 0, 1, 0, 1, 1]) == score(["a", "a", "b", "b"], [0, 0, 1, 1])
    assert score([1.0, np.nan, 2.0], [0, 0, 1])["hungarian_f1"] == 1.0
    with pytest.raises(SpaconInputError, match="all missing"):
        score([np.nan, np.nan], [0, 1])
    with pytest.warns(spacon.SpaconWarning, match=r"hold one value \('L1'\) among the cells"):
        assert score(["L1", "L1", None], [0, 1, 1])["ari"] == 0.0


def test_score_leaves_out_cells_without_a_predicted_label():
    # domains called on a subset and written back: the other cells are NaN, not a domain
    truth = np.array(list("AABBCC") * 50)
    predicted = pd.Series(pd.Categorical([None] * 300, categories=["0", "1"]))
    on_a = truth == "A"
    predicted[on_a] = np.random.default_rng(0).choice(["0", "1"], on_a.sum())
    with pytest.warns(SpaconWarning) as said:  # and only the truth's 'A' is left to score
        s = score(truth, predicted)
    assert [str(w.message)[:40] for w in said] == [
        "200 of 300 cells with a true label have ", "the true labels hold one value ('A') amo"]
    with pytest.warns(SpaconWarning, match="one value"):
        assert s == score(truth[on_a], predicted[on_a].astype(str))  # 'nan' was a class: 0.44
    assert abs(s["ari"]) < 0.05
    with pytest.raises(SpaconInputError, match="no cell has both"):
        score(["a", "b", None], [None, None, 0])


def test_section_divergence_by_hand():
    adata = ad.AnnData(np.zeros((8, 1), dtype=np.float32))
    adata.obs_names = [f"c{i}" for i in range(8)]
    adata.obs["section"] = ["s0"] * 4 + ["s1"] * 4
    adata.obs["spacon_domain"] = pd.Categorical(["a", "a", "b", "b", "a", "a", "a", "a"])
    table = spacon.tl.section_divergence(adata)
    # JS divergence of (1/2, 1/2) and (1, 0), base 2
    m = np.array([0.75, 0.25])
    kl = lambda p: sum(pi * np.log2(pi / mi) for pi, mi in zip(p, m) if pi > 0)  # noqa: E731
    expected = 0.5 * kl([0.5, 0.5]) + 0.5 * kl([1.0, 0.0])
    assert np.isclose(table["js_divergence"].iloc[0], expected)
    # cells without a domain are left out; a section with none labelled gives NaN
    adata.obs["partial"] = pd.Categorical(["a", "a", "b", "b", None, None, "a", "a"])
    part = spacon.tl.section_divergence(adata, key="partial")
    assert np.isclose(part["js_divergence"].iloc[0], expected)
    adata.obs["partial"] = pd.Categorical(["a", "a", "b", "b", None, None, None, None])
    assert np.isnan(spacon.tl.section_divergence(adata, key="partial")["js_divergence"].iloc[0])
    adata.obs["depth"] = np.linspace(0, 1, 8)
    with pytest.raises(SpaconInputError, match="holds numbers"):
        spacon.tl.section_divergence(adata, key="depth")
