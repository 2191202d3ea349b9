"""SnapStart through the Lambda API on the embedded platform: it applies to published versions only, as on
AWS — ``$LATEST`` initialises (``Init Duration``), a published version restores (``Restore Duration``)."""

from __future__ import annotations

import base64

from mypy_boto3_lambda import LambdaClient

from tests.frontend.harness import ROLE, make_zip

CODE = make_zip({"app.py": "def handler(e, c):\n    return c.function_version\n"})


def report(lam: LambdaClient, qualifier: str) -> str:
    answer = lam.invoke(FunctionName="snap", Qualifier=qualifier, Payload=b"{}", LogType="Tail")
    lines = base64.b64decode(answer["LogResult"]).decode().splitlines()
    return next(line for line in lines if line.startswith("REPORT "))


def test_snapstart_restores_published_versions_and_not_latest(lam: LambdaClient) -> None:
    created = lam.create_function(
        FunctionName="snap",
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": CODE},
        SnapStart={"ApplyOn": "PublishedVersions"},
    )
    assert created["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "Off"}
    latest = report(lam, "$LATEST")
    assert "Init Duration" in latest
    assert "Restore Duration" not in latest
    published = lam.publish_version(FunctionName="snap")
    assert published["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}
    first = report(lam, published["Version"])
    assert "Restore Duration" in first
    assert "Init Duration" not in first
