"""A command's outputs written together: into a hidden folder, then moved into place at once.

Each file is written atomically (:mod:`._atomic`), but a command writes several (figures, the
model, ``result.h5ad``, ``domains.csv``, the report, ``summary.json``): interrupted between two
of them, an output folder held some files of the new run beside others of the run before
(``--overwrite``). :func:`staged_outputs` has them written into a hidden folder inside the output
folder and renames them into place only once all are written, with Ctrl-C held back for those
few renames; interrupted or failed before, the hidden folder is removed and the output folder is
as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

PREFIX = ".spacon-partial-"
# folders replaced as a whole (a model is its files together); other folders are merged file
# by file (figures: a run's own loss curve stays beside the domains drawn again)
WHOLE = ("model",)
# moved last: its presence says the rest is there
LAST = "summary.json"

# for the CLI's message on Ctrl-C: output folders this process completed, and those it created
published: list[Path] = []
created: list[Path] = []


@contextlib.contextmanager
def staged_outputs(out: str | Path) -> Iterator[Path]:
    """Yield a hidden folder inside ``out`` to write the outputs into; when the block ends
    without error, move everything in it to the same place in ``out`` (replacing files of
    the same name) and record ``out`` in :data:`published`. The hidden folder is removed
    either way.
    """
    out = Path(out)
    staging = Path(tempfile.mkdtemp(prefix=PREFIX, dir=out))
    try:
        yield staging
        with _interrupts_held():
            _move_into(staging, out)
            published.append(out.resolve())
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_into(staging: Path, out: Path) -> None:
    """Rename every file of ``staging`` to its place in ``out`` (``LAST`` last)."""
    for entry in sorted(staging.iterdir(), key=lambda p: (p.name == LAST, p.name)):
        target = out / entry.name
        if entry.is_dir() and entry.name in WHOLE:
            if target.exists():  # the old one aside, into the folder removed afterwards
                os.replace(target, staging / f".old-{entry.name}")
            os.replace(entry, target)
        elif entry.is_dir():
            target.mkdir(exist_ok=True)
            _move_into(entry, target)
        else:
            os.replace(entry, target)


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) back until the block ends: it is delivered then, as usual."""
    can = (hasattr(signal, "pthread_sigmask")
           and threading.current_thread() is threading.main_thread())
    if not can:
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
