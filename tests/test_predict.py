"""Connectivity prediction: leakage-free folds, hand-checked metrics, the evaluate command."""

import json
import re
import warnings

import anndata as ad
import numpy as np
import pytest
import torch

import spacon
from spacon import SpaconInputError
from spacon.cli import main
from spacon.tl import _predict, _ridge
from spacon.tl._predict import auroc_rows, connected_targets, pearson_rows
from spacon.tl._ridge import choose_alpha, ridge_fit, ridge_predict


@pytest.fixture
def prepared(brain_with_graph):
    return brain_with_graph


def test_pearson_and_auroc_against_hand_computed_values():
    pred = np.array([[1.0, 2, 3], [3, 2, 1], [1, 2, 4]])
    true = np.array([[2.0, 4, 6], [1, 2, 3], [1, 1, 1]])
    r = pearson_rows(pred, true)
    assert r[0] == pytest.approx(1.0) and r[1] == pytest.approx(-1.0) and np.isnan(r[2])
    # a flat prediction of a row that varies tells nothing: r 0, not left out of the mean
    flat = pearson_rows(np.array([[2.0, 2, 2], [1, 1, 1]]), np.array([[1.0, 2, 3], [1, 1, 1]]))
    assert flat[0] == 0.0 and np.isnan(flat[1])
    assert np.isnan(pearson_rows(np.array([[np.nan, 1, 2]]), np.array([[1.0, 2, 3]]))[0])
    # sklearn's documented example: AUROC 0.75; ties count half; one class only -> NaN
    score = np.array([[0.1, 0.4, 0.35, 0.8], [1, 1, 1, 1], [1, 2, 3, 4]])
    connected = np.array([[0, 0, 1, 1], [1, 0, 1, 0], [1, 1, 1, 1]], dtype=bool)
    auc = auroc_rows(score, connected)
    assert auc[0] == pytest.approx(0.75) and auc[1] == pytest.approx(0.5) and np.isnan(auc[2])
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    s, c = rng.random((5, 40)), rng.random((5, 40)) > 0.6
    ours = auroc_rows(s, c)
    assert np.allclose(ours, [roc_auc_score(ci, si) for si, ci in zip(s, c)])


def test_folds_by_section_are_runs_of_sections_and_keep_units_whole(prepared):
    adata, _ = prepared
    fold = spacon.tl.spatial_folds(adata, 2, section_key="section", unit_key="unit")
    codes, _ = spacon.pp.section_codes(adata, "section")
    units = adata.obs["unit"].astype(str).to_numpy()
    for u in np.unique(units):
        assert len(np.unique(fold[units == u])) == 1, u
    # before unit assignment, folds are contiguous runs of sections
    plain = spacon.tl.spatial_folds(adata, 2, section_key="section")
    assert (np.diff(plain[np.argsort(codes, kind="stable")]) >= 0).all()
    assert set(plain) == {0, 1}


def test_folds_by_blocks_are_spatially_compact(prepared):
    adata, _ = prepared
    fold = spacon.tl.spatial_folds(adata, 3)
    xy = adata.obsm["spatial"]
    centres = np.array([xy[fold == f].mean(0) for f in range(3)])
    spread = np.mean([np.linalg.norm(xy[fold == f] - centres[f], axis=1).mean() for f in range(3)])
    assert spread < np.linalg.norm(xy - xy.mean(0), axis=1).mean()
    with pytest.raises(SpaconInputError, match="folds must be a whole number >= 2"):
        spacon.tl.spatial_folds(adata, 1)


def test_folds_and_position_bumps_do_not_depend_on_the_rows_order(prepared):
    """k-means++ draws its first centres by row: the same cells in another order must still
    get the same blocks and the same position features (the human regions' position r moved
    0.595 -> 0.625 with the rows permuted before)."""
    adata, _ = prepared
    perm = np.random.default_rng(3).permutation(adata.n_obs)
    for kwargs in ({}, {"unit_key": "unit"}, {"mirror_axis": 0}):
        fold = spacon.tl.spatial_folds(adata, 3, **kwargs)
        again = spacon.tl.spatial_folds(adata[perm].copy(), 3, **kwargs)
        assert np.array_equal(again, fold[perm]), kwargs
    # points spread evenly in a cube: k-means has many near-equal optima, and which one it
    # found depended on the rows' order (half the points changed fold)
    rng = np.random.default_rng(0)
    cube = ad.AnnData(np.zeros((300, 2), np.float32), obsm={"spatial": rng.random((300, 3))})
    shuffled = rng.permutation(300)
    assert np.array_equal(spacon.tl.spatial_folds(cube[shuffled].copy(), 5),
                          spacon.tl.spatial_folds(cube, 5)[shuffled])
    coords = adata.obsm["spatial"].astype(np.float64)
    train = np.arange(adata.n_obs) % 3 > 0
    basis = _predict.position_basis(coords, train, 0)
    assert np.allclose(_predict.position_basis(coords[perm], train[perm], 0), basis[perm],
                       rtol=0, atol=1e-12)
    # more training cells than the bumps' k-means takes: the subsample is drawn by place too
    many = rng.random((21_000, 2))
    shuffled = rng.permutation(len(many))
    some = np.arange(len(many)) < 100
    assert np.allclose(_predict.position_basis(many[shuffled], np.ones(len(many), bool), 0)[
        some], _predict.position_basis(many, np.ones(len(many), bool), 0)[shuffled][some],
        rtol=0, atol=1e-12)


