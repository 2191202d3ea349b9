"""Lambda's event filtering (FilterCriteria): parse a mapping's patterns once, match records against them.

Pure: no I/O, no clock. :func:`parse_filter_criteria` checks the ``FilterCriteria`` of a
Create/UpdateEventSourceMapping request and compiles it into small frozen matchers;
:meth:`FilterCriteria.matches` decides one record (what :func:`sqs_view` makes of it) without parsing any
JSON of the pattern again.

**The document.** ``{"Filters": [{"Pattern": "<JSON object>"}, ...]}`` (botocore's lambda model:
FilterCriteria has one member, Filters, a list of Filter; a Filter has one member, Pattern, a string of
at most :data:`MAX_PATTERN_CHARS` characters). At most :data:`MAX_FILTERS` filters (Lambda's default
quota). ``{}`` and ``{"Filters": []}`` mean no filtering (AWS removes a mapping's filters with
``--filter-criteria "{}"``). A record passes when *any* filter matches it; no filters pass every record.
A Pattern whose JSON repeats a key keeps the last value, as AWS documents.

**A pattern** is a non-empty JSON object; a record matches when every key of it matches (AND):

* a key whose value is an object matches the record's object at that key, recursively; when the
  record holds an array of objects there, any one element must match the whole sub-pattern;
* a key whose value is an array lists matchers, any of which may match one of the field's *leaf*
  values (a string, number, boolean or null; the scalars of an array, arrays flattened; an object is
  not a leaf):

  - ``"text"``, a number, ``true``, ``false``, ``null``: equality. Numbers compare as numbers (``5``
    matches ``5.0``; AWS's engine adds a numeric-equality matcher for every number of a pattern),
    never a string (``"5"`` does not match ``5``), and ``true`` is not ``1``. ``""`` matches the empty
    string;
  - ``{"prefix": s}``, ``{"suffix": s}``: strings only, case-sensitive;
  - ``{"equals-ignore-case": s}``: strings only;
  - ``{"numeric": ["=", n]}``, ``[op, n]`` with op one of ``<`` ``<=`` ``>`` ``>=``, or a range
    ``[">"|">=", low, "<"|"<=", high]`` with ``low < high``: JSON numbers only;
  - ``{"exists": true}``: the field has a leaf value; ``{"exists": false}``: it has none (missing,
    an object, an empty array or an array of objects: AWS's exists works on leaf nodes only);
  - ``{"anything-but": ...}`` with a string, a number, a non-empty list of strings or of numbers (not
    both), ``{"prefix": s}``, ``{"suffix": s}`` (s not empty) or ``{"equals-ignore-case": s | [s,
    ...]}``: a leaf value that is none of them (a missing field never matches);
* ``"$or": [pattern, pattern, ...]`` (at least two objects) matches when any of them does, beside the
  other keys of its object; inside ``$or`` an operator's name (``prefix``, ``numeric``, ...) cannot be a
  field.

``cidr``, ``wildcard`` and other EventBridge operators that Lambda's documentation does not list are
refused as unknown operators. Patterns nest at most :data:`MAX_NESTING` objects deep (Leasehold's bound,
not AWS's: matching recurses that deep at most).

**SQS bodies.** What the filter sees of a message is its event record (:func:`sqs_view`) with ``body``
replaced by its parsed JSON when the body is a JSON object or array. AWS documents that Lambda compares
the format of the body with the format of the pattern's ``body`` and drops (deletes) the message when
they differ: a pattern that looks into ``body`` (``"body": {"kind": [...]}``) never matches a plain-text
body, and a plain-string pattern (``"body": ["hello"]``, ``"body": [{"prefix": "he"}]``, any matcher
list) never matches a JSON body. A plain-text body is compared as the string it is; a body that is a
bare JSON scalar (``42``, ``"hi"``, ``true``) counts as plain text. Patterns without ``body`` skip the
check.

**Errors.** Every invalid document raises :class:`FilterError`: ``field`` names where (for example
``FilterCriteria.Filters.1.Pattern.body.kind``), ``why`` what, and :attr:`FilterError.message` is what
the API answers as InvalidParameterValueException: AWS's ``Invalid filter pattern definition.`` followed
by the field and the reason (in the words of AWS's rule engine where it has some).

Example::

    criteria = parse_filter_criteria({"Filters": [{"Pattern": '{"body": {"kind": ["order"]}}'}]})
    criteria.matches(sqs_view(record))      # True for a record whose body is {"kind": "order", ...}
    criteria.to_document()                  # the Filters as given, for GetEventSourceMapping
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

__all__ = [
    "MAX_FILTERS",
    "MAX_NESTING",
    "MAX_PATTERN_CHARS",
    "FilterCriteria",
    "FilterError",
    "Pattern",
    "parse_filter_criteria",
    "sqs_view",
]

#: Most filters in one mapping's FilterCriteria (Lambda's default quota; AWS raises it to 10 on request).
MAX_FILTERS: Final = 5
#: Longest Pattern, in characters (botocore's lambda model: Pattern, max 4096).
MAX_PATTERN_CHARS: Final = 4096
#: Deepest nesting of objects in a pattern (nested fields and ``$or`` objects; Leasehold's bound).
MAX_NESTING: Final = 32

#: The key of an SQS record whose format is checked against the pattern's (AWS's "data key" for SQS).
_DATA_KEY: Final = "body"
#: Names that cannot be fields inside ``$or`` (AWS's rule engine reserves them).
_RESERVED_IN_OR: Final = frozenset(
    {
        "exactly", "equals-ignore-case", "prefix", "suffix", "anything-but", "exists", "wildcard",
        "numeric", "cidr", "=", "<", "<=", ">", ">=", "regex", "not-wildcard", "not-equals-ignore-case",
        "date-after", "date-on-or-after", "date-before", "date-on-or-before", "in-date-range",
        "ip-address-in-range", "ip-address-not-in-range",
    }
)  # fmt: skip
_COMPARE: Final[Mapping[str, Callable[[Decimal, Decimal], bool]]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


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


# ---------------------------------------------------------------------------------------------- values


class _Missing:
    """The value of a field the record does not have."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


