"""The function registry: functions, immutable published versions, layers, concurrency and async settings.

Stored through SQLAlchemy in the journal's database (tables created by migrations 0004 and 0010); code and layer
zips are stored by content hash in :class:`journal.blobs.BlobStore`. ``$LATEST`` is mutable: every code or
configuration change bumps the function's ``revision``, which is part of the pool key the assignment
service sees (:meth:`FunctionVersion.pool_version`), so a warm sandbox only serves what it was built from.
Published versions are copies of ``$LATEST`` that never change. A function re-created under the same name
gets a new ``incarnation``, so its pool keys differ from the deleted one's.

The API is synchronous (the frontend calls it from a thread); errors are
:mod:`~assignment.frontend.storage_errors` (the HTTP API maps them to Lambda errors).

Example::

    registry = Registry(Journal.open("sqlite:///data/leasehold.db"))
    spec = FunctionSpec(runtime="python3.12", handler="app.handler")
    latest = registry.create("resize", spec, zip_bytes)
    v1 = registry.publish("resize")
    assert registry.get("resize", "1").code_sha256 == latest.code_sha256
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from assignment.frontend.storage_errors import (
    Conflict,
    Invalid,
    NotFound,
    PreconditionFailed,
    ProvisionedOverlap,
    Referenced,
    RevisionMismatch,
    StorageExceeded,
)
from assignment.frontend.types import EventInvokeConfig, FunctionConfig, LoggingConfig
from assignment.frontend.validation import Home, worker_runtime
from assignment.partition_core import DEFAULT_ACCOUNT_LIMIT
from journal.blobs import BlobStore
from journal.sql import dialect_insert, upsert
from journal.store import Journal

__all__ = [
    "ALIAS_NAME",
    "CODE_STORAGE_LIMIT",
    "LATEST",
    "TAG_LIMIT",
    "FunctionSpec",
    "FunctionVersion",
    "LayerRef",
    "LayerVersion",
    "ProvisionedShare",
    "Registry",
    "function_aliases",
    "function_versions",
    "functions",
    "layer_versions",
]

LATEST = "$LATEST"
#: AWS's default code storage of an account in a region (75 GB): the code of every function version and
#: every layer version counts, each time it is stored (GetAccountSettings' TotalCodeSize).
CODE_STORAGE_LIMIT = 75 * 1024**3
#: Most tags on one function (AWS's limit).
TAG_LIMIT = 50

metadata = MetaData()

functions = Table(
    "functions",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("incarnation", String(16), nullable=False),
    Column("revision", BigInteger, nullable=False),
    Column("next_version", BigInteger, nullable=False),
    Column("reserved_concurrency", Integer, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("tags", Text, nullable=False, server_default="{}"),
)
function_versions = Table(
    "function_versions",
    metadata,
    Column("name", String(64), nullable=False),
    Column("version", String(16), nullable=False),
    Column("revision", BigInteger, nullable=False),
    Column("document", Text, nullable=False),
    Column("modified_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("name", "version"),
)
layer_versions = Table(
    "layer_versions",
    metadata,
    Column("name", String(140), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("document", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("name", "version"),
)
provisioned_concurrency = Table(
    "provisioned_concurrency",
    metadata,
    Column("name", String(64), nullable=False),
    Column("version", String(128), nullable=False),
    Column("count", Integer, nullable=False),
    Column("modified_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("name", "version"),
)
event_invoke_configs = Table(
    "event_invoke_configs",
    metadata,
    Column("name", String(64), nullable=False),
    Column("qualifier", String(128), nullable=False),
    Column("document", Text, nullable=False),
    Column("modified_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("name", "qualifier"),
)
function_aliases = Table(
    "function_aliases",
    metadata,
    Column("name", String(64), nullable=False),
    Column("alias", String(128), nullable=False),
    Column("function_version", String(16), nullable=False),
    Column("weights", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("revision_id", String(36), nullable=False),
    Column("modified_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("name", "alias", name="function_aliases_pk"),
)


def _now_ms() -> int:
    return int(time.time() * 1000)


#: Reserved concurrency leaves at least this much of the account's limit unreserved.
_MIN_UNRESERVED = 100

#: A published version number as stored (no sign, no leading zeros).
_VERSION_NUMBER = re.compile(r"[1-9][0-9]{0,15}")
#: An alias name (botocore's ``Alias``): 1-128 of ``[a-zA-Z0-9-_]``, not all digits.
ALIAS_NAME = re.compile(r"(?!^[0-9]+$)([a-zA-Z0-9-_]{1,128})")


def _check_marker(name: str, marker: str, *, latest: bool, aliases: bool = False) -> None:
    """A pagination marker: a version of the function from an earlier page (``$LATEST`` if ``latest``, an
    alias name too if ``aliases``: :func:`_numbered_after` orders any qualifier, by length then text)."""
    if aliases and ALIAS_NAME.fullmatch(marker):
        return
    if marker and not (latest and marker == LATEST) and not _VERSION_NUMBER.fullmatch(marker):
        raise Invalid("function", name, marker, rule="marker")


#: ``sha256`` of a deleted layer version: the row stays as a tombstone so its number is never reused.
_DELETED = ""


def _numbered_after(column: Any, marker: str) -> Any:
    """Rows whose version string (digits, no leading zeros) sorts after ``marker`` numerically."""
    length = func.length(column)
    return or_(length > len(marker), and_(length == len(marker), column > marker))


def _numeric_order(column: Any) -> tuple[Any, Any]:
    """Order version strings (digits, no leading zeros) numerically."""
    return func.length(column), column


@dataclass(frozen=True, slots=True)
class LayerRef:
    """A layer version a function uses: its ARN and the hash and size of its zip."""

    arn: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class LayerVersion:
    """A published layer version."""

    name: str
    version: int
    arn: str
    sha256: str
    size: int
    description: str
    runtimes: tuple[str, ...]
    created_ms: int
    #: CompatibleArchitectures (x86_64, arm64), as published; empty when none were given.
    architectures: tuple[str, ...] = ()
    #: LicenseInfo, or "" when none was given.
    license_info: str = ""

    def matches(self, runtime: str = "", architecture: str = "") -> bool:
        """Whether this version lists ``runtime`` and ``architecture`` (each only if given), as the
        ListLayers and ListLayerVersions filters ask."""
        return (not runtime or runtime in self.runtimes) and (not architecture or architecture in self.architectures)


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """What a caller configures about a function (everything but its code)."""

    runtime: str
    handler: str = ""
    memory_mb: int = 128
    timeout_s: int = 3
    environment: dict[str, str] = field(default_factory=dict)
    layers: tuple[LayerRef, ...] = ()
    description: str = ""
    role: str = ""
    snap_start: bool = False
    #: DeadLetterConfig's TargetArn: the SQS queue failed async events go to ("" for none).
    dead_letter_target: str = ""
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    #: EphemeralStorage's Size: the sandbox's /tmp in MB.
    ephemeral_storage_mb: int = 512
    #: TracingConfig's Mode (PassThrough: Leasehold samples no trace itself).
    tracing_mode: str = "PassThrough"


@dataclass(frozen=True, slots=True)
class ProvisionedShare:
    """Part of a provisioned concurrency config: ``count`` warm sandboxes of ``version`` for the config on
    ``qualifier`` (that version, or an alias whose versions share the config by weight)."""

    qualifier: str
    version: FunctionVersion
    count: int


@dataclass(frozen=True, slots=True)
class FunctionVersion:
    """One stored version of a function ($LATEST or a published number)."""

    name: str
    version: str
    incarnation: str
    revision: int
    spec: FunctionSpec
    code_sha256: str
    code_size: int
    revision_id: str
    modified_ms: int

    def pool_version(self) -> str:
        """The assignment service's pool key (see :attr:`FunctionConfig.pool_version`)."""
        if self.version == LATEST:
            return f"{LATEST}.r{self.revision}.{self.incarnation}"
        return f"{self.version}.{self.incarnation}"

    def config(self, arn: str) -> FunctionConfig:
        """The invoke path's view of this version."""
        return FunctionConfig(
            name=self.name,
            version=self.version,
            pool_version=self.pool_version(),
            runtime=worker_runtime(self.spec.runtime),
            handler=self.spec.handler,
            code_sha256=self.code_sha256,
            memory_mb=self.spec.memory_mb,
            timeout_s=self.spec.timeout_s,
            environment=dict(self.spec.environment),
            layers=tuple(layer.sha256 for layer in self.spec.layers),
            # SnapStart applies to published versions only, as on AWS: $LATEST always initialises.
            snap_start=self.spec.snap_start and self.version != LATEST,
            arn=arn,
            incarnation=self.incarnation,
            role=self.spec.role.rpartition("/")[2] or "leasehold",
            dead_letter_target=self.spec.dead_letter_target,
            logging=self.spec.logging,
            ephemeral_storage_mb=self.spec.ephemeral_storage_mb,
        )


