"""The sequential driver: prune a model block by block on calibration data, memory bounded by one block.

For each stack of blocks (one for decoder-only models; encoder then decoder for MT5):

1. *Capture* the inputs of the stack's first block for every calibration batch, by running the model up to
   that block (a pre-hook stops the forward there). For MT5's decoder this runs the already pruned encoder.
2. For each block: move it to the compute device, run the batches through it with hooks that collect
   per-language statistics, prune its linear layers, run the batches again to get the *pruned* block's
   outputs (the next block's inputs), move it back.

Two calibration pipelines (``pipeline=``):

* ``sequential`` (default): each block is calibrated on the outputs of the already *pruned* blocks before
  it, so it compensates for their errors (SparseGPT's and Wanda's reference flow): two passes per block.
* ``independent``: every block is calibrated on *dense* inputs; the statistics pass is also the pass that
  produces the next block's inputs, so one pass per block, about half the cost. Errors of earlier blocks
  are not seen; benchmarks/bench_prune.py measures what that costs in perplexity (the README's prune table).

With ``offload=True`` the calibration activations live on CPU between uses and only the current batch is
on the accelerator: accelerator memory is then one block plus one batch, whatever the depth.

Blocks get more than hidden states: attention masks, rotary embeddings, T5's position bias, Gemma 3's
sliding-window masks, which differ from block to block. One *probe* forward on a single sample records
each block's real arguments; arguments that differ from the first block's are taken from the probe. This is
sound because calibration samples all have the same length and no padding, so those arguments do not
depend on the sample; arguments that are the same object for every block (cross-attention inputs, ALiBi)
come from each batch's own capture.

**Placed models** (``--device-map``, :mod:`hfprune.models.placement`): accelerate's hooks run the whole-model
forwards (capture, probe) as the model is placed, and a block's turn takes it out of the placement
(:class:`~hfprune.models.DispatchedBlocks`), so only that block is on the compute device, as always.

**Several processes** (``torchrun``, ``accelerate launch``; :mod:`hfprune.distributed`): the calibration batches
are dealt whole to the ranks of the current group (batch ``i`` to rank ``i % size``), each rank captures and
runs only its own, and a block's statistics are summed over the ranks before any mask is chosen
(:meth:`StatsCollector.finish`: exact fp64 sums, so every rank holds what one process would have counted).
Rank 0 alone then prunes the block (a visitor that changes weights runs once) and broadcasts the pruned weights
bit for bit, so every rank continues with the same block; the sequential pipeline then propagates each rank's
own batches through it. The result is the single-process result, tensor for tensor (tested with
``torch.equal``), when the kernels are the same: same device type, and on CPU the same number of threads per
process (N ranks x T threads equal one process x T threads). Some CPU kernels give results that depend on their
thread count (MKL's Cholesky in SparseGPT; small matrix products), so one process with N*T threads may differ
from N ranks x T threads in the last bits, as two single-process runs with different thread counts do.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from .. import distributed
from ..calibration import CalibrationSet
from ..errors import InvalidPipelineError, NonFiniteWeightsError, StreamingUnsupportedError
from ..models import BlockStack, DispatchedBlocks, PrunableLayer, find_block_stacks, is_dispatched
from .base import PruningMethod
from .sparsity_pattern import Structure
from .stats import HESSIAN_GRADIENT, LayerStats, StatsCollector, needs_gradients

#: Calibration pipelines: see the module docstring.
PIPELINES = ("sequential", "independent")
#: (layer, block index, target sparsity) -> the sparsity to use for that layer (layerwise profiles)
SparsityFn = Callable[[PrunableLayer, int, float], float]


class BlockVisitor(Protocol):
    """What the engine does with each block once the block's statistics are collected: the engine's one hook.

    :class:`Pruner` prunes the block's layers; ``dense_pass`` summarises them for layerwise profiles.
    """

    #: shown on the progress bar
    name: str
    #: statistics the engine must collect (``stats.SQ_SUM``, ``stats.HESSIAN``, ...); empty: no calibration data
    needs: frozenset[str]
    #: whether the block's weights are final after :meth:`visit` (a streaming loader then writes them)
    final: bool

    def visit(self, block_index: int, layers: list[PrunableLayer], stats: dict[str, LayerStats]) -> None:
        """Act on one block; ``stats`` maps each layer's name to its statistics (empty without data)."""


