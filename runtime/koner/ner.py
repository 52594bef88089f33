"""The NER object: load a model folder once, then text -> entities, one text, a list or a stream."""
from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Optional, TypeVar, Union

import numpy as np

from . import windows as win
from .aggregate import Aggregation, Strategy
from .choices import check_positive, check_threads
from .decode import Decode
from .entity import Entity
from .errors import LabelMismatchError, ModelNotFoundError, SaturationWarning, VocabularyMismatchError, WorkerError
from .manifest import read_manifest
from .mask import Masked, Style, check_style, mask as mask_text
from .session import ModelSession, SessionOptions, default_workers
from .options import FIELDS, NULLABLE, PER_CALL, Labels, Merge, Options
from .scheme import Scheme, Tagging, check as check_scheme, decoder, detect
from .spans import SpanOptions, pipeline_overlaps, refine, span_options
from .tokens import TextTokenizer, Tokens
from .verify import FolderFiles
from .workers import ordered_map

if TYPE_CHECKING:
    from .render import Rendered

DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "default"
# a text longer than the model runs in windows of this many tokens by default, each sharing a quarter of itself with
# its neighbour: measured against 512/128 on the benchmark's workload, 0.8x the CPU time of a 1,905-token document,
# 8 MB less peak memory a call in flight, held-out F1 over joined sentences 0.364 instead of 0.343
DEFAULT_WINDOW = 256
PIPELINE_STRIDE = 128  # the overlap of the pipeline's chunks (long_text="pipeline") by default
T = TypeVar("T")


class _Default(str):
    """A keyword's default value, told apart from the same value passed (`NER.load` with `options=`)."""


