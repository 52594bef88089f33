"""`python -m koner`: the `koner` command."""
import sys

from .cli import main

sys.exit(main())
