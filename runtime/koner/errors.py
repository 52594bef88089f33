"""Exceptions raised by koner; each message says which file is at fault and what to do."""
from __future__ import annotations


class KonerError(Exception):
    """Base class of every error koner raises on purpose."""


class ModelNotFoundError(KonerError, FileNotFoundError):
    """The model folder does not exist."""

    @classmethod
    def of(cls, folder: object, where: str = "", bundled: str = "no path") -> "ModelNotFoundError":
        """The one message for a model folder that is not there: `where` says where it must be readable, `bundled`
        how to ask for the bundled model instead."""
        return cls(f"{folder}: no such model folder; give the folder `koner export` wrote{where}, or {bundled} for "
                   "the bundled model")


class ModelFileError(KonerError):
    """A file of the model folder is missing, unreadable or inconsistent; `path` names it."""

    def __init__(self, path, message: str):
        self.path = str(path)
        super().__init__(f"{self.path}: {message}")


class ManifestError(ModelFileError):
    """koner.json is missing, not valid JSON, or lacks a required field."""


class TokenizerError(ModelFileError):
    """tokenizer.json is missing, unreadable, or its normalizer would change the text."""


class OnnxModelError(ModelFileError):
    """model.onnx is missing, truncated or not a model onnxruntime can load."""


class LabelMismatchError(ModelFileError):
    """The manifest's label count differs from the width of the model's output."""


class VocabularyMismatchError(ModelFileError):
    """The tokenizer can produce ids beyond the model's embedding table."""


class DamagedFileError(ModelFileError):
    """A file of the model folder is not the one export wrote: its size or sha256 differs from koner.json's."""


class OutsideFolderError(ModelFileError):
    """koner.json or the model's graph names a file outside the model folder (a path, `..`, a symlink out)."""


class PositionTableError(ModelFileError):
    """koner.json's max_length is more tokens than the model's position table holds."""


class OutputError(KonerError, ValueError):
    """An output file or folder cannot be written where it was asked for; the message says why."""


class WorkerError(KonerError):
    """Processing the input at `index` failed; the original exception is `__cause__`."""

    def __init__(self, index: int, exc: BaseException):
        self.index = index
        super().__init__(f"input {index}: {type(exc).__name__}: {exc}")


class SaturationWarning(UserWarning):
    """This CPU's int8 kernels can saturate with this model's weights: some labels may differ from a VNNI CPU's."""
