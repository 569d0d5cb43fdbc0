"""Principal components of expression that never make large sparse expression dense.

Dense expression, or sparse expression whose dense copy is small (``DENSE_BYTES``), gets
scikit-learn's PCA. Larger sparse expression gets the same components (to rounding, up to each
component's sign) from the genes' covariance summed over centred dense blocks of cells, or, for
many genes, from ARPACK on the implicitly centred matrix: memory grows with the genes, not the
cells.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._utils import expression_matrix

DENSE_BYTES = 2**28  # sparse expression up to this size as doubles is made dense for its PCs
MAX_COVARIANCE_GENES = 2000  # up to this many genes: the genes' covariance; above: ARPACK


def expression_pcs(adata, train, n_pcs: int, seed: int, block: int = 2**19) -> np.ndarray:
    """The first ``n_pcs`` principal components of the training cells' expression, for every
    cell: scikit-learn's PCA, where the expression is dense or small enough to make dense
    (``DENSE_BYTES``). Larger sparse expression is never made dense: the components are the
    leading eigenvectors of the genes' covariance over the training cells, summed over dense
    blocks of about ``block`` values, centred (for at most ``MAX_COVARIANCE_GENES`` genes),
    else ARPACK's on the implicitly centred matrix. Both equal a float64 PCA up to each
    component's sign.
    """
    x = expression_matrix(adata)
    n_pcs = min(n_pcs, x.shape[1], int(train.sum()) - 1)
    if not sp.issparse(x) or x.shape[0] * x.shape[1] * 8 <= DENSE_BYTES:
        from sklearn.decomposition import PCA

        x = x.toarray() if sp.issparse(x) else np.asarray(x)
        return PCA(n_pcs, random_state=seed).fit(x[train]).transform(x)
    if n_pcs < 1:  # one training cell: no direction varies
        return np.zeros((x.shape[0], 0))
    fit = sp.csr_matrix(x[np.flatnonzero(train)], dtype=np.float64)
    mean = np.asarray(fit.mean(axis=0)).ravel()
    if x.shape[1] <= MAX_COVARIANCE_GENES:
        covariance = np.zeros((x.shape[1], x.shape[1]))
        rows = max(1, block // x.shape[1])
        for lo in range(0, fit.shape[0], rows):
            centred = fit[lo:lo + rows].toarray()
            centred -= mean
            covariance += centred.T @ centred
        components = np.linalg.eigh(covariance)[1][:, ::-1][:, :n_pcs].T
    else:
        from scipy.sparse.linalg import LinearOperator, svds

        centred = LinearOperator(fit.shape, dtype=np.float64,
                                 matvec=lambda v: fit @ v.ravel() - mean @ v.ravel(),
                                 rmatvec=lambda u: fit.T @ u.ravel() - mean * u.sum())
        v0 = np.random.default_rng(seed).uniform(-1, 1, min(fit.shape))
        _, values, vt = svds(centred, k=n_pcs, v0=v0)
        components = vt[np.argsort(-values)]
    return np.asarray(x @ components.T) - mean @ components.T
