"""Data-parallel training under torchrun (gloo on CPU) matches averaging the ranks' gradients."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import spacon
from spacon.model import SampledBatches, SpaCon
from spacon.model._train import TrainConfig

STEPS = 4
SETUP = """
import spacon
adata, conn = spacon.datasets.synthetic_brain(n_cells=800, n_genes=60, n_sections=4,
                                              n_regions=8, n_modules=2, seed=3)
spacon.pp.normalize(adata)
spacon.pp.spatial_graph(adata, n_neighbors=6)
spacon.pp.connectome_graph(adata, conn, unit_key="unit", threshold=0.4)
model = spacon.SpaCon(adata, hidden_dims=(32, 16, 8), dropout=0.0, seed=0)
"""
WORKER = SETUP + f"""
import sys, torch, torch.distributed as dist
dist.init_process_group("gloo")
model.train(mode="sampled", epochs=1, batch_size=64, max_steps={STEPS}, progress=False, seed=0)
torch.save({{"state": model.module.state_dict(), "history": model.history,
            "params": model.train_params}}, f"{{sys.argv[1]}}/rank{{dist.get_rank()}}.pt")
dist.destroy_process_group()
"""


@pytest.fixture(autouse=True)
def _scratch_in_tmp_path(tmp_path, monkeypatch):
    """torchrun leaves a ``torchelastic_*`` folder in the temporary directory on every run:
    here it goes to the test's own folder, which pytest cleans up.
    """
    monkeypatch.setenv("TMPDIR", str(tmp_path))


def torchrun(*args, timeout=300):
    """Run ``args`` (a script, or ``-m module ...``) on two gloo ranks under torchrun."""
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", "2", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def torchrun_worker(source: str, folder):
    """Write ``source`` as a script in ``folder`` and run it on two ranks (``argv[1]`` = folder)."""
    script = folder / "worker.py"
    script.write_text(textwrap.dedent(source))
    return torchrun(script, folder)


def reference_state():
    """What two ranks should reach: each step averages the gradients of both shards' batches."""
    namespace: dict = {}
    exec(SETUP, namespace)
    model: SpaCon = namespace["model"]
    module = model.module
    module.train()
    opt = torch.optim.Adam(module.parameters(), lr=5e-3, weight_decay=1e-4)
    default = TrainConfig()  # the default fan-outs the ranks trained with
    sampler = spacon.graph.NeighborSampler(model.data.connectome, model.data.spatial,
                                           default.fanouts, 64, "neighbors",
                                           default.spatial_fanout, seed=0)
    shards = [SampledBatches(model.data, sampler, r, 2).epoch(0) for r in range(2)]
    for _ in range(STEPS):
        grads = []
        for shard in shards:
            x, adj_con, adj_spa, _ = next(shard)
            module.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(module(x, adj_con, adj_spa)[2], x,
                                                reduction="sum")
            loss.backward()
            grads.append([p.grad.clone() for p in module.parameters()])
        for p, g0, g1 in zip(module.parameters(), *grads):
            p.grad = (g0 + g1) / 2
        torch.nn.utils.clip_grad_norm_(module.parameters(), 5.0)
        opt.step()
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.slow
def test_torchrun_two_ranks(tmp_path):
    run = torchrun_worker(WORKER, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    # every rank ends with the same model and the same (global) loss history
    for key, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][key]), key
    assert ranks[0]["history"] == ranks[1]["history"]
    assert [r["params"]["rank"] for r in ranks] == [0, 1]
    assert ranks[0]["params"]["world_size"] == 2 and ranks[0]["params"]["steps"] == STEPS
    # and it is the model that averaging both shards' gradients at each step gives
    expected = reference_state()
    for key, value in expected.items():
        if "running" in key or "num_batches" in key:
            continue  # batch-norm statistics: rank 0's are kept
        np.testing.assert_allclose(ranks[0]["state"][key].numpy(), value.numpy(), atol=1e-5,
                                   err_msg=key)


