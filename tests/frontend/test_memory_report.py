"""``Max Memory Used`` in the REPORT line is each invocation's own peak, on a warm sandbox too.

The worker keeps the sandbox's ``/proc`` files open between invocations and resets the peak before
each one; a big invocation must show its peak, and the small one after it on the same sandbox must not
inherit it.
"""

from __future__ import annotations

import base64
import json
import re

from mypy_boto3_lambda import LambdaClient

from tests.frontend.harness import ROLE, make_zip

CODE = make_zip(
    {
        "app.py": """
import os

SANDBOX = os.urandom(8).hex()

def handler(event, context):
    block = bytearray(event["mb"] * 1024 * 1024)
    for i in range(0, len(block), 4096):  # touch every page: resident, so it counts
        block[i] = 1
    return {"sandbox": SANDBOX}
"""
    }
)


def _peak_mb(lam: LambdaClient, mb: int) -> tuple[int, str]:
    answer = lam.invoke(FunctionName="memory", Payload=json.dumps({"mb": mb}).encode(), LogType="Tail")
    sandbox = json.loads(answer["Payload"].read())["sandbox"]
    log = base64.b64decode(answer["LogResult"]).decode()
    match = re.search(r"Max Memory Used: (\d+) MB", log)
    assert match is not None, log
    return int(match.group(1)), sandbox


def test_each_invocation_reports_its_own_peak(lam: LambdaClient) -> None:
    lam.create_function(
        FunctionName="memory",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": CODE},
        MemorySize=512,
        Timeout=10,
    )
    small_before, first = _peak_mb(lam, 0)
    big, second = _peak_mb(lam, 200)
    small_after, third = _peak_mb(lam, 0)
    assert first == second == third  # one warm sandbox throughout
    assert big >= small_before + 150
    assert small_after < big - 150  # the peak was reset: the big invocation's peak is not inherited
