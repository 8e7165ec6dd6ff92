"""hfprune.hub against a real Hub server (olah on loopback) and, for gated repos, a minimal stand-in."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from hfprune import hub
from hfprune.errors import (
    GatedModelError,
    HubUnavailableError,
    ModelNotFoundError,
    RevisionNotFoundError,
    UnsafeWeightsError,
)

from .hub_mirror import OlahServer, free_port, point_hub_at, publish

SECRET = "hf_NeverShowThisTokenAnywhere0123456789"


def make_tiny_llama(folder: Path, seed: int) -> Path:
    """A random-init Llama small enough to publish in milliseconds, plus a decoy pickle and a card."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    (folder / "pytorch_model.bin").write_bytes(b"decoy: a pickle must never be downloaded")
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# tiny\n")
    return folder


def error_chain_text(error: BaseException) -> str:
    """The messages of an exception and of everything it was raised from."""
    texts = []
    while error is not None:
        texts.append(f"{type(error).__name__}: {error} {error.args!r}")
        error = error.__cause__ or error.__context__
    return "\n".join(texts)


def test_pull_fetches_safetensors_and_configs_but_never_pickles(local_hub: OlahServer, tmp_path: Path):
    source = make_tiny_llama(tmp_path / "src", seed=0)
    publish(local_hub.mirror_root, "acme/tiny-main", source)

    folder = hub.pull("acme/tiny-main")

    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        "generation_config.json",
        "model.safetensors",
    ]
    assert Path(constants.HF_HUB_CACHE) in folder.parents  # went through the Hub cache under HF_HOME
    model = AutoModelForCausalLM.from_pretrained(folder)
    expected = load_file(source / "model.safetensors")
    state = model.state_dict()
    assert expected.keys() <= state.keys()
    for name, tensor in expected.items():
        assert torch.equal(state[name], tensor), name


def test_pull_at_commit_and_tag_returns_that_version(local_hub: OlahServer, tmp_path: Path):
    first = publish(local_hub.mirror_root, "acme/tiny-versions", make_tiny_llama(tmp_path / "v1", seed=1), tag="v1")
    publish(local_hub.mirror_root, "acme/tiny-versions", make_tiny_llama(tmp_path / "v2", seed=2))
    v1_weights = load_file(tmp_path / "v1" / "model.safetensors")
    v2_weights = load_file(tmp_path / "v2" / "model.safetensors")
    name = "model.embed_tokens.weight"

    at_commit = hub.pull("acme/tiny-versions", revision=first)
    at_tag = hub.pull("acme/tiny-versions", revision="v1")
    at_main = hub.pull("acme/tiny-versions")

    assert at_commit.name == first and at_tag == at_commit
    assert torch.equal(load_file(at_tag / "model.safetensors")[name], v1_weights[name])
    assert at_main != at_commit
    assert torch.equal(load_file(at_main / "model.safetensors")[name], v2_weights[name])
    assert not torch.equal(v1_weights[name], v2_weights[name])


def test_unknown_repo_raises_model_not_found_with_login_hint(local_hub: OlahServer):
    with pytest.raises(ModelNotFoundError) as caught:
        hub.pull("acme/does-not-exist", token=SECRET)
    message = str(caught.value)
    assert "acme/does-not-exist" in message and "hf auth login" in message and "HF_TOKEN" in message
    assert SECRET not in error_chain_text(caught.value)


@pytest.mark.parametrize("revision", ["no-such-branch", "0" * 40])
def test_unknown_revision_raises_revision_not_found(local_hub: OlahServer, tmp_path: Path, revision: str):
    publish(local_hub.mirror_root, "acme/tiny-revs", make_tiny_llama(tmp_path / "src", seed=0))
    with pytest.raises(RevisionNotFoundError, match=revision) as caught:
        hub.pull("acme/tiny-revs", revision=revision, token=SECRET)
    assert SECRET not in error_chain_text(caught.value)


def test_repo_with_only_pickled_weights_is_refused(local_hub: OlahServer, tmp_path: Path):
    source = make_tiny_llama(tmp_path / "src", seed=0)
    (source / "model.safetensors").unlink()
    publish(local_hub.mirror_root, "acme/pickles-only", source)

    with pytest.raises(UnsafeWeightsError, match="safetensors"):
        hub.pull("acme/pickles-only")
    downloaded = list(Path(constants.HF_HUB_CACHE).rglob("*.bin"))
    assert downloaded == []


def test_offline_mode_with_nothing_cached_raises_hub_unavailable(local_hub, tmp_path, monkeypatch):
    publish(local_hub.mirror_root, "acme/tiny-offline", make_tiny_llama(tmp_path / "src", seed=0))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    with pytest.raises(HubUnavailableError, match="HF_HUB_OFFLINE"):
        hub.pull("acme/tiny-offline")


def test_offline_mode_uses_the_cached_snapshot(local_hub, tmp_path, monkeypatch):
    publish(local_hub.mirror_root, "acme/tiny-cached", make_tiny_llama(tmp_path / "src", seed=0))
    online = hub.pull("acme/tiny-cached")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    assert hub.pull("acme/tiny-cached") == online


