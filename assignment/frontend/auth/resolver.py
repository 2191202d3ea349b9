"""Who holds an access key id: its secret and the caller it names, from the database through a short cache.

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

from assignment.frontend.auth.keys import ACCESS_KEY_ID, AccessKey, KeyStore
from assignment.frontend.auth.sigv4 import Claim
from assignment.frontend.types import UnrecognizedClientException

__all__ = ["DEFAULT_KEY_TTL_S", "INVALID_TOKEN", "Identity", "KeyCache", "Resolver"]

#: How long a frontend trusts what it read about a key: the bound on a delete taking effect.
DEFAULT_KEY_TTL_S = 2.0
#: AWS's message for an unknown key id or a bad session token.
INVALID_TOKEN = "The security token included in the request is invalid."
_MAX_CACHED = 10_000

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


class Resolver:
    """Key id (and session token) → :class:`Identity`, or ``UnrecognizedClientException``."""

    def __init__(self, keys: KeyCache, *, account: str = "000000000000") -> None:
        self.keys = keys
        self.account = account

    async def resolve(self, claim: Claim) -> Identity:
        """The identity that may have signed ``claim``."""
        key_id = claim.access_key_id
        if claim.session_token is None and ACCESS_KEY_ID.fullmatch(key_id):
            key = await self.keys.get(key_id)
            if key is not None:
                return Identity(key.access_key_id, key.secret, "admin", f"arn:aws:iam::{self.account}:user/{key_id}")
        raise UnrecognizedClientException(INVALID_TOKEN)
