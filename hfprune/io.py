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
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import Any

from .constants import (
    CARD_FILE,
    EXPORT_RECORD,
    LEDGER_FILE,
    LOCAL_RECORD,
    METADATA_FILE,
    PARTIAL_MARKER,
    PLOT_FILE,
    RESULTS_FILE,
    SWAP_MARKER,
    WRITTEN_RECORD,
)
from .errors import (
    DiskFullError,
    NotTextFileError,
    OutputExistsError,
    OutputNotOursError,
    OutputNotWritableError,
    OutputOverlapsModelError,
)

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


def publishable(data: Any) -> Any:
    """``data`` with every value that is a path of this machine (a string or ``Path`` starting with ``/``, ``~``
    or a drive) reduced to its last part, through nested dicts and lists: one gate for every record that is
    published, so a field a room forgot to make portable cannot carry the user's folders to the Hub."""
    if isinstance(data, dict):
        return {key: publishable(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [publishable(value) for value in data]
    if isinstance(data, (str, PurePath)):
        return portable_path(str(data))
    return data


def write_record(path: str | Path, data: Any) -> Path:
    """Write a record that may be published (``hfprune.json``, ``results.json``, an export's record) through
    :func:`publishable`."""
    return write_json(path, publishable(data))


def read_text_file(path: str | Path) -> str:
    """A text file's content, or one line saying why it is not text (not UTF-8, or binary): every text a user
    hands hfprune (calibration, evaluation) is read here.

    Raises:
        NotTextFileError: the bytes are not UTF-8 or hold NUL bytes (a binary file named ``.txt``).
    """
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise NotTextFileError(
            f"{path} is not UTF-8 text (byte {err.start} cannot be decoded); save it as UTF-8, or remove it"
        ) from None
    if "\x00" in text:
        raise NotTextFileError(f"{path} holds NUL bytes: it looks like a binary file, not text; remove it")
    return text


def read_json_object(path: str | Path) -> dict[str, Any]:
    """A JSON object from a file hfprune wrote (``hfprune.json``, a ledger, results), or ``ValueError`` with one
    line saying what is wrong: missing, unreadable, not UTF-8, not JSON, or JSON that is not an object. Callers
    turn it into their own error class with what the user should do."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path} is missing") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a folder, not a file") from None
    except OSError as err:
        raise ValueError(f"{path} cannot be read ({err.strerror or err})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err.msg}, line {err.lineno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds JSON that is not an object ({type(data).__name__})")
    return data


#: What hfprune writes into the PNG plots it makes (a ``Software`` text chunk), so ``--overwrite`` can tell them
#: from a user's image of the same name.
PLOT_METADATA = {"Software": "hfprune"}


def is_hfprune_plot(path: Path) -> bool:
    """Whether ``path`` is a PNG that hfprune wrote (its ``Software`` chunk says hfprune)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(1 << 16)
    except OSError:
        return False
    return head.startswith(b"\x89PNG") and b"tEXtSoftware\x00hfprune" in head


# --- folders --------------------------------------------------------------------------------------------
#: Files that mark a folder as hfprune's: a pruned model's record, or ``hfprune run``'s ledger.
OUTPUT_MARKERS = (METADATA_FILE, LEDGER_FILE)


def write_local_record(folder: str | Path, base_folder: str | Path) -> Path:
    """Beside an output made from a local model folder: where that folder is on this machine (``space serve``
    finds the dense model there). A dot-file, never published: published files never carry this machine's paths."""
    return write_json(Path(folder) / LOCAL_RECORD, {"base_model_path": str(Path(base_folder).resolve())})


def check_output(
    path: str | Path,
    overwrite: bool,
    *,
    marker: str | tuple[str, ...] = OUTPUT_MARKERS,
    reads: str | Path | None = None,
    whole: bool = True,
) -> Path:
    """Refuse an output that cannot be (re)written, before any long work, so nothing is wasted or lost.

    An existing folder is replaced only with ``overwrite``, only if hfprune wrote it (it holds ``marker``:
    ``hfprune.json`` or ``hfprune run``'s ledger for a model folder) and, when the job replaces the folder
    ``whole``, only if it holds nothing hfprune did not write (:func:`foreign_files`: a user's notes beside the
    weights are never deleted; a job that only writes its own files into the folder passes ``whole=False``).
    An empty folder counts as free. ``reads``: the model the job reads; when it is a local folder, ``path``
    must not be, contain or lie inside it. The nearest existing parent must be writable (probed by creating a
    file, which also catches read-only mounts for root). Leftovers of earlier runs that were killed are
    cleaned first (:func:`recover_leftovers`: only what hfprune can prove it wrote).

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false, or it is a file or a link.
        OutputNotOursError: ``overwrite`` was given for a folder hfprune did not write, or one holding files
            hfprune did not write.
        OutputOverlapsModelError: ``path`` and the local model folder ``reads`` overlap.
        OutputNotWritableError: the folder's parent cannot be written.
    """
    out = Path(path).expanduser()
    if reads is not None:
        check_not_over_model(reads, out)
    recover_leftovers(out)
    if out.is_symlink():
        raise OutputExistsError(
            f"{out} is a symbolic link; give --out a real folder (hfprune never writes through links)"
        )
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
        foreign = foreign_files(out) if whole else []
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise OutputNotOursError(
                f"{out} holds files hfprune did not write ({shown}); --overwrite replaces only hfprune's own "
                "output, so move those files out of it first, or choose another --out"
            )
    check_writable(out.parent)
    return out


def check_not_over_model(model: str | Path, out: str | Path) -> None:
    """``out`` must not be, contain or lie inside the local model folder ``model`` (a Hub id passes): hfprune
    never writes into or over the model it reads, with or without ``--overwrite``."""
    local = Path(model).expanduser()
    if not local.is_dir():
        return
    source, target = local.resolve(), Path(out).expanduser().resolve()
    relation = (
        "is"
        if target == source
        else "lies inside"
        if source in target.parents
        else "contains"
        if target in source.parents
        else None
    )
    if relation:
        raise OutputOverlapsModelError(
            f"--out {out} {relation} the model folder {model}; hfprune never writes into or over the model it "
            "reads (with or without --overwrite): choose an --out outside it"
        )


#: What hfprune writes into an output folder after the job that made it (card, evaluation, ledger, records).
_LATER_FILES = frozenset({CARD_FILE, RESULTS_FILE, PLOT_FILE, LEDGER_FILE, LOCAL_RECORD, METADATA_FILE})


def written_files(folder: Path) -> list[str]:
    """Every file under ``folder`` as posix relative paths (links included, not followed)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_symlink() or not p.is_dir())


def foreign_files(folder: Path) -> list[str]:
    """Files in an hfprune output that hfprune did not write: neither in the record of what the job wrote
    (:data:`WRITTEN_RECORD`, kept in the folder) nor one of the files later commands add (card, results).
    An output from before the record existed counts the files a saved model is made of as hfprune's."""
    try:
        recorded = set(read_json_object(folder / WRITTEN_RECORD)["files"])
    except (ValueError, KeyError, TypeError):  # none (an output from before the record), or a broken one
        recorded = None
    exported = _export_files(folder)
    foreign = []
    for name in written_files(folder):
        if name in _LATER_FILES or name.startswith(".hfprune-"):
            continue
        if (recorded is not None and name in recorded) or name in exported:
            continue
        if recorded is None and _looks_like_model_file(name):
            continue
        foreign.append(name)
    return foreign


def _export_files(folder: Path) -> set[str]:
    """The files of exports made into direct subfolders (``DIR/openvino``): each subfolder's own record of what
    its export wrote, plus that record (a subfolder without :data:`EXPORT_RECORD` is the user's)."""
    found: set[str] = set()
    for record in folder.glob(f"*/{EXPORT_RECORD}"):
        try:
            files = read_json_object(record.parent / WRITTEN_RECORD)["files"]
        except (ValueError, KeyError, TypeError):
            continue
        prefix = record.parent.name
        found.update(f"{prefix}/{name}" for name in [*files, WRITTEN_RECORD] if isinstance(name, str))
    return found


def _looks_like_model_file(name: str) -> bool:
    return "/" not in name and (
        name.endswith((".safetensors", ".json", ".jinja")) or name in ("tokenizer.model", "merges.txt", "spiece.model")
    )


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
        write_json(tmp / WRITTEN_RECORD, {"files": [n for n in written_files(tmp) if not n.startswith(".hfprune-")]})
        _replace(tmp, out, overwrite)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_disk_full(err):
            raise DiskFullError(
                f"the disk filled up while writing {out}; nothing was written. Free space and run again"
            ) from err
        raise


def recover_leftovers(out: Path) -> list[Path]:
    """Clean what killed runs of hfprune left beside ``out``; return what was removed or restored.

    Only what hfprune can prove it wrote is touched: a sibling whose marker file names that very folder (the
    name carries a random part that hfprune chose when it created it), written by a process of this machine
    that is gone. A ``.NAME.tmp-*`` folder is a half-written output: removed. A ``.NAME.old-*`` folder is a
    complete earlier output that was being swapped out: put back if ``out`` is missing (the process died
    mid-swap), else removed. A user's copy, a folder of a live process or of another machine is never touched,
    whatever its name.
    """
    out = out.expanduser().absolute()
    if not out.parent.is_dir():
        return []
    done = []
    for candidate in sorted(out.parent.glob(f".{out.name}.tmp-*")):
        if _left_by_dead_run(candidate, PARTIAL_MARKER):
            shutil.rmtree(candidate, ignore_errors=True)
            done.append(candidate)
    for candidate in sorted(out.parent.glob(f".{out.name}.old-*")):
        if not _left_by_dead_run(candidate, SWAP_MARKER):
            continue
        if not out.exists():
            os.rename(candidate, out)
            (out / SWAP_MARKER).unlink(missing_ok=True)
        else:
            shutil.rmtree(candidate, ignore_errors=True)
        done.append(candidate)
    if out.is_dir() and _left_by_dead_run(out, SWAP_MARKER, named=False):  # died before the swap began
        (out / SWAP_MARKER).unlink(missing_ok=True)
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
    old = out.with_name(f".{out.name}.old-{os.getpid()}-{secrets.token_hex(6)}")
    _write_marker(out, SWAP_MARKER, name=old.name)  # first, so a crash at any point leaves a provable leftover
    os.rename(out, old)
    os.rename(tmp, out)
    (out / PARTIAL_MARKER).unlink(missing_ok=True)
    shutil.rmtree(old, ignore_errors=True)


def _write_marker(folder: Path, marker: str = PARTIAL_MARKER, *, name: str | None = None) -> None:
    """Mark ``folder`` as this run's: the folder name it has (or will have), this process and machine."""
    record = {"name": name or folder.name, "pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    (folder / marker).write_text(json.dumps(record) + "\n", encoding="utf-8")


def _left_by_dead_run(folder: Path, marker: str, *, named: bool = True) -> bool:
    """Whether ``folder`` holds ``marker`` written for this very folder name (unless ``named`` is false) by a
    process of this machine that no longer runs."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    try:
        record = read_json_object(folder / marker)
    except ValueError:
        return False
    if not isinstance(record.get("pid"), int):
        return False
    if named and record.get("name") != folder.name:
        return False
    return record.get("host") == socket.gethostname() and not process_alive(record["pid"])


def process_alive(pid: int) -> bool:
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
