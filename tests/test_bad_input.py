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
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, ViTConfig, ViTModel

from hfprune.cli.main import main
from hfprune.constants import LEDGER_FILE, METADATA_FILE, WRITTEN_RECORD

from .data_dirs import data_dir
from .model_factory import make_model, make_tokenizer, save_model_folder


@dataclass
class Case:
    argv: list[str]
    message: str
    #: prepares files the case needs in the scratch folder (they count as "before")
    setup: Callable[[Path, Path], None] | None = None
    marks: list = field(default_factory=list)
    #: environment variables set for the case (a token the push must not publish, ...)
    env: dict[str, str] = field(default_factory=dict)


def _user_folder(scratch: Path, model: Path) -> None:
    (scratch / "mine").mkdir()
    (scratch / "mine" / "notes.txt").write_text("mine")


def _user_folder_at(folder: Path) -> None:
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")


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
EXPORT = ["export", "{model}", "--to", "openvino", "--out", "{out}"]
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
    # --- export ---
    "export weights unknown": Case([*EXPORT, "--weights", "int3"], "invalid choice: 'int3'"),
    "export target unknown": Case(
        ["export", "{model}", "--to", "tflite", "--out", "{out}"], "invalid choice: 'tflite'"
    ),
    "export to onnx": Case(["export", "{model}", "--to", "onnx", "--out", "{out}"], "optimum-onnx"),
    "export sparse rate above 1": Case([*EXPORT, "--sparse-rate", "1.5"], "--sparse-rate 1.5 is outside (0, 1]"),
    "export sparse rate with fp16": Case(
        [*EXPORT, "--weights", "fp16", "--sparse-rate", "0.5"], "--sparse-rate needs --weights int8"
    ),
    "export calib without int4": Case([*EXPORT, "--calib", "en:4"], "use it with --weights int4"),
    "export bad calib mix": Case([*EXPORT, "--weights", "int4", "--calib", "en:x"], "en:x"),
    "export group size 0": Case([*EXPORT, "--weights", "int4", "--group-size", "0"], "--group-size 0 must be positive"),
    "export verify language without text": Case([*EXPORT, "--verify-langs", "yo"], "no held-out text to verify"),
    "export over the model": Case(["export", "{model}", "--to", "openvino", "--out", "{model}"], "never writes into"),
    "export deep inside the model": Case(
        ["export", "{model}", "--to", "openvino", "--out", "{model}/a/b"], "never writes into"
    ),
    "export into an existing folder": Case(
        EXPORT, "already exists", lambda scratch, model: _user_folder_at(scratch / "out")
    ),
    "export missing model": Case(["export", "{scratch}/nowhere", "--to", "openvino", "--out", "{out}"], "nowhere"),
    "run export to onnx": Case(["run", "{model}", "--out", "{out}", "--export", "onnx"], "optimum-onnx"),
    "run export options without --export": Case(
        ["run", "{model}", "--out", "{out}", "--export-weights", "int4"], "only apply with --export openvino"
    ),
    # --- vocabulary trimming ---
    "vocab option without --trim-vocab": Case(
        [*P, "--calib", "en:2", "--vocab-scripts"], "only apply with --trim-vocab"
    ),
    "trim-vocab language unknown": Case(["trim-vocab", "{model}", "--langs", "xx", "--out", "{out}"], "'xx' is not a"),
    "trim-vocab without languages": Case(["trim-vocab", "{model}", "--out", "{out}"], "required: --langs"),
    "trim-vocab size below the must-keep": Case([*TRIM, "--vocab-size", "3"], "is below the 260 tokens"),
    "trim-vocab language weight not a number": Case(
        ["trim-vocab", "{model}", "--langs", "en:x,sw:1", "--out", "{out}"], "a language's weight is a number"
    ),
    "trim-vocab language weight zero": Case(
        ["trim-vocab", "{model}", "--langs", "en:0,sw:1", "--out", "{out}"], "weight must be positive"
    ),
    "trim-vocab language twice": Case(["trim-vocab", "{model}", "--langs", "en:1,en:2", "--out", "{out}"], "twice"),
    "trim-vocab coverage above 1": Case([*TRIM, "--vocab-coverage", "1.5"], "share of token occurrences in (0, 1]"),
    "trim-vocab no words of the lists": Case([*TRIM, "--vocab-list-words", "0"], "positive number of words"),
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


