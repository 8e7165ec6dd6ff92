"""Files and paths, the parts the bad-input table cannot show: an --overwrite that keeps working, links that stay
inside the folder, an interrupted local push that leaves nothing behind, a card that states foreign results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hfprune.constants import WRITTEN_RECORD
from hfprune.errors import LinkOutOfFolderError, LocalHubError, ResultsOfAnotherModelError
from hfprune.hub import local as local_hub
from hfprune.hub.local_push import push_to_local_hub
from hfprune.hub.manifest import published_files
from hfprune.hub.preflight import file_contains
from hfprune.io import atomic_folder, foreign_files, publishable, write_record

from .conftest import make_pruned_folder


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_overwrite_replaces_what_hfprune_wrote_and_leaves_no_swap_folder(tmp_path):
    out = tmp_path / "out"
    for text in ("first", "second"):
        with atomic_folder(out, overwrite=True) as tmp:
            (tmp / "hfprune.json").write_text(text)
            (tmp / "shard").mkdir()
            (tmp / "shard" / "a.safetensors").write_text(text)
    assert (out / "hfprune.json").read_text() == "second"
    assert json.loads((out / WRITTEN_RECORD).read_text())["files"] == ["hfprune.json", "shard/a.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no .out.old-* or .out.tmp-* left
    (out / "README.md").write_text("card")  # what `hfprune card` adds later is hfprune's too
    assert foreign_files(out) == []
    (out / "shard" / "mine.txt").write_text("mine")
    assert foreign_files(out) == ["shard/mine.txt"]


def test_a_link_inside_the_folder_publishes_its_file_and_one_leading_out_is_refused(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "real.txt").write_text("inside")
    (folder / "alias.txt").symlink_to("real.txt")
    assert published_files(folder) == ["alias.txt", "real.txt"]
    (tmp_path / "outside").mkdir()
    (folder / "dir-link").symlink_to(tmp_path / "outside")
    (folder / "dangling").symlink_to(tmp_path / "gone")
    (folder / "up").symlink_to("../outside")
    with pytest.raises(LinkOutOfFolderError) as caught:
        published_files(folder)
    for name in ("dir-link", "dangling", "up"):
        assert name in str(caught.value)


def test_the_token_scan_finds_a_token_across_a_chunk_boundary(tmp_path):
    needle = b"hf_secret_token_value"
    path = tmp_path / "big.bin"
    path.write_bytes(b"\0" * ((1 << 20) - 5) + needle + b"\0" * 100)
    assert file_contains(path, needle)
    path.write_bytes(b"\0" * ((1 << 20) * 2))
    assert not file_contains(path, needle)


def test_an_interrupted_lfs_copy_leaves_no_partial_object(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    source = tmp_path / "weights.bin"
    source.write_bytes(os.urandom(3 << 20))
    real_open = Path.open
    reads = {"n": 0}

    class Interrupting:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def read(self, size=-1):
            reads["n"] += 1
            if reads["n"] == 2:
                raise KeyboardInterrupt  # Ctrl-C in the middle of the copy
            return self.handle.read(size)

    def opening(self, mode="r", *args, **kwargs):
        handle = real_open(self, mode, *args, **kwargs)
        return Interrupting(handle) if self == source and "b" in mode else handle

    oid = local_hub.hash_file(source).sha256
    monkeypatch.setattr(Path, "open", opening)
    with pytest.raises(KeyboardInterrupt):
        local_hub.store_lfs_object(repo, source, oid=oid)
    monkeypatch.setattr(Path, "open", real_open)
    target = local_hub.lfs_object_path(repo, oid)
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_a_killed_pushs_partial_object_is_removed_by_the_next_push_and_a_changed_file_is_refused(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    source = tmp_path / "weights.bin"
    source.write_bytes(b"weights" * 1000)
    oid = local_hub.hash_file(source).sha256
    folder = local_hub.lfs_object_path(repo, oid).parent
    folder.mkdir(parents=True)
    leftover = folder / f".incoming-{_dead_pid()}-abc"
    leftover.write_bytes(b"half")
    live = folder / f".incoming-{os.getpid()}-def"  # another push of this process, still running
    live.write_bytes(b"busy")
    local_hub.store_lfs_object(repo, source, oid=oid)
    assert not leftover.exists() and live.exists()
    assert local_hub.lfs_object_path(repo, oid).read_bytes() == source.read_bytes()
    with pytest.raises(LocalHubError, match="changed while it was being published"):
        local_hub.store_lfs_object(repo, source, oid="0" * 64)


def test_a_local_push_scans_for_the_token(tmp_path, monkeypatch):
    folder = make_pruned_folder(tmp_path / "pruned")
    monkeypatch.setenv("HF_TOKEN", "hf_" + "a" * 34)
    (folder / "notes.md").write_text("token: hf_" + "a" * 34)
    with pytest.raises(Exception, match="token is written in notes.md"):
        push_to_local_hub(folder, tmp_path / "hub", "me/x")
    assert not (tmp_path / "hub").exists() or not any((tmp_path / "hub").rglob("*.md"))


def test_a_card_with_another_models_results_says_so_when_allowed(tmp_path):
    from hfprune.card import write_card

    folder = make_pruned_folder(tmp_path / "pruned")
    results = tmp_path / "results.json"
    record = {"name": "x", "sha256": "0" * 64, "weights_sha256": {"model.safetensors": "1" * 64}}
    results.write_text(json.dumps({"model": record, "settings": {}, "results": []}))
    with pytest.raises(ResultsOfAnotherModelError, match="other weights"):
        write_card(folder, results=results)
    card = write_card(folder, results=results, allow_other_model=True).read_text()
    assert "measured on other weights than the ones in this repository" in card


def test_a_published_record_cannot_carry_this_machines_paths_whatever_field_holds_them(tmp_path):
    home = Path.home() / "models" / "gemma"
    record = {
        "source": str(tmp_path / "text"),
        "nested": {"files": [str(home / "en.txt"), Path("/data/flores/sw.devtest.txt"), "~/cache/x.json"]},
        "kept": ["en/de mix", "shipped:flores/en.devtest.txt", "google/gemma-3-270m", 3, None, 0.5],
    }
    written = json.loads(write_record(tmp_path / "record.json", record).read_text())
    assert written == {
        "source": "text",
        "nested": {"files": ["en.txt", "sw.devtest.txt", "x.json"]},
        "kept": ["en/de mix", "shipped:flores/en.devtest.txt", "google/gemma-3-270m", 3, None, 0.5],
    }
    assert publishable(record) == written and str(tmp_path) not in (tmp_path / "record.json").read_text()
