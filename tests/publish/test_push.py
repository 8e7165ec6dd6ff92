"""hfprune push against the Hub write emulator, read back through olah and loaded with plain transformers."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from hfprune.errors import (
    HfpruneError,
    InvalidRepoIdError,
    InvalidTokenError,
    MissingCardError,
    NotAPrunedFolderError,
    NotLoggedInError,
    RepoPermissionError,
    SecretInFolderError,
    UploadInterruptedError,
)
from hfprune.hub import local as local_hub
from hfprune.hub.push import push_folder

from ..hub_mirror import point_hub_at, publish
from .conftest import TEST_TOKEN, make_pruned_folder


def commits_on(repo: Path, ref: str = "main") -> list[str]:
    done = subprocess.run(["git", "rev-list", ref], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.split()


def error_chain(error: BaseException | None) -> str:
    parts = []
    while error is not None:
        parts.append(f"{type(error).__name__}: {error} {error.args!r}")
        error = error.__cause__ or error.__context__
    return "\n".join(parts)


def linear_sparsity(state: dict[str, torch.Tensor]) -> float:
    weights = [t for name, t in state.items() if ".layers." in name and name.endswith("proj.weight")]
    return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)


def test_push_is_one_verified_commit_that_transformers_loads_with_the_same_weights(
    write_hub, olah_server, pruned_folder, tmp_path, monkeypatch
):
    repo = write_hub.repo("tester/tiny-pruned")

    result = push_folder(pruned_folder, "tester/tiny-pruned")

    assert result.url == f"{write_hub.url}/tester/tiny-pruned" and result.files == 7
    assert commits_on(repo) == [result.commit, *commits_on(repo, f"{result.commit}~1")]
    assert len(commits_on(repo)) == 2  # the repo's initial commit + exactly one upload commit
    applied = write_hub.commits[-1]["files"]
    assert sorted(applied) == sorted(
        p.name for p in pruned_folder.iterdir() if not p.name.startswith(".")
    )  # no dot-files
    # read back straight from olah, as any user would download it
    point_hub_at(monkeypatch, olah_server.url, tmp_path / "fresh_home")
    model = AutoModelForCausalLM.from_pretrained("tester/tiny-pruned", revision="main")
    local = load_file(pruned_folder / "model.safetensors")
    state = model.state_dict()
    for name, tensor in local.items():
        assert torch.equal(state[name], tensor), name
    sparsity = json.loads((pruned_folder / "hfprune.json").read_text())["achieved_sparsity"]
    assert linear_sparsity(state) == pytest.approx(sparsity) and 0.45 < sparsity < 0.55
    assert Path(constants.HF_HUB_CACHE).is_relative_to(tmp_path / "fresh_home")


def test_pushing_the_same_folder_again_adds_no_commit(write_hub, pruned_folder):
    first = push_folder(pruned_folder, "tester/again")
    second = push_folder(pruned_folder, "tester/again")
    assert second.commit == first.commit
    assert len(commits_on(write_hub.repo("tester/again"))) == 2


def test_dropped_connection_during_commit_publishes_nothing_and_a_rerun_succeeds(write_hub, pruned_folder):
    write_hub.drop_next_commit = True
    with pytest.raises(UploadInterruptedError, match="does not claim anything was published") as caught:
        push_folder(pruned_folder, "tester/flaky")
    repo = write_hub.repo("tester/flaky")
    assert sorted(local_hub.tree_manifest(repo, "main")) == [".gitattributes"]  # nothing partial on main
    assert TEST_TOKEN not in error_chain(caught.value)

    result = push_folder(pruned_folder, "tester/flaky")

    assert "model.safetensors" in local_hub.tree_manifest(repo, result.commit)
    assert len(commits_on(repo)) == 2


def test_create_pr_leaves_main_alone(write_hub, pruned_folder):
    push_folder(pruned_folder, "tester/prs")
    changed = make_pruned_folder(pruned_folder.parent / "denser", sparsity=0.3)
    main_before = commits_on(write_hub.repo("tester/prs"))

    result = push_folder(changed, "tester/prs", create_pr=True)

    assert result.pr_url == f"{write_hub.url}/tester/prs/discussions/1" and result.url == result.pr_url
    repo = write_hub.repo("tester/prs")
    assert commits_on(repo) == main_before
    assert local_hub.resolve(repo, "refs/pr/1") == result.commit
    assert local_hub.read_blob(repo, result.commit, "hfprune.json") == (changed / "hfprune.json").read_bytes()


def test_revision_commits_to_a_new_branch(write_hub, pruned_folder):
    result = push_folder(pruned_folder, "tester-org/branchy", revision="experiment", private=True)
    repo = write_hub.repo("tester-org/branchy")
    assert local_hub.resolve(repo, "refs/heads/experiment") == result.commit
    assert sorted(local_hub.tree_manifest(repo, "main")) == [".gitattributes"]
    assert result.url.endswith("/tester-org/branchy/tree/experiment")
    assert write_hub.private["tester-org/branchy"] is True


def test_no_token_says_how_to_log_in(write_hub, pruned_folder, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(NotLoggedInError, match="hf auth login"):
        push_folder(pruned_folder, "tester/nologin")
    assert not write_hub.repo("tester/nologin").exists()


def test_wrong_token_is_rejected_without_being_shown(write_hub, pruned_folder, monkeypatch):
    wrong = "hf_WrongTokenThatMustNotAppear000000000"
    monkeypatch.setenv("HF_TOKEN", wrong)
    with pytest.raises(InvalidTokenError, match="hf auth login") as caught:
        push_folder(pruned_folder, "tester/badtoken")
    assert wrong not in error_chain(caught.value)


def test_someone_elses_repo_gives_a_clear_permission_error(write_hub, olah_server, pruned_folder, tmp_path):
    publish(olah_server.mirror_root, "someone-else/their-model", make_pruned_folder(tmp_path / "theirs", seed=3))
    before = commits_on(write_hub.repo("someone-else/their-model"))

    with pytest.raises(RepoPermissionError) as caught:
        push_folder(pruned_folder, "someone-else/their-model")

    message = str(caught.value)
    assert "someone-else" in message and "tester/their-model" in message and "write access" in message
    assert commits_on(write_hub.repo("someone-else/their-model")) == before
    assert TEST_TOKEN not in error_chain(caught.value)


def test_folder_without_hfprune_json_or_card_is_refused_unless_forced(write_hub, pruned_folder):
    (pruned_folder / "README.md").unlink()
    with pytest.raises(MissingCardError, match="hfprune card"):
        push_folder(pruned_folder, "tester/nocard")
    (pruned_folder / "hfprune.json").unlink()
    with pytest.raises(NotAPrunedFolderError, match="--force"):
        push_folder(pruned_folder, "tester/nocard")
    assert not write_hub.repo("tester/nocard").exists()

    result = push_folder(pruned_folder, "tester/nocard", force=True)
    assert "model.safetensors" in local_hub.tree_manifest(write_hub.repo("tester/nocard"), result.commit)


def test_a_folder_holding_the_token_is_never_pushed(write_hub, pruned_folder):
    (pruned_folder / "notes.txt").write_text(f"export HF_TOKEN={TEST_TOKEN}\n")
    with pytest.raises(SecretInFolderError, match="notes.txt") as caught:
        push_folder(pruned_folder, "tester/leaky", force=True)
    assert TEST_TOKEN not in str(caught.value)
    assert not write_hub.repo("tester/leaky").exists()


def test_malformed_repo_id_is_refused_before_any_request(write_hub, pruned_folder):
    with pytest.raises(InvalidRepoIdError, match="OWNER/NAME"):
        push_folder(pruned_folder, "no-slash")
    assert write_hub.commits == []


def test_cli_push_prints_the_url_and_never_the_token(write_hub, pruned_folder, capsys, caplog):
    from .cli_runner import run_cli

    caplog.set_level(logging.DEBUG)
    code = run_cli(["push", str(pruned_folder), "tester/cli-push", "--commit-message", "first version"])

    out = capsys.readouterr()
    assert code == 0, out.err
    assert f"{write_hub.url}/tester/cli-push" in out.out and "verified" in out.out
    assert local_hub._git(write_hub.repo("tester/cli-push"), "log", "-1", "--format=%s").strip() == "first version"
    everything = out.out + out.err + caplog.text
    assert TEST_TOKEN not in everything
    for path in pruned_folder.rglob("*"):
        if path.is_file():
            assert TEST_TOKEN.encode() not in path.read_bytes(), path


def test_cli_push_error_is_one_line_with_exit_code_2(write_hub, pruned_folder, capsys, monkeypatch):
    from .cli_runner import run_cli

    monkeypatch.setenv("HF_TOKEN", "hf_invalid_for_cli_test_000000000000")
    code = run_cli(["push", str(pruned_folder), "tester/cli-bad"])

    err = capsys.readouterr().err
    assert code == HfpruneError.exit_code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "hf auth login" in err
    assert "hf_invalid_for_cli_test" not in err


def test_private_on_an_existing_repo_warns_that_visibility_is_unchanged(write_hub, pruned_folder, capsys):
    push_folder(pruned_folder, "tester/already-public")
    assert write_hub.private["tester/already-public"] is False

    result = push_folder(pruned_folder, "tester/already-public", private=True)

    assert write_hub.private["tester/already-public"] is False  # the Hub does not change it, and neither do we
    assert len(result.warnings) == 1 and "already existed" in result.warnings[0]
    assert "--private changed nothing" in result.warnings[0]
    assert push_folder(pruned_folder, "tester/fresh-private", private=True).warnings == []


def _sharded_folder(folder: Path, seed: int) -> Path:
    """A pruned folder whose weights are several shards plus an index (what ``prune --stream`` writes)."""
    import hfprune

    from ..model_factory import make_model, make_tokenizer

    model = make_model("llama", seed=seed)
    result = hfprune.prune(model, method="magnitude", sparsity=0.3)
    tokenizer = make_tokenizer(["the quick brown fox jumps over the lazy dog"] * 20)
    hfprune.save_pruned(model, tokenizer, result, folder, max_shard_size="150KB")
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# pruned, sharded\n")
    assert len(list(folder.glob("model-*.safetensors"))) > 1 and (folder / "model.safetensors.index.json").is_file()
    return folder


def test_a_push_makes_the_repo_equal_the_folder_and_users_get_the_new_weights(
    write_hub, olah_server, pruned_folder, tmp_path, monkeypatch
):
    """Push A (one model.safetensors), then B (shards + index): A's file must go, or from_pretrained loads it."""
    first = push_folder(pruned_folder, "tester/changing")
    sharded = _sharded_folder(tmp_path / "sharded", seed=11)

    second = push_folder(sharded, "tester/changing")

    assert first.removed == [] and second.removed == ["model.safetensors"]
    repo = write_hub.repo("tester/changing")
    expected = {p.name for p in sharded.iterdir() if not p.name.startswith(".")} | {".gitattributes"}
    assert set(local_hub.tree_manifest(repo, second.commit)) == expected
    assert write_hub.commits[-1]["oid"] == second.commit  # one commit added the shards and removed the old file
    point_hub_at(monkeypatch, olah_server.url, tmp_path / "fresh_home")
    model = AutoModelForCausalLM.from_pretrained("tester/changing", revision="main")
    state = model.state_dict()
    for shard in sharded.glob("model-*.safetensors"):
        for name, tensor in load_file(shard).items():
            assert torch.equal(state[name], tensor), name


