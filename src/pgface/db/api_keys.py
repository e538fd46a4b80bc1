"""API keys `pgf_<key id>_<secret>`: only a sha256 is stored, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg

from pgface.errors import InvalidInputError, PgfaceError
from pgface.paths import refused_text

SCOPES = ("read", "write")
_KEY = re.compile(r"pgf_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})")

INSERT_KEY = """
INSERT INTO api_keys (name, key_id, secret_sha256, scopes) VALUES (%s, %s, %s, %s)
RETURNING id, created_at
"""
LIST_KEYS = """
SELECT id, name, key_id, scopes, created_at, revoked_at FROM api_keys
WHERE %s OR revoked_at IS NULL ORDER BY id
"""
REVOKE_KEY = """
UPDATE api_keys SET revoked_at = now()
WHERE revoked_at IS NULL AND (name = %s OR key_id = %s OR id::text = %s)
"""
ACTIVE_KEY_EXISTS = "SELECT EXISTS (SELECT 1 FROM api_keys WHERE revoked_at IS NULL)"
KEY_BY_ID = """
SELECT id, name, key_id, scopes, created_at, secret_sha256 FROM api_keys
WHERE key_id = %s AND revoked_at IS NULL
"""


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    key_id: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None = None

    def allows(self, scope: str) -> bool:
        # write implies read: a key that may change the database may also look at it.
        return scope in self.scopes or (scope == "read" and "write" in self.scopes)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


MAX_KEY_NAME_CHARS = 200


def create_key(conn: psycopg.Connection, name: str, scopes: Sequence[str]) -> tuple[ApiKey, str]:
    """A new key; the returned plaintext is never stored and cannot be shown again."""
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
        # as a person's name: an ESC in it coloured or cleared `keys list`'s terminal, and a
        # newline or tab split its tab-separated row, a fake row for a script (probe clidocs19)
        raise InvalidInputError(f"an API key's name cannot contain control characters or "
                                f"invalid Unicode: '{refused_text(name)}'")
    name = name.strip()
    if not name:
        raise PgfaceError("an API key needs a name")
    if len(name) > MAX_KEY_NAME_CHARS:  # the active names' unique index takes no long rows
        raise PgfaceError(f"an API key's name is at most {MAX_KEY_NAME_CHARS} characters")
    wanted = sorted(set(scopes)) or ["read"]
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown:
        raise PgfaceError(f"unknown scope {unknown[0]!r}: choose from {', '.join(SCOPES)}")
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    try:
        with conn.transaction():
            row = conn.execute(INSERT_KEY, [name, key_id, _digest(secret), wanted]).fetchone()
    except psycopg.errors.UniqueViolation:
        raise PgfaceError(f"an active API key named {name!r} already exists") from None
    return ApiKey(row[0], name, key_id, wanted, row[1]), f"pgf_{key_id}_{secret}"


def list_keys(conn: psycopg.Connection, include_revoked: bool = False) -> list[ApiKey]:
    return [ApiKey(*row) for row in conn.execute(LIST_KEYS, [include_revoked])]


def revoke_key(conn: psycopg.Connection, name_or_id: str) -> int:
    """Revoke the active key with this name, key id or numeric id; returns how many."""
    with conn.transaction():
        return conn.execute(REVOKE_KEY, [name_or_id, name_or_id, name_or_id]).rowcount


def active_key_exists(conn: psycopg.Connection) -> bool:
    return bool(conn.execute(ACTIVE_KEY_EXISTS).fetchone()[0])


def verify_key(conn: psycopg.Connection, presented: str) -> ApiKey | None:
    """The active key this string is, or None. The secret is compared in constant time."""
    match = _KEY.fullmatch(presented.strip())
    if not match:
        return None
    row = conn.execute(KEY_BY_ID, [match[1]]).fetchone()
    if row is None or not hmac.compare_digest(bytes(row[5]), _digest(match[2])):
        return None
    return ApiKey(*row[:5])
