"""The training loop: its options, its state, one step, and the loop that runs the steps.

Read top to bottom: :class:`TrainConfig` (what a run is asked to do, checked once),
:class:`TrainState` (where a run is: what a checkpoint holds), :func:`training_step` (one
optimiser step on one batch), :class:`Checkpointer` (save and resume), and :func:`fit` (the
loop, with the progress bar, checkpoints and Ctrl-C around it).
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal

import numpy as np

from .._errors import SpaconInputError, TrainingInterrupted
from .._utils import check_numbers, check_option, check_seed, whole_number
from ..nn._invariant import clip_grad_norm_, squared_error
from ._batches import Batch
from ._checkpoint import StopFlag, load_checkpoint, restore_rng, save_checkpoint

logger = logging.getLogger(__name__)

TrainMode = Literal["auto", "full", "sampled"]
# default cap on sampled training steps (see SpaCon.train)
DEFAULT_SAMPLED_STEPS = 500
# marks the options a checkpoint must have been written with to be resumed
_RESUME = {"resume": True}


@dataclass(frozen=True)
class TrainConfig:
    """The options of :meth:`spacon.SpaCon.train` (documented there), checked on creation.

    Fields marked for resuming (:meth:`resume_params`) must equal those a checkpoint was
    written with; the others (step cap, device, progress, clocks) may change between runs.
    """

    epochs: int | None = field(default=None, metadata=_RESUME)
    mode: TrainMode = field(default="auto", metadata=_RESUME)
    batch_size: int = field(default=64, metadata=_RESUME)
    fanouts: tuple[int, ...] = field(default=(5, 3, 3), metadata=_RESUME)
    spatial_sampling: Literal["neighbors", "induced"] = field(default="neighbors",
                                                               metadata=_RESUME)
    spatial_fanout: int = field(default=8, metadata=_RESUME)
    lr: float = field(default=5e-3, metadata=_RESUME)
    weight_decay: float = field(default=1e-4, metadata=_RESUME)
    max_grad_norm: float = field(default=5.0, metadata=_RESUME)
    loss: Literal["sum", "mean"] = field(default="sum", metadata=_RESUME)
    seed: int | None = field(default=0, metadata=_RESUME)
    rank: int = field(default=0, metadata=_RESUME)
    world_size: int = field(default=1, metadata=_RESUME)
    data: str | None = field(default=None, metadata=_RESUME)  # the training data's fingerprint
    # the model trained (fusion, dropout, skip_connections): a checkpoint's weights fit
    # another model of the same shape, which would train on as another run
    model: str | None = field(default=None, metadata=_RESUME)
    max_steps: int | None = None
    memory_budget_gb: float = 4.0
    checkpoint_interval: float = 300.0
    threads: int | None = None
    progress: bool = True

    def __post_init__(self):
        check_option("mode", self.mode, ("auto", "full", "sampled"))
        check_option("loss", self.loss, ("sum", "mean"))
        check_option("spatial_sampling", self.spatial_sampling, ("neighbors", "induced"))
        fanouts = self.fanouts
        if isinstance(fanouts, (str, bytes)) or not hasattr(fanouts, "__len__") \
                or len(fanouts) != 3:
            raise SpaconInputError(f"fanouts needs one positive number per encoder layer (3), "
                                   f"or -1 for all neighbours, got {fanouts!r}.")
        object.__setattr__(self, "fanouts", tuple(  # -1: all, as spatial_fanout
            f if f == -1 and not isinstance(f, bool) else whole_number("fanouts", f)
            for f in fanouts))
        for name in ("batch_size", "epochs", "max_steps", "threads", "spatial_fanout"):
            value = getattr(self, name)
            if value is not None and not (name == "spatial_fanout" and value == -1):  # -1: all
                object.__setattr__(self, name, whole_number(name, value))
        check_numbers(lr=self.lr, weight_decay=self.weight_decay,
                      max_grad_norm=self.max_grad_norm, memory_budget_gb=self.memory_budget_gb,
                      checkpoint_interval=self.checkpoint_interval)
        # NaN or inf here trained a model of NaN without a word; a negative norm or decay
        # climbed the loss
        for name, least, strict in (("lr", 0.0, True), ("max_grad_norm", 0.0, True),
                                    ("memory_budget_gb", 0.0, True),
                                    ("weight_decay", 0.0, False),
                                    ("checkpoint_interval", 0.0, False)):
            value = float(getattr(self, name))
            if not np.isfinite(value) or value < least or (strict and value == least):
                raise SpaconInputError(
                    f"{name} must be a finite number {'>' if strict else '>='} {least:g}, got "
                    f"{getattr(self, name)!r}.")
        check_seed(self.seed)
        world = whole_number("world_size", self.world_size)
        if not 0 <= whole_number("rank", self.rank, 0) < world:
            raise SpaconInputError(f"rank must be in 0..world_size-1, got rank={self.rank}, "
                                   f"world_size={self.world_size}.")

    def resume_params(self) -> dict:
        """The options a checkpoint records and a resumed run must match."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("resume")}
        out["fanouts"] = list(out["fanouts"])
        return out


