import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

from spacon import SpaconInputError, SpaconWarning
from spacon.io import Connectivity, atomic_path, read_connectivity, save_npz

M = np.array([[0.0, 2.0, 0.0], [1.0, 0.0, 3.0], [0.5, 0.0, 0.0]])


def dense(conn):
    return conn.matrix.toarray()


def test_npz_sparse_with_and_without_labels(tmp_path):
    sp.save_npz(tmp_path / "a.npz", sp.csr_matrix(M))
    conn = read_connectivity(tmp_path / "a.npz")
    assert np.allclose(dense(conn), M) and conn.labels is None
    save_npz(tmp_path / "b.npz", M, labels=["x", "y", "z"])
    conn = read_connectivity(tmp_path / "b.npz")
    assert list(conn.labels) == ["x", "y", "z"] and np.allclose(dense(conn), M)
    assert np.allclose(sp.load_npz(tmp_path / "b.npz").toarray(), M)  # still scipy-readable


def test_save_npz_takes_a_connectivity_and_refuses_what_is_not_one(tmp_path):
    conn = Connectivity(sp.csr_matrix(M), labels=["x", "y", "z"])
    save_npz(tmp_path / "c.npz", conn)  # as read_mouse_tracer returns it
    back = read_connectivity(tmp_path / "c.npz")
    assert list(back.labels) == ["x", "y", "z"] and np.allclose(dense(back), M)
    # refused as read_connectivity would refuse the file
    with pytest.raises(SpaconInputError, match="square"):
        save_npz(tmp_path / "d.npz", M[:2])
    with pytest.raises(SpaconInputError, match="must be numeric"):
        save_npz(tmp_path / "d.npz", np.array([[1, "a"], [2, 3]], dtype=object))
    with pytest.raises(SpaconInputError, match="NaN"):
        save_npz(tmp_path / "d.npz", np.where(M > 1, np.nan, M))
    with pytest.raises(SpaconInputError, match="2 labels"):
        save_npz(tmp_path / "d.npz", M, labels=["x", "y"])
    assert not (tmp_path / "d.npz").exists()
    # a labelled DataFrame keeps its labels (columns put in the rows' order)
    frame = pd.DataFrame(M[:, ::-1], index=["x", "y", "z"], columns=["z", "y", "x"])
    save_npz(tmp_path / "e.npz", frame)
    back = read_connectivity(tmp_path / "e.npz")
    assert list(back.labels) == ["x", "y", "z"] and np.allclose(dense(back), M)


def test_sparsify_checks_its_matrix():
    from spacon.pp import sparsify

    assert sparsify(M.tolist(), threshold=0.5).shape == (3, 3)  # any square array-like
    with pytest.raises(SpaconInputError, match="NaN"):
        sparsify(np.where(M > 1, np.nan, M))
    with pytest.raises(SpaconInputError, match="square"):
        sparsify(M[:, :2])
    with pytest.raises(SpaconInputError, match="needs positions"):
        sparsify(M, distance_scale=1.0)
    with pytest.raises(SpaconInputError, match="negative="):
        sparsify(M, negative="bogus")
    with pytest.raises(SpaconInputError, match="top_k must be a positive integer"):
        sparsify(M, top_k=0)
    with pytest.raises(SpaconInputError, match="top_fraction must be in"):
        sparsify(M, top_fraction=2.0)
    for name, value in (("top_k", np.nan), ("top_k", np.inf), ("threshold", "0.4"),
                        ("top_fraction", "0.5"), ("top_k", True)):
        with pytest.raises(SpaconInputError, match=name):
            sparsify(M, **{name: value})
    # given both, the smaller applies
    both = sparsify(np.ones((4, 4)), top_k=3, top_fraction=0.5)
    assert (np.diff(both.indptr) == 2).all()


def test_npz_dense_named_array(tmp_path):
    np.savez(tmp_path / "c.npz", fc=M, other=M * 2)
    assert np.allclose(dense(read_connectivity(tmp_path / "c.npz", key="other")), 2 * M)
    with pytest.raises(SpaconInputError, match=r"several square numeric matrices \(fc \(3 x 3\), "
                                                r"other \(3 x 3\)\)"):
        read_connectivity(tmp_path / "c.npz")
    with pytest.raises(SpaconInputError, match="no dataset 'nope'"):
        read_connectivity(tmp_path / "c.npz", key="nope")


