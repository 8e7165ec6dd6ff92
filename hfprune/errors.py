"""Every error hfprune raises on purpose, in one tree.

Every failure a user can fix has its own class and a message that says what to do. The CLI prints
``error: <message>`` on one line and exits with :attr:`HfpruneError.exit_code`; library users can catch the
specific class, a family (``CalibrationError``, ``PublishError``, ...) or :class:`HfpruneError` itself.
Messages are built from ids, paths and numbers only, never from tokens or request headers.
"""

from __future__ import annotations


class HfpruneError(Exception):
    """Base class of every error hfprune raises on purpose."""

    exit_code = 2


class HfpruneWarning(UserWarning):
    """Something works but is probably not what the user meant; the CLI prints it as one ``warning:`` line."""


class InvalidOptionError(HfpruneError):
    """An option value or a combination of options that cannot work (checked before any work starts)."""


class NotTextFileError(InvalidOptionError):
    """A file that should hold text is not UTF-8, or is binary."""


class InvalidDeviceError(InvalidOptionError):
    """A compute device that does not exist on this machine (``--device cuda`` without CUDA, an unknown name)."""


class InstallationError(HfpruneError):
    """hfprune's own installation is incomplete."""


class AssetNotFoundError(InstallationError):
    """A packaged file (template, Space app) is missing: the installation is incomplete."""


class DataFolderError(InvalidOptionError):
    """A data folder the user named (a flag or ``HFPRUNE_DATA_DIR``) does not exist."""


class NotAPrunedFolderError(HfpruneError):
    """A folder that should hold an hfprune output lacks a readable ``hfprune.json``."""


# --- models and the Hub ---------------------------------------------------------------------------------
class ModelError(HfpruneError):
    """The model cannot be found, fetched or handled."""


class ModelNotFoundError(ModelError):
    """The model id is neither a local folder nor a repository on the Hub."""


class RevisionNotFoundError(ModelError):
    """The repository exists but the branch, tag or commit does not."""


class GatedModelError(ModelError):
    """The repository is gated or private and no (valid) token gives access."""


class HubUnavailableError(ModelError):
    """The Hub cannot be reached (offline mode, no network) and nothing is cached."""


class UnsafeWeightsError(ModelError):
    """The model ships no safetensors weights; pickled weights are never loaded."""


class UnsupportedArchitectureError(ModelError):
    """No stack of transformer blocks with prunable linear layers was found."""


class SequenceTooLongError(ModelError):
    """Calibration samples longer than the model's learned position embeddings can hold."""


class NonFiniteWeightsError(ModelError):
    """A layer holds NaN or Inf weights: every score-based ranking of it would be meaningless."""


class CorruptCheckpointError(ModelError):
    """A safetensors file whose header does not describe its bytes (truncated, tampered or not safetensors)."""


class IncompleteCheckpointError(ModelError):
    """The weights do not cover the architecture the config describes: tensors missing, or of another shape
    (a config that disagrees with its weights). Never loaded with the gaps randomly initialised."""


class BrokenModelFileError(ModelError):
    """A model folder's config or tokenizer file exists but cannot be read (not JSON, truncated, corrupt)."""


class StreamingUnsupportedError(ModelError):
    """This model or method cannot be pruned block by block from disk; run without ``--stream``."""


class SemiStructuredUnavailableError(ModelError):
    """This machine or model cannot use the 2:4 sparse kernels."""


class StructuredPruningUnsupportedError(ModelError):
    """This architecture cannot lose these structures: transformers' stock config could not describe the result."""


class DevicePlacementError(InvalidOptionError):
    """A ``--device-map`` / ``--max-memory`` / ``--offload-folder`` that cannot place the model."""


# --- pruning settings -----------------------------------------------------------------------------------
class PruningSettingsError(InvalidOptionError):
    """A pruning parameter that is out of range or contradicts another."""


class InvalidSparsityError(PruningSettingsError):
    """Sparsity outside [0, 1)."""


class InvalidStructureError(PruningSettingsError):
    """An N:M pattern that is malformed or does not fit the layer widths."""


class InvalidStructuredSpecError(InvalidStructureError):
    """A structured spec (``width:F``, ``heads:K``, ``depth:K``) that is malformed, out of range for the model, or
    contradicts another option (``--sparsity``, N:M, a layerwise profile)."""


class UnknownAggregationError(PruningSettingsError):
    """A ``--lang-agg`` that is not one of the language aggregations."""


class UnknownMethodError(PruningSettingsError):
    """A pruning method name that is not registered."""


class InvalidMethodParameterError(PruningSettingsError):
    """A method parameter the method does not take, or a value outside its range."""


class InvalidMWandaParameterError(InvalidMethodParameterError):
    """An M-Wanda switch outside its range."""


class InvalidProfileError(PruningSettingsError):
    """An unknown profile name, parameters out of range, or a profile that cannot apply (N:M)."""


class AllocationError(PruningSettingsError):
    """The layerwise allocation cannot meet its target inside its bounds."""


