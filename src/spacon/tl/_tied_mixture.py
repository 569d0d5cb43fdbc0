"""scikit-learn's tied-covariance Gaussian mixture, with its EM written as a few array operations.

Domain selection fits hundreds of small mixtures per call (a few thousand points, tens of
dimensions, up to 30 components). Each E- or M-step is microseconds of arithmetic, and most of
scikit-learn's time went to the input checks and array-namespace dispatch around it. The class
here is scikit-learn's ``GaussianMixture(covariance_type="tied")`` with its default tolerances:
the same starts from its k-means (:mod:`._kmeans`, which draws them as scikit-learn does), the
same E- and M-steps in the same order, the same stopping rule and choice among starts. Only
the bookkeeping around the arithmetic is gone, and ``X.T @ X`` is computed once per fit instead
of once per M-step. The E-step whitens the points once,
not once per component: with one shared covariance, the squared distances to the whitened means
are one matrix product. ``tests/test_domains.py`` checks the fits against scikit-learn's.
Unlike scikit-learn's, it keeps the fit from every start (``starts()``, the most likely first),
so that :func:`spacon.tl.domains` can label cells with the start the stability runs reproduce.
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
from scipy.linalg.lapack import dpotrf, dtrtrs

from ._kmeans import kmeans_labels


def log_gaussian(x: np.ndarray, means: np.ndarray, whiten: np.ndarray) -> np.ndarray:
    """Log-density of each point (columns) under each component (rows); ``whiten`` is the
    shared precision's Cholesky factor, and ``x`` is centred (no precision is lost far from
    the origin).

    Components by points, so that sums and maxima over components run along contiguous
    rows of points (8-20 times faster than across the short rows of a points x components
    array).
    """
    y = x @ whiten
    centres = means @ whiten
    squared = centres @ y.T
    squared *= -2.0
    squared += np.einsum("ij,ij->i", centres, centres)[:, None]
    squared += np.einsum("ij,ij->i", y, y)[None, :]
    np.maximum(squared, 0.0, out=squared)
    squared += x.shape[1] * math.log(2 * math.pi)
    squared *= -0.5
    squared += np.sum(np.log(np.diag(whiten)))
    return squared


def e_step(x, weights, means, whiten) -> tuple[np.ndarray, np.ndarray]:
    """Each point's log-likelihood under the mixture, and the responsibilities (components x
    points).
    """
    resp = log_gaussian(x, means, whiten)
    resp += np.log(weights)[:, None]
    top = resp.max(axis=0)
    resp -= top
    np.exp(resp, out=resp)
    total = resp.sum(axis=0)
    resp /= total
    return np.log(total) + top, resp


def m_step(x, xtx, resp, count, reg_covar: float):
    """Component sizes, means, the shared covariance and its precision's Cholesky factor.

    ``x`` holds distinct points, ``count`` how often each was drawn and ``xtx`` is ``x.T @
    (count * x)``: the same as fitting every copy. ``resp`` is components x points.
    """
    resp = resp * count
    nk = resp.sum(axis=1) + 10 * np.finfo(resp.dtype).eps
    means = (resp @ x) / nk[:, None]
    covariance = xtx - nk * means.T @ means
    covariance /= nk.sum()
    covariance.flat[:: len(covariance) + 1] += reg_covar
    # LAPACK as scipy.linalg's cholesky and solve_triangular call it (the same numbers),
    # without their checks: they cost more than the factorisation of a 30 x 30 matrix
    factor, info = dpotrf(covariance, lower=True, clean=True)
    if info > 0:
        raise ValueError("Fitting the mixture model failed: the shared covariance is "
                         "singular (collapsed points); increase reg_covar.")
    whiten, info = dtrtrs(factor, np.eye(len(covariance)), lower=True)
    if info:
        raise ValueError("Fitting the mixture model failed: the shared covariance could not "
                         "be inverted; increase reg_covar.")
    return nk, means, covariance, whiten.T


def em(x, xtx, count, start, n_components: int, reg_covar: float, tol: float, max_iter: int):
    """EM from one start (each point's component): ``(mean log-likelihood, iterations,
    converged, (weights, means, covariance, whiten))``.

    ``x`` are the distinct points, centred, ``count`` how often each was drawn and ``xtx``
    ``x.T @ (count * x)``.
    """
    n = count.sum()
    resp = np.zeros((n_components, len(x)))
    resp[start, np.arange(len(x))] = 1
    nk, means, covariance, whiten = m_step(x, xtx, resp, count, reg_covar)
    weights = nk / n
    lower_bound = -np.inf
    for n_iter in range(1, max_iter + 1):
        previous = lower_bound
        log_norm, resp = e_step(x, weights, means, whiten)
        nk, means, covariance, whiten = m_step(x, xtx, resp, count, reg_covar)
        weights = nk / nk.sum()
        lower_bound = count @ log_norm / n
        if abs(lower_bound - previous) < tol:
            return lower_bound, n_iter, True, (weights, means, covariance, whiten)
    return lower_bound, max_iter, False, (weights, means, covariance, whiten)


def tied_mixture_class():
    """The class, built on first use (importing spacon does not import scikit-learn)."""
    global _TIED
    if _TIED is None:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import GaussianMixture
        from sklearn.utils import check_random_state
        from sklearn.utils.validation import check_is_fitted

        class TiedGaussianMixture(GaussianMixture):
            _centre = 0.0  # the fitted data's mean (0 for parameters set by hand)

            def fit(self, X, y=None):
                self._validate_params()
                supported = (self.covariance_type == "tied" and self.init_params == "kmeans"
                             and not self.warm_start and self.weights_init is None
                             and self.means_init is None and self.precisions_init is None)
                if not supported:
                    raise ValueError("this mixture supports only covariance_type='tied', "
                                     "init_params='kmeans', no warm start and no initial "
                                     "parameters")
                x = np.ascontiguousarray(X, dtype=np.float64)
                if x.ndim != 2 or len(x) < max(2, self.n_components):
                    raise ValueError(f"Expected a 2-D array of at least 2 and n_components "
                                     f"samples, got shape {x.shape} for n_components = "
                                     f"{self.n_components}")
                # a sample of cells repeats merged points: EM runs on the distinct ones,
                # each weighing as often as it was drawn (about a quarter of the rows at
                # alpha 1 of the demo brain)
                distinct, first, count = np.unique(x, axis=0, return_index=True,
                                                   return_counts=True)
                count = count.astype(np.float64)
                centre = count @ distinct / len(x)
                distinct -= centre
                xtx = distinct.T @ (count[:, None] * distinct)
                random_state = check_random_state(self.random_state)
                fits = []
                for _ in range(self.n_init):
                    start = kmeans_labels(x, self.n_components, random_state)[first]
                    fits.append(em(distinct, xtx, count, start, self.n_components,
                                   self.reg_covar, self.tol, self.max_iter))
                # the most likely first (scikit-learn keeps it; the first of equals)
                order = sorted(range(len(fits)), key=lambda i: -fits[i][0])
                self._fits, self._centre = [fits[i] for i in order], centre
                self._set_fit(0)
                self.n_features_in_ = x.shape[1]
                if not self.converged_:
                    warnings.warn("Best performing initialization did not converge.",
                                  ConvergenceWarning, stacklevel=2)
                return self

            def _estimate_log_prob(self, X, xp=None):
                return log_gaussian(X - self._centre, self.means_ - self._centre,
                                    self.precisions_cholesky_).T

            def _estimate_log_prob_resp(self, X, xp=None):
                log_norm, resp = self._e_step_of(X)
                with np.errstate(divide="ignore"):
                    return log_norm, np.log(resp.T)

            def _set_fit(self, i):
                self.lower_bound_, self.n_iter_, self.converged_, parameters = self._fits[i]
                self.weights_, means, self.covariances_, self.precisions_cholesky_ = parameters
                self.means_ = means + self._centre
                self.precisions_ = self.precisions_cholesky_ @ self.precisions_cholesky_.T

            def starts(self) -> list:
                """The fit from every start, as models, the most likely first."""
                out = []
                for i in range(len(self._fits)):
                    model = copy.copy(self)
                    model._set_fit(i)
                    out.append(model)
                return out

            def fit_predict(self, X, y=None):
                return self.fit(X).predict(X)

            def predict_proba(self, X):
                return self._e_step_of(X)[1].T

            def _e_step_of(self, X):
                check_is_fitted(self)
                return e_step(np.asarray(X, dtype=np.float64) - self._centre, self.weights_,
                              self.means_ - self._centre, self.precisions_cholesky_)

        _TIED = TiedGaussianMixture
    return _TIED


_TIED = None
