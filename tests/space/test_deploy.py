"""hfprune space deploy against the tests' Hub write emulator: the Space repo, its README and its variables."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import gradio
import pytest
import yaml
from huggingface_hub import HfApi, hf_hub_download

from hfprune.assets import asset_path
from hfprune.cli import main
from hfprune.errors import DenseModelUnknownError, PrunedRepoNotFoundError, RepoPermissionError, UnknownHardwareError
from hfprune.hub.space import SHORT_DESCRIPTION_MAX, SPACE_FILES, deploy_space, front_matter

from ..hub_mirror import publish
from .conftest import TEST_TOKEN, make_pruned_folder

PRUNED = "tester/tiny-llama-magnitude-50"
SPACE = f"{PRUNED}-demo"


@pytest.fixture
def pruned_on_hub(write_hub, tmp_path) -> str:
    """A pruned model repo on the (emulated) Hub whose hfprune.json names acme/base-llama as its base."""
    publish(write_hub.mirror_root, PRUNED, make_pruned_folder(tmp_path / "pruned"))
    return PRUNED


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def test_deploy_creates_the_space_with_its_files_front_matter_and_variables(write_hub, pruned_on_hub):
    code, out, err = run(["space", "deploy", "--pruned", PRUNED, "--hardware", "t4-small"])

    assert code == 0, err
    assert out.strip().endswith(f"{write_hub.url}/spaces/{SPACE}")  # the endpoint's Space URL
    assert TEST_TOKEN not in out + err
    api = HfApi()
    assert sorted(api.list_repo_files(SPACE, repo_type="space")) == [
        ".gitattributes",
        "README.md",
        "app.py",
        "compare_generation.py",
        "compare_layout.py",
        "compare_limits.py",
        "compare_loading.py",
        "compare_record.py",
        "compare_scoring.py",
        "requirements.txt",
    ]
    for name in SPACE_FILES:  # app.py and every module it imports arrive as they are in spaces/compare/
        uploaded = hf_hub_download(SPACE, name, repo_type="space")
        assert Path(uploaded).read_bytes() == (asset_path("spaces/compare") / name).read_bytes(), name
    readme = Path(hf_hub_download(SPACE, "README.md", repo_type="space")).read_text(encoding="utf-8")
    meta = yaml.safe_load(readme.split("---\n")[1])
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == gradio.__version__ and meta["app_file"] == "app.py"
    assert meta["models"] == ["acme/base-llama", PRUNED]  # dense defaults to the base model in hfprune.json
    assert meta["title"] and meta["emoji"] and meta["colorFrom"] and meta["colorTo"] and meta["license"]
    assert 0 < len(meta["short_description"]) <= SHORT_DESCRIPTION_MAX
    assert f"`{PRUNED}`" in readme and "$pruned" not in readme
    variables = api.get_space_variables(SPACE)
    assert {k: v.value for k, v in variables.items()} == {
        "DENSE_MODEL": "acme/base-llama",
        "PRUNED_MODEL": PRUNED,
        "PRUNED_RUNTIME": "pytorch",
    }
    assert write_hub.spaces[SPACE]["sdk"] == "gradio" and write_hub.spaces[SPACE]["hardware"] == "t4-small"


def test_deploying_again_updates_the_space_and_changes_nothing_when_nothing_changed(write_hub, pruned_on_hub):
    first = deploy_space(PRUNED)
    second = deploy_space(PRUNED, dense="acme/other-base", space_id="tester-org/compare", private=True)
    again = deploy_space(PRUNED, dense="acme/other-base", space_id="tester-org/compare")

    assert first.url.endswith(f"/spaces/{SPACE}") and second.space_id == "tester-org/compare"
    assert again.commit == second.commit  # nothing changed: huggingface_hub makes no empty commit
    assert write_hub.private["spaces/tester-org/compare"] is True
    assert HfApi().get_space_variables("tester-org/compare")["DENSE_MODEL"].value == "acme/other-base"


def test_deploy_refuses_what_it_cannot_deploy_with_a_clear_message(write_hub, pruned_on_hub):
    with pytest.raises(PrunedRepoNotFoundError, match="hfprune push"):
        deploy_space("tester/never-pushed")
    with pytest.raises(RepoPermissionError, match="cannot write"):
        deploy_space(PRUNED, space_id="someone-else/demo")
    with pytest.raises(UnknownHardwareError, match="cpu-basic"):
        deploy_space(PRUNED, hardware="quantum-xl")
    code, _, err = run(["space", "deploy", "--pruned", "not-a-repo-id"])
    assert code == 2 and err.startswith("error: 'not-a-repo-id' is not a Hub repo id")


def test_a_base_model_that_was_a_local_folder_needs_dense(write_hub, tmp_path):
    folder = make_pruned_folder(tmp_path / "pruned")
    record = (folder / "hfprune.json").read_text().replace('"acme/base-llama"', '"/home/me/models/base"')
    (folder / "hfprune.json").write_text(record)
    publish(write_hub.mirror_root, "tester/local-base", folder)

    with pytest.raises(DenseModelUnknownError, match="--dense"):
        deploy_space("tester/local-base")


def test_the_space_readme_template_is_valid_front_matter():
    meta = front_matter((asset_path("spaces/compare") / "README.md").read_text(encoding="utf-8"))

    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert len(meta["short_description"]) <= SHORT_DESCRIPTION_MAX


def test_the_deploy_uploads_every_module_and_requirement_of_the_page():
    """app.py imports its compare_*.py siblings: a module left off SPACE_FILES would break the Space's start."""
    folder = asset_path("spaces/compare")
    needed = {path.name for pattern in ("*.py", "*.txt") for path in folder.glob(pattern)}

    assert "app.py" in needed and len(needed) > 2
    assert set(SPACE_FILES) == needed and len(SPACE_FILES) == len(needed)
