"""The peer side of bench_peer.py: llm-compressor's ``oneshot`` SparseGPT or Wanda on one benchmark model.

Runs in llm-compressor's own virtual environment (it pins its transformers; it is a benchmark peer, never a
dependency of hfprune), so this file imports nothing from hfprune:

    python3 -m venv /tmp/llmc-venv && /tmp/llmc-venv/bin/pip install torch==2.13.0 && /tmp/llmc-venv/bin/pip install llmcompressor
    /tmp/llmc-venv/bin/python benchmarks/peer_llmcompressor.py MODEL_DIR sparsegpt OUT.safetensors [BATCH]

The calibration batch is rebuilt exactly as bench_prune.py builds it for the random-init models (same seed,
same torch), 32 x 512 tokens. Prints one JSON line: oneshot's wall time, peak RSS, versions. Writes the pruned
decoder weights so bench_peer.py can compare masks and reconstruction error with hfprune's.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

SAMPLES, SEQLEN, BATCH = 32, 512, 8


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(model_dir: str, method: str, out: str, batch: str = str(BATCH)) -> None:
    import llmcompressor
    import transformers
    from datasets import Dataset
    from llmcompressor import oneshot
    from llmcompressor.modifiers.pruning import SparseGPTModifier, WandaPruningModifier
    from safetensors.torch import save_file

    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    ids = torch.randint(0, model.config.vocab_size, (SAMPLES, SEQLEN), generator=torch.Generator().manual_seed(0))
    dataset = Dataset.from_dict({"input_ids": ids.tolist(), "attention_mask": torch.ones_like(ids).tolist()})
    ignore = ["re:.*lm_head"]
    if method == "sparsegpt":  # hfprune's defaults: 1% damping, 128-column blocks
        recipe = SparseGPTModifier(
            sparsity=0.5, mask_structure="0:0", dampening_frac=0.01, block_size=128, ignore=ignore
        )
    elif method == "wanda":
        recipe = WandaPruningModifier(sparsity=0.5, mask_structure="0:0", ignore=ignore)
    else:
        raise SystemExit(f"unknown method {method}")
    started = time.perf_counter()
    oneshot(
        model=model,
        dataset=dataset,
        recipe=recipe,
        num_calibration_samples=SAMPLES,
        max_seq_length=SEQLEN,
        batch_size=int(batch),
        pipeline="sequential",
        shuffle_calibration_samples=False,
    )
    seconds = time.perf_counter() - started
    weights = {
        name: param.detach().contiguous().clone()
        for name, param in model.named_parameters()
        if ".layers." in name and param.dim() == 2
    }
    save_file(weights, out)
    print(
        json.dumps(
            {
                "tool": "llm-compressor",
                "version": llmcompressor.__version__,
                "transformers": transformers.__version__,
                "torch": torch.__version__,
                "method": method,
                "seconds": round(seconds, 2),
                "peak_rss_mb": round(_peak_rss_mb(), 1),
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:5])
