"""The tracer-connectome reader (against small local files) and cells placed in its regions."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy.io import savemat

import spacon
from spacon import SpaconInputError

ACRONYMS = ["MOp", "SSp", "VISp", "CP", "TH", "MB"]


def write_tracer(folder, acronyms=ACRONYMS, shuffle_csv=False):
    rng = np.random.default_rng(0)
    n = len(acronyms)
    strength = rng.random((n, n)) * (rng.random((n, n)) < 0.6)
    p = rng.random((n, n)) * 0.1
    p[0, 1] = np.nan
    strength[0, 1] = 5.0  # strong but untested: dropped with a p-value criterion
    contra = strength[::-1] * 0.5  # the other hemisphere's targets
    a = np.stack([strength, p, contra, p[::-1]], axis=2)
    savemat(folder / "sc_oh2012.mat", {"a": a, "acronym": np.array(acronyms, dtype=object)[:, None]})
    table = pd.DataFrame({
        "sc213_acr": acronyms,
        "major_region": ["Isocortex"] * 3 + ["Striatum", "Thalamus", "Midbrain"],
        "x": np.linspace(3000, 9000, n), "y": rng.uniform(1000, 6000, n),
        "z": rng.uniform(1000, 5500, n),
    })
    if shuffle_csv:
        table = table.iloc[::-1]
    table.to_csv(folder / "region_mapping_sc.csv")
    return strength, p


def test_read_mouse_tracer(tmp_path):
    strength, p = write_tracer(tmp_path)
    conn, regions = spacon.datasets.read_mouse_tracer(tmp_path)
    m = conn.matrix.toarray()
    expected = np.where((strength > 0) & (np.nan_to_num(p, nan=1) < 0.05), strength, 0)
    np.fill_diagonal(expected, 0)
    np.testing.assert_allclose(m, expected, rtol=1e-6)
    assert m[0, 1] == 0
    assert list(conn.labels) == ACRONYMS and list(regions.index) == ACRONYMS
    assert regions.loc["TH", "division"] == "Thalamus"
    # both hemispheres: ipsilateral within a side, contralateral between sides
    both, _ = spacon.datasets.read_mouse_tracer(tmp_path, hemispheres="both")
    n = len(ACRONYMS)
    assert list(both.labels) == [f"{a}-L" for a in ACRONYMS] + [f"{a}-R" for a in ACRONYMS]
    b = both.matrix.toarray()
    contra = np.where((strength[::-1] > 0) & (np.nan_to_num(p[::-1], nan=1) < 0.05),
                      strength[::-1] * 0.5, 0)
    np.testing.assert_allclose(b[:n, :n], expected, rtol=1e-6)
    np.testing.assert_allclose(b[n:, n:], expected, rtol=1e-6)
    np.testing.assert_allclose(b[:n, n:], contra, rtol=1e-6)
    np.testing.assert_allclose(b[n:, :n], contra, rtol=1e-6)
    with pytest.raises(SpaconInputError, match="hemispheres"):
        spacon.datasets.read_mouse_tracer(tmp_path, hemispheres="left")
    # the regions table follows the labels: the other side mirrored across the midline
    _, sided = spacon.datasets.read_mouse_tracer(tmp_path, hemispheres="both")
    assert list(sided.index) == list(both.labels)
    np.testing.assert_allclose(sided.loc["MOp-L", "z"] + sided.loc["MOp-R", "z"], 2 * 5700)
    assert sided.loc["MOp-L", "x"] == sided.loc["MOp-R", "x"] == regions.loc["MOp", "x"]
    every = spacon.datasets.read_mouse_tracer(tmp_path, p_value=None)[0].matrix.toarray()
    assert every[0, 1] == pytest.approx(5.0)
    assert (every > 0).sum() > (m > 0).sum()


def test_read_mouse_tracer_errors(tmp_path):
    with pytest.raises(SpaconInputError, match="sc_oh2012.mat is missing"):
        spacon.datasets.read_mouse_tracer(tmp_path)
    write_tracer(tmp_path, shuffle_csv=True)
    with pytest.raises(SpaconInputError, match="in its order"):
        spacon.datasets.read_mouse_tracer(tmp_path)


def test_tracer_brain_places_cells_in_their_regions(tmp_path):
    write_tracer(tmp_path)
    conn, regions = spacon.datasets.read_mouse_tracer(tmp_path)
    adata = spacon.datasets.tracer_brain(conn, regions, cells_per_region=40, n_genes=200,
                                         section_thickness=500, seed=1)
    assert adata.n_obs == 40 * len(ACRONYMS)
    assert set(adata.obs["region"]) <= set(ACRONYMS)
    # every cell lies nearest to its own region's centroid (contiguous regions), up to the
    # antero-posterior shift onto its section's plane (at most half a slab, so distances
    # change by at most that much each)
    centre = regions.loc[ACRONYMS, ["z", "y", "x"]].to_numpy()
    xyz = np.asarray(adata.obsm["spatial"], dtype=float)
    d = np.linalg.norm(xyz[:, None] - centre[None], axis=2)
    own = np.array([ACRONYMS.index(r) for r in adata.obs["region"].astype(str)])
    assert (d[np.arange(len(own)), own] <= d.min(axis=1) + 500 + 1e-3).all()
    # sections ordered anterior to posterior, each cell on its section's plane
    codes = adata.obs["section"].cat.codes.to_numpy()
    plane = pd.Series(xyz[:, 2]).groupby(codes).agg(["min", "max"])
    assert (plane["min"] == plane["max"]).all() and plane["min"].is_monotonic_increasing
    assert (adata.obs["division"].astype(str).to_numpy()
            == regions.loc[adata.obs["region"].astype(str), "division"].to_numpy()).all()
    again = spacon.datasets.tracer_brain(conn, regions, cells_per_region=40, n_genes=200,
                                         section_thickness=500, seed=1)
    assert (again.X != adata.X).nnz == 0


def test_regions_at_one_centroid_keep_their_cells(tmp_path):
    """The atlas gives some regions the same centroid (SUBd and SUBv); each keeps its cells
    (one of them used to get none) and they lie around that centroid, not on it."""
    write_tracer(tmp_path)
    conn, regions = spacon.datasets.read_mouse_tracer(tmp_path)
    regions.loc["TH", ["x", "y", "z"]] = regions.loc["CP", ["x", "y", "z"]].to_numpy()
    adata = spacon.datasets.tracer_brain(conn, regions, cells_per_region=40, n_genes=200,
                                         section_thickness=500, seed=1)
    counts = adata.obs["region"].value_counts()
    assert set(counts.index) == set(ACRONYMS) and counts[["TH", "CP"]].min() >= 20
    shared = np.asarray(adata.obsm["spatial"])[adata.obs["region"].isin(["TH", "CP"]).to_numpy()]
    assert shared[:, 0].std() > 0 and shared[:, 1].std() > 0


def test_tracer_brain_errors(tmp_path):
    write_tracer(tmp_path)
    conn, regions = spacon.datasets.read_mouse_tracer(tmp_path)
    with pytest.raises(SpaconInputError, match="no position"):
        spacon.datasets.tracer_brain(conn, regions.drop("TH"))
    with pytest.raises(SpaconInputError, match=r"need n_genes >= (\d+)") as err:
        spacon.datasets.tracer_brain(conn, regions, n_genes=20)
    # the number it names works (it used to name a moving target)
    least = int(re.search(r">= (\d+)", str(err.value)).group(1))
    assert spacon.datasets.tracer_brain(conn, regions, n_genes=least).n_vars == least


def test_tracer_brain_runs_through_spacon(tmp_path):
    """Region-level connectivity used through unit_key='region' in the real pipeline."""
    write_tracer(tmp_path)
    conn, regions = spacon.datasets.read_mouse_tracer(tmp_path, p_value=None)
    adata = spacon.datasets.tracer_brain(conn, regions, cells_per_region=30, n_genes=200, seed=0)
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, n_neighbors=8)
    spacon.pp.connectome_graph(adata, conn, unit_key="region", symmetrize=True)
    model = spacon.SpaCon(adata, seed=0)
    model.train(epochs=2, progress=False, seed=0)
    model.embed()
    assert np.isfinite(adata.obsm["X_spacon_con"]).all()
    table = spacon.tl.coupling(adata, conn, unit_key="region", groupby="division", n_perm=20)
    assert table.loc[0, "n_units"] == adata.obs["region"].nunique()


def test_cells_of_both_sides_take_their_side_s_region_unit(tmp_path):
    """A connectome of both hemispheres (REGION-L / REGION-R): a left MOp cell and a right
    VISp cell are joined by the contralateral strength, not the ipsilateral one.
    """
    import anndata as ad

    write_tracer(tmp_path)
    both, _ = spacon.datasets.read_mouse_tracer(tmp_path, hemispheres="both")
    regions = np.array(["MOp", "VISp", "MOp", "VISp", "nowhere"])
    ml = np.array([1000.0, 1000.0, 9000.0, 9000.0, 1000.0])  # midline 5700: L, L, R, R, L
    adata = ad.AnnData(np.zeros((5, 1), dtype=np.float32),
                       obs=pd.DataFrame({"region": regions}, index=[f"c{i}" for i in range(5)]))
    adata.obsm["ccf"] = np.column_stack([np.full(5, 5000.0), np.full(5, 3000.0), ml])
    spacon.pp.assign_units(adata, both, region_key="region", hemisphere="mirror", midline=5700,
                           drop=True)
    assert list(adata.obs["unit"].astype(str)) == ["MOp-L", "VISp-L", "MOp-R", "VISp-R"]
    assert adata.uns["unit_assignment"]["sided_units"]
    # without mirroring, the sided labels are not the cells' region names
    with pytest.raises(SpaconInputError, match="no cell could be assigned"):
        spacon.pp.assign_units(adata.copy(), both, region_key="region", hemisphere="none")
    # an ipsilateral connectome: both sides share the region's unit, as documented
    ipsi, _ = spacon.datasets.read_mouse_tracer(tmp_path)
    one = adata.copy()
    spacon.pp.assign_units(one, ipsi, region_key="region", hemisphere="mirror", midline=5700)
    assert list(one.obs["unit"].astype(str)) == ["MOp", "VISp", "MOp", "VISp"]
    assert not one.uns["unit_assignment"]["sided_units"]
