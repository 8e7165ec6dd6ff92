"""``hfprune prune`` end to end: outputs, metadata, and every bad input failing cleanly with nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, ViTConfig, ViTModel

from hfprune import constants as paths
from hfprune.cli import main

from .hub_mirror import publish
from .model_factory import make_model, make_tokenizer, save_model_folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    data = paths.default_data_dir()
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
    assert meta["calibration"]["source"]["kind"] == "folder"
    assert abs(meta["achieved_sparsity"] - 0.5) < 1e-9
    assert {"torch", "transformers", "hfprune"} <= set(meta["versions"])
    assert meta["command"][:2] == ["hfprune", "prune"] or meta["command"][0] == "hfprune"
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


def test_overwrite_replaces_only_when_asked(model_dir, tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = run(["prune", str(model_dir), "--method", "magnitude", "--out", str(out)], capsys)
    assert code == 2 and "already exists" in err and "--overwrite" in err
    assert (out / "keep.txt").read_text() == "mine"
    code, _, _ = run(
        ["prune", str(model_dir), "--method", "magnitude", "--out", str(out), "--overwrite", "--quiet"], capsys
    )
    assert code == 0 and not (out / "keep.txt").exists() and (out / "hfprune.json").exists()


BAD_INPUTS = [
    (["--sparsity", "1.0"], "sparsity must be in [0, 1)"),
    (["--sparsity", "-0.2"], "sparsity must be in [0, 1)"),
    (["--structure", "4:4"], "N must be at least 1 and smaller than M"),
    (["--structure", "2:3"], "does not divide the input width"),
    (["--structure", "two:four"], "must be 'unstructured' or N:M"),
    (["--calib", "en:"], "must be LANG:N_SAMPLES"),
    (["--calib", "en:-3"], "positive integer"),
    (["--calib", "xx:10"], "'xx' is not a language code"),
    (["--calib", "en:2,en:2"], "names en twice"),
    (["--calib", "en:100000", "--seqlen", "512"], "room for"),
    (["--calib", "en:2", "--calib-source", "./missing-folder/"], "neither an existing folder"),
    (["--calib", "en:2", "--percdamp", "0.1"], "do not apply to --method wanda"),
    # raised by the engine and the library, printed by the CLI like any other user error
    (["--calib", "en:2", "--batch-size", "0"], "batch size must be at least 1"),
    (["--calib", "en:2", "--seqlen", "1"], "--seqlen must be at least 2"),
    (["--calib", "en:2", "--sparsity-profile", "owl", "--owl-lambda", "1.5"], "must be in [0, 1)"),
    (["--calib", "en:2", "--owl-m", "3"], "need --sparsity-profile owl or crosslingual"),
    (["--calib", "en:2", "--sparsity-profile", "owl", "--structure", "2:4"], "which N:M (2:4) fixes"),
    (["--calib", "en:2", "--method", "mwanda", "--mw-layerwise", "1.5"], "--mw-layerwise must be >= 0 and < 1"),
    (["--calib", "en:2", "--method", "snip", "--stream"], "back-propagates through the whole model"),
]


@pytest.mark.parametrize("extra,message", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_clear_line_and_writes_nothing(model_dir, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    code, stdout, err = run(["prune", str(model_dir), "--out", str(out), "--quiet", *extra], capsys)
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_language_missing_from_source(model_dir, tmp_path, capsys):
    source = tmp_path / "texts"
    source.mkdir()
    (source / "en.txt").write_text("some english text here\n" * 500)
    code, _, err = run(
        ["prune", str(model_dir), "--calib", "de:2", "--calib-source", str(source), "--out", str(tmp_path / "o")],
        capsys,
    )
    assert code == 2 and "no text for 'de'; it has: en" in err and not (tmp_path / "o").exists()


def test_unsupported_architecture_says_what_it_found(tmp_path, capsys):
    folder = tmp_path / "vit"
    ViTModel(
        ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    ).save_pretrained(folder)
    code, _, err = run(["prune", str(folder), "--method", "magnitude", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "vit" in err.lower() and "cannot build" in err


def test_model_without_blocks_lists_its_modules():
    from hfprune.errors import UnsupportedArchitectureError
    from hfprune.models import find_block_stacks

    with pytest.raises(UnsupportedArchitectureError, match="module types seen: .*Linear"):
        find_block_stacks(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU()))


def test_pickled_weights_are_never_loaded(tmp_path, capsys):
    folder = tmp_path / "bin-only"
    model = make_model("llama")
    folder.mkdir()
    model.config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    code, _, err = run(["prune", str(folder), "--method", "magnitude", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "safetensors" in err


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
            "run", str(model_dir), "--method", "wanda", "--sparsity", "0.5", "--calib", "en:2,sw:2", "--seqlen", "32",
            "--sparsity-profile", "owl", "--owl-lambda", "0.1", "--pipeline", "independent", "--batch-size", "1",
            "--device", "cpu", "--out", str(out),
        ],
        capsys,
    )  # fmt: skip
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
    assert options["prune"] - options["sweep"] == {"--quiet", "--method"}  # a sweep takes --methods
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
