"""Models bigger than one device: accelerate's device maps, memory limits and disk offload.

``--device-map auto|balanced|sequential`` lets accelerate place the model's modules over the GPUs, the CPU and
the disk (``from_pretrained(device_map=..., max_memory=..., offload_folder=...)``); its hooks bring each
module's weights to where it runs for the length of its forward. Evaluation and the Space run the model as
placed. Pruning takes one block at a time out of the placement (:class:`DispatchedBlocks`, the engine's block
loader): only that block is on the compute device, and the weights that lived offloaded go back there pruned.

Under a launcher each rank places its own copy on its share of the machine's GPUs
(:func:`hfprune.distributed.rank_gpus`), so ranks sharing a machine never place weights on each other's GPUs.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import distributed
from ..errors import DevicePlacementError

#: accelerate's placement strategies hfprune offers
DEVICE_MAPS = ("auto", "balanced", "sequential")
_KEY = re.compile(r"^(cpu|mps|xpu|\d+)$")


@dataclass(frozen=True)
class Placement:
    """Where a model's weights may live: a device-map strategy, memory per device, and a folder for disk offload."""

    device_map: str
    max_memory: dict[int | str, int | str] | None = None
    offload_folder: Path | None = None

    @classmethod
    def parse(
        cls, device_map: str | None, max_memory: str | dict | None = None, offload_folder: str | Path | None = None
    ) -> Placement | None:
        """A checked placement, or ``None`` when no ``device_map`` is given (the model loads whole on one device).

        Raises:
            DevicePlacementError: an unknown strategy, a malformed ``--max-memory``, or limits without a map.
        """
        if device_map is None:
            if max_memory or offload_folder:
                raise DevicePlacementError(
                    "--max-memory and --offload-folder need --device-map auto|balanced|sequential"
                )
            return None
        if device_map not in DEVICE_MAPS:
            raise DevicePlacementError(f"unknown --device-map '{device_map}'; choose one of {', '.join(DEVICE_MAPS)}")
        limits = parse_max_memory(max_memory) if isinstance(max_memory, str) else max_memory
        return cls(device_map, limits or None, Path(offload_folder).expanduser() if offload_folder else None)

    def from_pretrained_kwargs(self, offload_folder: Path) -> dict[str, Any]:
        """What ``from_pretrained`` takes (``offload_folder``: a fresh one, see :func:`scratch_folder`)."""
        return {"device_map": self.device_map, "max_memory": self._rank_limits(), "offload_folder": str(offload_folder)}

    def describe(self) -> dict[str, Any]:
        limits = {str(k): v for k, v in (self.max_memory or {}).items()}
        return {"device_map": self.device_map, "max_memory": limits or None}

    def _rank_limits(self) -> dict[int | str, int | str] | None:
        """Memory limits restricted to this rank's GPUs when several ranks share a machine."""
        gpus = distributed.rank_gpus()
        all_gpus = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        if gpus == all_gpus:
            return self.max_memory
        from accelerate.utils import get_max_memory

        limits = dict(self.max_memory) if self.max_memory else get_max_memory()
        return {k: v for k, v in limits.items() if not isinstance(k, int) or k in gpus}


def parse_max_memory(text: str) -> dict[int | str, int | str]:
    """``"0=20GiB,1=20GiB,cpu=64GiB"`` -> ``{0: "20GiB", 1: "20GiB", "cpu": "64GiB"}`` (a size or a byte count).

    Raises:
        DevicePlacementError: an entry that is not ``DEVICE=SIZE`` or a size accelerate cannot read.
    """
    from accelerate.utils import convert_file_size_to_int

    limits: dict[int | str, int | str] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, size = part.partition("=")
        key, size = key.strip(), size.strip()
        if not sep or not _KEY.match(key) or not size:
            raise DevicePlacementError(
                f"--max-memory entry '{part}' is not DEVICE=SIZE; write e.g. --max-memory 0=20GiB,1=20GiB,cpu=64GiB"
            )
        value: int | str = int(size) if size.isdigit() else size
        try:
            if convert_file_size_to_int(value) < 0:
                raise ValueError(size)
        except ValueError:
            raise DevicePlacementError(
                f"--max-memory size '{size}' is not a size such as 500MB, 20GiB or 1048576"
            ) from None
        limits[int(key) if key.isdigit() else key] = value
    if not limits:
        raise DevicePlacementError("--max-memory is empty; write e.g. --max-memory cpu=8GiB")
    return limits


def scratch_folder(parent: Path | None = None) -> Path:
    """A fresh folder for offloaded weights inside ``parent`` (the user's ``--offload-folder``; default the
    system's temporary folder): never a folder that holds anything else."""
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="hfprune-offload-", dir=parent))


def remove_with(owner: nn.Module, folder: Path) -> None:
    """Delete ``folder`` when ``owner`` (the model whose offloaded weights it holds) is garbage-collected, at exit,
    or at :func:`release`, whichever comes first."""
    cleanups = owner.__dict__.setdefault("_hfprune_offload_cleanups", [])
    cleanups.append(weakref.finalize(owner, shutil.rmtree, folder, True))