def _spec_to_json(spec: FunctionSpec) -> dict[str, Any]:
    doc = dataclasses.asdict(spec)
    doc["layers"] = [dataclasses.asdict(layer) for layer in spec.layers]
    return doc


def _spec_from_json(doc: Mapping[str, Any]) -> FunctionSpec:
    return FunctionSpec(
        runtime=doc["runtime"],
        handler=doc["handler"],
        memory_mb=doc["memory_mb"],
        timeout_s=doc["timeout_s"],
        environment=dict(doc["environment"]),
        layers=tuple(LayerRef(**layer) for layer in doc["layers"]),
        description=doc["description"],
        role=doc["role"],
        snap_start=doc["snap_start"],
        # Versions stored before dead-letter queues existed have none.
        dead_letter_target=doc.get("dead_letter_target", ""),
        # ...nor a LoggingConfig (Text, the default).
        logging=LoggingConfig(**doc.get("logging", {})),
        # ...nor EphemeralStorage and TracingConfig (AWS's defaults).
        ephemeral_storage_mb=doc.get("ephemeral_storage_mb", 512),
        tracing_mode=doc.get("tracing_mode", "PassThrough"),
    )


def _check_revision(current: FunctionVersion, revision_id: str | None) -> None:
    """:class:`RevisionMismatch` unless ``revision_id`` is None or ``current``'s."""
    if revision_id is not None and revision_id != current.revision_id:
        raise RevisionMismatch("function", current.name)


