"""Structured pruning on random-init models of every supported architecture: what is saved loads with the stock
classes, has the stated shapes and computes what the pruned model in memory computed."""

from __future__ import annotations

import json
from copy import deepcopy
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

import hfprune
from hfprune.errors import InvalidStructuredSpecError, StructuredPruningUnsupportedError
from hfprune.models import find_block_stacks, prunable_layers
from hfprune.pruning.structured import StructuredSpec, plan_removal, prune_structured
from hfprune.pruning.structured.architecture import LLAMA_LIKE, head_layout
from hfprune.pruning.structured.surgery import head_channels, keep_head_groups, keep_neurons, remove_blocks

from ..model_factory import forward, make_model
from .conftest import build, calibration

CASES = [
    ("llama", "width:0.25"),
    ("llama", "heads:2"),
    ("llama", "depth:1"),
    ("llama", "width:0.25,heads:2,depth:1"),
    ("qwen2", "width:0.25,heads:2"),
    ("qwen2", "depth:1"),
    ("mistral", "width:0.5,depth:1"),
    ("mistral-gqa", "heads:2"),
    ("gemma3", "width:0.25,depth:1"),
    ("gemma3-gqa", "heads:2,depth:2"),
    ("gpt2", "width:0.25"),
    ("gpt2", "width:0.25,depth:1"),
]


def _block_shapes(model: torch.nn.Module) -> list[dict[str, tuple[int, int]]]:
    """``[out, in]`` of every linear layer, per block."""
    stack = find_block_stacks(model)[0]
    return [
        {layer.short_name: tuple(layer.weight.shape) for layer in stack.layers(i)} for i in range(len(stack.blocks))
    ]


def _expected_shapes(arch: str, config) -> dict[str, tuple[int, int]]:
    hidden = config.hidden_size
    if arch == "gpt2":
        inner = config.n_inner
        return {"mlp.c_fc": (inner, hidden), "mlp.c_proj": (hidden, inner)}
    heads, kv_heads, head_dim = head_layout(config)
    width = config.intermediate_size
    return {
        "self_attn.q_proj": (heads * head_dim, hidden),
        "self_attn.k_proj": (kv_heads * head_dim, hidden),
        "self_attn.v_proj": (kv_heads * head_dim, hidden),
        "self_attn.o_proj": (hidden, heads * head_dim),
        "mlp.gate_proj": (width, hidden),
        "mlp.up_proj": (width, hidden),
        "mlp.down_proj": (hidden, width),
    }


@pytest.mark.parametrize("arch,spec", CASES, ids=[f"{a}-{s}" for a, s in CASES])
def test_saved_model_loads_with_auto_classes_has_the_stated_shapes_and_same_outputs(arch, spec, calib, tmp_path):
    model = build(arch)
    dense_config = model.config.to_dict()
    plan, _, _ = plan_removal(model, StructuredSpec.parse(spec))
    result = hfprune.prune(model, structure=spec, calibration=calib, lang_agg="max")
    hfprune.save_pruned(model, None, result, tmp_path / "out")

    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()

    config = AutoConfig.from_pretrained(tmp_path / "out")
    record = json.loads((tmp_path / "out" / "hfprune.json").read_text())["structured"]
    kept_blocks = [i for i in range(plan.blocks) if i not in record["blocks_removed"]]
    assert config.num_hidden_layers == plan.blocks - plan.remove_blocks == len(kept_blocks)
    if "layer_types" in dense_config:
        assert config.layer_types == [dense_config["layer_types"][i] for i in kept_blocks]
    width_key = "n_inner" if arch == "gpt2" else "intermediate_size"
    assert getattr(config, width_key) == plan.width - plan.remove_neurons
    if arch != "gpt2":
        assert head_layout(config) == (
            plan.heads - plan.remove_heads,
            plan.kv_heads - plan.remove_kv_groups,
            plan.head_dim,
        )
    expected = _expected_shapes(arch, config)
    assert all({name: shapes[name] for name in expected} == expected for shapes in _block_shapes(loaded))
    assert [row["block"] for row in record["blocks"]] == (
        kept_blocks if plan.remove_neurons or plan.remove_heads else []
    )
    assert all(len(row["neurons_removed"]) == plan.remove_neurons for row in record["blocks"])
    assert record["params_after"]["total"] == sum(p.numel() for p in loaded.parameters())
    assert record["params_after"]["total"] < record["params_before"]["total"]
    ids = calib.input_ids[:2]
    assert torch.equal(forward(loaded, ids), forward(model, ids))
    # generation uses the key/value cache, which finds each block by its (re-numbered) index
    prompt = calib.input_ids[:1, :6]
    generated = [m.generate(prompt, max_new_tokens=5, do_sample=False, pad_token_id=0) for m in (model, loaded)]
    assert torch.equal(*generated)


