"""Every AnnData key that spacon reads or writes, in one place."""

from __future__ import annotations

SPATIAL = "spatial"  # obsm: coordinates
CCF = "ccf"  # obsm: Allen CCF coordinates in µm, CCF axis order (AP, DV, ML)
RECONSTRUCTED_COORDS = "reconstructed"  # obsm: an atlas's reconstructed coordinates in µm
SECTION = "section"  # obs: section of each cell (ordered categorical)
UNIT = "unit"  # obs: connectome unit of each cell (pp.assign_units)
SPATIAL_GRAPH = "spatial"  # obsp[f"{key}_connectivities"], uns[f"{key}_neighbors"]
CONNECTOME_GRAPH = "connectome"


def connectivities(key: str) -> str:
    """Obsp key of a graph's adjacency matrix."""
    return f"{key}_connectivities"


def distances(key: str) -> str:
    """Obsp key of a graph's edge lengths."""
    return f"{key}_distances"


def neighbors(key: str) -> str:
    """Uns key holding a graph's parameters (and a factored connectome's unit graph)."""
    return f"{key}_neighbors"


EMBEDDING_CON = "X_spacon_con"
EMBEDDING_SPA = "X_spacon_spa"
EMBEDDING_FUSED = "X_spacon"
SMOOTHED = "X_smoothed"  # obsm: expression PCs averaged over a graph (tl.smoothed_expression)
SPATIAL_PCA = "X_spatial_pca"  # obsm: MULTISPATI-PCA (tl.spatial_pca)
RECONSTRUCTED = "spacon_reconstructed"
MODEL_UNS = "spacon"
NORMALIZE = "spacon_normalize"  # uns: how pp.normalize normalised X
DOMAIN = "spacon_domain"
MARKERS = "spacon_markers"  # uns: {domain key: marker table}
FUSE = "spacon_fuse"  # uns: alpha and weight of the fused embedding in obsm['X_spacon']
COUPLING = "spacon_coupling"  # uns: tl.coupling's table
COUNTS = "counts"  # layers: raw counts kept by pp.normalize
CONNECTIVITY_CODE = "X_connectivity_code"  # obsm: low-rank code of predicted connectivity
CONNECTIVITY_MAP = "spacon_connectivity_map"  # uns: the map's targets, axes and penalty
CONNECTIVITY_PREDICTION = "spacon_connectivity_prediction"  # uns: metrics per method


def fused_for_alpha(alpha: float) -> str:
    """Obsm key of the embedding fused at one alpha: X_spacon_alpha0, ..._alpha0.5, ..._alpha1."""
    return f"{EMBEDDING_FUSED}_alpha{alpha:g}"


def domain_for_alpha(alpha: float) -> str:
    """Obs key of the domains called at one alpha: spacon_domain_alpha0, ..._alpha0.5, ..._alpha1."""
    return f"{DOMAIN}_alpha{alpha:g}"


def unit_distance(key: str) -> str:
    """Obs key of each cell's distance to its assigned unit."""
    return f"{key}_distance"


def unit_side(key: str) -> str:
    """Obs key of each cell's hemisphere (L/R) when units are mirrored across the midline."""
    return f"{key}_side"


def assignment(key: str) -> str:
    """Uns key with how cells were assigned to units."""
    return f"{key}_assignment"


def domain_level(alpha: float, n_domains: int) -> str:
    """Obs key of one level of the domain tree: spacon_domain_alpha0_k8 (``--n-domains 4 8 16``)."""
    return f"{domain_for_alpha(alpha)}_k{n_domains}"
