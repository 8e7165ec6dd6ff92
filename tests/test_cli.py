"""``hfprune prune`` end to end: outputs, metadata, and every bad input failing cleanly with nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

import hfprune
from hfprune.cli import main

from .data_dirs import data_dir
from .hub_mirror import publish
from .model_factory import make_model, make_tokenizer, save_model_folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    data = data_dir()
    assert data is not None
    texts = []
    for lang in ("en", "sw", "de"):
        texts += (data / "calib" / "ntrex" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()[:300]
    folder = tmp_path_factory.mktemp("model") / "tiny-llama"
    return save_model_folder(make_model("llama"), make_tokenizer(texts), folder)


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_prune_writes_a_complete_reloadable_folder(model_dir, tmp_path, capsys):
    out = tmp_path / "pruned"
    code, stdout, _ = run(
        [
            "prune",
            str(model_dir),
            "--method",
            "wanda",
            "--sparsity",
            "0.5",
            "--calib",
            "en:4,sw:4",
            "--seqlen",
            "64",
            "--seed",
            "3",
            "--out",
            str(out),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0
    assert "down_proj" in stdout and "50.00%" in stdout and "peak memory" in stdout
    files = {p.name for p in out.iterdir()}
    assert {"config.json", "generation_config.json", "hfprune.json", "tokenizer.json", "model.safetensors"} <= files
    meta = json.loads((out / "hfprune.json").read_text())
    assert meta["method"] == "wanda" and meta["target_sparsity"] == 0.5 and meta["seed"] == 3
    assert meta["calibration"]["mix"] == "en:4,sw:4" and len(meta["calibration"]["sample_hashes"]) == 8
    source = meta["calibration"]["source"]  # the default source: the first data root holding each language
    assert source["kind"] == "default" and set(source["languages"]) >= {"en", "sw"}
    assert all(not name.startswith("/") for name in source["files"])  # portable names, no path of this machine
    assert abs(meta["achieved_sparsity"] - 0.5) < 1e-9
    assert {"torch", "transformers", "hfprune"} <= set(meta["versions"])
    # the command as given to main(argv), with this machine's absolute paths reduced to their names
    assert meta["command"] == [
        "hfprune",
        "prune",
        model_dir.name,
        "--method",
        "wanda",
        "--sparsity",
        "0.5",
        "--calib",
        "en:4,sw:4",
        "--seqlen",
        "64",
        "--seed",
        "3",
        "--out",
        "pruned",
        "--quiet",
    ]
    assert len(meta["layers"]) == 14 and all(abs(l["achieved"] - 0.5) < 1e-9 for l in meta["layers"])
    model = AutoModelForCausalLM.from_pretrained(out)
    zeros = sum(int((p == 0).sum()) for n, p in model.named_parameters() if "layers" in n and n.endswith("proj.weight"))
    assert zeros == sum(l["zeros"] for l in meta["layers"])


def test_same_command_gives_the_same_mask(model_dir, tmp_path, capsys):
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        args = [
            "prune",
            str(model_dir),
            "--method",
            "sparsegpt",
            "--structure",
            "2:4",
            "--calib",
            "en:3,de:3",
            "--seqlen",
            "32",
            "--out",
            str(out),
            "--quiet",
        ]
        assert run(args, capsys)[0] == 0
        outs.append(out)
    a = (outs[0] / "model.safetensors").read_bytes()
    b = (outs[1] / "model.safetensors").read_bytes()
    assert a == b
    ha = json.loads((outs[0] / "hfprune.json").read_text())["calibration"]["sample_hashes"]
    hb = json.loads((outs[1] / "hfprune.json").read_text())["calibration"]["sample_hashes"]
    assert ha == hb


def test_json_output_is_machine_readable(model_dir, tmp_path, capsys):
    code, stdout, _ = run(
        ["prune", str(model_dir), "--method", "magnitude", "--sparsity", "0.3", "--out", str(tmp_path / "o"), "--json"],
        capsys,
    )
    assert code == 0
    data = json.loads(stdout)
    assert data["method"] == "magnitude" and data["calibration"] == {"used": False}
    assert abs(data["achieved_sparsity"] - 0.3) < 1e-3


def test_overwrite_replaces_only_what_hfprune_wrote(model_dir, tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = run(["prune", str(model_dir), "--method", "magnitude", "--out", str(out)], capsys)
    assert code == 2 and "already exists" in err and "--overwrite" in err
    code, _, err = run(["prune", str(model_dir), "--method", "magnitude", "--out", str(out), "--overwrite"], capsys)
    assert code == 2 and "was not written by hfprune" in err  # a user's folder is never deleted
    assert (out / "keep.txt").read_text() == "mine" and sorted(p.name for p in out.iterdir()) == ["keep.txt"]

    pruned = tmp_path / "pruned"
    assert run(["prune", str(model_dir), "--method", "magnitude", "--out", str(pruned), "--quiet"], capsys)[0] == 0
    first = json.loads((pruned / "hfprune.json").read_text())["target_sparsity"]
    args = ["prune", str(model_dir), "--method", "magnitude", "--sparsity", "0.3", "--out", str(pruned), "--quiet"]
    assert run(args, capsys)[0] == 2  # an hfprune output too needs --overwrite
    assert run([*args, "--overwrite"], capsys)[0] == 0
    assert first == 0.5 and json.loads((pruned / "hfprune.json").read_text())["target_sparsity"] == 0.3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o", "pruned"]  # no temporary or old folder left


def test_model_without_blocks_lists_its_modules():
    from hfprune.errors import UnsupportedArchitectureError
    from hfprune.models import find_block_stacks

    with pytest.raises(UnsupportedArchitectureError, match="module types seen: .*Linear"):
        find_block_stacks(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU()))


def test_unknown_hub_model_and_revision(local_hub, model_dir, tmp_path, capsys):
    publish(local_hub.mirror_root, "acme/tiny", model_dir)
    code, _, err = run(["prune", "acme/nope", "--method", "magnitude", "--out", str(tmp_path / "a")], capsys)
    assert code == 2 and "acme/nope" in err
    code, _, err = run(
        ["prune", "acme/tiny", "--revision", "no-such-branch", "--method", "magnitude", "--out", str(tmp_path / "b")],
        capsys,
    )
    assert code == 2 and "no-such-branch" in err
    code, stdout, _ = run(
        ["prune", "acme/tiny", "--method", "magnitude", "--out", str(tmp_path / "c"), "--quiet"], capsys
    )
    assert code == 0
    meta = json.loads((tmp_path / "c" / "hfprune.json").read_text())
    assert meta["base_model"]["id"] == "acme/tiny" and len(meta["base_model"]["commit"]) == 40
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs, so the disk really fills up (needs root, as on our machines and CI)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    assert done.returncode == 0, f"cannot mount a tmpfs to fill: {done.stderr.decode()}"
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_full_disk_leaves_nothing_behind(model_dir, tiny_disk, capsys):
    assert (model_dir / "model.safetensors").stat().st_size > 256 * 1024
    out = tiny_disk / "pruned"
    code, _, err = run(["prune", str(model_dir), "--method", "magnitude", "--out", str(out), "--quiet"], capsys)
    assert code == 2 and "disk filled up" in err
    assert list(tiny_disk.iterdir()) == []


def test_console_script_runs(model_dir, tmp_path):
    """The installed entry point, in a fresh process, as a user types it."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hfprune",
            "prune",
            str(model_dir),
            "--method",
            "wanda",
            "--calib",
            "en:2",
            "--seqlen",
            "32",
            "--out",
            str(tmp_path / "o"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["method"] == "wanda"


def test_run_takes_every_prune_option_end_to_end(model_dir, tmp_path, capsys):
    """`hfprune run` shares `prune`'s options: a layerwise profile, the independent pipeline, batch size 1."""
    out = tmp_path / "run"
    code, stdout, err = run(
        [
            "run",
            str(model_dir),
            "--method",
            "wanda",
            "--sparsity",
            "0.5",
            "--calib",
            "en:2,sw:2",
            "--seqlen",
            "32",
            "--sparsity-profile",
            "owl",
            "--owl-lambda",
            "0.1",
            "--pipeline",
            "independent",
            "--batch-size",
            "1",
            "--device",
            "cpu",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0, err
    meta = json.loads((out / "hfprune.json").read_text())
    assert meta["pipeline"] == "independent" and meta["sparsity_profile"]["profile"] == "owl"
    assert meta["sparsity_profile"]["delta"] == 0.1
    blocks = meta["sparsity_profile"]["blocks"]
    assert len(set(blocks.values())) > 1 and abs(meta["achieved_sparsity"] - 0.5) < 0.01
    assert meta["command"][:2] == ["hfprune", "run"] and "--batch-size" in meta["command"]
    assert (out / "README.md").is_file() and f"card: {out / 'README.md'}" in stdout


def test_prune_run_and_sweep_share_one_declaration_of_the_pruning_options():
    from hfprune.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command").choices
    options = {
        name: {flag for action in sub[name]._actions for flag in action.option_strings}
        for name in ("prune", "run", "sweep")
    }
    only_prune = options["prune"] - options["run"]
    assert only_prune == {"--quiet"}, only_prune  # run always reports as it goes
    assert options["prune"] - options["sweep"] == {"--quiet", "--method"}  # a sweep takes --methods (and heals too)
    assert {"--heal", "--heal-tokens", "--heal-calib", "--heal-mode", "--heal-lr"} <= options["sweep"]
    for flag in (
        "--sparsity-profile",
        "--pipeline",
        "--batch-size",
        "--offload",
        "--stream",
        "--device",
        "--percdamp",
        "--mw-lambda",
    ):
        assert all(flag in options[name] for name in ("prune", "run", "sweep")), flag
    defaults = {
        name: sub[name].parse_args(
            ["M", "--out", "o", "--calib", "en:1", "--eval-langs", "en", "--methods", "wanda"]
            if name == "sweep"
            else ["M", "--out", "o"]
        )
        for name in ("prune", "run", "sweep")
    }
    for option in ("device", "batch_size", "pipeline", "seqlen", "seed", "sparsity_profile", "max_shard_size"):
        assert len({getattr(defaults[name], option) for name in defaults}) == 1, option


def test_calibrating_beyond_a_rotary_models_positions_warns_in_one_line(tmp_path, capsys):
    import transformers as T

    config = T.LlamaConfig(
        vocab_size=320,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=32,
    )
    texts = ["the quick brown fox jumps over the lazy dog"] * 200
    folder = save_model_folder(AutoModelForCausalLM.from_config(config), make_tokenizer(texts), tmp_path / "rope32")
    source = tmp_path / "texts"
    source.mkdir()
    (source / "en.txt").write_text("\n".join(texts))
    code, _, err = run(
        [
            "prune",
            str(folder),
            "--calib",
            "en:2",
            "--calib-source",
            str(source),
            "--seqlen",
            "64",
            "--out",
            str(tmp_path / "o"),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "--seqlen 64 is beyond this model's max_position_embeddings (32)" in warnings[0]


def test_the_library_warns_when_asked_to_prune_nothing():
    from hfprune.errors import HfpruneWarning

    with pytest.warns(HfpruneWarning, match="sparsity 0 prunes nothing"):
        result = hfprune.prune(make_model("llama"), method="magnitude", sparsity=0.0)
    assert result.sparsity == 0.0
