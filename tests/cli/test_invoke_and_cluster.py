"""``leasehold invoke``, ``status``, ``logs`` and ``dlq list`` against the fake frontend.

Rerun against the real frontend once it lands: every test here except the hostile-server ones
(``admin`` overrides), which only a fake can play.
"""

from __future__ import annotations

import base64
import json
import zipfile
from pathlib import Path

import pytest

from assignment.commands.invoke import _decode_log
from tests.cli.conftest import Run
from tests.cli.fake_frontend import FakeFrontend, Recorded


@pytest.fixture
def functions(cli: Run, tmp_path: Path) -> None:
    path = tmp_path / "f.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("echo.py", "def handler(e, c): return e\n")
    for name, handler in (("echo", "echo.handler"), ("fail", "fail.handler")):
        assert cli("function", "create", name, "--zip", str(path), "--handler", handler).code == 0


def _invocations(fake: FakeFrontend) -> list[Recorded]:
    return [r for r in fake.requests if r.path.endswith("/invocations")]


@pytest.mark.usefixtures("functions")
def test_invoke_prints_the_payload_and_sends_json(cli: Run, fake: FakeFrontend, tmp_path: Path) -> None:
    result = cli("invoke", "echo", "--payload", '{"width": 64}')
    assert (result.code, result.out, result.err) == (0, '{"width": 64}\n', "")
    event = tmp_path / "event.json"
    event.write_text('{"from": "file"}')
    assert cli("invoke", "echo", "--payload", f"@{event}").out == '{"from": "file"}\n'
    assert cli("invoke", "echo").out == "{}\n"
    sent = _invocations(fake)[-1]
    assert sent.headers["X-Amz-Invocation-Type"] == "RequestResponse"
    assert "X-Amz-Log-Type" not in sent.headers


@pytest.mark.usefixtures("functions")
def test_invoke_log_goes_to_stderr_and_json_has_it(cli: Run, fake: FakeFrontend) -> None:
    result = cli("invoke", "echo", "--payload", "[1]", "--log", "--qualifier", "$LATEST")
    assert result.code == 0
    assert result.out == "[1]\n"
    assert result.err.startswith("START RequestId: ")
    assert "hello from echo" in result.err
    assert _invocations(fake)[-1].query == {"Qualifier": "$LATEST"}
    doc = json.loads(cli("invoke", "echo", "--payload", "[1]", "--log", "--json").out)
    assert doc["Payload"] == [1]
    assert doc["StatusCode"] == 200
    assert doc["Log"].startswith("START")


@pytest.mark.usefixtures("functions")
def test_a_function_error_prints_the_error_document_and_exits_1(cli: Run) -> None:
    result = cli("invoke", "fail")
    assert result.code == 1
    assert json.loads(result.out)["errorMessage"] == "boom"
    doc = json.loads(cli("invoke", "fail", "--json").out)
    assert doc["FunctionError"] == "Unhandled"


@pytest.mark.usefixtures("functions")
def test_async_invoke_is_queued(cli: Run, fake: FakeFrontend) -> None:
    result = cli("invoke", "echo", "--async", "--payload", '{"a": 1}')
    assert result.code == 0
    assert result.out.startswith("queued echo (status 202, request id ")
    assert _invocations(fake)[-1].headers["X-Amz-Invocation-Type"] == "Event"
    doc = json.loads(cli("invoke", "echo", "--async", "--json").out)
    assert doc["StatusCode"] == 202
    assert doc["RequestId"]


