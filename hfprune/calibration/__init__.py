"""Calibration text: a language mix -> reproducible token samples, each tagged with its language.

``mix`` parses ``en:64,sw:64`` once into a typed :class:`Mix`; ``sources`` finds text (a folder, a ``datasets``
id, the default text: $HFPRUNE_DATA_DIR, the shipped data, the Hub); ``sampling`` cuts reproducible token windows; ``languages`` normalises codes.
"""

from .languages import display_name, match, normalize
from .mix import Mix, MixEntry, parse_mix
from .sampling import CalibrationSet, build_calibration, sample_hash
from .sources import (
    CalibrationSource,
    DatasetSource,
    FolderSource,
    SourceSpec,
    TextSource,
    default_source,
    open_source,
)

__all__ = [
    "CalibrationSet",
    "CalibrationSource",
    "DatasetSource",
    "FolderSource",
    "Mix",
    "MixEntry",
    "SourceSpec",
    "TextSource",
    "build_calibration",
    "default_source",
    "display_name",
    "match",
    "normalize",
    "open_source",
    "parse_mix",
    "sample_hash",
]
