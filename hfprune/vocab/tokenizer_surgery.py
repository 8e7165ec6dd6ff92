"""Rewriting a tokenizer to the kept tokens: ``tokenizer.json`` and ``tokenizer_config.json``, ids remapped.

The tokenizer is saved as transformers saves it (so its chat template, special-token settings and class come
along), its files are rewritten, and it is loaded back with ``AutoTokenizer``: the result is exactly what a
user of the output folder will load. New ids keep the old order, so special tokens stay at the front.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from .families import UNIGRAM, TokenizerDefinition

TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"


def trimmed_definition(definition: TokenizerDefinition, keep: list[int], merges: list[tuple[str, str]]) -> dict:
    """The ``tokenizer.json`` of the kept tokens (old ids ``keep``, in their new order) and kept ``merges``."""
    mapping = {old: new for new, old in enumerate(keep)}
    data = json.loads(json.dumps(definition.data))  # a deep copy of plain JSON
    model = data["model"]
    in_model = [old for old in keep if old in definition.model_ids]
    if definition.family == UNIGRAM:
        if [mapping[old] for old in in_model] != list(range(len(in_model))):
            raise ValueError("Unigram pieces must come before added-only tokens")  # parse_definition guarantees it
        model["vocab"] = [model["vocab"][old] for old in in_model]
        if model.get("unk_id") is not None:
            model["unk_id"] = mapping[model["unk_id"]]
    else:
        model["vocab"] = {definition.tokens[old]: mapping[old] for old in in_model}
        strings = isinstance(model.get("merges", [None])[0] if model.get("merges") else None, str)
        model["merges"] = [f"{a} {b}" for a, b in merges] if strings else [[a, b] for a, b in merges]
    for entry in data.get("added_tokens") or []:
        entry["id"] = mapping[int(entry["id"])]
    if data.get("post_processor"):
        data["post_processor"] = _remap_processor(data["post_processor"], mapping)
    if isinstance(data.get("padding"), dict) and data["padding"].get("pad_id") is not None:
        data["padding"]["pad_id"] = mapping.get(int(data["padding"]["pad_id"]), 0)
    return data


def _remap_processor(processor: dict[str, Any], mapping: dict[int, int]) -> dict[str, Any]:
    kind = processor.get("type")
    if kind == "Sequence":
        processor["processors"] = [_remap_processor(p, mapping) for p in processor.get("processors", [])]
    elif kind == "TemplateProcessing":
        for special in (processor.get("special_tokens") or {}).values():
            special["ids"] = [mapping[int(i)] for i in special.get("ids", [])]
    elif kind in ("BertProcessing", "RobertaProcessing"):
        for key in ("sep", "cls"):
            if isinstance(processor.get(key), list) and len(processor[key]) == 2:
                processor[key] = [processor[key][0], mapping[int(processor[key][1])]]
    return processor


def rebuild_tokenizer(tokenizer: Any, data: dict[str, Any], mapping: dict[int, int]) -> Any:
    """The original tokenizer's files with ``data`` as ``tokenizer.json``, loaded back by ``AutoTokenizer``."""
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory(prefix="hfprune-vocab-") as folder:
        tokenizer.save_pretrained(folder)
        (Path(folder) / TOKENIZER_JSON).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        config_path = Path(folder) / TOKENIZER_CONFIG
        if config_path.is_file():
            config = json.loads(config_path.read_text(encoding="utf-8"))
            config_path.write_text(json.dumps(remap_tokenizer_config(config, mapping), indent=2, ensure_ascii=False))
        return AutoTokenizer.from_pretrained(folder)


def remap_tokenizer_config(config: dict[str, Any], mapping: dict[int, int]) -> dict[str, Any]:
    """``added_tokens_decoder`` is keyed by id; everything else in tokenizer_config names tokens by text."""
    decoder = config.get("added_tokens_decoder")
    if isinstance(decoder, dict):
        config["added_tokens_decoder"] = {str(mapping[int(k)]): v for k, v in decoder.items() if int(k) in mapping}
    return config
