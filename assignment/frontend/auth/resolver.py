"""Who holds an access key id: its secret and the caller it names, from the database through a short cache.

Two kinds of callers: admin keys (``AKIA…``, no session token) and function sessions (``ASIA…`` with the
``X-Amz-Security-Token`` of :mod:`~assignment.frontend.auth.sessions`, checked against the function's
current incarnation and revocation time, both read through :class:`FunctionStates`).

The SigV4 middleware asks :class:`Resolver` for the identity behind a verified claim's key id before it
recomputes the signature. Admin keys come from :class:`~assignment.frontend.auth.keys.KeyStore`, cached for
``ttl_s`` (hits and misses alike), so a deleted key is refused by every frontend at most ``ttl_s`` after the
delete committed, and a flood of made-up ids does not reach the database more than once per id and TTL.
An id that is not shaped like a key is refused without a lookup.

Example::

    resolver = Resolver(KeyCache(KeyStore(journal), ttl_s=2.0), account="000000000000")
    identity = await resolver.resolve(claim)     # UnrecognizedClientException if unknown
    check_signature(request, claim, identity.secret)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import select

from assignment.frontend.auth.keys import ACCESS_KEY_ID, AccessKey, KeyStore
from assignment.frontend.auth.sessions import STATE_TTL_S, SessionIssuer, revoked_before_ms
from assignment.frontend.auth.sigv4 import Claim
from assignment.frontend.registry import functions
from assignment.frontend.types import UnrecognizedClientException
from journal.store import Journal

__all__ = ["DEFAULT_KEY_TTL_S", "INVALID_TOKEN", "FunctionStates", "Identity", "KeyCache", "Resolver"]

#: How long a frontend trusts what it read about a key: the bound on a delete taking effect.
DEFAULT_KEY_TTL_S = 2.0
#: AWS's message for an unknown key id or a bad session token.
INVALID_TOKEN = "The security token included in the request is invalid."
_MAX_CACHED = 10_000
#: How soon a function state that disagrees with a genuine token is read again.
_RECHECK_S = 0.25

Kind = Literal["admin", "function"]


@dataclass(frozen=True, slots=True)
class Identity:
    """The caller behind a key id: the secret that signs for it, what kind of caller it is, and its ARN
    (as AWS names callers in ``AccessDeniedException``)."""

    access_key_id: str
    secret: str = field(repr=False)
    kind: Kind
    arn: str


class KeyCache:
    """Admin keys by id, each answer (a key or its absence) kept ``ttl_s`` seconds."""

    def __init__(
        self,
        store: KeyStore,
        *,
        ttl_s: float = DEFAULT_KEY_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[str, tuple[float, AccessKey | None]] = {}

    async def get(self, access_key_id: str) -> AccessKey | None:
        """The key, from the cache while fresh, else from the database (in a thread)."""
        now = self._clock()
        cached = self._entries.get(access_key_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        key = await asyncio.to_thread(self.store.get, access_key_id)
        if len(self._entries) >= _MAX_CACHED:
            self._entries.pop(next(iter(self._entries)))  # the oldest insertion: a bound, not an LRU
        self._entries[access_key_id] = (now + self.ttl_s, key)
        return key


class FunctionStates:
    """Per function: its current incarnation (None when it does not exist) and the time before which its
    sessions are revoked, each answer kept ``ttl_s`` seconds."""

    def __init__(
        self,
        journal: Journal,
        *,
        ttl_s: float = STATE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.journal = journal
        self.ttl_s = ttl_s
        self._clock = clock
        self._wall = wall
        #: name → (expires on ``clock``, incarnation, revoked_before_ms, read at on ``wall`` in ms)
        self._entries: dict[str, tuple[float, str | None, int, int]] = {}

    def _read(self, name: str) -> tuple[str | None, int]:
        with self.journal.reader.connect() as conn:
            incarnation = conn.execute(select(functions.c.incarnation).where(functions.c.name == name)).scalar()
        return incarnation, revoked_before_ms(self.journal, name)

    async def get(self, name: str, expected: str | None = None, issued_ms: int | None = None) -> tuple[str | None, int]:
        """``(incarnation or None, revoked_before_ms)``. A cached answer naming another incarnation than
        ``expected`` (a genuine token's) is read again when it was read before the token was issued
        (``issued_ms``: the token proves its incarnation existed then, so an older answer cannot refute it)
        or once it is :data:`_RECHECK_S` old: a function just created again must not wait out the TTL of
        the answer that said it was gone."""
        now = self._clock()
        cached = self._entries.get(name)
        if cached is not None and cached[0] > now:
            expires, incarnation, revoked, read_ms = cached
            agrees = expected is None or incarnation == expected
            older_than_token = issued_ms is not None and read_ms <= issued_ms
            if agrees or (not older_than_token and expires - self.ttl_s + _RECHECK_S > now):
                return incarnation, revoked
        read_ms = int(self._wall() * 1000)
        incarnation, revoked = await asyncio.to_thread(self._read, name)
        if len(self._entries) >= _MAX_CACHED:
            self._entries.pop(next(iter(self._entries)))
        self._entries[name] = (now + self.ttl_s, incarnation, revoked, read_ms)
        return incarnation, revoked


class Resolver:
    """Key id (and session token) → :class:`Identity`, or ``UnrecognizedClientException``."""

    def __init__(
        self,
        keys: KeyCache,
        *,
        account: str = "000000000000",
        sessions: SessionIssuer | None = None,
        functions: FunctionStates | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self.account = account
        self.sessions = sessions
        self.functions = functions
        self._clock = clock

    async def resolve(self, claim: Claim) -> Identity:
        """The identity that may have signed ``claim``."""
        key_id, token = claim.access_key_id, claim.session_token
        if token is None and ACCESS_KEY_ID.fullmatch(key_id):
            key = await self.keys.get(key_id)
            if key is not None:
                return Identity(key.access_key_id, key.secret, "admin", f"arn:aws:iam::{self.account}:user/{key_id}")
        elif token is not None and key_id.startswith("ASIA") and self.sessions is not None:
            return await self._session(key_id, token)
        raise UnrecognizedClientException(INVALID_TOKEN)

    async def _session(self, key_id: str, token: str) -> Identity:
        assert self.sessions is not None
        try:
            session, secret = self.sessions.verify(key_id, token, now_ms=int(self._clock() * 1000))
        except (ValueError, KeyError, TypeError):  # a forged or damaged token: json, fields, base64
            raise UnrecognizedClientException(INVALID_TOKEN) from None
        if self.functions is not None:
            incarnation, revoked_before = await self.functions.get(
                session.function, session.incarnation, session.issued_ms
            )
            if incarnation != session.incarnation or session.issued_ms < revoked_before:
                raise UnrecognizedClientException(INVALID_TOKEN)  # deleted, re-created, or revoked
        arn = f"arn:aws:sts::{self.account}:assumed-role/{session.role}/{session.function}"
        return Identity(key_id, secret, "function", arn)
