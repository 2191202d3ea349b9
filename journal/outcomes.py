"""How an invocation ended: the one vocabulary of the worker that sees it, the frontend that reports it,
the assignment service that journals it and the partition core that acts on it.

:class:`Outcome`'s values are the protobuf enum ``leasehold.journal.v1.Outcome`` (``records.proto``), so a
member goes into a message as it is; its :attr:`~Outcome.label` (the name in lower case: ``"ok"``,
``"function_error"``, ...) is what the partition core and the logs take. ``OK`` and ``FUNCTION_ERROR``
keep the sandbox; the others break it. It lives in the journal, the lowest package, because the enum is
the journal's and every package above uses it; it imports only the generated protobuf module.

Example::

    request.outcome = Outcome.TIMEOUT.wire       # the proto value
    core.release(token, Outcome.TIMEOUT.label, now_ms)
    assert Outcome.of_wire(request.outcome) is Outcome.TIMEOUT
    assert Outcome.of_label("crash") is Outcome.CRASH and not Outcome.CRASH.keeps_sandbox
"""

from __future__ import annotations

import enum
from typing import Literal, cast

from journal.v1 import records_pb2

__all__ = ["LABELS", "Outcome", "OutcomeLabel"]

#: The core's names of the outcomes (``assignment._core.Outcome``).
OutcomeLabel = Literal["ok", "function_error", "timeout", "crash", "out_of_memory"]


class Outcome(enum.IntEnum):
    """How an invocation ended; the values are ``leasehold.journal.v1.Outcome``'s."""

    OK = records_pb2.OUTCOME_OK
    FUNCTION_ERROR = records_pb2.OUTCOME_FUNCTION_ERROR
    TIMEOUT = records_pb2.OUTCOME_TIMEOUT
    CRASH = records_pb2.OUTCOME_CRASH
    OUT_OF_MEMORY = records_pb2.OUTCOME_OUT_OF_MEMORY

    @property
    def label(self) -> OutcomeLabel:
        """The name the core and the logs use (``"out_of_memory"``)."""
        return cast(OutcomeLabel, self.name.lower())

    @property
    def wire(self) -> records_pb2.Outcome.ValueType:
        """The value for a protobuf message's ``outcome`` field."""
        return records_pb2.Outcome.ValueType(self.value)

    @property
    def keeps_sandbox(self) -> bool:
        """Whether the sandbox is still usable after it (it goes back to its warm pool)."""
        return self in (Outcome.OK, Outcome.FUNCTION_ERROR)

    @classmethod
    def of_label(cls, label: object) -> Outcome | None:
        """The outcome with that label, or ``None``."""
        return _BY_LABEL.get(label) if isinstance(label, str) else None

    @classmethod
    def of_wire(cls, value: int) -> Outcome | None:
        """The outcome of a message's enum value, or ``None`` (unspecified or unknown)."""
        return _BY_VALUE.get(value)


_BY_LABEL: dict[str, Outcome] = {outcome.label: outcome for outcome in Outcome}
_BY_VALUE: dict[int, Outcome] = {int(outcome): outcome for outcome in Outcome}
#: Every label, for messages that list them.
LABELS: frozenset[str] = frozenset(_BY_LABEL)
