"""`koner serve`: its options, the listening socket, logging, and uvicorn (imported only when it runs)."""
from __future__ import annotations

import ipaddress
import logging
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING

from .. import exitcodes

if TYPE_CHECKING:
    from ..check import CheckReport

SERVE_HINT = "`koner serve` needs the serve extra: pip install 'koner[serve]'"


def register(sub) -> None:
    """Add the `serve` verb to the `koner` command's sub-parsers."""
    from ..aggregate import STRATEGIES
    from ..decode import DECODES
    from .args import checked, positive_int, thread_count

    non_negative = checked(int, lambda n: n >= 0, "an integer of 0 or more")
    port = checked(int, lambda n: 0 <= n <= 65535, "a port number from 0 to 65535")
    seconds = checked(float, lambda x: x > 0, "a number of seconds above 0")

    p = sub.add_parser("serve", help="an HTTP NER service (uvicorn + Starlette)  [serve extra]",
                       description="Serve NER over HTTP: POST /v1/ner, POST / (Hugging Face Inference API format), "
                                   "GET /healthz, /readyz, /metrics, /openapi.json, and a demo page at GET /.")
    p.add_argument("--model", help="model folder (default: the bundled stand-in)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port, default=8080, help="port (default 8080; 0: any free port, printed at start)")
    p.add_argument("--workers", type=thread_count, help="inference slots (default: usable CPUs / --threads)")
    p.add_argument("--threads", type=thread_count, default=1, help="intra-op threads per slot (default 1)")
    p.add_argument("--max-queue", type=non_negative, default=64,
                   help="requests that may wait for a slot; one more is answered 503 at once (default 64)")
    p.add_argument("--max-body-bytes", type=positive_int, default=1 << 20, help="largest request body (1 MiB)")
    p.add_argument("--max-texts", type=positive_int, default=64, help="texts in one request (64)")
    p.add_argument("--max-chars", type=positive_int, default=100_000,
                   help="characters of all texts of one request together (100,000)")
    p.add_argument("--timeout", type=seconds, default=30.0, help="seconds a request may take, queue included (30)")
    p.add_argument("--api-key-file", help="file holding the API key, printable ASCII (or set KONER_API_KEY); every "
                                          "route but /healthz, /openapi.json and the demo page's files then needs "
                                          "'Authorization: Bearer <key>'")
    p.add_argument("--aggregation", default="simple", choices=STRATEGIES, help="default aggregation (simple)")
    p.add_argument("--decode", choices=DECODES, default="argmax",
                   help="default decoding (argmax: the transformers pipeline's labels; viterbi: valid BIO)")
    p.add_argument("--grace", type=seconds, default=30.0,
                   help="on SIGTERM, seconds to finish requests in flight (30)")
    p.add_argument("--max-connections", type=positive_int, default=256,
                   help="connections served at once, idle keep-alive ones included; one more is answered 503 and "
                        "closed (256)")
    p.add_argument("--max-header-bytes", type=positive_int, default=16 * 1024,
                   help="largest request line and headers; larger is answered 431 and the connection closed (16 KiB)")
    p.add_argument("--read-timeout", type=seconds, default=10.0,
                   help="seconds a client has to send a whole request, headers and body, from its first byte (a "
                        "new connection: from opening); then 408 and the connection is closed (10)")
    p.add_argument("--allowed-hosts", metavar="HOSTS",
                   help="comma-separated names (any port), NAME:PORT or * that the Host header may give; others "
                        "get 421 (default without an API key on a loopback address: localhost, 127.0.0.1, [::1] "
                        "and the bound address; otherwise every host)")
    p.add_argument("--no-access-log", action="store_true", help="no access log lines on stderr")
    p.add_argument("--no-ui", action="store_true", help="no demo page at GET / (POST / stays the Hugging Face API)")
    p.add_argument("--check", action="store_true",
                   help="run `koner check` before loading the model: a damaged folder is not served, decisive flips "
                        "on this CPU make /readyz answer 503 check_failed; /readyz shows the check's figures")
    p.set_defaults(run=run_serve)


class _Refused(Exception):
    """An argument `koner serve` cannot start with; the message is the one line to print."""


def _api_key(args) -> "str | None":
    if args.api_key_file:
        try:
            with open(args.api_key_file, encoding="utf-8") as f:
                key = f.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise _Refused(f"{args.api_key_file}: cannot read the API key "
                           f"({getattr(exc, 'strerror', None) or exc})") from None
        if not key:
            raise _Refused(f"{args.api_key_file}: the API key file is empty")
        return _checked_key(key, args.api_key_file)
    key = os.environ.get("KONER_API_KEY") or None
    return None if key is None else _checked_key(key, "KONER_API_KEY")


def _checked_key(key: str, where: str) -> str:
    """The key, if every client can send it: HTTP headers (and browsers' fetch) carry printable ASCII only."""
    if not (key.isascii() and key.isprintable() and " " not in key):
        raise _Refused(f"{where}: the API key must be printable ASCII without spaces (a browser cannot send "
                       "anything else in a header)")
    return key


def _check_model(model: "str | None") -> None:
    """Refuse a model folder that is missing or has no readable koner.json before the server starts."""
    if model is None:
        return
    from pathlib import Path

    from ..errors import KonerError, ModelNotFoundError
    from ..manifest import read_manifest

    folder = Path(model)
    if not folder.is_dir():
        raise _Refused(str(ModelNotFoundError.of(model, bundled="leave out --model")))
    try:
        read_manifest(folder)
    except KonerError as exc:
        raise _Refused(str(exc)) from None


FILES_RESERVED = 128  # open files beside the connections: the model, logs, lingering connections (64), the runtime's


def _check_open_files(max_connections: int) -> None:
    """Make sure `max_connections` connections fit in this process's open-file limit, raising the soft limit up to
    the hard one if needed; refuse a limit that cannot fit."""
    try:
        import resource
    except ImportError:  # not on this platform (Windows): nothing to check
        return
    need = max_connections + FILES_RESERVED
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return
    if hard == resource.RLIM_INFINITY or hard >= need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
        return
    raise _Refused(f"--max-connections {max_connections} needs {need} open files, but this process may open at most "
                   f"{hard} (ulimit -n); lower --max-connections to {max(1, hard - FILES_RESERVED)} or less")


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto given explicitly: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they are TCP,
    # and without it every keep-alive answer waits ~40 ms for a delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise _Refused(f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port or "
                       "--host") from None
    sock.listen(2048)  # connections wait in the backlog until uvicorn accepts them, never refused after the banner
    sock.set_inheritable(True)
    return sock


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run_serve(args) -> int:
    """Run `koner serve` until SIGTERM or Ctrl-C; returns the exit code."""
    try:
        import uvicorn

        from ..serving.app import Settings, create_app
        from ..serving.connections import Counts, Limits, protocol_class
        from ..serving.hosts import BadHostEntry, allowed_hosts
    except ImportError as exc:
        print(f"koner: {SERVE_HINT} (missing: {exc.name})", file=sys.stderr)
        return exitcodes.USAGE
    from ..ner import NER
    from ..system import usable_cpus

    try:
        key = _api_key(args)
        hosts = allowed_hosts(args.allowed_hosts, args.host, _loopback(args.host), key is not None)
        _check_model(args.model)
        _check_open_files(args.max_connections)
        sock = _bind(args.host, args.port)
    except (_Refused, BadHostEntry) as exc:
        print(f"koner: {exc}", file=sys.stderr)
        return exitcodes.USAGE
    workers = args.workers or max(1, usable_cpus() // args.threads)
    settings = Settings(workers=workers, max_queue=args.max_queue, max_body_bytes=args.max_body_bytes,
                        max_texts=args.max_texts, max_chars=args.max_chars, timeout=args.timeout, api_key=key,
                        aggregation=args.aggregation, decode=args.decode, ui=not args.no_ui, allowed_hosts=hosts,
                        max_connections=args.max_connections, max_header_bytes=args.max_header_bytes,
                        read_timeout=args.read_timeout, check=args.check)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    for name in ("koner.serve", "koner.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False
    if args.no_access_log:
        logging.getLogger("koner.access").setLevel(logging.WARNING)
    host, port = sock.getsockname()[:2]
    if not _loopback(args.host) and key is None:
        print(f"koner: warning: listening on {args.host} with no API key; anyone who can reach this port can use "
              "it (--api-key-file)", file=sys.stderr)

    def load() -> NER:  # one session shared by every slot; the event loop never runs inference
        return NER.load(args.model, threads=args.threads, workers=workers, options=settings.options)

    def check() -> "CheckReport":  # `koner check` of the folder, before the model is loaded (--check)
        from ..check import check_model

        return check_model(args.model)

    app = create_app(load, settings, check if args.check else None)
    counts = Counts()
    app.metrics.watch_connections(lambda: counts.open)
    protocol = protocol_class(Limits(args.max_connections, args.max_header_bytes, args.read_timeout), counts,
                              app.connection_closed)
    print(f"koner serve: listening on http://{host}:{port} ({workers} slots x {args.threads} thread(s), "
          f"queue {args.max_queue}, timeout {args.timeout:g} s{', API key required' if key else ''})",
          file=sys.stderr, flush=True)
    # no proxy-headers middleware: koner logs no client addresses, and it costs every request a pass; httptools
    # with koner's connection limits (connections.py), no WebSocket
    config = uvicorn.Config(app, lifespan="on", access_log=False, log_level="warning", proxy_headers=False,
                            timeout_graceful_shutdown=args.grace, server_header=False, http=protocol, ws="none")
    _server_class(uvicorn)(config).run(sockets=[sock])
    return exitcodes.OK


def _server_class(uvicorn):
    class Server(uvicorn.Server):
        """uvicorn's server, except that SIGTERM after a graceful drain exits 0 instead of being re-raised."""

        def handle_exit(self, sig, frame) -> None:
            super().handle_exit(sig, frame)
            captured = getattr(self, "_captured_signals", None)
            if sig == signal.SIGTERM and isinstance(captured, list) and sig in captured:
                captured.remove(sig)

    return Server
