"""`python -m koner.cli`: the `koner` command."""
import sys

from . import main

sys.exit(main())
