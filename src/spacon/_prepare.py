"""``spacon prepare abc``: ABC atlas MERFISH cells + an Allen connectome -> the files `run` reads."""

from __future__ import annotations

import logging
import shlex
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from . import _keys
from ._errors import SpaconInputError
from ._utils import whole_number
from .datasets._tracer import CCF_MIDLINE

logger = logging.getLogger(__name__)

REGION_KEYS = ["parcellation_substructure", "parcellation_structure", "parcellation_division"]
H5AD, CONNECTOME, README, CONFIG = "abc_merfish.h5ad", "connectome.npz", "README.txt", "run.toml"

PREPARE_README = """\
ABC atlas MERFISH cells and an Allen connectome, written by `spacon prepare abc` (spacon {version}).

Files
  {h5ad}
      {n_cells} cells x {n_genes} genes of {dataset} ({matrix} matrix in X), in {n_sections} coronal
      sections; obs['section'] anterior to posterior.
  {conn}
      {n_units} x {n_units} {kind} connectivity (rows = sources) with
      {nnz:,} connections, unit labels in its `labels` array; obs['unit'] maps each cell to its
      unit ({assigned}).

Coordinates: obsm['spatial'] = (medio-lateral, dorso-ventral, antero-posterior) in micrometres
from the atlas's CCF coordinates (which are in mm, CCF order AP, DV, ML: kept in obsm['ccf'] in
micrometres). Region labels: obs['parcellation_division'], ['parcellation_structure'],
['parcellation_substructure'].
{dropped}
Run spacon on it (run.toml holds the same options: spacon run --config {config_q} --out result):
  spacon run --adata {h5ad_q} --connectivity {conn_q} --unit-key unit \\
      --section-key section --radius {radius:.1f} --z-radius {radius:.1f}{normalize} \\
      --alpha 0 1 --out result
--radius is 1.5 x the median distance of a cell to its 8th nearest neighbour in its section
({knn:.1f} µm here); --z-radius links cells of adjacent sections within the same in-plane radius.
"""


def prepare_abc(abc_dir, connectome, out, *, dataset: str = "Zhuang-ABCA-1", matrix: str = "raw",
                sections=None, drop_unregistered: bool = False, max_distance: float = 150.0,
                hemisphere: str = "mirror", threshold: float | None = None,
                top_k: int | None = 50, overwrite: bool = False) -> dict:
    """Read the ABC cells, assign them to the connectome's units and write the run inputs.

    Every output is computed before the first file is written, and the files are moved into
    ``out`` together: on an error or Ctrl-C nothing is written.
    ``connectome`` is a voxel model cache directory (``voxel_model/`` inside), a region-level
    tracer directory (``sc_oh2012.mat``, :func:`~spacon.datasets.read_mouse_tracer`), or a
    labelled region-level connectivity file (:func:`~spacon.io.read_connectivity`).
    Returns a summary (files written, cells, units, connections).
    """
    from . import __version__
    from .datasets import read_abc_merfish, read_mouse_tracer
    from .io import read_connectivity, read_voxel_model
    from .pp import assign_units

    if top_k is not None:
        top_k = whole_number("top_k", top_k)
    out = Path(out)
    files = [out / H5AD, out / CONNECTOME, out / README, out / CONFIG]
    check_outputs(out, files, overwrite)
    connectome = Path(connectome)
    if not connectome.exists():
        raise SpaconInputError(f"connectome {str(connectome)!r} does not exist.")
    if connectome.name == "voxel_model" or connectome.name == "sc_oh2012.mat":
        raise SpaconInputError(
            f"--connectome {str(connectome)!r}: give the folder that holds it, "
            f"{str(connectome.parent)!r} (the voxel model's cache, or the tracer download).")
    adata = read_abc_merfish(abc_dir, dataset=dataset, matrix=matrix, sections=sections,
                             drop_unregistered=drop_unregistered)
    if (connectome / "voxel_model").is_dir():
        model = read_voxel_model(connectome)
        assign_units(adata, model, max_distance=max_distance, hemisphere=hemisphere, drop=True)
        conn = model.unit_graph(adata.obs[_keys.UNIT].cat.categories, threshold=threshold,
                                top_k=top_k)
        if conn.matrix.nnz == 0:
            raise SpaconInputError(
                f"the voxel graph kept no connections (threshold {threshold}): lower "
                "--threshold, or keep each unit's strongest with --top-k.")
        kind = "voxel-level (Allen voxel model, 100 µm)"
    else:
        if connectome.is_dir():  # both hemispheres' units when mirroring: ipsi- and contra-
            conn, _ = read_mouse_tracer(  # lateral connections between the cells' sides
                connectome, hemispheres="both" if hemisphere == "mirror" else "ipsi")
        else:
            conn = read_connectivity(connectome)
        if conn.labels is None:
            raise SpaconInputError(f"{connectome.name} has no unit labels; a region-level "
                                   "connectome needs region acronyms to match the cells.")
        assign_units(adata, conn, region_key=REGION_KEYS, hemisphere=hemisphere,
                     midline=CCF_MIDLINE, drop=True)
        sided = adata.uns[_keys.assignment(_keys.UNIT)]["sided_units"]
        kind = ("region-level, a unit per region and hemisphere (REGION-L/-R: ipsilateral "
                "connections within a side, contralateral between)" if sided else
                "region-level, one unit per region shared by both hemispheres")
    info = adata.uns[_keys.assignment(_keys.UNIT)]
    for column in adata.obs.columns:
        if adata.obs[column].dtype == np.dtype(object):
            adata.obs[column] = adata.obs[column].astype("category")
    knn = _neighbour_distance(adata)
    unregistered = int(adata.uns["abc_merfish"]["unregistered_cells_dropped"])
    text = PREPARE_README.format(
        version=__version__, h5ad=files[0].as_posix(), conn=files[1].as_posix(),
        **{f"{name}_q": shlex.quote(path.as_posix())  # the command's paths, quoted for a shell
           for name, path in (("h5ad", files[0]), ("conn", files[1]), ("config", files[3]))},
        n_cells=adata.n_obs,
        n_genes=adata.n_vars, dataset=dataset, matrix=matrix, kind=kind,
        n_sections=adata.obs[_keys.SECTION].cat.categories.size, n_units=conn.n,
        nnz=conn.matrix.nnz, assigned=info["method"], knn=knn, radius=1.5 * knn,
        normalize=" --no-normalize" if matrix == "log2" else "",
        dropped=(f"{info['n_dropped']} cells without a unit were dropped "
                 f"({info['method']}).\n" if info["n_dropped"] else "")
        + (f"{unregistered} cells without CCF coordinates were dropped "
           "(--drop-unregistered).\n" if unregistered else ""),
    )
    config = _run_config(Path(files[0].name), Path(files[1].name), 1.5 * knn, matrix == "log2")
    # the config names its files relative to its own folder, as spacon run reads them
    write_together(out, {H5AD: adata, CONNECTOME: conn, README: text, CONFIG: config})
    return {"files": [str(f) for f in files], "n_cells": adata.n_obs, "n_units": conn.n,
            "n_connections": int(conn.matrix.nnz), "n_dropped": info["n_dropped"],
            "n_unregistered_dropped": unregistered}


