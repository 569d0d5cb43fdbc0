"""MERFISH cells of the Allen Brain Cell (ABC) atlas with their CCF coordinates and regions.

Reads the files as the atlas publishes them (``abc_atlas_access``: a download root that keeps the
relative paths of the release manifest), for the Zhuang coronal data set (``Zhuang-ABCA-1``,
the default) or the Allen MERFISH brain (``MERFISH-C57BL6J-638850``)::

    metadata/<dataset>/<version>/cell_metadata.csv          cell_label, brain_section_label,
                                                            x, y, z (section coordinates, mm), ...
    metadata/<dataset>-CCF/<version>/ccf_coordinates.csv    cell_label, x, y, z (CCF, mm),
                                                            parcellation_index
    metadata/<dataset>-CCF/<version>/reconstructed_coordinates.csv     (optional; mm)
    metadata/<dataset>-CCF/<version>/views/cell_metadata_with_parcellation_annotation.csv
        or metadata/Allen-CCF-2020/<version>/views/
           parcellation_to_parcellation_term_membership_acronym.csv
                                                            region acronyms per level
    expression_matrices/<dataset>/<version>/<name>-raw.h5ad  (or -log2.h5ad)

CCF coordinates are x antero-posterior, y dorso-ventral, z medio-lateral (left to right), in
millimetres; spacon stores micrometres.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from .. import _keys
from .._errors import SpaconInputError
from .._utils import check_option

logger = logging.getLogger(__name__)

ZHUANG = "Zhuang-ABCA-1"
ALLEN_MERFISH = "MERFISH-C57BL6J-638850"
CELL_METADATA = "cell_metadata.csv"
CCF_COORDINATES = "ccf_coordinates.csv"
RECONSTRUCTED = "reconstructed_coordinates.csv"
PARCELLATION_VIEW = "views/cell_metadata_with_parcellation_annotation.csv"
PARCELLATION_TERMS = "views/parcellation_to_parcellation_term_membership_acronym.csv"
LEVELS = ("organ", "category", "division", "structure", "substructure")
MM = 1000.0  # µm per mm


def read_abc_merfish(
    directory,
    *,
    dataset: str = ZHUANG,
    matrix: Literal["raw", "log2"] = "raw",
    sections=None,
    drop_unregistered: bool = False,
):
    """Read an ABC atlas MERFISH data set into one AnnData with CCF coordinates and regions.

    Parameters
    ----------
    directory
        The ABC download root (it holds ``metadata/`` and ``expression_matrices/``; see the
        module docstring for the files read). The newest version folder of each is used.
    dataset
        ``"Zhuang-ABCA-1"`` (Zhuang coronal, 1,122 genes) or ``"MERFISH-C57BL6J-638850"``
        (Allen, 500 genes), or any data set with the same layout.
    matrix
        ``"raw"``: counts in ``X``; ``"log2"``: the atlas's log2 expression in ``X`` (run spacon
        with ``--no-normalize``).
    sections
        Read only these ``brain_section_label`` values (default: all).
    drop_unregistered
        Cells without CCF coordinates (sections the atlas could not register) are an error
        unless this drops them; the number dropped is logged and kept in ``uns``.

    Returns
    -------
    AnnData with ``X`` (cells x genes, gene symbols as ``var_names``, Ensembl ids in
    ``var['gene_identifier']``); ``obsm['spatial']`` (µm: medio-lateral, dorso-ventral,
    antero-posterior, so that the first two columns lie in the coronal plane),
    ``obsm['ccf']`` (µm, CCF order x AP, y DV, z ML), ``obsm['reconstructed']`` (µm, when the
    file exists); ``obs['section']`` (ordered categorical, anterior to posterior), the cell
    metadata columns (section coordinates as ``x_section``, ``y_section``, ``z_section`` in mm),
    ``obs['parcellation_index']`` and region acronyms ``obs['parcellation_division']``,
    ``['parcellation_structure']``, ``['parcellation_substructure']`` (and organ, category);
    ``uns['abc_merfish']`` (data set, files read, units, cells dropped).
    """
    check_option("matrix", matrix, ("raw", "log2"))
    root = Path(directory)
    if not root.is_dir():
        raise SpaconInputError(f"ABC atlas directory {str(root)!r} does not exist.")
    files = _layout(root, dataset, matrix)
    cells = _cell_table(files, sections)
    cells, n_dropped = _registered(cells, drop_unregistered, files["ccf"].name)
    adata = _expression(files["expression"], cells.index, root)
    adata.obs = cells.loc[adata.obs_names].drop(columns=["x_ccf", "y_ccf", "z_ccf"])
    ccf = cells.loc[adata.obs_names, ["x_ccf", "y_ccf", "z_ccf"]].to_numpy(np.float64) * MM
    adata.obsm[_keys.CCF] = ccf.astype(np.float32)
    adata.obsm[_keys.SPATIAL] = ccf[:, [2, 1, 0]].astype(np.float32)
    if "reconstructed" in files:
        rec = pd.read_csv(files["reconstructed"], dtype={"cell_label": str}, index_col="cell_label")
        rec = _unique_cells(rec, files["reconstructed"]).reindex(adata.obs_names)
        rec = rec[["x", "y", "z"]].to_numpy(np.float64) * MM
        adata.obsm[_keys.RECONSTRUCTED_COORDS] = rec.astype(np.float32)
    adata.obs[_keys.SECTION] = _ordered_sections(adata.obs["brain_section_label"], ccf[:, 0])
    adata.uns["abc_merfish"] = {
        "dataset": dataset, "matrix": matrix, "units": "micrometre",
        "spatial_axes": ["medio-lateral", "dorso-ventral", "antero-posterior"],
        "files": [str(p.relative_to(root)) for p in files.values()],
        "unregistered_cells_dropped": int(n_dropped),
    }
    logger.info("ABC %s: %d cells x %d genes in %d sections", dataset, adata.n_obs, adata.n_vars,
                adata.obs[_keys.SECTION].cat.categories.size)
    return adata


def _newest(root: Path, pattern: str) -> list[Path]:
    """Files matching ``pattern`` (with a ``*`` version folder) in the newest version."""
    found = sorted(root.glob(pattern))
    if not found:
        return []
    version_of = {p: p.relative_to(root).parts[2] for p in found}
    newest = max(version_of.values())
    return [p for p in found if version_of[p] == newest]


def _layout(root: Path, dataset: str, matrix: str) -> dict[str, Path]:
    wanted = {
        "cells": f"metadata/{dataset}/*/{CELL_METADATA}",
        "ccf": f"metadata/{dataset}-CCF/*/{CCF_COORDINATES}",
        "expression": f"expression_matrices/{dataset}/*/*-{matrix}.h5ad",
    }
    files: dict[str, Path] = {}
    for name, pattern in wanted.items():
        found = _newest(root, pattern)
        if not found:
            raise SpaconInputError(
                f"{root} has no {pattern.replace('*/', '<version>/', 1)}; the ABC atlas layout "
                f"needs it for {dataset} (download it with abc_atlas_access)."
            )
        if len(found) > 1:
            raise SpaconInputError(
                f"{root} has several {pattern} files in the newest version "
                f"({', '.join(p.name for p in found)}); keep one."
            )
        files[name] = found[0]
    ccf_dir = files["ccf"].parent
    if (ccf_dir / RECONSTRUCTED).is_file():
        files["reconstructed"] = ccf_dir / RECONSTRUCTED
    view = _newest(root, f"metadata/{dataset}-CCF/*/{PARCELLATION_VIEW}")
    terms = _newest(root, f"metadata/Allen-CCF-2020/*/{PARCELLATION_TERMS}")
    if not view and not terms:
        raise SpaconInputError(
            f"{root} has neither metadata/{dataset}-CCF/<version>/{PARCELLATION_VIEW} nor "
            f"metadata/Allen-CCF-2020/<version>/{PARCELLATION_TERMS}; one is needed for the "
            "cells' region labels."
        )
    files["regions"] = view[0] if view else terms[0]
    return files


def _read_csv(path: Path, columns: set[str]) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype={"cell_label": str})
    except Exception as err:
        raise SpaconInputError(f"could not read {path}: {err}") from err
    missing = sorted(columns - set(table.columns))
    if missing:
        raise SpaconInputError(f"{path.name} lacks the column(s) {', '.join(missing)}.")
    if len(table) and table[sorted(columns)].iloc[-1].isna().any():
        raise SpaconInputError(f"the last row of {path} is incomplete: the file was cut short "
                               "(an interrupted download?); download it again.")
    return table


def _cell_table(files: dict[str, Path], sections) -> pd.DataFrame:
    cells = _read_csv(files["cells"], {"cell_label", "brain_section_label", "x", "y", "z"})
    cells = cells.set_index("cell_label").rename(
        columns={"x": "x_section", "y": "y_section", "z": "z_section"}
    )
    cells = _unique_cells(cells, files["cells"])
    if sections is not None:
        wanted = pd.Index([str(s) for s in sections])
        unknown = wanted.difference(cells["brain_section_label"].astype(str).unique())
        if len(unknown):
            raise SpaconInputError(f"unknown brain_section_label(s): {', '.join(unknown[:5])}.")
        cells = cells[cells["brain_section_label"].astype(str).isin(wanted)]
    ccf = _read_csv(files["ccf"], {"cell_label", "x", "y", "z", "parcellation_index"})
    ccf = _unique_cells(ccf.set_index("cell_label"), files["ccf"])
    ccf = ccf[["x", "y", "z", "parcellation_index"]]
    ccf = ccf.rename(columns={"x": "x_ccf", "y": "y_ccf", "z": "z_ccf"})
    cells = cells.drop(columns=[c for c in ccf.columns if c in cells.columns]).join(ccf)
    return _join_regions(cells, files["regions"])


def _unique_cells(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``table`` (indexed by cell_label), refused where it lists a cell twice: rows repeated by
    a resumed or concatenated download.
    """
    twice = table.index[table.index.duplicated()]
    if len(twice):
        raise SpaconInputError(
            f"{path.name} lists {len(set(twice))} cell_label(s) more than once (e.g. "
            f"{twice[0]}): an interrupted or concatenated download? Download it again.")
    return table