def test_a_local_hub_push_removes_stale_files_too(pruned_folder, tmp_path):
    from hfprune.hub.local_push import push_to_local_hub

    root = tmp_path / "hub"
    push_to_local_hub(pruned_folder, root, "tester/local-changing")
    sharded = _sharded_folder(tmp_path / "sharded", seed=12)
    second = push_to_local_hub(sharded, root, "tester/local-changing")
    assert second.removed == ["model.safetensors"]
    files = local_hub.tree_manifest(local_hub.repo_dir(root, "tester/local-changing"), "main")
    assert set(files) == {p.name for p in sharded.iterdir() if not p.name.startswith(".")} | {".gitattributes"}


def test_a_remote_file_the_folder_lacks_fails_verification():
    from hfprune.errors import PushVerificationError
    from hfprune.hub.manifest import FileEntry, require_identical

    local = {"a.json": FileEntry(size=2, git_blob_id="x")}
    remote = {
        **local,
        ".gitattributes": FileEntry(size=1, git_blob_id="y"),
        "old.safetensors": FileEntry(size=9, sha256="z"),
    }
    with pytest.raises(PushVerificationError, match="old.safetensors: on the remote but not in the folder"):
        require_identical(local, remote, "tester/x", "0" * 40)
    require_identical(local, {k: v for k, v in remote.items() if k != "old.safetensors"}, "tester/x", "0" * 40)
