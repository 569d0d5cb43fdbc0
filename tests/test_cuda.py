"""The GPU path: sampling, batch building and training on the device.

Each test runs on device (skipped without a device device) and, so that the torch code path is
checked on every machine, with torch tensors on the CPU ("cpu-torch": the CPU normally samples
with NumPy arrays).
"""

import contextlib
import threading

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import spacon
from spacon.graph import FactoredGraph, GraphOnDevice, NeighborSampler
from spacon.graph import _ops as ops
from spacon.model import SampledBatches, SpaCon, TrainingInterrupted, _rows
from spacon.nn import Adjacency


@pytest.fixture(params=["cuda", "cpu-torch"])
def device(request, monkeypatch):
    if request.param == "cuda":
        if not torch.cuda.is_available():
            pytest.skip("needs a CUDA device")
        return "cuda"
    monkeypatch.setattr(ops, "is_cpu", lambda device: False)  # torch tensors on the CPU
    return "cpu"


def on(t, device):
    return isinstance(t, torch.Tensor) and t.device.type == torch.device(device).type


def factored(n_units=8, n_cells=300, density=0.4, seed=3):
    unit = sp.random(n_units, n_units, density=density, random_state=seed, format="csr")
    unit.data[:] = 1
    return FactoredGraph(unit, np.random.default_rng(seed).integers(0, n_units, n_cells))


def test_graph_arrays_live_on_the_gpu_and_sample_real_edges(device):
    g = factored()
    on_gpu = GraphOnDevice(g, device)
    assert on(on_gpu.edge_end, device) and on(on_gpu.members, device)
    cells = torch.arange(g.n_cells, device=device)
    t, s = on_gpu.sample(cells, 4, ops.generator([0], device))
    assert on(t, device) and on(s, device)
    implied = g.expand()
    t, s = t.cpu().numpy().copy(), s.cpu().numpy().copy()
    assert np.asarray(implied[t, s]).all()  # every sampled edge exists
    pairs = t * g.n_cells + s
    assert len(np.unique(pairs)) == len(pairs)  # no repeats per target
    assert np.bincount(t, minlength=g.n_cells).max() <= 4


def test_gpu_neighbours_equal_the_cpu_neighbours(device):
    g = factored(n_cells=200)
    cells = np.arange(0, 200, 3)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(ops, "is_cpu", lambda d: torch.device(d).type == "cpu")
        t_cpu, s_cpu = g.neighbors(cells)
    t_gpu, s_gpu = GraphOnDevice(g, device).neighbors(torch.as_tensor(cells, device=device))
    assert np.array_equal(t_gpu.cpu().numpy(), t_cpu)
    assert np.array_equal(s_gpu.cpu().numpy(), s_cpu)


def test_gpu_sampler_covers_every_seed_and_repeats_itself(device):
    con = factored(n_cells=500)
    spa = FactoredGraph.from_cell_graph(sp.random(500, 500, density=0.02, random_state=0) > 0)
    sampler = NeighborSampler(con, spa, fanouts=(4, 3), batch_size=64, seed=7, device=device)
    first = list(sampler.epoch(0))
    seeds = torch.cat([b.n_id[: b.n_seeds] for b in first]).cpu().numpy()
    assert np.array_equal(np.sort(seeds), np.arange(500))
    again = list(sampler.epoch(0))
    assert all(torch.equal(a.n_id, b.n_id) for a, b in zip(first, again))
    for b in first:
        assert on(b.n_id, device) and len(torch.unique(b.n_id)) == len(b.n_id)


def test_adjacency_built_on_the_gpu_equals_the_cpu(device):
    rng = np.random.default_rng(0)
    t, s = rng.integers(0, 50, 400), rng.integers(0, 80, 400)
    cpu = Adjacency.from_edges(t, s, 50, 80)  # NumPy arrays: built with NumPy
    gpu = Adjacency.from_edges(torch.as_tensor(t, device=device), torch.as_tensor(s, device=device),
                               50, 80)
    assert on(gpu.indptr, device)
    assert torch.equal(gpu.indptr.cpu(), cpu.indptr) and torch.equal(gpu.indices.cpu(),
                                                                     cpu.indices)


