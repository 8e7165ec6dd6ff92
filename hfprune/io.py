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
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .constants import LEDGER_FILE, LOCAL_RECORD, METADATA_FILE, PARTIAL_MARKER
from .errors import DiskFullError, OutputExistsError, OutputNotOursError, OutputNotWritableError

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


# --- what is recorded ------------------------------------------------------------------------------------
def portable_path(text: str) -> str:
    """A path as it may be published: an absolute or home-relative path becomes its last part (a relative path
    and anything that is not a path stay as they are). Published files never carry this machine's paths."""
    if text.startswith(("/", "~")) or (len(text) > 2 and text[1] == ":" and text[2] in "\\/"):
        return Path(text).expanduser().name or text
    return text


def portable_command(argv: list[str]) -> list[str]:
    """A command line as it is recorded and published: paths made portable (``--opt=/a/b`` included)."""
    out = []
    for arg in argv:
        flag, sep, value = arg.partition("=")
        out.append(f"{flag}={portable_path(value)}" if sep and flag.startswith("--") else portable_path(arg))
    return out


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


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that wants a file name (a plot); moved into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(handle)
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data: Any) -> Path:
    """Write JSON atomically (UTF-8, non-ASCII kept readable, indented)."""
    return atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


# --- folders --------------------------------------------------------------------------------------------
#: Files that mark a folder as hfprune's: a pruned model's record, or ``hfprune run``'s ledger.
OUTPUT_MARKERS = (METADATA_FILE, LEDGER_FILE)


def write_local_record(folder: str | Path, base_folder: str | Path) -> Path:
    """Beside an output made from a local model folder: where that folder is on this machine (``space serve``
    finds the dense model there). A dot-file, never published: published files never carry this machine's paths."""
    return write_json(Path(folder) / LOCAL_RECORD, {"base_model_path": str(Path(base_folder).resolve())})


def check_output(path: str | Path, overwrite: bool, *, marker: str | tuple[str, ...] = OUTPUT_MARKERS) -> Path:
    """Refuse an output that cannot be (re)written, before any long work, so nothing is wasted or lost.

    An existing folder is replaced only with ``overwrite`` and only if hfprune wrote it: it holds ``marker``
    (``hfprune.json`` or ``hfprune run``'s ledger for a model folder). An empty folder counts as free. The nearest existing parent must be
    writable (probed by creating a file, which also catches read-only mounts for root). Leftovers of earlier
    runs that were killed are cleaned first (:func:`recover_leftovers`).

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false, or it is a file.
        OutputNotOursError: ``overwrite`` was given for a folder hfprune did not write.
        OutputNotWritableError: the folder's parent cannot be written.
    """
    out = Path(path).expanduser()
    recover_leftovers(out)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out} exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise OutputExistsError(f"{out} already exists; pass --overwrite to replace it, or choose another --out")
        markers = (marker,) if isinstance(marker, str) else marker
        if not any((out / name).is_file() for name in markers):
            raise OutputNotOursError(
                f"{out} exists and was not written by hfprune (it has no {markers[0]}), so --overwrite will not "
                "replace it: choose another --out, or move that folder away yourself"
            )
    check_writable(out.parent)
    return out


def check_output_file(path: str | Path, overwrite: bool, *, ours: Callable[[Path], bool] | None = None) -> Path:
    """Refuse an existing file without ``overwrite`` (and, with ``ours``, a file hfprune did not write); the
    folder must be writable. Call it before the work whose result goes there."""
    target = Path(path).expanduser()
    if target.exists():
        if target.is_dir():
            raise OutputExistsError(f"{target} is a folder; give a file name")
        if not overwrite:
            raise OutputExistsError(f"{target} already exists; pass --overwrite to replace it, or choose another name")
        if ours is not None and not ours(target):
            raise OutputNotOursError(
                f"{target} exists and is not a file hfprune wrote, so --overwrite will not replace it; choose another name"
            )
    check_writable(target.parent)
    return target


