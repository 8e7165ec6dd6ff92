"""Which tokens stay, and why each one does.

In order: every added and special token, every token a config names (BOS, EOS, pad ...), the byte tokens (so any
text still encodes), the tokens of the chat template's own text (so chat formatting tokenizes as before), with
``scripts`` every token written in the kept languages' scripts; then the ranked tokens (how often the kept
languages use them, :mod:`hfprune.vocab.frequency`), most used first, up to the ``size`` cap. For BPE each kept
token brings its intermediates (:mod:`hfprune.vocab.closure`), counted against the cap with it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import NonStandardEmbeddingsError, VocabSizeError
from .closure import MergeTable
from .families import BYTE_FALLBACK_BPE, UNIGRAM, TokenizerDefinition, byte_piece
from .unicode_scripts import ScriptFilter

#: Why a token stays, in the order the reasons are tried (each token is counted under its first reason).
REASONS = ("added", "config", "bytes", "template", "scripts", "closure", "corpus")


@dataclass
class Selection:
    """The kept ids (old ids in their new order) and the reason each one was kept."""

    keep: list[int]
    reasons: dict[int, str]
    merges: list[tuple[str, str]] = field(default_factory=list)
    merges_before: int = 0
    unreachable: int = 0
    candidates: int = 0
    left_out_by_cap: int = 0
    #: tokens that stay whatever the budget (added, config, bytes, template, scripts and their intermediates)
    mandatory: int = 0
    #: every kept id in the order it joined, then the ids that would join with more room (``size`` set), in order:
    #: the kept set at a smaller size is a prefix of it (what the size/coverage curve reads)
    order: list[int] = field(default_factory=list, repr=False)

    @property
    def mapping(self) -> dict[int, int]:
        """Old id -> new id."""
        return {old: new for new, old in enumerate(self.keep)}

    def counts(self) -> dict[str, int]:
        tally = Counter(self.reasons.values())
        return {reason: tally.get(reason, 0) for reason in REASONS}

    def describe(self) -> dict[str, Any]:
        return {
            "kept_tokens": len(self.keep),
            "by_reason": self.counts(),
            "merges_kept": len(self.merges),
            "merges_before": self.merges_before,
            "unreachable_kept_tokens": self.unreachable,
            "corpus_tokens_at_min_count": self.candidates,
            "left_out_by_size_cap": self.left_out_by_cap,
            "must_keep_tokens": self.mandatory,
        }


class _Builder:
    """Grows the kept set one token at a time, closing it under the merges as it goes."""

    def __init__(self, definition: TokenizerDefinition) -> None:
        self.definition = definition
        self.reasons: dict[int, str] = {}
        self.table = MergeTable(definition.merges) if definition.family != UNIGRAM else None
        self.model_ids = {text: i for i, text in definition.tokens.items() if i in definition.model_ids}
        self.unreachable: set[int] = set()

    def needs(self, token_id: int) -> list[int]:
        """``token_id`` and the intermediates BPE builds it from, those not kept yet (``token_id`` first)."""
        return [i for i in self.path_ids(token_id) if i not in self.reasons]

    def path_ids(self, token_id: int) -> list[int]:
        """``token_id`` and every token BPE passes through when it builds it from its text."""
        if self.table is None or token_id in self.definition.added:
            return [token_id]
        text = self.definition.tokens[token_id]
        path = self.table.path(self._symbols(text), text)
        if not path.reachable:
            self.unreachable.add(token_id)
            return [token_id]
        return list(dict.fromkeys([token_id, *(self.model_ids[t] for t in path.tokens if t in self.model_ids)]))

    def add(self, ids: Iterable[int], reason: str) -> None:
        for token_id in ids:
            if token_id not in self.reasons:
                self.reasons[token_id] = reason

    def _symbols(self, text: str) -> list[str]:
        """The symbols BPE starts from: characters, or byte pieces for characters outside the vocabulary."""
        if self.definition.family != BYTE_FALLBACK_BPE:
            return list(text)
        out: list[str] = []
        for char in text:
            if char in self.model_ids:
                out.append(char)
            else:
                out.extend(byte_piece(b) for b in char.encode("utf-8"))
        return out


def select_tokens(
    definition: TokenizerDefinition,
    rank: Callable[[], Sequence[int]],
    *,
    rows: int,
    referenced: set[int],
    template: set[int] = frozenset(),
    size: int | None = None,
    scripts: ScriptFilter | None = None,
) -> Selection:
    """Decide the kept tokens (see the module docstring).

    Args:
        rank: gives the tokens the languages use, in the order they join (most used first); called only once
            the tokens that must stay are known to fit ``size`` (ranking can take a while; a refusal should not).
        rows: the model's vocabulary rows; ids at or beyond it have no embedding and cannot be kept.
        referenced: ids the model's configs name.
        template: ids of the chat template's own text (its markers, role names and newlines).

    Raises:
        VocabSizeError: ``size`` is below the tokens that must stay (special, added, config, byte, script tokens).
        NonStandardEmbeddingsError: a token that must stay has no embedding row.
    """
    builder = _Builder(definition)
    builder.add(sorted(definition.added), "added")
    builder.add(sorted(referenced), "config")
    unk = _unk_id(definition)
    builder.add([unk] if unk is not None else [], "added")
    builder.add(sorted(definition.byte_ids), "bytes")
    for token_id in sorted(template):
        if token_id < rows:
            builder.add(builder.needs(token_id)[:1], "template")
            builder.add(builder.needs(token_id), "closure")
    if scripts is not None:
        written = [i for i in sorted(definition.model_ids - definition.added) if _written_in(definition, i, scripts)]
        builder.add(written, "scripts")
        for token_id in written:
            builder.add(builder.path_ids(token_id), "closure")
    beyond = sorted(i for i in builder.reasons if i >= rows)
    if beyond:
        raise NonStandardEmbeddingsError(
            f"token id {beyond[0]} ('{definition.tokens.get(beyond[0], '?')}') must stay but the model has only "
            f"{rows} embedding rows"
        )
    mandatory = len(builder.reasons)
    if size is not None and size < mandatory:
        counts_now = Counter(builder.reasons.values())
        raise VocabSizeError(
            f"--vocab-size {size} is below the {mandatory} tokens that must stay (added/special "
            f"{counts_now['added']}, named by the config {counts_now['config']}, bytes {counts_now['bytes']}, "
            f"chat template {counts_now['template']}, scripts {counts_now['scripts']}, their intermediates "
            f"{counts_now['closure']}); ask for at least {mandatory}"
        )
    ranked = rank()
    left_out = 0
    beyond: dict[int, None] = {}  # what more room would bring, in order (``size`` set)
    for token_id in ranked:
        if token_id >= rows or token_id not in definition.tokens:
            continue
        needed = builder.needs(token_id)
        if not needed:
            continue
        if size is not None and len(builder.reasons) + len(needed) > size:
            left_out += 1
            beyond.update((i, None) for i in needed if i not in beyond)
            continue
        builder.add([i for i in needed if i == token_id], "corpus")
        builder.add(needed, "closure")
    keep = sorted(builder.reasons)
    kept_text = {definition.tokens[i] for i in keep if i in definition.model_ids}
    merges = builder.table.kept(kept_text) if builder.table is not None else []
    return Selection(
        keep=keep,
        reasons=dict(builder.reasons),
        merges=merges,
        merges_before=len(definition.merges),
        unreachable=len(builder.unreachable & set(keep)),
        candidates=len(ranked),
        left_out_by_cap=left_out,
        mandatory=mandatory,
        order=[*builder.reasons, *(i for i in beyond if i not in builder.reasons)],
    )


def _written_in(definition: TokenizerDefinition, token_id: int, scripts: ScriptFilter) -> bool:
    data = definition.token_bytes(token_id)
    return data is not None and scripts.allows_bytes(data)


def _unk_id(definition: TokenizerDefinition) -> int | None:
    model = definition.data.get("model") or {}
    if definition.family == UNIGRAM:
        return model.get("unk_id")
    unk = model.get("unk_token")
    return next((i for i, text in definition.tokens.items() if text == unk), None) if unk else None
