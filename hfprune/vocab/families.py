"""What kind of tokenizer this is, read from its ``tokenizer.json``, and which of its tokens spell raw bytes.

Three families can be trimmed so that *any* text still encodes afterwards:

- byte-level BPE (GPT-2, Llama 3, Qwen2, BLOOM): every text is first mapped to 256 printable stand-ins for its
  bytes, so keeping those 256 base tokens keeps every byte sequence encodable;
- BPE with byte fallback (SentencePiece style: Gemma, Llama 2, Mistral): a character missing from the
  vocabulary is written as ``<0xNN>`` byte pieces, so keeping the 256 byte pieces does the same;
- Unigram (mT5, XLM-R): a lattice of pieces; with byte fallback as above, without it a character no kept piece
  covers becomes the unknown token, as it did before for characters outside the vocabulary.

Everything else is refused: WordPiece and WordLevel have no byte alphabet, a BPE with neither byte fallback nor a
byte-level alphabet would turn dropped characters into ``<unk>``, and a slow tokenizer has no ``tokenizer.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import UnsupportedTokenizerError

BYTE_LEVEL_BPE = "byte-level BPE"
BYTE_FALLBACK_BPE = "BPE with byte fallback"
UNIGRAM = "Unigram"
FAMILIES = (BYTE_LEVEL_BPE, BYTE_FALLBACK_BPE, UNIGRAM)


def byte_piece(value: int) -> str:
    """The SentencePiece name of one byte: ``<0x0A>``."""
    return f"<0x{value:02X}>"


def byte_level_alphabet() -> dict[int, str]:
    """Byte -> its printable stand-in in byte-level BPE (GPT-2's table: printable Latin-1 bytes stand for
    themselves, the 68 others are shifted above U+0100 in byte order)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


@dataclass
class TokenizerDefinition:
    """A fast tokenizer's full definition (its ``tokenizer.json`` as data) with what trimming needs from it.

    Attributes:
        data: the parsed ``tokenizer.json``.
        family: one of :data:`FAMILIES`.
        tokens: id -> token text, for the model vocabulary and the added tokens.
        model_ids: ids that belong to the model vocabulary (the rest are added tokens only).
        added: ids of added tokens (special or not).
        byte_ids: ids of the tokens that spell single bytes (empty for a Unigram without byte fallback).
        merges: BPE merges in rank order, as pairs (empty for Unigram).
    """

    data: dict[str, Any]
    family: str
    tokens: dict[int, str]
    model_ids: set[int]
    added: set[int]
    byte_ids: set[int]
    merges: list[tuple[str, str]] = field(default_factory=list)

    @property
    def size(self) -> int:
        """One past the largest id: the rows an embedding needs for this tokenizer."""
        return max(self.tokens) + 1 if self.tokens else 0

    @property
    def ids(self) -> dict[str, int]:
        """Token text -> id (model vocabulary first; an added token with the same text shares its id)."""
        return {text: i for i, text in sorted(self.tokens.items(), reverse=True)}

    def token_bytes(self, token_id: int) -> bytes | None:
        """The bytes a token stands for in text, or ``None`` for an added token (kept whatever it spells)."""
        if token_id in self.added:
            return None
        text = self.tokens[token_id]
        if self.family == BYTE_LEVEL_BPE:
            reverse = _reverse_alphabet()
            return bytes(reverse[ch] for ch in text) if all(ch in reverse for ch in text) else text.encode()
        if token_id in self.byte_ids:
            return bytes([int(text[3:5], 16)])
        return text.replace("▁", " ").encode("utf-8")


_REVERSE: dict[str, int] = {}


def _reverse_alphabet() -> dict[str, int]:
    if not _REVERSE:
        _REVERSE.update({ch: b for b, ch in byte_level_alphabet().items()})
    return _REVERSE


