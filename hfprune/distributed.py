"""One hfprune job on several processes: the launcher's environment, the process group, the collectives hfprune uses.

``torchrun`` and ``accelerate launch`` start one process per rank and tell each its place through the
environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``). :func:`world` sees them
and joins the process group once (gloo for CPU tensors, NCCL for CUDA tensors where NCCL exists); without them
the world is a group of one, every collective returns at once, and hfprune runs as a single process.

Transport and scheduling are ``torch.distributed``'s; this module only names the few collectives the rooms
above need (:class:`Group`) and turns their failures into one clear error. A rank that dies closes its
connections, so the others' next collective fails at once (gloo) or at the group's timeout
(``HFPRUNE_DIST_TIMEOUT`` seconds, default 30 minutes: a rank that hangs); either way every other rank raises
:class:`~hfprune.errors.RankLostError` instead of waiting forever.

A job can also run on part of the world: :func:`split` cuts a group into sub-groups (``hfprune sweep`` gives
each its own cells) and :func:`within` makes one of them the group that :func:`current` returns.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch

from .constants import DEFAULT_DIST_TIMEOUT_S, DIST_TIMEOUT_ENV
from .errors import HfpruneError, LauncherEnvironmentError, RankLostError, RanksDisagreeError

T = TypeVar("T")

#: Launchers told apart by the variables they set (all of them set RANK and WORLD_SIZE).
TORCHRUN, ACCELERATE, ENV, SINGLE = "torchrun", "accelerate", "env", "none"


@dataclass(frozen=True)
class Launch:
    """What the launcher's environment says about this process."""

    launcher: str = SINGLE  # torchrun, accelerate, env (RANK/WORLD_SIZE set by hand or another tool), none
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1


def detect_launch(environ: Mapping[str, str] | None = None) -> Launch:
    """The launch this process is part of, from its environment; ``none`` (world size 1) without a launcher.

    Raises:
        LauncherEnvironmentError: the variables are there but unusable (not numbers, rank outside the world,
            no rendezvous address for a world of several processes).
    """
    env = os.environ if environ is None else environ
    if "RANK" not in env and "WORLD_SIZE" not in env:
        return Launch()
    try:
        rank, world_size = int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1"))
        local_rank = int(env.get("LOCAL_RANK", str(rank)))
        local_world_size = int(env.get("LOCAL_WORLD_SIZE", str(world_size)))
    except ValueError:
        raise LauncherEnvironmentError(
            "RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE must be whole numbers; start hfprune with torchrun "
            "or accelerate launch, which set them"
        ) from None
    if world_size < 1 or not 0 <= rank < world_size:
        raise LauncherEnvironmentError(f"RANK={rank} is not a rank of a world of WORLD_SIZE={world_size} processes")
    if world_size > 1 and not (env.get("MASTER_ADDR") and env.get("MASTER_PORT")):
        raise LauncherEnvironmentError(
            f"WORLD_SIZE={world_size} but MASTER_ADDR/MASTER_PORT are not set: the ranks cannot find each other; "
            "start hfprune with torchrun or accelerate launch"
        )
    if any(key.startswith("ACCELERATE_") for key in env):
        launcher = ACCELERATE
    elif "TORCHELASTIC_RUN_ID" in env:
        launcher = TORCHRUN
    else:
        launcher = ENV
    return Launch(launcher, rank, world_size, local_rank, local_world_size)


def timeout_s(environ: Mapping[str, str] | None = None) -> float:
    """How long a collective may wait for the other ranks: ``HFPRUNE_DIST_TIMEOUT`` seconds, or the default."""
    raw = (os.environ if environ is None else environ).get(DIST_TIMEOUT_ENV)
    if not raw:
        return float(DEFAULT_DIST_TIMEOUT_S)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise LauncherEnvironmentError(f"{DIST_TIMEOUT_ENV}={raw!r} must be a positive number of seconds")
    return value


