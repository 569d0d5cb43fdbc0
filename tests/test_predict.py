"""Connectivity prediction: leakage-free folds, hand-checked metrics, the evaluate command."""

import json

import anndata as ad
import numpy as np
import pytest

import spacon
from spacon import SpaconInputError
from spacon.cli import main
from spacon.tl._predict import auroc_rows, pearson_rows


@pytest.fixture
def prepared(brain):
    adata, conn = brain
    info = adata.uns["synthetic_brain"]
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, radius=info["suggested_radius"], section_key="section",
                            z_radius=info["suggested_z_radius"])
    return adata, conn


def test_pearson_and_auroc_against_hand_computed_values():
    pred = np.array([[1.0, 2, 3], [3, 2, 1], [1, 2, 4]])
    true = np.array([[2.0, 4, 6], [1, 2, 3], [1, 1, 1]])
    r = pearson_rows(pred, true)
    assert r[0] == pytest.approx(1.0) and r[1] == pytest.approx(-1.0) and np.isnan(r[2])
    # sklearn's documented example: AUROC 0.75; ties count half; one class only -> NaN
    score = np.array([[0.1, 0.4, 0.35, 0.8], [1, 1, 1, 1], [1, 2, 3, 4]])
    connected = np.array([[0, 0, 1, 1], [1, 0, 1, 0], [1, 1, 1, 1]], dtype=bool)
    auc = auroc_rows(score, connected)
    assert auc[0] == pytest.approx(0.75) and auc[1] == pytest.approx(0.5) and np.isnan(auc[2])
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    s, c = rng.random((5, 40)), rng.random((5, 40)) > 0.6
    ours = auroc_rows(s, c)
    assert np.allclose(ours, [roc_auc_score(ci, si) for si, ci in zip(s, c)])


def test_folds_by_section_are_runs_of_sections_and_keep_units_whole(prepared):
    adata, _ = prepared
    fold = spacon.tl.spatial_folds(adata, 2, section_key="section", unit_key="unit")
    codes, _ = spacon.pp.section_codes(adata, "section")
    units = adata.obs["unit"].astype(str).to_numpy()
    for u in np.unique(units):
        assert len(np.unique(fold[units == u])) == 1, u
    # before unit assignment, folds are contiguous runs of sections
    plain = spacon.tl.spatial_folds(adata, 2, section_key="section")
    assert (np.diff(plain[np.argsort(codes, kind="stable")]) >= 0).all()
    assert set(plain) == {0, 1}


def test_folds_by_blocks_are_spatially_compact(prepared):
    adata, _ = prepared
    fold = spacon.tl.spatial_folds(adata, 3)
    xy = adata.obsm["spatial"]
    centres = np.array([xy[fold == f].mean(0) for f in range(3)])
    spread = np.mean([np.linalg.norm(xy[fold == f] - centres[f], axis=1).mean() for f in range(3)])
    assert spread < np.linalg.norm(xy - xy.mean(0), axis=1).mean()
    with pytest.raises(SpaconInputError, match="folds must be an integer >= 2"):
        spacon.tl.spatial_folds(adata, 1)


def test_training_never_sees_held_out_connectivity(prepared, monkeypatch):
    adata, conn = prepared
    seen = []
    original_train = spacon.SpaCon.train

    def spy(self, *args, **kwargs):
        seen.append(self.connectome)
        return original_train(self, *args, **kwargs)

    monkeypatch.setattr(spacon.SpaCon, "train", spy)
    result = spacon.tl.predict_connectivity(
        adata, conn, unit_key="unit", folds=2, section_key="section", threshold=0.4,
        methods=("spacon", "position", "null"), model_kwargs={"hidden_dims": (16, 8, 4)},
        train_kwargs={"max_steps": 3, "batch_size": 200})
    fold = adata.uns["spacon_connectivity_prediction"]["folds"]
    assert len(seen) == 2
    for f, graph in enumerate(seen):
        test = np.flatnonzero(fold == f)
        assert (graph.degree(test) == 0).all()  # held-out cells receive nothing
        target, source = graph.neighbors(np.flatnonzero(fold != f))
        assert not np.isin(source, test).any()  # and send nothing
    assert set(result) == {"spacon", "position", "null"}
    for m in result.values():
        assert -1 <= m["pearson_r"] <= 1 and 0 <= m["auroc"] <= 1
        assert len(m["per_fold"]["pearson_r"]) == 2


def test_a_split_unit_is_refused(prepared):
    adata, conn = prepared
    adata.obs["held"] = np.arange(adata.n_obs) % 2 == 0  # every unit split in two
    with pytest.raises(SpaconInputError, match="would leak; hold out whole units"):
        spacon.tl.predict_connectivity(adata, conn, unit_key="unit", holdout_key="held",
                                       methods=("position",))


def test_spacon_and_position_beat_the_spatial_null():
    """Connectivity in the simulator follows regions, which are spatially contiguous and carry
    marker genes: spatial interpolation and SpaCon's spatial embedding must both beat
    predictions shifted onto other held-out cells; expression PCs, dominated by the cell types
    mixed everywhere, must not."""
    adata, conn = spacon.datasets.synthetic_brain(n_cells=3000, n_genes=150, seed=0)
    info = adata.uns["synthetic_brain"]
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, radius=info["suggested_radius"], section_key="section",
                            z_radius=info["suggested_z_radius"])
    res = spacon.tl.predict_connectivity(
        adata, conn, unit_key="unit", folds=4, section_key="section", threshold=0.4,
        model_kwargs={"hidden_dims": (32, 16, 8)}, train_kwargs={"max_steps": 30})
    r = {m: d["pearson_r"] for m, d in res.items()}
    assert r["position"] > r["null"] + 0.05
    assert r["spacon"] > r["null"] + 0.05
    assert r["expression"] < r["position"]
    assert res["spacon"]["auroc"] > 0.55 > res["null"]["auroc"]


def test_evaluate_connectivity_command(sim_inputs, tmp_path, capsys):
    out = tmp_path / "eval"
    args = ["evaluate", "connectivity", "--adata", str(sim_inputs / "synthetic_brain.h5ad"),
            "--connectivity", str(sim_inputs / "connectome.npz"), "--unit-key", "unit",
            "--radius", "700", "--threshold", "0.4", "--folds", "3", "--hidden-dims", "16", "8",
            "4", "--epochs", "1", "--batch-size", "300", "--out", str(out)]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"spacon", "expression", "position", "expression+position", "null"}
    for m in metrics.values():
        assert {"pearson_r", "pearson_r_sd", "auroc", "auroc_sd"} <= set(m)
        assert len(m["per_fold"]["pearson_r"]) == 3
    assert (out / "connectivity_prediction.png").stat().st_size > 1000
    assert "Pearson r" in capsys.readouterr().out
    assert main(args) == 2  # metrics.json exists: refused without --overwrite
    a = ad.read_h5ad(sim_inputs / "synthetic_brain.h5ad")
    assert "X_spacon_spa" not in a.obsm  # the input file is untouched