def test_npz_labels_as_a_user_saves_them(tmp_path):
    """np.savez(W=..., acronym=...) dropped the names (and a key was needed); labels from a
    pandas index (objects) failed with NumPy's 'Object arrays cannot be loaded'."""
    names = pd.Index(["b", "a", "c"])
    np.savez(tmp_path / "named.npz", W=M, acronym=names.to_numpy().astype(str))
    conn = read_connectivity(tmp_path / "named.npz")  # the one matrix; its names beside it
    assert list(conn.labels) == ["b", "a", "c"] and np.allclose(dense(conn), M)
    # the matrix named with key=: as before, no array is taken for labels but 'labels'
    assert read_connectivity(tmp_path / "named.npz", key="W").labels is None
    np.savez(tmp_path / "repeated.npz", W=M, region=np.array(["x", "x", "y"]))
    assert read_connectivity(tmp_path / "repeated.npz").labels is None  # names nothing
    np.savez(tmp_path / "meta.npz", W=M, meta=np.array([{}, {}, {}], dtype=object))
    assert read_connectivity(tmp_path / "meta.npz").labels is None  # objects: not labels
    np.savez(tmp_path / "objects.npz", W=M, labels=names.to_numpy())
    with pytest.raises(SpaconInputError, match=r"its labels 'labels' were saved as Python "
                                               r"objects .* labels=np\.asarray\(labels, "
                                               r"dtype=str\)"):
        read_connectivity(tmp_path / "objects.npz")


def test_npy(tmp_path):
    np.save(tmp_path / "m.npy", M)
    assert np.allclose(dense(read_connectivity(tmp_path / "m.npy")), M)


@pytest.mark.parametrize("suffix,sep", [(".csv", ","), (".tsv", "\t")])
def test_labelled_table_columns_reordered_to_rows(tmp_path, suffix, sep):
    df = pd.DataFrame(M, index=["a", "b", "c"], columns=["a", "b", "c"])
    df[["c", "a", "b"]].to_csv(tmp_path / f"t{suffix}", sep=sep)
    conn = read_connectivity(tmp_path / f"t{suffix}")
    assert list(conn.labels) == ["a", "b", "c"]
    assert np.allclose(dense(conn), M)


def test_unlabelled_csv(tmp_path):
    np.savetxt(tmp_path / "u.csv", M, delimiter=",")
    conn = read_connectivity(tmp_path / "u.csv")
    assert conn.labels is None and np.allclose(dense(conn), M)


def test_empty_cells_of_a_pandas_csv_are_nan_not_labels(tmp_path):
    """pandas writes NaN as an empty cell: an empty diagonal is the matrix's own (named as
    such), not a sign of labels; a stray word is named by its row and column (from 1)."""
    rng = np.random.default_rng(0)
    fc = rng.random((5, 5))
    fc = (fc + fc.T) / 2
    np.fill_diagonal(fc, np.nan)
    pd.DataFrame(fc).to_csv(tmp_path / "diag.csv", header=False, index=False)
    with pytest.raises(SpaconInputError, match="diagonal alone \\(5 of 5 self-connections"):
        read_connectivity(tmp_path / "diag.csv")
    one = rng.random((5, 5))
    one[2, 3] = np.nan
    pd.DataFrame(one).to_csv(tmp_path / "one.csv", header=False, index=False)
    with pytest.raises(SpaconInputError, match="has 1 NaN or infinite values"):
        read_connectivity(tmp_path / "one.csv")
    text = (tmp_path / "one.csv").read_text().replace(",,", ",abc,")
    (tmp_path / "word.csv").write_text(text)
    with pytest.raises(SpaconInputError, match="row 3, column 4 is 'abc', not a number"):
        read_connectivity(tmp_path / "word.csv")
    # an empty corner over numeric labels both ways is still a labelled table
    ids = pd.DataFrame(M, index=[10, 20, 30], columns=[10, 20, 30])
    ids[[30, 10, 20]].to_csv(tmp_path / "ids.csv")
    conn = read_connectivity(tmp_path / "ids.csv")
    assert list(conn.labels) == ["10", "20", "30"] and np.allclose(dense(conn), M)
    # ... and so are labels that are not whole numbers where only the corner is empty
    pd.DataFrame(M, index=[1.5, 2.5, 3.5], columns=[1.5, 2.5, 3.5]).to_csv(tmp_path / "f.csv")
    assert list(read_connectivity(tmp_path / "f.csv").labels) == ["1.5", "2.5", "3.5"]
    # id labels over a NaN diagonal: the labels are not counted as a row of the matrix
    nan_ids = ids.astype(float)
    np.fill_diagonal(nan_ids.values, np.nan)
    nan_ids.to_csv(tmp_path / "nan_ids.csv")
    with pytest.raises(SpaconInputError, match="3 of 3 self-connections"):
        read_connectivity(tmp_path / "nan_ids.csv")
    # a row short of a field (pandas would fill it with NaN) is named
    (tmp_path / "short.csv").write_text("0,1,2\n1,0,1\n2,1\n")
    with pytest.raises(SpaconInputError, match="row 3 has 2 entries, the other rows 3"):
        read_connectivity(tmp_path / "short.csv")
    # a delimiter ending every row is no column
    (tmp_path / "trailing.csv").write_text("".join(",".join(map(str, r)) + ",\n" for r in M))
    assert np.allclose(dense(read_connectivity(tmp_path / "trailing.csv")), M)


