"""2:4 kernels at load time: which layers qualify, and clear refusals where the kernels do not exist.

The conversion itself needs an NVIDIA GPU (compute capability 8.0+); its speed is measured by
benchmarks/bench_semi_structured.py on such a machine. These tests cover everything decided before it.
"""

from __future__ import annotations

import pytest
import torch
from torch.sparse import SparseSemiStructuredTensor

import hfprune
from hfprune.calibration import CalibrationSet
from hfprune.models.semi_structured import (
    SemiStructuredUnavailableError,
    is_two_four,
    load_semi_structured,
    shape_problem,
    to_semi_structured,
)

from .model_factory import make_model


def test_a_model_pruned_two_four_is_recognised_layer_by_layer():
    model = make_model("llama", seed=3)
    ids = torch.randint(0, model.config.vocab_size, (4, 16), generator=torch.Generator().manual_seed(0))
    hfprune.prune(
        model, method="wanda", sparsity=0.5, structure="2:4", calibration=CalibrationSet.from_tensors(ids, ["en"] * 4)
    )
    linears = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    pruned = {n for n in linears if ".layers." in n}
    assert pruned and all(is_two_four(linears[n].weight) for n in pruned)
    assert not is_two_four(linears["lm_head"].weight)  # left dense


def test_two_four_means_two_zeros_in_every_group_of_four():
    assert is_two_four(torch.tensor([[0.0, 1.0, 0.0, 2.0, 3.0, 0.0, 0.0, 0.0]]))
    assert not is_two_four(torch.tensor([[0.0, 1.0, 5.0, 2.0, 0.0, 0.0, 0.0, 0.0]]))  # the first group has one zero
    assert not is_two_four(torch.zeros(2, 6))  # width not a multiple of 4


def test_shapes_the_kernels_refuse_are_named():
    assert shape_problem(torch.zeros(64, 128, dtype=torch.float16)) is None
    assert "40 output rows is not a multiple of 16" in shape_problem(torch.zeros(40, 128, dtype=torch.float16))
    assert "24 input columns is not a multiple of 16" in shape_problem(torch.zeros(64, 24, dtype=torch.bfloat16))
    assert "no 2:4 kernel" in shape_problem(torch.zeros(64, 128, dtype=torch.float64))
    SparseSemiStructuredTensor._FORCE_CUTLASS = True  # the other kernel family has its own limits
    try:
        assert "multiple of 64" in shape_problem(torch.zeros(64, 96, dtype=torch.float16))
    finally:
        SparseSemiStructuredTensor._FORCE_CUTLASS = False


def test_on_cpu_the_refusal_says_what_to_do_instead(tmp_path):
    model = make_model("llama", seed=3).half()  # on CPU, whether or not the machine has a GPU
    with pytest.raises(SemiStructuredUnavailableError, match="plain transformers"):
        to_semi_structured(model)
    with pytest.raises(SemiStructuredUnavailableError, match="NVIDIA GPU"):
        load_semi_structured(tmp_path / "never-read", device="cpu")  # refused before anything is loaded
