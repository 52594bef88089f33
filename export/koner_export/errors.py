"""Exceptions of the export and parity steps; each message names the cause and what to do."""
from __future__ import annotations

from koner.errors import KonerError


def one_line(exc: BaseException) -> str:
    """An exception as one short line, for a `koner:` message: its type and the first line of its message."""
    return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:200]}"


class ExportError(KonerError):
    """The export could not be done; the message says why and what to do."""


class SourceNotFoundError(ExportError):
    """SOURCE is neither an existing folder nor a reachable hub model id."""


class HubUnreachableError(ExportError):
    """The hub could not be reached to fetch SOURCE."""


class CheckpointError(ExportError):
    """The folder lacks weights, a tokenizer or a config, or is not a token classifier."""


class OutputExistsError(ExportError):
    """OUT_DIR exists and --force was not given."""


class ValidationError(ExportError):
    """The ONNX model's logits differ from PyTorch's by more than the tolerance."""


class ParityError(ExportError):
    """The parity suite found the exported model below a threshold."""


class CorpusError(ExportError):
    """A --corpus file is missing, not UTF-8 JSON lines, or a line lacks its "text"."""


class ParityNotRunError(ExportError):
    """The model folder was written, but the parity suite failed unexpectedly; koner.json and parity.md say
    parity could not run. `out_dir`, `stage` (where the suite stopped) and `manifest` are set; the failure
    is the exception's __cause__."""

    def __init__(self, out_dir, stage: str, reason: str, manifest: dict):
        self.out_dir, self.stage, self.manifest = out_dir, stage, manifest
        super().__init__(f"{out_dir} written, but the parity suite failed at \"{stage}\" ({reason}); the model is "
                         "kept, and its koner.json and parity.md record that parity could not run")
