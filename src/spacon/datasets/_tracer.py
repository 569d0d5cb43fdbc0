"""A region-level tracer connectome (Allen mouse, Oh et al. 2014) mapped onto simulated cells.

Tracer connectomes are measured between atlas regions, not cells. :func:`read_mouse_tracer`
reads the 213-region ipsilateral connectome with each region's position in the Allen Common
Coordinate Framework (CCF) and its major division; :func:`tracer_brain` places simulated cells
in those regions (at their CCF positions, cut into coronal sections), so that SpaCon runs on a
real connectivity matrix with the region as the cell -> unit map. The expression is simulated
(the data set has none): cell types everywhere, a program per region and a weaker one per major
division, as in :func:`~spacon.datasets.synthetic_brain`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from .._errors import SpaconInputError
from ..io import Connectivity
from ._synthetic import SyntheticBrainParams, _cell_types, _expression

logger = logging.getLogger(__name__)

MATRIX_FILE = "sc_oh2012.mat"
CCF_MIDLINE = 5700.0  # µm along CCF z (medio-lateral): the volume is 11.4 mm wide
REGIONS_FILE = "region_mapping_sc.csv"


def read_mouse_tracer(directory, *, p_value: float | None = 0.05,
                      hemispheres: str = "ipsi"):
    """Read the Allen mouse tracer connectome (Oh et al. 2014), 213 regions.

    Parameters
    ----------
    directory
        Folder with ``sc_oh2012.mat`` (``a[:, :, 0]`` = normalised connection strength,
        ``a[:, :, 1]`` = its p-value; rows = injected source region, columns = target) and
        ``region_mapping_sc.csv`` (``sc213_acr``, ``major_region``, CCF ``x, y, z`` in µm, in
        the matrix's order), as in ``mouse_oh2014_sc_synaptome``.
    p_value
        Keep connections whose model p-value is below this (the paper's criterion; entries
        without a p-value are dropped); ``None`` keeps every positive strength.
    hemispheres
        ``"ipsi"``: the ipsilateral connectome, one unit per region. ``"both"``: one unit per
        region and side, ``REGION-L`` then ``REGION-R`` (426 units), the ipsilateral strengths
        within a side and the contralateral ones (``a[:, :, 2]``, p-values ``a[:, :, 3]``)
        between sides, assuming the hemispheres alike (the injections were in one); what
        :func:`spacon.pp.assign_units` with ``hemisphere="mirror"`` matches cells of both
        sides to.

    Returns
    -------
    connectivity
        213 x 213 :class:`~spacon.io.Connectivity` labelled by region acronym (426 x 426,
        labelled ``REGION-L``/``REGION-R``, with ``hemispheres="both"``).
    regions
        Table indexed by acronym: ``division`` (major region) and CCF ``x`` (antero-posterior),
        ``y`` (dorso-ventral), ``z`` (medio-lateral), in µm; with ``hemispheres="both"``
        indexed by the connectivity's labels, the other side's rows mirrored across the
        midline (CCF z 5,700 µm).
    """
    from scipy.io import loadmat

    directory = Path(directory)
    for name in (MATRIX_FILE, REGIONS_FILE):
        if not (directory / name).is_file():
            raise SpaconInputError(f"{directory / name} is missing; the tracer connectome needs "
                                   f"{MATRIX_FILE} and {REGIONS_FILE} in {directory}.")
    mat = loadmat(directory / MATRIX_FILE)
    if "a" not in mat or "acronym" not in mat:
        raise SpaconInputError(f"{directory / MATRIX_FILE} has no 'a' and 'acronym' variables.")
    a = np.asarray(mat["a"], dtype=np.float64)
    if a.ndim != 3 or a.shape[0] != a.shape[1] or a.shape[2] < 2:
        raise SpaconInputError(f"{MATRIX_FILE}: 'a' has shape {a.shape}; expected n x n x 2+ "
                               "(strength, p-value, ...).")
    acronyms = np.array([np.ravel(x)[0] if np.size(x) else "" for x in np.ravel(mat["acronym"])],
                        dtype=str)
    table = pd.read_csv(directory / REGIONS_FILE)
    missing = {"sc213_acr", "major_region", "x", "y", "z"} - set(table.columns)
    if missing:
        raise SpaconInputError(f"{REGIONS_FILE} lacks columns {sorted(missing)}.")
    if len(table) != a.shape[0] or (table["sc213_acr"].astype(str).to_numpy() != acronyms).any():
        raise SpaconInputError(f"{REGIONS_FILE} does not list the matrix's {a.shape[0]} regions "
                               "in its order.")
    from .._utils import check_option

    check_option("hemispheres", hemispheres, ("ipsi", "both"))
    if hemispheres == "both" and a.shape[2] < 4:
        raise SpaconInputError(f"{MATRIX_FILE}: 'a' has shape {a.shape}; the contralateral "
                               "connectome needs a[:, :, 2] (strength) and a[:, :, 3] (p-value).")

    def kept(strength, p):
        keep = np.isfinite(strength) & (strength > 0)
        if p_value is not None:
            keep &= np.nan_to_num(p, nan=np.inf) < p_value
        return np.where(keep, strength, 0.0)

    matrix = kept(a[:, :, 0], a[:, :, 1])
    np.fill_diagonal(matrix, 0.0)  # a region to itself; to its counterpart across is kept
    labels = acronyms
    if hemispheres == "both":
        contra = kept(a[:, :, 2], a[:, :, 3])
        matrix = np.block([[matrix, contra], [contra, matrix]])
        labels = np.concatenate([np.char.add(acronyms, "-L"), np.char.add(acronyms, "-R")])
    regions = pd.DataFrame(
        {"division": table["major_region"].astype(str).to_numpy(),
         "x": table["x"].to_numpy(float), "y": table["y"].to_numpy(float),
         "z": table["z"].to_numpy(float)},
        index=pd.Index(acronyms, name="region"),
    )
    if hemispheres == "both":  # a row per unit: the table's side as given, the other mirrored
        given = "R" if np.median(regions["z"]) >= CCF_MIDLINE else "L"
        mirrored = regions.assign(z=2 * CCF_MIDLINE - regions["z"])
        sides = {given: regions, "R" if given == "L" else "L": mirrored}
        regions = pd.concat([sides["L"], sides["R"]])
        regions.index = pd.Index(labels, name="region")
    logger.info("tracer connectome: %d units, %d connections kept", len(labels),
                int((matrix > 0).sum()))
    return Connectivity(matrix, labels), regions


def program_genes(n_genes: int, n_cell_types: int, n_regions: int, n_divisions: int) -> int:
    """Genes the cell-type, region and division programs take out of ``n_genes``."""
    return (max(2, int(0.35 * n_genes / n_cell_types)) * n_cell_types
            + max(2, int(0.35 * n_genes / n_regions)) * n_regions
            + max(2, int(0.06 * n_genes / n_divisions)) * n_divisions)


def min_genes(n_cell_types: int, n_regions: int, n_divisions: int) -> int:
    """The fewest genes from which on every gene count fits the programs.

    The programs take at most 76% of the genes plus two genes per program, so every count
    from ``floor / 0.24`` on fits; below it, fitting is not monotone (a program grows by a
    gene per group at a time), so the answer is found by walking down from there.
    """
    n = int(np.ceil(2 * (n_cell_types + n_regions + n_divisions) / 0.24))
    while n > 1 and program_genes(n - 1, n_cell_types, n_regions, n_divisions) <= n - 1:
        n -= 1
    return n


def _nearest_other(tree, centre: np.ndarray) -> np.ndarray:
    """Each centroid's distance to the nearest centroid at another place (1 where none is)."""
    k = min(len(centre), 8)
    distance = np.atleast_2d(tree.query(centre, k=k)[0]) if k > 1 else np.zeros((len(centre), 1))
    distance = np.where(distance > 0, distance, np.inf).min(axis=1)
    return np.where(np.isfinite(distance), distance, 1.0)


def tracer_brain(
    connectivity: Connectivity,
    regions: pd.DataFrame,
    *,
    cells_per_region: int = 30,
    n_genes: int = 1000,
    section_thickness: float = 400.0,
    n_cell_types: int = 6,
    type_strength: float = 2.0,
    region_strength: float = 1.0,
    division_strength: float = 0.6,
    dispersion: float = 4.0,
    seed: int = 0,
):
    """Simulated cells in the regions of a region-level connectome, at the regions' positions.

    Each region gets ``cells_per_region`` cells scattered around its centroid (a third of the
    distance to the nearest other centroid) and keeps those nearest to it, so regions are
    contiguous; coronal sections are slabs of ``section_thickness`` µm along the
    antero-posterior axis, each cell placed on its slab's plane.

    Parameters
    ----------
    connectivity, regions
        What :func:`read_mouse_tracer` returns (``regions`` indexed by the connectivity labels,
        with ``x`` antero-posterior, ``y``, ``z`` and optionally ``division``).
    cells_per_region, n_genes
        Size of the data.
    section_thickness
        Coronal section spacing, µm.
    n_cell_types, type_strength, region_strength, division_strength, dispersion
        Expression programs as in :func:`~spacon.datasets.synthetic_brain` (divisions play the
        role of its modules; ``division_strength=0`` leaves them no shared program).
    seed
        Random seed.

    Returns
    -------
    Counts in ``X``; ``obsm['spatial']`` = (medio-lateral, dorso-ventral, antero-posterior
    section position) in µm; ``obs``: ``section`` (ordered, anterior first), ``cell_type``,
    ``region`` (the connectivity unit; use ``unit_key="region"``) and ``division``.
    """
    import anndata as ad

    if connectivity.labels is None:
        raise SpaconInputError("the connectivity needs region labels to map cells to regions.")
    absent = sorted(set(connectivity.labels) - set(regions.index.astype(str)))
    if absent:
        raise SpaconInputError(f"{len(absent)} connectivity regions have no position in "
                               f"regions (e.g. {', '.join(absent[:5])}).")
    if cells_per_region < 1 or section_thickness <= 0:
        raise SpaconInputError("cells_per_region must be >= 1 and section_thickness > 0.")
    table = regions.loc[connectivity.labels]
    centre = table[["z", "y", "x"]].to_numpy(float)  # medio-lateral, dorso-ventral, AP
    division = (table["division"].astype(str).to_numpy() if "division" in table
                else np.zeros(len(table), dtype=str))
    divisions, division_code = np.unique(division, return_inverse=True)
    n_regions = len(centre)
    params = SyntheticBrainParams(
        n_cells=n_regions * cells_per_region, n_genes=n_genes, n_sections=1,
        n_regions=n_regions, n_modules=len(divisions), n_cell_types=n_cell_types,
        type_strength=type_strength, region_strength=region_strength,
        module_strength=division_strength, dispersion=dispersion, seed=seed,
    )
    if program_genes(n_genes, n_cell_types, n_regions, len(divisions)) > n_genes:
        least = min_genes(n_cell_types, n_regions, len(divisions))
        raise SpaconInputError(
            f"{n_cell_types} cell types, {n_regions} regions and {len(divisions)} divisions "
            f"need n_genes >= {least} for their programs; n_genes is {n_genes}.")
    rng = np.random.default_rng(seed)
    tree = cKDTree(centre)
    spread = _nearest_other(tree, centre) / 3.0
    origin = np.repeat(np.arange(n_regions), cells_per_region)
    coords = centre[origin] + rng.normal(size=(len(origin), 3)) * spread[origin, None]
    distance, region = tree.query(coords)
    # regions that share a centroid (the atlas gives some the same point) keep their own cells
    tied = np.linalg.norm(coords - centre[origin], axis=1) <= distance * (1 + 1e-9)
    region[tied] = origin[tied]
    slab = np.floor((coords[:, 2] - coords[:, 2].min()) / section_thickness).astype(np.int64)
    used, section = np.unique(slab, return_inverse=True)
    coords[:, 2] = coords[:, 2].min() + (used[section] + 0.5) * section_thickness
    cell_type = _cell_types(region, params, rng)
    counts, program = _expression(cell_type, region, division_code[region], params, rng)
    labels = [f"s{i:03d}" for i in range(len(used))]
    obs = pd.DataFrame(
        {"section": pd.Categorical.from_codes(section, labels, ordered=True),
         "cell_type": pd.Categorical.from_codes(cell_type, [f"type{i}" for i in
                                                            range(n_cell_types)]),
         "region": pd.Categorical(np.asarray(connectivity.labels)[region]),
         "division": pd.Categorical(division[region])},
        index=[f"cell{i}" for i in range(len(region))],
    )
    adata = ad.AnnData(counts, obs=obs,
                       var=pd.DataFrame({"program": program},
                                        index=[f"gene{i}" for i in range(n_genes)]))
    adata.obsm["spatial"] = coords.astype(np.float32)
    adata.uns["tracer_brain"] = {"section_order": labels, "section_thickness": section_thickness,
                                 "ground_truth": ["cell_type", "region", "division"]}
    return adata
