"""PLS marker genes recover the simulator's planted region programs."""

import numpy as np
import pandas as pd
import pytest

import spacon
from spacon import SpaconInputError


def test_markers_are_the_planted_region_genes(brain):
    adata, _ = brain
    spacon.pp.normalize(adata)
    program = adata.var["program"].astype(str)
    table = spacon.tl.marker_genes(adata, "region", n_genes=10)
    assert table.equals(adata.uns["spacon_markers"]["region"])
    for region in adata.obs["region"].astype(str).unique():
        planted = set(program.index[program == region])
        top = table[table["domain"] == region]
        found = set(top["gene"][: len(planted)])
        assert len(found & planted) >= 0.8 * len(planted), region
        assert (np.diff(top["coefficient"]) <= 0).all()  # ranked by coefficient
        score = adata.obs[f"region_metagene_{region}"]
        means = score.groupby(adata.obs["region"].astype(str), observed=True).mean()
        assert means.idxmax() == region


def test_marker_errors_and_plot(brain):
    adata, _ = brain
    spacon.pp.normalize(adata)
    with pytest.raises(SpaconInputError, match="no 'nope'"):
        spacon.tl.marker_genes(adata, "nope")
    with pytest.raises(SpaconInputError, match=r"domains \['x'\] are not in"):
        spacon.tl.marker_genes(adata, "region", domains=["x"])
    adata.obs["one"] = "a"
    with pytest.raises(SpaconInputError, match="one domain"):
        spacon.tl.marker_genes(adata, "one")
    adata.obs["depth"] = np.linspace(0, 1, adata.n_obs)
    with pytest.raises(SpaconInputError, match="holds numbers .* not domains"):
        spacon.tl.marker_genes(adata, "depth")
    with pytest.warns(spacon.SpaconWarning, match=r"layers\['counts'\] looks like raw counts"):
        spacon.tl.marker_genes(adata, "region", layer="counts", n_genes=3)
    # domains read back as whole-number floats, some missing: no 'nan' domain
    codes = adata.obs["region"].cat.codes.to_numpy().astype(float)
    adata.obs["read_back"] = np.where(np.arange(adata.n_obs) % 7 == 0, np.nan, codes % 2)
    table = spacon.tl.marker_genes(adata, "read_back", n_genes=3)
    assert sorted(set(table["domain"])) == ["0", "1"]  # written as the integers they were
    assert not any(c.endswith("_nan") for c in adata.obs.columns)
    # two keys with the same domain names keep their own scores; domains in category order
    adata.obs["other"] = adata.obs["region"].cat.reorder_categories(
        adata.obs["region"].cat.categories[::-1])
    spacon.tl.marker_genes(adata, "region", n_genes=5)
    before = adata.obs["region_metagene_region0"].copy()
    table = spacon.tl.marker_genes(adata, "other", n_genes=5)
    assert adata.obs["region_metagene_region0"].equals(before)
    assert "other_metagene_region0" in adata.obs
    assert list(pd.unique(table["domain"])) == list(adata.obs["other"].cat.categories)
    table = spacon.tl.marker_genes(adata, "region", domains=["region0"], n_genes=5)
    fig = spacon.pl.marker_genes(table, "region0")
    assert len(fig.axes[0].patches) == len(table) <= 5
    import matplotlib.figure

    caller = matplotlib.figure.Figure()
    ax = caller.subplots()
    assert spacon.pl.marker_genes(table, "region0", ax=ax) is ax
    assert len(ax.patches) == len(table)
    with pytest.raises(SpaconInputError, match="no domain"):
        spacon.pl.marker_genes(table, "region1")


