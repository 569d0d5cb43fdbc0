"""Batches made one step ahead in a background thread, so a GPU step does not wait for them."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

import torch

T = TypeVar("T")

_END = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def prefetched(items: Iterator[T], device, depth: int = 1) -> Iterator[T]:
    """The items of ``items`` in order, each made in a background thread, ``depth`` ahead.

    On a GPU a sampled batch is drawn and built with a few hundred small kernels, and the
    sampler waits on the device wherever a size depends on the data; the training step is
    another thousand launches. Both are bound by the host's time per launch, not by the GPU.
    Made in a second thread, the next batch's launches and waits overlap the step's (torch
    releases the GIL while it dispatches an op). The thread issues its work on the caller's
    current stream of ``device``, so a batch's kernels run before those of the step that
    reads it, and memory freed by one thread is reused in stream order by the other.

    The thread starts an item only when fewer than ``depth`` made items wait to be taken,
    so besides the item the caller holds, at most ``depth`` are alive. An error in the thread
    is raised here, at the item it stopped at; closing the iterator (or leaving a loop over
    it early) stops the thread.
    """
    device = torch.device(device)
    stream = torch.cuda.current_stream(device) if device.type == "cuda" else None
    out: queue.SimpleQueue = queue.SimpleQueue()
    slots = threading.Semaphore(depth)
    stop = threading.Event()

    def free_slot() -> bool:
        while not stop.is_set():
            if slots.acquire(timeout=0.05):
                return True
        return False

    def work() -> None:
        try:
            with contextlib.ExitStack() as scope:
                if stream is not None:  # current device and stream are per thread
                    scope.enter_context(torch.cuda.device(stream.device))
                    scope.enter_context(torch.cuda.stream(stream))
                iterator = iter(items)
                while free_slot():
                    item = next(iterator, _END)
                    out.put(item)
                    if item is _END:
                        return
        except BaseException as err:  # noqa: BLE001 - handed to the consuming thread
            out.put(_Failure(err))

    thread = threading.Thread(target=work, name="spacon-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = out.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            slots.release()  # the caller holds this one: the next may be made
            yield item
    finally:
        stop.set()
        thread.join()
