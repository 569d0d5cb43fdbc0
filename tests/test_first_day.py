"""What a new user hit on the first day (one test per defect, each failed before its fix)."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

import spacon
from spacon import SpaconInputError, SpaconWarning
from spacon.cli import main
from spacon.io import Connectivity


def test_a_nearly_complete_connectome_draws_a_warning(brain):
    adata, conn = brain
    # a functional matrix: correlations, nearly all positive, as human FC without a threshold
    rng = np.random.default_rng(0)
    fc = rng.uniform(-0.05, 1, size=conn.matrix.shape)
    fc = Connectivity(sp.csr_matrix((fc + fc.T) / 2), conn.labels)
    with pytest.warns(SpaconWarning, match=r"keeps \d+% of all unit pairs.*top_k="):
        spacon.pp.connectome_graph(adata, fc, unit_key="unit")
    assert adata.uns["connectome_neighbors"]["params"]["density"] > 0.9
    spacon.pp.connectome_graph(adata, fc, unit_key="unit", top_k=8, symmetrize=True)
    assert adata.uns["connectome_neighbors"]["params"]["density"] < 0.5


def test_sections_are_ordered_as_people_read_them(brain):
    adata, _ = brain
    names = np.array(["BZ14", "BZ5", "BZ9", "BZ10"])
    adata.obs["slice"] = names[np.arange(adata.n_obs) % 4]
    _, order = spacon.pp.section_codes(adata, "slice")
    assert list(order) == ["BZ5", "BZ9", "BZ10", "BZ14"]
    adata.obs["z"] = np.array(["-1.5", "10", "2", "-20"])[np.arange(adata.n_obs) % 4]
    assert list(spacon.pp.section_codes(adata, "z")[1]) == ["-20", "-1.5", "2", "10"]


def test_command_line_messages_name_flags_and_warnings_have_no_source_paths(
        tmp_path, capsys, monkeypatch):
    adata = spacon.datasets.synthetic_brain(n_cells=300, n_genes=60, n_sections=2, seed=0)[0]
    path = tmp_path / "a.h5ad"
    adata.write_h5ad(path)
    np.save(tmp_path / "c.npy", np.ones((7, 7)))
    code = main(["run", "--adata", str(path), "--connectivity", str(tmp_path / "c.npy"),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "--unit-key" in err and "unit_key=" not in err, err

    def warns(args):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("always")  # pytest makes spacon's warnings errors
            warnings.warn("something odd; use top_k= to keep fewer", SpaconWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(spacon.cli, "_simulate", warns)
    assert main(["simulate", "--out", str(tmp_path / "sim")]) == 0
    err = capsys.readouterr().err
    assert err.strip() == "spacon simulate: warning: something odd; use --top-k to keep fewer"


def test_a_saved_model_records_and_applies_its_preprocessing(brain, tmp_path):
    adata, conn = brain
    raw = adata[:500].copy()
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, n_neighbors=6, section_key="section", z_radius=0)
    spacon.pp.connectome_graph(adata, conn, unit_key="unit", threshold=0.4)
    model = spacon.SpaCon(adata, hidden_dims=(8, 4, 2)).train(1, mode="full", progress=False)
    model.save(tmp_path / "m")
    assert model.preprocessing["normalize"]["target_sum"] == 1e4
    assert model.preprocessing["spatial_graph"]["n_neighbors"] == 6
    # raw counts are refused, not embedded silently wrong
    spacon.pp.spatial_graph(raw, n_neighbors=6, section_key="section", z_radius=0)
    with pytest.raises(spacon.SpaconInputError, match="looks like raw counts"):
        model.embed(raw.copy())
    # ... and prepared as the training data were, they embed as normalised tissue does
    fresh = raw.copy()
    del fresh.obsp["spatial_connectivities"]
    loaded = spacon.SpaCon.load(tmp_path / "m", fresh, prepare=True)
    assert "spacon_normalize" in fresh.uns and "spatial_connectivities" in fresh.obsp
    loaded.embed(fresh)
    by_hand = raw.copy()
    spacon.pp.normalize(by_hand)
    model.embed(by_hand)
    np.testing.assert_allclose(fresh.obsm["X_spacon_spa"], by_hand.obsm["X_spacon_spa"],
                               atol=1e-5)


UNTRAINED = ["--figures", "none", "--no-report", "--quiet", "--n-neighbors", "8", "--section-key",
             "section", "--z-radius", "0"]  # (the smoothing encoder: --epochs would be said to
# be unused; the sections separate, as they were by default with --n-neighbors)
SMALL = ["--hidden-dims", "8", "4", "2", "--epochs", "2", "--mode", "full", *UNTRAINED]


@pytest.mark.slow
def test_spatial_only_run_with_default_alphas_and_what_a_user_expects_next(sim_inputs, tmp_path,
                                                                         capsys):
    import json
    import time

    import anndata as ad
    import pandas as pd

    data = str(sim_inputs / "synthetic_brain.h5ad")
    out = tmp_path / "run"
    # no connectome and no --alpha: alpha 0 alone (it used to train, then fail at alpha 1)
    assert main(["run", "--adata", data, "--no-connectivity", "--truth", "region",
                 "--encoder", "spacon", "--out", str(out), *SMALL]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["n_domains"]) == ["0"]
    assert summary["truth_scores"]["truth"] == "region"
    assert 0 < summary["truth_scores"]["0"]["ari"] <= 1
    table = pd.read_csv(out / "domains.csv", index_col="cell")
    res = ad.read_h5ad(out / "result.h5ad")
    assert list(table.columns) == ["section", "domain_alpha0", "region"]
    np.testing.assert_array_equal(table["domain_alpha0"].astype(str),
                                  res.obs["spacon_domain_alpha0"].astype(str))
    printed = capsys.readouterr().out
    ari = summary["truth_scores"]["0"]["ari"]
    assert f"against the truth: ARI {ari:.3f}, NMI" in printed and "F1" in printed
    # an explicit alpha > 0 without a connectome stops before training
    assert main(["run", "--adata", data, "--no-connectivity", "--alpha", "0", "1",
                 "--out", str(tmp_path / "bad"), *SMALL]) == 2
    assert "use --alpha 0" in capsys.readouterr().err and not (tmp_path / "bad" / "model").exists()
    # domains again at another number, without training
    assert main(["domains", "--result", str(out), "--n-domains", "3", "--out",
                 str(tmp_path / "again"), "--threads", "1"]) == 0  # --threads: as run takes it
    again = ad.read_h5ad(tmp_path / "again" / "result.h5ad")
    assert again.obs["spacon_domain_alpha0"].nunique() == 3
    np.testing.assert_array_equal(again.obsm["X_spacon_spa"], res.obsm["X_spacon_spa"])
    again_summary = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert again_summary["n_domains"] == {"0": 3}
    assert again_summary["domains_from"] == str(out.resolve())
    assert (tmp_path / "again" / "report.html").exists()
    # scored against the run's truth as the run was; its figures drawn as the run's are
    assert again_summary["truth_scores"]["truth"] == "region"
    assert "figures/domains_alpha0.png" in again_summary["figures"]
    assert all((tmp_path / "again" / f).is_file() for f in again_summary["figures"])
    assert "region" in pd.read_csv(tmp_path / "again" / "domains.csv").columns
    # levels, then one number from that result: no stale level columns are left behind
    assert main(["domains", "--result", str(tmp_path / "again"), "--n-domains", "2", "3",
                 "--out", str(tmp_path / "levels")]) == 0
    assert "spacon_domain_alpha0_k2" in ad.read_h5ad(tmp_path / "levels" / "result.h5ad").obs
    # each level is scored against the truth too (only the chosen number was)
    levels = json.loads((tmp_path / "levels" / "summary.json").read_text())["level_truth_scores"]
    assert levels["truth"] == "region" and set(levels["0"]) == {"2", "3"}
    assert 0 <= levels["0"]["3"]["ari"] <= 1
    assert "obs['spacon_domain_alpha0_k3']; against the truth: ARI" in capsys.readouterr().out
    assert main(["domains", "--result", str(tmp_path / "levels"), "--n-domains", "2",
                 "--out", str(tmp_path / "single")]) == 0
    single = ad.read_h5ad(tmp_path / "single" / "result.h5ad")
    assert not [c for c in single.obs if c.startswith("spacon_domain_alpha0_k")]
    assert main(["domains", "--result", str(tmp_path / "nowhere"), "--out",
                 str(tmp_path / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err
    # into the run's own directory: its summary and report describe the new domains too
    started = time.time()
    (out / "figures").mkdir()  # as a run with figures leaves them
    for name in ("loss.png", "domains_alpha0.png", "umap.png"):
        (out / "figures" / name).write_bytes(b"the run's figure")
    assert main(["domains", "--result", str(out), "--n-domains", "4", "--out", str(out),
                 "--overwrite", "--figures", "none"]) == 0
    assert json.loads((out / "summary.json").read_text())["n_domains"] == {"0": 4}
    assert (out / "report.html").stat().st_mtime >= started - 1
    # no figure of the old domains is left to contradict the new; the loss curve stays
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["loss.png"]
    redone = json.loads((out / "summary.json").read_text())
    assert redone["figures"] == ["figures/loss.png"]
    assert redone["parameters"]["figures"] == "none"  # the report shows these parameters
    # the trained model on new (raw-count) tissue: preprocessed as the training data were
    assert main(["embed", "--model", str(out / "model"), "--adata", data, "--truth", "region",
                 "--out", str(tmp_path / "new")]) == 0
    new = ad.read_h5ad(tmp_path / "new" / "result.h5ad")
    np.testing.assert_allclose(new.obsm["X_spacon_spa"], res.obsm["X_spacon_spa"], atol=1e-4)
    assert "spacon_domain_alpha0" in new.obs
    # the model's genes in another order are put in its order, as a superset of them is
    raw = ad.read_h5ad(data)
    raw[:, raw.var_names[::-1]].copy().write_h5ad(tmp_path / "reversed.h5ad")
    assert main(["embed", "--model", str(out / "model"), "--adata",
                 str(tmp_path / "reversed.h5ad"), "--out", str(tmp_path / "reversed")]) == 0
    reordered = ad.read_h5ad(tmp_path / "reversed" / "result.h5ad")
    np.testing.assert_allclose(reordered.obsm["X_spacon_spa"], new.obsm["X_spacon_spa"],
                               atol=1e-5)


def test_fused_embedding_and_its_record_agree(sim_inputs, tmp_path):
    import anndata as ad

    out = tmp_path / "run"
    assert main(["run", "--adata", str(sim_inputs / "synthetic_brain.h5ad"), "--connectivity",
                 str(sim_inputs / "connectome.npz"), "--unit-key", "unit", "--threshold", "0.4",
                 "--alpha", "0", "1", "--out", str(out), *SMALL]) == 0
    res = ad.read_h5ad(out / "result.h5ad")
    assert res.uns["spacon_fuse"]["alpha"] == 0.0  # it said 1 while X_spacon held alpha 0
    np.testing.assert_array_equal(res.obsm["X_spacon"], res.obsm["X_spacon_alpha0"])


def test_embed_command_errors(sim_inputs, tmp_path, capsys):
    data = str(sim_inputs / "synthetic_brain.h5ad")
    assert main(["embed", "--model", str(tmp_path / "none"), "--adata", data,
                 "--out", str(tmp_path / "o")]) == 2
    assert "no spacon model in" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    # a smoothing run trains no model, and the error says what to do instead
    assert main(["run", "--adata", data, "--no-connectivity", "--out", str(tmp_path / "smooth"),
                 "--quiet"]) == 0
    assert main(["embed", "--model", str(tmp_path / "smooth"), "--adata", data,
                 "--out", str(tmp_path / "o")]) == 2
    assert "--encoder spacon for a model to apply" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_one_word_for_spatial_neighbours(tmp_path):
    from spacon._pipeline import RunConfig
    from spacon.cli import build_parser

    for flag in ("--n-neighbors", "--knn"):  # --knn: the former name, still understood
        args = build_parser().parse_args(["run", flag, "7"])
        assert args.n_neighbors == 7
    (tmp_path / "run.toml").write_text("knn = 5\n")
    assert RunConfig.from_toml(tmp_path / "run.toml").n_neighbors == 5


def test_a_config_file_takes_the_command_lines_quiet(tmp_path):
    from spacon._errors import SpaconInputError
    from spacon._pipeline import RunConfig

    for text, progress in (("quiet = true", False), ("quiet = false", True), ("", True)):
        (tmp_path / "run.toml").write_text(text + "\n")
        assert RunConfig.from_toml(tmp_path / "run.toml").progress is progress
    (tmp_path / "run.toml").write_text('quiet = "yes"\n')
    with pytest.raises(SpaconInputError, match="quiet must be true or false"):
        RunConfig.from_toml(tmp_path / "run.toml")


def test_paths_in_a_config_file_are_relative_to_the_file(tmp_path, monkeypatch):
    from spacon._pipeline import RunConfig

    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "cells.h5ad").write_text("")
    config = project / "run.toml"
    config.write_text('adata = "data/cells.h5ad"\nconnectivity = "/abs/c.npz"\n'
                      'out = "result"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    read = RunConfig.from_toml(config)
    assert Path(read.adata).samefile(project / "data" / "cells.h5ad")
    assert read.connectivity == "/abs/c.npz"
    assert Path(read.out).resolve() == (project / "result").resolve()
    # a path that exists only from the working directory (spacon prepare's files before
    # 27 Nov) is still found, with advice on writing it
    monkeypatch.chdir(tmp_path)
    config.write_text('adata = "project/data/cells.h5ad"\n')
    with pytest.warns(SpaconWarning, match="write it as 'data/cells.h5ad'"):
        assert RunConfig.from_toml(config).adata == "project/data/cells.h5ad"


def test_without_a_connectome_the_default_is_the_smoothing_encoder(sim_inputs, tmp_path):
    import json

    out = tmp_path / "run"
    assert main(["run", "--adata", str(sim_inputs / "synthetic_brain.h5ad"), "--no-connectivity",
                 "--out", str(out), *UNTRAINED]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parameters"]["encoder"] == "smoothing"
    assert summary["training"]["encoder"] == "smoothing" and not (out / "model").exists()


def test_demo_keeps_to_its_threads(monkeypatch, tmp_path):
    import torch

    import spacon._pipeline

    seen = {}

    def run(config):
        seen["config"], seen["torch"] = config.threads, torch.get_num_threads()
        raise spacon.SpaconInputError("stop here: only the settings are checked")

    monkeypatch.setattr(spacon._pipeline, "run", run)
    assert main(["demo", "--threads", "1", "--out", str(tmp_path / "d")]) == 2
    assert seen == {"config": 1, "torch": 1}


@pytest.mark.filterwarnings("default::spacon._errors.SpaconWarning")  # shown, as for a user
@pytest.mark.slow
def test_no_normalize_on_counts_warns_once_with_the_flag_to_drop(sim_inputs, tmp_path,
                                                                 capsys):
    assert main(["run", "--adata", str(sim_inputs / "synthetic_brain.h5ad"), "--no-normalize",
                 "--connectivity", str(sim_inputs / "connectome.npz"), "--unit-key", "unit",
                 "--threshold", "0.4", "--encoder", "smoothing", "--figures", "none",
                 "--no-report", "--quiet", "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert err.count("looks like raw counts") == 1 and "drop --no-normalize" in err, err


def test_demo_replaces_an_earlier_demo_but_no_other_folder(monkeypatch, capsys, tmp_path):
    import spacon._pipeline

    def run(config):
        raise spacon.SpaconInputError("stop here: only the output folder is checked")

    monkeypatch.setattr(spacon._pipeline, "run", run)
    result = tmp_path / "result"  # e.g. a finished spacon run
    result.mkdir()
    (result / "result.h5ad").write_text("a run's result")
    assert main(["demo", "--out", str(result)]) == 2
    assert "not an earlier demo's" in capsys.readouterr().err
    assert sorted(p.name for p in result.iterdir()) == ["result.h5ad"]  # nothing written
    earlier = tmp_path / "demo"  # an earlier demo (its simulated input) is replaced
    (earlier / "input").mkdir(parents=True)
    (earlier / "input" / "synthetic_brain.h5ad").write_text("old")
    assert main(["demo", "--out", str(earlier)]) == 2
    assert "only the output folder" in capsys.readouterr().err
    assert main(["demo", "--out", str(result), "--overwrite"]) == 2
    assert "only the output folder" in capsys.readouterr().err
    # a project with a simulated brain in input/ and a run beside it is not a demo
    project = tmp_path / "project"
    (project / "input").mkdir(parents=True)
    (project / "input" / "synthetic_brain.h5ad").write_text("simulated")
    (project / "result.h5ad").write_text("a run's result")
    assert main(["demo", "--out", str(project)]) == 2
    assert "not an earlier demo's" in capsys.readouterr().err
    (project / "demo_scores.json").write_text("{}")  # ... unless the demo wrote its scores
    (project / "notes.md").write_text("mine")  # and nothing else is there
    assert main(["demo", "--out", str(project)]) == 2
    assert "not an earlier demo's" in capsys.readouterr().err


def test_ctrl_c_in_the_demo_does_not_offer_a_resume_it_lacks(monkeypatch, capsys, tmp_path):
    from spacon.model import TrainingInterrupted

    def interrupted(args):
        raise TrainingInterrupted("stopped", tmp_path / "checkpoint.pt", 3, 1)

    monkeypatch.setattr(spacon.cli, "_demo", interrupted)
    assert main(["demo", "--out", str(tmp_path / "d")]) == 130
    err = capsys.readouterr().err
    assert "--resume" not in err and "run it again" in err and "epoch 3, batch 1" in err


@pytest.mark.slow
def test_n_top_genes_trains_on_the_most_variable_genes(sim_inputs, tmp_path):
    import anndata as ad

    out = tmp_path / "hvg"
    assert main(["run", "--adata", str(sim_inputs / "synthetic_brain.h5ad"), "--no-connectivity",
                 "--encoder", "spacon", "--n-top-genes", "30", "--out", str(out), *SMALL]) == 0
    res = ad.read_h5ad(out / "result.h5ad")
    assert res.n_vars == 30 and res.var["highly_variable"].all()
    assert len(__import__("json").loads((out / "model" / "model.json").read_text())["var_names"]) == 30
    # the model on its own (raw, all-gene) tissue: normalised over all genes as in training
    # (the run's output folder names its model/ too)
    assert main(["embed", "--model", str(out), "--adata",
                 str(sim_inputs / "synthetic_brain.h5ad"), "--out", str(tmp_path / "new")]) == 0
    new = ad.read_h5ad(tmp_path / "new" / "result.h5ad")
    np.testing.assert_allclose(new.obsm["X_spacon_spa"], res.obsm["X_spacon_spa"], atol=1e-4)


def test_an_input_error_found_late_leaves_no_output_directory(sim_inputs, tmp_path, capsys):
    data = str(sim_inputs / "synthetic_brain.h5ad")
    out = tmp_path / "run"
    assert main(["run", "--adata", data, "--no-connectivity", "--truth", "nope",
                 "--out", str(out), *UNTRAINED]) == 2
    assert "--truth 'nope'" in capsys.readouterr().err and not out.exists()
    # a column of measurements is refused before training, not by the figures at the end
    measured = ad.read_h5ad(data)
    measured.obs["depth"] = measured.obsm["spatial"][:, 0]
    measured.write_h5ad(tmp_path / "measured.h5ad")
    assert main(["run", "--adata", str(tmp_path / "measured.h5ad"), "--no-connectivity",
                 "--truth", "depth", "--out", str(out), *UNTRAINED]) == 2
    assert "--truth" in capsys.readouterr().err and not out.exists()
    existing = tmp_path / "kept"
    existing.mkdir()
    assert main(["domains", "--result", str(tmp_path / "none"), "--out", str(existing)]) == 2
    assert existing.exists()  # a directory the user made is never removed


def test_a_switch_named_as_the_library_takes_it_is_said_as_its_flag():
    """``drop_unregistered=True`` / ``overwrite=True`` in a message reach the command line as
    ``--drop-unregistered`` / ``--overwrite``; a keyword that is no flag stays as written."""
    from spacon.cli import _flags, _in_flags, build_parser

    flags = _flags(build_parser())
    said = _in_flags("drop them with drop_unregistered=True (or set unit_key=); pass "
                     "overwrite=True to replace it; copy=True is Python's", flags)
    assert said == ("drop them with --drop-unregistered (or set --unit-key); pass "
                    "--overwrite to replace it; copy=True is Python's"), said


def test_verbose_after_the_subcommand_too(tmp_path):
    """``-v`` works before or after the subcommand (it was refused after it), and logs."""
    from spacon.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["-v", "report", "x"]).verbose
    assert parser.parse_args(["report", "x", "-v"]).verbose
    assert parser.parse_args(["prepare", "abc", "--abc-dir", "a", "--connectome", "c",
                              "--out", "o", "--verbose"]).verbose
    assert not parser.parse_args(["report", "x"]).verbose
    code = ("from spacon.cli import main; raise SystemExit(main(['simulate', '--n-cells', "
            f"'200', '--n-genes', '60', '--out', {str(tmp_path / 'sim')!r}, '-v']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "spacon.datasets._synthetic: synthetic brain: 200 cells" in out.stderr


def test_progress_bar_in_a_log_file_is_a_few_lines(brain, capsys):
    """Where stderr is no terminal (a cluster job's log), the bar is drawn at the start, every
    30 s and at the end: it drew every step twice before (960 lines for the demo)."""
    adata, conn = brain
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, n_neighbors=6, section_key="section", z_radius=0)
    spacon.pp.connectome_graph(adata, conn, unit_key="unit", threshold=0.4)
    model = spacon.SpaCon(adata, hidden_dims=(16, 8, 4), seed=0)
    model.train(epochs=2, mode="sampled", batch_size=100, progress=True)
    err = capsys.readouterr().err
    draws = err.count("training:")
    assert 2 <= draws <= 4, err
    assert "24/24" in err and "loss=" in err  # the last draw: every step, and the loss


def test_a_model_saves_after_an_h5ad_round_trip_and_with_numpy_numbers(brain, tmp_path):
    """Read back from .h5ad, the spatial graph's section order is an array; parameters computed
    with NumPy are NumPy scalars: saving failed half-way on both (model.pt without model.json,
    which could be neither loaded nor saved again)."""
    adata, conn = brain
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, n_neighbors=np.int64(6), section_key="section",
                            z_radius=0)
    spacon.pp.connectome_graph(adata, conn, unit_key="unit", threshold=np.float32(0.4))
    adata.write_h5ad(tmp_path / "prepared.h5ad")
    adata = ad.read_h5ad(tmp_path / "prepared.h5ad")
    model = spacon.SpaCon(adata, hidden_dims=(8, 4, 2), seed=np.int64(1))
    model.train(np.int64(1), mode="full", progress=False).save(tmp_path / "m")
    loaded = spacon.SpaCon.load(tmp_path / "m", adata)
    assert loaded.params["seed"] == 1
    order = loaded.preprocessing["spatial_graph"]["section_order"]
    assert order == list(adata.obs["section"].cat.categories), order
    # what cannot be written is refused before anything is
    model.params["note"] = object()
    with pytest.raises(TypeError, match="cannot be written as JSON"):
        model.save(tmp_path / "other")
    assert not (tmp_path / "other").exists()


def test_a_squidpy_radius_graph_is_rebuilt_by_its_radius(brain, tmp_path):
    """squidpy's spatial_neighbors(radius=...) records its n_neighbors default (6) beside the
    radius; preparing new tissue like that failed ('exactly one of radius= or n_neighbors=')."""
    adata, conn = brain
    new = adata[:400].copy()
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, radius=700.0, section_key="section", z_radius=700.0)
    adata.uns["spatial_neighbors"]["params"]["n_neighbors"] = 6  # as squidpy writes it
    model = spacon.SpaCon(adata, connectome_key=None, hidden_dims=(8, 4, 2))
    model.train(1, mode="full", progress=False).save(tmp_path / "m")
    spacon.SpaCon.load(tmp_path / "m", new, prepare=True)
    params = new.uns["spatial_neighbors"]["params"]
    assert params["radius"] == 700.0 and params.get("n_neighbors") is None, params


@pytest.mark.filterwarnings("ignore:Observation names are not unique")  # anndata's own
def test_a_backed_sparse_file_is_refused_with_what_to_do(brain, tmp_path):
    """An .h5ad read with backed='r' keeps a sparse X on disk: spacon said 'must be numeric,
    got dtype object' (normalize, SpaCon) or raised numpy's ValueError (marker_genes)."""
    adata, _ = brain
    adata.obs["half"] = (np.arange(adata.n_obs) % 2).astype(str)
    adata.obs_names = [f"c{i // 3}" for i in range(adata.n_obs)]  # each name thrice
    with pytest.raises(spacon.SpaconInputError, match=r"not unique \(e.g. c0, c1, c2\)"):
        spacon.pp.normalize(adata.copy())
    adata.obs_names_make_unique()
    adata.write_h5ad(tmp_path / "a.h5ad")
    backed = ad.read_h5ad(tmp_path / "a.h5ad", backed="r")
    for call in (lambda: spacon.pp.normalize(backed), lambda: spacon.SpaCon(backed),
                 lambda: spacon.tl.marker_genes(backed, key="half")):
        with pytest.raises(spacon.SpaconInputError, match=r"adata = adata.to_memory\(\)"):
            call()


def test_whole_number_float_labels_match_integer_ones(brain):
    """pandas makes an integer column float once it held a missing value: units 1.0 matched no
    unit 1 of the connectivity, and section_order=[0, 1, ...] named no section 0.0."""
    adata, conn = brain
    spacon.pp.normalize(adata)
    as_int = adata.copy()
    as_int.obs["sec"] = as_int.obs["section"].cat.codes.astype(int)
    adata.obs["sec"] = as_int.obs["sec"].astype(float)
    adata.obs["unit"] = adata.obs["unit"].astype(int).astype(float)
    order = list(range(as_int.obs["sec"].nunique()))
    for data in (adata, as_int):
        spacon.pp.spatial_graph(data, n_neighbors=6, section_key="sec", section_order=order,
                                z_radius=0)
        spacon.pp.connectome_graph(data, conn, unit_key="unit", threshold=0.4)
    assert (adata.obsp["spatial_connectivities"] != as_int.obsp["spatial_connectivities"]).nnz == 0
    stored, stored_int = adata.uns["connectome_neighbors"], as_int.uns["connectome_neighbors"]
    assert list(stored["units"]) == list(stored_int["units"])
    assert (stored["unit_connectivities"] != stored_int["unit_connectivities"]).nnz == 0
    model = spacon.SpaCon(adata, hidden_dims=(8, 4, 2)).train(1, mode="full", progress=False)
    model.embed(adata)  # the stored units are found again from the float column
    assert np.isfinite(adata.obsm["X_spacon_con"]).all()
    # labels written as floats on both sides, or as the float's text, match too
    floats = Connectivity(conn.matrix, conn.labels.astype(float))
    assert list(floats.labels[:3]) == ["0", "1", "2"]
    spacon.pp.connectome_graph(adata, floats, unit_key="unit", threshold=0.4)
    text_order = [f"{s:.1f}" for s in order]  # '0.0', '1.0', ...: how the column prints
    codes, _ = spacon.pp.section_codes(adata, "sec", text_order)
    assert (codes == as_int.obs["sec"].to_numpy()).all()


@pytest.mark.filterwarnings("ignore:Some cells have zero counts")  # scanpy's own
def test_expression_on_another_scale_draws_a_warning(tmp_path):
    """New tissue normalised with scanpy's default (the median depth, not the model's 1e4),
    and expression normalised but never logged, were taken silently."""
    import scanpy as sc

    adata = spacon.datasets.layered_slice(n_cells=300, n_genes=60, seed=0)
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, n_neighbors=6)
    model = spacon.SpaCon(adata, connectome_key=None, hidden_dims=(8, 4, 2))
    model.train(1, mode="full", progress=False).save(tmp_path / "m")
    new = spacon.datasets.layered_slice(n_cells=200, n_genes=60, seed=5)
    new.X = new.X.toarray()
    new.X[:3] = 0  # cells without counts stay empty: they must not hide the scale
    median_depth = new.copy()
    sc.pp.normalize_total(median_depth)
    sc.pp.log1p(median_depth)
    with pytest.warns(spacon.SpaconWarning, match=r"normalised to \S+ counts per cell, but the "
                      r"model's training data to 10000"):
        spacon.SpaCon.load(tmp_path / "m", median_depth, prepare=True)
    same = new.copy()
    sc.pp.normalize_total(same, target_sum=1e4)
    sc.pp.log1p(same)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spacon.SpaCon.load(tmp_path / "m", same, prepare=True)
    unlogged = new.copy()
    sc.pp.normalize_total(unlogged, target_sum=1e6)
    spacon.pp.spatial_graph(unlogged, n_neighbors=6)
    with pytest.warns(spacon.SpaconWarning, match="not log-transformed"):
        spacon.SpaCon(unlogged, connectome_key=None, hidden_dims=(8, 4, 2))
    with warnings.catch_warnings(record=True) as said:  # once, and no overflow from numpy
        warnings.simplefilter("always")
        spacon.SpaCon.load(tmp_path / "m", unlogged).embed(unlogged)
    assert [str(w.message) for w in said if "log" in str(w.message)] == [
        str(w.message) for w in said], [str(w.message) for w in said]
    assert len(said) == 1 and "not log-transformed" in str(said[0].message)
    scaled = same.copy()
    sc.pp.scale(scaled)  # z-scores reach beyond 50 on rare genes, but are no unlogged data
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        spacon.pp._normalize.warn_if_unlogged(scaled)
    assert not said


def test_coordinates_with_a_text_column_are_refused_by_name(brain):
    """A coordinate table holding a field-of-view column raised pandas' 'could not convert
    string to float'."""
    import pandas as pd

    adata, _ = brain
    xy = adata.obsm["spatial"][:, :2]
    adata.obsm["spatial"] = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "fov": "f1"},
                                         index=adata.obs_names)
    with pytest.raises(spacon.SpaconInputError, match=r"numeric x, y\(, z\) coordinates "
                                                      r"\(not numbers: fov\)"):
        spacon.pp.spatial_graph(adata, n_neighbors=5)


