"""Evaluation benchmarks: scoring overhead vs a plain forward pass, and a whole ``eval`` run.

    python benchmarks/bench_eval.py [--model DIR] [--langs en,de,...] [--limit 100]

Writes ``benchmarks/results/eval.json`` and ``eval.md``. Default model: the project's tiny trained model.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from hfprune.evaluation.batching import right_pad
from hfprune.evaluation.data import resolve_roots
from hfprune.evaluation.perplexity import load_flores, perplexity
from hfprune.evaluation.runner import evaluate_model
from hfprune.evaluation.scoring import encode_request, loglikelihoods
from hfprune.evaluation.task_data import load_task_data
from hfprune.evaluation.tasks import TASK_NAMES, TASKS
from hfprune.evaluation.tokenization import bos_prefix, encode, pad_id
from hfprune.evaluation.windows import plan_windows
from hfprune.evaluation.zeroshot import build_prompts
from hfprune.system import library_versions as versions

RESULTS = Path(__file__).parent / "results"


def plain_forward_seconds(model, rows: list[list[int]], pad: int, batch_size: int) -> float:
    """Time of the forward passes alone over the same padded batches the evaluator builds."""
    started = time.perf_counter()
    with torch.inference_mode():
        for begin in range(0, len(rows), batch_size):
            ids, mask = right_pad(rows[begin : begin + batch_size], pad, "cpu")
            model(input_ids=ids, attention_mask=mask)
    return time.perf_counter() - started


def interleaved_best(repeats: int, ours, plain) -> tuple[float, float]:
    """Best-of-N times of both, alternating runs so that load from other processes hits both alike."""
    ours_times, plain_times = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        ours()
        ours_times.append(time.perf_counter() - started)
        plain_times.append(plain())
    return min(ours_times), min(plain_times)


def bench_perplexity(
    model, tokenizer, context_length: int, batch_size: int, repeats: int, sentences: int | None
) -> dict:
    text = "\n".join(load_flores("en").splitlines()[:sentences])
    prefix = bos_prefix(tokenizer)
    tokens = encode(tokenizer, text)
    windows = plan_windows(len(tokens), context_length, None, bool(prefix))
    rows = [prefix + tokens[w.start : w.end] for w in windows]
    n = sum(len(r) for r in rows)
    ours, plain = interleaved_best(
        repeats,
        lambda: perplexity(model, tokenizer, text, context_length=context_length, batch_size=batch_size),
        lambda: plain_forward_seconds(model, rows, pad_id(tokenizer), batch_size),
    )
    return {"tokens": n, "eval_tokens_per_s": n / ours, "plain_tokens_per_s": n / plain, "overhead": ours / plain - 1}


def bench_loglikelihood(model, tokenizer, batch_size: int, repeats: int, limit: int) -> dict:
    spec = TASKS["xnli"]
    docs = load_task_data(spec, "en", resolve_roots(), limit=limit).docs
    requests = [(c, x) for p in build_prompts(spec, docs, "en") for c, x in zip(p.contexts, p.continuations)]
    prefix = bos_prefix(tokenizer)
    rows = sorted((encode_request(tokenizer, c, x, prefix, None).tokens for c, x in requests), key=len, reverse=True)
    n = sum(len(r) for r in rows)
    ours, plain = interleaved_best(
        repeats,
        lambda: loglikelihoods(model, tokenizer, requests, batch_size=batch_size),
        lambda: plain_forward_seconds(model, rows, pad_id(tokenizer), batch_size),
    )
    return {
        "requests": len(requests),
        "tokens": n,
        "eval_tokens_per_s": n / ours,
        "plain_tokens_per_s": n / plain,
        "overhead": ours / plain - 1,
    }


def bench_whole_eval(model, tokenizer, langs: list[str], limit: int, context_length: int, batch_size: int) -> dict:
    started = time.perf_counter()
    result = evaluate_model(
        model,
        tokenizer,
        langs=langs,
        tasks=list(TASK_NAMES),
        limit=limit,
        context_length=context_length,
        batch_size=batch_size,
        cache=False,
        progress=False,
        on_skip=lambda s: None,
    )
    seconds = time.perf_counter() - started
    per_task = {}
    for item in result.results:
        per_task[item.task] = per_task.get(item.task, 0.0) + item.seconds
    return {
        "langs": langs,
        "limit": limit,
        "seconds": seconds,
        "evaluated_pairs": len(result.results),
        "skipped_pairs": len(result.skipped),
        "seconds_per_task": per_task,
    }


def main() -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", help="model folder (default: hfprune.tiny_model.tiny_model_path())")
    parser.add_argument("--langs", default="en,de,fr,es,ru,zh,ar,sw,ja,tr")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--context-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-whole", action="store_true", help="only the throughput comparison")
    parser.add_argument("--sentences", type=int, default=None, help="FLORES en sentences for perplexity (default all)")
    parser.add_argument("--ll-limit", type=int, default=100, help="XNLI en documents for log-likelihood scoring")
    parser.add_argument("--out", default="eval", help="results file stem under benchmarks/results/")
    args = parser.parse_args()
    if args.model is None:
        from hfprune.tiny_model import tiny_model_path

        args.model = str(tiny_model_path())
    model = AutoModelForCausalLM.from_pretrained(args.model, use_safetensors=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    report = {
        "model": args.model,
        "parameters": sum(p.numel() for p in model.parameters()),
        "machine": {"cpus": torch.get_num_threads(), "platform": platform.platform()},
        "versions": versions(),
        "command": "python benchmarks/bench_eval.py " + " ".join(sys.argv[1:]),
        "perplexity_throughput": bench_perplexity(
            model, tokenizer, args.context_length, args.batch_size, args.repeats, args.sentences
        ),
        "loglikelihood_throughput": bench_loglikelihood(model, tokenizer, args.batch_size, args.repeats, args.ll_limit),
    }
    previous = RESULTS / f"{args.out}.json"
    if args.skip_whole:
        old = json.loads(previous.read_text()) if previous.is_file() else {}
        report["whole_eval"] = old.get("whole_eval")
    else:
        report["whole_eval"] = bench_whole_eval(
            model, tokenizer, args.langs.split(","), args.limit, args.context_length, args.batch_size
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    (RESULTS / f"{args.out}.md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))


def markdown(report: dict) -> str:
    lines = [
        f"# Evaluation benchmark ({report['model']}, {report['parameters']:,} parameters, "
        f"{report['machine']['cpus']} threads)",
        "",
        "| scoring | tokens | hfprune tok/s | plain forward tok/s | overhead |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in ("perplexity_throughput", "loglikelihood_throughput"):
        row = report[name]
        lines.append(
            f"| {name.split('_')[0]} | {row['tokens']:,} | {row['eval_tokens_per_s']:,.0f} | "
            f"{row['plain_tokens_per_s']:,.0f} | {row['overhead']:+.1%} |"
        )
    lines += ["", f"Command: `{report.get('command', 'python benchmarks/bench_eval.py')}`"]
    whole = report["whole_eval"]
    if not whole:
        return "\n".join(lines) + "\n"
    lines += [
        "",
        f"Whole `eval`, {len(whole['langs'])} languages x all tasks, `--limit {whole['limit']}`: "
        f"**{whole['seconds']:.1f} s** ({whole['evaluated_pairs']} task-language pairs, "
        f"{whole['skipped_pairs']} without data)"
        + (
            ", from an earlier run (this one had `--skip-whole`)" if "--skip-whole" in report.get("command", "") else ""
        ),
        "",
        "| task | seconds |",
        "|---|---:|",
    ]
    lines += [f"| {task} | {seconds:.1f} |" for task, seconds in whole["seconds_per_task"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