@dataclass(frozen=True)
class Group:
    """The processes that run one job together. A group of one (the default) makes every collective a no-op.

    ``rank`` and ``size`` are positions inside the group; ``ranks`` are the members' ranks in the world.
    Every member must call the same collectives in the same order; ``what`` names the step in error messages.
    """

    rank: int = 0
    size: int = 1
    ranks: tuple[int, ...] = (0,)
    pg: Any = None  # the torch ProcessGroup; None for a group of one
    launch: Launch = Launch()

    @property
    def is_main(self) -> bool:
        """The member that writes outputs and prints (rank 0 of the group)."""
        return self.rank == 0

    def share(self, count: int) -> list[int]:
        """This member's items of ``count`` (round-robin: item ``i`` belongs to member ``i % size``)."""
        return list(range(self.rank, count, self.size))

    # -- tensors ---------------------------------------------------------------------------------------
    def all_reduce_(self, tensors: Sequence[torch.Tensor], what: str) -> None:
        """Sum each tensor over the group, in place. Give fp64 (or integer) tensors when the sum must be exact."""
        if self.size == 1:
            return
        from torch import distributed as dist

        with self._failures(what):
            for tensor in tensors:
                dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=self.pg)

    def broadcast_(self, tensors: Sequence[torch.Tensor], what: str) -> None:
        """Overwrite each tensor with the main member's, bit for bit (any dtype: sent as bytes)."""
        if self.size == 1:
            return
        from torch import distributed as dist

        with self._failures(what):
            for tensor in tensors:
                contiguous = tensor.is_contiguous()
                data = tensor.data if contiguous else tensor.data.contiguous()
                dist.broadcast(data.view(-1).view(torch.uint8), src=self.ranks[0], group=self.pg)
                if not contiguous:
                    tensor.data.copy_(data)

    # -- Python objects --------------------------------------------------------------------------------
    def all_gather_object(self, value: T, what: str) -> list[T]:
        """Every member's ``value``, in member order."""
        if self.size == 1:
            return [value]
        from torch import distributed as dist

        gathered: list[Any] = [None] * self.size
        with self._failures(what):
            dist.all_gather_object(gathered, value, group=self.pg)
        return gathered

    def broadcast_object(self, value: T, what: str) -> T:
        """The main member's ``value`` on every member."""
        if self.size == 1:
            return value
        from torch import distributed as dist

        box = [value if self.is_main else None]
        with self._failures(what):
            dist.broadcast_object_list(box, src=self.ranks[0], group=self.pg)
        return box[0]

    def barrier(self, what: str) -> None:
        """Wait until every member got here."""
        self.all_gather_object(None, what)

    def agree(self, action: Callable[[], T], what: str) -> T:
        """Run ``action`` on the main member only and give every member its result, or raise its error everywhere.

        For decisions every member must take alike (does the output exist, is this result cached) and for
        writing outputs: a user error on the main member (:class:`~hfprune.errors.HfpruneError`) is raised on
        every member with the same message, so all exit the same way.
        """
        if self.size == 1:
            return action()
        outcome: tuple[bool, Any] | None = None
        if self.is_main:
            try:
                outcome = (True, action())
            except HfpruneError as err:
                outcome = (False, err)
        outcome = self.broadcast_object(outcome, what)
        assert outcome is not None
        ok, value = outcome
        if not ok:
            value.raised_on_every_rank = True  # the CLI prints it once, on rank 0
            raise value
        return value

    def check_same(self, value: Any, what: str, hint: str) -> None:
        """Raise :class:`~hfprune.errors.RanksDisagreeError` unless every member holds the same ``value``."""
        if self.size == 1:
            return
        values = self.all_gather_object(value, f"comparing {what} across ranks")
        differing = [self.ranks[i] for i, other in enumerate(values) if other != values[0]]
        if differing:
            raise RanksDisagreeError(
                f"rank(s) {', '.join(map(str, differing))} hold other {what} than rank {self.ranks[0]}; {hint}"
            )

    @contextmanager
    def _failures(self, what: str) -> Iterator[None]:
        try:
            yield
        except (RuntimeError, pickle.UnpicklingError, EOFError, ConnectionError) as err:
            reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
            raise RankLostError(
                f"rank {self.ranks[self.rank]} of {self.launch.world_size}: {what} failed because another rank "
                f"stopped answering (it died, or hung past the {timeout_s():.0f} s timeout, {DIST_TIMEOUT_ENV}); "
                f"the first error is in that rank's output, nothing was written ({reason})"
            ) from err


_WORLD: Group | None = None
_STACK: list[Group] = []
#: whether :func:`world` joined the process group itself (then :func:`teardown` leaves it)
_JOINED = False


