"""Bad input, tried systematically: every case gives one clear error and writes no result.

Each case changes one thing in valid inputs written by ``spacon simulate`` and runs
``spacon run``; it must exit with status 2 (1 for a failed write), print one ``error:``
paragraph naming the problem (no traceback), leave the input files untouched and write no
``result.h5ad``. Property-based tests then fuzz the library's entry points: whatever they are
given, they either work or raise :class:`spacon.SpaconInputError`.
"""

import errno
import hashlib
import re
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import spacon
from spacon import SpaconInputError, SpaconWarning
from spacon._pipeline import RunConfig
from spacon.cli import main

SMALL = ["--hidden-dims", "16", "8", "4", "--epochs", "1", "--batch-size", "400", "--quiet"]


def _dense(a):
    a.X = a.X.toarray().astype(np.float32) if sp.issparse(a.X) else a.X.astype(np.float32)
    return a.X


def _set(a, key, value):
    a.obsm[key] = value


def _obs(a, column, values):
    a.obs[column] = values


def _section_mislabelled(a):
    labels = a.obs["section"].astype(str).to_numpy().copy()
    labels[0] = "s999"
    a.obs["section"] = labels


# (id, change to the AnnData, change to the dense unit x unit matrix, extra flags, message)
DATA_CASES = [
    ("nan-expression", lambda a: _dense(a).__setitem__((0, 0), np.nan), None, [], "NaN"),
    ("inf-expression", lambda a: _dense(a).__setitem__((1, 2), np.inf), None, [], "infinite"),
    ("negative-expression", lambda a: _dense(a).__setitem__((0, 0), -1), None, [], "negative"),
    ("non-integer-counts", lambda a: _dense(a).__imul__(0.37), None, [],
     "integer counts.*--no-normalize"),
    ("cell-without-counts", lambda a: _dense(a).__setitem__(4, 0), None, [], "no counts at all"),
    ("no-genes", lambda a: a._inplace_subset_var(np.zeros(a.n_vars, bool)), None, [], "empty"),
    ("duplicate-cell-names", lambda a: setattr(a, "obs_names", ["c"] * a.n_obs), None, [],
     "not unique"),
    ("string-expression-layer-missing", None, None, ["--spatial-key", "coords"],
     "no 'coords' coordinates"),
    ("1-d-coordinates", lambda a: _set(a, "spatial", a.obsm["spatial"][:, :1]), None, [],
     r"shape \(\d+, 1\)"),
    ("4-d-coordinates", lambda a: _set(a, "spatial", np.c_[a.obsm["spatial"], a.obsm["spatial"]]),
     None, [], r"shape \(\d+, 6\)"),
    ("nan-coordinates", lambda a: a.obsm["spatial"].__setitem__((2, 0), np.nan), None, [],
     "NaN or infinite coordinates"),
    ("section-not-in-order", _section_mislabelled, None, ["--section-order", "s000,s001,s002"],
     "absent from section_order"),
    ("missing-section-column", None, None, ["--section-key", "slice"], "no section column"),
    ("missing-unit-column", None, None, ["--unit-key", "voxel"], "no unit column"),
    ("unit-without-connectivity", lambda a: _obs(a, "unit", np.r_[99999, a.obs["unit"][1:]]),
     None, [], "not in the connectivity matrix"),
    ("cell-without-unit", lambda a: _obs(a, "unit", np.r_[np.nan, a.obs["unit"][1:]]), None, [],
     "have no unit"),
    ("connectivity-not-square", None, lambda m: m[:, :-1], [], "must be square"),
    ("connectivity-wrong-size", None, lambda m: m[:-3, :-3], [], "not in the connectivity"),
    ("connectivity-nan", None, lambda m: np.where(np.eye(len(m)) > 0, np.nan, m), [], "NaN"),
    ("connectivity-all-zero", None, lambda m: m * 0, [], "no connections are left"),
    ("connectivity-negative", None, lambda m: -m, ["--negative", "error"], "negative values"),
    ("threshold-removes-all", None, None, ["--threshold", "1e9"], "no connections are left"),
    ("top-k-zero", None, None, ["--top-k", "0"], "--top-k must be a positive"),
    ("negative-radius", None, None, ["--radius", "-5"], "--radius must be a positive"),
    ("negative-z-radius", None, None, ["--z-radius", "-1"], "--z-radius must be a positive"),
    ("radius-isolates-every-cell", None, None, ["--radius", "1e-6", "--z-radius", "0"],
     "no cell has a spatial neighbour within --radius 1e-06"),
    ("connectivity-and-no-connectivity", None, None, ["--no-connectivity"], "contradict"),
    ("alpha-out-of-range", None, None, ["--alpha", "2"], r"\[0, 1\]"),
    ("alphas-sharing-a-column", None, None, ["--alpha", "0.1", "0.1000001", "0.4"],
     r"differ only beyond six significant digits .*spacon_domain_alpha0\.1"),
    ("zero-domains", None, None, ["--n-domains", "0"], "--n-domains must be >= 1"),
    ("more-domains-than-cells", None, None, ["--n-domains", "99999"],
     r"--n-domains 99999 is more than the \d+ cells"),
    ("resolution-with-gmm", None, None, ["--resolution", "0.5"], "Leiden's and Louvain's"),
    ("zero-resolution", None, None, ["--method", "leiden", "--resolution", "0"],
     "--resolution must be > 0"),
    ("zero-threads", None, None, ["--threads", "0"], "--threads must be >= 1"),
    ("zero-hidden-size", None, None, ["--hidden-dims", "0", "8", "4"], "three positive sizes"),
    ("zero-batch-size", None, None, ["--batch-size", "0"], "--batch-size must be a whole number >= 1"),
    ("zero-epochs", None, None, ["--epochs", "0"], "epochs must be a whole number >= 1"),
    ("missing-adata-file", None, None, ["--adata", "nowhere.h5ad"], "does not exist"),
    ("missing-connectivity-file", None, None, ["--connectivity", "nowhere.npz"], "does not exist"),
    ("adata-is-a-folder", None, None, ["--adata", "."], "is a folder"),
    ("connectivity-is-a-folder", None, None, ["--connectivity", "."], "is a folder"),
    ("resume-without-checkpoint", None, None, ["--resume"], "holds no checkpoint"),
]


