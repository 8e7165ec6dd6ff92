"""What this machine and process offer: the compute device, memory used so far, library versions.

Also keeps the process's memory close to what is live (:func:`return_large_buffers_promptly`): pruning
allocates and frees block-sized activations over and over. glibc serves buffers above a *dynamic* threshold
with ``mmap`` (returned on free) but raises that threshold after the first large free, so later buffers come
from the heap, where freed space stays resident and fragments. On a Qwen2-0.5B-shaped model (2 blocks,
32 x 512 calibration tokens, Wanda) that made the peak RSS 1616 MB instead of 1194 MB. A fixed threshold
(what ``MALLOC_MMAP_THRESHOLD_`` sets) keeps every buffer above 1 MiB on ``mmap``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import resource
import sys
from importlib import metadata

import torch

from .constants import VERSION
from .errors import InvalidDeviceError

#: mallopt parameter number of M_MMAP_THRESHOLD in glibc's malloc.h
_M_MMAP_THRESHOLD = -3
THRESHOLD_BYTES = 1 << 20
#: Libraries whose versions decide the numbers hfprune records (pruning and evaluation alike).
RECORDED_LIBRARIES = (
    "torch",
    "transformers",
    "tokenizers",
    "huggingface_hub",
    "safetensors",
    "datasets",
    "evaluate",
    "accelerate",
)


def resolve_device(device: str | torch.device | None, *, flag: str = "--device") -> torch.device:
    """``None``/``"auto"``: CUDA when there is one, else CPU; anything else must exist on this machine
    (``flag``: the option messages name).

    Raises:
        InvalidDeviceError: an unknown device name, or CUDA (or a GPU index) this machine does not have.
    """
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise InvalidDeviceError(f"unknown device '{device}'; use auto, cpu, cuda or cuda:N") from None
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build of torch" if torch.version.cuda is None else "no usable GPU"
            raise InvalidDeviceError(
                f"{flag} {device}: this machine has no CUDA GPU ({build}); use {flag} cpu (or auto)"
            )
        if chosen.index is not None and chosen.index >= torch.cuda.device_count():
            raise InvalidDeviceError(
                f"{flag} {device}: there are {torch.cuda.device_count()} GPU(s), numbered from 0; choose one of them"
            )
    elif chosen.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidDeviceError(f"{flag} {device}: MPS is not available here; use {flag} cpu")
    elif chosen.type not in ("cpu", "cuda", "mps"):
        raise InvalidDeviceError(f"{flag} {device}: hfprune runs on cpu, cuda or mps, not {chosen.type}")
    return chosen


def peak_memory(device: torch.device) -> dict[str, float]:
    """Peak resident memory of this process (and of the GPU when used) so far, in MiB."""
    peak = {"cpu_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        peak["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return peak


def library_versions() -> dict[str, str]:
    """Versions of hfprune, Python and the libraries that produce the numbers (``not installed`` if absent)."""
    found = {"hfprune": VERSION, "python": platform.python_version()}
    for package in RECORDED_LIBRARIES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def return_large_buffers_promptly() -> bool:
    """Fix glibc's mmap threshold at 1 MiB for this process; ``False`` where it does not apply.

    Left alone when the user set ``MALLOC_MMAP_THRESHOLD_`` (their choice wins) and off glibc Linux.
    Called by the command-line tool, which owns its process; library users can set the variable instead.
    """
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, THRESHOLD_BYTES))
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
