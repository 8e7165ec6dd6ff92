"""The page (``spaces/compare/``) runs on a Space without hfprune, so it imports nothing from hfprune and carries
copies of a few of hfprune's constants; each copy is pinned here to the original, so the two can never drift
apart, and every file of the page is checked for an hfprune import."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

from hfprune import constants
from hfprune.assets import asset_path
from hfprune.hub.space import SPACE_FILES
from hfprune.models.placement import DEVICE_MAPS, Placement
from hfprune.space.serve import load_app_module


def test_each_copied_constant_equals_hfprunes():
    app = load_app_module()
    assert app.METADATA_FILE == constants.METADATA_FILE
    assert app.LOCAL_RECORD == constants.LOCAL_RECORD
    assert app.PLOT_FILE == constants.PLOT_FILE
    assert tuple(app.DEVICE_MAPS) == tuple(DEVICE_MAPS)


def test_the_page_reads_a_placement_as_hfprune_reads_it():
    """The page gets the placement as the strings hfprune passes it; both parsers give the same limits."""
    app = load_app_module()
    text = "0=2GiB,cpu=8GiB"
    ours, page = Placement.parse("auto", text), app.Placement.parse("auto", text)
    assert page.device_map == ours.device_map and dict(page.max_memory) == ours.max_memory


def hfprune_imports(path: Path) -> list[str]:
    """``file:line module`` for each import of hfprune (or one of its modules) anywhere in ``path``'s code."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        found += [f"{path.name}:{node.lineno} {name}" for name in names if name.split(".")[0] == "hfprune"]
    return found


def test_no_file_of_the_page_imports_hfprune(tmp_path):
    files = sorted(asset_path(constants.SPACE_FOLDER).glob("*.py"))
    assert len(files) > 1 and constants.SPACE_APP_FILE in {path.name for path in files}

    assert [hit for path in files for hit in hfprune_imports(path)] == []
    planted = tmp_path / "planted.py"  # the scan itself finds every spelling, even inside a function
    planted.write_text("import os, hfprune.cli\n\ndef f():\n    from hfprune import api\n", encoding="utf-8")
    assert hfprune_imports(planted) == ["planted.py:1 hfprune.cli", "planted.py:4 hfprune"]


def test_the_deployed_files_start_as_a_space_would_run_them_with_no_hfprune(tmp_path):
    """``python app.py`` in a folder holding only what the deploy uploads, with ``import hfprune`` failing:
    the page's modules import one another and nothing else, so it gets as far as asking for its model."""
    space = tmp_path / "space"
    space.mkdir()
    for name in SPACE_FILES:
        shutil.copy2(asset_path(constants.SPACE_FOLDER) / name, space / name)
    blocker = tmp_path / "no-hfprune" / "hfprune"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('a Space has no hfprune')\n", encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if key not in ("PRUNED_MODEL", "DENSE_MODEL")}
    env.update(PYTHONPATH=str(blocker.parent), GRADIO_ANALYTICS_ENABLED="False")

    done = subprocess.run(
        [sys.executable, "app.py"], cwd=space, env=env, capture_output=True, text=True, timeout=300, check=False
    )

    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: no pruned model: set PRUNED_MODEL"), done.stderr
