"""Training checkpoints: everything needed to continue a run as if it had never stopped."""

from __future__ import annotations

import contextlib
import errno
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import torch

from .._errors import SpaconInputError
from ..io import atomic_path


def save_checkpoint(path: Path, module, optimizer, progress: dict) -> None:
    """Write the model, the optimiser, the random state and ``progress`` atomically."""
    state = {
        "module": module.state_dict(),
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        **progress,
    }
    try:
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    except RuntimeError as err:  # torch's writer says a failed write so (e.g. a full disk)
        raise OSError(errno.EIO, f"the checkpoint could not be written ({err}); is the disk "
                      "full?", str(path)) from err


# the training parameters that only sampled training uses
SAMPLING_KEYS = ("batch_size", "fanouts", "spatial_sampling", "spatial_fanout")
# the default sampled batches until 28 Nov, which checkpoints of that time hold
FORMER_BATCHES = {"batch_size": 256, "fanouts": [10, 5, 5], "spatial_fanout": 20}


def _same(saved, value) -> bool:
    return list(saved) == list(value) if isinstance(value, list) and saved is not None \
        else saved == value


def load_checkpoint(path: Path, train_params: dict) -> dict:
    """Read a checkpoint written for the same training parameters: ``train_params``, the
    options a resumed run must share (``TrainConfig.resume_params()``, the fields marked
    ``resume``), each compared with the checkpoint's.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise SpaconInputError(f"could not read the checkpoint {str(path)!r}: {err}") from err
    saved = state.get("train_params", {})
    if "data" in saved and saved["data"] != train_params.get("data"):
        raise SpaconInputError(
            f"the checkpoint {str(path)!r} was written while training on other data: the "
            "expression, the spatial graph or the connectome graph differ (another input file, "
            "radius, threshold...); resume with the same inputs and graph options, or start a "
            "new run.")
    full = saved.get("mode") == "full" and train_params.get("mode") == "full"
    differ = [k for k in train_params if k != "data" and saved.get(k) != train_params.get(k)
              and not (full and k in SAMPLING_KEYS)  # full-batch steps sample nothing
              and not (k == "model" and k not in saved)]  # written before 30 Nov
    if differ:
        detail = ", ".join(f"{k}={saved.get(k)!r} (now {train_params.get(k)!r})" for k in differ)
        former = all(_same(saved.get(k), v) for k, v in FORMER_BATCHES.items())
        advice = ("; it used spacon's default batches until 28 Nov: resume in Python with "
                  "SpaCon.train(batch_size=256, fanouts=(10, 5, 5), spatial_fanout=20, ...) or "
                  "start a new run" if former and set(differ) <= set(SAMPLING_KEYS)
                  else "; resume with the same options or start a new run")
        raise SpaconInputError(
            f"the checkpoint {str(path)!r} was written with other training parameters: "
            f"{detail}{advice}."
        )
    return state


def restore_rng(state: dict) -> None:
    """Put the random state saved in a checkpoint back."""
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])


class StopFlag:
    """Set by Ctrl-C (SIGINT) so that training stops between two steps, not inside one."""

    def __init__(self):
        self.requested = False

    @contextlib.contextmanager
    def catching_sigint(self) -> Iterator[StopFlag]:
        """While active, the first Ctrl-C sets the flag; a second one interrupts at once."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):
            if self.requested:
                signal.signal(signal.SIGINT, previous)
                raise KeyboardInterrupt
            self.requested = True

        signal.signal(signal.SIGINT, handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)
