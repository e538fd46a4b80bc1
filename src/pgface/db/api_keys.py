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
from urllib.parse import quote, unquote

import psycopg

from pgface.errors import InvalidInputError, PgfaceError
from pgface.names import name_form, shows_nothing
from pgface.paths import refused_text

SCOPES = ("read", "write")
_KEY = re.compile(r"pgf_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})")
# A key anywhere in a text (a URL, a log line), its public part and its secret: what a log
# keeps of one is the public part (serve's formatters), and one in a URL is not read
SECRET_IN_TEXT = re.compile(r"(pgf_[0-9a-f]{12}_)[A-Za-z0-9_-]+")
# Between the parts of a URL as a log keeps it: percent-encoded, any character of a key may be
# (`pg%66_...`, `pgf%5F...`), which SECRET_IN_TEXT does not see in the text as it is
_URL_SEPARATORS = re.compile(r'([\s"/?&=]+)')
_KEY_ID = re.compile(r"[0-9a-f]{12}")
# `pgf_<key id>`, as `keys list` shows it (with its "_..." or not): a key id alone, never a name
_KEY_PREFIX = re.compile(r"pgf_([0-9a-f]{12})(?:_.*)?", re.DOTALL)


def without_secrets(text: str) -> str:
    """TEXT (a log line) with each API key's secret `***`, its public part kept, written
    plainly or percent-encoded in a URL (probes operator35, reprobe36, reprobe37: the access
    log kept `?api_key=pgf_..._<secret>` whole, then `pgf%5F...`, then `pg%66_...`). A part
    that decodes to a key is masked and encoded again, so what else it holds (`%0A`) stays
    encoded: decoded, a client wrote lines of its own into the log (reprobe38). Split on the
    separators, in time linear in the line (a pattern over 16,000 `%` took 2.5 s, the
    server's loop stalled)."""
    if "%" in text:
        parts = _URL_SEPARATORS.split(text)  # the parts at even places, separators between
        for at in range(0, len(parts), 2):
            if "%" in parts[at] and SECRET_IN_TEXT.search(plain := unquote(parts[at])):
                parts[at] = quote(SECRET_IN_TEXT.sub(r"\1***", plain), safe="*")
        text = "".join(parts)
    return SECRET_IN_TEXT.sub(r"\1***", text)


INSERT_KEY = """
INSERT INTO api_keys (name, key_id, secret_sha256, scopes) VALUES (%s, %s, %s, %s)
RETURNING id, created_at
"""
LIST_KEYS = """
SELECT id, name, key_id, scopes, created_at, revoked_at FROM api_keys
WHERE %s OR revoked_at IS NULL ORDER BY id
"""
# The active keys, of which an argument of `keys revoke` reaches some: by name (in its stored
# form, revoke_one), key id or number. Locked: the one found is the one revoked.
ACTIVE_KEYS = """
SELECT id, name, key_id, scopes, created_at, revoked_at FROM api_keys
WHERE revoked_at IS NULL ORDER BY id FOR UPDATE
"""
ACTIVE_KEY_BY_KEY_ID = """
SELECT id, name, key_id, scopes, created_at, revoked_at FROM api_keys
WHERE revoked_at IS NULL AND key_id = %s FOR UPDATE
"""
REVOKE_KEY = "UPDATE api_keys SET revoked_at = now() WHERE id = %s RETURNING revoked_at"
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
    # in the form a person's name is stored in: "José" in NFD (a Mac's) or with a zero-width
    # space in it was a second active key beside "José", listed alike, and `keys revoke José`
    # revoked one of them, leaving the other active without a word (probe i18n37)
    name = name_form(name)
    if not name or all(map(shows_nothing, name)):
        raise PgfaceError("an API key needs a name")
    if len(name) > MAX_KEY_NAME_CHARS:  # the active names' unique index takes no long rows
        raise PgfaceError(f"an API key's name is at most {MAX_KEY_NAME_CHARS} characters")
    # `keys revoke` takes a name, a key id or a number: a key named "2" and the key numbered 2
    # were both revoked by `keys revoke 2` (probe ops21); as a person's name of digits
    if re.fullmatch(r"[0-9]+", name):
        raise InvalidInputError(f"an API key's name cannot be digits alone ({name!r}): it "
                                f"would read as a key's number")
    if _KEY_ID.fullmatch(name) or _KEY_PREFIX.fullmatch(name):
        raise InvalidInputError(f"an API key's name cannot look like a key id ({name!r}: 12 "
                                f"hex digits, or pgf_ and those): it would read as another "
                                f"key's id")
    wanted = sorted(set(scopes)) or ["read"]
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown:
        raise PgfaceError(f"unknown scope {unknown[0]!r}: choose from {', '.join(SCOPES)}")
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    try:
        with conn.transaction():
            # an active key an older pgface stored in another form of this name (as typed:
            # "Renée" decomposed) is this name's too: a second was made beside it, listed
            # alike (probe reprobe37b); the unique index sees the stored text alone
            taken = any(name_form(row[1]) == name for row in conn.execute(ACTIVE_KEYS))
            if not taken:
                row = conn.execute(INSERT_KEY, [name, key_id, _digest(secret),
                                                wanted]).fetchone()
    except psycopg.errors.UniqueViolation:
        taken = True
    if taken:
        raise PgfaceError(f"an active API key named {name!r} already exists")
    return ApiKey(row[0], name, key_id, wanted, row[1]), f"pgf_{key_id}_{secret}"


