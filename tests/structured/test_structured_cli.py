"""Structured pruning through the commands a user runs: ``prune``, ``run`` and ``sweep`` take it, bad input is one
``error:`` line with nothing written, and ``eval``, ``card``, ``push`` and the Space work on the result unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from hfprune.cli import main
from hfprune.space.serve import load_app_module

from ..data_dirs import data_dir
from ..model_factory import make_model, make_tokenizer, save_model_folder
from ..vocab import factory as vocab_factory

CALIB = ["--calib", "en:3,sw:3", "--seqlen", "32"]


@pytest.fixture(scope="module")
def dense_dir(tmp_path_factory) -> Path:
    data = data_dir()
    assert data is not None
    texts = []
    for lang in ("en", "sw", "de"):
        texts += (data / "calib" / "ntrex" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()[:300]
    folder = tmp_path_factory.mktemp("structured") / "tiny-gemma"
    return save_model_folder(make_model("gemma3"), make_tokenizer(texts), folder)


@pytest.fixture(scope="module")
def pruned_dir(dense_dir: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("structured-out") / "pruned"
    args = ["prune", str(dense_dir), "--structure", "width:0.25,depth:1", *CALIB, "--out", str(out), "--quiet"]
    assert main(args) == 0
    return out


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_prune_writes_a_smaller_model_a_summary_and_the_record(dense_dir, tmp_path, capsys):
    out = tmp_path / "pruned"
    code, stdout, _ = run(
        [
            "prune",
            str(dense_dir),
            "--structure",
            "width:0.25,depth:1",
            "--lang-agg",
            "mean",
            *CALIB,
            "--out",
            str(out),
            "--quiet",
        ],
        capsys,
    )

    assert code == 0
    assert "block removed" in stdout and "32 / 128" in stdout and "parameters:" in stdout and "decode" in stdout
    config = AutoConfig.from_pretrained(out)
    assert (config.intermediate_size, config.num_hidden_layers) == (96, 2)
    meta = json.loads((out / "hfprune.json").read_text())
    assert meta["structure"] == "width:0.25,depth:1" and meta["params"] == {"lang_agg": "mean", "refit": True}
    record = meta["structured"]
    assert len(record["blocks_removed"]) == 1 and len(record["blocks"]) == 2
    assert all(
        len(row["neurons_removed"]) == 32 and row["refit"]["down_proj"]["error_refit"] is not None
        for row in record["blocks"]
    )
    assert set(record["block_influence"]) == {"en", "sw"}
    assert (
        meta["calibration"]["mix"] == "en:3,sw:3" and meta["seed"] == 0 and meta["command"][:2] == ["hfprune", "prune"]
    )
    for role in ("dense", "pruned"):
        speed = record["speed"][role]
        assert speed["decode_tokens_per_s"] > 0 and speed["prefill_tokens_per_s"] > 0
        assert 0 < speed["blocks_share_of_decode"] <= 1 and speed["setup"]["new_tokens"] == 32
    AutoModelForCausalLM.from_pretrained(out)


def test_json_output_and_no_speed(dense_dir, tmp_path, capsys):
    out = tmp_path / "o"
    code, stdout, _ = run(
        [
            "prune",
            str(dense_dir),
            "--structure",
            "width:0.5",
            "--no-refit",
            "--no-speed",
            *CALIB,
            "--out",
            str(out),
            "--json",
        ],
        capsys,
    )
    assert code == 0
    data = json.loads(stdout)
    assert data["structured"]["refit"] is False and "speed" not in data["structured"]
    assert all(row["refit"] == {} for row in data["structured"]["blocks"])


BAD_INPUTS = [
    (["--structure", "width:0"], "strictly between 0 and 1"),
    (["--structure", "width:1"], "strictly between 0 and 1"),
    (["--structure", "width:1.5"], "strictly between 0 and 1"),
    (["--structure", "width:abc"], "is not a number"),
    (["--structure", "width:0.999"], "leaves no neuron"),
    (["--structure", "width:0.001"], "rounds to none removed"),
    (["--structure", "depth:3"], "asks for all of them"),
    (["--structure", "depth:7"], "asks for more than it has"),
    (["--structure", "depth:0"], "depth must be at least 1"),
    (["--structure", "heads:2"], "share one key/value group"),
    (["--structure", "width:0.2,width:0.3"], "gives width twice"),
    (["--structure", "width:0.2,2:4"], "N:M sparsity and structured removal cannot be combined"),
    (["--structure", "width:0.2", "--sparsity", "0.5"], "contradicts --structure width:0.2"),
    (["--structure", "width:0.2", "--method", "sparsegpt"], "--method sparsegpt"),
    (["--structure", "width:0.2", "--sparsity-profile", "owl"], "--sparsity-profile owl spreads zeros"),
    (["--structure", "width:0.2", "--stream"], "run without --stream"),
    (["--lang-agg", "max"], "--lang-agg applies to structured pruning"),
    (["--no-refit"], "--no-refit applies to structured pruning"),
    (["--structure", "2:4", "--lang-agg", "min"], "not to 2:4 sparsity"),
]


@pytest.mark.parametrize("extra,message", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_clear_line_and_writes_nothing(dense_dir, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    code, _, err = run(["prune", str(dense_dir), "--out", str(out), "--quiet", *CALIB, *extra], capsys)
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_an_unknown_aggregation_is_refused_by_the_parser(dense_dir, tmp_path, capsys):
    code = main(
        ["prune", str(dense_dir), "--structure", "width:0.2", "--lang-agg", "median", "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("error:") == 1 and "invalid choice: 'median'" in err
    assert not (tmp_path / "o").exists()


def test_eval_card_and_the_space_work_on_the_structured_output_unchanged(dense_dir, pruned_dir, tmp_path, capsys):
    results = tmp_path / "results.json"
    code, _, err = run(
        [
            "eval",
            str(pruned_dir),
            "--baseline",
            str(dense_dir),
            "--langs",
            "en,sw",
            "--tasks",
            "ppl",
            "--limit",
            "4",
            "--context-length",
            "64",
            "--no-cache",
            "--out",
            str(results),
        ],
        capsys,
    )
    assert code == 0, err
    evaluated = json.loads(results.read_text())
    assert {row["lang"] for row in evaluated["changes"]} == {"en", "sw"}

    assert run(["card", str(pruned_dir), "--results", str(results), "--repo-id", "tester/smaller"], capsys)[0] == 0
    card = ModelCard.load(pruned_dir / "README.md")
    assert "structured-pruning" in card.data.tags and "sparse" not in card.data.tags
    text = card.text
    assert "structured pruning** (`width:0.25,depth:1`: MLP width 128 → 96, blocks 3 → 2)" in text
    assert "| parameters in the blocks |" in text and "| decode tokens/s |" in text
    assert "whole block removed" in text and "holding the zeros" not in text
    assert card.data.eval_results  # the per-language results reached model-index

    app = load_app_module()
    device = torch.device("cpu")
    dense, pruned = app.load_model(str(dense_dir), device), app.load_model(str(pruned_dir), device)
    header = app.header_markdown(str(dense_dir), str(pruned_dir), app.read_pruned_record(str(pruned_dir)))
    assert "structures removed (`width:0.25,depth:1`)" in header
    scored = app.score_prompt(dense, pruned, "the quick brown fox jumps over the lazy dog")
    assert scored["tokens_scored"] > 3 and scored["pruned"]["perplexity"] > 0
    settings = app.check_settings(8, 0.0, 1.0, 0)
    *_, last = app.stream_pair(dense, pruned, "the quick brown fox", settings)
    assert last[1] and "done" in last[3]


def test_push_publishes_the_smaller_model_that_transformers_loads_back(
    pruned_dir, write_hub, olah_server, tmp_path, monkeypatch
):
    from hfprune.hub.push import push_folder

    from ..hub_mirror import point_hub_at

    if not (pruned_dir / "README.md").exists():
        assert main(["card", str(pruned_dir)]) == 0
    result = push_folder(pruned_dir, "tester/smaller")
    assert result.commit
    point_hub_at(monkeypatch, olah_server.url, tmp_path / "fresh_home")
    model = AutoModelForCausalLM.from_pretrained("tester/smaller", revision="main")
    assert model.config.intermediate_size == 96 and len(model.model.layers) == 2
    local = AutoModelForCausalLM.from_pretrained(pruned_dir).state_dict()
    assert all(torch.equal(model.state_dict()[name], tensor) for name, tensor in local.items())


def test_run_prunes_structurally_names_the_folder_and_skips_on_rerun(dense_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["run", str(dense_dir), "--structure", "width:0.25,depth:1", "--lang-agg", "max", *CALIB, "--no-speed"]
    code, stdout, _ = run(args, capsys)
    assert code == 0
    out = tmp_path / "tiny-gemma-width25-depth1"
    assert f"model: {out.name}" in stdout
    assert "structured pruning" in (out / "README.md").read_text()
    assert json.loads((out / "hfprune.json").read_text())["structured"]["lang_agg"] == "max"
    code, _, err = run([*args, "--json"], capsys)
    assert code == 0 and "[prune] up to date, skipped" in err
    code, _, err = run([*args[:-1], "--lang-agg", "mean", "--no-speed", "--json"], capsys)
    assert code == 2 and "another job" in err  # another aggregation is another model: the first one is kept
    code, _, err = run([*args[:-1], "--lang-agg", "mean", "--no-speed", "--json", "--overwrite"], capsys)
    assert code == 0 and "[prune] running" in err


def test_sweep_prunes_copies_and_leaves_the_dense_model_for_the_next_cell(dense_dir, tmp_path, capsys):
    out = tmp_path / "sweep"
    code, stdout, err = run(
        [
            "sweep",
            str(dense_dir),
            "--methods",
            "wanda",
            "--structure",
            "width:0.5",
            "--lang-agg",
            "max",
            "--calib",
            "en:2,sw:2",
            "--calib",
            "en:4",
            "--seqlen",
            "32",
            "--eval-langs",
            "en,sw",
            "--eval-sentences",
            "3",
            "--context-length",
            "64",
            "--no-plots",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0, err
    sweep = json.loads((out / "sweep.json").read_text())
    assert [cell["method"] for cell in sweep["cells"]] == ["wanda[width:0.5,max]"] * 2
    for cell in sweep["cells"]:
        assert cell["structured"]["params_after"]["blocks"] < cell["structured"]["params_before"]["blocks"]
        assert cell["eval"]["en"]["ppl"] != sweep["dense"]["en"]["ppl"]
    # each cell started from the same dense model: both report the same size before
    assert sweep["cells"][0]["structured"]["params_before"] == sweep["cells"][1]["structured"]["params_before"]
    code, _, err = run(
        [
            "sweep",
            str(dense_dir),
            "--methods",
            "wanda",
            "--structure",
            "width:0.5",
            "--sparsity",
            "0.5",
            "--calib",
            "en:2",
            "--eval-langs",
            "en",
            "--out",
            str(tmp_path / "bad"),
        ],
        capsys,
    )
    assert code == 2 and "--sparsity contradicts --structure width:0.5" in err and not (tmp_path / "bad").exists()


def test_analyze_refuses_a_structured_output_with_the_reason(dense_dir, pruned_dir, tmp_path, capsys):
    code, _, err = run(["analyze", str(pruned_dir), "--base", str(dense_dir), "--out", str(tmp_path / "a")], capsys)
    assert code == 2 and "pruned structurally (width:0.25,depth:1)" in err and not (tmp_path / "a").exists()


def test_structured_pruning_and_a_trimmed_vocabulary_in_one_prune(tmp_path, capsys):
    """The two-language recipe: neurons removed and the vocabulary trimmed to the mix's languages, one command
    (a Gemma-style tokenizer trained on five languages in three scripts, so en and sw leave many tokens out)."""
    tokenizer = vocab_factory.make_tokenizer("gemma", 3000)
    dense_dir = vocab_factory.save_folder(
        vocab_factory.make_model(tokenizer, arch="gemma3"), tokenizer, tmp_path / "dense"
    )
    out = tmp_path / "both"
    code, _, err = run(
        [
            "prune",
            str(dense_dir),
            "--structure",
            "width:0.25",
            *CALIB,
            "--trim-vocab",
            "--vocab-no-speed",
            "--no-speed",
            "--out",
            str(out),
            "--quiet",
        ],
        capsys,
    )

    assert code == 0, err
    dense, config = AutoConfig.from_pretrained(dense_dir), AutoConfig.from_pretrained(out)
    assert config.intermediate_size == dense.intermediate_size * 3 // 4
    assert config.vocab_size < dense.vocab_size * 3 // 4
    meta = json.loads((out / "hfprune.json").read_text())
    assert meta["structure"] == "width:0.25" and meta["vocab"]["languages"] == ["en", "sw"]
    assert meta["vocab"]["rows_after"] == config.vocab_size
    sizes = meta["structured"]
    # "before" is the model the user started from: the trimmed vocabulary's rows count as removed too
    assert sizes["params_before"]["total"] == sum(
        p.numel() for p in AutoModelForCausalLM.from_pretrained(dense_dir).parameters()
    )
    assert sizes["params_after"]["total"] < sizes["params_after_vocab_trim"]["total"] < sizes["params_before"]["total"]
    model = AutoModelForCausalLM.from_pretrained(out)
    assert sizes["params_after"]["total"] == sum(p.numel() for p in model.parameters())
    assert model.get_input_embeddings().weight.shape[0] == config.vocab_size
    trimmed = AutoTokenizer.from_pretrained(out)
    text = "Habari ya asubuhi, and good morning."
    assert trimmed.decode(trimmed(text).input_ids, skip_special_tokens=True) == text
    with torch.no_grad():
        assert torch.isfinite(model(**trimmed(text, return_tensors="pt")).logits).all()
    assert main(["card", str(out)]) == 0
    card = (out / "README.md").read_text()
    assert "structured pruning" in card and "vocabulary trimmed to the tokens of en, sw" in card


def test_sweep_trims_the_vocabulary_once_and_prunes_every_cell_structurally(tmp_path, capsys):
    tokenizer = vocab_factory.make_tokenizer("gemma", 3000)
    dense_dir = vocab_factory.save_folder(vocab_factory.make_model(tokenizer, arch="llama"), tokenizer, tmp_path / "d")
    out = tmp_path / "sweep"
    code, _, err = run(
        [
            "sweep",
            str(dense_dir),
            "--methods",
            "wanda",
            "--structure",
            "width:0.25",
            "--calib",
            "en:2,sw:2",
            "--calib",
            "en:4",
            "--seqlen",
            "32",
            "--eval-langs",
            "en,sw",
            "--eval-sentences",
            "3",
            "--context-length",
            "64",
            "--trim-vocab",
            "--vocab-no-speed",
            "--no-plots",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0, err
    sweep = json.loads((out / "sweep.json").read_text())
    vocab = sweep["vocab"]["record"]
    assert vocab["languages"] == ["en", "sw"] and vocab["rows_after"] < vocab["rows_before"]
    assert set(sweep["vocab"]["dense_untrimmed"]) == {"en", "sw"}
    assert len(sweep["cells"]) == 2
    for cell in sweep["cells"]:
        assert cell["structured"]["params_after"]["blocks"] < cell["structured"]["params_before"]["blocks"]
