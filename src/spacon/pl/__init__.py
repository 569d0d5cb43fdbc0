"""Plotting (matplotlib); each function returns its figure."""

from ._figures import domains, highlight, loss, palette, section_divergence, stack3d, umap
from ._prediction import connectivity_prediction

__all__ = [
    "connectivity_prediction", "domains", "highlight", "loss", "palette", "section_divergence",
    "stack3d", "umap",
]
