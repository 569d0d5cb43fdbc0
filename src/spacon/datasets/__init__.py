"""Data sets: the synthetic brain with ground truth (the embedded default data), a layered
cortex-like slice, and a real region-level tracer connectome mapped onto simulated cells.
"""

from ._layered import layered_slice
from ._synthetic import SyntheticBrainParams, implied_cell_edges, synthetic_brain
from ._tracer import read_mouse_tracer, tracer_brain

__all__ = ["SyntheticBrainParams", "implied_cell_edges", "layered_slice", "read_mouse_tracer",
           "synthetic_brain", "tracer_brain"]
