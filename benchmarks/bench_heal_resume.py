"""Ctrl-C and ``--resume`` on a real heal: does a stopped-and-resumed run give the uninterrupted run's model?

    python benchmarks/bench_heal_resume.py              # ~20 min on 2 CPU cores (plus the student, once)

The width 0.2 + scripts vocabulary student of ``bench_heal.py`` is healed with ``hfprune heal`` (the command a
user runs, in a child process) at the settings of ``bench_heal.py``'s recorded 49,152-token cell. After the
``--interrupt-after``-th checkpoint the child gets SIGINT (what Ctrl-C sends); it must exit with a message, no
``--out`` and a checkpoint whose record names the step it stopped at. The same command with ``--resume`` then
finishes it. FLORES devtest bits per byte of the result is compared with the recorded cell (same student
recipe, settings, torch and CPU kind): equal to the recorded five decimals means the resume reproduced the
uninterrupted run. The student's own bits per byte is compared too (the mask is rebuilt on this machine from
the same command). Results: ``results/heal_resume_gemma3-270m.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_heal import EQUAL_WEIGHTS, KEPT, OTHERS, RESULTS, STEM, _save, ensure_student  # noqa: E402
from bench_vocab import bits_per_byte  # noqa: E402
from gemma3_270m import gemma_path  # noqa: E402

from hfprune import constants  # noqa: E402
from hfprune.healing.checkpoints import CheckpointStore, checkpoint_folder_for  # noqa: E402

STUDENT = "width 0.2 + scripts vocabulary"
TOKENS = 49_152
#: bench_heal.py's settings for that cell (its defaults), as ``hfprune heal`` flags.
FLAGS = ["--calib", EQUAL_WEIGHTS, "--tokens", str(TOKENS), "--seqlen", "256", "--batch-size", "4"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint-every", type=int, default=10)
    parser.add_argument("--interrupt-after", type=int, default=2, help="SIGINT once this many checkpoints exist")
    parser.add_argument("--sentences", type=int, default=100)
    args = parser.parse_args()
    recorded = json.loads((RESULTS / f"{STEM}.json").read_text())
    reference = recorded["cells"][f"{STUDENT} · {TOKENS:,} tokens"]
    dense = gemma_path()
    root = constants.cache_dir() / "bench-heal"
    student = ensure_student(STUDENT, dense, root)
    out = root / "resume-check-healed"
    store = checkpoint_folder_for(out)
    for leftover in (out, store):  # this benchmark's own folders, from an earlier run of it
        shutil.rmtree(leftover, ignore_errors=True)
    command = [sys.executable, "-m", "hfprune", "heal", str(student), "--teacher", str(dense), "--out", str(out)]
    command += [*FLAGS, "--checkpoint-every", str(args.checkpoint_every), "--quiet"]

    started = time.perf_counter()
    # SIGINT at its default in the child: a shell's background job (nohup ... &) inherits it ignored, and Python
    # then never raises KeyboardInterrupt, so the child would not see the Ctrl-C this benchmark stands for.
    child = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    wanted = args.checkpoint_every * args.interrupt_after
    while child.poll() is None and _step(store) < wanted:
        time.sleep(2)
    if child.poll() is not None:
        raise SystemExit(f"the heal ended before its step-{wanted} checkpoint: {child.stderr.read()}")
    time.sleep(20)  # a few steps past the checkpoint, so the Ctrl-C save is the one resumed from
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate()
    first_s = time.perf_counter() - started
    stopped = {
        "exit_code": child.returncode,
        "message": stderr.strip().splitlines()[-1] if stderr.strip() else "",
        "out_written": out.exists(),
        "checkpoint_step": _step(store),
        "seconds": round(first_s, 1),
    }
    print(json.dumps({"stopped": stopped}), flush=True)
    if stopped["out_written"] or stopped["checkpoint_step"] <= 0:
        raise SystemExit(f"the interrupted heal left no resumable state: {stopped}")

    started = time.perf_counter()
    resumed = subprocess.run([*command, "--resume", "--json"], capture_output=True, text=True)
    if resumed.returncode:
        raise SystemExit(f"--resume failed ({resumed.returncode}): {resumed.stderr}")
    record = json.loads(resumed.stdout)["healing"]
    result = bits_per_byte(out, [*KEPT, *OTHERS], args.sentences)
    student_bpb = bits_per_byte(student, [*KEPT, *OTHERS], args.sentences)
    report = {
        "command": "python benchmarks/" + " ".join([Path(__file__).name, *sys.argv[1:]]),
        "heal_command": " ".join(["hfprune", *command[3:]]),
        "stopped": stopped,
        "resume_seconds": round(time.perf_counter() - started, 1),
        "training_s": round(record["time_s"], 1),
        "checkpoint_removed": not store.exists(),
        "bits_per_byte": result,
        "recorded_bits_per_byte": reference["bits_per_byte"],
        "student_bits_per_byte": student_bpb,
        "recorded_student_bits_per_byte": recorded["cells"][f"{STUDENT} · 0 tokens"]["bits_per_byte"],
        "sparsity_after": record["achieved_sparsity"],
        "recorded_sparsity_after": reference["sparsity_after"],
    }
    report["same_as_uninterrupted"] = result == report["recorded_bits_per_byte"]
    report["student_reproduced"] = student_bpb == report["recorded_student_bits_per_byte"]
    shutil.rmtree(out, ignore_errors=True)  # this benchmark's own output
    _save(report, RESULTS / "heal_resume_gemma3-270m.json")
    (RESULTS / "heal_resume_gemma3-270m.md").write_text(_markdown(report))
    print(json.dumps(report, indent=1))


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _step(store: Path) -> int:
    """The step the checkpoint folder's record names (0: none yet)."""
    record = CheckpointStore(store).record()
    return int(record.get("step") or 0) if record else 0


def _markdown(report: dict) -> str:
    langs = [*KEPT, *OTHERS]
    rows = [
        ("student (0 tokens), this run", report["student_bits_per_byte"]),
        ("student (0 tokens), recorded", report["recorded_student_bits_per_byte"]),
        ("healed, stopped + resumed", report["bits_per_byte"]),
        ("healed, uninterrupted (recorded)", report["recorded_bits_per_byte"]),
    ]
    stopped = report["stopped"]
    lines = [
        f"# Heal stopped by SIGINT and resumed: Gemma 3 270M, {STUDENT}, {TOKENS:,} tokens",
        "",
        f"Command: `{report['command']}`; the heal: `{report['heal_command']}`.",
        "",
        f"- SIGINT: exit code {stopped['exit_code']}, message `{stopped['message']}`, output written: "
        f"{stopped['out_written']}, checkpoint at step {stopped['checkpoint_step']} (after {stopped['seconds']} s).",
        f"- `--resume`: {report['resume_seconds']} s; checkpoint folder removed after success: "
        f"{report['checkpoint_removed']}; sparsity after {report['sparsity_after']} "
        f"(recorded {report['recorded_sparsity_after']}).",
        f"- Same bits per byte as the uninterrupted run: **{report['same_as_uninterrupted']}**; student rebuilt "
        f"to the recorded bits per byte: **{report['student_reproduced']}**.",
        "",
        "FLORES-200 devtest bits per byte (first 100 sentences):",
        "",
        "| model | " + " | ".join(langs) + " |",
        "|---|" + "---:|" * len(langs),
        *(f"| {name} | " + " | ".join(f"{bpb[lang]:.5f}" for lang in langs) + " |" for name, bpb in rows),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
