"""Evaluation batches shared by the ranks of a launch: each rank scores its own, every rank gets all the scores.

A batch is the unit dealt out (batch ``i`` to rank ``i % size``), never split: padding, and so every score,
depend on which rows share a batch, and a batch is the same rows here as in one process. Scores are per row
(fp64 sums of fp32 log-probabilities, made inside the batch), gathered and put back in batch order, so any
total computed from them afterwards adds the same numbers in the same order as one process: the results are
identical, not merely close.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from tqdm.auto import tqdm

from .. import distributed

R = TypeVar("R")


def run_batches(count: int, score: Callable[[int], R], *, desc: str, progress: bool) -> list[R]:
    """``[score(0), ..., score(count - 1)]``, each batch scored by one rank of the current group."""
    group = distributed.current()
    mine: Iterable[int] = group.share(count)
    if progress and group.is_main:
        mine = tqdm(list(mine), desc=desc, unit="batch", leave=False)
    done = {index: score(index) for index in mine}
    if group.size == 1:
        return [done[index] for index in range(count)]
    merged: dict[int, R] = {}
    for part in group.all_gather_object(done, f"gathering the {desc} scores"):
        merged.update(part)
    return [merged[index] for index in range(count)]
