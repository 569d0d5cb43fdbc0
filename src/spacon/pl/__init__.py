"""Plotting (matplotlib); each function returns its figure."""

from ._figures import domains, highlight, loss, palette, section_divergence, stack3d, umap

__all__ = ["domains", "highlight", "loss", "palette", "section_divergence", "stack3d", "umap"]
