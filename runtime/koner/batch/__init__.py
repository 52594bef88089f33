"""Batch NER over tables: the picklable predictor every engine runs (`predictor`), dataset files and the local
engine of `koner ner-dataset` (`files`, `local`), and the Ray Data and Spark adapters with their start-up (`ray`,
`spark`, public as `koner.ray` and `koner.spark`; `jobs`: what their jobs share). Ray, PySpark and pyarrow are
imported only inside the functions that need them."""
from .predictor import NERPredictor, entities_type

__all__ = ["NERPredictor", "entities_type"]
