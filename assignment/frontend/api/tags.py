"""TagResource, UntagResource and ListTags over HTTP, for functions; and the tag map check CreateFunction
shares.

Assembled by :class:`~assignment.frontend.api.app.LambdaHttpApi` from :meth:`TagsApi.routes`. Tags are
stored with the function (the registry's ``functions.tags``), so they belong to the function and not to a
version or an alias: a qualified ARN is refused rather than tagging something the caller did not name.
The rules are AWS's: keys of 1 to 128 and values of 0 to 256 characters of letters, numbers, spaces and
``_.:/=+-@``, at most 50 tags a function, the ``aws:`` prefix reserved.

Example::

    app.add_routes(TagsApi(context).routes())
    # POST /2017-03-31/tags/arn:aws:lambda:us-east-1:000000000000:function:resize  {"Tags": {"team": "media"}}
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from assignment.frontend.api.context import ApiContext
from assignment.frontend.api.requests import read_json
from assignment.frontend.registry import TAG_LIMIT
from assignment.frontend.types import InvalidParameterValueException, ResourceNotFoundException, ValidationException
from assignment.frontend.validation import Fields

__all__ = ["TagsApi", "check_tag_keys", "check_tags"]

_KEY_MAX = 128
_VALUE_MAX = 256
_PUNCTUATION = frozenset("_.:/=+-@")
_FUNCTION_ARN = re.compile(
    r"arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:(?P<name>[a-zA-Z0-9_-]{1,64})(?P<qualifier>:[^:]*)?"
)
_OTHER_ARN = re.compile(r"arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:(?P<kind>[a-z-]+):.+")


def _allowed_text(text: str) -> bool:
    """The model's ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*``: letters, separators (spaces), numbers, punctuation."""
    return all(
        ch in _PUNCTUATION or unicodedata.category(ch)[0] in "LZN"  # Letter, separator, Number
        for ch in text
    )


def _check_key(key: object, where: str) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= _KEY_MAX or not _allowed_text(key):
        raise ValidationException(
            f"1 validation error detected: Value at '{where}' failed to satisfy constraint: Member must have length"
            f" between 1 and {_KEY_MAX} and satisfy regular expression pattern: [\\p{{L}}\\p{{Z}}\\p{{N}}_.:/=+\\-@]*"
            f" (key {str(key)[:40]!r})"
        )
    if key.lower().startswith("aws:"):
        raise InvalidParameterValueException(f"Tag keys starting with 'aws:' are reserved for AWS's use: {key[:40]!r}")
    return key


def check_tags(tags: Mapping[Any, Any], *, where: str = "tags") -> dict[str, str]:
    """A request's tag map, checked: string keys and values of AWS's lengths and characters, at most
    :data:`~assignment.frontend.registry.TAG_LIMIT` of them."""
    if len(tags) > TAG_LIMIT:
        raise InvalidParameterValueException(f"A function can have at most {TAG_LIMIT} tags, not {len(tags)}")
    found: dict[str, str] = {}
    for key, value in tags.items():
        _check_key(key, where)
        if not isinstance(value, str) or len(value) > _VALUE_MAX or not _allowed_text(value):
            raise ValidationException(
                f"1 validation error detected: Value at '{where}' failed to satisfy constraint: Map value must be a"
                f" string of at most {_VALUE_MAX} characters satisfying regular expression pattern:"
                f" [\\p{{L}}\\p{{Z}}\\p{{N}}_.:/=+\\-@]* (key {key[:40]!r})"
            )
        found[key] = value
    return found


def check_tag_keys(keys: list[str]) -> list[str]:
    """UntagResource's ``tagKeys``, checked as tag keys (at most the tag limit of them)."""
    if not keys:
        raise ValidationException(
            "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null"
        )
    if len(keys) > TAG_LIMIT:
        raise InvalidParameterValueException(f"At most {TAG_LIMIT} tag keys can be removed at once, not {len(keys)}")
    return [_check_key(key, "tagKeys") for key in keys]


class TagsApi:
    """The tag operations on functions."""

    def __init__(self, context: ApiContext) -> None:
        self.context = context
        self.registry = context.registry

    def routes(self) -> list[web.RouteDef]:
        """This resource's routes."""
        path = "/2017-03-31/tags/{resource}"
        return [web.post(path, self.tag_resource), web.delete(path, self.untag_resource), web.get(path, self.list_tags)]

    def _function(self, request: web.Request) -> str:
        """The function named by the path's ARN: one of this frontend's account and region, unqualified."""
        arn = request.match_info["resource"]
        match = _FUNCTION_ARN.fullmatch(arn)
        if match is None:
            other = _OTHER_ARN.fullmatch(arn)
            if other is not None:
                raise InvalidParameterValueException(
                    f"Leasehold tags functions only, not {other.group('kind')[:40]} resources: {arn[:200]}"
                )
            raise ValidationException(
                f"1 validation error detected: Value {arn[:200]!r} at 'resource' failed to satisfy constraint: "
                "Member must satisfy regular expression pattern: a Lambda function ARN"
            )
        if match.group("qualifier") is not None:
            raise InvalidParameterValueException(
                "Tags belong to the function, not to a version or an alias: give the unqualified function ARN"
                f" ({arn[:200]})"
            )
        name = match.group("name")
        if arn != self.registry.function_arn(name):
            raise ResourceNotFoundException(f"Function not found: {arn[:200]}")
        return name

    async def tag_resource(self, request: web.Request) -> web.Response:
        """TagResource → 204: adds the tags, replacing the values of keys the function has."""
        name = self._function(request)
        fields = Fields(await read_json(request), allowed={"Tags"})
        if not fields.has("Tags"):
            raise ValidationException(
                "1 validation error detected: Value null at 'tags' failed to satisfy constraint:"
                " Member must not be null"
            )
        tags = check_tags(fields.mapping("Tags"))
        await asyncio.to_thread(self.registry.change_tags, name, add=tags)
        return web.Response(status=204)

    async def untag_resource(self, request: web.Request) -> web.Response:
        """UntagResource → 204: removes the keys named by ``tagKeys`` (keys it has not are no error)."""
        name = self._function(request)
        unknown = sorted(set(request.query) - {"tagKeys"})
        if unknown:
            raise InvalidParameterValueException(f"Unknown query parameter(s): {', '.join(unknown)[:200]}")
        keys = check_tag_keys(request.query.getall("tagKeys", []))
        await asyncio.to_thread(self.registry.change_tags, name, remove=keys)
        return web.Response(status=204)

    async def list_tags(self, request: web.Request) -> web.Response:
        """ListTags: the function's tags (``{}`` for none)."""
        name = self._function(request)
        if request.query:
            raise InvalidParameterValueException("ListTags takes no query parameters")
        return web.json_response({"Tags": await asyncio.to_thread(self.registry.tags, name)})
