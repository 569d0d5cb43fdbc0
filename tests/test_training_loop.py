"""The training loop's pieces and the contract defects a review found (one test each)."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from dataclasses import fields

import numpy as np
import pytest
import torch

import spacon
from spacon import SpaCon, SpaconInputError
from spacon.model import TrainConfig, TrainingInterrupted, _train

DIMS = (16, 8, 4)


@pytest.fixture
def prepared(brain):
    adata, conn = brain
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, n_neighbors=6, section_key="section", z_radius=0)
    spacon.pp.connectome_graph(adata, conn, unit_key="unit", threshold=0.4)
    return adata


def test_embedding_new_tissue_leaves_the_model_bound_to_its_training_data(prepared):
    model = SpaCon(prepared, hidden_dims=DIMS).train(2, mode="full", progress=False)
    new = prepared[:400].copy()
    new.uns.pop("connectome_neighbors")  # a unit-level (factored) connectome
    assert "connectome_connectivities" not in new.obsp
    spacon.pp.spatial_graph(new, n_neighbors=6, section_key="section", z_radius=0)
    model.embed(new)
    assert new.obsm["X_spacon_spa"].shape == (400, DIMS[-1])
    assert "X_spacon_con" not in new.obsm
    assert model.adata is prepared
    model.train(1, mode="sampled", batch_size=200, progress=False)  # used to fail
    assert model.epochs_done == 3


def test_a_nan_layer_is_refused(prepared):
    prepared.layers["counts"] = prepared.X.copy()
    prepared.layers["counts"][0, 0] = np.nan
    with pytest.raises(SpaconInputError, match=r"layers\['counts'\] has 1 NaN"):
        SpaCon(prepared, layer="counts")
    with pytest.raises(SpaconInputError, match="has no 'missing'"):
        SpaCon(prepared, layer="missing")


def test_training_leaves_the_callers_random_state_alone(prepared):
    model = SpaCon(prepared, hidden_dims=DIMS)
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    expected = (random.random(), np.random.random(), torch.rand(1).item())
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    model.train(1, mode="sampled", batch_size=400, progress=False, seed=5)
    assert (random.random(), np.random.random(), torch.rand(1).item()) == expected


def test_seed_none_samples_differently_each_time(prepared):
    weights = []
    for _ in range(2):
        model = SpaCon(prepared, hidden_dims=DIMS, seed=0)
        model.train(1, mode="sampled", batch_size=400, progress=False, seed=None)
        weights.append(model.module.encoder_spa.conv1.weight.detach().clone())
    assert not torch.equal(weights[0], weights[1])


def test_epochs_done_counts_complete_epochs_after_a_step_cap(prepared):
    model = SpaCon(prepared, hidden_dims=DIMS)
    model.train(3, mode="sampled", batch_size=200, max_steps=8, progress=False)  # 6 per epoch
    assert model.epochs_done == 1
    assert model.history[-1]["batches"] == 2 and len(model.history) == 2


def test_resuming_where_the_step_cap_stopped_keeps_the_partial_epoch(prepared, tmp_path):
    ckpt = tmp_path / "capped.pt"
    options = {"mode": "sampled", "batch_size": 200, "max_steps": 8, "progress": False,
               "checkpoint": ckpt}
    first = SpaCon(prepared, hidden_dims=DIMS).train(3, **options)
    again = SpaCon(prepared, hidden_dims=DIMS).train(3, resume=True, **options)
    # nothing left to train: the checkpoint's weights and its history, partial epoch included
    assert again.history == first.history and again.history[-1]["batches"] == 2
    for name, value in first.module.state_dict().items():
        assert torch.equal(value, again.module.state_dict()[name]), name


def test_stopped_on_the_cap_at_an_epochs_last_batch_resumes_to_a_whole_epoch(
        prepared, tmp_path, monkeypatch):
    options = {"mode": "full", "max_steps": 3, "progress": False}  # one batch per epoch
    whole = SpaCon(prepared, hidden_dims=DIMS).train(5, **options)
    ckpt = tmp_path / "checkpoint.pt"
    monkeypatch.setattr(_train, "StopFlag", _StopAfter)  # Ctrl-C on the third, capped step
    with pytest.raises(TrainingInterrupted):
        SpaCon(prepared, hidden_dims=DIMS).train(5, checkpoint=ckpt, **options)
    monkeypatch.undo()
    resumed = SpaCon(prepared, hidden_dims=DIMS).train(5, checkpoint=ckpt, resume=True,
                                                       **options)
    assert resumed.history == whole.history and resumed.epochs_done == whole.epochs_done == 3


def test_load_keeps_the_saved_skip_connections(prepared, tmp_path):
    for skip in (False, True):
        model = SpaCon(prepared, hidden_dims=DIMS, skip_connections=skip)
        model.save(tmp_path / str(skip))
        assert SpaCon.load(tmp_path / str(skip), prepared).module.decoder.skip_connections is skip


def test_resume_keys_are_the_configs_fields():
    resume = TrainConfig().resume_params()
    assert set(resume) == {f.name for f in fields(TrainConfig) if f.metadata.get("resume")}
    assert "max_steps" not in resume and "seed" in resume and "epochs" in resume
    with pytest.raises(SpaconInputError, match="batch_size must be a whole number >= 1"):
        TrainConfig(batch_size=0)
    with pytest.raises(SpaconInputError, match="mode='half' is not a valid choice"):
        TrainConfig(mode="half")


def test_import_adds_no_process_wide_warning_filters():
    code = """