_MISSING: Final = _Missing()


def _number(value: object) -> Decimal | None:
    """A JSON number as a Decimal (booleans are not numbers; NaN and infinities are not JSON)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    return None


def _leaves(value: object) -> list[object]:
    """The leaf values of a field: none when missing or an object, an array's scalars (flattened)."""
    if value is _MISSING or isinstance(value, Mapping):
        return []
    if not isinstance(value, list | tuple):
        return [value]
    leaves: list[object] = []
    stack: list[object] = [value]
    while stack:  # iterative: a body may nest arrays as deep as json.loads allows
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(item)
        elif not isinstance(item, Mapping):
            leaves.append(item)
    return leaves


def _objects(value: object) -> list[Mapping[str, object]]:
    """The objects at a field: the object itself, or those of an array (flattened)."""
    if isinstance(value, Mapping):
        return [value]
    if not isinstance(value, list | tuple):
        return []
    found: list[Mapping[str, object]] = []
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, Mapping):
            found.append(item)
    return found


def _same_ignoring_case(left: str, right: str) -> bool:
    """Java's equalsIgnoreCase, as AWS's engine: same length, each character equal up to case."""
    if len(left) != len(right):
        return False
    return all(a == b or a.upper() == b.upper() or a.lower() == b.lower() for a, b in zip(left, right, strict=True))


# ---------------------------------------------------------------------------------------------- matchers


@dataclass(frozen=True, slots=True)
class _Exact:
    """Equality with a string, a number (as a number), a boolean or null."""

    value: str | bool | Decimal | None

    def match(self, value: object) -> bool:
        if isinstance(self.value, Decimal):
            return _number(value) == self.value
        if isinstance(self.value, bool) or self.value is None:
            return value is self.value
        return isinstance(value, str) and value == self.value


@dataclass(frozen=True, slots=True)
class _Prefix:
    text: str

    def match(self, value: object) -> bool:
        return isinstance(value, str) and value.startswith(self.text)


@dataclass(frozen=True, slots=True)
class _Suffix:
    text: str

    def match(self, value: object) -> bool:
        return isinstance(value, str) and value.endswith(self.text)


@dataclass(frozen=True, slots=True)
class _IgnoreCase:
    text: str

    def match(self, value: object) -> bool:
        return isinstance(value, str) and _same_ignoring_case(value, self.text)


