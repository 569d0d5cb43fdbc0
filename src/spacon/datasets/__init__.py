"""Data sets: the synthetic brain with ground truth (the embedded default data)."""

from ._synthetic import SyntheticBrainParams, implied_cell_edges, synthetic_brain

__all__ = ["SyntheticBrainParams", "implied_cell_edges", "synthetic_brain"]
