"""GET /openapi.json describes `koner serve` as it is: schemathesis generates requests from it against the real
server process, and every answer must have a documented status and a body matching its schema."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("schemathesis")
pytest.importorskip("uvicorn")

from serve_process import Server  # noqa: E402

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance," \
         "response_headers_conformance"


def test_the_document_has_every_route_and_the_servers_limits():
    s = Server("--max-texts", "8", "--max-chars", "5000", "--timeout", "7")
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
        assert set(responses) == {"200", "400", "413", "415", "422", "503", "504"}
        assert "7 s" in responses["504"]["description"]
    finally:
        s.stop()


def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path):
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    s = Server()
    try:
        out = subprocess.run([exe, "run", s.url + "/openapi.json", "--checks", CHECKS, "--phases", "coverage,fuzzing",
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
    assert generated == passed >= 1000 and "No issues found" in out.stdout
    assert "ERROR" not in s.lines and not any("internal error" in line for line in s.lines)
