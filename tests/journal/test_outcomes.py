"""One Outcome: the Python enum, the protobuf enum and the core's labels say the same thing."""

from __future__ import annotations

from typing import get_args

from journal.outcomes import LABELS, Outcome, OutcomeLabel
from journal.v1 import records_pb2


def test_the_enum_is_the_protobuf_enum() -> None:
    wire = {v.name.removeprefix("OUTCOME_"): v.number for v in records_pb2.Outcome.DESCRIPTOR.values if v.number}
    assert {o.name: o.value for o in Outcome} == wire


def test_labels_are_the_cores_names() -> None:
    assert set(get_args(OutcomeLabel)) == LABELS == {o.label for o in Outcome}
    assert [o for o in Outcome if o.keeps_sandbox] == [Outcome.OK, Outcome.FUNCTION_ERROR]


def test_lookups_refuse_what_is_not_an_outcome() -> None:
    assert Outcome.of_wire(records_pb2.OUTCOME_UNSPECIFIED) is None
    assert Outcome.of_wire(99) is None
    assert Outcome.of_label("OK") is None
    assert Outcome.of_label(1) is None
    assert Outcome.of_label("out_of_memory") is Outcome.OUT_OF_MEMORY
