import json
import shutil
import time

import pytest

from hfprune.cli.main import build_parser
from hfprune.errors import (
    DataFileMissingError,
    EmptyTextError,
    LanguageNotAvailableError,
    OutputExistsError,
    UnknownTaskError,
)

from ..data_dirs import data_dir


def _run(*argv):
    """``hfprune eval ...``'s handler, so that errors reach the test as exceptions (the CLI prints them)."""
    args = build_parser().parse_args(["eval", *map(str, argv)])
    return args.handler(args)


def test_eval_compares_writes_json_and_plot_and_caches(saved_models, tmp_path, capsys):
    out = tmp_path / "results.json"
    common = [
        "--baseline",
        saved_models["dense"],
        "--langs",
        "en,de,sw",
        "--tasks",
        "ppl,xcopa,belebele",
        "--limit",
        "6",
        "--context-length",
        "64",
        "--cache-dir",
        tmp_path / "cache",
        "--out",
        out,
    ]
    started = time.perf_counter()
    assert _run(saved_models["pruned"], *common) == 0
    first = time.perf_counter() - started
    data = json.loads(out.read_text())
    assert (tmp_path / "results.png").read_bytes()[:4] == b"\x89PNG"
    assert {(r["task"], r["lang"]) for r in data["pruned"]["results"]} == {
        ("ppl", "en"),
        ("ppl", "de"),
        ("ppl", "sw"),
        ("xcopa", "en"),
        ("xcopa", "sw"),
        ("belebele", "en"),
        ("belebele", "de"),
    }
    assert {(s["task"], s["lang"]) for s in data["pruned"]["skipped"]} == {("xcopa", "de"), ("belebele", "sw")}
    assert data["pruned"]["model"]["sha256"] != data["dense"]["model"]["sha256"]
    ppl_en = next(r for r in data["pruned"]["results"] if (r["task"], r["lang"]) == ("ppl", "en"))
    assert len(ppl_en["data_sha256"]) == 64 and ppl_en["metrics"]["bits_per_byte"] > 0
    assert {"torch", "transformers", "evaluate"} <= set(data["pruned"]["versions"])
    summary = {(s["task"], s["metric"]): s for s in data["summary"]}
    rows = [c for c in data["changes"] if (c["task"], c["metric"]) == ("ppl", "ppl")]
    worst = max(rows, key=lambda c: c["relative"])
    assert summary[("ppl", "ppl")]["worst_lang"] == worst["lang"]
    assert "worst" in capsys.readouterr().out

    with pytest.raises(OutputExistsError, match="--overwrite"):  # results are never replaced silently
        _run(saved_models["pruned"], *common, "--json")
    started = time.perf_counter()
    assert _run(saved_models["pruned"], *common, "--json", "--overwrite") == 0
    second = time.perf_counter() - started
    again = json.loads(capsys.readouterr().out)
    assert all(r["cached"] for r in again["pruned"]["results"] + again["dense"]["results"])
    assert again["changes"] == data["changes"]
    assert second < first


def test_unknown_task_lists_the_known_ones(saved_models):
    with pytest.raises(UnknownTaskError, match="known tasks: ppl, xcopa, xstorycloze"):
        _run(saved_models["pruned"], "--langs", "en", "--tasks", "ppl,hellaswag", "--no-cache")


def test_unknown_language_lists_the_existing_ones(saved_models):
    with pytest.raises(LanguageNotAvailableError, match=r"xx.*languages that exist: .*de, en"):
        _run(saved_models["pruned"], "--langs", "en,xx", "--tasks", "ppl,belebele", "--no-cache")


def test_data_folder_missing_a_listed_file_is_named(saved_models, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(data_dir() / "xcopa", data / "xcopa")
    shutil.copy(data_dir() / "manifest.json", data / "manifest.json")
    (data / "xcopa" / "sw.test.jsonl").unlink()
    (data / "xcopa" / "sw.validation.jsonl").unlink()
    with pytest.raises(DataFileMissingError, match=r"xcopa/sw\.test\.jsonl"):
        _run(
            saved_models["pruned"], "--langs", "sw,zh", "--tasks", "xcopa", "--data", data, "--no-cache", "--limit", "2"
        )


def test_empty_text_file_in_a_custom_folder(saved_models, tmp_path):
    (tmp_path / "en.txt").write_text("\n\n", encoding="utf-8")
    with pytest.raises(EmptyTextError, match=r"en\.txt is empty"):
        _run(saved_models["pruned"], "--langs", "en", "--ppl-source", tmp_path, "--no-cache", "--context-length", "64")


def test_context_length_above_maximum_is_an_error(saved_models):
    from hfprune.errors import ContextLengthError

    with pytest.raises(ContextLengthError, match="--context-length 256 or less"):
        _run(saved_models["pruned"], "--langs", "en", "--context-length", "4096", "--no-cache", "--limit", "3")
