"""`koner.spark`, the documented name of the Spark adapter (`annotate`, `entities_schema`); it lives in
`koner.batch.spark`, beside the SparkSession start-up of `koner ner-dataset --engine spark`. Needs the `[spark]`
extra; `import koner` never imports PySpark."""
from .batch.spark import SPARK_HINT, annotate, entities_schema, run_files, session, spread

__all__ = ["SPARK_HINT", "annotate", "entities_schema", "run_files", "session", "spread"]