@pytest.mark.parametrize("code", [0, 3])
def test_training_never_sees_held_out_connectivity(prepared, monkeypatch, code):
    """Neither SpaCon's training nor the ridge penalty's inner cross-validation sees a
    held-out cell: SpaCon's connectome has no edge to or from them, and every ridge fit or
    inner validation uses training cells only (held-out cells are predicted once, at the end).
    With the auxiliary connectivity code (``code`` components) its target is made of training
    rows without held-out columns, and held-out cells are out of its loss."""
    adata, conn = prepared
    seen, fits, predictions, objectives = [], [], [], []
    original_train = spacon.SpaCon.train
    original_fit, original_predict = _ridge.ridge_fit, _ridge.ridge_predict

    def spy(self, *args, **kwargs):
        seen.append(self.data.connectome)
        objectives.append(kwargs.get("auxiliary"))
        return original_train(self, *args, **kwargs)

    class CodeSpy(spacon.model.ConnectivityCodeObjective):
        def __init__(self, profiles, known, *args, **kwargs):
            self.spy_profiles, self.spy_known = profiles.copy(), np.asarray(known).copy()
            super().__init__(profiles, known, *args, **kwargs)

    monkeypatch.setattr(spacon.model, "ConnectivityCodeObjective", CodeSpy)

    def fit_spy(x, y, fit_rows):
        assert y.shape[0] == len(fit_rows)
        fits.append((len(seen) - 1, np.asarray(fit_rows)))
        return original_fit(x, y, fit_rows) | {"spy_rows": np.asarray(fit_rows)}

    def predict_spy(fit, x, rows, alpha):
        predictions.append((len(seen) - 1, fit["spy_rows"], np.asarray(rows)))
        return original_predict(fit, x, rows, alpha)

    monkeypatch.setattr(spacon.SpaCon, "train", spy)
    monkeypatch.setattr(_ridge, "ridge_fit", fit_spy)
    monkeypatch.setattr(_ridge, "ridge_predict", predict_spy)
    methods = ("spacon", "genes", "position", "null")
    result = spacon.tl.predict_connectivity(
        adata, conn, unit_key="unit", folds=2, section_key="section", threshold=0.4,
        methods=methods, model_kwargs={"hidden_dims": (16, 8, 4)},
        train_kwargs={"max_steps": 3, "batch_size": 200, **({"mode": "full"} if code else {})},
        connectivity_code=code)
    fold = adata.uns["spacon_connectivity_prediction"]["folds"]
    units = spacon.io.positions_in(adata.obs["unit"], conn.labels)
    for f, objective in enumerate(objectives):
        assert (objective is None) == (code == 0)
        if objective is not None:
            test = fold == f
            assert not objective.spy_known[test].any() and objective.spy_known[~test].all()
            assert objective.spy_profiles[np.flatnonzero(test)].nnz == 0
            assert objective.spy_profiles[:, np.unique(units[test])].nnz == 0
            assert not objective.known[torch.from_numpy(test)].any()
            assert (objective.code[torch.from_numpy(test)] == 0).all()
    assert adata.uns["spacon_connectivity_prediction"]["predictor"] == "ridge"
    assert len(seen) == 2
    for f, graph in enumerate(seen):
        test = np.flatnonzero(fold == f)
        assert (graph.degree(test) == 0).all()  # held-out cells receive nothing
        target, source = graph.neighbors(np.flatnonzero(fold != f))
        assert not np.isin(source, test).any()  # and send nothing
    for f in range(2):
        test = np.flatnonzero(fold == f)
        fit_rows = [rows for g, rows in fits if g == f]
        assert len(fit_rows) >= 3 * 3  # per feature space: >= 2 inner fits and the final one
        assert not any(np.isin(rows, test).any() for rows in fit_rows)
        calls = [(fitted, rows) for g, fitted, rows in predictions if g == f]
        final = [rows for fitted, rows in calls if np.isin(rows, test).all()]
        inner = [(fitted, rows) for fitted, rows in calls if not np.isin(rows, test).all()]
        # held-out cells are predicted by the final fits only (the null reuses SpaCon's)
        assert np.array_equal(np.unique(np.concatenate(final)), test)
        assert len(inner) >= 3 * 2 * len(_ridge.RELATIVE_ALPHAS)
        for fitted, rows in inner:
            assert not np.isin(rows, test).any() and not np.isin(rows, fitted).any()
    assert set(result) == set(methods)
    for m in result.values():
        assert -1 <= m["pearson_r"] <= 1 and 0 <= m["auroc"] <= 1 and m["mse"] >= 0
        assert len(m["per_fold"]["pearson_r"]) == 2
    assert len(result["genes"]["per_fold"]["ridge_alpha"]) == 2


