import hashlib
import json

import numpy as np
import pytest

import spacon
from spacon._pipeline import checked
from spacon.cli import main

SMALL = ["--hidden-dims", "16", "8", "4", "--epochs", "1", "--batch-size", "400", "--quiet"]


@pytest.fixture
def inputs(sim_inputs):
    return sim_inputs


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def base_args(inputs, out):
    return ["run", "--adata", str(inputs / "synthetic_brain.h5ad"), "--connectivity",
            str(inputs / "connectome.npz"), "--unit-key", "unit", "--section-key", "section",
            "--radius", "700", "--z-radius", "700", "--threshold", "0.4", "--out", str(out), *SMALL]


def test_simulate_writes_what_run_reads(inputs):
    text = (inputs / "README.txt").read_text()
    assert "obs columns" in text and "spacon run" in text and "--unit-key unit" in text
    conn = spacon.io.read_connectivity(inputs / "connectome.npz")
    assert conn.labels is not None


def test_simulate_one_section_suggests_no_section_flags(tmp_path, capsys):
    assert main(["simulate", "--n-cells", "300", "--n-sections", "1", "--out",
                 str(tmp_path / "one")]) == 0
    text = (tmp_path / "one" / "README.txt").read_text()
    assert "one 2-D section" in text and "--z-radius" not in text
    assert "--section-key" not in text and "--radius " in text


