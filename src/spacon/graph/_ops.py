"""Index kernels for sampling and batch building: NumPy arrays on the CPU, torch tensors on a GPU.

Sampling code is written once; it holds NumPy arrays when training runs on the CPU and torch
tensors on the GPU, and calls these functions where the two libraries name an operation
differently (indexing, masks and arithmetic are written the same way for both). The CPU keeps
NumPy because torch's CPU kernels for this work were several times slower on the 2-core
development machine (gathers 3x, ``nonzero`` 8x, ``repeat_interleave`` over 50x, ``arange``
20x, sorting 2.4x, and element-wise arithmetic on index arrays slower too), which would have
made CPU training slower than it was.
"""

from __future__ import annotations

import numpy as np
import torch

Array = np.ndarray | torch.Tensor


def is_cpu(device) -> bool:
    """Whether ``device`` is the CPU (sampling there uses NumPy)."""
    return torch.device(device).type == "cpu"


def as_index(values, device) -> Array:
    """int64 indices for ``device``: a NumPy array on the CPU (no copy when it already is
    one), a tensor elsewhere.
    """
    if is_cpu(device):
        if isinstance(values, torch.Tensor):
            values = values.cpu().numpy()
        return np.ascontiguousarray(values, dtype=np.int64)
    if isinstance(values, np.ndarray):
        values = torch.from_numpy(np.ascontiguousarray(values, dtype=np.int64))
    return torch.as_tensor(values, dtype=torch.int64).to(device)


def as_tensor(values: Array) -> torch.Tensor:
    """A torch tensor of ``values`` (sharing a NumPy array's memory)."""
    return torch.from_numpy(values) if isinstance(values, np.ndarray) else values


def arange(start: int, stop: int, like: Array) -> Array:
    """``start, ..., stop - 1`` as int64, of ``like``'s kind and device."""
    if isinstance(like, np.ndarray):
        return np.arange(start, stop, dtype=np.int64)
    return torch.arange(start, stop, device=like.device)


def nonzero(mask: Array) -> Array:
    """Positions where a 1-D ``mask`` is true."""
    if isinstance(mask, np.ndarray):
        return np.flatnonzero(mask)
    return torch.nonzero(mask).squeeze(1)


def repeat(values: Array, counts: Array, total: int) -> Array:
    """Each of ``values`` repeated ``counts`` times (``total = counts.sum()``)."""
    if isinstance(values, np.ndarray):
        return np.repeat(values, counts)
    return torch.repeat_interleave(values, counts, output_size=total)


def sort(values: Array, dim: int = -1) -> Array:
    """Sorted values along ``dim``."""
    if isinstance(values, np.ndarray):
        return np.sort(values, axis=dim)
    return torch.sort(values, dim=dim).values


def cat(parts: list) -> Array:
    """Concatenation of 1-D arrays."""
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    return torch.cat(parts)


def searchsorted(sorted_values: Array, values: Array, right: bool = False) -> Array:
    """Insertion points of ``values`` in ``sorted_values``."""
    if isinstance(sorted_values, np.ndarray):
        return np.searchsorted(sorted_values, values, side="right" if right else "left")
    return torch.searchsorted(sorted_values, values, right=right)


def true_like(values: Array) -> Array:
    """An all-true boolean array of ``values``' shape."""
    if isinstance(values, np.ndarray):
        return np.ones(values.shape, dtype=bool)
    return torch.ones_like(values, dtype=torch.bool)


def unique_sorted(values: Array) -> Array:
    """Sorted unique values by one sort (faster than ``np.unique`` / ``torch.unique``)."""
    values = sort(values)
    if len(values) < 2:
        return values
    keep = true_like(values)
    keep[1:] = values[1:] != values[:-1]
    return values[keep]


def spread(counts: Array) -> tuple[Array, Array]:
    """For rows with ``counts`` items each: the row of every item and its place in its row."""
    total = int(counts.sum())
    row = repeat(arange(0, len(counts), counts), counts, total)
    starts = counts.cumsum(0) - counts
    return row, arange(0, total, counts) - starts[row]


def generator(keys: list[int], device):
    """A random generator for ``device`` seeded from ``keys``: NumPy's on the CPU, torch's
    on a GPU.
    """
    if is_cpu(device):
        return np.random.default_rng(keys)
    state = np.random.SeedSequence(keys).generate_state(1, np.uint64)[0]
    return torch.Generator(device=device).manual_seed(int(state) >> 1)


def uniform(gen, shape: tuple[int, int], like: Array) -> Array:
    """Uniform floats in [0, 1) of ``shape`` (float64), drawn with ``gen``."""
    if isinstance(gen, np.random.Generator):
        return gen.random(shape)
    return torch.rand(shape, generator=gen, device=like.device, dtype=torch.float64)


def permutation(gen, n: int, device) -> Array:
    """A random permutation of ``range(n)`` drawn with ``gen``."""
    if isinstance(gen, np.random.Generator):
        return gen.permutation(n)
    return torch.randperm(n, generator=gen, device=device)


def floor_int(values: Array) -> Array:
    """Non-negative floats rounded down to int64."""
    if isinstance(values, np.ndarray):
        return values.astype(np.int64)
    return values.long()
