"""The side-by-side benchmark from a source checkout: the same as `koner bench` (see koner_export/bench.py), its
results in benchmarks/results/ (where the committed runs are) unless --out says otherwise."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "runtime"), str(ROOT / "export")]

from koner_export.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(results=ROOT / "benchmarks" / "results"))
