"""The ENIGMA toolbox's human cortex read and prepared from small files in its real layout."""

import base64
import zlib

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import spacon
from spacon import SpaconInputError
from spacon.cli import main
from spacon.datasets._enigma import APARC_CODES
from spacon.io._gifti import read_gifti_points

REGIONS = [f"{side}_region{i:02d}" for side in "LR" for i in range(34)]
NO_SAMPLES = ["R_region05", "R_region20"]  # rows of NaN, as the AHBA table's two regions


def _gifti(path, points, encoding):
    if encoding == "ASCII":
        data = " ".join(f"{v:.6f}" for v in points.ravel())
    else:
        data = base64.b64encode(zlib.compress(points.astype("<f4").tobytes())).decode()
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<GIFTI Version="1.0" NumberOfDataArrays="2">\n'
        '<DataArray Intent="NIFTI_INTENT_POINTSET" DataType="NIFTI_TYPE_FLOAT32" '
        f'ArrayIndexingOrder="RowMajorOrder" Dimensionality="2" Dim0="{len(points)}" Dim1="3" '
        f'Encoding="{encoding}" Endian="LittleEndian"><Data>{data}</Data></DataArray>\n'
        '<DataArray Intent="NIFTI_INTENT_TRIANGLE" DataType="NIFTI_TYPE_INT32" '
        'Dimensionality="2" Dim0="1" Dim1="3" Encoding="ASCII"><Data>0 1 2</Data></DataArray>\n'
        "</GIFTI>\n")


@pytest.fixture
def enigma(tmp_path):
    """The toolbox's folders (datasets/matrices/hcp_connectivity, parcellations, surfaces)
    and the AHBA table beside them; each region's vertices lie around a known centre."""
    rng = np.random.default_rng(0)
    root = tmp_path / "enigma"
    hcp = root / "datasets" / "matrices" / "hcp_connectivity"
    for folder in (hcp, root / "datasets" / "parcellations", root / "datasets" / "surfaces",
                   root / "ahba"):
        folder.mkdir(parents=True)
    pd.DataFrame([REGIONS]).to_csv(hcp / "funcLabels_ctx.csv", header=False, index=False)
    fc = rng.uniform(-0.2, 1, (68, 68))
    fc = (fc + fc.T) / 2
    np.fill_diagonal(fc, 0)
    np.savetxt(hcp / "funcMatrix_ctx.csv", fc, delimiter=",")
    np.savetxt(hcp / "strucMatrix_ctx.csv", np.abs(fc) * 3, delimiter=",")
    genes = [f"GENE{i}" for i in range(12)]
    expr = pd.DataFrame(rng.uniform(0, 1, (70, 12)), columns=genes,
                        index=REGIONS + ["Laccumb", "Rthal"])
    expr.loc[NO_SAMPLES] = np.nan
    expr.rename_axis("label").reset_index().to_csv(root / "ahba" / "allgenes_stable_r0.6.csv",
                                                   index=False)
    centres = rng.normal(0, 40, (68, 3))
    labels, points = [], []
    for code, centre in zip(APARC_CODES, centres):
        offsets = rng.normal(0, 2, (3, 3))
        offsets -= offsets.mean(axis=0)  # each region's vertices average to its centre
        points.append(centre + offsets)
        labels += [code] * 3
    points, labels = np.vstack(points), np.array(labels)
    # unlabelled (0) and corpus callosum (4, 39) vertices, which belong to no region
    left = labels <= 35
    lh = np.vstack([points[left], [[0, 0, 0], [1, 1, 1]]])
    rh = np.vstack([points[~left], [[2, 2, 2]]])
    vertex_labels = np.concatenate([labels[left], [0, 4], labels[~left], [39]])
    pd.Series(vertex_labels).to_csv(root / "datasets" / "parcellations" / "aparc_fsa5.csv",
                                    header=False, index=False)
    _gifti(root / "datasets" / "surfaces" / "fsa5_lh.gii", lh, "GZipBase64Binary")
    _gifti(root / "datasets" / "surfaces" / "fsa5_rh.gii", rh, "ASCII")
    return root, fc, expr, centres


