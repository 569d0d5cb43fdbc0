"""The AnnData-facing SpaCon model and the pieces of its training loop."""

from .._errors import TrainingInterrupted
from ._batches import Batch, FullBatch, SampledBatches
from ._connectivity_code import ConnectivityCodeObjective
from ._data import ModelData
from ._original import translate_original_state
from ._spacon import SpaCon
from ._train import TrainConfig, TrainState, fit, training_step

__all__ = [
    "Batch", "ConnectivityCodeObjective", "FullBatch", "ModelData", "SampledBatches", "SpaCon",
    "TrainConfig", "TrainState", "TrainingInterrupted", "fit", "training_step",
    "translate_original_state",
]
