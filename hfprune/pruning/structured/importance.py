"""Importance of neurons, head groups and blocks, per calibration language, and how languages are combined.

Scores are Wanda-style and structured: a neuron's score is the norm of its output weight column (``down_proj``'s
column ``j``) times its activation norm; a key/value group's is the sum of that over its query heads' ``o_proj``
columns; a block's is its *influence*, the mean ``1 - cos`` between each token's block input and output
(ShortGPT). Each is computed per calibration language from ``pruning.stats`` and combined by ``--lang-agg``:

* ``pooled``: today's token-weighted statistics (sum of squared activations over all languages), as Wanda pools
  them: languages with more calibration tokens weigh more;
* ``mean``, ``min``, ``max`` over languages, after dividing each language's scores by their mean over the
  candidates (a block's neurons, a block's groups, the model's blocks). The division makes languages comparable:
  a language whose activations are weak overall still ranks its own neurons (M-Wanda's premise is that pooled
  statistics sacrifice such languages). ``max`` keeps a structure that *any* kept language needs; ``min`` keeps
  only what every language needs; ``mean`` weighs languages equally.

With one calibration language every aggregation ranks alike (the division is by one positive constant).
"""

from __future__ import annotations

import torch

from ...errors import UnknownAggregationError
from ..stats import LayerStats

#: ``--lang-agg`` choices; see the module docstring
LANG_AGGS = ("pooled", "mean", "min", "max")


def check_lang_agg(name: str) -> str:
    if name not in LANG_AGGS:
        raise UnknownAggregationError(f"unknown --lang-agg '{name}'; choose one of {', '.join(LANG_AGGS)}")
    return name


def combine(per_language: dict[str, torch.Tensor], pooled: torch.Tensor, how: str) -> torch.Tensor:
    """One score per candidate from per-language scores (``how`` in :data:`LANG_AGGS`)."""
    check_lang_agg(how)
    if how == "pooled" or not per_language:
        return pooled
    normalised = torch.stack([scores / scores.mean().clamp_min(1e-30) for scores in per_language.values()])
    if how == "mean":
        return normalised.mean(0)
    return normalised.amin(0) if how == "min" else normalised.amax(0)


def neuron_scores(out_weight: torch.Tensor, stats: LayerStats) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-language and pooled scores of the input channels of ``out_weight`` (``[out, in]``): the MLP's neurons
    for ``down_proj``, the heads' channels for ``o_proj``.

    Per language the activation term is the channel's RMS over that language's tokens; pooled it is the norm
    over all tokens (Wanda's).
    """
    column = out_weight.float().norm(dim=0).cpu()
    per_language = {lang: column * stats.rms(lang).cpu() for lang in stats.languages}
    return per_language, column * stats.norms().cpu()


def grouped(scores: torch.Tensor, groups: int) -> torch.Tensor:
    """Sum consecutive channels into ``groups`` equal groups (a head's ``head_dim`` channels, a group's heads)."""
    return scores.reshape(groups, -1).sum(1)


def block_scores(entries: list[LayerStats]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-language and pooled influence of each block, from the blocks' :data:`~hfprune.pruning.stats.BLOCK`
    statistics in model order."""
    languages = list(entries[0].influence)
    per_language = {lang: torch.tensor([entry.block_influence(lang) for entry in entries]) for lang in languages}
    pooled = torch.tensor(
        [float(sum(entry.influence.values())) / max(entry.total_tokens, 1) for entry in entries]  # type: ignore[arg-type]
    )
    return per_language, pooled


def lowest(scores: torch.Tensor, count: int) -> list[int]:
    """Indices of the ``count`` lowest scores, ascending by index (ties: the lower index goes first)."""
    if count <= 0:
        return []
    order = torch.sort(scores.double(), stable=True).indices[:count]
    return sorted(int(i) for i in order)


def removed_share(per_language: dict[str, torch.Tensor], removed: list[int]) -> dict[str, float]:
    """Per language, the share of its total score that the removed candidates held (what each language lost)."""
    index = torch.tensor(removed, dtype=torch.long)
    return {
        lang: float(scores[index].sum() / scores.sum().clamp_min(1e-30)) if removed else 0.0
        for lang, scores in per_language.items()
    }
