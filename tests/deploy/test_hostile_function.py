"""A hostile function on the cluster (the compose topology as local processes): it reaches no platform
port from its sandbox, only the allow-listed Lambda endpoint, and there only with its own credentials.
"""

from __future__ import annotations

import json
import urllib.parse

import pytest

from tests.harness.hostile import REFUSED, deploy
from tests.harness.lambda_clients import lambda_client
from tests.harness.platform import Platform

pytestmark = pytest.mark.slow


def test_a_hostile_function_reaches_only_the_lambda_api_and_only_with_its_credentials(platform: Platform) -> None:
    client = lambda_client(platform.endpoint)
    deploy(client, "hostile-target")
    targets = {
        f"{service.name}:{container}": f"127.0.0.1:{local}"
        for service in platform.services.values()
        for container, local in service.ports.items()
    }
    targets["zookeeper"] = platform.zk.hosts.split(",")[0]
    database = urllib.parse.urlsplit(platform.postgres.url)
    targets["postgres"] = f"{database.hostname}:{database.port or 5432}"
    event = {"connect": targets, "endpoint": platform.endpoint, "invoke": "hostile-target"}
    answer = client.invoke(FunctionName="hostile", Payload=json.dumps(event).encode())
    assert "FunctionError" not in answer, answer
    out = json.loads(answer["Payload"].read())
    reached = out["connect"]
    lambda_api = "frontend:9000"
    assert reached[lambda_api].startswith("HTTP/"), reached  # forwarded: the workers allow-list it
    for name, result in reached.items():
        if name != lambda_api:
            assert result in REFUSED, (name, result)
    assert out["unsigned"] in ("MissingAuthenticationTokenException", "IncompleteSignatureException"), out
    assert out["forged"] == "UnrecognizedClientException"
    assert out["own"]["invoke"] == {"echo": {"from": "hostile"}}
    for call in ("list_functions", "get_function", "create_function"):
        assert out["own"][call] == "AccessDeniedException", (call, out["own"])
