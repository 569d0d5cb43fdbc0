"""The second first-day review: what a new user's data and options hit (one test per defect,
each failed before its fix)."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pytest

import spacon
from spacon import SpaconInputError, SpaconWarning
from spacon.cli import build_parser, main

FAST = ["--figures", "none", "--no-report", "--quiet"]
# the command line's warnings are shown, as for a user (the suite makes them errors elsewhere)
pytestmark = pytest.mark.filterwarnings("default::spacon._errors.SpaconWarning")


def _write(adata, path):
    adata.write_h5ad(path)
    return str(path)


def test_coordinates_in_obs_columns_are_named_with_the_fix(sim_inputs, tmp_path, capsys):
    adata = ad.read_h5ad(sim_inputs / "synthetic_brain.h5ad")
    xyz = adata.obsm.pop("spatial")
    for i, name in enumerate(["x_centroid", "y_centroid", "z_centroid"]):
        adata.obs[name] = xyz[:, i]
    path = _write(adata, tmp_path / "obs_xyz.h5ad")
    assert main(["run", "--adata", path, "--no-connectivity", "--out", str(tmp_path / "o"),
                 *FAST]) == 2
    err = capsys.readouterr().err
    assert ("adata.obsm['spatial'] = adata.obs[['x_centroid', 'y_centroid', 'z_centroid']]"
            ".to_numpy()") in err, err
    assert "--spatial-key" not in err and not (tmp_path / "o").exists()
    # the fix the message gives works
    adata.obsm["spatial"] = adata.obs[["x_centroid", "y_centroid", "z_centroid"]].to_numpy()
    np.testing.assert_array_equal(spacon._utils.spatial_coordinates(adata), xyz)
    # Visium's obs: the pixel positions, not the hexagonal grid's indices
    visium = ad.AnnData(np.ones((4, 2), dtype=np.float32), obs={
        "array_row": [0, 0, 1, 1], "array_col": [0, 2, 1, 3],
        "pxl_row_in_fullres": [10.0, 10, 110, 110], "pxl_col_in_fullres": [5.0, 205, 105, 305]})
    assert spacon._utils.coordinate_columns(visium.obs) == ["pxl_col_in_fullres",
                                                            "pxl_row_in_fullres"]
    # a key given wrongly where obsm holds the coordinates under another: that key is named
    adata.obsm["X_pca"] = np.zeros((adata.n_obs, 30))
    with pytest.raises(spacon.SpaconInputError,
                       match=r"e\.g\. spatial_key='spatial' \(obsm\['spatial'\] holds 3 "):
        spacon._utils.spatial_coordinates(adata, "X_spatial")
    # a UMAP layout holds 2 columns too, but is no coordinates; the obs hint stays
    umap = ad.AnnData(np.ones((5, 3)), obsm={"X_umap": np.zeros((5, 2))})
    umap.obs["x"] = umap.obs["y"] = np.arange(5.0)
    with pytest.raises(spacon.SpaconInputError) as err:
        spacon._utils.spatial_coordinates(umap)
    assert "X_umap'" not in str(err.value).split("it has:")[1] and "adata.obs[['x', 'y']]" in \
        str(err.value)


def test_counts_that_are_not_whole_numbers_can_be_normalised(sim_inputs, tmp_path, capsys):
    """Ambient-corrected counts: the error names the case and the option; with it they are
    normalised as whole counts would be, and the record says so."""
    raw = ad.read_h5ad(sim_inputs / "synthetic_brain.h5ad")
    corrected = raw.copy()
    corrected.X = corrected.X * 0.9  # e.g. 10% ambient RNA removed
    with pytest.raises(SpaconInputError, match=r"ambient-corrected.*integer_counts=False"):
        spacon.pp.normalize(corrected.copy())
    spacon.pp.normalize(corrected, integer_counts=False)
    assert corrected.uns["spacon_normalize"]["integer_counts"] is False
    spacon.pp.normalize(raw)  # scaling every count by one factor changes no cell's share
    np.testing.assert_allclose(corrected.X.toarray(), raw.X.toarray(), rtol=1e-5, atol=1e-6)
    fractional = ad.read_h5ad(sim_inputs / "synthetic_brain.h5ad")
    fractional.X = fractional.X * 0.9
    path = _write(fractional, tmp_path / "fractional.h5ad")
    base = ["run", "--adata", path, "--no-connectivity", "--method", "leiden", *FAST]
    assert main([*base, "--out", str(tmp_path / "refused")]) == 2
    assert "--fractional-counts" in capsys.readouterr().err
    assert main([*base, "--fractional-counts", "--out", str(tmp_path / "run")]) == 0
    result = ad.read_h5ad(tmp_path / "run" / "result.h5ad")
    np.testing.assert_allclose(result.X.toarray(), raw.X.toarray(), rtol=1e-5, atol=1e-6)
    # log-normalised values are told apart: normalised already comes first then
    spacon.pp.normalize(log := ad.read_h5ad(sim_inputs / "synthetic_brain.h5ad"))
    with pytest.raises(SpaconInputError, match=r"largest value [\d.]+\), and normalising "
                       r"expects raw counts\. If the data are already normalised"):
        spacon.pp.normalize(ad.AnnData(log.X.copy()))
    # and integer_counts=False does not normalise them a second time
    del log.layers["counts"]  # (which would be refused first, for holding other values)
    for normalised in (log, ad.AnnData(log.X.copy())):  # with and without the record
        with pytest.raises(SpaconInputError, match="looks normalised already"):
            spacon.pp.normalize(normalised, integer_counts=False)
    assert main([*base, "--fractional-counts", "--no-normalize", "--out",
                 str(tmp_path / "both")]) == 2
    assert "drop one" in capsys.readouterr().err


def test_more_domains_than_a_connectivity_embedding_holds_do_not_fail_the_run(
        sim_inputs, tmp_path, capsys):
    """--n-domains above the number of connectivity units: alpha 1 has a domain per unit and
    a warning that names the alpha; the run finishes."""
    units = ad.read_h5ad(sim_inputs / "synthetic_brain.h5ad").obs["unit"].nunique()
    asked = units + 20
    assert main(["run", "--adata", str(sim_inputs / "synthetic_brain.h5ad"), "--connectivity",
                 str(sim_inputs / "connectome.npz"), "--unit-key", "unit", "--threshold", "0.4",
                 "--encoder", "smoothing", "--n-domains", str(asked), "--out",
                 str(tmp_path / "run"), *FAST]) == 0
    captured = capsys.readouterr()
    assert f"{asked} domains asked at alpha 1" in captured.err, captured.err
    assert "merge_radius=" not in captured.err
    result = ad.read_h5ad(tmp_path / "run" / "result.h5ad")
    assert result.obs["spacon_domain_alpha0"].nunique() == asked
    held = result.obs["spacon_domain_alpha1"].nunique()
    assert held <= units
    reason = result.uns["spacon_domain_alpha1"]["selection"]["reason"]
    assert reason.startswith(f"{held} domains, one per distinct point of the embedding "
                             f"({asked} asked"), reason


def test_leiden_short_of_the_number_asked_says_what_can_give_it():
    rng = np.random.default_rng(0)
    adata = ad.AnnData(np.zeros((60, 1), dtype=np.float32))
    adata.obsm["X_spacon"] = np.repeat(rng.normal(size=(5, 3)), 12, axis=0).astype(np.float32)
    with pytest.warns(SpaconWarning, match=r"X_spacon'\] has only 5 distinct points.*no method"):
        spacon.tl.domains(adata, method="leiden", n_domains=8)
    assert "gmm" not in str(_warning_of(lambda: spacon.tl.domains(adata, method="leiden",
                                                                   n_domains=8)))


def _warning_of(call):
    with pytest.warns(SpaconWarning) as record:
        call()
    return " ".join(str(w.message) for w in record)


def test_an_error_after_training_keeps_the_checkpoint_and_says_so(sim_inputs, tmp_path,
                                                                   capsys, monkeypatch):
    import spacon._pipeline as pipeline

    def fails(*args, **kwargs):
        raise SpaconInputError("something about the domains")

    config = tmp_path / "run.toml"  # the output folder from the config file, not a flag
    config.write_text('out = "run"\n')
    run = ["run", "--adata", str(sim_inputs / "synthetic_brain.h5ad"), "--connectivity",
           str(sim_inputs / "connectome.npz"), "--unit-key", "unit", "--threshold", "0.4",
           "--epochs", "1", "--hidden-dims", "16", "8", "4", "--config", str(config), *FAST]
    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "call_domains", fails)
        assert main(run) == 2
    err = capsys.readouterr().err
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
    assert "checkpoint is kept in" in err and "--resume" in err, err
    assert main([*run, "--resume"]) == 0
    assert (tmp_path / "run" / "result.h5ad").is_file()


def test_options_that_need_no_data_are_refused_before_it_is_read(tmp_path, capsys):
    """A bad --device, or --alpha 1 without a connectome, is said first: the input here is not
    even an h5ad file."""
    broken = tmp_path / "broken.h5ad"
    broken.write_bytes(b"not an h5ad file")
    base = ["run", "--adata", str(broken), "--out", str(tmp_path / "o"), *FAST]
    for device in ("gpu", "mps"):
        assert main([*base, "--no-connectivity", "--device", device]) == 2
        assert f"--device '{device}' is not a device" in capsys.readouterr().err
    assert main([*base, "--no-connectivity", "--alpha", "1"]) == 2
    err = capsys.readouterr().err
    assert "spatial embedding alone" in err and "trains" not in err, err
    assert not (tmp_path / "o").exists()


def test_domains_at_an_alpha_the_embedding_was_not_fused_at_are_refused():
    rng = np.random.default_rng(0)
    adata = ad.AnnData(np.zeros((50, 1), dtype=np.float32))
    adata.obsm["X_spacon_spa"] = rng.normal(size=(50, 4))
    adata.obsm["X_spacon_con"] = rng.normal(size=(50, 4))
    spacon.tl.fuse(adata, 1)
    with pytest.raises(SpaconInputError, match=r"alpha=0, but adata.obsm\['X_spacon'\] holds the "
                       r"embedding at alpha 1.*spacon.tl.fuse\(adata, 0\) first"):
        spacon.tl.domains(adata, alpha=0)
    # the advice fits the embedding: fused under another key, or smoothed expression
    with pytest.raises(SpaconInputError, match=r"key_added='X_spacon_alpha1'\), then "
                       r"use_rep='X_spacon_alpha1'"):
        spacon.tl.domains(adata, use_rep="X_spacon_spa", alpha=1)
    adata.obsm["X_pca_like"] = adata.obsm["X_spacon_spa"]
    adata.uns["X_pca_like"] = {"params": {"graph": "both", "alpha": 0.3}}
    with pytest.raises(SpaconInputError, match=r"smoothed_expression\(adata, graph='both', "
                       r"alpha=0.5\)"):
        spacon.tl.domains(adata, use_rep="X_pca_like", alpha=0.5)
    spacon.tl.domains(adata, alpha=1)  # the alpha it was fused at
    assert adata.uns["spacon_domain"]["params"]["alpha"] == 1


def test_domains_of_a_run_take_its_result_file_and_its_alphas(sim_inputs, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--adata", str(sim_inputs / "synthetic_brain.h5ad"), "--connectivity",
                 str(sim_inputs / "connectome.npz"), "--unit-key", "unit", "--threshold", "0.4",
                 "--encoder", "smoothing", "--alpha", "0", "0.5", "1", "--method", "leiden",
                 "--out", str(out), *FAST]) == 0
    (out / "result.h5ad").rename(out / "brain_result.h5ad")  # a renamed result is taken too
    assert main(["domains", "--result", str(out / "brain_result.h5ad"), "--method", "leiden",
                 "--out", str(tmp_path / "again"), *FAST[:-1]]) == 0
    printed = capsys.readouterr().out
    assert all(f"alpha {a}:" in printed for a in ("0", "0.5", "1")), printed
    again = ad.read_h5ad(tmp_path / "again" / "result.h5ad")
    assert "spacon_domain_alpha0.5" in again.obs
    # its summary names the command that called these domains, and the run's beside it
    summary = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert summary["command"].startswith("spacon domains --result ")
    assert summary["training_command"].startswith("spacon run --adata ")


def test_help_shows_the_defaults():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    simulate = sub["simulate"].format_help()
    for default in ("(6000)", "(300)", "(12)", "(16)", "(4)", "(25)", "(30)"):
        assert default in simulate, default
    run = " ".join(sub["run"].format_help().split())
    assert "gmm (default)" in run and "auto (default:" in run and "or auto (default)" in run


def test_connectome_tables_in_the_layouts_people_write(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(0)
    m, labels = rng.random((6, 6)), [f"r{i}" for i in range(6)]
    table = pd.DataFrame(m, index=labels, columns=labels)
    table.to_csv(tmp_path / "tabs.csv", sep="\t")  # tab-separated, named .csv
    table.to_csv(tmp_path / "columns_only.csv", index=False)  # no row-label column
    table.to_csv(tmp_path / "semicolons.csv", sep=";")
    for name in ("tabs.csv", "columns_only.csv", "semicolons.csv"):
        conn = spacon.io.read_connectivity(tmp_path / name)
        assert list(conn.labels) == labels, name
        np.testing.assert_allclose(conn.matrix.toarray(), m, rtol=1e-6, err_msg=name)
    # numbers as labels (Allen structure ids), with or without a row-label column; labels
    # holding the delimiter of the file's name
    ids = [str(i) for i in (385, 394, 402, 409, 417, 425)]
    numbered = pd.DataFrame(m, index=ids, columns=ids).rename_axis("unit")
    numbered.to_csv(tmp_path / "numbered.csv")
    numbered.to_csv(tmp_path / "numbered_columns.csv", index=False)
    named = [f"Somatomotor areas, layer {i}" for i in range(6)]
    pd.DataFrame(m, index=named, columns=named).to_csv(tmp_path / "commas.csv", sep="\t")
    for name, want in (("numbered.csv", ids), ("numbered_columns.csv", ids),
                       ("commas.csv", named)):
        conn = spacon.io.read_connectivity(tmp_path / name)
        assert list(conn.labels) == want, name
        np.testing.assert_allclose(conn.matrix.toarray(), m, rtol=1e-6, err_msg=name)
    table.iloc[:, :5].to_csv(tmp_path / "narrow.csv", index=False)
    with pytest.raises(SpaconInputError, match=r"not square: 6 rows of numbers under a header "
                       r"of 5 labels"):
        spacon.io.read_connectivity(tmp_path / "narrow.csv")
    fisher = m.copy()
    np.fill_diagonal(fisher, np.inf)  # arctanh(1)
    with pytest.raises(SpaconInputError, match=r"on its diagonal alone \(6 of 6"):
        spacon.io.Connectivity(fisher, np.array(labels))
    import scipy.sparse as sp

    with pytest.raises(SpaconInputError, match=r"on its diagonal alone"):
        spacon.io.Connectivity(sp.csr_matrix(fisher), np.array(labels))
    fisher[0, 1] = np.nan
    with pytest.raises(SpaconInputError, match=r"has 7 NaN or infinite values; replace"):
        spacon.io.Connectivity(fisher, np.array(labels))


def _small_brain():
    adata, conn = spacon.datasets.synthetic_brain(n_cells=300, n_genes=60, n_sections=2, seed=0)
    spacon.pp.normalize(adata)
    return adata, conn


def test_results_written_to_a_view_are_said_to_stay_in_it():
    """A view passed inline keeps the results to itself: spacon says so at the user's line and
    names .copy(); the variable holding the view holds the results."""
    adata, _ = _small_brain()
    sub = adata[adata.obs["section"] == adata.obs["section"].iloc[0]]
    assert sub.is_view
    with pytest.warns(SpaconWarning, match=r"adata is a view.*\.copy\(\)") as record:
        spacon.pp.spatial_graph(sub, n_neighbors=6)
    assert record[0].filename == __file__
    assert not sub.is_view and "spatial_connectivities" in sub.obsp
    assert "spatial_connectivities" not in adata.obsp
    spacon.pp.spatial_graph(adata, n_neighbors=6)
    with pytest.warns(SpaconWarning, match=r"adata is a view \(adata\[...\]\): SpaCon"):
        spacon.SpaCon(adata[:, :40], connectome_key=None, hidden_dims=(8, 4, 2))


def test_spacon_says_it_trains_on_every_gene_where_some_are_highly_variable():
    adata, _ = _small_brain()
    spacon.pp.spatial_graph(adata, n_neighbors=6)
    adata.var["highly_variable"] = np.arange(adata.n_vars) < 20
    with pytest.warns(SpaconWarning, match=r"marks only some genes \(20 of 60\), but SpaCon "
                      "trains on every gene"):
        spacon.SpaCon(adata, connectome_key=None, hidden_dims=(8, 4, 2))


def test_both_missing_graphs_are_named_at_once():
    adata, _ = _small_brain()
    with pytest.raises(SpaconInputError, match=r"no 'spatial_connectivities'.*And no connectome "
                       "graph"):
        spacon.SpaCon(adata)


def test_domain_maps_draw_the_samples_the_spatial_graph_was_built_with():
    import matplotlib

    matplotlib.use("Agg")
    adata, _ = _small_brain()
    adata.obs["library_id"] = adata.obs.pop("section").astype(str)
    spacon.pp.spatial_graph(adata, n_neighbors=6, section_key="library_id", z_radius=0)
    adata.obs["spacon_domain"] = adata.obs["region"].astype(str).astype("category")
    fig = spacon.pl.domains(adata)
    titles = {ax.get_title() for ax in fig.axes}
    assert set(adata.obs["library_id"].unique()) <= titles, titles


def test_a_connectivity_of_numbers_held_as_objects_is_taken():
    m = np.random.default_rng(0).random((5, 5))
    conn = spacon.io.Connectivity(m.astype(object))
    np.testing.assert_allclose(conn.matrix.toarray(), m, rtol=1e-6)
