"""A `koner serve` subprocess on an ephemeral loopback port, for the server and browser tests."""
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import httpx


def wait_until(check, what, timeout=60.0):
    """Poll `check()` until it is true; fail naming `what` after `timeout` seconds (a bound, not a timing test)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Server:
    """A `koner serve` subprocess on an ephemeral loopback port; its stderr is collected."""

    def __init__(self, *args, env=None, ready=True, open_files=None):
        """`open_files`: the process's open-file limit (soft and hard), as `ulimit -n` would set it."""
        def limit():
            import resource

            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

        self.proc = subprocess.Popen([sys.executable, "-m", "koner.cli", "serve", "--port", "0", *args],
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                                     env={**os.environ, **(env or {})}, preexec_fn=limit if open_files else None)
        self.lines: list[str] = []
        self._first: "queue.Queue[str]" = queue.Queue()
        threading.Thread(target=self._drain, daemon=True).start()
        try:
            first = self._first.get(timeout=120)  # bounded: a server that never speaks fails the test
        except queue.Empty:
            self.proc.kill()
            raise AssertionError("koner serve printed nothing in 120 s") from None
        m = re.search(r"http://127\.0\.0\.1:(\d+)", first)
        assert m, first
        self.url = f"http://127.0.0.1:{m.group(1)}"
        self.headers = {"Authorization": f"Bearer {env['KONER_API_KEY']}"} if env else {}
        self.client = httpx.Client(base_url=self.url, timeout=60)
        if ready:
            wait_until(self._ready, "/readyz to answer 200", 120)

    def _ready(self):
        try:
            return self.client.get("/readyz", headers=self.headers).status_code == 200
        except httpx.TransportError:
            return False

    def _drain(self):
        for n, line in enumerate(self.proc.stderr):
            self.lines.append(line)
            if n == 0:
                self._first.put(line)
        self._first.put("")  # the process ended

    def log(self):
        """What the server has written to stderr so far."""
        return "".join(self.lines)

    def metric(self, name, labels=""):
        text = self.client.get("/metrics", headers=self.headers).text
        m = re.search(rf"^{re.escape(name + labels)} (\S+)", text, re.M)
        return float(m.group(1)) if m else None

    def post(self, path, body, **kw):
        return self.client.post(path, json=body, **kw)

    def stop(self):
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
