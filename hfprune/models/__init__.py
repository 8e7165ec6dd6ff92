"""Models: pull and load them safely, find their blocks and prunable layers, stream them from disk.

``pull`` fetches a repo's safetensors snapshot from the Hub (never pickled files); ``discovery`` finds blocks and
linear layers structurally (any architecture); ``loading`` loads safetensors only; ``streaming`` reads and
writes one block at a time; ``placement`` spreads a model over GPUs, CPU and disk (accelerate device maps);
``source`` is where a model comes from and how it loads (one object for every job); ``semi_structured`` runs 2:4 checkpoints on GPU sparse kernels. The project's tiny model is trained in
:mod:`hfprune.tiny_model`, beside this room.
"""

from .discovery import (
    LINEAR_TYPES,
    BlockStack,
    PrunableLayer,
    all_prunable_layers,
    find_block_stacks,
    prunable_layers,
)
from .loading import (
    LoadedModel,
    checkpoint_folder,
    describe_source,
    load_model,
    load_tokenizer,
    weights_sha256,
)
from .placement import DEVICE_MAPS, DispatchedBlocks, Placement, input_device, is_dispatched, release
from .source import ModelSource

__all__ = [
    "DEVICE_MAPS",
    "LINEAR_TYPES",
    "BlockStack",
    "DispatchedBlocks",
    "LoadedModel",
    "ModelSource",
    "Placement",
    "input_device",
    "is_dispatched",
    "release",
    "PrunableLayer",
    "all_prunable_layers",
    "checkpoint_folder",
    "describe_source",
    "find_block_stacks",
    "load_model",
    "load_tokenizer",
    "prunable_layers",
    "weights_sha256",
]
