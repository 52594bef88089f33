"""The Host allow-list of `koner serve`: which names a request's `Host` header may give.

A web page can make a browser send requests to a server on 127.0.0.1 by pointing its own domain name at that
address (DNS rebinding); the browser then sends that domain as the `Host`. A key-less server on a loopback address
answers only the loopback names (`LOOPBACK`, and the address it is bound to) unless `--allowed-hosts` names others.
"""
from __future__ import annotations

from typing import Iterable, Optional

LOOPBACK = ("localhost", "127.0.0.1", "::1")


class BadHostEntry(ValueError):
    """An --allowed-hosts entry that is not a host name, an address, `name:port` or `*`."""


def split_host(value: str) -> Optional[tuple[str, Optional[int]]]:
    """`name[:port]` (an IPv6 address in brackets) as (lower-case name without a trailing dot, port), or None when
    it is not of that form."""
    value = value.strip().lower()
    port: Optional[str] = None
    if value.startswith("["):
        name, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None
        port = rest[1:] if rest else None
    elif value.count(":") == 1:
        name, port = value.split(":")
    else:
        name = value  # a bare IPv6 address (only in --allowed-hosts) or a name without a port
    name = name.rstrip(".")
    if not name or any(c.isspace() or c in "/@?#[]" for c in name):
        return None
    if port is not None and not (port.isdigit() and 0 < int(port) <= 65535):
        return None
    return name, None if port is None else int(port)


class AllowedHosts:
    """Names (any port) and name:port pairs a `Host` header may give; `*` allows every host."""

    def __init__(self, entries: Iterable[str]):
        self.any = False
        self.names: set[str] = set()
        self.pairs: set[tuple[str, int]] = set()
        for entry in entries:
            entry = entry.strip()
            if entry == "*":
                self.any = True
                continue
            parsed = split_host(entry)
            if parsed is None:
                raise BadHostEntry(f"--allowed-hosts: {entry!r} is not a host name, an address, NAME:PORT or *")
            name, port = parsed
            if port is None:
                self.names.add(name)
            else:
                self.pairs.add((name, port))

    def allows(self, host: Optional[str]) -> bool:
        """Whether a request with this `Host` header value (None: no header, which no browser sends) is answered."""
        if self.any or host is None:
            return True
        parsed = split_host(host)
        return parsed is not None and (parsed[0] in self.names or (parsed[0], parsed[1]) in self.pairs)

    def __str__(self) -> str:
        return "*" if self.any else ", ".join(sorted(self.names) + [f"{n}:{p}" for n, p in sorted(self.pairs)])


def allowed_hosts(given: Optional[str], bound: str, loopback: bool, key: bool) -> Optional[AllowedHosts]:
    """The allow-list for `--allowed-hosts given` (a comma-separated list), or the default: the loopback names and
    `bound` when the server is on a loopback address without an API key; None (every host) otherwise."""
    if given is not None:
        entries = [e for e in given.split(",") if e.strip()]
        if not entries:
            raise BadHostEntry("--allowed-hosts needs at least one host name (or *, every host)")
        return AllowedHosts(entries)
    if loopback and not key:
        return AllowedHosts([*LOOPBACK, bound if ":" not in bound else f"[{bound}]"])
    return None
