"""What each kind of caller may do: admin keys everything; function sessions invoke functions and use the
account's queues (send, receive, delete, change visibility, find a queue and read its attributes).

Actions are named as IAM names them (``lambda:InvokeFunction``, ``lambda:GetFunction``, …), found from
botocore's Lambda service model: each operation's HTTP method and request URI, matched against the
route's template, so a new route of the API gets its AWS action name without a table kept here (the
schedule routes' ``scheduler:<Operation>`` from botocore's Scheduler model, the same way). A route
the model does not know (the admin routes ``/_leasehold/v1/...``) is ``leasehold:<Route>``. An SQS
request's action is ``sqs:<Operation>`` (the ``X-Amz-Target``). Refusals are
``AccessDeniedException`` in AWS's words, naming the caller's ARN, the action and the resource.

Example::

    policy = Policy(account="000000000000", region="us-east-1")
    policy.authorize(identity, "GET", "/2015-03-31/functions/{name}", {"name": "resize"})
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

import botocore.session

from assignment.frontend.auth.resolver import Identity
from assignment.frontend.types import AccessDeniedException

__all__ = ["SESSION_ACTIONS", "Policy", "action_of"]

#: What a function's session may do: as on AWS with an execution role allowed to invoke functions and to
#: produce and consume the account's queues (Leasehold has no IAM roles to say more); never manage them.
SESSION_ACTIONS = frozenset(
    {
        "lambda:InvokeFunction",
        "lambda:InvokeAsync",
        "sqs:SendMessage",
        "sqs:SendMessageBatch",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:DeleteMessageBatch",
        "sqs:ChangeMessageVisibility",
        "sqs:ChangeMessageVisibilityBatch",
        "sqs:GetQueueUrl",
        "sqs:GetQueueAttributes",
    }
)
#: Operations whose IAM action has another name.
_ACTION_NAMES = {"Invoke": "lambda:InvokeFunction"}
_PLACEHOLDER = re.compile(r"\{[^}]+\}")


def _shape(path: str) -> str:
    """A route template without its names: ``/2015-03-31/functions/{}/invocations``."""
    return _PLACEHOLDER.sub("{}", path.split("?", 1)[0]).rstrip("/") or "/"


@functools.cache
def _operations() -> dict[tuple[str, str], str]:
    """(method, route shape) → IAM action, from botocore's Lambda and Scheduler models (loaded once)."""
    session = botocore.session.get_session()
    found: dict[tuple[str, str], str] = {}
    for service in ("lambda", "scheduler"):
        model = session.get_service_model(service)
        for name in model.operation_names:
            http = model.operation_model(name).http
            action = _ACTION_NAMES.get(name, f"{service}:{name}")
            found.setdefault((http["method"], _shape(http["requestUri"])), action)
    return found


def action_of(method: str, route: str) -> str:
    """The IAM action of a request to the aiohttp route template ``route``."""
    action = _operations().get((method, _shape(route)))
    if action is not None:
        return action
    words = [part for part in route.split("/") if part and not part.startswith("{")]
    return "leasehold:" + "".join(word.capitalize() for word in words[2:] or words)


class Policy:
    """The authorisation rule of one frontend."""

    def __init__(self, *, account: str, region: str) -> None:
        self.account = account
        self.region = region

    def authorize(self, identity: Identity, method: str, route: str, match: Mapping[str, str]) -> None:
        """Nothing for an allowed request; ``AccessDeniedException`` otherwise."""
        self._allow(identity, action_of(method, route), self._resource(match))

    def authorize_sqs(self, identity: Identity, operation: str) -> None:
        """:meth:`authorize` for an SQS request of ``operation`` (its queue is in the body, unread here:
        no session action depends on which queue)."""
        self._allow(identity, f"sqs:{operation[:64]}", f"arn:aws:sqs:{self.region}:{self.account}:*")

    def _allow(self, identity: Identity, action: str, resource: str) -> None:
        if identity.kind == "admin" or action in SESSION_ACTIONS:
            return
        raise AccessDeniedException(
            f"User: {identity.arn} is not authorized to perform: {action} on resource: {resource} "
            f"because no identity-based policy allows the {action} action"
        )

    def _resource(self, match: Mapping[str, str]) -> str:
        if "Name" in match:  # a schedule (only the default group exists)
            return f"arn:aws:scheduler:{self.region}:{self.account}:schedule/default/{match['Name']}"
        name = match.get("name") or match.get("resource")  # a function's name or ARN; a tagged ARN
        if not name:
            return f"arn:aws:lambda:{self.region}:{self.account}:function:*"
        if name.startswith("arn:"):
            return name
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"