def read_definition(tokenizer: Any) -> TokenizerDefinition:
    """The definition of a transformers tokenizer, checked to be a family that can be trimmed.

    Raises:
        UnsupportedTokenizerError: no ``tokenizer.json`` behind it (a slow tokenizer), or a family other than
            byte-level BPE, BPE with byte fallback and Unigram.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise UnsupportedTokenizerError(
            f"{type(tokenizer).__name__} has no tokenizer.json (it is not a fast tokenizer); vocabulary trimming "
            "rewrites tokenizer.json, so convert the tokenizer to a fast one first"
        )
    return parse_definition(json.loads(backend.to_str()))


def parse_definition(data: dict[str, Any]) -> TokenizerDefinition:
    """:func:`read_definition` from the parsed ``tokenizer.json`` itself."""
    model = data.get("model") or {}
    kind = model.get("type") or ("BPE" if "merges" in model else None)
    family = _family(kind, model, data)
    tokens: dict[int, str] = {}
    if family == UNIGRAM:
        tokens = {i: str(entry[0]) for i, entry in enumerate(model.get("vocab") or [])}
    else:
        tokens = {int(i): str(text) for text, i in (model.get("vocab") or {}).items()}
    model_ids = set(tokens)
    added: set[int] = set()
    for entry in data.get("added_tokens") or []:
        token_id, content = int(entry["id"]), str(entry["content"])
        if token_id in tokens and tokens[token_id] != content:
            raise UnsupportedTokenizerError(
                f"tokenizer.json gives id {token_id} to both '{tokens[token_id]}' (vocabulary) and '{content}' "
                "(added token); such a tokenizer cannot be remapped safely"
            )
        tokens[token_id] = content
        added.add(token_id)
    by_text = {text: i for i, text in tokens.items() if i in model_ids}
    if family == BYTE_LEVEL_BPE:
        byte_ids = {by_text[ch] for ch in byte_level_alphabet().values() if ch in by_text}
    elif family == BYTE_FALLBACK_BPE or model.get("byte_fallback"):
        byte_ids = {by_text[byte_piece(b)] for b in range(256) if byte_piece(b) in by_text}
    else:
        byte_ids = set()
    merges = [_pair(m) for m in model.get("merges") or []] if family != UNIGRAM else []
    return TokenizerDefinition(data, family, tokens, model_ids, added, byte_ids, merges)


def _family(kind: str | None, model: dict[str, Any], data: dict[str, Any]) -> str:
    if kind == "Unigram":
        return UNIGRAM
    if kind != "BPE":
        raise UnsupportedTokenizerError(
            f"the tokenizer is a {kind or 'unknown'} model; vocabulary trimming handles byte-level BPE (GPT-2, "
            "Llama 3, Qwen2), BPE with byte fallback (Gemma, Llama 2, Mistral) and Unigram (mT5, XLM-R)"
        )
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        raise UnsupportedTokenizerError(
            "the tokenizer is a BPE with a continuing-subword prefix or end-of-word suffix (a WordPiece-like "
            "BPE); vocabulary trimming handles byte-level BPE and BPE with byte fallback"
        )
    if _mentions(data.get("pre_tokenizer"), "ByteLevel") or _mentions(data.get("decoder"), "ByteLevel"):
        return BYTE_LEVEL_BPE
    if model.get("byte_fallback"):
        return BYTE_FALLBACK_BPE
    raise UnsupportedTokenizerError(
        "the tokenizer is a BPE with neither byte fallback nor a byte-level alphabet: characters of dropped tokens "
        "would become <unk>, so it cannot be trimmed safely"
    )


def _mentions(component: Any, kind: str) -> bool:
    """Whether a normalizer / pre-tokenizer / decoder (possibly a Sequence of them) includes ``kind``."""
    if isinstance(component, dict):
        return component.get("type") == kind or any(_mentions(value, kind) for value in component.values())
    if isinstance(component, list):
        return any(_mentions(item, kind) for item in component)
    return False


def _pair(merge: Any) -> tuple[str, str]:
    if isinstance(merge, str):
        left, _, right = merge.partition(" ")
        return left, right
    return str(merge[0]), str(merge[1])
