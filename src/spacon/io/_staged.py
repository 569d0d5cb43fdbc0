"""A command's outputs written together: into a hidden folder, then moved into place at once.

Each file is written atomically (:mod:`._atomic`), but a command writes several (figures, the
model, ``result.h5ad``, ``domains.csv``, the report, ``summary.json``): interrupted between two
of them, an output folder held some files of the new run beside others of the run before
(``--overwrite``). :func:`staged_outputs` has them written into a hidden folder inside the output
folder and renames them into place only once all are written, with Ctrl-C held back for those
few renames and the clean-up after them; interrupted or failed before, the hidden folder is
removed and the output folder is as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

PREFIX = ".spacon-partial-"
# moved last: its presence says the rest is there
LAST = "summary.json"
# a saved model's files (SpaCon.save): those of an earlier model that the new one lacks go
MODEL_FILES = ("model.pt", "model.json", "connectivity_map.npz")

# for the CLI's message on Ctrl-C (cleared by each command): output folders whose writing
# began, those completed, and folders a command created
started: list[Path] = []
published: list[Path] = []
created: list[Path] = []


class Stage:
    """The hidden folder to write into (``path``), and what to do once its files are in place
    (:meth:`then`), still with Ctrl-C held back.
    """

    def __init__(self, path: Path):
        self.path = path
        self._after: list[Callable[[], object]] = []

    def then(self, step: Callable[[], object]) -> None:
        """Run ``step`` after the files are moved into place, before Ctrl-C is let through."""
        self._after.append(step)


@contextlib.contextmanager
def staged_outputs(out: str | Path) -> Iterator[Stage]:
    """Yield a :class:`Stage` in a hidden folder inside ``out`` to write the outputs into;
    when the block ends without error, move everything in it to the same place in ``out``
    (replacing files of the same name; a new ``model/`` also removes the earlier model's
    files it lacks), run the stage's :meth:`Stage.then` steps and record ``out`` in
    :data:`published`. The hidden folder is removed either way.
    """
    out = Path(out)
    started.append(out.resolve())
    stage = Stage(Path(tempfile.mkdtemp(prefix=PREFIX, dir=out)))
    try:
        yield stage
        with interrupts_held():
            _move_into(stage.path, out)
            for step in stage._after:
                step()
            published.append(out.resolve())
    finally:
        shutil.rmtree(stage.path, ignore_errors=True)


def stale_staging(out: Path) -> list[Path]:
    """Hidden folders an earlier command left in ``out`` when it was killed while writing."""
    return sorted(p for p in out.glob(f"{PREFIX}*") if p.is_dir()) if out.is_dir() else []


def _move_into(staging: Path, out: Path) -> None:
    """Rename every file of ``staging`` to its place in ``out`` (``LAST`` last)."""
    for entry in sorted(staging.iterdir(), key=lambda p: (p.name == LAST, p.name)):
        target = out / entry.name
        if entry.is_dir():
            target.mkdir(exist_ok=True)
            if entry.name == "model":  # one model's files together, not two models' mixed
                for name in MODEL_FILES:
                    if (target / name).is_file() and not (entry / name).exists():
                        (target / name).unlink()
            _move_into(entry, target)
        else:
            os.replace(entry, target)


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) back until the block ends, then let it through as it would have
    come. Python runs signal handlers in the main thread whichever thread the signal reached,
    so a handler that only notes it holds it in a process with several threads too.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught and callable(previous):
            previous(signal.SIGINT, None)  # Python's own raises KeyboardInterrupt
        elif caught and previous == signal.SIG_DFL:
            raise KeyboardInterrupt
