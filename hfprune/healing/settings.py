"""What a healing run does, as one typed object: :class:`HealSettings` (the CLI's flags, checked once here)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..calibration import CalibrationSource, Mix, SourceSpec
from ..constants import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_HEAL_TEMPERATURE,
    DEFAULT_HEAL_TOKENS,
    DEFAULT_KD_WEIGHT,
    DEFAULT_SEED,
    DEFAULT_SEQLEN,
)
from ..errors import HealingSettingsError
from ..io import portable_path

#: ``full``: every weight trains (zeros held at zero); ``lora``: low-rank adapters train, merged at the end.
HEAL_MODES = ("full", "lora")
#: Learning rates when none is given: adapters start from zero and take a larger step than whole weights.
DEFAULT_LR = {"full": 2e-5, "lora": 2e-4}


@dataclass(frozen=True)
class HealSettings:
    """How to heal a pruned student from its dense teacher.

    Attributes:
        calibration: the language mix ``"en:1,sw:1"``; here the counts are relative weights: ``tokens`` decides
            how many samples there are (``ceil(tokens / seqlen)``), shared out in proportion to them.
        tokens: tokens trained on in all (the budget); must be positive.
        epochs: passes over the text: ``tokens / epochs`` distinct tokens, each pass after the first in its own
            order. 1 (default) never repeats a sample; more lets a language with little text reach the budget.
        calib_source: where the text is drawn from (as for pruning; ``None``: hfprune's default text).
        mode: ``"full"`` (all weights train, zeros kept) or ``"lora"`` (adapters, merged then re-masked).
        seqlen, batch_size, grad_accum: sample length, samples per forward, forwards per optimizer step.
        lr: AdamW learning rate (``None``: 2e-5 for full, 2e-4 for lora); weight_decay, warmup_ratio,
            max_grad_norm: the rest of the optimizer and its cosine schedule.
        temperature: the distillation temperature T (both distributions are softened by it; the KD term is
            scaled by T^2 so its gradients keep their size).
        kd_weight: loss = kd_weight * KD + (1 - kd_weight) * next-token cross-entropy, in [0, 1].
        hidden_weight: plus this times the last hidden states' relative squared difference (0: off). Needs the
            student and teacher to share the hidden width (pruning that keeps it: unstructured, N:M, width of
            the MLP and heads, blocks, vocabulary).
        seed: the healing seed; the healing text is drawn with ``seed + 1`` so it differs from a mask drawn
            with the pruning default seed, and the mask's samples are dropped by hash anyway.
        device: ``None``/``"auto"``: CUDA when there is one (bf16 mixed precision there, float32 on CPU).
        teacher_device: where the frozen teacher runs (``None``: beside the student). ``"cpu"`` offloads it
            when it does not fit on the student's GPU: only its logits cross over, at the cost of CPU forwards.
        train_embeddings: also train the input embedding and the output head. Off by default: pruning leaves
            them dense and unchanged, and with a large vocabulary (Gemma's 262,144 rows are 168M of its 268M
            parameters) their gradient and AdamW moments cost a quarter of each step and most of the memory.
        gradient_checkpointing: recompute activations in the backward (less memory, ~30% slower).
        checkpoint_every: save a resumable checkpoint every K optimizer steps (``None``: only on Ctrl-C).
        lora_rank, lora_alpha, lora_dropout: the adapters of ``mode="lora"``.
        quality_sentences: held-out FLORES sentences per language on which the teacher, the student before and
            the student after are measured (bits per byte; the card's three-way table); 0 skips it.
    """

    calibration: Mix | str = "en:1"
    tokens: int = DEFAULT_HEAL_TOKENS
    epochs: int = 1
    calib_source: CalibrationSource = None
    mode: str = "full"
    seqlen: int = DEFAULT_SEQLEN
    batch_size: int = DEFAULT_BATCH_SIZE
    grad_accum: int = 1
    lr: float | None = None
    weight_decay: float = 0.01
    warmup_ratio: float = 0.05
    max_grad_norm: float = 1.0
    temperature: float = DEFAULT_HEAL_TEMPERATURE
    kd_weight: float = DEFAULT_KD_WEIGHT
    hidden_weight: float = 0.0
    seed: int = DEFAULT_SEED
    device: str | torch.device | None = None
    teacher_device: str | torch.device | None = None
    train_embeddings: bool = False
    gradient_checkpointing: bool = False
    checkpoint_every: int | None = None
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    quality_sentences: int = 16

    def __post_init__(self) -> None:
        _check(
            isinstance(self.tokens, int) and self.tokens > 0,
            f"--tokens must be a positive number of tokens, got {self.tokens}",
        )
        _check(isinstance(self.epochs, int) and self.epochs >= 1, f"--epochs must be 1 or more, got {self.epochs}")
        _check(self.mode in HEAL_MODES, f"--heal-mode must be one of {', '.join(HEAL_MODES)}, got {self.mode!r}")
        _check(self.seqlen >= 2, f"--seqlen must be at least 2 tokens, got {self.seqlen}")
        for name, value in (("--batch-size", self.batch_size), ("--grad-accum", self.grad_accum)):
            _check(value >= 1, f"{name} must be 1 or more, got {value}")
        _check(self.lr is None or self.lr > 0, f"--lr must be above 0, got {self.lr}")
        _check(self.temperature > 0, f"--temperature must be above 0, got {self.temperature}")
        _check(0 <= self.kd_weight <= 1, f"--kd-weight is the KD share of the loss, in [0, 1]; got {self.kd_weight}")
        _check(self.hidden_weight >= 0, f"--hidden-weight must be 0 or more, got {self.hidden_weight}")
        _check(0 <= self.warmup_ratio < 1, f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        _check(
            self.checkpoint_every is None or self.checkpoint_every >= 1,
            f"--checkpoint-every must be 1 or more steps, got {self.checkpoint_every}",
        )
        _check(
            not (self.train_embeddings and self.mode == "lora"),
            "--train-embeddings trains whole embedding weights; with --heal-mode lora only the adapters train: "
            "drop one of them",
        )
        _check(self.lora_rank >= 1, f"lora_rank must be 1 or more, got {self.lora_rank}")
        _check(self.quality_sentences >= 0, f"--quality-sentences must be 0 or more, got {self.quality_sentences}")
        self.mix  # parses the mix now: a bad one fails before any model loads  # noqa: B018

    @property
    def mix(self) -> Mix:
        return Mix.parse(self.calibration)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.mode]

    @property
    def samples(self) -> int:
        """Distinct healing samples: enough windows of ``seqlen`` for ``tokens`` over ``epochs`` passes (rounded
        up)."""
        return -(-self.tokens // (self.seqlen * self.epochs))

    def with_overrides(self, **overrides: Any) -> HealSettings:
        return dataclasses.replace(self, **overrides)

    def describe(self) -> dict[str, Any]:
        """What decides the healed weights, as JSON (what a resume must match; the device and the checkpoint
        interval do not change the result's definition and are left out)."""
        return {
            "calibration": str(self.mix),
            "calib_source": _describe_source(self.calib_source),
            "tokens": self.tokens,
            **({"epochs": self.epochs} if self.epochs > 1 else {}),
            "mode": self.mode,
            "seqlen": self.seqlen,
            "batch_size": self.batch_size,
            "grad_accum": self.grad_accum,
            "lr": self.learning_rate,
            "weight_decay": self.weight_decay,
            "warmup_ratio": self.warmup_ratio,
            "max_grad_norm": self.max_grad_norm,
            "temperature": self.temperature,
            "kd_weight": self.kd_weight,
            **({"hidden_weight": self.hidden_weight} if self.hidden_weight else {}),
            "seed": self.seed,
            "train_embeddings": self.train_embeddings,
            "gradient_checkpointing": self.gradient_checkpointing,
            **(
                {"lora": {"rank": self.lora_rank, "alpha": self.lora_alpha, "dropout": self.lora_dropout}}
                if self.mode == "lora"
                else {}
            ),
        }


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise HealingSettingsError(message)


def _describe_source(source: CalibrationSource) -> Any:
    """The text source as it may be recorded: a folder by its name, never this machine's path."""
    if source is None:
        return None
    if isinstance(source, (str, Path)):
        return portable_path(str(source))
    if isinstance(source, SourceSpec):
        described = dataclasses.asdict(source)
        described["location"] = portable_path(str(source.location)) if source.location is not None else None
        return described
    return source.describe()
