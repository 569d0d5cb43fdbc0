"""Marker genes of domains by partial least squares, and a metagene score per cell."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .. import _keys
from .._errors import SpaconInputError
from .._utils import (
    check_anndata,
    check_memory,
    expression_matrix,
    label_text,
    labels_column,
    whole_number,
    writable,
)
from ..pp._normalize import warn_if_counts

logger = logging.getLogger(__name__)


def marker_genes(
    adata,
    key: str,
    *,
    domains=None,
    n_genes: int = 20,
    n_components: int = 2,
    layer: str | None = None,
    max_cells: int = 50_000,
    seed: int = 0,
    metagenes: bool = True,
) -> pd.DataFrame:
    """Genes that mark each domain: partial least squares of expression on membership.

    For each domain, a PLS regression of its membership (1 inside, 0 outside) on standardised
    expression gives one coefficient per gene; the ``n_genes`` largest positive ones are the
    domain's markers. Their coefficient-weighted mean of standardised expression is the domain's
    metagene score, written to ``obs['{key}_metagene_{domain}']`` for every cell.

    Parameters
    ----------
    adata
        Log-normalised expression and ``obs[key]`` with the domains.
    key
        ``obs`` column of domains (e.g. ``"spacon_domain_alpha0"``).
    domains
        Domains to describe: one, or a list (default: all). The table replaces an earlier
        one of ``key``, and the metagene columns of the domains it leaves out are removed.
    n_genes
        Markers per domain.
    n_components
        PLS components.
    layer
        Use ``layers[layer]`` instead of ``X``.
    max_cells
        Fit on at most this many cells (a random subset in which each domain keeps its share
        and at least 50 cells, all of a smaller one; at least one each where ``max_cells`` is
        fewer than the domains); scores are written for all cells.
    seed
        Seed of that subset.
    metagenes
        Write each domain's metagene score to ``obs`` (``False``: the table alone; earlier
        metagene columns of ``key`` are removed, as they describe another call).

    Returns
    -------
    A table with columns ``domain, rank, gene, coefficient``, also in
    ``uns['spacon_markers'][key]``.
    """
    check_anndata(adata, "spacon.tl.marker_genes")
    if not isinstance(metagenes, (bool, np.bool_)):
        raise SpaconInputError(f"metagenes must be True or False, got {metagenes!r}.")

    n_genes, n_components, max_cells = (whole_number("n_genes", n_genes),
                                         whole_number("n_components", n_components),
                                         whole_number("max_cells", max_cells))
    adata = writable(adata, False, "spacon.tl.marker_genes")
    column = labels_column(adata, key)
    if layer is not None and layer not in adata.layers:
        raise SpaconInputError(f"adata.layers has no {layer!r}.")
    warn_if_counts(adata, layer, "markers from counts follow each cell's depth")
    labelled = column.notna().to_numpy()  # cells without a domain are left out of the fits
    labels = np.where(labelled, column.astype(str).to_numpy(), "")
    present = ([str(c) for c in column.cat.categories if str(c) in set(labels[labelled])]
               if isinstance(column.dtype, pd.CategoricalDtype) else sorted(set(labels[labelled])))
    if domains is not None and (isinstance(domains, (str, bytes))
                                or not isinstance(domains, Iterable)):
        domains = [domains]  # one domain, not a string's characters
    chosen = present if domains is None else list(dict.fromkeys(  # 1 and 1.0: one domain
        label_text(d) if label_text(d) in present else str(d) for d in domains))
    missing = sorted(str(d) for d in set(chosen) - set(present))
    if missing:
        raise SpaconInputError(f"domains {missing} are not in adata.obs[{key!r}].")
    if len(present) < 2:
        raise SpaconInputError(f"adata.obs[{key!r}] has one domain: nothing to contrast.")
    x = expression_matrix(adata, layer)
    mean, sd = _gene_mean_sd(x, "X" if layer is None else repr(layer))
    sd = np.where(sd > 0, sd, 1.0)
    fit = np.flatnonzero(labelled)
    if len(fit) > max_cells:
        fit = _sample_by_domain(fit, labels[fit], max_cells, seed)
    # only the fitted cells are made dense (the fit and PLS's centred copy of it)
    check_memory(2 * 8 * len(fit) * x.shape[1], f"marker genes of {len(fit)} cells x "
                 f"{x.shape[1]} genes", "lower max_cells=, or pass fewer genes (e.g. "
                 "adata[:, adata.var['highly_variable']].copy()).")
    z = (_dense(x[fit]) - mean) / sd
    genes = np.asarray(adata.var_names).astype(str)
    member = (labels[fit][:, None] == np.asarray(chosen, dtype=object)[None, :]).astype(float)
    coefs = pls1_coefficients(z, member, min(n_components, z.shape[1]))
    rows = []
    for d, domain in enumerate(chosen):
        coef = coefs[:, d]
        top = np.argsort(-coef)[:n_genes]
        top = top[coef[top] > 0]
        weights = coef[top] / coef[top].sum() if len(top) else coef[top]
        if metagenes:
            adata.obs[f"{key}_metagene_{domain}"] = _metagene(x, top, weights, mean, sd)
        rows += [{"domain": domain, "rank": r + 1, "gene": str(genes[g]), "coefficient": float(coef[g])}
                 for r, g in enumerate(top)]
    # this table replaces the last one of ``key``: metagene scores of domains it leaves out
    # go too, so that obs and uns describe the same call
    kept = {f"{key}_metagene_{d}" for d in chosen} if metagenes else set()
    stale = [c for c in adata.obs.columns
             if str(c).startswith(f"{key}_metagene_") and c not in kept]
    if stale:
        adata.obs = adata.obs.drop(columns=stale)
    table = pd.DataFrame(rows, columns=["domain", "rank", "gene", "coefficient"])
    adata.uns.setdefault(_keys.MARKERS, {})[key] = table
    logger.info("marker genes: up to %d for each of %d domains of obs[%r], in "
                "uns[%r][%r]%s", n_genes, len(chosen), key, _keys.MARKERS, key,
                f" and obs['{key}_metagene_<domain>']" if metagenes else "")
    return table


def pls1_coefficients(x: np.ndarray, y: np.ndarray, n_components: int) -> np.ndarray:
    """PLS regression coefficients of each column of ``y`` on ``x``, every column at once.

    scikit-learn's ``PLSRegression(n_components, scale=False).fit(x, y[:, d]).coef_`` for
    every ``d`` (its NIPALS for one response, which needs no iterations: a component's
    weights are the deflated ``x``'s covariance with the response), without a deflated copy
    of ``x`` per response: deflation is carried as each response's scores and loadings, and
    ``x`` enters only through products with all responses together. ``x`` is centred in
    place. Returns features x responses.
    """
    x -= x.mean(axis=0)
    y = y - y.mean(axis=0)
    n_resp = y.shape[1]
    scores, loadings, weights, q = [], [], [], []

    def deflated_t(v):  # x_a^T v for each response's own deflated x_a (columns of v)
        out = x.T @ v
        for t, p in zip(scores, loadings):
            out -= p * (t * v).sum(axis=0)
        return out

    def deflated(w):  # x_a w, likewise
        out = x @ w
        for t, p in zip(scores, loadings):
            out -= t * (p * w).sum(axis=0)
        return out

    alive = np.ones(n_resp, dtype=bool)  # responses not yet explained entirely
    residual = y.copy()
    eps = np.finfo(np.float64).eps
    for _ in range(n_components):
        alive &= ~np.all(np.abs(residual) < 10 * eps, axis=0)  # as scikit-learn stops
        w = deflated_t(y)
        norm = np.linalg.norm(w, axis=0)
        alive &= norm > 0
        w = np.where(alive, w / np.where(norm > 0, norm, 1.0), 0.0)
        t = deflated(w)
        tt = (t * t).sum(axis=0)
        alive &= tt > 0
        safe = np.where(tt > 0, tt, 1.0)
        p = np.where(alive, deflated_t(t) / safe, 0.0)
        qa = np.where(alive, (y * t).sum(axis=0) / safe, 0.0)
        residual -= t * qa
        scores.append(np.where(alive, t, 0.0))
        loadings.append(p)
        weights.append(w)
        q.append(qa)
    w_all, p_all, q_all = np.stack(weights, 1), np.stack(loadings, 1), np.stack(q, 0)
    coef = np.zeros((x.shape[1], n_resp))
    for d in range(n_resp):  # x_rotations = W (P^T W)^+, as scikit-learn's pinv
        coef[:, d] = w_all[:, :, d] @ np.linalg.pinv(p_all[:, :, d].T @ w_all[:, :, d]) \
            @ q_all[:, d]
    return coef


MIN_CELLS_PER_DOMAIN = 50  # a subset keeps at least this many of each domain (all, if fewer)


def _sample_by_domain(cells: np.ndarray, labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """At most ``n`` of ``cells``, each domain keeping its share and at least
    ``MIN_CELLS_PER_DOMAIN`` cells (all of a smaller one): a plain random subset left the
    domains of a few cells out of the fit, and their markers empty.
    """
    rng = np.random.default_rng(seed)
    domains, of = np.unique(labels, return_inverse=True)
    sizes = np.bincount(of, minlength=len(domains))
    floor = np.minimum(sizes, max(1, min(MIN_CELLS_PER_DOMAIN, n // len(domains))))
    extra = np.floor((n - floor.sum()) * (sizes - floor) / max((sizes - floor).sum(), 1))
    quota = floor + np.maximum(extra, 0).astype(np.int64)
    chosen = [rng.choice(cells[of == d], quota[d], replace=False) for d in range(len(domains))]
    return np.sort(np.concatenate(chosen))


def _metagene(x, top: np.ndarray, weights: np.ndarray, mean, sd) -> np.ndarray | float:
    """Each cell's weighted mean of the standardised expression of the genes ``top``,
    reading those columns in increasing order (as a matrix left on disk must be read).
    """
    if not len(top):
        return 0.0
    order = np.argsort(top)
    genes, weights = top[order], weights[order]
    return (_dense(x[:, genes]) - mean[genes]) / sd[genes] @ weights


def _dense(x) -> np.ndarray:
    """Rows or columns of the expression as a float64 array."""
    return x.toarray().astype(np.float64) if sp.issparse(x) else np.asarray(x, dtype=np.float64)


def _gene_mean_sd(x, name: str, block_values: int = 1 << 22) -> tuple[np.ndarray, np.ndarray]:
    """Each gene's mean and standard deviation over all cells, as NumPy's two passes give them,
    without a dense copy of the matrix (sparse: over the stored values, the zeros counted
    apart; dense: blocks of about ``block_values`` values); non-finite values refused.
    """
    n = x.shape[0]
    if sp.issparse(x):
        x = x.tocsr()
        if not x.has_canonical_format:  # a cell's gene stored twice counts once, summed
            x = x.copy()
            x.sum_duplicates()
        values = np.asarray(x.data, dtype=np.float64)
        rows = np.repeat(np.arange(n), np.diff(x.indptr))
        bad = len(np.unique(rows[~np.isfinite(values)]))
        if not bad:
            cols = x.indices
            mean = np.bincount(cols, weights=values, minlength=x.shape[1]) / n
            zeros = n - np.bincount(cols, minlength=x.shape[1])
            square = (np.bincount(cols, weights=(values - mean[cols]) ** 2, minlength=x.shape[1])
                      + zeros * mean**2)
    else:
        chunk = max(1, block_values // max(x.shape[1], 1))
        total, bad = np.zeros(x.shape[1]), 0
        for lo in range(0, n, chunk):
            block = _dense(x[lo:lo + chunk])
            bad += int((~np.isfinite(block)).any(axis=1).sum())
            total += block.sum(axis=0)
        mean = total / n
        square = np.zeros(x.shape[1])
        for lo in range(0, n, chunk):
            square += ((_dense(x[lo:lo + chunk]) - mean) ** 2).sum(axis=0)
    if bad:
        raise SpaconInputError(f"the expression ({name}) has NaN or infinite values in {bad} "
                               "cells; markers need finite values.")
    return mean, np.sqrt(square / n)
