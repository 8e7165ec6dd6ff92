"""The model card of a pruned folder, rendered from the Jinja/Markdown template in ``model_cards/``.

Everything in the card comes from files beside the weights: ``hfprune.json`` (what was done), the evaluation
results of ``hfprune eval`` (what it cost, per language), and the base model's card (its licence). The YAML
front matter carries the Hub metadata (``base_model``, ``language``, ``license``, ``tags``, ``model-index``)
so the Hub lists the model under its base and shows its scores.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import jinja2
from huggingface_hub import ModelCard, ModelCardData

from ..assets import asset_path
from ..constants import CARD_FILE, CARD_TEMPLATE, METADATA_FILE, PLOT_FILE, RESULTS_FILE
from ..errors import CardTemplateError, NotAPrunedFolderError, OutputExistsError
from ..io import atomic_write_text, read_json_object
from .base_model import BaseModelCard, read_base_model_card
from .export import exports_view
from .healing import healing_view
from .results import CardResults, check_results_match, load_results
from .structured import structured_view
from .vocabulary import vocabulary_view


def default_template() -> Path:
    """``model_cards/hfprune_model_card.md`` from the checkout, or from the wheel's data files."""
    return asset_path(CARD_TEMPLATE)


def write_card(
    folder: str | Path,
    *,
    results: str | Path | None = None,
    plot: str | Path | None = None,
    repo_id: str | None = None,
    license: str | None = None,  # noqa: A002 - the Hub's field name
    template: str | Path | None = None,
    allow_other_model: bool = False,
    overwrite: bool = False,
) -> Path:
    """Render the card of ``folder`` and write it as ``folder/README.md``; return its path.

    Args:
        results: a results JSON of ``hfprune eval``; copied into the folder as ``eval_results.json`` (default:
            the one already there, if any).
        plot: its PNG (default: ``results`` with ``.png``, when it exists); copied as ``eval_results.png``.
        repo_id: the id the model will have on the Hub (for the "How to use" snippet); default the folder name.
        license: override the licence inherited from the base model.
        template: a Jinja/Markdown template (default :func:`default_template`).
        allow_other_model: keep results that record other weights than the folder's; the card says so.
        overwrite: replace a ``README.md`` that is not a card hfprune wrote (a hand-written one is kept otherwise).

    Raises:
        NotAPrunedFolderError: no ``hfprune.json`` in ``folder``.
        ResultsFormatError: ``results`` is not a results file of ``hfprune eval``.
        ResultsOfAnotherModelError: ``results`` measured other weights (without ``allow_other_model``).
        OutputExistsError: ``README.md`` is there and is not hfprune's card (without ``overwrite``).
        CardTemplateError: the template is missing or fails to render.
    """
    folder = Path(folder)
    results_path, plot_path = _results_to_bring(folder, results, plot)
    # Rendered (which checks the folder, the results and whose weights they measured) before anything is written.
    card = render_card(
        folder,
        results=results_path,
        plot=folder / PLOT_FILE if plot_path else None,
        repo_id=repo_id,
        license=license,
        template=template,
        allow_other_model=allow_other_model,
    )
    existing = folder / CARD_FILE
    if existing.is_file() and not overwrite and not is_hfprune_card(existing):
        raise OutputExistsError(
            f"{existing} is not a card hfprune wrote (its front matter has no 'hfprune' tag), so it is kept: pass "
            "--overwrite to replace it with hfprune's card, or move it away"
        )
    _copy_in(results_path, folder / RESULTS_FILE)
    _copy_in(plot_path, folder / PLOT_FILE)
    return atomic_write_text(folder / CARD_FILE, str(card))


