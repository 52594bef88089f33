"""The side-by-side benchmark from a source checkout: the same as `koner bench` (see koner_export/bench.py)."""
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "runtime"), str(Path(__file__).resolve().parents[1] / "export")]

from koner_export.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
