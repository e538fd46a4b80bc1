"""Connections: the server to use, migrations applied once, a pool of ready connections."""

from __future__ import annotations

import functools
import importlib.resources
import inspect
import itertools
import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from importlib.metadata import version as package_version
from typing import Any, TypeVar

import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql as psql
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout
from psycopg_pool.base import AttemptWithBackoff

from pgface.config import unreadable_url
from pgface.db import sql
from pgface.errors import (
    PgfaceError,
    files_run_short,
    remember_password_of,
    without_passwords,
)

log = logging.getLogger(__name__)
MIN_PGVECTOR = (0, 7)
DEFAULT_SCHEMA = "pgface"


class DatabaseError(PgfaceError):
    """The database cannot be reached or lacks what pgface needs."""


class NoConnection(DatabaseError, PoolTimeout):
    """No connection became free in the pool's time: the database is down or busy. Also a
    psycopg_pool PoolTimeout, for code that catches that."""


class LibraryClosed(DatabaseError, PoolClosed):
    """The library's pool was closed (Pgface.close()) while a call was about to use it."""


class StatementFailed(DatabaseError):
    """A statement that failed in the middle of a call of the Python API, said in words
    (database_error): psycopg's error is its __cause__, and its SQLSTATE its sqlstate (None
    where the connection went without one). It pickles with both; the __cause__ stays
    behind, as a pickled exception's always does."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate

    def __reduce__(self) -> tuple:  # as ImageError's: pickled with both arguments
        return type(self), (str(self), self.sqlstate)


class DatabaseLost(StatementFailed):
    """The connection or the server went away during a statement (killed, restarted, the
    session terminated): what was committed before is kept, and a call again may succeed."""


class StatementCancelled(StatementFailed):
    """The server cancelled a statement: a role's or database's statement_timeout, or
    pg_cancel_backend."""


class ReadOnlyDatabase(StatementFailed):
    """A write on a read-only connection: default_transaction_read_only is on for the role or
    the database, or the server is a standby."""


# The longest wait between two tries to make a connection again once the database went away.
# psycopg_pool doubles it from 1 s (to 16, 32, 64 s... for up to reconnect_timeout, 300 s):
# a server whose external PostgreSQL came back after a minute answered 503 for up to 55 s more,
# every request waiting for the next try (probe serve33).
RECONNECT_EVERY_S = 1.0


# The name of each pool pgface opens (LibraryPool) begins with this, then its number:
# psycopg_pool's log records name their pool, so pgface's throttle of them (below) tells its
# own pools' from an application's, which psycopg_pool names "pool-1", "pool-2"... or as told.
POOL_NAME_PREFIX = "pgface-pool-"
_POOL_NUMBERS = itertools.count(1)


def is_pgface_pool(name: object) -> bool:
    """Whether NAME, a psycopg_pool pool's, is one pgface opened."""
    return isinstance(name, str) and name.startswith(POOL_NAME_PREFIX)


class _ConnectErrorsThrottled(logging.Filter):
    """psycopg_pool's "error connecting in <pool>" warnings of pgface's own pools, one a pool
    each EVERY_S seconds of an outage, with the count left out since: made again every second
    (RECONNECT_EVERY_S), a pool of 8 wrote 126 lines in a few seconds of one (probe
    operator35). A connection made ends the outage (connected): the next one's first error is
    said at once (reprobe36: a second outage within 30 s of the first was said nowhere).
    An application's own pools' records pass as psycopg_pool writes them: the logger is the
    whole process's, and an application that imports pgface saw its pool's outage said once
    in 30 s (probe hygiene39)."""

    EVERY_S = 30.0

    def __init__(self) -> None:
        super().__init__()
        self._said: dict[object, tuple[float, int]] = {}  # pool name: (last said, left out)
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("error connecting in") or not record.args:
            return True
        pool = record.args[0] if isinstance(record.args, tuple) else None
        if not is_pgface_pool(pool):  # an application's own pool's: not pgface's to quiet
            return True
        now = time.monotonic()
        with self._lock:
            said_at, left_out = self._said.get(pool, (-self.EVERY_S, 0))
            if now - said_at < self.EVERY_S:
                self._said[pool] = (said_at, left_out + 1)
                return False
            self._said[pool] = (now, 0)
        if left_out:
            record.msg = f"{record.msg} (and {left_out} more such errors in the last %ds)"
            record.args = (*record.args, round(now - said_at))
        return True

    def connected(self, pool: str) -> None:
        """POOL made a connection: its next error is a new outage's, said at once."""
        with self._lock:
            self._said.pop(pool, None)


_CONNECT_ERRORS = _ConnectErrorsThrottled()
logging.getLogger("psycopg.pool").addFilter(_CONNECT_ERRORS)


class _CappedBackoff(AttemptWithBackoff):
    """psycopg_pool's tries to connect again, RECONNECT_EVERY_S apart at most."""

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, RECONNECT_EVERY_S)