def render_card(
    folder: Path,
    *,
    results: Path | None = None,
    plot: Path | None = None,
    repo_id: str | None = None,
    license: str | None = None,  # noqa: A002
    template: str | Path | None = None,
    allow_other_model: bool = False,
) -> ModelCard:
    """The card as a :class:`~huggingface_hub.ModelCard` (not written anywhere)."""
    metadata = read_metadata(folder)
    base = read_base_model_card(metadata.get("base_model", {}))
    model_name = (repo_id or folder.resolve().name).split("/")[-1]
    card_results = load_results(results, model_name) if results else None
    if card_results is not None and results is not None:
        check_results_match(card_results, folder, results, allow_other_model)
    calibration = _calibration_view(metadata.get("calibration", {}))
    card_data = _card_data(metadata, base, card_results, calibration, model_name, license)
    vocab = vocabulary_view(metadata, card_results, folder)
    context = {
        "card_data": card_data.to_yaml(),
        "model_name": model_name,
        "repo_id": repo_id or f"YOUR_USER/{model_name}",
        "base": base,
        "base_display": base.repo_id or _local_base_name(base),
        "license_text": _license_text(card_data.license, base, license),
        "method": metadata.get("method", "unknown"),
        "params": metadata.get("params") or {},
        "structure": metadata.get("structure", "unstructured"),
        "target_sparsity": metadata.get("target_sparsity"),
        "achieved_sparsity": metadata.get("achieved_sparsity"),
        "seed": metadata.get("seed"),
        "sparsity_by_kind": metadata.get("sparsity_by_kind", {}),
        "layers": metadata.get("layers", []),
        "calibration": calibration,
        "calibration_languages": list(calibration.get("languages", {})),
        "results": card_results,
        "plot": plot.name if plot else None,
        "command": _command_text(metadata),
        "versions": metadata.get("versions", {}),
        "pruned": bool(metadata.get("method")),
        "vocab": vocab,
        "healing": healing_view(metadata, folder),
        "exports": exports_view(folder),
        "structured": structured_view(metadata),
        "pct": _pct,
        "signed_pct": _signed_pct,
        "num": _num,
    }
    return ModelCard(_render(template or default_template(), context))


def is_hfprune_card(path: Path) -> bool:
    """Whether ``path`` is a model card hfprune rendered (its front matter carries the ``hfprune`` tag)."""
    try:
        tags = ModelCard(path.read_text(encoding="utf-8")).data.tags or []
    except Exception:  # noqa: BLE001 - unreadable, not UTF-8, or front matter that is not YAML: not ours
        return False
    return "hfprune" in tags


def read_metadata(folder: Path) -> dict[str, Any]:
    if not folder.is_dir():
        raise NotAPrunedFolderError(f"{folder} is not a folder; give the folder `hfprune prune` wrote (its --out)")
    try:
        return read_json_object(folder / METADATA_FILE)
    except ValueError as err:
        raise NotAPrunedFolderError(
            f"{err}: `hfprune card` describes folders written by `hfprune prune` (or `hfprune run`); prune the "
            "model with hfprune first"
        ) from err


def _results_to_bring(
    folder: Path, results: str | Path | None, plot: str | Path | None
) -> tuple[Path | None, Path | None]:
    """The results and plot the card shows: the given ones (published with the folder once copied in), else
    the ones already in the folder."""
    if results is None:
        inside, plot_inside = folder / RESULTS_FILE, folder / PLOT_FILE
        return (inside if inside.is_file() else None), (plot_inside if plot_inside.is_file() else None)
    results = Path(results)
    plot = Path(plot) if plot else results.with_suffix(".png")
    return results, (plot if plot.is_file() else None)


def _copy_in(source: Path | None, target: Path) -> None:
    if source is not None and source.resolve() != target.resolve():
        shutil.copyfile(source, target)


