"""Sweeps and analyses: hand-made masks and firing rates, and end-to-end runs on a tiny random model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import hfprune
from hfprune.analysis import neurons as lape
from hfprune.analysis.analyze import NeuronSpec, analyze
from hfprune.analysis.analyze_report import write_analysis
from hfprune.analysis.dense_weights import DenseWeights
from hfprune.analysis.flores_eval import flores_perplexities, flores_text
from hfprune.analysis.overlap import overlap, total
from hfprune.analysis.sweep import SweepSpec, run_sweep
from hfprune.analysis.sweep_report import write_sweep
from hfprune.calibration import FolderSource, build_calibration
from hfprune.cli.main import build_parser
from hfprune.cli.options import method_params
from hfprune.errors import AnalysisInputError, HfpruneError, InvalidMethodParameterError, SweepSpecError

from .model_factory import make_model, make_tokenizer

LANGS = ("en", "sw")


# --- overlap on hand-made masks -----------------------------------------------------------------------
def test_iou_of_identical_masks_is_one_and_of_disjoint_masks_zero():
    a = torch.tensor([[True, False, True, False], [False, True, False, True]])
    assert overlap(a, a.clone()).iou == 1.0
    assert overlap(a, ~a).iou == 0.0
    half = torch.tensor([[True, True, False, False], [False, False, True, True]])
    o = overlap(a, half)  # both prune 4 of 8; they share (0,0) and (1,3)
    assert (o.intersection, o.union) == (2, 6)
    assert o.iou == pytest.approx(2 / 6)
    assert o.random_iou == pytest.approx(0.25 / (0.5 + 0.5 - 0.25))


def test_pooled_overlap_counts_weights_not_layers():
    big = overlap(torch.ones(10, 10, dtype=torch.bool), torch.ones(10, 10, dtype=torch.bool))  # IoU 1 over 100
    small = overlap(torch.tensor([True, False]), torch.tensor([False, True]))  # IoU 0 over 2
    assert total([big, small]).iou == pytest.approx(100 / 102)
    with pytest.raises(AnalysisInputError, match="shapes"):
        overlap(torch.zeros(2, 2, dtype=torch.bool), torch.zeros(4, dtype=torch.bool))


# --- LAPE on hand-made firing rates -------------------------------------------------------------------
def test_language_specific_neurons_are_the_low_entropy_frequent_ones():
    gen = torch.Generator().manual_seed(0)
    p = 0.2 + 0.05 * torch.rand(2, 200, generator=gen)  # 200 shared, moderately firing neurons
    p[0, 7], p[1, 7] = 0.9, 0.01  # fires a lot in language 0 only
    p[1, 42], p[0, 42] = 0.8, 0.0  # language 1 only
    p[:, 99] = 0.95  # fires a lot everywhere: frequent but not specific
    specific = lape.language_specific(p, top_rate=0.01, filter_rate=0.95, bar_rate=0.95)
    assert specific.sum() == 2
    assert specific[0, 7] and specific[1, 42] and not specific[:, 99].any()


def test_kept_share_reads_down_projection_columns():
    mask = torch.tensor([[True, False, True], [True, False, False]])  # [out, in]: columns are neurons
    torch.testing.assert_close(
        lape.kept_share([mask, torch.zeros(2, 1, dtype=torch.bool)]), torch.tensor([0.0, 1.0, 0.5, 1.0])
    )


# --- end to end on a tiny random model ----------------------------------------------------------------
@pytest.fixture(scope="module")
def text_dir(tmp_path_factory) -> Path:
    """A calibration folder with English- and Swahili-looking text (the shared FLORES is used for evaluation)."""
    folder = tmp_path_factory.mktemp("calib")
    words = {
        "en": "the river of time flows over every stone and the people sing",
        "sw": "watu wote wamezaliwa huru na sawa kwa utu na haki zao",
    }
    gen = torch.Generator().manual_seed(0)
    for lang, line in words.items():
        tokens = line.split()
        rows = [
            " ".join(tokens[i] for i in torch.randint(len(tokens), (12,), generator=gen).tolist()) for _ in range(400)
        ]
        (folder / f"{lang}.txt").write_text("\n".join(rows), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def tokenizer(text_dir):
    texts = [line for lang in LANGS for line in (text_dir / f"{lang}.txt").read_text().splitlines()[:50]]
    texts += [flores_text(lang, 20) for lang in LANGS]
    return make_tokenizer(texts)


def test_sweep_runs_the_grid_reuses_and_restores(tokenizer, text_dir, tmp_path):
    model = make_model("llama", seed=9)
    dense = DenseWeights(model)
    spec = SweepSpec(
        methods=["wanda", "mwanda"],
        sparsities=[0.5],
        mixes=["en:3", "en:2,sw:2"],
        eval_langs=list(LANGS),
        seqlen=24,
        eval_sentences=4,
        context_length=32,
        batch_size=2,
        profile="owl",
    )
    seen = []
    result = run_sweep(model, tokenizer, spec, calib_source=text_dir, on_cell=lambda r: seen.append(len(r.cells)))
    assert seen == [1, 2, 3, 4] and [(c.method, c.calib) for c in result.cells] == [
        ("wanda", "en:3"),
        ("mwanda", "en:3"),
        ("wanda", "en:2,sw:2"),
        ("mwanda", "en:2,sw:2"),
    ]
    assert dense.check_restored(), "the model must be dense again after the sweep"
    assert all(c.profile["profile"] == "owl" and abs(c.achieved_sparsity - 0.5) < 0.02 for c in result.cells)
    # a cell equals an independent prune + evaluation (reuse changes nothing)
    calib = build_calibration(tokenizer, FolderSource(text_dir), "en:2,sw:2", seqlen=24)
    hfprune.prune(model, tokenizer, method="wanda", sparsity=0.5, calibration=calib, profile="owl", batch_size=2)
    direct = flores_perplexities(model, tokenizer, list(LANGS), sentences=4, context_length=32, batch_size=2)
    for lang in LANGS:
        assert result.cells[2].eval[lang]["ppl"] == pytest.approx(direct[lang]["ppl"], rel=1e-5)
    written = write_sweep(result, tmp_path / "out")
    assert {p.name for p in written} == {"sweep.json", "sweep.md", "heatmap_s0.5.png"}
    table = (tmp_path / "out" / "sweep.md").read_text()
    assert "| dense |" in table and table.count("en:2,sw:2") >= 2
    assert json.loads((tmp_path / "out" / "sweep.json").read_text())["cells"][0]["eval"]["sw"]["ppl"] > 1


def test_sweep_with_heal_adds_a_healed_row_per_cell_that_equals_healing_the_cell_alone(tokenizer, text_dir):
    """``sweep --heal``: each cell is healed from the dense model on its own mix's languages (a copy; the next
    cell still starts dense) and its row equals pruning, healing and evaluating that cell alone."""
    from hfprune.healing import HealSettings, heal

    model = make_model("llama", seed=9)
    dense = DenseWeights(model)
    heal_settings = HealSettings(tokens=24 * 4, seqlen=24, batch_size=2, lr=1e-3, calib_source=text_dir, device="cpu")
    spec = SweepSpec(
        methods=["wanda"],
        sparsities=[0.5],
        mixes=["en:3", "sw:3"],
        eval_langs=list(LANGS),
        seqlen=24,
        eval_sentences=4,
        context_length=32,
        batch_size=2,
        heal=heal_settings,
    )
    result = run_sweep(model, tokenizer, spec, calib_source=text_dir)

    assert [(c.method, c.calib) for c in result.cells] == [
        ("wanda", "en:3"),
        ("wanda+heal", "en:3"),
        ("wanda", "sw:3"),
        ("wanda+heal", "sw:3"),
    ]
    assert dense.check_restored()
    healed_sw = result.cells[3]
    assert healed_sw.healing["languages"] == ["sw"] and healed_sw.healing["tokens_seen"] >= 96
    assert healed_sw.achieved_sparsity == pytest.approx(result.cells[2].achieved_sparsity)
    assert healed_sw.eval != result.cells[2].eval
    # the same cell by hand: prune, heal on sw (the mask's samples excluded), evaluate
    calib = build_calibration(tokenizer, FolderSource(text_dir), "sw:3", seqlen=24)
    hfprune.prune(model, tokenizer, method="wanda", sparsity=0.5, calibration=calib, batch_size=2)
    teacher = make_model("llama", seed=9)
    settings = heal_settings.with_overrides(calibration="sw:1", quality_sentences=0)
    alone = heal(model, teacher, tokenizer, settings, teacher_tokenizer=tokenizer, exclude_hashes=calib.sample_hashes)
    direct = flores_perplexities(alone.model, tokenizer, list(LANGS), sentences=4, context_length=32, batch_size=2)
    for lang in LANGS:
        assert healed_sw.eval[lang]["ppl"] == pytest.approx(direct[lang]["ppl"], rel=1e-4)


def test_sweep_refuses_bad_grids():
    with pytest.raises(SweepSpecError):
        SweepSpec(methods=["wanda"], sparsities=[0.5], mixes=[], eval_langs=["en"]).check()
    with pytest.raises(SweepSpecError, match="twice"):
        SweepSpec(methods=["wanda"], sparsities=[0.5], mixes=["en:2", "en:2"], eval_langs=["en"]).check()
    with pytest.raises(HfpruneError):
        SweepSpec(methods=["wanda"], sparsities=[1.5], mixes=["en:2"], eval_langs=["en"]).check()


def test_sweep_options_go_to_the_methods_that_take_them():
    parser = build_parser()
    args = parser.parse_args(
        [
            "sweep",
            "M",
            "--methods",
            "wanda,mwanda",
            "--calib",
            "en:2",
            "--eval-langs",
            "en",
            "--out",
            "o",
            "--mw-lambda",
            "1.5",
        ]
    )
    assert method_params(args, ["wanda", "mwanda"], grid=True) == {"wanda": {}, "mwanda": {"lam": 1.5}}
    args = parser.parse_args(
        ["sweep", "M", "--methods", "wanda", "--calib", "en:2", "--eval-langs", "en", "--out", "o", "--ria-alpha", "1"]
    )
    with pytest.raises(InvalidMethodParameterError, match="--ria-alpha apply to none of --methods wanda"):
        method_params(args, ["wanda"], grid=True)


def _pruned_folder(tokenizer, text_dir, tmp_path, mix: str, name: str, method: str = "wanda") -> Path:
    model = make_model("llama", seed=9)
    calib = build_calibration(tokenizer, FolderSource(text_dir), mix, seqlen=24)
    result = hfprune.prune(model, tokenizer, method=method, sparsity=0.5, calibration=calib)
    return hfprune.save_pruned(model, tokenizer, result, tmp_path / name)


def test_analyze_pruned_folders_and_their_base(tokenizer, text_dir, tmp_path):
    base = make_model("llama", seed=9)
    base.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    en = _pruned_folder(tokenizer, text_dir, tmp_path, "en:4", "en")
    en_again = _pruned_folder(tokenizer, text_dir, tmp_path, "en:4", "en_again")
    sw = _pruned_folder(tokenizer, text_dir, tmp_path, "sw:4", "sw")
    spec = NeuronSpec(samples=4, seqlen=24, top_rate=0.05, calib_source=text_dir)
    report = analyze([en, en_again, sw, tmp_path / "base"], neuron_spec=spec)
    folder = {m["label"]: Path(m["path"]).name for m in report["models"]}
    pairs = {(folder[p["a"]], folder[p["b"]]): p for p in report["overlap"]}
    assert pairs["en", "en_again"]["iou"] == 1.0
    assert all(v["iou"] == 1.0 for v in pairs["en", "en_again"]["by_kind"].values())
    assert 0 < pairs["en", "sw"]["iou"] < 1
    assert set(pairs["en", "sw"]["by_kind"]) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    assert set(pairs["en", "sw"]["by_block"]) == {"model.layers.0", "model.layers.1"}
    neurons = report["neurons"]
    assert neurons["languages"] == ["en", "sw"]  # the pruned models' calibration languages
    assert neurons["neurons_total"] == 2 * 128  # two blocks of intermediate size 128
    for kept in neurons["kept_share"].values():
        assert 0.4 < kept["all_neurons"] < 0.6  # half of the down-projection weights survive on average
    written = write_analysis(report, tmp_path / "analysis")
    assert {p.name for p in written} == {
        "analysis.json",
        "analysis.md",
        "iou_by_block.png",
        "neurons_by_block.png",
        "neurons_kept.png",
    }


def test_analyze_needs_something_to_compare(tokenizer, text_dir, tmp_path):
    en = _pruned_folder(tokenizer, text_dir, tmp_path, "en:4", "only")
    with pytest.raises(AnalysisInputError, match="two or more"):
        analyze([en])
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnalysisInputError, match="safetensors"):
        analyze([en, tmp_path / "empty"])


# --- the commands a user types ------------------------------------------------------------------------
def test_sweep_and_analyze_commands_end_to_end(tokenizer, text_dir, tmp_path, capsys):
    from hfprune.cli import main

    from .model_factory import save_model_folder

    base = save_model_folder(make_model("llama", seed=9), tokenizer, tmp_path / "base")
    common = ["--calib-source", str(text_dir), "--seqlen", "24", "--batch-size", "2"]
    code = main(
        [
            "sweep",
            str(base),
            "--methods",
            "wanda,mwanda",
            "--sparsity",
            "0.5",
            "--calib",
            "en:3",
            "--calib",
            "en:2,sw:2",
            "--eval-langs",
            "en,sw",
            "--eval-sentences",
            "4",
            "--context-length",
            "32",
            "--out",
            str(tmp_path / "sweep"),
            "--json",
            *common,
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert [(c["method"], c["calib"]) for c in printed["cells"]] == [
        ("wanda", "en:3"),
        ("mwanda", "en:3"),
        ("wanda", "en:2,sw:2"),
        ("mwanda", "en:2,sw:2"),
    ]
    assert printed == json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert (tmp_path / "sweep" / "heatmap_s0.5.png").read_bytes()[:4] == b"\x89PNG"
    assert (
        main(
            [
                "sweep",
                str(base),
                "--methods",
                "wanda",
                "--calib",
                "en:3",
                "--eval-langs",
                "en",
                "--out",
                str(tmp_path / "sweep"),
                *common,
            ]
        )
        != 0
    )
    assert "--overwrite" in capsys.readouterr().err  # an existing output is never replaced silently

    for mix, name in (("en:4", "en"), ("sw:4", "sw")):
        assert (
            main(
                [
                    "prune",
                    str(base),
                    "--method",
                    "wanda",
                    "--sparsity",
                    "0.5",
                    "--calib",
                    mix,
                    "--out",
                    str(tmp_path / name),
                    *common,
                ]
            )
            == 0
        )
    capsys.readouterr()
    code = main(
        [
            "analyze",
            str(tmp_path / "en"),
            str(tmp_path / "sw"),
            "--base",
            str(base),
            "--out",
            str(tmp_path / "analysis"),
            "--calib-source",
            str(text_dir),
            "--samples",
            "4",
            "--seqlen",
            "24",
            "--top-rate",
            "0.05",
            "--json",
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["overlap"]) == 1 and 0 < report["overlap"][0]["iou"] < 1
    assert report["neurons"]["languages"] == ["en", "sw"]
    assert {p.name for p in (tmp_path / "analysis").iterdir()} >= {"analysis.json", "analysis.md", "iou_by_block.png"}