class FinalVisitor(BlockVisitor, Protocol):
    """A visitor that changes weights (``final``). On several ranks only rank 0 runs :meth:`visit`; the others get
    the block's weights by broadcast and what the visit recorded through :meth:`last_visit` / :meth:`adopt`."""

    def last_visit(self) -> Any:
        """What the last :meth:`visit` recorded (sent to the ranks that did not run it)."""

    def adopt(self, record: Any) -> None:
        """Record what rank 0's visit recorded, as if this rank had run it."""


class BlockLoader(Protocol):
    """Where blocks' weights live when they are not in memory (``hfprune.streaming``): the engine asks for a
    block's weights before it first runs it and hands the block back when it is done with it."""

    def load(self, block: nn.Module) -> None:
        """Put the block's weights in memory (on CPU)."""

    def release(self, block: nn.Module, pruned: bool) -> None:
        """Drop the block's weights; ``pruned``: they are final (pruned), so keep them (e.g. write them)."""


@dataclass
class LayerReport:
    name: str
    kind: str
    shape: tuple[int, int]
    target: float
    achieved: float
    zeros: int


_Call = tuple[tuple[Any, ...], dict[str, Any]]
#: (this block's probe record, the stack's first block's probe record)
_ProbeRefs = tuple[_Call | None, _Call | None]


class _StopForward(Exception):
    """Raised by the capture hook once the first block's inputs are recorded."""


@dataclass
class _BlockInputs:
    """One batch's inputs to a block: hidden states plus the other positional and keyword arguments."""

    language: str
    hidden: torch.Tensor
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


def _consumed(items: list[_BlockInputs]) -> Iterator[_BlockInputs]:
    """Yield the batches of ``items`` in order, removing each from the list, so that its tensors are freed as
    soon as the caller is done with it: activations of one block then never exist twice in full."""
    items.reverse()
    while items:
        yield items.pop()


def _model_inputs(model: nn.Module, ids: torch.Tensor) -> dict[str, Any]:
    inputs: dict[str, Any] = {"input_ids": ids, "use_cache": False}
    if getattr(model.config, "is_encoder_decoder", False):
        inputs["decoder_input_ids"] = ids  # calibration only needs realistic decoder activations
    return inputs


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, tuple):
        return tuple(_to(v, device) for v in value)
    if isinstance(value, list):
        return [_to(v, device) for v in value]
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    return value


def _first_output(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, (tuple, list)) else output


@contextmanager
def _blocks_onloaded(stacks: list[BlockStack], device: torch.device) -> Iterator[None]:
    """While a whole-model forward runs, move each block to ``device`` just for its own call."""
    if device.type == "cpu":
        yield
        return
    handles = []
    for stack in stacks:
        for block in stack.blocks:
            handles.append(block.register_forward_pre_hook(lambda mod, args: mod.to(device)))
            handles.append(block.register_forward_hook(lambda mod, args, out: mod.to("cpu")))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def _blocks_loaded_per_call(stacks: list[BlockStack], loader: BlockLoader | None) -> Iterator[None]:
    """While a whole-model forward runs, each block's weights exist only during its own call.

    Enter it *inside* :func:`_blocks_onloaded`: its pre-hook runs first (load, then move) and its post-hook
    last (move back, then release). A forward stopped early (the probe) leaves its last block loaded: it is
    released on exit.
    """
    if loader is None:
        yield
        return
    loaded: set[nn.Module] = set()

    def load(mod: nn.Module, args: Any) -> None:
        loader.load(mod)
        loaded.add(mod)

    def release(mod: nn.Module, args: Any, out: Any) -> None:
        loaded.discard(mod)
        loader.release(mod, pruned=False)

    handles = []
    for stack in stacks:
        for block in stack.blocks:
            handles.append(block.register_forward_pre_hook(load, prepend=True))
            handles.append(block.register_forward_hook(release))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        for mod in list(loaded):
            loader.release(mod, pruned=False)