def test_read_enigma_keeps_regions_with_expression_at_their_centroids(enigma):
    root, fc, expr, centres = enigma
    adata, matrices = spacon.datasets.read_enigma(root)
    kept = [r for r in REGIONS if r not in NO_SAMPLES]
    assert list(adata.obs_names) == kept and adata.uns["enigma"]["dropped"] == NO_SAMPLES
    assert adata.n_vars == 12 and list(adata.obs["hemisphere"][:1]) == ["L"]
    np.testing.assert_allclose(adata.X, expr.loc[kept].to_numpy(), rtol=1e-6)
    keep = [REGIONS.index(r) for r in kept]
    np.testing.assert_allclose(adata.obsm["spatial"], centres[keep], atol=1e-4)
    for kind, m in (("functional", fc), ("structural", np.abs(fc) * 3)):
        assert list(matrices[kind].labels) == kept
        np.testing.assert_allclose(matrices[kind].matrix.toarray(), m[np.ix_(keep, keep)])
    with pytest.raises(SpaconInputError, match=r"holds no allgenes_stable_r0\.8\.csv"):
        spacon.datasets.read_enigma(root, stability=0.8)
    assert "ahba" not in adata.layers and adata.uns["enigma"]["shift"] == 0.0
    # a table with negative values (z-scores) is shifted to >= 0, as published in a layer
    table = root / "ahba" / "allgenes_stable_r0.6.csv"
    (expr - 0.5).rename_axis("label").reset_index().to_csv(table, index=False)
    shifted, _ = spacon.datasets.read_enigma(root)
    assert shifted.X.min() == pytest.approx(0, abs=1e-6)
    assert shifted.uns["enigma"]["shift"] == pytest.approx(-float(shifted.layers["ahba"].min()))
    np.testing.assert_allclose(shifted.layers["ahba"], adata.X - 0.5, atol=1e-6)


def test_gifti_points_read_both_encodings_and_refuse_what_is_not_a_surface(enigma, tmp_path):
    root = enigma[0]
    lh = read_gifti_points(root / "datasets" / "surfaces" / "fsa5_lh.gii")
    rh = read_gifti_points(root / "datasets" / "surfaces" / "fsa5_rh.gii")
    assert lh.shape[1] == rh.shape[1] == 3 and lh.dtype == np.float64
    # big-endian, plain base64, column-major: the same points
    points = np.arange(12, dtype=np.float64).reshape(4, 3)
    for endian, encoding, order, data in (
            ("BigEndian", "Base64Binary", "RowMajorOrder", points.astype(">f4").tobytes()),
            ("LittleEndian", "GZipBase64Binary", "ColumnMajorOrder",
             zlib.compress(points.T.astype("<f4").tobytes()))):
        (tmp_path / "p.gii").write_text(
            '<GIFTI><DataArray Intent="NIFTI_INTENT_POINTSET" DataType="NIFTI_TYPE_FLOAT32" '
            f'ArrayIndexingOrder="{order}" Dimensionality="2" Dim0="4" Dim1="3" '
            f'Encoding="{encoding}" Endian="{endian}"><Data>{base64.b64encode(data).decode()}'
            "</Data></DataArray></GIFTI>")
        np.testing.assert_array_equal(read_gifti_points(tmp_path / "p.gii"), points)
    (tmp_path / "bad.gii").write_text("not xml")
    with pytest.raises(SpaconInputError, match="is not a GIFTI surface"):
        read_gifti_points(tmp_path / "bad.gii")


def test_prepare_enigma_writes_what_run_reads(enigma, tmp_path, capsys):
    root = enigma[0]
    out = tmp_path / "human"
    assert main(["prepare", "enigma", "--data", str(root), "--out", str(out)]) == 0
    assert "66 regions x 12 genes (R_region05, R_region20 left out" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "README.txt", "functional.npz", "human_regions.h5ad", "run.toml", "structural.npz"]
    readme = (out / "README.txt").read_text()
    assert "spacon run --adata" in readme and "--no-normalize" in readme
    regions = ad.read_h5ad(out / "human_regions.h5ad")
    assert regions.n_obs == 66 and "spatial" in regions.obsm
    assert spacon.io.read_connectivity(out / "structural.npz").n == 66
    # spacon run reads the prepared files (the smoothing encoder: no training here)
    result = tmp_path / "result"
    assert main(["run", "--config", str(out / "run.toml"), "--encoder", "smoothing",
                 "--n-domains", "3", "--figures", "none", "--no-report", "--quiet", "--out",
                 str(result)]) == 0
    assert ad.read_h5ad(result / "result.h5ad").n_obs == 66
    # written once: again only with --overwrite; a missing file named, nothing written
    assert main(["prepare", "enigma", "--data", str(root), "--out", str(out)]) == 2
    assert "output exists already" in capsys.readouterr().err
    (root / "datasets" / "parcellations" / "aparc_fsa5.csv").unlink()
    assert main(["prepare", "enigma", "--data", str(root), "--out", str(tmp_path / "x")]) == 2
    assert "holds no aparc_fsa5.csv" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