def test_hdf5_named_dataset(tmp_path):
    with h5py.File(tmp_path / "c.h5", "w") as f:
        f["group/sc"] = M
        f["fc"] = M.T
    assert np.allclose(dense(read_connectivity(tmp_path / "c.h5", key="group/sc")), M)
    with pytest.raises(SpaconInputError, match="several square numeric matrices"):
        read_connectivity(tmp_path / "c.h5")
    with h5py.File(tmp_path / "b.h5", "w") as f:  # names with brackets are read as written
        f["W (ipsi)"] = M
        f["group/a[0]"] = 2 * M
    assert np.allclose(dense(read_connectivity(tmp_path / "b.h5", key="W (ipsi)")), M)
    assert np.allclose(dense(read_connectivity(tmp_path / "b.h5", key="/group/a[0]")), 2 * M)
    np.savez(tmp_path / "b.npz", **{"W(ipsi)": M})
    assert np.allclose(dense(read_connectivity(tmp_path / "b.npz", key="W(ipsi)")), M)


def test_matlab_v73_is_transposed_back(tmp_path):
    # MATLAB v7.3 = HDF5 written column-major: h5py sees the transpose
    with h5py.File(tmp_path / "c.mat", "w") as f:
        d = f.create_dataset("W", data=M.T)
        d.attrs["MATLAB_class"] = np.bytes_("double")
    assert np.allclose(dense(read_connectivity(tmp_path / "c.mat")), M)


def test_matlab_v5(tmp_path):
    scipy.io.savemat(tmp_path / "old.mat", {"W": M})
    assert np.allclose(dense(read_connectivity(tmp_path / "old.mat")), M)


def test_sparse_matlab_matrices_v5_and_v73(tmp_path):
    """MATLAB saves connectomes sparse: v5 as a scipy sparse matrix, v7.3 as a group of data,
    ir, jc (column-major compressed columns); a v7.3 cell array of names labels the rows."""
    scipy.io.savemat(tmp_path / "s.mat", {"W": sp.csc_matrix(M)})
    assert np.allclose(dense(read_connectivity(tmp_path / "s.mat")), M)
    csc = sp.csc_matrix(M)
    names = ["VISp", "MOp", "TH"]
    with h5py.File(tmp_path / "s73.mat", "w") as f:
        g = f.create_group("W")
        g.attrs["MATLAB_class"] = np.bytes_("double")
        g.attrs["MATLAB_sparse"] = np.uint64(M.shape[0])
        g["data"], g["ir"], g["jc"] = csc.data, csc.indices.astype(np.uint64), \
            csc.indptr.astype(np.uint64)
        refs = f.create_group("#refs#")
        entries = []
        for i, name in enumerate(names):
            d = refs.create_dataset(f"r{i}", data=np.array([[ord(c)] for c in name], np.uint16))
            d.attrs["MATLAB_class"] = np.bytes_("char")
            entries.append(d.ref)
        cell = f.create_dataset("acronym", data=np.array([entries]), dtype=h5py.ref_dtype)
        cell.attrs["MATLAB_class"] = np.bytes_("cell")
    conn = read_connectivity(tmp_path / "s73.mat")
    assert np.allclose(dense(conn), M) and list(conn.labels) == names


