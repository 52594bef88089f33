"""`koner serve` as a real process on 127.0.0.1 (ephemeral ports), talked to with a real HTTP client."""
import concurrent.futures
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
pytest.importorskip("starlette")
pytest.importorskip("prometheus_client")

from koner import NER  # noqa: E402

TEXTS = ["아이유 노래 검색해줘.", "서울역으로 안내해줘.", "에어컨 온도 3도 올려줘.", "",
         "어제 아이유가 서울역에서 삼성전자 직원 김민수 씨를 만났다.", "😀 부산 날씨 알려줘 👨‍👩‍👧"]
LONG = "어제 아이유가 서울역에서 삼성전자 직원 김민수 씨를 만났다. " * 1500  # ~50,000 characters, seconds of work


class Server:
    """A `koner serve` subprocess on an ephemeral loopback port; its stderr is collected."""

    def __init__(self, *args, env=None):
        self.proc = subprocess.Popen([sys.executable, "-m", "koner.cli", "serve", "--port", "0", *args],
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                                     env={**os.environ, **(env or {})})
        self.lines: list[str] = []
        first = self.proc.stderr.readline()
        self.lines.append(first)
        m = re.search(r"http://127\.0\.0\.1:(\d+)", first)
        assert m, first
        self.url = f"http://127.0.0.1:{m.group(1)}"
        threading.Thread(target=self._drain, daemon=True).start()
        self.client = httpx.Client(base_url=self.url, timeout=60)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                headers = {"Authorization": f"Bearer {env['KONER_API_KEY']}"} if env else {}
                if self.client.get("/readyz", headers=headers).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("the server did not get ready: " + "".join(self.lines))

    def _drain(self):
        for line in self.proc.stderr:
            self.lines.append(line)

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


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.stop()


def _expected(ner, text):
    return json.loads(json.dumps([{**e.to_dict(), "text": e.text} for e in ner(text)]))