def test_one_domain_by_name_and_stale_metagenes_go(brain):
    adata, _ = brain
    spacon.pp.normalize(adata)
    adata.obs["two"] = np.where(np.arange(adata.n_obs) % 2 == 0, "12", "3")
    table = spacon.tl.marker_genes(adata, "two", domains="12", n_genes=3)  # one domain, "12"
    assert set(table["domain"]) == {"12"} and "two_metagene_12" in adata.obs
    adata.obs["codes"] = adata.obs["region"].cat.codes.astype(int)
    spacon.tl.marker_genes(adata, "codes", n_genes=3)
    assert "codes_metagene_1" in adata.obs
    table = spacon.tl.marker_genes(adata, "codes", domains=0, n_genes=3)  # a scalar
    assert set(table["domain"]) == {"0"}
    # obs and uns describe the same call: the other domains' scores are gone
    assert [c for c in adata.obs if c.startswith("codes_metagene_")] == ["codes_metagene_0"]
    assert set(adata.uns["spacon_markers"]["codes"]["domain"]) == {"0"}
    table = spacon.tl.marker_genes(adata, "codes", domains={0, 1}, n_genes=3)  # any iterable
    assert set(table["domain"]) == {"0", "1"}
    # integer labels pandas made float once some cells had none: still domains 0, 1, ...
    adata.obs["gappy"] = np.where(np.arange(adata.n_obs) % 5 == 0, np.nan,
                                  adata.obs["codes"].to_numpy() % 3)
    for asked in (1, 1.0, "1"):
        table = spacon.tl.marker_genes(adata, "gappy", domains=asked, n_genes=3)
        assert set(table["domain"]) == {"1"} and "gappy_metagene_1" in adata.obs
    spacon.tl.marker_genes(adata, "gappy", n_genes=3)
    assert sorted(c for c in adata.obs if c.startswith("gappy_metagene_")) == [
        "gappy_metagene_0", "gappy_metagene_1", "gappy_metagene_2"]
    fig = spacon.pl.highlight(adata, 1, key="gappy", section_key=None)
    assert fig is not None


def test_marker_counts_must_be_whole_and_expression_finite(brain):
    adata, _ = brain
    spacon.pp.normalize(adata)
    for n_genes in (-3, 0, 2.5, "5", float("inf"), float("nan")):
        with pytest.raises(SpaconInputError, match="n_genes must be"):
            spacon.tl.marker_genes(adata, "region", n_genes=n_genes)
    broken = adata.copy()
    broken.X = broken.X.toarray() if hasattr(broken.X, "toarray") else broken.X.copy()
    broken.X[:3, 0] = np.nan
    with pytest.raises(SpaconInputError, match="NaN or infinite values in 3 cells"):
        spacon.tl.marker_genes(broken, "region")
    with pytest.raises(SpaconInputError, match="draws the table spacon.tl.marker_genes returns"):
        spacon.pl.marker_genes(adata, "0")
    assert "spacon_markers" not in broken.uns


def test_markers_of_many_genes_stay_in_bounded_memory():
    """Only the fitted cells are made dense: 4,000 x 5,000 sparse (160 MB dense in float64)."""
    import tracemalloc

    import anndata as ad
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    x = sp.random(4000, 5000, density=0.01, format="csr", random_state=0, dtype=np.float32)
    adata = ad.AnnData(x)
    adata.obs["d"] = pd.Categorical(rng.integers(0, 3, 4000).astype(str))
    tracemalloc.start()
    spacon.tl.marker_genes(adata, "d", max_cells=100, n_genes=5)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 40e6, peak
    assert adata.obs["d_metagene_0"].notna().all()
    dense = ad.AnnData(x.toarray().astype(np.float64), obs=adata.obs[["d"]].copy())
    dense_table = spacon.tl.marker_genes(dense, "d", max_cells=100, n_genes=5)
    pd.testing.assert_frame_equal(dense_table, adata.uns["spacon_markers"]["d"], rtol=1e-9)
    np.testing.assert_allclose(dense.obs["d_metagene_1"], adata.obs["d_metagene_1"], rtol=1e-9)


