"""`koner ner`: a text argument, lines or JSONL from stdin or a file in; a table or JSONL out, streamed.

Texts run on worker threads (`NER.pipe`) and come out in input order as soon as they are done; a text
longer than one model window gets all workers on its windows, and its entities are written as they are
found, so a 1 MB line is never held twice. `--output FILE` is written under a temporary name and
renamed at the end: a file with the final name is always complete.
"""
from __future__ import annotations

import json
import os
import secrets
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from typing import IO, Iterable, Iterator, Optional

from . import exitcodes
from .aggregate import STRATEGIES
from .entity import Entity
from .mask import STYLES, mask
from .ner import NER
from .spans import MERGE_TAGS
from .tokens import LONG_TEXT_CHARS, encodable


def register(sub) -> None:
    """Add the `ner` and `mask` verbs to the `koner` command's sub-parsers."""
    p = sub.add_parser("ner", help="print the entities of a text, of lines on stdin, or of a JSONL stream")
    _common(p)
    p.add_argument("--format", choices=["auto", "table", "jsonl"], default="auto",
                   help="output: a table on a terminal, JSONL otherwise (auto)")
    p.add_argument("--no-text", action="store_true", help="JSONL output without the input text")
    p.set_defaults(run=run_ner, masking=False)

    m = sub.add_parser("mask", help="replace the entities of texts (personal data) with tags, stars or pseudonyms")
    _common(m)
    m.add_argument("--style", choices=STYLES, default="tag",
                   help="tag: [PS]; char: one * per character (offsets kept); hash: [PS-1a2b3c4d], the same for "
                        "the same name in one run")
    m.add_argument("--salt", help="salt of the hash style (default: random per run); the same salt gives the "
                                  "same pseudonyms across runs")
    m.add_argument("--format", choices=["auto", "text", "jsonl"], default="auto",
                   help="output: masked text lines, or JSONL with the replacements (auto: JSONL for --jsonl input)")
    m.set_defaults(run=run_ner, masking=True, no_text=False)


def _common(p) -> None:
    from .cli_args import positive_int

    p.add_argument("text", nargs="?", help="the text; without it, lines are read from stdin (or --input)")
    p.add_argument("--model", help="model folder (default: the bundled stand-in)")
    p.add_argument("--aggregation", default="simple", choices=STRATEGIES)
    p.add_argument("--jsonl", action="store_true", help='input lines are {"id": ..., "text": ...} objects')
    p.add_argument("--input", metavar="FILE", help="read lines from FILE instead of stdin")
    p.add_argument("--output", metavar="FILE", help="write to FILE (complete or not at all) instead of stdout")
    p.add_argument("--threads", type=positive_int, help="intra-op threads per model call (default 1)")
    p.add_argument("--workers", type=positive_int,
                   help="texts run at once on threads sharing the model (default: usable CPUs / threads)")
    p.add_argument("--batch-size", type=positive_int, default=16, help="texts read ahead per worker (16)")
    p.add_argument("--labels", help="only these entity types, e.g. PS,LC,OG")
    p.add_argument("--decode", choices=["argmax", "viterbi"], default="argmax",
                   help="argmax (the transformers pipeline's labels) or viterbi (valid BIO; higher F1; "
                        "aggregation none or simple)")
    p.add_argument("--merge", action="store_true",
                   help=f"join split same-type spans across whitespace (types {', '.join(sorted(MERGE_TAGS))}, "
                        "where it measured better)")
    p.add_argument("--progress", choices=["auto", "on", "off"], default="auto",
                   help="a progress line on stderr (auto: when stderr is a terminal)")


@dataclass
class Item:
    """One input line: its number, JSONL id, text, or why it was skipped."""

    line: int
    ident: Optional[object] = None
    text: Optional[str] = None
    error: Optional[str] = None


