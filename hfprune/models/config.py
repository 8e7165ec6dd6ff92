"""Reading a model folder's config: one clear line for a file that is missing, not JSON or not a config.

Both loading paths (whole model, and ``--stream``'s skeleton) read it here, so a broken ``config.json`` is
reported the same way whichever way the model is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import BrokenModelFileError, UnsupportedArchitectureError


def read_config(folder: Path, name: str | Path, trust_remote_code: bool = False) -> Any:
    """The folder's config, or one line saying why it cannot be read.

    Raises:
        BrokenModelFileError: ``config.json`` is missing, not JSON or not a transformers config.
        UnsupportedArchitectureError: transformers knows no model type of that name.
    """
    from transformers import AutoConfig

    config_file = folder / "config.json"
    try:
        json.loads(config_file.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise BrokenModelFileError(f"{name} has no config.json; a model folder needs one beside its weights") from err
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise BrokenModelFileError(
            f"{config_file} is not valid JSON ({err}); re-download or re-save the model"
        ) from err
    try:
        return AutoConfig.from_pretrained(folder, trust_remote_code=trust_remote_code)
    except (OSError, KeyError, TypeError) as err:
        raise BrokenModelFileError(f"{config_file} is not a config transformers can read: {err}") from err
    except ValueError as err:
        raise UnsupportedArchitectureError(f"{name}: {err}") from err
