"""The SQS API on the frontend's HTTP port: ``POST /`` with ``X-Amz-Target: AmazonSQS.<Operation>``.

:class:`SqsApi` is one resource of :class:`~assignment.frontend.api.app.LambdaHttpApi`, so it is behind
the same SigV4 middleware (scoped to the signing name ``sqs`` for these requests) and answers on the same
endpoint as Lambda. Its handler decodes the body against botocore's model
(:func:`~assignment.frontend.queues.wire.decode_request`), runs the operation
(:class:`~assignment.frontend.queues.operations.SqsOperations`) and answers JSON 1.0. Every error of an
SQS request, the middleware's authentication refusals included (:func:`sqs_error_response`), is SQS's
error document, never a Lambda one. The older query protocol (form-encoded ``Action=...``, what
botocore before 1.31 sent) is refused with an error that says so.

Example::

    api = SqsApi(SqsOperations(QueueStore(journal), account_id="000000000000", region="us-east-1"))
    app.add_routes(api.routes())
"""

from __future__ import annotations

import json

from aiohttp import web

from assignment.frontend.api.auth import IDENTITY
from assignment.frontend.api.requests import MAX_BODY_BYTES, read_body, sqs_operation
from assignment.frontend.queues import ERROR_SHAPES, QueueError, UnsupportedOperation
from assignment.frontend.queues.operations import SqsOperations
from assignment.frontend.queues.wire import CONTENT_TYPE, decode_request, error_document
from assignment.frontend.types import LambdaError, RequestTooLargeException

__all__ = ["SqsApi", "sqs_error_response"]

#: The AWS common errors (what SQS answers) for the Lambda API's errors an SQS request can meet before
#: its handler: authentication, authorisation, the body's size, the unexpected.
_COMMON_CODES = {
    "MissingAuthenticationTokenException": "MissingAuthenticationToken",
    "UnrecognizedClientException": "InvalidClientTokenId",
    "InvalidSignatureException": "SignatureDoesNotMatch",
    "IncompleteSignatureException": "IncompleteSignature",
    "AccessDeniedException": "AccessDeniedException",
    "RequestTooLargeException": "InvalidParameterValue",
    "ServiceException": "InternalFailure",
}


def _json(document: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=json.dumps(document).encode(), status=status, content_type=CONTENT_TYPE, headers=headers)


def sqs_error_response(exc: QueueError | LambdaError) -> web.Response:
    """SQS's answer to ``exc``: a queue error as the model names it; an authentication (or other
    API-wide) error under AWS's common error code, with the Lambda error's HTTP status."""
    if isinstance(exc, QueueError):
        status, body, headers = error_document(exc)
        return _json(body, status, headers)
    shape = ERROR_SHAPES[_COMMON_CODES.get(exc.type, "InternalFailure")]
    body = {"__type": f"com.amazonaws.sqs#{shape.code}", "message": exc.message}
    return _json(body, shape.http_status, {"x-amzn-query-error": shape.query_error_header})


class SqsApi:
    """The SQS operations' one route."""

    def __init__(self, operations: SqsOperations) -> None:
        self.operations = operations

    def routes(self) -> list[web.RouteDef]:
        """``POST /``."""
        return [web.post("/", self._handle)]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        operation = sqs_operation(request)
        if operation is None:
            if request.content_type == "application/x-www-form-urlencoded":
                return sqs_error_response(
                    UnsupportedOperation(
                        "The SQS query protocol (Action=...) is not supported by Leasehold: use a client that "
                        "speaks SQS's JSON protocol (X-Amz-Target: AmazonSQS.<Operation>; botocore 1.31 or later)."
                    )
                )
            raise web.HTTPNotFound(reason="Unknown path: POST / without X-Amz-Target: AmazonSQS.<Operation>")
        try:
            body = await read_body(request, MAX_BODY_BYTES)
        except RequestTooLargeException as exc:
            return sqs_error_response(exc)
        identity = request.get(IDENTITY)
        sender_id = identity.access_key_id if identity is not None else self.operations.account_id
        try:
            params = decode_request(operation, body)
            output = await self.operations.call(
                operation, params, endpoint=f"{request.scheme}://{request.host}", sender_id=sender_id
            )
        except QueueError as exc:
            return sqs_error_response(exc)
        return _json(output)