import warnings, torch
import spacon, spacon.nn
assert not any(f[1] is not None and "Sparse" in f[1].pattern for f in warnings.filters)
adj = spacon.nn.Adjacency.from_edges([0, 1], [1, 0], 2, 2)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    adj.csr(torch.ones(adj.n_edges))      # spacon's own CSR tensors: silent
    assert not caught, caught
    torch.sparse_csr_tensor(adj.indptr, adj.indices, torch.ones(adj.n_edges), (2, 2))
    print(len(caught))                    # the user's own: torch's beta warning still shows
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "1", out.stderr


class _StopAfter:
    """A stop flag that asks to stop after ``n`` checks (Ctrl-C at a known step)."""

    n = 3

    def __init__(self):
        self.checks = 0

    @property
    def requested(self):
        self.checks += 1
        return self.checks >= self.n

    def catching_sigint(self):
        import contextlib
        return contextlib.nullcontext(self)


@pytest.mark.parametrize("mode", ["full", "sampled"])
def test_stopped_and_resumed_training_equals_the_uninterrupted_run(prepared, tmp_path,
                                                                   monkeypatch, mode):
    options = dict(mode=mode, batch_size=400, progress=False)
    whole = SpaCon(prepared, hidden_dims=DIMS, seed=0).train(4, **options)
    ckpt = tmp_path / "checkpoint.pt"
    monkeypatch.setattr(_train, "StopFlag", _StopAfter)
    with pytest.raises(TrainingInterrupted) as stopped:
        SpaCon(prepared, hidden_dims=DIMS, seed=0).train(4, checkpoint=ckpt, **options)
    assert stopped.value.path == ckpt and stopped.value.batch >= 1
    monkeypatch.undo()
    resumed = SpaCon(prepared, hidden_dims=DIMS, seed=0).train(4, checkpoint=ckpt, resume=True,
                                                               **options)
    assert resumed.train_params["steps"] == whole.train_params["steps"]
    assert resumed.history == whole.history
    for key, value in whole.module.state_dict().items():
        assert torch.equal(value, resumed.module.state_dict()[key]), key


def test_an_error_inside_training_closes_up(prepared, monkeypatch):
    model = SpaCon(prepared, hidden_dims=DIMS)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(_train, "training_step", broken)
    with pytest.raises(RuntimeError, match="boom"):
        model.train(1, mode="full", progress=False)
    assert next(model.module.parameters()).device.type == "cpu"


