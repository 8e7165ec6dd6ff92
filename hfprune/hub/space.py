"""Publish the comparison page as a Gradio Space on the Hub: ``hfprune space deploy``.

Plain ``HfApi`` calls a user would make (``create_repo(repo_type="space")``, ``add_space_variable``,
``create_commit``, ``request_space_hardware``), so ``HF_TOKEN`` / ``hf auth login`` and ``HF_ENDPOINT`` apply as
usual. The model ids go into Space *variables*, not into the code: people can point the same Space at other
models from its settings page. Variables are set before the files are committed, so the Space's first build
already finds them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import yaml
from huggingface_hub import CommitOperationAdd, HfApi, SpaceHardware
from huggingface_hub import errors as hf_errors

from ..assets import asset_path
from ..constants import CARD_FILE as README
from ..constants import METADATA_FILE, OPENVINO_SUBFOLDER, SPACE_APP_FILE, SPACE_FOLDER
from ..errors import (
    DenseModelUnknownError,
    InvalidOptionError,
    NoExportToServeError,
    PrunedRepoNotFoundError,
    SpaceHardwareError,
    UnknownHardwareError,
)
from ..hub_errors import translate
from ..repo_id import check_repo_id

#: The files of ``spaces/compare/`` a Space needs (README.md is rendered, not copied): the entry file, the
#: modules it imports and the requirements; tests/space/test_deploy.py checks each ``*.py``/``*.txt`` there is one.
SPACE_FILES = (
    SPACE_APP_FILE,
    "compare_generation.py",
    "compare_layout.py",
    "compare_limits.py",
    "compare_loading.py",
    "compare_record.py",
    "compare_scoring.py",
    "requirements.txt",
)
#: The Hub accepts at most 60 characters of a Space's short description (the template's is tested against it).
SHORT_DESCRIPTION_MAX = 60
#: The app code is hfprune's (Apache-2.0); the models keep their own licences, which their cards state.
SPACE_LICENSE = "apache-2.0"
HARDWARE_CHOICES = tuple(flavor.value for flavor in SpaceHardware)
#: How the page runs the pruned model: PyTorch, or its OpenVINO export (``PRUNED/openvino``).
PRUNED_RUNTIMES = ("pytorch", "openvino")
#: Added to the Space's requirements for the OpenVINO runtime: on a Space, pip picks a transformers<5.6 beside
#: it, where optimum-intel runs without hfprune's adjustments.
OPENVINO_REQUIREMENT = "optimum-intel[openvino]==2.2.0"
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


@dataclass
class DeployResult:
    """Where the Space is and what it compares."""

    space_id: str
    url: str
    dense: str
    pruned: str
    commit: str
    files: list[str]
    variables: dict[str, str]
    hardware: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def deploy_space(
    pruned: str,
    *,
    space_id: str | None = None,
    dense: str | None = None,
    private: bool = False,
    hardware: str | None = None,
    token: str | None = None,
    pruned_runtime: str = "pytorch",
) -> DeployResult:
    """Create (or update) the Space ``space_id`` comparing ``dense`` with ``pruned`` and return its URL.

    Args:
        pruned: the pruned model's Hub id.
        space_id: default ``<pruned>-demo``.
        dense: default the base model recorded in the pruned repo's ``hfprune.json`` (or its card's ``base_model``).
        private: create the Space private (an existing Space keeps its visibility).
        hardware: a Space hardware flavor such as ``cpu-basic`` or ``t4-small``; ``None`` leaves it as it is.
        pruned_runtime: ``openvino`` runs the pruned side from the repo's ``openvino/`` export (the Space variable
            ``PRUNED_RUNTIME``, and optimum-intel added to its requirements).
        token: a token; ``None`` means ``HF_TOKEN`` or the one saved by ``hf auth login``.

    Raises:
        InvalidRepoIdError, UnknownHardwareError: a malformed id or hardware flavor, before any request.
        PrunedRepoNotFoundError, DenseModelUnknownError: the pruned repo is missing or names no base model.
        NotLoggedInError, InvalidTokenError, RepoPermissionError, UploadInterruptedError: see the push command.
        SpaceHardwareError: everything was deployed, but the Hub refused the hardware.
    """
    check_repo_id(pruned)
    space_id = space_id or f"{pruned}-demo"
    check_repo_id(space_id)
    if dense is not None:
        check_repo_id(dense)
    if hardware is not None and hardware not in HARDWARE_CHOICES:
        raise UnknownHardwareError(f"unknown Space hardware '{hardware}'; choose one of {', '.join(HARDWARE_CHOICES)}")
    if pruned_runtime not in PRUNED_RUNTIMES:
        raise InvalidOptionError(f"unknown runtime '{pruned_runtime}'; choose one of {', '.join(PRUNED_RUNTIMES)}")
    api = HfApi(token=token)  # a fresh client reads HF_ENDPOINT now
    dense = dense or base_model_of(api, pruned)
    if pruned_runtime == "openvino":
        _check_export(api, pruned)
    readme = render_readme(dense, pruned)
    operations = [CommitOperationAdd(README, readme.encode("utf-8"))]
    folder = asset_path(SPACE_FOLDER)
    operations += [_space_file(folder, name, pruned_runtime) for name in SPACE_FILES]
    variables = {"DENSE_MODEL": dense, "PRUNED_MODEL": pruned, "PRUNED_RUNTIME": pruned_runtime}
    user = None
    try:
        user = api.whoami()["name"]
        api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
        for key, value in variables.items():
            api.add_space_variable(space_id, key, value, description=VARIABLE_DESCRIPTIONS[key])
        info = api.create_commit(
            space_id,
            operations,
            repo_type="space",
            commit_message=f"Compare {pruned} with {dense} (hfprune space deploy)",
        )
    except Exception as error:  # noqa: BLE001 - translated below, re-raised untouched otherwise
        ours = translate(error, space_id, writing=True, user=user)
        if ours is None:
            raise
        raise ours from error
    url = f"{api.endpoint}/spaces/{space_id}"
    if hardware is not None:
        _request_hardware(api, space_id, hardware, url)
    return DeployResult(
        space_id=space_id,
        url=url,
        dense=dense,
        pruned=pruned,
        commit=info.oid,
        files=sorted(op.path_in_repo for op in operations),
        variables=variables,
        hardware=hardware,
    )


VARIABLE_DESCRIPTIONS = {
    "DENSE_MODEL": "dense model compared by app.py",
    "PRUNED_MODEL": "pruned model compared by app.py",
    "PRUNED_RUNTIME": "how app.py runs the pruned model: pytorch, or openvino (its openvino/ export)",
}


def _check_export(api: HfApi, pruned: str) -> None:
    """The page would fail at start on a repo without the export: say so before anything is created."""
    try:
        found = api.file_exists(pruned, f"{OPENVINO_SUBFOLDER}/openvino_model.xml")
    except Exception as error:  # noqa: BLE001 - translated, re-raised untouched otherwise
        ours = translate(error, pruned)
        if ours is None:
            raise
        raise ours from error
    if not found:
        raise NoExportToServeError(
            f"'{pruned}' has no OpenVINO export ({OPENVINO_SUBFOLDER}/openvino_model.xml): export it with "
            f"`hfprune export FOLDER --to openvino --out FOLDER/{OPENVINO_SUBFOLDER}`, push the folder again, or "
            "deploy with --pruned-runtime pytorch"
        )


def _space_file(folder: Path, name: str, pruned_runtime: str) -> CommitOperationAdd:
    if name == "requirements.txt" and pruned_runtime == "openvino":
        text = (folder / name).read_text(encoding="utf-8").rstrip("\n") + f"\n{OPENVINO_REQUIREMENT}\n"
        return CommitOperationAdd(name, text.encode("utf-8"))
    return CommitOperationAdd(name, str(folder / name))


def base_model_of(api: HfApi, pruned: str) -> str:
    """The Hub id of the model ``pruned`` was made from: ``hfprune.json`` first, then the card's ``base_model``."""
    try:
        record = json.loads(Path(api.hf_hub_download(pruned, METADATA_FILE)).read_text(encoding="utf-8"))
        base = (record.get("base_model") or {}).get("id")
    except hf_errors.RepositoryNotFoundError as err:
        raise PrunedRepoNotFoundError(
            f"no model repo '{pruned}' on {api.endpoint} (or your token cannot read it). Push the pruned model "
            f"first (`hfprune push FOLDER {pruned}`), or check the id"
        ) from err
    except (hf_errors.EntryNotFoundError, json.JSONDecodeError, AttributeError):
        base = _card_base_model(api, pruned)
    if not base:
        raise DenseModelUnknownError(
            f"'{pruned}' records no base model (no hfprune.json, no base_model in its card); pass --dense OWNER/NAME"
        )
    if not _HUB_ID.fullmatch(base):
        raise DenseModelUnknownError(
            f"'{pruned}' was pruned from a local folder ({base}), which a Space cannot load; publish the dense "
            "model too and pass --dense OWNER/NAME"
        )
    return base