def test_entities_equal_the_library(server):
    ner = NER.load()
    one = server.post("/v1/ner", {"text": TEXTS[0]})
    assert one.status_code == 200 and one.json() == {"entities": _expected(ner, TEXTS[0])}
    many = server.post("/v1/ner", {"texts": TEXTS})
    assert many.status_code == 200
    assert [r["entities"] for r in many.json()["results"]] == [_expected(ner, t) for t in TEXTS]
    first = server.post("/v1/ner", {"texts": TEXTS, "aggregation": "first"}).json()
    assert [r["entities"] for r in first["results"]] == \
        [json.loads(json.dumps([{**e.to_dict(), "text": e.text} for e in ner(t, aggregation="first")]))
         for t in TEXTS]
    vit = server.post("/v1/ner", {"texts": TEXTS, "decode": "viterbi"}).json()
    assert [r["entities"] for r in vit["results"]] == \
        [json.loads(json.dumps([{**e.to_dict(), "text": e.text} for e in ner(t, decode="viterbi")])) for t in TEXTS]
    bad = server.post("/v1/ner", {"text": "서울", "decode": "viterbi", "aggregation": "first"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_decode"
    for r, t in zip(many.json()["results"], TEXTS):
        assert all(e["text"] == t[e["start"]:e["end"]] for e in r["entities"])


def test_hugging_face_inference_api_format(server):
    ner = NER.load()
    single = server.post("/", {"inputs": TEXTS[4]})
    assert single.status_code == 200
    assert single.json() == json.loads(json.dumps([e.to_dict() for e in ner(TEXTS[4])]))
    batch = server.post("/", {"inputs": TEXTS[:3], "parameters": {"aggregation_strategy": "none"}})
    assert batch.json() == [json.loads(json.dumps([e.to_dict() for e in ner(t, aggregation="none")]))
                            for t in TEXTS[:3]]


def test_health_readiness_and_metrics(server):
    assert server.client.get("/healthz").json() == {"status": "ok"}
    assert server.client.get("/readyz").json() == {"status": "ready"}
    server.post("/v1/ner", {"texts": TEXTS[:2]})
    server.post("/v1/ner", {"text": 5})
    text = server.client.get("/metrics").text
    for needle in ('koner_requests_total{route="/v1/ner",status="200"}', 'status="422"',
                   "koner_request_seconds_bucket", "koner_queue_depth", "koner_in_flight", "koner_texts_total",
                   "koner_tokens_total", "process_resident_memory_bytes"):
        assert needle in text, needle
    tokens = float(re.search(r"^koner_tokens_total (\S+)", text, re.M).group(1))
    assert tokens >= 20


@pytest.mark.parametrize("body,headers,status,code", [
    (b'{"text": "broken', {"content-type": "application/json"}, 400, "invalid_json"),
    (b'{"text": "x"}', {"content-type": "text/plain"}, 415, "unsupported_media_type"),
    (json.dumps({"texts": ["가"] * 65}).encode(), {"content-type": "application/json"}, 413, "too_many_texts"),
    (json.dumps({"text": "가" * 100_001}).encode(), {"content-type": "application/json"}, 413, "too_many_chars"),
    (json.dumps({"texts": ["가", "나", 7]}).encode(), {"content-type": "application/json"}, 422, "invalid_text"),
    (json.dumps({"text": "가", "aggregation": "mean"}).encode(), {"content-type": "application/json"}, 422,
     "invalid_aggregation"),
    (json.dumps({"txt": "가"}).encode(), {"content-type": "application/json"}, 422, "invalid_request"),
    (b"x" * (1 << 20 + 1), {"content-type": "application/json"}, 413, "body_too_large"),
])
def test_bad_input_gets_a_clear_json_error(server, body, headers, status, code):
    r = server.client.post("/v1/ner", content=body, headers=headers)
    assert r.status_code == status
    err = r.json()["error"]
    assert err["code"] == code and err["message"] and "Traceback" not in r.text
    if code == "invalid_text":
        assert "text 2" in err["message"]
    if code in ("too_many_texts", "too_many_chars", "body_too_large"):
        assert re.search(r"limit is [\d,]+", err["message"])
    assert server.client.get("/nope").json()["error"]["code"] == "not_found"


def test_access_log_has_no_text(server):
    secret = "홍길동의주민번호는비밀"
    server.post("/v1/ner", {"text": secret})
    time.sleep(0.3)
    log = "".join(server.lines)
    assert '"route": "/v1/ner"' in log and '"status": 200' in log
    assert secret not in log


def test_overload_is_answered_503_at_once_and_nothing_else_fails():
    s = Server("--workers", "1", "--max-queue", "1")
    try:
        body = {"text": "어제 아이유가 서울역에서 삼성전자 직원 김민수 씨를 만났다. " * 200}
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            futs = [pool.submit(lambda: httpx.post(s.url + "/v1/ner", json=body, timeout=60)) for _ in range(12)]
            answers = [f.result() for f in futs]
        statuses = sorted(r.status_code for r in answers)
        assert set(statuses) <= {200, 503} and statuses.count(503) >= 5 and statuses.count(200) >= 2
        busy = next(r for r in answers if r.status_code == 503)
        assert busy.headers["retry-after"] == "1" and busy.json()["error"]["code"] == "overloaded"
    finally:
        s.stop()


def test_a_slow_request_gets_504_and_frees_its_slot():
    s = Server("--workers", "1", "--timeout", "0.5")
    try:
        t0 = time.time()
        r = s.post("/v1/ner", {"text": LONG})
        assert r.status_code == 504 and r.json()["error"]["code"] == "timeout"
        assert time.time() - t0 < 10
        deadline = time.time() + 30  # the cancelled work stops at its next check and gives the slot back
        while s.post("/v1/ner", {"text": TEXTS[0]}).status_code != 200:
            assert time.time() < deadline
            time.sleep(0.2)
    finally:
        s.stop()


def test_api_key_is_required_except_for_healthz():
    s = Server(env={"KONER_API_KEY": "s3cret-key"})
    try:
        assert httpx.get(s.url + "/healthz").status_code == 200
        for path, method in (("/v1/ner", "POST"), ("/", "POST"), ("/metrics", "GET"), ("/readyz", "GET")):
            r = httpx.request(method, s.url + path, json={"text": "서울"})
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", path
            assert r.headers["www-authenticate"] == "Bearer"
        wrong = httpx.post(s.url + "/v1/ner", json={"text": "서울"}, headers={"Authorization": "Bearer s3cret-kez"})
        assert wrong.status_code == 401
        ok = httpx.post(s.url + "/v1/ner", json={"text": "아이유 노래 검색해줘."},
                        headers={"Authorization": "Bearer s3cret-key"})
        assert ok.status_code == 200 and ok.json()["entities"][0]["word"] == "아이유"
    finally:
        s.stop()


def test_sigterm_finishes_the_request_in_flight_and_exits_0():
    s = Server("--workers", "1")
    try:
        box = {}
        t = threading.Thread(target=lambda: box.update(r=httpx.post(s.url + "/v1/ner", json={"text": LONG[:20_000]},
                                                                     timeout=60)))
        t.start()
        time.sleep(0.5)
        s.proc.send_signal(signal.SIGTERM)
        t.join(timeout=60)
        assert box["r"].status_code == 200 and len(box["r"].json()["entities"]) > 100
        assert s.proc.wait(timeout=60) == 0
    finally:
        s.stop()


def test_a_client_gone_before_its_turn_costs_no_inference():
    s = Server("--workers", "1")
    try:
        def texts_done():
            return float(re.search(r"^koner_texts_total (\S+)", s.client.get("/metrics").text, re.M).group(1))

        before = texts_done()
        busy = threading.Thread(target=lambda: httpx.post(s.url + "/v1/ner", json={"text": LONG[:30_000]},
                                                           timeout=60))
        busy.start()
        time.sleep(0.3)
        with pytest.raises(httpx.TimeoutException):  # queued behind the busy slot, then gone
            httpx.post(s.url + "/v1/ner", json={"text": "아이유 노래 검색해줘."}, timeout=0.3)
        busy.join(timeout=60)
        time.sleep(0.5)
        assert texts_done() == before + 1  # only the busy request's text ran
    finally:
        s.stop()
