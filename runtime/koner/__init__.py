"""koner: Korean named-entity recognition on onnxruntime, tokenizers and numpy alone."""
from .entity import Entity, to_dicts
from .errors import (DamagedFileError, KonerError, LabelMismatchError, ManifestError, ModelFileError,
                     ModelNotFoundError, OnnxModelError, OutsideFolderError, PositionTableError, SaturationWarning,
                     TokenizerError, VocabularyMismatchError, WorkerError)
from .ner import NER
from .options import Options

__version__ = "0.1.0"
__all__ = ["NER", "Options", "Entity", "to_dicts", "KonerError", "ModelNotFoundError", "ModelFileError", "ManifestError",
           "TokenizerError", "OnnxModelError", "LabelMismatchError", "VocabularyMismatchError", "DamagedFileError",
           "OutsideFolderError", "PositionTableError", "WorkerError", "SaturationWarning", "__version__"]
