"""The layered cortex-like slice (datasets.layered_slice)."""

from __future__ import annotations

import numpy as np
import pytest

import spacon


@pytest.fixture(scope="module")
def slice_():
    return spacon.datasets.layered_slice(n_cells=1500, n_genes=120, seed=3)


def test_shape_and_truth(slice_):
    a = slice_
    assert a.shape == (1500, 120)
    assert a.obsm["spatial"].shape == (1500, 2)
    assert list(a.obs["layer"].cat.categories) == [f"L{i}" for i in range(1, 8)]
    table = a.obs.groupby("layer", observed=False)["cell_type"].value_counts().unstack()
    assert table.shape == (7, 6) and (table.to_numpy() > 0).all()  # every type in every layer
    x = a.X.toarray()
    assert (x >= 0).all() and np.allclose(x, np.round(x))


def test_layers_are_curved_bands(slice_):
    a = slice_
    xy = a.obsm["spatial"].astype(float)
    depth = -np.hypot(xy[:, 0], xy[:, 1])  # the layers follow the arcs, L1 outermost ...
    codes = a.obs["layer"].cat.codes.to_numpy()
    means = [depth[codes == k].mean() for k in range(7)]
    assert np.all(np.diff(means) > 0)
    # ... so neither straight coordinate orders them
    for c in (0, 1):
        assert abs(np.corrcoef(xy[:, c], codes)[0, 1]) < 0.9
        assert abs(np.corrcoef(depth, codes)[0, 1]) > 0.95


def test_layer_markers_mark_their_layer(slice_):
    a = slice_
    x = a.X.toarray()
    codes = a.obs["layer"].cat.codes.to_numpy()
    for k in range(7):
        genes = a.var["program"] == f"layer{k}"
        inside = x[codes == k][:, genes].mean()
        outside = x[codes != k][:, genes].mean()
        assert inside > 1.3 * outside


def test_repeatable_and_checked():
    a = spacon.datasets.layered_slice(n_cells=300, n_genes=60, seed=1)
    b = spacon.datasets.layered_slice(n_cells=300, n_genes=60, seed=1)
    assert (a.X != b.X).nnz == 0 and np.array_equal(a.obs["layer"], b.obs["layer"])
    c = spacon.datasets.layered_slice(n_cells=300, n_genes=60, seed=2)
    assert (a.X != c.X).nnz > 0
    with pytest.raises(spacon.SpaconInputError, match="n_genes"):
        spacon.datasets.layered_slice(n_genes=10)
