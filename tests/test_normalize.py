"""pp.normalize: scanpy's normalize_total + log1p to the last bit, without scanpy or its threads."""

import anndata as ad
import numpy as np
import pytest
import scanpy as sc
import scipy.sparse as sp

import spacon


def counts(seed: int, dtype) -> np.ndarray:
    rng = np.random.default_rng(seed)
    depth = rng.gamma(2, 1, size=(80, 1)) * [1, 40, 3000][seed % 3]
    x = rng.poisson(rng.gamma(0.5, 3, size=(1, 50)) * depth)
    x[:, 0] += 1  # every cell has counts
    x[0] += 1  # and every gene
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("form", [sp.csr_matrix, sp.csc_matrix, np.asarray])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_values_as_scanpy(seed, form, dtype):
    x = form(counts(seed, dtype))
    ours, theirs = ad.AnnData(x.copy()), ad.AnnData(x.copy())
    spacon.pp.normalize(ours, target_sum=1e4)
    sc.pp.normalize_total(theirs, target_sum=1e4)
    sc.pp.log1p(theirs)
    assert type(ours.X) is type(theirs.X) and ours.X.dtype == theirs.X.dtype
    dense = (lambda m: m.toarray()) if sp.issparse(ours.X) else np.asarray
    np.testing.assert_array_equal(dense(ours.X), dense(theirs.X))
    assert ours.uns["log1p"] == theirs.uns["log1p"]
    np.testing.assert_array_equal(dense(ours.layers["counts"]), dense(x))  # raw counts kept


def test_input_untouched_sparse_arrays_and_threads():
    import torch

    x = sp.csr_array(counts(0, np.float32))
    before = x.copy()
    adata = ad.AnnData(x)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = spacon.pp.normalize(adata, copy=True)
        assert torch.get_num_threads() == 1  # scanpy's numba kernels reset it to every CPU
    finally:
        torch.set_num_threads(threads)
    assert (adata.X != before).nnz == 0 and "counts" not in adata.layers
    assert isinstance(out.X, sp.csr_array)
    totals = np.expm1(out.X.toarray().astype(np.float64)).sum(axis=1)
    np.testing.assert_allclose(totals, 1e4, rtol=1e-4)


@pytest.mark.parametrize("target_sum", [0, -5, np.nan, np.inf, None, "1e4", True])
def test_target_sum_is_checked_before_anything_changes(target_sum):
    adata = ad.AnnData(counts(0, np.float32))
    before = adata.X.copy()
    with pytest.raises(spacon.SpaconInputError, match="target_sum must be a positive number"):
        spacon.pp.normalize(adata, target_sum=target_sum)
    np.testing.assert_array_equal(adata.X, before)
    assert "counts" not in adata.layers


def test_half_precision_counts_are_normalised_in_single_precision():
    # a float16 total tops out at 65,504: deep cells' rows became inf, then all zeros
    x = np.random.default_rng(0).integers(1, 2048, size=(20, 80)).astype(np.float32)
    assert x.sum(axis=1).max() > 65_504 and np.array_equal(x, x.astype(np.float16))
    half, single = ad.AnnData(x.astype(np.float16)), ad.AnnData(x.copy())
    spacon.pp.normalize(half)
    spacon.pp.normalize(single)
    assert half.X.dtype == np.float32
    np.testing.assert_array_equal(half.X, single.X)


@pytest.mark.parametrize("form", [sp.csr_matrix, np.asarray])
def test_counts_read_from_a_layer(form):
    """layer= (scanpy's): counts in a layer, something else in X; X gets their normalised
    values, the layer is left as it was, and a missing layer is named."""
    x = form(counts(1, np.float32))
    expected = ad.AnnData(x.copy())
    spacon.pp.normalize(expected)
    adata = ad.AnnData(np.zeros(x.shape, np.float32), layers={"raw": x.copy()})
    spacon.pp.normalize(adata, layer="raw")
    dense = (lambda m: m.toarray()) if sp.issparse(x) else np.asarray
    np.testing.assert_array_equal(dense(adata.X), dense(expected.X))
    np.testing.assert_array_equal(dense(adata.layers["raw"]), dense(x))
    np.testing.assert_array_equal(dense(adata.layers["counts"]), dense(x))
    with pytest.raises(spacon.SpaconInputError, match="no 'absent'.*'raw'"):
        spacon.pp.normalize(adata, layer="absent")
    # log values in X, counts in layers['counts']: the error says how, and that way works
    logged = ad.AnnData(expected.X.copy(), layers={"counts": x.copy()})
    with pytest.raises(spacon.SpaconInputError,
                       match=r"--no-normalize.*normalize\(adata, layer='counts'\)"):
        spacon.pp.normalize(logged)
    out = spacon.pp.normalize(logged, layer="counts", copy=True)
    np.testing.assert_array_equal(dense(logged.X), dense(expected.X))  # the original: as was
    spacon.pp.normalize(logged, layer="counts")
    for result in (out, logged):
        np.testing.assert_array_equal(dense(result.X), dense(expected.X))
        np.testing.assert_array_equal(dense(result.layers["counts"]), dense(x))
    # NaN is named as NaN, also where layers['counts'] is a copy of X (scanpy's idiom)
    nan = dense(x).copy()
    nan[0, 0] = np.nan
    nan[2, :2] = np.inf
    named = ad.AnnData(form(nan), layers={"counts": form(nan.copy())})
    named.obs_names = [f"parcel{i}" for i in range(named.n_obs)]
    # which cells, by name (sparse, CSC too, and dense alike)
    for layout in (named, ad.AnnData(sp.csc_matrix(nan), obs=named.obs)):
        with pytest.raises(spacon.SpaconInputError,
                           match=rf"3 NaN or infinite values in 2 of {named.n_obs} cells "
                                 r"\(e\.g\. parcel0, parcel2\)"):
            spacon.pp.normalize(layout)
    # counts are checked where they are read
    bad = ad.AnnData(x.copy(), layers={"raw": expected.X.copy()})
    with pytest.raises(spacon.SpaconInputError, match=r"layers\['raw'\] does not hold integer"):
        spacon.pp.normalize(bad, layer="raw")


def test_data_left_on_disk_are_refused_and_the_file_left_alone(tmp_path):
    import hashlib

    path = tmp_path / "a.h5ad"
    x = counts(0, np.float32)
    ad.AnnData(sp.csr_matrix(x), layers={"raw": x.copy()}).write_h5ad(path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    backed = ad.read_h5ad(path, backed="r+")
    for layer in (None, "raw"):
        with pytest.raises(spacon.SpaconInputError, match="to_memory"):
            spacon.pp.normalize(backed, layer=layer)
    backed.file.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


@pytest.mark.filterwarnings("ignore:.*fewer than 1% of the median")
@pytest.mark.parametrize("sparse", [False, True])
def test_denormal_totals_give_finite_values(sparse):
    """A cell whose total / target_sum underflows (denormal counts) is divided in double
    precision: its values are its shares of target_sum, as for any other cell."""
    x = np.array([[9.67e-43, 2e-43], [1.0, 3.0]], dtype=np.float32)
    adata = ad.AnnData(sp.csr_matrix(x) if sparse else x.copy())
    spacon.pp.normalize(adata)
    out = adata.X.toarray() if sparse else adata.X
    shares = x.astype(np.float64) / x.astype(np.float64).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(out, np.log1p(shares * 1e4), rtol=1e-3)
