"""``spacon.settings``: what spacon says while it works, as ``scanpy.settings`` does for scanpy.

spacon reports its steps (graph sizes, training, the number of domains chosen and why) through
Python's :mod:`logging`, under the ``"spacon"`` logger. Python shows only warnings by default,
so in a notebook those notes stay hidden, as scanpy's do until ``sc.settings.verbosity`` is
raised; ``spacon.settings.verbosity = "info"`` shows them. The command line says them with
``--verbose``.
"""

from __future__ import annotations

import logging
import sys

from ._errors import SpaconInputError

LEVELS = {"error": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO,
          "hint": logging.INFO, "debug": logging.DEBUG}  # (spacon's hints are its notes)
NUMBERS = dict(enumerate(LEVELS))  # scanpy's numbers: 0 error, 1 warning, 2 info, 3 hint, 4 debug


class _ToStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a note is said: a notebook replaces it."""

    def __init__(self):
        super().__init__()
        self.setFormatter(logging.Formatter("spacon: %(message)s"))

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler sets it; the property reads sys.stderr instead
        pass


class Settings:
    """spacon's settings (``spacon.settings``).

    Attributes
    ----------
    verbosity
        What spacon says: ``"error"``, ``"warning"`` (the default), ``"info"``, ``"hint"``
        (the same as ``"info"``) or ``"debug"``, or scanpy's numbers 0-4 for them. Above
        ``"warning"`` spacon's notes go to standard error (a notebook shows them under the
        cell) as ``spacon: ...`` lines. Warnings are Python warnings
        (:class:`spacon.SpaconWarning`) and show at every verbosity. At ``"error"`` training
        shows no progress bar unless ``progress=True`` is given.
    """

    def __init__(self):
        self._verbosity = "warning"
        self._handler: logging.Handler | None = None

    @property
    def verbosity(self) -> str:
        return self._verbosity

    @verbosity.setter
    def verbosity(self, value) -> None:
        if isinstance(value, int) and not isinstance(value, bool) and value in NUMBERS:
            value = NUMBERS[value]
        if not isinstance(value, str) or value.lower() not in LEVELS:
            raise SpaconInputError(
                f"spacon.settings.verbosity must be one of {', '.join(map(repr, LEVELS))} "
                f"(or 0-4, as in scanpy), got {value!r}.")
        value = value.lower()
        logger = logging.getLogger("spacon")
        if value == "warning":  # the default: Python's logging as it was, untouched
            if self._handler is not None:
                logger.removeHandler(self._handler)
                self._handler = None
            logger.propagate = True
            logger.setLevel(logging.NOTSET)
        else:
            if self._handler is None:  # say each note once: here, not again through the root
                self._handler = _ToStderr()
                logger.addHandler(self._handler)
                logger.propagate = False
            logger.setLevel(LEVELS[value])
        self._verbosity = value

    def __repr__(self) -> str:
        return f"spacon.settings(verbosity={self._verbosity!r})"


settings = Settings()
