"""Ctrl-C held back while a training step changes the weights, so a saved state is always a whole step.

A KeyboardInterrupt raised inside ``optimizer.step()`` (or between it and the scheduler's step and the mask's
re-application) would leave some weights updated and the step counter not: the checkpoint saved on Ctrl-C would
then name the previous step with weights already past it, and ``--resume`` would apply that batch twice.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def interrupts_held() -> Iterator[None]:
    """Run the block to its end even if SIGINT arrives; then act on it as the handler in place would have.

    Only the main thread can set signal handlers; elsewhere (a thread running training) the block runs as is.
    A SIGINT that was ignored stays ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[FrameType | None] = []
    previous = signal.signal(signal.SIGINT, lambda _signum, frame: caught.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if not caught:
        return
    if callable(previous):
        previous(signal.SIGINT, caught[0])  # Python's own handler raises KeyboardInterrupt here
    elif previous == signal.SIG_DFL:
        signal.raise_signal(signal.SIGINT)