# ---------------------------------------------------------------------------------------------------------
# Files and paths: what is beside --out, inside it, what it links to, and what a model folder really holds.
def _hfprune_output(folder: Path, *, record: bool = True, extra: dict[str, str] | None = None) -> None:
    """A folder as hfprune writes it (its record of what it wrote included, unless ``record`` is false)."""
    folder.mkdir(parents=True)
    (folder / METADATA_FILE).write_text(json.dumps({"method": "magnitude"}))
    (folder / "model.safetensors").write_bytes(b"weights")
    if record:
        (folder / WRITTEN_RECORD).write_text(json.dumps({"files": [METADATA_FILE, "model.safetensors"]}))
    for name, text in (extra or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


def _copy_named_like_a_leftover(scratch: Path, model: Path) -> None:
    _hfprune_output(scratch / "out")
    _hfprune_output(scratch / ".out.old-2024", extra={"notes.txt": "my copy"})  # cp -r out .out.old-2024


def _output_with_user_notes(scratch: Path, model: Path) -> None:
    _hfprune_output(scratch / "out", extra={"notes.txt": "mine"})


def _old_output_with_user_folder(scratch: Path, model: Path) -> None:
    _hfprune_output(scratch / "out", record=False, extra={"mine/data.txt": "mine"})


def _model_inside_output(scratch: Path, model: Path) -> None:
    _hfprune_output(scratch / "p")
    for path in model.iterdir():
        (scratch / "p" / "base").mkdir(exist_ok=True)
        (scratch / "p" / "base" / path.name).write_bytes(path.read_bytes())


def _run_of_another_job(scratch: Path, model: Path) -> None:
    _hfprune_output(scratch / "out", extra={"notes.txt": "mine"})
    job = {"key": "0" * 64, "model": "other-model", "method": "sparsegpt"}
    (scratch / "out" / LEDGER_FILE).write_text(json.dumps({"version": 1, "job": job, "steps": {}}))


def _publishable(scratch: Path, model: Path, name: str = "pub") -> Path:
    folder = scratch / name
    assert main(["prune", str(model), "--method", "magnitude", "--out", str(folder), "--quiet"]) == 0
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# card\n")
    return folder


def _link_out_of_folder(scratch: Path, model: Path) -> None:
    (scratch / "secret.txt").write_text("outside the folder")
    (_publishable(scratch, model) / "config-copy.txt").symlink_to(scratch / "secret.txt")


def _link_to_a_system_file(scratch: Path, model: Path) -> None:
    (_publishable(scratch, model) / "hosts").symlink_to("/etc/hosts")


def _token_in_a_binary(scratch: Path, model: Path) -> None:
    folder = _publishable(scratch, model)
    torch.save({"token": FAKE_TOKEN}, folder / "optimizer.pt")  # a .pt was never scanned


def _token_in_a_large_file(scratch: Path, model: Path) -> None:
    folder = _publishable(scratch, model)
    with (folder / "train.log").open("wb") as handle:  # over the old 20 MB limit; the token straddles a chunk
        handle.write(b"x" * (21 * (1 << 20) - 7) + FAKE_TOKEN.encode() + b"\n")


def _broken_record(scratch: Path, model: Path, content: bytes) -> None:
    (_publishable(scratch, model) / METADATA_FILE).write_bytes(content)


def _results_of_another_model(scratch: Path, model: Path) -> None:
    _publishable(scratch, model)
    record = {"name": "other", "sha256": "0" * 64, "weights_sha256": {"model.safetensors": "1" * 64}}
    (scratch / "results.json").write_text(json.dumps({"model": record, "settings": {}, "results": []}))


def _results_wrong_shape(scratch: Path, model: Path) -> None:
    _publishable(scratch, model)
    (scratch / "results.json").write_text(json.dumps([1, 2, 3]))


def _broken_copy(scratch: Path, model: Path, name: str) -> Path:
    folder = scratch / name
    folder.mkdir()
    for path in model.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


def _truncated_weights(scratch: Path, model: Path) -> None:
    weights = _broken_copy(scratch, model, "broken") / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def _zero_byte_weights(scratch: Path, model: Path) -> None:
    (_broken_copy(scratch, model, "broken") / "model.safetensors").write_bytes(b"")


def _config_not_json(scratch: Path, model: Path) -> None:
    (_broken_copy(scratch, model, "broken") / "config.json").write_text("{not json")


def _config_disagrees_with_weights(scratch: Path, model: Path) -> None:
    folder = _broken_copy(scratch, model, "broken")
    config = json.loads((folder / "config.json").read_text())
    config["intermediate_size"] += 8
    (folder / "config.json").write_text(json.dumps(config))


def _tensor_missing(scratch: Path, model: Path) -> None:
    from safetensors.torch import load_file, save_file

    folder = _broken_copy(scratch, model, "broken")
    state = load_file(folder / "model.safetensors")
    del state["model.layers.1.mlp.up_proj.weight"]
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})


