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
def test_demo_compares_english_only_with_mixed_calibration_and_publishes_locally(tiny_model_dir, tmp_path: Path):
    from huggingface_hub import ModelCard

    from hfprune.hub import local as local_hub
    from hfprune.tiny_model import LANGUAGES
    from hfprune.workflow.demo import DemoOptions, perplexity_changes, run_demo, side_by_side, verdict

    options = DemoOptions(out=tmp_path / "demo", samples_per_language=2, eval_limit=20)
    runs = run_demo(options, log=lambda line: None)

    assert [(r.method, r.calibration) for r in runs] == [("wanda", "english-only"), ("wanda", "mixed")]
    mixes = [json.loads((r.outcome.folder / "hfprune.json").read_text())["calibration"]["mix"] for r in runs]
    assert mixes == [f"en:{2 * len(LANGUAGES)}", ",".join(f"{lang}:2" for lang in LANGUAGES)]
    for run in runs:
        card = ModelCard.load(run.outcome.card)
        assert {r.dataset_args["language"] for r in card.data.eval_results} == set(LANGUAGES)
        repo = local_hub.repo_dir(options.out / "hub", run.outcome.push["repo_id"])
        assert local_hub.resolve(repo, "main") == run.outcome.push["commit"]
        assert "eval_results.png" in local_hub.tree_manifest(repo, "main")
    table = side_by_side(runs)
    assert len(table) == 2 + len(LANGUAGES) and "wanda english-only" in table[1] and "wanda mixed" in table[1]
    words = verdict(runs)
    english, mixed = (perplexity_changes(r) for r in runs)
    wins = sum(mixed[lang] < english[lang] for lang in LANGUAGES)
    assert f"lower perplexity in {wins} of {len(LANGUAGES)} languages" in words[0]
    best = min(runs, key=lambda r: sum(perplexity_changes(r).values()))
    assert f"wanda with {best.calibration.replace('-', ' ')} calibration" in words[-1]
