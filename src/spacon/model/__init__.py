"""The AnnData-facing SpaCon model."""

from .._errors import TrainingInterrupted
from ._spacon import SpaCon, translate_original_state

__all__ = ["SpaCon", "TrainingInterrupted", "translate_original_state"]
