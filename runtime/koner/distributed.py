"""`koner.distributed`, the earlier documented name of the batch predictor: `NERPredictor` and the Arrow entities
column now live in `koner.batch.predictor` (also `koner.batch.NERPredictor`)."""
from .batch.predictor import (ENTITY_FIELDS, NERPredictor, arrow_texts, check_columns, entities_type, entity_record,
                              model_folder, to_arrow)

__all__ = ["ENTITY_FIELDS", "NERPredictor", "arrow_texts", "check_columns", "entities_type", "entity_record",
           "model_folder", "to_arrow"]
