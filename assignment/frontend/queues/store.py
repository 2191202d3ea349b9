"""The durable store of SQS-compatible queues: queues, messages and their transactions (synchronous
SQLAlchemy Core; no asyncio here, no HTTP).

:class:`QueueStore` is what the SQS API will run in worker threads. Every method is one transaction on
the journal's engines (writes on ``writer``: SQLite ``BEGIN IMMEDIATE``, so writers serialise; on
PostgreSQL a receive of a standard queue takes its messages with ``SELECT ... FOR UPDATE SKIP LOCKED``, so
pollers on several hosts never take the same message, and a receive of a FIFO queue locks the queue's row,
so two pollers never split a message group between them). A send is committed before it returns.
Time is always a parameter (``now_ms``); the store never reads a clock.

The semantics are Amazon SQS's (botocore's ``sqs/2012-11-05`` model gives the names, ranges and errors):

* a queue is named within an account (``[A-Za-z0-9_-]{1,80}``, FIFO names end in ``.fifo``); creating it
  again with the same attributes returns it, with different ones raises :class:`QueueNameExists`;
* a receive makes its messages invisible for the visibility timeout and gives each a fresh receipt
  handle; a message received more than the source queue's ``maxReceiveCount`` times is moved to the
  dead-letter queue, in the receive's transaction, instead of being returned;
* FIFO queues deliver each message group in order, one batch in flight per group, and drop sends whose
  deduplication id was seen in the last five minutes (answering with the original message id);
* messages older than the retention period are never returned and are deleted (:meth:`QueueStore.expire`,
  and lazily by every receive).

Where SQS leaves a choice, this module says which it made (see :meth:`QueueStore.delete_message` for old
receipt handles). Errors are :class:`~assignment.frontend.queues.errors.QueueError` subclasses named after
SQS's error shapes (:mod:`assignment.frontend.queues.errors`); the rules of attributes and of messages are
:mod:`~assignment.frontend.queues.attributes` and :mod:`~assignment.frontend.queues.messages`, the tables
:mod:`~assignment.frontend.queues.tables`.

Example::

    store = QueueStore(journal)
    store.create_queue("123456789012", "jobs", {"VisibilityTimeout": "60"}, now_ms=now_ms)
    sent = store.send_message("123456789012", "jobs", NewMessage("hello"), sender_id="AIDA...", now_ms=now_ms)
    received = store.receive_messages("123456789012", "jobs", max_messages=10, now_ms=now_ms)
    for message in received.messages:
        store.delete_message("123456789012", "jobs", message.receipt_handle, now_ms=now_ms)
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import secrets
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Row

from assignment.frontend.queues.attempts import check_attempt_id, expire_attempts, record, replay
from assignment.frontend.queues.attributes import (
    BAD_CHARACTERS,
    COUNTS,
    DEDUP_WINDOW_MS,
    FIFO_NAME,
    INT_ATTRIBUTES,
    MAX_BATCH_BYTES,
    MAX_TAGS,
    PURGE_INTERVAL_MS,
    QUEUE_ATTRIBUTES,
    REUSE_NAME_AFTER_MS,
    STANDARD_NAME,
    Queue,
    bool_attribute,
    check_account,
    default_throughput,
    differs,
    kept_json,
    parse_arn,
    parse_attributes,
    queue_from_row,
    valid_name,
)
from assignment.frontend.queues.errors import (
    BatchRequestTooLong,
    InvalidAttributeName,
    InvalidAttributeValue,
    InvalidParameterValue,
    MessageNotInflight,
    PurgeQueueInProgress,
    QueueDeletedRecently,
    QueueDoesNotExist,
    QueueError,
    QueueNameExists,
    ReceiptHandleIsInvalid,
)
from assignment.frontend.queues.messages import (
    TOKEN_BYTES,
    BatchError,
    CheckedMessage,
    Message,
    NewMessage,
    Received,
    SendResult,
    check_batch,
    check_message,
    check_visibility,
    decode_attributes,
    encode_attributes,
    format_sequence_number,
    make_receipt_handle,
    md5_of_attributes,
    md5_of_body,
    not_in_flight_visibility,
    parse_receipt_handle,
    rough_size,
)
from assignment.frontend.queues.statements import (
    DELETE_RECEIVED,
    FIND_QUEUE,
    FIND_QUEUE_FOR_UPDATE,
    INSERT_MESSAGES,
    MARK_RECEIVED,
    NEXT_VISIBLE,
    RESERVE_SEQ,
    ready,
)
from assignment.frontend.queues.tables import sqs_dedup, sqs_deleted_queues, sqs_messages, sqs_queues
from journal.store import Journal

__all__ = ["MAX_TAKE", "QueuePage", "QueueStore"]


@dataclass(frozen=True, slots=True)
class QueuePage:
    """A page of queue names and the token of the next page (``None`` at the end)."""

    names: list[str]
    next_token: str | None


def _encode_token(last: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last}).encode()).decode("ascii")


def _decode_token(token: str) -> str:
    invalid = InvalidParameterValue("Invalid NextToken value.")
    try:
        after = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))["after"]
    except (ValueError, TypeError, KeyError, UnicodeError, binascii.Error):
        raise invalid from None
    if not valid_name(after):
        raise invalid
    return str(after)


def _check_max_results(max_results: int | None) -> None:
    if max_results is not None and (
        isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= 1000
    ):
        raise InvalidParameterValue(f"Value {max_results!r:.20} for parameter MaxResults is invalid. Must be 1-1000.")


#: Most messages one :meth:`QueueStore.take` returns (a mapping's largest BatchSize).
MAX_TAKE = 10_000
#: How often (at most) a receive deletes its queue's expired messages.
_EXPIRE_EVERY_MS = 1000
#: Queues whose last expiry a store remembers before it forgets them all (and expires each once more).
_EXPIRY_MEMORY = 10_000


class QueueStore:
    """SQS queues on a journal's database; thread-safe (one transaction per call)."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._postgres = journal.backend == "postgresql"
        self._expiry_lock = threading.Lock()
        self._expired_at: dict[str, int] = {}
        #: Queues whose last receive in this process took messages (their next one skips the read).
        self._busy: set[tuple[str, str]] = set()

    def _writing(self) -> contextlib.AbstractContextManager[Connection]:
        """A write transaction (SQLite ``BEGIN IMMEDIATE``, this process's writers in turn)."""
        return self._journal.writing()

    # ------------------------------------------------------------------------------------------ queues

    def _by_name(self) -> Any:
        """The queue name in byte order (SQLite's default; PostgreSQL's ``C`` collation), for listings."""
        return sqs_queues.c.name.collate("C") if self._postgres else sqs_queues.c.name

    def _find(self, conn: Connection, account_id: str, name: str, *, lock: bool = False) -> Queue:
        check_account(account_id)
        if not valid_name(name):
            raise QueueDoesNotExist("The specified queue does not exist.")
        stmt = FIND_QUEUE_FOR_UPDATE if lock and self._postgres else FIND_QUEUE
        row = conn.execute(stmt, {"b_account": account_id, "b_name": name}).first()
        if row is None:
            raise QueueDoesNotExist("The specified queue does not exist.")
        return queue_from_row(row)

    def _check_redrive(
        self, conn: Connection, account_id: str, name: str, fifo: bool, values: Mapping[str, object]
    ) -> None:
        """The dead-letter target of a RedrivePolicy exists in the same account, is of the same kind and
        lets ``name`` redrive to it (its RedriveAllowPolicy)."""
        dlq_name = str(values.get("dlq_name", ""))
        if not dlq_name:
            return
        reason = ""
        if values["dlq_account"] != account_id:
            reason = "Dead letter target must be in the same account."
        elif dlq_name == name:
            reason = "Dead letter target cannot be the queue itself."
        else:
            try:
                target = self._find(conn, account_id, dlq_name)
            except QueueDoesNotExist:
                reason = "Dead letter target does not exist."
            else:
                if target.fifo != fifo:
                    reason = "Dead-letter queue must be same type of queue as the source."
                elif target.redrive_allow_policy:
                    allow = json.loads(target.redrive_allow_policy)
                    permitted = allow["redrivePermission"] == "allowAll" or (
                        allow["redrivePermission"] == "byQueue"
                        and (account_id, name) in {parse_arn(arn) for arn in allow["sourceQueueArns"]}
                    )
                    if not permitted:
                        reason = "Queue is not allowed to use the dead letter queue by its RedriveAllowPolicy."
        if reason:
            raise InvalidParameterValue(
                f"Value {values['redrive_policy']!s:.300} for parameter RedrivePolicy is invalid. Reason: {reason}"
            )

    def create_queue(
        self,
        account_id: str,
        name: str,
        attributes: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        *,
        now_ms: int,
    ) -> Queue:
        """Create a queue, or return the existing one when every given attribute has its value.

        Raises :class:`QueueNameExists` when a given attribute differs (only the given ones are compared, as
        SQS does; tags are not compared), :class:`QueueDeletedRecently` within 60 s of deleting the name.
        """
        check_account(account_id)
        attributes = dict(attributes or {})
        fifo_text = attributes.pop("FifoQueue", "false")
        fifo = bool_attribute("FifoQueue", fifo_text) if isinstance(fifo_text, str) else None
        if fifo is None:
            raise InvalidAttributeValue("Invalid value for the parameter FifoQueue.", attribute="FifoQueue")
        if not isinstance(name, str) or not (FIFO_NAME if fifo else STANDARD_NAME).fullmatch(name):
            raise InvalidParameterValue(
                "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must"
                " end with .fifo suffix and be 1 to 80 in length."
                if fifo or (isinstance(name, str) and name.endswith(".fifo"))
                else "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length."
            )
        given = parse_attributes(attributes, fifo=fifo)
        tag_map = self._check_tags(dict(tags or {}))
        q = sqs_queues.c
        with self._writing() as conn:
            existing = conn.execute(select(sqs_queues).where(q.account_id == account_id, q.name == name)).first()
            if existing is not None:
                queue = queue_from_row(existing)
                if differs(queue, given):
                    raise QueueNameExists(
                        "A queue already exists with the same name and a different value for attribute(s)"
                        f" {', '.join(sorted(attributes))}."
                    )
                return queue
            d = sqs_deleted_queues.c
            deleted = conn.execute(
                select(d.deleted_ms).where(d.account_id == account_id, d.name == name)
            ).scalar_one_or_none()
            if deleted is not None and now_ms < int(deleted) + REUSE_NAME_AFTER_MS:
                raise QueueDeletedRecently(
                    "You must wait 60 seconds after deleting a queue before you can create another with the same name."
                )
            self._check_redrive(conn, account_id, name, fifo, given)
            values: dict[str, object] = {column: default for column, _, _, default in INT_ATTRIBUTES.values()}
            values.update(
                content_dedup=False,
                redrive_policy="",
                dlq_account="",
                dlq_name="",
                max_receive_count=0,
                redrive_allow_policy="",
            )
            values.update(given)
            values["extra"] = kept_json(default_throughput(fifo), given.get("extra", {}))
            queue_id = secrets.token_hex(TOKEN_BYTES)
            conn.execute(delete(sqs_deleted_queues).where(d.account_id == account_id, d.name == name))
            conn.execute(
                insert(sqs_queues).values(
                    queue_id=queue_id,
                    account_id=account_id,
                    name=name,
                    fifo=fifo,
                    tags=json.dumps(tag_map),
                    created_ms=now_ms,
                    modified_ms=now_ms,
                    purged_ms=0,
                    next_seq=1,
                    **values,
                )
            )
            return self._find(conn, account_id, name)

    def get_queue(self, account_id: str, name: str) -> Queue:
        """The queue (GetQueueUrl); :class:`QueueDoesNotExist` when there is none."""
        with self._journal.reader.connect() as conn:
            return self._find(conn, account_id, name)

    def delete_queue(self, account_id: str, name: str, *, now_ms: int) -> None:
        """Delete the queue and its messages; its name can be created again 60 s later."""
        with self._writing() as conn:
            queue = self._find(conn, account_id, name, lock=True)
            conn.execute(delete(sqs_messages).where(sqs_messages.c.queue_id == queue.queue_id))
            conn.execute(delete(sqs_dedup).where(sqs_dedup.c.queue_id == queue.queue_id))
            expire_attempts(conn, now_ms, queue.queue_id)
            conn.execute(delete(sqs_queues).where(sqs_queues.c.queue_id == queue.queue_id))
            d = sqs_deleted_queues.c
            conn.execute(delete(sqs_deleted_queues).where(d.account_id == account_id, d.name == name))
            conn.execute(insert(sqs_deleted_queues).values(account_id=account_id, name=name, deleted_ms=now_ms))

    def purge_queue(self, account_id: str, name: str, *, now_ms: int) -> int:
        """Delete every message of the queue (once per 60 s: :class:`PurgeQueueInProgress`); how many."""
        with self._writing() as conn:
            queue = self._find(conn, account_id, name, lock=True)
            q = sqs_queues.c
            purged = conn.execute(select(q.purged_ms).where(q.queue_id == queue.queue_id)).scalar_one()
            if purged and now_ms < int(purged) + PURGE_INTERVAL_MS:
                raise PurgeQueueInProgress(f"Only one PurgeQueue operation on {name} is allowed every 60 seconds.")
            conn.execute(update(sqs_queues).where(q.queue_id == queue.queue_id).values(purged_ms=now_ms))
            return int(conn.execute(delete(sqs_messages).where(sqs_messages.c.queue_id == queue.queue_id)).rowcount)

    def list_queues(
        self, account_id: str, prefix: str = "", *, max_results: int | None = None, next_token: str | None = None
    ) -> QueuePage:
        """Queue names of the account starting with ``prefix`` (case-sensitive), by name; a page of
        ``max_results`` (1-1000) with a token for the next, or up to 1000 and no token without it."""
        check_account(account_id)
        _check_max_results(max_results)
        if not isinstance(prefix, str) or len(prefix) > 80:
            raise InvalidParameterValue("Value for parameter QueueNamePrefix is invalid.")
        q = sqs_queues.c
        name = self._by_name()
        # Not LIKE: SQLite's is case-insensitive, and names are not.
        stmt = select(q.name).where(q.account_id == account_id, func.substr(q.name, 1, len(prefix)) == prefix)
        if next_token is not None:
            stmt = stmt.where(name > _decode_token(next_token))
        limit = max_results or 1000
        with self._journal.reader.connect() as conn:
            names = [str(n) for n in conn.execute(stmt.order_by(name).limit(limit + 1)).scalars()]
        more = len(names) > limit
        names = names[:limit]
        return QueuePage(names, _encode_token(names[-1]) if more and max_results is not None else None)

    def list_dead_letter_source_queues(
        self, account_id: str, name: str, *, max_results: int | None = None, next_token: str | None = None
    ) -> QueuePage:
        """Names of the queues whose RedrivePolicy targets this one, by name, paged like :meth:`list_queues`."""
        _check_max_results(max_results)
        q = sqs_queues.c
        with self._journal.reader.connect() as conn:
            self._find(conn, account_id, name)
            stmt = select(q.name).where(q.dlq_account == account_id, q.dlq_name == name, q.account_id == account_id)
            name_order = self._by_name()
            if next_token is not None:
                stmt = stmt.where(name_order > _decode_token(next_token))
            limit = max_results or 1000
            names = [str(n) for n in conn.execute(stmt.order_by(name_order).limit(limit + 1)).scalars()]
        more = len(names) > limit
        names = names[:limit]
        return QueuePage(names, _encode_token(names[-1]) if more and max_results is not None else None)

    def get_queue_attributes(
        self, account_id: str, name: str, names: Sequence[str] = ("All",), *, queue_arn: str, now_ms: int
    ) -> dict[str, str]:
        """The attributes asked for (``All`` for every one); ``queue_arn`` is the API's (it knows the region).

        Raises :class:`InvalidAttributeName` for a name that is not an attribute. FIFO-only attributes are
        left out for a standard queue, and the policies when unset, as SQS does.
        """
        for attribute in names:
            if attribute != "All" and attribute not in QUEUE_ATTRIBUTES:
                raise InvalidAttributeName(f"Unknown Attribute {attribute!s:.256}.")
        wanted = set(QUEUE_ATTRIBUTES) if "All" in names else set(names)
        m = sqs_messages.c
        with self._journal.reader.connect() as conn:
            queue = self._find(conn, account_id, name)
            values = queue.attributes()
            values["QueueArn"] = queue_arn
            if wanted & set(COUNTS):
                live = and_(m.queue_id == queue.queue_id, m.retain_from_ms > now_ms - queue.retention_period * 1000)
                invisible = m.visible_ms > now_ms
                in_flight = and_(invisible, m.receipt_token != "")
                visible, not_visible, delayed = conn.execute(
                    select(
                        func.coalesce(func.sum(case((invisible, 0), else_=1)), 0),
                        func.coalesce(func.sum(case((in_flight, 1), else_=0)), 0),
                        func.coalesce(func.sum(case((and_(invisible, m.receipt_token == ""), 1), else_=0)), 0),
                    ).where(live)
                ).one()
                values.update(zip(COUNTS, (str(int(visible)), str(int(not_visible)), str(int(delayed))), strict=True))
        return {key: value for key, value in values.items() if key in wanted}

    def set_queue_attributes(self, account_id: str, name: str, attributes: Mapping[str, str], *, now_ms: int) -> Queue:
        """Change the settable attributes given (FifoQueue cannot change; "" removes a redrive policy)."""
        attributes = dict(attributes)
        with self._writing() as conn:
            queue = self._find(conn, account_id, name, lock=True)
            if "FifoQueue" in attributes:
                raise InvalidAttributeName("FifoQueue can only be set when the queue is created.")
            values = parse_attributes(attributes, fifo=queue.fifo)
            self._check_redrive(conn, account_id, name, queue.fifo, values)
            if "extra" in values:
                values["extra"] = kept_json(queue.extra, values["extra"])
            if values:
                q = sqs_queues.c
                conn.execute(
                    update(sqs_queues).where(q.queue_id == queue.queue_id).values(modified_ms=now_ms, **values)
                )
            return self._find(conn, account_id, name)

    @staticmethod
    def _check_tags(tags: dict[str, str]) -> dict[str, str]:
        if len(tags) > MAX_TAGS:
            raise InvalidParameterValue(f"Too many tags: a queue can have at most {MAX_TAGS}.")
        for key, value in tags.items():
            if not isinstance(key, str) or not 1 <= len(key) <= 128 or key.lower().startswith("aws:"):
                raise InvalidParameterValue(f"Tag key {key!r:.140} is invalid.")
            if not isinstance(value, str) or len(value) > 256:
                raise InvalidParameterValue(f"The value of tag {key!r} is invalid.")
            if BAD_CHARACTERS.search(key + value):
                raise InvalidParameterValue(f"Tag {key!r:.140} has characters outside the allowed set.")
        return tags

    def tag_queue(self, account_id: str, name: str, tags: Mapping[str, str]) -> None:
        """Add or replace tags (a queue has at most 50)."""
        with self._writing() as conn:
            queue = self._find(conn, account_id, name, lock=True)
            merged = self._check_tags({**queue.tags, **self._check_tags(dict(tags))})
            conn.execute(
                update(sqs_queues).where(sqs_queues.c.queue_id == queue.queue_id).values(tags=json.dumps(merged))
            )

    def untag_queue(self, account_id: str, name: str, keys: Sequence[str]) -> None:
        """Remove tags by key (keys that are not there are ignored)."""
        with self._writing() as conn:
            queue = self._find(conn, account_id, name, lock=True)
            kept = {k: v for k, v in queue.tags.items() if k not in set(keys)}
            conn.execute(
                update(sqs_queues).where(sqs_queues.c.queue_id == queue.queue_id).values(tags=json.dumps(kept))
            )

    def list_queue_tags(self, account_id: str, name: str) -> dict[str, str]:
        """The queue's tags."""
        return self.get_queue(account_id, name).tags

    # ---------------------------------------------------------------------------------------- sending

    def send_message(
        self, account_id: str, name: str, message: NewMessage, *, sender_id: str, now_ms: int
    ) -> SendResult:
        """Store one message, durably (committed before this returns); raises the error SQS gives."""
        with self._writing() as conn:
            queue, seq = self._reserve(conn, account_id, name, 1)
            return self._store(conn, queue, seq, check_message(queue, message), sender_id=sender_id, now_ms=now_ms)

    def send_message_in(
        self, conn: Connection, account_id: str, name: str, message: NewMessage, *, sender_id: str, now_ms: int
    ) -> SendResult:
        """Store one message in the caller's write transaction ``conn`` (on this store's journal), so it
        commits or rolls back with the caller's own writes (the event queue settling an event). Every
        check comes before the first write: a refused message (an error SQS gives) leaves ``conn`` as it
        was, and the caller's transaction may go on.
        """
        checked = check_message(self._find(conn, account_id, name), message)
        queue, seq = self._reserve(conn, account_id, name, 1)  # writes nothing when the queue is gone
        return self._store(conn, queue, seq, checked, sender_id=sender_id, now_ms=now_ms)

    def send_message_batch(
        self, account_id: str, name: str, entries: Sequence[tuple[str, NewMessage]], *, sender_id: str, now_ms: int
    ) -> list[SendResult | BatchError]:
        """Store up to 10 messages ``(id, message)`` in one transaction; per entry its result or error.

        The batch as a whole is refused for no entries, more than 10, bad or repeated ids, or more than
        1 MiB in all; an entry that is invalid on its own fails alone (BatchResultErrorEntry).
        """
        check_batch([entry_id for entry_id, _ in entries])
        # Every entry counts, valid or not (an entry too large alone makes the batch too long, as in SQS).
        if sum(rough_size(message) for _, message in entries) > MAX_BATCH_BYTES:
            raise BatchRequestTooLong(f"Batch requests cannot be longer than {MAX_BATCH_BYTES} bytes.")
        with self._writing() as conn:
            queue, first_seq = self._reserve(conn, account_id, name, len(entries))
            checked: list[CheckedMessage | BatchError] = []
            for entry_id, message in entries:
                try:
                    checked.append(check_message(queue, message))
                except QueueError as exc:
                    checked.append(BatchError(entry_id, exc.code, exc.message, exc.sender_fault))
            rows: list[dict[str, Any]] = []
            results = [
                c if isinstance(c, BatchError) else self._store(conn, queue, seq, c, sender_id=sender_id,
                                                                now_ms=now_ms, rows=rows)
                for seq, c in enumerate(checked, start=first_seq)
            ]  # fmt: skip
            if rows:
                conn.execute(INSERT_MESSAGES, rows)  # one statement for the batch's new messages
            return results

    def _reserve(self, conn: Connection, account_id: str, name: str, count: int) -> tuple[Queue, int]:
        """The queue and the first of ``count`` sequence numbers taken for its new messages; the update
        locks the queue's row, so sends to one queue (and FIFO deduplication) are serial."""
        check_account(account_id)
        if not valid_name(name):
            raise QueueDoesNotExist("The specified queue does not exist.")
        row = conn.execute(RESERVE_SEQ, {"b_account": account_id, "b_name": name, "b_count": count}).first()
        if row is None:
            raise QueueDoesNotExist("The specified queue does not exist.")
        return queue_from_row(row), int(row.next_seq) - count

    def _store(
        self,
        conn: Connection,
        queue: Queue,
        seq: int,
        checked: CheckedMessage,
        *,
        sender_id: str,
        now_ms: int,
        rows: list[dict[str, Any]] | None = None,
    ) -> SendResult:
        """Store one checked message (or find it a FIFO duplicate); with ``rows``, its row is appended there
        for the caller to insert with the batch's others instead of inserted now."""
        message = checked.message
        md5_body = md5_of_body(message.body)
        md5_attributes = md5_of_attributes(message.attributes)
        md5_system = md5_of_attributes(message.system_attributes)
        if queue.fifo:
            d = sqs_dedup.c
            seen = conn.execute(
                select(d.message_id, d.seq, d.created_ms).where(
                    d.queue_id == queue.queue_id, d.dedup_id == checked.dedup_key
                )
            ).first()
            if seen is not None and now_ms < int(seen.created_ms) + DEDUP_WINDOW_MS:
                sequence = format_sequence_number(int(seen.seq))
                return SendResult(str(seen.message_id), md5_body, md5_attributes, md5_system, sequence, duplicate=True)
            if seen is not None:
                conn.execute(delete(sqs_dedup).where(d.queue_id == queue.queue_id, d.dedup_id == checked.dedup_key))
        message_id = str(uuid.uuid4())
        delay = queue.delay_seconds if message.delay_seconds is None else message.delay_seconds
        row = {
            "message_id": message_id,
            "queue_id": queue.queue_id,
            "seq": seq,
            "body": checked.body,
            "attributes": encode_attributes(message.attributes),
            "system_attributes": encode_attributes(message.system_attributes),
            "md5_body": md5_body,
            "md5_attributes": md5_attributes,
            "md5_system": md5_system,
            "sender_id": sender_id,
            "group_id": message.group_id or "",
            "dedup_id": checked.dedup_id,
            "sent_ms": now_ms,
            "retain_from_ms": now_ms,
            "visible_ms": now_ms + delay * 1000,
            "first_receive_ms": 0,
            "receive_count": 0,
            "receipt_token": "",
        }
        if rows is None or queue.fifo:  # FIFO: a later entry's deduplication must see this one's row
            conn.execute(INSERT_MESSAGES, [row])
        else:
            rows.append(row)
        if queue.fifo:
            conn.execute(
                insert(sqs_dedup).values(
                    queue_id=queue.queue_id,
                    dedup_id=checked.dedup_key,
                    message_id=message_id,
                    seq=seq,
                    created_ms=now_ms,
                )
            )
        return SendResult(
            message_id, md5_body, md5_attributes, md5_system, format_sequence_number(seq) if queue.fifo else ""
        )

    # -------------------------------------------------------------------------------------- receiving

    def _ready(self, conn: Connection, queue: Queue, now_ms: int, limit: int, lock: str = "") -> list[Row[Any]]:
        """Up to ``limit`` of the queue's messages a receive may take now, in order (see
        :func:`~assignment.frontend.queues.statements.ready`)."""
        live_after = now_ms - queue.retention_period * 1000
        params = {"b_queue_id": queue.queue_id, "b_now": now_ms, "b_live_after": live_after, "b_limit": limit}
        return list(conn.execute(ready(fifo=queue.fifo, lock=lock), params).all())

    def _next_visible(self, conn: Connection, queue: Queue, now_ms: int) -> int | None:
        live_after = now_ms - queue.retention_period * 1000
        value = conn.execute(
            NEXT_VISIBLE, {"b_queue_id": queue.queue_id, "b_now": now_ms, "b_live_after": live_after}
        ).scalar()
        return None if value is None else int(value)

    def receive_messages(
        self,
        account_id: str,
        name: str,
        *,
        max_messages: int = 1,
        visibility_timeout: int | None = None,
        attempt_id: str | None = None,
        now_ms: int,
    ) -> Received:
        """Take up to ``max_messages`` (1-10) visible messages, invisible for ``visibility_timeout`` seconds
        (the queue's when ``None``), each with a fresh receipt handle; durably, in one transaction.

        On a FIFO queue, ``attempt_id`` (SQS's ReceiveRequestAttemptId) makes a retry within five minutes
        return the same messages and handles while none of them changed (:mod:`~assignment.frontend.queues.
        attempts`); on a standard queue it is refused (:class:`InvalidParameterValue`).

        A message already received the source queue's ``maxReceiveCount`` times is moved to the dead-letter
        queue instead (with its body, attributes, SentTimestamp and receive count; a FIFO message's retention
        starts again there, a standard message's does not, as SQS does). Expired messages of the queue are
        deleted. Answers what is visible now, and when the next invisible message will be.
        """
        if isinstance(max_messages, bool) or not isinstance(max_messages, int) or not 1 <= max_messages <= 10:
            raise InvalidParameterValue(
                f"Value {max_messages!r:.20} for parameter MaxNumberOfMessages is invalid. Reason: Must be between"
                " 1 and 10, if provided."
            )
        if visibility_timeout is not None:
            check_visibility(visibility_timeout)
        return self._receive(account_id, name, max_messages, visibility_timeout, now_ms, attempt_id=attempt_id)

    def take(self, account_id: str, name: str, *, max_messages: int, now_ms: int) -> Received:
        """:meth:`receive_messages` for the event source pollers: up to ``max_messages`` (1 to
        :data:`MAX_TAKE`, a mapping's BatchSize) in one transaction, invisible for the queue's visibility
        timeout. Not an SQS operation (SQS's receive takes at most 10): the pollers run beside the store."""
        if isinstance(max_messages, bool) or not isinstance(max_messages, int) or not 1 <= max_messages <= MAX_TAKE:
            raise InvalidParameterValue(f"max_messages must be 1 to {MAX_TAKE}, not {max_messages!r:.20}")
        return self._receive(account_id, name, max_messages, None, now_ms)

    def _receive(
        self,
        account_id: str,
        name: str,
        max_messages: int,
        visibility_timeout: int | None,
        now_ms: int,
        *,
        attempt_id: str | None = None,
    ) -> Received:
        # A queue whose last receive here found nothing is read first, so an idle poll takes no write lock
        # (SQLite) and writes nothing; one that had messages goes straight to the write (as does a retried
        # attempt, whose messages are invisible).
        key = (account_id, name)
        if key not in self._busy and attempt_id is None:
            with self._journal.reader.connect() as conn:
                queue = self._find(conn, account_id, name)
                if not self._ready(conn, queue, now_ms, 1):
                    return Received([], self._next_visible(conn, queue, now_ms))
        with self._writing() as conn:
            # A FIFO queue's receives are serial (its row locked): two pollers must not split a group. A
            # queue's kind is in its name (only a FIFO queue's ends in .fifo).
            queue = self._find(conn, account_id, name, lock=name.endswith(".fifo"))
            timeout = queue.visibility_timeout if visibility_timeout is None else visibility_timeout
            if attempt_id is not None:
                check_attempt_id(queue, attempt_id)
                replayed = replay(conn, queue, attempt_id, now_ms, timeout)
                if replayed is not None:
                    return Received([self._message_of(queue, row) for row in replayed], None)
            if self._expiry_due(queue.queue_id, now_ms):
                self._expire_queue(conn, queue, now_ms)
            lock = ("update" if queue.fifo else "skip_locked") if self._postgres else ""
            rows = self._ready(conn, queue, now_ms, max_messages, lock)
            self._note_busy(key, bool(rows))
            messages: list[Message] = []
            updates: list[dict[str, Any]] = []
            for row in rows:
                spent = queue.max_receive_count and int(row.receive_count) >= queue.max_receive_count
                if spent and self._redrive(conn, queue, row, now_ms):
                    continue
                messages.append(self._deliver(queue, row, timeout, now_ms, updates))
            if updates:
                conn.execute(MARK_RECEIVED, updates)  # one statement for the whole receive
            if attempt_id is not None:
                record(conn, queue, attempt_id, now_ms, [(u["b_id"], u["b_token"], u["b_visible"]) for u in updates])
            # When nothing was taken, when the next invisible message becomes visible (a long poll's cue).
            return Received(messages, None if messages else self._next_visible(conn, queue, now_ms))

    def _note_busy(self, key: tuple[str, str], busy: bool) -> None:
        with self._expiry_lock:
            if not busy:
                self._busy.discard(key)
            elif len(self._busy) < _EXPIRY_MEMORY:
                self._busy.add(key)

    def _expiry_due(self, queue_id: str, now_ms: int) -> bool:
        """Whether a receive should delete the queue's expired messages now: at most once a second per
        queue and process (they are never returned anyway; this and the sweep only free their rows)."""
        with self._expiry_lock:
            if now_ms < self._expired_at.get(queue_id, 0) + _EXPIRE_EVERY_MS:
                return False
            if len(self._expired_at) > _EXPIRY_MEMORY:
                self._expired_at.clear()
            self._expired_at[queue_id] = now_ms
            return True

    def _deliver(
        self, queue: Queue, row: Row[Any], timeout: int, now_ms: int, updates: list[dict[str, Any]]
    ) -> Message:
        """The received message of ``row``; its row's new receive state is appended to ``updates``."""
        token = secrets.token_hex(TOKEN_BYTES)
        first_receive = int(row.first_receive_ms) or now_ms
        count = int(row.receive_count) + 1
        updates.append(
            {
                "b_id": row.message_id,
                "b_count": count,
                "b_first": first_receive,
                "b_visible": now_ms + timeout * 1000,
                "b_token": token,
            }
        )
        return self._message_of(queue, row, token, count, first_receive)

    @staticmethod
    def _message_of(
        queue: Queue, row: Row[Any], token: str | None = None, count: int | None = None, first_receive: int = 0
    ) -> Message:
        """The message of ``row`` as received with ``token`` (by default the row's own receive state)."""
        if token is None:
            token, count, first_receive = str(row.receipt_token), int(row.receive_count), int(row.first_receive_ms)
        attributes = {
            "SenderId": str(row.sender_id),
            "SentTimestamp": str(row.sent_ms),
            "ApproximateReceiveCount": str(count),
            "ApproximateFirstReceiveTimestamp": str(first_receive),
        }
        system = decode_attributes(row.system_attributes)
        if "AWSTraceHeader" in system:
            attributes["AWSTraceHeader"] = str(system["AWSTraceHeader"].string_value)
        if row.group_id:
            attributes["MessageGroupId"] = str(row.group_id)
        if queue.fifo:
            attributes["MessageDeduplicationId"] = str(row.dedup_id)
            attributes["SequenceNumber"] = format_sequence_number(int(row.seq))
        return Message(
            message_id=str(row.message_id),
            receipt_handle=make_receipt_handle(queue.queue_id, str(row.message_id), token),
            body=bytes(row.body).decode("utf-8"),
            md5_of_body=str(row.md5_body),
            md5_of_attributes=str(row.md5_attributes),
            message_attributes=decode_attributes(row.attributes),
            attributes=attributes,
        )

    def _redrive(self, conn: Connection, queue: Queue, row: Row[Any], now_ms: int) -> bool:
        """Move the message to the queue's dead-letter queue; ``False`` when that queue is gone (or changed
        kind), and the message is delivered as usual."""
        try:
            target, seq = self._reserve(conn, queue.dlq_account, queue.dlq_name, 1)
        except QueueDoesNotExist:
            return False
        if target.fifo != queue.fifo:
            return False
        m = sqs_messages.c
        conn.execute(
            update(sqs_messages)
            .where(m.message_id == row.message_id)
            .values(
                queue_id=target.queue_id,
                seq=seq,
                visible_ms=now_ms,
                receipt_token="",
                retain_from_ms=now_ms if queue.fifo else int(row.retain_from_ms),
            )
        )
        return True

    def _expire_queue(self, conn: Connection, queue: Queue, now_ms: int) -> None:
        m = sqs_messages.c
        expired = select(m.message_id).where(
            m.queue_id == queue.queue_id, m.retain_from_ms <= now_ms - queue.retention_period * 1000
        )
        if self._postgres:
            expired = expired.with_for_update(skip_locked=True)
        conn.execute(delete(sqs_messages).where(m.message_id.in_(expired.scalar_subquery())))

    # ------------------------------------------------------------------------- deleting and visibility

    def _handle_of(self, queue: Queue, receipt_handle: str) -> tuple[str, str]:
        """``(message_id, token)`` of a receipt handle of ``queue``'s."""
        queue_id, message_id, token = parse_receipt_handle(receipt_handle)
        if queue_id != queue.queue_id:
            raise ReceiptHandleIsInvalid(
                f"The input receipt handle {receipt_handle[:100]!r} is not a valid receipt handle for this queue."
            )
        return message_id, token

    def _delete(self, conn: Connection, queue: Queue, receipt_handle: str) -> bool:
        message_id, token = self._handle_of(queue, receipt_handle)
        m = sqs_messages.c
        deleted = conn.execute(
            delete(sqs_messages).where(
                m.message_id == message_id, m.queue_id == queue.queue_id, m.receipt_token == token
            )
        ).rowcount
        return bool(deleted)

    def delete_message(self, account_id: str, name: str, receipt_handle: str) -> bool:
        """Delete the message received with ``receipt_handle``; whether it was deleted.

        A malformed handle, or one of another queue (or of an earlier queue of that name), raises
        :class:`ReceiptHandleIsInvalid`. A well-formed handle of a message already deleted (or expired), or
        superseded by a later receive of the message, succeeds and deletes nothing (``False``): SQS documents
        that an old handle "will succeed, but the message might not be deleted", and only the latest
        receiver's handle deleting keeps a slow consumer, whose visibility timeout ran out, from deleting a
        message another consumer is processing. The latest handle deletes even after the visibility timeout
        ran out, as long as nobody received the message since.
        """
        with self._writing() as conn:
            return self._delete(conn, self._find(conn, account_id, name), receipt_handle)

    def delete_message_batch(
        self, account_id: str, name: str, entries: Sequence[tuple[str, str]]
    ) -> list[str | BatchError]:
        """Delete up to 10 messages ``(id, receipt handle)`` in one transaction; per entry its id (success,
        as :meth:`delete_message` counts it) or its error."""
        check_batch([entry_id for entry_id, _ in entries])
        results: list[str | BatchError] = []
        with self._writing() as conn:
            queue = self._find(conn, account_id, name)
            keys: list[tuple[str, str]] = []
            for entry_id, handle in entries:
                try:
                    keys.append(self._handle_of(queue, handle))
                    results.append(entry_id)
                except QueueError as exc:
                    results.append(BatchError(entry_id, exc.code, exc.message, exc.sender_fault))
            if keys:  # one statement; an entry succeeds whether or not its handle still deletes (see delete_message)
                self._delete_keys(conn, queue, keys)
        return results

    @staticmethod
    def _delete_keys(conn: Connection, queue: Queue, keys: list[tuple[str, str]]) -> int:
        """Delete the queue's messages of ``(message id, receipt token)`` ``keys``; how many were deleted."""
        params = [{"b_id": message_id, "b_queue_id": queue.queue_id, "b_token": token} for message_id, token in keys]
        return int(conn.execute(DELETE_RECEIVED, params).rowcount)  # the sum over the rows (both drivers)

    def delete_received(self, account_id: str, name: str, receipt_handles: Sequence[str]) -> int:
        """Delete any number of received messages by receipt handle in one transaction (the pollers' delete
        of a processed batch; each handle deletes under the rule of :meth:`delete_message`); how many were
        deleted. A malformed handle, or one of another queue, raises :class:`ReceiptHandleIsInvalid`."""
        with self._writing() as conn:
            queue = self._find(conn, account_id, name)
            keys = [self._handle_of(queue, handle) for handle in receipt_handles]
            return self._delete_keys(conn, queue, keys) if keys else 0

    def _change(self, conn: Connection, queue: Queue, receipt_handle: str, timeout: object, now_ms: int) -> None:
        message_id, token = self._handle_of(queue, receipt_handle)
        seconds = check_visibility(timeout)
        m = sqs_messages.c
        changed = conn.execute(
            update(sqs_messages)
            .where(
                m.message_id == message_id,
                m.queue_id == queue.queue_id,
                m.receipt_token == token,
                m.visible_ms > now_ms,
            )
            .values(visible_ms=now_ms + seconds * 1000)
        ).rowcount
        if changed:
            return
        current = conn.execute(
            select(m.receipt_token).where(m.message_id == message_id, m.queue_id == queue.queue_id)
        ).scalar_one_or_none()
        if current is None:
            raise not_in_flight_visibility(message_id)
        if current != token:
            raise ReceiptHandleIsInvalid(f"The receipt handle {receipt_handle[:100]!r} has expired.")
        raise MessageNotInflight(f"Message {message_id} is not in flight.")

    def change_message_visibility(
        self, account_id: str, name: str, receipt_handle: str, visibility_timeout: int, *, now_ms: int
    ) -> None:
        """Make an in-flight message visible again ``visibility_timeout`` seconds (0-43200) from now.

        Raises :class:`MessageNotInflight` when its visibility timeout has run out already,
        :class:`ReceiptHandleIsInvalid` for a malformed handle or one superseded by a later receive, and
        :class:`InvalidParameterValue` (SQS's answer) when the message no longer exists.
        """
        with self._writing() as conn:
            self._change(conn, self._find(conn, account_id, name), receipt_handle, visibility_timeout, now_ms)

    def change_message_visibility_batch(
        self, account_id: str, name: str, entries: Sequence[tuple[str, str, int]], *, now_ms: int
    ) -> list[str | BatchError]:
        """:meth:`change_message_visibility` for up to 10 ``(id, receipt handle, timeout)``, one transaction;
        per entry its id or its error."""
        check_batch([entry[0] for entry in entries])
        results: list[str | BatchError] = []
        with self._writing() as conn:
            queue = self._find(conn, account_id, name)
            for entry_id, handle, timeout in entries:
                try:
                    self._change(conn, queue, handle, timeout, now_ms)
                    results.append(entry_id)
                except QueueError as exc:
                    results.append(BatchError(entry_id, exc.code, exc.message, exc.sender_fault))
        return results

    # -------------------------------------------------------------------------------------- retention

    def expire(self, now_ms: int) -> int:
        """Delete every message past its queue's retention period, deduplication ids and receive attempts
        past their five minutes and deleted names past their 60 seconds; returns how many messages went."""
        m, q = sqs_messages.c, sqs_queues.c
        retention = select(q.retention_period).where(q.queue_id == m.queue_id).scalar_subquery()
        with self._writing() as conn:
            expired = int(
                conn.execute(delete(sqs_messages).where(m.retain_from_ms + retention * 1000 <= now_ms)).rowcount
            )
            conn.execute(delete(sqs_dedup).where(sqs_dedup.c.created_ms <= now_ms - DEDUP_WINDOW_MS))
            expire_attempts(conn, now_ms)
            conn.execute(
                delete(sqs_deleted_queues).where(sqs_deleted_queues.c.deleted_ms <= now_ms - REUSE_NAME_AFTER_MS)
            )
        return expired