def test_rank_arguments_must_agree_with_the_group(monkeypatch, brain):
    from spacon import SpaconInputError
    from spacon.model import _spacon

    adata, conn = brain
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, n_neighbors=6)
    spacon.pp.connectome_graph(adata, conn, unit_key="unit", threshold=0.4)
    model = spacon.SpaCon(adata, hidden_dims=(8, 4, 2), seed=0)
    monkeypatch.setattr(_spacon, "process_group", lambda: (1, 2))
    with pytest.raises(SpaconInputError, match="disagree with the process group"):
        model.train(rank=0, world_size=3, progress=False)
    with pytest.raises(SpaconInputError, match="use mode='sampled'"):
        model.train(mode="full", progress=False)


@pytest.mark.slow
def test_thread_count_follows_the_environment_and_idle_cpus(monkeypatch):
    """OMP_NUM_THREADS (torchrun sets 1 per rank) wins; else busy CPUs are left out."""
    import spacon._utils as utils

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert utils.choose_threads() == 1
    assert utils.choose_threads(3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "")
    monkeypatch.setattr(utils, "available_cpus", lambda: 4)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(utils, "busy_cpus", lambda cpus: 1.1)
    assert utils.choose_threads() == 3
    monkeypatch.setattr(utils, "busy_cpus", lambda cpus: 3.9)
    assert utils.choose_threads() == 1
    before = torch.get_num_threads()
    with utils.cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_gpu_ranks_use_nccl_on_their_local_device(monkeypatch):
    import torch.distributed as dist

    from spacon.model import _distributed

    calls = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: calls.setdefault("device", i))
    monkeypatch.setattr(dist, "is_nccl_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda b: calls.setdefault("backend", b))
    _distributed.init_from_environment("auto")
    assert calls == {"device": 1, "backend": "nccl"}


# a worker's last lines: each rank writes what its call gave (an error's message) to a file
OUTCOME = """
try:
    {call}
    outcome = "done"
except SpaconInputError as err:
    outcome = str(err)
open(os.path.join(sys.argv[1], f"outcome{{dist.get_rank()}}"), "w").write(outcome)
dist.destroy_process_group()
"""

RESUME_WORKER = SETUP + """
import os, sys, torch.distributed as dist
from spacon import SpaconInputError
dist.init_process_group("gloo")
ckpt = os.path.join(sys.argv[1], "ck.pt")
model.train(mode="sampled", epochs=1, batch_size=64, max_steps=3, progress=False,
            checkpoint=ckpt, checkpoint_interval=0)
dist.barrier()
if dist.get_rank() == 1:
    os.remove(os.path.join(sys.argv[1], "ck.rank1.pt"))  # one rank lost its checkpoint
dist.barrier()
""" + OUTCOME.format(call='model.train(mode="sampled", epochs=1, batch_size=64, max_steps=3, '
                    'progress=False, checkpoint=ckpt, resume=True)')


@pytest.mark.slow
def test_resume_refuses_checkpoints_from_different_steps(tmp_path):
    run = torchrun_worker(RESUME_WORKER, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    for r in range(2):  # every rank stops with the same clear error instead of hanging
        assert "stop at different steps" in (tmp_path / f"outcome{r}").read_text()


@pytest.mark.slow
def test_distributed_run_stopped_with_ctrl_c_resumes_to_the_same_result(sim_inputs, tmp_path):
    """spacon run on two ranks, then the same run stopped with Ctrl-C and resumed."""
    import json
    import signal
    import time

    import anndata as ad

    def command(out, *extra):
        return ["-m", "spacon.cli", "--verbose", "run", "--adata",
                sim_inputs / "synthetic_brain.h5ad", "--connectivity",
                sim_inputs / "connectome.npz", "--unit-key", "unit", "--n-neighbors", "6",
                "--threshold", "0.4", "--mode", "sampled", "--epochs", "4", "--batch-size",
                "128", "--hidden-dims", "16", "8", "4", "--alpha", "1", "--method", "leiden",
                "--out", out, "--figures", "none", "--quiet", *extra]

    # spacon run under torchrun: rank 0 alone reports and writes
    whole = torchrun(*command(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr[-2000:]
    assert whole.stdout.count("wrote ") == 1
    summary = json.loads((tmp_path / "whole" / "summary.json").read_text())
    assert summary["training"]["world_size"] == 2
    assert summary["training"]["steps"] == 4 * 4  # 900 cells, 450 per rank, 4 batches of 128
    assert not list((tmp_path / "whole").glob("checkpoint*"))  # removed after success
    out = tmp_path / "stopped"
    proc = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         *map(str, command(out, "--checkpoint-interval", "0"))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "checkpoint.rank1.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    if not (out / "checkpoint.rank1.pt").exists():
        proc.kill()
        pytest.fail(f"no checkpoint after 120 s: {proc.communicate()[1][-2000:]}")
    proc.send_signal(signal.SIGINT)  # torchrun passes Ctrl-C to every rank
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "--resume" in err, err[-2000:]
    assert not (out / "result.h5ad").exists()
    stopped_at = [torch.load(out / f"checkpoint.rank{r}.pt", weights_only=False)["position"]
                  for r in range(2)]
    assert stopped_at[0]["steps"] == stopped_at[1]["steps"] > 0  # both ranks stopped together
    resumed = torchrun(*command(out, "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert resumed.stderr.count("resuming training at epoch") == 2  # from the checkpoints
    a = ad.read_h5ad(tmp_path / "whole" / "result.h5ad")
    b = ad.read_h5ad(out / "result.h5ad")
    assert np.isfinite(a.obsm["X_spacon_con"]).all() and "spacon_domain_alpha1" in a.obs
    np.testing.assert_array_equal(a.obsm["X_spacon_con"], b.obsm["X_spacon_con"])
    np.testing.assert_array_equal(a.obsm["X_spacon_spa"], b.obsm["X_spacon_spa"])
    assert not list(out.glob("checkpoint*"))


OTHER_DATA_WORKER = """
import os, sys, torch.distributed as dist
import spacon
from spacon import SpaconInputError
dist.init_process_group("gloo")
adata, conn = spacon.datasets.synthetic_brain(n_cells=800, n_genes=60, n_sections=4,
                                              n_regions=8, n_modules=2,
                                              seed=3 + dist.get_rank())  # other cells on rank 1
spacon.pp.normalize(adata)
spacon.pp.spatial_graph(adata, n_neighbors=6)
model = spacon.SpaCon(adata, connectome_key=None, hidden_dims=(16, 8, 4), seed=0)
""" + OUTCOME.format(call='model.train(mode="sampled", epochs=1, batch_size=64, max_steps=2, '
                    'progress=False)')


@pytest.mark.slow
def test_ranks_with_different_data_are_refused_before_training(tmp_path):
    run = torchrun_worker(OTHER_DATA_WORKER, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    for r in range(2):  # every rank stops with the same clear error, no hang, no gloo abort
        assert "hold different training data" in (tmp_path / f"outcome{r}").read_text()


def test_checkpoints_of_another_number_of_processes_are_named(tmp_path, capsys):
    """--resume with another number of processes says how the run was started; Ctrl-C after
    a distributed run's training says its checkpoints are kept."""
    from spacon._pipeline import checkpoints_in, prepare_output
    from spacon.cli import _interrupted

    out = tmp_path / "run"
    out.mkdir()
    for r in range(2):
        (out / f"checkpoint.rank{r}.pt").write_bytes(b"x")
    (out / "checkpoint_notes.pt").write_bytes(b"x")  # not a checkpoint of spacon's
    assert [p.name for p in checkpoints_in(out)] == ["checkpoint.rank0.pt", "checkpoint.rank1.pt"]
    with pytest.raises(spacon.SpaconInputError, match="written by 2 processes and this run has "
                       "1: resume under torchrun --nproc-per-node 2"):
        prepare_output(out, overwrite=False, resume=True)
    with pytest.raises(spacon.SpaconInputError, match="pass --resume to continue it, under "
                       "torchrun --nproc-per-node 2"):
        prepare_output(out, overwrite=False, resume=False, world_size=1)
    assert "checkpoint is kept in" in _interrupted(str(out), resumable=True, staged=True)
    with pytest.raises(spacon.SpaconInputError, match="holds no checkpoint.rank2.pt"):
        prepare_output(out, overwrite=False, resume=True, world_size=3)  # one lost: named
    one = tmp_path / "one"
    one.mkdir()
    (one / "checkpoint.pt").write_bytes(b"x")
    with pytest.raises(spacon.SpaconInputError, match="written by 1 process and this run has "
                       "2: resume without torchrun"):
        prepare_output(one, overwrite=False, resume=True, world_size=2)
