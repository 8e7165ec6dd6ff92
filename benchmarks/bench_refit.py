"""Which least-squares refit generalises: calibration vs held-out reconstruction error of ``down_proj`` after width pruning.

    flock /tmp/hfprune-bench.lock python benchmarks/bench_refit.py --model gemma3-270m   # results/refit_gemma3-270m.{json,md}
    flock /tmp/hfprune-bench.lock python benchmarks/bench_refit.py --model tiny

The refit of ``hfprune.pruning.structured.refit`` solves a least-squares problem on the calibration activations;
with few calibration tokens per kept channel it can fit the calibration text and miss any other. This measures, on
the *dense* model's ``down_proj`` inputs of several blocks, the relative reconstruction error
``||X_K V^T - X W^T||^2 / ||X W^T||^2`` of each candidate ``V`` on the calibration tokens it was fitted on and on
held-out text (FLORES devtest sentences 100-129 of every language, outside the sentences any benchmark reports):

* ``none``: the kept columns as they were (no refit);
* ``zero d``: ridge towards zero, ``lambda = d x mean diag(H_KK)`` (SparseGPT-style damping);
* ``to-kept d``: ridge towards the kept columns, ``argmin ||X_K V^T - X W^T||^2 + lambda ||V - W_K||^2`` (what
  hfprune uses, with ``d`` = 0.1 by default).

Neurons are chosen by the pooled Wanda-style score on the calibration text (the same for every candidate).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from hfprune.calibration import build_calibration, open_source
from hfprune.evaluation.perplexity import load_flores
from hfprune.models import find_block_stacks, load_model
from hfprune.tiny_model import LANGUAGES, tiny_model_path

RESULTS = Path(__file__).resolve().parent / "results"
FRACTIONS = (0.1, 0.2, 0.3)
DAMPS = (0.01, 0.1, 1.0)


def _gemma_path() -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from gemma3_270m import gemma_path

    return gemma_path()


#: name -> (folder, calibration samples per language, blocks probed)
MODELS = {"gemma3-270m": (_gemma_path, 4, (0, 3, 6, 9, 12, 15, 17)), "tiny": (tiny_model_path, 16, (0, 1))}


def capture(model, blocks, batches) -> dict[int, torch.Tensor]:
    """Every probed block's ``down_proj`` input over ``batches`` (fp32, tokens x width)."""
    stack = find_block_stacks(model)[0].blocks
    found: dict[int, list[torch.Tensor]] = {i: [] for i in blocks}
    handles = [
        stack[i].mlp.down_proj.register_forward_hook(
            lambda mod, args, out, i=i: found[i].append(args[0].detach().reshape(-1, args[0].shape[-1]).float())
        )
        for i in blocks
    ]
    with torch.no_grad():
        for ids in batches:
            model(input_ids=ids, use_cache=False)
    for handle in handles:
        handle.remove()
    return {i: torch.cat(parts) for i, parts in found.items()}


def relative_error(x: torch.Tensor, w: torch.Tensor, v: torch.Tensor, keep: torch.Tensor) -> float:
    target = x @ w.t()
    return float(((x[:, keep] @ v.t() - target) ** 2).sum() / (target**2).sum())


