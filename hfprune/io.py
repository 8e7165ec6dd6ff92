"""Writing outputs atomically, and the one file hash.

A crash, Ctrl-C or full disk leaves the previous output (or nothing) in place, never a half-written model or
a half-written JSON: folders are written into a temporary sibling and renamed into place, files through a
temporary file in the same folder and ``os.replace``. ``overwrite`` swaps an old folder out only once the
new one is complete.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import DiskFullError, OutputExistsError

_CHUNK = 1 << 20


# --- hashes ---------------------------------------------------------------------------------------------
def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks (weights can be larger than memory)."""
    return file_digests(path)[1]


def file_digests(path: str | Path, *, git_blob: bool = False) -> tuple[int, str, str | None]:
    """``(size, sha256, git blob id)`` in one read; the blob id (what git and the Hub list for small files)
    only when asked, else ``None``."""
    path = Path(path)
    size = path.stat().st_size
    sha256 = hashlib.sha256()
    blob = hashlib.sha1(f"blob {size}\0".encode()) if git_blob else None  # noqa: S324 - git's object id
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha256.update(chunk)
            if blob is not None:
                blob.update(chunk)
    return size, sha256.hexdigest(), blob.hexdigest() if blob is not None else None


# --- files ----------------------------------------------------------------------------------------------
def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    except BaseException as err:
        Path(temporary).unlink(missing_ok=True)
        if is_disk_full(err):
            raise DiskFullError(f"the disk filled up while writing {path}; it was left as it was") from err
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data: Any) -> Path:
    """Write JSON atomically (UTF-8, non-ASCII kept readable, indented)."""
    return atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


# --- folders --------------------------------------------------------------------------------------------
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
        if is_disk_full(err):
            raise DiskFullError(
                f"the disk filled up while writing {out}; nothing was written. Free space and run again"
            ) from err
        raise


def is_disk_full(err: BaseException | None) -> bool:
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
