"""The AnnData-facing SpaCon model."""

from ._spacon import SpaCon, translate_original_state

__all__ = ["SpaCon", "translate_original_state"]
