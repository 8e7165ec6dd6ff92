"""``hfprune trim-vocab`` and ``--trim-vocab`` end to end on the project's tiny trained model: the output, its
record and card, evaluation against the untrimmed model, the Space, and every bad input failing cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from hfprune.card import write_card
from hfprune.cli import main
from hfprune.constants import METADATA_FILE, VOCAB_MAP_FILE
from hfprune.space.serve import load_app_module

from .factory import make_model, make_tokenizer, save_folder

pytestmark = pytest.mark.slow  # the tiny trained model (cached after its first training)
FAST = ["--vocab-verify-sentences", "300", "--vocab-list-words", "3000"]


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def trimmed_dir(tiny_model_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trimmed") / "tiny-en-de-sw"
    assert main(["trim-vocab", str(tiny_model_dir), "--langs", "en,de,sw", "--out", str(out), *FAST]) == 0
    return out


def _strings(data):
    if isinstance(data, dict):
        for key, value in data.items():
            yield key
            yield from _strings(value)
    elif isinstance(data, list):
        for value in data:
            yield from _strings(value)
    elif isinstance(data, str):
        yield data


def test_the_published_record_names_its_held_out_text_without_this_machines_paths(trimmed_dir):
    meta = json.loads((trimmed_dir / METADATA_FILE).read_text())
    held_out = dict(meta["vocab"]["verification"]["held_out"])
    assert held_out.pop("folder") == "flores" and set(held_out) >= {"en", "de", "sw"}
    for lang, row in held_out.items():  # the data root by name, then the file: found again by anyone with the data
        assert row["file"].split("/")[-1].startswith(lang) and ":flores/" in row["file"], row["file"]
    leaks = [text for text in _strings(meta) if text.startswith(("/", "~")) or str(Path.home()) in text]
    assert leaks == []


def test_trim_vocab_writes_a_smaller_model_that_plain_transformers_loads(trimmed_dir, tiny_model_dir):
    meta = json.loads((trimmed_dir / METADATA_FILE).read_text())
    record = meta["vocab"]
    model = AutoModelForCausalLM.from_pretrained(trimmed_dir)
    tokenizer = AutoTokenizer.from_pretrained(trimmed_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    base_tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)

    assert meta["kind"] == "trim-vocab" and meta["command"][:2] == ["hfprune", "trim-vocab"]
    assert model.config.vocab_size == len(tokenizer) == record["rows_after"] < record["rows_before"] == 4096
    assert sum(p.numel() for p in model.parameters()) == record["parameters_after"] < record["parameters_before"]
    assert record["files"]["safetensors_bytes_after"] < record["files"]["safetensors_bytes_before"]
    assert record["verification"]["logits"]["passed"] and record["verification"]["logits"]["dtype"] == "float32"
    assert all(row["identical_share"] > 0.95 for row in record["verification"]["kept"].values())
    assert len(record["verification"]["not_kept"]) == 2
    for phase in ("before", "after"):
        assert record["speed"][phase]["decode_tokens_per_s"] > 0 and record["speed"][phase]["device"] == "cpu"
    id_map = json.loads((trimmed_dir / VOCAB_MAP_FILE).read_text())
    assert len(id_map["old_ids"]) == record["rows_after"] and record["map_file"]["name"] == VOCAB_MAP_FILE
    # Same greedy continuation as the untrimmed model, read through each model's own tokenizer.
    prompt = "The weather in Berlin is"
    new = model.generate(**tokenizer(prompt, return_tensors="pt"), max_new_tokens=12, do_sample=False)
    old = base.generate(**base_tokenizer(prompt, return_tensors="pt"), max_new_tokens=12, do_sample=False)
    assert tokenizer.decode(new[0]) == base_tokenizer.decode(old[0])


def test_the_card_shows_size_speed_and_what_languages_not_kept_lost(trimmed_dir):
    card = write_card(trimmed_dir).read_text()

    assert "## Vocabulary" in card and "vocabulary-trimmed" in card and "## Pruning" not in card
    for row in ("| parameters |", "| safetensors bytes |", "| decode tokens/s |", "| prefill tokens/s |"):
        assert row in card
    assert "Languages that were not kept" in card and "FLORES-200 devtest" in card
    assert "sparsity" not in card.split("## Vocabulary")[0]


def test_eval_compares_a_trimmed_model_with_its_baseline_in_bits_per_byte(
    trimmed_dir, tiny_model_dir, tmp_path, capsys
):
    out = tmp_path / "eval.json"
    code, stdout, err = run(
        [
            "eval",
            trimmed_dir,
            "--baseline",
            tiny_model_dir,
            "--langs",
            "en,sw,ar",
            "--limit",
            "40",
            "--no-cache",
            "--out",
            out,
        ],
        capsys,
    )
    assert code == 0, err
    data = json.loads(out.read_text())
    changes = {(c["metric"], c["lang"]): c for c in data["changes"]}

    assert "different tokenizers" in data["tokenizers_differ"] and "not comparable" in stdout
    assert all(changes[("ppl", lang)]["relative"] is None for lang in ("en", "sw", "ar"))
    assert all(changes[("ppl", lang)]["not_comparable"] for lang in ("en", "sw", "ar"))
    assert abs(changes[("bits_per_byte", "en")]["relative"]) < 0.02  # kept: nearly the same
    assert changes[("bits_per_byte", "ar")]["relative"] > 0.5  # not kept: much worse
    assert [s["metric"] for s in data["summary"]] == ["bits_per_byte"]
    card = write_card(trimmed_dir, results=out).read_text()
    assert "Token perplexity (`ppl`) is not comparable" in card and "Measured bits per byte" in card and "ar " in card


BAD = [
    (["--langs", "en,ko"], "the vocabulary source has no text for 'ko'"),
    (["--langs", "en", "--vocab-size", "10"], "--vocab-size 10 is below the 260 tokens that must stay"),
    (["--langs", "en,tlh", "--vocab-scripts"], "the script of 'tlh' is not known"),
    (["--langs", "en", "--vocab-min-count", "0"], "--vocab-min-count must be at least 1"),
    (["--langs", "en,xx-bogus"], "is not a language code"),
    (["--langs", "en", "--vocab-verify-source", "/nonexistent/held-out"], "does not exist"),
]


@pytest.mark.parametrize("extra,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_error_line_and_nothing_is_written(tiny_model_dir, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    code, _, err = run(["trim-vocab", tiny_model_dir, "--out", out, *extra], capsys)
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and message in lines[0], err
    assert list(tmp_path.iterdir()) == []


def test_unsupported_tokenizers_non_standard_models_and_existing_outputs_are_refused(tmp_path, capsys, trimmed_dir):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import BartConfig, BartForConditionalGeneration, PreTrainedTokenizerFast

    from .factory import training_lines

    wordpiece = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wordpiece.pre_tokenizer = pre_tokenizers.Whitespace()
    wordpiece.train_from_iterator(training_lines(("en",)), trainers.WordPieceTrainer(vocab_size=300))
    wp = PreTrainedTokenizerFast(tokenizer_object=wordpiece, unk_token="[UNK]")
    save_folder(make_model(wp), wp, tmp_path / "wordpiece")
    byte_level = make_tokenizer("byte_level")
    bart = BartForConditionalGeneration(
        BartConfig(
            vocab_size=len(byte_level),
            d_model=32,
            encoder_layers=1,
            decoder_layers=1,
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
        )
    )
    save_folder(bart, byte_level, tmp_path / "bart")
    cases = [
        (tmp_path / "wordpiece", "WordPiece model"),
        (tmp_path / "bart", "another vocabulary-sized buffer, final_logits_bias"),
    ]
    for folder, message in cases:
        code, _, err = run(["trim-vocab", folder, "--langs", "en", "--out", tmp_path / "o", *FAST], capsys)
        assert code == 2 and message in err and not (tmp_path / "o").exists(), err
    code, _, err = run(["trim-vocab", tmp_path / "bart", "--langs", "en", "--out", trimmed_dir], capsys)
    assert code == 2 and "already exists" in err


def test_prune_with_trim_vocab_in_memory_and_streamed_write_the_same_model(tiny_model_dir, tmp_path, capsys):
    common = ["--calib", "en:2,sw:2", "--seqlen", "64", "--trim-vocab", "--vocab-no-speed", *FAST, "--quiet"]
    assert run(["prune", tiny_model_dir, "--out", tmp_path / "mem", *common], capsys)[0] == 0
    code, stdout, err = run(["prune", tiny_model_dir, "--out", tmp_path / "stream", "--stream", *common], capsys)
    assert code == 0, err

    def weights(folder: Path) -> dict[str, torch.Tensor]:
        state: dict[str, torch.Tensor] = {}
        for path in folder.glob("*.safetensors"):
            state.update(load_file(path))
        return state

    memory, streamed = weights(tmp_path / "mem"), weights(tmp_path / "stream")
    assert memory.keys() == streamed.keys() and all(torch.equal(memory[k], streamed[k]) for k in memory)
    meta = json.loads((tmp_path / "stream" / METADATA_FILE).read_text())
    assert meta["streamed"] and meta["vocab"]["languages"] == ["en", "sw"]  # the calibration mix's languages
    assert meta["vocab"]["verification"]["logits"]["passed"] and meta["achieved_sparsity"] > 0.49
    assert (
        meta["calibration"]["tokenizer_sha256"]
        != json.loads((tmp_path / "mem" / METADATA_FILE).read_text())["vocab"]["tokenizer_sha256_before"]
    )  # calibration saw the trimmed tokenizer
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "stream")
    assert model.config.vocab_size == len(AutoTokenizer.from_pretrained(tmp_path / "stream"))
    assert "vocabulary: 4,096 ->" in stdout


def test_vocab_options_without_trim_vocab_are_an_error(tiny_model_dir, tmp_path, capsys):
    code, _, err = run(["prune", tiny_model_dir, "--out", tmp_path / "o", "--vocab-size", "500"], capsys)
    assert code == 2 and "--vocab-size only apply with --trim-vocab" in err


def test_run_trims_prunes_evaluates_and_writes_the_card(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run(
        [
            "run",
            tiny_model_dir,
            "--calib",
            "en:2,de:2",
            "--seqlen",
            "64",
            "--trim-vocab",
            "--vocab-no-speed",
            *FAST,
            "--eval-langs",
            "en,ar",
            "--eval-limit",
            "20",
            "--out",
            out,
        ],
        capsys,
    )
    assert code == 0, err
    card = (out / "README.md").read_text()
    assert (
        "## Pruning" in card
        and "## Vocabulary" in card
        and "with its vocabulary trimmed to the tokens of en, de" in card
    )
    assert "Generation speed was not measured" in card and "decode tokens/s" not in card
    results = json.loads((out / "eval_results.json").read_text())
    assert results["tokenizers_differ"] and {s["metric"] for s in results["summary"]} == {"bits_per_byte"}


def test_sweep_trims_once_and_keeps_the_untrimmed_dense_for_reference(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "sweep"
    code, stdout, err = run(
        [
            "sweep",
            tiny_model_dir,
            "--methods",
            "magnitude",
            "--sparsity",
            "0.3",
            "--calib",
            "en:2",
            "--seqlen",
            "64",
            "--eval-langs",
            "en,sw",
            "--eval-sentences",
            "8",
            "--trim-vocab",
            "--vocab-no-speed",
            *FAST,
            "--no-plots",
            "--out",
            out,
        ],
        capsys,
    )
    assert code == 0, err
    data = json.loads((out / "sweep.json").read_text())
    assert data["vocab"]["record"]["languages"] == ["en"] and set(data["vocab"]["dense_untrimmed"]) == {"en", "sw"}
    assert data["dense"]["sw"]["bits_per_byte"] > data["vocab"]["dense_untrimmed"]["sw"]["bits_per_byte"]
    assert "Vocabulary trimmed first" in (out / "sweep.md").read_text()


def test_the_space_scores_a_trimmed_model_against_its_base_and_shows_size(trimmed_dir, tiny_model_dir):
    app = load_app_module()
    device = app.pick_device("cpu")
    dense, trimmed = app.load_model(str(tiny_model_dir), device), app.load_model(str(trimmed_dir), device)
    record = app.read_pruned_record(str(trimmed_dir))

    result = app.score_prompt(dense, trimmed, "The weather in Berlin is nice today")
    header = app.header_markdown(str(tiny_model_dir), str(trimmed_dir), record)

    assert result["first_divergence"] is None and result["tokens_scored"] > 3  # same logits on the kept tokens
    assert all(abs(row["delta"]) < 0.7 for row in result["rows"])  # and mass from dropped tokens, renormalised
    assert "trimmed to the tokens of en, de, sw" in header and "### Size and speed" in header
    assert "| parameters |" in header and "decode tokens/s" in header


def test_a_vocabulary_text_too_small_for_a_language_is_flagged_in_the_summary_and_card(
    tiny_model_dir, tmp_path, capsys
):
    source = tmp_path / "texts"
    source.mkdir()
    (source / "en.txt").write_text("The cat sat on the mat. It was a good day for the cat.\n", encoding="utf-8")
    out = tmp_path / "small"
    code, stdout, err = run(
        [
            "trim-vocab",
            tiny_model_dir,
            "--langs",
            "en",
            "--vocab-source",
            source,
            "--vocab-no-speed",
            *FAST,
            "--out",
            out,
        ],
        capsys,
    )
    assert code == 0, err
    assert "warning: only en" in stdout and "--vocab-scripts" in stdout
    card = write_card(out).read_text()
    assert "**Warning:** only en" in card and "Generation speed was not measured" in card


def test_a_hub_model_is_pulled_trimmed_and_recorded_with_its_commit(local_hub, tmp_path, capsys):
    from ..hub_mirror import publish

    tokenizer = make_tokenizer("gemma")
    publish(
        local_hub.mirror_root,
        "acme/tiny-gemma",
        save_folder(make_model(tokenizer, arch="gemma3"), tokenizer, tmp_path / "src"),
    )
    out = tmp_path / "trimmed"
    code, _, err = run(
        ["trim-vocab", "acme/tiny-gemma", "--langs", "en,de", "--vocab-no-speed", *FAST, "--out", out], capsys
    )
    assert code == 0, err
    meta = json.loads((out / METADATA_FILE).read_text())
    assert meta["base_model"]["id"] == "acme/tiny-gemma" and len(meta["base_model"]["commit"]) == 40
    assert meta["vocab"]["files"]["safetensors_bytes_before"] > meta["vocab"]["files"]["safetensors_bytes_after"]
    assert AutoModelForCausalLM.from_pretrained(out).config.vocab_size == len(AutoTokenizer.from_pretrained(out))
