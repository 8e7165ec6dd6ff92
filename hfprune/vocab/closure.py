"""Closing a set of BPE tokens under the merges, so that every kept token stays reachable.

BPE builds a token by merging pairs of symbols in rank order. If a kept token's intermediate were dropped,
the merges that lead to it could not fire and the token would never be produced again. Within one word, the
merges that build a final token touch only that token's own symbols and fire in rank order among them, so
they are exactly the merges BPE applies to the token's text on its own: :meth:`MergeTable.path` replays them.

Keeping every intermediate (and every merge whose parts and result are all kept, in the original order) is
enough for text to tokenize *identically*: at each step the original merge is still the lowest-ranked one that
applies, since the trimmed merges are a subset of the original ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass
class Path:
    """How BPE builds one token from its symbols: the tokens it passes through (symbols, intermediates)."""

    reachable: bool
    tokens: list[str]


class MergeTable:
    """The merges of a BPE in rank order, and the replay of BPE on one token's text."""

    def __init__(self, merges: Iterable[tuple[str, str]]) -> None:
        self.merges = list(merges)
        self.rank = {pair: index for index, pair in enumerate(self.merges)}

    def path(self, symbols: list[str], target: str) -> Path:
        """Apply BPE to ``symbols`` (the token's characters, byte pieces for characters outside the
        vocabulary): the lowest-ranked adjacent pair first, the leftmost among equals, as ``tokenizers`` does."""
        seen = list(symbols)
        symbols = list(symbols)
        rank = self.rank
        while len(symbols) > 1:
            best, where = None, -1
            for i in range(len(symbols) - 1):
                r = rank.get((symbols[i], symbols[i + 1]))
                if r is not None and (best is None or r < best):
                    best, where = r, i
            if best is None:
                break
            merged = symbols[where] + symbols[where + 1]
            symbols[where : where + 2] = [merged]
            seen.append(merged)
        return Path(symbols == [target], seen)

    def kept(self, tokens: set[str]) -> list[tuple[str, str]]:
        """The merges whose two parts and result all stay, in their original order."""
        return [(a, b) for a, b in self.merges if a in tokens and b in tokens and a + b in tokens]


def close(
    kept: set[int],
    tokens: dict[int, str],
    table: MergeTable,
    symbols_of: Callable[[str], list[str]],
    skip: set[int],
) -> tuple[set[int], dict[str, int]]:
    """``kept`` plus every intermediate of its tokens; ``skip`` (added tokens) are never built by merges.

    Returns the closed set and counts: tokens added by the closure, and kept tokens that BPE cannot build
    from their own text (they were unreachable before trimming too, except as added tokens).
    """
    ids = {text: i for i, text in tokens.items() if i not in skip}
    closed = set(kept)
    unreachable = 0
    for token_id in sorted(kept - skip):
        text = tokens[token_id]
        path = table.path(symbols_of(text), text)
        if not path.reachable:
            unreachable += 1
            continue
        closed.update(ids[t] for t in path.tokens if t in ids)
    return closed, {"added_by_closure": len(closed - kept), "unreachable": unreachable}
