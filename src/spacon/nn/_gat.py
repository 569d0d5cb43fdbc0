"""The graph attention layer of STAGATE and SpaCon."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ._adjacency import Adjacency, BlockAdjacency, aggregate
from ._invariant import sigmoid
from ._invariant import total as whole_sum


class Projected(NamedTuple):
    """Nodes' projected features ``W x`` with their source and target attention scores.

    What :meth:`GATConv.project` computes once for every cell in layer-wise inference, so
    chunks that share source cells do not project them again.
    """

    h: torch.Tensor
    score_src: torch.Tensor
    score_dst: torch.Tensor

    def rows(self, index: torch.Tensor) -> Projected:
        """The entries of nodes ``index``."""
        return Projected(*(t.index_select(0, index) for t in self))


class GATConv(nn.Module):
    r"""Single-head graph attention with a shared weight and sigmoid edge scores.

    .. math::
        e_{ij} = \sigma(a_{src}^\top W x_j + a_{dst}^\top W x_i), \quad
        \alpha_{ij} = \mathrm{softmax}_j(e_{ij}), \quad
        x'_i = \sum_{j \in N(i)} \alpha_{ij} W x_j

    One weight matrix ``W`` for sources and targets (Xavier-normal, gain 1.414), no bias;
    attention dropout while training. Aggregation is a CSR sparse-dense matmul with an exact
    custom backward (see :func:`spacon.nn.aggregate`), of ``W x`` or, where ``W`` widens the
    features, of ``x`` before ``W`` (see :meth:`forward`).

    Parameters
    ----------
    in_channels, out_channels
        Feature sizes.
    dropout
        Dropout probability on the normalised attention coefficients.
    """

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.1):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.dropout = dropout
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels))
        self.att_src = nn.Parameter(torch.empty(out_channels))
        self.att_dst = nn.Parameter(torch.empty(out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-normal initialisation with gain 1.414, as published."""
        nn.init.xavier_normal_(self.weight, gain=1.414)
        # the attention vectors are initialised as (1, 1, C) tensors in the original
        for att in (self.att_src, self.att_dst):
            view = att.data.view(1, 1, -1)
            nn.init.xavier_normal_(view, gain=1.414)

    def project(self, x: torch.Tensor) -> Projected:
        """``W x`` of every row of ``x`` with its attention scores (see :class:`Projected`)."""
        h = x @ self.weight
        return Projected(h, *self._scores(h))

    def _scores(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every node's source and target attention scores, ``h @ att_src`` and ``h @
        att_dst``, as one matrix product with both vectors: on the CPU a matrix-vector
        product splits each dot product between threads by a rule that depends on the sizes,
        so 1 and 2 threads gave other scores in the last bits and training parted from its
        first step (``benchmarks/thread_invariance.py``).
        """
        scores = h @ torch.stack([self.att_src, self.att_dst], dim=1)
        return scores[:, 0], scores[:, 1]

    def forward(
        self, x: torch.Tensor | Projected, adj: Adjacency, return_attention_weights: bool = False
    ):
        """Aggregate the ``adj.n_src`` rows of ``x`` onto the first ``adj.n_dst`` nodes.

        ``x`` may be already projected (:meth:`project`). Returns the ``(n_dst,
        out_channels)`` output, and with ``return_attention_weights`` also the attention
        coefficient of every edge, in ``adj`` order.

        A layer with more outputs than inputs (the decoder's; the encoders' first with fewer
        genes than its width) aggregates its inputs and
        projects the sum, ``(A x) W``: the same layer as ``A (x W)`` to rounding, its scores
        ``x (W a)``, with ``in_channels`` values per edge instead of ``out_channels`` (a
        quarter, for the decoder's 256 -> 1,000 genes: a training step at 50,000 cells is
        11 % faster, ``benchmarks/bench_step_time.py``).
        """
        widening = not isinstance(x, Projected) and self.out_channels > self.in_channels
        if isinstance(x, Projected):
            h, score_src, score_dst = x.h, x.score_src, _first(x.score_dst, adj.n_dst)
        elif widening:
            h = x
            scores = x @ (self.weight @ torch.stack([self.att_src, self.att_dst], dim=1))
            score_src, score_dst = scores[:, 0], _first(scores[:, 1], adj.n_dst)
        else:
            h = x @ self.weight
            score_src, score_dst = self._scores(h)
            score_dst = _first(score_dst, adj.n_dst)
        if isinstance(adj, BlockAdjacency):
            if return_attention_weights:
                raise ValueError("attention weights are returned for edge-list graphs only")
            out = self._forward_blocks(h, score_src, score_dst, adj)
            return out @ self.weight if widening else out
        # index_select, not [] indexing: the same gather, but its backward is one index_add_
        # where a GPU sorts the indices for indexing's (many launches per layer)
        logits = sigmoid(score_src.index_select(0, adj.indices)
                         + score_dst.index_select(0, adj.row))
        # logits lie in (0, 1): exp cannot overflow, so no max-subtraction is needed
        weights = torch.exp(logits)
        total = torch.zeros(adj.n_dst, dtype=h.dtype, device=h.device).index_add_(
            0, adj.row, weights
        )
        alpha = weights / total.index_select(0, adj.row)
        out = aggregate(F.dropout(alpha, self.dropout, self.training), h, adj)
        if widening:
            out = out @ self.weight
        if return_attention_weights:
            return out, alpha
        return out

    def _forward_blocks(self, h, score_src, score_dst, adj: BlockAdjacency) -> torch.Tensor:
        """The same attention, one dense block per group of targets sharing their sources.

        Rows are gathered with ``index_select``: on the CPU, ``h[sources]`` took 9 ms for
        4,000 rows of 256 where ``index_select`` takes 0.35 ms, and a connectome of 1e9 edges
        has 77,000 such groups per layer.
        """
        outs, order = [], []
        for targets, sources, has_self in adj.groups:
            dst = score_dst.index_select(0, targets)
            weights = torch.exp(sigmoid(dst[:, None] + score_src.index_select(0, sources)))
            # one target with 32,768 sources or more: one sum, which torch splits by thread
            total = weights.sum(dim=1) if len(targets) > 1 else whole_sum(weights).reshape(1)
            if not has_self:
                self_weight = torch.exp(sigmoid(dst + score_src.index_select(0, targets)))
                total = total + self_weight
            alpha = F.dropout(weights / total[:, None], self.dropout, self.training)
            out = alpha @ h.index_select(0, sources)
            if not has_self:
                self_alpha = F.dropout(self_weight / total, self.dropout, self.training)
                out = out + self_alpha[:, None] * h.index_select(0, targets)
            outs.append(out)
            order.append(targets)
        order = torch.cat(order)
        result = torch.zeros(adj.n_dst, h.shape[1], dtype=h.dtype, device=h.device)
        return result.index_copy(0, order, torch.cat(outs))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels})"


def _first(t: torch.Tensor, n: int) -> torch.Tensor:
    """The first ``n`` rows of ``t``; ``t`` itself when it has ``n`` rows (training batches
    target every node).
    """
    return t if len(t) == n else t[:n]