def test_new_tissue_is_normalised_over_the_training_data_genes():
    """A cell's total was taken over whatever genes the new file held: the same cells with
    1,000 more genes embedded 41 % of the norm away, and cut to the model's genes (as advised)
    144 %. Now totals cover the genes the training data were totalled over."""
    from spacon.model._data import normalize_as_trained

    adata = spacon.datasets.layered_slice(n_cells=200, n_genes=60, seed=0)
    spacon.pp.normalize(adata)
    norm = adata.uns["spacon_normalize"]
    assert list(norm["genes"]) == list(adata.var_names)
    new = spacon.datasets.layered_slice(n_cells=150, n_genes=60, seed=5)
    extra = ad.AnnData((sp.random(150, 10, density=0.5, format="csr", random_state=0,
                                  dtype=np.float32) * 20).ceil(),
                       obs=new.obs)
    extra.var_names = [f"extra{i}" for i in range(10)]
    wider = ad.concat([new, extra], axis=1, merge="first")
    plain = new.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        normalize_as_trained(plain, norm)
        normalize_as_trained(wider, norm)
    assert np.array_equal(wider[:, new.var_names].X.toarray(), plain.X.toarray())
    cut = new[:, new.var_names[:30]].copy()
    with pytest.warns(SpaconWarning, match="over the total counts of 60 genes; these data hold "
                                           "30 of them"):
        normalize_as_trained(cut, norm)