def _hashes(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()
            if p.is_file()}


def _args(adata_path, conn_path, out, extra):
    args = ["run", "--adata", str(adata_path), "--connectivity", str(conn_path), "--unit-key",
            "unit", "--section-key", "section", "--radius", "700", "--z-radius", "700",
            "--threshold", "0.4", "--out", str(out), *SMALL]
    for flag in {e for e in extra if e.startswith("--")} & set(args):
        i = args.index(flag)  # a flag given again replaces the base value(s)
        n = 3 if flag == "--hidden-dims" else 1
        del args[i : i + 1 + n]
    return args + extra


@pytest.mark.filterwarnings("ignore:Observation names are not unique")
@pytest.mark.filterwarnings("ignore:Variable names are not unique")
@pytest.mark.parametrize("case", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_bad_input_gives_one_clear_error(case, sim_inputs, tmp_path, capsys):
    name, change_adata, change_conn, extra, message = case
    adata_path = sim_inputs / "synthetic_brain.h5ad"
    conn_path = sim_inputs / "connectome.npz"
    if change_adata is not None:
        adata = ad.read_h5ad(adata_path)
        change_adata(adata)
        adata_path = tmp_path / "bad.h5ad"
        adata.write_h5ad(adata_path)
    if change_conn is not None:
        matrix = spacon.io.read_connectivity(conn_path).matrix.toarray()
        conn_path = tmp_path / "bad.npy"
        np.save(conn_path, change_conn(matrix))
    inputs = tmp_path if change_adata or change_conn else sim_inputs
    before = _hashes(inputs)
    out = tmp_path / "out"
    assert main(_args(adata_path, conn_path, out, extra)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    assert re.search(message, lines[0]), lines[0]
    assert not (out / "result.h5ad").exists()
    assert _hashes(inputs) == before


OUTPUT_CASES = ["out-is-a-file", "out-not-empty", "out-not-writable", "disk-full",
                "disk-full-at-the-checkpoint"]


@pytest.mark.parametrize("case", OUTPUT_CASES)
def test_output_problems(case, sim_inputs, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    args = _args(sim_inputs / "synthetic_brain.h5ad", sim_inputs / "connectome.npz", out, [])
    if case == "out-is-a-file":
        out.write_text("x")
        code, message = 2, "not a directory"
    elif case == "out-not-empty":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
        code, message = 2, "not empty"
    elif case == "out-not-writable":
        import os

        if os.geteuid() == 0:
            pytest.skip("permissions do not bind the root user")
        out.mkdir()
        out.chmod(0o500)
        code, message = 2, "cannot write"
    elif case == "disk-full":
        def full_disk(self, path, *a, **k):
            with open(path, "wb") as f:
                f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

        monkeypatch.setattr(ad.AnnData, "write_h5ad", full_disk)
        code, message = 1, "No space left on device"
    if case == "disk-full-at-the-checkpoint":  # torch's writer raises RuntimeError: a traceback
        import torch

        def torch_full(obj, path, *a, **k):
            Path(path).write_bytes(b"partial")
            raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos")

        monkeypatch.setattr(torch, "save", torch_full)
        code, message = 1, "the checkpoint could not be written"
    assert main(args) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    if out.is_dir():
        assert not (out / "result.h5ad").exists()
        assert not [p for p in out.iterdir() if p.name.startswith(".result.h5ad")]
        if case == "disk-full-at-the-checkpoint":  # nor a partial checkpoint
            assert not [p for p in out.iterdir() if "checkpoint" in p.name]


def test_checkpoint_with_other_genes(sim_inputs, tmp_path):
    adata = ad.read_h5ad(sim_inputs / "synthetic_brain.h5ad")
    spacon.pp.normalize(adata)
    spacon.pp.spatial_graph(adata, radius=700, section_key="section", z_radius=700)
    model = spacon.SpaCon(adata, hidden_dims=(8, 4, 2), connectome_key=None)
    model.save(tmp_path / "m")
    with pytest.raises(SpaconInputError, match="genes differ from the model's: 1 missing") as err:
        spacon.SpaCon.load(tmp_path / "m", adata[:, 1:].copy())
    assert "extra" not in str(err.value)  # none to name
    other = adata[:, 1:].copy()
    other.var_names = ["new", *other.var_names[1:]]
    with pytest.raises(SpaconInputError, match=r"2 missing .*, 1 extra \(e\.g\. new\)"):
        spacon.SpaCon.load(tmp_path / "m", other)


def test_harmless_oddities_warn_but_run(sim_inputs):
    adata = ad.read_h5ad(sim_inputs / "synthetic_brain.h5ad")
    _dense(adata)[:, 3] = 0
    with pytest.warns(SpaconWarning, match="1 of 80 genes are zero in every cell"):
        spacon.pp.normalize(adata)
    _section_mislabelled(adata)
    with pytest.warns(SpaconWarning, match="single cell"):  # a stack: linked to its neighbours
        spacon.pp.spatial_graph(adata, radius=700, section_key="section", z_radius=700)


def test_cells_with_almost_no_counts_are_named_before_they_become_domains(sim_inputs):
    """Two spots of the olfactory bulb with 2 and 4 counts (the median spot: 14,606) became
    a domain of their own after normalising, without a word."""
    adata = ad.read_h5ad(sim_inputs / "synthetic_brain.h5ad")
    x = _dense(adata)
    x *= 100  # deep cells, as the bulb's spots (median 14,606 counts)
    x[:2] = 0
    x[:2, 0] = 1
    with pytest.warns(SpaconWarning, match=r"2 cells have fewer than 1% of the median cell's "
                                           r"[0-9.]+ counts \(the fewest: 1\)"):
        spacon.pp.normalize(adata)


# ------------------------------------------------------------------ property-based fuzzing
FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
floats = st.floats(allow_nan=True, allow_infinity=True, width=32)


@FUZZ
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=6), elements=floats))
def test_fuzz_normalize(x):
    adata = ad.AnnData(x)
    try:
        spacon.pp.normalize(adata)
    except SpaconInputError:
        return
    except SpaconWarning:
        return
    assert np.isfinite(adata.X).all() and (adata.X >= 0).all()


