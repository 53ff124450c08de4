"""Keep freed memory inside the process (glibc on Linux): why CPU training steps reuse memory.

glibc serves every allocation above its mmap threshold (32 MB at most) with a fresh mapping and
returns it on free, so each large tensor of a training step costs a page fault and a zeroed page
per 4 kB, at every step. At the paper's sizes that is most tensors of a batch: on the 2-core
development machine a 4-shape DiGS step (5 x 256, 15,000 + 15,000 points) took 5.2 s with the
divergence and 2.5 s without; served from the heap and never trimmed, the memory is reused from
step to step and the same steps take 3.8 s and 2.1 s (`STEIK_BENCH_ALLOCATOR=default` against
the default of `bench/bench_batch.py`; on the autograd path of the SPEC 11 baselines the gap is
wider). The cost is a resident size that stays at its peak. Elsewhere (macOS, musl, Windows)
nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1


def keep_freed_memory() -> bool:
    """Serve large allocations from the heap and keep freed memory for reuse; True when set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _INT_MAX))