@pytest.mark.parametrize("arch", ["llama", "qwen2", "mistral-gqa", "gemma3-gqa", "gpt2"])
def test_removing_nothing_leaves_the_checkpoint_bit_for_bit(arch, tmp_path):
    model = build(arch)
    model.save_pretrained(tmp_path / "dense")
    family = plan_removal(model, StructuredSpec(width=0.5))[1]
    stack = find_block_stacks(model)[0]
    for index in range(len(stack.blocks)):
        layers = {layer.short_name: layer for layer in stack.layers(index)}
        width = layers[family.mlp_out].in_features
        keep_neurons(layers, family.mlp_in, family.mlp_out, torch.arange(width))
        if family.attention is not None:
            heads, kv_heads, head_dim = head_layout(model.config)
            query, kv = head_channels(list(range(kv_heads)), heads // kv_heads, head_dim)
            keep_head_groups(layers, family.attention, query, kv)
    remove_blocks(stack, model.config, [])
    model.save_pretrained(tmp_path / "same")

    dense = AutoModelForCausalLM.from_pretrained(tmp_path / "dense").state_dict()
    same = AutoModelForCausalLM.from_pretrained(tmp_path / "same").state_dict()
    assert dense.keys() == same.keys()
    assert all(torch.equal(dense[name], same[name]) for name in dense)
    assert json.loads((tmp_path / "dense" / "config.json").read_text()) == json.loads(
        (tmp_path / "same" / "config.json").read_text()
    )


@pytest.mark.parametrize("arch", ["llama", "qwen2", "mistral", "gemma3", "gpt2"])
@pytest.mark.parametrize("refit", [True, False], ids=["refit", "no-refit"])
def test_neurons_whose_output_columns_are_zero_go_first_and_their_removal_changes_nothing(arch, refit, calib):
    model = build(arch)
    family = plan_removal(model, StructuredSpec(width=0.25))[1]
    stack = find_block_stacks(model)[0]
    zeroed = []
    for index in range(len(stack.blocks)):
        out = next(layer for layer in stack.layers(index) if layer.short_name == family.mlp_out)
        chosen = sorted(
            torch.randperm(out.in_features, generator=torch.Generator().manual_seed(index))[
                : out.in_features // 4
            ].tolist()
        )
        weight = out.weight.clone()
        weight[:, chosen] = 0
        out.set_weight(weight)
        zeroed.append(chosen)
    before = forward(model, calib.input_ids)

    result = hfprune.prune(model, structure="width:0.25", calibration=calib, refit=refit)

    assert [row["neurons_removed"] for row in result.structured["blocks"]] == zeroed
    assert torch.allclose(forward(model, calib.input_ids), before, rtol=0, atol=1e-5)


def _mlp_out_inputs(model: torch.nn.Module, out_name: str, ids: torch.Tensor) -> list[torch.Tensor]:
    """Every block's input to the layer ``out_name`` (down_proj / c_proj / o_proj) in a plain forward."""
    stack = find_block_stacks(model)[0]
    captured: list[torch.Tensor] = []
    handles = [
        next(layer for layer in stack.layers(i) if layer.short_name == out_name).module.register_forward_hook(
            lambda mod, args, out: captured.append(args[0].detach().reshape(-1, args[0].shape[-1]).double())
        )
        for i in range(len(stack.blocks))
    ]
    with torch.no_grad():
        forward(model, ids)
    for handle in handles:
        handle.remove()
    return captured


@pytest.mark.parametrize(
    "arch,spec,out_name",
    [
        ("llama", "width:0.5", "mlp.down_proj"),
        ("gemma3", "width:0.5", "mlp.down_proj"),
        ("gpt2", "width:0.5", "mlp.c_proj"),
        ("qwen2", "heads:2", "self_attn.o_proj"),
        ("gemma3-gqa", "heads:2", "self_attn.o_proj"),
    ],
)
def test_the_refit_is_never_worse_than_no_refit_on_the_calibration_reconstruction_error(arch, spec, out_name, calib):
    dense = build(arch)
    inputs = _mlp_out_inputs(dense, out_name, calib.input_ids)
    dense_weights = [
        next(layer for layer in find_block_stacks(dense)[0].layers(i) if layer.short_name == out_name).weight.double()
        for i in range(len(inputs))
    ]
    errors = {}
    for refit in (True, False):
        model = build(arch)  # independent pipeline: every block scored on the dense inputs, so both choose alike
        result = hfprune.prune(model, structure=spec, calibration=calib, refit=refit, pipeline="independent")
        stack = find_block_stacks(model)[0]
        errors[refit] = []
        for index, (x, w) in enumerate(zip(inputs, dense_weights)):
            row = result.structured["blocks"][index]
            removed = row["neurons_removed"] if out_name.startswith("mlp") else _channels(row, model)
            keep = torch.tensor([c for c in range(x.shape[1]) if c not in set(removed)])
            layer = next(layer for layer in stack.layers(index) if layer.short_name == out_name)
            target = x @ w.t()
            error = float(((x[:, keep] @ layer.weight.double().t() - target) ** 2).sum() / (target**2).sum())
            errors[refit].append(error)
            if refit:  # the error the refit recorded is the one real forwards give
                recorded = row["refit"][out_name.rsplit(".", 1)[-1]]
                chosen = recorded["error_refit"] if recorded["refit_used"] else recorded["error_dropped"]
                assert chosen == pytest.approx(error, rel=1e-3, abs=1e-9)
    assert all(with_refit <= without + 1e-9 for with_refit, without in zip(errors[True], errors[False]))
    assert sum(errors[True]) < sum(errors[False])  # and on random models it really helps


def _channels(row: dict, model: torch.nn.Module) -> list[int]:
    head_dim = model.config.head_dim
    return [h * head_dim + c for h in row["query_heads_removed"] for c in range(head_dim)]


def test_a_language_aware_aggregation_keeps_the_neurons_of_a_language_that_is_weak_overall():
    """Built case: a one-block Llama whose MLP neurons 0-47 read English tokens and 48-63 read Swahili tokens, the
    Swahili ones weakly; English has four times the calibration samples. Pooled statistics sacrifice Swahili."""
    from transformers import LlamaConfig

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=320,
        hidden_size=64,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    model = AutoModelForCausalLM.from_config(config).eval()
    block = model.model.layers[0]
    with torch.no_grad():
        model.model.embed_tokens.weight.zero_()
        model.model.embed_tokens.weight[:160, :32] = torch.randn(160, 32)  # English tokens live in dims 0-31
        model.model.embed_tokens.weight[160:, 32:] = torch.randn(160, 32)  # Swahili tokens in dims 32-63
        block.self_attn.o_proj.weight.zero_()  # the MLP reads the (normalised) embeddings
        for proj in (block.mlp.gate_proj, block.mlp.up_proj):
            proj.weight.zero_()
            proj.weight[:48, :32] = torch.randn(48, 32)
            proj.weight[48:, 32:] = 0.05 * torch.randn(16, 32)  # Swahili's neurons fire weakly
        down = torch.randn(64, 64)
        block.mlp.down_proj.weight.copy_(down / down.norm(dim=0, keepdim=True))  # equal output columns
    generator = torch.Generator().manual_seed(1)
    ids = torch.cat(
        [torch.randint(3, 160, (8, 32), generator=generator), torch.randint(160, 320, (2, 32), generator=generator)]
    )
    calib = hfprune.CalibrationSet.from_tensors(ids, ["en"] * 8 + ["sw"] * 2)
    swahili = set(range(48, 64))

    removed = {}
    for how in ("pooled", "mean", "max"):
        copy = deepcopy(model)
        result = hfprune.prune(copy, structure="width:0.25", calibration=calib, lang_agg=how, refit=False)
        removed[how] = set(result.structured["blocks"][0]["neurons_removed"])

    assert removed["pooled"] == swahili  # the language with less calibration weight loses its neurons
    assert not removed["max"] & swahili and not removed["mean"] & swahili
    assert removed["max"] != removed["pooled"]


def test_with_one_calibration_language_every_aggregation_removes_the_same_neurons():
    calib = calibration(samples_per_language=2)
    english = hfprune.CalibrationSet.from_tensors(calib.input_ids, ["en"] * len(calib.input_ids))
    removed = set()
    for how in ("pooled", "mean", "min", "max"):
        result = hfprune.prune(make_model("llama"), structure="width:0.25,depth:1", calibration=english, lang_agg=how)
        removed.add(
            json.dumps(
                [result.structured["blocks_removed"], [r["neurons_removed"] for r in result.structured["blocks"]]]
            )
        )
    assert len(removed) == 1


@pytest.mark.parametrize("arch,identity_block", [("llama", 0), ("gemma3", 1), ("gpt2", 1), ("gemma3-gqa", 2)])
def test_depth_removes_the_block_that_turns_hidden_states_least_and_outputs_stay(arch, identity_block, calib):
    model = build(arch)
    block = find_block_stacks(model)[0].blocks[identity_block]
    with torch.no_grad():  # a block whose residual branches add nothing: its output is its input
        for layer in prunable_layers(block):
            if layer.kind in ("o_proj", "down_proj", "c_proj"):
                layer.module.weight.zero_()
                if getattr(layer.module, "bias", None) is not None:
                    layer.module.bias.zero_()
    before = forward(model, calib.input_ids)
    prompt = calib.input_ids[:1, :10]
    generated = model.generate(prompt, max_new_tokens=6, do_sample=False, pad_token_id=0)

    result = hfprune.prune(model, structure="depth:1", calibration=calib, lang_agg="min")

    record = result.structured
    assert record["blocks_removed"] == [identity_block]
    assert all(
        values[identity_block] < 1e-6 < min(v for i, v in enumerate(values) if i != identity_block)
        for values in record["block_influence"].values()
    )
    assert torch.allclose(forward(model, calib.input_ids), before, rtol=0, atol=1e-5)
    assert torch.equal(model.generate(prompt, max_new_tokens=6, do_sample=False, pad_token_id=0), generated)


def test_sequential_pipeline_scores_each_block_on_the_shrunk_blocks_before_it(calib):
    """The engine's sequential pipeline must run later blocks on the outputs of the already shrunk ones."""
    model = make_model("llama")
    seen: list[int] = []
    first_block_mlp = model.model.layers[0].mlp.down_proj
    handle = model.model.layers[1].register_forward_pre_hook(lambda mod, args: seen.append(first_block_mlp.in_features))
    hfprune.prune(model, structure="width:0.5", calibration=calib)
    handle.remove()
    # the probe ran the dense model once; every later call of block 1 came after block 0 lost half its 128 neurons
    assert seen[0] == 128 and len(seen) > 1 and set(seen[1:]) == {64}


UNSUPPORTED = [
    ("bloom", "width:0.25", "structured pruning supports model types"),
    ("mt5", "depth:1", "structured pruning supports model types"),
    ("gpt2", "heads:2", "heads cannot be removed from gpt2"),
]


@pytest.mark.parametrize("arch,spec,message", UNSUPPORTED, ids=[f"{a}-{s}" for a, s, _ in UNSUPPORTED])
def test_architectures_the_config_cannot_describe_are_refused_clearly(arch, spec, message, calib):
    model = make_model(arch)
    before = {name: p.clone() for name, p in model.state_dict().items()}
    with pytest.raises(StructuredPruningUnsupportedError, match=message):
        hfprune.prune(model, structure=spec, calibration=calib)
    assert all(torch.equal(before[name], p) for name, p in model.state_dict().items())


def test_gpt2_with_per_block_attention_scaling_refuses_depth(calib):
    model = make_model("gpt2")
    model.config.scale_attn_by_inverse_layer_idx = True
    with pytest.raises(StructuredPruningUnsupportedError, match="1 / \\(block index \\+ 1\\)"):
        hfprune.prune(model, structure="depth:1", calibration=calib)


PLAN_ERRORS = [
    ("llama", "depth:2", "asks for all of them"),
    ("llama", "depth:3", "asks for more than it has"),
    ("llama", "heads:1", "give a multiple of 2"),
    ("llama", "heads:4", "leaves none of the 4 attention heads"),
    ("gemma3", "heads:4", "share one key/value group"),
    ("llama", "width:0.999", "leaves no neuron"),
    ("llama", "width:0.001", "rounds to none removed"),
]


@pytest.mark.parametrize("arch,spec,message", PLAN_ERRORS, ids=[f"{a}-{s}" for a, s, _ in PLAN_ERRORS])
def test_a_spec_that_does_not_fit_the_model_is_refused_before_any_work(arch, spec, message):
    with pytest.raises(InvalidStructuredSpecError, match=message):
        plan_removal(make_model(arch), StructuredSpec.parse(spec))


def test_prune_structured_reports_what_each_language_lost(calib):
    model = make_model("qwen2")
    report = prune_structured(model, calib, StructuredSpec.parse("width:0.25,heads:2,depth:1"), lang_agg="mean")
    assert set(report.block_influence) == {"en", "sw", "de"} and len(report.blocks_removed) == 1
    (row,) = report.blocks
    assert set(row.score_removed) == {"neurons", "heads"}
    assert all(0 < share < 1 for kind in row.score_removed.values() for share in kind.values())
    assert row.kv_groups_removed and row.query_heads_removed == [
        g * 2 + i for g in row.kv_groups_removed for i in range(2)
    ]
    assert LLAMA_LIKE.name == report.plan["family"]


def test_the_saved_folder_is_a_plain_checkpoint_a_later_step_can_trim(calib, tmp_path: Path):
    """The output is a normal model + tokenizer folder: safetensors, config, no custom code, nothing hfprune-only."""
    from ..model_factory import make_tokenizer

    tokenizer = make_tokenizer(["the quick brown fox jumps over the lazy dog"] * 20)
    model = make_model("gemma3")
    result = hfprune.prune(model, tokenizer, structure="width:0.25,depth:1", calibration=calib)
    hfprune.save_pruned(model, tokenizer, result, tmp_path / "out")
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "hfprune.json"} <= files
    assert not any(name.endswith((".py", ".bin", ".pt")) for name in files)
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["architectures"] == ["Gemma3ForCausalLM"] and "auto_map" not in config


