"""The SQS operations: a checked request's members in, the operation's output members out.

:class:`SqsOperations` sits between the wire (:mod:`assignment.frontend.queues.wire`, which checked the
members' types against botocore's model) and the store (:class:`~assignment.frontend.queues.QueueStore`,
which checks values and runs one transaction per call). It names queues by URL
(``<endpoint>/<account>/<name>``, the endpoint being the one the caller used) and by ARN
(``arn:aws:sqs:<region>:<account>:<name>``), runs every store call in a worker thread, long-polls
receives on :class:`~assignment.frontend.queues.waiting.QueueWaiters`, and wakes those waiters after each
change it commits. Results are the output members of botocore's model, named and shaped as SQS returns
them (absent optional members are left out, as SQS does).

What Leasehold does not offer is refused by name (``UnsupportedOperation``): permissions (AddPermission,
RemovePermission: authorisation is the API's SigV4 keys) and message move tasks.

Example::

    ops = SqsOperations(QueueStore(journal), account_id="000000000000", region="us-east-1")
    out = await ops.call("CreateQueue", {"QueueName": "jobs"}, endpoint="http://127.0.0.1:9000", sender_id="AKIA...")
    # {"QueueUrl": "http://127.0.0.1:9000/000000000000/jobs"}
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from assignment.frontend.queues import (
    BatchError,
    InvalidAddress,
    InvalidParameterValue,
    Message,
    MessageAttribute,
    NewMessage,
    QueueDoesNotExist,
    QueueStore,
    SendResult,
    UnsupportedOperation,
    md5_of_attributes,
)
from assignment.frontend.queues.receiving import now_ms, receive_waiting
from assignment.frontend.queues.waiting import QueueKey, QueueWaiters
from assignment.frontend.queues.wire import encode_blob

__all__ = ["MAX_WAIT_S", "SYSTEM_ATTRIBUTE_NAMES", "SqsOperations", "queue_arn"]

#: The longest long poll (ReceiveMessage's WaitTimeSeconds).
MAX_WAIT_S = 20
#: The message system attributes a receive may ask for (botocore's MessageSystemAttributeName enum).
SYSTEM_ATTRIBUTE_NAMES = frozenset(
    {
        "All",
        "SenderId",
        "SentTimestamp",
        "ApproximateReceiveCount",
        "ApproximateFirstReceiveTimestamp",
        "SequenceNumber",
        "MessageDeduplicationId",
        "MessageGroupId",
        "AWSTraceHeader",
        "DeadLetterQueueSourceArn",
    }
)
_UNSUPPORTED = {
    "AddPermission": "queue policies: access is decided by the API's SigV4 keys",
    "RemovePermission": "queue policies: access is decided by the API's SigV4 keys",
    "StartMessageMoveTask": "message move tasks",
    "CancelMessageMoveTask": "message move tasks",
    "ListMessageMoveTasks": "message move tasks",
}

Params = Mapping[str, Any]
Output = dict[str, Any]


def queue_arn(region: str, account_id: str, name: str) -> str:
    """A queue's ARN."""
    return f"arn:aws:sqs:{region}:{account_id}:{name}"


def _new_attributes(given: Mapping[str, Any] | None, what: str) -> dict[str, MessageAttribute]:
    """MessageAttributes (or MessageSystemAttributes) of a request as the store takes them."""
    out: dict[str, MessageAttribute] = {}
    for name, value in (given or {}).items():
        for reserved in ("StringListValues", "BinaryListValues"):
            if reserved in value:
                raise UnsupportedOperation(f"{what}.{name[:256]}.{reserved} is reserved by SQS and not supported.")
        if "DataType" not in value:
            raise InvalidParameterValue(f"The message attribute '{name[:256]}' must contain a non-empty DataType.")
        out[name] = MessageAttribute(value["DataType"], value.get("StringValue"), value.get("BinaryValue"))
    return out


def _new_message(params: Params) -> NewMessage:
    return NewMessage(
        params["MessageBody"],
        delay_seconds=params.get("DelaySeconds"),
        attributes=_new_attributes(params.get("MessageAttributes"), "MessageAttributes"),
        system_attributes=_new_attributes(params.get("MessageSystemAttributes"), "MessageSystemAttributes"),
        group_id=params.get("MessageGroupId"),
        deduplication_id=params.get("MessageDeduplicationId"),
    )