def _card_data(
    metadata: dict[str, Any],
    base: BaseModelCard,
    results: CardResults | None,
    calibration: dict[str, Any],
    model_name: str,
    license_override: str | None,
) -> ModelCardData:
    sparsity = metadata.get("achieved_sparsity") or 0.0
    trimmed_languages = (metadata.get("vocab") or {}).get("languages", [])
    languages = list(
        dict.fromkeys([*calibration.get("languages", {}), *trimmed_languages, *(results.languages if results else [])])
    )
    tags = ["pruned", "sparse", metadata.get("method", "unknown"), f"sparsity-{round(sparsity * 100)}", "hfprune"]
    if not metadata.get("method"):  # a trimmed vocabulary alone: nothing was pruned
        tags = ["hfprune"]
    elif metadata.get("structured"):  # smaller and dense: no zeros to advertise
        tags = ["pruned", "structured-pruning", metadata.get("method", "unknown"), "hfprune"]
    if metadata.get("vocab"):
        tags.insert(-1, "vocabulary-trimmed")
    if not metadata.get("structured") and metadata.get("structure", "unstructured") != "unstructured":
        tags.append(f"{metadata['structure']}-sparsity")
    extra: dict[str, Any] = {}
    if base.license_name:
        extra["license_name"] = base.license_name
    if base.license_link:
        extra["license_link"] = base.license_link
    return ModelCardData(
        base_model=base.repo_id,
        language=languages or None,
        library_name="transformers",
        pipeline_tag="text-generation",
        license=license_override or base.license or "unknown",
        tags=tags,
        model_name=model_name if results and results.eval_results else None,
        eval_results=results.eval_results if results and results.eval_results else None,
        **extra,
    )


def _default_source_text(source: dict[str, Any]) -> str:
    """hfprune's default calibration text, by where each language's text came from."""
    by_root: dict[str, list[str]] = {}
    for lang, used in source.get("languages", {}).items():
        by_root.setdefault(str(used.get("root")), []).append(lang)
    parts = []
    for root, langs in by_root.items():
        if root == "shipped":
            where = "the calibration text shipped with hfprune (NTREX-128, XQuAD contexts, UDHR; CC BY-SA 4.0 / OHCHR)"
        elif root == "hub":
            where = f"`{source['languages'][langs[0]].get('dataset', 'the Hub')}` on the Hub"
        else:
            where = f"`{root}/calib/` (the data folder set by HFPRUNE_DATA_DIR)"
        parts.append(f"{where} for {', '.join(langs)}")
    return "; ".join(parts) or "hfprune's default calibration text"


def _calibration_view(calibration: dict[str, Any]) -> dict[str, Any]:
    """The calibration record with totals and a one-line description of the source."""
    if not calibration or calibration.get("used") is False:
        return {"used": False, "languages": {}}
    source = calibration.get("source", {})
    if source.get("kind") == "folder":
        source_text = f"text files under `{Path(str(source.get('path', ''))).name}/`"
    elif source.get("kind") == "default":
        source_text = _default_source_text(source)
    else:
        source_text = f"`{source.get('id') or source.get('path') or source.get('kind', 'unknown source')}`"
    return {
        **calibration,
        "used": True,
        "total_samples": sum(row.get("samples", 0) for row in calibration.get("languages", {}).values()),
        "source_text": source_text,
        "files": source.get("files", {}),
        "sample_hashes": calibration.get("sample_hashes", []),
    }


def _license_text(license_id: str | None, base: BaseModelCard, override: str | None) -> str:
    if override:
        return f"{override} (set when the card was written)"
    if base.license:
        name = f" ({base.license_name})" if base.license_name else ""
        link = f", see {base.license_link}" if base.license_link else ""
        return f"{base.license}{name}, inherited from the base model{link}"
    return "unknown: the base model's card states none; check the base model's terms before publishing"


def _local_base_name(base: BaseModelCard) -> str:
    if base.local_name:
        return f"`{base.local_name}` (a local folder)"
    return f"`{Path(base.local_path).name}`" if base.local_path else "an unnamed base model"


def _command_text(metadata: dict[str, Any]) -> str:
    command = metadata.get("command")
    if not command:
        return "# the command was not recorded in hfprune.json"
    return " ".join(_quote(part) for part in command)


def _quote(part: str) -> str:
    import shlex

    return shlex.quote(str(part))


def _render(template: str | Path, context: dict[str, Any]) -> str:
    path = Path(template)
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as err:
        raise CardTemplateError(
            f"cannot read the card template {path} ({err}); pass --template PATH or restore model_cards/"
        ) from err
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)  # noqa: S701 - Markdown, not HTML
    try:
        return environment.from_string(source).render(**context)
    except jinja2.TemplateError as err:
        raise CardTemplateError(f"the card template {path} failed to render: {err}") from err


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _signed_pct(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:+.1%}"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
