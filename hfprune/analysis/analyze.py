"""``hfprune analyze``: compare pruned folders (and their dense base) language by language.

Two questions, answered from files alone plus one dense forward pass:

* *Mask overlap*: for every pair of pruned models, IoU of their pruned weights per layer, per module type,
  per block and overall, next to the IoU two random masks would have.
* *Language-specific neurons* (needs the dense base): how many each block has per language (LAPE), and what
  share of them each pruned model kept, against the share it kept of all neurons.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..calibration import Mix, MixEntry, build_calibration, normalize, open_source
from ..errors import AnalysisInputError
from ..models import load_model
from . import neurons as lape
from .checkpoints import Checkpoint, LayerInfo, open_checkpoint, prunable_layer_info
from .overlap import Overlap, overlap, total


@dataclass
class NeuronSpec:
    langs: list[str] | None = None  # default: the pruned models' calibration languages
    samples: int = 8  # calibration samples per language for firing probabilities
    seqlen: int = 256
    seed: int = 0
    top_rate: float = 0.01
    filter_rate: float = 0.95
    bar_rate: float = 0.95
    batch_size: int = 8
    calib_source: Any = None


def analyze(
    paths: list[str | Path], *, base: str | Path | None = None, neuron_spec: NeuronSpec | None = None
) -> dict[str, Any]:
    """The analysis of ``paths`` (pruned folders, at most one dense) as a JSON-ready dict.

    Raises:
        AnalysisInputError: fewer than two folders, no pruned one, layers that do not match.
    """
    checkpoints = _uniquely_labelled([open_checkpoint(p) for p in paths])
    base_ckpt = open_checkpoint(base) if base is not None else _dense_among(checkpoints)
    pruned = [c for c in checkpoints if c.pruned]
    if len(pruned) + (base_ckpt is not None) < 2:
        raise AnalysisInputError("give two or more pruned folders, or a pruned folder and its dense base (--base)")
    layers = prunable_layer_info(pruned)
    report: dict[str, Any] = {
        "models": [
            {
                "label": c.label,
                "path": str(c.path),
                "method": c.metadata.get("method"),
                "calibration": c.metadata.get("calibration", {}).get("mix"),
                "sparsity": c.metadata.get("achieved_sparsity"),
            }
            for c in pruned
        ],
        "overlap": [pair_overlap(a, b, layers) for a, b in itertools.combinations(pruned, 2)],
    }
    if base_ckpt is not None:
        report["base"] = str(base_ckpt.path)
        report["neurons"] = neuron_report(base_ckpt, pruned, neuron_spec or NeuronSpec())
    return report


def _uniquely_labelled(checkpoints: list[Checkpoint]) -> list[Checkpoint]:
    """Labels name method and mix; where two coincide (other sparsity, say) the folder names tell them apart."""
    labels = [c.label for c in checkpoints]
    for ckpt in checkpoints:
        if labels.count(ckpt.label) > 1:
            ckpt.label = f"{ckpt.label} {ckpt.path.name}"
    return checkpoints


def _dense_among(checkpoints: list[Checkpoint]) -> Checkpoint | None:
    dense = [c for c in checkpoints if not c.pruned]
    if len(dense) > 1:
        raise AnalysisInputError(
            f"{len(dense)} folders have no hfprune.json ({', '.join(str(c.path) for c in dense)}); give one dense base"
        )
    return dense[0] if dense else None


def pair_overlap(a: Checkpoint, b: Checkpoint, layers: list[LayerInfo]) -> dict[str, Any]:
    per_layer = {layer.name: overlap(a.mask(layer.name), b.mask(layer.name)) for layer in layers}

    def grouped(key: str) -> dict[str, dict[str, float]]:
        groups: dict[str, list[Overlap]] = {}
        for layer in layers:
            groups.setdefault(getattr(layer, key), []).append(per_layer[layer.name])
        return {name: total(items).to_dict() for name, items in groups.items()}

    return {
        "a": a.label,
        "b": b.label,
        **total(per_layer.values()).to_dict(),
        "by_kind": grouped("kind"),
        "by_block": grouped("block"),
        "by_layer": {name: o.to_dict() for name, o in per_layer.items()},
    }


def neuron_report(base: Checkpoint, pruned: list[Checkpoint], spec: NeuronSpec) -> dict[str, Any]:
    loaded = load_model(base.path)
    if loaded.tokenizer is None:
        raise AnalysisInputError(f"{base.path} has no tokenizer; the neuron analysis needs one to read text")
    langs = spec.langs or _calibration_languages(pruned)
    if len(langs) < 2:
        raise AnalysisInputError("language-specific neurons need two or more languages; pass --langs en,sw,...")
    mix = Mix(tuple(MixEntry(normalize(lang), spec.samples) for lang in langs))
    source = open_source(spec.calib_source, langs=mix.languages)
    calib = build_calibration(loaded.tokenizer, source, mix, seqlen=spec.seqlen, seed=spec.seed)
    order, sites, p = lape.firing_probabilities(loaded.model, calib, spec.batch_size)
    specific = lape.language_specific(p, top_rate=spec.top_rate, filter_rate=spec.filter_rate, bar_rate=spec.bar_rate)
    bounds = list(itertools.accumulate([0, *(s.size for s in sites)]))
    per_block = {
        site.block: {lang: int(specific[i, bounds[k] : bounds[k + 1]].sum()) for i, lang in enumerate(order)}
        for k, site in enumerate(sites)
    }
    kept = {}
    for ckpt in pruned:
        masks = [_out_in(ckpt.mask(site.down.name), site) for site in sites]
        share = lape.kept_share(masks)
        kept[ckpt.label] = {
            "all_neurons": float(share.mean()),
            **{lang: float(share[specific[i]].mean()) if specific[i].any() else None for i, lang in enumerate(order)},
        }
    return {
        "languages": order,
        "spec": {k: v for k, v in asdict(spec).items() if k != "calib_source"},
        "neurons_total": int(p.shape[1]),
        "specific_per_language": {lang: int(specific[i].sum()) for i, lang in enumerate(order)},
        "specific_per_block": per_block,
        "kept_share": kept,
    }


def _out_in(mask: torch.Tensor, site: lape.NeuronSite) -> torch.Tensor:
    return mask.t() if site.down.transposed else mask


def _calibration_languages(pruned: list[Checkpoint]) -> list[str]:
    langs: dict[str, None] = {}
    for ckpt in pruned:
        mix = ckpt.metadata.get("calibration", {}).get("mix") or ""
        langs.update((entry.split(":")[0], None) for entry in mix.split(",") if entry)
    return list(langs)