def check_writable(folder: Path) -> None:
    """Raise unless a file can be created in ``folder`` (or, if it does not exist yet, its nearest parent)."""
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        handle, probe = tempfile.mkstemp(dir=existing, prefix=".hfprune-write-test-")
    except OSError as err:
        raise OutputNotWritableError(
            f"cannot write in {existing} ({err.strerror or err}); choose an --out in a folder you can write to"
        ) from err
    os.close(handle)
    os.unlink(probe)


@contextmanager
def atomic_folder(
    path: str | Path, overwrite: bool = False, *, marker: str | tuple[str, ...] = OUTPUT_MARKERS
) -> Iterator[Path]:
    """Yield a temporary folder; on success it becomes ``path``, on any error it is removed.

    The temporary folder is a hidden sibling named after this process (``.NAME.tmp-PID-...``) and carries a
    marker file, so a run that is killed outright (``kill -9``) leaves something the next run recognises as a
    dead process's leftover and removes (:func:`recover_leftovers`).

    Raises:
        OutputExistsError, OutputNotOursError, OutputNotWritableError: see :func:`check_output`.
        DiskFullError: the disk filled up while writing (``ENOSPC``/``EDQUOT``).
    """
    out = check_output(path, overwrite, marker=marker).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    _write_marker(tmp)
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


def recover_leftovers(out: Path) -> list[Path]:
    """Clean what killed runs left beside ``out``; return what was removed or restored.

    A ``.NAME.tmp-PID-*`` folder with hfprune's marker whose process is gone is removed. A ``.NAME.old-PID``
    folder is a complete earlier output that was being swapped out: if ``out`` is missing (the process died
    mid-swap) it is put back, otherwise it is removed. Folders of live processes, of other machines, or without
    hfprune's marks are never touched.
    """
    out = out.expanduser().absolute()
    if not out.parent.is_dir():
        return []
    done = []
    for candidate in sorted(out.parent.glob(f".{out.name}.tmp-*")):
        pid = _pid_in(candidate.name, ".tmp-")
        if candidate.is_dir() and pid is not None and _marked_by_dead_process(candidate / PARTIAL_MARKER, pid):
            shutil.rmtree(candidate, ignore_errors=True)
            done.append(candidate)
    for candidate in sorted(out.parent.glob(f".{out.name}.old-*")):
        pid = _pid_in(candidate.name, ".old-")
        if not candidate.is_dir() or pid is None or _alive(pid):
            continue
        if not out.exists():
            os.rename(candidate, out)
        elif (candidate / METADATA_FILE).is_file() or (candidate / PARTIAL_MARKER).is_file():
            shutil.rmtree(candidate, ignore_errors=True)
        done.append(candidate)
    return done


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
    """Move the finished folder into place; an old output is swapped out only now, and removed last."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        os.replace(tmp, out)
        (out / PARTIAL_MARKER).unlink(missing_ok=True)
        return
    if not overwrite:  # appeared while we worked
        raise OutputExistsError(f"{out} appeared while writing; the new result is not kept")
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    os.rename(out, old)
    os.rename(tmp, out)
    (out / PARTIAL_MARKER).unlink(missing_ok=True)
    shutil.rmtree(old, ignore_errors=True)


def _write_marker(folder: Path) -> None:
    record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    (folder / PARTIAL_MARKER).write_text(json.dumps(record) + "\n", encoding="utf-8")


def _marked_by_dead_process(marker: Path, pid: int) -> bool:
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return record.get("pid") == pid and record.get("host") == socket.gethostname() and not _alive(pid)


def _pid_in(name: str, tag: str) -> int | None:
    digits = name.rsplit(tag, 1)[-1].split("-", 1)[0]
    return int(digits) if digits.isdigit() else None


def _alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child that nobody reaped yet is a zombie: it holds its pid but will never finish
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True
