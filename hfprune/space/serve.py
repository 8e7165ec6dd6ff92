"""Run the comparison page (``spaces/compare/app.py``) on this machine: ``hfprune space serve``.

The page is loaded from its file, not imported from hfprune, because the very same file runs on a Space without
hfprune; this module only checks the arguments first (a typo should not cost a gradio start-up) and turns the
page's own errors into hfprune's.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ..assets import asset_path
from ..constants import SPACE_APP_FILE, SPACE_FOLDER
from ..errors import (
    GradioMissingError,
    ModelSourceError,
    PortInUseError,
    SpaceModelLoadError,
)
from ..models import Placement
from ..models import openvino_compat as compat

_MODULE_NAME = "hfprune_space_compare_app"
_REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")


def check_model_source(value: str, option: str) -> str:
    """``value`` if it is an existing folder or looks like a Hub id; otherwise say what was expected."""
    if Path(value).expanduser().is_dir():
        return value
    looks_like_path = value.startswith((".", "/", "~")) or "\\" in value or value.count("/") != 1
    if looks_like_path or not _REPO_ID.fullmatch(value):
        raise ModelSourceError(
            f"{option} '{value}' is not a folder here and not a Hub id: pass a model folder (written by "
            "`hfprune prune` or save_pretrained) or a Hub id OWNER/NAME"
        )
    return value


def load_app_module() -> ModuleType:
    """The page's module, loaded once from ``spaces/compare/app.py`` (checkout or installed data files).

    ``app.py`` imports its ``compare_*.py`` siblings by plain name, as on a Space, where ``python app.py`` puts
    the folder first on ``sys.path``. Here the folder goes first on ``sys.path`` only while the file runs: the
    siblings stay loaded (in ``sys.modules``) and hfprune's process keeps the path it had.
    """
    if _MODULE_NAME in sys.modules:
        return sys.modules[_MODULE_NAME]
    try:
        import gradio  # noqa: F401 - only to give a clear message before the page's own import fails
    except ImportError as err:
        raise GradioMissingError(
            "the comparison page needs gradio, which hfprune installs; reinstall hfprune (`pip install -e .` "
            "from a checkout) or `pip install gradio`"
        ) from err
    folder = str(asset_path(SPACE_FOLDER))
    spec = importlib.util.spec_from_file_location(_MODULE_NAME, Path(folder) / SPACE_APP_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE_NAME] = module  # dataclasses look their module up while the file runs
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_MODULE_NAME]
        raise
    finally:
        sys.path.remove(folder)
    return module


def build_page(
    dense: str | None,
    pruned: str,
    *,
    device: str | None = None,
    placement: Placement | None = None,
    pruned_runtime: str = "pytorch",
) -> Any:
    """The queued gradio Blocks comparing ``dense`` (default: the pruned model's base) with ``pruned``.

    ``placement``: spread both models over the GPUs, CPU and disk (the page's ``device_map`` arguments).
    ``pruned_runtime="openvino"``: the pruned side runs its OpenVINO export (``PRUNED/openvino``), as a CPU user
    would; optimum-intel is first adjusted for this transformers (:func:`hfprune.models.openvino_compat.prepare`).
    """
    check_model_source(pruned, "--pruned")
    if dense is not None:
        check_model_source(dense, "--dense")
    if pruned_runtime == "openvino":
        compat.prepare()  # refuses a missing or untested optimum-intel before loading anything
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry calls from a local run
    app = load_app_module()
    try:
        return app.build_app(
            dense=dense, pruned=pruned, device=device, pruned_runtime=pruned_runtime, **_page_placement(placement)
        )
    except app.ModelLoadError as err:
        raise SpaceModelLoadError(str(err)) from err


def _page_placement(placement: Placement | None) -> dict[str, Any]:
    """The page takes the placement as the strings its environment variables would hold."""
    if placement is None:
        return {}
    limits = ",".join(f"{key}={value}" for key, value in (placement.max_memory or {}).items())
    folder = str(placement.offload_folder) if placement.offload_folder else None
    return {"device_map": placement.device_map, "max_memory": limits or None, "offload_folder": folder}


@dataclass
class RunningPage:
    """A page serving in background threads (``serve(block=False)``); ``close()`` stops it."""

    blocks: Any
    url: str

    def close(self) -> None:
        self.blocks.close()


def serve(
    dense: str | None,
    pruned: str,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    device: str | None = None,
    block: bool = True,
    placement: Placement | None = None,
    pruned_runtime: str = "pytorch",
) -> RunningPage:
    """Serve the page on ``http://host:port``; with ``block`` it runs until Ctrl+C.

    Raises:
        ModelSourceError, SpaceModelLoadError: a model that is not there or cannot be loaded.
        PortInUseError: something already listens on ``port``.
    """
    blocks = build_page(dense, pruned, device=device, placement=placement, pruned_runtime=pruned_runtime)
    try:
        blocks.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True, show_error=False)
    except OSError as err:
        raise PortInUseError(f"cannot listen on {host}:{port} ({err}); pass another --port") from err
    page = RunningPage(blocks, f"http://{host}:{port}")
    if block:
        print(f"dense vs pruned on {page.url} (Ctrl+C stops it)", flush=True)
        try:
            blocks.block_thread()
        finally:
            page.close()
    return page
