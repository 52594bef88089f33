"""`koner serve` as a real process on 127.0.0.1 (ephemeral ports), talked to with a real HTTP client."""
import asyncio
import concurrent.futures
import json
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
from serve_process import Server, wait_until  # noqa: E402

TEXTS = ["아이유 노래 검색해줘.", "서울역으로 안내해줘.", "에어컨 온도 3도 올려줘.", "",
         "어제 아이유가 서울역에서 삼성전자 직원 김민수 씨를 만났다.", "😀 부산 날씨 알려줘 👨‍👩‍👧"]
LONG = "어제 아이유가 서울역에서 삼성전자 직원 김민수 씨를 만났다. " * 1500  # ~50,000 characters, seconds of work
BUSY = LONG + LONG[:45_000]  # just under the 100,000-character limit: many seconds of one slot's work
EMPTY = " ." * 50_000  # 100,000 characters, about 75,000 tokens of windows without a single entity


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


def test_an_escaped_lone_surrogate_is_answered_not_a_500(server):
    body = '{"text": "서울\\ud800역으로 안내해줘."}'  # valid JSON; the entity's slice keeps the surrogate
    r = server.client.post("/v1/ner", content=body.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 200
    ents = json.loads(r.content)["entities"]
    assert ents and ents[0]["text"] == "서울\ud800역" and ents[0]["start"] == 0


def test_hugging_face_inference_api_format(server):
    ner = NER.load()
    single = server.post("/", {"inputs": TEXTS[4]})
    assert single.status_code == 200
    assert single.json() == json.loads(json.dumps([e.to_dict() for e in ner(TEXTS[4])]))
    batch = server.post("/", {"inputs": TEXTS[:3], "parameters": {"aggregation_strategy": "none"}})
    assert batch.json() == [json.loads(json.dumps([e.to_dict() for e in ner(t, aggregation="none")]))
                            for t in TEXTS[:3]]


def test_health_readiness_and_metrics(server):
    from koner.cpu import int8_path

    assert server.client.get("/healthz").json() == {"status": "ok"}
    assert server.client.get("/readyz").json() == {"status": "ready", "int8_path": int8_path()}
    assert f'koner_info{{int8_path="{int8_path()}",version="0.1.0"}} 1.0' in server.client.get("/metrics").text
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
    (b"x" * ((1 << 20) + 1), {"content-type": "application/json"}, 413, "body_too_large"),
    (b"[" * 100_000, {"content-type": "application/json"}, 400, "invalid_json"),  # nested too deep to parse
    (b'{"text": 1' + b"1" * 5000 + b"}", {"content-type": "application/json"}, 400, "invalid_json"),
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


def test_the_body_limit_holds_at_its_edge_with_and_without_content_length(server):
    limit = 1 << 20
    at = b'"' + b"x" * (limit - 2) + b'"'  # exactly the limit: read, then refused for what it holds
    over = at + b" "
    headers = {"content-type": "application/json"}
    assert server.client.post("/v1/ner", content=at, headers=headers).json()["error"]["code"] == "invalid_request"
    assert server.client.post("/v1/ner", content=over, headers=headers).status_code == 413

    def chunks(body):  # a streamed body: no Content-Length, chunked transfer encoding
        for i in range(0, len(body), 65_536):
            yield body[i:i + 65_536]

    r = server.client.post("/v1/ner", content=chunks(at), headers=headers)
    assert r.request.headers.get("transfer-encoding") == "chunked" and "content-length" not in r.request.headers
    assert r.json()["error"]["code"] == "invalid_request"
    r = server.client.post("/v1/ner", content=chunks(over), headers=headers)
    assert r.status_code == 413 and "over the limit of 1,048,576 bytes" in r.json()["error"]["message"]


def test_access_log_has_no_text(server):
    secret = "홍길동의주민번호는비밀"
    n = len(server.lines)
    server.post("/v1/ner", {"text": secret})
    wait_until(lambda: any('"route": "/v1/ner"' in line for line in server.lines[n:]), "the access log line")
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


def test_a_slow_request_gets_504_and_its_work_is_stopped():
    s = Server("--workers", "1", "--timeout", "0.5")
    try:
        running = 'koner_cancelled_total{stage="running"}'
        assert s.metric(running) == 0
        r = s.post("/v1/ner", {"text": BUSY})
        assert r.status_code == 504 and r.json()["error"]["code"] == "timeout"
        # the slot's work saw its cancel flag and stopped (it would run for seconds more otherwise) ...
        wait_until(lambda: s.metric(running) == 1, "the running work to be stopped")
        assert s.metric("koner_in_flight") == 0 and s.metric("koner_texts_total") == 0
        # ... so the one slot answers the next request
        ok = s.post("/v1/ner", {"text": TEXTS[0]})
        assert ok.status_code == 200 and ok.json()["entities"][0]["word"] == "아이유"
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
        wait_until(lambda: s.metric("koner_in_flight") == 1, "the request to reach its slot")
        s.proc.send_signal(signal.SIGTERM)
        t.join(timeout=60)
        assert box["r"].status_code == 200 and len(box["r"].json()["entities"]) > 100
        assert s.proc.wait(timeout=60) == 0
    finally:
        s.stop()


def test_a_client_gone_before_its_turn_costs_no_inference():
    s = Server("--workers", "1", "--timeout", "300")  # BUSY's many seconds must not reach the deadline
    try:
        queued = 'koner_cancelled_total{stage="queued"}'
        box = {}
        busy = threading.Thread(target=lambda: box.update(r=httpx.post(s.url + "/v1/ner", json={"text": BUSY},
                                                                        timeout=120)))
        busy.start()
        wait_until(lambda: s.metric("koner_in_flight") == 1, "the busy request to reach the slot")
        with httpx.Client(base_url=s.url, timeout=30) as gone:
            with pytest.raises(httpx.ReadTimeout):  # queued behind the busy slot, then gone
                gone.post("/v1/ner", json={"text": "아이유 노래 검색해줘."}, timeout=httpx.Timeout(30, read=0.5))
        busy.join(timeout=120)
        assert box["r"].status_code == 200
        # the slot, once free, skipped the queued work of the client that left: its text never ran
        wait_until(lambda: s.metric(queued) == 1, "the queued work to be skipped")
        assert s.metric("koner_texts_total") == 1 and s.metric('koner_cancelled_total{stage="running"}') == 0
    finally:
        s.stop()


def test_readiness_while_loading_and_after_a_failed_load(model_copy):
    (model_copy / "model.onnx").write_bytes(b"not an onnx graph")  # koner.json reads; the graph does not load
    s = Server("--model", str(model_copy), ready=False)
    try:
        wait_until(lambda: s.client.get("/readyz").json()["error"]["code"] == "model_failed", "model_failed")
        r = s.client.get("/readyz")
        assert r.status_code == 503 and "model.onnx" in r.json()["error"]["message"]
        assert s.client.get("/healthz").json() == {"status": "ok"}  # alive, not ready
        ner = s.post("/v1/ner", {"text": "서울"})
        assert ner.status_code == 503 and ner.json()["error"]["code"] == "model_failed"
    finally:
        s.stop()


def test_readiness_is_503_until_the_model_has_loaded():
    """In-process uvicorn on loopback, with a loader held on an event: /readyz says not_ready until it returns."""
    import uvicorn

    from koner.serving.app import Settings, create_app

    release = threading.Event()

    def load():
        assert release.wait(60)
        return NER.load()

    config = uvicorn.Config(create_app(load, Settings()), host="127.0.0.1", port=0, log_level="warning",
                            lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, "uvicorn to start")
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            r = c.get("/readyz")
            assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready"
            assert r.headers["retry-after"] == "1"
            busy = c.post("/v1/ner", json={"text": "서울"})
            assert busy.status_code == 503 and busy.json()["error"]["code"] == "not_ready"
            release.set()
            wait_until(lambda: c.get("/readyz").status_code == 200, "the model to load")
            assert c.post("/v1/ner", json={"text": "아이유 노래 검색해줘."}).json()["entities"][0]["word"] == "아이유"
    finally:
        release.set()
        server.should_exit = True
        thread.join(timeout=60)


@pytest.mark.parametrize("slots,max_queue", [(2, 2), (4, 4), (1, 0)])
def test_a_burst_of_slots_plus_queue_requests_is_all_admitted(slots, max_queue):
    """Warm idle slots: a burst of exactly slots + max_queue requests is admitted whole; one more is refused."""
    from koner.serving.gate import Gate, Overloaded

    gate = Gate(slots, max_queue)
    hold = threading.Event()
    started = []

    def work(cancel):
        started.append(1)
        assert hold.wait(30)
        return len(started)

    async def burst(n):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60

        async def never():
            await asyncio.Event().wait()

        tasks = [asyncio.ensure_future(gate.run(work, deadline=deadline, disconnected=never)) for _ in range(n)]
        await asyncio.sleep(0)  # every request reaches admission before any slot can finish
        loop.call_later(0.2, hold.set)
        return await asyncio.gather(*tasks, return_exceptions=True)

    async def warm():  # the slot threads exist and wait for work, as in a server that has answered before
        await asyncio.gather(*[gate.run(lambda c: 0, deadline=asyncio.get_running_loop().time() + 60,
                                        disconnected=lambda: asyncio.Event().wait()) for _ in range(slots)])

    try:
        hold.set()
        asyncio.run(warm())
        hold.clear()
        started.clear()
        got = asyncio.run(burst(slots + max_queue))
        assert not [g for g in got if isinstance(g, BaseException)], got
        hold.clear()
        started.clear()
        over = asyncio.run(burst(slots + max_queue + 1))
        assert sum(isinstance(g, Overloaded) for g in over) == 1
    finally:
        hold.set()
        gate.close()


# ---------------------------------------------------------------- cancellation of texts without entities


@pytest.mark.parametrize("ending", ["timeout", "client_left"])
def test_a_text_without_entities_stops_at_its_next_window(ending):
    """A long text with no entity at all still checks for cancellation between its windows: the slot is freed
    (counted as stopped while running) and answers the next request."""
    s = Server("--workers", "1", *(["--timeout", "1"] if ending == "timeout" else []))
    try:
        running = 'koner_cancelled_total{stage="running"}'
        assert s.metric(running) == 0
        if ending == "timeout":
            r = s.post("/v1/ner", {"text": EMPTY})
            assert r.status_code == 504 and r.json()["error"]["code"] == "timeout"
        else:
            with httpx.Client(base_url=s.url, timeout=30) as gone:
                with pytest.raises(httpx.ReadTimeout):
                    gone.post("/v1/ner", json={"text": EMPTY}, timeout=httpx.Timeout(30, read=0.5))
        # many seconds of windows were left; the work saw its cancel flag at the next one and stopped
        wait_until(lambda: s.metric(running) == 1, "the running work to be stopped")
        assert s.metric("koner_in_flight") == 0 and s.metric("koner_texts_total") == 0
        ok = s.post("/v1/ner", {"text": TEXTS[0]})
        assert ok.status_code == 200 and ok.json()["entities"][0]["word"] == "아이유"
        status = 504 if ending == "timeout" else 499
        assert s.metric("koner_requests_total", f'{{route="/v1/ner",status="{status}"}}') == 1
    finally:
        s.stop()
