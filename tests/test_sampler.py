import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats

import spacon
from spacon.graph import FactoredGraph, GraphOnDevice, NeighborSampler


def sample(graph, cells, fanout, seed=1, device="cpu"):
    """Sample ``graph`` on ``device``: ``(target_index, source_cell)`` as NumPy arrays."""
    from spacon.graph import _ops as ops

    t, s = GraphOnDevice(graph, device).sample(ops.as_index(cells, device), fanout,
                                               ops.generator([seed], device))
    return np.asarray(ops.as_tensor(t).cpu()), np.asarray(ops.as_tensor(s).cpu())


def numpy_batches(batches):
    """Sampled subgraphs with NumPy arrays (from any device), for assertions."""
    def arr(e):
        return e if isinstance(e, np.ndarray) else e.cpu().numpy()

    for b in batches:
        yield type(b)(arr(b.n_id), b.n_seeds,
                      None if b.connectome_edges is None else tuple(
                          arr(e) for e in b.connectome_edges),
                      tuple(arr(e) for e in b.spatial_edges))


def random_factored(rng, n_units=8, n_cells=60, density=0.4):
    unit = sp.random(n_units, n_units, density=density, random_state=3, format="csr")
    unit.data[:] = 1
    return FactoredGraph(unit, rng.integers(0, n_units, n_cells))


def test_expand_equals_implied_cell_graph(rng):
    g = random_factored(rng)
    implied = g.unit_in.toarray()[g.cell_unit][:, g.cell_unit]
    assert np.array_equal(g.expand().toarray() > 0, implied > 0)
    assert g.n_edges == implied.sum()


def test_factored_sampling_is_uniform_over_implied_neighbours(rng):
    """Sampling unit-then-cell must equal uniform sampling from the implied cell graph."""
    g = random_factored(rng, n_units=6, n_cells=80, density=0.5)
    implied = g.expand()
    target = int(np.argmax(g.degree(np.arange(g.n_cells))))
    neighbours = implied.indices[implied.indptr[target] : implied.indptr[target + 1]]
    fanout, draws = 5, 4000
    counts = np.zeros(g.n_cells)
    cells = np.full(draws, target)
    t, s = sample(g, cells, fanout)
    np.add.at(counts, s, 1)
    assert set(np.flatnonzero(counts)) <= set(neighbours)  # never a non-neighbour
    observed = counts[neighbours]
    # each neighbour is kept with probability 1 - (1 - 1/d)^fanout
    d = len(neighbours)
    expected = draws * (1 - (1 - 1 / d) ** fanout)
    chi2 = ((observed - expected) ** 2 / expected).sum()
    assert stats.chi2.sf(chi2, d - 1) > 1e-3
    # no repeated neighbour for one target draw
    pairs = t * g.n_cells + s
    assert len(np.unique(pairs)) == len(pairs)


def test_small_degree_keeps_all(rng):
    g = FactoredGraph.from_cell_graph(sp.csr_matrix(np.array([[0, 1, 1], [1, 0, 0], [0, 0, 0]])))
    t, s = sample(g, np.array([0, 1, 2]), 5)
    assert sorted(zip(t.tolist(), s.tolist())) == [(0, 1), (0, 2), (1, 0)]


def test_sampler_batches_cover_every_seed_once_per_epoch_and_are_repeatable(rng):
    con = random_factored(rng, n_cells=100)
    spa = FactoredGraph.from_cell_graph(sp.random(100, 100, density=0.05, random_state=0) > 0)
    sampler = NeighborSampler(con, spa, fanouts=(4, 3), batch_size=16, seed=7)
    batches = list(numpy_batches(sampler.epoch(0)))
    seeds = np.concatenate([b.n_id[: b.n_seeds] for b in batches])
    assert np.array_equal(np.sort(seeds), np.arange(100))
    again = list(numpy_batches(sampler.epoch(0)))
    assert all(np.array_equal(a.n_id, b.n_id) for a, b in zip(batches, again))
    other = list(numpy_batches(sampler.epoch(1)))
    assert not np.array_equal(batches[0].n_id[:16], other[0].n_id[:16])
    for b in batches:
        assert len(np.unique(b.n_id)) == len(b.n_id)
        t, s = b.connectome_edges
        assert t.max() < len(b.n_id) and s.max() < len(b.n_id) and s.min() >= 0
        # every sampled connectivity edge exists in the implied graph
        implied = con.expand()
        assert all(implied[b.n_id[i], b.n_id[j]] for i, j in zip(t[:50], s[:50]))


