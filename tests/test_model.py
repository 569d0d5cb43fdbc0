import warnings

import numpy as np
import pytest
import torch

import spacon
from spacon import SpaCon, SpaconInputError, SpaconWarning
from spacon.nn import Adjacency

DIMS = (32, 16, 4)


@pytest.fixture
def prepared(brain):
    adata, conn = brain
    info = adata.uns["synthetic_brain"]
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(
        adata, radius=info["suggested_radius"], section_key="section",
        z_radius=info["suggested_z_radius"],
    )
    spacon.pp.connectome_graph(adata, conn, unit_key="unit", threshold=0.4)
    return adata


def test_sampled_training_lowers_loss_and_embeds(prepared):
    model = SpaCon(prepared, hidden_dims=DIMS)
    assert repr(model).endswith(f"{list(DIMS)}, fusion='concat'; not trained)")
    model.train(3, mode="sampled", batch_size=128, progress=False)
    assert repr(model) == (f"SpaCon({prepared.n_obs:,} cells x {prepared.n_vars} genes; spatial "
                           f"+ connectivity encoders, hidden_dims={list(DIMS)}, "
                           "fusion='concat'; 3 epochs trained)")
    losses = [h["loss"] for h in model.history]
    assert losses[-1] < losses[0]
    model.embed(reconstruct=True)
    assert prepared.obsm["X_spacon_con"].shape == (prepared.n_obs, 4)
    assert prepared.obsm["X_spacon_spa"].shape == (prepared.n_obs, 4)
    assert prepared.layers["spacon_reconstructed"].shape == prepared.shape
    uns = prepared.uns["spacon"]
    assert len(uns["loss_history"]) == 3 and uns["params"]["hidden_dims"] == list(DIMS)


def test_same_seed_same_embeddings(prepared):
    out = []
    for _ in range(2):
        model = SpaCon(prepared, hidden_dims=DIMS, seed=3)
        model.train(1, mode="sampled", batch_size=256, progress=False, seed=3)
        model.embed()
        out.append(prepared.obsm["X_spacon_con"].copy())
    assert np.array_equal(out[0], out[1])
    model = SpaCon(prepared, hidden_dims=DIMS, seed=4)
    model.train(1, mode="sampled", batch_size=256, progress=False, seed=4)
    model.embed()
    assert not np.array_equal(out[0], prepared.obsm["X_spacon_con"])


def test_full_batch_mode_and_auto_choice(prepared, brain):
    # the thresholded connectome is denser than the fan-outs: sampling pays
    model = SpaCon(prepared, hidden_dims=DIMS)
    model.train(1, mode="auto", batch_size=512, progress=False)
    assert model.train_params["mode"] == "sampled"
    # a sparse connectome that fits the budget trains full-batch
    with pytest.warns(spacon.SpaconWarning, match="no incoming connection"):  # (top 1 of a row)
        spacon.pp.connectome_graph(prepared, brain[1], unit_key="unit", top_k=1)
    model = SpaCon(prepared, hidden_dims=DIMS)
    model.train(2, mode="auto", memory_budget_gb=4, progress=False)
    assert model.train_params["mode"] == "full"
    losses = [h["loss"] for h in model.history]
    assert len(losses) == 2
    # ... but not when the memory budget is too small
    model = SpaCon(prepared, hidden_dims=DIMS)
    model.train(1, mode="auto", memory_budget_gb=1e-6, batch_size=512, progress=False)
    assert model.train_params["mode"] == "sampled"


def test_layerwise_embedding_equals_full_graph_forward(prepared):
    model = SpaCon(prepared, hidden_dims=DIMS)
    model.module.eval()
    x = model.data.expression()
    with torch.no_grad():
        adj_con = Adjacency.from_scipy(model.data.connectome.expand())
        adj_spa = Adjacency.from_scipy(model.data.spatial.expand())
        z_con, z_spa, x_hat = model.module(x, adj_con, adj_spa)
    with pytest.warns(spacon.SpaconWarning, match="untrained model"):  # untrained says so
        model.embed(reconstruct=True, max_edges=5000)  # many small chunks
    assert np.allclose(prepared.obsm["X_spacon_con"], z_con.numpy(), atol=1e-4)
    assert np.allclose(prepared.obsm["X_spacon_spa"], z_spa.numpy(), atol=1e-4)
    assert np.allclose(prepared.layers["spacon_reconstructed"], x_hat.numpy(), atol=1e-3)


