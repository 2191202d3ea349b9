"""Function aliases: a name that points at a published version, optionally sending a share of its
invocations to a second one (AWS's weighted alias, for canary and blue/green deployments).

Stored in the registry's database (table ``function_aliases``, migration 0010); every method is one
transaction. The rules are AWS's: an alias name is not a number (so it never clashes with a version); it
points at ``$LATEST`` or a published version that exists; a weighted alias names exactly one additional
published version (not its primary, never with ``$LATEST``) with a weight in [0, 1], and both versions
must have the same execution role and the same dead-letter configuration. A version an alias references
cannot be deleted, and deleting the function deletes its aliases (both
:meth:`assignment.frontend.registry.Registry.delete`).

Which version serves an invocation is :meth:`Alias.pick`: the additional version for a uniform draw below
its weight, else the primary — each invocation routed independently, as Lambda does.

Example::

    aliases = AliasStore(registry)
    live = aliases.create("resize", "live", "3", weights={"4": 0.1})
    version = live.pick(random.random())  # "4" one time in ten
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from assignment.frontend.registry import (
    LATEST,
    Registry,
    event_invoke_configs,
    function_aliases,
    function_versions,
    functions,
    provisioned_concurrency,
)
from journal.store import Journal

__all__ = [
    "Alias",
    "AliasError",
    "AliasExists",
    "AliasNotFound",
    "AliasStore",
    "AliasVersionNotFound",
    "InvalidAlias",
    "RevisionIdMismatch",
]

_a = function_aliases.c
_v = function_versions.c


@dataclass(frozen=True, slots=True)
class Alias:
    """One alias of ``function``: ``version`` is its primary version, ``weights`` at most one additional
    published version and the share (0-1) of invocations it serves."""

    function: str
    name: str
    version: str
    description: str = ""
    weights: Mapping[str, float] = field(default_factory=dict)
    revision_id: str = ""
    modified_ms: int = 0

    def pick(self, draw: float) -> str:
        """The version an invocation runs, for a uniform ``draw`` in [0, 1)."""
        for version, weight in self.weights.items():
            if draw < weight:
                return version
        return self.version

    def versions(self) -> tuple[str, ...]:
        """The versions it routes to: the primary first."""
        return (self.version, *self.weights)


class AliasError(Exception):
    """An alias operation refused; ``function`` and ``alias`` name it (the API words the answer)."""

    def __init__(self, function: str, alias: str, detail: str = "") -> None:
        super().__init__(f"{function}:{alias}" + (f": {detail}" if detail else ""))
        self.function = function
        self.alias = alias
        self.detail = detail


class AliasNotFound(AliasError):
    """No such alias (or no such function)."""


class AliasVersionNotFound(AliasError):
    """The version it should point at does not exist (``detail`` is the version)."""


class AliasExists(AliasError):
    """CreateAlias of a name the function already has."""


class InvalidAlias(AliasError):
    """The alias document breaks a rule (``detail`` says which, in AWS's words)."""


class RevisionIdMismatch(AliasError):
    """UpdateAlias with a RevisionId that is not the alias's current one."""


def _now_ms() -> int:
    return int(time.time() * 1000)


def _row_to_alias(row: Any) -> Alias:
    return Alias(
        function=str(row.name),
        name=str(row.alias),
        version=str(row.function_version),
        description=str(row.description),
        weights={str(k): float(v) for k, v in json.loads(row.weights).items()},
        revision_id=str(row.revision_id),
        modified_ms=int(row.modified_ms),
    )


class AliasStore:
    """Aliases in the registry's database."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.journal: Journal = registry.journal

    # ------------------------------------------------------------------ reading

    def get(self, function: str, name: str) -> Alias:
        """The alias; :class:`AliasNotFound` when it (or the function) does not exist."""
        with self.journal.reader.connect() as conn:
            row = conn.execute(select(function_aliases).where(_a.name == function, _a.alias == name)).first()
            if row is None:
                self._check_function(conn, function)
                raise AliasNotFound(function, name)
        return _row_to_alias(row)

    def list(self, function: str, *, version: str | None = None, marker: str = "", limit: int = 50) -> list[Alias]:
        """The function's aliases by name after ``marker`` (those routing to ``version`` only, when given);
        :class:`AliasNotFound` (with no alias name) without the function."""
        with self.journal.reader.connect() as conn:
            self._check_function(conn, function)
            query = select(function_aliases).where(_a.name == function, _a.alias > marker).order_by(_a.alias)
            rows = conn.execute(query if version is not None else query.limit(limit)).all()
        found = [_row_to_alias(row) for row in rows]
        if version is not None:  # the weights are JSON text: a function's few aliases are filtered here
            found = [alias for alias in found if version in alias.versions()]
        return found[:limit]

    # ------------------------------------------------------------------ writing

    def create(
        self, function: str, name: str, version: str, *, description: str = "", weights: Mapping[str, float] = {}
    ) -> Alias:
        """A new alias; :class:`AliasExists` when the name is taken, :class:`AliasNotFound` without the
        function, :class:`AliasVersionNotFound` / :class:`InvalidAlias` for the versions."""
        alias = Alias(function, name, version, description, dict(weights), str(uuid.uuid4()), _now_ms())
        with self.journal.writer.begin() as conn:
            self._check_function(conn, function)
            self._check_versions(conn, alias)
            exists = conn.execute(select(_a.alias).where(_a.name == function, _a.alias == name)).first()
            if exists is not None:
                raise AliasExists(function, name)
            conn.execute(insert(function_aliases).values(name=function, alias=name, **self._values(alias)))
        return alias

    def update(
        self,
        function: str,
        name: str,
        *,
        version: str | None = None,
        description: str | None = None,
        weights: Mapping[str, float] | None = None,
        revision_id: str | None = None,
    ) -> Alias:
        """Change what is given (``weights`` ``{}`` removes the routing); with ``revision_id`` only if it
        is the alias's current one (:class:`RevisionIdMismatch`)."""
        with self.journal.writer.begin() as conn:
            row = conn.execute(select(function_aliases).where(_a.name == function, _a.alias == name)).first()
            if row is None:
                self._check_function(conn, function)
                raise AliasNotFound(function, name)
            current = _row_to_alias(row)
            if revision_id is not None and revision_id != current.revision_id:
                raise RevisionIdMismatch(function, name)
            changed = Alias(
                function,
                name,
                current.version if version is None else version,
                current.description if description is None else description,
                dict(current.weights if weights is None else weights),
                str(uuid.uuid4()),
                _now_ms(),
            )
            self._check_versions(conn, changed)
            conn.execute(
                update(function_aliases)
                .where(_a.name == function, _a.alias == name, _a.revision_id == current.revision_id)
                .values(self._values(changed))
            )
            self._check_provisioned(conn, changed)
        return changed

    def delete(self, function: str, name: str) -> None:
        """Delete the alias with its provisioned concurrency and async settings; :class:`AliasNotFound`
        without the function (a missing alias of an existing function is already gone: nothing to do)."""
        with self.journal.writer.begin() as conn:
            self._check_function(conn, function)
            conn.execute(delete(function_aliases).where(_a.name == function, _a.alias == name))
            p, e = provisioned_concurrency.c, event_invoke_configs.c
            conn.execute(delete(provisioned_concurrency).where(p.name == function, p.version == name))
            conn.execute(delete(event_invoke_configs).where(e.name == function, e.qualifier == name))

    # ------------------------------------------------------------------ rules

    @staticmethod
    def _values(alias: Alias) -> dict[str, Any]:
        return {
            "function_version": alias.version,
            "weights": json.dumps(dict(alias.weights), sort_keys=True),
            "description": alias.description,
            "revision_id": alias.revision_id,
            "modified_ms": alias.modified_ms,
        }

    @staticmethod
    def _check_function(conn: Connection, function: str) -> None:
        """:class:`AliasNotFound` with no alias name: the function itself does not exist."""
        if conn.execute(select(functions.c.name).where(functions.c.name == function)).first() is None:
            raise AliasNotFound(function, "")

    def _check_provisioned(self, conn: Connection, alias: Alias) -> None:
        """An alias with provisioned concurrency moves it along (read after the alias's row is written):
        its versions must be published and warmed by no other config (the registry's errors)."""
        p = provisioned_concurrency.c
        row = conn.execute(select(p.count).where(p.name == alias.function, p.version == alias.name)).first()
        if row is not None:
            shares = self.registry.shares_in(conn, alias.function, alias.name, int(row[0]))
            versions = [share.version.version for share in shares]
            self.registry.check_provisioned_overlap(conn, alias.function, alias.name, versions)

    @staticmethod
    def _check_versions(conn: Connection, alias: Alias) -> None:
        """The versions exist, and a weighted alias's two are compatible (AWS's rules)."""
        if len(alias.weights) > 1:
            raise InvalidAlias(alias.function, alias.name, "An alias can point to at most two versions")
        if alias.weights and alias.version == LATEST:
            raise InvalidAlias(
                alias.function, alias.name, "$LATEST is not supported for an alias pointing to more than 1 version"
            )
        if alias.version in alias.weights:
            raise InvalidAlias(
                alias.function, alias.name, "The additional version cannot be the alias's primary version"
            )
        documents = {}
        for version in alias.versions():
            row = conn.execute(select(_v.document).where(_v.name == alias.function, _v.version == version)).first()
            if row is None:
                raise AliasVersionNotFound(alias.function, alias.name, version)
            documents[version] = json.loads(row.document)["spec"]
        if alias.weights:
            primary, additional = (documents[v] for v in alias.versions())
            # AWS's rules for a weighted alias: one role, one dead-letter queue, whichever version runs.
            if primary.get("role") != additional.get("role"):
                raise InvalidAlias(
                    alias.function, alias.name, "Specified versions must be associated with the same execution role"
                )
            if primary.get("dead_letter_target", "") != additional.get("dead_letter_target", ""):
                raise InvalidAlias(
                    alias.function,
                    alias.name,
                    "Specified versions must have the same dead-letter queue configuration",
                )