class InvalidPipelineError(PruningSettingsError):
    """An unknown calibration pipeline, or engine settings that cannot work together."""


class MethodRegistrationError(HfpruneError):
    """A pruning method class that cannot be registered (a name taken by another class)."""


# --- pruning failures -----------------------------------------------------------------------------------
class PruningFailedError(HfpruneError):
    """The computation itself failed on this model and calibration text."""


class HessianNotPositiveDefiniteError(PruningFailedError):
    """Cholesky failed even with extra damping: the calibration data is degenerate for this layer."""


class GradientPassError(PruningFailedError):
    """The model could not be differentiated on the calibration text."""


# --- calibration ----------------------------------------------------------------------------------------
class CalibrationError(HfpruneError):
    """Calibration text cannot be found, parsed or sampled as asked."""


class CalibrationMixError(CalibrationError):
    """A malformed language mix such as ``en:``, ``en:-3`` or a language given twice."""


class UnknownLanguageError(CalibrationError):
    """A language code that is not a valid ISO 639 / BCP 47 tag."""


class CalibrationSourceError(CalibrationError):
    """The calibration source does not exist or holds no text for a requested language."""


class NotEnoughCalibrationTextError(CalibrationError):
    """A language has too little text for the requested samples x sequence length."""


# --- outputs --------------------------------------------------------------------------------------------
class OutputError(HfpruneError):
    """An output that cannot be written as asked."""


class OutputExistsError(OutputError):
    """The output path exists and ``overwrite`` was not given."""


class OutputNotOursError(OutputError):
    """``--overwrite`` was given for an existing folder that hfprune did not write; it is never replaced."""


class OutputOverlapsModelError(OutputError):
    """The output is, contains or lies inside the model folder being read."""


class OutputNotWritableError(OutputError):
    """The output's folder cannot be written (permissions, a read-only disk)."""


class DiskFullError(OutputError):
    """The disk filled up while writing; nothing was left half-written."""


# --- vocabulary trimming --------------------------------------------------------------------------------
class VocabError(HfpruneError):
    """The vocabulary cannot be trimmed as asked."""


class VocabSourceError(VocabError):
    """The vocabulary source has no (or too little) text for a language to keep."""


class VocabSizeError(VocabError, InvalidOptionError):
    """``--vocab-size`` / ``--vocab-min-count`` out of range, or a cap below the tokens that must stay."""


class UnsupportedTokenizerError(VocabError):
    """A tokenizer that cannot be trimmed: no ``tokenizer.json``, WordPiece, or a BPE without a byte alphabet."""


class NonStandardEmbeddingsError(VocabError):
    """The model's vocabulary rows are not (only) in ``get_input_embeddings`` / ``get_output_embeddings``."""


class UnknownScriptError(VocabError):
    """``--vocab-scripts`` for a language whose writing system is not known."""


class VocabVerificationError(VocabError):
    """The trimmed model does not reproduce the original's logits: the output is not written."""


# --- healing (distilling a pruned model from its dense teacher) ---------------------------------------------
class HealingError(HfpruneError):
    """A pruned model that cannot be healed as asked."""


class HealingSettingsError(HealingError, InvalidOptionError):
    """A healing setting out of range (``--tokens 0``, ``--kd-weight 2``, an unknown ``--heal-mode``)."""


class TeacherTokenizerMismatchError(HealingError):
    """The teacher reads text with other token ids than the student (and no ``vocab_map.json`` relates them)."""


class NotEnoughHealingTextError(HealingError, NotEnoughCalibrationTextError):
    """Too few windows of text are left for the healing samples once the mask's own samples are set aside."""


class TeacherDoesNotFitError(HealingError):
    """Student (weights, gradients, AdamW state) and teacher together need more device memory than is free."""


class HealCheckpointError(HealingError):
    """A healing checkpoint that cannot be used: none to resume, one of another run, or a folder not hfprune's."""


class HealingInterruptedError(HealingError):
    """Ctrl-C during healing: a checkpoint was saved; the message says how to resume."""

    exit_code = 130


class MaskNotKeptError(HealingError):
    """A weight the pruning set to zero is not zero after healing: the output is not written."""


# --- export (OpenVINO through optimum-intel) -----------------------------------------------------------
class ExportError(HfpruneError):
    """A model that cannot be exported as asked."""


class ExportUnavailableError(ExportError, InstallationError):
    """The export stack (optimum-intel, openvino, nncf) is missing, or is not the version pair hfprune tested."""


class ExportSettingsError(ExportError, InvalidOptionError):
    """An export option that cannot work (``--weights int3``, a sparse rate outside (0, 1], int4 without text)."""


class ExportVerificationError(ExportError):
    """The exported model does not reproduce the PyTorch model within its format's tolerance: nothing is kept."""


# --- evaluation -----------------------------------------------------------------------------------------
class EvaluationError(HfpruneError):
    """An evaluation that cannot run on the data or settings given."""


class UnknownTaskError(EvaluationError):
    """A task name that is not defined; the message lists the tasks that are."""


