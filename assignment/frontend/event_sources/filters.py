"""Lambda's event filtering (FilterCriteria): parse a mapping's patterns once, match records against them.

A mapping's ``FilterCriteria`` is ``{"Filters": [{"Pattern": "<JSON object>"}, ...]}`` (at most
:data:`MAX_FILTERS` patterns of at most :data:`MAX_PATTERN_CHARS` characters). A record passes when *any*
pattern matches it; a mapping without filters passes everything. A pattern matches a record when every
key of the pattern matches (keys are AND-ed):

* a key whose value is an object matches the record's object of that key, recursively (a record field
  that is not an object does not match; a missing one is an empty object);
* a key whose value is an array lists *matchers*, any of which may match the field's value (and, when
  the value is an array, any of its elements): a string, number, boolean or null for equality (numbers
  compare as numbers: ``5`` matches ``5.0``; ``"5"`` does not match ``5``); ``{"prefix": s}``,
  ``{"suffix": s}``, ``{"equals-ignore-case": s}`` on strings; ``{"numeric": [op, n]}`` or
  ``{"numeric": [">"|">=", low, "<"|"<=", high]}`` on numbers (``=`` too); ``{"exists": true|false}``;
  ``{"anything-but": value | [values] | {"prefix": s} | {"suffix": s}}`` (a present value that is none of
  them);
* ``"$or": [pattern, pattern, ...]`` (at least two) matches when any of its patterns does.

What the filter sees of an SQS message is the event's record (:func:`sqs_view`) with ``body`` parsed when
it is JSON. AWS documents what that means for a body that is plain text: a pattern on ``body`` with a
plain value (``"body": ["hello"]``) compares the text; a pattern that looks inside it
(``"body": {"kind": [...]}``) cannot match, and the message is filtered out (deleted). Invalid criteria
raise :class:`FilterError` with AWS's message, ``Invalid filter pattern definition.``, and what is wrong.

Example::

    criteria = parse_filter_criteria({"Filters": [{"Pattern": '{"body": {"kind": ["order"]}}'}]})
    criteria.matches(sqs_view(record))      # True for a record whose body is {"kind": "order", ...}
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

__all__ = [
    "MAX_FILTERS",
    "MAX_PATTERN_CHARS",
    "FilterCriteria",
    "FilterError",
    "Pattern",
    "parse_filter_criteria",
    "sqs_view",
]

#: Most patterns in one mapping's FilterCriteria (Lambda's quota).
MAX_FILTERS = 5
#: Longest pattern (botocore's model: Pattern max 4096).
MAX_PATTERN_CHARS = 4096
#: Deepest nesting of a pattern (objects and ``$or`` inside each other).
_MAX_DEPTH = 16
_NUMERIC_OPS = frozenset({"=", "<", "<=", ">", ">="})


class FilterError(ValueError):
    """Invalid FilterCriteria: ``field`` says where, ``why`` what."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"{field}: {why}")
        self.field = field
        self.why = why

    @property
    def message(self) -> str:
        """What the Lambda API answers (InvalidParameterValueException)."""
        return f"Invalid filter pattern definition. {self.field}: {self.why}"


# ---------------------------------------------------------------------------------------------- matchers


def _number(value: object) -> Decimal | None:
    """A JSON number as a Decimal (booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return Decimal(str(value))


@dataclass(frozen=True, slots=True)
class _Equals:
    value: str | bool | Decimal | None

    def match(self, value: object) -> bool:
        if isinstance(self.value, Decimal):
            number = _number(value)
            return number is not None and number == self.value
        if isinstance(self.value, bool) or self.value is None:
            return value is self.value
        return isinstance(value, str) and value == self.value


@dataclass(frozen=True, slots=True)
class _Prefix:
    prefix: str
    suffix: bool = False

    def match(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        return value.endswith(self.prefix) if self.suffix else value.startswith(self.prefix)


@dataclass(frozen=True, slots=True)
class _IgnoreCase:
    text: str

    def match(self, value: object) -> bool:
        return isinstance(value, str) and value.casefold() == self.text.casefold()


@dataclass(frozen=True, slots=True)
class _Numeric:
    bounds: tuple[tuple[str, Decimal], ...]

    def match(self, value: object) -> bool:
        number = _number(value)
        if number is None:
            return False
        for op, bound in self.bounds:
            ok = {
                "=": number == bound, "<": number < bound, "<=": number <= bound,
                ">": number > bound, ">=": number >= bound,
            }[op]  # fmt: skip
            if not ok:
                return False
        return True


@dataclass(frozen=True, slots=True)
class _AnythingBut:
    excluded: tuple[_Equals | _Prefix, ...]

    def match(self, value: object) -> bool:
        return not any(matcher.match(value) for matcher in self.excluded)


_Matcher = _Equals | _Prefix | _IgnoreCase | _Numeric | _AnythingBut


@dataclass(frozen=True, slots=True)
class _Leaf:
    """A field's matchers; ``exists`` is the value of an ``exists`` matcher among them (None: none)."""

    matchers: tuple[_Matcher, ...]
    exists: tuple[bool, ...] = ()

    def match(self, present: bool, value: object) -> bool:
        if not present:
            return False in self.exists
        if True in self.exists:
            return True
        values = value if isinstance(value, list) else [value]
        return any(matcher.match(item) for matcher in self.matchers for item in values)


