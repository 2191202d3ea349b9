"""Lambda's event-filtering language (FilterCriteria) as the pollers apply it.

Every operator matching and not matching, AWS's rule on the format of an SQS body, ``$or``, arrays,
nesting, metadata keys, every invalid input with the field it names, and properties: ``anything-but`` is
the negation of equality, empty criteria pass everything, ``$or`` is a list of filters, numbers compare
as numbers, and matching never parses a pattern again nor raises on hostile bodies.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assignment.frontend import event_sources
from assignment.frontend.event_sources import filters
from assignment.frontend.event_sources.filters import (
    MAX_FILTERS,
    MAX_NESTING,
    MAX_PATTERN_CHARS,
    FilterCriteria,
    FilterError,
    parse_filter_criteria,
    sqs_view,
)


def criteria(*patterns: object) -> FilterCriteria:
    return parse_filter_criteria({"Filters": [{"Pattern": json.dumps(p)} for p in patterns]})


def sqs_record(body: str, **extra: object) -> dict[str, Any]:
    """A record as Lambda puts it in ``Records[]`` (and as ``sqs_event.sqs_record`` makes it)."""
    return {
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1545082649183", "SenderId": "AIDAIENQ"},
        "messageAttributes": {"color": {"stringValue": "red", "stringListValues": [], "dataType": "String"}},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:jobs",
        "awsRegion": "us-east-1",
        **extra,
    }


def view(body: object) -> dict[str, Any]:
    """The view of a record whose body is ``body`` (a str as is, anything else as its JSON)."""
    return sqs_view(sqs_record(body if isinstance(body, str) else json.dumps(body)))


def passes(pattern: object, body: object) -> bool:
    return criteria(pattern).matches(view(body))


# ------------------------------------------------------------------------------------ operators, both ways

OPERATOR_CASES = [
    # exact strings: character by character, no case folding
    ("string", {"body": {"k": ["order"]}}, {"k": "order"}, True),
    ("string other", {"body": {"k": ["order"]}}, {"k": "refund"}, False),
    ("string case", {"body": {"k": ["order"]}}, {"k": "Order"}, False),
    ("string or", {"body": {"k": ["order", "refund"]}}, {"k": "refund"}, True),
    ("string missing", {"body": {"k": ["order"]}}, {}, False),
    ("string is not a number", {"body": {"k": ["5"]}}, {"k": 5}, False),
    # numbers: as numbers, never strings
    ("number", {"body": {"n": [5]}}, {"n": 5}, True),
    ("number 5 matches 5.0", {"body": {"n": [5]}}, {"n": 5.0}, True),
    ("number 5.0 matches 5", {"body": {"n": [5.0]}}, {"n": 5}, True),
    ("number 300 matches 3.0e2", {"body": {"n": [300]}}, '{"n": 3.0e2}', True),
    ("number other", {"body": {"n": [5]}}, {"n": 5.5}, False),
    ("number is not a string", {"body": {"n": [5]}}, {"n": "5"}, False),
    ("number is not a boolean", {"body": {"n": [1]}}, {"n": True}, False),
    ("large integer", {"body": {"id": [123456789012345678]}}, {"id": 123456789012345678}, True),
    ("large integer other", {"body": {"id": [123456789012345678]}}, {"id": 123456789012345679}, False),
    # booleans and null
    ("true", {"body": {"ok": [True]}}, {"ok": True}, True),
    ("true is not 1", {"body": {"ok": [True]}}, {"ok": 1}, False),
    ("false is not 0", {"body": {"ok": [False]}}, {"ok": 0}, False),
    ("false", {"body": {"ok": [False]}}, {"ok": False}, True),
    ("null", {"body": {"v": [None]}}, {"v": None}, True),
    ("null is not missing", {"body": {"v": [None]}}, {}, False),
    ("null is not the string", {"body": {"v": [None]}}, {"v": "null"}, False),
    # empty
    ("empty", {"body": {"v": [""]}}, {"v": ""}, True),
    ("empty is not a space", {"body": {"v": [""]}}, {"v": " "}, False),
    ("empty is not missing", {"body": {"v": [""]}}, {}, False),
    # prefix, suffix
    ("prefix", {"body": {"r": [{"prefix": "us-"}]}}, {"r": "us-east-1"}, True),
    ("prefix other", {"body": {"r": [{"prefix": "us-"}]}}, {"r": "eu-west-1"}, False),
    ("prefix case", {"body": {"r": [{"prefix": "us-"}]}}, {"r": "US-east-1"}, False),
    ("prefix strings only", {"body": {"r": [{"prefix": "5"}]}}, {"r": 55}, False),
    ("empty prefix, any string", {"body": {"r": [{"prefix": ""}]}}, {"r": "x"}, True),
    ("suffix", {"body": {"f": [{"suffix": ".png"}]}}, {"f": "a.png"}, True),
    ("suffix other", {"body": {"f": [{"suffix": ".png"}]}}, {"f": "a.png.jpg"}, False),
    ("suffix strings only", {"body": {"f": [{"suffix": "1"}]}}, {"f": 1}, False),
    # equals-ignore-case
    ("ignore case", {"body": {"s": [{"equals-ignore-case": "alice"}]}}, {"s": "ALICE"}, True),
    ("ignore case other", {"body": {"s": [{"equals-ignore-case": "alice"}]}}, {"s": "Dalice"}, False),
    ("ignore case strings only", {"body": {"s": [{"equals-ignore-case": "1"}]}}, {"s": 1}, False),
    ("ignore case is not folding", {"body": {"s": [{"equals-ignore-case": "SS"}]}}, {"s": "ß"}, False),
    # anything-but
    ("anything-but list", {"body": {"w": [{"anything-but": ["Raining", "Snow"]}]}}, {"w": "Sunny"}, True),
    ("anything-but list hit", {"body": {"w": [{"anything-but": ["Raining", "Snow"]}]}}, {"w": "Snow"}, False),
    ("anything-but single", {"body": {"w": [{"anything-but": "Raining"}]}}, {"w": "Sunny"}, True),
    ("anything-but single hit", {"body": {"w": [{"anything-but": "Raining"}]}}, {"w": "Raining"}, False),
    ("anything-but missing", {"body": {"w": [{"anything-but": ["Raining"]}]}}, {}, False),
    ("anything-but an object", {"body": {"w": [{"anything-but": ["x"]}]}}, {"w": {"a": 1}}, False),
    ("anything-but another type", {"body": {"w": [{"anything-but": ["5"]}]}}, {"w": 5}, True),
    ("anything-but number", {"body": {"n": [{"anything-but": 5}]}}, {"n": 5.0}, False),
    ("anything-but numbers", {"body": {"n": [{"anything-but": [1, 2]}]}}, {"n": 3}, True),
    ("anything-but prefix", {"body": {"s": [{"anything-but": {"prefix": "tmp"}}]}}, {"s": "tmpfile"}, False),
    ("anything-but prefix other", {"body": {"s": [{"anything-but": {"prefix": "tmp"}}]}}, {"s": "file"}, True),
    ("anything-but suffix", {"body": {"s": [{"anything-but": {"suffix": ".tmp"}}]}}, {"s": "a.tmp"}, False),
    ("anything-but suffix other", {"body": {"s": [{"anything-but": {"suffix": ".tmp"}}]}}, {"s": "a.txt"}, True),
    (
        "anything-but ignore case",
        {"body": {"s": [{"anything-but": {"equals-ignore-case": ["A", "b"]}}]}},
        {"s": "B"},
        False,
    ),
    (
        "anything-but ignore case other",
        {"body": {"s": [{"anything-but": {"equals-ignore-case": "a"}}]}},
        {"s": "c"},
        True,
    ),
    ("anything-but any element", {"body": {"t": [{"anything-but": ["a"]}]}}, {"t": ["a", "b"]}, True),
    ("anything-but every element", {"body": {"t": [{"anything-but": ["a", "b"]}]}}, {"t": ["a", "b"]}, False),
    # numeric
    ("numeric =", {"body": {"p": [{"numeric": ["=", 100]}]}}, {"p": 100.0}, True),
    ("numeric = other", {"body": {"p": [{"numeric": ["=", 100]}]}}, {"p": 100.5}, False),
    ("numeric <", {"body": {"p": [{"numeric": ["<", 10]}]}}, {"p": 9.99}, True),
    ("numeric < edge", {"body": {"p": [{"numeric": ["<", 10]}]}}, {"p": 10}, False),
    ("numeric <=", {"body": {"p": [{"numeric": ["<=", 10]}]}}, {"p": 10}, True),
    ("numeric <= other", {"body": {"p": [{"numeric": ["<=", 10]}]}}, {"p": 10.01}, False),
    ("numeric >", {"body": {"p": [{"numeric": [">", 10]}]}}, {"p": 11}, True),
    ("numeric > edge", {"body": {"p": [{"numeric": [">", 10]}]}}, {"p": 10}, False),
    ("numeric >=", {"body": {"p": [{"numeric": [">=", -1.5]}]}}, {"p": -1.5}, True),
    ("numeric >= other", {"body": {"p": [{"numeric": [">=", -1.5]}]}}, {"p": -2}, False),
    ("numeric range", {"body": {"p": [{"numeric": [">", 10, "<=", 20]}]}}, {"p": 20}, True),
    ("numeric range low", {"body": {"p": [{"numeric": [">", 10, "<=", 20]}]}}, {"p": 10}, False),
    ("numeric range high", {"body": {"p": [{"numeric": [">=", 0, "<", 5]}]}}, {"p": 5}, False),
    ("numeric range inside", {"body": {"p": [{"numeric": [">=", 0, "<", 5]}]}}, {"p": 0}, True),
    ("numeric numbers only", {"body": {"p": [{"numeric": [">", 1]}]}}, {"p": "2"}, False),
    ("numeric not booleans", {"body": {"p": [{"numeric": [">", 0]}]}}, {"p": True}, False),
    ("numeric any element", {"body": {"p": [{"numeric": [">", 10]}]}}, {"p": [1, 2, 30]}, True),
    ("numeric missing", {"body": {"p": [{"numeric": [">", 10]}]}}, {}, False),
    # exists: leaf nodes only
    ("exists", {"body": {"x": [{"exists": True}]}}, {"x": 0}, True),
    ("exists null", {"body": {"x": [{"exists": True}]}}, {"x": None}, True),
    ("exists missing", {"body": {"x": [{"exists": True}]}}, {}, False),
    ("exists not on an object", {"body": {"x": [{"exists": True}]}}, {"x": {"y": 1}}, False),
    ("exists not on an empty array", {"body": {"x": [{"exists": True}]}}, {"x": []}, False),
    ("exists on an array", {"body": {"x": [{"exists": True}]}}, {"x": [1]}, True),
    ("does not exist", {"body": {"x": [{"exists": False}]}}, {}, True),
    ("does not exist but does", {"body": {"x": [{"exists": False}]}}, {"x": 1}, False),
    ("does not exist on an object", {"body": {"x": [{"exists": False}]}}, {"x": {"y": 1}}, True),
    ("does not exist null", {"body": {"x": [{"exists": False}]}}, {"x": None}, False),
    ("exists or a value", {"body": {"x": ["a", {"exists": False}]}}, {}, True),
    ("exists deep", {"body": {"a": {"b": [{"exists": True}]}}}, {"a": {"b": "x"}}, True),
    ("does not exist under a string", {"body": {"a": {"b": [{"exists": False}]}}}, {"a": "text"}, True),
    ("does not exist under a missing object", {"body": {"a": {"b": [{"exists": False}]}}}, {}, True),
]


@pytest.mark.parametrize(
    ("pattern", "body", "expected"), [case[1:] for case in OPERATOR_CASES], ids=[case[0] for case in OPERATOR_CASES]
)
def test_operators(pattern: dict[str, Any], body: object, expected: bool) -> None:
    assert passes(pattern, body) is expected


# --------------------------------------------------------------------------------- structure of patterns

STRUCTURE_CASES = [
    # fields are AND-ed
    ("and", {"body": {"loc": ["NY"], "day": ["Mon"]}}, {"loc": "NY", "day": "Mon"}, True),
    ("and one fails", {"body": {"loc": ["NY"], "day": ["Mon"]}}, {"loc": "NY", "day": "Tue"}, False),
    ("and one missing", {"body": {"loc": ["NY"], "day": ["Mon"]}}, {"loc": "NY"}, False),
    ("other fields ignored", {"body": {"loc": ["NY"]}}, {"loc": "NY", "extra": [1, {"x": 2}]}, True),
    # $or
    ("$or first", {"body": {"$or": [{"loc": ["NY"]}, {"day": ["Mon"]}]}}, {"loc": "NY", "day": "Sun"}, True),
    ("$or second", {"body": {"$or": [{"loc": ["NY"]}, {"day": ["Mon"]}]}}, {"loc": "LA", "day": "Mon"}, True),
    ("$or none", {"body": {"$or": [{"loc": ["NY"]}, {"day": ["Mon"]}]}}, {"loc": "LA", "day": "Sun"}, False),
    (
        "$or beside a field",
        {"body": {"src": ["app"], "$or": [{"a": [1]}, {"b": [2]}]}},
        {"src": "other", "a": 1},
        False,
    ),
    (
        "$or beside a field both",
        {"body": {"src": ["app"], "$or": [{"a": [1]}, {"b": [2]}]}},
        {"src": "app", "b": 2},
        True,
    ),
    (
        "$or nested in $or",
        {"body": {"$or": [{"a": [1]}, {"b": [2], "$or": [{"c": [3]}, {"d": [4]}]}]}},
        {"b": 2, "d": 4},
        True,
    ),
    (
        "$or nested in $or fails",
        {"body": {"$or": [{"a": [1]}, {"b": [2], "$or": [{"c": [3]}, {"d": [4]}]}]}},
        {"b": 2, "d": 5},
        False,
    ),
    ("$or with objects", {"body": {"$or": [{"a": {"b": ["x"]}}, {"c": ["y"]}]}}, {"a": {"b": "x"}}, True),
    # nesting
    ("nested", {"body": {"a": {"b": {"c": ["deep"]}}}}, {"a": {"b": {"c": "deep"}}}, True),
    ("nested other", {"body": {"a": {"b": {"c": ["deep"]}}}}, {"a": {"b": {"c": "shallow"}}}, False),
    ("nested missing", {"body": {"a": {"b": {"c": ["deep"]}}}}, {"a": {}}, False),
    ("nested under a string", {"body": {"a": {"b": ["x"]}}}, {"a": "x"}, False),
    ("leaf on an object", {"body": {"a": ["x"]}}, {"a": {"b": "x"}}, False),
    # arrays in the event
    ("array any element", {"body": {"tags": ["red"]}}, {"tags": ["blue", "red"]}, True),
    ("array no element", {"body": {"tags": ["red"]}}, {"tags": ["blue"]}, False),
    ("array nested flattened", {"body": {"tags": ["red"]}}, {"tags": [["blue"], [["red"]]]}, True),
    ("array empty", {"body": {"tags": ["red"]}}, {"tags": []}, False),
    (
        "array of objects",
        {"body": {"people": {"name": ["Anna"]}}},
        {"people": [{"name": "Jo"}, {"name": "Anna"}]},
        True,
    ),
    ("array of objects none", {"body": {"people": {"name": ["Anna"]}}}, {"people": [{"name": "Jo"}]}, False),
    (
        "array of objects, fields in one element",
        {"body": {"people": {"first": ["Anna"], "last": ["Jones"]}}},
        {"people": [{"first": "Anna", "last": "Smith"}, {"first": "Peter", "last": "Jones"}]},
        False,
    ),
    (
        "array of objects, fields in one element both",
        {"body": {"people": {"first": ["Anna"], "last": ["Smith"]}}},
        {"people": [{"first": "Anna", "last": "Smith"}, {"first": "Peter", "last": "Jones"}]},
        True,
    ),
    ("array of arrays of objects", {"body": {"p": {"n": [1]}}}, {"p": [[{"n": 2}], [{"n": 1}]]}, True),
    ("array objects are not leaves", {"body": {"p": ["x"]}}, {"p": [{"q": "x"}]}, False),
    # duplicate keys: the last value counts, as AWS documents
    ("duplicate key last wins", '{"body": {"k": ["a"], "k": ["b"]}}', {"k": "b"}, True),
    ("duplicate key first is gone", '{"body": {"k": ["a"], "k": ["b"]}}', {"k": "a"}, False),
]


@pytest.mark.parametrize(
    ("pattern", "body", "expected"), [case[1:] for case in STRUCTURE_CASES], ids=[case[0] for case in STRUCTURE_CASES]
)
def test_structure(pattern: object, body: object, expected: bool) -> None:
    source = pattern if isinstance(pattern, str) else json.dumps(pattern)
    parsed = parse_filter_criteria({"Filters": [{"Pattern": source}]})
    assert parsed.matches(view(body)) is expected


# ------------------------------------------------------------------------------------- the SQS body rule

BODY_CASES = [
    # AWS's table: incoming body format x pattern's body format
    ("plain x plain", {"body": ["plain text"]}, "plain text", True),
    ("plain x plain other", {"body": ["plain text"]}, "other text", False),
    ("plain x plain prefix", {"body": [{"prefix": "Result: "}]}, "Result: ok", True),
    ("plain x none", {"messageId": [{"prefix": "059f"}]}, "plain text", True),
    ("plain x JSON", {"body": {"kind": ["order"]}}, "plain text", False),
    ("plain x JSON that would match absence", {"body": {"kind": [{"exists": False}]}}, "plain text", False),
    ("JSON x plain", {"body": ["plain"]}, {"plain": 1}, False),
    ("JSON x plain exists", {"body": [{"exists": True}]}, {"a": 1}, False),
    ("JSON x plain anything-but", {"body": [{"anything-but": ["x"]}]}, {"a": 1}, False),
    ("JSON x plain prefix of the text", {"body": [{"prefix": "{"}]}, {"a": 1}, False),
    ("JSON array x plain", {"body": [1]}, [1, 2], False),
    ("JSON x none", {"messageId": [{"prefix": "059f"}]}, {"a": 1}, True),
    ("JSON x JSON", {"body": {"a": [1]}}, {"a": 1}, True),
    ("JSON x JSON other", {"body": {"a": [1]}}, {"a": 2}, False),
    ("JSON array x JSON", {"body": {"k": ["v"]}}, [{"k": "w"}, {"k": "v"}], True),
    # bodies that are not a JSON object or array are plain text
    ("bare number is text", {"body": ["42"]}, "42", True),
    ("bare number is not a number", {"body": [42]}, "42", False),
    ("bare JSON string is text", {"body": ['"hi"']}, '"hi"', True),
    ("bare true is text", {"body": ["true"]}, "true", True),
    ("not strict JSON is text", {"body": [{"prefix": "{"}]}, '{"a": NaN}', True),
    ("broken JSON is text", {"body": {"a": [{"exists": False}]}}, '{"a": ', False),
    ("too deep for the parser is text", {"body": [{"prefix": "[[["}]}, "[" * 5000 + "]" * 5000, True),
    # the rule applies to each $or branch at the top, and only to the top-level body
    ("$or branch plain x JSON", {"$or": [{"body": {"a": [1]}}, {"messageId": ["nope"]}]}, "text", False),
    ("$or branch plain x plain", {"$or": [{"body": ["text"]}, {"messageId": ["nope"]}]}, "text", True),
    ("$or branch JSON x plain", {"$or": [{"body": ["text"]}, {"body": {"a": [1]}}]}, {"a": 1}, True),
    ("inner body key is a field", {"body": {"body": ["x"]}}, {"body": "x"}, True),
]


@pytest.mark.parametrize(
    ("pattern", "body", "expected"), [case[1:] for case in BODY_CASES], ids=[case[0] for case in BODY_CASES]
)
def test_sqs_body_rule(pattern: dict[str, Any], body: object, expected: bool) -> None:
    assert passes(pattern, body) is expected


METADATA_CASES = [
    ("attributes", {"attributes": {"ApproximateReceiveCount": ["1"]}}, True),
    ("attributes other", {"attributes": {"ApproximateReceiveCount": ["2"]}}, False),
    ("attributes numeric is strings", {"attributes": {"ApproximateReceiveCount": [{"numeric": ["=", 1]}]}}, False),
    ("messageId prefix", {"messageId": [{"prefix": "059f"}]}, True),
    ("eventSource", {"eventSource": ["aws:sqs"]}, True),
    ("eventSourceARN suffix", {"eventSourceARN": [{"suffix": ":jobs"}]}, True),
    ("awsRegion", {"awsRegion": ["eu-west-1"]}, False),
    ("messageAttributes", {"messageAttributes": {"color": {"stringValue": ["red"]}}}, True),
    ("missing metadata", {"nope": [{"exists": True}]}, False),
    ("metadata and body", {"awsRegion": ["us-east-1"], "body": {"k": ["v"]}}, True),
    ("metadata and body fails", {"awsRegion": ["us-east-1"], "body": {"k": ["w"]}}, False),
]


@pytest.mark.parametrize(
    ("pattern", "expected"), [case[1:] for case in METADATA_CASES], ids=[case[0] for case in METADATA_CASES]
)
def test_metadata_keys(pattern: dict[str, Any], expected: bool) -> None:
    assert passes(pattern, {"k": "v"}) is expected


def test_sqs_view_parses_json_bodies_and_leaves_the_record_alone() -> None:
    record = sqs_record('{"kind": "order", "n": [1, 2.5]}')
    seen = sqs_view(record)
    assert seen["body"] == {"kind": "order", "n": [1, 2.5]}
    assert record["body"] == '{"kind": "order", "n": [1, 2.5]}'  # the event the function gets is untouched
    assert {k: v for k, v in seen.items() if k != "body"} == {k: v for k, v in record.items() if k != "body"}
    assert sqs_view(sqs_record("  [1]"))["body"] == [1]
    for text in ("plain", "42", '"x"', "null", "{broken", '{"a": Infinity}', "[" * 3000 + "]" * 3000):
        assert sqs_view(sqs_record(text))["body"] == text
    assert sqs_view({"messageId": "m"}) == {"messageId": "m"}  # no body: nothing to parse


# --------------------------------------------------------------------------------- filters and documents


def test_any_filter_passes() -> None:
    both = criteria({"body": {"k": ["a"]}}, {"body": {"k": ["b"]}})
    assert both.matches(view({"k": "b"}))
    assert both.matches(view({"k": "a"}))
    assert not both.matches(view({"k": "c"}))


@pytest.mark.parametrize("document", [{}, {"Filters": []}])
def test_no_filters_pass_everything(document: dict[str, Any]) -> None:
    parsed = parse_filter_criteria(document)
    assert parsed.patterns == ()
    assert parsed.to_document() == {"Filters": []}
    for body in ("anything", {"k": 1}, [1], ""):
        assert parsed.matches(view(body))
    assert parsed.matches({})


def test_the_document_keeps_the_pattern_strings_as_given() -> None:
    sources = ['{ "body" : { "k" : [ "a" ] } }', '{"messageId": [{"prefix": "x"}], "messageId": ["y"]}']
    document = {"Filters": [{"Pattern": source} for source in sources]}
    parsed = parse_filter_criteria(document)
    assert parsed.to_document() == document
    assert parse_filter_criteria(parsed.to_document()) == parsed  # what the store keeps parses the same


def test_parsed_criteria_are_immutable_and_compare_by_value() -> None:
    parsed = criteria({"body": {"k": ["a", {"numeric": [">", 1]}]}})
    assert parsed == criteria({"body": {"k": ["a", {"numeric": [">", 1]}]}})
    assert hash(parsed) == hash(criteria({"body": {"k": ["a", {"numeric": [">", 1]}]}}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.patterns = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.patterns[0].fields = ()  # type: ignore[misc]


def test_matching_parses_no_json(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = criteria({"body": {"k": [{"prefix": "a"}], "$or": [{"n": [1]}, {"m": [{"exists": True}]}]}})
    seen = view({"k": "abc", "m": 2})

    def refuse(*args: object, **kwargs: object) -> object:
        raise AssertionError("matching parsed JSON")

    monkeypatch.setattr(json, "loads", refuse)  # the module filters uses
    assert parsed.matches(seen)
    assert not parsed.matches({**seen, "body": {"k": "abc"}})


def test_the_package_re_exports_the_filters() -> None:
    for name in event_sources.__all__:
        assert getattr(event_sources, name) is getattr(filters, name)
    assert set(event_sources.__all__) == set(filters.__all__)


# ------------------------------------------------------------------------------------------ invalid input

LONGEST = json.dumps({"k": ["x" * (MAX_PATTERN_CHARS - len('{"k": [""]}'))]})

INVALID_DOCUMENTS: list[tuple[str, object, str, str]] = [
    ("not an object", [], "FilterCriteria", "must be an object"),
    ("a string", '{"Filters": []}', "FilterCriteria", "must be an object"),
    ("null", None, "FilterCriteria", "must be an object"),
    ("unknown key", {"Filters": [], "Other": 1}, "FilterCriteria", "unknown member"),
    ("lowercase key", {"filters": []}, "FilterCriteria", "unknown member"),
    ("Filters not a list", {"Filters": "x"}, "FilterCriteria.Filters", "list"),
    ("Filters null", {"Filters": None}, "FilterCriteria.Filters", "list"),
    (
        "too many filters",
        {"Filters": [{"Pattern": '{"a": ["x"]}'}] * (MAX_FILTERS + 1)},
        "FilterCriteria.Filters",
        f"at most {MAX_FILTERS}",
    ),
    ("filter not an object", {"Filters": ['{"a": ["x"]}']}, "FilterCriteria.Filters.1", "object"),
    ("filter without Pattern", {"Filters": [{}]}, "FilterCriteria.Filters.1", "no Pattern"),
    ("filter unknown key", {"Filters": [{"Pattern": "{}", "Extra": 1}]}, "FilterCriteria.Filters.1", "unknown member"),
    ("Pattern a number", {"Filters": [{"Pattern": 5}]}, "FilterCriteria.Filters.1.Pattern", "string"),
    ("Pattern null", {"Filters": [{"Pattern": None}]}, "FilterCriteria.Filters.1.Pattern", "string"),
    ("Pattern an object", {"Filters": [{"Pattern": {"a": ["x"]}}]}, "FilterCriteria.Filters.1.Pattern", "string"),
    ("Pattern empty", {"Filters": [{"Pattern": ""}]}, "FilterCriteria.Filters.1.Pattern", "not JSON"),
    ("Pattern not JSON", {"Filters": [{"Pattern": "{not json"}]}, "FilterCriteria.Filters.1.Pattern", "not JSON"),
    ("Pattern NaN", {"Filters": [{"Pattern": '{"a": [NaN]}'}]}, "FilterCriteria.Filters.1.Pattern", "not JSON"),
    (
        "Pattern too deep for the parser",
        {"Filters": [{"Pattern": "[" * 2000 + "]" * 2000}]},
        "FilterCriteria.Filters.1.Pattern",
        "not JSON",
    ),
    ("Pattern an array", {"Filters": [{"Pattern": "[1]"}]}, "FilterCriteria.Filters.1.Pattern", "not an object"),
    ("Pattern a string", {"Filters": [{"Pattern": '"x"'}]}, "FilterCriteria.Filters.1.Pattern", "not an object"),
    ("Pattern null JSON", {"Filters": [{"Pattern": "null"}]}, "FilterCriteria.Filters.1.Pattern", "not an object"),
    ("Pattern empty object", {"Filters": [{"Pattern": "{}"}]}, "FilterCriteria.Filters.1.Pattern", "Empty objects"),
    (
        "Pattern too long",
        {"Filters": [{"Pattern": LONGEST[:-1] + " }"}]},
        "FilterCriteria.Filters.1.Pattern",
        f"at most {MAX_PATTERN_CHARS} characters",
    ),
    (
        "second filter",
        {"Filters": [{"Pattern": '{"a": ["x"]}'}, {"Pattern": '{"a": "x"}'}]},
        "FilterCriteria.Filters.2.Pattern.a",
        "must be an object or an array",
    ),
]


@pytest.mark.parametrize(
    ("document", "field", "why"), [case[1:] for case in INVALID_DOCUMENTS], ids=[case[0] for case in INVALID_DOCUMENTS]
)
def test_invalid_documents(document: object, field: str, why: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter_criteria(document)
    assert (caught.value.field, why in caught.value.why) == (field, True), caught.value.why
    assert caught.value.message == f"Invalid filter pattern definition. {field}: {caught.value.why}"


def test_the_longest_pattern_and_most_filters_are_taken() -> None:
    assert len(LONGEST) == MAX_PATTERN_CHARS
    parsed = parse_filter_criteria({"Filters": [{"Pattern": LONGEST}] * MAX_FILTERS})
    assert len(parsed.patterns) == MAX_FILTERS


P = "FilterCriteria.Filters.1.Pattern"

INVALID_PATTERNS = [
    # leaves
    ("leaf a string", {"a": "x"}, f"{P}.a", "must be an object or an array"),
    ("leaf a number", {"a": 5}, f"{P}.a", "must be an object or an array"),
    ("leaf null", {"a": None}, f"{P}.a", "must be an object or an array"),
    ("leaf empty", {"a": []}, f"{P}.a", "Empty arrays are not allowed"),
    ("nested empty", {"a": {}}, f"{P}.a", "Empty objects are not allowed"),
    ("value an array", {"a": [[1]]}, f"{P}.a", "Match value must be"),
    ("infinite number", '{"a": [1.5e400]}', f"{P}.a", "not a finite number"),
    ("deep field", {"body": {"kind": [{"nope": 1}]}}, f"{P}.body.kind", "Unrecognized match type"),
    # operators
    ("empty matcher", {"a": [{}]}, f"{P}.a", "Match expression name not found"),
    ("two operators", {"a": [{"prefix": "a", "suffix": "b"}]}, f"{P}.a", "Only one key"),
    ("cidr is not Lambda's", {"a": [{"cidr": "10.0.0.0/8"}]}, f"{P}.a", "Unrecognized match type"),
    ("wildcard is not Lambda's", {"a": [{"wildcard": "a*"}]}, f"{P}.a", "Unrecognized match type"),
    ("unknown operator", {"a": [{"regex": ".*"}]}, f"{P}.a", "Unrecognized match type"),
    ("prefix a number", {"a": [{"prefix": 5}]}, f"{P}.a", "prefix match pattern must be a string"),
    ("prefix an object", {"a": [{"prefix": {"equals-ignore-case": "x"}}]}, f"{P}.a", "must be a string"),
    ("suffix null", {"a": [{"suffix": None}]}, f"{P}.a", "suffix match pattern must be a string"),
    ("ignore case a number", {"a": [{"equals-ignore-case": 1}]}, f"{P}.a", "must be a string"),
    ("exists a string", {"a": [{"exists": "yes"}]}, f"{P}.a", "either true or false"),
    ("exists a number", {"a": [{"exists": 1}]}, f"{P}.a", "either true or false"),
    ("numeric not a list", {"a": [{"numeric": ">5"}]}, f"{P}.a", "must be a non-empty array"),
    ("numeric empty", {"a": [{"numeric": []}]}, f"{P}.a", "must be a non-empty array"),
    ("numeric no value", {"a": [{"numeric": [">"]}]}, f"{P}.a", "must be numeric"),
    ("numeric a string value", {"a": [{"numeric": [">", "x"]}]}, f"{P}.a", "must be numeric"),
    ("numeric a boolean value", {"a": [{"numeric": [">", True]}]}, f"{P}.a", "must be numeric"),
    ("numeric unknown operator", {"a": [{"numeric": ["~", 5]}]}, f"{P}.a", "Unrecognized numeric range operator"),
    ("numeric operator a number", {"a": [{"numeric": [5, ">"]}]}, f"{P}.a", "Unrecognized numeric range operator"),
    ("numeric = then more", {"a": [{"numeric": ["=", 5, "<", 6]}]}, f"{P}.a", "Too many elements"),
    ("numeric upper first", {"a": [{"numeric": ["<", 5, ">", 1]}]}, f"{P}.a", "Too many elements"),
    ("numeric three", {"a": [{"numeric": [">", 1, "<"]}]}, f"{P}.a", "Too many elements"),
    ("numeric five", {"a": [{"numeric": [">", 1, "<", 2, 3]}]}, f"{P}.a", "Too many elements"),
    ("numeric range two lows", {"a": [{"numeric": [">", 1, ">=", 2]}]}, f"{P}.a", "Bad numeric range operator"),
    ("numeric range upside down", {"a": [{"numeric": [">", 5, "<", 1]}]}, f"{P}.a", "Bottom must be less than top"),
    ("numeric range empty", {"a": [{"numeric": [">=", 5, "<=", 5]}]}, f"{P}.a", "Bottom must be less than top"),
    ("numeric range top not a number", {"a": [{"numeric": [">", 1, "<", "2"]}]}, f"{P}.a", "must be numeric"),
    ("anything-but empty", {"a": [{"anything-but": []}]}, f"{P}.a", "at least one"),
    ("anything-but null", {"a": [{"anything-but": None}]}, f"{P}.a", "null|boolean is not supported"),
    ("anything-but booleans", {"a": [{"anything-but": [True]}]}, f"{P}.a", "null|boolean is not supported"),
    ("anything-but nulls", {"a": [{"anything-but": ["x", None]}]}, f"{P}.a", "null|boolean is not supported"),
    ("anything-but lists", {"a": [{"anything-but": [["x"]]}]}, f"{P}.a", "null|boolean is not supported"),
    ("anything-but mixed", {"a": [{"anything-but": ["a", 1]}]}, f"{P}.a", "mixed type is not supported"),
    ("anything-but empty object", {"a": [{"anything-but": {}}]}, f"{P}.a", "Only one key"),
    ("anything-but unknown", {"a": [{"anything-but": {"numeric": [">", 1]}}]}, f"{P}.a", "Unsupported anything-but"),
    ("anything-but empty prefix", {"a": [{"anything-but": {"prefix": ""}}]}, f"{P}.a", "Null prefix/suffix"),
    ("anything-but prefix a number", {"a": [{"anything-but": {"prefix": 1}}]}, f"{P}.a", "must be a string"),
    ("anything-but ignore case none", {"a": [{"anything-but": {"equals-ignore-case": []}}]}, f"{P}.a", "at least"),
    ("anything-but ignore case a number", {"a": [{"anything-but": {"equals-ignore-case": [1]}}]}, f"{P}.a", "string"),
    # $or
    ("$or not a list", {"$or": {"a": ["x"]}}, f"{P}.$or", "must be an Array"),
    ("$or one", {"$or": [{"a": ["x"]}]}, f"{P}.$or", "at least 2 Objects"),
    ("$or empty", {"$or": []}, f"{P}.$or", "at least 2 Objects"),
    ("$or not objects", {"$or": [{"a": ["x"]}, ["b"]]}, f"{P}.$or", "Only JSON object"),
    ("$or empty object", {"$or": [{"a": ["x"]}, {}]}, f"{P}.$or.2", "Empty objects"),
    ("$or bad branch", {"$or": [{"a": ["x"]}, {"b": "y"}]}, f"{P}.$or.2.b", "must be an object or an array"),
    ("$or reserved name", {"$or": [{"prefix": ["x"]}, {"a": ["y"]}]}, f"{P}.$or.1.prefix", "reserved"),
    ("$or reserved name deep", {"$or": [{"a": {"numeric": [1]}}, {"b": ["y"]}]}, f"{P}.$or.1.a.numeric", "reserved"),
]


@pytest.mark.parametrize(
    ("pattern", "field", "why"), [case[1:] for case in INVALID_PATTERNS], ids=[case[0] for case in INVALID_PATTERNS]
)
def test_invalid_patterns_name_where(pattern: object, field: str, why: str) -> None:
    source = pattern if isinstance(pattern, str) else json.dumps(pattern)
    with pytest.raises(FilterError) as caught:
        parse_filter_criteria({"Filters": [{"Pattern": source}]})
    assert (caught.value.field, why in caught.value.why) == (field, True), caught.value.why
    assert caught.value.message.startswith("Invalid filter pattern definition. ")


def test_reserved_names_are_fields_outside_or() -> None:
    assert passes({"body": {"prefix": ["x"], "numeric": [1]}}, {"prefix": "x", "numeric": 1})


def test_nesting_is_bounded() -> None:
    def nested(depth: int, leaf: object) -> object:
        for _ in range(depth):
            leaf = {"a": leaf}
        return leaf

    deepest = criteria(nested(MAX_NESTING, ["x"]))  # MAX_NESTING objects, the last holding the list
    assert deepest.matches(nested(MAX_NESTING, "x"))  # type: ignore[arg-type]
    assert not deepest.matches(nested(MAX_NESTING, "y"))  # type: ignore[arg-type]
    with pytest.raises(FilterError, match="nest at most") as caught:
        criteria(nested(MAX_NESTING + 1, ["x"]))
    assert caught.value.field == P + ".a" * MAX_NESTING


# ------------------------------------------------------------------------------------------- properties

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)
KEYS = st.sampled_from(["k", "n", "tags"])
FIELD_VALUES = st.text(max_size=4) | st.integers(-3, 3) | st.lists(st.text(max_size=3) | st.integers(-3, 3), max_size=3)
BATTERY = [
    {"body": {"k": ["a", 1, None, True, ""]}},
    {"body": {"k": [{"prefix": "a"}, {"suffix": "b"}, {"equals-ignore-case": "A"}]}},
    {"body": {"k": [{"numeric": [">", 0, "<=", 2]}, {"exists": False}]}},
    {"body": {"k": [{"anything-but": ["a"]}], "n": {"m": [{"exists": True}]}}},
    {"body": {"$or": [{"k": [{"anything-but": {"prefix": "x"}}]}, {"tags": {"x": [1]}}]}},
    {"body": ["text"]},
    {"messageId": [{"exists": True}], "attributes": {"SenderId": [{"anything-but": 5}]}},
]


@given(st.text(max_size=12), st.lists(st.text(max_size=4), min_size=1, max_size=4))
def test_anything_but_is_the_negation_of_equality_on_a_present_string(value: str, excluded: list[str]) -> None:
    seen = view({"s": value})
    equal = criteria({"body": {"s": excluded}}).matches(seen)
    assert criteria({"body": {"s": [{"anything-but": excluded}]}}).matches(seen) is not equal
    assert equal is (value in excluded)


@given(JSON_VALUES, st.text(max_size=20))
def test_empty_criteria_pass_every_record(body: object, text: str) -> None:
    documents: list[dict[str, Any]] = [{}, {"Filters": []}]
    for document in documents:
        parsed = parse_filter_criteria(document)
        assert parsed.matches(view(body))
        assert parsed.matches(view(text))


@given(st.integers(-(10**6), 10**6), st.integers(0, 3))
def test_numbers_compare_as_numbers(number: int, shift: int) -> None:
    value = number / 10**shift
    spellings = [repr(value), f"{value:.{shift + 3}f}", f"{value:.6e}"] + ([str(number)] if shift == 0 else [])
    exact = criteria({"body": {"n": [value]}})
    numeric = criteria({"body": {"n": [{"numeric": ["=", value]}]}})
    for text in spellings:  # 5, 5.0, 5.000 and 5.000000e+00 are one number
        seen = sqs_view(sqs_record(f'{{"n": {text}}}'))
        assert exact.matches(seen), text
        assert numeric.matches(seen), text
    assert not exact.matches(view({"n": repr(value)}))  # never the string
    assert not exact.matches(view({"n": value + 1}))
    assert not numeric.matches(view({"n": value + 1}))


@given(st.dictionaries(KEYS, FIELD_VALUES, max_size=3))
def test_or_is_a_list_of_filters(body: dict[str, Any]) -> None:
    left, right = {"k": [{"prefix": "a"}]}, {"n": [{"numeric": [">", 0]}], "tags": [{"exists": True}]}
    seen = view(body)
    as_or = criteria({"body": {"$or": [left, right]}}).matches(seen)
    as_filters = criteria({"body": left}, {"body": right}).matches(seen)
    each = criteria({"body": left}).matches(seen) or criteria({"body": right}).matches(seen)
    assert as_or is as_filters is each


@given(JSON_VALUES | st.text(max_size=30), st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=3))
def test_matching_never_raises(body: object, metadata: dict[str, Any]) -> None:
    every = parse_filter_criteria({"Filters": [{"Pattern": json.dumps(p)} for p in BATTERY[:MAX_FILTERS]]})
    rest = parse_filter_criteria({"Filters": [{"Pattern": json.dumps(p)} for p in BATTERY[MAX_FILTERS:]]})
    seen = view(body)
    for record in (seen, {**metadata, **seen}, {**seen, **metadata}):
        assert isinstance(every.matches(record), bool)
        assert isinstance(rest.matches(record), bool)
