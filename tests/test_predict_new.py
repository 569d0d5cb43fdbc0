"""Connectivity of new tissue: the ridge map fit on training cells, SpaCon.predict_connectivity
and ``spacon predict``."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import spacon
from spacon import SpaconInputError
from spacon.cli import main
from spacon.io import positions_in, read_profiles
from spacon.model._connectivity_map import ConnectivityMap, principal_axes
from spacon.tl._predict import pearson_rows, spatial_null_order
from spacon.tl._ridge import ridge_fit, ridge_predict, ridge_weights


def test_ridge_weights_give_ridge_predictions(rng):
    for n, p in ((40, 5), (6, 9)):  # the primal and the dual form
        x, y = rng.normal(size=(n, p)), rng.normal(size=(n, 3))
        fit = ridge_fit(x, y[: n - 2], np.arange(n - 2))
        w, b = ridge_weights(fit, 0.7)
        assert np.allclose(x @ w + b, ridge_predict(fit, x, np.arange(n), 0.7))


def test_principal_axes_match_a_dense_svd(rng):
    import scipy.sparse as sp

    y = sp.random(60, 25, density=0.3, random_state=0, format="csr")
    axes, mean = principal_axes(y, 4)
    dense = y.toarray() - y.toarray().mean(axis=0)
    _, _, vt = np.linalg.svd(dense, full_matrices=False)
    assert np.allclose(mean, y.toarray().mean(axis=0))
    assert np.allclose(np.abs(axes @ vt[:4].T), np.eye(4), atol=1e-6)


@pytest.fixture(scope="module")
def held_out_sections():
    """A brain trained on six of its sections; the two middle ones are the new tissue."""
    adata, conn = spacon.datasets.synthetic_brain(n_cells=2400, n_genes=120, n_sections=8,
                                                  seed=0)
    info = adata.uns["synthetic_brain"]
    spacon.pp.normalize(adata)
    new = adata.obs["section"].astype(str).isin(["s003", "s004"]).to_numpy()
    train, tissue = adata[~new].copy(), adata[new].copy()
    for a in (train, tissue):
        spacon.pp.spatial_graph(a, radius=info["suggested_radius"], section_key="section",
                                z_radius=info["suggested_z_radius"])
    spacon.pp.connectome_graph(train, conn, unit_key="unit", threshold=0.4)
    model = spacon.SpaCon(train, hidden_dims=(32, 16, 8)).train(max_steps=100, progress=False)
    model.fit_connectivity_map(conn, unit_key="unit")
    return model, train, tissue, conn


def test_new_tissue_connectivity_beats_the_mean_profile_and_the_spatial_null(
        held_out_sections):
    """Held-out sections whose connectivity the model never saw: each unit's predicted profile
    correlates with its true row better than the training cells' mean profile and than the
    predictions moved to other units (the spatially-aware null)."""
    model, train, tissue, conn = held_out_sections
    profiles = model.predict_connectivity(tissue, unit_key="unit")
    assert list(profiles.columns) == list(conn.labels)
    assert set(profiles.index) == set(tissue.obs["unit"].astype(str))
    truth = conn.matrix.toarray()[positions_in(profiles.index, conn.labels)].clip(0)
    r = np.nanmean(pearson_rows(profiles.to_numpy(), truth))
    mean = conn.matrix.toarray()[positions_in(train.obs["unit"], conn.labels)].clip(0).mean(0)
    r_mean = np.nanmean(pearson_rows(np.tile(mean, (len(truth), 1)), truth))
    units = tissue.obs["unit"].astype(str).to_numpy()
    xy = np.array([tissue.obsm["spatial"][units == u].mean(axis=0) for u in profiles.index])
    r_null = np.nanmean(pearson_rows(profiles.to_numpy()[spatial_null_order(xy)], truth))
    assert r > r_mean + 0.05 and r > r_null + 0.05, (r, r_mean, r_null)
    # each cell's code is its predicted profile on the training profiles' principal axes
    cmap = model.connectivity_map
    cells = model.predict_connectivity(tissue)
    code = tissue.obsm["X_connectivity_code"]
    assert np.allclose(code, (cells.to_numpy() - cmap.profile_mean) @ cmap.components.T,
                       atol=1e-3)
    assert np.allclose(profiles.loc[units[0]], cells[units == units[0]].mean(axis=0), atol=1e-4)


def test_the_map_refuses_what_it_cannot_fit(held_out_sections):
    from spacon.io import Connectivity

    model, train, tissue, conn = held_out_sections
    signed = conn.matrix.toarray()
    signed[signed > 0.5] *= -1
    with pytest.raises(spacon.SpaconInputError, match="negative values"):
        model.fit_connectivity_map(Connectivity(signed, conn.labels), unit_key="unit",
                                   negative="error")
    with pytest.raises(spacon.SpaconInputError, match="negative="):
        model.fit_connectivity_map(conn, unit_key="unit", negative="bogus")
    with pytest.raises(spacon.SpaconInputError, match="all zero"):
        model.fit_connectivity_map(Connectivity(np.zeros((conn.n, conn.n)), conn.labels),
                                   unit_key="unit")
    with pytest.raises(spacon.SpaconInputError, match=r"cells x 8"):
        model.fit_connectivity_map(conn, unit_key="unit", embedding=np.zeros((5, 8)))
    with pytest.raises(spacon.SpaconInputError, match="n_components"):
        model.fit_connectivity_map(conn, unit_key="unit", n_components=0)
    # an identity connectome (each unit to itself only) fits: no ARPACK error
    fitted = model.connectivity_map  # the fixture's, put back for the other tests
    try:
        model.fit_connectivity_map(Connectivity(np.eye(conn.n), conn.labels), unit_key="unit")
        assert model.connectivity_map is not fitted
    finally:
        model.connectivity_map = fitted


def test_the_map_is_saved_and_loaded_with_the_model(held_out_sections, tmp_path):
    model, _, tissue, _ = held_out_sections
    model.save(tmp_path / "m")
    assert (tmp_path / "m" / "connectivity_map.npz").exists()
    loaded = spacon.SpaCon.load(tmp_path / "m", tissue.copy())
    assert isinstance(loaded.connectivity_map, ConnectivityMap)
    a = model.predict_connectivity(tissue.copy())
    b = loaded.predict_connectivity(tissue.copy())
    assert np.array_equal(a.to_numpy(), b.to_numpy()) and (a.columns == b.columns).all()
    loaded.connectivity_map = None  # a model saved without a map leaves none behind
    loaded.save(tmp_path / "m", overwrite=True)
    assert not (tmp_path / "m" / "connectivity_map.npz").exists()
    with pytest.raises(SpaconInputError, match="has no connectivity map"):
        spacon.SpaCon.load(tmp_path / "m", tissue.copy()).predict_connectivity(tissue.copy())


@pytest.fixture(scope="module")
def trained_run(sim_inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "result"
    assert main(["run", "--adata", str(sim_inputs / "synthetic_brain.h5ad"), "--connectivity",
                 str(sim_inputs / "connectome.npz"), "--unit-key", "unit", "--radius", "700",
                 "--threshold", "0.4", "--epochs", "2", "--hidden-dims", "16", "8", "4",
                 "--quiet", "--figures", "none", "--no-report", "--out", str(out)]) == 0
    return out


def test_predict_command_round_trip(sim_inputs, trained_run, tmp_path, capsys):
    out = tmp_path / "new"
    assert main(["predict", "--model", str(trained_run), "--adata",
                 str(sim_inputs / "synthetic_brain.h5ad"), "--unit-key", "unit",
                 "--out", str(out)]) == 0
    assert "predicted_connectivity.npz" in capsys.readouterr().out
    profiles = read_profiles(out / "predicted_connectivity.npz")
    conn = spacon.io.read_connectivity(sim_inputs / "connectome.npz")
    assert list(profiles.columns) == list(conn.labels)
    result = ad.read_h5ad(out / "result.h5ad")
    assert set(profiles.index) == set(result.obs["unit"].astype(str))
    assert result.obsm["X_connectivity_code"].shape[0] == result.n_obs
    assert np.isfinite(profiles.to_numpy()).all()
    # the same through the API, on the same data prepared by hand
    a = ad.read_h5ad(sim_inputs / "synthetic_brain.h5ad")
    spacon.pp.normalize(a)
    spacon.pp.spatial_graph(a, radius=700)
    api = spacon.SpaCon.load(trained_run / "model", a).predict_connectivity(a, unit_key="unit")
    assert np.allclose(api.loc[profiles.index].to_numpy(), profiles.to_numpy(), atol=1e-5)
    assert main(["predict", "--model", str(trained_run / "model"), "--adata",
                 str(sim_inputs / "synthetic_brain.h5ad"), "--out", str(out)]) == 2  # exists
    assert "X_spacon_spa" not in ad.read_h5ad(sim_inputs / "synthetic_brain.h5ad").obsm


def _refused(args, capsys, out, message):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


def test_predict_command_refuses_bad_input_and_writes_nothing(sim_inputs, trained_run,
                                                               tmp_path, capsys):
    h5ad = sim_inputs / "synthetic_brain.h5ad"
    out = tmp_path / "new"
    base = ["predict", "--adata", str(h5ad), "--out", str(out)]
    _refused([*base, "--model", str(tmp_path / "nowhere")], capsys, out,
             "no spacon model in")
    _refused([*base, "--model", str(trained_run), "--unit-key", "voxel"], capsys, out,
             "--unit-key 'voxel' is not a column")
    other = ad.read_h5ad(h5ad)
    other.var_names = [f"{g}_x" if i < 3 else g for i, g in enumerate(other.var_names)]
    other.write_h5ad(tmp_path / "other.h5ad")
    _refused(["predict", "--adata", str(tmp_path / "other.h5ad"), "--out", str(out),
              "--model", str(trained_run)], capsys, out, "3 missing (e.g. ")
    no_map = tmp_path / "no_map"
    spacon.SpaCon.load(trained_run / "model", _prepared(h5ad)).save(no_map)
    (no_map / "connectivity_map.npz").unlink()
    _refused([*base, "--model", str(no_map)], capsys, out, "has no connectivity map")
    # the new tissue where the prediction goes, with --overwrite: refused, left as it was
    import shutil

    inside = tmp_path / "inside"
    inside.mkdir()
    shutil.copy(h5ad, inside / "result.h5ad")
    before = (inside / "result.h5ad").read_bytes()
    assert main(["predict", "--adata", str(inside / "result.h5ad"), "--out", str(inside),
                 "--overwrite", "--model", str(trained_run)]) == 2
    assert "the input would be overwritten" in capsys.readouterr().err
    assert (inside / "result.h5ad").read_bytes() == before


def test_predict_and_embed_refuse_a_mistyped_section_key_and_the_model_folder(
        sim_inputs, trained_run, tmp_path, capsys):
    h5ad = sim_inputs / "synthetic_brain.h5ad"
    for command in (["predict", "--unit-key", "unit"], ["embed", "--alpha", "0"]):
        out = tmp_path / command[0]
        base = [*command, "--model", str(trained_run), "--adata", str(h5ad)]
        # a typo was ignored: a graph without sections, and profiles that differ
        _refused([*base, "--section-key", "sectoin", "--out", str(out)], capsys, out,
                 "--section-key sectoin: the data have no such obs column")
        # the run's own folder: the new tissue's result.h5ad would replace the run's
        before = (trained_run / "result.h5ad").read_bytes()
        for folder in (trained_run, trained_run / "model"):
            assert main([*base, "--out", str(folder), "--overwrite"]) == 2
            assert "is the folder of the model" in capsys.readouterr().err
        assert (trained_run / "result.h5ad").read_bytes() == before
    # a model saved on its own: its parent folder is any folder
    project = tmp_path / "project"
    spacon.SpaCon.load(trained_run / "model", _prepared(h5ad)).save(project / "mymodel")
    assert main(["predict", "--model", str(project / "mymodel"), "--adata", str(h5ad),
                 "--unit-key", "unit", "--out", str(project), "--overwrite"]) == 0
    assert (project / "predicted_connectivity.npz").exists()


def test_counts_with_no_normalize_are_refused_in_the_command_s_words(sim_inputs, trained_run,
                                                                     tmp_path, capsys):
    for command in (["predict", "--unit-key", "unit"], ["embed", "--alpha", "0"]):
        out = tmp_path / command[0]
        _refused([*command, "--model", str(trained_run), "--adata",
                  str(sim_inputs / "synthetic_brain.h5ad"), "--no-normalize", "--out", str(out)],
                 capsys, out, "drop --no-normalize to have it normalised")


@pytest.mark.filterwarnings("default::spacon._errors.SpaconWarning")
def test_new_tissue_in_other_units_warns(sim_inputs, trained_run, tmp_path, capsys):
    """Coordinates in mm against training's um: the training radius links hundreds of cells."""
    a = ad.read_h5ad(sim_inputs / "synthetic_brain.h5ad")
    a.obsm["spatial"] = a.obsm["spatial"] / 1000
    a.write_h5ad(tmp_path / "mm.h5ad")
    assert main(["predict", "--model", str(trained_run), "--adata", str(tmp_path / "mm.h5ad"),
                 "--unit-key", "unit", "--out", str(tmp_path / "p")]) == 0
    err = capsys.readouterr().err
    assert "spacon predict: warning: " in err and "same units" in err and "--radius" in err
    b = ad.read_h5ad(sim_inputs / "synthetic_brain.h5ad")
    b.obsm["spatial"] = b.obsm["spatial"] / 1000
    with pytest.warns(spacon.SpaconWarning, match="are the coordinates in the same units"):
        spacon.SpaCon.load(trained_run / "model", b, prepare=True)
    # the same tissue in the training's units: no warning
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", spacon.SpaconWarning)
        spacon.SpaCon.load(trained_run / "model", ad.read_h5ad(sim_inputs / "synthetic_brain.h5ad"),
                           prepare=True)