@dataclass(frozen=True, slots=True)
class Pattern:
    """One parsed pattern: its fields (a leaf or a nested pattern each) and its ``$or`` alternatives."""

    fields: tuple[tuple[str, _Leaf | Pattern], ...]
    alternatives: tuple[Pattern, ...] = ()

    def matches(self, record: Mapping[str, Any]) -> bool:
        """Whether ``record`` (a JSON object) matches."""
        for key, part in self.fields:
            present = key in record
            value = record.get(key)
            if isinstance(part, Pattern):
                if present and not isinstance(value, dict):
                    return False
                if not part.matches(value if isinstance(value, dict) else {}):
                    return False
            elif not part.match(present, value):
                return False
        return not self.alternatives or any(alternative.matches(record) for alternative in self.alternatives)


# ----------------------------------------------------------------------------------------------- parsing


def _text(value: object, where: str, op: str) -> str:
    if not isinstance(value, str):
        raise FilterError(where, f"{op} takes a string")
    return value


def _literal(value: object, where: str) -> _Equals:
    if isinstance(value, str | bool) or value is None:
        return _Equals(value)
    number = _number(value)
    if number is None:
        raise FilterError(where, f"{json.dumps(value)[:40]} is not a string, number, boolean or null")
    return _Equals(number)


def _numeric(spec: object, where: str) -> _Numeric:
    if not isinstance(spec, list) or len(spec) not in (2, 4):
        raise FilterError(where, "numeric takes [op, number] or [op, number, op, number]")
    bounds: list[tuple[str, Decimal]] = []
    for index in range(0, len(spec), 2):
        op, bound = spec[index], _number(spec[index + 1])
        if op not in _NUMERIC_OPS or bound is None:
            raise FilterError(where, f"numeric: {json.dumps(spec)[:60]} is not [op, number, ...]")
        bounds.append((str(op), bound))
    if len(bounds) == 2:
        (low_op, low), (high_op, high) = bounds
        if low_op not in (">", ">=") or high_op not in ("<", "<=") or low >= high:
            raise FilterError(where, 'a numeric range is [">"|">=", low, "<"|"<=", high] with low < high')
    return _Numeric(tuple(bounds))


def _anything_but(spec: object, where: str) -> _AnythingBut:
    if isinstance(spec, dict):
        if len(spec) != 1 or next(iter(spec)) not in ("prefix", "suffix"):
            raise FilterError(where, 'anything-but takes values, or {"prefix": ...} or {"suffix": ...}')
        op, text = next(iter(spec.items()))
        return _AnythingBut((_Prefix(_text(text, where, f"anything-but {op}"), suffix=op == "suffix"),))
    values = spec if isinstance(spec, list) else [spec]
    if not values:
        raise FilterError(where, "anything-but needs at least one value")
    return _AnythingBut(tuple(_literal(value, where) for value in values))


def _matcher(spec: object, where: str) -> _Matcher | bool:
    """A matcher, or the boolean of an ``exists`` matcher."""
    if not isinstance(spec, dict):
        return _literal(spec, where)
    if len(spec) != 1:
        raise FilterError(where, f"a matcher has one operator, not {len(spec)}")
    op, arg = next(iter(spec.items()))
    if op == "exists":
        if not isinstance(arg, bool):
            raise FilterError(where, "exists takes true or false")
        return arg
    if op in ("prefix", "suffix"):
        return _Prefix(_text(arg, where, op), suffix=op == "suffix")
    if op == "equals-ignore-case":
        return _IgnoreCase(_text(arg, where, op))
    if op == "numeric":
        return _numeric(arg, where)
    if op == "anything-but":
        return _anything_but(arg, where)
    raise FilterError(where, f"unknown operator {str(op)[:40]!r}")


