"""The check after every export: does the exported model say what the PyTorch model says, per language?

On held-out sentences of each language (FLORES devtest by default, never text the export was calibrated on):
bits per byte of both models on the same token ids (the exported model's per-language quality, and its change),
how often their next-token argmax agrees, and for float formats the largest logit difference; then greedy text
from a prompt per language, token for token. Last, a decode probe: after the prompt, every step of ``generate``
must feed the exported model one token (its KV cache reused); a fault here gives the right text in quadratic
time, so only this probe catches it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ..errors import ExportVerificationError
from ..models.generation import greedy
from ..models.quality import bits_per_byte, token_nll_sum
from .settings import BPB_TOLERANCE, LOGIT_TOLERANCE, STRICT_FORMATS

#: Tokens of each held-out sentence used as the greedy prompt.
PROMPT_TOKENS = 8


@torch.no_grad()
def compare_language(torch_model: Any, exported: Any, tokenizer: Any, sentences: Sequence[str]) -> dict[str, Any]:
    """Both models on the same ids of ``sentences``: bits per byte, argmax agreement, max |logit difference|."""
    nll = {"pytorch": 0.0, "export": 0.0}
    n_bytes, agree, predicted, max_diff = 0, 0, 0, 0.0
    for sentence in sentences:
        ids = torch.tensor([tokenizer(sentence)["input_ids"]])
        if ids.shape[1] < 2:
            continue
        mask = torch.ones_like(ids)
        reference = torch_model(input_ids=ids, attention_mask=mask).logits.float()[0]
        candidate = torch.as_tensor(exported(input_ids=ids, attention_mask=mask).logits).float()[0]
        for name, logits in (("pytorch", reference), ("export", candidate)):
            nll[name] += token_nll_sum(logits, ids[0])
        reference, candidate, targets = reference[:-1], candidate[:-1], ids[0, 1:]
        agree += int((reference.argmax(-1) == candidate.argmax(-1)).sum())
        predicted += targets.numel()
        max_diff = max(max_diff, (reference - candidate).abs().max().item())
        n_bytes += len(sentence.encode("utf-8"))
    bpb = {name: bits_per_byte(value, n_bytes) for name, value in nll.items()}
    return {
        "sentences": len(sentences),
        "tokens_predicted": predicted,
        "bytes": n_bytes,
        "bits_per_byte_pytorch": bpb["pytorch"],
        "bits_per_byte_export": bpb["export"],
        "bits_per_byte_change": bpb["export"] / bpb["pytorch"] - 1.0,
        "argmax_agreement": agree / predicted,
        "max_abs_logit_difference": max_diff,
    }


@torch.no_grad()
def greedy_agreement(torch_model: Any, exported: Any, tokenizer: Any, sentence: str, new_tokens: int) -> dict[str, Any]:
    """Greedy continuations of the sentence's first tokens by both models: how many tokens agree from the start."""
    ids = torch.tensor([tokenizer(sentence)["input_ids"][:PROMPT_TOKENS]])
    generated = {}
    for name, model in (("pytorch", torch_model), ("export", exported)):
        output = greedy(model, ids, new_tokens, pad_token_id=_pad_id(tokenizer))
        generated[name] = torch.as_tensor(output)[0, ids.shape[1] :].tolist()
    same = 0
    for a, b in zip(generated["pytorch"], generated["export"]):
        if a != b:
            break
        same += 1
    return {
        "prompt_tokens": int(ids.shape[1]),
        "new_tokens": new_tokens,
        "agreeing_prefix": same,
        "identical": generated["pytorch"] == generated["export"],
        "text_pytorch": tokenizer.decode(generated["pytorch"]),
        "text_export": tokenizer.decode(generated["export"]),
    }


@torch.no_grad()
def decode_steps(exported: Any, tokenizer: Any, sentence: str, new_tokens: int = 4) -> list[int]:
    """The input length of every forward ``generate`` makes on the exported model (prompt first)."""
    ids = torch.tensor([tokenizer(sentence)["input_ids"][:PROMPT_TOKENS]])
    lengths: list[int] = []
    forward = exported.forward

    @functools.wraps(forward)  # generate checks its keyword arguments against the forward's signature
    def recording(*args: Any, **kwargs: Any) -> Any:
        given = kwargs.get("input_ids", args[0] if args else None)
        lengths.append(int(given.shape[1]))
        return forward(*args, **kwargs)

    exported.forward = recording
    try:
        greedy(exported, ids, new_tokens, pad_token_id=_pad_id(tokenizer))
    finally:
        del exported.forward  # the class's own forward again
    return lengths


def _pad_id(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def verify(
    torch_model: Any,
    exported: Any,
    tokenizer: Any,
    sentences: Mapping[str, Sequence[str]],
    *,
    weights: str,
    greedy_tokens: int,
) -> dict[str, Any]:
    """The whole check, per language, with its verdict.

    Raises:
        ExportVerificationError: the KV cache is not reused, or a float format (fp32, fp16) misses its tolerance
            (a numeric fault: such an export is not kept). int8 and int4 record their loss and pass with a warning.
    """
    languages = {lang: compare_language(torch_model, exported, tokenizer, lines) for lang, lines in sentences.items()}
    greedy = {
        lang: greedy_agreement(torch_model, exported, tokenizer, lines[0], greedy_tokens)
        for lang, lines in sentences.items()
    }
    first = next(iter(sentences.values()))[0]
    steps = decode_steps(exported, tokenizer, first)
    if any(length != 1 for length in steps[1:]):
        raise ExportVerificationError(
            f"the exported model does not reuse its KV cache (generate fed it {steps} tokens per step): "
            "optimum-intel and transformers disagree on how the cache is passed; nothing was kept"
        )
    tolerance = BPB_TOLERANCE[weights]
    logit_tolerance = LOGIT_TOLERANCE.get(weights)
    failed = [
        lang
        for lang, row in languages.items()
        if abs(row["bits_per_byte_change"]) > tolerance
        or (logit_tolerance is not None and row["max_abs_logit_difference"] > logit_tolerance)
    ]
    if failed and weights in STRICT_FORMATS:
        worst = ", ".join(
            f"{lang} {languages[lang]['bits_per_byte_change']:+.2%} bits per byte, max |logit diff| "
            f"{languages[lang]['max_abs_logit_difference']:.3g}"
            for lang in failed
        )
        raise ExportVerificationError(
            f"the {weights} export does not reproduce the PyTorch model ({worst}; tolerance {tolerance:.1%}"
            + (f", logits {logit_tolerance:g}" if logit_tolerance else "")
            + "): nothing was kept. Report it with the versions in `hfprune export --help`"
        )
    return {
        "languages": languages,
        "greedy": greedy,
        "decode_steps": steps,
        "tolerance": {"bits_per_byte_change": tolerance, "max_abs_logit_difference": logit_tolerance},
        "passed": not failed,
        "over_tolerance": failed,
    }