def test_position_basis_lets_ridge_fit_a_surface_not_a_plane(rng):
    """Connectivity that peaks in the middle of the tissue: a plane through the coordinates
    cannot follow it, ridge on the Gaussian bumps can, also on a held-out band."""
    import scipy.sparse as sp

    coords = rng.uniform(0, 10, size=(2000, 2))
    target = np.exp(-((coords - 5) ** 2).sum(axis=1) / 4)[:, None] * [1.0, 0.5]
    train = ~((coords[:, 0] > 4) & (coords[:, 0] < 5))  # a band through the peak held out
    groups = (coords[train, 1] // 2.5).astype(int)
    y = sp.csr_matrix(target[train])
    error = {}
    for name, f in (("plane", coords), ("bumps", _predict.position_basis(coords, train, 0))):
        f = _predict._standardise(f, train)
        fit_rows = np.flatnonzero(train)
        alpha = choose_alpha(f, y, fit_rows, groups)
        p = ridge_predict(ridge_fit(f, y, fit_rows), f, np.flatnonzero(~train), alpha)
        error[name] = float(((p - target[~train]) ** 2).mean())
    assert error["bumps"] < 0.2 * error["plane"], error
    assert _predict.position_basis(coords, train, 0).shape == (2000, 2 + _predict.POSITION_CENTRES)
    assert np.array_equal(_predict.position_basis(coords[:3], np.ones(3, bool), 0), coords[:3])


def test_ridge_matches_scikit_learn():
    import scipy.sparse as sp
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GroupKFold

    rng = np.random.default_rng(0)
    for n, p in ((40, 6), (12, 30)):  # more rows than features, and fewer (the dual form)
        x = rng.normal(size=(n + 5, p))
        y = x[:, :3] @ rng.normal(size=(3, 4)) + rng.normal(size=(n + 5, 4)) + 2.0
        y[y < 1.5] = 0
        fit, pred = np.arange(n), np.arange(n, n + 5)
        for targets in (y[fit], sp.csr_matrix(y[fit])):  # sparse targets give the same fit
            fitted = ridge_fit(x, targets, fit)
            for alpha in (0.1, 10.0):
                theirs = Ridge(alpha=alpha).fit(x[fit], y[fit]).predict(x[pred])
                assert np.allclose(ridge_predict(fitted, x, pred, alpha), theirs, atol=1e-8)
    # the penalty: the one of the grid with the smallest grouped-CV squared error
    x = rng.normal(size=(60, 8))
    y = x @ rng.normal(size=(8, 5)) + 3 * rng.normal(size=(60, 5))
    fit, groups = np.arange(50), np.repeat(np.arange(5), 10)
    alpha = choose_alpha(x, y[fit], fit, groups)
    xc = x[fit] - x[fit].mean(axis=0)
    grid = (xc**2).sum() / min(xc.shape) * _ridge.RELATIVE_ALPHAS
    errors = []
    for a in grid:
        err = 0.0
        for inner_fit, inner_val in GroupKFold(5).split(x[fit], groups=groups):
            m = Ridge(alpha=a).fit(x[inner_fit], y[inner_fit])
            err += ((m.predict(x[inner_val]) - y[inner_val]) ** 2).sum()
        errors.append(err)
    assert alpha == pytest.approx(grid[int(np.argmin(errors))])
    assert 0 < np.argmin(errors) < len(grid) - 1  # an interior optimum: the grid is wide enough
    # blocks of rows cover every row once, each within the bound on dense values
    blocks = _ridge.row_blocks(10, 7, max_values=20)
    assert [len(b) for b in blocks] == [2] * 5 and np.array_equal(np.concatenate(blocks),
                                                                   np.arange(10))


def test_connected_targets_follow_threshold_and_top_k():
    m = np.array([[0.0, 0.9, 0.5, 0.2, 0.1],
                  [0.3, 0.0, 0.8, -0.7, 0.6],
                  [0.1, 0.2, 0.0, 0.3, 0.25]])
    conn = spacon.io.Connectivity(np.vstack([m, np.zeros((2, 5))]))
    kept, rule = connected_targets(conn, top_k=2)
    assert (kept.toarray()[:3] > 0).tolist() == [[0, 1, 1, 0, 0], [0, 0, 1, 0, 1],
                                                 [0, 0, 0, 1, 1]]
    assert rule["top_k"] == 2 and "2 strongest" in rule["description"]
    kept, rule = connected_targets(conn, threshold=0.28, top_k=2, negative="absolute")
    assert (kept.toarray()[:3] > 0).tolist() == [[0, 1, 1, 0, 0], [0, 0, 1, 1, 0],
                                                 [0, 0, 0, 1, 0]]
    kept, rule = connected_targets(conn)
    assert (kept.toarray()[:3] > 0).sum() == 11 and rule["top_k"] is None
    kept, rule = connected_targets(conn, top_k=1, symmetrize=True)  # kept either way
    assert (kept.toarray() > 0).tolist()[:3] == [[0, 1, 0, 0, 0], [1, 0, 1, 0, 0],
                                                 [0, 1, 0, 1, 0]]
    assert rule["symmetrize"] and "either direction" in rule["description"]


def test_auroc_counts_the_top_k_targets_as_connected(prepared, monkeypatch):
    adata, conn = prepared
    rows_seen = []

    def spy(score, connected):
        rows_seen.append(connected.sum(axis=1))
        return auroc_rows(score, connected)

    monkeypatch.setattr(_predict, "auroc_rows", spy)
    dense = conn.matrix.toarray()
    res = spacon.tl.predict_connectivity(adata, conn, unit_key="unit", folds=2,
                                         section_key="section", top_k=3, predictor="knn",
                                         methods=("position",))
    counts = np.concatenate(rows_seen)
    positives = np.minimum((dense > 0).sum(axis=1), 3)
    assert set(counts) <= set(positives) and counts.max() == 3  # not every positive entry
    assert ((dense > 0).sum(axis=1) > 3).all()
    info = adata.uns["spacon_connectivity_prediction"]
    assert info["connected"]["top_k"] == 3 and info["predictor"] == "knn"
    assert "ridge_alpha" not in res["position"]["per_fold"]


def test_a_split_unit_is_refused(prepared):
    adata, conn = prepared
    adata.obs["held"] = np.arange(adata.n_obs) % 2 == 0  # every unit split in two
    with pytest.raises(SpaconInputError, match="would leak; hold out whole units"):
        spacon.tl.predict_connectivity(adata, conn, unit_key="unit", holdout_key="held",
                                       methods=("position",))


@pytest.mark.slow
def test_spacon_and_position_beat_the_spatial_null():
    """Connectivity in the simulator follows regions, which are spatially contiguous and carry
    marker genes: spatial interpolation and SpaCon's spatial embedding must both beat
    predictions shifted onto other held-out cells; expression PCs, dominated by the cell types
    mixed everywhere, must not."""
    adata, conn = spacon.datasets.synthetic_brain(n_cells=3000, n_genes=150, seed=0)
    info = adata.uns["synthetic_brain"]
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, radius=info["suggested_radius"], section_key="section",
                            z_radius=info["suggested_z_radius"])
    res = spacon.tl.predict_connectivity(
        adata, conn, unit_key="unit", folds=4, section_key="section", threshold=0.4,
        model_kwargs={"hidden_dims": (32, 16, 8)}, train_kwargs={"max_steps": 30})
    r = {m: d["pearson_r"] for m, d in res.items()}
    assert r["position"] > r["null"] + 0.05
    assert r["spacon"] > r["null"] + 0.05
    assert r["expression"] < r["position"]
    # the smoothing baseline: the same PCs, averaged over space, find the regions too
    assert r["smoothed"] > r["expression"] + 0.05 and r["smoothed"] > r["null"] + 0.05
    assert res["spacon"]["auroc"] > 0.55 > res["null"]["auroc"]


