import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spacon.nn import Adjacency, GATConv, SpaConModule, aggregate


def tiny_graph():
    # node 0 <- 1, 2 ; node 1 <- 0 ; node 2 <- nothing; self-loops added
    return Adjacency.from_edges([0, 0, 1], [1, 2, 0], n_dst=3, n_src=3)


def test_adjacency_adds_self_loops_and_sorts():
    adj = tiny_graph()
    assert adj.indptr.tolist() == [0, 3, 5, 6]
    assert adj.indices.tolist() == [0, 1, 2, 0, 1, 2]
    assert adj.row.tolist() == [0, 0, 0, 1, 1, 2]


def test_attention_numbers_by_hand():
    conv = GATConv(2, 2, dropout=0.0)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(2))
        conv.att_src.copy_(torch.tensor([1.0, 0.0]))
        conv.att_dst.copy_(torch.tensor([0.0, 1.0]))
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    out, alpha = conv(x, tiny_graph(), return_attention_weights=True)
    out, alpha = out.detach(), alpha.detach()
    # node 0: neighbours 0, 1, 2; score_src = x[:, 0], score_dst(0) = x[0, 1] = 2
    s = 1 / (1 + np.exp(-(np.array([1.0, 3.0, 5.0]) + 2.0)))
    a0 = np.exp(s) / np.exp(s).sum()
    assert np.allclose(alpha[:3].numpy(), a0, atol=1e-6)
    assert np.allclose(out[0].numpy(), a0 @ x.numpy(), atol=1e-5)
    # node 2 has only its self-loop: attention 1, output its own features
    assert math.isclose(alpha[-1].item(), 1.0, rel_tol=1e-6)
    assert torch.allclose(out[2], x[2])
    # attention sums to 1 per target
    sums = torch.zeros(3).index_add_(0, tiny_graph().row, alpha)
    assert torch.allclose(sums, torch.ones(3))


def test_aggregate_matches_dense_and_gradients_are_exact():
    torch.manual_seed(0)
    adj = Adjacency.from_edges([0, 0, 1, 2, 2, 3], [1, 4, 0, 3, 4, 2], n_dst=4, n_src=5)
    values = torch.rand(adj.n_edges, dtype=torch.float64, requires_grad=True)
    h = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    dense = torch.zeros(4, 5, dtype=torch.float64)
    dense[adj.row, adj.indices] = values.detach()
    assert torch.allclose(aggregate(values, h, adj), dense @ h)
    assert torch.autograd.gradcheck(lambda v, x: aggregate(v, x, adj), (values, h))


