"""Inputs a review fed the public API (30 Nov): each case raised an OS, NumPy, pandas or torch
error that named neither the file nor the problem, or went through silently."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import spacon
from spacon import SpaconInputError, SpaconWarning
from spacon.cli import main


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """A model trained for one epoch on a small slice, saved; the slice's raw counts."""
    raw = spacon.datasets.layered_slice(n_cells=300, n_genes=40)
    adata = raw.copy()
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, n_neighbors=6)
    model = spacon.SpaCon(adata, connectome_key=None, hidden_dims=(16, 8, 4), seed=0)
    model.train(epochs=1, progress=False)
    path = tmp_path_factory.mktemp("model") / "model"
    model.save(path)
    return model, path, raw


def test_a_model_file_cut_short_is_named(small_model, tmp_path):
    model, _, raw = small_model
    model.save(tmp_path / "m")
    weights = (tmp_path / "m" / "model.pt").read_bytes()
    for size in (len(weights) // 2, 100):  # torch raises RuntimeError or OSError
        (tmp_path / "m" / "model.pt").write_bytes(weights[:size])
        with pytest.raises(SpaconInputError, match="model.pt.*damaged or cut short"):
            spacon.SpaCon.load(tmp_path / "m", model.adata)


def test_saving_where_a_file_stands_names_the_file(small_model, tmp_path):
    model = small_model[0]
    blocking = tmp_path / "afile"
    blocking.write_text("x")
    for call in (lambda: model.save(blocking, overwrite=True),
                 lambda: model.save(blocking / "model"),
                 lambda: spacon.io.write_h5ad(model.adata, blocking / "x.h5ad"),
                 lambda: spacon.io.write_text("x", blocking / "t.txt")):
        with pytest.raises(SpaconInputError, match="afile is a file, not a folder"):
            call()
    assert blocking.read_text() == "x"


def test_embedding_log1p_of_raw_counts_warns(small_model):
    _, path, raw = small_model
    unnormalised = raw.copy()
    unnormalised.X = sp.csr_matrix(np.log1p(raw.X.toarray()))
    spacon.pp.spatial_graph(unnormalised, n_neighbors=6)
    with pytest.warns(SpaconWarning, match="log1p of raw counts"):
        spacon.SpaCon.load(path, unnormalised)
    normalised = raw.copy()
    spacon.pp.normalize(normalised)
    normalised.uns.pop("spacon_normalize")  # as if normalised by scanpy
    spacon.pp.spatial_graph(normalised, n_neighbors=6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spacon.SpaCon.load(path, normalised)


def _log_normalised(counts, target_sum):
    return np.log1p(counts / counts.sum(axis=1, keepdims=True) * target_sum)


def test_normalised_data_with_genes_left_out_is_not_taken_for_log1p_counts():
    """Totals that differ (genes selected after normalising) and whole-number values (shallow
    cells whose totals divide the target, counts per million) are normalised all the same."""
    import anndata as ad

    from spacon.model._data import log1p_of_counts

    rng = np.random.default_rng(0)
    deep = rng.poisson(5.0, size=(200, 40)).astype(np.float64) + 1
    shallow = np.zeros((200, 40))
    for row, total in zip(shallow, rng.choice([5, 8, 10, 16, 20], size=200)):
        np.add.at(row, rng.integers(0, 40, size=total), 1)  # totals dividing 1e4
    binary = (rng.random((200, 40)) < 0.125).astype(np.float64)
    binary[:, 0] = 1  # every cell some counts
    for counts, target in ((deep, 1e6), (shallow, 1e4), (binary, 1e4), (deep, 1e4)):
        kept = _log_normalised(counts, target)[:, :30].astype(np.float32)  # then genes cut
        assert not log1p_of_counts(ad.AnnData(kept))
    assert log1p_of_counts(ad.AnnData(np.log1p(deep[:, :30]).astype(np.float32)))
    assert log1p_of_counts(ad.AnnData(sp.csr_matrix(np.log1p(shallow).astype(np.float32))))


def test_connectivity_files_empty_or_not_utf8_are_named(tmp_path):
    for text in ("", "\n", "\n \n\n", "\ufeff", "\ufeff\n"):
        (tmp_path / "empty.csv").write_text(text, encoding="utf-8")
        with pytest.raises(SpaconInputError, match="empty.csv' is empty"):
            spacon.io.read_connectivity(tmp_path / "empty.csv")
    (tmp_path / "latin.csv").write_bytes("x,\xe9a,b\n\xe9a,0,1\nb,1,0\n".encode("latin-1"))
    with pytest.raises(SpaconInputError, match="holds the byte 0xe9.*encoding='latin-1'"):
        spacon.io.read_connectivity(tmp_path / "latin.csv")


def test_a_full_disk_is_not_called_a_bad_path(small_model, tmp_path, monkeypatch):
    import errno
    import tempfile

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", full)
    with pytest.raises(OSError, match="No space left") as err:
        spacon.io.write_text("x", tmp_path / "t.txt")
    assert not isinstance(err.value, SpaconInputError)


def test_a_link_to_nothing_in_the_way_is_named(small_model, tmp_path):
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(SpaconInputError, match="dangling is a link to nothing, not a folder"):
        small_model[0].save(tmp_path / "dangling" / "model")
    (tmp_path / "afile").write_text("x")
    assert main(["prepare", "enigma", "--data", str(tmp_path), "--out",
                 str(tmp_path / "afile" / "human")]) == 2


def test_damaged_profile_files_are_named(tmp_path):
    spacon.io.save_profiles(tmp_path / "ok.npz", np.ones((2, 2)), ["a", "b"], ["c", "d"])
    data = (tmp_path / "ok.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.npz").write_text("hello world")
    for name in ("cut.npz", "text.npz"):
        with pytest.raises(SpaconInputError, match=f"profile file .*{name}.*damaged"):
            spacon.io.read_profiles(tmp_path / name)
    with pytest.raises(SpaconInputError, match="is a folder"):
        spacon.io.read_profiles(tmp_path)
    assert spacon.io.read_profiles(tmp_path / "ok.npz").shape == (2, 2)


def test_sparsify_refuses_positions_with_nan():
    m = sp.csr_matrix(np.random.default_rng(0).random((6, 6)))
    positions = np.random.default_rng(1).random((6, 2))
    positions[0, 0] = np.nan
    with pytest.raises(SpaconInputError, match="NaN or infinite coordinates in 1 rows"):
        spacon.pp.sparsify(m, distance_scale=0.1, positions=positions)
    with pytest.raises(SpaconInputError, match="must be 6 rows"):
        spacon.pp.sparsify(m, distance_scale=0.1, positions=np.zeros(6))


def test_unknown_training_options_of_prediction_are_named_before_training(brain_with_graph):
    adata, conn = brain_with_graph
    for kwargs, match in (({"train_kwargs": {"bogus": 1}}, "train_kwargs has 'bogus'"),
                          ({"model_kwargs": {"hidden": 3}}, "model_kwargs has 'hidden'")):
        with pytest.raises(SpaconInputError, match=match):
            spacon.tl.predict_connectivity(adata, conn, unit_key="unit", methods=("spacon",),
                                           **kwargs)


def test_normalize_takes_one_gene_name():
    import anndata as ad

    counts = np.random.default_rng(0).integers(1, 20, size=(30, 5)).astype(np.float32)
    adata = ad.AnnData(counts)
    adata.var_names = [f"g{i}" for i in range(5)]
    one = spacon.pp.normalize(adata, genes="g2", copy=True)
    listed = spacon.pp.normalize(adata, genes=["g2"], copy=True)
    assert np.array_equal(one.X, listed.X)
    assert not np.array_equal(one.X, spacon.pp.normalize(adata, copy=True).X)


def test_options_out_of_range_are_named(brain_with_graph):
    adata, conn = brain_with_graph
    with pytest.raises(SpaconInputError, match="n_pcs must be a whole number >= 1"):
        spacon.tl.classify_subtypes(adata, "region", n_pcs=0)
    with pytest.raises(SpaconInputError, match="alpha must be in"):
        spacon.tl.alpha_weight(2)
    with pytest.raises(SpaconInputError, match="n must be a whole number >= 0"):
        spacon.pl.palette(-1)
    with pytest.raises(SpaconInputError, match="max_distance must be a positive"):
        spacon.pp.assign_units(adata, np.zeros((3, 3)), max_distance=-1)
    with pytest.raises(SpaconInputError, match="give region_key="):
        spacon.pp.assign_units(adata, conn)
    assert spacon.pl.palette(0) == []


def test_helpers_name_mismatched_lengths_and_shapes():
    with pytest.raises(SpaconInputError, match="3 true labels but 2 predicted"):
        spacon.tl.hungarian_f1([1, 2, 3], [1, 2])
    with pytest.raises(SpaconInputError, match="got 5, 4 and 5"):
        spacon.tl.partial_correlation(np.ones(5), np.ones(4), np.ones(5))
    with pytest.raises(SpaconInputError, match=r"2-D\), got shape \(5,\)"):
        spacon.tl.coexpression(np.ones(5))
    with pytest.raises(SpaconInputError, match="NaN or infinite"):
        spacon.pl.umap_layout(np.array([[0.0, 1.0], [np.nan, 1.0], [2.0, 0.0]]))
    with pytest.raises(SpaconInputError, match="square"):
        adata = spacon.datasets.layered_slice(n_cells=100, n_genes=30)
        adata.obs["unit"] = pd.Categorical(["a"] * 100)
        spacon.pp.unit_codes(adata, "unit", np.ones((2, 3)))


def test_a_non_finite_alpha_on_the_command_line_is_named(sim_inputs, capsys, tmp_path):
    assert main(["run", "--adata", str(sim_inputs / "synthetic_brain.h5ad"), "--no-connectivity",
                 "--alpha", "nan", "--out", "unused"]) == 2
    assert "option 'alpha' is [nan]; it needs finite numbers" in capsys.readouterr().err
    (tmp_path / "bad.toml").write_text("truth = nan\n")  # a column name, not a number
    assert main(["run", "--adata", str(sim_inputs / "synthetic_brain.h5ad"), "--no-connectivity",
                 "--config", str(tmp_path / "bad.toml"), "--out", "unused"]) == 2
    assert "option 'truth' has the wrong type" in capsys.readouterr().err


# the command line, from an audit of every option against its help (30 Nov)
def _run(sim_inputs, out, *flags):
    return main(["run", "--adata", str(sim_inputs / "synthetic_brain.h5ad"), "--no-connectivity",
                 "--section-key", "section", "--z-radius", "0", "--figures", "none", "--no-report",
                 "--markers", "0",
                 "--quiet", "--out", str(out), *flags])


def test_a_flag_overrides_the_config_files_graph_size(sim_inputs, tmp_path):
    import json

    (tmp_path / "run.toml").write_text("radius = 600.0\n")
    assert _run(sim_inputs, tmp_path / "o", "--config", str(tmp_path / "run.toml"),
                "--n-neighbors", "8") == 0
    parameters = json.loads((tmp_path / "o" / "summary.json").read_text())["parameters"]
    assert parameters["n_neighbors"] == 8 and parameters["radius"] is None


def test_connectome_options_without_a_connectome_are_said_unused(sim_inputs, tmp_path, capsys):
    import json

    with warnings.catch_warnings():  # the command says them on standard error
        warnings.simplefilter("always", SpaconWarning)
        assert _run(sim_inputs, tmp_path / "o", "--threshold", "0.5", "--top-k", "3",
                    "--symmetrize") == 0
    assert ("--threshold 0.5, --top-k 3, --symmetrize are not used: they shape the connectome "
            "graph") in capsys.readouterr().err
    parameters = json.loads((tmp_path / "o" / "summary.json").read_text())["parameters"]
    assert parameters["threshold"] is None and parameters["top_k"] is None


def test_options_that_need_another_are_refused_before_anything_runs(sim_inputs, tmp_path,
                                                                     capsys):
    assert main(["run", "--adata", str(sim_inputs / "synthetic_brain.h5ad"), "--no-connectivity",
                 "--section-order", "s002,s001,s000", "--out", str(tmp_path / "a")]) == 2
    assert "--section-order orders the sections of --section-key" in capsys.readouterr().err
    assert _run(sim_inputs, tmp_path / "b", "--refine", "2000") == 2
    assert "--refine 2000: 2000 neighbours would vote" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
    assert main(["evaluate", "connectivity", "--adata", str(sim_inputs / "synthetic_brain.h5ad"),
                 "--connectivity", str(sim_inputs / "connectome.npz"), "--unit-key", "unit",
                 "--midline", "3", "--out", str(tmp_path / "c")]) == 2
    assert "give --mirror-axis too" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "coupling", "--adata", str(sim_inputs / "synthetic_brain.h5ad"),
              "--connectivity", str(sim_inputs / "connectome.npz"), "--n-perm", "0",
              "--out", str(tmp_path / "d")])
    assert exit_.value.code == 2
    assert "a whole number >= 1, got 0" in capsys.readouterr().err
    assert not any((tmp_path / name).exists() for name in "acd")
