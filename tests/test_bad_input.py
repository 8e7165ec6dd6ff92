"""Every bad input the CLI knows, in one table: one ``error:`` line naming the problem, exit 2, no traceback,
nothing written. Keep it growing: a new mistake a user can make gets a row here.

Each row runs ``hfprune`` in-process with ``{model}`` (a small Llama with a tokenizer), ``{out}`` and the
other placeholders filled in; the scratch folder the command may write into is compared before and after.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, ViTConfig, ViTModel

from hfprune.cli.main import main

from .data_dirs import data_dir
from .model_factory import make_model, make_tokenizer, save_model_folder


@dataclass
class Case:
    argv: list[str]
    message: str
    #: prepares files the case needs in the scratch folder (they count as "before")
    setup: Callable[[Path, Path], None] | None = None
    marks: list = field(default_factory=list)


def _user_folder(scratch: Path, model: Path) -> None:
    (scratch / "mine").mkdir()
    (scratch / "mine" / "notes.txt").write_text("mine")


def _text_folder(scratch: Path, model: Path) -> None:
    (scratch / "text").mkdir()
    for lang in ("en", "de", "fr"):
        (scratch / "text" / f"{lang}.txt").write_text(f"{lang} text one.\n{lang} text two.\n" * 20)


def _results_file(scratch: Path, model: Path) -> None:
    (scratch / "results.json").write_text("{}")


def _nan_model(scratch: Path, model: Path) -> None:
    broken = make_model("llama", seed=1)
    with torch.no_grad():
        broken.model.layers[1].mlp.up_proj.weight[3, 5] = float("nan")
    save_model_folder(broken, None, scratch / "nan-model")


def _short_positions(scratch: Path, model: Path) -> None:
    config = GPT2Config(vocab_size=320, n_embd=32, n_layer=1, n_head=2, n_positions=64, bos_token_id=1, eos_token_id=2)
    folder = save_model_folder(GPT2LMHeadModel(config), None, scratch / "gpt2-64")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((model / name).read_bytes())


def _bad_header(scratch: Path, model: Path) -> None:
    folder = scratch / "corrupt"
    folder.mkdir()
    (folder / "config.json").write_bytes((model / "config.json").read_bytes())
    header = json.dumps({"model.norm.weight": {"dtype": "F32", "shape": [64], "data_offsets": [0, 1 << 40]}}).encode()
    (folder / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 256)


def _pickled_only(scratch: Path, model: Path) -> None:
    folder = scratch / "pickled"
    folder.mkdir()
    (folder / "config.json").write_bytes((model / "config.json").read_bytes())
    torch.save({"w": torch.zeros(2)}, folder / "pytorch_model.bin")


def _vit(scratch: Path, model: Path) -> None:
    config = ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    ViTModel(config).save_pretrained(scratch / "vit")


def _english_only_texts(scratch: Path, model: Path) -> None:
    (scratch / "texts").mkdir()
    (scratch / "texts" / "en.txt").write_text("some english text here\n" * 500)


def _pruned_pair(scratch: Path, model: Path) -> None:
    assert main(["prune", str(model), "--method", "magnitude", "--out", str(scratch / "one"), "--quiet"]) == 0


def _not_pruned(scratch: Path, model: Path) -> None:
    save_model_folder(make_model("llama"), None, scratch / "plain")


def _read_only_dir(scratch: Path, model: Path) -> None:
    """A folder nobody can write in: a read-only mount for root (permissions do not stop root), else chmod."""
    target = scratch / "readonly"
    target.mkdir()
    if os.geteuid() != 0:
        target.chmod(0o555)
        return
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(target)], capture_output=True)
    assert done.returncode == 0, f"cannot mount a read-only tmpfs: {done.stderr.decode()}"


P = ["prune", "{model}", "--out", "{out}", "--quiet"]
TRIM = ["trim-vocab", "{model}", "--langs", "en", "--out", "{out}"]
SWEEP = ["sweep", "{model}", "--methods", "wanda", "--calib", "en:2", "--eval-langs", "en", "--out", "{out}"]
CASES: dict[str, Case] = {
    # --- prune: the pruning parameters ---
    "sparsity 1": Case([*P, "--sparsity", "1.0"], "sparsity must be in [0, 1)"),
    "sparsity negative": Case([*P, "--sparsity", "-0.2"], "sparsity must be in [0, 1)"),
    "sparsity 0": Case([*P, "--sparsity", "0"], "--sparsity 0 prunes nothing"),
    "N:M with N=M": Case([*P, "--structure", "4:4"], "N must be at least 1 and smaller than M"),
    "N:M not dividing": Case([*P, "--structure", "2:3"], "does not divide the input width"),
    "N:M words": Case([*P, "--structure", "two:four"], "must be 'unstructured' or N:M"),
    "method unknown": Case([*P, "--method", "wandaa"], "invalid choice: 'wandaa'"),
    "method option of another": Case([*P, "--calib", "en:2", "--percdamp", "0.1"], "do not apply to --method wanda"),
    "mwanda switch out of range": Case(
        [*P, "--calib", "en:2", "--method", "mwanda", "--mw-layerwise", "1.5"], "--mw-layerwise must be >= 0 and < 1"
    ),
    "profile lambda": Case(
        [*P, "--calib", "en:2", "--sparsity-profile", "owl", "--owl-lambda", "1.5"], "must be in [0, 1)"
    ),
    "profile option without profile": Case([*P, "--calib", "en:2", "--owl-m", "3"], "need --sparsity-profile owl"),
    "profile with N:M": Case(
        [*P, "--calib", "en:2", "--sparsity-profile", "owl", "--structure", "2:4"], "which N:M (2:4) fixes"
    ),
    # --- prune: calibration ---
    "mix without count": Case([*P, "--calib", "en:"], "must be LANG:N_SAMPLES"),
    "mix negative": Case([*P, "--calib", "en:-3"], "positive integer"),
    "mix unknown language": Case([*P, "--calib", "xx:10"], "'xx' is not a language code"),
    "mix language twice": Case([*P, "--calib", "en:2,en:2"], "names en twice"),
    "too little text": Case([*P, "--calib", "en:100000", "--seqlen", "512"], "room for"),
    "source missing": Case(
        [*P, "--calib", "en:2", "--calib-source", "./missing-folder/"], "neither an existing folder"
    ),
    "language not in source": Case(
        [*P, "--calib", "de:2", "--calib-source", "{scratch}/texts"],
        "no text for 'de'; it has: en",
        _english_only_texts,
    ),
    "seqlen 1": Case([*P, "--calib", "en:2", "--seqlen", "1"], "argument --seqlen: must be 2 or more"),
    "seqlen beyond learned positions": Case(
        ["prune", "{scratch}/gpt2-64", "--out", "{out}", "--calib", "en:1", "--seqlen", "128", "--quiet"],
        "longer than the 64 positions this model has learned",
        _short_positions,
    ),
    # --- prune: the engine, the device, the output ---
    "batch size 0": Case([*P, "--calib", "en:2", "--batch-size", "0"], "argument --batch-size: must be 1 or more"),
    "batch size negative": Case([*P, "--batch-size", "-3"], "argument --batch-size: must be 1 or more"),
    "batch size word": Case([*P, "--batch-size", "two"], "'two' is not a whole number"),
    "pipeline unknown": Case([*P, "--pipeline", "parallel"], "invalid choice: 'parallel'"),
    "device without cuda": Case([*P, "--device", "cuda"], "this machine has no CUDA GPU"),
    "device unknown": Case([*P, "--device", "tpu9"], "unknown device 'tpu9'"),
    "shard size": Case([*P, "--max-shard-size", "2gigs"], "--max-shard-size '2gigs' is not a size"),
    "gradients cannot stream": Case(
        [*P, "--calib", "en:2", "--method", "snip", "--stream"], "back-propagates through the whole model"
    ),
    "out is a user's folder": Case(
        ["prune", "{model}", "--method", "magnitude", "--out", "{scratch}/mine"], "already exists", _user_folder
    ),
    "overwrite a user's folder": Case(
        ["prune", "{model}", "--method", "magnitude", "--out", "{scratch}/mine", "--overwrite"],
        "was not written by hfprune",
        _user_folder,
    ),
    "out not writable": Case(
        ["prune", "{model}", "--method", "magnitude", "--out", "{scratch}/readonly/pruned"],
        "cannot write in",
        _read_only_dir,
    ),
    # --- prune: the model ---
    "mistyped local path": Case(["prune", "./mdoel", "--out", "{out}"], "'./mdoel' is not a folder here and not a Hub"),
    "repo id with ..": Case(["prune", "../x", "--out", "{out}"], "'../x' is not a folder here and not a Hub repo id"),
    "revision of a folder": Case([*P, "--revision", "v1"], "is a local folder, which has no revisions"),
    "NaN weights": Case(
        ["prune", "{scratch}/nan-model", "--method", "magnitude", "--out", "{out}", "--quiet"],
        "model.layers.1.mlp.up_proj holds 1 NaN or Inf weight(s)",
        _nan_model,
    ),
    "malformed safetensors header": Case(
        ["prune", "{scratch}/corrupt", "--method", "magnitude", "--stream", "--out", "{out}"],
        "is not a valid safetensors file",
        _bad_header,
    ),
    "pickled weights only": Case(
        ["prune", "{scratch}/pickled", "--method", "magnitude", "--out", "{out}"], "safetensors", _pickled_only
    ),
    "unsupported architecture": Case(
        ["prune", "{scratch}/vit", "--method", "magnitude", "--out", "{out}"], "cannot build", _vit
    ),
    # --- run ---
    "run into the model folder": Case(["run", "{model}", "--out", "{model}"], "the model folder"),
    "run into a folder inside the model": Case(["run", "{model}", "--out", "{model}/pruned"], "lies inside the model"),
    "run push id with ..": Case(
        ["run", "{model}", "--out", "{out}", "--push-to", "a/.."], "'a/..' is not a Hub repo id"
    ),
    "run local hub alone": Case(["run", "{model}", "--out", "{out}", "--local-hub", "{scratch}/hub"], "--push-to"),
    "run over a user's folder": Case(["run", "{model}", "--out", "{scratch}/mine"], "already exists", _user_folder),
    "run sparsity 0": Case(["run", "{model}", "--out", "{out}", "--sparsity", "0"], "--sparsity 0 prunes nothing"),
    "run eval batch 0": Case(["run", "{model}", "--out", "{out}", "--eval-batch-size", "0"], "must be 1 or more"),
    # --- eval ---
    "eval task unknown": Case(["eval", "{model}", "--langs", "en", "--tasks", "hellaswag"], "known tasks: ppl"),
    "eval language unknown": Case(["eval", "{model}", "--langs", "xx"], "no data for language(s) xx"),
    "eval out exists": Case(
        ["eval", "{model}", "--langs", "en", "--out", "{scratch}/results.json"], "already exists", _results_file
    ),
    "eval overwrite a foreign file": Case(
        ["eval", "{model}", "--langs", "en", "--out", "{scratch}/results.json", "--overwrite"],
        "is not a file hfprune wrote",
        _results_file,
    ),
    "eval device": Case(["eval", "{model}", "--langs", "en", "--device", "cuda:3"], "no CUDA GPU"),
    "eval batch 0": Case(["eval", "{model}", "--langs", "en", "--batch-size", "0"], "must be 1 or more"),
    "eval context too long": Case(
        ["eval", "{model}", "--langs", "en", "--context-length", "99999"], "--context-length"
    ),
    # --- pull, push, card ---
    "pull repo id with ..": Case(["pull", "../x"], "'../x' is not a folder here and not a Hub repo id"),
    "push repo id with ..": Case(["push", "{model}", "a/.."], "'a/..' is not a Hub repo id"),
    "push a folder hfprune did not write": Case(["push", "{model}", "me/x"], "does not look like an hfprune output"),
    "push pr and revision": Case(["push", "{model}", "me/x", "--create-pr", "--revision", "b"], "--create-pr"),
    "card of a plain model": Case(["card", "{scratch}/plain"], "hfprune.json", _not_pruned),
    # --- sweep, analyze ---
    "sweep sparsity word": Case([*SWEEP, "--sparsity", "half"], "--sparsity 'half' is not a number"),
    "sweep sparsity 0": Case([*SWEEP, "--sparsity", "0"], "--sparsity 0 prunes nothing"),
    "sweep stream": Case([*SWEEP, "--stream"], "--stream cannot bound its memory"),
    "sweep mix twice": Case([*SWEEP, "--calib", "en:2"], "the same --calib mix is given twice"),
    "sweep method option of none": Case([*SWEEP, "--ria-alpha", "1"], "--ria-alpha apply to none of --methods wanda"),
    "analyze one folder": Case(["analyze", "{scratch}/one"], "give two or more pruned folders", _pruned_pair),
    # --- space, demo ---
    "space port": Case(["space", "serve", "--pruned", "{model}", "--port", "0"], "must be from 1 to 65535"),
    "space pruned missing": Case(["space", "serve", "--pruned", "./nowhere"], "is not a folder here and not a Hub id"),
    "space hardware": Case(
        ["space", "deploy", "--pruned", "me/x", "--hardware", "quantum-xl"], "unknown Space hardware"
    ),
    "demo sparsity": Case(["demo", "--out", "{out}", "--sparsity", "1.5"], "must be above 0 and below 1"),
    # --- vocabulary trimming ---
    "vocab option without --trim-vocab": Case(
        [*P, "--calib", "en:2", "--vocab-scripts"], "only apply with --trim-vocab"
    ),
    "trim-vocab language unknown": Case(["trim-vocab", "{model}", "--langs", "xx", "--out", "{out}"], "'xx' is not a"),
    "trim-vocab without languages": Case(["trim-vocab", "{model}", "--out", "{out}"], "required: --langs"),
    "trim-vocab size below the must-keep": Case([*TRIM, "--vocab-size", "3"], "is below the 260 tokens"),
    "trim-vocab verified on its own corpus": Case(
        [*TRIM, "--vocab-source", "{scratch}/text", "--vocab-verify-source", "{scratch}/text"],
        "is the vocabulary corpus itself",
        _text_folder,
    ),
    # --- structured pruning ---
    "width 1": Case([*P, "--structure", "width:1"], "strictly between 0 and 1, got 1"),
    "width 0": Case([*P, "--structure", "width:0"], "strictly between 0 and 1, got 0"),
    "depth of every block": Case([*P, "--structure", "depth:2"], "asks for all of them"),
    "depth beyond the blocks": Case([*P, "--structure", "depth:99"], "asks for more than it has"),
    "heads not in whole groups": Case([*P, "--structure", "heads:99"], "heads leave in whole groups"),
    "structured with sparsity": Case([*P, "--structure", "width:0.2", "--sparsity", "0.5"], "contradicts --structure"),
    "structured with N:M": Case([*P, "--structure", "width:0.2,2:4"], "cannot be combined"),
    "lang-agg on unstructured": Case([*P, "--calib", "en:2", "--lang-agg", "max"], "--lang-agg applies to structured"),
    "no-refit on unstructured": Case([*P, "--calib", "en:2", "--no-refit"], "--no-refit applies to structured"),
    "lang-agg unknown": Case([*P, "--structure", "width:0.2", "--lang-agg", "median"], "invalid choice: 'median'"),
    "structured stream": Case([*P, "--structure", "width:0.2", "--stream"], "which --stream"),
    "sweep structured with sparsity": Case(
        [*SWEEP, "--structure", "width:0.2", "--sparsity", "0.5"], "--sparsity contradicts --structure"
    ),
    # --- placement (models bigger than one device) ---
    "device map unknown": Case([*P, "--device-map", "everywhere"], "invalid choice: 'everywhere'"),
    "max memory malformed": Case([*P, "--device-map", "auto", "--max-memory", "lots"], "is not DEVICE=SIZE"),
    "max memory without a device map": Case([*P, "--max-memory", "cpu=1GiB"], "need --device-map"),
    "device map with stream": Case([*P, "--device-map", "auto", "--stream"], "needs no --device-map"),
    "eval max memory size": Case(
        ["eval", "{model}", "--langs", "en", "--device-map", "auto", "--max-memory", "0=x"], "is not a size"
    ),
}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    data = data_dir()
    assert data is not None, "the shared data folder (../shared/data) is required"
    texts = []
    for lang in ("en", "sw", "de"):
        texts += (data / "calib" / "ntrex" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()[:300]
    return save_model_folder(make_model("llama"), make_tokenizer(texts), tmp_path_factory.mktemp("bad-input") / "llama")


def _listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_input_is_one_error_line_exit_2_and_nothing_written(name, model, tmp_path, capsys, monkeypatch):
    case = CASES[name]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.chdir(scratch)
    if case.setup:
        case.setup(scratch, model)
    capsys.readouterr()
    before, model_before = _listing(scratch), _listing(model)
    argv = [arg.format(model=model, out=scratch / "out", scratch=scratch) for arg in case.argv]
    try:
        code = main(argv)
        captured = capsys.readouterr()
    finally:
        subprocess.run(["umount", str(scratch / "readonly")], capture_output=True, check=False)
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert code == 2, captured.err
    assert len(errors) == 1 and case.message in errors[0], captured.err
    assert "Traceback" not in captured.err + captured.out
    assert _listing(scratch) == before and _listing(model) == model_before  # nothing written, nothing lost


def test_the_table_is_the_size_the_reliability_report_states():
    """benchmarks/results/reliability.md quotes this number; a row added here must be counted there too."""
    report = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "reliability.md"
    assert f"{len(CASES)} bad inputs" in report.read_text(encoding="utf-8")