@pytest.mark.parametrize("channels", [(3, 2), (2, 5)])  # projected first; aggregated first
def test_gat_layer_gradcheck_finite_differences(channels):
    torch.manual_seed(1)
    adj = Adjacency.from_edges([0, 0, 1, 2, 3], [1, 2, 3, 0, 1], n_dst=4, n_src=4)
    conv = GATConv(*channels, dropout=0.0).double()
    x = torch.randn(4, channels[0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: conv(x, adj), (x,))
    # and with respect to the parameters
    names = ["weight", "att_src", "att_dst"]
    inputs = tuple(getattr(conv, n).detach().clone().requires_grad_(True) for n in names)

    def f(*params):
        return torch.func.functional_call(conv, dict(zip(names, params)), (x.detach(), adj))

    assert torch.autograd.gradcheck(f, inputs)


def test_widening_layer_aggregates_first_and_computes_the_same_layer(monkeypatch):
    """A layer with more outputs than inputs aggregates the inputs and projects after,
    ``(A x) W``: the published ``A (x W)`` (the projected path) to rounding, with the same
    gradients, on fewer targets than sources too."""
    from spacon.nn import _gat

    torch.manual_seed(2)
    adj = Adjacency.from_edges([0, 0, 1, 2, 2, 3], [1, 4, 0, 3, 5, 2], n_dst=4, n_src=6)
    conv = GATConv(3, 7, dropout=0.0).double()
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    widths = []

    def recorded(values, h, adj):
        widths.append(h.shape[1])
        return aggregate(values, h, adj)

    monkeypatch.setattr(_gat, "aggregate", recorded)
    widening, attention = conv(x, adj, return_attention_weights=True)
    assert widths == [3]  # the inputs were aggregated, not their projections
    projected, attention_projected = conv(conv.project(x), adj, return_attention_weights=True)
    assert widening.shape == (4, 7)
    assert torch.allclose(widening, projected, rtol=1e-12, atol=1e-12)
    assert torch.allclose(attention, attention_projected, rtol=1e-12, atol=1e-12)
    params = [x, conv.weight, conv.att_src, conv.att_dst]
    grads = torch.autograd.grad(widening.square().sum(), params)
    expected = torch.autograd.grad(projected.square().sum(), params)
    for got, want in zip(grads, expected):
        assert torch.allclose(got, want, rtol=1e-10, atol=1e-12)


def test_attention_dropout_only_in_training():
    torch.manual_seed(0)
    conv = GATConv(4, 4, dropout=0.5)
    adj = Adjacency.from_edges([0, 0, 1], [1, 2, 2], 3, 3)
    x = torch.randn(3, 4)
    conv.eval()
    assert torch.equal(conv(x, adj), conv(x, adj))
    conv.train()
    outs = [conv(x, adj) for _ in range(5)]
    assert not all(torch.equal(outs[0], o) for o in outs[1:])


def test_repr_and_init():
    conv = GATConv(10, 3)
    assert repr(conv) == "GATConv(10, 3)"
    std = conv.weight.std().item()
    assert 0.3 < std / (1.414 * math.sqrt(2 / 13)) < 1.7


@pytest.mark.parametrize("fusion", ["concat", "add"])
def test_module_shapes(fusion):
    torch.manual_seed(0)
    module = SpaConModule(12, (8, 4, 2), fusion=fusion)
    adj = Adjacency.from_edges([0, 1, 2, 3], [1, 2, 3, 0], 5, 5)
    x = torch.rand(5, 12)
    z_con, z_spa, x_hat = module(x, adj, adj)
    assert z_con.shape == z_spa.shape == (5, 2) and x_hat.shape == (5, 12)
    spatial_only = SpaConModule(12, (8, 4, 2), use_connectivity=False)
    z_con, z_spa, x_hat = spatial_only(x, None, adj)
    assert z_con is None and x_hat.shape == (5, 12)


def test_block_attention_equals_edge_list_attention():
    """Dense per-unit blocks give the same output as the CSR edge list, with and without a
    unit's self-connection, and the same gradients."""
    import scipy.sparse as sp

    from spacon.graph import FactoredGraph
    from spacon.nn import BlockAdjacency

    torch.manual_seed(0)
    unit_in = sp.csr_matrix(np.array([[1, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=np.float32))
    graph = FactoredGraph(unit_in, np.array([0, 1, 2, 0, 1, 1, 2, 0]))
    cells = np.arange(8)
    groups = [(torch.from_numpy(p), torch.from_numpy(s), h) for p, s, h in graph.blocks(cells)]
    blocks = BlockAdjacency(groups, 8, 8)
    edges = Adjacency.from_scipy(graph.expand())
    assert blocks.n_edges == edges.n_edges
    for channels in [(5, 3), (3, 5)]:  # projected first; aggregated first
        conv = GATConv(*channels, dropout=0.0).double()
        x = torch.randn(8, channels[0], dtype=torch.float64, requires_grad=True)
        a = conv(x, blocks)
        b = conv(x, edges)
        assert a.shape == (8, channels[1]) and torch.allclose(a, b)
        ga, = torch.autograd.grad(a.sum(), x)
        gb, = torch.autograd.grad(b.sum(), x)
        assert torch.allclose(ga, gb)


def _on_threads(fn, threads=(1, 2, 3)):
    """``fn()`` on each thread count (torch's count restored after)."""
    before = torch.get_num_threads()
    try:
        results = []
        for t in threads:
            torch.set_num_threads(t)
            results.append(fn())
        return results
    finally:
        torch.set_num_threads(before)


def test_a_block_of_one_target_and_many_sources_is_the_same_on_any_thread_count():
    """One cell whose unit receives 40,000 source cells: its attention total is one sum."""
    from spacon.nn import BlockAdjacency

    torch.manual_seed(0)
    n = 40_001
    groups = [(torch.tensor([0]), torch.arange(1, n), False)]
    conv = GATConv(4, 3, dropout=0.0).eval()
    x = torch.randn(n, 4)
    first, *rest = _on_threads(lambda: conv(x, BlockAdjacency(groups, 1, n)))
    assert all(torch.equal(first, r) for r in rest)


def test_thread_invariant_operations_match_torch_on_any_thread_count():
    """Sizes above torch's one-thread limit (32,768 elements), not multiples of a SIMD vector."""
    from spacon.nn._invariant import column_sums, elu, sigmoid, squared_error, total

    g = torch.Generator().manual_seed(0)
    x = torch.randn(100_003, generator=g) * 4
    m = torch.randn(3001, 37, generator=g)
    y = torch.randn(3001, 37, generator=g)
    cases = {
        "sigmoid": (lambda: sigmoid(x), torch.sigmoid(x)),
        "elu": (lambda: elu(x), F.elu(x)),
        "total": (lambda: total(x), x.double().sum().float()),
        "total 2-D": (lambda: total(m), m.double().sum().float()),
        "column_sums": (lambda: column_sums(m), m.sum(0)),
        "one column": (lambda: column_sums(m.reshape(-1, 1)), m.sum().reshape(1)),
        "squared_error": (lambda: squared_error(m, y), F.mse_loss(m, y, reduction="sum")),
        "mean": (lambda: squared_error(m, y, "mean"), F.mse_loss(m, y)),
    }
    for name, (fn, expected) in cases.items():
        results = _on_threads(fn)
        assert all(torch.equal(results[0], r) for r in results[1:]), name
        torch.testing.assert_close(results[0], expected, rtol=1e-5, atol=1e-6, msg=name)
    with pytest.raises(ValueError, match="reduction"):
        squared_error(m, y, "none")


def test_linear_with_one_output_matches_torch_and_its_gradients_on_any_thread_count():
    """The connectivity code's head with one component: the bias gradient sums 40,000 rows
    of one column, which torch's own linear layer sums differently on 1 and 2 threads."""
    from spacon.nn._invariant import linear

    g = torch.Generator().manual_seed(0)
    x = torch.randn(40_000, 16, generator=g)
    weight = torch.randn(1, 16, generator=g, requires_grad=True)
    bias = torch.zeros(1, requires_grad=True)

    def gradients(fn):
        out = fn(x, weight, bias)
        return (out, *torch.autograd.grad((out * x[:, :1]).sum(), [weight, bias]))

    ours = _on_threads(lambda: gradients(linear))
    for result in ours[1:]:
        assert all(torch.equal(a, b) for a, b in zip(ours[0], result))
    for a, b in zip(ours[0], gradients(F.linear)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-3)


def test_elu_gradient_is_finite_for_large_inputs():
    from spacon.nn._invariant import elu

    x = torch.tensor([-3.0, 0.0, 50.0, 200.0], requires_grad=True)
    elu(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([np.exp(-3.0), 1.0, 1.0, 1.0],
                                                    dtype=torch.float32))


def test_clip_grad_norm_matches_torch():
    from spacon.nn._invariant import clip_grad_norm_

    g = torch.Generator().manual_seed(1)
    for max_norm in (1e9, 0.5):
        ours = [torch.nn.Parameter(torch.zeros(s)) for s in ((300, 200), (40_000,), (7,))]
        ref = [torch.nn.Parameter(torch.zeros(s)) for s in ((300, 200), (40_000,), (7,))]
        for a, b in zip(ours, ref):
            a.grad = torch.randn(a.shape, generator=g)
            b.grad = a.grad.clone()
        norm = clip_grad_norm_(ours, max_norm)
        expected = torch.nn.utils.clip_grad_norm_(ref, max_norm)
        torch.testing.assert_close(norm, expected)
        for a, b in zip(ours, ref):
            torch.testing.assert_close(a.grad, b.grad)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batch_norm_matches_torch_and_loads_its_state(momentum):
    """Forward, gradients, running statistics and evaluation as torch.nn.BatchNorm1d; its
    batch statistics are the same on 1, 2 and 3 threads."""
    from spacon.nn._batch_norm import BatchNorm1d

    torch.manual_seed(0)
    ref, ours = torch.nn.BatchNorm1d(64, momentum=momentum), BatchNorm1d(64, momentum=momentum)
    ours.load_state_dict(ref.state_dict())
    assert list(ours.state_dict()) == list(ref.state_dict())
    ref, ours = ref.double(), ours.double()  # float64: the two orders of summing agree closely
    for _ in range(3):
        x = (torch.randn(700, 64, dtype=torch.float64) * 3 + 1).requires_grad_()
        outs = []
        for bn in (ref, ours):
            y = bn(x)
            outs.append((y, *torch.autograd.grad((y ** 3).sum(), [x, bn.weight, bn.bias])))
        for a, b in zip(*outs):
            torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)
    for name, value in ref.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[name], value)
    ref.eval(), ours.eval()
    x = torch.randn(50, 64, dtype=torch.float64)
    torch.testing.assert_close(ours(x), ref(x))
    ours.train()
    x = torch.randn(40_000, 3)
    first, *rest = _on_threads(lambda: BatchNorm1d(3)(x))
    assert all(torch.equal(first, r) for r in rest)
    with pytest.raises(ValueError, match="more than 1 value"):
        ours(torch.randn(1, 64, dtype=torch.float64))
    # no rows: an empty output, as torch's, in training and evaluation
    for training in (True, False):
        ref.train(training), ours.train(training)
        empty = torch.randn(0, 64, dtype=torch.float64)
        assert ours(empty).shape == ref(empty).shape == (0, 64)
    # without running statistics evaluation uses the batch's, so one row is refused there too
    ref, ours = (cls(64, track_running_stats=False).eval()
                 for cls in (torch.nn.BatchNorm1d, BatchNorm1d))
    x = torch.randn(30, 64)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
    for bn in (ref, ours):
        with pytest.raises(ValueError, match="more than 1 value"):
            bn(torch.randn(1, 64))
