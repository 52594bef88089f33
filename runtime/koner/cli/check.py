"""`koner check [MODEL]`: verify a model folder's files and run its check set on this CPU (`koner.check`)."""
from __future__ import annotations

import sys


def register(sub) -> None:
    """Add the `check` verb to the `koner` command's sub-parsers."""
    from .args import checked

    p = sub.add_parser("check", help="verify a model folder's files and whether this CPU gives the labels export "
                                     "recorded (exit 0 ok, 1 decisive flips, 2 damaged folder)")
    p.add_argument("model", nargs="?", help="model folder (default: the bundled stand-in)")
    p.add_argument("--tie-margin", type=checked(float, lambda x: 0 <= x <= 1, "a logit margin from 0 to 1"),
                   default=None, help="a flip is decisive when PyTorch preferred its label by at least this many "
                                      "logits (default 0.1, the parity gate's)")
    p.set_defaults(run=run_check)


def run_check(args) -> int:
    """Run `koner check`; prints the report on stdout and returns its exit code."""
    from ..check import TIE_MARGIN, check_model

    report = check_model(args.model, tie_margin=TIE_MARGIN if args.tie_margin is None else args.tie_margin)
    print("\n".join(report.lines()), file=sys.stdout, flush=True)
    return report.exit_code
