"""Analysis: alpha fusion, domains, spatial refinement, metrics."""

from ._continuity import section_divergence
from ._domains import domains
from ._fuse import alpha_weight, fuse
from ._metrics import hungarian_f1, score, score_domains
from ._refine import refine

__all__ = [
    "alpha_weight", "domains", "fuse", "hungarian_f1", "refine", "score", "score_domains",
    "section_divergence",
]
