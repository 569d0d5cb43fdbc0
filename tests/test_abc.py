"""The ABC atlas reader, the Allen voxel model, cell -> unit assignment and `spacon prepare abc`,
on tiny files written in the published layouts (tests/_atlas_files.py)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

sys.path.insert(0, str(Path(__file__).parent))

from _atlas_files import (  # noqa: E402
    DATASET,
    FIBRE,
    LGD,
    MOP,
    SHAPE,
    TERMS,
    VISP,
    write_abc,
    write_voxel_model,
)
from test_tracer import write_tracer  # noqa: E402

import spacon  # noqa: E402
from spacon import SpaconInputError  # noqa: E402
from spacon._errors import SpaconWarning  # noqa: E402
from spacon.cli import main  # noqa: E402

pytest.importorskip("nrrd")
SUBSTRUCTURE = {MOP: TERMS[1][4], VISP: TERMS[2][4], FIBRE: TERMS[3][4], LGD: TERMS[4][4]}


@pytest.fixture
def abc(tmp_path):
    cells = write_abc(tmp_path / "abc")
    return tmp_path / "abc", cells


@pytest.fixture
def voxel_dir(tmp_path):
    dense, source, target = write_voxel_model(tmp_path / "vm")
    return tmp_path / "vm", dense, source, target


def test_read_abc_merfish_mirrors_the_layout(abc):
    root, cells = abc
    adata = spacon.datasets.read_abc_merfish(root)
    assert adata.n_obs == len(cells) and adata.n_vars == 20
    assert adata.var_names[0] == "Gene0" and adata.var["gene_identifier"].iloc[0].startswith("ENS")
    truth = cells.loc[adata.obs_names]
    ccf = truth[["x_ccf", "y_ccf", "z_ccf"]].to_numpy() * 1000
    np.testing.assert_allclose(adata.obsm["ccf"], ccf, rtol=1e-6)
    np.testing.assert_allclose(adata.obsm["spatial"], ccf[:, [2, 1, 0]], rtol=1e-6)
    # sections ordered anterior to posterior, although their labels count the other way
    order = list(adata.obs["section"].cat.categories)
    assert adata.obs["section"].cat.ordered and order == sorted(order, reverse=True)
    expected = [SUBSTRUCTURE[s] for s in truth["structure"]]
    assert list(adata.obs["parcellation_substructure"]) == expected
    assert set(adata.obs["parcellation_division"]) == {"Isocortex", "TH", "fiber tracts"}
    # counts of one cell equal the matrix file's row for that label
    raw = ad.read_h5ad(next((root / "expression_matrices").rglob("*-raw.h5ad")))
    cell = adata.obs_names[7]
    np.testing.assert_array_equal(adata[cell].X.toarray(), raw[cell].X.toarray())
    assert adata.uns["abc_merfish"]["units"] == "micrometre"


def test_read_abc_log2_and_sections(abc):
    root, cells = abc
    keep = sorted(cells["brain_section_label"].unique())[:2]
    adata = spacon.datasets.read_abc_merfish(root, matrix="log2", sections=keep)
    assert set(adata.obs["brain_section_label"]) == set(keep)
    raw = spacon.datasets.read_abc_merfish(root, sections=keep)
    np.testing.assert_allclose(adata.X.toarray(), np.log2(raw.X.toarray() + 1), rtol=1e-5)


def test_parcellation_view_is_used_when_present(abc):
    root, cells = abc
    terms = next(root.rglob("parcellation_to_parcellation_term_membership_acronym.csv"))
    terms.unlink()
    view = root / "metadata" / f"{DATASET}-CCF" / "20230830" / "views"
    view.mkdir()
    pd.DataFrame({"cell_label": cells.index,
                  "parcellation_division": "D", "parcellation_structure": "S",
                  "parcellation_substructure": [f"X{i}" for i in range(len(cells))]}).to_csv(
        view / "cell_metadata_with_parcellation_annotation.csv", index=False)
    adata = spacon.datasets.read_abc_merfish(root)
    assert (adata.obs["parcellation_substructure"]
            == [f"X{cells.index.get_loc(c)}" for c in adata.obs_names]).all()


def test_abc_missing_file_and_unregistered_cells(tmp_path):
    root = tmp_path / "abc"
    write_abc(root, unregistered=5)
    with pytest.raises(SpaconInputError, match=r"5 of 300 cells have no CCF coordinates "
                                               r"\(NaN or infinite\)"):
        spacon.datasets.read_abc_merfish(root)
    adata = spacon.datasets.read_abc_merfish(root, drop_unregistered=True)
    assert adata.n_obs == 295 and adata.uns["abc_merfish"]["unregistered_cells_dropped"] == 5
    ccf = next(root.rglob("ccf_coordinates.csv"))
    table = pd.read_csv(ccf)
    table.loc[table["x"].notna().idxmax(), "x"] = np.inf  # as unplaced as NaN
    table.to_csv(ccf, index=False)
    adata = spacon.datasets.read_abc_merfish(root, drop_unregistered=True)
    assert adata.uns["abc_merfish"]["unregistered_cells_dropped"] == 6
    next(root.rglob("ccf_coordinates.csv")).unlink()
    with pytest.raises(SpaconInputError, match="ccf_coordinates.csv"):
        spacon.datasets.read_abc_merfish(root)


def test_read_voxel_model_keeps_factors_and_masks(voxel_dir):
    path, dense, source, target = voxel_dir
    model = spacon.io.read_voxel_model(path)
    assert model.n_source == 360 and model.n_target == 720 and model.midline == 500
    np.testing.assert_array_equal(model.source_voxels, source)
    assert (model.source_voxels[:, 2] >= SHAPE[2] // 2).all()
    np.testing.assert_allclose(model.weights @ model.nodes, dense, rtol=1e-5)


def test_voxel_model_unit_graph_is_the_model_between_units(voxel_dir):
    path, dense, source, target = voxel_dir
    model = spacon.io.read_voxel_model(path)
    rows = np.array([3, 40, 41, 200, 359])
    col_of = {tuple(v): j for j, v in enumerate(target)}
    cols = [col_of[tuple(source[r])] for r in rows]
    units = model.labels[rows]
    m = model.unit_graph(units).matrix.toarray()
    order = np.argsort(units)  # units come back sorted
    np.testing.assert_allclose(m, dense[np.ix_(rows, cols)][np.ix_(order, order)], rtol=1e-5)
    # sides: a left unit reaches a right unit through the mirrored target voxel
    left, right = f"{units[0]}-L", f"{units[1]}-R"
    sided = model.unit_graph([left, right])
    mirrored = source[rows[1]].copy()
    mirrored[2] = SHAPE[2] - 1 - mirrored[2]
    i, j = list(sided.labels).index(left), list(sided.labels).index(right)
    np.testing.assert_allclose(sided.matrix[i, j], dense[rows[0], col_of[tuple(mirrored)]],
                               rtol=1e-5)
    np.testing.assert_allclose(sided.matrix[i, i], dense[rows[0], cols[0]], rtol=1e-5)
    top = model.unit_graph(model.labels[:50], top_k=3, max_block_bytes=2000).matrix.toarray()
    full = model.unit_graph(model.labels[:50]).matrix.toarray()
    assert (np.count_nonzero(top, axis=1) == 3).all()
    np.testing.assert_allclose(top.max(axis=1), full.max(axis=1))
    assert np.allclose(np.sort(top, axis=1)[:, -3:], np.sort(full, axis=1)[:, -3:])


def test_a_voxel_graph_that_cannot_fit_is_refused_while_it_is_built(voxel_dir, monkeypatch):
    """Without top_k or a threshold a low-rank model's unit graph is dense: refused after
    its first block when all of it would not fit (here made small by a huge byte count)."""
    from spacon.io import _voxel_model

    model = spacon.io.read_voxel_model(voxel_dir[0])
    monkeypatch.setattr(_voxel_model, "BYTES_PER_KEPT", 10**9)
    with pytest.raises(SpaconInputError, match="keep each unit's strongest targets with top_k="):
        model.unit_graph(model.labels[:50], max_block_bytes=2000)
    monkeypatch.setattr(_voxel_model, "BYTES_PER_KEPT", 8)
    assert model.unit_graph(model.labels[:50], top_k=3, max_block_bytes=2000).matrix.nnz == 150


def test_voxel_masks_that_do_not_match_the_factors(tmp_path):
    write_voxel_model(tmp_path / "vm", extra_source_rows=3)
    with pytest.raises(SpaconInputError, match="source mask has 360 voxels but the weights "
                                                "have 363 rows"):
        spacon.io.read_voxel_model(tmp_path / "vm")


def test_assign_units_nearest_voxel_mirror_and_distance(abc, voxel_dir):
    root, _ = abc
    model = spacon.io.read_voxel_model(voxel_dir[0])
    adata = spacon.datasets.read_abc_merfish(root)
    spacon.pp.assign_units(adata, model, hemisphere="mirror")
    ccf = adata.obsm["ccf"].astype(float)
    left = ccf[:, 2] < 500
    assert (adata.obs["unit_side"] == np.where(left, "L", "R")).all()
    mirrored = ccf.copy()
    mirrored[left, 2] = 1000 - mirrored[left, 2]
    d = cdist(mirrored, model.source_positions())
    nearest = model.labels[d.argmin(axis=1)]
    units = adata.obs["unit"].astype(str).str[:-2].to_numpy()
    assert (units == nearest).all()
    np.testing.assert_allclose(adata.obs["unit_distance"], d.min(axis=1), rtol=1e-5)
    assert (adata.obs["unit"].astype(str).str[-1] == adata.obs["unit_side"].astype(str)).all()
    # without mirroring the left cells reach only the midline voxels: far away
    plain = spacon.datasets.read_abc_merfish(root)
    with pytest.warns(SpaconWarning, match="cells got no unit"):
        spacon.pp.assign_units(plain, model, max_distance=150)
    far = plain.obs["unit"].isna().to_numpy()
    assert far.sum() == plain.uns["unit_assignment"]["n_unassigned"] > 0
    assert (ccf[far, 2] < 500).all()
    spacon.pp.assign_units(plain, model, max_distance=150, drop=True)
    assert plain.n_obs == (~far).sum() and plain.uns["unit_assignment"]["n_dropped"] == far.sum()


def test_assign_units_positions_and_all_outside(rng):
    positions = rng.uniform(0, 1000, (50, 3))
    adata = ad.AnnData(np.ones((30, 2), dtype=np.float32))
    adata.obsm["ccf"] = rng.uniform(0, 1000, (30, 3))
    spacon.pp.assign_units(adata, positions)
    nearest = cdist(adata.obsm["ccf"], positions).argmin(axis=1).astype(str)
    assert (adata.obs["unit"].astype(str) == nearest).all()
    adata.obsm["ccf"] = adata.obsm["ccf"] + 1e5
    with pytest.raises(SpaconInputError, match="no cell could be assigned"):
        spacon.pp.assign_units(adata, positions, max_distance=200)


def test_assign_units_by_region_reports_unknown_labels(abc):
    root, _ = abc
    adata = spacon.datasets.read_abc_merfish(root)
    conn = spacon.io.Connectivity(np.eye(3), ["MOp", "VISp", "TH"])
    keys = ["parcellation_substructure", "parcellation_structure", "parcellation_division"]
    with pytest.warns(SpaconWarning, match="unknown to the connectome, e.g. fiber tracts"):
        spacon.pp.assign_units(adata, conn, region_key=keys)
    expect = adata.obs["parcellation_structure"].astype(str).replace({"LGd": "TH"})
    known = adata.obs["unit"].notna()
    assert (adata.obs["unit"][known].astype(str) == expect[known]).all()
    assert (adata.obs["parcellation_division"][~known] == "fiber tracts").all()
    assert adata.uns["unit_assignment"]["unknown_labels"] == ["fiber tracts"]


# each voxel's strongest outgoing connections leave many voxels receiving none: said
@pytest.mark.filterwarnings("ignore:.*have no incoming connection:spacon._errors.SpaconWarning")
def test_connectome_graph_takes_the_voxel_model(abc, voxel_dir):
    root, _ = abc
    model = spacon.io.read_voxel_model(voxel_dir[0])
    adata = spacon.datasets.read_abc_merfish(root)
    spacon.pp.assign_units(adata, model, hemisphere="mirror")
    spacon.pp.connectome_graph(adata, model, unit_key="unit", top_k=10)
    stored = adata.uns["connectome_neighbors"]
    assert set(stored["units"]) == set(adata.obs["unit"].astype(str))
    assert (np.diff(stored["unit_connectivities"].indptr) <= 10).all()


def _run_readme_command(out: Path, extra: list[str]) -> int:
    text = (out / "README.txt").read_text()
    start = text.index("spacon run --adata")
    command = text[start:text.index("\n", text.index("--alpha", start))]
    args = shlex.split(command.replace("\\\n", " "))[1:]
    return main([a for a in args if a not in ("--out", "result")] + extra)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*have no incoming connection:spacon._errors.SpaconWarning")
def test_prepare_abc_then_run(tmp_path, abc, voxel_dir, capsys):
    root, cells = abc
    out = tmp_path / "prepared"
    assert main(["prepare", "abc", "--abc-dir", str(root), "--connectome", str(voxel_dir[0]),
                 "--out", str(out), "--top-k", "20"]) == 0
    prepared = ad.read_h5ad(out / "abc_merfish.h5ad")
    conn = spacon.io.read_connectivity(out / "connectome.npz")
    assert prepared.n_obs == len(cells)
    assert set(prepared.obs["unit"].astype(str)) == set(conn.labels)
    assert (np.diff(conn.matrix.indptr) <= 20).all()
    assert _run_readme_command(out, ["--out", str(tmp_path / "result"), "--epochs", "2",
                                     "--hidden-dims", "16", "8", "4", "--quiet"]) == 0
    result = ad.read_h5ad(tmp_path / "result" / "result.h5ad")
    assert result.n_obs == len(cells) and "spacon_domain_alpha1" in result.obs
    assert "X_spacon_con" in result.obsm


def test_prepare_abc_region_level_tracer(tmp_path, abc, monkeypatch):
    root, _ = abc
    tracer = tmp_path / "oh2014"
    tracer.mkdir()
    write_tracer(tracer)
    out = tmp_path / "prepared"
    assert main(["prepare", "abc", "--abc-dir", str(root), "--connectome", str(tracer),
                 "--out", str(out)]) == 0
    prepared = ad.read_h5ad(out / "abc_merfish.h5ad")
    # the default mirrors: a unit per region and side, so left and right cells are told apart
    units = prepared.obs["unit"].astype(str)
    assert {u[:-2] for u in units} <= {"MOp", "VISp", "TH"}
    np.testing.assert_array_equal(units.str[-1], prepared.obs["unit_side"].astype(str))
    conn = spacon.io.read_connectivity(out / "connectome.npz")
    assert conn.n == 12 and set(units) <= set(conn.labels)
    assert "fiber tracts" not in set(prepared.obs["parcellation_division"])
    readme = (out / "README.txt").read_text()
    assert "were dropped" in readme and "REGION-L/-R" in readme
    # its run.toml names the files relative to itself: it works from any working directory
    from spacon._pipeline import RunConfig

    monkeypatch.chdir(tracer)
    config = RunConfig.from_toml(out / "run.toml")
    assert Path(config.adata).samefile(out / "abc_merfish.h5ad")
    assert Path(config.connectivity).samefile(out / "connectome.npz")
    assert main(["prepare", "abc", "--abc-dir", str(root), "--connectome", str(tracer),
                 "--hemisphere", "none", "--out", str(tmp_path / "one_side")]) == 0
    one = ad.read_h5ad(tmp_path / "one_side" / "abc_merfish.h5ad")
    assert set(one.obs["unit"].astype(str)) <= {"MOp", "VISp", "TH"}
    assert spacon.io.read_connectivity(tmp_path / "one_side" / "connectome.npz").n == 6


def _shift_ccf(root: Path, mm: float):
    path = next(root.rglob("ccf_coordinates.csv"))
    table = pd.read_csv(path, dtype={"cell_label": str})
    table["x"] += mm
    table.to_csv(path, index=False)


@pytest.mark.parametrize("case", ["missing file", "unregistered", "mask mismatch",
                                  "all outside"])
def test_prepare_abc_bad_inputs(tmp_path, capsys, case):
    root, vm = tmp_path / "abc", tmp_path / "vm"
    write_abc(root, unregistered=3 if case == "unregistered" else 0)
    write_voxel_model(vm, extra_source_rows=2 if case == "mask mismatch" else 0)
    if case == "missing file":
        next(root.rglob("cell_metadata.csv")).unlink()
    if case == "all outside":
        _shift_ccf(root, 5.0)
    out = tmp_path / "out"
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert main(["prepare", "abc", "--abc-dir", str(root), "--connectome", str(vm),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("spacon prepare abc: error:")
    expected = {"missing file": "cell_metadata.csv", "unregistered": "no CCF coordinates",
                "mask mismatch": "do not match the factors",
                "all outside": "no cell could be assigned"}[case]
    assert expected in err[0]
    assert not out.exists() or not any(out.iterdir())
    assert before == {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    if case == "unregistered":  # dropped as asked, and said where the user reads it
        assert main(["prepare", "abc", "--abc-dir", str(root), "--connectome", str(vm),
                     "--drop-unregistered", "--out", str(out)]) == 0
        said = capsys.readouterr().out
        assert "3 cells without CCF coordinates dropped" in said
        assert "3 cells without CCF coordinates were dropped" in (out / "README.txt").read_text()


def _cut(path: Path, keep: float) -> None:
    """The file cut short, as an interrupted download leaves it (mid-row)."""
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


@pytest.mark.parametrize("case", ["cell metadata", "ccf", "terms", "top-k none, threshold"])
def test_prepare_abc_names_cut_files_and_empty_graphs(tmp_path, capsys, case):
    root, vm = tmp_path / "abc", tmp_path / "vm"
    write_abc(root)
    write_voxel_model(vm)
    extra = []
    if case == "cell metadata":
        _cut(next(root.rglob("cell_metadata.csv")), 0.6)
    elif case == "ccf":
        _cut(next(root.rglob("ccf_coordinates.csv")), 0.6)
    elif case == "terms":  # cut at a row's end: the cells of the regions after it have none
        terms = next(root.rglob("parcellation_to_parcellation_term_membership_acronym.csv"))
        terms.write_text("".join(terms.read_text().splitlines(keepends=True)[:3]))
    else:
        extra = ["--top-k", "none", "--threshold", "1e9"]
    out = tmp_path / "out"
    assert main(["prepare", "abc", "--abc-dir", str(root), "--connectome", str(vm),
                 "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    expected = {"cell metadata": "is incomplete: the file was cut short",
                "ccf": "is incomplete: the file was cut short",
                "terms": "have no region in",
                "top-k none, threshold": "kept no connections"}[case]
    assert expected in err[0] and "--drop-unregistered (--" not in err[0]
    assert not out.exists()


def test_prepare_abc_writes_its_files_together(tmp_path, abc, voxel_dir, capsys, monkeypatch):
    """Ctrl-C while writing leaves nothing (the folder it made is removed) and says so; a
    folder where a file goes is refused before any work; --top-k takes no count below 1; the
    README's command quotes a folder with a space."""
    import spacon.io as sio

    root, _ = abc
    base = ["prepare", "abc", "--abc-dir", str(root), "--connectome", str(voxel_dir[0])]
    real = sio.save_npz

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sio, "save_npz", interrupted)
    out = tmp_path / "new" / "prepared"
    assert main([*base, "--out", str(out)]) == 130
    assert "nothing was saved" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    monkeypatch.setattr(sio, "save_npz", real)
    blocked = tmp_path / "blocked"
    (blocked / "connectome.npz").mkdir(parents=True)
    assert main([*base, "--out", str(blocked), "--overwrite"]) == 2
    assert "a folder where a file goes" in capsys.readouterr().err
    assert sorted(p.name for p in blocked.iterdir()) == ["connectome.npz"]
    for bad in ("0", "-3", "many"):
        with pytest.raises(SystemExit):
            main([*base, "--out", str(tmp_path / "k"), "--top-k", bad])
        assert "a whole number >= 1, or none" in capsys.readouterr().err
    spaced = tmp_path / "my out"
    assert main([*base, "--out", str(spaced), "--top-k", "20"]) == 0
    readme = (spaced / "README.txt").read_text()
    assert shlex.quote(str(spaced / "abc_merfish.h5ad")) in readme
    from spacon._prepare import prepare_abc

    with pytest.raises(SpaconInputError, match="give the folder that holds it"):
        prepare_abc(root, voxel_dir[0] / "voxel_model", tmp_path / "x")