@pytest.mark.usefixtures("functions")
def test_bad_payloads_are_refused_before_sending(cli: Run, fake: FakeFrontend, tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_text('"' + "x" * (6 * 1024 * 1024) + '"')
    medium = tmp_path / "medium.json"
    medium.write_text('"' + "x" * (1024 * 1024) + '"')
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe{}")
    before = len(_invocations(fake))
    for argv, expected in (
        (["--payload", "{not json"], "InvalidRequestContentException"),
        (["--payload", ""], "InvalidRequestContentException"),
        (["--payload", f"@{binary}"], "InvalidRequestContentException"),
        (["--payload", f"@{tmp_path / 'missing.json'}"], "InvalidRequestContentException"),
        (["--payload", "@/dev/zero"], "InvalidRequestContentException"),
        (["--payload", f"@{tmp_path}"], "InvalidRequestContentException"),
        (["--payload", f"@{big}"], "RequestTooLargeException"),
        (["--payload", f"@{medium}", "--async"], "RequestTooLargeException"),
    ):
        result = cli("invoke", "echo", *argv)
        assert result.code == 2, argv
        assert result.err.startswith(f"error: {expected}: "), (argv, result.err)
        assert result.err.count("\n") == 1, (argv, result.err)
    assert len(_invocations(fake)) == before


@pytest.mark.usefixtures("functions")
def test_a_payload_just_under_the_sync_limit_is_sent(cli: Run, fake: FakeFrontend, tmp_path: Path) -> None:
    payload = tmp_path / "p.json"
    payload.write_text('"' + "y" * (6 * 1024 * 1024 - 2) + '"')
    result = cli("invoke", "echo", "--payload", f"@{payload}")
    assert result.code == 0
    assert len(result.out) == 6 * 1024 * 1024 + 1


def test_invoke_errors(cli: Run) -> None:
    result = cli("invoke", "ghost")
    assert (result.code, result.err) == (2, "error: ResourceNotFoundException: Function not found: ghost\n")
    result = cli("invoke", "ghost", endpoint="http://127.0.0.1:1")
    assert result.code == 2
    assert result.err.startswith("error: EndpointConnectionError: ")


def test_status_table_and_json(cli: Run) -> None:
    result = cli("status")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "partitions: 4"
    assert lines[1].split() == ["PARTITION", "LEADER", "ADDRESS"]
    assert lines[2].split() == ["0", "server1", "server1:7100"]
    assert "workers: 1" in lines
    assert "async event queue depth: 3" in lines
    assert "queues: 0" in lines
    assert "event source mappings: 0" in lines
    assert any(line.split()[:2] == ["worker1", "worker1:7001"] for line in lines)
    assert any(line.split() == ["echo", "$LATEST", "1"] for line in lines)
    doc = json.loads(cli("status", "--json").out)
    assert doc["queue_depth"] == 3
    assert len(doc["partitions"]) == 4


@pytest.mark.usefixtures("functions")
def test_logs_and_dlq(cli: Run, fake: FakeFrontend) -> None:
    result = cli("logs", "echo", "--limit", "2")
    assert result.code == 0
    assert result.out.splitlines() == [
        "START RequestId: r0 Version: $LATEST", "END RequestId: r0",
        "START RequestId: r1 Version: $LATEST", "END RequestId: r1",
    ]  # fmt: skip
    assert fake.requests[-1].query == {"limit": "2"}
    assert len(json.loads(cli("logs", "echo", "--json").out)["events"]) == 3
    result = cli("dlq", "list", "echo")
    assert result.code == 0
    header, row = result.out.splitlines()
    assert header.split() == ["REQUEST_ID", "QUALIFIER", "ERROR", "ATTEMPTS", "TIME", "MESSAGE"]
    assert row.split()[:5] == ["r9", "$LATEST", "RuntimeError", "3", "2023-11-14T22:13:20.000Z"]
    assert row.endswith("…")
    assert len(row) < 200
    assert json.loads(cli("dlq", "list", "echo", "--json").out)["items"][0]["attempts"] == 3


def test_admin_errors_and_hostile_names(cli: Run, fake: FakeFrontend) -> None:
    result = cli("logs", "ghost")
    assert (result.code, result.err) == (2, "error: ResourceNotFoundException: Function not found: ghost\n")
    result = cli("dlq", "list", "../status")
    assert result.code == 2
    assert fake.requests[-1].path == "/_leasehold/v1/dlq/..%2Fstatus"
    cli("logs", "a b?c=d#e\n")
    assert fake.requests[-1].path == "/_leasehold/v1/logs/a%20b%3Fc%3Dd%23e%0A"
    for limit in ("0", "-1", "10001", "many"):
        result = cli("logs", "echo", "--limit", limit)
        assert result.code == 2
        assert "usage:" in result.err


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected"),
    [
        (500, {}, b"<html>oops</html>", "error: ServiceException: HTTP 500 Internal Server Error\n"),
        (429, {"x-amzn-ErrorType": "TooManyRequestsException:detail"}, b'{"message": "slow down"}',
         "error: TooManyRequestsException: slow down\n"),
        (200, {}, b"not json", None),
        (200, {}, b"[1, 2]", None),
        (200, {}, b'{"partitions": "nope"}', None),
        (200, {}, b'{"partitions": [1]}', None),
        (200, {}, b'{"workers": [{"worker_id": "w\\n\\u001b[31mred"}]}', "ok"),
    ],
)  # fmt: skip
def test_a_hostile_or_broken_status_answer_is_one_error_line(
    cli: Run, fake: FakeFrontend, status: int, headers: dict[str, str], body: bytes, expected: str | None
) -> None:
    fake.admin["/_leasehold/v1/status"] = (status, headers, body)
    result = cli("status")
    if expected == "ok":
        assert result.code == 0, result.err
        assert "\x1b" not in result.out  # a hostile answer cannot drive the terminal
        assert any(line.startswith("w ?[31mred") for line in result.out.splitlines())
        return
    assert result.code == 2
    if expected is None:
        assert result.err.startswith("error: ServiceException: ")
        assert result.err.count("\n") == 1
    else:
        assert result.err == expected


def test_an_oversized_admin_answer_is_refused(cli: Run, fake: FakeFrontend) -> None:
    fake.admin["/_leasehold/v1/status"] = (200, {}, b"[" + b"0," * (8 * 1024 * 1024 + 1) + b"0]")
    result = cli("status")
    assert result.code == 2
    assert result.err.startswith("error: ServiceException: ")
    assert "larger than" in result.err


def test_log_result_that_is_not_base64_is_shown_as_such() -> None:
    assert _decode_log(base64.b64encode(b"line\n").decode()) == "line\n"
    assert _decode_log("%%%").startswith("(undecodable log result")


@pytest.mark.parametrize(
    "endpoint", ["http://[::1", "ftp://127.0.0.1/", "file:///etc/passwd", "nonsense", "http://127.0.0.1:1"]
)
def test_bad_endpoints_for_the_admin_commands(cli: Run, endpoint: str) -> None:
    result = cli("status", endpoint=endpoint)
    assert result.code == 2
    assert result.err.startswith(("error: InvalidEndpoint: ", "error: EndpointConnectionError: "))
    assert result.err.count("\n") == 1


@pytest.mark.parametrize("endpoint", ["http://[::1", "ftp://127.0.0.1/", "nonsense"])
def test_bad_endpoints_for_the_lambda_commands(cli: Run, endpoint: str) -> None:
    result = cli("invoke", "echo", endpoint=endpoint)
    assert result.code == 2
    assert result.err.startswith("error: ")
    assert result.err.count("\n") == 1
