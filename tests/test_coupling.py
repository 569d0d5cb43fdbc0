"""Transcriptome-connectome coupling: statistics by hand, surrogates, planted ground truth."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import cdist

import spacon
from spacon import SpaconInputError
from spacon.io import Connectivity
from spacon.tl._surrogates import MoranSurrogates, inverse_distance_weights, morans_i


def grid_units(seed=0, coupled=False, n_side=12, n_genes=40, scale=3.0):
    """Units on a jittered grid with spatially smooth expression; connectivity falls with
    distance. ``coupled`` adds modules of scattered units that share a program and are
    connected: coupling beyond distance."""
    rng = np.random.default_rng(seed)
    xy = np.stack(np.meshgrid(np.arange(n_side), np.arange(n_side)), -1).reshape(-1, 2)
    xy = xy + rng.normal(0, 0.1, xy.shape)
    d = cdist(xy, xy)
    field = np.exp(-(d / scale) ** 2) @ rng.normal(size=(len(xy), n_genes))
    field /= field.std(axis=0)
    conn = np.exp(-d / scale) + 0.05 * rng.random(d.shape)
    module = rng.integers(0, 4, len(xy))
    if coupled:
        field += np.eye(4)[module] @ rng.normal(size=(4, n_genes))
        conn += 0.5 * (module[:, None] == module[None, :])
    conn = 0.5 * (conn + conn.T)
    np.fill_diagonal(conn, 0)
    adata = ad.AnnData(field.astype(np.float32),
                       obs=pd.DataFrame({"module": [f"m{m}" for m in module]},
                                        index=[f"u{i}" for i in range(len(xy))]))
    adata.obsm["spatial"] = xy
    return adata, Connectivity(conn, np.asarray(adata.obs_names))


def test_partial_correlation_by_hand():
    # two distance groups: residuals are deviations from the group means
    x = np.array([1.0, 2, 3, 10, 11, 12])
    y = np.array([1.0, 3, 2, 4, 6, 5])
    d = np.array([0.0, 0, 0, 1, 1, 1])
    # x - means: -1 0 1 -1 0 1; y - means: -1 1 0 -1 1 0; r = 2 / sqrt(4 * 4)
    assert spacon.tl.partial_correlation(x, y, d, n_bins=2) == pytest.approx(0.5)
    # a shared distance trend alone gives a large r but no partial correlation
    rng = np.random.default_rng(0)
    dist = rng.random(2000)
    a = np.exp(-3 * dist) + 0.01 * rng.normal(size=2000)
    b = -dist**2 + 0.01 * rng.normal(size=2000)
    assert np.corrcoef(a, b)[0, 1] > 0.7
    assert abs(spacon.tl.partial_correlation(a, b, dist)) < 0.1


def test_coexpression_is_correlation_of_gene_standardised_profiles():
    rng = np.random.default_rng(1)
    profiles = rng.gamma(2.0, size=(7, 30)) * rng.gamma(1.0, size=30)
    z = stats.zscore(profiles, axis=0)
    np.testing.assert_allclose(spacon.tl.coexpression(profiles), np.corrcoef(z), atol=1e-12)


def test_moran_surrogates_keep_spatial_autocorrelation_and_gene_correlations():
    adata, _ = grid_units(seed=3)
    values = np.asarray(adata.X, dtype=np.float64)
    weights = inverse_distance_weights(adata.obsm["spatial"])
    draw = MoranSurrogates(values, adata.obsm["spatial"]).draw(np.random.default_rng(0))
    np.testing.assert_allclose(morans_i(draw, weights), morans_i(values, weights), atol=1e-9)
    np.testing.assert_allclose(np.cov(draw.T), np.cov(values.T), atol=1e-9)
    np.testing.assert_allclose(draw.mean(axis=0), values.mean(axis=0), atol=1e-9)
    assert np.abs(draw - values).mean() > 0.3 * values.std()


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_r_and_per_domain_rows_match_direct_computation(method):
    adata, conn = grid_units(seed=0, coupled=True, n_side=8)
    table = spacon.tl.coupling(adata, conn, groupby="module", method=method, n_perm=0)
    n = adata.n_obs
    i, j = np.triu_indices(n, 1)
    co = spacon.tl.coexpression(np.asarray(adata.X, dtype=np.float64))[i, j]
    w = conn.matrix.toarray()[i, j]
    corr = (lambda a, b: stats.spearmanr(a, b)[0]) if method == "spearman" else \
        (lambda a, b: stats.pearsonr(a, b)[0])
    rows = table.set_index("scope")
    assert rows.loc["all", "n_pairs"] == n * (n - 1) // 2
    assert rows.loc["all", "r"] == pytest.approx(corr(co, w), abs=1e-9)
    module = adata.obs["module"].to_numpy()
    for m in np.unique(module):
        touch = (module[i] == m) | (module[j] == m)
        assert rows.loc[m, "n_units"] == (module == m).sum()
        assert rows.loc[m, "n_pairs"] == touch.sum()
        assert rows.loc[m, "r"] == pytest.approx(corr(co[touch], w[touch]), abs=1e-9)
    assert rows["p_spatial"].isna().all()
    # groups in their categorical order (domains 0, 1, ..., 10, not sorted as text)
    names = [str(k) for k in range(12)]
    adata.obs["domain"] = pd.Categorical(np.array(names)[np.arange(n) % 12], categories=names)
    table = spacon.tl.coupling(adata, conn, groupby="domain", method=method, n_perm=0)
    assert list(table["scope"]) == ["all", *names]


def test_distance_alone_is_not_called_coupling():
    adata, conn = grid_units(seed=0, coupled=False)
    row = spacon.tl.coupling(adata, conn, n_perm=200).iloc[0]
    assert row["r"] > 0.5            # co-expression and connectivity both fall with distance
    assert row["p_mantel"] < 0.01    # so the free label shuffle calls it significant
    assert row["p_spatial"] > 0.2    # the spatial null does not
    assert abs(row["r_partial"]) < 0.05
    assert row["p_partial_spatial"] > 0.05


def test_planted_coupling_beyond_distance_is_found():
    adata, conn = grid_units(seed=0, coupled=True)
    row = spacon.tl.coupling(adata, conn, n_perm=200).iloc[0]
    assert row["r_partial"] > 0.5
    assert row["p_spatial"] <= 0.01 and row["p_partial_spatial"] <= 0.01


def test_cells_pooled_into_units_and_repeatable():
    units, conn = grid_units(seed=2, coupled=True, n_side=7)
    cells = ad.concat([units] * 3, index_unique="-")
    cells.obs["unit"] = np.tile(units.obs_names, 3)
    cells.obsm["spatial"] = np.tile(units.obsm["spatial"], (3, 1))
    before = cells.X.copy()
    a = spacon.tl.coupling(cells, conn, unit_key="unit", n_perm=50, seed=4)
    b = spacon.tl.coupling(units, conn, n_perm=50, seed=4)
    pd.testing.assert_frame_equal(a, b)
    np.testing.assert_array_equal(cells.X, before)
    assert cells.uns["spacon_coupling"] is a


def test_a_connectivity_file_path_is_read(tmp_path):
    """As pp.connectome_graph does, coupling takes a path (it failed with AttributeError)."""
    units, conn = grid_units(seed=2, coupled=True, n_side=7)
    spacon.io.save_npz(tmp_path / "c.npz", conn.matrix, conn.labels)
    for path in (tmp_path / "c.npz", str(tmp_path / "c.npz")):
        pd.testing.assert_frame_equal(spacon.tl.coupling(units, path, n_perm=20, seed=1),
                                      spacon.tl.coupling(units, conn, n_perm=20, seed=1))


def test_connected_pairs_and_directed_matrices():
    adata, conn = grid_units(seed=1, n_side=6)
    m = conn.matrix.toarray()
    m[m < np.quantile(m, 0.7)] = 0
    sym = spacon.tl.coupling(adata, Connectivity(m, conn.labels), pairs="connected", n_perm=0)
    assert sym.loc[0, "n_pairs"] == np.count_nonzero(np.triu(m, 1))
    directed = np.triu(m, 1)  # one direction only: every ordered pair counts
    row = spacon.tl.coupling(adata, Connectivity(directed, conn.labels), n_perm=0).iloc[0]
    assert row["n_pairs"] == adata.n_obs * (adata.n_obs - 1)


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "kendall"}, "method must be"),
    ({"pairs": "strong"}, "pairs must be"),
    ({"n_perm": -1}, "n_perm must be"),
    ({"min_pairs": 0}, "min_pairs must be"),
    ({"groupby": "layer"}, "no 'layer'"),
    ({"unit_key": "voxel"}, "no unit column 'voxel'"),
    ({"spatial_key": "xy"}, "no 'xy' coordinates"),
])
def test_bad_arguments(kwargs, message):
    adata, conn = grid_units(n_side=5)
    with pytest.raises(SpaconInputError, match=message):
        spacon.tl.coupling(adata, conn, **kwargs)


def test_too_few_units_or_genes():
    adata, conn = grid_units(n_side=5)
    small = adata[:3].copy()
    with pytest.raises(SpaconInputError, match="at least 4 units"):
        spacon.tl.coupling(small, Connectivity(conn.matrix[:3, :3], conn.labels[:3]))
    flat = adata[:, :2].copy()
    with pytest.raises(SpaconInputError, match="at least 3 genes"):
        spacon.tl.coupling(flat, conn)


def test_plot():
    adata, conn = grid_units(seed=0, coupled=True, n_side=8)
    table = spacon.tl.coupling(adata, conn, groupby="module", n_perm=20)
    fig = spacon.pl.coupling(table)
    assert len(fig.axes[0].patches) == 2 * len(table)
    import matplotlib.figure

    caller = matplotlib.figure.Figure()
    ax = caller.subplots()
    assert spacon.pl.coupling(table, ax=ax) is ax and len(ax.patches) == 2 * len(table)


def test_evaluate_coupling_command(sim_inputs, tmp_path, capsys):
    from spacon.cli import main

    out = tmp_path / "coupling"
    args = ["evaluate", "coupling", "--adata", str(sim_inputs / "synthetic_brain.h5ad"),
            "--connectivity", str(sim_inputs / "connectome.npz"), "--unit-key", "unit",
            "--groupby", "module", "--n-perm", "20", "--out", str(out)]
    assert main(args) == 0
    table = pd.read_csv(out / "coupling.csv")
    assert list(table.columns) == spacon.tl._coupling.COLUMNS
    modules = sorted(ad.read_h5ad(sim_inputs / "synthetic_brain.h5ad").obs["module"].unique())
    assert list(table["scope"]) == ["all", *modules]
    assert (out / "coupling.png").stat().st_size > 1000
    assert "p_spatial" in capsys.readouterr().out
    assert main(args) == 2  # coupling.csv exists: refused without --overwrite
    assert main(args[:4] + args[6:-1] + [str(tmp_path / "x")]) == 2  # no --connectivity
    assert not (tmp_path / "x").exists()
    a = ad.read_h5ad(sim_inputs / "synthetic_brain.h5ad")
    assert "counts" not in a.layers  # the input file is untouched


@pytest.mark.filterwarnings("default::spacon._errors.SpaconWarning")  # shown, as for a user
def test_coupling_command_on_counts_with_no_normalize_warns_once_in_flags(sim_inputs, tmp_path,
                                                                          capsys):
    from spacon.cli import main

    assert main(["evaluate", "coupling", "--adata", str(sim_inputs / "synthetic_brain.h5ad"),
                 "--connectivity", str(sim_inputs / "connectome.npz"), "--unit-key", "unit",
                 "--no-normalize", "--n-perm", "5", "--out", str(tmp_path / "c")]) == 0
    err = capsys.readouterr().err
    assert err.count("looks like raw counts") == 1 and "drop --no-normalize" in err, err
    assert "spacon.pp.normalize" not in err


def test_evaluate_coupling_checks_its_output_and_config_before_the_work(sim_inputs, tmp_path,
                                                                        capsys, monkeypatch):
    from spacon.cli import main

    def never(*args, **kwargs):
        raise AssertionError("the surrogates ran before --out was checked")

    monkeypatch.setattr(spacon.tl, "coupling", never)
    (tmp_path / "a_file").write_text("")
    data = ["--adata", str(sim_inputs / "synthetic_brain.h5ad"), "--connectivity",
            str(sim_inputs / "connectome.npz"), "--unit-key", "unit"]
    assert main(["evaluate", "coupling", *data, "--out", str(tmp_path / "a_file")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    (tmp_path / "c.toml").write_text('method = "pearson"\n')
    assert main(["evaluate", "coupling", *data, "--config", str(tmp_path / "c.toml"),
                 "--out", str(tmp_path / "c")]) == 2
    assert "--method spearman or pearson" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
    (tmp_path / "bad.csv").write_text("not,a\nmatrix\n")
    bad = [*data[:2], "--connectivity", str(tmp_path / "bad.csv"), *data[4:]]
    assert main(["evaluate", "coupling", *bad, "--out", str(tmp_path / "n1" / "n2" / "o")]) == 2
    assert not (tmp_path / "n1").exists()  # no folder it made is left


def test_too_few_pairs_give_nan_rows():
    adata, conn = grid_units(n_side=5)
    m = conn.matrix.toarray()
    m[:] = 0
    m[0, 1] = m[1, 0] = 1.0  # one connected pair
    row = spacon.tl.coupling(adata, Connectivity(m, conn.labels), pairs="connected",
                             n_perm=5).iloc[0]
    assert row["n_pairs"] == 1 and np.isnan(row["r"]) and np.isnan(row["p_spatial"])


def test_spearman_with_ties_matches_scipy_on_directed_pairs():
    # a directed matrix: every co-expression value appears twice (i, j) and (j, i)
    adata, conn = grid_units(seed=4, coupled=True, n_side=6)
    m = conn.matrix.toarray()
    directed = m * (1 + np.random.default_rng(0).random(m.shape))
    np.fill_diagonal(directed, 0)
    table = spacon.tl.coupling(adata, Connectivity(directed, conn.labels), groupby="module",
                               n_perm=0)
    i, j = np.nonzero(~np.eye(adata.n_obs, dtype=bool))
    co = spacon.tl.coexpression(np.asarray(adata.X, dtype=np.float64))[i, j]
    module = adata.obs["module"].to_numpy()
    for _, row in table.iterrows():
        keep = np.ones(len(i), bool) if row["scope"] == "all" else \
            (module[i] == row["scope"]) | (module[j] == row["scope"])
        assert row["r"] == pytest.approx(stats.spearmanr(co[keep], directed[i, j][keep])[0],
                                         abs=1e-12)


def test_undefined_statistic_has_no_p_value():
    adata, conn = grid_units(n_side=6)
    binary = (conn.matrix.toarray() > 0.3).astype(float)  # constant over connected pairs
    row = spacon.tl.coupling(adata, Connectivity(binary, conn.labels), pairs="connected",
                             n_perm=20).iloc[0]
    assert np.isnan(row["r"]) and np.isnan(row["p_spatial"]) and np.isnan(row["p_mantel"])


def test_partial_correlation_with_few_pairs_does_not_absorb_the_data():
    rng = np.random.default_rng(0)
    # 40 pairs used to fill 20 bins x 2 parameters exactly; now 4 bins of 10
    assert spacon.tl._coupling.DistanceTrend(rng.random(40)).bins.max() == 3
    x, y, d = rng.normal(size=(3, 40))
    assert abs(spacon.tl.partial_correlation(x, y, d)) < 0.5
    y2 = x + 0.1 * rng.normal(size=40)
    assert spacon.tl.partial_correlation(x, y2, d) > 0.9


def test_symmetry_does_not_depend_on_scale():
    adata, conn = grid_units(n_side=5)
    tiny = np.triu(conn.matrix.toarray(), 1) * 1e-9
    row = spacon.tl.coupling(adata, Connectivity(tiny, conn.labels), n_perm=0).iloc[0]
    assert row["n_pairs"] == adata.n_obs * (adata.n_obs - 1)


def test_bad_values_and_groups():
    adata, conn = grid_units(n_side=5)
    bad = adata.copy()
    bad.X[0, 0] = np.nan
    with pytest.raises(SpaconInputError, match="NaN or infinite"):
        spacon.tl.coupling(bad, conn)
    missing = adata.copy()
    missing.obs["module"] = missing.obs["module"].where(np.arange(missing.n_obs) > 0)
    with pytest.raises(SpaconInputError, match="1 cells have no value"):
        spacon.tl.coupling(missing, conn, groupby="module")
    for value in ("a", True, 2.5):
        with pytest.raises(SpaconInputError, match="must be an integer"):
            spacon.tl.coupling(adata, conn, min_pairs=value)
        with pytest.raises(SpaconInputError, match="must be an integer"):
            spacon.tl.coupling(adata, conn, n_perm=value)


def test_cells_are_not_units(monkeypatch):
    adata, conn = grid_units(n_side=5)
    monkeypatch.setattr(spacon.tl._coupling, "MAX_UNITS", 10)
    with pytest.raises(SpaconInputError, match="pool cells into regions"):
        spacon.tl.coupling(adata, conn)


def test_evaluate_never_writes_over_its_input(sim_inputs, tmp_path, capsys):
    import shutil

    from spacon.cli import main

    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(sim_inputs / "connectome.npz", out / "coupling.csv")  # named like the output
    before = (out / "coupling.csv").read_bytes()
    assert main(["evaluate", "coupling", "--adata", str(sim_inputs / "synthetic_brain.h5ad"),
                 "--connectivity", str(out / "coupling.csv"), "--unit-key", "unit",
                 "--n-perm", "5", "--out", str(out), "--overwrite"]) == 2
    assert "would be overwritten" in capsys.readouterr().err
    assert (out / "coupling.csv").read_bytes() == before
    shutil.copy(sim_inputs / "synthetic_brain.h5ad", out / "metrics.json")
    assert main(["evaluate", "connectivity", "--adata", str(out / "metrics.json"),
                 "--connectivity", str(sim_inputs / "connectome.npz"), "--unit-key", "unit",
                 "--radius", "700", "--out", str(out), "--overwrite"]) == 2
    assert "would be overwritten" in capsys.readouterr().err
