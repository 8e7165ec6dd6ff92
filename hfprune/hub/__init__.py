"""Talking to the Hugging Face Hub: pull models, publish folders (or into a local Hub-layout folder), deploy Spaces.

Plain ``huggingface_hub`` calls, so ``HF_TOKEN`` / ``hf auth login``, ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` apply
as usual; every Hub failure a user can act on goes through :func:`hfprune.hub.errors.translate`. This room knows
nothing of pruning: it sits just above the core, so loading a model (``hfprune.models``) can pull it.
"""

from .pull import pull, resolve_model_dir
from .push import PushResult, push_folder
from .repo_id import check_model_reference, check_repo_id

__all__ = ["PushResult", "check_model_reference", "check_repo_id", "pull", "push_folder", "resolve_model_dir"]
