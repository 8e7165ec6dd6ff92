"""hfprune's own tiny multilingual Llama, trained here, deterministically, and cached.

Random-init models cannot show that pruning hurts a language; a pretrained one is too slow for tests. This
module trains a ~1M-parameter Llama (byte-level BPE, grouped-query attention) on the *calibration* text of
eight languages in a few CPU minutes, so tests and the README demo can measure real perplexity changes.
FLORES devtest is never trained on: it is the held-out evaluation text.

Real LLMs carry a few *outlier channels*: input features whose activations are ten to a hundred times the
median (max/median channel norm 9-42 on Gemma 3 270M's linear inputs, measured) and which the model relies
on; they are why activation-aware pruning (Wanda, SparseGPT) beats magnitude pruning. Eight CPU minutes of
training do not grow them (max/median 1.3-4.5 here), so after training the model gets them by an exact
reparameterisation: at every linear input, the 1% of channels that already carry the most activation energy
are scaled up 10x where they are produced (RMSNorm gain, ``v_proj`` or ``up_proj`` rows) and their weight
columns are scaled down 10x where they are read. The dense model computes the same function (the largest
logit change is recorded in training.json and tested); only methods that look at weights alone see a
different model.

The result lives in ``cache_dir() / "tiny-multilingual-<key>"`` where ``key`` hashes the recipe and
the bytes of every data file used, so a change to either retrains. ``python -m hfprune.tiny_model`` prints
the folder and its training stats.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from filelock import FileLock

from .constants import CACHE_DIR_ENV, DATA_DIR_ENV, cache_dir
from .data_sources import DataRoot, data_roots, find_file, tried
from .errors import CalibrationSourceError

#: Languages present both in ``calib/ntrex`` and ``flores/``, spread over five scripts.
LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "es", "ru", "zh", "ar", "sw")
#: Calibration corpora trained on, in this order (a language missing from one is simply skipped).
CALIB_SOURCES: tuple[str, ...] = ("ntrex", "xquad_wiki", "udhr")
FOLDER_PREFIX = "tiny-multilingual-"
TRAINING_RECORD = "training.json"

UNK, BOS, EOS, PAD = "<unk>", "<s>", "</s>", "<pad>"
SPECIAL_TOKENS = (UNK, BOS, EOS, PAD)  # ids 0..3 in this order


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything that decides the trained weights; its hash names the cache folder."""

    version: int = 2  # bump when the training code changes what it produces
    vocab_size: int = 4096
    hidden_size: int = 128
    intermediate_size: int = 352  # divisible by 4 and 8: 2:4 and 4:8 patterns fit
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2  # grouped-query attention, like current Llamas
    max_position_embeddings: int = 1024
    seq_len: int = 256
    batch_size: int = 16
    steps: int = 600
    warmup_steps: int = 30
    learning_rate: float = 3e-3
    min_learning_rate: float = 3e-4
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    threads: int = 2  # fixed: CPU reductions depend on the thread count
    seed: int = 0
    outlier_fraction: float = 0.01  # of each linear input's channels, at least one
    outlier_scale: float = 10.0
    outlier_rows: int = 32  # training rows whose activations choose the outlier channels


