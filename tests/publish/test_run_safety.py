"""hfprune run never loses a user's data and resumes honestly: it resolves the base to a commit on every run,
verifies pruned weights by their hashes, and re-checks a skipped push."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from hfprune import ModelSource, PruneSettings
from hfprune.errors import OutputExistsError, OutputNotOursError, OutputOverlapsModelError
from hfprune.hub import local as local_hub
from hfprune.hub.local_push import push_to_local_hub
from hfprune.workflow.run import RunOptions, run_job

from ..hub_mirror import publish
from ..model_factory import make_model, make_tokenizer, save_model_folder
from .conftest import make_pruned_folder


def quiet(options: RunOptions):
    return run_job(options, log=lambda line: None)


@pytest.fixture
def base_dir(tmp_path: Path) -> Path:
    tokenizer = make_tokenizer(["the quick brown fox jumps over the lazy dog"] * 20)
    return save_model_folder(make_model("llama", seed=5), tokenizer, tmp_path / "base")


def options(model: str | Path, out: Path, **overrides) -> RunOptions:
    settings = {"source": ModelSource(str(model)), "out": out, "prune": PruneSettings(method="magnitude", sparsity=0.5)}
    return RunOptions(**{**settings, **overrides})


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("where", ["same", "inside", "parent"])
def test_out_that_is_contains_or_lies_inside_the_model_is_refused(base_dir, where):
    out = {"same": base_dir, "inside": base_dir / "pruned", "parent": base_dir.parent}[where]
    before = _snapshot(base_dir)
    for overwrite in (False, True):
        with pytest.raises(OutputOverlapsModelError, match="never writes into or over the model"):
            quiet(options(base_dir, out, overwrite=overwrite))
    assert _snapshot(base_dir) == before and not (base_dir / "pruned").exists()


def test_an_existing_out_needs_overwrite_and_a_users_folder_is_never_replaced(base_dir, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        quiet(options(base_dir, mine))
    with pytest.raises(OutputNotOursError, match="not written by hfprune"):
        quiet(options(base_dir, mine, overwrite=True))
    assert _snapshot(mine) == {"notes.txt": b"keep me"}

    pruned = make_pruned_folder(tmp_path / "pruned")  # an hfprune prune output, not a run folder
    with pytest.raises(OutputExistsError):
        quiet(options(base_dir, pruned))
    outcome = quiet(options(base_dir, pruned, overwrite=True))
    assert outcome.ran == ["pull", "prune", "card"]
    assert json.loads((pruned / "hfprune.json").read_text())["base_model"]["id"] != "acme/base-llama"


def test_tampered_weights_are_pruned_again_on_resume(base_dir, tmp_path):
    out = tmp_path / "out"
    quiet(options(base_dir, out))
    weights = out / "model.safetensors"
    good = weights.read_bytes()
    tensors = load_file(weights)
    name = next(n for n in tensors if n.endswith("down_proj.weight"))
    tensors[name] = tensors[name] + 1.0
    save_file(tensors, str(weights), metadata={"format": "pt"})

    again = quiet(options(base_dir, out))

    assert "prune" in again.ran and weights.read_bytes() == good


def test_a_branch_that_moved_is_noticed_and_every_later_step_uses_the_new_commit(local_hub, tmp_path):
    tokenizer = make_tokenizer(["the quick brown fox jumps over the lazy dog"] * 20)
    v1 = publish(
        local_hub.mirror_root, "acme/moving", save_model_folder(make_model("llama", seed=1), tokenizer, tmp_path / "v1")
    )
    out = tmp_path / "out"
    run = options("acme/moving", out, eval_langs=["en"], eval_limit=2, context_length=32)
    first = quiet(run)
    assert json.loads((out / "hfprune.json").read_text())["base_model"]["commit"] == v1

    again = quiet(run)
    assert again.skipped == ["pull", "prune", "eval", "card"]

    v2 = publish(
        local_hub.mirror_root, "acme/moving", save_model_folder(make_model("llama", seed=2), tokenizer, tmp_path / "v2")
    )
    moved = quiet(run)

    assert first.ran == moved.ran == ["pull", "prune", "eval", "card"]
    meta = json.loads((out / "hfprune.json").read_text())
    assert meta["base_model"]["commit"] == v2 and meta["base_model"]["revision"] == v2
    dense = json.loads((out / "eval_results.json").read_text())["dense"]["model"]
    assert dense["sha256"] != json.loads((out / "eval_results.json").read_text())["pruned"]["model"]["sha256"]


def test_a_skipped_push_is_re_checked_and_repeated_when_the_repo_changed(base_dir, tmp_path):
    out, hub = tmp_path / "out", tmp_path / "hub"
    run = options(base_dir, out, push_to="tester/rechecked", local_hub=hub)
    first = quiet(run)
    logged: list[str] = []
    second = run_job(run, log=logged.append)
    assert second.skipped[-1] == "push" and any("re-checked" in line for line in logged)

    push_to_local_hub(make_pruned_folder(tmp_path / "other", seed=9), hub, "tester/rechecked")  # someone else pushed
    third = run_job(run, log=logged.append)

    assert third.ran == ["push"] and third.push["commit"] != first.push["commit"]
    repo = local_hub.repo_dir(hub, "tester/rechecked")
    assert local_hub.resolve(repo, "main") == third.push["commit"]
    assert local_hub.read_blob(repo, "main", "hfprune.json") == (out / "hfprune.json").read_bytes()


def test_published_files_never_carry_this_machines_paths(tmp_path, monkeypatch):
    """A run from a local base under the user's home: nothing pushed names the home folder or any local path."""
    from hfprune.cli.main import main

    home = tmp_path / "home" / "alice"
    monkeypatch.setenv("HOME", str(home))
    texts = home / "texts"
    texts.mkdir(parents=True)
    (texts / "en.txt").write_text("the quick brown fox jumps over the lazy dog\n" * 400)
    tokenizer = make_tokenizer(["the quick brown fox jumps over the lazy dog"] * 20)
    base = save_model_folder(make_model("llama", seed=5), tokenizer, home / "models" / "base")
    (base / "README.md").write_text("---\nlicense: apache-2.0\n---\n# my base\n")
    out, hub = home / "out", home / "hub"
    argv = [
        "run",
        str(base),
        "--method",
        "wanda",
        "--calib",
        "en:2",
        "--calib-source",
        str(texts),
        "--seqlen",
        "32",
        "--eval-langs",
        "en",
        "--eval-limit",
        "2",
        "--context-length",
        "32",
        "--out",
        str(out),
        "--push-to",
        "alice/pruned",
        "--local-hub",
        str(hub),
    ]
    assert main(argv) == 0

    repo = local_hub.repo_dir(hub, "alice/pruned")
    published = local_hub.tree_manifest(repo, "main")
    assert {"hfprune.json", "README.md", "eval_results.json", "model.safetensors"} <= set(published)
    assert ".hfprune-local.json" not in published and ".hfprune-run.json" not in published
    for path in published:
        content = local_hub.read_blob(repo, "main", path)
        if content.startswith(b"version https://git-lfs"):
            continue  # weights and plots: bytes of numbers, not text
        assert str(tmp_path).encode() not in content, path
    meta = json.loads(local_hub.read_blob(repo, "main", "hfprune.json"))
    assert meta["base_model"]["id"] == "base" and meta["base_model"]["local"] is True
    assert set(meta["base_model"]["files"]) == {"config.json", "model.safetensors"}
    assert meta["base_model"]["card"] == {"license": "apache-2.0"}
    assert meta["command"][:3] == ["hfprune", "run", "base"] and "texts" in meta["command"]
    card = local_hub.read_blob(repo, "main", "README.md").decode()
    assert "license: apache-2.0" in card and "`base`" in card
    assert json.loads((out / ".hfprune-local.json").read_text()) == {"base_model_path": str(base.resolve())}
