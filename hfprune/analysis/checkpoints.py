"""Read the masks of pruned folders without building the models: zeros of the prunable weights.

The names and kinds of the prunable layers come from a pruned folder's ``hfprune.json``; their weights are
read tensor by tensor from the safetensors shards, so comparing several large checkpoints costs memory for
one layer at a time (per folder).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from ..constants import METADATA_FILE
from ..errors import AnalysisInputError
from ..io import read_json_object


@dataclass
class Checkpoint:
    path: Path
    label: str
    metadata: dict[str, Any] = field(default_factory=dict)  # hfprune.json; empty for a dense base
    _index: dict[str, Path] = field(default_factory=dict)

    @property
    def pruned(self) -> bool:
        return bool(self.metadata)

    def weight(self, layer: str) -> torch.Tensor:
        key = f"{layer}.weight"
        if key not in self._index:
            raise AnalysisInputError(f"{self.path} has no tensor '{key}': compare checkpoints of the same model")
        with safe_open(str(self._index[key]), framework="pt") as f:
            return f.get_tensor(key)

    def mask(self, layer: str) -> torch.Tensor:
        return self.weight(layer) == 0


def open_checkpoint(path: str | Path, label: str | None = None) -> Checkpoint:
    """A folder with ``*.safetensors`` (and ``hfprune.json`` if pruned by hfprune)."""
    folder = Path(path).expanduser()
    shards = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if not shards:
        raise AnalysisInputError(
            f"{folder} is not a folder with *.safetensors weights; give `hfprune prune --out` folders"
        )
    index = {}
    for shard in shards:
        with safe_open(str(shard), framework="pt") as f:
            index.update({key: shard for key in f.keys()})  # noqa: SIM118 - safe_open handles are not dicts
    meta_path = folder / METADATA_FILE
    try:
        metadata = read_json_object(meta_path) if meta_path.is_file() else {}
    except ValueError as err:
        raise AnalysisInputError(f"{err}; re-prune that folder with hfprune, or leave it out") from err
    if metadata.get("structured"):
        raise AnalysisInputError(
            f"{folder} was pruned structurally ({metadata.get('structure')}): it has fewer neurons, heads or blocks, "
            "not zeros, so masks cannot be compared; what it removed is listed under 'structured' in its hfprune.json"
        )
    return Checkpoint(folder, label or default_label(folder, metadata), metadata, index)


def default_label(folder: Path, metadata: dict[str, Any]) -> str:
    if not metadata:
        return f"{folder.name} (dense)"
    mix = metadata.get("calibration", {}).get("mix")
    return f"{metadata.get('method', '?')}[{mix or folder.name}]"


@dataclass
class LayerInfo:
    name: str
    kind: str
    block: str


def prunable_layer_info(checkpoints: list[Checkpoint]) -> list[LayerInfo]:
    """The pruned layers, from the first pruned folder's record; every pruned folder must list the same."""
    pruned = [c for c in checkpoints if c.pruned]
    if not pruned:
        raise AnalysisInputError("none of the folders was pruned by hfprune (no hfprune.json); give at least one")
    names = [layer["name"] for layer in pruned[0].metadata.get("layers", [])]
    for other in pruned[1:]:
        if [layer["name"] for layer in other.metadata.get("layers", [])] != names:
            raise AnalysisInputError(
                f"{pruned[0].path} and {other.path} prune different layers: are they the same base model?"
            )
    return [LayerInfo(layer["name"], layer["kind"], block_of(layer["name"])) for layer in pruned[0].metadata["layers"]]


def block_of(layer_name: str) -> str:
    """``model.layers.3.mlp.down_proj`` -> ``model.layers.3``: up to the first numeric part (the block index)."""
    parts = layer_name.split(".")
    index = next((i for i, part in enumerate(parts) if part.isdigit()), len(parts) - 2)
    return ".".join(parts[: index + 1])
