"""A checkpoint that is never in memory whole: the parts ``hfprune prune --stream`` is built from.

The model is built on the ``meta`` device (:func:`skeleton`, no memory), the embeddings, final norm and head
are read from the safetensors files (:func:`load_non_block_weights`), and :class:`StreamedBlocks`, the engine's
block loader, reads each block's weights only when the engine reaches that block and writes it to the output,
pruned, as soon as the engine is done with it. CPU memory is then the non-block weights, one block and the
calibration activations, whatever the depth. ``hfprune.api`` puts the parts together.

Limits, each refused with a clear error: decoder-only models with one stack of blocks (not MT5), and
checkpoints whose tensor names are the model's own parameter names (true of the transformers-saved models we
know). Methods that back-propagate through the whole model (SNIP, GraSP) are refused by the api.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from ..constants import WEIGHTS_INDEX
from ..errors import CorruptCheckpointError, IncompleteCheckpointError, StreamingUnsupportedError
from ..io import atomic_write_text
from .config import read_config

#: safetensors dtype names -> torch dtypes
_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
}


class CheckpointReader:
    """A folder's safetensors tensors by name, each read from its file when asked for.

    Plain reads, not a memory map: pages of a mapped file that were touched count in the process's resident
    memory until it is unmapped, so a mapped checkpoint would look (and, under pressure, act) as big as the
    whole model by the last block. Files are little-endian, like every machine torch runs on.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        #: tensor name -> (file, offset of its first byte, its header entry)
        self.entries: dict[str, tuple[Path, int, dict[str, Any]]] = {}
        for path in sorted(folder.glob("*.safetensors")):
            size, header = read_header(path)
            for name, entry in header.items():
                self.entries[name] = (path, 8 + size + entry["data_offsets"][0], entry)

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def get(self, name: str) -> torch.Tensor:
        path, offset, entry = self.entries[name]
        start, end = entry["data_offsets"]
        raw = torch.empty(end - start, dtype=torch.uint8)
        with path.open("rb") as f:
            f.seek(offset)
            if f.readinto(raw.numpy()) != end - start:
                raise OSError(f"{path} is truncated: {name} is cut short")
        return raw.view(_DTYPES[entry["dtype"]]).reshape(entry["shape"])


#: A safetensors header larger than this is refused before it is read (the format's own limit is 100 MB).
MAX_HEADER_BYTES = 100_000_000


