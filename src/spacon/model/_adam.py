"""Adam, as ``torch.optim.Adam`` computes it, without the optimiser machinery's start-up cost.

Constructing any ``torch.optim`` optimiser imports ``torch._dynamo`` (its parameter groups are
registered through ``torch._disable_dynamo``), which pulls in SymPy and the compiler stack:
1 s on the 2-core development machine, 5-7 s per process on a GPU machine whose torch has no
compiled bytecode, before the first training step. Nothing here needs the compiler.
"""

from __future__ import annotations

import torch


class Adam:
    """Adam with L2 weight decay (``torch.optim.Adam``'s defaults otherwise), one group.

    Each step runs the operations of ``torch.optim.Adam``'s per-parameter loop in its order,
    as multi-tensor (``torch._foreach_*``) calls: on the CPU these run that loop, so the
    parameters are the same to the last bit; on a GPU they are a few kernel launches for all
    parameters. A parameter without a gradient is skipped, and its step count is its own.
    ``state_dict`` is in ``torch.optim.Adam``'s format, so checkpoints written with either
    resume with either.

    Parameters
    ----------
    params
        Tensors to optimise.
    lr, betas, eps, weight_decay
        As for ``torch.optim.Adam``.
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        self.params = list(params)
        if not self.params:
            raise ValueError("Adam got an empty parameter list")
        self.lr, self.betas, self.eps = float(lr), tuple(float(b) for b in betas), float(eps)
        self.weight_decay = float(weight_decay)
        self.steps = [0] * len(self.params)
        self.exp_avg: list[torch.Tensor | None] = [None] * len(self.params)
        self.exp_avg_sq: list[torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop the gradients (``set_to_none=False``: set them to zero)."""
        for p in self.params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.detach_().zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        beta1, beta2 = self.betas
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        if any(self.params[i].grad.is_sparse for i in live):
            raise RuntimeError("Adam does not support sparse gradients")
        for i in live:
            if self.exp_avg[i] is None:
                p = self.params[i]
                self.exp_avg[i] = torch.zeros_like(p, memory_format=torch.preserve_format)
                self.exp_avg_sq[i] = torch.zeros_like(p, memory_format=torch.preserve_format)
            self.steps[i] += 1
        params = [self.params[i] for i in live]
        grads = [p.grad for p in params]
        exp_avg = [self.exp_avg[i] for i in live]
        exp_avg_sq = [self.exp_avg_sq[i] for i in live]
        if self.weight_decay:
            grads = torch._foreach_add(grads, params, alpha=self.weight_decay)
        torch._foreach_lerp_(exp_avg, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sq, beta2)
        torch._foreach_addcmul_(exp_avg_sq, grads, grads, 1 - beta2)
        counts = [float(self.steps[i]) for i in live]  # as torch reads its float32 counter
        step_size = [-(self.lr / (1 - beta1 ** n)) for n in counts]
        correction2_sqrt = [(1 - beta2 ** n) ** 0.5 for n in counts]
        denom = torch._foreach_sqrt(exp_avg_sq)
        torch._foreach_div_(denom, correction2_sqrt)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(params, exp_avg, denom, step_size)

    def state_dict(self) -> dict:
        """The state in ``torch.optim.Adam``'s format."""
        state = {i: {"step": torch.tensor(float(self.steps[i])), "exp_avg": self.exp_avg[i],
                     "exp_avg_sq": self.exp_avg_sq[i]}
                 for i in range(len(self.params)) if self.exp_avg[i] is not None}
        group = {"lr": self.lr, "betas": self.betas, "eps": self.eps,
                 "weight_decay": self.weight_decay, "amsgrad": False, "maximize": False,
                 "foreach": None, "capturable": False, "differentiable": False, "fused": None,
                 "decoupled_weight_decay": False, "params": list(range(len(self.params)))}
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, saved: dict) -> None:
        """Continue from a state of :meth:`state_dict` or ``torch.optim.Adam``'s; its
        tensors are moved to the parameters' device and dtype. The learning rate, betas and
        weight decay stay this optimiser's (a checkpoint is resumed only with the options it
        was written with).
        """
        groups = saved["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise ValueError("the saved optimiser state is for other parameters")
        for position, key in enumerate(groups[0]["params"]):
            entry = saved["state"].get(key)
            p = self.params[position]
            if entry is None:
                self.steps[position], self.exp_avg[position] = 0, None
                self.exp_avg_sq[position] = None
                continue
            if entry["exp_avg"].shape != p.shape:
                raise ValueError("the saved optimiser state is for parameters of other shapes")
            self.steps[position] = int(float(entry["step"]))
            self.exp_avg[position] = entry["exp_avg"].to(p.device, p.dtype).clone()
            self.exp_avg_sq[position] = entry["exp_avg_sq"].to(p.device, p.dtype).clone()
