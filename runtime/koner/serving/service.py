"""The model behind the routes: loaded and warmed on a background thread (after `koner check` with `--check`), run
on the gate's slots with the request's deadline and its client's presence, and the metrics of what it ran."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import AsyncIterator, Callable, Optional

from starlette.requests import Request

from ..check import CheckReport
from ..ner import NER
from ..aggregate import Strategy
from ..decode import Decode
from .gate import ClientGone, Gate, Overloaded, Stopped, TimedOut
from .metrics import Metrics
from .responses import ApiError, client_closed
from .settings import Settings

log = logging.getLogger("koner.serve")


class Service:
    """The model (loaded in the background), the gate to its slots and the metrics."""

    def __init__(self, load: Callable[[], NER], settings: Settings,
                 check: Optional[Callable[[], CheckReport]] = None):
        self.settings = settings
        self.metrics = Metrics(lambda: self.gate.queued, lambda: self.gate.in_flight)
        self.gate = Gate(settings.workers, settings.max_queue,
                         on_cancel=lambda stage: self.metrics.cancelled.labels(stage).inc())
        self.ner: Optional[NER] = None
        self.load_error: Optional[str] = None
        self.check: Optional[dict] = None  # `koner check`'s figures, when the server was started with --check
        self._load = load
        self._check = check

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object) -> AsyncIterator[None]:
        """The application's lifespan: the model starts loading at startup; the slots close at shutdown."""
        self.start()
        yield
        self.gate.close()

    def start(self) -> None:
        """Load and warm the model on a thread, so /healthz answers while it loads."""
        threading.Thread(target=self._load_model, name="koner-load", daemon=True).start()

    def _load_model(self) -> None:
        try:
            if self._check is not None and not self._checked():
                return
            ner = self._load()
            ner("서울역으로 안내해줘.")  # warm-up: the first run allocates what later runs reuse
            self.ner = ner
            log.info("model ready: %s (%d slots)", ner.folder, self.settings.workers)
        except Exception as exc:  # reported by /readyz and every inference route
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.error("model failed to load: %s", self.load_error)

    def _checked(self) -> bool:
        """Run `koner check`; False (and the model not loaded) when the folder is damaged."""
        assert self._check is not None
        report = self._check()
        self.check = report.to_dict()
        for line in report.lines():
            log.info("check: %s", line)
        if report.damaged:
            self.load_error = "koner check: the model folder is damaged: " + "; ".join(report.damaged)
            log.error("model not loaded: %s", self.load_error)
            return False
        return True

    async def entities(self, request: Request, texts: list[str], aggregation: Strategy,
                       decode: Optional[Decode] = None) -> list[list[dict]]:
        """Each text's entities as dicts (pipeline fields + `text`), computed on a slot."""
        ner = self.ner
        if ner is None:
            if self.load_error:
                raise ApiError(503, "model_failed", f"the model could not be loaded: {self.load_error}")
            raise ApiError(503, "not_ready", "the model is still loading; retry shortly", {"Retry-After": "1"})

        try:  # the loaded model's options with the request's: a model loaded with viterbi refuses a word-level one
            options = ner.call_options(aggregation=aggregation, decode=decode)
        except ValueError as exc:
            raise ApiError(422, "invalid_decode", str(exc)) from None

        def work(cancel: threading.Event) -> tuple[list[list[dict]], int]:
            def check() -> None:  # before each text and each window of the model, whatever the text holds
                if cancel.is_set():
                    raise Stopped()

            out, tokens = [], 0
            for text in texts:
                check()
                toks = ner.tokenize(text)
                tokens += len(toks.ids) - 2
                out.append([{**e.to_dict(), "text": e.text} for e in ner.iter_entities(
                    text, options=options, workers=1, tokens=toks, poll=check)])
            return out, tokens

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.timeout
        try:
            results, tokens = await self.gate.run(work, deadline=deadline,
                                                  disconnected=lambda: _disconnect(request))
        except Overloaded:
            raise ApiError(503, "overloaded", f"all {self.settings.workers} slots are busy and "
                                              f"{self.settings.max_queue} requests are waiting; retry shortly",
                           {"Retry-After": "1"}) from None
        except TimedOut:
            raise ApiError(504, "timeout", f"no answer within {self.settings.timeout:g} s (--timeout)") from None
        except ClientGone:
            raise client_closed() from None
        self.metrics.texts.inc(len(texts))
        self.metrics.tokens.inc(tokens)
        return results


async def _disconnect(request: Request) -> None:
    """Return when the client disconnects (the request body has been read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
