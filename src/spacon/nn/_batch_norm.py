"""Batch norm whose training statistics do not depend on the number of CPU threads."""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from ._invariant import column_means, column_sums


class BatchNorm1d(nn.BatchNorm1d):
    """``torch.nn.BatchNorm1d`` (same parameters, buffers, state-dict keys, eps and
    momentum) whose CPU training pass gives the same bits on any number of threads.

    Torch's CPU kernel sums a batch's statistics, and their gradients, in chunks that depend
    on the thread count (see :mod:`spacon.nn._invariant`). Here the per-feature mean and
    variance are column means, which torch splits between threads by feature, and the
    gradient is written out with column sums. CUDA uses torch's kernel.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_cuda or x.dim() != 2 or len(x) == 0:  # (no rows: nothing to sum)
            return super().forward(x)
        batch_statistics = self.training or not self.track_running_stats
        if batch_statistics and len(x) == 1:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size "
                f"{list(x.shape)}")
        weight = self.weight if self.affine else x.new_ones(x.shape[1])
        bias = self.bias if self.affine else x.new_zeros(x.shape[1])
        if batch_statistics:
            out, mean, var = _BatchNorm.apply(x, weight, bias, self.eps)
            if self.training and self.track_running_stats:
                n = x.shape[0]
                self._update_running_stats(mean, var * (n / (n - 1)))
            return out
        invstd = 1 / torch.sqrt(self.running_var + self.eps)  # not rsqrt (see _invariant)
        return torch.addcmul(bias, x - self.running_mean, invstd * weight)

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, unbiased_var: torch.Tensor) -> None:
        """``running = momentum * batch + (1 - momentum) * running``, as torch's kernel
        (a cumulative average when ``momentum`` is ``None``).
        """
        self.num_batches_tracked.add_(1)
        momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                    else self.momentum)
        self.running_mean.mul_(1 - momentum).add_(mean, alpha=momentum)
        self.running_var.mul_(1 - momentum).add_(unbiased_var, alpha=momentum)


class _BatchNorm(torch.autograd.Function):
    """Batch statistics as column means (each column is reduced by one thread; 4-7 times
    faster than ``torch.var_mean``'s one pass here), and batch norm's gradient written out
    with column sums (first order only).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        mean = column_means(x)
        xhat = x - mean
        var = column_means(xhat.square())
        invstd = 1 / torch.sqrt(var + eps)  # not rsqrt (see _invariant)
        xhat.mul_(invstd)
        ctx.save_for_backward(xhat, invstd, weight)
        ctx.mark_non_differentiable(mean, var)
        return torch.addcmul(bias, xhat, weight), mean, var

    @staticmethod
    @once_differentiable
    def backward(ctx, grad, _mean, _var):
        xhat, invstd, weight = ctx.saved_tensors
        grad_bias = column_sums(grad)
        grad_weight = column_sums(grad * xhat)
        grad_x = None
        if ctx.needs_input_grad[0]:
            # (w / sd) (g - mean(g) - xhat mean(g xhat))
            n = grad.shape[0]
            scale = weight * invstd
            grad_x = grad * scale
            grad_x.addcmul_(xhat, grad_weight * scale, value=-1 / n)
            grad_x.sub_(grad_bias * scale / n)
        return grad_x, grad_weight, grad_bias, None
