"""Plotting (matplotlib); each function returns its figure."""

from ._domain_scores import domain_scores
from ._domain_tree import domain_tree
from ._figures import domains, highlight, loss, palette, section_divergence, stack3d, umap
from ._layout import umap_layout
from ._prediction import connectivity_prediction, coupling, marker_genes
from ._slices import slices

__all__ = [
    "connectivity_prediction", "coupling", "domain_scores", "domain_tree", "domains", "highlight",
    "loss", "marker_genes", "palette", "section_divergence", "slices", "stack3d", "umap",
    "umap_layout",
]
