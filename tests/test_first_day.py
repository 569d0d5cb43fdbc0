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
            warnings.warn("something odd; use top_k= to keep fewer", SpaconWarning)
        return 0

    monkeypatch.setattr(spacon.cli, "_simulate", warns)
    assert main(["simulate", "--out", str(tmp_path / "sim")]) == 0
    err = capsys.readouterr().err
    assert err.strip() == "spacon simulate: warning: something odd; use --top-k to keep fewer"
