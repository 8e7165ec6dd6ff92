"""hfprune pull: prints the snapshot folder in the Hub cache; Hub errors are one clear line."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import constants

from ..hub_mirror import publish
from .cli_runner import run_cli
from .conftest import make_pruned_folder


def test_pull_prints_the_cached_snapshot_folder(local_hub, tmp_path, capsys):
    commit = publish(local_hub.mirror_root, "acme/pull-me", make_pruned_folder(tmp_path / "src", card=True))

    assert run_cli(["pull", "acme/pull-me"]) == 0

    folder = Path(capsys.readouterr().out.strip())
    assert folder.name == commit and Path(constants.HF_HUB_CACHE) in folder.parents
    assert (folder / "model.safetensors").is_file() and (folder / "README.md").is_file()


def test_pull_of_a_missing_revision_is_one_error_line(local_hub, tmp_path, capsys):
    publish(local_hub.mirror_root, "acme/pull-rev", make_pruned_folder(tmp_path / "src"))

    assert run_cli(["pull", "acme/pull-rev", "--revision", "nope"]) == 2

    last = capsys.readouterr().err.splitlines()[-1]  # library warnings may precede it
    assert last.startswith("error: ") and "no revision 'nope'" in last