def _tags_text(name: str, tags: dict[str, str]) -> str:
    """The stored form of a function's tags; :class:`Invalid` past :data:`TAG_LIMIT`."""
    if len(tags) > TAG_LIMIT:
        raise Invalid("function", name, rule="tag_limit", limit=TAG_LIMIT)
    return json.dumps(tags, sort_keys=True)


def _same_release(a: FunctionVersion, b: FunctionVersion) -> bool:
    """Whether two versions run the same code and configuration (a version's description does not count)."""
    plain = dataclasses.replace
    return a.code_sha256 == b.code_sha256 and plain(a.spec, description="") == plain(b.spec, description="")


def _aliases_routing_to(conn: Connection, name: str, version: str) -> list[str]:
    """The names of the function's aliases that route to ``version`` (primary or weighted), sorted."""
    a = function_aliases.c
    rows = conn.execute(select(a.alias, a.function_version, a.weights).where(a.name == name)).all()
    return sorted(row.alias for row in rows if row.function_version == version or version in json.loads(row.weights))


def _not_found(name: str, qualifier: str | None = None) -> NotFound:
    return NotFound("function", name, qualifier)


class Registry:
    """Functions and their versions in the journal's database; every method is one transaction."""

    def __init__(
        self,
        journal: Journal,
        *,
        region: str = "us-east-1",
        account: str = "000000000000",
        account_limit: int = DEFAULT_ACCOUNT_LIMIT,
        code_storage_limit: int = CODE_STORAGE_LIMIT,
    ) -> None:
        self.journal = journal
        self.blobs = BlobStore(journal)
        self.region = region
        self.account = account
        self.account_limit = account_limit
        self.code_storage_limit = code_storage_limit

    # ------------------------------------------------------------------ ARNs

    @property
    def home(self) -> Home:
        """The account and region whose functions this registry holds."""
        return Home(self.account, self.region)

    def function_arn(self, name: str, qualifier: str | None = None) -> str:
        """``arn:aws:lambda:{region}:{account}:function:{name}[:{qualifier}]``."""
        base = f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"
        return f"{base}:{qualifier}" if qualifier else base

    def layer_arn(self, name: str, version: int | None = None) -> str:
        """``arn:aws:lambda:{region}:{account}:layer:{name}[:{version}]``."""
        base = f"arn:aws:lambda:{self.region}:{self.account}:layer:{name}"
        return f"{base}:{version}" if version is not None else base

    # ------------------------------------------------------------------ reading

    @staticmethod
    def _row_to_version(row: Any, incarnation: str) -> FunctionVersion:
        doc = json.loads(row.document)
        return FunctionVersion(
            name=row.name,
            version=row.version,
            incarnation=incarnation,
            revision=row.revision,
            spec=_spec_from_json(doc["spec"]),
            code_sha256=doc["code_sha256"],
            code_size=doc["code_size"],
            revision_id=doc["revision_id"],
            modified_ms=row.modified_ms,
        )

    def _load(self, conn: Connection, name: str, version: str) -> FunctionVersion | None:
        """The stored version named ``version``: ``$LATEST``, a number, or an alias (its primary version)."""
        head = conn.execute(select(functions.c.incarnation).where(functions.c.name == name)).first()
        if head is None:
            return None
        if version != LATEST and not version.isdigit():
            a = function_aliases.c
            target = conn.execute(select(a.function_version).where(a.name == name, a.alias == version)).first()
            if target is None:
                return None
            version = str(target.function_version)
        row = conn.execute(
            select(function_versions).where(function_versions.c.name == name, function_versions.c.version == version)
        ).first()
        return None if row is None else self._row_to_version(row, head.incarnation)

    def get(self, name: str, qualifier: str | None = None) -> FunctionVersion:
        """The version named by ``qualifier`` (``$LATEST`` when ``None``); :class:`NotFound`."""
        version = qualifier or LATEST
        with self.journal.reader.connect() as conn:
            found = self._load(conn, name, version)
        if found is None:
            raise _not_found(name, qualifier)
        return found

    def list_functions(self, *, all_versions: bool = False, marker: str = "", limit: int = 50) -> list[FunctionVersion]:
        """Functions by name after ``marker`` ($LATEST only, or every version with ``all_versions``)."""
        with self.journal.reader.connect() as conn:
            heads = conn.execute(
                select(functions.c.name, functions.c.incarnation)
                .where(functions.c.name > marker)
                .order_by(functions.c.name)
                .limit(limit)
            ).all()
            found: list[FunctionVersion] = []
            for head in heads:
                query = select(function_versions).where(function_versions.c.name == head.name)
                if not all_versions:
                    query = query.where(function_versions.c.version == LATEST)
                rows = conn.execute(query).all()
                versions = [self._row_to_version(row, head.incarnation) for row in rows]
                versions.sort(key=lambda v: (v.version != LATEST, int(v.version) if v.version.isdigit() else 0))
                found.extend(versions)
        return found

    def versions(self, name: str, *, marker: str = "", limit: int | None = None) -> list[FunctionVersion]:
        """$LATEST and every published version of a function, oldest first; with ``marker`` (a version
        from an earlier page) only those after it, and at most ``limit``."""
        _check_marker(name, marker, latest=True)
        with self.journal.reader.connect() as conn:
            head = conn.execute(select(functions.c.incarnation).where(functions.c.name == name)).first()
            if head is None:
                raise _not_found(name)
            column = function_versions.c.version
            query = select(function_versions).where(function_versions.c.name == name, column != LATEST)
            if marker and marker != LATEST:
                query = query.where(_numbered_after(column, marker))
            rows = list(conn.execute(query.order_by(*_numeric_order(column)).limit(limit)).all())
            if not marker:
                latest = conn.execute(
                    select(function_versions).where(function_versions.c.name == name, column == LATEST)
                ).first()
                if latest is not None:
                    rows.insert(0, latest)
        versions = [self._row_to_version(row, head.incarnation) for row in rows]
        return versions if limit is None else versions[:limit]

    # ------------------------------------------------------------------ writing

    def _write_version(self, conn: Connection, version: FunctionVersion, *, new: bool) -> None:
        document = json.dumps(
            {
                "spec": _spec_to_json(version.spec),
                "code_sha256": version.code_sha256,
                "code_size": version.code_size,
                "revision_id": version.revision_id,
            },
            sort_keys=True,
        )
        values = {"revision": version.revision, "document": document, "modified_ms": version.modified_ms}
        if new:
            conn.execute(insert(function_versions).values(name=version.name, version=version.version, **values))
        else:
            conn.execute(
                update(function_versions)
                .where(function_versions.c.name == version.name, function_versions.c.version == version.version)
                .values(**values)
            )

    def create(
        self,
        name: str,
        spec: FunctionSpec,
        code: bytes,
        *,
        publish: bool = False,
        tags: Mapping[str, str] | None = None,
    ) -> FunctionVersion:
        """A new function (with ``tags``); :class:`Conflict` if the name is taken. Returns $LATEST (or
        version 1 with ``publish``)."""
        sha = self.blobs.put(code)
        now = _now_ms()
        incarnation = secrets.token_hex(4)
        latest = FunctionVersion(name, LATEST, incarnation, 1, spec, sha, len(code), secrets.token_hex(16), now)
        try:
            with self.journal.writer.begin() as conn:
                self._check_code_storage(conn, len(code))
                head = {
                    "name": name,
                    "incarnation": incarnation,
                    "revision": 1,
                    "next_version": 1,
                    "created_ms": now,
                    "tags": _tags_text(name, dict(tags or {})),
                }
                if conn.execute(dialect_insert(conn, functions).values(head).on_conflict_do_nothing()).rowcount == 0:
                    raise Conflict("function", name)
                self._write_version(conn, latest, new=True)
        except IntegrityError:
            raise Conflict("function", name) from None
        return self.publish(name) if publish else latest

    def _change_latest(self, name: str, change: Any, revision_id: str | None) -> FunctionVersion:
        with self.journal.writer.begin() as conn:
            current = self._load(conn, name, LATEST)
            if current is None:
                raise _not_found(name)
            _check_revision(current, revision_id)
            revision = current.revision + 1
            changed: FunctionVersion = change(current)
            self._check_code_storage(conn, changed.code_size - current.code_size)
            changed = dataclasses.replace(
                changed, revision=revision, revision_id=secrets.token_hex(16), modified_ms=_now_ms()
            )
            conn.execute(update(functions).where(functions.c.name == name).values(revision=revision))
            self._write_version(conn, changed, new=False)
        return changed

    def update_code(
        self, name: str, code: bytes, *, publish: bool = False, revision_id: str | None = None
    ) -> FunctionVersion:
        """New code for $LATEST (and a published version with ``publish``); with ``revision_id``, only if
        that is $LATEST's (:class:`RevisionMismatch` otherwise)."""
        self.get(name)
        sha = self.blobs.put(code)
        latest = self._change_latest(
            name, lambda v: dataclasses.replace(v, code_sha256=sha, code_size=len(code)), revision_id
        )
        return self.publish(name) if publish else latest

    def update_configuration(
        self, name: str, changes: Mapping[str, Any], *, revision_id: str | None = None
    ) -> FunctionVersion:
        """Change fields of $LATEST's :class:`FunctionSpec` (by field name); ``revision_id`` as
        :meth:`update_code`."""
        return self._change_latest(
            name, lambda v: dataclasses.replace(v, spec=dataclasses.replace(v.spec, **changes)), revision_id
        )

    def publish(
        self, name: str, *, code_sha256: str = "", description: str | None = None, revision_id: str | None = None
    ) -> FunctionVersion:
        """Publish $LATEST as the next version number; when $LATEST is unchanged since the newest published
        version, that version is returned instead (as AWS does). ``code_sha256`` and ``revision_id``, when
        given, must be $LATEST's."""
        with self.journal.writer.begin() as conn:
            head = conn.execute(select(functions).where(functions.c.name == name)).first()
            latest = self._load(conn, name, LATEST)
            if head is None or latest is None:
                raise _not_found(name)
            _check_revision(latest, revision_id)
            if code_sha256 and code_sha256 != latest.code_sha256:
                raise PreconditionFailed("function", name, expected=code_sha256, actual=latest.code_sha256)
            if head.next_version > 1:
                newest = self._load(conn, name, str(head.next_version - 1))
                if newest is not None and _same_release(newest, latest):
                    return newest
            self._check_code_storage(conn, latest.code_size)
            number = str(head.next_version)
            spec = latest.spec if description is None else dataclasses.replace(latest.spec, description=description)
            published = dataclasses.replace(latest, version=number, spec=spec, modified_ms=_now_ms())
            conn.execute(update(functions).where(functions.c.name == name).values(next_version=head.next_version + 1))
            self._write_version(conn, published, new=True)
        return published

    def delete(self, name: str, qualifier: str | None = None) -> None:
        """Delete the function (every version and setting), or one published version."""
        if qualifier == LATEST:
            raise Invalid("function", name, qualifier, rule="delete_latest")
        with self.journal.writer.begin() as conn:
            if conn.execute(select(functions.c.name).where(functions.c.name == name)).first() is None:
                raise _not_found(name)
            if qualifier is None:
                for table in (function_versions, provisioned_concurrency, event_invoke_configs, function_aliases):
                    conn.execute(delete(table).where(table.c.name == name))
                conn.execute(delete(functions).where(functions.c.name == name))
                return
            aliases = _aliases_routing_to(conn, name, qualifier)
            if aliases:
                raise Referenced("function", name, qualifier, aliases=aliases)
            gone = conn.execute(
                delete(function_versions).where(
                    function_versions.c.name == name, function_versions.c.version == qualifier
                )
            )
            if gone.rowcount == 0:
                raise _not_found(name, qualifier)
            conn.execute(
                delete(provisioned_concurrency).where(
                    provisioned_concurrency.c.name == name, provisioned_concurrency.c.version == qualifier
                )
            )
            conn.execute(
                delete(event_invoke_configs).where(
                    event_invoke_configs.c.name == name, event_invoke_configs.c.qualifier == qualifier
                )
            )

    # ------------------------------------------------------------------ tags

    def tags(self, name: str) -> dict[str, str]:
        """The function's tags; :class:`NotFound`."""
        with self.journal.reader.connect() as conn:
            row = conn.execute(select(functions.c.tags).where(functions.c.name == name)).first()
        if row is None:
            raise _not_found(name)
        return dict(json.loads(row.tags))

    def change_tags(
        self, name: str, *, add: Mapping[str, str] | None = None, remove: Iterable[str] = ()
    ) -> dict[str, str]:
        """Set ``add`` (replacing values of keys it names) and drop ``remove`` (absent keys are no error),
        in one transaction; the tags after. More than :data:`TAG_LIMIT` is :class:`Invalid` and changes
        nothing. Tags belong to the function, so no version's RevisionId changes."""
        with self.journal.writer.begin() as conn:
            row = conn.execute(select(functions.c.tags).where(functions.c.name == name)).first()
            if row is None:
                raise _not_found(name)
            tags: dict[str, str] = dict(json.loads(row.tags))
            tags.update(add or {})
            for key in remove:
                tags.pop(key, None)
            conn.execute(update(functions).where(functions.c.name == name).values(tags=_tags_text(name, tags)))
        return tags

    # ------------------------------------------------------------------ account

    @staticmethod
    def _code_in_use(conn: Connection) -> int:
        """Bytes of code stored: every function version's and every layer version's (not deleted ones)."""
        documents = conn.execute(select(function_versions.c.document)).scalars()
        functions_code = sum(int(json.loads(document)["code_size"]) for document in documents)
        layers = select(func.coalesce(func.sum(layer_versions.c.size), 0)).where(layer_versions.c.sha256 != _DELETED)
        return functions_code + int(conn.execute(layers).scalar_one())

    def _check_code_storage(self, conn: Connection, adding: int) -> None:
        """:class:`StorageExceeded` when ``adding`` more bytes would pass the account's code storage."""
        if adding > 0 and self._code_in_use(conn) + adding > self.code_storage_limit:
            raise StorageExceeded("function", "", limit=self.code_storage_limit)

    def account_usage(self) -> tuple[int, int, int]:
        """``(code bytes stored, functions, reserved concurrency in all)``: GetAccountSettings' AccountUsage
        and what the unreserved concurrency is computed from."""
        with self.journal.reader.connect() as conn:
            code = self._code_in_use(conn)
            count = conn.execute(select(func.count()).select_from(functions)).scalar_one()
            reserved = conn.execute(select(func.coalesce(func.sum(functions.c.reserved_concurrency), 0))).scalar_one()
        return code, int(count), int(reserved)

    # ------------------------------------------------------------------ concurrency

    def set_reserved(self, name: str, reserved: int | None) -> None:
        """Reserved concurrency (``None`` removes it); the account keeps at least 100 unreserved."""
        with self.journal.writer.begin() as conn:
            if conn.execute(select(functions.c.name).where(functions.c.name == name)).first() is None:
                raise _not_found(name)
            if reserved is not None:
                others = conn.execute(
                    select(func.coalesce(func.sum(functions.c.reserved_concurrency), 0)).where(functions.c.name != name)
                ).scalar_one()
                if int(others) + reserved > self.account_limit - _MIN_UNRESERVED:
                    raise Invalid("function", name, rule="unreserved_minimum", limit=_MIN_UNRESERVED)
            conn.execute(update(functions).where(functions.c.name == name).values(reserved_concurrency=reserved))

    def reserved(self, name: str) -> int | None:
        """The function's reserved concurrency, or ``None``."""
        with self.journal.reader.connect() as conn:
            row = conn.execute(select(functions.c.reserved_concurrency).where(functions.c.name == name)).first()
        if row is None:
            raise _not_found(name)
        return None if row[0] is None else int(row[0])

    def all_reserved(self) -> dict[str, int]:
        """Every function with reserved concurrency."""
        with self.journal.reader.connect() as conn:
            rows = conn.execute(
                select(functions.c.name, functions.c.reserved_concurrency).where(
                    functions.c.reserved_concurrency.is_not(None)
                )
            ).all()
        return {row.name: int(row.reserved_concurrency) for row in rows}

    def shares_in(self, conn: Connection, name: str, qualifier: str, count: int) -> list[ProvisionedShare]:
        """The versions a provisioned config on ``qualifier`` warms, and how many sandboxes each: a version
        all ``count``; an alias splits them by its weights (the additional version its rounded share).
        :class:`NotFound` for a missing qualifier (or version), :class:`Invalid` for ``$LATEST``."""
        counts: list[tuple[str, int]] = [(qualifier, count)]
        if qualifier != LATEST and not qualifier.isdigit():
            a = function_aliases.c
            query = select(a.function_version, a.weights).where(a.name == name, a.alias == qualifier)
            row = conn.execute(query).first()
            if row is None:
                raise _not_found(name, qualifier)
            extra = round(count * sum(json.loads(row.weights).values()))
            counts = [(str(row.function_version), count - extra)]
            counts += [(version, extra) for version in json.loads(row.weights)]
        shares = []
        for version, share in counts:
            if version == LATEST:
                raise Invalid("function", name, qualifier, rule="unpublished")
            target = self._load(conn, name, version)
            if target is None:
                raise _not_found(name, version)
            if share > 0:
                shares.append(ProvisionedShare(qualifier, target, share))
        return shares

    def check_provisioned_overlap(self, conn: Connection, name: str, qualifier: str, versions: Iterable[str]) -> None:
        """:class:`ProvisionedOverlap` when another provisioned config (on a version, or an alias) already
        warms one of ``versions``: a version's sandboxes are provisioned by one config at a time."""
        wanted = set(versions)
        p = provisioned_concurrency.c
        rows = conn.execute(select(p.version, p.count).where(p.name == name, p.version != qualifier)).all()
        for row in rows:
            with contextlib.suppress(NotFound, Invalid):  # an alias moved to $LATEST or gone: warms nothing
                for share in self.shares_in(conn, name, str(row.version), int(row[1])):
                    if share.version.version in wanted:
                        raise ProvisionedOverlap(
                            "provisioned_concurrency",
                            name,
                            qualifier,
                            holder=str(row.version),
                            version=share.version.version,
                        )

    def set_provisioned(self, name: str, qualifier: str, count: int) -> list[ProvisionedShare]:
        """Provisioned concurrency on a published version or an alias of published versions; the shares
        the provisioner warms (:meth:`shares_in`). :class:`ProvisionedOverlap` when another config warms one."""
        with self.journal.writer.begin() as conn:
            shares = self.shares_in(conn, name, qualifier, count)
            self.check_provisioned_overlap(conn, name, qualifier, [share.version.version for share in shares])
            key = {"name": name, "version": qualifier}
            upsert(conn, provisioned_concurrency, key, {"count": count, "modified_ms": _now_ms()})
        return shares

    def provisioned_shares(self, name: str, qualifier: str) -> list[ProvisionedShare]:
        """The shares of the config on ``qualifier`` now (``[]`` without one, or when its alias points at
        ``$LATEST`` or a version that is gone)."""
        with self.journal.reader.connect() as conn:
            row = conn.execute(
                select(provisioned_concurrency.c.count).where(
                    provisioned_concurrency.c.name == name, provisioned_concurrency.c.version == qualifier
                )
            ).first()
            if row is None:
                return []
            try:
                return self.shares_in(conn, name, qualifier, int(row[0]))
            except (NotFound, Invalid):
                return []

    def provisioned(self, name: str, version: str) -> tuple[int, int] | None:
        """``(count, modified_ms)`` of a version's provisioned concurrency, or ``None`` when it has none;
        :class:`NotFound` when there is no such function version."""
        with self.journal.reader.connect() as conn:
            if self._load(conn, name, version) is None:
                raise _not_found(name, version)
            row = conn.execute(
                select(provisioned_concurrency.c.count, provisioned_concurrency.c.modified_ms).where(
                    provisioned_concurrency.c.name == name, provisioned_concurrency.c.version == version
                )
            ).first()
        return None if row is None else (int(row[0]), int(row[1]))

    def provisioned_configs(self, name: str, *, marker: str = "", limit: int = 50) -> list[tuple[str, int, int]]:
        """``(version, count, modified_ms)`` of a function's provisioned versions in version order, after
        ``marker`` (a version from an earlier page); :class:`NotFound` without the function."""
        _check_marker(name, marker, latest=False, aliases=True)
        column = provisioned_concurrency.c.version
        with self.journal.reader.connect() as conn:
            if conn.execute(select(functions.c.name).where(functions.c.name == name)).first() is None:
                raise _not_found(name)
            query = select(column, provisioned_concurrency.c.count, provisioned_concurrency.c.modified_ms).where(
                provisioned_concurrency.c.name == name
            )
            if marker:
                query = query.where(_numbered_after(column, marker))
            rows = conn.execute(query.order_by(*_numeric_order(column)).limit(limit)).all()
        return [(str(row[0]), int(row[1]), int(row[2])) for row in rows]

    def delete_provisioned(self, name: str, version: str) -> None:
        """Remove a version's provisioned concurrency; :class:`NotFound` if none."""
        table = provisioned_concurrency
        if not self._delete_rows(table, table.c.name == name, table.c.version == version):
            raise NotFound("provisioned_concurrency", name, version)

    def _delete_rows(self, table: Table, *where: Any) -> int:
        """Delete the rows of ``table`` matching ``where`` in one transaction; how many there were."""
        with self.journal.writer.begin() as conn:
            return int(conn.execute(delete(table).where(*where)).rowcount)

    def all_provisioned(self) -> list[ProvisionedShare]:
        """Every provisioned config's shares (an alias's config has one per version it routes to)."""
        with self.journal.reader.connect() as conn:
            rows = conn.execute(select(provisioned_concurrency)).all()
            found: list[ProvisionedShare] = []
            for row in rows:
                with contextlib.suppress(NotFound, Invalid):  # deleted meanwhile, or an alias on $LATEST
                    found.extend(self.shares_in(conn, row.name, row.version, int(row._mapping["count"])))
        return found

    # ------------------------------------------------------------------ async settings

    def put_event_config(self, name: str, qualifier: str, config: EventInvokeConfig) -> int:
        """Store PutFunctionEventInvokeConfig for a version; returns the modification time (ms)."""
        now = _now_ms()
        document = json.dumps(dataclasses.asdict(config), sort_keys=True)
        with self.journal.writer.begin() as conn:
            if self._load(conn, name, qualifier) is None:
                raise _not_found(name, qualifier)
            key = {"name": name, "qualifier": qualifier}
            upsert(conn, event_invoke_configs, key, {"document": document, "modified_ms": now})
        return now

    def update_event_config(
        self, name: str, qualifier: str, changes: Mapping[str, Any]
    ) -> tuple[EventInvokeConfig, int]:
        """UpdateFunctionEventInvokeConfig: change fields of a version's stored async settings (by
        :class:`EventInvokeConfig` field name); :class:`NotFound` when it has none."""
        now = _now_ms()
        key = (event_invoke_configs.c.name == name, event_invoke_configs.c.qualifier == qualifier)
        with self.journal.writer.begin() as conn:
            row = conn.execute(select(event_invoke_configs.c.document).where(*key)).first()
            if row is None:
                raise NotFound("event_invoke_config", name, qualifier)
            config = dataclasses.replace(EventInvokeConfig(**json.loads(row.document)), **changes)
            document = json.dumps(dataclasses.asdict(config), sort_keys=True)
            conn.execute(update(event_invoke_configs).where(*key).values(document=document, modified_ms=now))
        return config, now

    def delete_event_config(self, name: str, qualifier: str) -> None:
        """Remove a version's async settings; :class:`NotFound` when it has none."""
        table = event_invoke_configs
        if not self._delete_rows(table, table.c.name == name, table.c.qualifier == qualifier):
            raise NotFound("event_invoke_config", name, qualifier)

    def event_configs(
        self, name: str, *, marker: str = "", limit: int = 50
    ) -> list[tuple[str, EventInvokeConfig, int]]:
        """``(qualifier, config, modified_ms)`` of every version of a function with async settings ($LATEST
        first, then by version), after ``marker`` (a qualifier from an earlier page)."""
        _check_marker(name, marker, latest=True, aliases=True)
        column = event_invoke_configs.c.qualifier
        with self.journal.reader.connect() as conn:
            if conn.execute(select(functions.c.name).where(functions.c.name == name)).first() is None:
                raise _not_found(name)
            query = select(event_invoke_configs).where(event_invoke_configs.c.name == name)
            if marker:
                query = query.where(column != LATEST)
                if marker != LATEST:
                    query = query.where(_numbered_after(column, marker))
            order = (column != LATEST, *_numeric_order(column))
            rows = conn.execute(query.order_by(*order).limit(limit)).all()
        return [(row.qualifier, EventInvokeConfig(**json.loads(row.document)), int(row.modified_ms)) for row in rows]

    def event_config(self, name: str, qualifier: str) -> tuple[EventInvokeConfig, int] | None:
        """The stored async settings of a version and when they were set, or ``None``."""
        with self.journal.reader.connect() as conn:
            row = conn.execute(
                select(event_invoke_configs.c.document, event_invoke_configs.c.modified_ms).where(
                    event_invoke_configs.c.name == name, event_invoke_configs.c.qualifier == qualifier
                )
            ).first()
        if row is None:
            return None
        return EventInvokeConfig(**json.loads(row.document)), int(row.modified_ms)

    # ------------------------------------------------------------------ layers

    def publish_layer(
        self,
        name: str,
        content: bytes,
        *,
        description: str = "",
        runtimes: tuple[str, ...] = (),
        architectures: tuple[str, ...] = (),
        license_info: str = "",
    ) -> LayerVersion:
        """Store a layer zip as the layer's next version."""
        sha = self.blobs.put(content)
        now = _now_ms()
        document = json.dumps(
            {
                "description": description,
                "runtimes": list(runtimes),
                "architectures": list(architectures),
                "license_info": license_info,
            }
        )
        for _ in range(5):
            try:
                with self.journal.writer.begin() as conn:
                    newest = conn.execute(
                        select(func.max(layer_versions.c.version)).where(layer_versions.c.name == name)
                    ).scalar_one()
                    number = int(newest or 0) + 1
                    self._check_code_storage(conn, len(content))
                    conn.execute(
                        insert(layer_versions).values(
                            name=name, version=number, sha256=sha, size=len(content), document=document, created_ms=now
                        )
                    )
            except IntegrityError:
                continue
            return LayerVersion(
                name,
                number,
                self.layer_arn(name, number),
                sha,
                len(content),
                description,
                runtimes,
                now,
                architectures=architectures,
                license_info=license_info,
            )
        raise Conflict("layer_version", name)

    def layer(self, arn: str) -> LayerRef:
        """The layer version an ARN names (one of this region and account)."""
        prefix = self.layer_arn("")
        rest = arn[len(prefix) :] if arn.startswith(prefix) else ""
        name, _, number = rest.rpartition(":")
        if not name or not _VERSION_NUMBER.fullmatch(number):
            raise Invalid("layer_version", arn, rule="unknown_layer")
        with self.journal.reader.connect() as conn:
            row = conn.execute(
                select(layer_versions.c.sha256, layer_versions.c.size).where(
                    layer_versions.c.name == name,
                    layer_versions.c.version == int(number),
                    layer_versions.c.sha256 != _DELETED,
                )
            ).first()
        if row is None:
            raise Invalid("layer_version", arn, rule="unknown_layer")
        return LayerRef(arn, row.sha256, int(row.size))

    def _row_to_layer(self, row: Any) -> LayerVersion:
        doc = json.loads(row.document)
        return LayerVersion(
            name=row.name,
            version=int(row.version),
            arn=self.layer_arn(row.name, int(row.version)),
            sha256=row.sha256,
            size=int(row.size),
            description=str(doc.get("description", "")),
            runtimes=tuple(doc.get("runtimes", ())),
            created_ms=int(row.created_ms),
            architectures=tuple(doc.get("architectures", ())),
            license_info=str(doc.get("license_info", "")),
        )

    def layer_version(self, name: str, version: int) -> LayerVersion:
        """One layer version; :class:`NotFound` if it does not exist (or was deleted)."""
        with self.journal.reader.connect() as conn:
            row = conn.execute(
                select(layer_versions).where(
                    layer_versions.c.name == name,
                    layer_versions.c.version == version,
                    layer_versions.c.sha256 != _DELETED,
                )
            ).first()
        if row is None:
            raise NotFound("layer_version", name, str(version))
        return self._row_to_layer(row)

    def layer_versions(
        self, name: str, *, before: int | None = None, limit: int = 50, runtime: str = "", architecture: str = ""
    ) -> list[LayerVersion]:
        """A layer's versions (those listing ``runtime`` and ``architecture``, each if given), newest first; with
        ``before`` only those older than that version number; at most ``limit``."""
        with self.journal.reader.connect() as conn:
            query = select(layer_versions).where(layer_versions.c.name == name, layer_versions.c.sha256 != _DELETED)
            if before is not None:
                query = query.where(layer_versions.c.version < before)
            rows = conn.execute(query.order_by(layer_versions.c.version.desc()))
            return self._matching(rows, limit, runtime, architecture, newest_per_name=False)

    def layers(
        self, *, marker: str = "", limit: int = 50, runtime: str = "", architecture: str = ""
    ) -> list[LayerVersion]:
        """The newest version of each layer (the newest listing ``runtime`` and ``architecture``, each if
        given), by layer name after ``marker``; at most ``limit`` layers."""
        with self.journal.reader.connect() as conn:
            rows = conn.execute(
                select(layer_versions)
                .where(layer_versions.c.name > marker, layer_versions.c.sha256 != _DELETED)
                .order_by(layer_versions.c.name, layer_versions.c.version.desc())
            )
            return self._matching(rows, limit, runtime, architecture, newest_per_name=True)

    def _matching(
        self, rows: Iterable[Any], limit: int, runtime: str, architecture: str, *, newest_per_name: bool
    ) -> list[LayerVersion]:
        """Up to ``limit`` layer versions of ``rows`` (in their order) that match the filters; with
        ``newest_per_name`` only the first match of each layer name (rows come newest first per name)."""
        found: list[LayerVersion] = []
        for row in rows:
            if newest_per_name and found and found[-1].name == row.name:
                continue
            layer = self._row_to_layer(row)
            if not layer.matches(runtime, architecture):
                continue
            found.append(layer)
            if len(found) >= limit:
                break
        return found

    def delete_layer_version(self, name: str, version: int) -> None:
        """Delete a layer version (nothing happens if there is none). Its number is never reused, and
        functions that use it keep their copy, as on AWS."""
        with self.journal.writer.begin() as conn:
            conn.execute(
                update(layer_versions)
                .where(layer_versions.c.name == name, layer_versions.c.version == version)
                .values(sha256=_DELETED, size=0, document="{}")
            )
