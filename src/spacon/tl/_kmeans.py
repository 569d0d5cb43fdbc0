"""The k-means start of each tied mixture: scikit-learn's ``KMeans(n_init=1)`` labels, with
less work around them.

Domain selection starts some 500 small mixtures per :func:`spacon.tl.domains` call (a few
hundred to 2,000 points, up to 30 clusters), each from k-means. On such samples scikit-learn's
``KMeans.fit`` spent half its time in k-means++, and most of that in input checks around each
centre's distance computation; the greedy k-means++ is a few array operations here. It draws
from the caller's ``RandomState`` as scikit-learn does (the same candidates, the same stream
left behind), and Lloyd's iterations are scikit-learn's own, so the labels are ``KMeans``'s
(``tests/test_domains.py`` checks them, and the random state after).
"""

from __future__ import annotations

import numpy as np

MAX_ITER = 300  # KMeans' defaults
TOL = 1e-4


def kmeans_labels(x: np.ndarray, n_clusters: int, random_state: np.random.RandomState
                  ) -> np.ndarray:
    """``KMeans(n_clusters, n_init=1, random_state=random_state).fit(x).labels_`` for a dense
    float64 ``x``.
    """
    points = np.ascontiguousarray(x, dtype=np.float64)
    if len(points) < n_clusters:
        raise ValueError(f"n_samples={len(points)} should be >= n_clusters={n_clusters}.")
    tol = float(np.mean(np.var(points, axis=0))) * TOL  # relative to the data's spread
    x = points - points.mean(axis=0)  # centred, as KMeans does
    norms = np.einsum("ij,ij->i", x, x)
    chosen = _kmeans_plusplus(x, n_clusters, norms, random_state)
    try:
        from sklearn.cluster._kmeans import _kmeans_single_lloyd
        from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
    except ImportError:  # a scikit-learn that moved them: the class, from the same start
        from sklearn.cluster import KMeans

        return KMeans(n_clusters, init=points[chosen], n_init=1, max_iter=MAX_ITER,
                      tol=TOL).fit(points).labels_
    labels, *_ = _kmeans_single_lloyd(x, np.ones(len(x)), x[chosen], max_iter=MAX_ITER,
                                      tol=tol, n_threads=_openmp_effective_n_threads())
    return labels


def _kmeans_plusplus(x, n_clusters, norms, random_state) -> np.ndarray:
    """Greedy k-means++: each new centre is the best of ``2 + log k`` candidates drawn in
    proportion to the squared distance to the nearest centre so far. Returns the chosen rows.
    """
    n = len(x)
    weight = np.ones(n)
    chosen = np.empty(n_clusters, dtype=np.int64)
    chosen[0] = random_state.choice(n, p=weight / weight.sum())
    nearest = _squared_distances(x[chosen[:1]], x, norms)  # (1, n)
    potential = nearest @ weight
    trials = 2 + int(np.log(n_clusters))
    for c in range(1, n_clusters):
        draws = random_state.uniform(size=trials) * potential
        candidates = np.searchsorted(np.cumsum(weight * nearest), draws)
        np.clip(candidates, None, nearest.size - 1, out=candidates)
        distance = _squared_distances(x[candidates], x, norms)
        np.minimum(nearest, distance, out=distance)
        potentials = distance @ weight.reshape(-1, 1)
        best = np.argmin(potentials)
        potential, nearest = potentials[best], distance[best]
        chosen[c] = candidates[best]
    return chosen


def _squared_distances(a, x, x_norms) -> np.ndarray:
    """Squared Euclidean distances of the rows of ``a`` to every point, with the norms
    expanded and negatives from rounding clipped at 0 (as scikit-learn computes them).
    """
    d = -2 * (a @ x.T)
    d += np.einsum("ij,ij->i", a, a)[:, None]
    d += x_norms[None, :]
    np.maximum(d, 0, out=d)
    return d

