"""LoggingConfig (AWS's advanced logging controls) end to end on the embedded platform through boto3: the
customer's ``logging.info()`` that prints nothing in Text format and is an INFO JSON record with JSON,
level filtering of application and system logs, the platform's ``platform.*`` records, JSON error records,
the log group the function sees, the configuration echoed, and bad input refused."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from mypy_boto3_lambda import LambdaClient

from tests.frontend.harness import ROLE, make_zip

HANDLER = """
import logging

log = logging.getLogger("app")

def handler(event, context):
    if event.get("raise"):
        raise ValueError("no luck")
    logging.getLogger().debug("debug line")
    logging.info("info line")
    log.warning("warning line", extra={"order": 7})
    try:
        1 / 0
    except ZeroDivisionError:
        log.exception("caught")
    print("printed line")
    return context.log_group_name
"""
CODE = make_zip({"app.py": HANDLER})


def tail(lam: LambdaClient, name: str, event: dict[str, Any] | None = None) -> tuple[Any, list[str]]:
    """The result and the log lines of one invoke."""
    answer = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(), LogType="Tail")
    lines = base64.b64decode(answer["LogResult"]).decode().splitlines()
    return json.loads(answer["Payload"].read()), lines


def records(lines: list[str]) -> list[dict[str, Any]]:
    """The lines that are JSON objects."""
    found = []
    for line in lines:
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


@pytest.fixture(scope="module")
def function(lam: LambdaClient) -> str:
    lam.create_function(
        FunctionName="logs", Runtime="python3.12", Role=ROLE, Handler="app.handler", Code={"ZipFile": CODE}
    )
    return "logs"


def test_text_is_the_default_and_logging_info_prints_nothing(lam: LambdaClient, function: str) -> None:
    config = lam.get_function_configuration(FunctionName=function)["LoggingConfig"]
    assert config == {"LogFormat": "Text", "LogGroup": "/aws/lambda/logs"}
    group, lines = tail(lam, function)
    assert group == "/aws/lambda/logs"
    text = "\n".join(lines)
    assert "info line" not in text  # Python's root level, WARNING, as on AWS with Text
    assert any(line.startswith("[WARNING]\t") and line.endswith("\twarning line") for line in lines)
    assert lines[0].startswith("START RequestId: ")
    assert any(line.startswith("REPORT RequestId: ") for line in lines)
    assert "printed line" in lines


def test_json_makes_logging_records_and_platform_records(lam: LambdaClient, function: str) -> None:
    updated = lam.update_function_configuration(FunctionName=function, LoggingConfig={"LogFormat": "JSON"})
    assert updated["LoggingConfig"] == {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "INFO",
        "SystemLogLevel": "INFO",
        "LogGroup": "/aws/lambda/logs",
    }
    _, lines = tail(lam, function)
    found = records(lines)
    kinds = [r.get("type") for r in found if "type" in r]
    assert kinds == ["platform.start", "platform.report"]
    start, report = (r for r in found if "type" in r)
    request_id = start["record"]["requestId"]
    assert start["record"]["version"] == "$LATEST"
    assert report["record"]["requestId"] == request_id
    assert report["record"]["status"] == "success"
    assert {"durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB"} <= set(report["record"]["metrics"])
    application = [r for r in found if "level" in r]
    assert [(r["level"], r["message"]) for r in application] == [
        ("INFO", "info line"),
        ("WARNING", "warning line"),
        ("ERROR", "caught"),
    ]
    info, warning, caught = application
    assert info["logger"] == "root"
    assert info["requestId"] == request_id
    assert info["timestamp"].endswith("Z")
    assert warning["logger"] == "app"
    assert warning["order"] == 7  # an extra field
    assert caught["errorType"] == "ZeroDivisionError"
    assert caught["errorMessage"] == "division by zero"
    assert caught["stackTrace"]
    assert caught["location"].endswith(":handler:15")
    assert "printed line" in lines  # print stays plain text, as on AWS
    assert not any(line.startswith(("START ", "END ", "REPORT ")) for line in lines)


def test_levels_filter_application_and_system_logs(lam: LambdaClient, function: str) -> None:
    lam.update_function_configuration(
        FunctionName=function,
        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "TRACE", "SystemLogLevel": "WARN"},
    )
    _, lines = tail(lam, function)
    found = records(lines)
    assert not [r for r in found if "type" in r]  # platform.start and report are INFO
    assert [r["message"] for r in found][:2] == ["debug line", "info line"]  # TRACE is Python's DEBUG
    lam.update_function_configuration(FunctionName=function, LoggingConfig={"ApplicationLogLevel": "ERROR"})
    config = lam.get_function_configuration(FunctionName=function)["LoggingConfig"]
    assert (config["ApplicationLogLevel"], config["SystemLogLevel"]) == ("ERROR", "WARN")  # the rest kept
    _, lines = tail(lam, function)
    assert [r["message"] for r in records(lines)] == ["caught"]


def test_an_unhandled_error_is_a_json_record(lam: LambdaClient, function: str) -> None:
    lam.update_function_configuration(
        FunctionName=function, LoggingConfig={"LogFormat": "JSON", "SystemLogLevel": "INFO"}
    )
    answer = lam.invoke(FunctionName=function, Payload=b'{"raise": true}', LogType="Tail")
    assert answer["FunctionError"] == "Unhandled"
    lines = base64.b64decode(answer["LogResult"]).decode().splitlines()
    [error] = [r for r in records(lines) if r.get("errorType") == "ValueError"]
    assert (error["level"], error["errorMessage"]) == ("ERROR", "no luck")
    report = next(r for r in records(lines) if r.get("type") == "platform.report")
    assert report["record"]["status"] == "error"


def test_a_log_group_is_what_the_function_sees_and_text_drops_the_levels(lam: LambdaClient, function: str) -> None:
    lam.update_function_configuration(FunctionName=function, LoggingConfig={"LogGroup": "/custom/group-1"})
    group, _ = tail(lam, function)
    assert group == "/custom/group-1"
    updated = lam.update_function_configuration(FunctionName=function, LoggingConfig={"LogFormat": "Text"})
    assert updated["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": "/custom/group-1"}


@pytest.mark.parametrize(
    "config",
    [
        {"LogFormat": "XML"},
        {"LogFormat": "Text", "ApplicationLogLevel": "DEBUG"},
        {"SystemLogLevel": "ERROR", "LogFormat": "JSON"},
        {"ApplicationLogLevel": "VERBOSE", "LogFormat": "JSON"},
        {"LogGroup": "has space"},
        {"LogGroup": "g" * 513},
        {"LogGroup": "ü"},
    ],
)
def test_bad_logging_configs_are_refused(lam: LambdaClient, function: str, config: dict[str, str]) -> None:
    before = lam.get_function_configuration(FunctionName=function)["LoggingConfig"]
    with pytest.raises(ClientError) as caught:
        lam.update_function_configuration(FunctionName=function, LoggingConfig=config)  # type: ignore[arg-type]
    assert caught.value.response["Error"]["Code"] in ("InvalidParameterValueException", "ValidationException")
    assert lam.get_function_configuration(FunctionName=function)["LoggingConfig"] == before
