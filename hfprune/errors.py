"""Exceptions the user can act on.

Every failure a user can fix has its own class and a message that says what to do. The CLI prints
``error: <message>`` on one line and exits with :attr:`HfpruneError.exit_code`; library users can catch
the specific class.
"""

from __future__ import annotations


class HfpruneError(Exception):
    """Base class of every error hfprune raises on purpose."""

    exit_code = 2


# --- models and the Hub -------------------------------------------------------------------------
class ModelNotFoundError(HfpruneError):
    """The model id is neither a local folder nor a repository on the Hub."""


class RevisionNotFoundError(HfpruneError):
    """The repository exists but the branch, tag or commit does not."""


class GatedModelError(HfpruneError):
    """The repository is gated or private and no (valid) token gives access."""


class HubUnavailableError(HfpruneError):
    """The Hub cannot be reached (offline mode, no network) and nothing is cached."""


class UnsafeWeightsError(HfpruneError):
    """The model ships no safetensors weights; pickled weights are never loaded."""


class UnsupportedArchitectureError(HfpruneError):
    """No stack of transformer blocks with prunable linear layers was found."""


# --- pruning parameters -------------------------------------------------------------------------
class InvalidSparsityError(HfpruneError):
    """Sparsity outside [0, 1)."""


class InvalidStructureError(HfpruneError):
    """An N:M pattern that is malformed or does not fit the layer widths."""


class UnknownMethodError(HfpruneError):
    """A pruning method name that is not registered."""


# --- calibration ----------------------------------------------------------------------------------
class CalibrationMixError(HfpruneError):
    """A malformed language mix such as ``en:``, ``en:-3`` or a language given twice."""


class UnknownLanguageError(HfpruneError):
    """A language code that is not a valid ISO 639 / BCP 47 tag."""


class CalibrationSourceError(HfpruneError):
    """The calibration source does not exist or holds no text for a requested language."""


class NotEnoughCalibrationTextError(HfpruneError):
    """A language has too little text for the requested samples x sequence length."""


# --- outputs --------------------------------------------------------------------------------------
class OutputExistsError(HfpruneError):
    """The output path exists and ``overwrite`` was not given."""


class DiskFullError(HfpruneError):
    """The disk filled up while writing; nothing was left half-written."""