def test_tables_read_as_written(tmp_path):
    """Labels that look like numbers stay text; numbers are never taken for labels unless
    they are whole and distinct; a label column without a header; Excel's byte-order mark."""
    rng = np.random.default_rng(0)
    values = rng.random((5, 5))
    np.savetxt(tmp_path / "r.csv", rng.random((6, 5)), delimiter=",")
    with pytest.raises(SpaconInputError, match="not square: 6 rows of 5 numbers"):
        read_connectivity(tmp_path / "r.csv")
    labels = ["001", "002", "003", "010", "NA"]
    pd.DataFrame(values, index=labels, columns=labels).to_csv(tmp_path / "z.csv")
    conn = read_connectivity(tmp_path / "z.csv")
    assert list(conn.labels) == labels and np.allclose(dense(conn), values)
    pd.DataFrame(values, index=[f"R{i}" for i in range(5)]).to_csv(tmp_path / "x.csv",
                                                                   header=False)
    conn = read_connectivity(tmp_path / "x.csv")
    assert list(conn.labels) == [f"R{i}" for i in range(5)] and np.allclose(dense(conn), values)
    with open(tmp_path / "b.csv", "w", encoding="utf-8-sig") as f:
        f.write(pd.DataFrame(values).to_csv(index=False, header=False))
    conn = read_connectivity(tmp_path / "b.csv")
    assert conn.labels is None and np.allclose(dense(conn), values)
    pd.DataFrame({"source": list("abca"), "target": list("bcac"), "weight": [1, 2, 3, 4]}) \
        .to_csv(tmp_path / "edges.csv", index=False)
    with pytest.raises(SpaconInputError, match="looks like an edge list"):
        read_connectivity(tmp_path / "edges.csv")
    (tmp_path / "r.csv").write_text("A,B\nA,0,1\nB,1,0\n")  # R's write.table: a short header
    conn = read_connectivity(tmp_path / "r.csv")
    assert list(conn.labels) == ["A", "B"] and np.allclose(dense(conn), [[0, 1], [1, 0]])
    (tmp_path / "na.csv").write_text(",A,B\nA,NA,1\nB,1,#N/A\n")  # R's and Excel's NaN
    with pytest.raises(SpaconInputError, match="NaN or infinite values on its diagonal"):
        read_connectivity(tmp_path / "na.csv")
    ids = [385, 409, 10, 20, 30]
    pd.DataFrame(values, index=ids, columns=ids).to_csv(tmp_path / "ids.csv")
    assert list(read_connectivity(tmp_path / "ids.csv").labels) == list(map(str, ids))


def test_values_a_connectivity_cannot_hold(tmp_path):
    np.save(tmp_path / "big.npy", np.array([[0, 1e300], [1e300, 0]]))
    with pytest.raises(SpaconInputError, match="beyond what float32 holds"):
        read_connectivity(tmp_path / "big.npy")
    np.save(tmp_path / "complex.npy", M.astype(complex))
    with pytest.raises(SpaconInputError, match="complex numbers"):
        read_connectivity(tmp_path / "complex.npy")
    with pytest.raises(SpaconInputError, match="holds one matrix: key='W'"):
        read_connectivity(tmp_path / "big.npy", key="W")
    sp.save_npz(tmp_path / "coo.npz", sp.coo_matrix(M))  # scipy's other formats too
    assert np.allclose(dense(read_connectivity(tmp_path / "coo.npz")), M)


def test_matlab_file_with_names_scalars_and_3d_arrays(tmp_path):
    """As the Oh et al. 2014 file holds its matrices: 3-D arrays beside a column of names and
    a 1 x 1 threshold. Those two were offered as the connectivity's candidates."""
    path = tmp_path / "tracer.mat"
    names = np.array([["a"], ["b"], ["c"]], dtype=object)
    scipy.io.savemat(path, {"a": np.ones((3, 3, 4)), "acronym": names, "thr": [[0.1]]})
    with pytest.raises(SpaconInputError, match=r"no square numeric matrices \(a \(3 x 3 x 4\), "
                                               r"acronym \(3 x 1, text\), thr \(1 x 1\)\); "
                                               r"name one matrix of 'a'.*'a\[:, :, 0\]'"):
        read_connectivity(path)
    with pytest.raises(SpaconInputError, match=r"'a' holds several matrices.*'a\(:,:,1\)'"):
        read_connectivity(path, key="a")
    scipy.io.savemat(path, {"W": M, "thr": [[0.1]]})  # the scalar is no candidate
    assert np.allclose(dense(read_connectivity(path)), M)


