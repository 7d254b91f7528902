"""`tipsv2 keys`: make API keys and the hashes the gateway stores (it never stores keys)."""

from __future__ import annotations

import argparse
import json
import secrets


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("keys", help="create and hash API keys")
    sub = parser.add_subparsers(dest="keys_command", required=True)
    new = sub.add_parser("new", help="generate a key for a tenant; prints the key once and its TIPS_API_KEYS entry")
    new.add_argument("--tenant", required=True)
    new.set_defaults(func=_new)
    hash_ = sub.add_parser("hash", help="print the sha256 digest of a key")
    hash_.add_argument("key")
    hash_.set_defaults(func=_hash)


def _new(args: argparse.Namespace) -> int:
    from service.gateway.core.config import hash_key
    from training.contracts.adapter_store import TENANT_RE

    if not TENANT_RE.match(args.tenant):
        raise ValueError(f"tenant id must match {TENANT_RE.pattern}")
    key = "tips_" + secrets.token_urlsafe(32)
    print(f"key (shown once): {key}")
    print(f"TIPS_API_KEYS entry: {json.dumps({hash_key(key): args.tenant})}")
    return 0


def _hash(args: argparse.Namespace) -> int:
    from service.gateway.core.config import hash_key

    print(hash_key(args.key))
    return 0