def list_keys(conn: psycopg.Connection, include_revoked: bool = False) -> list[ApiKey]:
    return [ApiKey(*row) for row in conn.execute(LIST_KEYS, [include_revoked])]


class AmbiguousKeyError(InvalidInputError):
    """`keys revoke` given a name, key id or number that reaches several active keys."""


def revoke_one(conn: psycopg.Connection, name_or_id: str) -> ApiKey | None:
    """Revoke the one active key with this name, key id (or `pgf_<key id>`) or number; None
    when there is none. Where the argument reaches several keys (a key named "2" beside the
    key numbered 2, from before such names were refused), none is revoked: AmbiguousKeyError
    lists them, each with the key id that names it alone."""
    prefixed = _KEY_PREFIX.fullmatch(name_or_id.strip())
    with conn.transaction():
        if prefixed:
            rows = conn.execute(ACTIVE_KEY_BY_KEY_ID, [prefixed[1]]).fetchall()
        else:
            # by its name in the form names are stored in (create_key), a key's stored
            # before in that form too: `keys revoke José` revoked the composed "José" of an
            # older library and left its decomposed look-alike active, exit 0 (probe
            # upgrade37); both reached, neither is revoked (AmbiguousKeyError)
            named = name_form(name_or_id)
            rows = [row for row in conn.execute(ACTIVE_KEYS)
                    if row[2] == name_or_id or str(row[0]) == name_or_id
                    or row[1] == name_or_id or name_form(row[1]) == named]
        if not rows:
            return None
        if len(rows) > 1:
            listed = "; ".join(f"number {r[0]}, name '{refused_text(r[1])}', key id {r[2]}"
                               for r in rows)
            raise AmbiguousKeyError(
                f"{name_or_id!r} names {len(rows)} active API keys ({listed}): none was "
                f"revoked; revoke one by its key id, as pgf_<key id> (`pgface keys revoke "
                f"pgf_{rows[0][2]}`)")
        revoked_at = conn.execute(REVOKE_KEY, [rows[0][0]]).fetchone()[0]
    return ApiKey(*rows[0][:5], revoked_at=revoked_at)


def revoke_key(conn: psycopg.Connection, name_or_id: str) -> int:
    """revoke_one, as a count: 1, or 0 where no active key has this name, key id or number."""
    return 0 if revoke_one(conn, name_or_id) is None else 1


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