@dataclass(frozen=True, slots=True)
class _Numeric:
    """One comparison, or a range of two (the lower bound first)."""

    bounds: tuple[tuple[str, Decimal], ...]

    def match(self, value: object) -> bool:
        number = _number(value)
        return number is not None and all(_COMPARE[op](number, bound) for op, bound in self.bounds)


@dataclass(frozen=True, slots=True)
class _AnythingBut:
    """A leaf value that none of ``excluded`` matches."""

    excluded: tuple[_Exact | _Prefix | _Suffix | _IgnoreCase, ...]

    def match(self, value: object) -> bool:
        return not any(matcher.match(value) for matcher in self.excluded)


_Matcher = _Exact | _Prefix | _Suffix | _IgnoreCase | _Numeric | _AnythingBut


@dataclass(frozen=True, slots=True)
class _Leaf:
    """A field's list of matchers; ``exists`` holds the arguments of its ``exists`` matchers."""

    matchers: tuple[_Matcher, ...]
    exists: tuple[bool, ...] = ()

    def match(self, value: object) -> bool:
        """Whether the field's value (``_MISSING`` when absent) matches."""
        leaves = _leaves(value)
        if (True in self.exists and leaves) or (False in self.exists and not leaves):
            return True
        return any(matcher.match(leaf) for leaf in leaves for matcher in self.matchers)


@dataclass(frozen=True, slots=True)
class Pattern:
    """One parsed pattern (or a nested part of one): its fields and its ``$or`` alternatives."""

    fields: tuple[tuple[str, _Leaf | Pattern], ...]
    alternatives: tuple[Pattern, ...] = ()

    def matches(self, record: Mapping[str, object]) -> bool:
        """Whether a whole record matches (SQS's rule on the format of ``body`` applies here)."""
        return self._match_object(record, top=True)

    def match(self, value: object) -> bool:
        """Whether the value of a field (``_MISSING`` when absent) matches this nested pattern."""
        objects = _objects(value)
        if not objects:  # nothing to look into: every field of the pattern is absent
            return self._match_object({}, top=False)
        return any(self._match_object(found, top=False) for found in objects)

    def _match_object(self, obj: Mapping[str, object], *, top: bool) -> bool:
        for key, part in self.fields:
            value = obj.get(key, _MISSING)
            if top and key == _DATA_KEY and value is not _MISSING:
                structured = isinstance(value, Mapping | list | tuple)
                if structured != isinstance(part, Pattern):
                    return False  # AWS drops a message whose body and pattern differ in format
            if not part.match(value):
                return False
        return not self.alternatives or any(alt._match_object(obj, top=top) for alt in self.alternatives)


@dataclass(frozen=True, slots=True)
class FilterCriteria:
    """A mapping's parsed FilterCriteria."""

    patterns: tuple[Pattern, ...]
    #: The Pattern strings as given (what GetEventSourceMapping returns).
    sources: tuple[str, ...]

    def matches(self, view: Mapping[str, object]) -> bool:
        """Whether a record passes: any pattern matches it (no patterns: every record passes)."""
        return not self.patterns or any(pattern.matches(view) for pattern in self.patterns)

    def to_document(self) -> dict[str, list[dict[str, str]]]:
        """The FilterCriteria document as the API returns it: the Pattern strings as they were given."""
        return {"Filters": [{"Pattern": source} for source in self.sources]}