@dataclass
class TrainState:
    """Where training is: the next epoch and batch, the epoch's running loss, the history.

    ``history`` holds one ``{"epoch", "loss"}`` per finished epoch; the loss is the mean
    over the epoch's cells (over all ranks) of each cell's loss: its summed squared error
    with ``loss="sum"``, the mean over its genes with ``loss="mean"``.
    """

    epoch: int = 0
    batch: int = 0
    steps: int = 0
    total: float = 0.0
    count: int = 0
    seconds: float = 0.0
    sampler_seed: int = 0
    threads: int = 1
    history: list[dict] = field(default_factory=list)

    def record(self, loss: float, n_cells: int) -> None:
        """Count one step of ``n_cells`` cells whose mean loss was ``loss``."""
        self.total += loss * n_cells
        self.count += n_cells
        self.batch += 1
        self.steps += 1

    def epoch_loss(self, sync) -> float:
        """The mean loss of the epoch so far, over every rank's cells."""
        total, count = sync.sum([self.total, self.count])
        return total / count

    def end_epoch(self, sync) -> None:
        """Close the epoch: its loss goes into the history."""
        self.history.append({"epoch": len(self.history), "loss": self.epoch_loss(sync)})
        self.epoch, self.batch, self.total, self.count = self.epoch + 1, 0, 0.0, 0


def training_step(module, optimizer, batch: Batch, config: TrainConfig, sync,
                  auxiliary=None) -> float:
    """One optimiser step reconstructing ``batch``'s expression; returns the loss per cell
    (``loss="sum"``) or per entry, cell and gene (``loss="mean"``, the mean squared error).

    ``auxiliary`` (an ``nn.Module`` whose parameters the optimiser holds, e.g.
    :class:`~spacon.model.ConnectivityCodeObjective`) adds ``auxiliary(z_spa, batch,
    config.loss)`` to the loss.
    """
    optimizer.zero_grad(set_to_none=True)
    _, z_spa, x_hat = module(batch.x, batch.adj_con, batch.adj_spa)
    loss = squared_error(x_hat, batch.x, config.loss)
    if auxiliary is not None:
        loss = loss + auxiliary(z_spa, batch, config.loss)
    loss.backward()
    sync.average_gradients(module)
    parameters = list(module.parameters())
    if auxiliary is not None:
        sync.average_gradients(auxiliary)
        parameters += list(auxiliary.parameters())
    clip_grad_norm_(parameters, config.max_grad_norm)
    optimizer.step()
    return loss.item() / (len(batch.x) if config.loss == "sum" else 1)


def _bar_interval() -> float:
    """Seconds between progress bar updates: tqdm's 0.1 on a terminal or in a notebook; 30
    where stderr goes to a file (a cluster job's log), which would otherwise get a line for
    every step.
    """
    import sys

    interactive = getattr(sys.stderr, "isatty", lambda: False)() or "ipykernel" in sys.modules
    return 0.1 if interactive else 30.0


class Checkpointer:
    """Saves training to ``path`` (atomically; nowhere when ``path`` is ``None``) and resumes.

    Parameters
    ----------
    path
        Checkpoint file of this process (a rank's own file in a distributed run).
    module, optimizer
        What is saved and restored, with the random state.
    config
        The run's options; a checkpoint of other options is refused.
    """

    def __init__(self, path: Path | None, module, optimizer, config: TrainConfig):
        self.path = path
        self.module, self.optimizer, self.config = module, optimizer, config
        self.last = time.perf_counter()

    def due(self) -> bool:
        """Whether ``checkpoint_interval`` seconds have passed since the last save."""
        return time.perf_counter() - self.last >= self.config.checkpoint_interval

    def save(self, state: TrainState) -> None:
        """Write the checkpoint now."""
        if self.path is not None:
            position = {k: v for k, v in asdict(state).items() if k != "history"}
            save_checkpoint(self.path, self.module, self.optimizer, {
                "train_params": self.config.resume_params(), "position": position,
                "history": list(state.history)})
        self.last = time.perf_counter()

    def resume(self, state: TrainState, sync) -> TrainState:
        """The state saved in the checkpoint, with model, optimiser and random state restored;
        ``state`` itself when there is no checkpoint yet. Every rank resumes or none does.
        """
        saved, failed = None, None
        if self.path is not None and self.path.exists():
            try:
                saved = load_checkpoint(self.path, self.config.resume_params())
            except SpaconInputError as err:
                failed = err
        if sync.any([failed is not None])[0]:
            raise failed or SpaconInputError(
                "another rank's checkpoint cannot be resumed; see its message.")
        if saved is not None:
            try:
                self.module.load_state_dict(saved["module"])
                self.optimizer.load_state_dict(saved["optimizer"])
            except (RuntimeError, ValueError) as err:
                raise SpaconInputError(
                    f"the checkpoint {str(self.path)!r} holds a model of another shape (other "
                    "genes, hidden dims or connectome): resume with the options it was written "
                    "with, or start a new run.") from err
            restore_rng(saved)
            state = TrainState(**saved["position"], history=saved["history"])
            logger.info("resuming training at epoch %d, batch %d", state.epoch, state.batch)
        if not sync.same([state.epoch, state.batch, state.steps]):
            raise SpaconInputError(
                "the ranks' checkpoints stop at different steps (or one is missing); resume "
                "from a set written together, or start again without resume.")
        return state