def test_a_matrix_inside_a_3d_array_is_named_by_its_index(tmp_path):
    """The Oh et al. 2014 file: weights and p-values stacked in one 3-D array, region names
    in a cell array; read from the command line with --connectivity-key 'a(:,:,1)'."""
    stack = np.stack([M, 2 * M, 3 * M], axis=2)
    names = np.array([["r0"], ["r1"], ["r2"]], dtype=object)
    path = tmp_path / "tracer.mat"
    scipy.io.savemat(path, {"a": stack, "acronym": names, "thr": [[0.1]]})
    for key in ("a[:, :, 1]", "a[:,:,1]", "a(:,:,2)", " a ( : , : , 2 ) "):
        conn = read_connectivity(path, key=key)
        assert np.allclose(dense(conn), 2 * M), key
        assert list(conn.labels) == ["r0", "r1", "r2"]  # the one text array of a name per row
    assert np.allclose(dense(read_connectivity(path, key="a[:, :, 0]")), M)
    for key, match in [("a[:, :, 3]", r"3 positions only: 0 to 2 in NumPy"),
                       ("a(:,:,4)", r"1 to 3 in MATLAB's \(\.\.\.\)"), ("a(:,:,0)", "count from 1"),
                       ("a(:,:,00)", "count from 1"),
                       ("a[1]", "does not name one matrix"), ("a[:, :]", "3 axes"),
                       ("a[:, :, :]", "does not name one matrix"), ("b[:, :, 0]", "no dataset 'b'"),
                       ("a[:, :, 0)", "brackets")]:
        with pytest.raises(SpaconInputError, match=match):
            read_connectivity(path, key=key)
    # MATLAB v7.3: HDF5 holds the transpose; the index counts MATLAB's own axes
    with h5py.File(tmp_path / "new.mat", "w") as f:
        f.create_dataset("a", data=stack.T).attrs["MATLAB_class"] = np.bytes_("double")
    assert np.allclose(dense(read_connectivity(tmp_path / "new.mat", key="a(:,:,3)")), 3 * M)
    with pytest.raises(SpaconInputError, match=r"no square numeric matrices \(a \(3 x 3 x 3\)\); "
                                               r"name one matrix of 'a'"):
        read_connectivity(tmp_path / "new.mat")
    with pytest.raises(SpaconInputError, match="'a' holds several matrices"):
        read_connectivity(tmp_path / "new.mat", key="a")
    # the hint indexes the axes that are not square
    scipy.io.savemat(tmp_path / "first.mat", {"b": np.zeros((2, 3, 3))})
    with pytest.raises(SpaconInputError, match=r"e\.g\. 'b\[0, :, :\]'"):
        read_connectivity(tmp_path / "first.mat")
    np.savez(tmp_path / "stack.npz", a=stack)
    assert np.allclose(dense(read_connectivity(tmp_path / "stack.npz", key="a[:, :, 2]")), 3 * M)
    # several text arrays of a name per row: no guess; names that repeat label nothing
    scipy.io.savemat(path, {"a": stack, "acronym": names, "name": names})
    assert read_connectivity(path, key="a[:, :, 0]").labels is None
    repeated = np.array([["VISp"], ["MOp"], ["VISp"]], dtype=object)
    scipy.io.savemat(path, {"W": M, "acronym": repeated})
    assert read_connectivity(path).labels is None


@pytest.mark.parametrize(
    "matrix,match",
    [
        (np.ones((2, 3)), "square"),
        (np.ones(4), "2-D"),
        (np.array([[1.0, np.nan], [0, 1]]), "NaN"),
        (np.array([[1.0, np.inf], [0, 1]]), "NaN or infinite"),
        (np.array([["a", "b"], ["c", "d"]]), "numeric"),
        (np.zeros((0, 0)), "empty"),
    ],
)
def test_validation_errors(matrix, match):
    with pytest.raises(SpaconInputError, match=match):
        Connectivity(matrix)


