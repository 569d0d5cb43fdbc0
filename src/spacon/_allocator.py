"""Freed memory kept for reuse while training (glibc's ``malloc``).

A training step allocates tens of arrays of several megabytes (a batch of 6,400 cells x 1,000
genes is 26 MB) and frees them before the next. glibc's ``malloc`` serves blocks above its
mmap threshold (at most 32 MiB, moving with what was freed) by ``mmap`` and gives them back to
the system when freed, and returns free memory at the top of its heap beyond its trim
threshold: the next step's arrays then fault their pages in again, one by one, before a single
number is computed (a 26 MB product took 9 ms to allocate and write, 5 ms into an existing
array). While training, both thresholds are raised to 1 GiB (32 MiB where an older glibc
refuses more), so freed blocks are reused. Afterwards they are set to 32 and 64 MiB, about
where glibc's own adjustment moves them after freeing such blocks, and the free memory is
given back (``malloc_trim``). Setting them switches glibc's adjustment off for the rest of the
process: the thresholds stay at those values.

Nothing else changes: the same arithmetic on the same numbers. Other C libraries (macOS,
Windows, musl), and a process whose user set glibc's malloc options (``MALLOC_*_`` variables,
``GLIBC_TUNABLES``), are left alone. Trainings running at once in threads share one raise:
the last to finish lowers the thresholds.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import threading
from collections.abc import Iterator

M_TRIM_THRESHOLD = -1  # mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
KEEP = 1 << 30  # both thresholds while training
OLD_GLIBC_MAX = 32 << 20  # the largest mmap threshold glibc 2.34 and older accept (64-bit)
AFTER_MMAP = 32 << 20  # glibc's largest dynamic mmap threshold on 64-bit systems
AFTER_TRIM = 2 * AFTER_MMAP  # and the trim threshold it sets beside it

_lock = threading.Lock()
_state = {"depth": 0, "threshold": 0}


def _glibc():
    """The C library's handle where it is glibc with ``mallopt``, else ``None``."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc


def _user_set() -> bool:
    """Whether the environment sets glibc's malloc options (then they are the user's)."""
    return (any(name in os.environ for name in ("MALLOC_MMAP_THRESHOLD_",
                                                 "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"))
            or "malloc." in os.environ.get("GLIBC_TUNABLES", ""))


def _raise(libc) -> int:
    """Raise both thresholds; the mmap threshold set (0: none)."""
    for threshold in (KEEP, OLD_GLIBC_MAX):
        if libc.mallopt(M_MMAP_THRESHOLD, threshold):
            libc.mallopt(M_TRIM_THRESHOLD, KEEP)
            return threshold
    return 0


@contextlib.contextmanager
def keep_freed_memory() -> Iterator[int]:
    """Inside, large freed blocks stay in the process for reuse (see the module docstring);
    yields the mmap threshold in force (0 where nothing was changed).
    """
    libc = None if _user_set() else _glibc()
    if libc is None:
        yield 0
        return
    with _lock:
        if _state["depth"] == 0:
            _state["threshold"] = _raise(libc)
        _state["depth"] += 1
        threshold = _state["threshold"]
    try:
        yield threshold
    finally:
        with _lock:
            _state["depth"] -= 1
            if _state["depth"] == 0 and _state["threshold"]:
                libc.mallopt(M_MMAP_THRESHOLD, AFTER_MMAP)
                libc.mallopt(M_TRIM_THRESHOLD, AFTER_TRIM)
                libc.malloc_trim(0)
                _state["threshold"] = 0
