"""Preprocessing: expression checks and normalisation, spatial and connectome graphs."""

from ._assign import assign_units
from ._connectome import connectome_graph, sparsify, unit_codes
from ._normalize import check_expression, normalize
from ._spatial import section_codes, spatial_graph

__all__ = [
    "assign_units", "check_expression", "connectome_graph", "normalize", "section_codes", "sparsify",
    "spatial_graph", "unit_codes",
]
