"""Publishing to the Hugging Face Hub: push folders (or into a local Hub-layout folder), deploy Spaces.

Plain ``huggingface_hub`` calls, so ``HF_TOKEN`` / ``hf auth login``, ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` apply
as usual; every Hub failure a user can act on goes through :func:`hfprune.hub_errors.translate`, the core's one
translator, which pulling a model (:mod:`hfprune.models.pull`, below the api) uses too. Pulling is re-exported here
so ``hfprune.hub`` stays the one place to reach the Hub from.
"""

from ..models.pull import pull, resolve_model_dir
from ..repo_id import check_model_reference, check_repo_id
from .push import PushResult, push_folder

__all__ = ["PushResult", "check_model_reference", "check_repo_id", "pull", "push_folder", "resolve_model_dir"]
