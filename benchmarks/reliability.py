"""Reliability figures: kill-and-resume soak of ``hfprune run``, push with changing file sets and a dropped
connection, and the size of the bad-input table. Writes ``benchmarks/results/reliability.{md,json}``.

    python benchmarks/reliability.py [--kills 20] [--seed 0]

1. Soak: ``hfprune run`` on the tiny model (prune, eval, card, push to a local Hub folder) is started, killed
   with SIGKILL at a random moment, and started again, ``--kills`` times; then run to the end. The final folder
   is compared with an uninterrupted run's, file by file; leftovers (temporary or old folders) are counted.
2. Push: through the tests' Hub write emulator in front of a real olah server: push A (one safetensors file),
   push B (shards + index), drop the connection mid-commit while pushing C, push C again; after each, what the
   remote holds, and which weights ``from_pretrained`` loads back.
3. The table of bad inputs in ``tests/test_bad_input.py``: its size (run the test for its result).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))

#: Fields that record how a number was obtained, not the number: how long it took, the memory it used, and
#: whether an evaluation result was reused from the cache. They differ between any two runs.
TIMING_KEYS = {"timings", "peak_memory", "seconds", "cached"}


def soak(kills: int, seed: int, work: Path) -> dict:
    from hfprune.tiny_model import LANGUAGES, tiny_model_path

    base = tiny_model_path()
    langs = ",".join(LANGUAGES[:3])

    def command(root: Path) -> list[str]:  # the same folder names in both runs: their records must be equal
        return [
            sys.executable,
            "-m",
            "hfprune",
            "run",
            str(base),
            "--method",
            "sparsegpt",
            "--sparsity",
            "0.5",
            "--calib",
            "en:8,de:8,fr:8",
            "--seqlen",
            "128",
            "--batch-size",
            "1",
            "--eval-langs",
            langs,
            "--eval-limit",
            "30",
            "--context-length",
            "128",
            "--out",
            str(root / "out"),
            "--push-to",
            "local/soak",
            "--local-hub",
            str(root / "hub"),
            "--device",
            "cpu",
        ]

    for root in (work / "reference", work / "soak"):
        root.mkdir(parents=True)
    timeline = _timed_run(command(work / "reference"), work / "reference")
    rng = random.Random(seed)
    root = work / "soak"
    runs, killed, finished_early, cycles = 0, [], 0, 1
    while len(killed) < kills:
        remaining = [step for step in STEPS if step not in _done_steps(root / "out")]
        if not remaining:  # a resumed run finished the job: start over, so every kill lands in work to do
            cycles += 1
            for folder in (root / "out", root / "hub"):
                shutil.rmtree(folder, ignore_errors=True)
            continue
        target = rng.choice(remaining)
        # a moment inside the target step: startup, then the steps before it that still have to run, then into it
        before = timeline["startup"] + sum(timeline[step] for step in remaining[: remaining.index(target)])
        delay = before + rng.uniform(0.05, 0.95) * timeline[target]
        process = subprocess.Popen(command(root), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        runs += 1
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            killed.append({"after_s": round(delay, 2), "aimed_at": target, "step": _last_step(root / "out")})
            continue
        assert process.returncode == 0, process.stderr.read()
        finished_early += 1
    final = subprocess.run(command(root), capture_output=True, text=True)
    runs += 1
    assert final.returncode == 0, final.stderr
    same, differing = _compare(work / "reference" / "out", root / "out")
    leftovers = sorted(p.name for p in root.iterdir() if ".tmp-" in p.name or ".old-" in p.name)
    return {
        "command": " ".join(command(Path("."))[1:]).replace(str(base), "<tiny model>"),
        "uninterrupted_s": round(sum(timeline.values()), 1),
        "step_seconds": {k: round(v, 1) for k, v in timeline.items()},
        "kills": killed,
        "runs_finished_before_their_kill": finished_early,
        "fresh_starts": cycles,
        "process_starts": runs,
        "files_identical": same,
        "files_differing": differing,
        "leftovers": leftovers,
        "steps_killed_in": sorted({k["step"] for k in killed}),
    }


STEPS = ("pull", "prune", "eval", "card", "push")


def _timed_run(command: list[str], root: Path) -> dict[str, float]:
    """Run to the end, timing each step from its ``[step] running`` line: where a kill can land."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    marks = []
    assert process.stderr is not None
    for line in process.stderr:
        for step in STEPS:
            if line.startswith(f"[{step}] running"):
                marks.append((step, time.perf_counter() - started))
    assert process.wait() == 0, "the uninterrupted run failed"
    end = time.perf_counter() - started
    timeline = {"startup": marks[0][1]}
    for (step, at), (_, nxt) in zip(marks, [*marks[1:], ("end", end)]):
        timeline[step] = nxt - at
    return timeline