def check_outputs(out: Path, files: list[Path], overwrite: bool) -> None:
    """Refuse an ``out`` that is a file, a folder where an output file goes, or outputs that
    exist already (unless ``overwrite``), before anything is read.
    """
    if out.exists() and not out.is_dir():
        raise SpaconInputError(f"--out {str(out)!r} exists and is not a directory.")
    blocked = [str(f) for f in files if f.is_dir()]
    if blocked:
        raise SpaconInputError(f"{', '.join(blocked)}: a folder where a file goes; choose another "
                               "--out or move the folder.")
    existing = [str(f) for f in files if f.exists()]
    if existing and not overwrite:
        raise SpaconInputError(f"output exists already: {', '.join(existing)}; choose another "
                               "--out or pass --overwrite.")


def write_together(out: Path, contents: dict) -> None:
    """Files into ``out`` all at once (:mod:`spacon.io._staged`), each name's content an
    AnnData (``.h5ad``), a :class:`~spacon.io.Connectivity` (``.npz``) or text: a failure or
    Ctrl-C while writing leaves ``out`` as it was (a folder made for them removed), never new
    cells beside an earlier connectome.
    """
    from ._pipeline import no_empty_output_on_error
    from .io import save_npz, write_h5ad, write_text
    from .io._atomic import make_folder
    from .io._staged import staged_outputs

    with no_empty_output_on_error(out):
        make_folder(out)
        with staged_outputs(out) as stage:
            for name, content in contents.items():
                if isinstance(content, str):
                    write_text(content, stage.path / name)
                elif hasattr(content, "obs"):
                    write_h5ad(content, stage.path / name)
                else:
                    save_npz(stage.path / name, content.matrix, content.labels)


def _run_config(h5ad: Path, connectome: Path, radius: float, log2: bool) -> str:
    """The `spacon run` options for the prepared files, as TOML (paths relative to the
    config's folder, see :meth:`spacon._pipeline.RunConfig.from_toml`).
    """
    lines = [f'adata = "{h5ad.as_posix()}"', f'connectivity = "{connectome.as_posix()}"',
             'unit_key = "unit"', 'section_key = "section"', f"radius = {radius:.1f}",
             f"z_radius = {radius:.1f}", "alpha = [0.0, 1.0]"]
    if log2:
        lines.append("no_normalize = true")
    return "\n".join(lines) + "\n"


def _neighbour_distance(adata, k: int = 8, sample: int = 20000) -> float:
    """Median distance of a cell to its k-th nearest neighbour within its section (µm)."""
    coords = np.asarray(adata.obsm[_keys.SPATIAL])[:, :2]
    sections = adata.obs[_keys.SECTION].cat.codes.to_numpy()
    rng = np.random.default_rng(0)
    distances = []
    for s in np.unique(sections):
        points = coords[sections == s]
        if len(points) <= k:
            continue
        query = points[rng.choice(len(points), min(len(points), sample), replace=False)]
        distances.append(cKDTree(points).query(query, k=k + 1)[0][:, -1])
    if not distances:
        raise SpaconInputError(f"every section has {k} cells or fewer; too few for a spatial graph.")
    return float(np.median(np.concatenate(distances)))
