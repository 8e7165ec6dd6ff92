"""Where a model comes from and how it is loaded, as one typed object.

Every job that starts from a model (prune, trim-vocab, run; healing and export next) takes a
:class:`ModelSource`, so the loading options are declared once and cannot drift apart between jobs. The
compute device is not part of it: it belongs to the job (pruning brings one block at a time to it), while
``placement`` says where the loaded weights wait.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .loading import LoadedModel, checkpoint_folder, load_model
from .placement import Placement


@dataclass(frozen=True)
class ModelSource:
    """A Hub id (with an optional revision) or a local folder, and how to load it.

    Attributes:
        model: Hub repo id (``owner/name``) or a local model folder.
        revision: Hub branch, tag or commit (``None``: ``main``); ignored for a local folder.
        token: Hub token for gated or private repos (``None``: the login or ``HF_TOKEN``); never shown in reprs.
        trust_remote_code: allow the repo's own Python code (off unless the user asks).
        dtype: weights dtype, ``"auto"`` for the checkpoint's own.
        placement: spread the weights over GPUs, CPU and disk (``--device-map``); ``None``: all in CPU memory.
    """

    model: str
    revision: str | None = None
    token: str | bool | None = field(default=None, repr=False, compare=False)
    trust_remote_code: bool = False
    dtype: str = "auto"
    placement: Placement | None = None

    @classmethod
    def of(cls, model: ModelSource | str | Path) -> ModelSource:
        """``model`` as a source: a source as it is, an id or folder with every default."""
        return model if isinstance(model, ModelSource) else cls(str(model))

    @property
    def local_folder(self) -> Path | None:
        """The folder, resolved, when ``model`` names one on this machine; ``None`` for a Hub id."""
        path = Path(self.model).expanduser()
        return path.resolve() if path.is_dir() else None

    def at(self, revision: str | None) -> ModelSource:
        """The same source pinned to ``revision`` (e.g. the commit a branch pointed at when a run began)."""
        return dataclasses.replace(self, revision=revision)

    def folder(self) -> Path:
        """The checkpoint's folder on this machine (pulled from the Hub if needed), refused without safetensors."""
        return checkpoint_folder(
            self.model, revision=self.revision, token=self.token, trust_remote_code=self.trust_remote_code
        )

    def load(self, *, device: str | torch.device | None = None, require_tokenizer: bool = False) -> LoadedModel:
        """The model and its tokenizer (see :func:`hfprune.models.load_model`); ``device`` applies without a
        placement."""
        return load_model(
            self.model,
            revision=self.revision,
            token=self.token,
            trust_remote_code=self.trust_remote_code,
            dtype=self.dtype,
            device=device,
            require_tokenizer=require_tokenizer,
            placement=self.placement,
        )