def test_domain_calling_leaves_the_global_random_state_alone(rng):
    z = np.concatenate([rng.normal(0, 0.3, (60, 3)), rng.normal(4, 0.3, (60, 3))])
    import anndata as ad

    adata = ad.AnnData(np.zeros((120, 1), dtype=np.float32), obsm={"X_spacon": z})
    random.seed(7)
    expected = random.random()
    for method in ("louvain", "leiden"):
        random.seed(7)
        spacon.tl.domains(adata, method=method, resolution=0.5, key_added=method)
        assert random.random() == expected, method
    first = adata.obs["louvain"].copy()
    spacon.tl.domains(adata, method="louvain", resolution=0.5, key_added="again")
    assert (adata.obs["again"] == first).all()  # still repeatable for a seed


def test_a_checkpoint_of_another_model_shape_is_refused(prepared, tmp_path, monkeypatch):
    ckpt = tmp_path / "checkpoint.pt"
    monkeypatch.setattr(_train, "StopFlag", _StopAfter)
    with pytest.raises(TrainingInterrupted):
        SpaCon(prepared, hidden_dims=DIMS).train(3, mode="full", checkpoint=ckpt,
                                                 progress=False)
    monkeypatch.undo()
    with pytest.raises(SpaconInputError, match="model of another shape"):
        SpaCon(prepared, hidden_dims=(8, 4, 2)).train(3, mode="full", checkpoint=ckpt,
                                                      resume=True, progress=False)
    # the same shapes, built otherwise: it would train on as another model
    for other, said in (({"skip_connections": True}, "skip_connections=True"),
                        ({"dropout": 0.5}, "dropout=0.5")):
        with pytest.raises(SpaconInputError, match=f"other training parameters: model=.*{said}"):
            SpaCon(prepared, hidden_dims=DIMS, **other).train(
                3, mode="full", checkpoint=ckpt, resume=True, progress=False)


def test_prefetching_keeps_the_order_raises_the_threads_error_and_stops():
    import threading

    from spacon.model._prefetch import prefetched

    assert list(prefetched(iter(range(5)), "cpu")) == [0, 1, 2, 3, 4]

    def failing():
        yield 1
        raise ValueError("bad batch 2")

    items = prefetched(failing(), "cpu")
    assert next(items) == 1
    with pytest.raises(ValueError, match="bad batch 2"):
        next(items)

    made = []

    def endless():
        while True:
            made.append(len(made))
            yield made[-1]

    items = prefetched(endless(), "cpu", depth=2)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    deadline = time.time() + 30  # a busy machine (parallel tests) may be slow to fill it
    while len(made) < 3 + 2 and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # time to make more than it may
    assert len(made) == 3 + 2  # `depth` ahead of the item the caller holds
    items.close()
    assert not [t for t in threading.enumerate() if t.name == "spacon-prefetch"]


def test_adam_updates_as_torch_adam_and_shares_its_checkpoint_format():
    from spacon.model._adam import Adam

    def parameters():
        gen = torch.Generator().manual_seed(0)
        return [torch.randn(shape, generator=gen, requires_grad=True)
                for shape in ((5, 7), (7,), (3,))]

    ours, theirs = parameters(), parameters()
    ours_opt = Adam(ours, lr=5e-3, weight_decay=1e-4)
    torch_opt = torch.optim.Adam(theirs, lr=5e-3, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(1)
    for step in range(40):
        grads = [torch.randn(p.shape, generator=gen) for p in ours]
        for params, opt in ((ours, ours_opt), (theirs, torch_opt)):
            opt.zero_grad(set_to_none=True)
            for i, (p, g) in enumerate(zip(params, grads)):
                if not (i == 2 and step % 7 == 3):  # a parameter that sometimes has no gradient
                    p.grad = g.clone()
            opt.step()
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)  # to the last bit on the CPU
    mine, torchs = ours_opt.state_dict(), torch_opt.state_dict()
    assert mine["param_groups"] == torchs["param_groups"]
    assert float(mine["state"][2]["step"]) == 40 - 6 == float(torchs["state"][2]["step"])
    resumed = Adam(parameters(), lr=5e-3, weight_decay=1e-4)
    resumed.load_state_dict(torchs)  # a checkpoint written with torch's Adam
    assert resumed.steps == [40, 40, 34]
    assert torch.equal(resumed.exp_avg_sq[0], torchs["state"][0]["exp_avg_sq"])
    back = parameters()
    torch.optim.Adam(back, lr=5e-3, weight_decay=1e-4).load_state_dict(mine)  # and back
    with pytest.raises(ValueError, match="other parameters"):
        Adam(parameters()[:2]).load_state_dict(mine)


