"""Which layers are an MLP's neurons and an attention's heads, per architecture family, and what the config calls them.

Structured pruning must leave a model that transformers' *stock* config describes, so it only removes what a
config field can express: ``intermediate_size`` (``n_inner`` for GPT-2) for MLP width, ``num_attention_heads`` /
``num_key_value_heads`` with an explicit ``head_dim`` for heads, ``num_hidden_layers`` (and per-block lists such as
Gemma 3's ``layer_types``) for depth. Families are listed by ``model_type``; anything else is refused with the
reason, never pruned into a checkpoint that loads wrongly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from ...errors import StructuredPruningUnsupportedError
from .spec import StructuredSpec


@dataclass(frozen=True)
class Attention:
    """Short names (inside a block) of the projections; heads are rows of q/k/v and columns of o."""

    q: str
    k: str
    v: str
    o: str


@dataclass(frozen=True)
class Family:
    """How one family of architectures lays out its blocks (short names are relative to a block)."""

    name: str
    model_types: tuple[str, ...]
    #: layers whose output rows are the MLP's neurons (gate and up; GPT-2's c_fc)
    mlp_in: tuple[str, ...]
    #: the layer whose input columns are the neurons (down; GPT-2's c_proj)
    mlp_out: str
    #: the config field that holds the number of neurons
    width_key: str
    attention: Attention | None = None
    #: why heads cannot be removed (``None``: they can)
    heads_refusal: str | None = None

    @property
    def neuron_layers(self) -> tuple[str, ...]:
        return (*self.mlp_in, self.mlp_out)


LLAMA_LIKE = Family(
    name="llama-like",
    model_types=("llama", "qwen2", "mistral", "gemma3_text"),
    mlp_in=("mlp.gate_proj", "mlp.up_proj"),
    mlp_out="mlp.down_proj",
    width_key="intermediate_size",
    attention=Attention("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"),
)
GPT2 = Family(
    name="gpt2",
    model_types=("gpt2",),
    mlp_in=("mlp.c_fc",),
    mlp_out="mlp.c_proj",
    width_key="n_inner",
    heads_refusal="GPT-2's config derives the head size from n_embd / n_head and its c_attn fuses q, k and v, "
    "so no stock config describes fewer heads",
)
FAMILIES = (LLAMA_LIKE, GPT2)
SUPPORTED = ", ".join(t for family in FAMILIES for t in family.model_types)


def family_of(model: nn.Module, spec: StructuredSpec) -> Family:
    """The model's family, checked against what ``spec`` asks to remove.

    Raises:
        StructuredPruningUnsupportedError: an architecture outside the families, or a kind of structure its config
            cannot express (heads on GPT-2, depth on GPT-2 with per-layer attention scaling, ...).
    """
    config = model.config
    model_type = getattr(config, "model_type", type(model).__name__)
    family = next((f for f in FAMILIES if model_type in f.model_types), None)
    if family is None:
        raise StructuredPruningUnsupportedError(
            f"--structure {spec}: structured pruning supports model types {SUPPORTED}; this model is "
            f"'{model_type}' ({type(model).__name__}), whose layout or config it cannot rewrite safely "
            "(use unstructured or N:M sparsity on it)"
        )
    if spec.heads is not None and family.heads_refusal:
        raise StructuredPruningUnsupportedError(
            f"--structure {spec}: heads cannot be removed from {model_type}: {family.heads_refusal}"
        )
    if spec.depth is not None and getattr(config, "scale_attn_by_inverse_layer_idx", False):
        raise StructuredPruningUnsupportedError(
            f"--structure {spec}: this {model_type} scales attention by 1 / (block index + 1), so removing blocks "
            "would change how every later block attends; depth pruning cannot keep its outputs"
        )
    return family


def head_layout(config: Any) -> tuple[int, int, int]:
    """``(query heads, key/value heads, head size)`` from a llama-like config."""
    heads = int(config.num_attention_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    return heads, kv_heads, head_dim


def width_of(config: Any, family: Family) -> int:
    """Neurons per block: the config's width field (GPT-2's ``n_inner`` may be ``None``: 4 x ``n_embd``)."""
    value = getattr(config, family.width_key, None)
    return int(value) if value is not None else 4 * int(config.hidden_size)