def test_run_and_domains_write_the_markers_of_their_own_domains(sim_inputs, tmp_path):
    import anndata as ad

    from spacon.cli import main

    out = tmp_path / "res"
    assert main(["run", "--adata", str(sim_inputs / "synthetic_brain.h5ad"), "--no-connectivity",
                 "--section-key", "section", "--radius", "700", "--z-radius", "700",
                 "--n-domains", "6", "--markers", "4", "--figures", "none", "--quiet",
                 "--out", str(out)]) == 0
    markers = pd.read_csv(out / "markers.csv", dtype={"domain": str})
    assert list(markers.columns) == ["alpha", "domain", "rank", "gene", "coefficient"]
    result = ad.read_h5ad(out / "result.h5ad")
    domains = result.obs["spacon_domain_alpha0"].astype(str)
    assert set(markers["domain"]) == set(domains) and (markers.groupby("domain").size() <= 4).all()
    assert not [c for c in result.obs if "metagene" in str(c)]  # the table, not 6 columns
    assert "Marker genes" in (out / "report.html").read_text()
    # the table tl.marker_genes gives on the result's domains (whose genes are right: above)
    direct = spacon.tl.marker_genes(result, "spacon_domain_alpha0", n_genes=4, metagenes=False)
    pd.testing.assert_frame_equal(markers.drop(columns="alpha"), direct.astype({"domain": str}),
                                  check_dtype=False)
    # domains called again: their own markers, or none with --markers 0 (the stale file goes)
    again = tmp_path / "again"
    assert main(["domains", "--result", str(out), "--n-domains", "3", "--figures", "none",
                 "--out", str(again)]) == 0
    assert set(pd.read_csv(again / "markers.csv", dtype={"domain": str})["domain"]) == set(
        pd.read_csv(again / "domains.csv", dtype={"domain_alpha0": str})["domain_alpha0"])
    assert main(["domains", "--result", str(out), "--markers", "0", "--figures", "none",
                 "--out", str(out), "--overwrite"]) == 0
    assert not (out / "markers.csv").exists()
    assert "spacon_markers" not in ad.read_h5ad(out / "result.h5ad").uns
    # a run without markers: domains called again from it inherit --markers 0
    assert main(["domains", "--result", str(out), "--n-domains", "4", "--figures", "none",
                 "--out", str(tmp_path / "inherit")]) == 0
    assert not (tmp_path / "inherit" / "markers.csv").exists()
    assert main(["run", "--adata", str(sim_inputs / "synthetic_brain.h5ad"), "--no-connectivity",
                 "--radius", "700", "--markers", "-1", "--out", str(tmp_path / "bad")]) == 2


def test_markers_without_metagenes_leave_none_behind(brain):
    adata, _ = brain
    spacon.pp.normalize(adata)
    spacon.tl.marker_genes(adata, "region", n_genes=3)
    assert any(str(c).startswith("region_metagene_") for c in adata.obs)
    table = spacon.tl.marker_genes(adata, "region", n_genes=3, metagenes=False)
    assert not any(str(c).startswith("region_metagene_") for c in adata.obs)
    assert table.equals(adata.uns["spacon_markers"]["region"]) and len(table)
    with pytest.raises(SpaconInputError, match="metagenes must be True or False"):
        spacon.tl.marker_genes(adata, "region", metagenes="no")


@pytest.mark.parametrize("n, p, d, c", [(300, 40, 5, 2), (200, 60, 3, 3), (8, 50, 2, 5)])
def test_pls_of_all_domains_at_once_equals_scikit_learns_one_at_a_time(n, p, d, c):
    import warnings

    from sklearn.cross_decomposition import PLSRegression

    from spacon.tl._markers import pls1_coefficients

    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, p))
    x[:, 3] = 0.0  # a gene that never varies
    member = (np.arange(n)[:, None] % d == np.arange(d)).astype(float)
    ours = pls1_coefficients(x.copy(), member, c)
    with warnings.catch_warnings():  # (8, 50): the response is explained before 5 components
        warnings.simplefilter("ignore")
        theirs = np.column_stack([np.ravel(PLSRegression(c, scale=False).fit(
            x, member[:, j]).coef_) for j in range(d)])
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def test_a_runs_markers_keep_other_tables_and_never_cost_the_run(brain, monkeypatch):
    from spacon._pipeline import RunConfig, domain_markers, marker_table

    adata, _ = brain
    spacon.pp.normalize(adata)
    spacon.tl.marker_genes(adata, "cell_type", n_genes=3)  # the user's own table
    adata.obs["spacon_domain_alpha0"] = adata.obs["region"]
    adata.uns["spacon_markers"]["spacon_domain_alpha1"] = "an earlier run's"
    config = RunConfig(alpha=[0.0, 0.0], markers=4)
    domain_markers(adata, config)
    assert set(adata.uns["spacon_markers"]) == {"cell_type", "spacon_domain_alpha0"}
    table = marker_table(adata, config)  # --alpha 0 0: the table once
    assert len(table) == 4 * adata.obs["region"].nunique() and set(table["alpha"]) == {"0"}

    def no_memory(*args, **kwargs):
        raise SpaconInputError("marker genes of 50000 cells x 40000 genes needs about 30 GB")

    monkeypatch.setattr(spacon.tl, "marker_genes", no_memory)
    with pytest.warns(spacon.SpaconWarning, match="could not be found, and are left out: .*"
                      "30 GB.*--markers 0 skips them"):
        domain_markers(adata, config)
    assert set(adata.uns["spacon_markers"]) == {"cell_type"}
