"""Lambda's event-filtering language (FilterCriteria) as the pollers apply it: every operator matching and
not matching, SQS bodies that are JSON or plain text, ``$or``, arrays, nesting, and every invalid input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assignment.frontend.event_sources.filters import (
    MAX_FILTERS,
    MAX_PATTERN_CHARS,
    FilterError,
    parse_filter_criteria,
    sqs_view,
)


def criteria(*patterns: object) -> Any:
    return parse_filter_criteria({"Filters": [{"Pattern": json.dumps(p)} for p in patterns]})


def record(body: object, **extra: object) -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    return sqs_view({"messageId": "m1", "body": text, "attributes": {"ApproximateReceiveCount": "1"}, **extra})


@pytest.mark.parametrize(
    ("pattern", "body", "expected"),
    [
        ({"body": {"kind": ["order"]}}, {"kind": "order"}, True),
        ({"body": {"kind": ["order"]}}, {"kind": "refund"}, False),
        ({"body": {"kind": ["order", "refund"]}}, {"kind": "refund"}, True),
        ({"body": {"n": [5]}}, {"n": 5.0}, True),
        ({"body": {"n": [5]}}, {"n": "5"}, False),
        ({"body": {"ok": [True]}}, {"ok": True}, True),
        ({"body": {"ok": [True]}}, {"ok": 1}, False),
        ({"body": {"v": [None]}}, {"v": None}, True),
        ({"body": {"v": [None]}}, {}, False),
        ({"body": {"v": [""]}}, {"v": ""}, True),
        ({"body": {"s": [{"prefix": "ab"}]}}, {"s": "abc"}, True),
        ({"body": {"s": [{"prefix": "ab"}]}}, {"s": "xabc"}, False),
        ({"body": {"s": [{"suffix": ".png"}]}}, {"s": "a.png"}, True),
        ({"body": {"s": [{"suffix": ".png"}]}}, {"s": "a.jpg"}, False),
        ({"body": {"s": [{"equals-ignore-case": "ABC"}]}}, {"s": "aBc"}, True),
        ({"body": {"s": [{"equals-ignore-case": "ABC"}]}}, {"s": "abd"}, False),
        ({"body": {"n": [{"numeric": [">", 10]}]}}, {"n": 11}, True),
        ({"body": {"n": [{"numeric": [">", 10]}]}}, {"n": 10}, False),
        ({"body": {"n": [{"numeric": ["=", 3]}]}}, {"n": 3.0}, True),
        ({"body": {"n": [{"numeric": [">=", 0, "<", 5]}]}}, {"n": 0}, True),
        ({"body": {"n": [{"numeric": [">=", 0, "<", 5]}]}}, {"n": 5}, False),
        ({"body": {"n": [{"numeric": [">", 1]}]}}, {"n": "2"}, False),
        ({"body": {"x": [{"exists": True}]}}, {"x": 0}, True),
        ({"body": {"x": [{"exists": True}]}}, {}, False),
        ({"body": {"x": [{"exists": False}]}}, {}, True),
        ({"body": {"x": [{"exists": False}]}}, {"x": 1}, False),
        ({"body": {"s": [{"anything-but": ["a", "b"]}]}}, {"s": "c"}, True),
        ({"body": {"s": [{"anything-but": ["a", "b"]}]}}, {"s": "a"}, False),
        ({"body": {"s": [{"anything-but": "a"}]}}, {"s": "b"}, True),
        ({"body": {"s": [{"anything-but": ["a"]}]}}, {}, False),
        ({"body": {"s": [{"anything-but": {"prefix": "tmp"}}]}}, {"s": "tmpfile"}, False),
        ({"body": {"s": [{"anything-but": {"prefix": "tmp"}}]}}, {"s": "file"}, True),
        ({"body": {"tags": ["red"]}}, {"tags": ["blue", "red"]}, True),
        ({"body": {"tags": ["red"]}}, {"tags": ["blue"]}, False),
        ({"body": {"a": {"b": {"c": ["deep"]}}}}, {"a": {"b": {"c": "deep"}}}, True),
        ({"body": {"a": {"b": ["x"]}}}, {"a": "not an object"}, False),
        ({"body": {"kind": ["order"], "n": [{"numeric": [">", 1]}]}}, {"kind": "order", "n": 1}, False),
        ({"body": {"$or": [{"kind": ["a"]}, {"n": [1]}]}}, {"kind": "b", "n": 1}, True),
        ({"body": {"$or": [{"kind": ["a"]}, {"n": [1]}]}}, {"kind": "b", "n": 2}, False),
        ({"body": ["plain text"]}, "plain text", True),
        ({"body": ["plain text"]}, "other text", False),
        ({"body": {"kind": ["order"]}}, "plain text", False),  # a JSON pattern cannot look into plain text
        ({"body": ["plain"]}, {"plain": 1}, False),
        ({"attributes": {"ApproximateReceiveCount": ["1"]}}, {}, True),
        ({"messageId": [{"prefix": "m"}]}, {}, True),
    ],
)
def test_matching(pattern: dict[str, Any], body: object, expected: bool) -> None:
    assert criteria(pattern).matches(record(body)) is expected


def test_any_filter_passes_and_no_filters_pass_everything() -> None:
    both = criteria({"body": {"k": ["a"]}}, {"body": {"k": ["b"]}})
    assert both.matches(record({"k": "b"}))
    assert not both.matches(record({"k": "c"}))
    assert parse_filter_criteria({"Filters": []}).matches(record("anything"))
    assert parse_filter_criteria({}).matches(record("anything"))


def test_the_document_round_trips() -> None:
    source = '{"body": {"k": ["a"]}}'
    parsed = parse_filter_criteria({"Filters": [{"Pattern": source}]})
    assert parsed.to_document() == {"Filters": [{"Pattern": source}]}


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ([], "FilterCriteria"),
        ({"Filters": [], "Other": 1}, "FilterCriteria"),
        ({"Filters": "x"}, "FilterCriteria.Filters"),
        ({"Filters": [{"Pattern": "{}"}] * (MAX_FILTERS + 1)}, "FilterCriteria.Filters"),
        ({"Filters": [{}]}, "FilterCriteria.Filters.1"),
        ({"Filters": [{"Pattern": "{}", "Extra": 1}]}, "FilterCriteria.Filters.1"),
        ({"Filters": [{"Pattern": 5}]}, "FilterCriteria.Filters.1.Pattern"),
        ({"Filters": [{"Pattern": "{not json"}]}, "FilterCriteria.Filters.1.Pattern"),
        ({"Filters": [{"Pattern": "[1]"}]}, "FilterCriteria.Filters.1.Pattern"),
        ({"Filters": [{"Pattern": "{}"}]}, "FilterCriteria.Filters.1.Pattern"),
        ({"Filters": [{"Pattern": '{"a": ' + '"x" ' * 2000 + "}"}]}, "FilterCriteria.Filters.1.Pattern"),
        ({"Filters": [{"Pattern": json.dumps({"a": "x" * MAX_PATTERN_CHARS})}]}, "FilterCriteria.Filters.1.Pattern"),
    ],
)
def test_invalid_criteria(document: object, field: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter_criteria(document)
    assert caught.value.field == field
    assert caught.value.message.startswith("Invalid filter pattern definition.")


@pytest.mark.parametrize(
    "pattern",
    [
        {"a": "not a list"},
        {"a": []},
        {"a": [{"prefix": 5}]},
        {"a": [{"suffix": None}]},
        {"a": [{"numeric": [">", "x"]}]},
        {"a": [{"numeric": ["<", 5, ">", 1]}]},
        {"a": [{"numeric": [">", 5, "<", 1]}]},
        {"a": [{"numeric": ["~", 5]}]},
        {"a": [{"numeric": [">"]}]},
        {"a": [{"exists": "yes"}]},
        {"a": [{"anything-but": []}]},
        {"a": [{"anything-but": {"other": "x"}}]},
        {"a": [{"cidr": "10.0.0.0/8"}]},
        {"a": [{"prefix": "a", "suffix": "b"}]},
        {"a": [[1]]},
        {"a": [{"nested": {"x": 1}}]},
        {"$or": [{"a": ["x"]}]},
        {"$or": "x"},
        {"a": [1.5e400]},
    ],
)
def test_invalid_patterns_name_where(pattern: dict[str, Any]) -> None:
    text = json.dumps(pattern).replace("Infinity", "1e400")
    with pytest.raises(FilterError) as caught:
        parse_filter_criteria({"Filters": [{"Pattern": text}]})
    assert caught.value.field.startswith("FilterCriteria.Filters.1.Pattern")


def test_nesting_is_bounded() -> None:
    pattern: Any = ["x"]
    for _ in range(40):
        pattern = {"a": pattern}
    with pytest.raises(FilterError, match="nest"):
        parse_filter_criteria({"Filters": [{"Pattern": json.dumps(pattern)}]})


@given(st.text(max_size=20), st.lists(st.text(max_size=5), min_size=1, max_size=4))
def test_anything_but_is_the_negation_of_equality(value: str, excluded: list[str]) -> None:
    view = record({"s": value})
    assert criteria({"body": {"s": [{"anything-but": excluded}]}}).matches(view) is not criteria(
        {"body": {"s": excluded}}
    ).matches(view)


@given(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=5))
def test_every_record_passes_empty_criteria(body: dict[str, Any]) -> None:
    assert parse_filter_criteria({"Filters": []}).matches(record(body))
