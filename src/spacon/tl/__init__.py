"""Analysis: fusion, domains, refinement, metrics, connectivity prediction, markers, coupling."""

from ._continuity import section_divergence
from ._coupling import coexpression, coupling, partial_correlation
from ._domains import domains
from ._fuse import alpha_weight, fuse
from ._markers import marker_genes
from ._metrics import hungarian_f1, score, score_domains
from ._predict import predict_connectivity, spatial_folds
from ._refine import refine
from ._smooth import smoothed_expression
from ._subtypes import classify_subtypes

__all__ = [
    "alpha_weight", "classify_subtypes", "coexpression", "coupling", "domains", "fuse",
    "hungarian_f1", "marker_genes", "partial_correlation", "predict_connectivity", "refine",
    "score", "score_domains", "section_divergence", "smoothed_expression", "spatial_folds",
]
