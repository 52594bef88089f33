"""GET /openapi.json describes `koner serve` as it is: schemathesis generates requests from it against the real
server process and runs all its checks: every answer must have a documented status and a body matching its schema,
valid requests are answered, invalid ones refused."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

from support.extras import needs

needs("schemathesis")
needs("uvicorn")

from support.serve_process import Server  # noqa: E402

# schemathesis's statuses that mean "refused" (its defaults) and "answered" (its defaults), plus 413: koner answers
# 413 for more texts than `maxItems`, a text over `maxLength` and, for valid texts, more characters or body bytes
# together than the limits (which a JSON schema cannot say); the document's 413 says so
CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "413", "429", "5xx"]
"""


def test_the_document_has_every_route_and_the_servers_limits():
    s = Server("--max-texts", "8", "--max-chars", "5000", "--timeout", "7", "--read-timeout", "4",
               "--max-header-bytes", "9000", "--max-connections", "33")
    try:
        doc = s.client.get("/openapi.json").json()
        assert doc["openapi"].startswith("3.1")
        ops = {(path, method) for path, item in doc["paths"].items() for method in item}
        assert ops == {("/v1/ner", "post"), ("/", "post"), ("/", "get"), ("/healthz", "get"), ("/readyz", "get"),
                       ("/metrics", "get"), ("/openapi.json", "get"), ("/ui.js", "get"), ("/ui.css", "get")}
        body = doc["paths"]["/v1/ner"]["post"]["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
        assert body[1]["properties"]["texts"]["oneOf"][0]["maxItems"] == 8
        assert body[0]["properties"]["text"]["maxLength"] == 5000
        responses = doc["paths"]["/v1/ner"]["post"]["responses"]
        # a key-less server on 127.0.0.1 checks the Host header (421); every route can get the connection's answers
        assert set(responses) == {"200", "400", "408", "413", "415", "421", "422", "431", "503", "504"}
        assert "7 s" in responses["504"]["description"] and "maxItems" in responses["413"]["description"]
        for path, item in doc["paths"].items():
            for method, op in item.items():
                assert {"400", "408", "431", "503"} <= set(op["responses"]), (path, method)
                assert ("421" in op["responses"]) == (path != "/healthz"), (path, method)
                assert "4 s" in op["responses"]["408"]["description"]
                assert "9,000 bytes" in op["responses"]["431"]["description"]
                assert "33 connections" in op["responses"]["503"]["description"]
    finally:
        s.stop()


def test_the_connections_answers_match_the_document():
    """The answers the connection writes itself (431, 408, 400, 503) have the documented JSON error body."""
    import json
    import socket

    import jsonschema

    s = Server("--max-header-bytes", "2048", "--read-timeout", "1", "--max-connections", "2")
    try:
        doc = s.client.get("/openapi.json").json()
        schema = doc["components"]["schemas"]["Error"]
        port = int(s.url.rsplit(":", 1)[1])

        def answer(data, hold=()):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(data)
                out = b""
                while chunk := sock.recv(65536):
                    out += chunk
            head, _, body = out.partition(b"\r\n\r\n")
            status = int(head.split()[1])
            assert status in {int(k) for k in doc["paths"]["/readyz"]["get"]["responses"]}
            assert b"content-type: application/json" in head.lower()
            jsonschema.validate(json.loads(body), schema)
            return status

        assert answer(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nX: " + b"a" * 5000 + b"\r\n\r\n") == 431
        assert answer(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nX: a") == 408
        assert answer(b"GET /readyz HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n") == 400  # not HTTP: a header without ':'
        s.client.close()  # the test client's keep-alive connection must not count against the limit of 2
        with socket.create_connection(("127.0.0.1", port)), socket.create_connection(("127.0.0.1", port)):
            assert answer(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") == 503
    finally:
        s.stop()


def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path):
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    (tmp_path / "schemathesis.toml").write_text(CONFIG, "utf-8")
    s = Server()
    try:
        out = subprocess.run([exe, "--config-file", str(tmp_path / "schemathesis.toml"), "run",
                              s.url + "/openapi.json", "--checks", "all", "--phases", "coverage,fuzzing",
                              "--max-examples", "40", "--max-time", "60", "--request-timeout", "30", "--seed", "7",
                              "--workers", "1", "--no-color"], capture_output=True, text=True, timeout=300,
                             cwd=tmp_path)
    finally:
        s.stop()
    tail = out.stdout[-3000:]
    assert out.returncode == 0, tail
    m = re.search(r"(\d+) generated, (\d+) passed", out.stdout)
    assert m, tail
    generated, passed = int(m.group(1)), int(m.group(2))
    print(f"\nschemathesis: {generated} requests generated, {passed} passed")
    # time-bound (--max-time): about 1,000 on a quiet 2-core machine, 390 under load 20; 200 still reaches every route
    assert generated == passed >= 200 and "No issues found" in out.stdout
    assert "ERROR" not in s.lines and not any("internal error" in line for line in s.lines)
    assert "Traceback" not in s.log()