def test_rank_shards_partition_the_seeds(rng):
    con = random_factored(rng, n_cells=50)
    spa = FactoredGraph.from_cell_graph(sp.eye(50, format="csr"))
    sampler = NeighborSampler(con, spa, fanouts=(2,), batch_size=8, seed=0)
    shards = [np.concatenate([b.n_id[: b.n_seeds] for b in numpy_batches(sampler.epoch(3, r, 2))])
              for r in (0, 1)]
    assert len(np.intersect1d(*shards)) == 0
    assert len(np.union1d(*shards)) == 50


def test_spatial_modes(rng):
    con = random_factored(rng, n_cells=40)
    spa_m = sp.random(40, 40, density=0.2, random_state=1) > 0
    spa_m = (spa_m + spa_m.T) > 0
    spa = FactoredGraph.from_cell_graph(spa_m)
    induced = NeighborSampler(con, spa, (3,), 4, spatial_sampling="induced", seed=0)
    b = next(numpy_batches(induced.epoch(0)))
    t, s = b.spatial_edges
    full = spa_m.toarray()
    # induced: exactly the spatial edges among the sampled nodes
    sub = full[np.ix_(b.n_id, b.n_id)]
    assert sub.sum() == len(t) and all(sub[i, j] for i, j in zip(t, s))
    sampled = NeighborSampler(con, spa, (3,), 4, spatial_sampling="neighbors", spatial_fanout=-1,
                              seed=0)
    b2 = next(numpy_batches(sampled.epoch(0)))
    t, s = b2.spatial_edges
    # every node present before the spatial hop gets all its spatial neighbours
    seeds = b2.n_id[:4]
    for k, cell in enumerate(seeds):
        got = set(b2.n_id[s[t == k]])
        assert got == set(np.flatnonzero(full[cell]))


def test_epoch_resumes_at_any_batch():
    """Starting an epoch at batch b gives exactly the batches b, b+1, ... of a full pass."""
    graph = sp.random(100, 100, density=0.1, random_state=1, format="csr")
    spatial = FactoredGraph.from_cell_graph(graph)
    sampler = NeighborSampler(None, spatial, [], batch_size=16, spatial_fanout=3, seed=5)
    full = list(numpy_batches(sampler.epoch(2)))
    assert len(full) == sampler.n_batches() == 7
    tail = list(numpy_batches(sampler.epoch(2, start=4)))
    assert len(tail) == 3
    for a, b in zip(full[4:], tail):
        assert np.array_equal(a.n_id, b.n_id)
        assert all(np.array_equal(x, y) for x, y in zip(a.spatial_edges, b.spatial_edges))
    assert sampler.n_batches(rank=1, world_size=3) == 3


def test_a_last_batch_of_one_seed_takes_the_seed_before_it():
    """129 seeds in batches of 64: 64 + 64 + 2 (the last seed and the one before), not 64 +
    64 + 1: a lone seed without neighbours would be a batch of one cell, on which batch norm
    fails ("Expected more than 1 value per channel"), at whichever epoch shuffled such a
    cell last. The number of batches stays ceil(n / batch_size), as sharded ranks need."""
    from spacon.graph._sampler import batch_bounds

    assert batch_bounds(129, 64) == [(0, 64), (64, 128), (127, 129)]
    assert batch_bounds(130, 64) == [(0, 64), (64, 128), (128, 130)]
    assert batch_bounds(1, 64) == [(0, 1)] and batch_bounds(0, 64) == []
    rng = np.random.default_rng(0)
    adata = ad.AnnData(np.log1p(rng.poisson(2, (129, 6))).astype(np.float32))
    adata.obsm["spatial"] = np.arange(129.0)[:, None] * [1000.0, 0]  # far apart, in a row
    adata.obsm["spatial"][:10] = rng.random((10, 2))  # but for ten neighbours
    with pytest.warns(spacon.SpaconWarning, match="119 of 129 cells have no spatial neighbour"):
        spacon.pp.spatial_graph(adata, radius=2)
    model = spacon.SpaCon(adata, hidden_dims=(8, 4, 2), connectome_key=None)
    model.train(epochs=3, mode="sampled", batch_size=64, progress=False)
    assert len(model.history) == 3 and np.isfinite([h["loss"] for h in model.history]).all()


def test_stored_zeros_of_a_graph_are_no_edges():
    """A graph whose weights were set to 0 by hand keeps them stored (scipy does): they are
    not edges, and the caller's matrix is left as it was."""
    rng = np.random.default_rng(0)
    graph = sp.random(50, 50, density=0.2, random_state=1, format="csr") + sp.eye(50)
    graph = sp.csr_matrix(graph)
    graph.data[rng.random(graph.nnz) < 0.3] = 0
    stored = graph.nnz
    factored = FactoredGraph.from_cell_graph(graph)
    assert factored.n_edges == graph.count_nonzero() < stored and graph.nnz == stored
    targets, sources = factored.neighbors(np.arange(50))
    assert np.asarray(graph[np.asarray(targets), np.asarray(sources)]).all()
