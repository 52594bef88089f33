"""`koner.ray`, the documented name of the Ray Data adapter (`annotate`); it lives in `koner.batch.ray`, beside the
Ray start-up of `koner ner-dataset --engine ray`. Needs the `[ray]` extra; `import koner` never imports Ray."""
from .batch.ray import RAY_HINT, actor_class, annotate, run_files, session

__all__ = ["RAY_HINT", "actor_class", "annotate", "run_files", "session"]