def read_header(path: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    """``(header size, tensor entries)`` of a safetensors file, checked against the file before anything is
    allocated: a size within the file, JSON, known dtypes, whole non-negative shapes, and offsets that lie in
    the file, match dtype x shape and do not overlap.

    Raises:
        CorruptCheckpointError: naming the file and what is wrong with it.
    """
    file_size = path.stat().st_size

    def corrupt(why: str) -> CorruptCheckpointError:
        return CorruptCheckpointError(f"{path} is not a valid safetensors file ({why}); re-download or re-save it")

    with path.open("rb") as f:
        prefix = f.read(8)
        size = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if file_size < 8:
            raise corrupt(f"it is {file_size} bytes long: empty or cut short")
        if not 0 < size <= min(MAX_HEADER_BYTES, file_size - 8):
            raise corrupt(f"its header claims {size} bytes in a file of {file_size}")
        try:
            header = json.loads(f.read(size))
        except (UnicodeDecodeError, ValueError) as err:
            raise corrupt(f"its header is not JSON: {err}") from None
    if not isinstance(header, dict):
        raise corrupt("its header is not a JSON object")
    header.pop("__metadata__", None)
    data_size, spans = file_size - 8 - size, []
    for name, entry in header.items():
        dtype = _DTYPES.get(entry.get("dtype")) if isinstance(entry, dict) else None
        shape, offsets = (entry.get("shape"), entry.get("data_offsets")) if isinstance(entry, dict) else (None, None)
        if dtype is None:
            raise corrupt(
                f"tensor {name} has an unknown dtype {entry.get('dtype') if isinstance(entry, dict) else entry!r}"
            )
        if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise corrupt(f"tensor {name} has a malformed shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(n, int) for n in offsets)):
            raise corrupt(f"tensor {name} has malformed data_offsets {offsets!r}")
        start, end = offsets
        expected = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
        if not 0 <= start <= end <= data_size or end - start != expected:
            raise corrupt(
                f"tensor {name} spans bytes {start}-{end} of {data_size}, but {dtype} x {shape} needs {expected}"
            )
        spans.append((start, end, name))
    spans.sort()
    for (_, end, first), (start, _, second) in zip(spans, spans[1:]):
        if start < end:
            raise corrupt(f"tensors {first} and {second} overlap")
    return size, header


class ShardWriter:
    """Writes ``model-0000i-of-0000n.safetensors`` shards (their number is known in advance) and the index."""

    def __init__(self, folder: Path, shards: int) -> None:
        self.folder, self.shards = folder, shards
        self.written = 0
        self.weight_map: dict[str, str] = {}
        self.total_size = 0

    def write(self, tensors: dict[str, torch.Tensor]) -> None:
        if self.written == self.shards:
            raise RuntimeError(f"all {self.shards} shards are already written")
        self.written += 1
        name = f"model-{self.written:05d}-of-{self.shards:05d}.safetensors"
        save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(self.folder / name), {"format": "pt"})
        for key, tensor in tensors.items():
            self.weight_map[key] = name
            self.total_size += tensor.numel() * tensor.element_size()

    def finish(self) -> None:
        if self.written != self.shards:
            raise RuntimeError(f"{self.written} of {self.shards} shards written")
        index = {"metadata": {"total_size": self.total_size}, "weight_map": dict(sorted(self.weight_map.items()))}
        atomic_write_text(self.folder / WEIGHTS_INDEX, json.dumps(index, indent=2) + "\n")


class StreamedBlocks:
    """The engine's block loader: blocks come from the checkpoint on ``load`` and go back to ``meta`` on ``release``.

    With a writer, a block released as *pruned* is written to its own shard first; each block is written once.
    """

    def __init__(
        self, blocks: nn.ModuleList, prefix: str, reader: CheckpointReader, writer: ShardWriter | None = None
    ) -> None:
        self.reader, self.writer = reader, writer
        self.prefix = {id(block): f"{prefix}.{i}." for i, block in enumerate(blocks)}
        self.written: set[int] = set()
        missing = [
            self.prefix[id(block)] + name
            for block in blocks
            for name, _ in block.named_parameters()
            if self.prefix[id(block)] + name not in reader
        ]
        if missing:
            raise StreamingUnsupportedError(
                f"the checkpoint has no tensor named {missing[0]} ({len(missing)} block weights missing): its "
                "names differ from the model's, so it cannot be read block by block; run without --stream"
            )
        other_shape = [
            f"{self.prefix[id(block)] + name}: {tuple(reader.entries[self.prefix[id(block)] + name][2]['shape'])} in "
            f"the weights, {tuple(param.shape)} in the config"
            for block in blocks
            for name, param in block.named_parameters()
            if list(param.shape) != reader.entries[self.prefix[id(block)] + name][2]["shape"]
        ]
        if other_shape:
            raise IncompleteCheckpointError(
                f"the weights do not match the architecture in config.json: {len(other_shape)} of another shape "
                f"than config.json says ({', '.join(other_shape[:4])}); re-download or re-save the model"
            )

    def load(self, block: nn.Module) -> None:
        prefix = self.prefix[id(block)]
        for name, param in list(block.named_parameters()):
            value = self.reader.get(prefix + name).to(param.dtype)
            _set_parameter(block, name, nn.Parameter(value, requires_grad=False))

    def release(self, block: nn.Module, pruned: bool) -> None:
        if pruned and self.writer is not None:
            if id(block) in self.written:
                raise RuntimeError(f"block {self.prefix[id(block)]} was released as pruned twice")
            prefix = self.prefix[id(block)]
            self.writer.write({prefix + name: tensor for name, tensor in block.state_dict().items()})
            self.written.add(id(block))
        for name, param in list(block.named_parameters()):
            _set_parameter(block, name, nn.Parameter(param.to("meta"), requires_grad=False))

    def all_written(self) -> bool:
        return len(self.written) == len(self.prefix)

    @contextmanager
    def per_call(self, blocks: nn.ModuleList) -> Iterator[None]:
        """While a whole-model forward runs, each block's weights exist only during its own call (a check of
        the whole model, such as a trimmed vocabulary's logits, without ever holding every block)."""
        loaded: set[int] = set()

        def load(module: nn.Module, args: Any) -> None:
            self.load(module)
            loaded.add(id(module))

        def release(module: nn.Module, args: Any, output: Any) -> None:
            loaded.discard(id(module))
            self.release(module, pruned=False)

        handles = [h for b in blocks for h in (b.register_forward_pre_hook(load), b.register_forward_hook(release))]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()
            for block in blocks:
                if id(block) in loaded:
                    self.release(block, pruned=False)


def _set_parameter(root: nn.Module, name: str, value: nn.Parameter) -> None:
    module_name, _, attr = name.rpartition(".")
    module = root.get_submodule(module_name) if module_name else root
    module._parameters[attr] = value


def skeleton(folder: Path, *, dtype: str | torch.dtype = "auto", trust_remote_code: bool = False) -> nn.Module:
    """The model with every parameter on ``meta`` (buffers real), in the checkpoint's dtype unless ``dtype``."""
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    config = read_config(folder, folder.name, trust_remote_code)
    if getattr(config, "is_encoder_decoder", False):
        raise StreamingUnsupportedError(
            f"--stream handles decoder-only models; {config.model_type} is an encoder-decoder: run without --stream"
        )
    if dtype == "auto":
        chosen = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or torch.float32
        dtype = getattr(torch, chosen) if isinstance(chosen, str) else chosen
    elif isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, trust_remote_code=trust_remote_code)
    model.tie_weights()  # on meta the head is not yet tied to the embeddings; it must share their tensor
    return model.eval()


