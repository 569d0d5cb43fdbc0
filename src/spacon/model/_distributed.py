"""Data-parallel training on PyTorch's own distributed engine (``torch.distributed``).

Each process (rank) trains on its own shard of the seed cells; after every backward pass the
gradients are averaged over ranks, so all ranks take the same optimiser step and hold the same
model, as ``DistributedDataParallel`` does. Launch with ``torchrun`` (or any launcher that
initialises the default process group: gloo on CPUs, nccl on GPUs).
"""

from __future__ import annotations

import collections
import os

import torch

# Handles of the latest gloo collectives. A finished gloo collective is released by whichever
# holds it last; when that is one of gloo's (two) worker threads during interpreter shutdown,
# releasing the work's tensors needs the GIL and aborts the process ("terminate called without
# an active exception", in 2 of 45 two-rank test runs here). Kept here, the last reference is
# Python's.
_RECENT_WORK: collections.deque = collections.deque(maxlen=8)


def _collective(name: str, tensor: torch.Tensor, **options) -> None:
    """``torch.distributed.<name>(tensor, **options)``; on gloo waited for and its handle kept
    a while (see ``_RECENT_WORK``), on nccl the plain synchronous call.
    """
    import torch.distributed as dist

    if dist.get_backend() != "gloo":
        getattr(dist, name)(tensor, **options)
        return
    work = getattr(dist, name)(tensor, async_op=True, **options)
    work.wait()
    _RECENT_WORK.append(work)


def init_from_environment(device: str = "auto") -> tuple[int, int] | None:
    """Join the process group a launcher such as ``torchrun`` describes in the environment.

    Returns ``(rank, world_size)``, or ``None`` when the environment asks for one process.
    Uses nccl when the ranks train on GPUs (each on its ``LOCAL_RANK`` device), else gloo.
    """
    import torch.distributed as dist

    from .._utils import resolve_device

    if int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return None
    if not dist.is_initialized():
        cuda = resolve_device(device).type == "cuda" and dist.is_nccl_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo")
    return process_group()


def process_group() -> tuple[int, int] | None:
    """``(rank, world_size)`` of an initialised process group with more than one rank."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    return dist.get_rank(), dist.get_world_size()


def broadcast_module(module: torch.nn.Module) -> None:
    """Give every rank rank 0's parameters and buffers."""
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            _collective("broadcast", tensor.data, src=0)


def average_gradients(module: torch.nn.Module) -> None:
    """Replace each gradient by its mean over ranks (a missing gradient counts as zero)."""
    import torch.distributed as dist

    world_size = dist.get_world_size()
    for p in module.parameters():
        if not p.requires_grad:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        _collective("all_reduce", p.grad, op=dist.ReduceOp.SUM)
        p.grad /= world_size


def all_sum(values: list[float], device=None) -> list[float]:
    """Sum of each value over ranks."""
    import torch.distributed as dist

    if device is None:
        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor(values, dtype=torch.float64, device=device)
    _collective("all_reduce", t, op=dist.ReduceOp.SUM)
    return t.tolist()


def any_ranks(flags: list[bool], device=None) -> list[bool]:
    """Each flag true on every rank when it is true on any (e.g. a stop request)."""
    return [v > 0 for v in all_sum([float(f) for f in flags], device)]


def any_rank(flag: bool, device=None) -> bool:
    """True on every rank when it is true on any."""
    return any_ranks([flag], device)[0]


def same_on_all_ranks(values: list[float], device=None) -> bool:
    """Whether every rank holds the same ``values`` (e.g. its position in training)."""
    import torch.distributed as dist

    if device is None:
        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    low = torch.tensor(values, dtype=torch.float64, device=device)
    high = low.clone()
    _collective("all_reduce", low, op=dist.ReduceOp.MIN)
    _collective("all_reduce", high, op=dist.ReduceOp.MAX)
    return bool(torch.equal(low, high))


class LocalSync:
    """One process: what :class:`GroupSync` does across ranks is a no-op here."""

    rank, world_size = 0, 1

    def average_gradients(self, module: torch.nn.Module) -> None:
        """Nothing to average."""

    def broadcast(self, module: torch.nn.Module) -> None:
        """Nothing to share."""

    def any(self, flags: list[bool]) -> list[bool]:
        """The flags as they are."""
        return list(flags)

    def sum(self, values: list[float]) -> list[float]:
        """The values as they are."""
        return list(values)

    def same(self, values: list[float]) -> bool:
        """Always true."""
        return True

    def checkpoint_path(self, path):
        """The checkpoint file as given."""
        return path

    def shared_int(self, value: int) -> int:
        """The value as it is."""
        return value


class GroupSync:
    """The ranks of an initialised process group, kept in step (see the module docstring)."""

    def __init__(self, rank: int, world_size: int, device):
        self.rank, self.world_size, self.device = rank, world_size, device

    def average_gradients(self, module: torch.nn.Module) -> None:
        """Every rank takes the mean gradient."""
        average_gradients(module)

    def broadcast(self, module: torch.nn.Module) -> None:
        """Every rank gets rank 0's parameters and buffers."""
        broadcast_module(module)

    def any(self, flags: list[bool]) -> list[bool]:
        """Each flag true on every rank when it is true on any (one collective)."""
        return any_ranks(flags, self.device)

    def sum(self, values: list[float]) -> list[float]:
        """Each value summed over ranks."""
        return all_sum(values, self.device)

    def same(self, values: list[float]) -> bool:
        """Whether every rank holds the same values."""
        return same_on_all_ranks(values, self.device)

    def checkpoint_path(self, path):
        """Each rank checkpoints to its own file, ``<stem>.rank<r><suffix>``."""
        return path.with_name(f"{path.stem}.rank{self.rank}{path.suffix}")

    def shared_int(self, value: int) -> int:
        """Rank 0's ``value`` on every rank (e.g. a freshly drawn seed)."""
        t = torch.tensor([value], dtype=torch.int64, device=self.device)
        _collective("broadcast", t, src=0)
        return int(t.item())