def test_raw_counts_warn(prepared):
    raw = prepared.copy()
    raw.X = raw.layers["counts"].copy()
    del raw.uns["spacon_normalize"]
    with pytest.warns(spacon.SpaconWarning, match="looks like raw counts"):
        SpaCon(raw, hidden_dims=DIMS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SpaCon(prepared, hidden_dims=DIMS)  # normalised: nothing to say
    # the counts kept in a layer by pp.normalize, trained on by name
    with pytest.warns(spacon.SpaconWarning, match=r"layers\['counts'\] looks like raw counts.*"
                      r"leave layer= unset to use the log-normalised X"):
        SpaCon(prepared, hidden_dims=DIMS, layer="counts")
    with pytest.raises(spacon.SpaconInputError, match="no 'count'"):
        SpaCon(prepared, hidden_dims=DIMS, layer="count")


def test_training_options_are_checked_before_training(prepared):
    with pytest.raises(spacon.SpaconInputError, match=r"dropout must be in \[0, 1\)"):
        SpaCon(prepared, hidden_dims=DIMS, dropout=1.5)
    model = SpaCon(prepared, hidden_dims=DIMS)
    with pytest.raises(spacon.SpaconInputError, match="one positive number per encoder layer"):
        model.train(max_steps=1, mode="sampled", fanouts=(10, 5), progress=False)
    with pytest.raises(spacon.SpaconInputError, match="'gpu' is not a device"):
        model.train(max_steps=1, device="gpu", progress=False)
    with pytest.raises(spacon.SpaconInputError, match="resume=True needs checkpoint="):
        model.train(max_steps=1, resume=True, progress=False)
    for option in ({"lr": "0.01"}, {"batch_size": "5"}, {"epochs": True}):
        name = next(iter(option))
        with pytest.raises(spacon.SpaconInputError, match=f"{name} must be a number"):
            model.train(progress=False, **option)


def test_repeated_gene_names_warn(prepared):
    repeated = prepared.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anndata's own warning, when the names are set
        repeated.var_names = [repeated.var_names[0], *repeated.var_names[:-1]]
    with pytest.warns(spacon.SpaconWarning, match="1 repeated gene names"):
        SpaCon(repeated, hidden_dims=DIMS)


def test_save_load_roundtrip_and_gene_check(prepared, tmp_path):
    model = SpaCon(prepared, hidden_dims=DIMS)
    model.train(1, mode="sampled", batch_size=512, progress=False)
    model.embed()
    before = prepared.obsm["X_spacon_con"].copy()
    model.save(tmp_path / "m")
    with pytest.raises(SpaconInputError, match="exists"):
        model.save(tmp_path / "m")
    loaded = SpaCon.load(tmp_path / "m", prepared)
    loaded.embed()
    assert np.array_equal(before, prepared.obsm["X_spacon_con"])
    assert loaded.history == model.history
    other = prepared[:, ::-1].copy()
    with pytest.raises(SpaconInputError, match=r"model's genes \(in another order\): select"):
        SpaCon.load(tmp_path / "m", other)
    import anndata as ad
    import scipy.sparse as sp

    x = prepared.X
    more = ad.AnnData(sp.hstack([x, x[:, :3]]).tocsr() if sp.issparse(x) else
                      np.hstack([x, x[:, :3]]), obs=prepared.obs, obsm=dict(prepared.obsm),
                      obsp=dict(prepared.obsp), uns=dict(prepared.uns))
    more.var_names = [*prepared.var_names, "extra0", "extra1", "extra2"]
    with pytest.raises(SpaconInputError, match=r"model's genes \(3 more\)"):
        SpaCon.load(tmp_path / "m", more)
    # as the error says: the model's genes, in its order
    reloaded = SpaCon.load(tmp_path / "m", more[:, loaded.var_names].copy())
    assert list(reloaded.var_names) == list(prepared.var_names)
    fewer = prepared[:, 5:].copy()
    with pytest.raises(SpaconInputError, match="5 missing"):
        SpaCon.load(tmp_path / "m", fewer)
    with pytest.raises(SpaconInputError, match="no spacon model in"):
        SpaCon.load(tmp_path, prepared)


def test_model_of_scanpy_normalised_data_refuses_raw_counts(brain, tmp_path):
    """Normalised outside spacon (no uns['spacon_normalize']): new tissue in raw counts was
    embedded as it was; now refused, whether embedded directly, loaded or loaded to prepare.
    """
    import scanpy as sc

    adata, _ = brain
    info = adata.uns["synthetic_brain"]
    spacon.pp.spatial_graph(adata, radius=info["suggested_radius"], section_key="section",
                            z_radius=info["suggested_z_radius"])
    raw = adata.copy()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    model = SpaCon(adata, hidden_dims=DIMS, connectome_key=None)
    model.train(1, mode="sampled", batch_size=512, progress=False)
    model.save(tmp_path / "m")
    assert model.preprocessing["expression"] == {"looks_like_counts": False, "integers": False}
    for embed in (lambda: model.embed(raw),
                  lambda: SpaCon.load(tmp_path / "m", raw),
                  lambda: SpaCon.load(tmp_path / "m", raw.copy(), prepare=True)):
        with pytest.raises(SpaconInputError, match="trained on expression that did not"):
            embed()
    assert "X_spacon_spa" not in raw.obsm
    model.embed(adata.copy())  # normalised tissue is embedded as before
    # counts of low depth (none above 20) trained on: new counts are not refused
    shallow = raw.copy()
    shallow.X = np.minimum(shallow.X.toarray() if hasattr(shallow.X, "toarray") else shallow.X, 20)
    low = SpaCon(shallow, hidden_dims=DIMS, connectome_key=None)
    assert low.preprocessing["expression"] == {"looks_like_counts": False, "integers": True}
    low.train(max_steps=1, mode="sampled", batch_size=512, progress=False)
    low.embed(raw.copy())  # not refused


def test_spatial_encoder_embeds_tissue_without_connectivity(prepared):
    model = SpaCon(prepared, hidden_dims=DIMS)
    model.train(1, mode="sampled", batch_size=512, progress=False)
    new = prepared.copy()
    del new.uns["connectome_neighbors"]
    model.embed(new)
    assert "X_spacon_spa" in new.obsm and "X_spacon_con" not in new.obsm
    model.embed(prepared)
    assert np.allclose(new.obsm["X_spacon_spa"], prepared.obsm["X_spacon_spa"], atol=1e-5)


def test_spatial_only_model(prepared):
    model = SpaCon(prepared, hidden_dims=DIMS, connectome_key=None)
    model.train(2, mode="full", progress=False)
    model.embed(reconstruct=True)
    assert "X_spacon_spa" in prepared.obsm


@pytest.mark.parametrize("fusion", ["concat", "add"])
def test_original_checkpoint_gives_same_embeddings(prepared, tmp_path, fusion):
    """A state_dict in the original SpaCon's layout loads into the same function, its fusion
    read from the file (the decoder's first layer takes the fused embedding)."""
    model = SpaCon(prepared, hidden_dims=DIMS, fusion=fusion)
    model.train(1, mode="sampled", batch_size=512, progress=False)
    model.embed()
    ours = prepared.obsm["X_spacon_con"].copy()
    # write the original's layout: lin_src/lin_dst, (1, 1, C) attention, BatchNorm under .module,
    # decoder layers with a trailing underscore
    original = {}
    for key, value in model.module.state_dict().items():
        parts = key.split(".")
        if parts[0] == "decoder":
            parts[1] = parts[1] + "_"
        if parts[-1] == "weight" and parts[1].startswith("conv"):
            original[".".join(parts[:-1] + ["lin_src"])] = value
            original[".".join(parts[:-1] + ["lin_dst"])] = value
            continue
        if parts[-1] in ("att_src", "att_dst"):
            value = value.reshape(1, 1, -1)
        if parts[1].startswith("bn"):
            parts = parts[:2] + ["module"] + parts[2:]
        original[".".join(parts)] = value
    torch.save(original, tmp_path / "model_params.pth")
    loaded = SpaCon.load_original(tmp_path / "model_params.pth", prepared)
    assert loaded.params["fusion"] == fusion
    loaded.embed()
    assert np.array_equal(ours, prepared.obsm["X_spacon_con"])
    with pytest.raises(SpaconInputError, match="hidden_dims"):
        SpaCon.load_original(tmp_path / "model_params.pth", prepared, hidden_dims=(8, 4, 2))
    other = {"concat": "add", "add": "concat"}[fusion]
    with pytest.raises(SpaconInputError, match=f"trained with fusion='{fusion}', not '{other}'"):
        SpaCon.load_original(tmp_path / "model_params.pth", prepared, fusion=other)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(fusion="mean"), "not a valid choice"),
        (dict(hidden_dims=(8, 4)), "three positive sizes"),
        (dict(spatial_key="nope"), "no 'nope_connectivities'"),
        (dict(connectome_key="nope"), "no connectome graph"),
        (dict(layer="nope"), "no 'nope'"),
    ],
)
def test_model_input_errors(prepared, kwargs, match):
    with pytest.raises(SpaconInputError, match=match):
        SpaCon(prepared, **kwargs)


