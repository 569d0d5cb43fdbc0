"""Human cortex from the ENIGMA toolbox: group HCP connectivity and Allen Human Brain Atlas
expression between the 68 Desikan-Killiany regions, with region centroids on fsaverage5.

The files, as the toolbox and its data repository ship them (any folder layout below the
directory given; each is found by its name):

* ``funcLabels_ctx.csv``, ``funcMatrix_ctx.csv``, ``strucMatrix_ctx.csv``: the region names and
  the HCP functional (Fisher z) and structural (log streamline) connectivity
  (``enigmatoolbox/datasets/matrices/hcp_connectivity/``);
* ``allgenes_stable_r0.6.csv`` (or ``r0.8``): abagen-processed AHBA expression, a ``label``
  column of region names (``enigma-extra``'s ``ahba/``, which ``load_expression`` fetches);
* ``aparc_fsa5.csv`` and ``fsa5_lh.gii`` / ``fsa5_rh.gii``: the Desikan-Killiany label of
  each fsaverage5 vertex and the two surfaces (``datasets/parcellations/`` and
  ``datasets/surfaces/``), from which each region's centroid is taken.

Larivière et al. 2021, "The ENIGMA Toolbox: multiscale neural contextualization of
multisite neuroimaging datasets", Nature Methods 18: 698-700; the files are BSD-3-Clause.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._errors import SpaconInputError

N_REGIONS = 68
# aparc's vertex labels: left 1..35, right 36..70; 4 and 39 are the corpus callosum, which the
# 68 regions (in aparc's order) leave out; 0 is no region
APARC_CODES = [c for c in range(1, 71) if c not in (4, 39)]
STABILITIES = (0.6, 0.8)


def find_file(directory: Path, name: str, source: str) -> Path:
    """``name`` anywhere below ``directory`` (the shallowest, then in name order)."""
    found = sorted(directory.rglob(name), key=lambda p: (len(p.parts), str(p)))
    if not found:
        raise SpaconInputError(f"{str(directory)!r} holds no {name} ({source}).")
    return found[0]


def read_enigma(directory, *, stability: float = 0.6):
    """Read the ENIGMA toolbox's human cortex data (see the module docstring for the files).

    Parameters
    ----------
    directory
        A folder holding the files, in any layout below it.
    stability
        The AHBA gene set: genes whose differential stability is above 0.6 (1,645 genes) or
        0.8.

    Returns
    -------
    ``(adata, connectivities)``: regions x genes, the regions with expression (2 of the 68
    have no AHBA samples and are left out, named in ``uns['enigma']['dropped']``); ``X`` is
    the scaled expression as published (abagen's, from 0 to 1), or plus the constant that
    makes it >= 0 where a table holds negatives (``uns['enigma']['shift']``; then
    ``layers['ahba']`` holds it as published), ``obs['hemisphere']``
    (``L``/``R``), ``obsm['spatial']`` the region centroids on fsaverage5 (mm, MNI-like: x
    left to right, 0 at the midline). ``connectivities``: ``{"functional": ...,
    "structural": ...}``, :class:`~spacon.io.Connectivity` between those regions, labelled
    by region name (= ``obs_names``), as published (negatives already zeroed).
    """
    import anndata as ad
    import pandas as pd

    from ..io import Connectivity
    from ..io._gifti import read_gifti_points

    directory = Path(directory)
    if not directory.is_dir():
        raise SpaconInputError(f"{str(directory)!r} is not a folder.")
    if stability not in STABILITIES:
        raise SpaconInputError(f"stability must be one of {STABILITIES}, got {stability!r}.")
    hcp = "the ENIGMA toolbox's datasets/matrices/hcp_connectivity"
    labels_file = find_file(directory, "funcLabels_ctx.csv", hcp)
    regions = [str(r).strip() for r in pd.read_csv(labels_file, header=None).iloc[0]]
    if len(regions) != N_REGIONS or not all(r[:2] in ("L_", "R_") for r in regions):
        raise SpaconInputError(f"{labels_file.name} names {len(regions)} regions; the "
                               f"Desikan-Killiany cortex has {N_REGIONS} (L_... then R_...).")
    expression_name = f"allgenes_stable_r{stability}.csv"
    table = pd.read_csv(find_file(directory, expression_name,
                                  "ENIGMA's AHBA data: enigma-extra/ahba, fetched by "
                                  "enigmatoolbox.datasets.load_expression"))
    if "label" not in table.columns:
        raise SpaconInputError(f"{expression_name} has no 'label' column of region names.")
    table = table.set_index(table["label"].astype(str).str.strip()).drop(columns="label")
    missing = [r for r in regions if r not in table.index]
    if len(missing) == N_REGIONS:
        raise SpaconInputError(f"{expression_name} names none of the {N_REGIONS} regions of "
                               f"{labels_file.name} (e.g. {regions[0]!r}).")
    values = table.reindex(regions).apply(pd.to_numeric, errors="coerce")
    kept = [r for r in regions if r in table.index and values.loc[r].notna().all()]
    dropped = [r for r in regions if r not in kept]
    keep = [regions.index(r) for r in kept]
    centroids = region_centroids(
        np.vstack([read_gifti_points(find_file(directory, f"fsa5_{side}.gii",
                                               "the ENIGMA toolbox's datasets/surfaces"))
                   for side in ("lh", "rh")]),
        pd.read_csv(find_file(directory, "aparc_fsa5.csv",
                              "the ENIGMA toolbox's datasets/parcellations"),
                    header=None)[0].to_numpy())
    ahba = values.loc[kept].to_numpy(np.float32)
    shift = max(0.0, -float(ahba.min()))  # (abagen's scaled values are in [0, 1] already)
    adata = ad.AnnData(
        ahba + np.float32(shift),
        obs=pd.DataFrame({"hemisphere": pd.Categorical([r[0] for r in kept])}, index=kept),
        var=pd.DataFrame(index=values.columns.astype(str)),
        layers={"ahba": ahba} if shift else None)
    adata.obsm["spatial"] = centroids[keep]
    adata.uns["enigma"] = {"dropped": dropped, "stability": stability, "shift": shift}
    matrices = {}
    for kind, name in (("functional", "funcMatrix_ctx.csv"), ("structural", "strucMatrix_ctx.csv")):
        m = pd.read_csv(find_file(directory, name, hcp), header=None).to_numpy(np.float64)
        if m.shape != (N_REGIONS, N_REGIONS):
            raise SpaconInputError(f"{name} is {m.shape[0]} x {m.shape[1]}, not "
                                   f"{N_REGIONS} x {N_REGIONS} as {labels_file.name}.")
        matrices[kind] = Connectivity(m[np.ix_(keep, keep)], np.array(kept))
    return adata, matrices


def region_centroids(vertices: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mean vertex position of each Desikan-Killiany region (68 x 3, in aparc's order) from
    both hemispheres' vertices (left then right) and their aparc labels.
    """
    labels = np.asarray(labels)
    if len(labels) != len(vertices):
        raise SpaconInputError(f"aparc_fsa5.csv labels {len(labels)} vertices; the two "
                               f"surfaces have {len(vertices)}.")
    empty = [c for c in APARC_CODES if not (labels == c).any()]
    if empty:
        raise SpaconInputError(f"aparc_fsa5.csv labels no vertex with region code(s) "
                               f"{empty[:5]}: is it the Desikan-Killiany (aparc) parcellation?")
    return np.array([vertices[labels == c].mean(axis=0) for c in APARC_CODES])