# --- public API -----------------------------------------------------------------------------------
def tiny_model_path(*, data_dir: Path | None = None, train_if_missing: bool = True, progress: bool = False) -> Path:
    """The cached tiny model's folder, training it first (once per machine) when it is missing.

    Args:
        data_dir: a data folder (``calib/``, ``flores/``); by default ``$HFPRUNE_DATA_DIR``, then the data shipped
            with hfprune, file by file (the cache key hashes the files' bytes, so either gives the same model).
        train_if_missing: when False, a missing model raises instead of spending minutes of CPU.
        progress: print training progress to stderr.

    Raises:
        CalibrationSourceError: a calibration or FLORES file no data folder has, or
            ``train_if_missing=False`` with nothing cached.
    """
    data = _data_roots(data_dir)
    recipe = Recipe()
    target = cache_dir() / f"{FOLDER_PREFIX}{recipe_key(recipe, data)}"
    if _is_complete(target):
        return target
    if not train_if_missing:
        raise CalibrationSourceError(
            f"The tiny model is not cached at {target}. Train it once with `python -m hfprune.tiny_model` "
            "(a few CPU minutes)."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not _is_complete(target):  # another process may have finished while we waited
            _train_atomically(target, data, recipe, progress)
    return target


def train_tiny_model(
    out_dir: Path,
    *,
    data_dir: Path | tuple[DataRoot, ...] | None = None,
    seed: int = 0,
    recipe: Recipe | None = None,
    progress: bool = False,
) -> dict:
    """Train the tokenizer and model into ``out_dir`` and return the stats also written to training.json.

    The returned dict has ``final_loss`` (mean train loss over the last 20 steps), ``seconds``,
    ``train_tokens`` (tokens seen), ``flores_perplexity`` and ``unigram_perplexity`` per language.
    """
    roots = _data_roots(data_dir)
    recipe = dataclasses.replace(recipe or Recipe(), seed=seed)
    texts = training_texts(roots)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with _deterministic(recipe.threads, recipe.seed):
        tokenizer = _train_tokenizer(texts, recipe)
        streams = {lang: _encode(tokenizer, text) for lang, text in texts.items()}
        model = _build_model(recipe, tokenizer)
        data = _blocks(streams, recipe.seq_len, tokenizer.bos_token_id)
        losses, seen = _train(model, data, recipe, progress)
        model.eval()
        probe = data[:: max(1, len(data) // recipe.outlier_rows)][: recipe.outlier_rows]
        outliers = _grow_outlier_channels(model, probe, recipe)
        flores = _flores_perplexities(model, tokenizer, roots, recipe.seq_len)
    seconds = time.perf_counter() - started
    stats = {
        "final_loss": sum(losses[-20:]) / len(losses[-20:]),
        "seconds": round(seconds, 1),
        "train_tokens": seen,
        "flores_perplexity": flores,
        "unigram_perplexity": {
            lang: unigram_perplexity(streams[lang], _flores_ids(tokenizer, roots, lang), recipe.vocab_size)
            for lang in LANGUAGES
        },
    }
    record = {
        "recipe": dataclasses.asdict(recipe),
        "languages": list(LANGUAGES),
        "data_sha256": data_hashes(roots),
        "loss_curve": [round(x, 4) for x in losses[:: max(1, len(losses) // 50)]],
        "outlier_channels": outliers,
        **stats,
    }
    tokenizer.save_pretrained(out_dir)
    model.save_pretrained(out_dir, safe_serialization=True)
    (out_dir / TRAINING_RECORD).write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    return stats


def training_texts(data: tuple[DataRoot, ...] | Path | None = None) -> dict[str, str]:
    """Each language's calibration text (all sources joined), in :data:`LANGUAGES` order."""
    data = _data_roots(data)
    texts = {}
    for lang in LANGUAGES:
        parts = [f.read_text(encoding="utf-8") for f in _calib_files(data, lang)]
        texts[lang] = "\n".join(p.strip("\n") for p in parts)
    return texts


def unigram_perplexity(train_ids: list[int], eval_ids: list[int], vocab_size: int) -> float:
    """Perplexity of an add-one-smoothed unigram model of ``train_ids`` on ``eval_ids``: the bar to beat."""
    counts = torch.bincount(torch.tensor(train_ids), minlength=vocab_size).double() + 1.0
    log_probs = (counts / counts.sum()).log()
    return math.exp(-log_probs[torch.tensor(eval_ids)].mean().item())


def recipe_key(recipe: Recipe, data: tuple[DataRoot, ...]) -> str:
    """Short hash of the recipe and of the data files' contents."""
    blob = json.dumps({"recipe": dataclasses.asdict(recipe), "data": data_hashes(data)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def data_hashes(data: tuple[DataRoot, ...] | Path | None = None) -> dict[str, str]:
    """sha256 of every file the model depends on (training text and FLORES), keyed by path in the data folder."""
    data = _data_roots(data)
    files = [(relative, path) for lang in LANGUAGES for relative, path in _calib_entries(data, lang)]
    files += [(f"flores/{lang}.devtest.txt", _flores_file(data, lang)) for lang in LANGUAGES]
    return {relative: hashlib.sha256(path.read_bytes()).hexdigest() for relative, path in files}


# --- data -----------------------------------------------------------------------------------------
def _data_roots(data_dir: Path | tuple[DataRoot, ...] | None) -> tuple[DataRoot, ...]:
    return data_dir if isinstance(data_dir, tuple) else data_roots(data_dir, flag="data_dir")


def _calib_entries(data: tuple[DataRoot, ...], lang: str) -> list[tuple[str, Path]]:
    """``(path in the data folder, file)`` of each calibration corpus that has ``lang``, in training order."""
    entries = []
    for src in CALIB_SOURCES:
        found = find_file(data, f"calib/{src}/{lang}.txt")
        if found is not None:
            entries.append((f"calib/{src}/{lang}.txt", found[1]))
    if not entries:
        raise CalibrationSourceError(
            f"No calibration text for '{lang}' (expected calib/<corpus>/{lang}.txt) in {tried(data, None)}. "
            f"Set {DATA_DIR_ENV} to a folder that has it, or reinstall hfprune (its data ships with it)."
        )
    return entries


def _calib_files(data: tuple[DataRoot, ...], lang: str) -> list[Path]:
    return [path for _, path in _calib_entries(data, lang)]


def _flores_file(data: tuple[DataRoot, ...], lang: str) -> Path:
    found = find_file(data, f"flores/{lang}.devtest.txt")
    if found is None:
        raise CalibrationSourceError(
            f"FLORES devtest for '{lang}' (flores/{lang}.devtest.txt) is in none of: {tried(data, None)}."
        )
    return found[1]


def _encode(tokenizer, text: str) -> list[int]:
    # A whole language's text at once (cut into windows after): verbose=False keeps transformers from warning
    # that it is longer than the model's context.
    return tokenizer(text, add_special_tokens=False, verbose=False).input_ids


def _flores_ids(tokenizer, data: tuple[DataRoot, ...], lang: str) -> list[int]:
    lines = _flores_file(data, lang).read_text(encoding="utf-8").splitlines()
    return _encode(tokenizer, "\n".join(line for line in lines if line.strip()))


# --- tokenizer and model --------------------------------------------------------------------------
def _train_tokenizer(texts: dict[str, str], recipe: Recipe):
    """Byte-level BPE that prepends BOS like Llama's, wrapped so ``AutoTokenizer`` loads it."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=UNK))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=recipe.vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    lines = [line for text in texts.values() for line in text.splitlines() if line.strip()]
    bpe.train_from_iterator(lines, trainer=trainer)
    bos_id = bpe.token_to_id(BOS)
    bpe.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        pad_token=PAD,
        model_max_length=recipe.max_position_embeddings,
    )


def _build_model(recipe: Recipe, tokenizer):
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=recipe.hidden_size,
        intermediate_size=recipe.intermediate_size,
        num_hidden_layers=recipe.num_layers,
        num_attention_heads=recipe.num_heads,
        num_key_value_heads=recipe.num_kv_heads,
        max_position_embeddings=recipe.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return model


# --- training -------------------------------------------------------------------------------------
@contextlib.contextmanager
def _deterministic(threads: int, seed: int) -> Iterator[None]:
    """Fixed seed, thread count and deterministic kernels; the process's previous settings come back after."""
    old_threads = torch.get_num_threads()
    old_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_deterministic)


def _blocks(streams: dict[str, list[int]], seq_len: int, bos_id: int) -> torch.Tensor:
    """Cut each language's token stream into BOS-prefixed rows of ``seq_len`` tokens."""
    body = seq_len - 1
    rows = []
    for ids in streams.values():
        chunk = torch.tensor(ids[: len(ids) // body * body]).view(-1, body)
        rows.append(torch.cat([torch.full((len(chunk), 1), bos_id), chunk], dim=1))
    return torch.cat(rows)


def _learning_rate(step: int, recipe: Recipe) -> float:
    """Linear warm-up, then cosine decay to ``min_learning_rate``."""
    if step < recipe.warmup_steps:
        return recipe.learning_rate * (step + 1) / recipe.warmup_steps
    done = (step - recipe.warmup_steps) / max(1, recipe.steps - recipe.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * done))
    return recipe.min_learning_rate + (recipe.learning_rate - recipe.min_learning_rate) * cosine


def _train(model, data: torch.Tensor, recipe: Recipe, progress: bool) -> tuple[list[float], int]:
    """Plain AdamW over shuffled blocks (reshuffled every epoch); returns per-step losses and tokens seen."""
    generator = torch.Generator().manual_seed(recipe.seed)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=recipe.learning_rate,
        betas=(0.9, 0.95),
    )
    model.train()
    order, cursor, losses = torch.randperm(len(data), generator=generator), 0, []
    for step in range(recipe.steps):
        if cursor + recipe.batch_size > len(order):
            order, cursor = torch.randperm(len(data), generator=generator), 0
        batch = data[order[cursor : cursor + recipe.batch_size]]
        cursor += recipe.batch_size
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(step, recipe)
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        optimizer.step()
        losses.append(loss.item())
        if progress and (step % 50 == 0 or step == recipe.steps - 1):
            print(f"tiny model: step {step + 1}/{recipe.steps} loss {loss.item():.3f}", file=sys.stderr)
    return losses, recipe.steps * recipe.batch_size * recipe.seq_len


# --- outlier channels -----------------------------------------------------------------------------
@torch.no_grad()
def _grow_outlier_channels(model, rows: torch.Tensor, recipe: Recipe) -> dict:
    """Give the trained model LLM-like outlier channels without changing what it computes (module docstring).

    Per block and per linear input (attention input, MLP input, attention values, MLP hidden), the top
    ``outlier_fraction`` channels by activation energy on ``rows`` are multiplied by ``outlier_scale`` where
    they are produced and divided by it where they are read. Returns the chosen channels, the max/median
    channel-norm spread before and after, and the largest logit change on ``rows`` (float rounding only).
    """
    energy, before_logits = _input_energy(model, rows)
    cfg, scale = model.config, recipe.outlier_scale
    chosen: dict[str, list[int]] = {}

    def scales(name: str, channel_energy: torch.Tensor) -> torch.Tensor:
        k = max(1, round(recipe.outlier_fraction * len(channel_energy)))
        top = channel_energy.topk(k).indices.sort().values
        chosen[name] = top.tolist()
        out = torch.ones(len(channel_energy))
        out[top] = scale
        return out

    for i, block in enumerate(model.model.layers):
        attn, mlp = block.self_attn, block.mlp
        sites = (
            ("self_attn.input", block.input_layernorm, (attn.q_proj, attn.k_proj, attn.v_proj)),
            ("mlp.input", block.post_attention_layernorm, (mlp.gate_proj, mlp.up_proj)),
        )
        for site, norm, readers in sites:
            s = scales(f"layers.{i}.{site}", energy[readers[0]])
            norm.weight.mul_(s)
            for reader in readers:
                reader.weight.div_(s)
        # o_proj reads each value channel once per query head of its group (grouped-query attention).
        groups = cfg.num_attention_heads // cfg.num_key_value_heads
        per_value = energy[attn.o_proj].view(cfg.num_key_value_heads, groups, -1).sum(1).flatten()
        s = scales(f"layers.{i}.self_attn.v_proj->o_proj", per_value)
        attn.v_proj.weight.mul_(s[:, None])
        attn.o_proj.weight.div_(s.view(cfg.num_key_value_heads, 1, -1).expand(-1, groups, -1).flatten())
        s = scales(f"layers.{i}.mlp.up_proj->down_proj", energy[mlp.down_proj])
        mlp.up_proj.weight.mul_(s[:, None])
        mlp.down_proj.weight.div_(s)
    after_energy, after_logits = _input_energy(model, rows)
    change = (after_logits - before_logits).abs().max().item()
    return {
        "fraction": recipe.outlier_fraction,
        "scale": scale,
        "channels": chosen,
        "spread_before": _spread(energy),
        "spread_after": _spread(after_energy),
        "max_logit_change": change,
    }


def _input_energy(model, rows: torch.Tensor) -> tuple[dict, torch.Tensor]:
    """Sum of squared activations per input channel of every linear in the blocks over ``rows``, and the logits."""
    energy: dict = {}
    linears = [m for block in model.model.layers for m in block.modules() if isinstance(m, torch.nn.Linear)]

    def hook(module, args, _output):
        x = args[0].reshape(-1, args[0].shape[-1]).double()
        energy[module] = energy.get(module, 0) + x.pow(2).sum(0)

    handles = [m.register_forward_hook(hook) for m in linears]
    try:
        logits = torch.cat([model(input_ids=batch).logits for batch in rows.split(8)])
    finally:
        for handle in handles:
            handle.remove()
    return energy, logits


def _spread(energy: dict) -> list[float]:
    """The smallest and largest max/median channel-norm ratio over all linear inputs."""
    ratios = [(e.sqrt().max() / e.sqrt().median()).item() for e in energy.values()]
    return [round(min(ratios), 2), round(max(ratios), 2)]


# --- held-out perplexity --------------------------------------------------------------------------
@torch.no_grad()
def _windowed_perplexity(model, ids: list[int], bos_id: int, window: int, batch_size: int = 16) -> float:
    """exp(mean next-token loss) over non-overlapping BOS-prefixed windows; every token is scored once.

    A private stand-in so training.json can say how good the model is; the evaluation package owns the
    real per-language perplexity.
    """
    body = window - 1
    rows = [torch.tensor([bos_id, *ids[i : i + body]]) for i in range(0, len(ids), body)]
    full, last = rows[:-1], rows[-1:]  # only the last window can be shorter: no padding needed
    batches = [torch.stack(full[i : i + batch_size]) for i in range(0, len(full), batch_size)]
    batches += [row[None] for row in last]
    total_nll, total_tokens = 0.0, 0
    for batch in batches:
        logits = model(input_ids=batch).logits[:, :-1].float()
        targets = batch[:, 1:]
        total_nll += torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum").item()
        total_tokens += targets.numel()
    return math.exp(total_nll / total_tokens)


def _flores_perplexities(model, tokenizer, data: tuple[DataRoot, ...], window: int) -> dict[str, float]:
    return {
        lang: round(_windowed_perplexity(model, _flores_ids(tokenizer, data, lang), tokenizer.bos_token_id, window), 3)
        for lang in LANGUAGES
    }


# --- cache ----------------------------------------------------------------------------------------
def _is_complete(folder: Path) -> bool:
    """A folder only exists once complete (it is renamed into place), but check the record anyway."""
    return (folder / TRAINING_RECORD).is_file() and (folder / "model.safetensors").is_file()


#: What training writes into the model's folder: nothing else in it may be removed.
_TRAINED_FILES = frozenset(
    {
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        TRAINING_RECORD,
    }
)


def _train_atomically(target: Path, data: tuple[DataRoot, ...], recipe: Recipe, progress: bool) -> None:
    """Train into a temporary sibling folder and rename it into place, so no half folder is ever seen."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        train_tiny_model(tmp, data_dir=data, seed=recipe.seed, recipe=recipe, progress=progress)
        if target.exists():  # a stale, incomplete folder from an older layout: replace it, if it is only that
            foreign = sorted(p.name for p in target.iterdir() if p.name not in _TRAINED_FILES)
            if foreign:
                raise CalibrationSourceError(
                    f"{target} holds files hfprune's training does not write ({', '.join(foreign[:3])}); move them "
                    f"away (or set {CACHE_DIR_ENV} to another folder) and run again"
                )
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    """Print the tiny model's folder (training it first if needed) and its training stats."""
    folder = tiny_model_path(progress=True)
    record = json.loads((folder / TRAINING_RECORD).read_text())
    print(folder)
    for field in ("seconds", "final_loss", "train_tokens", "flores_perplexity", "unigram_perplexity"):
        print(f"{field}: {record[field]}")


if __name__ == "__main__":
    main()
