"""`koner serve` as a real process on 127.0.0.1 (ephemeral ports), talked to with a real HTTP client."""
import asyncio
import concurrent.futures
import json
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from support.extras import needs

httpx = needs("httpx")
needs("uvicorn")
needs("starlette")
needs("prometheus_client")

from koner import NER  # noqa: E402
from support.serve_process import Server, wait_until  # noqa: E402

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
    assert "Traceback" not in s.log()  # no expected condition of the tests that used it printed one


def _raw(port, data=b"", timeout=30):
    """A raw TCP connection to the server that sends `data` at once."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if data:
        sock.sendall(data)
    return sock


def _answer(sock):
    """Everything the server sends until it closes the connection; None if it is still open after the socket's
    timeout."""
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except ConnectionResetError:
        pass
    except socket.timeout:
        return None
    finally:
        sock.close()
    return out


def _answers(socks, timeout=60):
    """What the server sends on each connection until it closes them all; fails naming how many are still open
    after `timeout` seconds."""
    got = {sock: b"" for sock in socks}
    open_ = set(socks)
    for sock in socks:
        sock.setblocking(False)
    deadline = time.monotonic() + timeout
    while open_ and time.monotonic() < deadline:
        ready, _, _ = select.select(list(open_), [], [], 0.5)
        for sock in ready:
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                chunk = b""
            if chunk:
                got[sock] += chunk
            else:
                open_.discard(sock)
    assert not open_, f"{len(open_)} of {len(socks)} connections still open after {timeout} s"
    return [got[sock] for sock in socks]


def _error_code(answer):
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)["error"]["code"]


def _port(s):
    return int(s.url.rsplit(":", 1)[1])


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


@pytest.mark.parametrize("method,path,body,status,answer", [
    ("POST", "/v1/ner", {"texts": "부산 날씨 알려줘."}, 200, "results"),  # a string under 'texts': one result
    ("POST", "/v1/ner", {"text": ["부산"]}, 422, "'text' must be a string (use 'texts' for a list)"),
    ("POST", "/v1/ner", {"text": "부산", "texts": ["서울"]}, 422, 'send {"text": "..."} or {"texts": ["...", ...]}'),
    ("POST", "/", {"inputs": "부산 날씨 알려줘.", "parameters": None}, 200, "list"),
    ("POST", "/", {"inputs": "부산", "parameters": ["first"]}, 422, "'parameters' must be an object"),
    ("POST", "/", {"inputs": ["아이유 노래"], "parameters": {"aggregation_strategy": "first", "decode": "viterbi"}},
     422, "decode='viterbi' works with aggregation 'none' or 'simple', not 'first': word-level strategies choose "
          "labels from word scores"),
    ("PUT", "/v1/ner", {"text": "부산"}, 405, "Method Not Allowed"),
])
def test_each_body_shape_is_answered_as_documented(server, method, path, body, status, answer):
    r = server.client.request(method, path, json=body)
    assert r.status_code == status
    if answer == "results":
        assert [len(x["entities"]) > 0 for x in r.json()["results"]] == [True]
    elif answer == "list":
        assert r.json() and all(set(e) == {"entity_group", "score", "word", "start", "end"} for e in r.json())
    else:
        assert r.json()["error"]["message"] == answer


def test_a_word_level_request_on_a_viterbi_server_is_a_clear_422():
    """A server started with --decode viterbi refuses a request's word-level aggregation as it refuses the pair
    sent together: the request's options are the server's with its own, checked once."""
    s = Server("--decode", "viterbi", "--workers", "1")
    try:
        r = s.client.post("/v1/ner", json={"text": "부산 날씨 알려줘.", "aggregation": "first"})
        assert r.status_code == 422
        assert r.json()["error"]["code"] == "invalid_decode"
        assert "decode='viterbi' works with aggregation 'none' or 'simple', not 'first'" in r.json()["error"]["message"]
        ok = s.client.post("/v1/ner", json={"text": "부산 날씨 알려줘.", "aggregation": "first", "decode": "argmax"})
        assert ok.status_code == 200 and ok.json()["entities"]
    finally:
        s.stop()
    assert "Traceback" not in s.log()


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
        assert "Traceback" not in s.log()
    finally:
        s.stop()


# ---------------------------------------------------------------- a client that leaves mid-body


def test_a_client_gone_mid_body_is_counted_499_without_a_traceback(server):
    before_500 = server.metric("koner_requests_total", '{route="/v1/ner",status="500"}') or 0
    sock = _raw(_port(server), b"POST /v1/ner HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                               b"Content-Length: 1000\r\n\r\n" + json.dumps({"text": "서울역"}).encode()[:10])
    sock.close()  # 10 of 1,000 bytes sent, then gone
    wait_until(lambda: server.metric("koner_requests_total", '{route="/v1/ner",status="499"}') == 1,
               "the request to be counted as closed by the client")
    assert (server.metric("koner_requests_total", '{route="/v1/ner",status="500"}') or 0) == before_500
    log = server.log()
    assert '"route": "/v1/ner", "status": 499' in log
    assert "Traceback" not in log and "internal error" not in log and "ClientDisconnect" not in log


# ---------------------------------------------------------------- the Host header (DNS rebinding)


def test_a_keyless_loopback_server_answers_only_loopback_host_names(server):
    port = _port(server)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"LOCALHOST:{port}", "localhost"):
        r = server.client.get("/readyz", headers={"Host": host})
        assert r.status_code == 200, host
    body = {"text": "아이유 노래 검색해줘."}
    for host in (f"rebind.attacker.example:{port}", f"127.0.0.1.nip.io:{port}", "", "a b"):
        for method, path in (("POST", "/v1/ner"), ("POST", "/"), ("GET", "/"), ("GET", "/metrics")):
            r = server.client.request(method, path, json=body, headers={"Host": host})
            assert r.status_code == 421, (host, path)
            assert r.json()["error"]["code"] == "host_not_allowed" and "--allowed-hosts" in r.json()["error"]["message"]
    # /healthz holds nothing and answers any name (probes use the pod's address)
    assert server.client.get("/healthz", headers={"Host": f"rebind.attacker.example:{port}"}).status_code == 200
    assert server.metric("koner_requests_total", '{route="/v1/ner",status="421"}') >= 1


def test_allowed_hosts_replaces_the_default_and_a_key_lifts_it():
    s = Server("--allowed-hosts", "ner.internal, 127.0.0.1,api.example:443")
    try:
        port = _port(s)
        for host, status in ((f"ner.internal:{port}", 200), ("ner.internal", 200), (f"127.0.0.1:{port}", 200),
                             ("api.example:443", 200), ("api.example:8443", 421), (f"localhost:{port}", 421)):
            r = s.post("/v1/ner", {"text": "서울역으로 안내해줘."}, headers={"Host": host})
            assert r.status_code == status, host
    finally:
        s.stop()
    k = Server(env={"KONER_API_KEY": "s3cret-key"})  # a key: a rebinding page cannot send it, no Host check
    try:
        r = k.post("/v1/ner", {"text": "서울역으로 안내해줘."}, headers={**k.headers, "Host": "rebind.example"})
        assert r.status_code == 200
    finally:
        k.stop()


@pytest.mark.parametrize("args,needle", [
    (["--allowed-hosts", " , "], "--allowed-hosts needs at least one"),
    (["--allowed-hosts", "http://x/"], "is not a host name"),
    (["--max-connections", "0"], "--max-connections"),
    (["--read-timeout", "0"], "--read-timeout"),
])
def test_bad_connection_and_host_options_are_one_line(args, needle):
    out = subprocess.run([sys.executable, "-m", "koner.cli", "serve", "--port", "0", *args], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2 and needle in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_more_connections_than_the_open_file_limit_allows_are_refused_at_start():
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (300, 300))

    out = subprocess.run([sys.executable, "-m", "koner.cli", "serve", "--port", "0", "--max-connections", "256"],
                         capture_output=True, text=True, timeout=120, preexec_fn=limit)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "--max-connections 256 needs 384 open files" in out.stderr and "ulimit -n" in out.stderr


# ---------------------------------------------------------------- connection limits


@pytest.fixture(scope="module")
def strict():
    """A server with small connection limits, so the tests reach them quickly."""
    s = Server("--max-header-bytes", "4096", "--read-timeout", "1")
    yield s
    s.stop()
    assert "Traceback" not in s.log()


@pytest.mark.parametrize("finished", [False, True])
def test_a_head_over_the_limit_is_answered_431_and_closed(strict, finished):
    head = b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: " + b"a" * (1 << 20)  # 1 MiB of one header
    try:
        sock = _raw(_port(strict), head + (b"\r\n\r\n" if finished else b""))
    except (BrokenPipeError, ConnectionResetError):  # the server answered and shut its side mid-send
        pytest.fail("the server closed before the client could read its answer")
    assert _error_code(_answer(sock)) == (431, "header_too_large")
    ok = httpx.get(strict.url + "/readyz", headers={"X-Filler": "a" * 3000})  # under the limit: answered
    assert ok.status_code == 200
    assert strict.metric("koner_connections_closed_total", '{reason="header_too_large"}') >= 1


@pytest.mark.parametrize("extra", ["trailer", "chunk extension"])
def test_chunk_framing_and_trailers_are_bounded_like_the_head(strict, extra):
    """A chunked body's trailers and extensions are headers by another name: 64 MB of them once held 77 MB of
    the server's memory per connection until the read timeout."""
    head = (b"POST /v1/ner HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    body = b'{"text": "\xec\x84\x9c\xec\x9a\xb8"}'
    if extra == "trailer":
        start = head + b"%x\r\n" % len(body) + body + b"\r\n0\r\nX-Trailer: "
    else:
        start = head + b"%x;ext=" % len(body)
    sock = _raw(_port(strict), start)
    for _ in range(64):  # up to 4 MiB, 64 KiB at a time, never finished: only a bound answers it with 431
        try:
            sock.sendall(b"a" * (64 << 10))
        except (BrokenPipeError, ConnectionResetError):  # answered and closed mid-send
            break
    assert _error_code(_answer(sock)) == (431, "header_too_large")
    ok = httpx.post(strict.url + "/v1/ner", content=iter([body]), headers={"Content-Type": "application/json"})
    assert ok.status_code == 200  # an ordinary chunked body is answered


@pytest.mark.parametrize("what", ["nothing", "a trickled header", "a trickled body"])
def test_a_request_not_sent_in_time_is_answered_408_and_closed(strict, what):
    sock = _raw(_port(strict))
    if what == "a trickled header":
        sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    elif what == "a trickled body":
        sock.sendall(b"POST /v1/ner HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"text\": \"")
    closed = False
    for _ in range(300):  # a byte every 0.1 s, up to 30 s: the server must close well before
        if what == "nothing":
            break
        try:
            sock.sendall(b"a")
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        ready, _, _ = select.select([sock], [], [], 0.1)
        if ready:
            break
    answer = _answer(sock)
    assert answer is not None, "the connection was still open after 30 s"
    if what == "nothing":
        assert answer == b""  # nothing asked, nothing answered: just closed
    else:
        assert _error_code(answer) == (408, "read_timeout"), (closed, answer)
    assert strict.metric("koner_connections_closed_total", '{reason="read_timeout"}') >= 1
    if what == "a trickled body":  # the application saw the body cut short: 408 in its log, no traceback
        wait_until(lambda: '"route": "/v1/ner", "status": 408' in strict.log(), "the 408 in the access log")


def test_keep_alive_requests_are_not_cut_by_the_read_timeout(strict):
    with httpx.Client(base_url=strict.url, timeout=30) as c:
        for text in TEXTS[:3]:
            assert c.post("/v1/ner", json={"text": text}).status_code == 200
        assert c.post("/v1/ner", json={"text": LONG[:3000]}).status_code == 200


def test_connections_beyond_the_limit_get_503_and_the_server_keeps_its_files():
    """More idle connections than the process may open files: the ones beyond --max-connections are answered 503
    and closed, the idle ones time out, and a normal client is served (the original server ran out of files)."""
    s = Server("--max-connections", "64", "--read-timeout", "3", "--workers", "1", open_files=256)
    idle = []
    try:
        for _ in range(400):
            idle.append(_raw(_port(s), timeout=60))
        # the server closes every one: beyond the limit with a 503 at once, the others after the read timeout
        answers = _answers(idle)
        refused = [a for a in answers if a]
        assert refused and all(_error_code(a) == (503, "too_many_connections") for a in refused)
        assert all(b"\r\nretry-after: 1\r\n" in a for a in refused)
        ok = s.post("/v1/ner", {"text": TEXTS[0]})
        assert ok.status_code == 200 and ok.json()["entities"][0]["word"] == "아이유"
        assert s.metric("koner_connections_closed_total", '{reason="max_connections"}') == len(refused)
        assert s.metric("koner_connections_closed_total", '{reason="read_timeout"}') == 400 - len(refused)
        assert "Traceback" not in s.log() and "Too many open files" not in s.log()
    finally:
        for sock in idle:
            sock.close()
        s.stop()


def test_check_at_start_is_reported_by_readyz():
    """`koner serve --check`: the bundled model's files verified and its check set answered on this CPU."""
    from koner.cpu import int8_path

    s = Server("--check")
    try:
        ready = s.client.get("/readyz").json()
        assert ready["status"] == "ready" and ready["int8_path"] == int8_path()
        check = ready["check"]
        assert check["passed"] is True and check["exit_code"] == 0 and check["damaged"] == []
        assert check["files_verified"] == check["files_checked"] >= 4 and check["check_set"] is True
        assert check["sentences"] == 40 and check["new_decisive_flips"] == 0
        assert "check: result: ok" in s.log()
    finally:
        s.stop()


def test_check_at_start_with_a_decisive_flip_keeps_the_server_out_of_rotation(model_copy):
    from support.checkset import decisive_flip, edit_check_set

    edit_check_set(model_copy, decisive_flip)
    s = Server("--model", str(model_copy), "--check", ready=False)
    try:
        wait_until(lambda: s.client.get("/readyz").json().get("error", {}).get("code") == "check_failed",
                   "check_failed", 120)
        body = s.client.get("/readyz").json()
        assert body["check"]["passed"] is False and body["check"]["new_decisive_flips"] == 1
        assert s.post("/v1/ner", {"text": "서울역으로 안내해줘."}).status_code == 200  # direct clients still served
        assert "Traceback" not in s.log()
    finally:
        s.stop()


def test_check_at_start_does_not_serve_a_damaged_folder(model_copy):
    data = model_copy / "model.onnx.data"
    damaged = bytearray(data.read_bytes())
    damaged[len(damaged) // 2] ^= 1  # one bit
    data.write_bytes(bytes(damaged))
    s = Server("--model", str(model_copy), "--check", ready=False)
    try:
        wait_until(lambda: s.client.get("/readyz").json().get("error", {}).get("code") == "model_failed",
                   "model_failed", 120)
        body = s.client.get("/readyz").json()
        assert "model.onnx.data" in body["error"]["message"] and body["check"]["exit_code"] == 2
        assert any("model.onnx.data" in d for d in body["check"]["damaged"])
        assert s.post("/v1/ner", {"text": "서울"}).json()["error"]["code"] == "model_failed"
        assert "Traceback" not in s.log()
    finally:
        s.stop()