def test_expression_rows_read_in_blocks(abc):
    from spacon.datasets._abc import _read_rows

    root, _ = abc
    path = next((root / "expression_matrices").rglob("*-raw.h5ad"))
    rows = np.array([0, 3, 4, 150, 299])
    backed = ad.read_h5ad(path, backed="r")
    part = _read_rows(backed, rows, values_per_block=20 * 7)  # 7 rows per block
    backed.file.close()
    full = ad.read_h5ad(path)[rows]
    assert list(part.obs_names) == list(full.obs_names)
    np.testing.assert_array_equal(part.X.toarray(), full.X.toarray())
    assert list(part.var["gene_symbol"]) == list(full.var["gene_symbol"])


def test_voxel_model_missing_file(voxel_dir):
    path = voxel_dir[0]
    (path / "voxel_model" / "nodes.csv.gz").unlink()
    with pytest.raises(SpaconInputError, match=r"voxel_model/nodes.csv.gz missing"):
        spacon.io.read_voxel_model(path)


def test_mirroring_a_bilateral_voxel_model_is_refused(abc, voxel_dir):
    path, _, _, target = voxel_dir
    model = spacon.io.read_voxel_model(path)
    bilateral = spacon.io.VoxelModel(model.nodes.T.copy(), model.nodes, target, target,
                                     model.shape, 100.0, 3)
    adata = spacon.datasets.read_abc_merfish(abc[0])
    with pytest.raises(SpaconInputError, match="cover both hemispheres"):
        spacon.pp.assign_units(adata, bilateral, hemisphere="mirror")
    spacon.pp.assign_units(adata, bilateral)
    assert adata.obs["unit"].notna().all() and "unit_side" not in adata.obs


def test_abc_files_as_downloads_and_users_leave_them(abc):
    """Rows repeated by a resumed download in the coordinate files, and region columns saved
    back into cell_metadata.csv, ended in pandas tracebacks."""
    root, _ = abc
    ccf = next(root.rglob("ccf_coordinates.csv"))
    table = pd.read_csv(ccf)
    cells = next(root.rglob("cell_metadata.csv"))
    meta = pd.read_csv(cells)
    meta["parcellation_division"] = "a user's own"  # a joined table saved back
    meta.to_csv(cells, index=False)
    adata = spacon.datasets.read_abc_merfish(root)  # the file's regions win
    assert "a user's own" not in set(adata.obs["parcellation_division"])
    rec = ccf.with_name("reconstructed_coordinates.csv")
    for path in (ccf, rec):
        pd.concat([table, table.iloc[:3]]).to_csv(path, index=False)
        with pytest.raises(SpaconInputError, match=rf"{path.name} lists 3 cell_label\(s\) more "
                                                   r"than once \(e\.g\. .*download"):
            spacon.datasets.read_abc_merfish(root)
        table.to_csv(path, index=False)