def _join_regions(cells: pd.DataFrame, path: Path) -> pd.DataFrame:
    # region columns of the user's own (a joined table saved back) give way to the file's
    cells = cells.drop(columns=[c for c in cells.columns if str(c).startswith("parcellation_")
                                and c != "parcellation_index"])
    if path.name == Path(PARCELLATION_VIEW).name:
        table = _read_csv(path, {"cell_label", "parcellation_division"})
        keep = [f"parcellation_{level}" for level in LEVELS if f"parcellation_{level}" in table]
        regions = table.set_index("cell_label")[keep]
        return _all_labelled(cells.join(regions), path, "cell_label")
    table = _read_csv(path, {"parcellation_index", "division", "structure", "substructure"})
    keep = [level for level in LEVELS if level in table]
    regions = table.set_index("parcellation_index")[keep].add_prefix("parcellation_")
    joined = cells.join(regions, on="parcellation_index")
    return _all_labelled(joined, path, "parcellation_index")


def _all_labelled(cells: pd.DataFrame, path: Path, key: str) -> pd.DataFrame:
    """Refuse cells that ``path`` gives no region: their ``key`` is missing from it."""
    unlabelled = cells["parcellation_division"].isna()
    if "x_ccf" in cells:  # cells without coordinates have no region either (dropped later)
        unlabelled &= cells[["x_ccf", "y_ccf", "z_ccf"]].notna().all(axis=1)
    if unlabelled.any():
        example = cells.index[unlabelled][0] if key == "cell_label" else \
            cells.loc[unlabelled, key].iloc[0]
        raise SpaconInputError(
            f"{int(unlabelled.sum())} of {len(cells)} cells have no region in {path.name}: "
            f"their {key} (e.g. {example!r}) is not in it. The file was cut short (download "
            "it again) or is of another release than the cells.")
    return cells


