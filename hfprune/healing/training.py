"""The healing loop: AdamW with a cosine schedule under ``accelerate`` (data parallel under ``accelerate launch``
or ``torchrun``, bf16 autocast on CUDA), the teacher frozen, the mask kept after every optimizer step.

The samples come in one fixed order (shuffled once, by seed, in :mod:`.data`), so a resumed run skips exactly
the batches the checkpoint had seen and, with the RNG states ``save_state`` keeps, reaches the same weights
as a run that was never stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import HealingInterruptedError
from .alignment import VocabularyAlignment
from .checkpoints import CheckpointStore
from .data import HealingData
from .interrupts import interrupts_held
from .loss import healing_loss
from .masks import SparsityMasks
from .settings import HealSettings

#: Called after every optimizer step with the step number (tests stop a run there to check resuming).
StepCallback = Callable[[int], None]


@dataclass
class Checkpointing:
    """Where and when to save, and whether to resume: ``identity`` is what a resume must match (the loop adds
    the settings and the data digest)."""

    store: CheckpointStore
    every: int | None = None
    resume_from: dict[str, Any] | None = None
    identity: dict[str, Any] = field(default_factory=dict)
    resume_hint: str = "run the same command again with --resume"


@dataclass
class TrainingStats:
    steps: int
    total_steps: int
    tokens_seen: int
    loss_start: dict[str, float]
    loss_end: dict[str, float]
    elapsed_s: float
    tokens_per_s: float
    resumed_from_step: int | None
    processes: int
    mixed_precision: str


def train(
    student: nn.Module,
    teacher: nn.Module,
    data: HealingData,
    alignment: VocabularyAlignment,
    masks: SparsityMasks,
    settings: HealSettings,
    device: torch.device,
    *,
    teacher_device: torch.device | None = None,
    checkpointing: Checkpointing | None = None,
    on_step: StepCallback | None = None,
    progress: bool = False,
) -> tuple[nn.Module, TrainingStats]:
    """Train ``student`` on ``data`` against ``teacher``; return the trained model (unwrapped from accelerate,
    on the training device) and what the run did. ``teacher_device``: where the teacher runs (default beside
    the student); its logits are moved to the student.

    Raises:
        HealingInterruptedError: Ctrl-C; a checkpoint was saved first when ``checkpointing`` is given.
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from torch.utils.data import DataLoader, TensorDataset
    from tqdm.auto import tqdm
    from transformers import get_cosine_schedule_with_warmup

    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)
    precision = "bf16" if device.type == "cuda" else "no"
    accelerator = Accelerator(
        gradient_accumulation_steps=settings.grad_accum, mixed_precision=precision, cpu=device.type == "cpu"
    )
    set_seed(settings.seed)
    if settings.gradient_checkpointing and getattr(student, "supports_gradient_checkpointing", False):
        student.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if hasattr(student, "enable_input_require_grads"):
            student.enable_input_require_grads()  # adapters on frozen weights need a graph from the inputs
    if getattr(student, "config", None) is not None:
        student.config.use_cache = False
    student.train()
    teacher.eval().requires_grad_(False)
    teacher_device = teacher_device if teacher_device is not None and teacher_device != device else None
    teacher_on = teacher_device or accelerator.device
    teacher.to(teacher_on)

    trained = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    loader = DataLoader(TensorDataset(data.input_ids), batch_size=settings.batch_size, shuffle=False)
    student, optimizer, loader = accelerator.prepare(student, optimizer, loader)
    masks.hook_gradients()
    total_steps = math.ceil(len(loader) / settings.grad_accum)
    # a prepared scheduler steps once per process for every optimizer step: count it that way
    scheduler = get_cosine_schedule_with_warmup(
        optimizer,
        num_warmup_steps=math.ceil(settings.warmup_ratio * total_steps) * accelerator.num_processes,
        num_training_steps=total_steps * accelerator.num_processes,
    )
    scheduler = accelerator.prepare(scheduler)

    identity: dict[str, Any] = {}
    if checkpointing is not None:
        identity = {**checkpointing.identity, "settings": settings.describe(), "data_digest": data.digest}
    step, tokens_before, elapsed_before, loss_start = 0, 0, 0.0, {}
    batches = loader
    resumed = None
    if checkpointing is not None and checkpointing.resume_from is not None:
        record = checkpointing.resume_from
        checkpointing.store.check_matches(record, identity)
        accelerator.load_state(str(checkpointing.store.state_dir(record)))
        masks.apply()
        step = resumed = int(record["step"])
        done = record.get("progress") or {}
        tokens_before, elapsed_before = int(done.get("tokens_seen", 0)), float(done.get("elapsed_s", 0.0))
        loss_start = dict(done.get("loss_start") or {})
        batches = accelerator.skip_first_batches(loader, step * settings.grad_accum)

    started = time.perf_counter()
    tokens = step_tokens = 0  # all seen by this process; those of its whole steps (what a checkpoint holds)
    saved_step = resumed  # the step whose state the checkpoint folder holds
    window: list[torch.Tensor] = []
    last: dict[str, float] = {}
    bar = tqdm(total=total_steps, initial=step, desc="healing", unit="step", disable=not progress)

    def progress_record() -> dict[str, Any]:
        elapsed = elapsed_before + time.perf_counter() - started
        return {
            "tokens_seen": tokens_before + step_tokens,
            "elapsed_s": elapsed,
            "loss_start": loss_start,
            "loss_end": last,
        }

    try:
        for (ids,) in batches:
            with accelerator.accumulate(student):
                hidden = bool(settings.hidden_weight)
                with torch.no_grad(), accelerator.autocast():
                    teacher_ids = alignment.teacher_inputs(ids).to(teacher_on)
                    taught = teacher(input_ids=teacher_ids, use_cache=False, output_hidden_states=hidden)
                learnt = student(input_ids=ids, use_cache=False, output_hidden_states=hidden)
                parts = healing_loss(
                    learnt.logits,
                    alignment.teacher_logits(taught.logits.to(ids.device)),
                    ids,
                    temperature=settings.temperature,
                    kd_weight=settings.kd_weight,
                    hidden_weight=settings.hidden_weight,
                    student_hidden=learnt.hidden_states[-1] if hidden else None,
                    teacher_hidden=taught.hidden_states[-1].to(ids.device) if hidden else None,
                )
                accelerator.backward(parts.total)
                if accelerator.sync_gradients and settings.max_grad_norm:
                    accelerator.clip_grad_norm_(trained, settings.max_grad_norm)
                with interrupts_held():  # a Ctrl-C waits for the whole step, so a saved state is one
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
                    tokens += ids.numel() * accelerator.num_processes
                    window.append(torch.stack([parts.total.detach(), parts.kd, parts.ce, parts.hidden]).float())
                    if accelerator.sync_gradients:
                        masks.apply()  # weight decay and momentum moved the zeros
                        step += 1
                        step_tokens = tokens
                        last = _mean(window, accelerator, bool(settings.hidden_weight))
                        window.clear()
                        if not loss_start:
                            loss_start = dict(last)
            if not accelerator.sync_gradients:
                continue
            rate = tokens / max(time.perf_counter() - started, 1e-9)
            bar.update(1)
            bar.set_postfix(loss=f"{last['loss']:.3f}", tok_s=f"{rate:,.0f}")
            if on_step is not None:
                on_step(step)
            if (
                checkpointing is not None
                and checkpointing.every
                and step % checkpointing.every == 0
                and step < total_steps
            ):
                checkpointing.store.save(accelerator, step, identity, progress_record())
                saved_step = step
    except KeyboardInterrupt:
        bar.close()
        if checkpointing is None:
            raise HealingInterruptedError(f"interrupted at step {step} of {total_steps}; nothing was saved") from None
        if step != saved_step:  # else that very state is saved already: rewriting it would only risk it
            checkpointing.store.save(accelerator, step, identity, progress_record())
        raise HealingInterruptedError(
            f"interrupted at step {step} of {total_steps}: the training state is saved in "
            f"{checkpointing.store.folder}; {checkpointing.resume_hint} to continue from there"
        ) from None
    finally:
        masks.remove_hooks()
        bar.close()
    accelerator.wait_for_everyone()
    elapsed = elapsed_before + time.perf_counter() - started
    unwrapped = accelerator.unwrap_model(student, keep_fp32_wrapper=False)
    if settings.gradient_checkpointing and hasattr(unwrapped, "gradient_checkpointing_disable"):
        unwrapped.gradient_checkpointing_disable()
    unwrapped.eval()
    teacher.to("cpu")
    return unwrapped, TrainingStats(
        steps=step,
        total_steps=total_steps,
        tokens_seen=tokens_before + tokens,
        loss_start=loss_start,
        loss_end=last,
        elapsed_s=elapsed,
        tokens_per_s=tokens / max(time.perf_counter() - started, 1e-9),
        resumed_from_step=resumed,
        processes=accelerator.num_processes,
        mixed_precision=precision,
    )


def _mean(window: list[torch.Tensor], accelerator: Any, hidden: bool) -> dict[str, float]:
    """The step's losses averaged over its forwards and over every process (what the gradient was taken of:
    rank 0's own batches alone would misstate a data-parallel run)."""
    mean = torch.stack(window).mean(dim=0)
    if accelerator.num_processes > 1:
        mean = accelerator.reduce(mean, reduction="mean")
    means = dict(zip(("loss", "kd", "ce", "hidden"), mean.tolist()))
    return means if hidden else {key: value for key, value in means.items() if key != "hidden"}
