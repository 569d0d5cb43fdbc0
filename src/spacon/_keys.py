"""Every AnnData key that spacon reads or writes, in one place."""

from __future__ import annotations

SPATIAL = "spatial"  # obsm: coordinates
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
RECONSTRUCTED = "spacon_reconstructed"
MODEL_UNS = "spacon"
DOMAIN = "spacon_domain"


def domain_for_alpha(alpha: float) -> str:
    """Obs key of the domains called at one alpha: spacon_domain_alpha0, ..._alpha0.5, ..._alpha1."""
    return f"{DOMAIN}_alpha{alpha:g}"
