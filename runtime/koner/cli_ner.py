"""`koner ner`: a text argument, lines or JSONL from stdin or a file in; a table or JSONL out, streamed.

Texts run on worker threads (`NER.pipe`) and come out in input order as soon as they are done; a text
longer than one model window gets all workers on its windows, and its entities are written as they are
found, so a 1 MB line is never held twice. `--output FILE` is written under a temporary name and
renamed at the end: a file with the final name is always complete.
"""
from __future__ import annotations

import contextlib
import json
import secrets
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable, Iterator, Optional

from . import atomic, exitcodes, jsonl, lines
from .aggregate import STRATEGIES
from .decode import DECODES
from .scheme import GROUPINGS, SCHEMES
from .entity import Entity
from .errors import KonerError, OutputError, WorkerError
from .mask import STYLES, mask
from .ner import NER
from .progress import Progress
from .spans import MERGE_TAGS
from .tokens import LONG_TEXT_CHARS, encodable


def register(sub) -> None:
    """Add the `ner` and `mask` verbs to the `koner` command's sub-parsers."""
    p = sub.add_parser("ner", help="print the entities of a text, of lines on stdin, or of a JSONL stream")
    _common(p)
    p.add_argument("--format", choices=["auto", "table", "jsonl", "html"], default="auto",
                   help="output: a table on a terminal, JSONL otherwise (auto); html: one self-contained page "
                        "with the entities highlighted")
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
    from .cli_args import positive_int, thread_count

    p.add_argument("text", nargs="?", help="the text; without it, lines are read from stdin (or --input)")
    p.add_argument("--model", help="model folder (default: the bundled stand-in)")
    p.add_argument("--aggregation", default="simple", choices=STRATEGIES)
    p.add_argument("--jsonl", action="store_true", help='input lines are {"id": ..., "text": ...} objects')
    p.add_argument("--input", metavar="FILE", help="read lines from FILE instead of stdin")
    p.add_argument("--output", metavar="FILE", help="write to FILE (complete or not at all) instead of stdout")
    p.add_argument("--threads", type=thread_count, help="intra-op threads per model call (default 1)")
    p.add_argument("--workers", type=thread_count,
                   help="texts run at once on threads sharing the model (default: usable CPUs / threads)")
    p.add_argument("--batch-size", type=positive_int, default=16, help="texts read ahead per worker (16)")
    p.add_argument("--labels", help="only these entity types, e.g. PS,LC,OG")
    p.add_argument("--decode", choices=DECODES, default="argmax",
                   help="argmax (the transformers pipeline's labels) or viterbi (valid BIO; higher F1; "
                        "aggregation none or simple)")
    p.add_argument("--scheme", choices=SCHEMES,
                   help="the model's label scheme (default: koner.json's, else read from the labels)")
    p.add_argument("--grouping", choices=GROUPINGS, default="pipeline",
                   help="pipeline (the transformers pipeline's B-/I- grouping) or scheme (group by the label "
                        "scheme: S-/E- and suffix labels become whole entities)")
    p.add_argument("--long-text", choices=["windows", "pipeline"], default="windows",
                   help="a text longer than the model: koner's stitched windows (default), or chunks as the "
                        "transformers pipeline's stride=128 runs them (entity for entity the same)")
    p.add_argument("--merge", action="store_true",
                   help=f"join split same-type spans across whitespace (types {', '.join(sorted(MERGE_TAGS))}, "
                        "where it measured better)")
    p.add_argument("--progress", choices=["auto", "on", "off"], default="auto",
                   help="a progress line on stderr (auto: when stderr is a terminal)")
    p.add_argument("--verbose", action="store_true",
                   help="say on stderr which model runs how: its folder, int8 or float, this CPU's int8 path, workers")


@dataclass
class Item:
    """One input line: its number, JSONL id, text, or why it was skipped."""

    line: int
    ident: Optional[object] = None
    text: Optional[str] = None
    error: Optional[str] = None


