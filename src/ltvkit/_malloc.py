"""glibc malloc settings for large numpy temporaries.

glibc hands every block above its mmap threshold (128 KiB at start) to the
kernel on free, so each temporary array of a likelihood evaluation over
hundreds of thousands of rows is faulted in afresh: that doubled the time
of a BG/NBD fit on a million customers. glibc raises the threshold by
itself once it frees a large block it allocated, but in a process whose big
buffers come from DuckDB's and Arrow's own allocators that may never happen.
Setting the mmap threshold that rule would reach (32 MiB) keeps freed
temporaries for reuse. The trim threshold is set to 16 MiB, not the 64 MiB
the rule would pair with it: the fits run as fast, and the process keeps at
most 16 MiB of freed memory at the top of its heap.

Set the environment variable ``LTVKIT_MALLOC_TUNING=0`` to leave malloc as
it is. Other C libraries and systems are left alone.
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 16 * 2**20


def tune_malloc() -> bool:
    """Apply the settings above; return whether they were applied."""
    if not sys.platform.startswith("linux"):
        return False
    if os.environ.get("LTVKIT_MALLOC_TUNING", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
        _ = libc.gnu_get_libc_version  # glibc only
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    return ok and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
