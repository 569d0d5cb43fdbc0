"""Subtype classification: one call, a tidy table, the expression baseline beside it."""

import numpy as np
import pytest

import spacon
from spacon import SpaconInputError


@pytest.mark.slow
def test_subtype_table(brain, rng):
    adata, _ = brain
    spacon.pp.normalize(adata)
    # an embedding that knows the regions (what a good spatial embedding does), plus noise
    codes = adata.obs["region"].cat.codes.to_numpy()
    centres = rng.normal(size=(codes.max() + 1, 6)) * 5
    adata.obsm["X_spacon_spa"] = centres[codes] + rng.normal(size=(adata.n_obs, 6))
    adata.obsm["X_spacon_con"] = rng.normal(size=(adata.n_obs, 6))
    table = spacon.tl.classify_subtypes(adata, "region", population_key="cell_type",
                                        population="type0", alphas=(0, 1))
    assert list(table["method"]) == ["spacon alpha=0", "spacon alpha=1",
                                     "expression only (PCA + GMM)"]
    n_type0 = int((adata.obs["cell_type"] == "type0").sum())
    assert (table["n_cells"] == n_type0).all()
    k = adata.obs["region"][adata.obs["cell_type"] == "type0"].nunique()
    assert (table["n_domains"] <= k).all()
    scores = table.set_index("method")
    assert scores.loc["spacon alpha=0", "ari"] > 0.9  # the informative embedding
    assert scores.loc["spacon alpha=1", "ari"] < 0.3  # noise
    assert scores.loc["expression only (PCA + GMM)", "ari"] < scores.loc["spacon alpha=0", "ari"]
    for col in ("ari", "nmi", "v_measure", "hungarian_f1"):
        assert table[col].between(-1, 1).all()
    # cells without a subtype are left out, not a class of their own; one alpha as a number
    partial = adata.obs["region"].astype(object)
    type0 = np.flatnonzero(adata.obs["cell_type"] == "type0")
    partial.iloc[type0[:40]] = np.nan
    adata.obs["partial"] = partial
    one = spacon.tl.classify_subtypes(adata, "partial", population_key="cell_type",
                                      population="type0", alphas=0)
    assert list(one["method"]) == ["spacon alpha=0", "expression only (PCA + GMM)"]
    assert (one["n_cells"] == n_type0 - 40).all()
    assert (one["n_domains"] <= adata.obs["partial"].nunique()).all()


def test_subtype_errors(brain):
    adata, _ = brain
    with pytest.raises(SpaconInputError, match="no 'nope'"):
        spacon.tl.classify_subtypes(adata, "nope")
    with pytest.raises(SpaconInputError, match="both population_key= and population="):
        spacon.tl.classify_subtypes(adata, "region", population_key="cell_type")
    with pytest.raises(SpaconInputError, match="has 0 cells"):
        spacon.tl.classify_subtypes(adata, "region", population_key="cell_type",
                                    population="no-such-type")


@pytest.mark.slow
def test_large_sparse_subpopulations_are_not_made_dense(brain, rng, monkeypatch):
    """Above DENSE_BYTES the expression baseline's PCs come without a dense copy, and give the
    table the dense PCA gives (the same components up to sign)."""
    import scipy.sparse as sp

    from spacon.tl import _expression_pca, _subtypes

    adata, _ = brain
    spacon.pp.normalize(adata)
    adata.X = sp.csr_matrix(adata.X)
    adata.obsm["X_spacon_spa"] = rng.normal(size=(adata.n_obs, 6))
    call = dict(population_key="cell_type", population="type0", alphas=0)
    dense = spacon.tl.classify_subtypes(adata, "region", **call)
    used = []
    for module in (_subtypes, _expression_pca):  # (its memory: tests/test_predict.py)
        monkeypatch.setattr(module, "DENSE_BYTES", 0)
    monkeypatch.setattr(_subtypes, "expression_pcs", lambda *a: used.append(1) or
                        _expression_pca.expression_pcs(*a))
    sparse = spacon.tl.classify_subtypes(adata, "region", **call)
    assert used
    np.testing.assert_allclose(sparse[["ari", "nmi"]], dense[["ari", "nmi"]], atol=1e-9)
