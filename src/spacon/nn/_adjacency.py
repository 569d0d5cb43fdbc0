"""Sparse adjacency of target nodes over source nodes, and message aggregation by CSR matmul."""

from __future__ import annotations

import warnings

import scipy.sparse as sp
import torch

from ..graph import _ops as ops


def csr_tensor(indptr, indices, values, shape) -> torch.Tensor:
    """A torch CSR tensor, built without torch's warning.

    torch flags CSR support as beta, once per process, and spacon checks its own invariants;
    the warning is silenced here only, never process-wide. After the first construction
    there is nothing left to silence (and a training step builds dozens).
    """
    global _silenced
    if _silenced:
        return torch.sparse_csr_tensor(indptr, indices, values, shape, check_invariants=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly")
        out = torch.sparse_csr_tensor(indptr, indices, values, shape, check_invariants=False)
    _silenced = True
    return out


_silenced = False


class Adjacency:
    """Incoming edges of ``n_dst`` target nodes from ``n_src`` source nodes, CSR by target.

    Targets are the first ``n_dst`` source nodes, so a self-loop of target ``i`` is source
    ``i``. The transpose (needed by the backward pass) is computed once and cached.
    """

    def __init__(self, indptr: torch.Tensor, indices: torch.Tensor, n_src: int):
        self.indptr = indptr
        self.indices = indices
        self.n_dst = len(indptr) - 1
        self.n_src = int(n_src)
        # output_size: the number of edges is known, so a GPU need not synchronise here
        self.row = torch.repeat_interleave(
            torch.arange(self.n_dst, device=indptr.device), indptr[1:] - indptr[:-1],
            output_size=len(indices),
        )
        self._transpose = None

    @classmethod
    def from_edges(cls, target, source, n_dst: int, n_src: int, self_loops: bool = True):
        """Build from edge arrays: NumPy (built on the CPU) or torch tensors (built on their
        device); duplicates merged, self-loops added.
        """
        device = target.device if isinstance(target, torch.Tensor) else "cpu"
        target, source = ops.as_index(target, device), ops.as_index(source, device)
        if self_loops:
            loops = ops.arange(0, n_dst, target)
            target, source = ops.cat([target, loops]), ops.cat([source, loops])
        key = ops.unique_sorted(target * n_src + source)
        target = key // n_src
        indptr = ops.searchsorted(target, ops.arange(0, n_dst + 1, target))
        return cls(ops.as_tensor(indptr), ops.as_tensor(key - target * n_src), n_src)

    @classmethod
    def from_scipy(cls, matrix: sp.spmatrix, self_loops: bool = True) -> Adjacency:
        """From a square target x source scipy matrix (its values are ignored)."""
        coo = sp.coo_matrix(matrix)
        n_dst, n_src = matrix.shape
        return cls.from_edges(coo.row, coo.col, n_dst, n_src, self_loops)

    @property
    def n_edges(self) -> int:
        """Number of edges, self-loops included."""
        return len(self.indices)

    def transpose(self):
        """``(indptr, indices, perm)`` of the source x target CSR; ``perm`` maps edge order."""
        if self._transpose is None:
            perm = torch.argsort(self.indices * self.n_dst + self.row)
            # row pointers of the sorted sources by search, not bincount (which synchronises
            # a GPU to size its output)
            indptr = torch.searchsorted(self.indices[perm], torch.arange(
                self.n_src + 1, device=self.indices.device))
            self._transpose = (indptr, self.row[perm], perm)
        return self._transpose

    def to(self, device) -> Adjacency:
        """A copy on ``device``."""
        out = Adjacency(self.indptr.to(device), self.indices.to(device), self.n_src)
        return out

    def csr(self, values: torch.Tensor) -> torch.Tensor:
        """The adjacency as a torch CSR tensor with per-edge ``values``."""
        return csr_tensor(self.indptr, self.indices, values, (self.n_dst, self.n_src))


class _Aggregate(torch.autograd.Function):
    """out[i] = sum_j values[i->j] * h[j]  as one CSR x dense matmul, with an exact backward.

    Backward: d h = A^T @ d out (CSR matmul on the cached transpose) and
    d values[e] = <d out[row_e], h[col_e]> (sampled dense-dense product), so no
    (edges x channels) tensor is ever materialised.
    """

    @staticmethod
    def forward(ctx, values, h, adj):
        ctx.adj = adj
        ctx.save_for_backward(values, h)
        return adj.csr(values) @ h

    @staticmethod
    def backward(ctx, grad_out):
        values, h = ctx.saved_tensors
        adj = ctx.adj
        grad_values = grad_h = None
        grad_out = grad_out.contiguous()
        if ctx.needs_input_grad[1]:
            t_indptr, t_indices, perm = adj.transpose()
            at = csr_tensor(t_indptr, t_indices, values[perm], (adj.n_src, adj.n_dst))
            grad_h = at @ grad_out
        if ctx.needs_input_grad[0]:
            mask = adj.csr(torch.zeros_like(values))
            grad_values = torch.sparse.sampled_addmm(mask, grad_out, h.t(), beta=0.0).values()
        return grad_values, grad_h, None


def aggregate(values: torch.Tensor, h: torch.Tensor, adj: Adjacency) -> torch.Tensor:
    """Sum of neighbour features weighted by per-edge ``values`` (see :class:`_Aggregate`)."""
    return _Aggregate.apply(values, h, adj)


class BlockAdjacency:
    """Target nodes in groups that share one source list: the cells of one connectivity unit.

    Every cell of unit ``u`` receives from the same cells (those of the units sending to
    ``u``), so attention for the whole group is one dense ``(targets x sources)`` block and
    aggregation one dense matmul: BLAS speed, and the per-edge index arrays of a whole-brain
    connectome (over a billion edges) are never built. Self-loops are added where a group's
    sources do not already hold its targets. Targets are the first ``n_dst`` source nodes.

    Parameters
    ----------
    groups
        ``(targets, sources, has_self)`` per group: local target ids, local source ids, and
        whether the sources include the targets themselves.
    n_dst, n_src
        Numbers of target and source nodes.
    """

    def __init__(self, groups, n_dst: int, n_src: int):
        self.groups = groups
        self.n_dst = int(n_dst)
        self.n_src = int(n_src)

    @property
    def n_edges(self) -> int:
        """Number of edges, self-loops included."""
        return int(sum(len(t) * (len(s) + (not has_self)) for t, s, has_self in self.groups))

    def to(self, device) -> BlockAdjacency:
        """A copy on ``device``."""
        groups = [(t.to(device), s.to(device), h) for t, s, h in self.groups]
        return BlockAdjacency(groups, self.n_dst, self.n_src)