class LibraryPool(ConnectionPool):
    """A pool whose failures to hand out a connection are pgface's errors: the Python API let
    psycopg_pool's PoolTimeout (after 30 s) and PoolClosed (a close() while other threads
    were mid-call) through, where every error is to be a PgfaceError."""

    # Why no connection can come now, or None: asked before each wait for one (an embedded
    # server stopped on purpose stays stopped, and a run waited the pool's 30 s for it).
    stopped: Callable[[], str | None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # named as pgface's (POOL_NAME_PREFIX): its connect errors are throttled, an
        # application's pools' left as they are
        kwargs.setdefault("name", f"{POOL_NAME_PREFIX}{next(_POOL_NUMBERS)}")
        super().__init__(*args, **kwargs)

    def check_or_sweep(self, conn: psycopg.Connection) -> None:
        """The check of each connection a caller takes: one found broken (the server was
        restarted) has every idle connection checked at once, the broken ones replaced.
        psycopg_pool took them one at a time, sleeping 1, 2, 4, 8... seconds after each broken
        one, so the first request after `pgface db stop` and `db start` (or any restart of the
        server) waited up to the pool's 30 s and failed, the database up all along."""
        try:
            self.check_connection(conn)
        except Exception:
            self.check()
            raise

    def _connect(self, timeout: float | None = None) -> psycopg.Connection:
        conn = super()._connect(timeout)
        _CONNECT_ERRORS.connected(self.name)  # an outage, if any, is over
        return conn

    def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False
                        ) -> None:
        # each new connection's tries, and the tries it schedules (the same attempt), capped
        super()._add_connection(attempt or _CappedBackoff(timeout=self.reconnect_timeout),
                                growing)

    def getconn(self, timeout: float | None = None) -> psycopg.Connection:
        reason = self.stopped() if self.stopped is not None else None
        if reason is not None:
            raise NoConnection(reason)
        try:
            return super().getconn(timeout)
        except PoolTimeout as exc:
            raise NoConnection(f"no database connection became free in time: "
                               f"{self._why_none_came()} ({one_line(exc)})") from exc
        except PoolClosed as exc:
            raise LibraryClosed("the library was closed (close()) while this call was about "
                                "to use it; call again: the next call opens it again") from exc


    def _why_none_came(self) -> str:
        """Down or busy, said from one connection tried now: "the database is down or busy"
        left an operator to find which in the server's log (probe pgint21)."""
        try:
            url = self.conninfo() if callable(self.conninfo) else self.conninfo
            with psycopg.connect(url, connect_timeout=5):
                pass
        except (psycopg.Error, DatabaseError) as exc:
            return f"the database cannot be reached: {one_line(exc)}"
        except OSError as exc:  # no file left to connect with: the limit's, said as such
            if (short := files_run_short()) is not None:
                raise short from exc
            return f"the database cannot be reached: {one_line(exc)}"
        # No count of the pool's tells its connections in use from those it is still making
        # again: health called a pool just emptied by an outage "busy" (probe serve33)
        return (f"the database answers, and none of this process's {self.max_size} connections "
                f"became free: all in use by other calls (busy), or being made again after "
                f"the database went away")


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, SQL) of every migration shipped with the package, in order."""
    folder = importlib.resources.files("pgface.db") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found)


# Objects the migrations create, by kind: what moves from public into pgface's schema.
_CREATED = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?(TABLE|VIEW|MATERIALIZED\s+VIEW|SEQUENCE|TYPE)"
                      r"\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.IGNORECASE)


def created_names() -> list[str]:
    """Names of the tables, views, sequences and types pgface's migrations create."""
    names = {"schema_migrations"}
    for _, _, script in migrations():
        names.update(m[2] for m in _CREATED.finditer(script))
    return sorted(names)


def search_path(conn: psycopg.Connection, schema: str) -> str:
    """pgface's schema first, then the one holding pgvector (its type and operators)."""
    row = conn.execute(sql.VECTOR_SCHEMA).fetchone()
    schemas = [schema] + ([row[0]] if row and row[0] != schema else ["public"])
    return ", ".join(psql.Identifier(s).as_string(conn) for s in schemas)


def _check_url(url: str) -> None:
    """A URL libpq cannot read is named so (it was psycopg's ProgrammingError, no DatabaseError),
    with no word of its password (config.unreadable_url, which the settings use too: a URL
    given past them, a password with a space in it, was quoted whole here)."""
    remember_password_of(url)
    reason = unreadable_url(url)
    if reason is not None:
        raise DatabaseError(f"the database URL is not one PostgreSQL can read: {reason}")


# Every open takes the migrations' lock for a moment: a wait this long is an upgrade, not two
# processes opening the library at once (the processes of an indexing run do so together).
MIGRATIONS_WAIT_SAID_S = 3


def lock_within(conn: psycopg.Connection, statement: str, wait_s: float) -> bool:
    """Run STATEMENT, one that takes a lock, waiting at most WAIT_S seconds for it: False if
    it would wait longer. In a savepoint, so a timeout leaves the caller's transaction whole;
    the transaction's lock_timeout is as it was afterwards either way."""
    before = conn.execute(sql.CURRENT_LOCK_TIMEOUT).fetchone()[0]
    conn.execute(sql.LOCK_TIMEOUT, [f"{max(1, round(wait_s * 1000))}ms"])
    try:
        with conn.transaction():
            conn.execute(statement)
    except psycopg.errors.LockNotAvailable:
        return False
    finally:
        conn.execute(sql.LOCK_TIMEOUT, [before])
    return True