def _prepared(path):
    a = ad.read_h5ad(path)
    spacon.pp.normalize(a)
    spacon.pp.spatial_graph(a, radius=700)
    return a


def test_connectivity_code_objective_reads_known_cells_only(rng):
    from types import SimpleNamespace

    import scipy.sparse as sp
    import torch

    from spacon.model import ConnectivityCodeObjective

    profiles = sp.csr_matrix(rng.random((30, 12)) * (rng.random((30, 12)) > 0.5))
    known = np.arange(30) >= 10
    objective = ConnectivityCodeObjective(profiles, known, 3, embedding_dim=4)
    changed = profiles.tolil()
    changed[:10] = 5.0  # unknown cells' rows are never read
    again = ConnectivityCodeObjective(changed.tocsr(), known, 3, embedding_dim=4)
    assert torch.equal(objective.code, again.code) and (objective.code[:10] == 0).all()
    assert np.allclose(objective.code[10:].std(0).numpy(), 1, atol=0.05)
    z = torch.randn(30, 4, requires_grad=True)
    objective(z, SimpleNamespace(n_id=None)).backward()  # a full batch: rows are all cells
    assert (z.grad[:10] == 0).all() and (z.grad[10:] != 0).any()
    z = torch.randn(5, 4, requires_grad=True)
    n_id = torch.tensor([3, 12, 7, 20, 29])  # a sampled batch's cells, by global id
    loss = objective(z, SimpleNamespace(n_id=n_id))
    loss.backward()
    assert (z.grad[[0, 2]] == 0).all() and (z.grad[[1, 3, 4]] != 0).any()
    expected = ((objective.head(z[[1, 3, 4]]) - objective.code[[12, 20, 29]]) ** 2).sum()
    assert torch.isclose(loss, expected)
    with pytest.raises(SpaconInputError, match="needs each batch's cell ids"):
        objective(torch.randn(5, 4), SimpleNamespace(n_id=None))