def test_evaluate_connectivity_command(sim_inputs, tmp_path, capsys):
    out = tmp_path / "eval"
    args = ["evaluate", "connectivity", "--adata", str(sim_inputs / "synthetic_brain.h5ad"),
            "--connectivity", str(sim_inputs / "connectome.npz"), "--unit-key", "unit",
            "--radius", "700", "--threshold", "0.4", "--folds", "3", "--hidden-dims", "16", "8",
            "4", "--epochs", "1", "--batch-size", "300", "--out", str(out)]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["predictor"] == "ridge" and metrics["folds"] == 3
    assert metrics["connected"]["threshold"] == 0.4 and metrics["connected"]["top_k"] is None
    assert set(metrics["methods"]) == set(spacon.tl._predict.METHODS)
    for m in metrics["methods"].values():
        assert {"pearson_r", "pearson_r_sd", "auroc", "auroc_sd", "mse", "mse_sd"} <= set(m)
        assert len(m["per_fold"]["pearson_r"]) == 3
        assert len(m["per_fold"].get("ridge_alpha", [0] * 3)) == 3
    assert (out / "connectivity_prediction.png").stat().st_size > 1000
    assert "Pearson r" in capsys.readouterr().out
    # what it was computed from, so that two metrics.json can be told apart
    settings = metrics["settings"]
    assert settings["unit_key"] == "unit" and settings["radius"] == 700
    assert settings["training_per_fold"]["epochs"] == 1 and settings["seed"] == 0
    assert settings["adata"] == str((sim_inputs / "synthetic_brain.h5ad").resolve())
    assert main(args) == 2  # metrics.json exists: refused without --overwrite
    assert main(args + ["--overwrite", "--predictor", "knn"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["predictor"] == "knn"
    assert "ridge_alpha" not in metrics["methods"]["genes"]["per_fold"]
    a = ad.read_h5ad(sim_inputs / "synthetic_brain.h5ad")
    assert "X_spacon_spa" not in a.obsm  # the input file is untouched


@pytest.mark.filterwarnings("default::spacon._errors.SpaconWarning")  # shown, as for a user
def test_evaluate_connectivity_on_counts_warns_once_in_flags(sim_inputs, tmp_path, capsys):
    assert main(["evaluate", "connectivity", "--adata", str(sim_inputs / "synthetic_brain.h5ad"),
                 "--connectivity", str(sim_inputs / "connectome.npz"), "--unit-key", "unit",
                 "--radius", "700", "--threshold", "0.4", "--epochs", "1", "--folds", "2",
                 "--hidden-dims", "8", "4", "2", "--no-normalize",
                 "--out", str(tmp_path / "e")]) == 0
    err = capsys.readouterr().err
    assert err.count("looks like raw counts") == 1 and "drop --no-normalize" in err, err
    assert "spacon.pp.normalize" not in err


@pytest.mark.parametrize("mistake", [["--unit-key", "unti"], ["--threshold", "100"],
                                     ["--section-key", "sectoin"]])
def test_evaluate_connectivity_input_error_leaves_no_folder(sim_inputs, tmp_path, mistake):
    out = tmp_path / "eval"
    assert main(["evaluate", "connectivity", "--adata", str(sim_inputs / "synthetic_brain.h5ad"),
                 "--connectivity", str(sim_inputs / "connectome.npz"), "--unit-key", "unit",
                 "--radius", "700", "--threshold", "0.4", "--epochs", "1", *mistake,
                 "--out", str(out)]) == 2
    assert not out.exists()


def test_evaluate_connectivity_keeps_to_its_threads(sim_inputs, tmp_path, monkeypatch):
    import threadpoolctl
    import torch

    seen = {}

    def spy(*args, train_kwargs, **kwargs):
        seen["torch"], seen["train"] = torch.get_num_threads(), train_kwargs["threads"]
        seen["blas"] = {p["num_threads"] for p in threadpoolctl.threadpool_info()}
        raise spacon.SpaconInputError("stop here: only the settings are checked")

    monkeypatch.setattr(spacon.tl, "predict_connectivity", spy)
    assert main(["evaluate", "connectivity", "--adata", str(sim_inputs / "synthetic_brain.h5ad"),
                 "--connectivity", str(sim_inputs / "connectome.npz"), "--unit-key", "unit",
                 "--radius", "700", "--threads", "1", "--out", str(tmp_path / "e")]) == 2
    assert seen == {"torch": 1, "train": 1, "blas": {1}}


@pytest.mark.parametrize("max_genes", [2000, 300])  # genes' covariance / ARPACK
def test_expression_pcs_of_large_sparse_data_stay_sparse(monkeypatch, max_genes):
    """Sparse expression too large to make dense gets the exact principal components of the
    training cells (those of a dense PCA, up to sign) without a dense copy of the cells."""
    import tracemalloc

    import scipy.sparse as sp
    from sklearn.decomposition import PCA

    from spacon.tl import _expression_pca

    rng = np.random.default_rng(0)
    x = sp.random(20_000, 400, density=0.02, format="csr", random_state=1, dtype=np.float32)
    x.data *= 1 + 3 * (x.indices % 7 == 0)  # some genes vary more than others
    adata = ad.AnnData(x)
    train = rng.random(20_000) < 0.7
    monkeypatch.setattr(_expression_pca, "DENSE_BYTES", 0)
    monkeypatch.setattr(_expression_pca, "MAX_COVARIANCE_GENES", max_genes)
    tracemalloc.start()
    ours = _expression_pca.expression_pcs(adata, train, 10, seed=0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 0.25 * 20_000 * 400 * 8  # a quarter of one dense copy in doubles
    dense = x.toarray().astype(np.float64)
    expected = PCA(10, svd_solver="full").fit(dense[train]).transform(dense)
    sign = np.sign((ours * expected).sum(axis=0))
    np.testing.assert_allclose(ours * sign, expected, atol=1e-6 * np.abs(expected).max())


def test_genes_feature_space_keeps_highly_variable_genes(monkeypatch):
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    x = rng.poisson(rng.uniform(0.1, 5, 8), size=(50, 8)).astype(float)
    train = np.arange(50) < 30
    monkeypatch.setattr(_predict, "MAX_GENES", 3)
    top = np.sort(np.argsort(-x[train].var(axis=0))[:3])  # chosen on training cells only
    for matrix in (x, sp.csr_matrix(x)):
        assert np.allclose(_predict._expression_genes(ad.AnnData(matrix), train), x[:, top])
    a = ad.AnnData(sp.csr_matrix(x))
    a.var["highly_variable"] = [True, False, True, False, False, False, False, True]
    assert np.allclose(_predict._expression_genes(a, train), x[:, [0, 2, 7]])


def _regions(n: int = 40, seed: int = 0):
    """Regions on a line whose connectivity decays with distance (0 to itself, as in many
    connectomes), expression unrelated to it."""
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0, 100, n))
    adata = ad.AnnData(rng.gamma(2.0, 1.0, (n, 20)).astype(np.float32))
    adata.obs_names = [f"r{i}" for i in range(n)]
    adata.obsm["spatial"] = np.column_stack([x, np.zeros(n)])
    d = np.abs(x[:, None] - x[None])
    conn = 3.0 * np.exp(-d / 15.0) + 0.05 * rng.random((n, n))
    np.fill_diagonal(conn, 0.0)
    spacon.pp.spatial_graph(adata, n_neighbors=4)
    return adata, spacon.io.Connectivity(conn, np.array(adata.obs_names))


def test_the_own_target_is_not_scored_and_distance_decay_is_a_baseline():
    adata, conn = _regions()
    res = spacon.tl.predict_connectivity(adata, conn, folds=3,
                                         methods=("distance", "distance+mean", "mean"),
                                         predictor="knn")
    # connectivity that falls with distance is what the distance baselines fit: with the
    # region's own 0 left out they predict nearly every held-out row exactly
    for method in ("distance", "distance+mean"):
        assert res[method]["pearson_r"] > 0.95 and res[method]["auroc"] is None
        assert res[method]["pearson_r"] > res["mean"]["pearson_r"] + 0.3
    # two fits, not one scored twice
    assert res["distance"]["mse"] != res["distance+mean"]["mse"]
    # scored by hand over every target but the region's own
    fold = adata.uns["spacon_connectivity_prediction"]["folds"]
    dense = conn.matrix.toarray()
    held, trained = np.flatnonzero(fold == 0), np.flatnonzero(fold != 0)
    # the mean profile leaves each training row's own target out too
    mean = np.array([dense[trained[trained != j], j].mean() for j in range(len(dense))])
    r = [np.corrcoef(np.delete(mean, i), np.delete(dense[i], i))[0, 1] for i in held]
    assert np.isclose(res["mean"]["per_fold"]["pearson_r"][0], np.mean(r))


def test_the_mean_baseline_leaves_out_each_training_rows_own_target():
    # 6 units, FC-like: 1 to itself, about 0.3 to the others; the training rows' own 1s
    # raised their columns of the mean profile to about 0.53
    rng = np.random.default_rng(0)
    n = 6
    conn = 0.3 + 0.01 * rng.standard_normal((n, n))
    np.fill_diagonal(conn, 1.0)
    adata = ad.AnnData(rng.gamma(2.0, 1.0, (n, 5)).astype(np.float32))
    adata.obs_names = [f"r{i}" for i in range(n)]
    adata.obsm["spatial"] = np.column_stack([np.arange(n, dtype=float), np.zeros(n)])
    spacon.pp.spatial_graph(adata, n_neighbors=2)
    res = spacon.tl.predict_connectivity(
        adata, spacon.io.Connectivity(conn, np.array(adata.obs_names)), folds=2,
        methods=("mean",))  # ridge, but no features: no inner folds needed
    assert res["mean"]["mse"] < 0.001
    with pytest.raises(SpaconInputError, match="at least 3 are needed"):
        spacon.tl.predict_connectivity(adata[:2].copy(), np.eye(2), folds=2,
                                       methods=("mean",))


def test_repeated_region_names_are_refused():
    adata, conn = _regions()
    names = list(adata.obs_names)
    names[1] = names[0]
    adata.obs_names = names  # two regions averaged into one unit, silently, before
    for call in (lambda: spacon.tl.predict_connectivity(adata, conn, folds=3,
                                                        methods=("mean",)),
                 lambda: spacon.tl.coupling(adata, conn, n_perm=0)):
        with pytest.raises(SpaconInputError, match="cell names are not unique \\(e.g. r0\\)"):
            call()


def test_distance_plus_mean_fits_each_targets_level_and_distance_one_intercept():
    """Targets strong from everywhere (hubs) sit on their own level under the decay: the
    ``distance+mean`` fit recovers ``a exp(-d / lambda) + mean_j``; ``distance`` (levels of
    zeros) keeps one intercept, ``c = 0``."""
    from spacon.tl._predict import _distances, _fit_distance_decay

    rng = np.random.default_rng(0)
    coords = rng.uniform(0, 30, (300, 2))
    rows = np.arange(300)  # one cell per target
    level = rng.gamma(2.0, 1.0, 300)
    y = 2.0 * np.exp(-_distances(coords, coords) / 3.0) + level
    mean = (y.sum(axis=0) - np.diag(y)) / 299  # as _mean_profile: own targets left out
    decay, a, c, b = _fit_distance_decay(coords, coords, rows, rows, y, mean, seed=0)
    assert 2.5 < decay < 3.6 and a == pytest.approx(2.0, rel=0.15)
    assert c == pytest.approx(1.0, abs=0.05) and abs(b) < 0.2
    # connectivity in tiny units (e.g. fractions of 1e-11) keeps its level term
    _, a_small, c_small, _ = _fit_distance_decay(coords, coords, rows, rows, y * 1e-11,
                                                 mean * 1e-11, seed=0)
    assert c_small == pytest.approx(c, rel=1e-6) and a_small == pytest.approx(a * 1e-11, rel=1e-6)
    assert _fit_distance_decay(coords, coords, rows, rows, y, np.zeros(300), seed=0)[2] == 0.0


def test_mirror_folds_hold_out_both_hemispheres_of_a_region_together():
    import anndata as ad

    from spacon.tl._predict import spatial_folds

    rng = np.random.default_rng(0)
    left = rng.uniform([-60, -40, -30], [-5, 40, 30], (40, 3))
    right = left * [-1, 1, 1] + rng.normal(0, 0.5, (40, 3))  # each region's mirror region
    adata = ad.AnnData(np.zeros((80, 2)), obsm={"spatial": np.vstack([left, right])})
    plain = spatial_folds(adata, 4, seed=0)
    mirror = spatial_folds(adata, 4, mirror_axis=0, seed=0)
    assert (mirror[:40] == mirror[40:]).all()
    assert (plain[:40] != plain[40:]).mean() > 0.5  # the blocks split the pairs
    assert len(np.unique(mirror)) == 4
    for bad in (3, -1, 0.5, True):
        with pytest.raises(SpaconInputError, match="mirror_axis must be a coordinate column"):
            spatial_folds(adata, 4, mirror_axis=bad)
    # one stray cell far out on one side moves the middle of the range, not a given midline
    stray = ad.AnnData(np.zeros((81, 2)), obsm={"spatial": np.vstack([left, right,
                                                                      [[150, 0, 0]]])})
    given = spatial_folds(stray, 4, mirror_axis=0, midline=0.0, seed=0)
    assert (given[:40] == given[40:80]).all()
    with pytest.raises(SpaconInputError, match="midline must be a coordinate"):
        spatial_folds(adata, 4, mirror_axis=0, midline=float("nan"))


def test_dropped_negative_values_are_said_at_the_call(prepared):
    """Signed connectivity (functional correlations): the negative values dropped are counted
    in a warning that points at the caller's line, and the mirror-by-section one too."""
    from spacon import SpaconWarning
    from spacon.io import Connectivity

    adata, conn = prepared
    signed = conn.matrix.tocsr(copy=True)
    signed.data[::3] *= -1
    signed = Connectivity(signed, conn.labels)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        spacon.tl.predict_connectivity(adata, signed, unit_key="unit", folds=2,
                                       section_key="section", methods=("mean",), mirror_axis=0)
    said = [w for w in said if w.category is SpaconWarning]
    assert [str(w.message).split(" (")[0] for w in said] == [
        "mirror_axis is not applied to folds by section",
        f"{(signed.matrix.data < 0).sum():,} negative connectivity values"]
    assert {w.filename for w in said} == {__file__}


def test_options_that_would_do_nothing_say_so_before_any_training(prepared):
    import warnings

    from spacon import SpaconWarning
    from spacon.tl._predict import spatial_folds

    adata, conn = prepared
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpaconWarning)  # raised at once: nothing is trained
        with pytest.raises(SpaconWarning, match="not applied to folds by section"):
            spatial_folds(adata, 2, section_key="section", mirror_axis=0)
        with pytest.raises(SpaconWarning, match="not applied to folds by section"):
            spacon.tl.predict_connectivity(adata, conn, unit_key="unit", folds=2,
                                           section_key="section", mirror_axis=0)
        for kwargs in ({"predictor": "knn"}, {"methods": ("expression", "distance")}):
            with pytest.raises(SpaconWarning, match="nested_penalty only changes"):
                spacon.tl.predict_connectivity(adata, conn, unit_key="unit", folds=2,
                                               nested_penalty=True, **kwargs)
        # two units spread over the whole slice leave the other folds empty
        spread = adata.copy()
        spread.obs["half"] = np.where(np.arange(spread.n_obs) % 2, "odd", "even")
        with pytest.raises(SpaconWarning, match=r"only [12] of 4 folds hold cells"):
            spatial_folds(spread, 4, unit_key="half")
    assert len(np.unique(spatial_folds(adata, 2, section_key="section"))) == 2