def test_train_option_errors(prepared):
    model = SpaCon(prepared, hidden_dims=DIMS)
    with pytest.raises(SpaconInputError, match="not a valid choice"):
        model.train(1, mode="fast")
    with pytest.raises(SpaconInputError, match="batch_size"):
        model.train(1, batch_size=0)


def test_nan_expression_is_named(prepared):
    bad = prepared.copy()
    bad.X = bad.X.toarray()
    bad.X[0, 0] = np.nan
    with pytest.raises(SpaconInputError, match="NaN"):
        SpaCon(bad)


def test_resume_gives_the_uninterrupted_result(prepared, tmp_path):
    """Stopped mid-epoch and resumed from the checkpoint, training ends exactly where an
    uninterrupted run with the same seed ends."""
    adata = prepared
    whole = SpaCon(adata, hidden_dims=DIMS, seed=0).train(
        2, mode="sampled", batch_size=200, progress=False)
    ckpt = tmp_path / "checkpoint.pt"
    first = SpaCon(adata, hidden_dims=DIMS, seed=0)
    first.train(2, mode="sampled", batch_size=200, progress=False, max_steps=5,
                checkpoint=ckpt, checkpoint_interval=0)
    assert ckpt.exists()
    # a new process would rebuild the model from scratch, then resume
    resumed = SpaCon(adata, hidden_dims=DIMS, seed=0).train(
        2, mode="sampled", batch_size=200, progress=False, checkpoint=ckpt, resume=True)
    for key, value in whole.module.state_dict().items():
        assert torch.equal(value, resumed.module.state_dict()[key]), key
    assert resumed.history == whole.history
    assert resumed.train_params["steps"] == whole.train_params["steps"]
    with pytest.raises(SpaconInputError, match="lr=0.005 .now 0.001"):
        SpaCon(adata, hidden_dims=DIMS, seed=0).train(
            2, mode="sampled", batch_size=200, lr=1e-3, progress=False, checkpoint=ckpt, resume=True)
    # a checkpoint that ran past the new max_steps trains nothing, and says so
    with pytest.warns(SpaconWarning, match="has run .* steps, more than max_steps=3"):
        capped = SpaCon(adata, hidden_dims=DIMS, seed=0).train(
            2, mode="sampled", batch_size=200, progress=False, checkpoint=ckpt, resume=True,
            max_steps=3)
    for key, value in whole.module.state_dict().items():
        assert torch.equal(value, capped.module.state_dict()[key]), key