def _registered(cells: pd.DataFrame, drop: bool, name: str):
    # NaN or infinite: not placed in the atlas
    xyz = cells[["x_ccf", "y_ccf", "z_ccf"]].apply(pd.to_numeric, errors="coerce")
    ok = np.isfinite(xyz.to_numpy(np.float64)).all(axis=1)
    n_bad = int((~ok).sum())
    if ok.sum() == 0:
        raise SpaconInputError(f"no cell has CCF coordinates in {name}; nothing to place.")
    if n_bad and not drop:
        raise SpaconInputError(
            f"{n_bad} of {len(cells)} cells have no CCF coordinates (NaN or infinite) in {name} (e.g. "
            f"{cells.index[~ok][0]!r}); drop them with drop_unregistered=True, unless {name} "
            "was cut short by an interrupted download (then download it again)."
        )
    if n_bad:
        logger.info("dropped %d cells without CCF coordinates", n_bad)
    return cells[ok], n_bad


def _expression(path: Path, cell_labels: pd.Index, root: Path):
    import anndata as ad

    try:
        backed = ad.read_h5ad(path, backed="r")
    except Exception as err:
        raise SpaconInputError(f"could not read {path}: {err}") from err
    try:
        position = backed.obs_names.get_indexer(cell_labels)
        if (position < 0).any():
            missing = cell_labels[position < 0]
            raise SpaconInputError(
                f"{len(missing)} cells of the metadata are not in {path.relative_to(root)} "
                f"(e.g. {missing[0]!r}); the files do not belong to one release."
            )
        adata = _read_rows(backed, np.sort(position))
    finally:
        backed.file.close()
    adata.obs = adata.obs.iloc[:, :0]
    if "gene_symbol" in adata.var and adata.var["gene_symbol"].is_unique:
        adata.var["gene_identifier"] = adata.var_names.astype(str)
        adata.var_names = adata.var["gene_symbol"].astype(str).to_numpy()
    return adata


def _read_rows(backed, rows: np.ndarray, values_per_block: float = 2e8):
    """Rows of a backed AnnData, read in contiguous blocks (fancy-indexing millions of rows of
    an HDF5 file one by one is far slower, and the whole matrix may not fit in memory).
    """
    import anndata as ad

    block = max(1, int(values_per_block // max(1, backed.n_vars)))
    parts = []
    for start in range(0, backed.n_obs, block):
        stop = start + block
        take = rows[(rows >= start) & (rows < stop)]
        if len(take):
            parts.append(backed[start:stop].to_memory()[take - start])
    if len(parts) == 1:
        return parts[0].copy()
    return ad.concat(parts, merge="same")


def _ordered_sections(labels: pd.Series, anterior_posterior: np.ndarray) -> pd.Categorical:
    """Sections ordered by their cells' median CCF antero-posterior position."""
    labels = labels.astype(str).to_numpy()
    median = pd.Series(anterior_posterior).groupby(labels).median()
    order = sorted(median.index, key=lambda s: (median[s], s))
    return pd.Categorical(labels, categories=order, ordered=True)
