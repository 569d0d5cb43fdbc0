"""Freed memory kept for reuse while training on the CPU (glibc's ``malloc``).

A training step allocates tens of arrays of several megabytes (a batch of 6,400 cells x 1,000
genes is 26 MB) and frees them before the next. glibc's ``malloc`` serves blocks above its
mmap threshold (at most 32 MiB, moving with what was freed) by ``mmap`` and gives them back to
the system when freed, and returns free memory at the top of its heap beyond its trim
threshold: the next step's arrays then fault their pages in again, one by one, before a single
number is computed (a 26 MB product took 9 ms to allocate and write, 5 ms into an existing
array). While training, both thresholds are raised to 1 GiB, so freed blocks are reused.
Afterwards they are set to the values glibc's own adjustment reaches after freeing such
blocks (32 and 64 MiB) and the free memory is given back (``malloc_trim``).

Nothing else changes: the same arithmetic on the same numbers. Other C libraries (macOS,
Windows, musl) are left alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import platform
from collections.abc import Iterator

M_TRIM_THRESHOLD = -1  # mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
KEEP = 1 << 30  # both thresholds while training
AFTER_MMAP = 32 << 20  # glibc's largest dynamic mmap threshold on 64-bit systems
AFTER_TRIM = 2 * AFTER_MMAP  # and the trim threshold it sets beside it


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


@contextlib.contextmanager
def keep_freed_memory() -> Iterator[bool]:
    """Inside, large freed blocks stay in the process for reuse (see the module docstring);
    yields whether the thresholds were raised.
    """
    libc = _glibc()
    raised = libc is not None and bool(libc.mallopt(M_MMAP_THRESHOLD, KEEP))
    if raised:
        libc.mallopt(M_TRIM_THRESHOLD, KEEP)
    try:
        yield raised
    finally:
        if raised:
            libc.mallopt(M_MMAP_THRESHOLD, AFTER_MMAP)
            libc.mallopt(M_TRIM_THRESHOLD, AFTER_TRIM)
            libc.malloc_trim(0)