def _spots(n: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    adata = ad.AnnData(rng.poisson(2, (n, 30)).astype(np.float32))
    adata.obs_names = [f"spot{i}" for i in range(n)]
    adata.obsm["X_spatial"] = rng.uniform(0, 10, (n, 2))
    return adata


def test_a_coordinates_key_given_as_a_graph_key_is_explained():
    # pp.spatial_graph's spatial_key names coordinates; elsewhere it names the graph: a user
    # passing the coordinates' key everywhere was sent to rebuild under it, and tl.domains
    # silently judged the domains on the embedding's own kNN graph instead
    adata = _spots()
    spacon.pp.normalize(adata)
    adata.obsm["spatial"] = adata.obsm["X_spatial"]
    with pytest.raises(spacon.SpaconInputError, match="build the spatial graph first"):
        spacon.tl.smoothed_expression(adata)  # no key given: no talk of keys
    del adata.obsm["spatial"]
    spacon.pp.spatial_graph(adata, n_neighbors=6, spatial_key="X_spatial")
    with pytest.raises(spacon.SpaconInputError, match="names the spatial graph here.*not the "
                       "coordinates obsm\\['X_spatial'\\].*leave spatial_key= unset"):
        spacon.tl.smoothed_expression(adata, spatial_key="X_spatial")
    spacon.tl.smoothed_expression(adata)
    with pytest.raises(spacon.SpaconInputError, match="names the spatial graph here"):
        spacon.tl.domains(adata, use_rep="X_smoothed", spatial_key="X_spatial", n_jobs=1)
    with pytest.raises(spacon.SpaconInputError, match="no connectome graph under "
                                                      "connectome_key='conn'"):
        spacon.tl.domains(adata, use_rep="X_smoothed", connectome_key="conn", n_jobs=1)


def test_expression_without_variation_is_named(tmp_path):
    for x in (np.full((100, 20), 2.0, np.float32), sp.csr_matrix(np.full((100, 20), 2.0,
                                                                         np.float32))):
        adata = _spots(100)[:, :20].copy()
        adata.X = x  # the float32 sums of a sparse matrix are not exactly constant
        spacon.pp.spatial_graph(adata, n_neighbors=6, spatial_key="X_spatial")
        with pytest.raises(spacon.SpaconInputError, match="no gene varies across the 100 cells"):
            spacon.tl.smoothed_expression(adata)


def test_umap_draws_the_embedding_the_domains_were_called_on():
    adata = _spots(120)
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, n_neighbors=6, spatial_key="X_spatial")
    spacon.tl.smoothed_expression(adata)
    spacon.tl.domains(adata, use_rep="X_smoothed", n_domains=3, n_jobs=1)
    assert "X_spacon" not in adata.obsm
    fig = spacon.pl.umap(adata, max_cells=100)  # used to look for obsm['X_spacon']
    assert len(fig.axes[0].collections[0].get_offsets()) == 100