def test_cpu_training_is_deterministic_without_loading_the_compiler():
    """Training on the CPU turns torch's deterministic kernels on (and back off) without
    importing torch's compiler and SymPy (1.5-2 s of every process; more without bytecode),
    and without their NaN fill of new tensors (restored afterwards)."""
    code = """
import sys, torch
import spacon
from spacon._utils import deterministic_algorithms
fill = torch.utils.deterministic.fill_uninitialized_memory
with deterministic_algorithms("cpu"):
    assert torch.are_deterministic_algorithms_enabled()
    # no NaN fill of every new tensor (a debugging aid): 7% of a demo step
    assert not torch.utils.deterministic.fill_uninitialized_memory
assert not torch.are_deterministic_algorithms_enabled()
assert torch.utils.deterministic.fill_uninitialized_memory == fill
adata, conn = spacon.datasets.synthetic_brain(n_cells=300, n_genes=60, seed=0)
spacon.pp.normalize(adata)
spacon.pp.spatial_graph(adata, n_neighbors=6, section_key="section", z_radius=0)
spacon.pp.connectome_graph(adata, conn, unit_key="unit", threshold=0.4)
model = spacon.SpaCon(adata, hidden_dims=(16, 8, 4), seed=0)
model.train(epochs=1, progress=False)
loaded = [m for m in ("torch._inductor.config", "torch._dynamo", "sympy") if m in sys.modules]
print(loaded or "ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stdout + out.stderr


def test_a_checkpoint_is_not_resumed_on_other_data_or_graphs(prepared, tmp_path, monkeypatch):
    options = dict(mode="sampled", batch_size=400, progress=False)
    ckpt = tmp_path / "checkpoint.pt"
    monkeypatch.setattr(_train, "StopFlag", _StopAfter)
    with pytest.raises(TrainingInterrupted):
        SpaCon(prepared, hidden_dims=DIMS, seed=0).train(4, checkpoint=ckpt, **options)
    monkeypatch.undo()
    other_graph = prepared.copy()
    spacon.pp.spatial_graph(other_graph, n_neighbors=3, section_key="section", z_radius=0)
    other_cells = prepared[: prepared.n_obs - 5].copy()
    for data in (other_graph, other_cells):
        with pytest.raises(SpaconInputError, match="while training on other data"):
            SpaCon(data, hidden_dims=DIMS, seed=0).train(4, checkpoint=ckpt, resume=True,
                                                         **options)
    # the same data resumes
    SpaCon(prepared, hidden_dims=DIMS, seed=0).train(4, checkpoint=ckpt, resume=True, **options)


def test_resuming_on_another_thread_count_gives_the_same_bits(prepared, tmp_path,
                                                               monkeypatch):
    """Stopped on 1 thread, resumed on 2: the uninterrupted run's parameters, bit for bit."""
    options = dict(mode="sampled", batch_size=400, progress=False)
    whole = SpaCon(prepared, hidden_dims=DIMS, seed=0).train(4, threads=1, **options)
    ckpt = tmp_path / "checkpoint.pt"
    monkeypatch.setattr(_train, "StopFlag", _StopAfter)
    with pytest.raises(TrainingInterrupted):
        SpaCon(prepared, hidden_dims=DIMS, seed=0).train(4, checkpoint=ckpt, threads=1,
                                                         **options)
    monkeypatch.undo()
    resumed = SpaCon(prepared, hidden_dims=DIMS, seed=0).train(4, checkpoint=ckpt, resume=True,
                                                               threads=2, **options)
    assert resumed.train_params["threads"] == 2
    for name, value in whole.module.state_dict().items():
        assert torch.equal(resumed.module.state_dict()[name], value), name