def world() -> Group:
    """Every process of the launch; joins the process group on first use (idempotent).

    A process group the caller made already (``torch.distributed.init_process_group``) is used as it is.

    Raises:
        LauncherEnvironmentError: the launcher's variables are unusable.
        RankLostError: not every rank joined within the timeout.
    """
    global _WORLD, _JOINED
    if _WORLD is not None:
        return _WORLD
    launch = detect_launch()
    from torch import distributed as dist

    if dist.is_available() and dist.is_initialized():
        size, rank = dist.get_world_size(), dist.get_rank()
        launch = Launch(
            launch.launcher if launch.world_size == size else ENV,
            rank,
            size,
            launch.local_rank,
            launch.local_world_size,
        )
        _WORLD = Group(rank, size, tuple(range(size)), dist.group.WORLD if size > 1 else None, launch)
        return _WORLD
    if launch.world_size == 1:
        _WORLD = Group(launch=launch)
        return _WORLD
    if not dist.is_available():
        raise LauncherEnvironmentError("this torch build has no torch.distributed; run hfprune as one process")
    if torch.cuda.is_available():
        torch.cuda.set_device(launch.local_rank % torch.cuda.device_count())
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
    group = Group(launch.rank, launch.world_size, tuple(range(launch.world_size)), None, launch)
    with group._failures("joining the process group"):
        dist.init_process_group(backend=backend, init_method="env://", timeout=timedelta(seconds=timeout_s()))
    _WORLD, _JOINED = Group(launch.rank, launch.world_size, group.ranks, dist.group.WORLD, launch), True
    return _WORLD


def started() -> bool:
    """Whether :func:`world` has run in this process (a caller that started it should also end it)."""
    return _WORLD is not None


def current() -> Group:
    """The group the job at hand runs on: the innermost :func:`within`, else the :func:`world`."""
    return _STACK[-1] if _STACK else world()


@contextmanager
def within(group: Group) -> Iterator[Group]:
    """Make ``group`` the :func:`current` one for the duration."""
    _STACK.append(group)
    try:
        yield group
    finally:
        _STACK.pop()


def split(group: Group, parts: int) -> tuple[int, Group]:
    """Cut ``group`` into ``parts`` sub-groups, member ``r`` into sub-group ``r % parts``; return (index, sub-group).

    Every member must call it (creating a process group is itself collective).
    """
    parts = max(1, min(parts, group.size))
    index = group.rank % parts
    members = [tuple(group.ranks[r] for r in range(group.size) if r % parts == part) for part in range(parts)]
    mine = members[index]
    rank = mine.index(group.ranks[group.rank])
    if parts == 1:
        return 0, group
    from torch import distributed as dist

    handles = []
    with group._failures("creating the sub-groups"):
        for ranks in members:  # every member creates every sub-group, in the same order
            handles.append(dist.new_group(list(ranks)) if len(ranks) > 1 else None)
    return index, Group(rank, len(mine), mine, handles[index], group.launch)


def describe(group: Group | None = None) -> dict[str, Any]:
    """What results record about the processes that made them: the launcher and how many processes."""
    group = group or current()
    return {"launcher": group.launch.launcher, "world_size": group.size}


def rank_device(device: torch.device) -> torch.device:
    """``cuda`` without an index means this rank's own GPU (``LOCAL_RANK``) when several processes share a machine."""
    launch = current().launch
    if device.type == "cuda" and device.index is None and launch.world_size > 1 and torch.cuda.is_available():
        return torch.device("cuda", launch.local_rank % torch.cuda.device_count())
    return device


def rank_gpus() -> list[int]:
    """The GPUs this rank may place a model on: all of them alone, its share when ranks share a machine."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    launch = current().launch
    if launch.world_size == 1 or launch.local_world_size <= 1:
        return list(range(count))
    return [gpu for gpu in range(count) if gpu % launch.local_world_size == launch.local_rank]


def teardown() -> None:
    """Leave the process group this module joined (at the end of a command); safe to call when there is none."""
    global _WORLD, _JOINED
    if _JOINED:
        from torch import distributed as dist

        if dist.is_initialized():
            try:
                dist.destroy_process_group()
            except Exception:  # noqa: BLE001 - a broken group (a rank died) has nothing left to release
                pass
    _WORLD, _JOINED = None, False
    _STACK.clear()
