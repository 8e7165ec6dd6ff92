"""``--hub-data``: task rows fetched with ``datasets`` from a Hub dataset repo, served here by the local olah.

The repo is laid out like the Hub's parquet/JSON conversions (one config per language, declared in the
README's ``configs``), so ``datasets.load_dataset(hub_id, config, split=...)`` runs its real Hub code path.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hfprune.errors import DataSourceError
from hfprune.evaluation.task_data import load_task_data
from hfprune.evaluation.tasks import TASKS

from ..data_dirs import data_dir
from ..hub_mirror import publish


@pytest.fixture
def hub_datasets(local_hub, monkeypatch, tmp_path):
    """datasets reads its endpoint and cache at import: point both at this test's Hub and HF_HOME."""
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_ENDPOINT", local_hub.url)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    return local_hub


def _publish_xcopa(mirror_root: Path, tmp_path: Path, langs: tuple[str, ...]) -> None:
    repo = tmp_path / "xcopa-repo"
    front = ["---", "configs:"]
    for lang in langs:
        (repo / lang).mkdir(parents=True)
        rows = (data_dir() / "xcopa" / f"{lang}.test.jsonl").read_text("utf-8").splitlines()[:20]
        (repo / lang / "test.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
        front += [f"- config_name: {lang}", "  data_files:", "  - split: test", f"    path: {lang}/test.jsonl"]
    (repo / "README.md").write_text("\n".join(front + ["---", "", "XCOPA (test copy)", ""]), encoding="utf-8")
    publish(mirror_root, "cambridgeltl/xcopa", repo, repo_type="datasets", message="Upload xcopa")


def test_hub_data_fetches_the_language_config_and_split(hub_datasets, tmp_path):
    _publish_xcopa(hub_datasets.mirror_root, tmp_path, ("sw", "et"))
    data = load_task_data(TASKS["xcopa"], "sw", (), hub=True, limit=5)
    local = [json.loads(line) for line in (data_dir() / "xcopa" / "sw.test.jsonl").read_text("utf-8").splitlines()[:5]]
    assert data is not None and data.split == "test"
    assert [(d["premise"], d["choice1"], d["choice2"], d["label"]) for d in data.docs] == [
        (d["premise"], d["choice1"], d["choice2"], d["label"]) for d in local
    ]
    assert data.source == "hf://datasets/cambridgeltl/xcopa/sw@test"


def test_hub_data_failure_names_the_dataset_and_the_way_out(hub_datasets, tmp_path):
    _publish_xcopa(hub_datasets.mirror_root, tmp_path, ("sw",))
    with pytest.raises(DataSourceError, match=r"cambridgeltl/xcopa \(et, test\).*--eval-source"):
        load_task_data(TASKS["xcopa"], "et", (), hub=True, limit=5)  # the repo has no such config