def _card_base_model(api: HfApi, pruned: str) -> str | None:
    try:
        text = Path(api.hf_hub_download(pruned, README)).read_text(encoding="utf-8")
    except hf_errors.EntryNotFoundError:
        return None
    base = front_matter(text).get("base_model")
    return base[0] if isinstance(base, list) and base else base if isinstance(base, str) else None


def front_matter(text: str) -> dict[str, Any]:
    """The YAML mapping between the leading ``---`` lines of a card, or ``{}``."""
    match = re.match(r"^---\n(.*?)\n---\n", text, flags=re.S)
    loaded = yaml.safe_load(match.group(1)) if match else None
    return loaded if isinstance(loaded, dict) else {}


def render_readme(dense: str, pruned: str) -> str:
    """The Space's README: the template's front matter with this deployment's models and gradio version."""
    import gradio

    template = (asset_path(SPACE_FOLDER) / README).read_text(encoding="utf-8")
    metadata = front_matter(template)
    body = template.split("\n---\n", 1)[1]
    metadata.update(
        {
            "title": _title(pruned),
            "sdk": "gradio",
            "sdk_version": gradio.__version__,
            "app_file": SPACE_APP_FILE,
            "models": [dense, pruned],
            "license": SPACE_LICENSE,
        }
    )
    header = yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True)
    return f"---\n{header}---\n{Template(body).safe_substitute(dense=f'`{dense}`', pruned=f'`{pruned}`')}"


def _title(pruned: str) -> str:
    """A short title: the Space page shows it large, so long model names are cut."""
    name = pruned.split("/")[-1]
    return f"{name[:40]} vs dense"


def _request_hardware(api: HfApi, space_id: str, hardware: str, url: str) -> None:
    try:
        api.request_space_hardware(space_id, hardware)
    except hf_errors.HfHubHTTPError as err:
        status = getattr(err.response, "status_code", None)
        raise SpaceHardwareError(
            f"the Space is deployed at {url}, but the Hub refused hardware '{hardware}' (HTTP {status}). Paid "
            "hardware needs a payment method on your account (https://huggingface.co/settings/billing); run the "
            "same command again once it is set, or leave out --hardware to keep cpu-basic"
        ) from err
