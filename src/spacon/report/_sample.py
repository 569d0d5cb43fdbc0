"""Which cells a report draws: at most a fixed number, every domain in proportion to its size."""

from __future__ import annotations

import numpy as np


def sample_per_domain(strata: np.ndarray, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``max_points`` cells, drawn evenly from every stratum.

    Each stratum (a domain, or a combination of domains at several alphas) keeps the same
    fraction of its cells, rounded by largest remainder so that exactly ``max_points`` are
    drawn; within a stratum the cells are a random subset (seeded). With no more cells than
    ``max_points``, every cell is drawn.
    """
    strata = np.asarray(strata)
    n = len(strata)
    if n <= max_points:
        return np.arange(n)
    _, inverse, sizes = np.unique(strata, return_inverse=True, return_counts=True)
    quota = sizes * (max_points / n)
    take = np.floor(quota).astype(np.int64)
    extra = max_points - int(take.sum())
    take[np.argsort(take - quota, kind="stable")[:extra]] += 1
    # rank of each cell inside its stratum in a random order; keep the first `take`
    order = np.lexsort((np.random.default_rng(seed).random(n), inverse))
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - start[inverse[order]]
    return np.flatnonzero(rank < take[inverse])
