"""Surrogate maps that keep spatial autocorrelation: Moran spectral randomisation.

A map over n units (regions, voxels) is written in the eigenvectors of the doubly-centred
inverse-distance weight matrix (Moran eigenvector maps). Flipping the signs of its
coefficients at random gives a new map with the same projection on every eigenvector, hence
the same Moran's I and the same spatial spectrum, but its values sit on other units
(Wagner & Dutilleul 2018; the "singleton" procedure of BrainSpace). Applying one set of signs
to every gene moves whole expression profiles together, so gene-gene correlations are kept too.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist


def inverse_distance_weights(coords: np.ndarray) -> np.ndarray:
    """Dense ``1 / distance`` between units, zero on the diagonal.

    Units at the same position get the weight of the closest distinct pair.
    """
    d = cdist(coords, coords)
    positive = d[d > 0]
    floor = positive.min() if positive.size else 1.0
    w = 1.0 / np.maximum(d, floor)
    np.fill_diagonal(w, 0.0)
    return w


def moran_eigenvectors(weights: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the maps with zero mean: eigenvectors of the doubly-centred weights.

    Returns ``(n, n - 1)``; the constant direction is excluded exactly.
    """
    w = 0.5 * (weights + weights.T)
    n = w.shape[0]
    h = w - w.mean(axis=0) - w.mean(axis=1)[:, None] + w.mean()
    # lift the constant vector far above the spectrum so it is its own, last eigenvector
    lift = np.abs(h).sum(axis=1).max() + 1.0
    values, vectors = np.linalg.eigh(h + lift * np.full((n, n), 1.0 / n))
    return vectors[:, :-1]


def morans_i(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Moran's I of each column of ``values`` (units x maps) under ``weights``."""
    x = values - values.mean(axis=0)
    num = np.einsum("ik,ij,jk->k", x, weights, x)
    den = (x**2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return values.shape[0] / weights.sum() * num / den


class MoranSurrogates:
    """Draw surrogates of a units x features matrix that keep each feature's spatial spectrum.

    Parameters
    ----------
    values
        ``(n_units, n_features)`` maps, e.g. a region x gene expression matrix.
    coords
        ``(n_units, 2 or 3)`` unit positions.
    """

    def __init__(self, values: np.ndarray, coords: np.ndarray):
        values = np.asarray(values, dtype=np.float64)
        self.mean = values.mean(axis=0)
        self.vectors = moran_eigenvectors(inverse_distance_weights(coords))
        self.coefficients = self.vectors.T @ (values - self.mean)

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """One surrogate: the same random sign flips applied to every feature's coefficients."""
        signs = rng.choice((-1.0, 1.0), size=self.vectors.shape[1])
        return self.vectors @ (signs[:, None] * self.coefficients) + self.mean
