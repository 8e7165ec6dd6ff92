"""Several processes (torchrun, gloo on CPU): the same outputs as one process, tensor for tensor; a lost rank stops all.

The launched tests start real ``torchrun --nproc-per-node 2`` subprocesses on a free port with one thread per
rank. The single-process reference runs here, in-process, with one thread too: some CPU kernels (MKL's Cholesky,
small matrix products) give results that depend on their thread count, in one process as in several
(``pruning.engine``). Models are random-init (two architectures) and the project's tiny model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hfprune import distributed
from hfprune.cli.main import main
from hfprune.errors import LauncherEnvironmentError
from hfprune.models import all_prunable_layers
from hfprune.pruning.stats import HESSIAN, SQ_SUM, StatsCollector

from .hub_mirror import free_port
from .model_factory import VOCAB, calibration_excerpt, forward, make_model, make_tokenizer, save_model_folder

pytestmark = pytest.mark.slow  # the tiny model; and each launch starts two Python processes
DRIVER = Path(__file__).with_name("distributed_driver.py")
RANKS = 2
#: every model with every method, and every method with both pipelines (the full product costs twice as long)
PRUNE_RUNS = [
    ("tiny", "wanda", "sequential"),
    ("tiny", "sparsegpt", "independent"),
    ("tiny", "mwanda", "sequential"),
    ("llama", "wanda", "independent"),
    ("llama", "sparsegpt", "sequential"),
    ("llama", "mwanda", "independent"),
    ("gemma3", "wanda", "sequential"),
    ("gemma3", "sparsegpt", "independent"),
    ("gemma3", "mwanda", "sequential"),
]


# --- launcher environment ---------------------------------------------------------------------------------
def test_no_launcher_means_one_process():
    assert distributed.detect_launch({}) == distributed.Launch("none", 0, 1, 0, 1)


@pytest.mark.parametrize(
    "env,launcher",
    [
        ({"TORCHELASTIC_RUN_ID": "x"}, "torchrun"),
        ({"TORCHELASTIC_RUN_ID": "x", "ACCELERATE_MIXED_PRECISION": "no"}, "accelerate"),
        ({}, "env"),
    ],
)
def test_launchers_are_told_apart(env, launcher):
    common = {"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "h"}
    launch = distributed.detect_launch({**common, "MASTER_PORT": "29500", **env})
    assert launch == distributed.Launch(launcher, 1, 4, 1, 2)


@pytest.mark.parametrize(
    "env,message",
    [
        ({"RANK": "2", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1"}, "not a rank"),
        ({"RANK": "0", "WORLD_SIZE": "2"}, "MASTER_ADDR"),
        ({"RANK": "zero", "WORLD_SIZE": "2"}, "whole numbers"),
    ],
)
def test_unusable_launcher_variables_are_one_clear_error(env, message):
    with pytest.raises(LauncherEnvironmentError, match=message):
        distributed.detect_launch(env)


def test_a_bad_timeout_is_refused():
    with pytest.raises(LauncherEnvironmentError, match="HFPRUNE_DIST_TIMEOUT"):
        distributed.timeout_s({"HFPRUNE_DIST_TIMEOUT": "soon"})


# --- why the sums can be split over ranks ------------------------------------------------------------------
def test_statistics_of_batches_split_over_ranks_add_up_to_one_process_bit_for_bit():
    """What the all-reduce relies on: fp64 sums of per-batch fp32 parts are exact, so any split adds up the same.

    The fp32 running sum that preceded it is order-dependent: the same split changes its result.
    """
    model = make_model("qwen2", seed=5)
    layers = [layer for layer in all_prunable_layers(model) if ".layers.0." in layer.name]
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randint(4, VOCAB, (2, 24), generator=gen) for _ in range(6)]

    def collect(chosen: list[int]) -> StatsCollector:
        collector = StatsCollector(layers, frozenset({SQ_SUM, HESSIAN}))
        with torch.no_grad(), collector.attached():
            for i in chosen:
                collector.language = "en"
                forward(model, batches[i])
                collector.end_batch()
        return collector

    whole = collect(list(range(6))).stats
    rank0, rank1 = collect([0, 2, 4]), collect([1, 3, 5])
    # What the fp64 all-reduce does (once per accumulator: q/k/v share one), then the one rounding to fp32.
    for part0, part1 in {id(rank0._sums[n]): (rank0._sums[n], rank1._sums[n]) for n in rank0._sums}.values():
        part0.sq_sum["en"] += part1.sq_sum["en"]
        for chunk0, chunk1 in zip(part0.xtx.chunks, part1.xtx.chunks):
            chunk0 += chunk1
        part0.tokens["en"] += part1.tokens["en"]
    split = rank0.finish()
    for name in whole:
        assert torch.equal(whole[name].sq_sum["en"], split[name].sq_sum["en"]), name
        assert torch.equal(whole[name].xtx, split[name].xtx), name
    fp32_inputs = [torch.randn(64, 32, generator=gen) * 10.0 ** float(i % 4) for i in range(6)]
    in_order = sum(((x * x).sum(0) for x in fp32_inputs), torch.zeros(32))
    interleaved = sum(((x * x).sum(0) for x in fp32_inputs[0::2]), torch.zeros(32)) + sum(
        ((x * x).sum(0) for x in fp32_inputs[1::2]), torch.zeros(32)
    )
    assert not torch.equal(in_order, interleaved)  # fp32 accumulation would not survive the split


# --- launched runs ----------------------------------------------------------------------------------------
def _launcher_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE", "LOCAL_", "MASTER_"))}
    return {**env, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HFPRUNE_DIST_TIMEOUT": "120", **extra}


def _torchrun(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    torchrun = Path(sys.executable).with_name("torchrun")
    launcher = [str(torchrun)] if torchrun.exists() else [sys.executable, "-m", "torch.distributed.run"]
    port = str(free_port())
    command = [*launcher, f"--nproc-per-node={RANKS}", "--master-addr=127.0.0.1", f"--master-port={port}", *args]
    return subprocess.run(command, cwd=cwd, env=_launcher_env(), capture_output=True, text=True, timeout=timeout)


@contextmanager
def _threads(count: int):
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for path in sorted(folder.glob("*.safetensors")):
        tensors.update(load_file(path))
    return tensors


def _assert_same_weights(single: Path, launched: Path) -> None:
    mine, theirs = _weights(single), _weights(launched)
    assert sorted(mine) == sorted(theirs), launched
    different = [name for name in mine if not torch.equal(mine[name], theirs[name])]
    assert not different, f"{launched}: {different[:5]}"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_model_dir) -> dict[str, Path]:
    """Two random-init architectures, the tiny model, and a small calibration folder."""
    root = tmp_path_factory.mktemp("distributed")
    tokenizer = make_tokenizer(["the quick brown fox jumps over the lazy dog " * 40] * 4)
    models = {"tiny": Path(tiny_model_dir)}
    for arch in ("llama", "gemma3"):
        models[arch] = save_model_folder(make_model(arch, seed=7), tokenizer, root / arch)
    calib = calibration_excerpt(root / "calib")
    return {"root": root, "calib": calib, **models}


def _prune_argv(model: Path, method: str, pipeline: str, out: Path, calib: Path) -> list[str]:
    return [
        "prune",
        str(model),
        "--method",
        method,
        "--sparsity",
        "0.5",
        "--calib",
        "en:3,sw:3,de:2",
        "--seqlen",
        "64",
        "--calib-source",
        str(calib),
        "--batch-size",
        "2",
        "--pipeline",
        pipeline,
        "--device",
        "cpu",
        "--quiet",
        "--out",
        str(out),
    ]


def _eval_argv(model: Path, out: Path) -> list[str]:
    return [
        "eval",
        str(model),
        "--langs",
        "en,sw",
        "--tasks",
        "ppl,xcopa",
        "--limit",
        "24",
        "--context-length",
        "32",
        "--batch-size",
        "3",
        "--no-cache",
        "--json",
        "--out",
        str(out),
    ]


def _sweep_argv(model: Path, out: Path, calib: Path) -> list[str]:
    return [
        "sweep",
        str(model),
        "--methods",
        "wanda,sparsegpt",
        "--sparsity",
        "0.5",
        "--calib",
        "en:3,sw:2",
        "--calib-source",
        str(calib),
        "--seqlen",
        "64",
        "--batch-size",
        "2",
        "--eval-langs",
        "en,sw",
        "--eval-sentences",
        "12",
        "--context-length",
        "32",
        "--eval-batch-size",
        "2",
        "--no-plots",
        "--json",
        "--out",
        str(out),
    ]


@pytest.fixture(scope="module")
def launched(workspace) -> dict[str, Path]:
    """Every command of the matrix, run once under torchrun (one launch), and once here in one process."""
    root = workspace["root"]
    commands: dict[str, list[str]] = {}
    for name, method, pipeline in PRUNE_RUNS:
        argv = _prune_argv(workspace[name], method, pipeline, Path(), workspace["calib"])
        commands[f"{name}-{method}-{pipeline}"] = argv
    stream = _prune_argv(workspace["gemma3"], "sparsegpt", "sequential", Path(), workspace["calib"])
    commands["gemma3-sparsegpt-stream"] = [*stream, "--stream"]
    commands["eval"] = _eval_argv(workspace["tiny"], Path("results.json"))
    commands["sweep"] = _sweep_argv(workspace["llama"], Path(), workspace["calib"])
    commands["run"] = [
        "run",
        *_prune_argv(workspace["llama"], "mwanda", "sequential", Path(), workspace["calib"])[1:],
        "--eval-langs",
        "en,sw",
        "--eval-tasks",
        "ppl",
        "--eval-limit",
        "12",
        "--context-length",
        "32",
    ]
    commands["run"].remove("--quiet")
    outputs = {}
    for side in ("single", "launched"):
        for key, argv in commands.items():
            out = root / side / (key if key != "eval" else "results.json")
            argv[argv.index("--out") + 1] = str(out)
            outputs[f"{side}/{key}"] = out
        lines = [list(argv) for argv in commands.values()]
        if side == "launched":
            # Last, two errors every rank meets: each printed once, by rank 0. A run into an output that now exists
            # (refused on rank 0, raised on every rank), and a command that runs as one process only.
            existing = outputs["launched/llama-sparsegpt-sequential"]
            again = _prune_argv(workspace["llama"], "wanda", "sequential", existing, workspace["calib"])
            card = ["card", str(existing)]
            (root / "commands.json").write_text(json.dumps([*lines, again, card]))
            done = _torchrun(str(DRIVER), str(root / "commands.json"), cwd=root)
            errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
            assert done.returncode != 0 and len(errors) == 2, done.stderr[-4000:]
            assert "already exists" in errors[0] and "--overwrite" in errors[0], errors
            assert "hfprune card runs as one process" in errors[1], errors
        else:
            with _threads(1):  # as many threads as each rank has
                for argv in lines:
                    assert main(argv) == 0, argv
    return outputs


@pytest.mark.parametrize("model,method,pipeline", PRUNE_RUNS)
def test_two_ranks_prune_the_weights_of_one_process(launched, model, method, pipeline):
    key = f"{model}-{method}-{pipeline}"
    _assert_same_weights(launched[f"single/{key}"], launched[f"launched/{key}"])
    record = json.loads((launched[f"launched/{key}"] / "hfprune.json").read_text())
    assert record["distributed"]["launcher"] == "torchrun" and record["distributed"]["world_size"] == RANKS
    assert [rank["cpu_peak_rss_mb"] > 0 for rank in record["distributed"]["ranks"]] == [True] * RANKS
    assert json.loads((launched[f"single/{key}"] / "hfprune.json").read_text())["distributed"]["world_size"] == 1


def test_two_ranks_stream_the_weights_of_one_process(launched):
    """``--stream``: every rank reads each block from the checkpoint, rank 0 alone writes the shards."""
    _assert_same_weights(launched["single/gemma3-sparsegpt-stream"], launched["launched/gemma3-sparsegpt-stream"])
    record = json.loads((launched["launched/gemma3-sparsegpt-stream"] / "hfprune.json").read_text())
    assert record["streamed"] and record["distributed"]["world_size"] == RANKS


def test_two_ranks_run_the_whole_job_of_one_process(launched):
    """``hfprune run``: prune and eval shared by the ranks, the folder, its results and card from rank 0."""
    single, both = launched["single/run"], launched["launched/run"]
    _assert_same_weights(single, both)
    results = [json.loads((folder / "eval_results.json").read_text()) for folder in (single, both)]
    assert results[0]["changes"] == results[1]["changes"] and len(results[1]["changes"]) == 4
    assert results[1]["pruned"]["distributed"]["world_size"] == RANKS
    assert (both / "README.md").is_file() and (both / ".hfprune-run.json").is_file()


def test_two_ranks_evaluate_the_numbers_of_one_process(launched):
    single = json.loads(launched["single/eval"].read_text())
    both = json.loads(launched["launched/eval"].read_text())
    assert [(r["task"], r["lang"]) for r in both["results"]] == [
        ("ppl", "en"),
        ("ppl", "sw"),
        ("xcopa", "en"),
        ("xcopa", "sw"),
    ]
    assert both["results"][0]["metrics"]["n_windows"] > RANKS * 3  # several batches: both ranks scored some
    for mine, theirs in zip(single["results"], both["results"]):
        assert mine["metrics"] == theirs["metrics"], mine["task"]
    assert both["distributed"] == {"launcher": "torchrun", "world_size": RANKS}


def test_two_ranks_share_a_sweep_and_merge_it(launched):
    single = json.loads((launched["single/sweep"] / "sweep.json").read_text())
    both = json.loads((launched["launched/sweep"] / "sweep.json").read_text())
    assert both["dense"] == single["dense"]
    assert [(c["method"], c["eval"], c["achieved_sparsity"]) for c in both["cells"]] == [
        (c["method"], c["eval"], c["achieved_sparsity"]) for c in single["cells"]
    ]
    assert [c["ranks"] for c in both["cells"]] == [[0], [1]]  # one cell per rank
    assert both["distributed"] == {"launcher": "torchrun", "world_size": RANKS, "groups": 2}


def test_torchrun_runs_the_hfprune_module_itself(workspace, launched):
    out = workspace["root"] / "module-run"
    argv = _prune_argv(workspace["llama"], "sparsegpt", "sequential", out, workspace["calib"])
    done = _torchrun("-m", "hfprune", *argv, cwd=workspace["root"])
    assert done.returncode == 0, done.stderr[-4000:]
    _assert_same_weights(launched["single/llama-sparsegpt-sequential"], out)
    assert done.stdout.count("saved to") == 1  # rank 0 alone reports


def test_two_ranks_heal_as_one_process_with_their_batches_together(tmp_path):
    """Data-parallel healing: two ranks of batch 1 take the gradient of one process's batch of 2, so they reach
    its weights (to float rounding of the all-reduce) and record the same losses, not rank 0's half."""
    from .healing.factory import dense_folder, pruned_folder, small_source

    text = small_source(tmp_path / "text", lines=200)
    dense = dense_folder(tmp_path / "dense")
    student = pruned_folder(dense, tmp_path / "p50", source=text)
    argv = [
        "heal", str(student), "--teacher", str(dense), "--calib", "en:1,sw:1", "--calib-source", str(text),
        "--tokens", "256", "--seqlen", "32", "--device", "cpu", "--quality-sentences", "4", "--lr", "1e-3",
        "--quiet", "--json",
    ]  # fmt: skip
    with _threads(1):
        assert main([*argv, "--batch-size", "2", "--out", str(tmp_path / "single")]) == 0
    done = _torchrun("-m", "hfprune", *argv, "--batch-size", "1", "--out", str(tmp_path / "launched"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    printed = json.loads(done.stdout)  # one record: rank 0 alone prints
    single, launched = _weights(tmp_path / "single"), _weights(tmp_path / "launched")
    for name, weight in single.items():
        assert torch.allclose(weight, launched[name], atol=1e-6, rtol=0), name
    zeros = [name for name in single if name.endswith("proj.weight")]
    assert zeros and all(torch.equal(single[n] == 0, launched[n] == 0) for n in zeros)
    one = json.loads((tmp_path / "single" / "hfprune.json").read_text())["healing"]
    two = json.loads((tmp_path / "launched" / "hfprune.json").read_text())["healing"]
    assert (one["processes"], two["processes"], printed["healing"]["processes"]) == (1, 2, 2)
    assert one["steps"] == two["steps"] == 4 and one["tokens_seen"] == two["tokens_seen"] == 256
    for key in ("loss_start", "loss_end"):
        assert two[key] == pytest.approx(one[key], rel=1e-5), key


def test_structured_pruning_refuses_several_ranks_with_one_line(workspace):
    out = workspace["root"] / "structured-run"
    argv = [
        "prune",
        str(workspace["llama"]),
        "--structure",
        "width:0.25",
        "--calib",
        "en:2,sw:2",
        "--calib-source",
        str(workspace["calib"]),
        "--seqlen",
        "32",
        "--no-speed",
        "--out",
        str(out),
        "--quiet",
    ]
    done = _torchrun("-m", "hfprune", *argv, cwd=workspace["root"])
    # ranks exit with 2 (torchrun may SIGTERM the last one once the first has left: their error is printed by then)
    assert done.returncode != 0 and "exitcode  : 2" in done.stderr, done.stderr[-4000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "runs in one process" in errors[0], done.stderr[-4000:]
    assert not out.exists()


def test_accelerate_launch_runs_it_too(workspace, launched):
    out = workspace["root"] / "accelerate-run"
    argv = _prune_argv(workspace["llama"], "wanda", "independent", out, workspace["calib"])
    accelerate = Path(sys.executable).with_name("accelerate")
    launcher = [str(accelerate)] if accelerate.exists() else [sys.executable, "-m", "accelerate.commands.launch"]
    command = [
        *launcher,
        *(["launch"] if accelerate.exists() else []),
        "--multi_gpu",
        f"--num_processes={RANKS}",
        "--num_machines=1",
        f"--main_process_port={free_port()}",
        "--mixed_precision=no",
        "--dynamo_backend=no",
        "-m",
        "hfprune",
        *argv,
    ]
    done = subprocess.run(
        command, cwd=workspace["root"], env=_launcher_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-4000:]
    _assert_same_weights(launched["single/llama-wanda-independent"], out)
    record = json.loads((out / "hfprune.json").read_text())["distributed"]
    assert (record["launcher"], record["world_size"]) == ("accelerate", RANKS)


# --- a rank that dies or hangs -------------------------------------------------------------------------------
def _start_ranks(workspace: dict[str, Path], out: Path, timeout_s: str) -> list[subprocess.Popen]:
    """Two ranks started the way a launcher starts them (its variables, no agent watching over them)."""
    port = str(free_port())
    argv = _prune_argv(workspace["gemma3"], "sparsegpt", "sequential", out, workspace["calib"])
    argv[argv.index("--calib") + 1] = "en:24,sw:24"
    argv.remove("--quiet")  # rank 0's progress bar says when the ranks are past joining
    procs = []
    for rank in range(RANKS):
        env = _launcher_env(
            RANK=str(rank),
            WORLD_SIZE=str(RANKS),
            LOCAL_RANK=str(rank),
            LOCAL_WORLD_SIZE=str(RANKS),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=port,
            HFPRUNE_DIST_TIMEOUT=timeout_s,
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "hfprune", *argv],
                cwd=workspace["root"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return procs


def _wait_for_pruning(rank0: subprocess.Popen) -> str:
    """Read rank 0's stderr until its progress bar appears: both ranks have joined and prune."""
    seen = ""
    deadline = time.monotonic() + 120
    while "sparsegpt" not in seen and time.monotonic() < deadline and rank0.poll() is None:
        seen += os.read(rank0.stderr.fileno(), 4096).decode(errors="replace")
    assert "sparsegpt" in seen, seen[-2000:]
    return seen


@pytest.mark.parametrize("how", ["dies", "hangs"])
def test_a_lost_rank_stops_the_other_with_one_clear_error(workspace, how):
    """SIGKILL: rank 0's next collective fails at once (the connection closes); SIGSTOP: at the group timeout."""
    timeout_s = "600" if how == "dies" else "5"
    out = workspace["root"] / f"lost-{how}"
    rank0, rank1 = _start_ranks(workspace, out, timeout_s)
    try:
        seen = _wait_for_pruning(rank0)
        started = time.monotonic()
        rank1.send_signal(signal.SIGKILL if how == "dies" else signal.SIGSTOP)
        code = rank0.wait(timeout=90)
        waited = time.monotonic() - started
        seen += rank0.stderr.read()
    finally:
        for proc in (rank0, rank1):
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    errors = [line for line in seen.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1, seen[-3000:]
    assert "rank 0 of 2" in errors[0] and "stopped answering" in errors[0] and "HFPRUNE_DIST_TIMEOUT" in errors[0]
    assert (waited < 60) if how == "dies" else (4 < waited < 5 + 60), waited  # hang: ended by the timeout
    assert not out.exists()  # nothing written