def test_file_errors(tmp_path):
    with pytest.raises(SpaconInputError, match="does not exist"):
        read_connectivity(tmp_path / "missing.npz")
    (tmp_path / "x.txt").write_text("1")
    with pytest.raises(SpaconInputError, match=r"unknown format; use one of [^(]*\.$"):
        read_connectivity(tmp_path / "x.txt")
    (tmp_path / "w.xlsx").write_bytes(b"PK")
    with pytest.raises(SpaconInputError, match=r"a spreadsheet: save its sheet as CSV"):
        read_connectivity(tmp_path / "w.xlsx")
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(SpaconInputError, match="is not a NumPy .npy file; it looks like text"):
        read_connectivity(tmp_path / "bad.npy")
    pd.DataFrame(M).to_csv(tmp_path / "csv.npz")  # a CSV with the wrong name
    with pytest.raises(SpaconInputError, match="not a NumPy .npz file .*a CSV"):
        read_connectivity(tmp_path / "csv.npz")
    (tmp_path / "cut.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(SpaconInputError, match="could not read"):
        read_connectivity(tmp_path / "cut.npz")
    pd.DataFrame(M, index=["a", "b", "c"], columns=["a", "b", "d"]).to_csv(tmp_path / "l.csv")
    with pytest.raises(SpaconInputError, match="labels differ"):
        read_connectivity(tmp_path / "l.csv")
    pd.DataFrame(M[:2], index=["a", "b"], columns=["a", "b", "c"]).to_csv(tmp_path / "r.csv")
    with pytest.raises(SpaconInputError, match="not square"):
        read_connectivity(tmp_path / "r.csv")


def test_duplicate_labels_rejected():
    with pytest.raises(SpaconInputError, match="not unique"):
        Connectivity(M, ["a", "a", "b"])


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_writing_onto_a_folder_says_so(tmp_path):
    import anndata as ad

    from spacon.report import write_report

    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "kept.txt").write_text("mine")
    adata = ad.AnnData(np.zeros((4, 1), dtype=np.float32), obsm={"spatial": np.zeros((4, 2))})
    adata.obs["spacon_domain"] = pd.Categorical(["0", "0", "1", "1"])
    with pytest.raises(SpaconInputError, match="is a folder, not a file"):
        write_report(adata, folder)
    assert [p.name for p in tmp_path.iterdir()] == ["results"]
    assert [p.name for p in folder.iterdir()] == ["kept.txt"]


def test_atomic_path_gives_the_usual_file_mode(tmp_path):
    import os

    with atomic_path(tmp_path / "x.txt") as tmp:
        tmp.write_text("ok")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "x.txt").stat().st_mode & 0o777 == 0o666 & ~mask


def test_plain_hdf5_labels_are_read_as_an_npz_s(tmp_path):
    """A ``labels`` dataset beside the matrix labels its rows (integer unit ids too); without
    one, the file's one text dataset with an entry per row does, unless the matrix was named."""
    order = np.array([2, 0, 1])
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["W"], f["labels"] = M, order
    conn = read_connectivity(tmp_path / "a.h5")
    assert list(conn.labels) == ["2", "0", "1"] and np.allclose(dense(conn), M)
    with h5py.File(tmp_path / "b.h5", "w") as f:
        f["group/W"], f["group/labels"] = M, np.array([b"VISp", b"MOs", b"CA1"])
        f["other"] = np.eye(2)
    assert list(read_connectivity(tmp_path / "b.h5", key="group/W").labels) == [
        "VISp", "MOs", "CA1"]
    with h5py.File(tmp_path / "c.h5", "w") as f:
        f["W"] = M
        f.create_dataset("acronym", data=["VISp", "MOs", "CA1"], dtype=h5py.string_dtype())
    assert list(read_connectivity(tmp_path / "c.h5").labels) == ["VISp", "MOs", "CA1"]
    assert read_connectivity(tmp_path / "c.h5", key="W").labels is None


def test_matlab_char_matrix_labels_v5_and_v73(tmp_path):
    """``char({'VISp', 'MOs', 'CA1'})``: a name per row, padded with blanks."""
    names = ["VISp", "MOs", "CA1"]
    scipy.io.savemat(tmp_path / "a.mat", {"W": M, "acronym": np.array(names)})
    assert list(read_connectivity(tmp_path / "a.mat").labels) == names
    padded = np.array([[ord(c) for c in n.ljust(4)] for n in names], dtype=np.uint16)
    with h5py.File(tmp_path / "b.mat", "w") as f:  # v7.3: MATLAB's column-major layout
        f.create_dataset("W", data=M.T).attrs["MATLAB_class"] = np.bytes_("double")
        f.create_dataset("acronym", data=padded.T).attrs["MATLAB_class"] = np.bytes_("char")
    conn = read_connectivity(tmp_path / "b.mat")
    assert list(conn.labels) == names and np.allclose(dense(conn), M)


