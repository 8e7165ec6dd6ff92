"""Gathering the kept rows of the input embedding and the output layer, and remapping every token id a config holds.

Rows are gathered in place: the embedding module stays the model's own class (Gemma's scaled embedding keeps
its scale), only its weight (and the head's weight and bias) become the kept rows in the new order. A weight
shared by the embedding and the head (tied) is replaced everywhere it is referenced, so it stays shared.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..errors import NonStandardEmbeddingsError

#: generation_config keys holding lists of ids that are only ever *suppressed* (a dropped id can be left out).
_SUPPRESSED = ("suppress_tokens", "begin_suppress_tokens")


def vocabulary_rows(model: nn.Module) -> int:
    """Rows of the input embedding, after checking that the vocabulary lives only where trimming looks.

    Raises:
        NonStandardEmbeddingsError: the input embedding is not an ``nn.Embedding``, the output layer is not an
            ``nn.Linear`` of the same number of rows, or some other weight is vocabulary-sized.
    """
    embedding = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    name = type(model).__name__
    if not isinstance(embedding, nn.Embedding):
        raise NonStandardEmbeddingsError(
            f"{name}.get_input_embeddings() is {type(embedding).__name__}, not an nn.Embedding; vocabulary trimming "
            "gathers the rows of a standard embedding only"
        )
    if not isinstance(head, nn.Linear):
        raise NonStandardEmbeddingsError(
            f"{name}.get_output_embeddings() is {type(head).__name__}, not an nn.Linear; vocabulary trimming "
            "needs a standard output layer"
        )
    rows = embedding.num_embeddings
    if head.out_features != rows:
        raise NonStandardEmbeddingsError(
            f"{name}'s output layer has {head.out_features} rows and its input embedding {rows}; trimming needs "
            "one vocabulary for both"
        )
    handled = {id(embedding.weight), id(head.weight)} | ({id(head.bias)} if head.bias is not None else set())
    for what, items in (("parameter", model.named_parameters()), ("buffer", model.named_buffers())):
        for param_name, tensor in items:
            if id(tensor) not in handled and rows in tuple(tensor.shape):
                raise NonStandardEmbeddingsError(
                    f"{name} has another vocabulary-sized {what}, {param_name} {tuple(tensor.shape)}, besides "
                    "get_input_embeddings() and get_output_embeddings(); trimming would leave it inconsistent"
                )
    return rows


def gather_rows(model: nn.Module, keep: list[int]) -> dict[str, Any]:
    """Keep rows ``keep`` (old ids, in their new order) of the embedding and the head; return what changed."""
    rows = vocabulary_rows(model)
    embedding, head = model.get_input_embeddings(), model.get_output_embeddings()
    index = torch.tensor(keep, dtype=torch.long)
    tied = head.weight is embedding.weight
    before = sum(p.numel() for p in model.parameters())
    new_embedding = nn.Parameter(embedding.weight.detach()[index].clone(), requires_grad=False)
    _replace_everywhere(model, embedding.weight, new_embedding)
    embedding.num_embeddings = len(keep)
    if embedding.padding_idx is not None:
        where = {old: new for new, old in enumerate(keep)}
        embedding.padding_idx = where.get(embedding.padding_idx)
    if not tied:
        _replace_everywhere(model, head.weight, nn.Parameter(head.weight.detach()[index].clone(), requires_grad=False))
    if head.bias is not None:
        _replace_everywhere(model, head.bias, nn.Parameter(head.bias.detach()[index].clone(), requires_grad=False))
    head.out_features = len(keep)
    text_config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    text_config.vocab_size = len(keep)
    if text_config is not model.config and getattr(model.config, "vocab_size", None) == rows:
        model.config.vocab_size = len(keep)
    return {
        "rows_before": rows,
        "rows_after": len(keep),
        "tied": tied,
        "parameters_before": before,
        "parameters_after": sum(p.numel() for p in model.parameters()),
    }


def _replace_everywhere(model: nn.Module, old: nn.Parameter, new: nn.Parameter) -> None:
    for module in model.modules():
        for attr, value in list(module._parameters.items()):
            if value is old:
                module._parameters[attr] = new


# --- ids in configs -----------------------------------------------------------------------------------------
def referenced_ids(*configs: Any) -> set[int]:
    """Every token id a config or generation config names (BOS, EOS lists, pad, decoder start ...)."""
    found: set[int] = set()

    def visit(value: Any, key: str) -> Any:
        if _is_token_key(key):
            found.update(_ints(value))
        return value

    for config in configs:
        if config is not None:
            _walk(_as_dict(config), visit)
    return found


def remap_config(config: Any, mapping: dict[int, int]) -> None:
    """Rewrite every token id of a ``PretrainedConfig`` / ``GenerationConfig`` (and its sub-configs) in place."""
    if config is None:
        return
    for key in list(_as_dict(config)):
        value = getattr(config, key, None)
        if hasattr(value, "to_dict") and not isinstance(value, dict):
            remap_config(value, mapping)
        elif _is_token_key(key) and value is not None:
            setattr(config, key, _remap(value, mapping, key))
        elif key in _SUPPRESSED and value:
            setattr(config, key, [mapping[i] for i in value if i in mapping])
        elif key == "bad_words_ids" and value:
            setattr(config, key, [[mapping[i] for i in seq] for seq in value if all(i in mapping for i in seq)])


def _is_token_key(key: str) -> bool:
    return isinstance(key, str) and key.endswith(("_token_id", "_token_ids", "_token_index"))


def _ints(value: Any) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value] if value >= 0 else []
    if isinstance(value, (list, tuple)):
        return [v for item in value for v in _ints(item)]
    return []


def _remap(value: Any, mapping: dict[int, int], key: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, list, tuple)):
        return value
    if isinstance(value, int):
        if value < 0:
            return value
        if value not in mapping:
            raise NonStandardEmbeddingsError(f"config field {key}={value} names a token that was not kept")
        return mapping[value]
    return type(value)(_remap(item, mapping, key) for item in value)


def _as_dict(config: Any) -> dict[str, Any]:
    return config.to_dict() if hasattr(config, "to_dict") else dict(vars(config))


def _walk(data: Any, visit: Callable[[Any, str], Any], key: str = "") -> None:
    if isinstance(data, dict):
        for k, v in data.items():
            visit(v, k)
            _walk(v, visit, k)
    elif isinstance(data, list):
        for item in data:
            _walk(item, visit, key)