def test_normalize_does_not_replace_a_users_own_counts_layer():
    rng = np.random.default_rng(0)
    for make in (np.asarray, sp.csr_matrix):
        counts = rng.poisson(2, (50, 10)).astype(np.float32)
        adata = ad.AnnData(make(counts))
        adata.layers["counts"] = make(2 * counts)  # not X: the user's own layer
        with pytest.raises(spacon.SpaconInputError, match="layers\\['counts'\\] holds other "
                                                          "values than X"):
            spacon.pp.normalize(adata)
        np.testing.assert_array_equal(_dense(adata.layers["counts"]), 2 * counts)
        np.testing.assert_array_equal(_dense(adata.X), counts)
        adata.layers["counts"] = make(counts.copy())  # the same counts: nothing is lost
        spacon.pp.normalize(adata)
        np.testing.assert_array_equal(_dense(adata.layers["counts"]), counts)
        with pytest.raises(spacon.SpaconInputError, match="X is normalised already"):
            spacon.pp.normalize(adata)  # twice: the plain reason, not the layer's


def _dense(x):
    return x.toarray() if sp.issparse(x) else np.asarray(x)


def test_scanpy_layout_counts_in_a_layer(sim_inputs, tmp_path, capsys):
    """X scaled, raw counts in layers['counts'] (scanpy's usual file): --layer counts embeds
    the counts as if X held them; without it the error names the flag; a missing layer is
    named with the ones there are; the input file is left as it was."""
    import anndata as ad
    import scanpy as sc

    import spacon

    raw = ad.read_h5ad(sim_inputs / "synthetic_brain.h5ad")
    scanpy_style = raw.copy()
    scanpy_style.layers["counts"] = scanpy_style.X.copy()
    sc.pp.normalize_total(scanpy_style)
    sc.pp.log1p(scanpy_style)
    scanpy_style.X = scanpy_style.X.toarray() - 1.0  # negative values, as sc.pp.scale leaves
    path = tmp_path / "scanpy_style.h5ad"
    scanpy_style.write_h5ad(path)
    before = path.read_bytes()
    fast = ["--no-connectivity", "--method", "leiden", "--figures", "none", "--no-report",
            "--quiet"]
    assert main(["run", "--adata", str(path), "--out", str(tmp_path / "x"), *fast]) == 2
    assert "--layer counts" in capsys.readouterr().err
    assert main(["run", "--adata", str(path), "--layer", "raw", "--out",
                 str(tmp_path / "y"), *fast]) == 2
    assert "has no layers['raw'] (its layers: 'counts')" in capsys.readouterr().err
    assert main(["run", "--adata", str(path), "--layer", "counts", "--out",
                 str(tmp_path / "run"), *fast]) == 0
    result = ad.read_h5ad(tmp_path / "run" / "result.h5ad")
    spacon.pp.normalize(raw)
    np.testing.assert_allclose(result.X.toarray() if hasattr(result.X, "toarray") else result.X,
                               raw.X.toarray(), rtol=1e-6, atol=1e-6)
    assert path.read_bytes() == before