@contextmanager
def _non_block_params_on(model: nn.Module, stacks: list[BlockStack], device: torch.device) -> Iterator[None]:
    """Embeddings, norms and heads on the compute device; blocks stay where they are (CPU)."""
    if device.type == "cpu":
        yield
        return
    block_ids = {id(p) for stack in stacks for p in stack.blocks.parameters()}
    block_ids |= {id(b) for stack in stacks for b in stack.blocks.buffers()}
    moved = []
    for module in model.modules():
        for name, tensor in list(module._parameters.items()) + list(module._buffers.items()):
            if tensor is not None and id(tensor) not in block_ids and tensor.device != device:
                moved.append((module, name, tensor))
                new = tensor.to(device)
                if name in module._parameters:
                    module._parameters[name] = nn.Parameter(new, requires_grad=False)
                else:
                    module._buffers[name] = new
    try:
        yield
    finally:
        for module, name, tensor in moved:
            if name in module._parameters:
                module._parameters[name] = tensor if isinstance(tensor, nn.Parameter) else nn.Parameter(tensor)
            else:
                module._buffers[name] = tensor


class Pruner:
    """The visitor that prunes: each layer of a block by the method, at the sparsity the profile gives it."""

    final = True

    def __init__(
        self, method: PruningMethod, *, sparsity: float, structure: Structure, sparsity_fn: SparsityFn | None = None
    ) -> None:
        self.method, self.sparsity, self.structure, self.sparsity_fn = method, sparsity, structure, sparsity_fn
        self.name = method.name
        self.needs = method.needs
        self.layers: list[LayerReport] = []
        self._last: list[LayerReport] = []

    def last_visit(self) -> list[LayerReport]:
        return self._last

    def adopt(self, record: list[LayerReport]) -> None:
        self.layers.extend(record)

    def visit(self, block_index: int, layers: list[PrunableLayer], stats: dict[str, LayerStats]) -> None:
        self._last = []
        for layer in layers:
            check_finite(layer)
            target = self.sparsity_fn(layer, block_index, self.sparsity) if self.sparsity_fn else self.sparsity
            mask = self.method.prune_layer(layer, stats.get(layer.name), target, self.structure)
            zeros = int(mask.sum())
            report = LayerReport(
                name=layer.name,
                kind=layer.kind,
                shape=(layer.out_features, layer.in_features),
                target=target,
                achieved=zeros / mask.numel(),
                zeros=zeros,
            )
            self.layers.append(report)
            self._last.append(report)


def check_finite(layer: PrunableLayer) -> None:
    """Refuse a layer with NaN or Inf weights: scores would rank them silently and the mask would mean nothing.

    Raises:
        NonFiniteWeightsError: naming the layer and how many of its weights are not finite.
    """
    finite = torch.isfinite(layer.weight)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise NonFiniteWeightsError(
            f"{layer.name} holds {bad} NaN or Inf weight(s) of {finite.numel()}: the checkpoint is damaged (or was "
            "loaded in a dtype too narrow for it; try --dtype float32); nothing was written"
        )