def _done_steps(out: Path) -> set[str]:
    ledger = out / ".hfprune-run.json"
    return set(json.loads(ledger.read_text()).get("steps", {})) if ledger.is_file() else set()


def _last_step(out: Path) -> str:
    """The step a killed run was in: the first one its ledger does not record as done."""
    done = _done_steps(out)
    return next((step for step in STEPS if step not in done), "after the last step")


def _compare(reference: Path, other: Path) -> tuple[list[str], list[str]]:
    """Files byte-identical, and files that differ (JSON records compared without :data:`TIMING_KEYS` when their
    bytes differ)."""
    same, differing = [], []
    names = sorted({p.name for p in reference.iterdir()} | {p.name for p in other.iterdir()})
    for name in names:
        if name.startswith("."):  # the ledger and the local record: this machine's bookkeeping, never published
            continue
        a, b = reference / name, other / name
        if not (a.is_file() and b.is_file()):
            differing.append(f"{name} (only in one)")
        elif a.read_bytes() == b.read_bytes():
            same.append(name)
        elif name.endswith(".json") and _without_timings(a) == _without_timings(b):
            same.append(f"{name} (all but its timing fields)")
        else:
            differing.append(name)
    return same, differing


def _without_timings(path: Path) -> object:
    def strip(value: object) -> object:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in TIMING_KEYS}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(json.loads(path.read_text()))


def push_cases(work: Path) -> list[dict]:
    import pytest

    from hfprune.errors import UploadInterruptedError
    from hfprune.hub import local as local_hub
    from hfprune.hub.push import push_folder
    from tests.hub_mirror import point_hub_at, start_olah
    from tests.publish.conftest import TEST_TOKEN, make_pruned_folder
    from tests.publish.hub_write_emulator import HubWriteEmulator
    from tests.publish.test_push import _sharded_folder

    cases = []
    work.mkdir(parents=True, exist_ok=True)
    with start_olah(work / "olah") as olah:
        hub = HubWriteEmulator(mirror_root=olah.mirror_root, olah_url=olah.url, token=TEST_TOKEN)
        server, thread = hub.start()
        patch = pytest.MonkeyPatch()  # the tests' way of pointing huggingface_hub at a server, used outside pytest
        point_hub_at(patch, hub.url, work / "hf_home")
        patch.setenv("HF_TOKEN", TEST_TOKEN)
        repo = hub.repo("tester/changing")

        def remote() -> list[str]:
            return sorted(local_hub.tree_manifest(repo, "main"))

        def record(name: str, **extra: object) -> None:
            cases.append({"case": name, "remote_files": remote(), "commits_on_main": _commits(repo), **extra})

        a = make_pruned_folder(work / "A")
        result = push_folder(a, "tester/changing")
        record("push A: one model.safetensors", removed=result.removed)
        b = _sharded_folder(work / "B", seed=11)
        result = push_folder(b, "tester/changing")
        record("push B: shards + index over A", removed=result.removed, loads=_which_weights(b))
        c = _sharded_folder(work / "C", seed=12)
        hub.drop_next_commit = True
        try:
            push_folder(c, "tester/changing")
            outcome = "published (unexpected)"
        except UploadInterruptedError:
            outcome = "UploadInterruptedError; nothing claimed"
        record("push C with the connection dropped mid-commit", outcome=outcome, loads=_which_weights(b, c))
        result = push_folder(c, "tester/changing")
        record("push C again", removed=result.removed, loads=_which_weights(c))
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        patch.undo()
    return cases


def _commits(repo: Path) -> int:
    done = subprocess.run(["git", "rev-list", "--count", "main"], cwd=repo, capture_output=True, text=True)
    return int(done.stdout.strip())