def candidates(w: torch.Tensor, h: torch.Tensor, keep: torch.Tensor) -> dict[str, torch.Tensor]:
    h_kk, wh_k, w_k = h[keep][:, keep], (w @ h)[:, keep], w[:, keep]
    eye = torch.eye(len(keep), dtype=h.dtype)
    mean_diag = h_kk.diagonal().mean()
    out = {"none": w_k}
    for damp in DAMPS:
        lam = damp * mean_diag
        out[f"zero {damp:g}"] = torch.linalg.solve(h_kk + lam * eye, wh_k.t()).t()
        out[f"to-kept {damp:g}"] = torch.linalg.solve(h_kk + lam * eye, (wh_k + lam * w_k).t()).t()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="gemma3-270m", choices=list(MODELS))
    args = parser.parse_args()
    folder, samples, blocks = MODELS[args.model]
    loaded = load_model(folder())
    model, tokenizer = loaded.model, loaded.tokenizer
    source = open_source(None, langs=list(LANGUAGES))
    calib = build_calibration(tokenizer, source, ",".join(f"{l}:{samples}" for l in LANGUAGES), seqlen=256, seed=0)
    held_out = [
        tokenizer("\n".join(load_flores(lang).splitlines()[100:130]), return_tensors="pt").input_ids[:, :256]
        for lang in LANGUAGES
    ]
    x_cal = capture(model, blocks, calib.input_ids.split(4))
    x_held = capture(model, blocks, held_out)
    stack = find_block_stacks(model)[0].blocks
    rows = []
    for fraction in FRACTIONS:
        for index in blocks:
            w = stack[index].mlp.down_proj.weight.detach().double()
            x, y = x_cal[index].double(), x_held[index].double()
            h = x.t() @ x
            score = w.norm(dim=0) * x.norm(dim=0)
            drop = torch.sort(score, stable=True).indices[: round(fraction * w.shape[1])]
            mask = torch.ones(w.shape[1], dtype=torch.bool)
            mask[drop] = False
            keep = mask.nonzero().squeeze(1)
            for name, v in candidates(w, h, keep).items():
                rows.append(
                    {
                        "fraction": fraction,
                        "block": index,
                        "candidate": name,
                        "calibration": relative_error(x, w, v, keep),
                        "held_out": relative_error(y, w, v, keep),
                    }
                )
            print(fraction, index, flush=True)
    command = "flock /tmp/hfprune-bench.lock python " + " ".join(sys.argv)
    report = {
        "command": command,
        "model": args.model,
        "blocks": list(blocks),
        "cpus": os.cpu_count(),
        "calibration_tokens": int(x_cal[blocks[0]].shape[0]),
        "held_out_tokens": int(x_held[blocks[0]].shape[0]),
        "rows": rows,
    }
    out = RESULTS / f"refit_{args.model}"
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict) -> str:
    names = list(dict.fromkeys(r["candidate"] for r in report["rows"]))
    lines = [
        f"# Least-squares refit of `down_proj`: calibration vs held-out error ({report['model']})",
        "",
        f"Command: `{report['command']}`",
        "",
        f"{report['calibration_tokens']} calibration tokens (8 languages, the shared calibration text), "
        f"{report['held_out_tokens']} held-out tokens (FLORES devtest sentences 100-129, 8 languages); dense model's "
        f"`down_proj` inputs of blocks {report['blocks']}; neurons chosen by the pooled score. Relative reconstruction "
        f"error (lower is better), calibration / held-out; the machine has {report['cpus']} shared cores (errors do "
        "not depend on it). Per fraction, the last row is the mean over blocks.",
        "",
        "| width | block | " + " | ".join(names) + " |",
        "|" + "---|" * (2 + len(names)),
    ]
    for fraction in FRACTIONS:
        rows = [r for r in report["rows"] if r["fraction"] == fraction]
        for block in report["blocks"]:
            cells = {r["candidate"]: r for r in rows if r["block"] == block}
            lines.append(
                f"| {fraction:.0%} | {block} | "
                + " | ".join(f"{cells[n]['calibration']:.4f} / {cells[n]['held_out']:.4f}" for n in names)
                + " |"
            )
        means = {
            n: [
                sum(r[k] for r in rows if r["candidate"] == n) / len(report["blocks"])
                for k in ("calibration", "held_out")
            ]
            for n in names
        }
        lines.append(
            f"| {fraction:.0%} | mean | " + " | ".join(f"**{c:.4f} / {h:.4f}**" for c, h in means.values()) + " |"
        )
    best = {}
    for fraction in FRACTIONS:
        rows = [r for r in report["rows"] if r["fraction"] == fraction]
        held = {n: sum(r["held_out"] for r in rows if r["candidate"] == n) for n in names}
        best[fraction] = min(held, key=held.get)
    lines += ["", "Lowest mean held-out error: " + ", ".join(f"{f:.0%}: {n}" for f, n in best.items()) + "."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