def read_items(stream: Iterable[str], jsonl: bool) -> Iterator[Item]:
    """One Item per input line (blank JSONL lines are skipped)."""
    for n, line in enumerate(stream, 1):
        line = line.rstrip("\n").rstrip("\r")
        if not jsonl:
            yield Item(n, text=line)
            continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Item(n, error=f"not valid JSON ({exc.msg})")
            continue
        if not isinstance(obj, dict) or "text" not in obj:
            yield Item(n, error="no 'text' field")
        elif not isinstance(obj["text"], str):
            yield Item(n, obj.get("id"), error=f"'text' is {type(obj['text']).__name__}, not a string")
        else:
            yield Item(n, obj.get("id"), obj["text"])


class Writer:
    """Writes each answered text as a table block or a JSONL record (entities may come one by one)."""

    def __init__(self, out: IO[str], table: bool, jsonl_input: bool, with_text: bool):
        self.out, self.table, self.jsonl_input, self.with_text = out, table, jsonl_input, with_text

    def write(self, item: Item, ents: Iterable[Entity]) -> int:
        """Write one text's answer; returns how many entities it had."""
        text = item.text or ""
        n = 0
        if self.table:
            self.out.write(encodable(text) + "\n")
            for e in ents:
                self.out.write(f"  {e.label:<4} {e.start:>5}-{e.end:<5} {e.score:.3f}  {encodable(e.text)}\n")
                n += 1
            if not n:
                self.out.write("  (no entities)\n")
            return n
        key: dict = {"id": item.ident} if self.jsonl_input else {"line": item.line}
        if self.with_text and not self.jsonl_input:
            key["text"] = text
        head = json.dumps(key, ensure_ascii=False)
        # undecodable input bytes (lone surrogates) are written as \udcXX escapes: lossless
        ascii_only = encodable(head) is not head or encodable(text) is not text
        if ascii_only:
            head = json.dumps(key)
        self.out.write(head[:-1] + ', "entities": [')
        for e in ents:
            self.out.write((", " if n else "") + json.dumps(e.to_dict(extended=True), ensure_ascii=ascii_only))
            n += 1
        self.out.write("]}\n")
        return n


class MaskWriter:
    """Writes each text masked: one line of text, or a JSONL record with the replacements."""

    def __init__(self, out: IO[str], jsonl_output: bool, jsonl_input: bool, style: str, salt: Optional[str]):
        self.out, self.jsonl, self.jsonl_input, self.style = out, jsonl_output, jsonl_input, style
        self.salt = salt if salt is not None else secrets.token_hex(8)  # one per run: one pseudonym per name

    def write(self, item: Item, ents: Iterable[Entity]) -> int:
        """Write one text masked; returns how many spans were replaced."""
        masked = mask(item.text or "", list(ents), self.style, self.salt)
        if not self.jsonl:
            self.out.write(encodable(masked.text) + "\n")
            return len(masked.replacements)
        rec: dict = {"id": item.ident} if self.jsonl_input else {"line": item.line}
        rec["text"] = masked.text
        rec["replacements"] = [r.to_dict() for r in masked.replacements]
        line = json.dumps(rec, ensure_ascii=False)
        self.out.write((line if encodable(line) is line else json.dumps(rec)) + "\n")
        return len(masked.replacements)


class Progress:
    """A progress line on stderr, redrawn at most twice a second."""

    def __init__(self, enabled: bool):
        self.enabled, self.start, self.last = enabled, time.perf_counter(), 0.0
        self.texts = self.entities = 0

    def add(self, entities: int) -> None:
        """Count one answered text."""
        self.texts += 1
        self.entities += entities
        now = time.perf_counter()
        if self.enabled and now - self.last >= 0.5:
            self.last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        el = now - self.start
        rate = self.texts / el if el > 0 else 0.0
        sys.stderr.write(f"\rkoner: {self.texts:,} texts, {rate:,.0f} texts/s, {self.entities:,} entities, "
                         f"{el:,.1f} s ")
        sys.stderr.flush()

    def done(self) -> None:
        """Draw the final figures and end the line."""
        if self.enabled:
            self._draw(time.perf_counter())
            sys.stderr.write("\n")


