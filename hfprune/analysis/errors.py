"""Errors of the analysis commands, each with what to do about it."""

from __future__ import annotations

from ..errors import HfpruneError


class SweepSpecError(HfpruneError):
    """A sweep grid that cannot run: no methods, a bad sparsity list, no evaluation language."""


class AnalysisInputError(HfpruneError):
    """Folders that cannot be compared: not pruned by hfprune, different architectures, missing weights."""