@pytest.mark.slow
@pytest.mark.filterwarnings("default::spacon._errors.SpaconWarning")  # base_args' --epochs
def test_run_writes_every_output_and_leaves_input_untouched(inputs, tmp_path):
    before = {p.name: digest(p) for p in inputs.iterdir()}
    out = tmp_path / "res"
    assert main(base_args(inputs, out) + ["--alpha", "0", "0.5", "1", "--refine", "10"]) == 0
    assert {p.name: digest(p) for p in inputs.iterdir()} == before
    import anndata as ad

    res = ad.read_h5ad(out / "result.h5ad")
    for key in ("spacon_domain_alpha0", "spacon_domain_alpha0.5", "spacon_domain_alpha1",
                "spacon_domain"):
        assert key in res.obs
    assert (res.obs["spacon_domain"] == res.obs["spacon_domain_alpha0"]).all()
    # the domains' colours stored as scanpy stores them, for the copied column too
    assert list(res.uns["spacon_domain_colors"]) == list(res.uns["spacon_domain_alpha0_colors"])
    # and how they were called, so the README's uns['spacon_domain'] keys are there, and its
    # tree is cut without a refit
    assert (res.uns["spacon_domain"]["selection"]["reason"]
            == res.uns["spacon_domain_alpha0"]["selection"]["reason"])
    spacon.tl.domains(res, n_domains=2, tree_key="spacon_domain", key_added="two")
    assert res.obs["two"].nunique() == 2
    assert {"X_spacon_con", "X_spacon_spa", "X_spacon"} <= set(res.obsm)
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["n_domains"]) == {"0", "0.5", "1"}
    assert summary["parameters"]["threshold"] == 0.4
    for name in summary["figures"]:
        assert (out / name).stat().st_size > 1000
    assert (out / "model" / "model.pt").exists()
    # the same directory again is refused
    assert main(base_args(inputs, out)) == 2
    # --overwrite with a smoothing run at alpha 0 without a report leaves nothing of the
    # earlier run that the new one did not write: no model for `spacon predict` to pick up,
    # no figures of alphas 0.5 and 1, no report of the old domains; other files stay
    assert (out / "report.html").exists() and list((out / "figures").glob("*alpha1.png"))
    (out / "notes.txt").write_text("mine")
    assert main(base_args(inputs, out) + ["--alpha", "0", "--encoder", "smoothing",
                                          "--n-domains", "3", "--no-report",
                                          "--overwrite"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert not (out / "model").exists() and not (out / "report.html").exists()
    assert sorted(f"figures/{p.name}" for p in (out / "figures").glob("*.png")) == sorted(
        summary["figures"])
    assert (out / "notes.txt").read_text() == "mine"


def test_config_file_and_flags_override(inputs, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text('alpha = [1.0]\nn-domains = 2\nmethod = "gmm"\nseed = 3\n')
    out = tmp_path / "c"
    assert main(base_args(inputs, out) + ["--config", str(cfg), "--seed", "5"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parameters"]["seed"] == 5 and summary["parameters"]["alpha"] == [1.0]
    assert summary["n_domains"] == {"1": 2}


def test_no_connectivity_flag_overrides_a_config_files_connectome(inputs, tmp_path):
    from spacon.cli import _config, build_parser

    cfg = tmp_path / "run.toml"
    cfg.write_text(f'connectivity = "{inputs / "connectome.npz"}"\nunit-key = "unit"\n')
    args = build_parser().parse_args(["run", "--config", str(cfg), "--no-connectivity"])
    config = _config(args)
    assert config.no_connectivity and config.connectivity is None
    both = build_parser().parse_args(["run", "--connectivity", "c.npz", "--no-connectivity"])
    with pytest.raises(spacon.SpaconInputError, match="contradict"):
        checked(_config(both).updated({"adata": "a.h5ad", "out": "o"}))


def test_spatial_only_run(inputs, tmp_path):
    out = tmp_path / "s"
    args = ["run", "--adata", str(inputs / "synthetic_brain.h5ad"), "--no-connectivity",
            "--section-key", "section", "--z-radius", "0", "--n-neighbors", "6", "--alpha", "0",
            "--out", str(out), "--quiet"]
    assert main(args) == 0
    import anndata as ad

    res = ad.read_h5ad(out / "result.h5ad")
    assert "X_spacon_con" not in res.obsm and "spacon_domain_alpha0" in res.obs


@pytest.mark.parametrize(
    "change,message",
    [
        (["--adata", "missing.h5ad"], "does not exist"),
        (["--unit-key", "nope"], "no unit column"),
        (["--section-key", "nope"], "no section column"),
        (["--section-order", "s000,s001"], "absent from section_order"),
        (["--threshold", "1e9"], "no connections are left"),
        (["--alpha", "2"], r"\[0, 1\]"),
        (["--spatial-key", "nope"], "no 'nope' coordinates"),
    ],
)
def test_bad_inputs_give_one_clear_error_and_no_result(inputs, tmp_path, capsys, change, message):
    out = tmp_path / "bad"
    args = base_args(inputs, out)
    flag = change[0]
    if flag in args:
        i = args.index(flag)
        args[i + 1] = change[1]
    else:
        args += change
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err
    import re

    assert re.search(message, err)
    assert not (out / "result.h5ad").exists()


def test_config_errors(inputs, tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("alpah = 1\n")
    assert main(base_args(inputs, tmp_path / "o") + ["--config", str(cfg)]) == 2
    assert "unknown option(s) alpah (alpah: did you mean alpha?)" in capsys.readouterr().err
    cfg.write_text("hidden_dims = inf\n")  # int(inf) raised OverflowError
    assert main(base_args(inputs, tmp_path / "o") + ["--config", str(cfg)]) == 2
    assert "'hidden_dims' is [inf]; it needs finite numbers" in capsys.readouterr().err
    cfg.write_text('epochs = "many"\n')
    assert main(base_args(inputs, tmp_path / "o") + ["--config", str(cfg)]) == 2
    assert "wrong type" in capsys.readouterr().err
    cfg.write_text("epochs = \n")
    assert main(base_args(inputs, tmp_path / "o") + ["--config", str(cfg)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    # list entries as written: 4.5 domains was run as 4, [true] as 1 domain or alpha 1
    for text in ("n_domains = 4.5", "n_domains = [true]", "alpha = [true]"):
        cfg.write_text(text + "\n")
        assert main(base_args(inputs, tmp_path / "o") + ["--config", str(cfg)]) == 2
        assert "has the wrong type" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_config_as_a_user_writes_it(tmp_path):
    """A byte-order mark (Notepad's, Excel's) and a section order written as the flag takes
    it, "s001,s000"."""
    from spacon._pipeline import RunConfig

    cfg = tmp_path / "run.toml"
    cfg.write_text('section_order = "s001, s000"\nn_domains = [4.0, 8]\n', encoding="utf-8-sig")
    config = RunConfig.from_toml(cfg)
    assert config.section_order == ["s001", "s000"] and config.n_domains == [4, 8]
    cfg.write_text("section_order = [1, 2, 3]\n")  # sections numbered
    assert RunConfig.from_toml(cfg).section_order == ["1", "2", "3"]


def test_unwritable_output(inputs, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(base_args(inputs, blocker)) == 2
    assert "not a directory" in capsys.readouterr().err


def test_an_input_where_the_results_go_is_refused(inputs, tmp_path, capsys):
    """--adata OUT/result.h5ad with --overwrite would replace the input: refused, untouched."""
    import shutil

    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(inputs / "synthetic_brain.h5ad", out / "result.h5ad")
    before = (out / "result.h5ad").read_bytes()
    args = base_args(inputs, out)
    args[args.index("--adata") + 1] = str(out / "result.h5ad")
    assert main(args + ["--overwrite"]) == 2
    assert "--adata" in (err := capsys.readouterr().err) and "would be overwritten" in err
    assert (out / "result.h5ad").read_bytes() == before
    (out / "model").mkdir()
    shutil.copy(inputs / "connectome.npz", out / "model" / "c.npz")
    args = base_args(inputs, out)
    args[args.index("--connectivity") + 1] = str(out / "model" / "c.npz")
    assert main(args + ["--overwrite"]) == 2
    assert "--connectivity" in capsys.readouterr().err


def test_help_for_every_command(capsys):
    for cmd in (["--help"], ["simulate", "--help"], ["run", "--help"], ["demo", "--help"]):
        with pytest.raises(SystemExit) as e:
            main(cmd)
        assert e.value.code == 0
    assert "--alpha" in capsys.readouterr().out


def test_help_says_where_config_paths_and_truth_scores_go(capsys):
    def help_of(command):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        return " ".join(capsys.readouterr().out.split())

    run = help_of("run")
    assert "relative to the file's own folder" in run  # as RunConfig.from_toml reads them
    assert "kept in summary.json" in run
    assert "embed writes no summary.json" in help_of("embed")


def test_simulate_refuses_to_overwrite(inputs, capsys):
    assert main(["simulate", "--n-cells", "900", "--n-genes", "80", "--n-sections", "3",
                 "--n-regions", "6", "--n-modules", "2", "--out", str(inputs)]) == 2
    assert "--overwrite" in capsys.readouterr().err




@pytest.mark.parametrize(
    "extra",
    [
        ["--top-k", "3", "--symmetrize", "--negative", "absolute", "--method", "leiden",
         "--resolution", "0.5", "--alpha", "1"],
        ["--mode", "full", "--device", "cpu", "--n-domains", "3", "--alpha", "0",
         "--section-order", "s000,s001,s002", "--z-radius", "400"],
        ["--method", "louvain", "--resolution", "0.5", "--alpha", "0.5"],
    ],
)
def test_run_options(inputs, tmp_path, extra):
    out = tmp_path / "opt"
    assert main(base_args(inputs, out) + extra) == 0
    summary = json.loads((out / "summary.json").read_text())
    if "--n-domains" in extra:
        assert list(summary["n_domains"].values()) == [int(extra[extra.index("--n-domains") + 1])]
    if "--mode" in extra:
        assert summary["training"]["mode"] == "full"
    if "--top-k" in extra:
        assert summary["parameters"]["top_k"] == 3 and summary["parameters"]["symmetrize"]
    if "--method" in extra:
        import anndata as ad

        res = ad.read_h5ad(out / "result.h5ad")
        alpha = extra[extra.index("--alpha") + 1]
        key = f"spacon_domain_alpha{alpha}"
        assert res.uns[key]["params"]["method"] == extra[extra.index("--method") + 1]
        assert res.uns[key]["params"]["resolution"] == 0.5
        assert res.obs[key].nunique() == summary["n_domains"][alpha] >= 2


def test_run_with_named_dense_connectivity_knn_and_prenormalised(inputs, tmp_path):
    import anndata as ad

    adata = ad.read_h5ad(inputs / "synthetic_brain.h5ad")
    conn = spacon.io.read_connectivity(inputs / "connectome.npz")
    np.savez(tmp_path / "dense.npz", sc=conn.matrix.toarray(), fc=-conn.matrix.toarray())
    spacon.pp.normalize(adata)
    adata.obsm["xyz"] = adata.obsm["spatial"]
    del adata.obsm["spatial"]
    adata.write_h5ad(tmp_path / "norm.h5ad")
    out = tmp_path / "dense"
    args = ["run", "--adata", str(tmp_path / "norm.h5ad"), "--connectivity",
            str(tmp_path / "dense.npz"), "--connectivity-key", "sc", "--unit-key", "unit",
            "--spatial-key", "xyz", "--n-neighbors", "8", "--no-normalize", "--threshold", "0.4",
            "--alpha", "1", "--out", str(out), *SMALL]
    assert main(args) == 0
    res = ad.read_h5ad(out / "result.h5ad")
    assert "spacon_domain_alpha1" in res.obs
    # counts were expected: normalising log data must be refused
    args[args.index("--no-normalize")] = "--overwrite"
    assert main(args) == 2


def test_embed_refuses_training_options_it_would_ignore(capsys):
    """`spacon embed` reuses a trained model: training options are an error, not ignored."""
    with pytest.raises(SystemExit) as stop:
        main(["embed", "--model", "m", "--adata", "a.h5ad", "--epochs", "3"])
    assert stop.value.code == 2
    assert "--epochs" in capsys.readouterr().err


def test_simulate_writes_only_into_its_out_folder(tmp_path, capsys):
    for name in ("../escape", "a/b", ".."):
        assert main(["simulate", "--name", name, "--n-cells", "300", "--n-genes", "60",
                     "--out", str(tmp_path / "sim")]) == 2
        assert "must be a file name" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.h5ad"))


def test_simulate_names_sizes_and_quotes_its_command(tmp_path, capsys):
    assert main(["simulate", "--n-cells", "100000000000", "--out", str(tmp_path / "big")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "simulate fewer cells or genes" in err
    assert not (tmp_path / "big").exists()
    out = tmp_path / "sim"
    assert main(["simulate", "--name", "my brain.h5ad", "--n-cells", "300", "--n-genes", "60",
                 "--n-sections", "2", "--n-regions", "4", "--n-modules", "2",
                 "--out", str(out)]) == 0
    assert (out / "my brain.h5ad").exists()  # not my brain.h5ad.h5ad
    assert "--adata 'my brain.h5ad'" in (out / "README.txt").read_text()


def test_overwrite_removes_checkpoints_of_another_number_of_processes(inputs, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    for r in range(2):  # an interrupted two-process run's
        (out / f"checkpoint.rank{r}.pt").write_bytes(b"x")
    assert main(base_args(inputs, out) + ["--overwrite", "--figures", "none", "--no-report"]) == 0
    assert (out / "result.h5ad").exists() and not list(out.glob("checkpoint*"))
