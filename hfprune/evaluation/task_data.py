"""The rows of one task in one language, from the first source that has them (see :mod:`hfprune.data_sources`):
the data folders in order, then the Hub dataset the harness reads, through ``datasets``, when online.

A language no source has is not an error (the run goes on with the others); a file that a folder's manifest
lists but the disk lacks is, because the folder is then broken, not incomplete.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..data_sources import DataRoot, find_file, offline_reason, online, tried
from ..errors import DataFileMissingError, HubDataError
from .data import (
    EVAL_SOURCE_FLAG,
    file_sha256,
    manifest_files,
    raise_if_listed_but_missing,
    read_jsonl,
    resolve_roots,
)
from .tasks import TaskSpec


@dataclass(frozen=True)
class TaskData:
    """Rows to score, with where they came from (recorded in the results: a root's name, never a local path)."""

    docs: list[dict]
    split: str
    source: str
    sha256: str | None = None


#: Data folders as the functions below take them: in order, one folder, or ``None`` for the default order.
Roots = tuple[DataRoot, ...] | DataRoot | str | Path | None


def local_languages(spec: TaskSpec, roots: Roots) -> list[str]:
    """Languages with a file of any of the task's splits in any of the data folders."""
    roots = resolve_roots(roots)
    found = {
        p.name.split(".")[0]
        for root in roots
        if (root.path / spec.name).is_dir()
        for split in spec.splits
        for p in (root.path / spec.name).glob(f"*.{split}.jsonl")
    }
    return sorted(found)


def listed_languages(spec: TaskSpec, roots: Roots) -> list[str]:
    """Languages the folders' manifests list for the task (present on disk or not)."""
    roots = resolve_roots(roots)
    prefix = f"{spec.name}/"
    listed = {
        f[len(prefix) :].split(".")[0] for root in roots for f in manifest_files(root.path) if f.startswith(prefix)
    }
    return sorted(listed)


def hub_allowed(hub: bool | None) -> bool:
    """``hub`` as asked (``--hub-data`` / ``--no-hub-data``); ``None``: whenever the machine is online."""
    return online() if hub is None else hub


def load_task_data(
    spec: TaskSpec, lang: str, roots: Roots, *, hub: bool | None = None, limit: int | None = None
) -> TaskData | None:
    """The task's rows for ``lang`` (the first ``limit``), or ``None`` when no source has that language.

    Raises:
        DataFileMissingError: a manifest lists the file but it is missing, or no source holds the task at all.
        HubDataError: the Hub fallback failed.
    """
    roots = resolve_roots(roots)
    for split in spec.splits:
        found = find_file(roots, spec.local_file(lang, split))
        if found is not None:
            root, path = found
            docs = read_jsonl(path)[:limit] if limit is not None else read_jsonl(path)
            return TaskData(docs, split, root.record(spec.local_file(lang, split)), file_sha256(path))
    for split in spec.splits:
        raise_if_listed_but_missing(roots, spec.local_file(lang, split))
    if hub_allowed(hub) and lang in spec.languages:
        return _load_from_hub(spec, lang, limit, roots)
    check_task_source(spec, roots, hub)
    return None


def check_task_source(spec: TaskSpec, roots: Roots, hub: bool | None = None) -> None:
    """Raise when no source can hold the task at all: no data folder has it and the Hub is not asked.

    Raises:
        DataFileMissingError: naming the sources tried and how to add one.
    """
    roots = resolve_roots(roots)
    if hub_allowed(hub) or any((root.path / spec.name).is_dir() for root in roots):
        return
    hub_text = f"the Hub: {spec.hub_id} ({offline_reason() if hub is None else 'not asked: --no-hub-data'})"
    raise DataFileMissingError(
        f"no source holds {spec.name}: tried {tried(roots, hub_text)}. Pass {EVAL_SOURCE_FLAG} DIR with a "
        f"{spec.name}/ folder, or go online (unset HF_HUB_OFFLINE) to read {spec.hub_id} with `datasets`"
    )


def _load_from_hub(spec: TaskSpec, lang: str, limit: int | None, roots: tuple[DataRoot, ...]) -> TaskData:
    """Rows from the Hub dataset the harness reads (needs network, or a ``datasets`` cache)."""
    import datasets

    config = spec.hub_config(lang)
    split = spec.hub_split if limit is None else f"{spec.hub_split}[:{limit}]"
    try:
        dataset = datasets.load_dataset(spec.hub_id, config, split=split)
    except Exception as error:  # datasets raises many types (connection, missing config, ...)
        raise HubDataError(
            f"no local {spec.name} data for {lang!r} (tried {tried(roots, None)}) and {spec.hub_id} ({config}, "
            f"{spec.hub_split}) could not be read with datasets: {error}; check the network, or pass "
            f"{EVAL_SOURCE_FLAG} DIR with {spec.local_file(lang, spec.splits[0])}"
        ) from error
    return TaskData(
        docs=[dict(row) for row in dataset],
        split=spec.hub_split,
        source=f"hf://datasets/{spec.hub_id}/{config}@{spec.hub_split}",
        sha256=getattr(dataset, "_fingerprint", None),
    )
