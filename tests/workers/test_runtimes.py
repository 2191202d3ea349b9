"""The other runtimes: a custom ``bootstrap`` in shell with curl, and AWS's ``awslambdaric`` unmodified."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from journal.v1 import records_pb2
from tests.workers.harness import AgentProcess, create, invoke
from workers.v1 import worker_pb2

SHELL_BOOTSTRAP = r"""#!/bin/sh
set -eu
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
echo "shell runtime init, handler=${_HANDLER}"
HEADERS="$(mktemp)"
while true; do
  EVENT="$(curl -sS -D "$HEADERS" "$API/invocation/next")"
  REQUEST_ID="$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$HEADERS" | cut -d: -f2 | tr -d '[:space:]')"
  echo "handling $REQUEST_ID"
  case "$EVENT" in
    *fail*)
      curl -sS -o /dev/null -X POST -H "Lambda-Runtime-Function-Error-Type: Unhandled" \
        "$API/invocation/$REQUEST_ID/error" \
        -d '{"errorMessage": "asked to fail", "errorType": "ShellError", "stackTrace": ["bootstrap"]}' ;;
    *)
      curl -sS -o /dev/null -X POST "$API/invocation/$REQUEST_ID/response" -d "{\"echo\": $EVENT}" ;;
  esac
done
"""


def _package(root: Path, bootstrap: str, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True)
    (root / "bootstrap").write_text(bootstrap)
    (root / "bootstrap").chmod(0o755)
    for name, text in (files or {}).items():
        (root / name).write_text(text)
    return root


def test_custom_runtime_in_shell_with_curl(agent: AgentProcess, tmp_path: Path) -> None:
    code = _package(tmp_path / "fn", SHELL_BOOTSTRAP)
    created = create(agent.stub, "shell-1", code, handler="function.handler", runtime="provided")
    assert not created.HasField("init_error")
    assert "shell runtime init, handler=function.handler" in created.init_logs
    for n in range(3):
        response = invoke(agent.stub, "shell-1", json.dumps({"n": n}).encode(), request_id=f"sh-{n}")
        assert response.outcome == records_pb2.OUTCOME_OK
        assert json.loads(response.payload) == {"echo": {"n": n}}
        assert f"handling sh-{n}" in response.logs
    failed = invoke(agent.stub, "shell-1", b'{"please": "fail"}')
    assert failed.outcome == records_pb2.OUTCOME_FUNCTION_ERROR
    assert (failed.function_error.error_type, failed.function_error.error_message) == ("ShellError", "asked to fail")
    assert list(failed.function_error.stack_trace) == ["bootstrap"]
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="shell-1"))


def test_custom_runtime_that_exits_during_init(agent: AgentProcess, tmp_path: Path) -> None:
    code = _package(tmp_path / "fn", "#!/bin/sh\necho broken >&2\nexit 4\n")
    created = create(agent.stub, "shell-2", code, runtime="provided")
    assert created.init_error.error_type == "Runtime.ExitError"
    assert "exit status 4" in created.init_error.error_message
    assert "broken" in created.init_logs
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="shell-2"))


@pytest.mark.slow
def test_awslambdaric_runs_unmodified(agent: AgentProcess, tmp_path: Path) -> None:
    code = _package(
        tmp_path / "fn",
        '#!/bin/sh\nexec python -m awslambdaric "$_HANDLER"\n',
        {
            "app.py": (
                "import logging\n"
                "def handler(event, context):\n"
                "    print('ric says hi')\n"
                "    if event.get('fail'):\n"
                "        raise ValueError('ric failure')\n"
                "    return {'got': event, 'id': context.aws_request_id,\n"
                "            'left': context.get_remaining_time_in_millis() > 0}\n"
            )
        },
    )
    created = create(agent.stub, "ric-1", code, handler="app.handler", runtime="provided", memory_mb=512)
    assert not created.HasField("init_error"), created
    response = invoke(agent.stub, "ric-1", b'{"a": 1}', request_id="ric-req-1")
    assert response.outcome == records_pb2.OUTCOME_OK, response
    assert json.loads(response.payload) == {"got": {"a": 1}, "id": "ric-req-1", "left": True}
    assert "ric says hi" in response.logs
    failed = invoke(agent.stub, "ric-1", b'{"fail": true}')
    assert failed.outcome == records_pb2.OUTCOME_FUNCTION_ERROR
    assert failed.function_error.error_type == "ValueError"
    assert failed.function_error.error_message == "ric failure"
    assert invoke(agent.stub, "ric-1", b'{"a": 2}').outcome == records_pb2.OUTCOME_OK
    agent.stub.DestroySandbox(worker_pb2.DestroySandboxRequest(sandbox_id="ric-1"))