def fit(module, optimizer, batches, config: TrainConfig, state: TrainState, sync,
        checkpointer: Checkpointer, auxiliary=None) -> list[dict]:
    """Run ``config.epochs`` epochs of ``batches`` from ``state`` on, updating ``state``
    (``auxiliary``: an extra loss, see :func:`training_step`).

    Checkpoints at the end of every sampled epoch, every ``checkpoint_interval`` seconds,
    at the end and on Ctrl-C, which stops between two steps and raises
    :class:`~spacon.model.TrainingInterrupted`. Ranks stop and checkpoint at the same steps.

    Returns
    -------
    The partial last epoch as a history entry with its number of batches, when
    ``max_steps`` stopped training inside an epoch; else an empty list.
    """
    from tqdm.auto import tqdm

    n_batches = batches.n_batches
    total = config.epochs * n_batches
    interval = _bar_interval()
    # maxinterval too: tqdm's monitor thread redraws a bar idle for maxinterval (10 s)
    bar = tqdm(total=total if config.max_steps is None else min(total, config.max_steps),
               initial=state.epoch * n_batches + state.batch, disable=not config.progress,
               desc="training", unit="step", mininterval=interval,
               maxinterval=max(interval, 10.0))
    start = time.perf_counter() - state.seconds
    stop = StopFlag()
    capped = config.max_steps is not None and state.steps >= config.max_steps
    if capped and state.batch:  # resumed where the cap had stopped training
        bar.close()
        if state.batch < n_batches:  # inside an epoch
            return _finish(state, start, checkpointer, [_partial_epoch(state, sync)])
        state.end_epoch(sync)  # on an epoch's last batch (stopped before it was closed)
        return _finish(state, start, checkpointer, [])
    try:
        with stop.catching_sigint():
            while state.epoch < config.epochs and not capped:
                # closed on leaving the loop early: a batch prefetching thread stops then
                with contextlib.closing(batches.epoch(state.epoch, start=state.batch)) as epoch:
                    for batch in epoch:
                        loss = training_step(module, optimizer, batch, config, sync, auxiliary)
                        state.record(loss, len(batch.x))
                        state.seconds = time.perf_counter() - start
                        bar.update()
                        bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
                        stopping, due = sync.any([stop.requested, checkpointer.due()])
                        if stopping:
                            checkpointer.save(state)
                            raise _interrupted(state, checkpointer.path)
                        capped = config.max_steps is not None and state.steps >= config.max_steps
                        if capped:
                            break
                        if state.batch < n_batches and due:
                            checkpointer.save(state)
                if state.batch < n_batches:  # max_steps reached inside the epoch
                    return _finish(state, start, checkpointer, [_partial_epoch(state, sync)])
                state.end_epoch(sync)
                if config.mode == "sampled" or checkpointer.due():
                    checkpointer.save(state)
    finally:
        bar.close()
    return _finish(state, start, checkpointer, [])


def _partial_epoch(state: TrainState, sync) -> dict:
    """The history entry of an epoch that ``max_steps`` stopped after ``state.batch`` batches."""
    return {"epoch": len(state.history), "loss": state.epoch_loss(sync), "batches": state.batch}


def _finish(state: TrainState, start: float, checkpointer: Checkpointer, partial: list[dict]):
    state.seconds = time.perf_counter() - start
    checkpointer.save(state)
    return partial


def _interrupted(state: TrainState, path: Path | None) -> TrainingInterrupted:
    where = (f"; checkpoint saved to {path}; continue with train(..., resume=True)"
             if path is not None else "; nothing saved (no checkpoint file was given)")
    return TrainingInterrupted(
        f"training interrupted at epoch {state.epoch}, batch {state.batch}{where}", path,
        state.epoch, state.batch)