@pytest.mark.parametrize("arch", ["llama", "gemma3", "gpt2"])
def test_block_influence_from_the_engine_equals_plain_forwards(arch, calib):
    from hfprune.pruning.engine import BlockwiseEngine
    from hfprune.pruning.structured.visitors import InfluenceRecorder

    model = build(arch)
    recorder = InfluenceRecorder()
    BlockwiseEngine(model, recorder, calibration=calib, device=torch.device("cpu"), pipeline="independent").run()

    blocks = find_block_stacks(model)[0].blocks
    sums: dict[tuple[int, str], list[float]] = {}
    language = [""]

    def hook(index):
        def record(mod, args, kwargs, out):
            x = (args[0] if args else kwargs["hidden_states"]).reshape(-1, model.config.hidden_size)
            y = (out[0] if isinstance(out, tuple) else out).reshape(-1, model.config.hidden_size)
            sums.setdefault((index, language[0]), []).extend((1 - torch.cosine_similarity(x, y, dim=-1)).tolist())

        return record

    handles = [block.register_forward_hook(hook(i), with_kwargs=True) for i, block in enumerate(blocks)]
    with torch.no_grad():
        for lang, ids in calib.batches(2):
            language[0] = lang
            forward(model, ids)
    for handle in handles:
        handle.remove()
    for index, entry in enumerate(recorder.blocks):
        for lang in ("en", "sw", "de"):
            values = sums[(index, lang)]
            assert entry.block_influence(lang) == pytest.approx(sum(values) / len(values), rel=1e-4)