def test_resume_past_the_default_step_cap_warns(prepared, tmp_path, monkeypatch):
    """Without epochs= the sampled schedule is capped (DEFAULT_SAMPLED_STEPS); a checkpoint
    past that cap trains nothing, which is said as for an explicit max_steps."""
    import spacon.model._spacon as module

    ckpt = tmp_path / "checkpoint.pt"
    SpaCon(prepared, hidden_dims=DIMS, seed=0).train(
        mode="sampled", batch_size=100, progress=False, max_steps=6, checkpoint=ckpt,
        checkpoint_interval=0)
    monkeypatch.setattr(module, "DEFAULT_SAMPLED_STEPS", 4)
    with pytest.warns(SpaconWarning, match="has run 6 steps, more than max_steps=4"):
        SpaCon(prepared, hidden_dims=DIMS, seed=0).train(
            mode="sampled", batch_size=100, progress=False, checkpoint=ckpt, resume=True)


def test_memory_guards_stop_before_running_out(prepared, monkeypatch):
    """With too little free memory, full-batch training and embedding stop before starting
    with a message saying what to change; mode="auto" picks the bounded sampled path."""
    import spacon._utils
    import spacon.model._memory as memory

    model = SpaCon(prepared, hidden_dims=DIMS, seed=0)
    tiny = min(model.full_batch_bytes(), model.embed_bytes()) // 2
    monkeypatch.setattr(spacon._utils, "available_memory_bytes", lambda: tiny)
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: tiny)
    with pytest.raises(SpaconInputError, match="full-batch training needs about .* mode='sampled'"):
        model.train(1, mode="full", progress=False)
    model.train(1, mode="auto", memory_budget_gb=100.0, fanouts=(1000, 1000, 1000),
                max_steps=1, progress=False)
    assert model.train_params["mode"] == "sampled"
    with pytest.raises(SpaconInputError, match="exact embedding needs about .* max_edges"):
        model.embed()
    with pytest.raises(SpaconInputError, match="nearest-neighbour graph needs about"):
        spacon.pp.spatial_graph(prepared, n_neighbors=prepared.n_obs)