def _take_migrations_lock(conn: psycopg.Connection) -> None:
    """The migrations' lock, for the transaction; a long wait for it is said (a library
    opened while another process upgrades it, or while the upgrade of a run killed meanwhile
    still rolls back, waited in silence)."""
    if conn.execute(sql.TRY_MIGRATIONS_LOCK).fetchone()[0]:
        return
    if not lock_within(conn, sql.MIGRATIONS_LOCK, MIGRATIONS_WAIT_SAID_S):
        log.warning("waiting for another pgface process to finish upgrading the library (an "
                    "upgrade of a run that was stopped ends first)")
        conn.execute(sql.MIGRATIONS_LOCK)  # the migrations may wait as long as needed


def migrate(url: str, schema: str = DEFAULT_SCHEMA) -> list[int]:
    """Apply the migrations this database lacks, each in its own transaction; returns them.

    Everything of pgface's lives in `schema`; a database made before it had one (tables in
    public) has them moved there first, in the same transaction as the migrations. A library
    with every migration applied is only read (a role whose transactions are read-only, or one
    granted SELECT alone, searches it); one that needs a migration is written only where the
    connection may write, and an error says why not where it may not.
    """
    _check_url(url)
    applied_now: list[int] = []
    doing = "read the library's migrations"
    done: set[int] | None = None
    known = migrations()
    connected = False
    try:
        with psycopg.connect(url) as conn:
            connected = True
            try:
                _check_pgvector(conn, url)
                done = _applied_migrations(conn, schema)
                if done is not None:
                    _check_not_newer(done, known)
                    _warn_of_public_library(conn, schema)
                    if {version for version, _, _ in known} <= done:
                        return []  # up to date: nothing written, no lock taken
                _check_may_write(conn, schema, done, known)
                with conn.transaction():
                    _take_migrations_lock(conn)
                    # Each only where missing: PostgreSQL checks the right to create before it
                    # looks whether the object exists, so a role that owns a schema an
                    # administrator made, in a database it may not create in, was refused.
                    if not conn.execute(sql.SCHEMA_EXISTS, [schema]).fetchone()[0]:
                        doing = f"create schema {schema!r}"
                        conn.execute(psql.SQL("CREATE SCHEMA {}").format(
                            psql.Identifier(schema)))
                    if conn.execute(sql.VECTOR_SCHEMA).fetchone() is None:
                        _create_pgvector(conn, url)
                    if public_library(conn, schema):
                        doing = f"move pgface's tables from schema public to {schema!r}"
                        _move_from_public(conn, schema)
                    doing = "create the library's table of migrations (schema_migrations)"
                    conn.execute(sql.SET_SEARCH_PATH, [search_path(conn, schema), True])
                    # only where missing: a role that may not create in the schema was told
                    # it "may not create the library's table of migrations", which was there
                    if conn.execute(sql.SCHEMA_MIGRATIONS_TABLE, [schema]).fetchone()[0] is None:
                        conn.execute(sql.MIGRATIONS_TABLE)
                    doing = "read the library's migrations"
                    done = {r[0] for r in conn.execute(sql.APPLIED_MIGRATIONS)}
                    _check_not_newer(done, known)
                    missing = [version for version, _, _ in known if version not in done]
                    if missing and done:  # a new library's first start is quick, and not news
                        log.warning("upgrading the library from migration %d to %d: a large "
                                    "library takes a while, and other pgface processes wait "
                                    "for it", max(done), missing[-1])
                    for version, name, script in known:
                        if version in done:
                            continue
                        doing = f"apply migration {version:04d}_{name}"
                        with conn.transaction():
                            _apply_migration(conn, schema, script, f"{version:04d}_{name}")
                            conn.execute(sql.RECORD_MIGRATION, [version, name])
                        applied_now.append(version)
                        log.info("applied migration %04d_%s", version, name)
            except psycopg.errors.InsufficientPrivilege as exc:
                raise _not_permitted(conn, schema, doing, exc, done, known) from exc
    except psycopg.errors.QueryCanceled as exc:
        raise StatementCancelled(cancelled(exc, f"as it opened the library (to {doing})"),
                                 exc.sqlstate) from exc
    except psycopg.errors.DiskFull as exc:  # connected: it could not write
        raise DatabaseError(f"{disk_full(exc)}; nothing of the library's changes was "
                            f"written (it was to {doing})") from exc
    except psycopg.OperationalError as exc:
        if connected and connection_lost(exc):  # a server killed or restarted as it upgraded
            raise DatabaseLost(f"lost the database connection as pgface opened the library "
                               f"(to {doing}: {one_line(exc)}); nothing of the library's "
                               f"changes was written (its upgrade is one transaction): run "
                               f"the command again", exc.sqlstate) from exc
        raise DatabaseError(f"cannot connect to the database: {one_line(exc)}") from exc
    return applied_now


