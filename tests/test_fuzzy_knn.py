"""scanpy's neighbour graph for Leiden and Louvain, without umap-learn: the same weights."""

import subprocess
import sys
import warnings

import numpy as np
import pytest

from spacon.tl._fuzzy_knn import fuzzy_connectivities


@pytest.mark.slow
@pytest.mark.parametrize("n_neighbors", [5, 15, 40])
def test_the_graph_is_scanpys(n_neighbors):
    """Below 4,096 cells scanpy's neighbours are exact too: the same edges, the same weights
    to float32 rounding (slow: scanpy compiles umap-learn's kernels first)."""
    import anndata as ad
    import scanpy as sc

    rng = np.random.default_rng(n_neighbors)
    z = np.concatenate([rng.normal(c, 1.0, (300, 12)) for c in (0.0, 1.5, 4.0)])
    z = z.astype(np.float32)
    adata = ad.AnnData(obsm={"z": z})
    sc.pp.neighbors(adata, n_neighbors=n_neighbors, use_rep="z")
    theirs, ours = adata.obsp["connectivities"], fuzzy_connectivities(z, n_neighbors)
    assert ours.shape == theirs.shape
    assert ((theirs != 0) != (ours != 0)).nnz == 0
    assert abs(theirs - ours).max() < 1e-5


def test_coinciding_cells_and_what_the_weights_are():
    """Symmetric, no self-loops, weights in (0, 1]; a cell's nearest other cell (and a cell at
    the same point) at weight 1."""
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1, (200, 3))
    z[1] = z[0]  # two cells at one point
    g = fuzzy_connectivities(z, 10)
    assert abs(g - g.T).max() == 0
    assert g.diagonal().max() == 0
    assert g.data.min() > 0 and g.data.max() <= 1
    assert g[0, 1] == 1
    nearest = np.argsort(((z[5] - z) ** 2).sum(axis=1))[1]
    assert g[5, nearest] == pytest.approx(1, abs=1e-6)  # (the union's float32 rounding)
    # every cell keeps its 9 other neighbours (the union only adds edges)
    assert (np.asarray((g > 0).sum(axis=1)).ravel() >= 9).all()


def test_leiden_and_louvain_do_not_compile_umap():
    """tl.domains with Leiden or Louvain imports neither umap-learn nor pynndescent (whose
    kernels compile for 10-20 s in every process) and finds three clusters."""
    code = """
import sys
import numpy as np, anndata as ad
import spacon
rng = np.random.default_rng(0)
z = np.concatenate([rng.normal(c, 0.3, (200, 5)) for c in (0, 3, 6)])
adata = ad.AnnData(obsm={"z": z})
for method in ("leiden", "louvain"):
    spacon.tl.domains(adata, use_rep="z", method=method, n_domains=3, key_added=method)
print(spacon.tl.score(np.repeat([0, 1, 2], 200), adata.obs["leiden"])["ari"],
      spacon.tl.score(np.repeat([0, 1, 2], 200), adata.obs["louvain"])["ari"],
      "umap" in sys.modules, "pynndescent" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    leiden, louvain, umap, pynndescent = out.stdout.split()
    assert float(leiden) == 1.0 and float(louvain) == 1.0
    assert (umap, pynndescent) == ("False", "False")


def test_duplicate_cells_far_apart_raise_no_overflow_warning():
    """Coinciding cells (distance 0, below rho) far from the rest once made exp overflow in
    the bandwidth search: a RuntimeWarning the user could do nothing about."""
    rng = np.random.default_rng(0)
    clumps = rng.normal(scale=1e3, size=(6, 3))
    z = np.repeat(clumps, 10, axis=0) + rng.normal(scale=1e-3, size=(60, 3)) * (
        np.arange(60) % 10 == 0)[:, None]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        g = fuzzy_connectivities(z, 15)
    assert np.isfinite(g.data).all() and g.nnz > 0