@pytest.mark.parametrize("options, message", [
    ({"lr": float("nan")}, "lr must be a finite number > 0"),
    ({"weight_decay": -1.0}, "weight_decay must be a finite number >= 0"),
    ({"max_grad_norm": 0}, "max_grad_norm must be a finite number > 0"),
    ({"epochs": 1.5}, "epochs must be a whole number >= 1"),
    ({"fanouts": 5}, "one positive number per encoder layer"),
    ({"seed": -1}, "seed must be a whole number from 0 to 2\\*\\*32 - 1"),
    ({"memory_budget_gb": 0}, "memory_budget_gb must be a finite number > 0"),
    ({"rank": 2, "world_size": 2}, "rank must be in 0..world_size-1"),
])
def test_training_values_that_trained_nonsense_are_refused(prepared, options, message):
    """NaN settings trained a model of NaN, a negative norm climbed the loss, 1.5 epochs ran
    2, seed -1 failed deep in NumPy: each is named before training."""
    model = SpaCon(prepared, hidden_dims=DIMS)
    with pytest.raises(SpaconInputError, match=message):
        model.train(progress=False, **options)
    assert model.history == []


def test_constructor_values_and_a_fresh_seed(prepared):
    for options, message in (({"seed": 0.5}, "seed must be"),
                             ({"skip_connections": "no"}, "True or False"),
                             ({"hidden_dims": (16.7, 8, 4)}, "three positive sizes")):
        with pytest.raises(SpaconInputError, match=message):
            SpaCon(prepared, **options)
    a, b = SpaCon(prepared, hidden_dims=DIMS, seed=None), SpaCon(prepared, hidden_dims=DIMS,
                                                                 seed=None)
    assert a._weights_digest() != b._weights_digest()  # None draws a fresh seed
    assert SpaCon(prepared, hidden_dims=DIMS)._weights_digest() == \
        SpaCon(prepared, hidden_dims=DIMS, seed=0)._weights_digest()


def test_a_model_refuses_its_own_data_changed_in_place(prepared):
    """A spatial graph rebuilt, or cells filtered, after the model was made: it trained and
    embedded what it had read, silently (or failed deep in anndata)."""
    model = SpaCon(prepared, hidden_dims=DIMS).train(1, mode="full", progress=False)
    unchanged = prepared.copy()
    spacon.pp.spatial_graph(prepared, n_neighbors=15, section_key="section", z_radius=0)
    for call in (lambda: model.train(1, mode="full", progress=False), lambda: model.embed()):
        with pytest.raises(SpaconInputError, match="has changed since"):
            call()
    model.embed(unchanged)  # other data: read afresh
    assert "X_spacon_spa" in unchanged.obsm


