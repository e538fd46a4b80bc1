"""Connections: the server to use, migrations applied once, a pool of ready connections."""

from __future__ import annotations

import importlib.resources
import logging
import re
from collections.abc import Callable

import psycopg
from pgvector.psycopg import register_vector
from psycopg_pool import ConnectionPool

from pgface.db import sql
from pgface.errors import PgfaceError

log = logging.getLogger(__name__)
MIN_PGVECTOR = (0, 7)


class DatabaseError(PgfaceError):
    """The database cannot be reached or lacks what pgface needs."""


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, SQL) of every migration shipped with the package, in order."""
    folder = importlib.resources.files("pgface.db") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text()))
    return sorted(found)


def migrate(url: str) -> list[int]:
    """Apply the migrations this database lacks, each in its own transaction; returns them."""
    applied_now = []
    try:
        with psycopg.connect(url) as conn:
            _check_pgvector(conn)
            with conn.transaction():
                conn.execute(sql.MIGRATIONS_LOCK)
                conn.execute(sql.MIGRATIONS_TABLE)
                done = {r[0] for r in conn.execute(sql.APPLIED_MIGRATIONS)}
                for version, name, script in migrations():
                    if version in done:
                        continue
                    with conn.transaction():
                        conn.execute(script)
                        conn.execute(sql.RECORD_MIGRATION, [version, name])
                    applied_now.append(version)
                    log.info("applied migration %04d_%s", version, name)
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to the database: {_one_line(exc)}") from exc
    return applied_now


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _check_pgvector(conn: psycopg.Connection) -> None:
    row = conn.execute(
        "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
    ).fetchone()
    if row is None:
        raise DatabaseError(
            "the database server has no pgvector extension; install pgvector >= 0.7 "
            "or unset PGFACE_DATABASE_URL to use the embedded server"
        )
    version = tuple(int(p) for p in re.findall(r"\d+", row[0])[:2])
    if version < MIN_PGVECTOR:
        raise DatabaseError(f"pgvector {row[0]} is too old; pgface needs >= 0.7")


def open_pool(url: str | Callable[[], str], min_size: int = 1, max_size: int = 8
              ) -> ConnectionPool:
    """Migrate, then open a pool whose connections already know the vector type.

    url may be a callable, asked again for every new connection (it may restart a server that
    died). Every connection is checked as it is taken, so one the server dropped (killed,
    restarted) is replaced instead of failing the caller's first statement.
    """
    migrate(url() if callable(url) else url)
    pool = ConnectionPool(
        url, min_size=min_size, max_size=max_size, configure=register_vector,
        check=ConnectionPool.check_connection, open=False,
    )
    try:
        pool.open(wait=True, timeout=30)
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to the database: {_one_line(exc)}") from exc
    return pool