@pytest.mark.parametrize("text, match", [
    (",A,B,A\nA,1,2,3\nB,4,5,6\nA,7,8,9\n", r"duplicate labels \(e.g. A\)"),
    (",A,B,C\nA,1,2,3\nB,4,5\nC,7,8,9\n", "row 3 has 3 entries, the other rows 4"),
    (",A,B,C\nA,1,2,3\nB,4,5,6,7\nC,7,8,9\n", "row 3 has 5 entries, the other rows 4"),
    (",A,B,C\nA,1,2,3\nB,4,x,6\nC,7,8,9\n", "row 3, column 3 is 'x', not a number"),
    ("1,2,3\n4,x,6\n7,8,9\n", "row 2, column 2 is 'x', not a number"),
    (",A,B,C,D,E\nA,1,2,3\nB,4,5,6\nC,7,8,9\n", "first row has 6 entries and the rows below 4"),
])
def test_labelled_tables_name_the_row_or_label_at_fault(tmp_path, text, match):
    (tmp_path / "c.csv").write_text(text)
    with pytest.raises(SpaconInputError, match=match) as err:
        read_connectivity(tmp_path / "c.csv")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text", [
    ",A,B,C,\nA,1,2,3,\nB,4,5,6,\nC,7,8,9,\n",  # a delimiter ending every row
    "A,B,C,\n1,2,3,\n4,5,6,\n7,8,9,\n",  # the same under a header of labels alone
    '"A"\t"B"\t"C"\n"A"\t1\t2\t3\n"B"\t4\t5\t6\n"C"\t7\t8\t9\n',  # R's write.table
])
def test_labelled_tables_as_spreadsheets_and_r_write_them(tmp_path, text):
    (tmp_path / "c.csv").write_text(text)
    conn = read_connectivity(tmp_path / "c.csv")
    assert list(conn.labels) == ["A", "B", "C"]
    assert np.array_equal(dense(conn), np.arange(1, 10).reshape(3, 3))


def test_r_write_table_with_numeric_labels(tmp_path):
    """Allen structure ids as labels, in R's layout (no corner): read as labels, not values."""
    (tmp_path / "ids.tsv").write_text(
        '"10"\t"20"\t"30"\n"30"\t0.7\t0.8\t0.9\n"10"\t0.1\t0.2\t0.3\n"20"\t0.4\t0.5\t0.6\n')
    conn = read_connectivity(tmp_path / "ids.tsv")
    assert list(conn.labels) == ["30", "10", "20"]
    assert np.allclose(dense(conn), [[0.9, 0.7, 0.8], [0.3, 0.1, 0.2], [0.6, 0.4, 0.5]])


@pytest.mark.parametrize("text, match", [
    ("A,B,C\nA,0,1,NA\nB,1,0,2\nC,3,2,0\n", "1 NaN or infinite values"),  # R writes NA
    ("A\tB\tC\nA\t0\t1\t\nB\t1\t0\t2\nC\t3\t2\t0\n", "1 NaN or infinite values"),
    ("A,B,C\nA,0,1,x\nB,1,0,2\nC,3,2,0\n", "row 2, column 4 is 'x', not a number"),
    (",A,B,C\nA,-nan,1,2\nB,1,None,2\nC,3,2,0\n", "on its diagonal alone"),  # pandas' NaN words
    ("1 0 0\n0 1 0\n0 0 1\n", "separated by spaces"),  # np.savetxt's default
    ("# exported\n,A,B\nA,0,1\nB,1,0\n", "starts with a comment line"),
])
def test_what_r_numpy_and_spreadsheets_write_is_named(tmp_path, text, match):
    (tmp_path / ("c.tsv" if "\t" in text else "c.csv")).write_text(text)
    with pytest.raises(SpaconInputError, match=match) as err:
        read_connectivity(tmp_path / ("c.tsv" if "\t" in text else "c.csv"))
    assert "\n" not in str(err.value)


def test_r_layout_with_a_trailing_delimiter(tmp_path):
    (tmp_path / "c.csv").write_text("A,B,C,\nA,1,2,3,\nB,4,5,6,\nC,7,8,9,\n")
    conn = read_connectivity(tmp_path / "c.csv")
    assert list(conn.labels) == ["A", "B", "C"]
    assert np.array_equal(dense(conn), np.arange(1, 10).reshape(3, 3))


def test_a_delimiter_ending_every_row_but_the_header(tmp_path):
    """An empty corner says the header is not R's: the rows' last, empty field is no column."""
    (tmp_path / "c.csv").write_text(",A,B,C\nA,1,2,3,\nB,4,5,6,\nC,7,8,9,\n")
    conn = read_connectivity(tmp_path / "c.csv")
    assert list(conn.labels) == ["A", "B", "C"]
    assert np.array_equal(dense(conn), np.arange(1, 10).reshape(3, 3))


