"""A UMAP-style 2-D layout of an embedding, optimised full-batch in torch.

umap-learn compiles its numba kernels afresh in every process (minutes on a small CPU), which
made it most of a run's figure time. This keeps UMAP's graph and forces -- a fuzzy k-nearest-
neighbour graph, attraction ``1 / (1 + a d^2b)`` along its edges, repulsion from random cells --
but moves every cell at once per epoch, in a few seconds for thousands of cells.
"""

from __future__ import annotations

import numpy as np

# UMAP's curve for min_dist=0.1, spread=1
CURVE_A, CURVE_B = 1.577, 0.895


def fuzzy_knn_graph(x: np.ndarray, n_neighbors: int = 15):
    """Edges ``(source, target, weight)`` of UMAP's symmetric fuzzy k-nearest-neighbour graph
    (``n_neighbors`` other cells each; the graph Leiden clusters, :mod:`spacon.tl._fuzzy_knn`).
    """
    from ..tl._fuzzy_knn import fuzzy_connectivities

    w = fuzzy_connectivities(x, n_neighbors + 1).tocoo()  # (scanpy counts the cell itself)
    return w.row, w.col, w.data


def umap_layout(x: np.ndarray, *, n_neighbors: int = 15, n_epochs: int = 120,
                negative_samples: int = 5, seed: int = 0) -> np.ndarray:
    """2-D coordinates of the rows of ``x``, near neighbours together (UMAP's objective).

    Starts from the first two principal components and moves every point at once per epoch,
    with a step that shrinks linearly towards zero.

    Parameters
    ----------
    x
        Points to lay out, one per row.
    n_neighbors
        Neighbours in the fuzzy k-nearest-neighbour graph.
    n_epochs
        Full-batch optimisation steps.
    negative_samples
        Random points each point is pushed from per epoch.
    seed
        Seed of the negative samples.

    Returns
    -------
    An ``(n, 2)`` array (all zeros for fewer than three points).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or not np.isfinite(x).all():
        from .._errors import SpaconInputError

        raise SpaconInputError("umap_layout takes points x dimensions (2-D) of finite numbers, "
                               f"got shape {x.shape}" + ("" if x.ndim != 2 else " with NaN or "
                                                         "infinite values") + ".")
    n = len(x)
    if n < 3:
        return np.zeros((n, 2))
    source, target, weight = fuzzy_knn_graph(x, n_neighbors)
    weight = weight / weight.max()
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    pos = centred @ vt[:2].T if vt.shape[0] >= 2 else np.column_stack([centred[:, 0]] * 2)
    pos = 10 * pos / max(np.abs(pos).max(), 1e-12)
    degree = np.maximum(np.bincount(source, weights=weight, minlength=n), 1e-8)
    rng = np.random.default_rng(seed)
    repelled = np.repeat(np.arange(n), negative_samples)
    px, py = pos[:, 0].copy(), pos[:, 1].copy()
    for epoch in range(n_epochs):
        dx, dy = px[source] - px[target], py[source] - py[target]
        d2 = np.maximum(dx * dx + dy * dy, 1e-12)
        power = d2 ** (CURVE_B - 1)
        pull = weight * (-2 * CURVE_A * CURVE_B) * power / (1 + CURVE_A * power * d2)
        # each cell is pushed from a few random cells, in proportion to its degree (as UMAP's
        # per-edge negative samples are)
        others = rng.integers(0, n, len(repelled))
        ax, ay = px[repelled] - px[others], py[repelled] - py[others]
        d2 = ax * ax + ay * ay
        push = degree[repelled] * 2 * CURVE_B / ((0.001 + d2) * (1 + CURVE_A * d2 ** CURVE_B))
        rate = (1.0 - epoch / n_epochs) / degree
        for p, d, a in ((px, dx, ax), (py, dy, ay)):
            p += rate * (np.bincount(source, np.clip(pull * d, -4, 4), minlength=n)
                         + np.bincount(repelled, np.clip(push * a, -4, 4), minlength=n))
    return np.column_stack([px, py])
