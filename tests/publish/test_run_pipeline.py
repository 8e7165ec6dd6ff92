"""hfprune run: pull -> prune -> eval -> card -> push, and re-runs that skip what did not change."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from hfprune import ModelSource, PruneSettings
from hfprune.errors import OutputExistsError
from hfprune.hub import local as local_hub
from hfprune.workflow.run import RunOptions, run_job

from ..model_factory import make_model, make_tokenizer, save_model_folder
from .conftest import TEST_TOKEN

ALL_STEPS = ["pull", "prune", "eval", "card", "push"]


@pytest.fixture
def base_dir(tmp_path: Path) -> Path:
    tokenizer = make_tokenizer(["the quick brown fox jumps over the lazy dog"] * 20)
    return save_model_folder(make_model("llama", seed=5), tokenizer, tmp_path / "base")


def options(base: Path, out: Path, sparsity: float = 0.5, **overrides) -> RunOptions:
    settings = dict(
        source=ModelSource(str(base)),
        out=out,
        prune=PruneSettings(method="magnitude", sparsity=sparsity),
        eval_langs=["en"],
        eval_limit=3,
        context_length=64,
        push_to="tester/run-local",
    )
    return RunOptions(**{**settings, **overrides})


def test_run_publishes_to_a_local_hub_that_olah_serves_and_reruns_skip_everything(local_hub, base_dir, tmp_path):
    out = tmp_path / "out"
    first = run_job(options(base_dir, out, local_hub=local_hub.mirror_root), log=lambda line: None)

    assert first.ran == ALL_STEPS and first.skipped == []
    assert ModelCard.load(first.card).data.eval_results  # the card holds the evaluation
    model = AutoModelForCausalLM.from_pretrained("tester/run-local", revision="main")  # through olah
    for name, tensor in load_file(out / "model.safetensors").items():
        assert torch.equal(model.state_dict()[name], tensor), name
    local_hub_repo = local_hub.mirror_root / "models" / "tester" / "run-local"
    published = local_hub_module_files(local_hub_repo)
    assert {"README.md", "hfprune.json", "eval_results.json", "eval_results.png", "model.safetensors"} <= published
    assert ".hfprune-run.json" not in published

    again = run_job(options(base_dir, out, local_hub=local_hub.mirror_root), log=lambda line: None)

    assert again.ran == [] and again.skipped == ALL_STEPS
    assert again.push["commit"] == first.push["commit"] == local_hub_resolve(local_hub_repo)


def test_changing_the_sparsity_reruns_prune_and_everything_after_it(local_hub, base_dir, tmp_path):
    """Another sparsity is another job: refused without --overwrite (the old model is kept), rerun with it."""
    out = tmp_path / "out"
    first = run_job(options(base_dir, out, local_hub=local_hub.mirror_root), log=lambda line: None)
    before = (out / "model.safetensors").read_bytes()
    with pytest.raises(OutputExistsError, match="another job"):
        run_job(options(base_dir, out, local_hub=local_hub.mirror_root, sparsity=0.7), log=lambda line: None)
    assert (out / "model.safetensors").read_bytes() == before

    changed = options(base_dir, out, local_hub=local_hub.mirror_root, sparsity=0.7)
    second = run_job(dataclasses.replace(changed, overwrite=True), log=lambda line: None)

    assert second.skipped == ["pull"] and second.ran == ["prune", "eval", "card", "push"]
    assert second.push["commit"] != first.push["commit"]
    assert json.loads((out / "hfprune.json").read_text())["target_sparsity"] == 0.7


def test_an_edited_card_is_rewritten_on_rerun(local_hub, base_dir, tmp_path):
    out = tmp_path / "out"
    run_job(options(base_dir, out, push_to=None, eval_langs=[]), log=lambda line: None)
    (out / "README.md").write_text("tampered")

    again = run_job(options(base_dir, out, push_to=None, eval_langs=[]), log=lambda line: None)

    assert again.ran == ["card"] and (out / "README.md").read_text().startswith("---\n")


def test_cli_run_pushes_to_the_hub_and_never_writes_the_token(write_hub, base_dir, tmp_path, capsys):
    from .cli_runner import run_cli

    out = tmp_path / "cli-out"
    code = run_cli(
        [
            "run",
            str(base_dir),
            "--method",
            "magnitude",
            "--sparsity",
            "0.5",
            "--eval-langs",
            "en",
            "--eval-limit",
            "3",
            "--context-length",
            "64",
            "--out",
            str(out),
            "--push-to",
            "tester/run-cli",
        ]
    )

    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert f"published: {write_hub.url}/tester/run-cli" in printed.out
    recorded = json.loads((out / "hfprune.json").read_text())["command"]
    assert recorded[:2] == ["hfprune", "run"] and "--push-to" in recorded
    assert TEST_TOKEN not in printed.out + printed.err
    for path in out.rglob("*"):
        if path.is_file():
            assert TEST_TOKEN.encode() not in path.read_bytes(), path


def local_hub_module_files(repo: Path) -> set[str]:
    return set(local_hub.tree_manifest(repo, "main"))


def local_hub_resolve(repo: Path) -> str | None:
    return local_hub.resolve(repo, "main")


def test_run_exports_beside_the_weights_and_a_user_runs_the_published_export(local_hub, base_dir, tmp_path):
    """``run --export openvino``: the IR lands in OUT/openvino, the card says how to run it, the push publishes
    it (not hfprune's dot-files), a user downloads it through the Hub and generates with it; a re-run skips it."""
    from huggingface_hub import snapshot_download

    from hfprune.constants import EXPORT_RECORD
    from hfprune.export import ExportSettings, load_openvino

    export = ExportSettings(verify_langs=("en",), verify_sentences=2, greedy_tokens=4, speed=False)
    out = tmp_path / "out"
    first = run_job(options(base_dir, out, local_hub=local_hub.mirror_root, export=export), log=lambda line: None)

    assert first.ran == ["pull", "prune", "eval", "export", "card", "push"]
    assert json.loads((out / "openvino" / EXPORT_RECORD).read_text())["weights"] == "int8"
    assert "### Run it with OpenVINO (int8, in `openvino/`)" in first.card.read_text()
    published = local_hub_module_files(local_hub.mirror_root / "models" / "tester" / "run-local")
    assert {"openvino/openvino_model.xml", "openvino/openvino_model.bin", "openvino/openvino_runtime.json"} <= published
    assert not any(name.startswith("openvino/.") for name in published)
    downloaded = Path(snapshot_download("tester/run-local", allow_patterns="openvino/*", cache_dir=tmp_path / "user"))
    model = load_openvino(downloaded / "openvino")
    prompt = torch.tensor([[1, 5, 9, 12]])
    assert model.generate(prompt, max_new_tokens=3, min_new_tokens=3, do_sample=False).shape == (1, 7)

    again = run_job(options(base_dir, out, local_hub=local_hub.mirror_root, export=export), log=lambda line: None)
    assert again.ran == [] and "export" in again.skipped
