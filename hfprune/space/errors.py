"""Errors of ``hfprune space serve | deploy`` that a user can act on; each message says what to do next."""

from __future__ import annotations

from hfprune.errors import HfpruneError


class GradioMissingError(HfpruneError):
    """gradio is not importable (a broken or partial install)."""


class ModelSourceError(HfpruneError):
    """A model argument that is neither an existing folder nor a Hub id ``OWNER/NAME``."""


class SpaceModelLoadError(HfpruneError):
    """The page could not load the dense or the pruned model."""


class PortInUseError(HfpruneError):
    """Another program already listens on the requested port."""


class DenseModelUnknownError(HfpruneError):
    """``--dense`` was not given and the pruned repo records no base model on the Hub."""


class PrunedRepoNotFoundError(HfpruneError):
    """The pruned model repo does not exist on the Hub (or the token cannot see it)."""


class SpaceHardwareError(HfpruneError):
    """The Space was deployed, but the Hub refused the requested hardware (billing, unknown flavor)."""


class UnknownHardwareError(HfpruneError):
    """A Space hardware flavor the Hub does not offer."""