def test_a_model_refuses_its_own_expression_changed_in_place(prepared):
    """The expression normalised (or otherwise rewritten) in place after the model read it:
    it trained on the values it had read and embedded them into the changed AnnData."""
    model = SpaCon(prepared, hidden_dims=DIMS).train(1, mode="full", progress=False)
    import scipy.sparse as sp

    # the same values stored otherwise (their sum adds in another order): still the same data
    prepared.X = prepared.X.toarray() if sp.issparse(prepared.X) else sp.csr_matrix(prepared.X)
    model.embed()
    prepared.X = prepared.X * 2  # what pp.normalize on counts does: new values in X
    for call in (lambda: model.train(1, mode="full", progress=False), lambda: model.embed()):
        with pytest.raises(SpaconInputError, match="expression or graphs"):
            call()


def test_damaged_or_mismatched_saved_files_are_named(prepared, tmp_path):
    model = SpaCon(prepared, hidden_dims=DIMS)
    model.save(tmp_path / "m")
    good_json = (tmp_path / "m" / "model.json").read_text()
    (tmp_path / "m" / "model.json").write_text(good_json[: len(good_json) // 2])  # cut short
    with pytest.raises(SpaconInputError, match="model.json is not readable JSON"):
        SpaCon.load(tmp_path / "m", prepared)
    (tmp_path / "m" / "model.json").write_text('{"params": {}}')
    with pytest.raises(SpaconInputError, match="is not a spacon model's: it has no var_names"):
        SpaCon.load(tmp_path / "m", prepared)
    (tmp_path / "m" / "model.json").write_text(good_json)
    (tmp_path / "m" / "model.pt").write_bytes(b"not torch")
    with pytest.raises(SpaconInputError, match="model.pt is not a saved spacon model's weights"):
        SpaCon.load(tmp_path / "m", prepared)
    # another model's weights beside this model.json (two saves mixed up)
    other = SpaCon(prepared, hidden_dims=(16, 8, 4))
    torch.save(other.module.state_dict(), tmp_path / "m" / "model.pt")
    with pytest.raises(SpaconInputError, match="does not match .*model.json: .* differ in name or size"):
        SpaCon.load(tmp_path / "m", prepared)


def test_embed_names_what_it_cannot_take(prepared):
    model = SpaCon(prepared, hidden_dims=DIMS)
    model.train(1, mode="sampled", batch_size=512, progress=False)
    with pytest.raises(SpaconInputError, match="SpaCon.embed takes an AnnData .* ndarray of shape"):
        model.embed(np.zeros((10, prepared.n_vars)))
    with pytest.raises(SpaconInputError, match="SpaCon takes an AnnData"):
        SpaCon(prepared.X)
    for bad in (0, -5, 2.5):
        with pytest.raises(SpaconInputError, match="max_edges must be a whole number >= 1"):
            model.embed(max_edges=bad)
    # a view is embedded into its own copy, and spacon says so (not anndata's own warning)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.embed(prepared[:200])
    messages = [str(w.message) for w in caught]
    assert any("adata is a view" in m and "SpaCon.embed" in m for m in messages), messages
    assert {w.filename for w in caught if "adata is a view" in str(w.message)} == {__file__}
    assert not any("initializing view as actual" in m for m in messages), messages


def test_embed_and_predict_commands_name_a_damaged_model_json(sim_inputs, tmp_path, capsys):
    from spacon.cli import main

    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text('{"params": {"hidden_dims": [4')  # cut short
    (model / "model.pt").write_bytes(b"")
    (model / "connectivity_map.npz").write_bytes(b"")  # (predict asks for one first)
    for command in ("embed", "predict"):
        out = tmp_path / command
        code = main([command, "--model", str(model), "--adata",
                     str(sim_inputs / "synthetic_brain.h5ad"), "--radius", "700",
                     "--out", str(out)])
        assert code == 2 and not out.exists()
        assert "model.json is not readable JSON" in capsys.readouterr().err