def read_items(stream: Iterable[str], json_lines: bool) -> Iterator[Item]:
    """One Item per input line (blank JSONL lines are skipped), split by the one line rule (`koner.lines`)."""
    if not json_lines:
        for n, text in enumerate(lines.read(stream), 1):
            yield Item(n, error=text.reason(lines.MAX_CHARS)) if isinstance(text, lines.Overlong) else Item(n, text=text)
        return
    for rec in jsonl.read(stream):
        obj = rec.value
        if rec.error is not None:
            yield Item(rec.number, error=str(rec.error))
        elif not isinstance(obj, dict) or "text" not in obj:
            yield Item(rec.number, error="no 'text' field")
        elif not isinstance(obj["text"], str):
            yield Item(rec.number, obj.get("id"), error=f"'text' is {type(obj['text']).__name__}, not a string")
        else:
            yield Item(rec.number, obj.get("id"), obj["text"])


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
        self.out.write(jsonl.dumps(key)[:-1] + ', "entities": [')  # entities follow as they are found
        for e in ents:
            self.out.write((", " if n else "") + jsonl.dumps(e.to_dict(extended=True)))
            n += 1
        self.out.write("]}\n")
        return n


class HtmlWriter:
    """Writes one self-contained HTML page: a legend, then each text with its entities highlighted, as they come."""

    def __init__(self, out: IO[str], types: Iterable[str], jsonl_input: bool = False):
        from .render import Palette, page_head

        self.out, self.palette, self.jsonl_input = out, Palette(tuple(types)), jsonl_input
        self.out.write(page_head(self.palette))

    def _caption(self, item: Item) -> None:
        import html

        what = f"id {json.dumps(item.ident, ensure_ascii=False)}" if self.jsonl_input else f"line {item.line}"
        self.out.write(f'<div class="koner-caption">{html.escape(encodable(what))}</div>\n')

    def skipped(self, item: Item, why: str) -> None:
        """Show a line that could not be answered, with why, where its text would be."""
        import html

        self.out.write(f'<div class="koner-text koner-none" id="text-{item.line}">line {item.line} skipped: '
                       f'{html.escape(encodable(why))}</div>\n')

    def write(self, item: Item, ents: Iterable[Entity]) -> int:
        """Write one text's block; returns how many entities it had."""
        from .render import block

        if self.jsonl_input:
            self._caption(item)
        n = 0

        def counting() -> Iterator[Entity]:  # counts them as they pass, holding none
            nonlocal n
            for e in ents:
                n += 1
                yield e

        for piece in block(item.text or "", counting(), self.palette, item.line):
            self.out.write(piece)
        return n

    def finish(self) -> None:
        """End the page."""
        from .render import PAGE_END

        self.out.write(PAGE_END)


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
        self.out.write(jsonl.dumps(rec) + "\n")
        return len(masked.replacements)


def run_ner(args) -> int:
    """Run the `ner` or `mask` verb; returns the exit code (1 when some input lines failed).

    The input and the output are checked before the model loads: a bad path costs no inference.
    """
    if args.text is not None and args.input:
        print("koner: give a text or --input FILE, not both", file=sys.stderr)
        return exitcodes.USAGE
    with contextlib.ExitStack() as stack:
        try:
            source = stack.enter_context(_source(args))
            if args.output:
                atomic.check_file(Path(args.output), "--output")
        except OutputError as exc:
            print(f"koner: {exc}", file=sys.stderr)
            return exitcodes.USAGE
        try:
            ner = NER.load(args.model, threads=args.threads, workers=args.workers, aggregation=args.aggregation,
                           labels=args.labels, merge=args.merge, decode=args.decode, scheme=args.scheme,
                           grouping=args.grouping, long_text=args.long_text)
        except ValueError as exc:  # an unknown entity type in --labels, viterbi with a word-level aggregation
            print(f"koner: {exc}", file=sys.stderr)
            return exitcodes.USAGE
        if args.verbose:
            print(f"koner: {describe(ner)}", file=sys.stderr)
        if not args.output:
            if sys.stdout is None:  # started with its standard output closed
                print("koner: standard output is closed; give --output FILE", file=sys.stderr)
                return exitcodes.USAGE
            return _run(args, ner, source, sys.stdout, sys.stdout.isatty())
        # tables, masked text and HTML show undecodable input bytes as U+FFFD (offsets kept); JSON escapes them
        out = atomic.output_text(Path(args.output))
        with out as f:
            return _run(args, ner, source, f, False)  # every line answered or reported: the file is complete


def describe(ner: NER) -> str:
    """One line on how a model runs here: folder, int8 or float, this CPU's int8 path, workers and threads."""
    from .cpu import int8_path

    kind = "int8" if ner.session.quantized else "float"
    return (f"model {ner.folder} ({kind}, {len(ner.labels)} {ner.scheme.value} labels), CPU int8 path {int8_path()}, "
            f"{ner.workers} worker(s) x {ner.session.threads} thread(s)")


