"""Data sets: the synthetic brain with ground truth (the embedded default data), a 2-D layered
cortex-like slice, a real region-level tracer connectome mapped onto simulated cells, and the ABC
atlas MERFISH cells, and the ENIGMA toolbox's human cortex (HCP connectivity, AHBA expression).
"""

from ._abc import read_abc_merfish
from ._enigma import read_enigma
from ._layered import layered_slice
from ._synthetic import SyntheticBrainParams, implied_cell_edges, synthetic_brain
from ._tracer import read_mouse_tracer, tracer_brain

__all__ = ["SyntheticBrainParams", "implied_cell_edges", "layered_slice", "read_abc_merfish",
           "read_enigma", "read_mouse_tracer",
           "synthetic_brain", "tracer_brain"]
