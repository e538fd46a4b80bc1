"""`pgface serve` and `pgface keys ...`: the HTTP server and its API keys."""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import re
import resource
import socket
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from pgface.cli.common import TEXT, JsonOption, OutputLost, err, handle_errors, print_json
from pgface.cli.display import ellipsis_for
from pgface.config import Settings
from pgface.db import api_keys
from pgface.errors import PgfaceError, without_passwords
from pgface.library import Pgface, build_analyzer
from pgface.paths import terminal_safe

log = logging.getLogger(__name__)


class AuthMode(str, Enum):
    """--auth's values: the parser refuses others with its usage message and exit code 2, as
    every option out of its range (a free string was checked later, exit code 1)."""

    auto = "auto"
    always = "always"


keys_app = typer.Typer(help="Create, list and revoke the HTTP API's keys.",
                       epilog="Examples:\npgface keys create laptop --scope read\n"
                              "pgface keys list\npgface keys revoke laptop",
                       no_args_is_help=True)


@handle_errors
def serve(
    host: Annotated[str | None, typer.Option(
        **TEXT, help="Address to listen on; a non-loopback address requires API keys. Default: "
             "PGFACE_API_HOST, else 127.0.0.1.", show_default=False)] = None,
    port: Annotated[int | None, typer.Option(
        min=1, max=65535, help="Port to listen on. Default: PGFACE_API_PORT, else 8000.",
        show_default=False)] = None,
    roots: Annotated[list[Path] | None, typer.Option(
        "--roots", "--root", help="A folder clients may index server-side paths from "
                                  "(repeat for several). None: only uploads.")] = None,
    auth: Annotated[AuthMode | None, typer.Option(
        help="auto: open on loopback until a key exists; always: every request needs a key. "
             "Default: PGFACE_API_AUTH, else auto.", show_default=False)] = None,
    inference_workers: Annotated[int | None, typer.Option(
        min=0,
        help="Photos analysed at once, 0: one per core (default: PGFACE_API_INFERENCE_WORKERS, "
             "else one per core).")
    ] = None,
    root_path: Annotated[str | None, typer.Option(
        **TEXT, help="The path a reverse proxy serves pgface at (/faces), which it takes off "
                     "before passing requests on; the page's and the API's links are made under "
                     "it. Default: PGFACE_API_ROOT_PATH, else the root.", show_default=False)
    ] = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs) and the web page (at /).

    Example: pgface serve --port 8000 --roots ~/Pictures
    """
    import uvicorn

    from pgface.api import create_app
    from pgface.api.protocol import MAX_HEADER_BYTES, PgfaceH11Protocol, limit_concurrency_for

    settings = Settings()
    # An option given wins over its variable; one not given leaves it (PGFACE_API_AUTH=always
    # was overwritten by --auth's default, and the server answered without a key)
    host = host if host is not None else settings.api_host
    port = port if port is not None else settings.api_port
    if not host.strip():  # "" binds every address (the variable's validator says so too)
        raise PgfaceError("--host: empty: name an address (127.0.0.1: this machine only; "
                          "0.0.0.0: every address)")
    update: dict[str, Any] = {"api_host": host,
                              "api_auth": auth.value if auth is not None else settings.api_auth}
    # --roots, or PGFACE_API_ROOTS (which went unchecked: a mistyped root refused every path
    # under it with 404s, a root that is a link loop answered 500 to every path request)
    given, named = (roots, "--roots") if roots else (settings.api_roots, "PGFACE_API_ROOTS")
    missing = [r for r in given if not r.expanduser().is_dir()]
    if missing:
        raise PgfaceError(f"{named} {missing[0]}: " + (
            "not a folder" if missing[0].expanduser().exists() else "no such folder"))
    update["api_roots"] = [r.expanduser().resolve() for r in given]
    uploads = settings.resolved_upload_dir()
    if uploads.exists() and not uploads.is_dir():  # every upload was a 500 FileExistsError
        raise PgfaceError(f"PGFACE_UPLOAD_DIR {uploads}: not a folder (uploaded photos are "
                          "kept there)")
    # where it will be made, or is: every new upload was a 500 PermissionError
    made_in = next(p for p in (uploads, *uploads.parents) if p.exists())
    if not os.access(made_in, os.W_OK | os.X_OK):
        where = "" if made_in == uploads else f" (it would be made in {made_in})"
        raise PgfaceError(f"PGFACE_UPLOAD_DIR {uploads}: this user may not write there{where}; "
                          f"uploaded photos are kept there")
    if inference_workers is not None:  # 0 as the variable's 0: one per core
        update["api_inference_workers"] = inference_workers
    if root_path is not None:  # checked as the variable is
        try:
            update["api_root_path"] = Settings.root_path_checked(root_path)
        except ValueError as exc:
            raise PgfaceError(f"--root-path: {exc}") from None
    settings = settings.model_copy(update=update)
    listening = _listen(host, port)  # before the models load: a taken port says so at once
    _server_logs()
    # the log's first line, with its time as every other (it had none)
    log.info("pgface on http://%s:%s/ (API docs at /docs); roots: %s", host, port,
             ", ".join(map(str, settings.api_roots)) or "none (uploads only)",
             extra={UNMASKED: True})  # no database error in it: its address shown whole
    # The pack, the database and the model files, checked before uvicorn starts: failing in
    # the app's startup, each was a 70-line traceback ending "Application startup failed".
    analyzer = build_analyzer(settings)
    with Pgface(settings, analyzer=analyzer) as pf:
        _ = pf.pool  # reachable, migrated, and the pack the library knows by that name
    analyzer.warm_up()
    config = uvicorn.Config(create_app(settings, analyzer), host=host, port=port,
                            log_level="info", log_config=_uvicorn_logs(),
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
                            root_path=settings.api_root_path,
                            limit_concurrency=limit_concurrency_for(
                                _connections_within_open_files(settings.api_max_connections)),
                            # a request line and headers over it: a JSON 431 (docs/http.md)
                            http=PgfaceH11Protocol.timing_heads(settings.api_head_timeout_s),
                            h11_max_incomplete_event_size=MAX_HEADER_BYTES)
    server = uvicorn.Server(config)
    startup = server.startup

    async def startup_saying_accept_errors_once(sockets: Any = None) -> None:
        asyncio.get_running_loop().set_exception_handler(_AcceptErrorsSaid())
        await startup(sockets=sockets)

    server.startup = startup_saying_accept_errors_once  # type: ignore[method-assign]
    server.run(sockets=[listening])


# Files a connection may hold open: its socket and an upload's spooled part
FILES_PER_CONNECTION = 2
# Files beyond those open at start: the pool's connections (8), a job's, logs, libraries
FILES_SPARE = 64


def _connections_within_open_files(wanted: int) -> int:
    """PGFACE_API_MAX_CONNECTIONS, within the files this process may open (`ulimit -n`): the
    soft limit raised towards the hard one where it is short, else fewer connections, said.
    Past the limit, every accept() failed with "Too many open files", asyncio logged a
    four-line traceback for each of 2,048 retries a wake-up (700 MB of log a minute), and the
    requests already accepted went unanswered (probe diskfull24)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        open_now = len(os.listdir("/proc/self/fd"))
    except OSError:
        open_now = 64
    needed = open_now + FILES_SPARE + FILES_PER_CONNECTION * wanted
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return wanted
    raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if raised > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
    if soft >= needed:
        return wanted
    allowed = max(1, (soft - open_now - FILES_SPARE) // FILES_PER_CONNECTION)
    log.warning("PGFACE_API_MAX_CONNECTIONS is %d, but this process may open only %d files "
                "(ulimit -n; %d open now): at most %d connections at once, more are answered "
                "503 (raise the limit to %d for %d)", wanted, soft, open_now, allowed, needed,
                wanted)
    return allowed


class _AcceptErrorsSaid:
    """The server loop's exception handler: accept() failing for want of files is one
    warning each ten seconds, with how many failed (asyncio logged a traceback for each of its
    retries: probe diskfull24); anything else goes to asyncio's own handler."""

    def __init__(self) -> None:
        from pgface.api.protocol import NowAndThen

        self.failed = NowAndThen(10.0)

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if "_start_serving" in repr(context.get("handle")) and isinstance(
                context.get("exception"), ValueError):
            # asyncio's retry of accept(), scheduled after a failure, meeting the listening
            # socket closed at shutdown ("Invalid file descriptor: -1"): nothing to say
            return
        if context.get("message") != "socket.accept() out of system resource":
            loop.default_exception_handler(context)
            return
        said = self.failed.happened()
        if said is not None:
            log.warning("cannot accept connections: %s (%d times in %.0f s); the connections "
                        "open are answered, new ones wait: raise `ulimit -n` or lower "
                        "PGFACE_API_MAX_CONNECTIONS", context.get("exception"), *said)


# On SIGTERM or Ctrl-C the requests in flight get this long to finish, then their
# connections are closed: one client that stopped sending mid-upload kept the server from
# exiting at all (`docker stop`, `systemctl stop` then killed it, mid index job). Within
# docker's 10 s; a search or an upload's indexing takes about a second here.
GRACEFUL_SHUTDOWN_S = 5


def _listen(host: str, port: int) -> socket.socket:
    """The server's socket, bound as uvicorn binds it; a host that does not resolve or a port
    in use is one `error:` line naming them (uvicorn logged its own line after the models had
    loaded, without the host, and exited 3)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        # Listening now, not when uvicorn starts: with SO_REUSEADDR two sockets bind one
        # address until one listens, so a second server started meanwhile loaded everything,
        # then died in uvicorn with a traceback. uvicorn's listen() later sets its backlog.
        sock.listen()
    except OSError as exc:  # socket.gaierror too: a name or address that does not resolve
        sock.close()
        reason = exc.strerror or str(exc)
        raise PgfaceError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.set_inheritable(True)
    return sock


# Each line of the server's log starts with its local time and UTC offset: a log kept in a
# file (`pgface serve 2>> pgface.log`) had no time, so a 500's traceback or a restarted
# database could not be put beside a client's report. journald and `docker logs -t` add their
# own; a second time is the lesser harm.
LOG_TIME = "%(asctime)s "
LOG_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


def _uvicorn_logs() -> dict:
    """uvicorn's own log settings, each line with its time."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    for formatter in config["formatters"].values():
        formatter["fmt"] = LOG_TIME + formatter["fmt"]
        formatter["datefmt"] = LOG_DATE_FORMAT
    # uvicorn's error log holds a failed request's traceback: no password in it either
    # (the class itself: its dotted name reached the function `pgface.cli.serve`, which the
    # package's __init__ names so, and every `pgface serve` stopped at start, probe reprobe32)
    config["formatters"]["default"]["()"] = MaskedFormatter
    # and its access log a request's URL, which a client may have put a key in (probe
    # operator35: `?api_key=pgf_...` was kept whole)
    config["formatters"]["access"]["()"] = MaskedAccessFormatter
    return config


# A log record's attribute (logging's `extra`) that says it quotes no database error: its
# parts that look like a password's are the words they are. Masked, a password that was a word
# or an address blanked them, and so said it: `pgface on http://***:8000/` with the password
# 127.0.0.1 (probe operator).
UNMASKED = "pgface_unmasked"


class MaskedFormatter(logging.Formatter):
    """uvicorn's DefaultFormatter, each line with no part of a database URL's password (the
    pool's "error connecting" warnings quoted libpq's words, which may hold the end of a
    password written raw in PGFACE_DATABASE_URL: errors.without_passwords), nor an API key's
    secret (`pgf_<key id>_***`). A record marked UNMASKED is masked of API keys alone."""

    inner_name = "DefaultFormatter"  # the formatter of uvicorn.logging it masks
    passwords = True  # this formatter's lines may quote a database error

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        import uvicorn.logging

        super().__init__()
        self.inner: logging.Formatter = getattr(uvicorn.logging, self.inner_name)(*args,
                                                                                  **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if "\n" in message or "\r" in message:
            # one line a record (its traceback aside): the pool's warnings kept libpq's
            # newline and tab, and the line after ("\tIs the server running on that host...")
            # had no time or level, as if not the server's (probe operator)
            record = logging.makeLogRecord({**record.__dict__, "args": None,
                                            "msg": re.sub(r"\s*[\r\n]\s*", " ", message)})
        line = self.inner.format(record)
        if self.passwords and not getattr(record, UNMASKED, False):
            line = without_passwords(line)
        return api_keys.without_secrets(line)


class MaskedAccessFormatter(MaskedFormatter):
    """uvicorn's AccessFormatter, masked of API keys (`?key=` in a URL): a request line holds
    no database error, and masked of a password that was a word, `GET /api/photos` read
    `GET /api/***` (probe operator: the password was `photos`)."""

    inner_name = "AccessFormatter"
    passwords = False


def _server_logs() -> None:
    """A server says what it does in its log, as uvicorn does: a restarted database, a 500's
    traceback, a lost connection (the CLI's callback quiets these for one-shot commands)."""
    handler = logging.StreamHandler()
    handler.setFormatter(MaskedFormatter(LOG_TIME + "%(levelprefix)s %(message)s",
                                         datefmt=LOG_DATE_FORMAT))
    for name in ("pgface", "psycopg"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
    logging.getLogger("pgface").setLevel(logging.INFO)
    logging.getLogger("pgface.db.watch").setLevel(logging.NOTSET)
    logging.getLogger("psycopg").setLevel(logging.WARNING)


def _key_dict(key: api_keys.ApiKey) -> dict:
    return {"id": key.id, "name": key.name, "key_id": key.key_id, "scopes": key.scopes,
            "created_at": key.created_at.isoformat(),
            "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None}


@keys_app.command("create")
@handle_errors
def create(
    name: Annotated[str, typer.Argument(**TEXT, help="Who or what the key is for.")],
    scope: Annotated[list[str] | None, typer.Option(
        "--scope", "-s", **TEXT, help="read (search, list, fetch) or write (index, delete, name; "
                              "implies read). Repeatable.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key and print it once: only its hash is stored.

    Example: pgface keys create photo-app --scope read --scope write
    """
    # Stored once it is shown: a stdout that could not take it (a full disk) left a key
    # created whose secret nobody had, to be found and revoked (probe cli31)
    with Pgface(Settings()) as pf, pf.pool.connection() as conn:
        try:
            with conn.transaction():
                key, secret = api_keys.create_key(conn, name, scope or ["read"])
                if as_json:
                    print_json({**_key_dict(key), "key": secret})
                else:
                    # the key first: "created key" said before a write that failed read as a
                    # key created, above "no key was created" (probe docsrun37)
                    sys.stdout.write(secret + "\n")
                    sys.stdout.flush()
                    err.print(f"created key {key.name!r} ({', '.join(key.scopes)}), shown above "
                              f"only now: only its hash is stored", highlight=False)
        except OutputLost as exc:
            raise OutputLost(f"cannot write the key to standard output ({exc.reason}): no key "
                             f"was created", exc.reason) from None


@keys_app.command("list")
@handle_errors
def list_(
    include_revoked: Annotated[bool, typer.Option("--all", help="Show revoked keys too.")
                               ] = False,
    as_json: JsonOption = False,
) -> None:
    """List API keys (names, scopes, dates; never the keys themselves).

    Example: pgface keys list --all
    """
    with Pgface(Settings()) as pf, pf.pool.connection() as conn:
        keys = api_keys.list_keys(conn, include_revoked)
    if as_json:
        print_json([_key_dict(k) for k in keys])
        return
    if not any(k.revoked_at is None for k in keys):
        err.print(f"no active API keys: {OPEN_SAID}", highlight=False, soft_wrap=True)
    shortened = ellipsis_for(sys.stdout.encoding)  # "..." where stdout is ASCII
    for k in keys:
        state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
        # a name from before names were checked may hold an ESC, a newline or a tab
        sys.stdout.write(f"{k.id}\t{terminal_safe(k.name)}\tpgf_{k.key_id}_{shortened}\t"
                         f"{','.join(k.scopes)}\t{k.created_at:%Y-%m-%d}\t{state}\n")


@keys_app.command("revoke")
@handle_errors
def revoke(name_or_id: Annotated[str, typer.Argument(
        **TEXT, help="Key name, key id (as pgf_<key id> too) or number.")]) -> None:
    """Revoke one API key at once; requests with it get 401 from then on. Where the argument
    names several keys (a name equal to another key's number), none is revoked: they are
    listed, and each is revoked by its key id.

    Example: pgface keys revoke photo-app
    """
    with Pgface(Settings()) as pf, pf.pool.connection() as conn:
        key = api_keys.revoke_one(conn, name_or_id)
        last = key is not None and not api_keys.active_key_exists(conn)
    if key is None:
        raise PgfaceError(f"no active API key named or numbered {name_or_id!r}")
    err.print(f"revoked key {key.id} '{terminal_safe(key.name)}' (pgf_{key.key_id}_...)",
              highlight=False)
    if last:  # revoking narrows access, but the last one opened a loopback server (operator35)
        err.print(f"warning: that was the last active key: {OPEN_SAID}; to keep the server "
                  f"closed, create one (pgface keys create) or serve with --auth always",
                  highlight=False, soft_wrap=True)


# What a library without active keys answers (docs/http.md, Authentication)
OPEN_SAID = ("a server on 127.0.0.1 answers every client that reaches it without a key, the "
             "clients of a proxy in front of it that sends no forwarding header too, and one "
             "on another address none")