def _sent(result: SendResult) -> Output:
    out: Output = {"MessageId": result.message_id, "MD5OfMessageBody": result.md5_of_body}
    if result.md5_of_attributes:
        out["MD5OfMessageAttributes"] = result.md5_of_attributes
    if result.md5_of_system_attributes:
        out["MD5OfMessageSystemAttributes"] = result.md5_of_system_attributes
    if result.sequence_number:
        out["SequenceNumber"] = result.sequence_number
    return out


def _attribute_document(attribute: MessageAttribute) -> dict[str, str]:
    out = {"DataType": attribute.data_type}
    if attribute.binary_value is not None:
        out["BinaryValue"] = encode_blob(attribute.binary_value)
    if attribute.string_value is not None:
        out["StringValue"] = attribute.string_value
    return out


def _wanted_message_attributes(
    names: list[str], attributes: dict[str, MessageAttribute]
) -> dict[str, MessageAttribute]:
    """The message attributes a receive asked for: ``All`` or ``.*`` for every one, ``prefix.*`` for those
    whose name starts with ``prefix.``, else exact names."""
    if not names:
        return {}
    if "All" in names or ".*" in names:
        return attributes
    exact = {name for name in names if not name.endswith(".*")}
    prefixes = tuple(name[:-1] for name in names if name.endswith(".*"))
    return {name: value for name, value in attributes.items() if name in exact or name.startswith(prefixes)}


def _received(message: Message, system_names: set[str], attribute_names: list[str]) -> Output:
    out: Output = {
        "MessageId": message.message_id,
        "ReceiptHandle": message.receipt_handle,
        "MD5OfBody": message.md5_of_body,
        "Body": message.body,
    }
    if system_names:
        every = "All" in system_names
        chosen = {k: v for k, v in message.attributes.items() if every or k in system_names}
        if chosen:
            out["Attributes"] = chosen
    attributes = _wanted_message_attributes(attribute_names, message.message_attributes)
    if attributes:
        # The MD5 of what is returned, so a client checking it (the Java SDK does) agrees.
        out["MD5OfMessageAttributes"] = md5_of_attributes(attributes)
        out["MessageAttributes"] = {name: _attribute_document(value) for name, value in attributes.items()}
    return out


def _batch(results: list[tuple[str, Output | BatchError]]) -> Output:
    """A batch's answer from each entry's ``(id, output members or error)``."""
    successful: list[Output] = []
    failed: list[Output] = []
    for entry_id, result in results:
        if isinstance(result, BatchError):
            failed.append(
                {"Id": result.id, "SenderFault": result.sender_fault, "Code": result.code, "Message": result.message}
            )
        else:
            successful.append({"Id": entry_id, **result})
    return {"Successful": successful, "Failed": failed}


def _by_id(results: list[str | BatchError]) -> list[tuple[str, Output | BatchError]]:
    """A delete or visibility batch's results (each entry's id or its error) for :func:`_batch`."""
    return [(result.id, result) if isinstance(result, BatchError) else (result, {}) for result in results]


