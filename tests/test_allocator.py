"""Freed memory is kept for reuse: a large block allocated again costs no new page faults."""

from __future__ import annotations

import subprocess
import sys

import pytest

_FAULTS = """
import ctypes, resource, sys
from steik.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
size = 64 * 2**20
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)  # touch every page, as filling a tensor does
    libc.free(ctypes.c_void_p(block))
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator only")
def test_a_large_block_allocated_again_reuses_its_pages():
    def faults(mode: str) -> int:
        result = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True,
                                text=True, check=True)  # fmt: skip
        return int(result.stdout)

    pages = 64 * 2**20 // 4096
    default, kept = faults("default"), faults("keep")
    assert default > 4 * pages  # a fresh mapping, faulted in, every time
    assert kept < 2 * pages  # faulted in once, then reused