@pytest.mark.parametrize("dense_share", [_rows.DENSE_SHARE, 0.0])
def test_expression_rows_on_the_gpu_equal_the_cpu(monkeypatch, dense_share, device):
    monkeypatch.setattr(_rows, "DENSE_SHARE", dense_share)  # 0: keep CSR, gather rows on GPU
    x = sp.random(300, 40, density=0.3, random_state=1, format="csr", dtype=np.float32)
    cells = np.array([5, 0, 299, 17, 5])
    gpu = _rows.ExpressionRows(x, device)
    assert (gpu.dense is not None) == (dense_share > 0)
    got = gpu.rows(torch.as_tensor(cells, device=device))
    assert on(got, device)
    monkeypatch.setattr(ops, "is_cpu", lambda d: torch.device(d).type == "cpu")
    assert torch.equal(got.cpu(), _rows.ExpressionRows(x, "cpu").rows(cells))


@pytest.fixture(scope="module")
def brain():
    adata, conn = spacon.datasets.synthetic_brain(1500, 60, 6, seed=0)
    spacon.pp.normalize(adata)
    info = adata.uns["synthetic_brain"]
    spacon.pp.spatial_graph(adata, radius=info["suggested_radius"], section_key="section",
                            z_radius=info["suggested_z_radius"])
    spacon.pp.connectome_graph(adata, conn, unit_key="unit", threshold=0.4)
    return adata


def test_batches_are_built_on_the_gpu(brain, device):
    model = SpaCon(brain, seed=0)
    sampler = NeighborSampler(model.data.connectome, model.data.spatial, batch_size=128,
                              device=device)
    batch = next(SampledBatches(model.data, sampler).epoch(0))
    assert on(batch.x, device) and on(batch.adj_con.indptr, device)
    assert on(batch.adj_spa.indices, device)
    expected = model.data.expression(batch.n_id.cpu().numpy())
    assert torch.equal(batch.x.cpu(), expected)


def test_sampled_training_on_the_gpu_is_repeatable_and_learns(brain, device):
    def train():
        model = SpaCon(brain, seed=0)
        model.train(2, mode="sampled", batch_size=256, device=device, progress=False)
        return model

    a, b = train(), train()
    losses = [h["loss"] for h in a.history]
    assert losses[-1] < losses[0]
    assert np.allclose(losses, [h["loss"] for h in b.history], rtol=1e-4)
    assert next(a.module.parameters()).device.type == "cpu"  # handed back on the CPU
    a.embed(device=device)
    assert np.isfinite(brain.obsm["X_spacon_spa"]).all()


def prefetching_threads():
    return [t for t in threading.enumerate() if t.name == "spacon-prefetch"]


def test_batches_made_ahead_in_a_thread_are_the_batches(brain, device):
    model = SpaCon(brain, seed=0)

    def epoch(prefetch):
        sampler = NeighborSampler(model.data.connectome, model.data.spatial, batch_size=256,
                                  seed=5, device=device)
        batches = SampledBatches(model.data, sampler, prefetch=prefetch)
        return batches, list(batches.epoch(1, start=2))

    default, _ = epoch(None)
    assert default.prefetch  # off the CPU's NumPy path, batches are made ahead
    (_, plain), (_, ahead) = epoch(False), epoch(True)
    assert len(plain) == len(ahead) == default.n_batches - 2
    for p, a in zip(plain, ahead):
        assert torch.equal(p.n_id, a.n_id) and torch.equal(p.x, a.x)
        for adj_p, adj_a in ((p.adj_con, a.adj_con), (p.adj_spa, a.adj_spa)):
            assert torch.equal(adj_p.indptr, adj_a.indptr)
            assert torch.equal(adj_p.indices, adj_a.indices)
    assert not prefetching_threads()


def test_an_interrupted_run_leaves_no_prefetching_thread(brain, device, monkeypatch):
    from spacon.model import _train

    class StopAtTheSecondStep:
        checks = 0

        @property
        def requested(self):
            self.checks += 1
            return self.checks >= 2

        def catching_sigint(self):
            return contextlib.nullcontext(self)

    stop_flag = _train.StopFlag
    monkeypatch.setattr(_train, "StopFlag", StopAtTheSecondStep)
    with pytest.raises(TrainingInterrupted) as stopped:  # keeps the stopped loop's frames
        SpaCon(brain, seed=0).train(1, mode="sampled", batch_size=128, device=device,
                                    progress=False)
    assert stopped.value.batch == 2
    assert not prefetching_threads()
    monkeypatch.setattr(_train, "StopFlag", stop_flag)  # the device fixture's patch stays
    model = SpaCon(brain, seed=0).train(1, mode="sampled", batch_size=128, device=device,
                                        max_steps=3, progress=False)  # stops inside the epoch
    assert model.train_params["steps"] == 3 and not prefetching_threads()
