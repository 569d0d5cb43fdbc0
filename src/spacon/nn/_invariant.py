"""CPU operations whose result does not depend on the number of threads.

A run repeats to the bit for a seed and data; with these it also repeats on any thread count,
so that ``spacon run``, which trains on the CPUs idle at its start, gives one result whether
that is 1 thread or 2. Torch splits CPU work of 32,768 elements or more between threads at
points that depend on their number:

- a reduction to one number (``t.sum()``, ``F.mse_loss``, a norm) adds one partial sum per
  thread, so the same tensor sums to other last bits on 1 and 2 threads;
- element-wise, each thread's part is computed in SIMD vectors and its last few elements one
  by one, and ``torch.sigmoid``, ``F.elu`` and ``torch.rsqrt`` compute those by another
  formula.

A reduction over rows to one value per column (``t.sum(0)``: each column is summed by one
thread), ``torch.exp`` and ``torch.expm1`` (one formula for every element) and arithmetic do
not depend on the split, and the functions here are built from them. The rest of training:
attention scores as matrix products (``GATConv._scores``, and in ``GATConv.forward``
for a widening layer), batch norm
(:class:`~spacon.nn._batch_norm.BatchNorm1d`), and Intel MKL's strict reproducible mode for
the matrix products over the cells (set when spacon is imported).
``benchmarks/thread_invariance.py`` checks the whole. On a GPU these are torch's functions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

# torch's CPU reductions stay on one thread below this many elements (at::internal::GRAIN_SIZE)
_SERIAL = 32768
_WIDTH = 256  # columns of the matrix a long vector is folded into


class _Sigmoid(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.neg(x).exp_().add_(1).reciprocal_()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y * (1 - y)  # torch's sigmoid backward


class _ELU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.expm1(x.clamp(max=0)).add_(x.clamp(min=0))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return y.clamp(max=0).add_(1).mul_(grad)  # 1 where y > 0, exp(x) = y + 1 elsewhere


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """``torch.sigmoid(x)``, as ``1 / (1 + exp(-x))``; its gradient is ``y (1 - y)``.
    On a GPU, ``torch.sigmoid``.
    """
    return torch.sigmoid(x) if x.is_cuda else _Sigmoid.apply(x)


def elu(x: torch.Tensor) -> torch.Tensor:
    """``F.elu(x)`` (alpha 1), as ``expm1(min(x, 0)) + max(x, 0)``; its gradient is 1 where
    the output is positive and ``output + 1`` elsewhere, as torch's. On a GPU, ``F.elu``.
    """
    return F.elu(x) if x.is_cuda else _ELU.apply(x)


def total(t: torch.Tensor) -> torch.Tensor:
    """The sum of all elements of ``t``, in an order that is the same on any thread count.

    Below 32,768 elements torch sums on one thread already. Above, rows are summed per
    column first; a vector (or a single column) is folded into 256 columns first (the zeros
    padding its last row do not change the sum). On a GPU this is ``t.sum()``.
    """
    if t.numel() < _SERIAL or t.is_cuda:
        return t.sum()
    if t.dim() < 2 or t.shape[-1] == 1:
        flat = t.reshape(-1)
        flat = torch.cat([flat, flat.new_zeros(-len(flat) % _WIDTH)])
        t = flat.view(-1, _WIDTH)
    return total(t.reshape(-1, t.shape[-1]).sum(0))


def column_sums(t: torch.Tensor) -> torch.Tensor:
    """``t.sum(0)`` of a 2-D ``t``, the same on any thread count (one column: :func:`total`)."""
    return total(t).reshape(1) if t.shape[1] == 1 else t.sum(0)


def column_means(t: torch.Tensor) -> torch.Tensor:
    """``t.mean(0)`` of a 2-D ``t``, the same on any thread count (one column: :func:`total`)."""
    return total(t).reshape(1) / len(t) if t.shape[1] == 1 else t.mean(0)


class _AddRow(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, row):
        return x + row

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        return grad, column_sums(grad)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
           ) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` whose bias gradient is :func:`column_sums` of the rows
    (torch's sums a single output column as one thread-split total). On a GPU, ``F.linear``.
    """
    if x.is_cuda:
        return F.linear(x, weight, bias)
    out = x @ weight.t()
    return out if bias is None else _AddRow.apply(out, bias)


class _SquaredError(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pred, target):
        diff = pred - target
        ctx.save_for_backward(diff)
        return total(diff.square())

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        (diff,) = ctx.saved_tensors
        grad_pred = diff * (2 * grad)
        return grad_pred, (-grad_pred if ctx.needs_input_grad[1] else None)


def squared_error(pred: torch.Tensor, target: torch.Tensor, reduction: str = "sum"
                  ) -> torch.Tensor:
    """``F.mse_loss(pred, target, reduction=reduction)`` (``"sum"`` or ``"mean"``), summed
    with :func:`total` (on a GPU, ``F.mse_loss``).
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} "
                         "differ in shape")
    if pred.is_cuda:
        return F.mse_loss(pred, target, reduction=reduction)
    loss = _SquaredError.apply(pred, target)
    return loss / pred.numel() if reduction == "mean" else loss


@torch.no_grad()
def clip_grad_norm_(parameters, max_norm: float) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_`` with the 2-norm, its sums by :func:`total`:
    scale every gradient by ``max_norm / (norm + 1e-6)`` when the gradients' joint norm is
    above ``max_norm``. Returns the norm.
    """
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    squares = torch.stack([total(g * g).to(grads[0].device) for g in grads])
    norm = squares.sum().sqrt()
    coef = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef.to(g.device, g.dtype))
    return norm
