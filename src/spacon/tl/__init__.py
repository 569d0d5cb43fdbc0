"""Analysis: fusion, domains, refinement, metrics, connectivity prediction, markers, coupling.

Each function loads its module on first use (see :mod:`spacon`).
"""

import importlib

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
    "classify_subtypes": "_subtypes",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'spacon.tl' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
