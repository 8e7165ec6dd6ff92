"""Export to a runtime that turns pruning and int8 into size and speed: OpenVINO through optimum-intel.

``settings`` says what is asked (``hfprune.models.openvino_compat`` pins and adjusts optimum-intel for this
transformers, for the export and the Space alike); ``openvino`` exports; ``ir`` reads what the IR holds; ``runtime`` writes and reads its runtime settings; ``verify`` checks
the export against the PyTorch model per language.
"""

from .openvino import ExportResult, export_openvino
from .runtime import EXPORT_RECORD, RUNTIME_FILE, load_openvino
from .settings import WEIGHT_FORMATS, ExportSettings

__all__ = [
    "EXPORT_RECORD",
    "RUNTIME_FILE",
    "WEIGHT_FORMATS",
    "ExportResult",
    "ExportSettings",
    "export_openvino",
    "load_openvino",
]