@pytest.mark.slow
def test_training_with_the_connectivity_code_puts_it_in_the_embedding(held_out_sections):
    """With the objective the spatial embedding (as embedded, in evaluation mode) predicts
    the training cells' code linearly far better than the published objective's does."""
    from spacon.model import ConnectivityCodeObjective

    _, train, _, conn = held_out_sections
    rows = positions_in(train.obs["unit"], conn.labels)
    error = {}
    for code in (False, True):
        model = spacon.SpaCon(train, hidden_dims=(32, 16, 8))
        objective = ConnectivityCodeObjective(conn.matrix.maximum(0)[rows],
                                              np.ones(train.n_obs, bool), 5, 8)
        model.train(60, mode="full", progress=False, auxiliary=objective if code else None)
        z = model._spatial_embedding(model.data, "cpu", None)
        z = np.c_[z, np.ones(len(z))]
        target = objective.code.numpy()
        fit = np.linalg.lstsq(z, target, rcond=None)[0]
        error[code] = float(((z @ fit - target) ** 2).mean())
    assert error[True] < 0.8 * error[False], error


@pytest.mark.slow
def test_connectivity_code_option_of_run_and_evaluate(sim_inputs, tmp_path):
    import json

    data = ["--adata", str(sim_inputs / "synthetic_brain.h5ad"), "--connectivity",
            str(sim_inputs / "connectome.npz"), "--unit-key", "unit", "--radius", "700",
            "--threshold", "0.4", "--hidden-dims", "16", "8", "4", "--mode", "full",
            "--connectivity-code", "3"]
    assert main(["run", *data, "--epochs", "3", "--quiet", "--figures", "none",
                 "--no-report", "--out", str(tmp_path / "run")]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["parameters"]["connectivity_code"] == 3
    assert (tmp_path / "run" / "model" / "connectivity_map.npz").exists()
    assert main(["evaluate", "connectivity", *data, "--epochs", "3", "--folds", "2",
                 "--out", str(tmp_path / "eval")]) == 0


@pytest.mark.filterwarnings("default::spacon._errors.SpaconWarning")  # shown, as for a user
def test_predict_reads_the_counts_layer_of_scanpy_s_layout(sim_inputs, trained_run, tmp_path,
                                                           capsys):
    """Counts in layers['counts'] and X normalised by scanpy (to the median total): the
    warning names --layer counts, and with it the prediction equals the one from the counts
    in X; the rows are called cells (there is no unit column)."""
    import scanpy as sc

    raw = ad.read_h5ad(sim_inputs / "synthetic_brain.h5ad")
    scanpy_style = raw.copy()
    scanpy_style.layers["counts"] = scanpy_style.X.copy()
    sc.pp.normalize_total(scanpy_style)  # the median total, far from the model's 1e4
    sc.pp.log1p(scanpy_style)
    scanpy_style.write_h5ad(tmp_path / "scanpy.h5ad")
    assert main(["predict", "--model", str(trained_run), "--adata", str(tmp_path / "scanpy.h5ad"),
                 "--out", str(tmp_path / "x")]) == 0
    captured = capsys.readouterr()
    assert "--layer counts" in captured.err, captured.err
    assert f"({raw.n_obs} cells x" in captured.out and "obs['cell']" not in captured.out
    assert main(["predict", "--model", str(trained_run), "--adata", str(tmp_path / "scanpy.h5ad"),
                 "--layer", "counts", "--out", str(tmp_path / "layer")]) == 0
    assert "--layer counts" not in capsys.readouterr().err
    assert main(["predict", "--model", str(trained_run), "--adata",
                 str(sim_inputs / "synthetic_brain.h5ad"), "--out", str(tmp_path / "x_counts")]) == 0
    layer = read_profiles(tmp_path / "layer" / "predicted_connectivity.npz")
    counts = read_profiles(tmp_path / "x_counts" / "predicted_connectivity.npz")
    np.testing.assert_allclose(layer.to_numpy(), counts.to_numpy(), rtol=1e-5, atol=1e-6)
    # counts that are not whole numbers (a model trained on whole ones): normalised when asked
    fractional = raw.copy()
    fractional.X = fractional.X * 0.9
    fractional.write_h5ad(tmp_path / "fractional.h5ad")
    assert main(["predict", "--model", str(trained_run), "--adata",
                 str(tmp_path / "fractional.h5ad"), "--fractional-counts", "--out",
                 str(tmp_path / "fractional")]) == 0
    scaled = read_profiles(tmp_path / "fractional" / "predicted_connectivity.npz")
    np.testing.assert_allclose(scaled.to_numpy(), counts.to_numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("default::spacon._errors.SpaconWarning")
def test_embed_without_connectivity_ignores_a_stored_connectome(sim_inputs, trained_run,
                                                                tmp_path, capsys):
    """A run's result.h5ad holds the connectome graph: embedding it without --connectivity
    says the graph is not used and embeds as the bare input is embedded; `spacon domains` on
    the embedding names both ways a result lacks the connectivity embedding."""
    bare, again = tmp_path / "bare", tmp_path / "again"
    assert main(["embed", "--model", str(trained_run), "--adata",
                 str(sim_inputs / "synthetic_brain.h5ad"), "--alpha", "0",
                 "--out", str(bare)]) == 0
    assert "connectome graph" not in capsys.readouterr().err
    assert main(["embed", "--model", str(trained_run), "--adata",
                 str(trained_run / "result.h5ad"), "--alpha", "0", "--out", str(again)]) == 0
    assert "connectome graph ('connectome') that is not used" in capsys.readouterr().err
    a, b = ad.read_h5ad(bare / "result.h5ad"), ad.read_h5ad(again / "result.h5ad")
    assert "X_spacon_con" not in b.obsm and "connectome_connectivities" not in b.obsp
    assert "connectome_neighbors" not in b.uns
    np.testing.assert_allclose(b.obsm["X_spacon_spa"], a.obsm["X_spacon_spa"], atol=1e-5)
    # an earlier call kept as the truth to score against (the others are dropped)
    assert main(["embed", "--model", str(trained_run), "--adata",
                 str(trained_run / "result.h5ad"), "--alpha", "0", "--truth",
                 "spacon_domain_alpha1", "--out", str(tmp_path / "scored")]) == 0
    scored = ad.read_h5ad(tmp_path / "scored" / "result.h5ad")
    assert "spacon_domain_alpha1" in scored.obs and "X_spacon_alpha1" not in scored.obsm
    capsys.readouterr()
    assert main(["domains", "--result", str(again), "--alpha", "1", "--figures", "none",
                 "--no-report", "--out", str(tmp_path / "d")]) == 2
    assert "spacon embed without --connectivity" in capsys.readouterr().err


def test_a_model_loaded_without_its_connectome_trains_no_further(sim_inputs, trained_run):
    model = spacon.SpaCon.load(trained_run / "model",
                               _prepared(sim_inputs / "synthetic_brain.h5ad"))
    with pytest.raises(SpaconInputError, match="no connectome graph 'connectome' to train"):
        model.train(epochs=1, progress=False)
    with pytest.raises(SpaconInputError, match="threads must be >= 1"):
        model.embed(threads=0)


def test_raw_counts_with_more_genes_are_normalised_before_the_model_s_are_taken(
        sim_inputs, trained_run, tmp_path):
    """load(prepare=True) on raw counts holding more genes says to normalise first; doing as
    it says gives the embedding spacon embed gives the same file."""
    import json

    raw = ad.read_h5ad(sim_inputs / "synthetic_brain.h5ad")
    extra = ad.AnnData(np.ones((raw.n_obs, 3), np.float32), obs=raw.obs[[]])
    extra.var_names = ["extra0", "extra1", "extra2"]
    wide = ad.concat([raw, extra], axis=1, merge="first")
    wide.obsm["spatial"] = raw.obsm["spatial"]
    with pytest.raises(SpaconInputError, match="normalise them with all their genes first"):
        spacon.SpaCon.load(trained_run / "model", wide.copy(), prepare=True)
    meta = json.loads((trained_run / "model" / "model.json").read_text())
    norm = meta["preprocessing"]["normalize"]
    spacon.pp.normalize(wide, target_sum=norm["target_sum"], genes=norm.get("genes"))
    chosen = wide[:, meta["var_names"]].copy()
    model = spacon.SpaCon.load(trained_run / "model", chosen, prepare=True)
    model.embed(chosen)
    wide.write_h5ad(tmp_path / "wide.h5ad")
    raw_wide = ad.concat([raw, extra], axis=1, merge="first")
    raw_wide.obsm["spatial"] = raw.obsm["spatial"]
    raw_wide.write_h5ad(tmp_path / "wide_counts.h5ad")
    assert main(["embed", "--model", str(trained_run), "--adata", str(tmp_path / "wide_counts.h5ad"),
                 "--alpha", "0", "--out", str(tmp_path / "e")]) == 0
    embedded = ad.read_h5ad(tmp_path / "e" / "result.h5ad")
    np.testing.assert_allclose(chosen.obsm["X_spacon_spa"], embedded.obsm["X_spacon_spa"],
                               atol=1e-5)


def test_zero_genes_of_new_tissue_are_not_to_be_removed(sim_inputs):
    a = ad.read_h5ad(sim_inputs / "synthetic_brain.h5ad")
    x = a.X.toarray()
    x[:, 0] = 0
    a.X = x
    with pytest.warns(spacon.SpaconWarning, match="remove them with scanpy"):
        spacon.pp.normalize(a.copy())
    with pytest.warns(spacon.SpaconWarning, match="keep them: a trained model needs"):
        spacon.pp.normalize(a.copy(), genes=list(a.var_names))


def test_predicted_units_are_in_the_column_s_order(sim_inputs, trained_run):
    """Integer units come out 2 before 10, a categorical's in its categories' order."""
    from spacon.model._connectivity_map import _units_in_order

    a = _prepared(sim_inputs / "synthetic_brain.h5ad")
    model = spacon.SpaCon.load(trained_run / "model", a)
    a.obs["number"] = np.arange(a.n_obs) % 12
    rows = model.predict_connectivity(a, unit_key="number")
    assert list(rows.index) == [str(i) for i in range(12)]
    a.obs["named"] = pd.Categorical(np.where(np.arange(a.n_obs) % 2, "b", "a"),
                                    categories=["b", "c", "a"])
    assert list(model.predict_connectivity(a, unit_key="named").index) == ["b", "a"]
    labels, position = _units_in_order(pd.Series([10, 2, 2, 1]))
    assert list(labels) == ["1", "2", "10"] and list(position) == [2, 1, 1, 0]
    labels, position = _units_in_order(pd.Series([1, "a", 1], dtype=object))  # mixed: as met
    assert list(labels) == ["1", "a"] and list(position) == [0, 1, 0]


def test_predict_over_another_run_s_folder_leaves_none_of_its_results(
        sim_inputs, trained_run, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(trained_run, other)
    (other / "notes.txt").write_text("mine")
    assert (other / "domains.csv").exists() and (other / "model" / "model.pt").exists()
    assert main(["predict", "--model", str(trained_run), "--adata",
                 str(sim_inputs / "synthetic_brain.h5ad"), "--unit-key", "unit",
                 "--out", str(other), "--overwrite"]) == 0
    assert sorted(p.name for p in other.iterdir()) == [  # a model stays: it may be the one used
        "model", "notes.txt", "predicted_connectivity.npz", "result.h5ad"]
    project = tmp_path / "project"  # a model kept in the folder the results go to
    shutil.copytree(trained_run / "model", project / "model")
    assert main(["embed", "--model", str(project / "model"), "--adata",
                 str(sim_inputs / "synthetic_brain.h5ad"), "--alpha", "0", "--out", str(project),
                 "--overwrite"]) == 0
    assert (project / "model" / "model.pt").exists() and (project / "domains.csv").exists()
