"""Preprocessing: expression checks and normalisation, spatial and connectome graphs."""

from ._connectome import connectome_graph, sparsify, unit_codes
from ._normalize import check_expression, normalize
from ._spatial import section_codes, spatial_graph

__all__ = [
    "check_expression", "connectome_graph", "normalize", "section_codes", "sparsify",
    "spatial_graph", "unit_codes",
]