def release(model: nn.Module) -> None:
    """Delete the model's offload folders now: call when done with a placed model (its offloaded weights go)."""
    for cleanup in model.__dict__.pop("_hfprune_offload_cleanups", []):
        cleanup()


def is_dispatched(model: nn.Module) -> bool:
    """Whether accelerate's hooks place this model's modules (a device map over several devices or the disk)."""
    return any(hasattr(module, "_hf_hook") for module in model.modules())


def input_device(model: nn.Module) -> torch.device:
    """Where to put a placed model's inputs: the device its first module runs on (CPU when that is the disk)."""
    device_map = getattr(model, "hf_device_map", None) or {}
    first = next(iter(device_map.values()), "cpu")
    if isinstance(first, int):
        return torch.device("cuda", first)
    return torch.device("cpu" if first in ("cpu", "disk") else first)


def state_tensors(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """``model.state_dict()`` item by item, an offloaded tensor read from where accelerate keeps it (one at a time)."""
    for name, tensor in model.state_dict().items():
        yield name, offloaded_tensor(model, name) if tensor.device.type == "meta" else tensor


def weights(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """Each parameter once (a tied head is the embeddings: once), offloaded ones read in, as for a model in memory.

    accelerate gives each offloaded module its own ``meta`` parameter, which hides that the head is tied to the
    embeddings; transformers' map of tied names (``all_tied_weights_keys``) says so instead.
    """
    tied = set(getattr(model, "all_tied_weights_keys", None) or {}) if is_dispatched(model) else set()
    for name, param in model.named_parameters():
        if name in tied:
            continue
        yield name, offloaded_tensor(model, name) if param.device.type == "meta" else param


def offloaded_tensor(model: nn.Module, name: str) -> torch.Tensor:
    """The value of an offloaded (``meta``) tensor, from the weights map of the innermost hook that holds it."""
    parts = name.split(".")
    for depth in range(len(parts) - 1, -1, -1):
        owner = model.get_submodule(".".join(parts[:depth]))
        weights_map = getattr(getattr(owner, "_hf_hook", None), "weights_map", None)
        if weights_map is not None:
            return weights_map[".".join(parts[depth:])]
    raise RuntimeError(f"{name} is on the meta device and no accelerate hook holds its value")


class DispatchedBlocks:
    """The engine's block loader for a model placed by accelerate: one block at a time leaves the placement.

    ``load`` takes the block's hooks off and reads its offloaded weights (CPU or disk) into real CPU tensors;
    the engine then moves the block to the compute device as it does any block. ``release`` puts the weights
    that were offloaded back into the offload store (pruned ones as safetensors files in a scratch folder
    beside the offload folder: the original checkpoint, which accelerate reads offloaded weights from, is
    never written) and puts the hooks back, which returns a resident block to its device and an offloaded
    one to ``meta``. ``save_pretrained`` then reads the pruned weights through the same store.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._taken: dict[int, list[tuple[nn.Module, Any]]] = {}
        self._scratch: Path | None = None

    def load(self, block: nn.Module) -> None:
        from accelerate.hooks import remove_hook_from_module
        from accelerate.utils import named_module_tensors, set_module_tensor_to_device

        taken = [(module, module._hf_hook) for module in block.modules() if hasattr(module, "_hf_hook")]
        self._taken[id(block)] = taken
        for module, hook in taken:
            remove_hook_from_module(module)
            if getattr(hook, "offload", False):
                for name, _ in named_module_tensors(
                    module, include_buffers=hook.offload_buffers, recurse=hook.place_submodules
                ):
                    value = hook.weights_map[name].to("cpu").clone()
                    set_module_tensor_to_device(module, name, "cpu", value=value)

    def release(self, block: nn.Module, pruned: bool) -> None:
        from accelerate.hooks import add_hook_to_module
        from accelerate.utils import named_module_tensors

        for module, hook in self._taken.pop(id(block), []):
            if getattr(hook, "offload", False) and pruned:
                for name, tensor in named_module_tensors(
                    module, include_buffers=hook.offload_buffers, recurse=hook.place_submodules
                ):
                    self._store(hook.weights_map, name, tensor.detach().to("cpu"))
            add_hook_to_module(module, hook)  # offloaded: back to meta; resident: back to its device

    def _store(self, weights_map: Any, name: str, tensor: torch.Tensor) -> None:
        """Make ``weights_map[name]`` return ``tensor`` from now on, without writing the checkpoint."""
        from accelerate.utils import OffloadedWeightsLoader, PrefixedDataset
        from safetensors.torch import save_file

        if not isinstance(weights_map, PrefixedDataset):
            weights_map[name] = tensor
            return
        store, key = weights_map.dataset, weights_map.prefix + name
        if not isinstance(store, OffloadedWeightsLoader) or key in store.state_dict:
            (store.state_dict if isinstance(store, OffloadedWeightsLoader) else store)[key] = tensor
            return
        if self._scratch is None:
            self._scratch = scratch_folder(Path(store.save_folder) if store.save_folder else None)
            remove_with(self.model, self._scratch)
        path = self._scratch / f"{key}.safetensors"
        save_file({key: tensor.contiguous()}, str(path))
        store.index[key] = {
            "safetensors_file": str(path),
            "weight_name": key,
            "dtype": str(tensor.dtype).removeprefix("torch."),
        }