def test_a_nested_penalty_trains_one_embedding_per_inner_fold_without_it(prepared,
                                                                         monkeypatch):
    from spacon.tl import _predict

    adata, conn = prepared
    hidden_sets = []
    real = _predict._spacon_embedding

    def spy(adata_, connectivity, rows, test, *args, **kwargs):
        hidden_sets.append(np.asarray(test).copy())
        return real(adata_, connectivity, rows, test, *args, **kwargs)

    monkeypatch.setattr(_predict, "_spacon_embedding", spy)
    res = spacon.tl.predict_connectivity(
        adata, conn, unit_key="unit", folds=2, section_key="section", methods=("spacon",),
        train_kwargs={"epochs": 1}, model_kwargs={"hidden_dims": (16, 8, 4)},
        nested_penalty=True)
    folds = adata.uns["spacon_connectivity_prediction"]["folds"]
    outer = [h for h in hidden_sets if any((h == (folds == f)).all() for f in (0, 1))]
    assert len(outer) == 2 and len(hidden_sets) > 2  # an outer model and inner ones per fold
    for h in hidden_sets:  # every inner model hides its outer fold too
        assert any((h[folds == f]).all() and h.sum() >= (folds == f).sum() for f in (0, 1))
    inner = [h for h in hidden_sets if not any((h == (folds == f)).all() for f in (0, 1))]
    assert inner
    for h in inner:  # and its inner group's cells besides
        outer_fold = next(f for f in (0, 1) if h[folds == f].all())
        assert h.sum() > (folds == outer_fold).sum()
    assert np.isfinite(res["spacon"]["pearson_r"])