@FUZZ
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 12), st.integers(1, 4)),
               elements=st.floats(-1e6, 1e6) | st.just(np.nan)),
    st.one_of(st.none(), st.floats(-1, 50)),
    st.one_of(st.none(), st.integers(-2, 15)),
)
def test_fuzz_spatial_graph(coords, radius, k):
    adata = ad.AnnData(np.ones((len(coords), 2), np.float32))
    adata.obsm["spatial"] = coords
    try:
        spacon.pp.spatial_graph(adata, radius=radius, n_neighbors=k)
    except (SpaconInputError, SpaconWarning):
        return
    graph = adata.obsp["spatial_connectivities"]
    assert graph.shape == (len(coords), len(coords))
    assert (graph != graph.T).nnz == 0


@FUZZ
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=5),
                  elements=st.floats(-5, 5) | st.just(np.nan) | st.just(np.inf)),
       st.one_of(st.none(), st.floats(-1, 2)))
def test_fuzz_connectivity(tmp_path_factory, matrix, threshold):
    path = tmp_path_factory.mktemp("fuzz") / "c.npy"
    np.save(path, matrix)
    try:
        conn = spacon.io.read_connectivity(path)
        adata = ad.AnnData(np.ones((conn.matrix.shape[0], 2), np.float32))
        adata.obsm["spatial"] = np.arange(2 * adata.n_obs, dtype=float).reshape(-1, 2)
        spacon.pp.connectome_graph(adata, conn, threshold=threshold)
    except (SpaconInputError, SpaconWarning):
        return
    assert adata.obsp["connectome_connectivities"].nnz > 0


@FUZZ
@given(st.dictionaries(
    st.sampled_from(["epochs", "alpha", "radius", "seed", "mode", "section_order", "overwrite",
                     "hidden_dims", "nonsense", "lr"]),
    st.one_of(st.none(), st.integers(-3, 3), st.floats(allow_nan=False), st.text(max_size=3),
              st.booleans(), st.lists(st.integers(0, 3), max_size=3)),
))
def test_fuzz_config(values):
    try:
        config = RunConfig().updated(values)
    except SpaconInputError:
        return
    for name, value in values.items():
        assert value is None or getattr(config, name) is not None


def test_repeated_gene_names_are_named_when_normalising(sim_inputs):
    adata = ad.read_h5ad(sim_inputs / "synthetic_brain.h5ad")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anndata's own, when the names are set (if it warns)
        adata.var_names = [adata.var_names[0], *adata.var_names[:-1]]
    with pytest.warns(SpaconWarning, match=r"gene names are not unique \(e\.g\. gene0\)"):
        spacon.pp.normalize(adata)