class LanguageNotAvailableError(EvaluationError):
    """The data has no file for a requested language; the message lists the languages it has."""


class DataFileMissingError(EvaluationError):
    """An expected data file (or the data folder itself) is missing; the message names the path."""


class DataSourceError(EvaluationError):
    """A text source (folder, file or ``datasets`` id) cannot be read."""


class HubDataError(DataSourceError):
    """A Hub dataset asked for text no data folder has could not be read (offline, gated, no such config)."""


class EmptyTextError(EvaluationError):
    """A text to score holds too few tokens to compute a perplexity."""


class ContextLengthError(EvaluationError):
    """The context length or stride does not fit the model (above its maximum, or below 2 tokens)."""


class BaselineMismatchError(EvaluationError):
    """Dense and pruned results were computed on different data or settings and cannot be compared."""


# --- cards ----------------------------------------------------------------------------------------------
class CardError(HfpruneError):
    """A model card that cannot be written."""


class ResultsFormatError(CardError):
    """An evaluation results file that ``hfprune eval`` did not write (or from an incompatible version)."""


class ResultsOfAnotherModelError(CardError):
    """The results file records other weights than the folder's: it measured another model."""


class CardTemplateError(CardError):
    """The model card template is missing or fails to render."""


# --- publishing -----------------------------------------------------------------------------------------
class PublishError(HfpruneError):
    """Publishing to the Hub (or a local Hub folder) failed in a way the user can fix."""


class NotLoggedInError(PublishError):
    """Pushing needs a token and none was found (no HF_TOKEN, no `hf auth login`)."""


class InvalidTokenError(PublishError):
    """The Hub rejected the token (revoked, mistyped, expired)."""


class RepoPermissionError(PublishError):
    """The token cannot write to that repo: another user's or organisation's namespace, or a read-only token."""


class InvalidRepoIdError(PublishError):
    """A repo id that is not ``owner/name``."""


class MissingCardError(PublishError):
    """The folder to push has no ``README.md`` model card."""


class UploadInterruptedError(PublishError):
    """The connection failed before the Hub recorded the commit; nothing new was published."""


class PushVerificationError(PublishError):
    """After the commit, the remote files do not match the local ones (missing, other size or other hash)."""


class SecretInFolderError(PublishError):
    """A file of the folder to publish holds the user's Hub token."""


class LinkOutOfFolderError(PublishError):
    """The folder to publish holds a symbolic link to something outside it (or to a folder, or to nothing):
    publishing it would publish a file the user never put in the folder."""


class InvalidBranchError(PublishError, InvalidOptionError):
    """A branch name to publish to that git (and so the Hub) can never accept."""


class LocalHubError(PublishError):
    """The local Hub folder cannot be written (git missing, a branch moved during the commit, ...)."""


# --- the comparison Space ---------------------------------------------------------------------------------
class SpaceError(HfpruneError):
    """The comparison page cannot be served or deployed."""


class GradioMissingError(SpaceError):
    """gradio is not importable (a broken or partial install)."""


class ModelSourceError(SpaceError):
    """A model argument that is neither an existing folder nor a Hub id ``OWNER/NAME``."""


class SpaceModelLoadError(SpaceError):
    """The page could not load the dense or the pruned model."""


class PortInUseError(SpaceError):
    """Another program already listens on the requested port."""


class DenseModelUnknownError(SpaceError):
    """``--dense`` was not given and the pruned repo records no base model on the Hub."""


class PrunedRepoNotFoundError(SpaceError):
    """The pruned model repo does not exist on the Hub (or the token cannot see it)."""


class SpaceHardwareError(SpaceError):
    """The Space was deployed, but the Hub refused the requested hardware (billing, unknown flavor)."""


class UnknownHardwareError(SpaceError):
    """A Space hardware flavor the Hub does not offer."""


class NoExportToServeError(SpaceError):
    """``--pruned-runtime openvino`` for a pruned repo without an OpenVINO export in its ``openvino/`` folder."""


# --- analysis -------------------------------------------------------------------------------------------
class AnalysisError(HfpruneError):
    """A sweep or an analysis that cannot run on what was given."""


class SweepSpecError(AnalysisError):
    """A sweep grid that cannot run: no methods, a bad sparsity list, no evaluation language."""


class AnalysisInputError(AnalysisError):
    """Folders that cannot be compared: not pruned by hfprune, different architectures, missing weights."""


# --- several processes (torchrun, accelerate launch) -----------------------------------------------------
class DistributedError(HfpruneError):
    """A run on several processes that cannot start or cannot go on."""


class LauncherEnvironmentError(DistributedError):
    """The launcher's variables (RANK, WORLD_SIZE, MASTER_ADDR, ...) are missing or unusable."""


class RankLostError(DistributedError):
    """Another rank stopped answering (it died, hung past the timeout, or the network failed)."""


class RanksDisagreeError(DistributedError):
    """The ranks hold different inputs (calibration samples, model) where they must be identical."""