def _leaf(specs: list[object], where: str) -> _Leaf:
    if not specs:
        raise FilterError(where, "a field's list of matchers is empty")
    matchers: list[_Matcher] = []
    exists: list[bool] = []
    for spec in specs:
        parsed = _matcher(spec, where)
        if isinstance(parsed, bool):
            exists.append(parsed)
        else:
            matchers.append(parsed)
    return _Leaf(tuple(matchers), tuple(exists))


def _pattern(document: object, where: str, depth: int) -> Pattern:
    if depth > _MAX_DEPTH:
        raise FilterError(where, f"patterns nest at most {_MAX_DEPTH} deep")
    if not isinstance(document, dict) or not document:
        raise FilterError(where, "a pattern is a non-empty JSON object")
    fields: list[tuple[str, _Leaf | Pattern]] = []
    alternatives: tuple[Pattern, ...] = ()
    for key, value in document.items():
        at = f"{where}.{key}"[:200]
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2:
                raise FilterError(at, "$or takes a list of at least two patterns")
            alternatives = tuple(_pattern(item, at, depth + 1) for item in value)
        elif isinstance(value, list):
            fields.append((key, _leaf(value, at)))
        elif isinstance(value, dict):
            fields.append((key, _pattern(value, at, depth + 1)))
        else:
            raise FilterError(at, "a field's value is a list of matchers or a nested pattern")
    return Pattern(tuple(fields), alternatives)


@dataclass(frozen=True, slots=True)
class FilterCriteria:
    """A mapping's parsed FilterCriteria."""

    patterns: tuple[Pattern, ...]
    #: The Pattern strings as given (what GetEventSourceMapping returns).
    sources: tuple[str, ...]

    def matches(self, view: Mapping[str, Any]) -> bool:
        """Whether a record passes: any pattern matches it (no patterns: every record passes)."""
        return not self.patterns or any(pattern.matches(view) for pattern in self.patterns)

    def to_document(self) -> dict[str, list[dict[str, str]]]:
        """The FilterCriteria document as the API returns it."""
        return {"Filters": [{"Pattern": source} for source in self.sources]}


def parse_filter_criteria(document: object) -> FilterCriteria:
    """The FilterCriteria of a Create/UpdateEventSourceMapping request, checked; :class:`FilterError`."""
    if not isinstance(document, dict) or set(document) - {"Filters"}:
        raise FilterError("FilterCriteria", "is an object with one member, Filters")
    filters = document.get("Filters", [])
    if not isinstance(filters, list):
        raise FilterError("FilterCriteria.Filters", "is a list")
    if len(filters) > MAX_FILTERS:
        raise FilterError("FilterCriteria.Filters", f"has at most {MAX_FILTERS} filters, not {len(filters)}")
    patterns: list[Pattern] = []
    sources: list[str] = []
    for index, item in enumerate(filters, start=1):
        where = f"FilterCriteria.Filters.{index}"
        if not isinstance(item, dict) or set(item) != {"Pattern"}:
            raise FilterError(where, "is an object with one member, Pattern")
        source = item["Pattern"]
        if not isinstance(source, str):
            raise FilterError(f"{where}.Pattern", "is a string")
        if len(source) > MAX_PATTERN_CHARS:
            raise FilterError(f"{where}.Pattern", f"is at most {MAX_PATTERN_CHARS} characters, not {len(source)}")
        try:
            parsed = json.loads(source)
        except ValueError:
            raise FilterError(f"{where}.Pattern", "is not JSON") from None
        patterns.append(_pattern(parsed, f"{where}.Pattern", 0))
        sources.append(source)
    return FilterCriteria(tuple(patterns), tuple(sources))


def sqs_view(record: Mapping[str, Any]) -> dict[str, Any]:
    """What a filter sees of one SQS event record: the record, its ``body`` parsed when it is JSON."""
    view = dict(record)
    body = view.get("body")
    if isinstance(body, str):
        with contextlib.suppress(ValueError):  # plain text stays the string it is
            view["body"] = json.loads(body)
    return view