def _apply_migration(conn: psycopg.Connection, schema: str, script: str, name: str) -> None:
    """One migration's script; a wait for a table another session holds is said with who
    holds it (an upgrade behind an open transaction, a psql session's or an older pgface's,
    waited in silence after saying only that a large library takes a while). A wait past
    MIGRATIONS_WAIT_SAID_S rolls the script back to its savepoint, names the sessions holding
    the library's tables and runs it again, waiting as long as needed."""
    if lock_within(conn, script, MIGRATIONS_WAIT_SAID_S):
        return
    holders = []
    for pid, application, role, state in conn.execute(sql.LIBRARY_LOCK_HOLDERS, [schema]):
        about = [f"application {application!r}"] if application else []
        about += [f"role {role!r}", *([state] if state else [])]  # state: the role's own only
        holders.append(f"process {pid} ({', '.join(about)})")
    log.warning("upgrading the library: migration %s waits for tables another session holds "
                "(%s); it goes on when that session ends its transaction",
                name, "; ".join(holders) or "it has let go since")
    conn.execute(script)


def _applied_migrations(conn: psycopg.Connection, schema: str) -> set[int] | None:
    """The migrations the library in SCHEMA has, read without writing; None where it has no
    table of them (a new library, or one made before pgface had a schema)."""
    if conn.execute(sql.SCHEMA_MIGRATIONS_TABLE, [schema]).fetchone()[0] is None:
        return None
    return {r[0] for r in conn.execute(psql.SQL("SELECT version FROM {}.schema_migrations")
                                       .format(psql.Identifier(schema)))}


def _check_not_newer(done: set[int], known: list[tuple[int, str, str]]) -> None:
    newer = sorted(done - {version for version, _, _ in known})
    if newer and newer[-1] > known[-1][0]:
        # An older pgface on a database a newer one migrated: its queries would
        # meet tables they do not know, and write rows without what those need.
        raise DatabaseError(
            f"this database's schema is newer than this pgface knows (migration "
            f"{newer[-1]} applied; pgface {package_version('pgface')} knows up to "
            f"{known[-1][0]}): use a pgface that knows migration {newer[-1]} "
            f"(pgface --version names the newest it knows)")


def _check_may_write(conn: psycopg.Connection, schema: str, done: set[int] | None,
                     known: list[tuple[int, str, str]]) -> None:
    """Before a library that needs writing is written: a read-only connection (a role or
    database with default_transaction_read_only on, or a standby) is told so, with what the
    library needs, instead of PostgreSQL's "cannot execute CREATE TABLE in a read-only
    transaction"; a schema this role may not create is named with the statement that makes
    it for the role."""
    read_only, standby, database, role, may_create, exists = conn.execute(
        sql.MAY_WRITE, [schema]).fetchone()
    legacy = done is None and public_library(conn, schema)
    if read_only == "on":
        writer, act = "the schema's owner", "create or upgrade"
        if legacy:
            owners = _public_owners(conn)
            needs = (f"the pgface library in schema public (made before pgface had a schema "
                     f"of its own) must be moved into schema {schema!r} and upgraded")
            writer, act = f"the owner of its tables, {owners}", "move and upgrade"
        elif done is None:
            needs = f"there is no pgface library in schema {schema!r} yet"
        else:
            needs = _needs(schema, done, known)
        why = ("the server is a standby (in recovery)" if standby else
               "default_transaction_read_only is on for this role or database (or in the "
               "URL's options)")
        conn.rollback()
        raise DatabaseError(
            f"{needs}, and this connection is read-only: {why}. Start pgface once as a role "
            f"that may write ({writer}) to {act} it; a read-only role "
            f"then searches it as it is")
    if legacy and not exists and not may_create:
        owners = _public_owners(conn)
        conn.rollback()
        raise DatabaseError(
            f"the pgface library in schema public (made before pgface had a schema of its "
            f"own) is to be moved into schema {schema!r} in database {database!r}, and role "
            f"{role!r} may not create that schema nor move the tables (they belong to "
            f"{owners}): {_move_fix(conn, schema, role)}")
    if not exists and not may_create:
        # pgvector missing too: a role without CREATE on the database cannot install it (nor
        # a trusted extension), so the fix names both (it named the schema alone, and the
        # next start asked for the extension, probe pgserver36)
        no_vector = conn.execute(sql.VECTOR_SCHEMA).fetchone() is None
        conn.rollback()
        quoted, owner = (psql.Identifier(name).as_string(conn) for name in (schema, role))
        raise DatabaseError(
            f"schema {schema!r} does not exist in database {database!r}, and role {role!r} may "
            f"not create it (it lacks the CREATE right on the database): an administrator "
            f"runs {'`CREATE EXTENSION vector` and ' if no_vector else ''}"
            f"`CREATE SCHEMA {quoted} AUTHORIZATION {owner}` once, and pgface creates "
            f"the rest in it")


def _needs(schema: str, done: set[int], known: list[tuple[int, str, str]]) -> str:
    missing = [version for version, _, _ in known if version not in done]
    return (f"the library in schema {schema!r} needs migration(s) "
            f"{', '.join(f'{v:04d}' for v in missing)} (this pgface is newer)")


def _public_owners(conn: psycopg.Connection) -> str:
    """The roles owning pgface's tables in public, quoted, for messages."""
    owners = conn.execute(sql.PUBLIC_TABLE_OWNERS, [created_names()]).fetchone()[0]
    return ", ".join(repr(o) for o in sorted(owners)) or "another role"