# ----------------------------------------------------------------------------------------------- parsing


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _loads(text: str) -> object:
    """Strict JSON (no NaN or Infinity); ValueError for anything else, nesting too deep included."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("nests too deep") from None


def _shown(value: object, limit: int = 40) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _pattern_number(value: object, where: str) -> Decimal:
    number = _number(value)
    if number is None:
        raise FilterError(where, f"{_shown(value)} is not a finite number")
    return number


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _literal(value: object, where: str) -> _Exact:
    if isinstance(value, str | bool) or value is None:
        return _Exact(value)
    if _is_number(value):
        return _Exact(_pattern_number(value, where))
    raise FilterError(where, "Match value must be String, number, true, false, or null")


def _string(value: object, where: str, what: str) -> str:
    if not isinstance(value, str):
        raise FilterError(where, f"{what} match pattern must be a string")
    return value


def _numeric(spec: object, where: str) -> _Numeric:
    """AWS's grammar: ``["=", n]``, ``["<"|"<=", n]``, ``[">"|">=", n]`` or ``[">"|">=", n, "<"|"<=", m]``."""
    if not isinstance(spec, list) or not spec:
        raise FilterError(where, "Value of numeric must be a non-empty array")
    first = spec[0]
    if not isinstance(first, str) or first not in _COMPARE:
        raise FilterError(where, f"Unrecognized numeric range operator: {_shown(first)}")
    if len(spec) < 2 or not _is_number(spec[1]):
        raise FilterError(where, f"Value of {first} must be numeric")
    bounds = [(first, _pattern_number(spec[1], where))]
    if len(spec) == 2:
        return _Numeric(tuple(bounds))
    if first not in (">", ">=") or len(spec) != 4:
        raise FilterError(where, "Too many elements in numeric expression")
    second = spec[2]
    if not isinstance(second, str) or second not in ("<", "<="):
        raise FilterError(where, f"Bad numeric range operator: {_shown(second)}")
    if not _is_number(spec[3]):
        raise FilterError(where, f"Value of {second} must be numeric")
    bounds.append((second, _pattern_number(spec[3], where)))
    if bounds[0][1] >= bounds[1][1]:
        raise FilterError(where, "Bottom must be less than top")
    return _Numeric(tuple(bounds))


def _anything_but(spec: object, where: str) -> _AnythingBut:
    if isinstance(spec, dict):
        if len(spec) != 1:
            raise FilterError(where, "Only one key allowed in anything-but's match expression")
        ((op, arg),) = spec.items()
        if op in ("prefix", "suffix"):
            text = _string(arg, where, f"anything-but {op}")
            if not text:
                raise FilterError(where, "Null prefix/suffix not allowed")
            return _AnythingBut((_Prefix(text) if op == "prefix" else _Suffix(text),))
        if op == "equals-ignore-case":
            texts = arg if isinstance(arg, list) else [arg]
            if not texts:
                raise FilterError(where, "anything-but equals-ignore-case needs at least one string")
            return _AnythingBut(tuple(_IgnoreCase(_string(t, where, "anything-but equals-ignore-case")) for t in texts))
        raise FilterError(where, f"Unsupported anything-but pattern: {_shown(op)}")
    values = spec if isinstance(spec, list) else [spec]
    if not values:
        raise FilterError(where, "Inside anything but list, at least one string or number is needed")
    if any(not isinstance(v, str) and not _is_number(v) for v in values):
        raise FilterError(where, "Inside anything but list, start|null|boolean is not supported.")
    if len({isinstance(v, str) for v in values}) > 1:
        raise FilterError(
            where, "Inside anything but list, either all values are number or string, mixed type is not supported"
        )
    return _AnythingBut(tuple(_literal(v, where) for v in values))


def _matcher(spec: object, where: str) -> _Matcher | bool:
    """A matcher of a field's list, or the argument of an ``exists`` matcher."""
    if not isinstance(spec, dict):
        return _literal(spec, where)
    if len(spec) != 1:
        why = "Only one key allowed in match expression" if spec else "Match expression name not found"
        raise FilterError(where, why)
    ((op, arg),) = spec.items()
    if op == "exists":
        if not isinstance(arg, bool):
            raise FilterError(where, "exists match pattern must be either true or false.")
        return arg
    if op == "prefix":
        return _Prefix(_string(arg, where, op))
    if op == "suffix":
        return _Suffix(_string(arg, where, op))
    if op == "equals-ignore-case":
        return _IgnoreCase(_string(arg, where, op))
    if op == "numeric":
        return _numeric(arg, where)
    if op == "anything-but":
        return _anything_but(arg, where)
    raise FilterError(where, f"Unrecognized match type {_shown(op)}")


def _leaf(specs: list[object], where: str) -> _Leaf:
    if not specs:
        raise FilterError(where, "Empty arrays are not allowed")
    matchers: list[_Matcher] = []
    exists: list[bool] = []
    for spec in specs:
        parsed = _matcher(spec, where)
        if isinstance(parsed, bool):
            exists.append(parsed)
        else:
            matchers.append(parsed)
    return _Leaf(tuple(matchers), tuple(exists))