@pytest.mark.filterwarnings("default::spacon._errors.SpaconWarning")  # shown, as for a user
def test_epochs_without_training_are_said_to_be_unused(sim_inputs, tmp_path, capsys):
    """The smoothing encoder (the default without a connectome) trains nothing: --epochs is
    said to be unused, and the summary does not record it."""
    import json

    out = tmp_path / "run"
    assert main(["run", "--adata", str(sim_inputs / "synthetic_brain.h5ad"), "--no-connectivity",
                 "--epochs", "3", "--method", "leiden", "--figures", "none", "--no-report",
                 "--quiet", "--out", str(out)]) == 0
    assert "--epochs 3 is not used" in capsys.readouterr().err
    assert json.loads((out / "summary.json").read_text())["parameters"]["epochs"] is None
    # every training option given to the smoothing encoder, and its hops to a trained one
    assert main(["run", "--adata", str(sim_inputs / "synthetic_brain.h5ad"), "--no-connectivity",
                 "--lr", "0.5", "--hidden-dims", "8", "8", "8", "--method", "leiden",
                 "--figures", "none", "--no-report", "--quiet", "--out", str(out),
                 "--overwrite"]) == 0
    assert "--lr 0.5, --hidden-dims 8 8 8 are not used: the smoothing encoder (the default " \
        "without a connectome) trains nothing" in capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parameters"]["lr"] is None and summary["parameters"]["hidden_dims"] is None
    assert summary["training"]["graphs"] == ["spatial"]
    assert main(["run", "--adata", str(sim_inputs / "synthetic_brain.h5ad"), "--no-connectivity",
                 "--encoder", "spacon", "--n-hops", "1", "--epochs", "1", "--batch-size", "300",
                 "--hidden-dims", "8", "4", "2", "--method", "leiden", "--figures", "none",
                 "--no-report", "--quiet", "--out", str(out), "--overwrite"]) == 0
    assert "--n-hops 1 is not used: only --encoder smoothing averages" in \
        capsys.readouterr().err
    # a finished run is not resumed, and the error says what to do instead
    assert main(["run", "--adata", str(sim_inputs / "synthetic_brain.h5ad"), "--no-connectivity",
                 "--resume", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "its run finished" in err and "--overwrite" in err


def test_version():
    import spacon

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert spacon.__version__


def test_cells_without_a_true_label_are_counted_out_of_the_scores(sim_inputs, tmp_path, capsys):
    """Unannotated spots (NaN in --truth) are left out of the scores, and the run says how many."""
    import json

    import anndata as ad

    adata = ad.read_h5ad(sim_inputs / "synthetic_brain.h5ad")
    adata.obs["region"] = adata.obs["region"].astype(object)
    adata.obs.iloc[:7, adata.obs.columns.get_loc("region")] = np.nan
    path = tmp_path / "unannotated.h5ad"
    adata.write_h5ad(path)
    out = tmp_path / "run"
    assert main(["run", "--adata", str(path), "--no-connectivity", "--truth", "region",
                 "--method", "leiden", "--out", str(out), *UNTRAINED]) == 0
    printed = capsys.readouterr().out
    assert "7 cells without a label in obs['region'] (NaN) left out of the scores" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["truth_scores"]["cells_without_truth"] == 7
    assert 0 < summary["truth_scores"]["0"]["ari"] <= 1
    # called again from the result: said again
    assert main(["domains", "--result", str(out), "--n-domains", "3", "--out",
                 str(tmp_path / "again"), "--figures", "none", "--no-report"]) == 0
    assert "7 cells without a label" in capsys.readouterr().out


def test_ctrl_c_while_writing_leaves_the_output_folder_as_it_was(sim_inputs, tmp_path, capsys,
                                                                 monkeypatch):
    """Interrupted while its results were written, a run left the figures of the new run beside
    the result of the one before (--overwrite) and said "nothing was saved"; a new folder was
    left behind, half filled or empty."""
    import hashlib

    import spacon.io

    data = str(sim_inputs / "synthetic_brain.h5ad")
    out = tmp_path / "run"
    drawn = [*UNTRAINED, "--figures", "basic"]
    assert main(["run", "--adata", data, "--no-connectivity", "--out", str(out), *drawn]) == 0
    capsys.readouterr()

    def files(folder):
        return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
                for p in sorted(folder.rglob("*")) if p.is_file()}

    before = files(out)
    assert "figures/domains_alpha0.png" in before

    def interrupt(*args, **kwargs):  # the figures are drawn by now
        raise KeyboardInterrupt

    monkeypatch.setattr(spacon.io, "write_h5ad", interrupt)
    assert main(["run", "--adata", data, "--no-connectivity", "--out", str(out), "--overwrite",
                 "--seed", "1", *drawn]) == 130
    assert "nothing of this run was saved" in capsys.readouterr().err
    assert files(out) == before and sorted(p.name for p in out.iterdir()) == sorted(
        p.name for p in out.iterdir() if not p.name.startswith(".spacon"))
    fresh = tmp_path / "fresh"
    assert main(["run", "--adata", data, "--no-connectivity", "--out", str(fresh),
                 *drawn]) == 130
    assert "nothing was saved" in capsys.readouterr().err and not fresh.exists()


def test_leiden_at_several_numbers_of_domains_and_a_killed_writers_folder(sim_inputs, tmp_path,
                                                                          capsys):
    """--method leiden --n-domains 3 5 was refused after training (the levels were cut from
    a gmm tree by name); a folder holding only a killed run's hidden staging folder was
    refused as not empty, which ls did not show."""
    import anndata as ad

    data = str(sim_inputs / "synthetic_brain.h5ad")
    out = tmp_path / "run"
    (out / ".spacon-partial-abc123").mkdir(parents=True)  # as kill -9 while writing leaves it
    (out / ".spacon-partial-abc123" / "result.h5ad").write_text("half")
    assert main(["run", "--adata", data, "--no-connectivity", "--out", str(out), "--method",
                 "leiden", "--n-domains", "3", "5", *UNTRAINED]) == 0
    capsys.readouterr()
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
    result = ad.read_h5ad(out / "result.h5ad")
    assert {"spacon_domain_alpha0_k3", "spacon_domain_alpha0_k5"} <= set(result.obs)
    with pytest.raises(SystemExit):  # refused as argparse refuses, before any work
        main(["run", "--adata", data, "--no-connectivity", "--out", str(tmp_path / "s"),
              "--seed", str(2**32), *UNTRAINED])
    assert "from 0 to 2**32 - 1" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_ctrl_c_message_of_a_command_whose_outputs_are_not_staged(tmp_path):
    """spacon embed writes result.h5ad first: interrupted after it, there are no earlier
    results to speak of."""
    from spacon.cli import _interrupted

    (tmp_path / "result.h5ad").write_text("this run's")
    said = _interrupted(str(tmp_path), resumable=False, staged=False)
    assert "after" in said and "result.h5ad was written" in said
    said = _interrupted(str(tmp_path), resumable=False, staged=True)
    assert "nothing of this run was saved" in said


def test_embed_cuts_a_new_connectome_as_the_training_one_was_cut(sim_inputs, tmp_path):
    """Without --threshold, embed built the full connectome graph where the model was trained
    on one cut at 0.4: the modules came out as 2 domains (ARI 0.02) against 4 (ARI 1.0)."""
    import anndata as ad

    data, conn = str(sim_inputs / "synthetic_brain.h5ad"), str(sim_inputs / "connectome.npz")
    graph = ["--connectivity", conn, "--unit-key", "unit"]
    out = tmp_path / "run"
    assert main(["run", "--adata", data, *graph, "--threshold", "0.4", "--out", str(out),
                 *SMALL]) == 0
    embedded = {}
    for name, extra in (("as_trained", []), ("given", ["--threshold", "0.4"]),
                        ("other", ["--threshold", "0.6"])):
        assert main(["embed", "--model", str(out / "model"), "--adata", data, *graph, *extra,
                     "--alpha", "0", "1", "--out", str(tmp_path / name)]) == 0
        embedded[name] = ad.read_h5ad(tmp_path / name / "result.h5ad").obsm["X_spacon_con"]
    np.testing.assert_array_equal(embedded["as_trained"], embedded["given"])
    assert not np.allclose(embedded["other"], embedded["given"])


def test_embed_finds_new_tissues_coordinates_under_the_default_key(sim_inputs, tmp_path):
    """A model trained with --spatial-key coords: new tissue keeping its coordinates in
    obsm['spatial'] was refused, even with --spatial-key spatial given."""
    import anndata as ad

    adata = ad.read_h5ad(sim_inputs / "synthetic_brain.h5ad")
    adata.obsm["coords"] = adata.obsm.pop("spatial")
    adata.write_h5ad(tmp_path / "coords.h5ad")
    out = tmp_path / "run"
    assert main(["run", "--adata", str(tmp_path / "coords.h5ad"), "--no-connectivity",
                 "--spatial-key", "coords", "--encoder", "spacon", "--out", str(out),
                 *SMALL]) == 0
    for extra in ([], ["--spatial-key", "spatial"]):
        new = tmp_path / f"new{len(extra)}"
        assert main(["embed", "--model", str(out / "model"), "--adata",
                     str(sim_inputs / "synthetic_brain.h5ad"), *extra, "--out", str(new)]) == 0
    trained = ad.read_h5ad(out / "result.h5ad").obsm["X_spacon_spa"]
    np.testing.assert_allclose(ad.read_h5ad(tmp_path / "new0" / "result.h5ad")
                               .obsm["X_spacon_spa"], trained, atol=1e-5)


def test_domains_after_smoothing_need_no_use_rep(rng):
    """smoothed_expression then domains, as a squidpy user chains them: 'adata.obsm has no
    X_spacon, run spacon.tl.fuse first', where fuse could not help."""
    from spacon.datasets import layered_slice

    adata = layered_slice(n_cells=400, n_genes=40, n_layers=2, seed=0)
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, n_neighbors=8)
    spacon.tl.smoothed_expression(adata, n_comps=5)
    spacon.tl.domains(adata, n_domains=2)
    assert adata.uns["spacon_domain"]["params"]["use_rep"] == "X_smoothed"
    assert adata.obs["spacon_domain"].nunique() == 2
    adata.obsm["X_spacon_spa"] = adata.obsm["X_smoothed"][:, :3]
    with pytest.raises(spacon.SpaconInputError, match="'X_smoothed' and 'X_spacon_spa': say "
                                                      "which embedding .* use_rep="):
        spacon.tl.domains(adata, n_domains=2)
    spacon.tl.domains(adata, n_domains=2, use_rep="X_spacon_spa")  # named: as asked
    assert adata.uns["spacon_domain"]["params"]["use_rep"] == "X_spacon_spa"
    # two spatial embeddings without a model: which one is said, not chosen in silence
    del adata.obsm["X_spacon_spa"]
    spacon.tl.spatial_pca(adata, n_comps=3)
    with pytest.raises(spacon.SpaconInputError, match="'X_smoothed' and 'X_spatial_pca'"):
        spacon.tl.domains(adata, n_domains=2)
    # none of spacon's: the ways to make one, and use_rep= for one's own (not tl.fuse alone)
    adata.obsm["X_pca"] = adata.obsm.pop("X_smoothed")
    del adata.obsm["X_spatial_pca"]
    with pytest.raises(spacon.SpaconInputError, match="no embedding of spacon's .*'X_pca'.*"
                       "smoothed_expression.*use_rep='X_pca'"):
        spacon.tl.domains(adata, n_domains=2)