def test_evaluate_connectivity_passes_mirror_folds_and_the_nested_penalty(sim_inputs, tmp_path,
                                                                          monkeypatch):
    seen = {}

    def spy(*args, mirror_axis, midline, nested_penalty, **kwargs):
        seen.update(mirror_axis=mirror_axis, midline=midline, nested_penalty=nested_penalty)
        raise spacon.SpaconInputError("stop here: only the settings are checked")

    monkeypatch.setattr(spacon.tl, "predict_connectivity", spy)
    common = ["evaluate", "connectivity", "--adata", str(sim_inputs / "synthetic_brain.h5ad"),
              "--connectivity", str(sim_inputs / "connectome.npz"), "--unit-key", "unit",
              "--radius", "700"]
    assert main([*common, "--out", str(tmp_path / "a")]) == 2
    assert seen == {"mirror_axis": None, "midline": None, "nested_penalty": False}
    assert main([*common, "--mirror-axis", "0", "--midline", "5700", "--nested-penalty",
                 "--out", str(tmp_path / "b")]) == 2
    assert seen == {"mirror_axis": 0, "midline": 5700.0, "nested_penalty": True}


def test_one_held_out_fold_shows_no_spread(monkeypatch, tmp_path, capsys):
    """--holdout-key with one fold printed '± 0.000', as if a spread had been measured."""
    import spacon._evaluate

    row = {"pearson_r": 0.25, "pearson_r_sd": 0.0, "auroc": 0.7, "auroc_sd": 0.0, "mse": 0.05,
           "mse_sd": 0.0}
    for folds in (1, 3):
        metrics = {"predictor": "ridge", "folds": folds, "connected": {"description": "top"},
                   "methods": {"spacon": row}}
        monkeypatch.setattr(spacon._evaluate, "evaluate_connectivity",
                            lambda *a, m=metrics, **k: m)
        assert main(["evaluate", "connectivity", "--adata", "a.h5ad", "--connectivity", "c.npz",
                     "--out", str(tmp_path / f"o{folds}")]) == 0
        out = capsys.readouterr().out
        assert ("±" in out) == (folds > 1)
        assert ("one held-out fold" in out) == (folds == 1)
    # a method some folds could not score (the spatial null of a fold of one unit)
    metrics["methods"]["null"] = {**row, "per_fold": {"mse": [0.05, None, 0.04]}}
    metrics["methods"]["none"] = dict.fromkeys(row)
    assert main(["evaluate", "connectivity", "--adata", "a.h5ad", "--connectivity", "c.npz",
                 "--out", str(tmp_path / "o4")]) == 0
    out = capsys.readouterr().out
    assert "(2 of 3 folds)" in out and re.search(r"none +n/a +n/a +n/a", out)


