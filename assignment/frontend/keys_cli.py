"""``leasehold keys create|list|delete|revoke-sessions --db URL``: access keys and function sessions, on
the platform's database.

An operator's command, like ``leasehold journal``: it opens the database directly (``--db``, or
``LEASEHOLD_KEYS_DB`` by the flag rule of :mod:`workers.flags`), not a frontend. ``create`` prints the new
key's id and secret once, in the lines of an AWS credentials file; ``list`` prints ids, creation times
and descriptions, never secrets; ``delete`` removes a key, which every frontend refuses within its key
cache TTL (``leasehold frontend --key-cache-ttl``, 2 s by default); ``revoke-sessions FUNCTION`` refuses
every function session of ``FUNCTION`` issued until now, within the same bound (sandboxes started later
get new ones). Exit status: 0 done, 1 no such key, 2 usage or database errors.

Example::

    leasehold keys create --db postgresql://db/leasehold --description ci
    leasehold keys list --db sqlite:///.leasehold/leasehold.db
    leasehold keys delete AKIAEXAMPLEEXAMPLE00 --db sqlite:///.leasehold/leasehold.db
    leasehold keys revoke-sessions resize --db sqlite:///.leasehold/leasehold.db
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from assignment.frontend.auth.keys import KeyStore
from assignment.frontend.auth.sessions import revoke_sessions
from assignment.frontend.types import LambdaError
from assignment.frontend.validation import check_name
from journal.store import Journal
from workers.flags import Flags

__all__ = ["main", "register"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``keys`` subcommand to ``subparsers``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "keys", help="manage the admin access keys (on the database)", description=__doc__.splitlines()[0]
    )
    actions = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a key and print its secret (once)")
    create.add_argument("--description", default="", help="what the key is for (shown by list)")
    listing = actions.add_parser("list", help="the keys (ids, creation times, descriptions; no secrets)")
    delete = actions.add_parser("delete", help="delete a key")
    delete.add_argument("access_key_id", metavar="KEY_ID")
    revoke = actions.add_parser("revoke-sessions", help="refuse a function's sessions issued until now")
    revoke.add_argument("function", metavar="FUNCTION")
    for action in (create, listing, delete, revoke):
        Flags("keys", action).add("--db", required=True, metavar="URL", help="sqlite:///path or postgresql://...")
        action.add_argument("--json", action="store_true", help="JSON instead of text")
    parser.set_defaults(func=main)
    return parser


def _created(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def main(args: argparse.Namespace) -> int:
    """Run one ``keys`` action."""
    try:
        with Journal.open(args.db) as journal:
            return _run(KeyStore(journal), args)
    except (SQLAlchemyError, OSError, ValueError, LambdaError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def _run(store: KeyStore, args: argparse.Namespace) -> int:
    if args.keys_command == "create":
        key = store.create(args.description)
        if args.json:
            print(json.dumps({"AccessKeyId": key.access_key_id, "SecretAccessKey": key.secret}))
        else:
            print(f"aws_access_key_id = {key.access_key_id}\naws_secret_access_key = {key.secret}")
        return 0
    if args.keys_command == "list":
        keys = store.list()
        if args.json:
            rows = [
                {"AccessKeyId": k.access_key_id, "Created": _created(k.created_ms), "Description": k.description}
                for k in keys
            ]
            print(json.dumps({"Keys": rows}))
        else:
            print(f"{'ACCESS_KEY_ID':<22}{'CREATED':<22}DESCRIPTION")
            for k in keys:
                print(f"{k.access_key_id:<22}{_created(k.created_ms):<22}{k.description}")
        return 0
    if args.keys_command == "revoke-sessions":
        name = check_name(args.function)
        before = revoke_sessions(store.journal, name)
        print(f"revoked the sessions of {name} issued before {_created(before)}")
        return 0
    if not store.delete(args.access_key_id):
        print(f"error: NoSuchKey: no access key {args.access_key_id[:40]!r}", file=sys.stderr)
        return 1
    print(f"deleted {args.access_key_id}")
    return 0
