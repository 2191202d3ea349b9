"""SQS-compatible queues: the durable store and the values it takes and returns.

Callers import from this package, not from its modules (which may be cut differently later):
:class:`QueueStore` is the store (:mod:`assignment.frontend.queues.store`), its errors are in
:mod:`~assignment.frontend.queues.errors` (one table of SQS's error shapes), the rules of queue attributes
in :mod:`~assignment.frontend.queues.attributes`, of messages in :mod:`~assignment.frontend.queues.messages`
and the tables in :mod:`~assignment.frontend.queues.tables`; the SQS API lives beside them.

Example::

    from assignment.frontend.queues import NewMessage, QueueStore

    store = QueueStore(journal)
    store.send_message("123456789012", "jobs", NewMessage("hello"), sender_id="AIDA...", now_ms=now_ms)
"""

from assignment.frontend.queues.attributes import (
    DEDUP_WINDOW_MS,
    MAX_BATCH_BYTES,
    MAX_BATCH_ENTRIES,
    PURGE_INTERVAL_MS,
    QUEUE_ATTRIBUTES,
    REUSE_NAME_AFTER_MS,
    Queue,
)
from assignment.frontend.queues.errors import (
    ERROR_SHAPES,
    BatchEntryIdsNotDistinct,
    BatchRequestTooLong,
    EmptyBatchRequest,
    ErrorShape,
    InternalFailure,
    InvalidAction,
    InvalidAddress,
    InvalidAttributeName,
    InvalidAttributeValue,
    InvalidBatchEntryId,
    InvalidIdFormat,
    InvalidMessageContents,
    InvalidParameterCombination,
    InvalidParameterValue,
    InvalidSecurity,
    MessageNotInflight,
    MissingAction,
    MissingParameter,
    OverLimit,
    PurgeQueueInProgress,
    QueueDeletedRecently,
    QueueDoesNotExist,
    QueueError,
    QueueNameExists,
    ReceiptHandleIsInvalid,
    RequestThrottled,
    ResourceNotFoundException,
    ServiceUnavailable,
    TooManyEntriesInBatchRequest,
    UnsupportedOperation,
)
from assignment.frontend.queues.messages import (
    BatchError,
    Message,
    MessageAttribute,
    NewMessage,
    Received,
    SendResult,
    md5_of_attributes,
    md5_of_body,
)
from assignment.frontend.queues.store import QueuePage, QueueStore
from assignment.frontend.queues.tables import (
    sqs_dedup,
    sqs_deleted_queues,
    sqs_messages,
    sqs_queues,
    sqs_receive_attempts,
)

__all__ = [
    "DEDUP_WINDOW_MS",
    "ERROR_SHAPES",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_ENTRIES",
    "PURGE_INTERVAL_MS",
    "QUEUE_ATTRIBUTES",
    "REUSE_NAME_AFTER_MS",
    "BatchEntryIdsNotDistinct",
    "BatchError",
    "BatchRequestTooLong",
    "EmptyBatchRequest",
    "ErrorShape",
    "InternalFailure",
    "InvalidAction",
    "InvalidAddress",
    "InvalidAttributeName",
    "InvalidAttributeValue",
    "InvalidBatchEntryId",
    "InvalidIdFormat",
    "InvalidMessageContents",
    "InvalidParameterCombination",
    "InvalidParameterValue",
    "InvalidSecurity",
    "Message",
    "MessageAttribute",
    "MessageNotInflight",
    "MissingAction",
    "MissingParameter",
    "NewMessage",
    "OverLimit",
    "PurgeQueueInProgress",
    "Queue",
    "QueueDeletedRecently",
    "QueueDoesNotExist",
    "QueueError",
    "QueueNameExists",
    "QueuePage",
    "QueueStore",
    "ReceiptHandleIsInvalid",
    "Received",
    "RequestThrottled",
    "ResourceNotFoundException",
    "SendResult",
    "ServiceUnavailable",
    "TooManyEntriesInBatchRequest",
    "UnsupportedOperation",
    "md5_of_attributes",
    "md5_of_body",
    "sqs_dedup",
    "sqs_deleted_queues",
    "sqs_messages",
    "sqs_queues",
    "sqs_receive_attempts",
]
