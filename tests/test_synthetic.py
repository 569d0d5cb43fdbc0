import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score

import spacon
from spacon.datasets import implied_cell_edges, synthetic_brain


def test_shapes_and_ground_truth(brain):
    adata, conn = brain
    assert adata.shape == (1200, 120)
    assert adata.obsm["spatial"].shape == (1200, 3)
    for col in ("section", "cell_type", "region", "module", "unit"):
        assert col in adata.obs
    assert adata.obs["section"].cat.ordered
    assert sp.issparse(adata.X)
    x = adata.X.data
    assert np.all(x == np.round(x)) and x.min() >= 0
    assert conn.matrix.shape[0] == adata.obs["unit"].max() + 1
    # every section sits at one z: sections are planes
    z = pd.Series(adata.obsm["spatial"][:, 2]).groupby(adata.obs["section"].to_numpy()).nunique()
    assert (z == 1).all()


def test_same_seed_same_data_other_seed_differs():
    a1, c1 = synthetic_brain(300, 60, 3, n_regions=4, n_modules=2, n_cell_types=3, seed=5)
    a2, c2 = synthetic_brain(300, 60, 3, n_regions=4, n_modules=2, n_cell_types=3, seed=5)
    a3, _ = synthetic_brain(300, 60, 3, n_regions=4, n_modules=2, n_cell_types=3, seed=6)
    assert (a1.X != a2.X).nnz == 0 and (c1.matrix != c2.matrix).nnz == 0
    assert (a1.X != a3.X).nnz > 0


def test_single_section_is_2d():
    adata, _ = synthetic_brain(400, 60, 1, n_regions=4, n_modules=2, n_cell_types=3)
    assert adata.obsm["spatial"].shape[1] == 2
    assert adata.obs["section"].nunique() == 1


def test_regions_contiguous_and_modules_distant(brain):
    adata, _ = brain
    xyz = adata.obsm["spatial"]
    region = adata.obs["region"].cat.codes.to_numpy()
    module = adata.obs["module"].cat.codes.to_numpy()
    centres = np.array([xyz[region == r].mean(0) for r in range(region.max() + 1)])
    # each cell is closer to its own region's centre than the average distance to the others
    own = np.linalg.norm(xyz - centres[region], axis=1)
    assert np.median(own) < 0.6 * np.median(np.linalg.norm(xyz[:, None] - centres[None], axis=2))
    # a module is not a blob: its regions' centres are far apart
    mod_of_region = np.array(
        [np.bincount(module[region == r]).argmax() for r in range(len(centres))]
    )
    for m in np.unique(mod_of_region):
        c = centres[mod_of_region == m]
        if len(c) > 1:
            d = np.linalg.norm(c[:, None] - c[None], axis=-1)
            assert d[np.triu_indices(len(c), 1)].min() > 1000  # micrometres


def test_connectivity_is_stronger_within_modules(brain):
    adata, conn = brain
    unit_module = (
        adata.obs.groupby("unit", observed=True)["module"].agg(lambda s: s.value_counts().index[0])
    )
    mods = unit_module.reindex(range(conn.n)).to_numpy()
    coo = conn.matrix.tocoo()
    same = mods[coo.row] == mods[coo.col]
    assert coo.data[same].sum() > 3 * coo.data[~same].sum()


def test_expression_only_clustering_finds_cell_types_not_regions(brain):
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    adata, _ = brain
    x = np.log1p(adata.X.toarray() / adata.X.sum(1).A * 1e4)
    pcs = PCA(15, random_state=0).fit_transform(x)
    labels = KMeans(4, n_init=5, random_state=0).fit_predict(pcs)
    ari_type = adjusted_rand_score(adata.obs["cell_type"], labels)
    ari_region = adjusted_rand_score(adata.obs["region"], labels)
    assert ari_type > 0.5 and ari_region < 0.2


def test_implied_edges_counted_without_expansion():
    unit_graph = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 0, 1]], dtype=float))
    cell_unit = np.array([0, 0, 1, 2, 2, 2])  # unit sizes 2, 1, 3
    # 0->1: 2*1, 1->0: 1*2, 1->2: 1*3, 2->2: 3*3
    assert implied_cell_edges(unit_graph, cell_unit) == 2 + 2 + 3 + 9


def test_bad_parameters_are_named():
    with pytest.raises(spacon.SpaconInputError, match="n_regions"):
        synthetic_brain(500, 100, 2, n_regions=3, n_modules=2)
    with pytest.raises(spacon.SpaconInputError, match="n_genes"):
        synthetic_brain(500, 10, 2)


@pytest.mark.slow
def test_whole_brain_tier_implies_a_billion_edges_in_bounded_memory():
    # the whole-brain tier of bench_scaling.py, with 120 genes instead of 1,000: the edges come
    # from the cells and units alone, and 250k x 1,000 counts took 40 s of the test suite
    adata, conn = synthetic_brain(
        250_000, 120, 129, n_regions=40, n_modules=5, cells_per_unit=60, long_range_degree=40
    )
    assert adata.uns["synthetic_brain"]["implied_cell_edges"] > 1_000_000_000
    assert conn.matrix.nnz < 2_000_000  # stored: about 1,000 times fewer than implied