def test_a_progress_bar_in_a_log_file_is_drawn_at_most_every_30_seconds(prepared,
                                                                          monkeypatch):
    # stderr a file (a cluster job's log): tqdm's monitor thread also redraws a bar idle for
    # its maxinterval (10 s), which gave the demo's log a line every 10-20 s instead of 30
    import tqdm.auto

    made = []

    class Recorded(tqdm.auto.tqdm):
        def __init__(self, *args, **kwargs):
            made.append(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(tqdm.auto, "tqdm", Recorded)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    SpaCon(prepared, seed=0).train(max_steps=1, progress=True, threads=1)
    assert made[0]["mininterval"] == 30.0
    assert made[0]["maxinterval"] >= made[0]["mininterval"]


PAGE_FAULTS = """
import ctypes, json, resource
from spacon._allocator import _glibc, _user_set, keep_freed_memory

libc = _glibc()
if libc is None or _user_set():
    print(json.dumps({"skip": "glibc's malloc, with its options left to spacon"}))
    raise SystemExit
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]


def faults(size=40_000_000, repeats=5):
    # page faults of allocating, writing and freeing a block `repeats` times (after one first)
    def once():
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)
        libc.free(block)

    once()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(repeats):
        once()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


out = {"outside": faults(), "page": resource.getpagesize()}
with keep_freed_memory() as threshold:
    out.update(threshold=threshold, inside=faults())
out["after"] = faults()
print(json.dumps(out))
"""


def test_training_keeps_freed_blocks_for_reuse_and_gives_them_back_after():
    """Inside ``keep_freed_memory`` (around training) a freed 40 MB block is reused without
    faulting its pages in again; after it, glibc maps such blocks anew, as before.

    Measured in a fresh interpreter: in a process that has trained, large free blocks can be
    left inside glibc's heap (below its trim threshold) and serve such a block without new
    pages, inside the context or not.
    """
    import json

    run = subprocess.run([sys.executable, "-c", PAGE_FAULTS], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    if "skip" in out:
        pytest.skip(out["skip"])
    if out["threshold"] < 40_000_000:  # (glibc 2.34 and older: at most 32 MiB)
        pytest.skip(f"this glibc keeps blocks up to {out['threshold']} bytes only")
    # 5 blocks of 40 MB: 48,830 pages of 4 kB, fewer where huge pages (2 MB) serve them
    assert out["outside"] >= 5 * (40_000_000 // (out["page"] * 512))
    assert out["inside"] < out["outside"] / 10
    assert out["after"] > out["outside"] / 2


def test_a_fanout_of_minus_one_takes_every_neighbour(brain_with_graph):
    """As ``spatial_fanout=-1`` does, and as the sampler's docstring says."""
    adata, _ = brain_with_graph
    spacon.pp.connectome_graph(adata, _, unit_key="unit", threshold=0.4)
    assert TrainConfig(fanouts=(-1, 2, 2)).fanouts == (-1, 2, 2)
    model = SpaCon(adata, hidden_dims=(8, 4, 2))
    model.train(mode="sampled", fanouts=(-1, 1, 1), batch_size=8, max_steps=2, progress=False)
    assert np.isfinite(model.history[-1]["loss"])
    for bad in (-2, 0, True):
        with pytest.raises(SpaconInputError, match="fanouts"):
            TrainConfig(fanouts=(bad, 2, 2))
    # "auto" weighs the connectome's edges per cell against what sampling visits: all of them
    from spacon.model._memory import choose_mode

    assert model.data.connectome.n_edges / adata.n_obs > 11
    assert choose_mode(model.data, (8, 4, 2), 4.0, (5, 3, 3)) == "sampled"
    assert choose_mode(model.data, (8, 4, 2), 4.0, (-1, 3, 3)) == "full"
