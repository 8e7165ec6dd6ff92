"""The one order of sources (named source > HFPRUNE_DATA_DIR > shipped data > Hub when online), the shipped data
itself, and what a user sees when no source has what they asked for."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hfprune.calibration.sources import DefaultSource, FolderSource, open_source
from hfprune.cli.main import main
from hfprune.constants import DATA_DIR_ENV
from hfprune.data_sources import SHIPPED, data_roots, shipped_data_dir
from hfprune.errors import CalibrationSourceError, DataFolderError
from hfprune.evaluation.perplexity import load_flores
from hfprune.evaluation.task_data import load_task_data
from hfprune.evaluation.tasks import TASKS

from .data_dirs import FULL_DATA, needs_full_data
from .model_factory import make_model, make_tokenizer, save_model_folder

CHECKOUT = Path(__file__).resolve().parent.parent
#: Licences the shipped data may carry: each allows redistribution (see hfprune/data/LICENSES.md).
REDISTRIBUTABLE = ("CC-BY-SA-4.0", "CC-BY-4.0", "OHCHR", "PAWS licence")


@pytest.fixture
def shipped_only(monkeypatch):
    """A user's machine: no HFPRUNE_DATA_DIR, offline."""
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


# --- the shipped data -------------------------------------------------------------------------------------
def test_every_shipped_file_is_in_its_manifest_with_its_hash_and_a_redistributable_licence():
    root = shipped_data_dir()
    entries = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    for entry in entries:
        path = root / entry["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], entry["file"]
        assert entry["licence"].startswith(REDISTRIBUTABLE), entry
    on_disk = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert on_disk == {e["file"] for e in entries} | {"manifest.json", "SOURCES.md", "LICENSES.md"}
    assert not {e["file"].split("/")[0] for e in entries} & {"xnli", "xstorycloze", "xwinograd"}  # not ours to give
    assert sum(e["bytes"] for e in entries) < 20_000_000


def test_the_shipped_data_covers_what_every_default_needs():
    from hfprune.tiny_model import CALIB_SOURCES, LANGUAGES

    root = shipped_data_dir()
    for lang in LANGUAGES:  # the demo's model trains on these and is evaluated on FLORES
        assert (root / "flores" / f"{lang}.devtest.txt").is_file()
        assert any((root / "calib" / corpus / f"{lang}.txt").is_file() for corpus in CALIB_SOURCES)
    sources = (root / "SOURCES.md").read_text(encoding="utf-8")
    assert "CC BY-SA 4.0" in sources and "NTREX" in sources and "FLORES" in sources


@needs_full_data  # it compares the shipped files with the full corpora they were cut from: without them, nothing to compare
def test_the_shipped_data_is_what_ship_data_writes_from_the_bundle():
    done = subprocess.run(
        [sys.executable, str(CHECKOUT / "scripts" / "ship_data.py"), "--check", "--from", str(FULL_DATA)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


# --- the order ---------------------------------------------------------------------------------------------
def test_the_order_is_the_named_folder_alone_else_the_environment_then_the_shipped_data(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert [(r.path, r.origin) for r in data_roots()] == [(tmp_path, DATA_DIR_ENV), (shipped_data_dir(), SHIPPED)]
    assert [r.path for r in data_roots(tmp_path / ".")] == [tmp_path / "."]
    monkeypatch.delenv(DATA_DIR_ENV)
    assert [r.origin for r in data_roots()] == [SHIPPED]
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DataFolderError, match="HFPRUNE_DATA_DIR names .*nowhere"):
        data_roots()


def test_each_language_comes_from_the_first_folder_that_has_it(tmp_path, monkeypatch):
    (tmp_path / "calib" / "mine").mkdir(parents=True)
    (tmp_path / "calib" / "mine" / "en.txt").write_text("my own English text.\n" * 5, encoding="utf-8")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    source = open_source(None, langs=["en", "sw"])
    assert isinstance(source, DefaultSource)
    assert source.documents("en", 10) == ["my own English text."] * 5
    shipped_sw = FolderSource(shipped_data_dir() / "calib").documents("sw", 10)
    assert source.documents("sw", 10) == shipped_sw
    record = source.describe()
    assert record["order"][:2] == [tmp_path.name, SHIPPED]
    assert record["languages"]["en"]["root"] == tmp_path.name and record["languages"]["sw"]["root"] == SHIPPED
    assert f"{SHIPPED}:calib/ntrex/sw.txt" in record["files"] and not any(str(tmp_path) in k for k in record["files"])


def test_a_language_no_source_has_names_every_source_tried_and_the_flag(shipped_only):
    source = open_source(None, langs=["yo"])
    with pytest.raises(CalibrationSourceError) as err:
        source.documents("yo", 100)
    message = str(err.value)
    for part in ("'yo'", "the data shipped with hfprune", "wikimedia/wikipedia", "HF_HUB_OFFLINE", "--calib-source"):
        assert part in message, message


def test_evaluation_data_comes_from_the_shipped_copy_and_says_so(shipped_only):
    data = load_task_data(TASKS["xcopa"], "sw", None, limit=3)
    assert data is not None and data.source == "shipped:xcopa/sw.test.jsonl" and len(data.docs) == 3
    assert len(load_flores("sw").splitlines()) == 1012


# --- what the user sees -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    texts = (shipped_data_dir() / "calib" / "ntrex" / "en.txt").read_text(encoding="utf-8").splitlines()[:300]
    return save_model_folder(make_model("llama"), make_tokenizer(texts), tmp_path_factory.mktemp("sources") / "llama")


BAD_SOURCES = {
    "calibration language nowhere": (
        ["prune", "{model}", "--calib", "yo:2", "--seqlen", "16", "--out", "{out}"],
        "no calibration text for 'yo': tried the data shipped with hfprune; the Hub",
        {},
    ),
    "data folder missing": (
        ["prune", "{model}", "--calib", "en:2", "--seqlen", "16", "--out", "{out}"],
        "HFPRUNE_DATA_DIR names",
        {DATA_DIR_ENV: "{scratch}/nowhere"},
    ),
    "eval language nowhere": (
        ["eval", "{model}", "--langs", "yo"],
        "no data for language(s) yo in any requested task (ppl); tried the data shipped with hfprune",
        {},
    ),
    "eval task not shipped, offline": (
        ["eval", "{model}", "--langs", "en", "--tasks", "xnli"],
        "no source holds xnli: tried the data shipped with hfprune; the Hub: facebook/xnli",
        {},
    ),
    "eval source missing": (
        ["eval", "{model}", "--langs", "en", "--eval-source", "{scratch}/nowhere"],
        "--eval-source names",
        {},
    ),
    "run eval language nowhere": (
        ["run", "{model}", "--calib", "en:2", "--seqlen", "16", "--eval-langs", "yo", "--out", "{out}"],
        "no data for language(s) yo",
        {},
    ),
}


@pytest.mark.parametrize("name", list(BAD_SOURCES))
def test_a_bad_source_is_one_line_exit_2_and_nothing_written(name, model, tmp_path, capsys, monkeypatch):
    argv, message, env = BAD_SOURCES[name]
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.chdir(scratch)
    for key, value in env.items():
        monkeypatch.setenv(key, value.format(scratch=scratch))
    capsys.readouterr()
    code = main([arg.format(model=model, out=scratch / "out", scratch=scratch) for arg in argv])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2, err
    assert len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err
    assert list(scratch.iterdir()) == []
