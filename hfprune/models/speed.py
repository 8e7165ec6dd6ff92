"""Tokens per second of a causal LM as a user runs it: a prefill forward and plain ``generate``, with the time its
blocks take measured apart from the embeddings and the output layer.

Structured pruning makes the *blocks* smaller; how much of that reaches the user depends on what else the model
spends time on (Gemma 3 270M's 262k-token output layer costs more per token than its 18 blocks together), so the
blocks' own time per decoded token is timed by hooks on the first block's start and the last block's end.
Each figure is the best of ``repeats`` runs after one warm-up: on a shared machine the minimum is the least
disturbed estimate. This is hfprune's one speed meter: the vocabulary record, the structured record, the cards
and every benchmark read it (:func:`measure_speed` for one prompt, :func:`measure_prompts` for several, and
:func:`compare_speeds` for models timed in turns, side by side).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .discovery import find_block_stacks
from .generation import greedy


@dataclass
class SpeedReport:
    prefill_tokens_per_s: float
    decode_tokens_per_s: float
    decode_ms_per_token: float
    blocks_decode_ms_per_token: float
    blocks_share_of_decode: float
    setup: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _StepClock:
    """Forward hooks timing every call of the whole model and of its block stack (first block in, last out)."""

    def __init__(self, model: nn.Module) -> None:
        stack = find_block_stacks(model)[-1].blocks
        self.steps: list[float] = []
        self.blocks: list[float] = []
        self._handles = [
            model.register_forward_pre_hook(lambda *_: self._start("step")),
            model.register_forward_hook(lambda *_: self._stop("step", self.steps)),
            stack[0].register_forward_pre_hook(lambda *_: self._start("blocks")),
            stack[-1].register_forward_hook(lambda *_: self._stop("blocks", self.blocks)),
        ]
        self._started: dict[str, float] = {}

    def _start(self, key: str) -> None:
        self._started[key] = time.perf_counter()

    def _stop(self, key: str, into: list[float]) -> None:
        into.append(time.perf_counter() - self._started.pop(key))

    def reset(self) -> None:
        self.steps, self.blocks = [], []

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


@torch.no_grad()
def measure_speed(model: nn.Module, prompt: torch.Tensor, *, new_tokens: int = 32, repeats: int = 3) -> SpeedReport:
    """Prefill and greedy decoding speed of ``model`` on ``prompt`` (``[1, P]`` token ids), batch 1.

    Prefill: one forward over the prompt. Decode: ``generate`` of exactly ``new_tokens`` tokens after the prompt;
    its first step (the prefill) is left out, the other steps' time divided by their number is the time per
    decoded token, of which the blocks' hooks give the blocks' part.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    prompt = prompt.to(device)
    clock = _StepClock(model)
    prefill, per_token, blocks_per_token = [], [], []
    try:
        for run in range(repeats + 1):  # run 0 warms up
            started = time.perf_counter()
            model(input_ids=prompt, use_cache=True)
            prefill_s = time.perf_counter() - started
            clock.reset()
            started = time.perf_counter()
            greedy(model, prompt, new_tokens)
            total = time.perf_counter() - started
            decode_steps = len(clock.steps) - 1
            if run and decode_steps > 0:
                prefill.append(prefill_s)
                per_token.append((total - clock.steps[0]) / decode_steps)
                blocks_per_token.append(sum(clock.blocks[1:]) / decode_steps)
    finally:
        clock.close()
        model.train(was_training)
    decode = min(per_token)
    blocks = min(blocks_per_token)
    return SpeedReport(
        prefill_tokens_per_s=prompt.shape[1] / min(prefill),
        decode_tokens_per_s=1.0 / decode,
        decode_ms_per_token=decode * 1e3,
        blocks_decode_ms_per_token=blocks * 1e3,
        blocks_share_of_decode=blocks / decode,
        setup={
            "prompt_tokens": int(prompt.shape[1]),
            "new_tokens": new_tokens,
            "batch": 1,
            "repeats": repeats,
            "statistic": "best of repeats after one warm-up",
            "device": str(device),
            "threads": torch.get_num_threads(),
            "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
            "machine": machine(),
            "how": "prefill: one forward over the prompt; decode: plain greedy generate, its first step left out; "
            "blocks: hooks on the first block's start and the last block's end",
        },
    )


def machine() -> str:
    """The processor the numbers were taken on, as the platform names it."""
    return f"{platform.machine()} {platform.processor() or platform.system()}".strip()


def measure_prompts(
    model: nn.Module, tokenizer: Any, prompts: Sequence[str], *, new_tokens: int = 16, repeats: int = 3
) -> dict[str, Any]:
    """:func:`measure_speed` on each prompt (in the model's own tokens), summed over the prompts: prefill
    tokens/s is all prompt tokens over all prefill time, decode tokens/s all decoded tokens over all decode time."""
    device = next(model.parameters()).device
    reports = [
        measure_speed(
            model, torch.tensor([tokenizer(p)["input_ids"]], device=device), new_tokens=new_tokens, repeats=repeats
        )
        for p in prompts
    ]
    setup = reports[0].setup
    return {
        "prompts": len(prompts),
        "new_tokens": new_tokens,
        "repeats": repeats,
        **summed([report.to_dict() for report in reports]),
        **{key: setup[key] for key in ("device", "dtype", "threads", "machine", "statistic")},
        "how": f"{setup['how']}; {setup['statistic']}, summed over {len(prompts)} prompt(s)",
    }