def test_the_table_ends_with_the_best_method_and_spacon_against_its_null():
    """A first-time user read 'spacon r 0.53, AUROC 0.75' as success; the same table had
    distance+mean at 0.603 and SpaCon's own shifted null at 0.53."""
    from spacon.cli import _prediction_verdict

    def row(r):
        return {"pearson_r": r}

    metrics = {"methods": {"spacon": row(0.534), "distance+mean": row(0.603),
                           "null": row(0.53), "none": row(None)},
               "settings": {"training_per_fold": {"max_steps": 120}}}
    line = _prediction_verdict(metrics)
    assert line.startswith("best Pearson r: distance+mean (0.603); spacon 0.534 is 0.069 below")
    assert "no better than its spatial null (0.530)" in line
    assert "trained 120 steps per fold" in line
    metrics["methods"]["spacon"] = row(0.7)
    metrics["settings"]["training_per_fold"] = {"epochs": 5}
    line = _prediction_verdict(metrics)
    assert line == "best Pearson r: spacon (0.700)."
    unscored = {"methods": {"null": row(None)}, "settings": {}}  # no method scored: no crash
    assert _prediction_verdict(unscored).startswith("no method could be scored")


def test_a_split_unit_in_a_later_fold_is_refused_before_any_training(prepared, monkeypatch):
    adata, conn = prepared
    units = adata.obs["unit"].astype(str)
    first = units == units.iloc[0]
    adata.obs["fold"] = np.where(first, "b", np.where(np.arange(adata.n_obs) % 2, "a", "c"))
    adata.obs.loc[first & (np.arange(adata.n_obs) % 3 == 0), "fold"] = "c"  # unit split b/c
    adata.obs.loc[units.isin(units[adata.obs["fold"] == "a"].unique()), "fold"] = "a"

    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking every fold")

    monkeypatch.setattr(_predict, "_spacon_embedding", no_training)
    with pytest.raises(SpaconInputError, match=r"fold 'b' of adata.obs\['fold'\]: 1 connect"):
        spacon.tl.predict_connectivity(adata, conn, unit_key="unit", holdout_key="fold",
                                       methods=("spacon", "position"))