class NER:
    """A loaded koner model; call it on a string for its entities. Safe to share between threads."""

    def __init__(self, folder: Path, *, session: SessionOptions, options: Options = Options(),
                 model_file: Optional[str] = None, workers: Optional[int] = None):
        """Use `NER.load`: it checks the folder and builds `session` and `options` from keywords."""
        _check_options(options)
        self.options = options
        folder = Path(folder)
        if not folder.is_dir():
            raise ModelNotFoundError.of(folder)
        self.folder = folder
        self.manifest = read_manifest(folder)
        files = FolderFiles(folder, self.manifest)  # every file inside the folder, its sha256 as recorded
        self.labels = self.manifest.labels
        self.scheme = options.scheme or Scheme.parse(self.manifest.scheme or detect(self.labels).value)
        check_scheme(self.labels, self.scheme)
        self.grouping = options.grouping
        self.tagging = Tagging(self.labels, self.scheme, self.grouping)
        self.entity_types = self.tagging.entity_types()
        self.bio = decoder(self.labels, self.scheme)
        self.tokenizer = TextTokenizer(files.path(self.manifest.tokenizer_file, what="tokenizer_file"),
                                       lowercase=self.manifest.lowercase, unk_id=self.manifest.unk_id)
        self._aggregations: dict[tuple[Strategy, Decode], Aggregation] = {}
        self.aggregator()  # a word-level aggregation with Viterbi is refused now, not at the first call
        self.spans = span_options(self.entity_types, options.labels, options.merge, options.merge_across)
        self.max_length = self.manifest.max_length
        # the pipeline chunks at its tokenizer's model_max_length, which may be below the position table
        self._whole = self.max_length if self.long_text == "windows" else min(
            self.max_length, self.manifest.tokenizer_max_length or self.max_length)
        self.window, self.overlap = _window_and_overlap(options, self.max_length, self._whole)
        own_file = model_file in (None, self.manifest.model_file)
        quantized = self.manifest.quantized if own_file else None  # None: look in the file
        prefused = own_file and self.manifest.prefused
        self.workers = _check_workers(workers) if workers is not None else default_workers(session.intra_op_threads)
        # the graph and its weights are checked before onnxruntime opens them: files inside the folder only
        model_name = model_file or self.manifest.model_file
        model_path, graph = files.model(model_name)
        top_id = self.tokenizer.vocab_size - 1
        if graph is not None:  # max_length and token ids within the graph's tables
            top_id = files.check_fit(model_name, graph, self.tokenizer.path, self.tokenizer.max_id)
        if session.memory_pattern is None:
            session = replace(session, memory_pattern=self.workers > 1)
        self.session = ModelSession(model_path, session, quantized, prefused)
        # Dynamic int8 quantization with one scale per call scales the activations of a whole call together, so
        # a padded batch would make one text's labels depend on its neighbours: such models run one window a
        # call. Per-token scales (`koner export --per-token-scales`) leave each row alone: they batch like float.
        self._rows_alone = self.session.quantized and not (own_file and self.manifest.per_token_scales)
        self._check_model(top_id)
        files.save()  # the hashes learnt: the next load of these files skips them
        if self.session.quantized and own_file and not self.manifest.saturation_safe:
            _warn_if_saturating(folder)

    @classmethod
    def load(cls, path: Union[str, Path, None] = None, *, threads: Optional[int] = None,
             workers: Optional[int] = None, aggregation: str = _Default("simple"), spinning: bool = False,
             memory_arena: bool = True, memory_pattern: Optional[bool] = None, optimization: str = "auto",
             overlap: Optional[int] = None, window: Optional[int] = None, model_file: Optional[str] = None, labels: Labels = None,
             merge: Merge = False, merge_across: str = _Default("space"), decode: str = _Default("argmax"),
             scheme: Optional[str] = None, grouping: str = _Default("pipeline"), long_text: str = _Default("windows"),
             options: Optional[Options] = None) -> "NER":
        """Load a model folder (None: the bundled stand-in) and check it; `model_file` names another .onnx in it.

        `labels` keeps only those entity types (e.g. "PS,LC"); `merge` joins split same-type spans (True: the
        types where it measured better; or the types to merge), across whitespace (`merge_across="space"`)
        or also `·` and `-` ("punct"). `decode="viterbi"` picks the most probable valid BIO label sequence
        instead of each token's argmax (with aggregation `none` or `simple`). `scheme` names the label scheme
        (IOB2, IOB1, BIOES, BILOU, suffix, none; default: the manifest's, else read from the labels);
        `grouping="scheme"` groups tokens by it instead of by the transformers pipeline's B-/I- rule.
        `long_text="pipeline"` runs a text longer than the model as `pipeline(..., stride=overlap)` does
        (chunks grouped alone, overlapping entities resolved by length, then score) instead of koner's
        stitched windows (default: every token keeps the most context, entities grouped over the whole text).
        `window` is the length of those windows in tokens, [CLS] and [SEP] included (default 256, at most the
        model's length; a text within the model runs whole) and `overlap` what neighbouring windows share (default
        a quarter of the window; with `long_text="pipeline"` the stride, default 128).
        `options`: all of these as one `koner.Options` value instead (then leave those keywords out).
        """
        folder = Path(path) if path is not None else DEFAULT_MODEL
        if not folder.is_dir():  # named before any option: the folder is the first thing a user gets wrong
            raise ModelNotFoundError.of(folder)
        given = dict(aggregation=aggregation, long_text=long_text, decode=decode, scheme=scheme, grouping=grouping,
                     labels=labels, merge=merge, merge_across=merge_across, overlap=overlap,
                     window=window)
        if options is None:
            options = Options.parse(**given)
        else:
            _check_options(options)
            passed = [k for k, v in given.items() if not (isinstance(v, _Default) or v is None
                                                          or (k == "merge" and v is False))]
            if passed:
                raise TypeError("NER.load takes entity options either as keywords or as options=, not both; "
                                f"put {', '.join(passed)} in the options: options.override({passed[0]}=...)")
        opts = SessionOptions(threads=threads, spinning=spinning, memory_arena=memory_arena,
                              optimization=optimization, memory_pattern=memory_pattern)
        return cls(folder, session=opts, options=options,
                   model_file=model_file, workers=workers)

    # the options this model was loaded with, by name (`options` holds them all)
    aggregation = property(lambda self: self.options.aggregation, doc="The aggregation strategy (a `Strategy`).")
    decode = property(lambda self: self.options.decode, doc="The decoder (a `Decode`).")
    long_text = property(lambda self: self.options.long_text, doc='How a long text runs: "windows" or "pipeline".')

    def _check_model(self, top_id: int) -> None:
        """Run the model once on its highest token id: the embedding table holds it, the output has a score per
        label."""
        tok, sess = self.tokenizer, self.session
        probe = np.array([[tok.cls_id, top_id, tok.sep_id]], dtype=np.int64)
        try:
            out = sess.run(probe, np.ones_like(probe))
        except Exception as exc:
            raise VocabularyMismatchError(
                tok.path, f"has token id {top_id} but the model in {sess.path.name} rejects it "
                          f"({str(exc).strip()[:120]}); use the tokenizer the model was exported with") from None
        width = out.shape[-1]
        if width != len(self.labels):
            raise LabelMismatchError(
                self.folder / "koner.json", f"lists {len(self.labels)} labels but {sess.path.name} outputs "
                                            f"{width} scores per token; re-export the model with `koner export`")

    def __call__(self, text: str, *, aggregation: Optional[str] = None, labels: Labels = None,
                 merge: Optional[Merge] = None, decode: Optional[str] = None,
                 options: Optional[Options] = None) -> list[Entity]:
        """The entities of one text, in text order, with character offsets into it."""
        return list(self.iter_entities(text, aggregation=aggregation, labels=labels, merge=merge, decode=decode,
                                       options=options))

    def mask(self, text: str, *, labels: Labels = None, style: Style = "tag", salt: Optional[str] = None,
             aggregation: Optional[str] = None, merge: Optional[Merge] = None,
             decode: Optional[str] = None, options: Optional[Options] = None) -> Masked:
        """`text` with its entities (of `labels`' types) replaced, and the replacements with original offsets."""
        check_style(style)
        return mask_text(text, self.iter_entities(text, aggregation=aggregation, labels=labels, merge=merge,
                                                  decode=decode, options=options), style, salt)

    def render(self, texts: Union[str, Iterable[str]], *, aggregation: Optional[str] = None, labels: Labels = None,
               merge: Optional[Merge] = None, decode: Optional[str] = None,
               options: Optional[Options] = None) -> "Rendered":
        """A text (or texts) with its entities highlighted: `.html` is a page, and a notebook shows it inline."""
        from .render import Rendered

        opts = self.call_options(options, aggregation=aggregation, labels=labels, merge=merge, decode=decode)
        items = [texts] if isinstance(texts, str) else list(texts)
        found = self.batch(items, options=opts)
        spans = self._spans(opts)
        types = [t for t in self.entity_types if spans.keep is None or t in spans.keep]
        return Rendered(list(zip(items, found)), types)

    def tokenize(self, text: str) -> Tokens:
        """The model's tokens of `text`, [CLS] and [SEP] included, with character offsets into it."""
        return self.tokenizer.encode(text)

    def iter_entities(self, text: str, *, aggregation: Optional[str] = None, labels: Labels = None,
                      merge: Optional[Merge] = None, decode: Optional[str] = None, workers: Optional[int] = None,
                      tokens: Optional[Tokens] = None, poll: Optional[Callable[[], None]] = None,
                      options: Optional[Options] = None) -> Iterator[Entity]:
        """The entities of one text as they are found: a long text's windows run on `workers` threads.

        `tokens`: `tokenize(text)`, when the caller has it already. `poll`: called before each window is run
        (a long text has many, whether or not they hold entities); what it raises stops the iteration.
        """
        opts = self.call_options(options, aggregation=aggregation, labels=labels, merge=merge, decode=decode)
        how, spans = self.aggregator(opts.aggregation, opts.decode), self._spans(opts)
        if not _check_text(text):
            return iter(())
        return refine(self._text_entities(text, self.tokenize(text) if tokens is None else tokens, how,
                                          self.workers if workers is None else _check_workers(workers), poll),
                      text, spans)

    def pipe(self, texts: Iterable[str], *, batch_size: int = 32, workers: Optional[int] = None,
             aggregation: Optional[str] = None, labels: Labels = None, merge: Optional[Merge] = None,
             decode: Optional[str] = None, options: Optional[Options] = None) -> Iterator[list[Entity]]:
        """Each text's entities, lazily and in input order, computed by `workers` threads sharing the session.

        Any iterable works (a generator over a huge file too): at most `workers * batch_size` texts are read
        ahead of the one being returned.
        """
        if isinstance(texts, str):
            raise TypeError("pipe() takes an iterable of strings; call the model itself on a single string")
        batch_size = check_positive("batch_size", batch_size)
        workers = self.workers if workers is None else _check_workers(workers)
        opts = self.call_options(options, aggregation=aggregation, labels=labels, merge=merge, decode=decode)
        how, spans = self.aggregator(opts.aggregation, opts.decode), self._spans(opts)
        # int8 with per-call scales: one text a job (its windows run one per call anyway); float and per-token
        # int8: `batch_size` texts a job, padded
        chunk = 1 if self._rows_alone else batch_size
        if isinstance(texts, (list, tuple)):  # no more threads than jobs
            workers = min(workers, max(1, -(-len(texts) // chunk)))
        # texts held beyond the one being returned: the rest of its job and `ahead` jobs <= workers * batch_size
        ahead = max(1, (workers * batch_size - chunk + 1) // chunk)
        try:
            for result in ordered_map(lambda job: self._job(job, how, spans), _jobs(texts, chunk), workers, ahead):
                yield from result
        except _JobFailed as failed:  # the texts of its job before the one at fault were answered: theirs first
            yield from failed.done
            raise failed.error from failed.error.__cause__

    def batch(self, texts: Iterable[str], batch_size: int = 16, *, aggregation: Optional[str] = None,
              labels: Labels = None, merge: Optional[Merge] = None, decode: Optional[str] = None,
              workers: Optional[int] = None, options: Optional[Options] = None) -> list[list[Entity]]:
        """The entities of each text of a list, in input order (`pipe`, collected)."""
        if isinstance(texts, str):
            raise TypeError("batch() takes a list of strings; call the model itself on a single string")
        return list(self.pipe(texts, batch_size=batch_size, workers=workers, aggregation=aggregation, labels=labels,
                              merge=merge, decode=decode, options=options))

    # ------------------------------------------------------------------ stages

    def call_options(self, options: Optional[Options] = None, **overrides: object) -> Options:
        """The options of one call: `options` (None: the model's) with the per-call keywords that are not None.

        Only the per-call options (aggregation, decode, labels, merge) may differ from the model's; the others
        are fixed when a model loads."""
        base = self.options
        if options is None and not any(v is not None for v in overrides.values()):
            return base  # the common call: the model's own options
        if options is not None:
            _check_options(options)
        if options is not None and options != base:
            fixed = [f for f in FIELDS if f not in PER_CALL and not self._keeps(options, f)]
            if fixed:
                raise ValueError(f"{', '.join(fixed)} can only be set when a model loads: "
                                 f"NER.load(..., options=...) with them")
            base = options
        return base.override(**overrides)

    def _keeps(self, options: Options, field: str) -> bool:
        """Whether a call's `options` leave this load-time option as the model has it: the same value, not set
        (None), or a window and overlap that come to the model's own."""
        value = getattr(options, field)
        if value is None and field in NULLABLE:
            return True
        if field in ("window", "overlap"):
            return options.long_text == self.long_text and \
                _window_and_overlap(options, self.max_length, self._whole) == (self.window, self.overlap)
        return value == getattr(self.options, field)

    def aggregator(self, aggregation: Optional[str] = None, decode: Optional[str] = None) -> Aggregation:
        """How this model's scores become entities with these options (None: the ones it was loaded with)."""
        opts = self.options.override(aggregation=aggregation, decode=decode)
        key = (opts.aggregation, opts.decode)
        found = self._aggregations.get(key)
        if found is None:
            found = self._aggregations[key] = Aggregation(self.labels, key[0], self.tokenizer.join,
                                                          self.tokenizer.unk_id, key[1], self.bio,
                                                          word_aware=self.tokenizer.word_aware, tagging=self.tagging)
        return found

    def _spans(self, opts: Options) -> SpanOptions:
        base = self.options
        if (opts.labels, opts.merge, opts.merge_across) == (base.labels, base.merge, base.merge_across):
            return self.spans
        return span_options(self.entity_types, opts.labels, opts.merge, opts.merge_across)

    def _job(self, job: list[tuple[int, str]], how: Aggregation, spans: SpanOptions) -> list[list[Entity]]:
        """The entities of a few (input position, text) pairs, on one worker thread; a failure names its input."""
        try:
            return self._answer([t for _, t in job], how, spans)
        except Exception as exc:
            if len(job) == 1:
                raise WorkerError(job[0][0], exc) from exc
        out: list[list[Entity]] = []  # a padded batch failed: one text at a time finds the input at fault
        for pos, text in job:
            try:
                out += self._answer([text], how, spans)
            except Exception as exc:
                error = WorkerError(pos, exc)
                error.__cause__ = exc
                raise _JobFailed(out, error) from None
        return out

    def _answer(self, texts: list[str], how: Aggregation, spans: SpanOptions) -> list[list[Entity]]:
        """The entities of a few texts, short ones in one padded batch (float, per-token int8) or one call each."""
        live = [i for i, t in enumerate(texts) if t.strip()]
        results: list[list[Entity]] = [[] for _ in texts]
        if not live:
            return results
        toks = ([self.tokenizer.encode(texts[live[0]])] if len(live) == 1 else
                self.tokenizer.encode_batch([texts[i] for i in live]))
        short = [(i, t) for i, t in zip(live, toks) if len(t.ids) <= self._whole]
        for i, t in zip(live, toks):
            if len(t.ids) > self._whole:
                results[i] = list(refine(self._text_entities(texts[i], t, how, workers=1), texts[i], spans))
        if short:
            logits = self._run([t.ids for _, t in short])
            for (i, t), lg in zip(short, logits):
                results[i] = list(refine(how.entities(texts[i], t, lg), texts[i], spans))
        return results

    def _text_entities(self, text: str, tokens: Tokens, how: Aggregation, workers: int,
                       poll: Optional[Callable[[], None]] = None) -> Iterator[Entity]:
        """One text's entities; a text longer than the model is run window by window in bounded memory
        (`poll()` before each window)."""
        if len(tokens.ids) <= self._whole:
            if poll is not None:
                poll()
            yield from how.entities(text, tokens, self._run([tokens.ids])[0])
            return
        if self.long_text == "pipeline":
            yield from self._pipeline_chunks(text, tokens, how, poll)
            return
        plan = _polled(win.iter_plan(tokens, self.window, self.overlap), poll)
        stitcher = win.Stitcher(len(tokens.ids))
        stream = how.stream(text, tokens)
        runs = ordered_map(lambda w: (w, self._run([w.ids])[0]), plan, workers, ahead=2 * workers)
        for w, lg in runs:
            done = stitcher.add(w, lg)
            if done is not None:
                yield from stream.feed(*done)
        yield from stream.feed(*stitcher.finish())
        yield from stream.close()

    def windows(self, tokens: Tokens) -> list[win.Window]:
        """The windows a text's tokens run in: one for a text within the model, else `window`-token windows
        sharing `overlap` tokens (with `long_text="pipeline"`, the pipeline's chunks)."""
        if self.long_text == "pipeline":
            return [w for w, _ in win.pipeline_chunks(tokens, self._whole, self.overlap)]
        fits = len(tokens.ids) <= self.max_length
        return win.plan(tokens, self.max_length if fits else self.window, self.overlap)

    def _pipeline_chunks(self, text: str, tokens: Tokens, how: Aggregation,
                         poll: Optional[Callable[[], None]] = None) -> list[Entity]:
        """A long text as the transformers pipeline runs it with `stride`: each chunk's entities, then the
        pipeline's rule for those that overlap."""
        found: list[Entity] = []
        for w, chunk in _polled(win.pipeline_chunks(tokens, self._whole, self.overlap), poll):
            found += how.entities(text, chunk, self._run([w.ids])[0], base=w.start - 1)
        return pipeline_overlaps(found)

    def _run(self, ids: list[np.ndarray]) -> list[np.ndarray]:
        """Logits of each id sequence: one call each for per-call int8 scales, else one padded batch."""
        return self.session.run_each(ids, alone=self._rows_alone)


class _JobFailed(Exception):
    """A job of several texts failed at one of them: the answers of those before it, and the error."""

    def __init__(self, done: list[list[Entity]], error: WorkerError):
        super().__init__(str(error))
        self.done, self.error = done, error


def _polled(items: Iterable[T], poll: Optional[Callable[[], None]]) -> Iterable[T]:
    """`items`, with `poll()` called before each one is handed on (`items` itself when there is no `poll`)."""
    if poll is None:
        return items

    def polled() -> Iterator[T]:
        for item in items:
            poll()
            yield item

    return polled()


def _jobs(texts: Iterable[object], size: int) -> Iterator[list[tuple[int, str]]]:
    """(input position, text) pairs in jobs of `size`; when the input fails (a non-str, or the iterable raises),
    the texts before it still come out as a last, shorter job, then the error is raised."""
    job: list[tuple[int, str]] = []
    try:
        for i, text in enumerate(texts):
            job.append((i, _checked(i, text)))
            if len(job) == size:
                yield job
                job = []
    except Exception:
        if job:
            yield job
        raise
    if job:
        yield job


def _checked(index: int, text: object) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text {index} is {type(text).__name__}, not str")
    return text


def _check_text(text: object) -> bool:
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    return bool(text.strip())


def _warn_if_saturating(folder: Path) -> None:
    from .cpu import int8_path, saturates

    if saturates():
        warnings.warn(f"{folder}: this CPU's int8 kernels ({int8_path()}) can saturate with this model's weights, "
                      "so a few labels and scores may differ from a VNNI or ARM64 machine's; re-export the model "
                      "with this koner's `koner export` (it keeps int8 weights within range by default)",
                      SaturationWarning, stacklevel=4)


def _check_workers(workers: object) -> int:
    return check_threads("workers", workers)


def _window_and_overlap(options: Options, max_length: int, whole: int) -> tuple[int, int]:
    """A long text's window length and overlap for a model of `max_length` tokens (`whole`: its pipeline chunks)."""
    if options.long_text == "pipeline":  # the pipeline's chunks are the model's length; any stride below one
        overlap = min(PIPELINE_STRIDE, whole - 3) if options.overlap is None else options.overlap
        if overlap > whole - 3:
            raise ValueError(f"overlap must be an integer from 0 to {whole - 3} tokens, not {overlap!r}")
        return whole, overlap
    window = options.window
    if window is None:  # the default, or four times the overlap asked for (128: the 512-token windows of old)
        window = min(max(DEFAULT_WINDOW, 4 * (options.overlap or 0)), max_length)
    elif window > max_length:
        raise ValueError(f"window must be an integer from 3 to {max_length} tokens (the model's max_length), "
                         f"not {window!r}")
    overlap = window // 4 if options.overlap is None else options.overlap
    if overlap > (window - 2) // 2:
        wider = f"; a larger window, up to {max_length}, allows more" if window < max_length else ""
        raise ValueError(f"overlap must be an integer from 0 to {(window - 2) // 2} tokens (half a window of "
                         f"{window}{wider}), not {overlap!r}")
    return window, overlap


def _check_options(options: object) -> None:
    if not isinstance(options, Options):
        raise TypeError(f"options must be a koner.Options (Options.parse(aggregation=..., ...)), not "
                        f"{type(options).__name__}")