def summed(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Several prompts' figures (``measure_speed`` reports or ``compare_speeds`` bests, as dicts) as one: all
    prompt tokens over all prefill time, and one decoded token per prompt over the sum of their times per token."""
    prompt_tokens = sum(run["setup"]["prompt_tokens"] for run in runs)
    prefill_s = sum(run["setup"]["prompt_tokens"] / run["prefill_tokens_per_s"] for run in runs)
    decode_s = sum(run["decode_ms_per_token"] / 1e3 for run in runs)
    return {
        "prompt_tokens": prompt_tokens,
        "prefill_s": prefill_s,
        "prefill_tokens_per_s": prompt_tokens / prefill_s,
        "decode_tokens_per_s": len(runs) / decode_s,
    }


def compare_speeds(
    models: Mapping[str, tuple[nn.Module, torch.Tensor]], *, rounds: int = 3, new_tokens: int = 32
) -> dict[str, dict[str, Any]]:
    """Several models timed in turns (one :func:`measure_speed` run each per round, so a disturbance of the
    machine falls on all of them alike); per model the best round of each figure, the median and every round."""
    runs = _in_turns(models, rounds, lambda m, p: measure_speed(m, p, new_tokens=new_tokens, repeats=1).to_dict())
    return {name: _best(found) for name, found in runs.items()}


def _in_turns(
    models: Mapping[str, tuple[Any, torch.Tensor]], rounds: int, measure: Callable[[Any, torch.Tensor], dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, (model, prompt) in models.items():
            runs[name].append(measure(model, prompt))
    return runs


@torch.no_grad()
def measure_generate(model: Any, prompt: torch.Tensor, *, new_tokens: int = 32) -> dict[str, Any]:
    """Speed of anything with ``generate`` (a PyTorch model, an OpenVINO one), batch 1, greedy, from the outside:
    decode = (time of ``new_tokens`` tokens - time of 1) / (new_tokens - 1); prefill = the time of 1 token
    (the prompt's forward and one step). No hooks, so runtimes without modules are timed alike."""

    def generate(tokens: int) -> float:
        started = time.perf_counter()
        greedy(model, prompt, tokens)
        return time.perf_counter() - started

    generate(2)  # warm-up
    first, total = generate(1), generate(new_tokens)
    per_token = max(total - first, 1e-9) / (new_tokens - 1)
    return {
        "prefill_tokens_per_s": prompt.shape[1] / first,
        "decode_tokens_per_s": 1.0 / per_token,
        "decode_ms_per_token": per_token * 1e3,
        "setup": {
            "prompt_tokens": int(prompt.shape[1]),
            "new_tokens": new_tokens,
            "batch": 1,
            "machine": machine(),
            "how": "generate from outside: decode = (t(new_tokens) - t(1)) / (new_tokens - 1), after a warm-up",
        },
    }


def compare_generate_speeds(
    models: Mapping[str, tuple[Any, torch.Tensor]], *, rounds: int = 3, new_tokens: int = 32
) -> dict[str, dict[str, Any]]:
    """:func:`measure_generate` of several models (of any runtime) in turns; per model its best round."""
    runs = _in_turns(models, rounds, lambda m, p: measure_generate(m, p, new_tokens=new_tokens))
    return {
        name: {
            "decode_tokens_per_s": max(r["decode_tokens_per_s"] for r in found),
            "prefill_tokens_per_s": max(r["prefill_tokens_per_s"] for r in found),
            "median_decode_tokens_per_s": sorted(r["decode_tokens_per_s"] for r in found)[len(found) // 2],
            "setup": found[0]["setup"] | {"rounds": len(found), "statistic": "best round of models timed in turns"},
            "rounds": found,
        }
        for name, found in runs.items()
    }


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    middle = len(runs) // 2
    return {
        "prefill_tokens_per_s": max(r["prefill_tokens_per_s"] for r in runs),
        "decode_tokens_per_s": max(r["decode_tokens_per_s"] for r in runs),
        "decode_ms_per_token": min(r["decode_ms_per_token"] for r in runs),
        "blocks_decode_ms_per_token": min(r["blocks_decode_ms_per_token"] for r in runs),
        "median_decode_ms_per_token": sorted(r["decode_ms_per_token"] for r in runs)[middle],
        "median_blocks_decode_ms_per_token": sorted(r["blocks_decode_ms_per_token"] for r in runs)[middle],
        "setup": runs[0]["setup"] | {"rounds": len(runs), "statistic": "best round of models timed in turns"},
        "rounds": runs,
    }
