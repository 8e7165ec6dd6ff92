"""Small dense teachers and their pruned students for the healing tests, made in a second or two each.

Random weights are right for the machinery (masks, alignment, resuming, records); the dense model's output
layer is scaled up so its next-token distributions are peaked and pruning moves them measurably.
"""

from __future__ import annotations

from pathlib import Path

import torch

import hfprune

from ..data_dirs import data_dir
from ..model_factory import make_model, make_tokenizer, save_model_folder

SEQLEN = 32


def texts(langs: tuple[str, ...] = ("en", "sw"), lines: int = 300) -> list[str]:
    out: list[str] = []
    for lang in langs:
        out += (data_dir() / "calib" / "ntrex" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()[:lines]
    return out


def small_source(folder: Path, lines: int = 40) -> Path:
    """A few dozen lines per language: few windows, so the healing draw meets the mask's samples."""
    folder.mkdir(parents=True, exist_ok=True)
    for lang in ("en", "sw"):
        text = (data_dir() / "calib" / "ntrex" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()[:lines]
        (folder / f"{lang}.txt").write_text("\n".join(text), encoding="utf-8")
    return folder


def dense_folder(folder: Path, tokenizer=None, seed: int = 0) -> Path:
    model = make_model("llama", seed=seed)
    with torch.no_grad():
        model.lm_head.weight.mul_(40)  # peaked distributions: pruning changes them measurably
    return save_model_folder(model, tokenizer if tokenizer is not None else make_tokenizer(texts()), folder)


def pruned_folder(dense: Path, out: Path, *, structure: str = "unstructured", source: Path | None = None) -> Path:
    """A wanda-pruned student (its record holds the calibration sample hashes) or a magnitude 2:4 one."""
    if structure == "unstructured":
        hfprune.prune_pretrained(
            str(dense), out, method="wanda", sparsity=0.5, calibration="en:8,sw:8", seqlen=SEQLEN, calib_source=source
        )
    else:
        hfprune.prune_pretrained(str(dense), out, method="magnitude", structure=structure)
    return out
