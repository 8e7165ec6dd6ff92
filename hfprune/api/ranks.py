"""Under a launcher: what every rank records, and every rank's return once rank 0 has written."""

from __future__ import annotations

from .. import distributed
from ..system import peak_memory
from .settings import PruneResult, PruneSettings


def _record_ranks(result: PruneResult, group: distributed.Group, settings: PruneSettings) -> None:
    """With several ranks, what each one took (peak memory, prune time): rank 0 writes them all.
    ``settings`` are resolved (their device is this rank's)."""
    if group.size == 1:
        return
    mine = {**peak_memory(settings.device), **result.timings}
    result.distributed["ranks"] = group.all_gather_object(mine, "gathering each rank's time and memory")


def _after_rank0_wrote(result: PruneResult, group: distributed.Group) -> PruneResult:
    """Every rank returns once rank 0 has moved the streamed output into place (a rank that failed is noticed)."""
    group.barrier("waiting for rank 0 to write the pruned model")
    return result