def load_non_block_weights(model: nn.Module, block_prefix: str, reader: CheckpointReader) -> None:
    """Read every parameter outside the blocks; tied parameters (embeddings and head) stay one tensor."""
    owners: dict[int, list[tuple[nn.Module, str]]] = {}
    names: dict[int, list[str]] = {}
    for module_name, module in model.named_modules():
        for attr, param in module._parameters.items():
            full = f"{module_name}.{attr}" if module_name else attr
            if param is None or full.startswith(block_prefix + "."):
                continue
            owners.setdefault(id(param), []).append((module, attr))
            names.setdefault(id(param), []).append(full)
    for key, places in owners.items():
        stored = [name for name in names[key] if name in reader]
        if not stored:
            raise StreamingUnsupportedError(
                f"the checkpoint has no tensor named {names[key][0]}: its names differ from the model's; "
                "run without --stream"
            )
        old = places[0][0]._parameters[places[0][1]]
        value = nn.Parameter(reader.get(stored[0]).to(old.dtype), requires_grad=False)
        for module, attr in places:
            module._parameters[attr] = value


def non_block_state(model: nn.Module, block_prefix: str) -> dict[str, torch.Tensor]:
    """What ``save_pretrained`` would write outside the blocks: a tied tensor once, under its first name."""
    seen: set[int] = set()
    state = {}
    for name, tensor in model.state_dict().items():
        if name.startswith(block_prefix + "."):
            continue
        if tensor.data_ptr() in seen:
            continue  # the head tied to the embeddings: transformers re-ties it on load
        seen.add(tensor.data_ptr())
        state[name] = tensor
    return state