def test_unreachable_hub_raises_hub_unavailable(monkeypatch, tmp_path: Path):
    point_hub_at(monkeypatch, f"http://127.0.0.1:{free_port()}", tmp_path / "hf_home")
    with pytest.raises(HubUnavailableError, match="could not be reached") as caught:
        hub.pull("acme/anything", token=SECRET)
    assert SECRET not in error_chain_text(caught.value)


# --- gated repos: olah cannot represent them ------------------------------------------------------
class _GatedHubStandIn(http.server.BaseHTTPRequestHandler):
    """A STAND-IN, not a Hub: answers every request as huggingface.co answers for a gated repo.

    olah's metadata always says ``gated: false`` and it has no notion of licence acceptance, so this handler
    replays the Hub's reply to a user who has not accepted the licence: status 401 with
    ``X-Error-Code: GatedRepo``. It records the Authorization headers it saw.
    """

    seen_authorization: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.seen_authorization.append(self.headers.get("authorization", ""))
        body = b'{"error":"Access to model acme/gated is restricted. You must have access to it."}'
        self.send_response(401)
        self.send_header("X-Error-Code", "GatedRepo")
        self.send_header("X-Error-Message", "Access to model acme/gated is restricted.")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def gated_hub(monkeypatch, tmp_path: Path) -> Iterator[type[_GatedHubStandIn]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _GatedHubStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _GatedHubStandIn.seen_authorization = []
    point_hub_at(monkeypatch, f"http://127.0.0.1:{server.server_port}", tmp_path / "hf_home")
    try:
        yield _GatedHubStandIn
    finally:
        server.shutdown()
        server.server_close()


def test_gated_repo_raises_gated_model_error_without_leaking_the_token(gated_hub):
    with pytest.raises(GatedModelError) as caught:
        hub.pull("acme/gated", token=SECRET)

    message = str(caught.value)
    assert "https://huggingface.co/acme/gated" in message and "hf auth login" in message
    assert SECRET not in error_chain_text(caught.value)
    assert f"Bearer {SECRET}" in gated_hub.seen_authorization  # the token was really sent, just never shown


# --- resolve_model_dir ----------------------------------------------------------------------------
def test_resolve_model_dir_returns_a_local_folder_as_is(tmp_path: Path):
    assert hub.resolve_model_dir(tmp_path) == tmp_path
    assert hub.resolve_model_dir(str(tmp_path)) == tmp_path


def test_resolve_model_dir_refuses_a_revision_for_a_local_folder(tmp_path: Path):
    with pytest.raises(RevisionNotFoundError, match="local folder"):
        hub.resolve_model_dir(tmp_path, revision="v1")


def test_resolve_model_dir_pulls_a_repo_id(local_hub: OlahServer, tmp_path: Path):
    publish(local_hub.mirror_root, "acme/tiny-resolve", make_tiny_llama(tmp_path / "src", seed=0))
    folder = hub.resolve_model_dir("acme/tiny-resolve")
    assert (folder / "model.safetensors").is_file()


CONFIG_CODE = """from transformers import LlamaConfig


class CustomLlamaConfig(LlamaConfig):
    model_type = "hfprune-custom-llama"
"""
MODEL_CODE = """from transformers import LlamaForCausalLM

from .configuration_custom import CustomLlamaConfig


class CustomLlamaForCausalLM(LlamaForCausalLM):
    config_class = CustomLlamaConfig
"""


def test_trust_remote_code_fetches_the_repos_code_from_the_hub(local_hub, tmp_path):
    """A repo whose architecture is its own Python code: pruned with --trust-remote-code, refused without."""
    import json as json_module

    from hfprune.cli.main import main

    from .model_factory import make_model, make_tokenizer, save_model_folder

    folder = save_model_folder(
        make_model("llama", seed=4), make_tokenizer(["the quick brown fox"] * 20), tmp_path / "src"
    )
    config = json_module.loads((folder / "config.json").read_text())
    config.update(
        model_type="hfprune-custom-llama",
        architectures=["CustomLlamaForCausalLM"],
        auto_map={
            "AutoConfig": "configuration_custom.CustomLlamaConfig",
            "AutoModelForCausalLM": "modeling_custom.CustomLlamaForCausalLM",
        },
    )
    (folder / "config.json").write_text(json_module.dumps(config))
    (folder / "configuration_custom.py").write_text(CONFIG_CODE)
    (folder / "modeling_custom.py").write_text(MODEL_CODE)
    publish(local_hub.mirror_root, "acme/custom-code", folder)

    assert main(["prune", "acme/custom-code", "--method", "magnitude", "--out", str(tmp_path / "refused")]) == 2
    assert not (tmp_path / "refused").exists()
    code = main(
        ["prune", "acme/custom-code", "--method", "magnitude", "--trust-remote-code", "--out", str(tmp_path / "o")]
    )

    assert code == 0
    pruned = AutoModelForCausalLM.from_pretrained(tmp_path / "o", trust_remote_code=True)
    assert type(pruned).__name__ == "CustomLlamaForCausalLM"
    weights = load_file(tmp_path / "o" / "model.safetensors")
    down = next(t for n, t in weights.items() if n.endswith("down_proj.weight"))
    assert abs(float((down == 0).float().mean()) - 0.5) < 0.01