def _move_fix(conn: psycopg.Connection, schema: str, role: str) -> str:
    """What moves a library in public that this role may not move: its tables' owner starts
    pgface once, or an administrator gives the tables (and the schema) to this role."""
    quoted, as_role = (psql.Identifier(name).as_string(conn) for name in (schema, role))
    return (f"start pgface once as {_public_owners(conn)} (the owner of the tables in "
            f"public), which moves the library into schema {schema!r} and upgrades it (this "
            f"role then uses it as that role grants); or an administrator gives the tables "
            f"to this role (`ALTER TABLE public.<table> OWNER TO {as_role}` for each of "
            f"pgface's tables there, or `REASSIGN OWNED BY <their owner> TO {as_role}` where "
            f"that role owns nothing else) and, where the schema does not exist, runs "
            f"`CREATE SCHEMA {quoted} AUTHORIZATION {as_role}`")


def public_library(conn: psycopg.Connection, schema: str | None = None) -> bool:
    """Whether schema public holds a library of pgface's made before pgface had a schema of
    its own (sql.PUBLIC_LIBRARY); given SCHEMA, one to move there: none is in SCHEMA yet."""
    found, readable = conn.execute(*((sql.PUBLIC_LIBRARY,) if schema is None else
                                     (sql.LEGACY_PUBLIC_TABLES, [schema]))).fetchone()
    if found and readable:
        return conn.execute(sql.PUBLIC_FIRST_MIGRATION).fetchone()[0]
    return found


def _warn_of_public_library(conn: psycopg.Connection, schema: str) -> None:
    """A library of pgface's in public beside the one in SCHEMA is said: an older pgface (from
    before pgface had a schema) started after the move made it and indexed into it, and this
    pgface, which uses only SCHEMA's, said nothing (probe upgrade22). One catalog query."""
    if public_library(conn):
        log.warning("a second pgface library sits in schema public, beside the one in schema "
                    "%r that this pgface uses: an older pgface (from before pgface had a "
                    "schema of its own) made it or indexed into it after the library was "
                    "moved. This pgface neither reads nor changes it: index those photos "
                    "again here, then drop pgface's tables in public (schema_migrations, "
                    "photos, faces, people, api_keys), and use no pgface older than this one "
                    "on the database", schema)


def _not_permitted(conn: psycopg.Connection, schema: str, doing: str,
                   exc: psycopg.Error, done: set[int] | None = None,
                   known: list[tuple[int, str, str]] | None = None) -> DatabaseError:
    """A right the role lacks at start-up, said with what pgface was doing and the fix: the
    role pgface connects as owns its schema and the tables in it (README, Storage)."""
    conn.rollback()
    if public_library(conn, schema):
        role = conn.execute(sql.CURRENT_ROLE_NAME).fetchone()[0]
        return DatabaseError(
            f"role {role!r} may not move the pgface library in schema public (made before "
            f"pgface had a schema of its own) into schema {schema!r} ({one_line(exc)}): its "
            f"tables belong to {_public_owners(conn)}, and only their owner may move them: "
            f"{_move_fix(conn, schema, role)}")
    role, owner, others = conn.execute(sql.SCHEMA_OWNERS, [schema]).fetchone()
    quoted = psql.Identifier(schema).as_string(conn)
    as_role = psql.Identifier(role).as_string(conn)
    if owner is None:
        fix = (f"an administrator runs `CREATE SCHEMA {quoted} AUTHORIZATION {as_role}` "
               f"once")
    elif owner != role:
        fix = (f"its owner is {owner!r}: an administrator runs `ALTER SCHEMA {quoted} OWNER "
               f"TO {as_role}`")
    else:
        fix = "the role owns the schema"
    if others:
        fix += (f"; tables in it belong to {', '.join(repr(o) for o in others)}: an "
                f"administrator gives them to this role (`REASSIGN OWNED BY <that role> TO "
                f"{as_role}` or ALTER TABLE ... OWNER TO), or pgface connects as their owner")
    needs = f"{_needs(schema, done, known)}, and " if done is not None and known else ""
    return DatabaseError(
        f"{needs}role {role!r} may not {doing} in schema {schema!r} ({one_line(exc)}): the role "
        f"pgface connects as must own the schema and the tables in it ({fix}). A role that "
        f"only searches an up-to-date library needs USAGE on the schema and SELECT on its "
        f"tables")


def read_only(exc: psycopg.Error) -> str:
    """A write refused because the connection is read-only, said with the setting that makes
    it so: "database: cannot execute SELECT FOR SHARE in a read-only transaction" named
    neither (probe reprobe22)."""
    return (f"the database connection is read-only ({one_line(exc)}): "
            "default_transaction_read_only is on for this role or database, or the server is a "
            "standby; indexing and people changes need a role that may write (a read-only one "
            "searches)")


def not_permitted(exc: psycopg.Error) -> str:
    """A statement refused for want of a right on a table (a role granted SELECT alone, as
    a search-only one is, asked to write), said with the grant: it was "database: permission
    denied for table model_packs", and over HTTP a 500 with a traceback (probe operator)."""
    return (f"the database role may not do this ({one_line(exc)}): a role with SELECT alone "
            f"searches; indexing, uploads, deletions and people changes need one that may "
            f"write the library's tables (GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES "
            f"and USAGE, SELECT ON ALL SEQUENCES IN SCHEMA of the library), or the role that "
            f"owns them")


