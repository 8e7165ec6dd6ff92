"""The fixed mmap threshold really returns freed buffers to the OS (glibc Linux, in a fresh process each)."""

from __future__ import annotations

import subprocess
import sys

from hfprune.system import return_large_buffers_promptly

# After one large free, glibc would serve 2 MB buffers from the heap; the last one pins the heap's top, so
# the 49 freed before it stay resident unless every 2 MB buffer went to mmap.
_PROGRAM = """
import sys
from hfprune.system import return_large_buffers_promptly
def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
if sys.argv[1] == "fixed":
    assert return_large_buffers_promptly()
big = bytearray(8 << 20); del big  # raises glibc's dynamic threshold when it is not fixed
before = rss_mb()
buffers = [bytearray(2 << 20) for _ in range(50)]
keep = buffers[-1]; del buffers
print(rss_mb() - before)
"""


def _growth_mb(mode: str) -> float:
    done = subprocess.run([sys.executable, "-c", _PROGRAM, mode], capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def test_freed_large_buffers_leave_the_process():
    assert _growth_mb("default") > 60  # glibc's default behaviour: the freed buffers stay resident
    assert _growth_mb("fixed") < 10


def test_a_users_own_setting_wins(monkeypatch):
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert return_large_buffers_promptly() is False
