"""A run killed (SIGKILL) or stopped (Ctrl-C) mid-training resumes to the uninterrupted result."""

import signal
import subprocess
import sys
import time

import anndata as ad
import numpy as np
import pytest
import torch

from spacon.cli import main

# one thread, as the test processes run (the result does not depend on the count:
# tests/test_repeatable.py)
ARGS = ["--threads", "1", "--hidden-dims", "16", "8", "4", "--epochs", "4", "--batch-size", "50",
        "--mode", "sampled", "--alpha", "0", "1", "--figures", "none", "--method",
        "leiden", "--quiet"]  # (Leiden: the domains are not what is tested here)


@pytest.fixture
def inputs(sim_inputs):
    return sim_inputs


def run_args(inputs, out):
    return ["run", "--adata", str(inputs / "synthetic_brain.h5ad"), "--connectivity",
            str(inputs / "connectome.npz"), "--unit-key", "unit", "--section-key", "section",
            "--radius", "700", "--z-radius", "700", "--threshold", "0.4", "--out", str(out), *ARGS]


def start_and_stop(args, out, sig):
    """Start ``spacon run`` in a new process and send ``sig`` once a checkpoint exists."""
    proc = subprocess.Popen([sys.executable, "-m", "spacon.cli", *args,
                             "--checkpoint-interval", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoint = out / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.01)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.fixture(scope="module")
def whole(sim_inputs, tmp_path_factory):
    """The uninterrupted run both ways of stopping are compared with."""
    out = tmp_path_factory.mktemp("resume") / "whole"
    assert main(run_args(sim_inputs, out)) == 0
    assert not (out / "checkpoint.pt").exists()  # removed once the result is written
    return out


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "Ctrl-C"])
@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_embeddings(inputs, whole, tmp_path, sig):

    out = tmp_path / "stopped"
    code, err = start_and_stop(run_args(inputs, out), out, sig)
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
    else:
        assert code == 130
        assert "--resume" in err and "Traceback" not in err
    assert not (out / "result.h5ad").exists()
    position = torch.load(out / "checkpoint.pt", weights_only=False)["position"]
    assert position["steps"] < 4 * 18  # stopped before the end of training

    # without --resume the directory is refused, with a hint
    assert main(run_args(inputs, out)) == 2
    assert main(run_args(inputs, out) + ["--resume"]) == 0
    a, b = ad.read_h5ad(whole / "result.h5ad"), ad.read_h5ad(out / "result.h5ad")
    for key in ("X_spacon_spa", "X_spacon_con"):
        assert np.array_equal(a.obsm[key], b.obsm[key]), key
    assert (a.obs["spacon_domain_alpha1"] == b.obs["spacon_domain_alpha1"]).all()
    assert np.array_equal(a.uns["spacon"]["loss_history"], b.uns["spacon"]["loss_history"])


def test_resume_needs_a_checkpoint(inputs, tmp_path, capsys):
    assert main(run_args(inputs, tmp_path / "new") + ["--resume"]) == 2
    assert "holds no checkpoint.pt" in capsys.readouterr().err


def test_checkpoints_of_the_former_default_batches(tmp_path):
    """Full-batch checkpoints ignore the sampling options; a sampled one of the former default
    batches is refused with the settings that resume it."""
    from spacon import SpaconInputError
    from spacon.model._checkpoint import load_checkpoint
    from spacon.model._train import TrainConfig

    former = {"batch_size": 256, "fanouts": [10, 5, 5], "spatial_fanout": 20}
    for mode in ("full", "sampled"):
        now = TrainConfig(mode=mode, data="d").resume_params()
        path = tmp_path / f"{mode}.pt"
        torch.save({"train_params": {**now, **former}}, path)
        if mode == "full":
            assert load_checkpoint(path, now)["train_params"]["batch_size"] == 256
        else:
            with pytest.raises(SpaconInputError, match=r"batch_size=256 \(now 64\).*"
                               r"SpaCon.train\(batch_size=256, fanouts=\(10, 5, 5\)"):
                load_checkpoint(path, now)
    torch.save({"train_params": {**now, "lr": 1.0}}, path)
    with pytest.raises(SpaconInputError, match="resume with the same options"):
        load_checkpoint(path, now)