def cancelled(exc: psycopg.Error, when: str) -> str:
    """A statement the server cancelled, said as such (it was "cannot connect to the
    database: canceling statement due to statement timeout"), with the setting that did it."""
    when = f" {when}" if when else ""
    if "statement timeout" in str(exc):
        return (f"a statement pgface ran{when} was cancelled by statement_timeout "
                f"({one_line(exc)}): the timeout set for this role or database (ALTER ROLE "
                f"... SET statement_timeout) is shorter than the statement takes; raise it "
                f"for pgface's role, or give `options=-c statement_timeout=0` in the URL")
    return (f"a statement pgface ran{when} was cancelled ({one_line(exc)}): someone ran "
            f"pg_cancel_backend on it, or the server was shutting down; run it again")


def database_error(exc: psycopg.Error) -> StatementFailed:
    """psycopg's error in the middle of a call as pgface's, in the words the CLI's `error:`
    line, the HTTP API and the Python API all say: a connection lost, a statement cancelled,
    a write refused as read-only, each with what to do; any other with PostgreSQL's first
    line. The caller raises it `from` EXC."""
    first = (str(exc).strip().splitlines() or [""])[0]
    if connection_lost(exc):
        return DatabaseLost(f"lost the database connection ({first}); everything stored until "
                            f"then is kept: run the command again", exc.sqlstate)
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return StatementCancelled(cancelled(exc, ""), exc.sqlstate)
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        return ReadOnlyDatabase(read_only(exc), exc.sqlstate)
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return StatementFailed(not_permitted(exc), exc.sqlstate)
    if isinstance(exc, psycopg.errors.DiskFull):
        return StatementFailed(disk_full(exc) + "; what was stored before is kept",
                               exc.sqlstate)
    return StatementFailed(f"database: {first}", exc.sqlstate)


def disk_full(exc: psycopg.Error | str) -> str:
    """A statement PostgreSQL could not write for want of disk (its error, or what it said),
    said so: it was "database: could not extend file "base/5/16773"" (a path in no folder the
    operator knows), or, as a library was made, "cannot connect to the database" (probe
    diskfull24)."""
    first = " ".join(str(exc).strip().splitlines()[:1]).removesuffix(".")
    return (f"the database's disk is full ({first}): free space on the disk that holds "
            f"PostgreSQL's data folder (the embedded server's: `pgface db status` names it)")


F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)


def said_plainly(func: F) -> F:
    """FUNC with psycopg's errors raised as pgface's (database_error), psycopg's kept as the
    __cause__; a generator's during its iteration too. pgface's own errors go through as
    they are (NoConnection and LibraryClosed are psycopg_pool's errors too), and so does
    anything that is no psycopg error (KeyboardInterrupt, a bug)."""
    if inspect.isgeneratorfunction(func):
        @functools.wraps(func)
        def generator(*args: Any, **kwargs: Any) -> Any:
            try:
                return (yield from func(*args, **kwargs))
            except PgfaceError:
                raise
            except psycopg.Error as exc:
                raise database_error(exc) from exc
        return generator  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PgfaceError:
            raise
        except psycopg.Error as exc:
            raise database_error(exc) from exc
    return wrapper  # type: ignore[return-value]


def public_calls_said_plainly(cls: C) -> C:
    """CLS (a class of the Python API) with every public method and property of its own
    said_plainly: the one place its calls' database errors become pgface's. A write under a
    read-only role, a statement_timeout, a connection lost mid-statement came through as
    psycopg's errors, where every error of the API is to be a PgfaceError. Only at this
    boundary: the code inside still catches psycopg's errors by their own classes."""
    for name, value in list(vars(cls).items()):
        if name.startswith("_"):
            continue
        if isinstance(value, property):
            setattr(cls, name, property(said_plainly(value.fget) if value.fget else None,
                                        value.fset and said_plainly(value.fset),
                                        value.fdel, value.__doc__))
        elif isinstance(value, staticmethod | classmethod):
            setattr(cls, name, type(value)(said_plainly(value.__func__)))
        elif inspect.isfunction(value):
            setattr(cls, name, said_plainly(value))
    return cls


# (system identifier, database name, whether in recovery, when its postmaster started)
ServerIdentity = tuple[int | None, str, bool, datetime]


def server_identity(conn: psycopg.Connection) -> ServerIdentity:
    """(system identifier, database name, whether the server is a standby (in recovery), when
    it started) of the server CONN reached; the identifier is None where pg_control_system()
    is not granted (some hosted PostgreSQL)."""
    database = conn.execute(sql.CURRENT_DATABASE).fetchone()[0]
    in_recovery, started = conn.execute(sql.SERVER_STATE).fetchone()
    try:
        with conn.transaction():
            system = int(conn.execute(sql.SYSTEM_IDENTIFIER).fetchone()[0])
    except psycopg.OperationalError:
        raise
    except psycopg.Error:  # not granted, or not there (a hosted PostgreSQL's own build)
        system = None
    return system, database, in_recovery, started


