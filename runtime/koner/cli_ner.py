"""`koner ner`: a text argument, lines on stdin, or a JSONL stream in; a table or JSONL out."""
from __future__ import annotations

import json
import os
import sys
from typing import Iterator, Optional

from .entity import Entity
from .ner import NER


def _printable(s: str) -> str:
    """`s` with undecodable input bytes (lone surrogates) shown as U+FFFD."""
    return s.encode("utf-8", "replace").decode("utf-8") if not s.isascii() else s


def _table(text: str, ents: list[Entity]) -> str:
    if not ents:
        return f"{_printable(text)}\n  (no entities)\n"
    rows = [f"  {e.label:<4} {e.start:>5}-{e.end:<5} {e.score:.3f}  {_printable(e.text)}" for e in ents]
    return f"{_printable(text)}\n" + "\n".join(rows) + "\n"


def _json(obj) -> str:
    """One JSON line; Korean as is, undecodable input bytes as \\udcXX escapes (lossless)."""
    line = json.dumps(obj, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(obj)
    return line + "\n"


def _items(stream, jsonl: bool) -> Iterator[tuple[int, Optional[object], Optional[str], Optional[str]]]:
    """(line number, id, text, error) per input line."""
    for n, line in enumerate(stream, 1):
        line = line.rstrip("\n").rstrip("\r")
        if not jsonl:
            yield n, None, line, None
            continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield n, None, None, f"not valid JSON ({exc.msg})"
            continue
        if not isinstance(obj, dict) or "text" not in obj:
            yield n, None, None, "no 'text' field"
        elif not isinstance(obj["text"], str):
            yield n, obj.get("id"), None, f"'text' is {type(obj['text']).__name__}, not a string"
        else:
            yield n, obj.get("id"), obj["text"], None


def run_ner(args) -> int:
    """Run the `ner` verb; returns the exit code (1 when some input lines failed)."""
    ner = NER.load(args.model, threads=args.threads, aggregation=args.aggregation)
    table = args.format == "table" or (args.format == "auto" and sys.stdout.isatty())
    out = sys.stdout
    failed = 0
    try:
        if args.text is not None:
            ents = ner(args.text)
            out.write(_table(args.text, ents) if table else
                      _json({"text": args.text, "entities": [e.to_dict() for e in ents]}))
            out.flush()
            return 0
        pending: list[tuple] = []

        def flush() -> None:
            texts = [p[2] for p in pending]
            for (n, ident, text, _), ents in zip(pending, ner.batch(texts, batch_size=args.batch_size)):
                if table:
                    out.write(_table(text, ents))
                else:
                    key = {"id": ident} if args.jsonl else {"line": n, "text": text}
                    out.write(_json({**key, "entities": [e.to_dict() for e in ents]}))
            out.flush()
            pending.clear()

        # bytes that are not UTF-8 reach the model as lone surrogates instead of stopping the stream
        stdin = sys.stdin
        if hasattr(stdin, "reconfigure"):
            stdin.reconfigure(errors="surrogateescape")
        for n, ident, text, err in _items(stdin, args.jsonl):
            if err is not None:
                flush()  # keep output in input order
                failed += 1
                print(f"koner: stdin line {n}: {err}; line skipped", file=sys.stderr)
                continue
            pending.append((n, ident, text, None))
            if len(pending) >= args.batch_size:
                flush()
        flush()
    except BrokenPipeError:
        # the reader went away (e.g. `| head -1`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    if failed:
        print(f"koner: {failed} input line(s) failed", file=sys.stderr)
        return 1
    return 0
