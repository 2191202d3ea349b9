"""Errors of the assignment service, one name per thing a caller can see; mapped to gRPC once, in
:mod:`assignment.service`.

Example::

    raise Throttled("account_limit")
"""

from __future__ import annotations

__all__ = [
    "AssignmentError",
    "BadArgument",
    "LeaseGone",
    "NotLeader",
    "Recovering",
    "Throttled",
    "UnknownLeaseToken",
]


class AssignmentError(Exception):
    """Base of every error the service returns on purpose."""


class NotLeader(AssignmentError):
    """This server does not lead the partition; ``leader_address`` is the leader's when known."""

    def __init__(self, partition: int, leader_address: str | None) -> None:
        where = f"; the leader is at {leader_address}" if leader_address else "; no leader is known"
        super().__init__(f"not the leader of partition {partition}{where}")
        self.partition = partition
        self.leader_address = leader_address


class Recovering(AssignmentError):
    """The partition's leader is starting, stepping down, or rebuilding its state: retry shortly."""

    def __init__(self, partition: int, why: str) -> None:
        super().__init__(f"partition {partition} is unavailable: {why}")
        self.partition = partition
        self.why = why


class Throttled(AssignmentError):
    """No lease now; ``reason`` is ``account_limit``, ``reserved_limit``, ``scale_up_rate`` or ``no_capacity``."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"throttled: {reason}")
        self.reason = reason


class BadArgument(AssignmentError):
    """A request field is malformed; ``field`` names it."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"invalid {field}: {why}")
        self.field = field
        self.why = why


class UnknownLeaseToken(AssignmentError):
    """The lease token was never issued by the partition."""


class LeaseGone(AssignmentError):
    """The lease was issued but is no longer held (released, expired, or its sandbox is gone)."""