def _check_ready(url: str, schema: str, standby_of: ServerIdentity | None = None) -> None:
    """One connection to a database that is not migrated here (a standby), to learn at once
    (and say) why it cannot serve: the server unreachable, no pgvector (every connection's
    set-up failed, and the pool waited its 30 s, then said only "incomplete"), no library in
    the schema (each query failed with "relation faces does not exist"), or, given the
    primary's identity, another server or database than the primary's (another library's
    faces answered the searches, without a word), or a server that follows no primary and is
    not the primary itself (a standby promoted: its copy of the library answered searches,
    missing all the primary wrote since)."""
    _check_url(url)
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            if conn.execute(sql.VECTOR_SCHEMA).fetchone() is None:
                raise DatabaseError("this database has no pgvector extension")
            _check_vector_usable(conn)
            if conn.execute(sql.SCHEMA_HAS_LIBRARY, [schema]).fetchone()[0] is None:
                raise DatabaseError(f"this database holds no pgface library in schema "
                                    f"{schema!r} (a standby that has not replayed the "
                                    f"primary's first start yet, or another database)")
            if standby_of is not None:
                _check_standby_of(server_identity(conn), standby_of)
    except psycopg.errors.QueryCanceled as exc:
        raise StatementCancelled(cancelled(exc, "as it opened the library"), exc.sqlstate) from exc
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to the database: {one_line(exc)}") from exc


def _check_standby_of(found: ServerIdentity, primary: ServerIdentity) -> None:
    (system, database, in_recovery, started) = found
    (primary_system, primary_database, _, primary_started) = primary
    if None not in (system, primary_system) and system != primary_system:
        raise DatabaseError(
            f"this server is not the primary nor a standby of it (system identifier {system}, "
            f"the primary's {primary_system}): its searches would answer from another library")
    if database != primary_database:
        raise DatabaseError(
            f"this is database {database!r}, the library's is {primary_database!r}: a standby "
            f"holds the primary's databases under their own names")
    if not in_recovery and started != primary_started:
        # a standby promoted (or a copy of the primary's) keeps its system identifier and
        # databases, and answered searches from a library the primary no longer writes to
        raise DatabaseError(
            f"this server is not in recovery, so it is no standby of the primary, nor is it "
            f"the primary itself (started {started:%Y-%m-%d %H:%M:%S}, the primary "
            f"{primary_started:%Y-%m-%d %H:%M:%S}): a standby that was promoted, or another "
            f"server with a copy of the library, no longer follows the primary, and its "
            f"searches would miss what the primary has written since")


def connection_lost(exc: psycopg.Error) -> bool:
    """Whether the connection or the server went away (worth running again), not a statement
    the server refused. psycopg's OperationalError also covers resources (SQLSTATE 53: disk
    full, out of memory) and program limits (54: a row too large for an index), where "run it
    again" would only fail again."""
    state = exc.sqlstate
    return isinstance(exc, psycopg.OperationalError) and (
        state is None or state.startswith(("08", "57P")))


def one_line(exc: Exception) -> str:
    """EXC's message as one line, with no part of a database URL's password: libpq names a
    host it cannot find as the URL gave it, and in a URL whose password was written raw
    (`xx@yy`) that was the password's end (`failed to resolve host 'yy@127.0.0.1'`)."""
    return without_passwords(" ".join(str(exc).split()))


def _move_from_public(conn: psycopg.Connection, schema: str) -> None:
    """Tables (with their indexes, constraints and identity sequences), views and types of
    pgface's in public go to `schema`: rows, ids and references stay as they are."""
    names = created_names()
    moved = []
    for kind, name in conn.execute(sql.OBJECTS_IN_PUBLIC, [names, names]).fetchall():
        conn.execute(psql.SQL("ALTER {} public.{} SET SCHEMA {}").format(
            psql.SQL(kind), psql.Identifier(name), psql.Identifier(schema)))
        moved.append(name)
    log.info("moved pgface's %s from schema public to %s", ", ".join(moved), schema)
    _leave_moved_stub(conn, schema)


def _leave_moved_stub(conn: psycopg.Connection, schema: str) -> None:
    """What stops an older pgface, from before pgface had a schema, on the moved library: a
    view public.schema_migrations whose reading raises "this pgface library moved to schema
    ...". Without it that pgface, whose start-up creates its tables in public where missing,
    made a second, empty library there and indexed into it, without a word (probe
    upgrade22). Where this role may not create in public, the move goes on and says so."""
    version, newest = package_version("pgface"), migrations()[-1][0]
    message = (f"this pgface library moved to schema {schema!r} (pgface {version}, which "
               f"knows migration {newest}, moved it from schema public): use pgface >= "
               f"{version} that knows migration {newest} or later (`pgface --version` "
               f"names the newest it knows); an older pgface, from before pgface had a schema "
               f"of its own, must not use this database")
    stub = psql.SQL(sql.MOVED_STUB).format(
        message=psql.Literal(message),
        comment=psql.Literal(f"pgface: the library moved to schema {schema}; reading this "
                             f"stops an older pgface (see the function's message)"))
    try:
        with conn.transaction():
            conn.execute(stub)
    except psycopg.errors.InsufficientPrivilege as exc:
        log.warning("the library moved to schema %r, but nothing was left in schema public to "
                    "stop an older pgface (from before pgface had a schema of its own) from "
                    "making a new library there: %s. Use no older pgface on this database",
                    schema, one_line(exc))


