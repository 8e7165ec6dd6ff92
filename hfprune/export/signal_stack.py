"""The main thread's alternate signal stack, put back after the export's libraries have run.

Measured here (optimum-intel, NNCF, OpenVINO): an int8 export installs an alternate signal stack of its own on the
calling thread, and a data-aware int4 export installs another and unmaps its memory while it is still installed.
Python runs its SIGINT handler on that stack (``SA_ONSTACK``), so the next Ctrl-C, in a notebook or in any work the
process does after the export, killed it with SIGSEGV instead of raising KeyboardInterrupt. Restoring the stack
the thread had before (Python's faulthandler's, or none) closes that for every library the export calls.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Iterator
from contextlib import contextmanager


class _StackT(ctypes.Structure):
    """glibc's ``stack_t``."""

    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.sigaltstack  # noqa: B018 - checked rather than assumed
    except (OSError, AttributeError):
        return None
    return libc


def _read() -> _StackT | None:
    """This thread's alternate signal stack; None where it cannot be read (not Linux, no sigaltstack)."""
    libc, now = _libc(), _StackT()
    if libc is None or libc.sigaltstack(None, ctypes.byref(now)) != 0:
        return None
    return now


def current_signal_stack() -> tuple[int, int, int] | None:
    """This thread's alternate signal stack as (address, flags, size); None where it cannot be read."""
    now = _read()
    return None if now is None else (int(now.ss_sp or 0), int(now.ss_flags), int(now.ss_size))


@contextmanager
def signal_stack_kept() -> Iterator[None]:
    """Run the block, then give this thread back the alternate signal stack it had before."""
    before = _read()
    try:
        yield
    finally:
        if before is not None:
            # the stack as it was; SS_DISABLE (flag 2) in ``before``, when there was none, disables the new one
            _libc().sigaltstack(ctypes.byref(before), None)
