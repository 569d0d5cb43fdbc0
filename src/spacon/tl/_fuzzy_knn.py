"""scanpy's default neighbour graph (``sc.pp.neighbors``: UMAP's fuzzy k-nearest-neighbour
graph), in NumPy from exact neighbours (up to 50,000 cells).

Leiden and Louvain cluster this graph. scanpy builds it with umap-learn, whose numba kernels
are compiled afresh in every process (10-20 s on a small CPU, for 900 cells whose clustering
then takes 0.2 s), and, from 4,096 cells on, with approximate neighbours from pynndescent
(another compilation; through scanpy 1.11.5 with SciPy 1.17 that path failed at 50,000 cells).
Here the neighbours are exact up to ``EXACT_LIMIT`` cells (a k-d tree: memory grows with cells
x neighbours; 50,000 cells in 16 dimensions took 27 s on one core, about pynndescent's first
compilation), from pynndescent above, and UMAP's steps are array operations over all cells at
once, in UMAP's float32:

* ``rho``: each cell's distance to its nearest other cell (``local_connectivity = 1``);
* ``sigma``: found by bisection (64 steps at most) so that the memberships
  ``exp(-(d - rho) / sigma)`` of its other neighbours sum to ``log2(k)``, floored at 1e-3 of
  its mean neighbour distance;
* the fuzzy union of the two directions, ``W + W.T - W * W.T``.

``tests/test_fuzzy_knn.py`` checks the graph against scanpy's.
"""

from __future__ import annotations

import numpy as np

SMOOTH_K_TOLERANCE = 1e-5  # umap-learn's constants
MIN_K_DIST_SCALE = 1e-3
N_ITER = 64
EXACT_LIMIT = 50_000  # exact neighbours up to this many cells, pynndescent's above


def neighbors(z: np.ndarray, n_neighbors: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Each point's ``n_neighbors`` nearest points, itself first (as scanpy counts them):
    ``(indices, distances)``, both points x ``n_neighbors``.
    """
    if len(z) > EXACT_LIMIT:
        from pynndescent import NNDescent

        # one thread: its parallel updates land in an order that varies from run to run
        indices, distances = NNDescent(np.asarray(z, dtype=np.float32), n_neighbors=n_neighbors,
                                       random_state=seed, n_jobs=1).neighbor_graph
        distances = distances.astype(np.float64)
    else:
        from scipy.spatial import cKDTree

        distances, indices = cKDTree(z).query(z, k=n_neighbors, workers=_threads())
    distances, indices = distances.reshape(len(z), -1), indices.reshape(len(z), -1)
    # a point that coincides with another may be listed after it: put itself first
    own = np.argmax(indices == np.arange(len(z))[:, None], axis=1)
    found = indices[np.arange(len(z)), own] == np.arange(len(z))
    for row in np.flatnonzero(found & (own > 0)):
        order = np.r_[own[row], np.delete(np.arange(indices.shape[1]), own[row])]
        indices[row], distances[row] = indices[row, order], distances[row, order]
    return indices, distances


def smooth_knn_dist(distances: np.ndarray, k: float) -> tuple[np.ndarray, np.ndarray]:
    """UMAP's ``sigma`` and ``rho`` of every row of ``distances`` (float32, sorted, the point
    itself first), all rows bisected together.
    """
    d = np.asarray(distances, dtype=np.float32)
    n = len(d)
    target = float(np.log2(k))  # float64, as UMAP compares the float32 sums with it
    positive = np.where(d > 0, d, np.inf)
    rho = positive.min(axis=1)
    rho[~np.isfinite(rho)] = 0.0
    rho = rho.astype(np.float32)
    shifted = d[:, 1:] - rho[:, None]
    lo = np.zeros(n, dtype=np.float32)
    hi = np.full(n, np.finfo(np.float32).max, dtype=np.float32)
    mid = np.ones(n, dtype=np.float32)
    active = np.ones(n, dtype=bool)
    for _ in range(N_ITER):
        rows = np.flatnonzero(active)
        if len(rows) == 0:
            break
        # within rho the term is 1: exp(-0); clipping there (rather than np.where over exp of
        # both branches) never overflows, and gives the same values. A tiny mid drives the
        # rest to exp(-inf) = 0, as it should
        with np.errstate(over="ignore"):
            terms = np.exp(-(np.maximum(shifted[rows], np.float32(0)) / mid[rows, None]))
        psum = np.zeros(len(rows), dtype=np.float32)
        for j in range(terms.shape[1]):  # summed in order, in float32, as UMAP does
            psum += terms[:, j]
        done = np.abs(psum.astype(np.float64) - target) < SMOOTH_K_TOLERANCE
        going = rows[~done]
        above = psum[~done] > target
        m, low, high = mid[going], lo[going], hi[going]
        high = np.where(above, m, high)
        low = np.where(above, low, m)
        unbounded = ~above & (high >= np.finfo(np.float32).max)
        m = np.where(unbounded, m * np.float32(2), (low + high) / np.float32(2))
        mid[going], lo[going], hi[going] = m, low, high
        active[rows[done]] = False
    floor = np.where(rho > 0, d.mean(axis=1), d.mean()) * np.float32(MIN_K_DIST_SCALE)
    return np.maximum(mid, floor.astype(np.float32)), rho


def fuzzy_connectivities(z: np.ndarray, n_neighbors: int, seed: int = 0):
    """The symmetric CSR graph ``sc.pp.neighbors(adata, n_neighbors)`` stores as
    ``obsp['connectivities']`` (``n_neighbors`` counting the cell itself; ``seed`` for
    pynndescent's search above ``EXACT_LIMIT`` cells).
    """
    import scipy.sparse as sp

    n = len(z)
    k = max(2, min(int(n_neighbors), n))
    indices, distances = neighbors(np.asarray(z, dtype=np.float64), k, seed)
    distances = distances.astype(np.float32)
    sigma, rho = smooth_knn_dist(distances, float(k))
    shifted = distances - rho[:, None]
    weight = np.ones_like(shifted)
    far = (shifted > 0) & (sigma[:, None] > 0)
    weight[far] = np.exp(-(shifted / np.where(sigma > 0, sigma, 1)[:, None])[far])
    weight[indices == np.arange(n)[:, None]] = 0.0
    w = sp.coo_matrix((weight.ravel(), (np.repeat(np.arange(n), k), indices.ravel())),
                      shape=(n, n)).tocsr()
    w.eliminate_zeros()
    t = w.T.tocsr()
    graph = (w + t - w.multiply(t)).tocsr()
    graph.eliminate_zeros()
    return graph


def _threads() -> int:
    """The threads BLAS may use here (``spacon run --threads``, ``OMP_NUM_THREADS``)."""
    from threadpoolctl import threadpool_info

    counts = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    return max(1, min(counts)) if counts else 1