def _pattern(document: object, where: str, depth: int, *, in_or: bool) -> Pattern:
    if depth > MAX_NESTING:
        raise FilterError(where, f"patterns nest at most {MAX_NESTING} objects deep")
    if not isinstance(document, dict):
        raise FilterError(where, "Filter is not an object")
    if not document:
        raise FilterError(where, "Empty objects are not allowed")
    fields: list[tuple[str, _Leaf | Pattern]] = []
    alternatives: tuple[Pattern, ...] = ()
    for key, value in document.items():
        at = f"{where}.{key}" if len(where) + len(key) < 200 else f"{where}.{key[:40]}..."
        if key == "$or":
            if not isinstance(value, list):
                raise FilterError(at, "It must be an Array followed with $or.")
            if not all(isinstance(item, dict) for item in value):
                raise FilterError(at, "Only JSON object is allowed in array of $or relationship.")
            if len(value) < 2:
                raise FilterError(at, "There must have at least 2 Objects in $or relationship.")
            alternatives = tuple(
                _pattern(item, f"{at}.{index}", depth + 1, in_or=True) for index, item in enumerate(value, start=1)
            )
            continue
        if in_or and key in _RESERVED_IN_OR:
            raise FilterError(at, f"{_shown(key)} is a reserved name: it cannot be a field inside $or")
        if isinstance(value, list):
            fields.append((key, _leaf(value, at)))
        elif isinstance(value, dict):
            fields.append((key, _pattern(value, at, depth + 1, in_or=in_or)))
        else:
            raise FilterError(at, f"{_shown(key)} must be an object or an array")
    return Pattern(tuple(fields), alternatives)


def parse_filter_criteria(document: object) -> FilterCriteria:
    """The FilterCriteria of a Create/UpdateEventSourceMapping request, checked and compiled.

    Raises :class:`FilterError` for anything Lambda refuses (see the module's documentation).
    """
    if not isinstance(document, dict):
        raise FilterError("FilterCriteria", "must be an object")
    unknown = sorted(set(document) - {"Filters"})
    if unknown:
        raise FilterError("FilterCriteria", f"unknown member {_shown(unknown[0])}: its only member is Filters")
    filters = document.get("Filters", [])
    if not isinstance(filters, list):
        raise FilterError("FilterCriteria.Filters", "must be a list of filters")
    if len(filters) > MAX_FILTERS:
        raise FilterError("FilterCriteria.Filters", f"has at most {MAX_FILTERS} filters, not {len(filters)}")
    patterns: list[Pattern] = []
    sources: list[str] = []
    for index, item in enumerate(filters, start=1):
        where = f"FilterCriteria.Filters.{index}"
        if not isinstance(item, dict):
            raise FilterError(where, "must be an object with one member, Pattern")
        unknown = sorted(set(item) - {"Pattern"})
        if unknown:
            raise FilterError(where, f"unknown member {_shown(unknown[0])}: its only member is Pattern")
        if "Pattern" not in item:
            raise FilterError(where, "has no Pattern")
        source = item["Pattern"]
        if not isinstance(source, str):
            raise FilterError(f"{where}.Pattern", "must be a string")
        if len(source) > MAX_PATTERN_CHARS:
            raise FilterError(f"{where}.Pattern", f"has at most {MAX_PATTERN_CHARS} characters, not {len(source)}")
        try:
            parsed = _loads(source)
        except ValueError:
            raise FilterError(f"{where}.Pattern", "is not JSON") from None
        patterns.append(_pattern(parsed, f"{where}.Pattern", 1, in_or=False))
        sources.append(source)
    return FilterCriteria(tuple(patterns), tuple(sources))


def sqs_view(record: Mapping[str, object]) -> dict[str, object]:
    """What a filter sees of one SQS event record: the record, with ``body`` parsed when it is JSON.

    A body that parses as a JSON object or array becomes that object or array; any other body (plain
    text, a bare JSON scalar such as ``42``, text that is not strict JSON, JSON nested deeper than the
    parser goes) stays the string it is. AWS drops a message whose body's format differs from the
    pattern's: a pattern that looks into ``body`` never matches a plain-text body, a plain-string
    pattern on ``body`` never matches a JSON one (:meth:`Pattern.matches` applies that rule).
    """
    view = dict(record)
    body = view.get(_DATA_KEY)
    if isinstance(body, str) and body.lstrip()[:1] in ("{", "["):
        try:
            parsed = _loads(body)
        except ValueError:
            return view
        if isinstance(parsed, dict | list):
            view[_DATA_KEY] = parsed
    return view