def test_labels_that_are_not_one_per_row_label_nothing_or_are_refused(tmp_path):
    """An HDF5 ``labels`` that repeats (cluster ids) or has another length is not taken as
    the rows' labels (they match by position, as before it was read); a column of labels
    is; an .npz's 2-D labels are refused by name."""
    for labels in ([0, 0, 1], [0, 1]):
        with h5py.File(tmp_path / "a.h5", "w") as f:
            f["W"], f["labels"] = M, labels
        with pytest.warns(SpaconWarning, match=r"'labels' \(\d\) is not one distinct label per "
                          "row of the 3 x 3 matrix 'W', so it labels nothing") as said:
            assert read_connectivity(tmp_path / "a.h5").labels is None
        assert {w.filename for w in said} == {__file__}
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["W"], f["labels"] = M, np.array([[b"x"], [b"y"], [b"z"]])
    assert list(read_connectivity(tmp_path / "a.h5").labels) == ["x", "y", "z"]
    np.savez(tmp_path / "a.npz", W=M, labels=np.array([["x"], ["y"], ["z"]]))
    assert list(read_connectivity(tmp_path / "a.npz").labels) == ["x", "y", "z"]
    np.savez(tmp_path / "b.npz", W=M, labels=np.array([["x", "y", "z"], ["u", "v", "w"]]))
    with pytest.raises(SpaconInputError, match=r"a 1-D array; got an array of shape \(2, 3\)"):
        read_connectivity(tmp_path / "b.npz")


def test_matlab_cell_array_of_names_beside_a_char_matrix_of_others(tmp_path):
    """Acronyms in a cell array, full names in a char matrix: the cell array labels the
    rows, as it did before char matrices were read."""
    cells = np.empty((3, 1), dtype=object)
    cells[:, 0] = ["VISp", "MOs", "CA1"]
    scipy.io.savemat(tmp_path / "a.mat", {"W": M, "acronym": cells, "name": np.array(
        ["Primary visual area", "Secondary motor area", "Field CA1"])})
    assert list(read_connectivity(tmp_path / "a.mat").labels) == ["VISp", "MOs", "CA1"]
    padded = np.array([[ord(c) for c in n.ljust(4)] for n in ["VISp", "MOs", "CA1"]],
                      dtype=np.uint16)
    with h5py.File(tmp_path / "b.mat", "w") as f:  # names as wide as the matrix: still text
        f.create_dataset("W", data=np.eye(4)[:3, :3].T).attrs["MATLAB_class"] = np.bytes_(
            "double")
        f.create_dataset("acronym", data=padded[:, :3].T).attrs["MATLAB_class"] = np.bytes_(
            "char")
    assert list(read_connectivity(tmp_path / "b.mat").labels) == ["VIS", "MOs", "CA1"]


@pytest.mark.parametrize("name, text", [
    ("c.csv", "\n,A,B\nA,0,1\nB,1,0\n"),  # a blank first line
    ("c.tsv", "\nA\tB\nA\t0\t1\nB\t1\t0\n"),  # the same in R's layout
    ("c.csv", ",A,B\nA,0,1\n  \nB,1,0\n   \n"),  # lines of blanks, as pandas skips them
])
def test_blank_lines_are_skipped(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    conn = read_connectivity(tmp_path / name)
    assert list(conn.labels) == ["A", "B"] and np.array_equal(dense(conn), [[0, 1], [1, 0]])


@pytest.mark.parametrize("text, match", [
    (",A,B,C\nA,TRUE,FALSE,TRUE\nB,FALSE,TRUE,FALSE\nC,TRUE,TRUE,FALSE\n",
     r"row 2, column 2 is 'TRUE', not a number \(9 such"),  # words, even where all are
    (",A,B,C\nA,TRUE,0.5,TRUE\nB,FALSE,TRUE,FALSE\nC,TRUE,TRUE,FALSE\n",
     r"row 2, column 2 is 'TRUE', not a number \(8 such"),
    ("VISp,NAN,0.3,0.2\nMOs,0.1,0,0.2\nCA1,0.3,0.2,0\n", "on its diagonal alone"),  # NaN
    ("# VISp,MOp\n1,2\n3,4\n", "starts with a comment line"),  # np.savetxt(header=...)
])
def test_words_nan_spellings_and_headers_as_comments(tmp_path, text, match):
    (tmp_path / "c.csv").write_text(text)
    with pytest.raises(SpaconInputError, match=match):
        read_connectivity(tmp_path / "c.csv")


def test_a_number_pandas_leaves_as_text_is_read(tmp_path):
    (tmp_path / "c.csv").write_text(",A,B\nA,99999999999999999999,1\nB,1,0\n")
    assert dense(read_connectivity(tmp_path / "c.csv"))[0, 0] == pytest.approx(1e20, rel=1e-6)