class SqsOperations:
    """Every SQS operation of one frontend, over one store."""

    def __init__(
        self,
        store: QueueStore,
        *,
        account_id: str,
        region: str,
        waiters: QueueWaiters | None = None,
        clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self.store = store
        self.account_id = account_id
        self.region = region
        self.waiters = waiters or QueueWaiters()
        self._clock_ms = clock_ms
        self._handlers: dict[str, Callable[[Params, str, str], Awaitable[Output]]] = {
            "CreateQueue": self._create_queue,
            "GetQueueUrl": self._get_queue_url,
            "ListQueues": self._list_queues,
            "DeleteQueue": self._delete_queue,
            "PurgeQueue": self._purge_queue,
            "GetQueueAttributes": self._get_queue_attributes,
            "SetQueueAttributes": self._set_queue_attributes,
            "ListDeadLetterSourceQueues": self._list_dead_letter_sources,
            "TagQueue": self._tag_queue,
            "UntagQueue": self._untag_queue,
            "ListQueueTags": self._list_queue_tags,
            "SendMessage": self._send_message,
            "SendMessageBatch": self._send_message_batch,
            "ReceiveMessage": self._receive_message,
            "DeleteMessage": self._delete_message,
            "DeleteMessageBatch": self._delete_message_batch,
            "ChangeMessageVisibility": self._change_visibility,
            "ChangeMessageVisibilityBatch": self._change_visibility_batch,
        }

    async def call(self, operation: str, params: Params, *, endpoint: str, sender_id: str) -> Output:
        """Run ``operation`` with checked ``params``; ``endpoint`` (``http://host:port``) names queue URLs,
        ``sender_id`` is the caller (a message's SenderId)."""
        if operation in _UNSUPPORTED:
            raise UnsupportedOperation(f"{operation} is not supported by Leasehold ({_UNSUPPORTED[operation]}).")
        return await self._handlers[operation](params, endpoint, sender_id)

    # ----------------------------------------------------------------------------------------- naming

    def queue_url(self, endpoint: str, name: str) -> str:
        """The URL of queue ``name`` at ``endpoint``."""
        return f"{endpoint.rstrip('/')}/{self.account_id}/{name}"

    def _name(self, url: str) -> str:
        """The queue name a QueueUrl names: ``<any endpoint>/<account>/<name>``; another account's queue
        does not exist here."""
        parts = urlsplit(url) if "://" in url else None
        path = parts.path.strip("/").split("/") if parts is not None else []
        if parts is None or parts.scheme not in ("http", "https") or len(path) != 2 or parts.query:
            raise InvalidAddress(f"The address {url[:300]} is not valid for this endpoint.")
        account, name = path
        if account != self.account_id:
            raise QueueDoesNotExist("The specified queue does not exist.")
        return name

    def _key(self, name: str) -> QueueKey:
        return (self.account_id, name)

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, self.account_id, *args, **kwargs)

    # ----------------------------------------------------------------------------------------- queues

    async def _create_queue(self, params: Params, endpoint: str, _: str) -> Output:
        queue = await self._run(
            self.store.create_queue,
            params["QueueName"],
            params.get("Attributes"),
            params.get("tags"),
            now_ms=self._clock_ms(),
        )
        return {"QueueUrl": self.queue_url(endpoint, queue.name)}

    async def _get_queue_url(self, params: Params, endpoint: str, _: str) -> Output:
        owner = params.get("QueueOwnerAWSAccountId")
        if owner is not None and owner != self.account_id:
            raise QueueDoesNotExist("The specified queue does not exist.")
        queue = await self._run(self.store.get_queue, params["QueueName"])
        return {"QueueUrl": self.queue_url(endpoint, queue.name)}

    async def _list_queues(self, params: Params, endpoint: str, _: str) -> Output:
        page = await self._run(
            self.store.list_queues,
            params.get("QueueNamePrefix", ""),
            max_results=params.get("MaxResults"),
            next_token=params.get("NextToken"),
        )
        out: Output = {}
        if page.names:
            out["QueueUrls"] = [self.queue_url(endpoint, name) for name in page.names]
        if page.next_token:
            out["NextToken"] = page.next_token
        return out

    async def _delete_queue(self, params: Params, _endpoint: str, _: str) -> Output:
        name = self._name(params["QueueUrl"])
        await self._run(self.store.delete_queue, name, now_ms=self._clock_ms())
        self.waiters.notify(self._key(name))  # its waiters answer QueueDoesNotExist now, not after the poll
        return {}

    async def _purge_queue(self, params: Params, _endpoint: str, _: str) -> Output:
        await self._run(self.store.purge_queue, self._name(params["QueueUrl"]), now_ms=self._clock_ms())
        return {}

    async def _get_queue_attributes(self, params: Params, _endpoint: str, _: str) -> Output:
        name = self._name(params["QueueUrl"])
        names = params.get("AttributeNames") or []
        if not names:
            return {}
        attributes = await self._run(
            self.store.get_queue_attributes,
            name,
            names,
            queue_arn=queue_arn(self.region, self.account_id, name),
            now_ms=self._clock_ms(),
        )
        return {"Attributes": attributes} if attributes else {}

    async def _set_queue_attributes(self, params: Params, _endpoint: str, _: str) -> Output:
        name = self._name(params["QueueUrl"])
        await self._run(self.store.set_queue_attributes, name, params["Attributes"], now_ms=self._clock_ms())
        self.waiters.notify(self._key(name))  # a shorter DelaySeconds or redrive may make messages visible
        return {}

    async def _list_dead_letter_sources(self, params: Params, endpoint: str, _: str) -> Output:
        page = await self._run(
            self.store.list_dead_letter_source_queues,
            self._name(params["QueueUrl"]),
            max_results=params.get("MaxResults"),
            next_token=params.get("NextToken"),
        )
        out: Output = {"queueUrls": [self.queue_url(endpoint, name) for name in page.names]}
        if page.next_token:
            out["NextToken"] = page.next_token
        return out

    async def _tag_queue(self, params: Params, _endpoint: str, _: str) -> Output:
        await self._run(self.store.tag_queue, self._name(params["QueueUrl"]), params["Tags"])
        return {}

    async def _untag_queue(self, params: Params, _endpoint: str, _: str) -> Output:
        await self._run(self.store.untag_queue, self._name(params["QueueUrl"]), params["TagKeys"])
        return {}

    async def _list_queue_tags(self, params: Params, _endpoint: str, _: str) -> Output:
        tags = await self._run(self.store.list_queue_tags, self._name(params["QueueUrl"]))
        return {"Tags": tags} if tags else {}

    # --------------------------------------------------------------------------------------- messages

    async def _send_message(self, params: Params, _endpoint: str, sender_id: str) -> Output:
        name = self._name(params["QueueUrl"])
        result = await self._run(
            self.store.send_message, name, _new_message(params), sender_id=sender_id, now_ms=self._clock_ms()
        )
        self.waiters.notify(self._key(name))
        return _sent(result)

    async def _send_message_batch(self, params: Params, _endpoint: str, sender_id: str) -> Output:
        name = self._name(params["QueueUrl"])
        entries = [(entry["Id"], _new_message(entry)) for entry in params["Entries"]]
        results = await self._run(
            self.store.send_message_batch, name, entries, sender_id=sender_id, now_ms=self._clock_ms()
        )
        self.waiters.notify(self._key(name))
        return _batch(
            [
                (entry_id, result if isinstance(result, BatchError) else _sent(result))
                for (entry_id, _), result in zip(entries, results, strict=True)
            ]
        )

    async def _receive_message(self, params: Params, _endpoint: str, _: str) -> Output:
        name = self._name(params["QueueUrl"])
        system_names = {*params.get("AttributeNames", ()), *params.get("MessageSystemAttributeNames", ())}
        unknown = sorted(system_names - SYSTEM_ATTRIBUTE_NAMES)
        if unknown:
            raise InvalidParameterValue(f"Unknown Attribute {unknown[0][:256]}.")
        wait_s = params.get("WaitTimeSeconds")
        if wait_s is None:
            wait_s = (await self._run(self.store.get_queue, name)).receive_wait
        elif not 0 <= wait_s <= MAX_WAIT_S:
            raise InvalidParameterValue(
                f"Value {wait_s} for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= {MAX_WAIT_S}."
            )
        received = await receive_waiting(
            self.store,
            self.waiters,
            self.account_id,
            name,
            max_messages=params.get("MaxNumberOfMessages", 1),
            visibility_timeout=params.get("VisibilityTimeout"),
            attempt_id=params.get("ReceiveRequestAttemptId"),
            wait_s=wait_s,
            clock_ms=self._clock_ms,
        )
        attribute_names = list(params.get("MessageAttributeNames", ()))
        messages = [_received(message, system_names, attribute_names) for message in received.messages]
        return {"Messages": messages} if messages else {}

    async def _delete_message(self, params: Params, _endpoint: str, _: str) -> Output:
        name = self._name(params["QueueUrl"])
        await self._run(self.store.delete_message, name, params["ReceiptHandle"])
        self.waiters.notify(self._key(name))  # a FIFO group may be free again
        return {}

    async def _delete_message_batch(self, params: Params, _endpoint: str, _: str) -> Output:
        name = self._name(params["QueueUrl"])
        entries = [(entry["Id"], entry["ReceiptHandle"]) for entry in params["Entries"]]
        results = await self._run(self.store.delete_message_batch, name, entries)
        self.waiters.notify(self._key(name))
        return _batch(_by_id(results))

    async def _change_visibility(self, params: Params, _endpoint: str, _: str) -> Output:
        name = self._name(params["QueueUrl"])
        await self._run(
            self.store.change_message_visibility,
            name,
            params["ReceiptHandle"],
            params["VisibilityTimeout"],
            now_ms=self._clock_ms(),
        )
        self.waiters.notify(self._key(name))
        return {}

    async def _change_visibility_batch(self, params: Params, _endpoint: str, _: str) -> Output:
        name = self._name(params["QueueUrl"])
        entries = [(e["Id"], e["ReceiptHandle"], e.get("VisibilityTimeout", 0)) for e in params["Entries"]]
        results = await self._run(self.store.change_message_visibility_batch, name, entries, now_ms=self._clock_ms())
        self.waiters.notify(self._key(name))
        return _batch(_by_id(results))
