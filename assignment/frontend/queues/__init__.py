"""SQS-compatible queues: the durable store and the values it takes and returns.

Callers import from this package, not from its modules (which may be cut differently later):
:class:`QueueStore` is the store (:mod:`assignment.frontend.queues.store`); the SQS API lives beside it.

Example::

    from assignment.frontend.queues import NewMessage, QueueStore

    store = QueueStore(journal)
    store.send_message("123456789012", "jobs", NewMessage("hello"), sender_id="AIDA...", now_ms=now_ms)
"""

from assignment.frontend.queues.store import (
    DEDUP_WINDOW_MS,
    MAX_BATCH_BYTES,
    MAX_BATCH_ENTRIES,
    PURGE_INTERVAL_MS,
    QUEUE_ATTRIBUTES,
    REUSE_NAME_AFTER_MS,
    BatchEntryIdsNotDistinct,
    BatchError,
    BatchRequestTooLong,
    EmptyBatchRequest,
    InvalidAttributeName,
    InvalidAttributeValue,
    InvalidBatchEntryId,
    InvalidMessageContents,
    InvalidParameterValue,
    Message,
    MessageAttribute,
    MessageNotInflight,
    NewMessage,
    PurgeQueueInProgress,
    Queue,
    QueueDeletedRecently,
    QueueDoesNotExist,
    QueueError,
    QueueNameExists,
    QueuePage,
    QueueStore,
    ReceiptHandleIsInvalid,
    Received,
    SendResult,
    TooManyEntriesInBatchRequest,
    md5_of_attributes,
    md5_of_body,
    sqs_dedup,
    sqs_deleted_queues,
    sqs_messages,
    sqs_queues,
)

__all__ = [
    "DEDUP_WINDOW_MS",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_ENTRIES",
    "PURGE_INTERVAL_MS",
    "QUEUE_ATTRIBUTES",
    "REUSE_NAME_AFTER_MS",
    "BatchEntryIdsNotDistinct",
    "BatchError",
    "BatchRequestTooLong",
    "EmptyBatchRequest",
    "InvalidAttributeName",
    "InvalidAttributeValue",
    "InvalidBatchEntryId",
    "InvalidMessageContents",
    "InvalidParameterValue",
    "Message",
    "MessageAttribute",
    "MessageNotInflight",
    "NewMessage",
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
    "SendResult",
    "TooManyEntriesInBatchRequest",
    "md5_of_attributes",
    "md5_of_body",
    "sqs_dedup",
    "sqs_deleted_queues",
    "sqs_messages",
    "sqs_queues",
]
