"""The `koner` command. `ner`, `mask`, `ner-dataset`, `check` and `serve` are the lean runtime's, one module a
verb (`ner.py` holds `ner` and `mask`); `export`, `parity` and `bench` are registered by koner_export (the
`[export]` extra), and are stubs that print the install hint where it is missing."""
from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import NoReturn, Optional

from .. import exitcodes
from ..errors import KonerError
from .args import EXTRA_HINT


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one `koner:` line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"koner: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(exitcodes.USAGE)

    def _print_message(self, message: str, file=None) -> None:
        """--help and --version as argparse prints them, but a write that fails (a full disk) is raised, not
        dropped: it becomes `main`'s one-line error. With no stream (standard output closed) it goes to stderr, as
        argparse sends it."""
        out = file if file is not None else sys.stderr
        if message and out is not None:
            out.write(message)


def build_parser() -> Parser:
    """The whole `koner` command line."""
    from .. import __version__
    from . import check, dataset, ner, serve

    ap = Parser(prog="koner", description="Korean named-entity recognition on onnxruntime.")
    ap.add_argument("--version", action="version", version=f"koner {__version__}")
    sub = ap.add_subparsers(dest="verb", required=True, parser_class=Parser)
    ner.register(sub)
    dataset.register(sub)
    check.register(sub)
    serve.register(sub)
    try:
        from koner_export.cli import register
    except ImportError:
        register = _register_stubs
    register(sub)
    return ap


def _register_stubs(sub) -> None:
    for verb in ("export", "parity", "bench"):
        p = sub.add_parser(verb, help=f"[export extra] {EXTRA_HINT}", add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(run=lambda args: _missing_extra())


def _missing_extra() -> int:
    print(f"koner: {EXTRA_HINT}", file=sys.stderr)
    return exitcodes.USAGE


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: unwound like Ctrl-C, so every output under a temporary name is removed."""


def _terminate(signum, frame) -> NoReturn:
    raise Terminated()


def _drop_unwritable_stdout() -> None:
    """Standard output that cannot take what it holds (`> /dev/full`) is pointed at /dev/null, so the exit that
    follows flushes nowhere instead of failing a second time (exit 120 and a traceback-like line)."""
    if sys.stdout is None:  # started with it closed: nothing to flush
        return
    try:
        sys.stdout.flush()
    except OSError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point of the `koner` command; returns its exit code."""
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as done:  # --help, --version or a usage error, printed by argparse: flushed here, so a
            if sys.stdout is not None:  # full disk is the one-line error below (None: started with it closed)
                sys.stdout.flush()
            return done.code if isinstance(done.code, int) else exitcodes.USAGE
        if args.verb != "serve":  # `koner serve` drains its requests on SIGTERM itself
            signal.signal(signal.SIGTERM, _terminate)
        return args.run(args)
    except KonerError as exc:
        print(f"koner: {exc}", file=sys.stderr)
        return exitcodes.USAGE
    except BrokenPipeError:  # the reader went away (`| head -1`): stop quietly, nothing more to write
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return exitcodes.OK
    except OSError as exc:  # a full disk, an unwritable folder, a file gone: one line, never a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        _drop_unwritable_stdout()
        print(f"koner: {where}{exc.strerror or exc}; outputs under a temporary name were removed", file=sys.stderr)
        return exitcodes.USAGE
    except Terminated:
        print("koner: terminated", file=sys.stderr)
        return exitcodes.TERMINATED
    except KeyboardInterrupt:
        print("koner: interrupted", file=sys.stderr)
        return exitcodes.INTERRUPTED
