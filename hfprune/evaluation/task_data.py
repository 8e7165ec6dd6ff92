"""The rows of one task in one language: from the data folder, or from the Hub with ``datasets``.

A language the data does not have is not an error (the run goes on with the others); a file that the
bundle's manifest lists but the disk lacks is, because the folder is then broken, not incomplete.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hfprune.errors import DataFileMissingError, DataSourceError
from hfprune.evaluation.data import file_sha256, manifest_files, read_jsonl
from hfprune.evaluation.tasks import TaskSpec


@dataclass(frozen=True)
class TaskData:
    """Rows to score, with where they came from (recorded in the results)."""

    docs: list[dict]
    split: str
    source: str
    sha256: str | None = None


def local_languages(spec: TaskSpec, data_dir: Path | None) -> list[str]:
    """Languages with a file of any of the task's splits in the data folder."""
    if data_dir is None or not (data_dir / spec.name).is_dir():
        return []
    found = {p.name.split(".")[0] for split in spec.splits for p in (data_dir / spec.name).glob(f"*.{split}.jsonl")}
    return sorted(found)


def listed_languages(spec: TaskSpec, data_dir: Path | None) -> list[str]:
    """Languages the folder's manifest lists for the task (present on disk or not)."""
    if data_dir is None:
        return []
    prefix = f"{spec.name}/"
    listed = {f[len(prefix) :].split(".")[0] for f in manifest_files(data_dir) if f.startswith(prefix)}
    return sorted(listed)


def load_task_data(
    spec: TaskSpec, lang: str, data_dir: Path | None, *, hub: bool = False, limit: int | None = None
) -> TaskData | None:
    """The task's rows for ``lang`` (the first ``limit``), or ``None`` when no source has that language.

    Raises:
        DataFileMissingError: the manifest lists the file but it is missing, or the task's folder is absent.
        DataSourceError: the Hub fallback failed.
    """
    if data_dir is not None:
        for split in spec.splits:
            path = data_dir / spec.local_file(lang, split)
            if path.is_file():
                docs = read_jsonl(path)[:limit] if limit is not None else read_jsonl(path)
                return TaskData(docs=docs, split=split, source=str(path), sha256=file_sha256(path))
        _raise_if_listed_but_missing(spec, lang, data_dir)
    if hub and lang in spec.languages:
        return _load_from_hub(spec, lang, limit)
    if data_dir is not None and not (data_dir / spec.name).is_dir() and not hub:
        raise DataFileMissingError(
            f"the data folder {data_dir} has no {spec.name}/ folder; pass --data with a folder that has it, "
            "or --hub-data to fetch the task with `datasets`"
        )
    return None


def _raise_if_listed_but_missing(spec: TaskSpec, lang: str, data_dir: Path) -> None:
    listed = manifest_files(data_dir)
    for split in spec.splits:
        relative = spec.local_file(lang, split)
        if relative in listed:
            raise DataFileMissingError(
                f"the data folder is missing {relative} (listed in {data_dir / 'manifest.json'}); restore it"
            )


def _load_from_hub(spec: TaskSpec, lang: str, limit: int | None) -> TaskData:
    """Rows from the Hub dataset the harness reads (needs network, or a ``datasets`` cache)."""
    import datasets

    config = spec.hub_config(lang)
    split = spec.hub_split if limit is None else f"{spec.hub_split}[:{limit}]"
    try:
        dataset = datasets.load_dataset(spec.hub_id, config, split=split)
    except Exception as error:  # datasets raises many types (connection, missing config, ...)
        raise DataSourceError(
            f"could not fetch {spec.hub_id} ({config}, {spec.hub_split}) with datasets: {error}; "
            "check the network or use --data with a local copy"
        ) from error
    return TaskData(
        docs=[dict(row) for row in dataset],
        split=spec.hub_split,
        source=f"hf://datasets/{spec.hub_id}/{config}@{spec.hub_split}",
        sha256=getattr(dataset, "_fingerprint", None),
    )