def test_the_spatial_null_moves_every_held_out_cell_to_another_unit():
    from spacon.tl._predict import spatial_null_order

    x = np.column_stack([np.arange(10.0), np.zeros(10)])
    plain = spatial_null_order(x)  # half the cells along the first axis
    assert plain.tolist() == [5, 6, 7, 8, 9, 0, 1, 2, 3, 4]
    assert spatial_null_order(x, np.arange(10)[::-1]).tolist() == plain.tolist()
    big = np.array(["a"] * 8 + ["b"] * 2)  # the cells' shift would keep a-cells on a
    assert (big[plain] == big).any()
    perm = spatial_null_order(x, big)
    assert (big[perm] != big).all() and sorted(set(perm[big == "a"])) == [8, 9]
    assert perm[big == "b"].tolist() == [0, 1]  # the cells of the same rank along the axis
    assert spatial_null_order(x, np.array(["a"] * 10)) is None  # nothing to move to


def test_the_spatial_null_of_a_fold_of_one_unit_is_left_out_with_a_warning(prepared):
    adata, conn = prepared
    units = adata.obs["unit"].astype(str)
    adata.obs["held"] = units == units.iloc[0]
    with pytest.warns(spacon.SpaconWarning, match="null is left out of 1 of the 1 folds"):
        res = spacon.tl.predict_connectivity(
            adata, conn, unit_key="unit", holdout_key="held", methods=("spacon", "null"),
            model_kwargs={"hidden_dims": (8, 4, 2)}, train_kwargs={"max_steps": 2})
    assert res["null"]["pearson_r"] is None and res["spacon"]["pearson_r"] is not None
    assert res["null"]["per_fold"]["pearson_r"] == [None]  # JSON's null, not a bare NaN


def test_metrics_json_holds_no_bare_nan():
    from spacon._evaluate import _json_numbers

    text = json.dumps(_json_numbers({"a": [np.nan, np.float64(0.5), None], "b": np.inf}),
                      allow_nan=False)
    assert json.loads(text) == {"a": [None, 0.5, None], "b": None}
