"""Language-specific neurons (LAPE, Tang et al. 2024) of a dense model, and how many a pruned model kept.

A *neuron* is one input channel of a block's MLP down-projection (the layer whose input is widest compared
with its output). It *fires* on a token when the MLP activation is positive: the gate projection's output
for gated MLPs (``act(gate) > 0`` for SiLU/GELU, as LAPE counts it), else the down-projection's input.

With ``p[l, j]`` the firing probability of neuron ``j`` on language ``l``'s text, LAPE normalises ``p`` over
languages and takes its entropy; neurons that never fire above the ``filter_rate`` quantile of all ``p`` in
any language are left out; the ``top_rate`` share of all neurons with the lowest entropy are
language-specific, each belonging to the languages where ``p`` exceeds the ``bar_rate`` quantile.

A pruned model *keeps* a neuron to the extent its down-projection column survived: the share of non-zero
weights in that column (1 = untouched, 0 = the neuron is gone).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..calibration import CalibrationSet
from ..models import PrunableLayer, find_block_stacks


@dataclass
class NeuronSite:
    """One block's MLP neurons: the input channels of ``down``."""

    block: str
    down: PrunableLayer
    gate: PrunableLayer | None

    @property
    def size(self) -> int:
        return self.down.in_features


def neuron_sites(model: nn.Module) -> list[NeuronSite]:
    sites = []
    for stack in find_block_stacks(model):
        for index in range(len(stack.blocks)):
            layers = stack.layers(index)
            down = max(layers, key=lambda l: (l.in_features - l.out_features, l.in_features))
            if down.in_features <= down.out_features:
                continue  # no widening MLP in this block
            gate = next((l for l in layers if "gate" in l.kind and l.out_features == down.in_features), None)
            sites.append(NeuronSite(f"{stack.name}.{index}", down, gate))
    return sites


@contextmanager
def _firing_counters(sites: list[NeuronSite], counts: dict[str, torch.Tensor], state: dict[str, Any]) -> Iterator[None]:
    def count(name: str, values: torch.Tensor) -> None:
        fired = (values.detach().reshape(-1, values.shape[-1]) > 0).sum(0).float().cpu()
        key = f"{state['lang']}|{name}"
        counts[key] = counts.get(key, 0) + fired

    handles = []
    for site in sites:
        if site.gate is not None:
            handles.append(site.gate.module.register_forward_hook(lambda m, a, out, n=site.block: count(n, out)))
        else:
            handles.append(site.down.module.register_forward_pre_hook(lambda m, a, n=site.block: count(n, a[0])))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def firing_probabilities(
    model: nn.Module, calibration: CalibrationSet, batch_size: int = 8
) -> tuple[list[str], list[NeuronSite], torch.Tensor]:
    """``(languages, sites, p)`` with ``p[l, j]`` over all sites' neurons concatenated in site order."""
    sites = neuron_sites(model)
    counts: dict[str, torch.Tensor] = {}
    tokens: dict[str, int] = {}
    state: dict[str, Any] = {}
    encoder_decoder = getattr(model.config, "is_encoder_decoder", False)
    with _firing_counters(sites, counts, state):
        for lang, ids in calibration.batches(batch_size):
            state["lang"] = lang
            extra = {"decoder_input_ids": ids} if encoder_decoder else {}
            model(input_ids=ids, use_cache=False, **extra)
            tokens[lang] = tokens.get(lang, 0) + ids.numel()
    langs = list(tokens)
    p = torch.stack([torch.cat([counts[f"{lang}|{s.block}"] for s in sites]) / tokens[lang] for lang in langs])
    return langs, sites, p


def _quantile(values: torch.Tensor, q: float) -> float:
    ordered = values.flatten().sort().values
    return float(ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))])


def language_specific(
    p: torch.Tensor, *, top_rate: float = 0.01, filter_rate: float = 0.95, bar_rate: float = 0.95
) -> torch.Tensor:
    """``[L, N]`` boolean: neuron ``j`` is specific to language ``l`` (LAPE's selection, see the module doc)."""
    share = p / p.sum(0, keepdim=True).clamp_min(1e-12)
    entropy = -(share * share.clamp_min(1e-12).log()).sum(0)
    entropy[p.max(0).values <= _quantile(p, filter_rate)] = float("inf")
    k = min(int(torch.isfinite(entropy).sum()), round(p.shape[1] * top_rate))
    chosen = torch.zeros(p.shape[1], dtype=torch.bool)
    if k > 0:
        chosen[torch.topk(entropy, k, largest=False).indices] = True
    return chosen.unsqueeze(0) & (p > _quantile(p, bar_rate))


def kept_share(column_masks: list[torch.Tensor]) -> torch.Tensor:
    """Per neuron, the share of its down-projection column that survived (masks ``[out, in]``, True = pruned)."""
    return torch.cat([1 - mask.float().mean(0) for mask in column_masks])
