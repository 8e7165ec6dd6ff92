"""hfprune as a user gets it from PyPI: a wheel, installed in a fresh environment far from this checkout.

The wheel is built from the checkout and installed with ``--no-deps`` into a new virtual environment whose
dependencies (torch, transformers, ...) come from this test environment's site-packages through a path entry:
the editable install of this checkout is *not* seen there (a path entry does not run its ``.pth`` hooks), so
``import hfprune`` can only find the wheel's copy. ``hfprune demo`` then runs in an empty folder with a fresh
``HOME``, ``HF_HUB_OFFLINE=1`` and no ``HFPRUNE_DATA_DIR``: its calibration text, FLORES sentences and card
template must all come from the wheel. Only the trained tiny model is reused from this machine's cache (its
folder name hashes the data files it was trained on, and those are looked up in the wheel's data, so a wheel
without them, or with other bytes, fails or retrains).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from hfprune.constants import CACHE_DIR_ENV, DATA_DIR_ENV
from hfprune.hub import local as local_hub

CHECKOUT = Path(__file__).resolve().parent.parent
#: The issue's budget for the wheel: the shipped data must keep it small.
MAX_WHEEL_BYTES = 20_000_000


def _source_tree(target: Path) -> Path:
    """The checkout's files as git sees them (tracked, and new files it does not ignore), copied to ``target``:
    a build from the checkout itself would reuse its ``build/`` folder, where modules removed or renamed since
    an earlier build linger and end up in the wheel."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=CHECKOUT,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = CHECKOUT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    source = _source_tree(tmp_path_factory.mktemp("source"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)],
        check=True,
        cwd=dist,
        timeout=600,
    )
    (built,) = dist.glob("hfprune-*.whl")
    return built


def test_the_wheel_carries_the_shipped_data_and_its_licences(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = json.loads((CHECKOUT / "hfprune" / "data" / "manifest.json").read_text(encoding="utf-8"))
    assert {f"hfprune/data/{entry['file']}" for entry in shipped} <= names
    assert {"hfprune/data/SOURCES.md", "hfprune/data/LICENSES.md", "hfprune/data/manifest.json"} <= names
    assert not [name for name in names if name.startswith(("hfprune/data/xnli", "hfprune/data/xstorycloze"))]
    assert wheel.stat().st_size < MAX_WHEEL_BYTES, f"the wheel is {wheel.stat().st_size:,} bytes"
    modules = {name for name in names if name.startswith("hfprune/") and name.endswith(".py")}
    assert modules and all((CHECKOUT / name).is_file() for name in modules), "a module the checkout does not have"


@pytest.mark.slow
def test_demo_runs_from_the_wheel_offline_with_no_checkout_and_no_data_folder(wheel, tiny_model_dir, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    new_python = venv / "bin" / "python"
    new_site = Path(
        subprocess.run(
            [str(new_python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (new_site / "test-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(new_python), "install", "--no-deps", "-q", str(wheel)],
        check=True,
        timeout=600,
    )

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in (DATA_DIR_ENV, "PYTHONPATH", "VIRTUAL_ENV")}
    # A fresh cache holding only the trained tiny model (copied: training it again would add minutes and test
    # nothing the wheel changes); every evaluation runs for real, none is read from this machine's cache.
    fresh_cache = tmp_path / "cache"
    fresh_cache.mkdir()
    shutil.copytree(tiny_model_dir, fresh_cache / tiny_model_dir.name)
    env.update(HOME=str(tmp_path / "home"), HF_HUB_OFFLINE="1", **{CACHE_DIR_ENV: str(fresh_cache)})
    (tmp_path / "home").mkdir()
    where = subprocess.run(
        [str(new_python), "-c", "import hfprune, hfprune.data_sources as d; print(hfprune.__file__, d.data_roots())"],
        check=True,
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
    ).stdout
    assert str(venv) in where and str(CHECKOUT) not in where, where

    done = subprocess.run(
        [str(venv / "bin" / "hfprune"), "demo", "--out", "demo"],
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Token indices sequence length" not in done.stderr
    assert "Lowest mean perplexity change" in done.stdout + done.stderr
    for label in ("wanda-english-only", "wanda-mixed"):
        repo = local_hub.repo_dir(work / "demo" / "hub", f"local/tiny-multilingual-{label}-50")
        published_files = local_hub.tree_manifest(repo, "main")
        assert {"README.md", "eval_results.json", "model.safetensors"} <= set(published_files), published_files
        for name in published_files:  # no published file names a path of this machine
            blob = local_hub.read_blob(repo, "main", name)
            assert str(tmp_path).encode() not in blob and str(CHECKOUT).encode() not in blob, name
        card = local_hub.read_blob(repo, "main", "README.md").decode("utf-8")
        assert "model-index" in card and str(tmp_path) not in card
        meta = json.loads((work / "demo" / label / "hfprune.json").read_text(encoding="utf-8"))
        assert {used["root"] for used in meta["calibration"]["source"]["languages"].values()} == {"shipped"}
        results = json.loads((work / "demo" / label / "eval_results.json").read_text(encoding="utf-8"))
        sources = {row["source"] for row in results["pruned"]["results"]}
        assert sources and all(source.startswith("shipped:flores/") for source in sources), sources
        published = (work / "demo" / label / "eval_results.json").read_text(encoding="utf-8")
        assert str(tmp_path) not in published and str(CHECKOUT) not in published