def _finish(writer) -> None:
    if hasattr(writer, "finish"):
        writer.finish()


@contextlib.contextmanager
def _source(args) -> Iterator[Optional[IO[str]]]:
    """The input lines: --input FILE, stdin, or None for a text argument."""
    if args.text is not None:
        yield None
        return
    if not args.input:
        if sys.stdin is None:  # started with its standard input closed
            raise OutputError("standard input is closed; give a text or --input FILE")
        yield lines.stdin()  # bytes that are not UTF-8 reach the model as lone surrogates
        return
    try:
        f = lines.open_file(args.input)
    except OSError as exc:
        raise OutputError(f"{args.input}: cannot read it ({exc.strerror})") from None
    with f:
        yield f


def _run(args, ner: NER, source: Optional[IO[str]], out: IO[str], terminal: bool) -> int:
    """Answer the text argument or every input line on `out`; returns the exit code."""
    if args.masking:
        jsonl_out = args.format == "jsonl" or (args.format == "auto" and args.jsonl)
        writer = MaskWriter(out, jsonl_out, args.jsonl, args.style, args.salt)
    elif args.format == "html":
        spans = ner.spans
        writer = HtmlWriter(out, [t for t in ner.entity_types if spans.keep is None or t in spans.keep], args.jsonl)
    else:
        table = args.format == "table" or (args.format == "auto" and terminal)
        writer = Writer(out, table, args.jsonl, with_text=not args.no_text)
    if source is None:
        writer.write(Item(1, text=args.text), ner.iter_entities(args.text))
        _finish(writer)
        out.flush()
        return exitcodes.OK
    interactive = source.isatty()
    progress = Progress(args.progress == "on" or (args.progress == "auto" and sys.stderr.isatty()
                                                   and not (terminal and interactive)))
    failed = _answer(read_items(source, args.jsonl), ner, writer, progress, args, interactive=interactive)
    _finish(writer)
    out.flush()
    progress.done()
    if failed:
        print(f"koner: {failed} input line(s) failed", file=sys.stderr)
        return exitcodes.FAILED
    return exitcodes.OK


def _answer(items: Iterator[Item], ner: NER, writer, progress: Progress, args, interactive: bool) -> int:
    """Answer every item in input order; returns how many failed. Long texts get all workers on their windows.

    A text the model fails on is reported with its line number and skipped; the others are still answered.
    """
    failed = 0
    held: deque[Item] = deque()  # items handed to pipe, not yet answered
    again: deque[Item] = deque()  # items read ahead by a pipe that stopped at a failure, to hand to the next
    long_item: list[Item] = []
    # typed lines are answered one by one; piped input is read ahead and run on the workers
    workers, batch = (1, 1) if interactive else (args.workers, args.batch_size)
    where = args.input or "stdin"

    def shorts() -> Iterator[str]:
        while True:
            item = again.popleft() if again else next(items, None)
            if item is None:
                return
            if item.text is not None and len(item.text) > LONG_TEXT_CHARS:
                long_item.append(item)
                return
            held.append(item)
            yield item.text if item.text is not None else ""

    def skipped(item: Item, why: str) -> None:
        nonlocal failed
        failed += 1
        if hasattr(writer, "skipped"):
            writer.skipped(item, why)
        writer.out.flush()
        print(f"koner: {where} line {item.line}: {why}; line skipped", file=sys.stderr)

    def answer(item: Item, ents: Iterable[Entity]) -> None:
        if item.error is not None:
            skipped(item, item.error)
            return
        progress.add(entities=writer.write(item, ents))

    while True:
        try:
            for ents in ner.pipe(shorts(), batch_size=batch, workers=workers):
                answer(held.popleft(), ents)
                writer.out.flush()
        except WorkerError as exc:  # every text before it was answered: the one at fault is the oldest held
            cause = exc.__cause__ or exc
            skipped(held.popleft(), f"the model failed on it ({type(cause).__name__}: {cause})")
            again.extendleft(reversed(held))
            held.clear()
            continue
        if not long_item:
            return failed
        item = long_item.pop()
        try:
            answer(item, ner.iter_entities(item.text))
        except Exception as exc:  # its entities so far are written: end the record's line, then report
            writer.out.write("\n")
            raise LineFailed(f"{where} line {item.line}: the model failed on it ({type(exc).__name__}: {exc}); "
                             "its record is incomplete") from None
        writer.out.flush()


class LineFailed(KonerError):
    """A long line's entities could not all be found; what was written for it is incomplete."""
