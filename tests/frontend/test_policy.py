"""IAM action names from botocore's model for the frontend's routes, and who may do what."""

from __future__ import annotations

import pytest

from assignment.frontend.api import LambdaHttpApi
from assignment.frontend.auth.policy import SESSION_ACTIONS, Policy, action_of
from assignment.frontend.auth.resolver import Identity
from assignment.frontend.types import AccessDeniedException


@pytest.mark.parametrize(
    ("method", "route", "action"),
    [
        ("POST", "/2015-03-31/functions/{name}/invocations", "lambda:InvokeFunction"),
        ("GET", "/2015-03-31/functions/{name}", "lambda:GetFunction"),
        ("GET", "/2015-03-31/functions/", "lambda:ListFunctions"),
        ("POST", "/2015-03-31/functions", "lambda:CreateFunction"),
        ("PUT", "/2017-10-31/functions/{name}/concurrency", "lambda:PutFunctionConcurrency"),
        ("GET", "/_leasehold/v1/status", "leasehold:Status"),
    ],
)
def test_actions_are_named_as_iam_names_them(method: str, route: str, action: str) -> None:
    assert action_of(method, route) == action


def test_every_route_of_the_api_has_an_action_and_only_invoke_is_a_sessions() -> None:
    api = LambdaHttpApi(None, None, None)  # type: ignore[arg-type]  # only its route table is read
    app_routes = [(route.method, route.path) for resource in api.resources for route in resource.routes()]
    actions = {action_of(method, path) for method, path in app_routes}
    assert all(a.startswith(("lambda:", "leasehold:")) for a in actions)
    assert actions & SESSION_ACTIONS == {"lambda:InvokeFunction"}
    policy = Policy(account="000000000000", region="us-east-1")
    session = Identity("ASIAEXAMPLE", "s", "function", "arn:aws:sts::000000000000:assumed-role/r/f")
    admin = Identity("AKIAEXAMPLE", "s", "admin", "arn:aws:iam::000000000000:user/AKIAEXAMPLE")
    for method, path in app_routes:
        policy.authorize(admin, method, path, {"name": "f"})
        if action_of(method, path) in SESSION_ACTIONS:
            policy.authorize(session, method, path, {"name": "f"})
        else:
            with pytest.raises(AccessDeniedException, match="is not authorized to perform"):
                policy.authorize(session, method, path, {"name": "f"})
