"""M-Wanda (Choenni & Titov, 2025), as *reconstructed* here from the paper's abstract (its code was unreachable).

Wanda pools all calibration tokens, so the language with the most tokens, and the channels every language
uses, decide what survives. M-Wanda keeps the statistics per language (``L`` languages, ``T_l`` tokens of
language ``l``, ``T`` in all) and scores weight ``W_ij`` of a layer by

    s_l,j  = sqrt(sum_t x_tj^2 over language l  *  T / T_l)     language l's norm, as if it had all T tokens
    s_l,j <- s_l,j * (E / E_l)^(gamma/2),  E_l = mean_j s_l,j^2,  E = mean_l E_l     equal energy per language
    mu_j   = sqrt(mean_l s_l,j^2)                               language-balanced Wanda norm      (part a)
    sd_j   = std_l s_l,j   (population std over languages)      cross-lingual spread              (part a)
    f_l,j  = P(|x_tj| > RMS_t(x) | language l)                 firing probability in language l
    p_j    = max_l f_l,j - mean_l f_l,j                         fires more in some language       (part b)

    score_ij = |W_ij| * (mu_j + lambda * sd_j) * (1 + beta * p_j),   compared within each output row,

and (part c) spreads sparsity over blocks with the ``crosslingual`` profile: blocks whose languages' channel
statistics correlate least are pruned less, within ``target +- delta`` (see ``pruning.profiles``).

Switches (0 turns a part off): ``--mw-lambda`` (lambda), ``--mw-prob`` (beta), ``--mw-layerwise`` (delta),
``--mw-equalize`` (gamma: a language whose activations are weaker overall still gets an equal say in which
channels matter). With all four at 0 the score is Wanda's with languages weighted equally; with one
calibration language it *is* Wanda's, bit for bit (``T / T_l = 1``, the spread is 0, ``p_j = 0``).

Defaults (lambda 0.25, delta 0.04; beta and gamma 0) were chosen on Gemma 3 270M at 50%, 8-language
calibration, on FLORES devtest sentences 500-539, disjoint from the reported ones
(``benchmarks/bench_methods.py --parts tune``). Mean / worst-language perplexity there: Wanda 105.4 / 218.4;
lambda 0.25 alone 104.8 / 216.5 (lambda 1, the tiny model's choice: 106.3 / 220.7); adding delta 0.04 gives
106.8 / 195.7: the cross-lingual layerwise profile is what helps the worst language (Swahili, -10%), for a
mean 1.4% above Wanda's (OWL instead of it: 113.7 / 195.6). With lambda 0.25, beta 0.5 (108.6 / 232.4) and
gamma 1 (106.4 / 226.1) made both worse; gamma 0.5 lowered the mean (103.8) but raised the worst (219.3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from ...errors import InvalidMWandaParameterError
from ..base import ScoreMethod, register
from ..profiles import CrosslingualProfile
from ..stats import FIRES, SQ_SUM, LayerStats


# The shape every method shares (name, summary, needs, parameters as fields): see pruning/base.py.
@register
@dataclass
class MWanda(ScoreMethod):
    name: ClassVar[str] = "mwanda"
    summary: ClassVar[str] = "Wanda with per-language statistics: balanced mean + spread, firing prob., layerwise"
    needs: ClassVar[frozenset[str]] = frozenset({SQ_SUM, FIRES})

    lam: float = field(
        default=0.25,
        metadata={"flag": "--mw-lambda", "help": "weight of the cross-lingual spread of activation norms (0: off)"},
    )
    prob: float = field(
        default=0.0,
        metadata={
            "flag": "--mw-prob",
            "help": "weight of the language-specific firing probability, max minus mean over languages (0: off)",
        },
    )
    layerwise: float = field(
        default=0.04,
        metadata={
            "flag": "--mw-layerwise",
            "help": "half-width of the cross-lingual layerwise sparsity range (0: uniform)",
        },
    )
    equalize: float = field(
        default=0.0,
        metadata={
            "flag": "--mw-equalize",
            "help": "give every language's activation energy the same weight, 0 (off) to 1 (fully)",
        },
    )

    def __post_init__(self) -> None:
        checks = (
            ("--mw-lambda", self.lam, "", True),
            ("--mw-prob", self.prob, "", True),
            ("--mw-layerwise", self.layerwise, " and < 1", self.layerwise < 1),
            ("--mw-equalize", self.equalize, " and <= 1", self.equalize <= 1),
        )
        for flag, value, bound, within in checks:
            if not (value >= 0 and within):  # NaN fails both comparisons
                raise InvalidMWandaParameterError(f"{flag} must be >= 0{bound}, got {value}")

    def layerwise_profile(self) -> CrosslingualProfile | None:
        return CrosslingualProfile(delta=self.layerwise) if self.layerwise > 0 else None

    def score(self, weight: torch.Tensor, stats: LayerStats | None) -> torch.Tensor:
        assert stats is not None
        importance = channel_importance(stats, self.lam, self.prob, self.equalize).to(weight.device)
        return weight.abs() * importance.unsqueeze(0)


def channel_importance(stats: LayerStats, lam: float, prob: float, equalize: float = 0.0) -> torch.Tensor:
    """``(mu_j + lambda sd_j) (1 + beta p_j)`` per input channel (see the module docstring)."""
    langs = [lang for lang in stats.languages if stats.tokens.get(lang)]
    total = sum(stats.tokens[lang] for lang in langs)
    balanced = torch.stack([stats.sq_sum[lang] * (total / (len(langs) * stats.tokens[lang])) for lang in langs])
    if equalize > 0:
        energy = balanced.mean(1, keepdim=True).clamp_min(torch.finfo(balanced.dtype).tiny)
        balanced = balanced * (energy.mean() / energy) ** equalize
    importance = balanced.sum(0).sqrt()
    if lam > 0:
        per_language = (balanced * len(langs)).sqrt()
        importance = importance + lam * per_language.std(0, correction=0)
    if prob > 0:
        rates = torch.stack([stats.fire_rate(lang) for lang in langs])
        importance = importance * (1 + prob * (rates.max(0).values - rates.mean(0)))
    return importance
