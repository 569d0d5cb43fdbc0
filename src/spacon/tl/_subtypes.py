"""Subtypes of one cell population as domains at low alpha, scored against known subtypes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._errors import SpaconInputError
from .._utils import check_anndata, label_text, labels_column, no_obs_column, whole_number
from ._expression_pca import DENSE_BYTES, expression_pcs


def classify_subtypes(
    adata,
    subtype_key: str,
    *,
    population_key: str | None = None,
    population=None,
    alphas=(0.0,),
    n_domains: int | None = None,
    n_pcs: int = 30,
    seed: int = 0,
) -> pd.DataFrame:
    """Call domains inside one cell population and score them against its known subtypes.

    The cells with ``obs[population_key] == population`` (e.g. layer-6 corticothalamic
    neurons; default: all cells) are clustered with a shared-covariance Gaussian mixture into
    ``n_domains`` groups (default: the number of known subtypes), once per ``alpha`` on SpaCon's
    fused embedding and once on expression alone (``n_pcs`` principal components of the
    population's expression), and each partition is scored against ``obs[subtype_key]``.

    Parameters
    ----------
    adata
        Embedded data (``obsm['X_spacon_spa']``; ``obsm['X_spacon_con']`` for alpha > 0).
    subtype_key
        ``obs`` column of the known subtypes; cells without one (NaN) are left out.
    population_key, population
        Restrict to one population (both or neither).
    alphas
        Fusion weights to score (:func:`spacon.tl.fuse`), one or several.
    n_domains
        Groups to call (default: the number of subtypes present).
    n_pcs
        Principal components for the expression-only baseline.
    seed
        Seed of the mixtures and PCA.

    Returns
    -------
    A table with one row per method: ``method, n_cells, n_domains, ari, nmi, v_measure,
    hungarian_f1``.
    """
    check_anndata(adata, "spacon.tl.classify_subtypes")
    n_pcs = whole_number("n_pcs", n_pcs)
    from sklearn.decomposition import PCA

    from ..pp import check_expression
    from . import domains, fuse, score

    check_expression(adata)  # NaN or negative values named before any domains are fitted

    for key in (subtype_key, population_key):
        if key is not None and key not in adata.obs:
            raise SpaconInputError(no_obs_column(adata, key))
    if (population_key is None) != (population is None):
        raise SpaconInputError("give both population_key= and population=, or neither.")
    alphas = [alphas] if np.isscalar(alphas) else list(alphas)
    if population_key is None:
        mask = np.ones(adata.n_obs, bool)
    else:  # 1, 1.0 or '1' on a column of integer labels made float by missing values
        names = labels_column(adata, population_key, "populations").astype(str).to_numpy()
        mask = names == (str(population) if str(population) in set(names)
                         else label_text(population))
    mask &= adata.obs[subtype_key].notna().to_numpy()  # cells without a subtype are left out
    if mask.sum() < 3:
        raise SpaconInputError(
            f"population {population!r} of adata.obs[{population_key!r}] has {int(mask.sum())} "
            "cells; at least 3 are needed.")
    sub = adata[mask].copy()
    truth = sub.obs[subtype_key].astype(str)
    k = truth.nunique() if n_domains is None else int(n_domains)
    if not 1 <= k <= sub.n_obs:
        raise SpaconInputError(f"n_domains must be between 1 and {sub.n_obs}, got {k}.")
    rows = []
    for i, alpha in enumerate(alphas):  # each alpha's embedding and domains on keys of its own
        fuse(sub, alpha, key_added=f"_fused{i}")
        domains(sub, n_domains=k, use_rep=f"_fused{i}", seed=seed, key_added=f"_domain{i}")
        rows.append({"method": f"spacon alpha={alpha:g}", "labels": sub.obs[f"_domain{i}"]})
    if sp.issparse(sub.X) and sub.n_obs * sub.n_vars * 8 > DENSE_BYTES:  # never made dense
        sub.obsm["_pcs"] = expression_pcs(sub, np.ones(sub.n_obs, bool), n_pcs, seed)
    else:
        x = sub.X.toarray() if sp.issparse(sub.X) else np.asarray(sub.X)
        sub.obsm["_pcs"] = PCA(min(n_pcs, x.shape[1], sub.n_obs - 1),
                               random_state=seed).fit_transform(x)
    # judged on the spatial graph, as alpha 0 is (expression knows no connectivity)
    domains(sub, n_domains=k, use_rep="_pcs", alpha=0.0, seed=seed, key_added="_expression")
    rows.append({"method": "expression only (PCA + GMM)", "labels": sub.obs["_expression"]})
    table = [{"method": r["method"], "n_cells": int(sub.n_obs),
              "n_domains": int(pd.Series(r["labels"]).nunique()), **score(truth, r["labels"])}
             for r in rows]
    return pd.DataFrame(table)
