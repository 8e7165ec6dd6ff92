"""What an export is asked to do, checked before any work: the target, the weight format, and how it is checked."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..calibration import Mix, parse_mix
from ..constants import DEFAULT_SEED
from ..errors import ExportSettingsError, ExportUnavailableError

TARGETS = ("openvino",)
#: Targets a user may name: ``onnx`` is refused with why (optimum-onnx's versions disagree with this stack).
KNOWN_TARGETS = (*TARGETS, "onnx")
ONNX_UNAVAILABLE = (
    "--to onnx needs optimum-onnx, whose newest release (0.1.0) requires transformers<4.58 and optimum~=2.1 and "
    "does not import under transformers 5.x (it imports names transformers removed); use --to openvino, which "
    "runs on the same CPUs"
)
WEIGHT_FORMATS = ("int8", "int4", "fp16", "fp32")
#: Relative change of bits per byte (exported against PyTorch, per kept language) within which an export is
#: "as good as the PyTorch model" for its format; measured on the tiny model and Gemma 3 270M (benchmarks/).
BPB_TOLERANCE = {"fp32": 0.001, "fp16": 0.005, "int8": 0.02, "int4": 0.10}
#: Largest |logit difference| accepted for float formats (int formats are judged by bits per byte alone).
LOGIT_TOLERANCE = {"fp32": 1e-2}
#: Formats whose failed verification stops the export (a numeric fault, not a chosen loss of precision).
STRICT_FORMATS = ("fp32", "fp16")
#: Below this share of zeros in the int8 weights of the blocks, sparse decompression is left off.
SPARSE_ENOUGH = 0.3


@dataclass(frozen=True)
class ExportSettings:
    """``sym``: symmetric int8/int4 (``None``: symmetric when the model is sparse, since asymmetric quantisation
    turns zeros into the zero point and loses them; asymmetric otherwise, which keeps more precision).
    ``sparse_rate``: OpenVINO's ``CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE`` written to the runtime config (``None``:
    chosen from the measured zeros; ``1.0``: off). ``calib``: the text of data-aware int4 (AWQ and scale
    estimation on the user's languages; ``None`` for int4 means the languages the model was pruned on)."""

    to: str = "openvino"
    weights: str = "int8"
    sym: bool | None = None
    group_size: int = 128
    sparse_rate: float | None = None
    calib: Mix | None = None
    verify_langs: tuple[str, ...] = ()
    verify_sentences: int = 16
    greedy_tokens: int = 16
    speed: bool = True
    threads: int | None = None
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        if self.to == "onnx":
            raise ExportUnavailableError(ONNX_UNAVAILABLE)
        if self.to not in TARGETS:
            raise ExportSettingsError(
                f"--to {self.to!r} is not a target hfprune exports to; choose {', '.join(TARGETS)}"
            )
        if self.weights not in WEIGHT_FORMATS:
            raise ExportSettingsError(
                f"--weights {self.weights!r} is not a weight format; choose one of {', '.join(WEIGHT_FORMATS)}"
            )
        if self.sparse_rate is not None and not 0.0 < self.sparse_rate <= 1.0:
            raise ExportSettingsError(
                f"--sparse-rate {self.sparse_rate} is outside (0, 1]: it is the share of zeros from which a layer's "
                "weights are packed sparse (1 turns it off)"
            )
        if self.sparse_rate is not None and self.sparse_rate < 1.0 and self.weights != "int8":
            raise ExportSettingsError("--sparse-rate needs --weights int8: OpenVINO packs sparse int8 weights only")
        if self.group_size != -1 and self.group_size < 1:
            raise ExportSettingsError(f"--group-size {self.group_size} must be positive (or -1: one per channel)")
        if self.calib is not None and self.weights != "int4":
            raise ExportSettingsError("--calib is the text of data-aware int4: use it with --weights int4")
        if self.verify_sentences < 1 or self.greedy_tokens < 1:
            raise ExportSettingsError("--verify-sentences and --greedy-tokens must be at least 1")
        if self.threads is not None and self.threads < 1:
            raise ExportSettingsError(f"--threads {self.threads} must be at least 1")

    @classmethod
    def build(cls, *, calib: str | Mix | None = None, **values: Any) -> ExportSettings:
        """Settings from CLI-like values (a mix given as ``en:32,sw:32``)."""
        return cls(calib=None if calib is None else parse_mix(calib), **values)

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["calib"] = None if self.calib is None else str(self.calib)
        values["verify_langs"] = list(self.verify_langs)
        return values
