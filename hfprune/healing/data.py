"""The healing text: new samples of the user's languages, never the ones the mask was chosen on.

Healing on the mask's own calibration samples would reward memorising them; the student's ``hfprune.json``
records their hashes (``calibration.sample_hashes``), so healing draws with another seed, asks for enough extra
windows to cover any collision, and drops every sample whose hash is in that set. Both sets are recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..calibration import CalibrationSet, Mix, MixEntry, TextSource, build_calibration
from ..errors import NotEnoughCalibrationTextError, NotEnoughHealingTextError


@dataclass
class HealingData:
    """The samples healing trains on, in training order, and what they are."""

    input_ids: torch.Tensor  # [samples, seqlen]
    languages: list[str]
    sample_hashes: list[str]
    excluded_hashes: list[str] = field(default_factory=list)  # the mask's samples, set aside
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """One sha256 over the samples in order: what a resume must find again."""
        return hashes_digest(self.sample_hashes)

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def repeated(self, epochs: int, seed: int) -> HealingData:
        """The samples ``epochs`` times over, each pass after the first in its own seeded order (pass ``k`` with
        ``seed + k``): what ``--epochs`` trains on, the same on every run and every resume."""
        if epochs == 1:
            return self
        orders = [torch.arange(len(self))]
        orders += [
            torch.randperm(len(self), generator=torch.Generator().manual_seed(seed + k)) for k in range(1, epochs)
        ]
        order = torch.cat(orders)
        record = {**self.record, "epochs": epochs, "passes_digest": hashes_digest(self.sample_hashes[i] for i in order)}
        return HealingData(
            self.input_ids[order],
            [self.languages[i] for i in order.tolist()],
            [self.sample_hashes[i] for i in order.tolist()],
            self.excluded_hashes,
            record,
        )


def hashes_digest(hashes: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def spread(mix: Mix, total: int) -> Mix:
    """``total`` samples shared over the mix's languages in proportion to its counts (largest remainder); every
    language gets at least one, so ``total`` grows to the number of languages if it is smaller."""
    weights = [entry.samples for entry in mix]
    total = max(total, len(weights))
    exact = [total * w / sum(weights) for w in weights]
    counts = [max(1, int(x)) for x in exact]
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - int(exact[i])), i))
    for i in order[: max(0, total - sum(counts))]:
        counts[i] += 1
    return Mix(tuple(MixEntry(entry.language, n) for entry, n in zip(mix, counts)))


def healing_samples(
    tokenizer: Any,
    source: TextSource,
    mix: Mix,
    *,
    total: int,
    seqlen: int,
    seed: int,
    exclude: Iterable[str] = (),
) -> HealingData:
    """``total`` samples of ``mix`` (relative counts) drawn with ``seed + 1``, none of whose hashes is in
    ``exclude``; shuffled with ``seed`` into the training order (the same on every run and every resume).

    Raises:
        CalibrationSourceError: a language the source has no text for.
        NotEnoughHealingTextError: too few windows once the excluded samples are set aside.
    """
    excluded = set(exclude)
    wanted = spread(mix, total)
    rows: list[torch.Tensor] = []
    langs: list[str] = []
    hashes: list[str] = []
    dropped: dict[str, int] = {}
    described: Any = None
    for entry in wanted:
        drawn = _draw(tokenizer, source, entry, seqlen=seqlen, seed=seed + 1, extra=len(excluded))
        described = drawn.spec.get("source")
        kept = [(row, h) for row, h in zip(drawn.input_ids, drawn.sample_hashes) if h not in excluded]
        dropped[entry.language] = len(drawn) - len(kept)
        if len(kept) < entry.samples:
            raise NotEnoughHealingTextError(
                f"'{entry.language}' has room for only {len(kept)} healing samples of {seqlen} tokens once the "
                f"{dropped[entry.language]} the mask was chosen on are set aside, but {entry.samples} are "
                "needed; lower --tokens or --seqlen, add text with --calib-source, or pass over less text several "
                "times with --epochs"
            )
        for row, digest in kept[: entry.samples]:
            rows.append(row)
            langs.append(entry.language)
            hashes.append(digest)
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))
    input_ids = torch.stack(rows)[order]
    langs = [langs[i] for i in order.tolist()]
    hashes = [hashes[i] for i in order.tolist()]
    record = {
        "mix": str(wanted),
        "weights": str(mix),
        "samples": len(hashes),
        "seqlen": seqlen,
        "draw_seed": seed + 1,
        "shuffle_seed": seed,
        "source": described,
        "sample_hashes": hashes,
        "digest": hashes_digest(hashes),
        "mask_sample_hashes": sorted(excluded),
        "mask_samples_digest": hashes_digest(sorted(excluded)),
        "dropped_as_mask_samples": dropped,
    }
    return HealingData(input_ids, langs, hashes, sorted(excluded), record)


def _draw(tokenizer: Any, source: TextSource, entry: MixEntry, *, seqlen: int, seed: int, extra: int) -> CalibrationSet:
    """One language's wanted samples plus ``extra`` more when its text holds them, so that dropping the mask's
    samples still leaves enough (with less text, exactly the wanted ones; a collision then fails clearly)."""
    if extra:
        try:
            return build_calibration(
                tokenizer, source, Mix((MixEntry(entry.language, entry.samples + extra),)), seqlen=seqlen, seed=seed
            )
        except NotEnoughCalibrationTextError:
            pass
    try:
        return build_calibration(tokenizer, source, Mix((entry,)), seqlen=seqlen, seed=seed)
    except NotEnoughCalibrationTextError as err:
        raise NotEnoughHealingTextError(
            f"too little '{entry.language}' text for {entry.samples} healing samples of {seqlen} tokens ({err}); "
            "lower --tokens, add text with --calib-source, or pass over less text several times with --epochs"
        ) from None
