"""hfprune card: rendered from model_cards/, loadable with ModelCard.load, every result in model-index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from hfprune.card import write_card
from hfprune.constants import PLOT_FILE, RESULTS_FILE
from hfprune.errors import NotAPrunedFolderError, ResultsFormatError

from ..hub_mirror import publish
from .conftest import make_pruned_folder

LANGS = ["en", "sw"]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> tuple[Path, Path]:
    """A pruned random Llama and real `hfprune eval` results for it (ppl and xcopa in en and sw, tiny limits)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hfprune.evaluation.plot import plot_comparison
    from hfprune.evaluation.runner import compare, evaluate_model

    root = tmp_path_factory.mktemp("card")
    dense_dir = make_pruned_folder(root / "dense", sparsity=0.0, card=False)
    pruned_dir = make_pruned_folder(root / "pruned", sparsity=0.6, card=False)
    options = dict(langs=LANGS, tasks=["ppl", "xcopa"], limit=4, context_length=64, cache=False, progress=False)
    scored = {}
    for role, folder in (("dense", dense_dir), ("pruned", pruned_dir)):
        model = AutoModelForCausalLM.from_pretrained(folder).eval()
        scored[role] = evaluate_model(model, AutoTokenizer.from_pretrained(folder), **options)
    comparison = compare(scored["pruned"], scored["dense"])
    results = root / "elsewhere" / "results.json"
    results.parent.mkdir()
    results.write_text(json.dumps(comparison.to_dict()))
    plot_comparison(comparison, results.with_suffix(".png"))
    return pruned_dir, results


def test_card_loads_and_lists_every_task_and_language_in_model_index(evaluated, local_hub):
    folder, results = evaluated
    path = write_card(folder, results=results, repo_id="tester/tiny-magnitude")

    card = ModelCard.load(path)
    data = json.loads(results.read_text())
    expected = {(r["task"], r["lang"]) for r in data["pruned"]["results"]}
    listed = {(r.task_name, r.dataset_args["language"]) for r in card.data.eval_results}
    assert listed == expected and len(expected) == 4
    ppl_en = next(
        r
        for r in card.data.eval_results
        if r.task_name == "ppl" and r.metric_type == "perplexity" and r.dataset_args["language"] == "en"
    )
    measured = next(r for r in data["pruned"]["results"] if r["task"] == "ppl" and r["lang"] == "en")
    assert ppl_en.metric_value == pytest.approx(measured["metrics"]["ppl"], rel=1e-6)
    assert (folder / RESULTS_FILE).read_bytes() == results.read_bytes()
    assert (folder / PLOT_FILE).read_bytes() == results.with_suffix(".png").read_bytes()
    assert f"]({PLOT_FILE})" in card.text


def test_card_metadata_and_sections_come_from_hfprune_json(evaluated, local_hub):
    folder, results = evaluated
    card = ModelCard.load(write_card(folder, results=results, repo_id="tester/tiny-magnitude"))
    metadata = json.loads((folder / "hfprune.json").read_text())

    assert card.data.base_model == "acme/base-llama"  # the recorded base, even when its card cannot be read
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "text-generation"
    sparsity_tag = f"sparsity-{round(metadata['achieved_sparsity'] * 100)}"
    assert {"pruned", "sparse", "magnitude", sparsity_tag} <= set(card.data.tags)
    assert set(LANGS) <= set(card.data.language)
    assert 'from_pretrained("tester/tiny-magnitude")' in card.text
    assert " ".join(metadata["command"]) in card.text
    for kind, row in metadata["sparsity_by_kind"].items():
        assert f"| `{kind}` | {row['layers']} |" in card.text
    changes = json.loads(results.read_text())["changes"]
    first = changes[0]
    assert f"| {first['lang']} | {first['dense']:.4g} | {first['pruned']:.4g} | {first['relative']:+.1%} |" in card.text


def test_gated_base_model_licence_is_carried_to_the_card(local_hub, tmp_path):
    base = make_pruned_folder(tmp_path / "base", sparsity=0.0, card=False)
    (base / "README.md").write_text(
        "---\nlicense: gemma\nlicense_link: https://ai.google.dev/gemma/terms\n"
        "extra_gated_prompt: Accept the Gemma terms\nextra_gated_button_content: Acknowledge\n---\n# base\n"
    )
    commit = publish(local_hub.mirror_root, "acme/gated-base", base)
    pruned = make_pruned_folder(tmp_path / "pruned", sparsity=0.5, card=False)
    metadata = json.loads((pruned / "hfprune.json").read_text())
    metadata["base_model"] = {"id": "acme/gated-base", "revision": "main", "commit": commit}
    (pruned / "hfprune.json").write_text(json.dumps(metadata))

    card = ModelCard.load(write_card(pruned))

    assert card.data.license == "gemma" and card.data.license_link == "https://ai.google.dev/gemma/terms"
    assert card.data.base_model == "acme/gated-base"
    assert "The base model is gated" in card.text and "https://huggingface.co/acme/gated-base" in card.text
    assert card.data.eval_results is None and "No evaluation results" in card.text


def test_licence_override_and_unknown_licence(tmp_path):
    pruned = make_pruned_folder(tmp_path / "pruned", card=False)
    metadata = json.loads((pruned / "hfprune.json").read_text())
    metadata["base_model"] = {"id": str(tmp_path / "pruned")}  # a local base without a card
    (pruned / "hfprune.json").write_text(json.dumps(metadata))

    assert ModelCard.load(write_card(pruned)).data.license == "unknown"
    assert ModelCard.load(write_card(pruned, license="mit")).data.license == "mit"


def test_card_refuses_folders_and_results_not_from_hfprune(tmp_path):
    with pytest.raises(NotAPrunedFolderError, match="hfprune prune"):
        write_card(tmp_path)
    pruned = make_pruned_folder(tmp_path / "pruned", card=False)
    bogus = tmp_path / "bogus.json"
    bogus.write_text(json.dumps({"accuracy": 0.5}))
    with pytest.raises(ResultsFormatError, match="hfprune eval"):
        write_card(pruned, results=bogus)
    assert not (pruned / "README.md").exists() and not (pruned / RESULTS_FILE).exists()
