"""Verification catches what a broken upload looks like; the offline demo runs end to end (slow)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from hfprune.hub.manifest import local_manifest, mismatches


def test_mismatches_name_missing_resized_and_altered_files(tmp_path: Path):
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "b.safetensors").write_bytes(b"\0" * 64)
    (tmp_path / ".ledger").write_text("never published")
    local = local_manifest(tmp_path)
    assert sorted(local) == ["a.json", "b.safetensors"]

    assert mismatches(local, dict(local)) == []
    remote_lfs = {path: replace(entry, git_blob_id=None) for path, entry in local.items()}  # as the Hub lists LFS
    assert mismatches(local, remote_lfs) == []
    problems = mismatches(local, {"b.safetensors": replace(local["b.safetensors"], size=1)})
    assert problems == ["a.json: missing on the remote", "b.safetensors: 1 bytes on the remote, 64 locally"]
    altered = {**local, "a.json": replace(local["a.json"], sha256=None, git_blob_id="f" * 40)}
    assert mismatches(local, altered) == [f"a.json: content differs (git blob {'f' * 12} on the remote)"]


@pytest.mark.slow
def test_demo_prunes_two_methods_evaluates_and_publishes_locally(tiny_model_dir, tmp_path: Path):
    from huggingface_hub import ModelCard

    from hfprune.hub import local as local_hub
    from hfprune.models.tiny import LANGUAGES
    from hfprune.workflow.demo import DemoOptions, run_demo, side_by_side

    options = DemoOptions(out=tmp_path / "demo", methods=("wanda", "magnitude"), samples_per_language=2, eval_limit=20)
    outcomes = run_demo(options, log=lambda line: None)

    assert [json.loads((o.folder / "hfprune.json").read_text())["method"] for o in outcomes] == ["wanda", "magnitude"]
    for outcome in outcomes:
        card = ModelCard.load(outcome.card)
        assert {r.dataset_args["language"] for r in card.data.eval_results} == set(LANGUAGES)
        repo = local_hub.repo_dir(options.out / "hub", outcome.push["repo_id"])
        assert local_hub.resolve(repo, "main") == outcome.push["commit"]
        assert "eval_results.png" in local_hub.tree_manifest(repo, "main")
    table = side_by_side(outcomes)
    assert len(table) == 2 + len(LANGUAGES) and "wanda" in table[1] and "magnitude" in table[1]