def _create_pgvector(conn: psycopg.Connection, url: str | None = None) -> None:
    """pgvector, in public: an application's vector type is ours too. A role that may not
    install it is told which database lacks it (it said "this database": a Django test
    database is not the one the project names) and the fix where pgface was configured from
    (URL's origin: for Django's test database, made again on each run, "once" cannot help)."""
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public")
    except psycopg.errors.InsufficientPrivilege as exc:
        raise DatabaseError(
            f"pgvector is not installed in database {conn.info.dbname!r} on {_server(conn)}, "
            f"and this role ({conn.info.user!r}) may not install it ({one_line(exc)}): "
            + (_advice(url, "may not install pgvector")
               or "a superuser must run CREATE EXTENSION vector in it once")
        ) from exc


# Advice that fits where pgface's database URL came from: pgface.django.conf adds one that
# knows the URLs of its project's DATABASES (a Django project sets no PGFACE_DATABASE_URL, so
# "unset PGFACE_DATABASE_URL" cannot help there). Each is asked advice(url, problem), problem
# "no pgvector" (the server lacks it) or "may not install pgvector"; None where the URL is not
# its own, and the command line's advice is given.
advisers: list[Callable[[str, str], str | None]] = []


def _advice(url: str | None, problem: str) -> str | None:
    for adviser in advisers if url is not None else ():
        try:
            said = adviser(url, problem)
        except Exception:  # noqa: BLE001 - advice is a courtesy: the error is said anyway
            said = None
        if said:
            return said
    return None


def _server(conn: psycopg.Connection) -> str:
    """The server CONN is connected to as the user knows it: host and port, or the socket's
    folder and port."""
    host, port = conn.info.host, conn.info.port
    if host.startswith("/"):
        return f"the database server on socket folder {host} (port {port})"
    return f"the database server at {host}:{port}"


def _check_pgvector(conn: psycopg.Connection, url: str | None = None) -> None:
    """pgvector >= 0.7 available on CONN's server; where not, an error that names the server
    and database, and the fix where pgface was configured from (URL's origin): it said "unset
    PGFACE_DATABASE_URL" in a Django project, which never set it, naming neither."""
    row = conn.execute(
        "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
    ).fetchone()
    where = f"{_server(conn)} (database {conn.info.dbname!r})"
    if row is None:
        raise DatabaseError(
            f"{where} has no pgvector extension; "
            + (_advice(url, "no pgvector") or "install pgvector >= 0.7 on it or unset "
               "PGFACE_DATABASE_URL to use the embedded server"))
    version = tuple(int(p) for p in re.findall(r"\d+", row[0])[:2])
    if version < MIN_PGVECTOR:
        raise DatabaseError(f"pgvector {row[0]} of {where} is too old; pgface needs >= 0.7")
    _check_vector_usable(conn)


def _check_vector_usable(conn: psycopg.Connection) -> None:
    """pgvector installed in a schema this role may not use is said so, with the grant: it
    was "type vector does not exist" for a new library, and for one made before the right
    was taken away, 30 s of the pool's silent retries, then "cannot connect to the
    database" (probe pgserver36)."""
    row = conn.execute(sql.VECTOR_SCHEMA_UNUSABLE).fetchone()
    if row is not None:
        schema, role = row
        raise DatabaseError(
            f"pgvector is installed in schema {schema!r} of database {conn.info.dbname!r} on "
            f"{_server(conn)}, which role {role!r} may not use (it lacks the USAGE right on "
            f"it): an administrator runs `GRANT USAGE ON SCHEMA "
            f"{psql.Identifier(schema).as_string(conn)} TO "
            f"{psql.Identifier(role).as_string(conn)}` once")


def _configure(schema: str) -> Callable[[psycopg.Connection], None]:
    def configure(conn: psycopg.Connection) -> None:
        # session-wide, so unqualified names in sql.py mean pgface's tables on every connection
        conn.execute(sql.SET_SEARCH_PATH, [search_path(conn, schema), False])
        conn.commit()
        register_vector(conn)
    return configure


def open_pool(url: str | Callable[[], str], min_size: int = 1, max_size: int = 8,
              schema: str = DEFAULT_SCHEMA, migrate_first: bool = True,
              standby_of: ServerIdentity | None = None,
              stopped: Callable[[], str | None] | None = None) -> ConnectionPool:
    """Migrate (unless told not to: a read-only standby, checked to be the server and
    database of standby_of, the primary's identity, where given), then open a pool whose
    connections see pgface's schema first and know the vector type.

    url may be a callable, asked again for every new connection (it may restart a server that
    died). Every connection is checked as it is taken, so one the server dropped (killed,
    restarted) is replaced instead of failing the caller's first statement.
    """
    if migrate_first:
        migrate(url() if callable(url) else url, schema)
    else:  # migrating connects first; without it, a server that is down would cost the
        _check_ready(url() if callable(url) else url, schema,  # pool's 30 s, then "timeout"
                     standby_of)
    pool = LibraryPool(
        url, min_size=min_size, max_size=max_size, configure=_configure(schema),
        check=lambda conn: pool.check_or_sweep(conn), open=False,
    )
    pool.stopped = stopped
    try:
        pool.open(wait=True, timeout=30)
    except PoolTimeout as exc:  # an OperationalError too: first, or the pool stayed open
        pool.close()
        raise DatabaseError(f"cannot connect to the database: {one_line(exc)}") from exc
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to the database: {one_line(exc)}") from exc
    return pool