@pytest.mark.filterwarnings("ignore:zero-centering a sparse")  # scanpy's own
def test_scaled_x_points_to_scanpys_raw():
    """sc.pp.scale after adata.raw = adata (scanpy's tutorial): the error suggested only a
    counts layer, which the user did not have."""
    import scanpy as sc

    rng = np.random.default_rng(0)
    adata = ad.AnnData(sp.csr_matrix(rng.poisson(2, (60, 12)).astype(np.float32)))
    adata.obsm["spatial"] = rng.uniform(size=(60, 2))
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    adata.raw = adata
    sc.pp.scale(adata)
    spacon.pp.spatial_graph(adata, n_neighbors=5)
    with pytest.raises(spacon.SpaconInputError, match=r"negative values.*pass layer=.*"
                                                      r"adata\.raw\.to_adata\(\)"):
        spacon.tl.smoothed_expression(adata)
    unscaled = adata.raw.to_adata()  # (it keeps obsm and obsp)
    spacon.tl.smoothed_expression(unscaled, n_comps=5)  # as the message says
    assert unscaled.obsm["X_smoothed"].shape == (60, 5)


def test_an_unlabelled_connectivity_file_is_matched_by_position_aloud(tmp_path):
    """A region x region .npy saved in another order than the regions in adata was matched by
    position without a word: every region got another region's wiring."""
    rng = np.random.default_rng(0)
    n = 12
    adata = ad.AnnData(rng.poisson(3, (n, 5)).astype(np.float32))
    adata.obs_names = [f"region{i}" for i in range(n)]
    w = rng.uniform(0, 0.5, size=(n, n)).astype(np.float32)
    w[np.arange(n), (np.arange(n) + 1) % n] = 1.0  # a ring of strong connections
    np.save(tmp_path / "w.npy", w)
    with pytest.warns(SpaconWarning, match=r"w\.npy has no labels: its rows and columns are taken "
                                           r"to be the 12 cells in adata's order \(row 0 = "
                                           r"'region0'"):
        spacon.pp.connectome_graph(adata, tmp_path / "w.npy", threshold=0.9)
    read = spacon.io.read_connectivity(tmp_path / "w.npy")
    with pytest.warns(SpaconWarning, match="has no labels") as said:
        for _ in range(2):  # a run matches one matrix twice (graph, prediction map): said once
            spacon.pp.connectome_graph(adata, read, threshold=0.9)
    assert len(said) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spacon.pp.connectome_graph(adata, w, threshold=0.9)  # an array of the caller's own
        adata.obs_names = [str(i) for i in range(n)]  # cells named by position too
        spacon.pp.connectome_graph(adata, tmp_path / "w.npy", threshold=0.9)


