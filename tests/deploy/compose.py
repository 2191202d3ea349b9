"""Read ``docker-compose.yml`` without PyYAML: a strict parser for the plain YAML subset it is written in.

The subset: block mappings (``key: value`` / ``key:`` + an indented block), block lists of scalars
(``- value``), comments, and scalars that are either double-quoted (JSON string escapes) or plain. Plain
scalars are ints, ``true``/``false``, or strings without ``:``, ``#``, quotes or YAML indicator
characters; a bare ``key:`` with nothing under it is null. Anything else — anchors, flow style, tabs,
multi-line scalars, duplicate keys, plain scalars YAML would read differently (``yes``, ``1.5``,
``09:00``) — is refused with the line number, so what this parser reads is what YAML reads.

Example::

    compose = load_compose()                      # the repository's docker-compose.yml
    compose.command("server1")                    # ['server', '--zk', 'zookeeper:2181', ...]
    compose.leasehold_services()                  # services that run the leasehold image
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["COMPOSE_FILE", "Compose", "ComposeSyntaxError", "load_compose", "parse_subset"]

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"

_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_PLAIN = re.compile(r"^[A-Za-z0-9_./$-][A-Za-z0-9_./$@=+,-]*$")
_INT = re.compile(r"^-?(0|[1-9][0-9]*)$")
# Plain words YAML 1.1 or 1.2 reads as booleans, nulls or special floats.
_AMBIGUOUS = {
    "y", "yes", "n", "no", "on", "off", "null", "none", "~", ".inf", "-.inf", ".nan",
}  # fmt: skip


class ComposeSyntaxError(ValueError):
    """The file leaves the YAML subset (the message names the line)."""


@dataclass
class _Line:
    number: int
    indent: int
    text: str


def _strip_comment(line: str) -> str:
    in_string = False
    escaped = False
    for i, char in enumerate(line):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "#" and (i == 0 or line[i - 1] == " "):
            return line[:i].rstrip()
    return line.rstrip()


def _scalar(text: str, number: int) -> Any:
    if text.startswith('"'):
        try:
            value, end = json.JSONDecoder().raw_decode(text)
        except ValueError as exc:
            raise ComposeSyntaxError(f"line {number}: bad double-quoted string {text!r}: {exc}") from exc
        if end != len(text) or not isinstance(value, str):
            raise ComposeSyntaxError(f"line {number}: text after the string {text!r}")
        return value
    if _INT.match(text):
        return int(text)
    if text in ("true", "false"):
        return text == "true"
    if text.lower() in _AMBIGUOUS or text.lower() in ("true", "false") or not _PLAIN.match(text):
        raise ComposeSyntaxError(f"line {number}: plain scalar {text!r} is outside the subset; quote it")
    if re.match(r"^[-+]?[0-9._]*[0-9][0-9._]*$", text):
        raise ComposeSyntaxError(f"line {number}: {text!r} reads as a number in YAML; quote it")
    return text


def _lines(text: str) -> list[_Line]:
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if "\t" in raw:
            raise ComposeSyntaxError(f"line {number}: tab character")
        stripped = _strip_comment(raw)
        if not stripped.strip():
            continue
        indent = len(stripped) - len(stripped.lstrip(" "))
        if indent % 2:
            raise ComposeSyntaxError(f"line {number}: indentation is not a multiple of 2")
        body = stripped.strip()
        if body[0] in "&*!|>{[%@`'" or body in ("---", "..."):
            raise ComposeSyntaxError(f"line {number}: {body[0]!r} is not in the subset (anchor, tag, flow)")
        lines.append(_Line(number, indent, body))
    return lines


def _block(lines: list[_Line], start: int, indent: int) -> tuple[Any, int]:
    """Parse the block at ``indent`` starting at ``lines[start]``; return it and the next index."""
    if lines[start].text.startswith("- ") or lines[start].text == "-":
        return _sequence(lines, start, indent)
    return _mapping(lines, start, indent)


def _sequence(lines: list[_Line], start: int, indent: int) -> tuple[list[Any], int]:
    items: list[Any] = []
    i = start
    while i < len(lines) and lines[i].indent == indent:
        line = lines[i]
        if not line.text.startswith("- "):
            raise ComposeSyntaxError(f"line {line.number}: expected '- item' in a list")
        item = line.text[2:].strip()
        if not item or re.match(r"^[^\"]*:( |$)", item):
            raise ComposeSyntaxError(f"line {line.number}: lists hold scalars only in the subset")
        items.append(_scalar(item, line.number))
        i += 1
    if i < len(lines) and lines[i].indent > indent:
        raise ComposeSyntaxError(f"line {lines[i].number}: unexpected indentation")
    return items, i


def _mapping(lines: list[_Line], start: int, indent: int) -> tuple[dict[str, Any], int]:
    result: dict[str, Any] = {}
    i = start
    while i < len(lines) and lines[i].indent == indent:
        line = lines[i]
        key, sep, rest = line.text.partition(":")
        if not sep or not _KEY.match(key) or (rest and not rest.startswith(" ")):
            raise ComposeSyntaxError(f"line {line.number}: expected 'key: value' with a plain key, got {line.text!r}")
        if key in result:
            raise ComposeSyntaxError(f"line {line.number}: duplicate key {key!r}")
        rest = rest.strip()
        i += 1
        if rest:
            result[key] = _scalar(rest, line.number)
        elif i < len(lines) and lines[i].indent > indent:
            if lines[i].indent != indent + 2:
                raise ComposeSyntaxError(f"line {lines[i].number}: indent by exactly 2")
            result[key], i = _block(lines, i, indent + 2)
        elif i < len(lines) and lines[i].indent == indent and lines[i].text.startswith("- "):
            raise ComposeSyntaxError(f"line {lines[i].number}: indent list items under their key")
        else:
            result[key] = None
    if i < len(lines) and lines[i].indent > indent:
        raise ComposeSyntaxError(f"line {lines[i].number}: unexpected indentation")
    return result, i


def parse_subset(text: str) -> dict[str, Any]:
    """Parse a document in the subset; the top level must be a mapping."""
    lines = _lines(text)
    if not lines:
        raise ComposeSyntaxError("empty document")
    if lines[0].indent != 0:
        raise ComposeSyntaxError(f"line {lines[0].number}: the document must start at column 0")
    document, end = _mapping(lines, 0, 0)
    if end != len(lines):
        raise ComposeSyntaxError(f"line {lines[end].number}: unexpected content")
    return document


@dataclass
class Compose:
    """A parsed compose file with the lookups the tests and the harness need."""

    document: dict[str, Any]

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        """Service name → its mapping."""
        services: dict[str, dict[str, Any]] = self.document["services"]
        return services

    def command(self, service: str) -> list[str]:
        """The service's command (exec form) as strings."""
        return [str(part) for part in self.services[service].get("command") or []]

    def leasehold_services(self) -> list[str]:
        """Services that run the Leasehold image (they have a ``build``)."""
        return [name for name, spec in self.services.items() if "build" in spec]

    def components(self) -> list[str]:
        """The long-running Leasehold services (server, worker, frontend); not the one-shot ``certs``."""
        return [name for name in self.leasehold_services() if self.command(name)[:1] != ["certs"]]

    def by_subcommand(self, subcommand: str) -> list[str]:
        """Leasehold services whose command is ``leasehold <subcommand> ...``, in file order."""
        return [name for name in self.leasehold_services() if self.command(name)[:1] == [subcommand]]


def load_compose(path: Path = COMPOSE_FILE) -> Compose:
    """Parse ``docker-compose.yml`` (or ``path``)."""
    return Compose(parse_subset(path.read_text()))