def run_ner(args) -> int:
    """Run the `ner` verb; returns the exit code (1 when some input lines failed)."""
    if args.text is not None and args.input:
        print("koner: give a text or --input FILE, not both", file=sys.stderr)
        return exitcodes.USAGE
    try:
        ner = NER.load(args.model, threads=args.threads, workers=args.workers, aggregation=args.aggregation,
                       labels=args.labels, merge=args.merge, decode=args.decode)
    except ValueError as exc:  # an unknown entity type in --labels, viterbi with a word-level aggregation
        print(f"koner: {exc}", file=sys.stderr)
        return exitcodes.USAGE
    if args.output:
        return _to_file(args, ner)
    return _run(args, ner, sys.stdout, sys.stdout.isatty())


def _to_file(args, ner: NER) -> int:
    final = os.path.abspath(args.output)
    folder = os.path.dirname(final)
    if not os.path.isdir(folder):
        print(f"koner: {folder}: no such folder for --output", file=sys.stderr)
        return exitcodes.USAGE
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(final)}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as out:
            code = _run(args, ner, out, False)
        if code in (exitcodes.OK, exitcodes.FAILED):  # every line was answered or reported
            os.replace(tmp, final)
        return code
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _run(args, ner: NER, out: IO[str], terminal: bool) -> int:
    """Answer the text argument or every input line on `out`; returns the exit code."""
    if args.masking:
        jsonl_out = args.format == "jsonl" or (args.format == "auto" and args.jsonl)
        writer = MaskWriter(out, jsonl_out, args.jsonl, args.style, args.salt)
    else:
        table = args.format == "table" or (args.format == "auto" and terminal)
        writer = Writer(out, table, args.jsonl, with_text=not args.no_text)
    if args.text is not None:
        writer.write(Item(1, text=args.text), ner.iter_entities(args.text))
        out.flush()
        return exitcodes.OK
    if args.input:
        try:
            source: IO[str] = open(args.input, encoding="utf-8", errors="surrogateescape")
        except OSError as exc:
            print(f"koner: {args.input}: cannot read it ({exc.strerror})", file=sys.stderr)
            return exitcodes.USAGE
    else:
        source = sys.stdin
        if hasattr(source, "reconfigure"):  # bytes that are not UTF-8 reach the model as lone surrogates
            source.reconfigure(errors="surrogateescape")
    interactive = source.isatty()
    progress = Progress(args.progress == "on" or (args.progress == "auto" and sys.stderr.isatty()
                                                   and not (terminal and interactive)))
    try:
        with source:
            failed = _answer(read_items(source, args.jsonl), ner, writer, progress, args,
                             interactive=interactive)
        progress.done()
    except BrokenPipeError:
        # the reader went away (e.g. `| head -1`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return exitcodes.OK
    if failed:
        print(f"koner: {failed} input line(s) failed", file=sys.stderr)
        return exitcodes.FAILED
    return exitcodes.OK


def _answer(items: Iterator[Item], ner: NER, writer, progress: Progress, args, interactive: bool) -> int:
    """Answer every item in input order; returns how many failed. Long texts get all workers on their windows."""
    failed = 0
    held: deque[Item] = deque()  # items handed to pipe, not yet answered
    long_item: list[Item] = []
    # typed lines are answered one by one; piped input is read ahead and run on the workers
    workers, batch = (1, 1) if interactive else (args.workers, args.batch_size)

    def shorts() -> Iterator[str]:
        for item in items:
            if item.text is not None and len(item.text) > LONG_TEXT_CHARS:
                long_item.append(item)
                return
            held.append(item)
            yield item.text if item.text is not None else ""

    def answer(item: Item, ents: Iterable[Entity]) -> None:
        nonlocal failed
        if item.error is not None:
            failed += 1
            writer.out.flush()
            print(f"koner: {args.input or 'stdin'} line {item.line}: {item.error}; line skipped", file=sys.stderr)
            return
        progress.add(writer.write(item, ents))

    while True:
        for ents in ner.pipe(shorts(), batch_size=batch, workers=workers):
            answer(held.popleft(), ents)
            writer.out.flush()
        if not long_item:
            return failed
        item = long_item.pop()
        answer(item, ner.iter_entities(item.text))
        writer.out.flush()