def test_units_named_by_hemisphere_against_a_one_sided_matrix():
    """Regions of both hemispheres ('MOp-L', 'MOp-R') against an ipsilateral matrix ('MOp'):
    the message listed the names without saying how they differ."""
    from spacon.io import Connectivity

    regions = ["MOp", "SSp", "VISp"]
    conn = Connectivity(sp.csr_matrix(np.ones((3, 3), np.float32)), np.array(regions))
    adata = ad.AnnData(np.ones((6, 2), np.float32))
    adata.obs["region"] = [f"{r}-{side}" for side in "LR" for r in regions]
    with pytest.raises(spacon.SpaconInputError, match=r"they carry a hemisphere's mark the "
                                                      r"matrix's labels do not \(e\.g\. "
                                                      r"'MOp-L'\).*hemispheres='both'[^.]*\.$"):
        spacon.pp.connectome_graph(adata, conn, unit_key="region")
    adata.obs["region"] = ["mop", "SSp", "VISp"] * 2  # case alone; two regions match
    with pytest.raises(spacon.SpaconInputError, match=r"only in case or spaces: make them the "
                                                      r"same. To leave their cells out: adata "
                                                      r"= adata\[adata"):
        spacon.pp.connectome_graph(adata, conn, unit_key="region")
    sided = Connectivity(sp.csr_matrix(np.ones((6, 3 * 2), np.float32)),
                         np.array([f"{r}_{side}" for side in "LR" for r in regions]))
    adata.obs["region"] = regions * 2  # the matrix has sides, the data not
    with pytest.raises(spacon.SpaconInputError, match=r"the matrix's labels carry a hemisphere's "
                                                      r"mark these do not \(e\.g\. 'MOp_L'\)"):
        spacon.pp.connectome_graph(adata, sided, unit_key="region")