class BlockwiseEngine:
    """Runs a :class:`BlockVisitor` over every block of a model on calibration data. See the module docstring."""

    def __init__(
        self,
        model: nn.Module,
        visitor: BlockVisitor,
        *,
        calibration: CalibrationSet | None,
        device: torch.device,
        batch_size: int = 8,
        progress: bool = False,
        input_cache: dict[str, Any] | None = None,
        pipeline: str = "sequential",
        offload: bool = False,
        loader: BlockLoader | None = None,
    ) -> None:
        if pipeline not in PIPELINES:
            raise InvalidPipelineError(
                f"unknown calibration pipeline '{pipeline}'; choose one of {', '.join(PIPELINES)}"
            )
        if batch_size < 1:
            raise InvalidPipelineError(f"the calibration batch size must be at least 1, got {batch_size}")
        self.model = model
        self.visitor = visitor
        self.calibration = calibration
        self.device = device
        self.batch_size = batch_size
        self.progress = progress
        #: first-stack block-0 inputs, reusable by later runs on the same dense model and calibration set
        self.input_cache = input_cache
        self.pipeline = pipeline
        #: where calibration activations wait between blocks (the accelerator, or CPU to bound its memory)
        self.storage = torch.device("cpu") if offload else device
        self.stacks = find_block_stacks(model)
        #: blocks read from disk when their turn comes (``hfprune.streaming``); None: all in memory
        self.loader = loader
        #: placed by accelerate (device map, offload): its hooks run whole-model forwards, a block's turn is loaded
        self.dispatched = is_dispatched(model)
        if self.dispatched and loader is not None:
            raise StreamingUnsupportedError("a model placed with a device map is not streamed; use one or the other")
        #: what brings a block's weights in for its turn and takes them back
        self.turns: BlockLoader | None = DispatchedBlocks(model) if self.dispatched else loader
        #: the ranks that share this run's calibration batches (a group of one without a launcher)
        self.group = distributed.current()
        if visitor.needs and calibration is None:
            raise InvalidPipelineError(f"'{visitor.name}' needs calibration data, and none was given")
        if self.dispatched and needs_gradients(visitor.needs):
            raise InvalidPipelineError(
                f"'{visitor.name}' back-propagates through the whole model at once, which a model placed with "
                "--device-map does not allow; run it without --device-map"
            )
        if loader is not None and needs_gradients(visitor.needs):
            raise StreamingUnsupportedError(
                f"'{visitor.name}' back-propagates through the whole model, which a streamed run never holds in "
                "memory; run without --stream"
            )

    # -- public -------------------------------------------------------------------------------------
    @torch.no_grad()
    def run(self) -> dict[str, float]:
        """Visit every block in order; return the timings (``prune_s``)."""
        started = time.perf_counter()
        use_data = bool(self.visitor.needs)
        probe = self._probe_block_args() if use_data else {}
        grads = self._gradient_pass() if needs_gradients(self.visitor.needs) else ({}, {})
        total = sum(len(stack.blocks) for stack in self.stacks)
        bar = tqdm(
            total=total, desc=self.visitor.name, unit="block", disable=not (self.progress and self.group.is_main)
        )
        # Independent: every stack's inputs come from the dense model (MT5's decoder sees the dense encoder).
        dense_first_inputs = (
            {stack.name: self._first_block_inputs(stack, n == 0) for n, stack in enumerate(self.stacks)}
            if use_data and self.pipeline == "independent"
            else {}
        )
        for stack_number, stack in enumerate(self.stacks):
            inputs: list[_BlockInputs] = []
            if use_data:
                inputs = dense_first_inputs.pop(stack.name, None) or self._first_block_inputs(stack, stack_number == 0)
            for index, block in enumerate(stack.blocks):
                bar.set_postfix_str(f"{stack.name}.{index}")
                if self.turns is not None:
                    self.turns.load(block)
                block.to(self.device)
                layers = stack.layers(index)
                refs = (probe.get((stack.name, index)), probe.get((stack.name, 0)))
                last = index + 1 == len(stack.blocks)
                keep_dense_outputs = self.pipeline == "independent" and not last
                stats, dense_outputs = (
                    self._collect(block, layers, inputs, refs, keep_dense_outputs) if use_data else ({}, [])
                )
                self._visit(index, layers, _with_gradients(stats, *grads))
                if use_data and not last:
                    inputs = dense_outputs if keep_dense_outputs else self._propagate(block, inputs, refs)
                if self.device.type != "cpu":
                    block.to("cpu")
                if self.turns is not None:
                    self.turns.release(block, pruned=self.visitor.final)
                bar.update(1)
        bar.close()
        return {"prune_s": time.perf_counter() - started}

    def _visit(self, index: int, layers: list[PrunableLayer], stats: dict[str, Any]) -> None:
        """Run the visitor on the block. Pruning on several ranks is done once, by rank 0, and sent to the others
        bit for bit: every rank then holds the same block even where a kernel is not reproducible across devices
        or machines, and ranks sharing a machine's cores do not each repeat the computation."""
        if not self.visitor.final or self.group.size == 1:
            self.visitor.visit(index, layers, stats)
            return
        visitor: FinalVisitor = self.visitor  # type: ignore[assignment]

        def prune_once() -> Any:  # its user error (a Hessian that stays singular, ...) is raised on every rank
            visitor.visit(index, layers, stats)
            return visitor.last_visit()

        record = self.group.agree(prune_once, f"pruning block {index} (rank 0)")
        self.group.broadcast_([layer.module.weight for layer in layers], f"sharing block {index}'s pruned weights")
        if not self.group.is_main:
            visitor.adopt(record)

    # -- calibration passes --------------------------------------------------------------------------
    def _batches(self) -> list[tuple[str, torch.Tensor]]:
        """This rank's calibration batches: whole batches, dealt round-robin (all of them on one process)."""
        assert self.calibration is not None
        batches = self.calibration.batches(self.batch_size)
        return [batches[i] for i in self.group.share(len(batches))]

    def _languages(self) -> list[str]:
        """Every calibration language in batch order: the order one process meets them."""
        assert self.calibration is not None
        return list(dict.fromkeys(self.calibration.languages))

    def _forward(self, ids: torch.Tensor) -> None:
        self.model(**_model_inputs(self.model, ids.to(self.device)))

    @contextmanager
    def _whole_model_forwards(self, per_call_loading: bool) -> Iterator[None]:
        """Where the whole model's forwards run: non-block weights on the compute device and each block moved
        there for its own call (and read from disk for it when streamed, ``per_call_loading``); a placed model's
        hooks do all of that themselves."""
        if self.dispatched:
            yield
            return
        with (
            _non_block_params_on(self.model, self.stacks, self.device),
            _blocks_onloaded(self.stacks, self.device),
            _blocks_loaded_per_call(self.stacks, self.loader if per_call_loading else None),
        ):
            yield

    def _probe_block_args(self) -> dict[tuple[str, int], _Call]:
        """Record every block's real (args, kwargs) in one forward over one sample.

        The forward stops after the last block: the head (a vocabulary-sized matmul) is never needed.
        """
        assert self.calibration is not None
        recorded: dict[tuple[str, int], _Call] = {}
        handles = []
        for stack in self.stacks:
            for index, block in enumerate(stack.blocks):

                def hook(mod, args, kwargs, key=(stack.name, index)):
                    recorded[key] = (args, dict(kwargs))

                handles.append(block.register_forward_pre_hook(hook, with_kwargs=True))

        def stop(mod, args, output):
            raise _StopForward

        handles.append(self.stacks[-1].blocks[-1].register_forward_hook(stop))
        try:
            with self._whole_model_forwards(per_call_loading=True):
                self._forward(self.calibration.input_ids[:1])
        except _StopForward:
            pass
        finally:
            for handle in handles:
                handle.remove()
        return recorded

    def _first_block_inputs(self, stack: BlockStack, cacheable: bool) -> list[_BlockInputs]:
        """Captured inputs, from ``input_cache`` when given: the first stack's depend only on embeddings."""
        if not cacheable or self.input_cache is None:
            return self._capture_first_block_inputs(stack)
        if stack.name not in self.input_cache:
            self.input_cache[stack.name] = self._capture_first_block_inputs(stack)
        return list(self.input_cache[stack.name])  # a copy: the run consumes its list, the cache keeps its own

    def _gradient_pass(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Dense-model gradients for SNIP/GraSP: the whole model on the compute device for one pass."""
        from .gradients import gradients

        assert self.calibration is not None
        layers = [layer for stack in self.stacks for i in range(len(stack.blocks)) for layer in stack.layers(i)]
        self.model.to(self.device)
        try:
            return gradients(
                self.model,
                layers,
                self.calibration,
                batch_size=self.batch_size,
                hessian_gradient=HESSIAN_GRADIENT in self.visitor.needs,
                group=self.group,
            )
        finally:
            if self.device.type != "cpu":
                self.model.to("cpu")

    def _capture_first_block_inputs(self, stack: BlockStack) -> list[_BlockInputs]:
        assert self.calibration is not None
        captured: list[_BlockInputs] = []
        language = ""

        def hook(mod, args, kwargs):
            hidden = args[0] if args else kwargs.pop("hidden_states")
            captured.append(_BlockInputs(language, hidden.to(self.storage), tuple(args[1:]), dict(kwargs)))
            raise _StopForward

        handle = stack.blocks[0].register_forward_pre_hook(hook, with_kwargs=True)
        try:
            with self._whole_model_forwards(per_call_loading=False):
                for language, ids in self._batches():  # noqa: B007 - read by the hook
                    try:
                        self._forward(ids)
                    except _StopForward:
                        pass
        finally:
            handle.remove()
        return captured

    def _block_call(self, block: nn.Module, item: _BlockInputs, refs: _ProbeRefs) -> torch.Tensor:
        """Call ``block`` on one batch, with the block-specific arguments the probe recorded.

        Returns the block's hidden-state output, moved to where activations are stored.
        """
        args, kwargs = item.args, item.kwargs
        probe, first = refs
        if probe is not None and first is not None:
            args, kwargs = _override(args, kwargs, probe, first)
        if self.dispatched:  # captured where accelerate ran the module before, maybe another device
            args, kwargs = _to(args, self.device), _to(kwargs, self.device)
        output = block(item.hidden.to(self.device), *args, **kwargs)
        return _first_output(output).to(self.storage)

    def _collect(
        self,
        block: nn.Module,
        layers: list[PrunableLayer],
        inputs: list[_BlockInputs],
        refs: _ProbeRefs,
        keep_outputs: bool = False,
    ) -> tuple[dict[str, Any], list[_BlockInputs]]:
        """Statistics of the block's layer inputs, and (``keep_outputs``) the dense block's outputs."""
        collector = StatsCollector(layers, self.visitor.needs, block=block)
        outputs = []
        with collector.attached():
            # Independent pipeline: each batch's input is dropped once its dense output exists (half the memory).
            for item in _consumed(inputs) if keep_outputs else inputs:
                collector.language = item.language
                hidden = self._block_call(block, item, refs)
                collector.end_batch()
                if keep_outputs:
                    outputs.append(_BlockInputs(item.language, hidden, item.args, item.kwargs))
        return collector.finish(self.group, self._languages()), outputs

    def _propagate(self, block: nn.Module, inputs: list[_BlockInputs], refs: _ProbeRefs) -> list[_BlockInputs]:
        """The pruned block's outputs: the next block's inputs. Each input batch is dropped as its output appears."""
        return [
            _BlockInputs(item.language, self._block_call(block, item, refs), item.args, item.kwargs)
            for item in _consumed(inputs)
        ]


def _with_gradients(
    stats: dict[str, Any], grads: dict[str, torch.Tensor], hess_grads: dict[str, torch.Tensor]
) -> dict[str, Any]:
    """Per-layer copies holding each layer's own gradients (layers reading one input share the rest)."""
    if not grads and not hess_grads:
        return stats
    return {
        name: dataclasses.replace(layer_stats, grad=grads.get(name), hess_grad=hess_grads.get(name))
        for name, layer_stats in stats.items()
    }


def _differs(a: Any, b: Any) -> bool:
    if a is b:
        return False
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape != b.shape or not torch.equal(a, b)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) != len(b) or any(_differs(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return True
    try:
        return bool(a != b)
    except Exception:  # objects without a usable equality: treat as block-specific
        return True


def _override(args: tuple, kwargs: dict, probe: _Call, first: _Call) -> _Call:
    """The batch's own arguments, with every argument the probe saw change from the first block replaced."""
    probe_args, probe_kwargs = probe
    first_args, first_kwargs = first
    new_args = list(args)
    for i in range(len(new_args)):
        pos = i + 1  # args here exclude the hidden states
        if pos < len(probe_args) and pos < len(first_args) and _differs(probe_args[pos], first_args[pos]):
            new_args[i] = probe_args[pos]
    new_kwargs = dict(kwargs)
    for key, value in probe_kwargs.items():
        if key == "hidden_states":
            continue
        if key not in first_kwargs or _differs(value, first_kwargs[key]):
            new_kwargs[key] = value
    return tuple(new_args), new_kwargs