def _which_weights(*candidates: Path) -> str:
    """Which local folder's weights ``from_pretrained`` gets from the remote's main (by tensor equality)."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    with tempfile.TemporaryDirectory() as cache:  # a fresh cache: what a new user downloads
        state = AutoModelForCausalLM.from_pretrained("tester/changing", revision="main", cache_dir=cache).state_dict()
    for folder in candidates:
        tensors = {k: v for shard in folder.glob("*.safetensors") for k, v in load_file(shard).items()}
        if all(torch.equal(state[k], v) for k, v in tensors.items()):
            return folder.name
    return "none of them"


def bad_input_table() -> int:
    from tests.test_bad_input import CASES

    return len(CASES)


def write(results: dict, argv: list[str]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "reliability.json").write_text(json.dumps(results, indent=2) + "\n")
    s = results["soak"]
    lines = [
        "# Reliability",
        "",
        f"Command: `python benchmarks/reliability.py {' '.join(argv)}` (2 shared CPU cores; results also in `reliability.json`).",
        "",
        "## Kill-and-resume soak of `hfprune run`",
        "",
        f"`python {s['command']}` on the project's tiny model (SparseGPT 50%, 3-language calibration, eval, card, push",
        f"to a local Hub folder). Uninterrupted: {s['uninterrupted_s']} s ({', '.join(f'{k} {v} s' for k, v in s['step_seconds'].items())}).",
        f"Killed with SIGKILL {len(s['kills'])} times, each at a random moment inside a random step that was still to run",
        f"(from the uninterrupted run's timeline), and resumed each time: {s['process_starts']} process starts in all;",
        f"{s['runs_finished_before_their_kill']} runs finished before their kill time. Whenever a resumed run had finished",
        f"the job the folder was removed and the soak went on from scratch ({s['fresh_starts']} fresh starts), so every",
        f"kill landed in work still to do. Steps the kills landed in (per the run's ledger): {', '.join(s['steps_killed_in'])}.",
        "",
        f"- final folder vs the uninterrupted run: {len(s['files_identical'])} files identical"
        + (
            f", **{len(s['files_differing'])} differing: {', '.join(s['files_differing'])}**"
            if s["files_differing"]
            else ", none differing"
        ),
        f"  ({', '.join(s['files_identical'])}). `hfprune.json` and `eval_results.json` record how long each step",
        "  took, its peak memory, and whether an evaluation result came from the cache: where their bytes differ they",
        "  are compared without those fields.",
        f"- leftovers beside the output (temporary or old folders): {len(s['leftovers'])}"
        + (f" ({', '.join(s['leftovers'])})" if s["leftovers"] else ""),
        "",
        "| kill | after s | aimed at | in step (ledger) |",
        "|---:|---:|---|---|",
        *[f"| {i + 1} | {k['after_s']} | {k['aimed_at']} | {k['step']} |" for i, k in enumerate(s["kills"])],
        "",
        "## Push: the remote repo equals the folder",
        "",
        "Through the tests' Hub write emulator in front of a real olah server (reads), with `hfprune.hub.push_folder`.",
        "",
        "| case | remote files after | commits on main | removed | weights `from_pretrained` loads | note |",
        "|---|---|---:|---|---|---|",
        *[
            f"| {c['case']} | {', '.join(c['remote_files'])} | {c['commits_on_main']} | {', '.join(c.get('removed', [])) or '-'} "
            f"| {c.get('loads', '-')} | {c.get('outcome', '')} |"
            for c in results["push"]
        ],
        "",
        "## Bad input",
        "",
        f"`tests/test_bad_input.py` holds {results['bad_inputs']} bad inputs across prune, run, eval, pull, push, card,",
        "sweep, analyze, space, demo, trim-vocab and export (structured pruning and placement options included); each must",
        "give exactly one `error:` line naming the problem, exit code 2, no",
        "traceback, and leave the scratch folder and the model folder byte-for-byte as they were (the test checks all",
        "four for every row; `python -m pytest tests/test_bad_input.py` runs it). Its files-and-paths part covers",
        "what is beside `--out` (a copy named like a leftover), inside it (a user's file under `--overwrite`, another",
        "job's run), overlapping the model, links a push would follow, tokens in any published file, another model's",
        "results, and broken or lying model folders and texts.",
        "",
    ]
    (RESULTS / "reliability.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["soak", "push", "table"], help="run one part (for development)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hfprune-reliability-") as tmp:
        work = Path(tmp)
        results = {
            "bad_inputs": bad_input_table(),
            "push": push_cases(work / "push") if args.only in (None, "push") else [],
            "soak": soak(args.kills, args.seed, work / "soak") if args.only in (None, "soak") else {},
        }
    if args.only is None:
        write(results, sys.argv[1:])
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
