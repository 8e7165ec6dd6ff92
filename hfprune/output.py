"""Atomic output folders: write into a temporary sibling, then rename into place.

A crash, Ctrl-C or full disk leaves the previous output (or nothing) in place, never a half-written model.
``overwrite`` swaps the old folder out only once the new one is complete.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import DiskFullError, OutputExistsError


def check_output(path: str | Path, overwrite: bool) -> Path:
    """Refuse an existing ``path`` without ``overwrite``; call before any long work so nothing is wasted."""
    out = Path(path).expanduser()
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} already exists; pass --overwrite to replace it, or choose another --out")
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out} exists and is not a folder; choose another --out")
    return out


@contextmanager
def atomic_folder(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder; on success it becomes ``path``, on any error it is removed.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
        DiskFullError: the disk filled up while writing (``ENOSPC``/``EDQUOT``).
    """
    out = check_output(path, overwrite).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        _replace(tmp, out, overwrite)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if _is_disk_full(err):
            raise DiskFullError(
                f"the disk filled up while writing {out}; nothing was written. Free space and run again"
            ) from err
        raise


def _is_disk_full(err: BaseException | None) -> bool:
    """ENOSPC/EDQUOT, also when a library wraps it (safetensors raises its own error type)."""
    while err is not None:
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(err) or "Disk quota exceeded" in str(err):
            return True
        err = err.__cause__ or err.__context__
    return False


def _replace(tmp: Path, out: Path, overwrite: bool) -> None:
    if not out.exists():
        os.rename(tmp, out)
        return
    if not overwrite:  # appeared while we worked
        raise OutputExistsError(f"{out} appeared while writing; the new result is not kept")
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    os.rename(out, old)
    os.rename(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def write_json(path: Path, data: Any) -> None:
    """Write JSON via a temporary file and rename, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
