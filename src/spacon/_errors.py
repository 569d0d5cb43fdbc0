"""Errors and warnings that spacon raises on bad input."""

from __future__ import annotations


class SpaconInputError(ValueError):
    """Input data, a file or an option is not usable; the message names the problem and the fix."""


class SpaconWarning(UserWarning):
    """Something in the input is unusual but spacon can go on (e.g. isolated cells)."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training was stopped by Ctrl-C before ``epoch``/``batch``; a checkpoint was saved at
    ``path`` (if any).
    """

    def __init__(self, message: str, path=None, epoch: int = 0, batch: int = 0):
        super().__init__(message)
        self.path, self.epoch, self.batch = path, epoch, batch