def test_an_earlier_demo_with_its_marker_table_is_recognised(tmp_path):
    from spacon._demo import check_demo_output

    for name in ("result.h5ad", "domains.csv", "markers.csv", "demo_scores.json"):
        (tmp_path / name).write_text("x")
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "synthetic_brain.h5ad").write_text("x")
    check_demo_output(tmp_path, overwrite=False)  # every file is one a demo writes
    (tmp_path / "notes.md").write_text("mine")
    with pytest.raises(SpaconInputError, match="not an earlier demo's"):
        check_demo_output(tmp_path, overwrite=False)


@pytest.mark.filterwarnings("ignore:Some cells have zero counts")  # scanpy's own
def test_expression_normalised_to_the_median_depth_is_said(tmp_path, caplog):
    """scanpy's normalize_total takes the median cell's depth; spacon's, 1e4: on one STARmap
    slice the domains' ARI was 0.39 against 0.85, and --no-normalize said nothing."""
    import scanpy as sc

    adata = spacon.datasets.layered_slice(n_cells=300, n_genes=40, seed=0)
    adata.layers["counts"] = adata.X.copy()
    for name, target in (("median", None), ("ten_thousand", 1e4)):
        other = adata.copy()
        sc.pp.normalize_total(other, target_sum=target)
        sc.pp.log1p(other)
        other.write_h5ad(tmp_path / f"{name}.h5ad")
        assert main(["run", "--adata", str(tmp_path / f"{name}.h5ad"), "--no-normalize",
                     "--no-connectivity", "--n-neighbors", "6", "--n-domains", "2",
                     "--figures", "none", "--no-report", "--markers", "0",
                     "--out", str(tmp_path / name)]) == 0
        said = caplog.text
        caplog.clear()
        assert ("X was normalised to" in said) == (name == "median"), said
        if name == "median":
            assert "--layer counts normalises the counts in layers['counts']" in said
    # normalised by spacon to a depth of the user's choosing: theirs, not scanpy's default
    from spacon._pipeline import warn_other_depth

    own = adata.copy()
    spacon.pp.normalize(own, target_sum=1e6)
    warn_other_depth(own)
    assert "X was normalised to" not in caplog.text
