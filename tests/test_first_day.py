"""What a new user hit on the first day (one test per defect, each failed before its fix)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import spacon
from spacon import SpaconWarning
from spacon.cli import main
from spacon.io import Connectivity


def test_a_nearly_complete_connectome_draws_a_warning(brain):
    adata, conn = brain
    # a functional matrix: correlations, nearly all positive, as human FC without a threshold
    rng = np.random.default_rng(0)
    fc = rng.uniform(-0.05, 1, size=conn.matrix.shape)
    fc = Connectivity(sp.csr_matrix((fc + fc.T) / 2), conn.labels)
    with pytest.warns(SpaconWarning, match=r"keeps \d+% of all unit pairs.*top_k="):
        spacon.pp.connectome_graph(adata, fc, unit_key="unit")
    assert adata.uns["connectome_neighbors"]["params"]["density"] > 0.9
    spacon.pp.connectome_graph(adata, fc, unit_key="unit", top_k=8, symmetrize=True)
    assert adata.uns["connectome_neighbors"]["params"]["density"] < 0.5


def test_sections_are_ordered_as_people_read_them(brain):
    adata, _ = brain
    names = np.array(["BZ14", "BZ5", "BZ9", "BZ10"])
    adata.obs["slice"] = names[np.arange(adata.n_obs) % 4]
    _, order = spacon.pp.section_codes(adata, "slice")
    assert list(order) == ["BZ5", "BZ9", "BZ10", "BZ14"]
    adata.obs["z"] = np.array(["-1.5", "10", "2", "-20"])[np.arange(adata.n_obs) % 4]
    assert list(spacon.pp.section_codes(adata, "z")[1]) == ["-20", "-1.5", "2", "10"]


def test_command_line_messages_name_flags_and_warnings_have_no_source_paths(
        tmp_path, capsys, monkeypatch):
    adata = spacon.datasets.synthetic_brain(n_cells=300, n_genes=60, n_sections=2, seed=0)[0]
    path = tmp_path / "a.h5ad"
    adata.write_h5ad(path)
    np.save(tmp_path / "c.npy", np.ones((7, 7)))
    code = main(["run", "--adata", str(path), "--connectivity", str(tmp_path / "c.npy"),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "--unit-key" in err and "unit_key=" not in err, err

    def warns(args):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("always")  # pytest makes spacon's warnings errors
            warnings.warn("something odd; use top_k= to keep fewer", SpaconWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(spacon.cli, "_simulate", warns)
    assert main(["simulate", "--out", str(tmp_path / "sim")]) == 0
    err = capsys.readouterr().err
    assert err.strip() == "spacon simulate: warning: something odd; use --top-k to keep fewer"


def test_a_saved_model_records_and_applies_its_preprocessing(brain, tmp_path):
    adata, conn = brain
    raw = adata[:500].copy()
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, n_neighbors=6, section_key="section")
    spacon.pp.connectome_graph(adata, conn, unit_key="unit", threshold=0.4)
    model = spacon.SpaCon(adata, hidden_dims=(8, 4, 2)).train(1, mode="full", progress=False)
    model.save(tmp_path / "m")
    assert model.preprocessing["normalize"]["target_sum"] == 1e4
    assert model.preprocessing["spatial_graph"]["n_neighbors"] == 6
    # raw counts are refused, not embedded silently wrong
    spacon.pp.spatial_graph(raw, n_neighbors=6, section_key="section")
    with pytest.raises(spacon.SpaconInputError, match="looks like raw counts"):
        model.embed(raw.copy())
    # ... and prepared as the training data were, they embed as normalised tissue does
    fresh = raw.copy()
    del fresh.obsp["spatial_connectivities"]
    loaded = spacon.SpaCon.load(tmp_path / "m", fresh, prepare=True)
    assert "spacon_normalize" in fresh.uns and "spatial_connectivities" in fresh.obsp
    loaded.embed(fresh)
    by_hand = raw.copy()
    spacon.pp.normalize(by_hand)
    model.embed(by_hand)
    np.testing.assert_allclose(fresh.obsm["X_spacon_spa"], by_hand.obsm["X_spacon_spa"],
                               atol=1e-5)
