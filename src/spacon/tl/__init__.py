"""Analysis: fusion, domains, refinement, metrics, connectivity prediction, markers, coupling.

Each function loads its module on first use (see :mod:`spacon`).
"""

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what type checkers and IDEs see: the names, eagerly
    from ._continuity import section_divergence
    from ._coupling import coexpression, coupling, partial_correlation
    from ._domains import domains
    from ._fuse import alpha_weight, fuse
    from ._markers import marker_genes
    from ._metrics import hungarian_f1, score, score_domains
    from ._predict import predict_connectivity, spatial_folds
    from ._refine import refine
    from ._smooth import smoothed_expression
    from ._spatial_pca import spatial_pca
    from ._subtypes import classify_subtypes

_WHERE = {
    "section_divergence": "_continuity",
    "coexpression": "_coupling", "coupling": "_coupling", "partial_correlation": "_coupling",
    "domains": "_domains",
    "alpha_weight": "_fuse", "fuse": "_fuse",
    "marker_genes": "_markers",
    "hungarian_f1": "_metrics", "score": "_metrics", "score_domains": "_metrics",
    "predict_connectivity": "_predict", "spatial_folds": "_predict",
    "refine": "_refine",
    "smoothed_expression": "_smooth",
    "spatial_pca": "_spatial_pca",
    "classify_subtypes": "_subtypes",
}

__all__ = [
    "alpha_weight", "classify_subtypes", "coexpression", "coupling", "domains", "fuse",
    "hungarian_f1", "marker_genes", "partial_correlation", "predict_connectivity", "refine",
    "score", "score_domains", "section_divergence", "smoothed_expression", "spatial_folds",
    "spatial_pca",
]


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    if name.startswith("_"):  # a private module (``spacon.tl._coupling``), as eager imports gave
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module 'spacon.tl' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