def _tokenizer_corrupt(scratch: Path, model: Path) -> None:
    (_broken_copy(scratch, model, "broken") / "tokenizer.json").write_text('{"truncated": ')


def _tokenizer_larger_than_the_model(scratch: Path, model: Path) -> None:
    folder = _broken_copy(scratch, model, "broken")
    config = json.loads((folder / "config.json").read_text())
    small_config = make_model("llama").config
    small_config.vocab_size = 64
    save_model_folder(AutoModelForCausalLM.from_config(small_config), None, scratch / "small")
    for name in ("config.json", "model.safetensors"):
        (folder / name).write_bytes((scratch / "small" / name).read_bytes())
    assert config["vocab_size"] > 64


def _text_not_utf8(scratch: Path, model: Path) -> None:
    (scratch / "texts").mkdir()
    (scratch / "texts" / "en.txt").write_bytes("caf\u00e9 latin-1 text\n".encode("latin-1") * 200)


def _text_binary(scratch: Path, model: Path) -> None:
    (scratch / "texts").mkdir()
    (scratch / "texts" / "en.txt").write_bytes(b"\x00\x01\x02binary" * 500)


def _a_text_file(scratch: Path, model: Path) -> None:
    (scratch / "en.txt").write_text("some english text\n" * 200)


FAKE_TOKEN = "hf_" + "FakeTokenForTheScanTest" * 2
PUSH_LOCAL = ["push", "{scratch}/pub", "local/x", "--local-hub", "{scratch}/hub"]
BROKEN = ["prune", "{scratch}/broken", "--method", "magnitude", "--out", "{out}", "--quiet"]
PATH_CASES: dict[str, Case] = {
    # --- beside --out, inside it, overlapping the model ---
    "a copy named like a leftover beside --out": Case([*P], "already exists", _copy_named_like_a_leftover),
    "overwrite an output holding a user's file": Case(
        [*P, "--overwrite"], "holds files hfprune did not write (notes.txt)", _output_with_user_notes
    ),
    "overwrite an older output holding a user's folder": Case(
        [*P, "--overwrite"], "did not write (mine/data.txt)", _old_output_with_user_folder
    ),
    "prune --out equal to the model": Case(["prune", "{model}", "--out", "{model}", "--overwrite"], "is the model"),
    "prune --out inside the model": Case(["prune", "{model}", "--out", "{model}/pruned"], "lies inside the model"),
    "prune --out containing the model": Case(
        ["prune", "{scratch}/p/base", "--out", "{scratch}/p", "--overwrite"], "contains the model", _model_inside_output
    ),
    "trim-vocab --out equal to the model": Case(
        ["trim-vocab", "{model}", "--langs", "en", "--out", "{model}", "--overwrite"], "is the model"
    ),
    "trim-vocab --out containing the model": Case(
        ["trim-vocab", "{scratch}/p/base", "--langs", "en", "--out", "{scratch}/p", "--overwrite"],
        "contains the model",
        _model_inside_output,
    ),
    "sweep --out inside the model": Case(
        ["sweep", "{model}", "--methods", "wanda", "--calib", "en:2", "--eval-langs", "en", "--out", "{model}/sweep"],
        "lies inside the model",
    ),
    "analyze --out into a folder it reads": Case(
        ["analyze", "{scratch}/one", "{scratch}/one", "--out", "{scratch}/one"], "is the model folder", _pruned_pair
    ),
    "run --out of another job": Case(
        ["run", "{model}", "--method", "magnitude", "--out", "{out}"], "another job", _run_of_another_job
    ),
    "run --out of another job, overwrite, user's file": Case(
        ["run", "{model}", "--method", "magnitude", "--out", "{out}", "--overwrite"],
        "did not write (notes.txt)",
        _run_of_another_job,
    ),
    "--out is a file": Case([*P], "is not a folder", lambda scratch, model: (scratch / "out").write_text("mine")),
    "--out is a link": Case(
        [*P, "--overwrite"], "is a symbolic link", lambda scratch, model: (scratch / "out").symlink_to(scratch)
    ),
    # --- what a push publishes ---
    "local push of a link out of the folder": Case(
        PUSH_LOCAL, "links that lead out of it (config-copy.txt", _link_out_of_folder
    ),
    "hub push of a link to a system file": Case(
        ["push", "{scratch}/pub", "me/x"], "links that lead out of it (hosts -> /etc/hosts)", _link_to_a_system_file
    ),
    "local push of a token in a .pt": Case(
        PUSH_LOCAL, "token is written in optimizer.pt", _token_in_a_binary, env={"HF_TOKEN": FAKE_TOKEN}
    ),
    "local push of a token in a 21 MB log": Case(
        PUSH_LOCAL, "token is written in train.log", _token_in_a_large_file, env={"HF_TOKEN": FAKE_TOKEN}
    ),
    "local push to a branch git refuses": Case([*PUSH_LOCAL, "--revision", "a..b"], "not a branch name", _publishable),
    "hub push while offline": Case(
        ["push", "{scratch}/pub", "me/x"], "offline mode is on", _publishable, env={"HF_TOKEN": FAKE_TOKEN}
    ),
    "eval --overwrite over a user's image": Case(
        ["eval", "{model}", "--langs", "en", "--out", "{scratch}/r.json", "--overwrite"],
        "is not a file hfprune wrote",
        lambda scratch, model: (scratch / "r.png").write_bytes(b"\x89PNG\r\n\x1a\n my holiday photo"),
    ),
    # --- results and cards ---
    "card over a hand-written README": Case(["card", "{scratch}/pub"], "is not a card hfprune wrote", _publishable),
    "card with another model's results": Case(
        ["card", "{scratch}/pub", "--results", "{scratch}/results.json"], "other weights", _results_of_another_model
    ),
    "card with results of the wrong shape": Case(
        ["card", "{scratch}/pub", "--results", "{scratch}/results.json"], "is not a results file", _results_wrong_shape
    ),
    "card of a folder whose hfprune.json is not JSON": Case(
        ["card", "{scratch}/pub"],
        "hfprune.json is not valid JSON",
        lambda scratch, model: _broken_record(scratch, model, b"{x"),
    ),
    "push of a folder whose hfprune.json is a list": Case(
        PUSH_LOCAL, "not an object (list)", lambda scratch, model: _broken_record(scratch, model, b"[1, 2]")
    ),
    "analyze a folder whose hfprune.json is not UTF-8": Case(
        ["analyze", "{scratch}/pub", "{scratch}/pub"],
        "hfprune.json is not UTF-8",
        lambda scratch, model: _broken_record(scratch, model, b"\xff\xfe"),
    ),
    # --- broken and lying model folders ---
    "truncated weights": Case(BROKEN, "is not a valid safetensors file", _truncated_weights),
    "zero-byte weights": Case(BROKEN, "0 bytes long", _zero_byte_weights),
    "config that is not JSON": Case(BROKEN, "config.json is not valid JSON", _config_not_json),
    "config that disagrees with the weights": Case(BROKEN, "of another shape", _config_disagrees_with_weights),
    "config that disagrees with the weights, streamed": Case(
        [*BROKEN, "--stream"], "of another shape", _config_disagrees_with_weights
    ),
    "a tensor missing": Case(BROKEN, "1 tensor(s) missing (model.layers.1.mlp.up_proj.weight)", _tensor_missing),
    "a corrupt tokenizer": Case(BROKEN, "cannot be read", _tokenizer_corrupt),
    "a tokenizer larger than the model": Case(BROKEN, "embedding rows", _tokenizer_larger_than_the_model),
    "a model that is a file": Case(
        ["prune", "{scratch}/en.txt", "--method", "magnitude", "--out", "{out}"], "is a file, not a model", _a_text_file
    ),
    "card of a file": Case(["card", "{scratch}/en.txt"], "is not a folder", _a_text_file),
    "local hub that is a file": Case(
        [*PUSH_LOCAL[:-1], "{scratch}/hub.txt"],
        "--local-hub",
        lambda scratch, model: (_publishable(scratch, model), (scratch / "hub.txt").write_text("mine")),
    ),
    "perplexity source that is a file": Case(
        ["eval", "{model}", "--langs", "en", "--ppl-source", "{scratch}/en.txt"], "is a file", _a_text_file
    ),
    # --- text ---
    "calibration text not UTF-8": Case(
        [*P, "--calib", "en:2", "--calib-source", "{scratch}/texts"], "is not UTF-8 text", _text_not_utf8
    ),
    "calibration text binary": Case(
        [*P, "--calib", "en:2", "--calib-source", "{scratch}/texts"], "holds NUL bytes", _text_binary
    ),
    "calibration source that is a file": Case(
        [*P, "--calib", "en:2", "--calib-source", "{scratch}/en.txt"], "is a file; give the folder", _a_text_file
    ),
    "eval source that is a file": Case(
        ["eval", "{model}", "--langs", "en", "--eval-source", "{scratch}/en.txt"], "is not a folder", _a_text_file
    ),
}
CASES.update(PATH_CASES)


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
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
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
