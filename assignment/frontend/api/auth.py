"""The SigV4 middleware: every route of the HTTP API, present and future, answers only signed requests.

:class:`Authenticator` is one aiohttp middleware that :class:`~assignment.frontend.api.app.LambdaHttpApi`
puts inside the error middleware (so its refusals are Lambda error documents with ``x-amzn-ErrorType``)
and in front of every handler, so a new resource module is covered without a line of its own. Per
request: read the body (at most :data:`~assignment.frontend.api.requests.MAX_BODY_BYTES`, the limit every
route has anyway), parse and check the claim (:func:`~assignment.frontend.auth.sigv4.read_claim`), find
the identity behind the key id (:class:`~assignment.frontend.auth.resolver.Resolver`), recompute the
signature (:func:`~assignment.frontend.auth.sigv4.check_signature`), ask the policy whether that caller
may call this route (:class:`~assignment.frontend.auth.policy.Policy`: function sessions may only invoke
and use queues' messages), an SQS request (``X-Amz-Target: AmazonSQS.*``) being scoped to ``sqs`` and a
schedule request (``/schedules``) to ``scheduler``,
and hand the handler the request with its body and :data:`IDENTITY`. ``leasehold frontend --auth none``
builds the application without it.

Example::

    auth = Authenticator(Resolver(KeyCache(KeyStore(journal))), region="us-east-1")
    app = LambdaHttpApi(registry, invoker, provisioner, auth=auth).app()
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from assignment.frontend.api.requests import (
    BODY,
    MAX_BODY_BYTES,
    is_scheduler_request,
    is_sqs_request,
    read_body,
    sqs_operation,
)
from assignment.frontend.auth.policy import Policy
from assignment.frontend.auth.resolver import Identity, Resolver
from assignment.frontend.auth.sigv4 import HttpRequest, check_signature, read_claim

__all__ = ["IDENTITY", "Authenticator"]

#: The verified caller of a request.
IDENTITY = web.RequestKey("identity", Identity)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Authenticator:
    """Verifies every request's SigV4 signature against the keys ``resolver`` knows."""

    def __init__(
        self, resolver: Resolver, *, region: str, policy: Policy | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.resolver = resolver
        self.region = region
        self.policy = policy or Policy(account=resolver.account, region=region)
        self._clock = clock

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Refuse the request unless it is signed by a known key; else run the handler."""
        body = await read_body(request, MAX_BODY_BYTES)
        request[BODY] = body
        signed = HttpRequest(request.method, request.raw_path, tuple(request.headers.items()), body)
        sqs = is_sqs_request(request)
        service = "sqs" if sqs else "scheduler" if is_scheduler_request(request) else "lambda"
        claim = read_claim(signed, region=self.region, now=self._clock(), service=service)
        identity = await self.resolver.resolve(claim)
        check_signature(signed, claim, identity.secret)
        if sqs:
            self.policy.authorize_sqs(identity, sqs_operation(request) or "")
        else:
            route = request.match_info.route.resource
            template = route.canonical if route is not None else request.path
            self.policy.authorize(identity, request.method, template, request.match_info)
        request[IDENTITY] = identity
        return await handler(request)
