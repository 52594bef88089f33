"""What `koner serve` was told: the one value every part of the server reads its limits and defaults from."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..options import Options
from .hosts import AllowedHosts


@dataclass(frozen=True)
class Settings:
    """What `koner serve` was told; the defaults are the ones README explains."""

    workers: int = 2  # inference slots
    max_queue: int = 64
    max_body_bytes: int = 1 << 20
    max_texts: int = 64
    max_chars: int = 100_000  # characters of all texts of one request together
    timeout: float = 30.0
    api_key: Optional[str] = None
    aggregation: str = "simple"
    decode: str = "argmax"
    ui: bool = True  # the demo page at GET /
    allowed_hosts: Optional[AllowedHosts] = None  # None: every Host header is answered
    max_connections: int = 256  # connection limits, enforced by the connection (connections.py)
    max_header_bytes: int = 16 * 1024
    read_timeout: float = 10.0
    check: bool = False  # run `koner check` before loading the model; /readyz reports it

    @property
    def options(self) -> Options:
        """The entity options the model is loaded with: every request's, unless it sends its own."""
        return Options.parse(aggregation=self.aggregation, decode=self.decode)
