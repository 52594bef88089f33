"""`koner ner` and `koner mask`: a text argument, lines or JSONL from stdin or a file in; a table, JSONL, HTML or
masked text out (`writers`), streamed.

Texts run on worker threads (`NER.pipe`) and come out in input order as soon as they are done; a text
longer than one model window gets all workers on its windows, and its entities are written as they are
found, so a 1 MB line is never held twice (`answer`). `--output FILE` is written under a temporary name and
renamed at the end: a file with the final name is always complete.
"""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import IO, Iterator, Optional

from .. import atomic, exitcodes, lines
from ..aggregate import STRATEGIES
from ..decode import DECODES
from ..errors import OutputError
from ..mask import STYLES
from ..ner import NER
from ..options import Options
from ..progress import Progress
from ..scheme import GROUPINGS, SCHEMES
from ..spans import MERGE_TAGS
from .answer import answer_all
from .items import Item, read_items
from .writers import HtmlWriter, JsonlWriter, MaskWriter, TableWriter, Writer


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
    from .args import checked, positive_int, thread_count

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
    p.add_argument("--window", type=checked(int, lambda n: n >= 3, "an integer of tokens from 3"),
                   help="a text longer than the model runs in windows of this many tokens (default 256; up to the "
                        "model's 512 gives fewer, longer windows)")
    p.add_argument("--overlap", type=checked(int, lambda n: n >= 0, "an integer of tokens from 0"),
                   help="tokens neighbouring windows share (default: a quarter of the window) or, with "
                        "--long-text pipeline, the chunks' stride (default 128)")
    p.add_argument("--merge", action="store_true",
                   help=f"join split same-type spans across whitespace (types {', '.join(sorted(MERGE_TAGS))}, "
                        "where it measured better)")
    p.add_argument("--progress", choices=["auto", "on", "off"], default="auto",
                   help="a progress line on stderr (auto: when stderr is a terminal)")
    p.add_argument("--verbose", action="store_true",
                   help="say on stderr which model runs how: its folder, int8 or float, this CPU's int8 path, workers")


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
            ner = NER.load(args.model, threads=args.threads, workers=args.workers,
                           options=Options.from_mapping(vars(args)))
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
    from ..cpu import int8_path

    kind = "int8" if ner.session.quantized else "float"
    return (f"model {ner.folder} ({kind}, {len(ner.labels)} {ner.scheme.value} labels), CPU int8 path {int8_path()}, "
            f"{ner.workers} worker(s) x {ner.session.threads} thread(s)")


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
    writer = _writer(args, ner, out, terminal)
    if source is None:
        writer.write(Item(1, text=args.text), ner.iter_entities(args.text))
        writer.finish()
        out.flush()
        return exitcodes.OK
    interactive = source.isatty()
    progress = Progress(args.progress == "on" or (args.progress == "auto" and sys.stderr.isatty()
                                                   and not (terminal and interactive)))
    # typed lines are answered one by one; piped input is read ahead and run on the workers
    workers, batch = (1, 1) if interactive else (args.workers, args.batch_size)
    failed = answer_all(read_items(source, args.jsonl), ner, writer, progress, where=args.input or "stdin",
                        workers=workers, batch_size=batch)
    writer.finish()
    out.flush()
    progress.done()
    if failed:
        print(f"koner: {failed} input line(s) failed", file=sys.stderr)
        return exitcodes.FAILED
    return exitcodes.OK


def _writer(args, ner: NER, out: IO[str], terminal: bool) -> Writer:
    """The writer the verb and --format ask for (auto: a table on a terminal, else JSONL)."""
    if args.masking:
        jsonl_out = args.format == "jsonl" or (args.format == "auto" and args.jsonl)
        return MaskWriter(out, jsonl_out, args.jsonl, args.style, args.salt)
    if args.format == "html":
        keep = ner.spans.keep
        return HtmlWriter(out, [t for t in ner.entity_types if keep is None or t in keep], args.jsonl)
    if args.format == "table" or (args.format == "auto" and terminal):
        return TableWriter(out)
    return JsonlWriter(out, args.jsonl, with_text=not args.no_text)
