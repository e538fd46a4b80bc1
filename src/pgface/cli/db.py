"""`pgface db start|stop|status`: the embedded PostgreSQL that pgface runs in its data folder."""

from __future__ import annotations

import typer

from pgface.cli.common import JsonOption, err, handle_errors, out, print_json
from pgface.config import Settings
from pgface.db import server

db_app = typer.Typer(help="Start, stop and look at the embedded PostgreSQL server.",
                     no_args_is_help=True)


def _status(settings: Settings) -> dict:
    status = server.server_status(settings.resolved_data_dir())
    # With PGFACE_DATABASE_URL set, pgface uses that server and leaves this one alone.
    return {**status, "in_use": not settings.database_url}


def _not_in_use(settings: Settings) -> None:
    if settings.database_url:
        err.print("note: PGFACE_DATABASE_URL is set, so pgface uses that server, not this one",
                  highlight=False)


@db_app.command()
@handle_errors
def start(as_json: JsonOption = False) -> None:
    """Start the embedded server (set it up on first use); nothing to do if it runs.

    Every command starts it when needed; this is for starting it ahead of time.

    Example: pgface db start
    """
    settings = Settings()
    server.ensure_server(settings.resolved_data_dir())
    status = _status(settings)
    if as_json:
        print_json(status)
        return
    _not_in_use(settings)
    out.print(f"PostgreSQL {status['version']} running, pid {status['pid']}, port "
              f"{status['port']}, data folder {status['data_dir']}", highlight=False,
              soft_wrap=True)


@db_app.command()
@handle_errors
def stop() -> None:
    """Stop the embedded server (fast shutdown: sessions end, nothing stored is lost).

    The next command that needs the database starts it again; a running `pgface serve`
    answers 503 until then (it restarts only a server that crashed, not one stopped here).

    Example: pgface db stop
    """
    settings = Settings()
    data_dir = settings.resolved_data_dir()
    was = server.server_status(data_dir)
    server.stop_server(data_dir)
    _not_in_use(settings)
    if was["running"]:
        out.print(f"stopped PostgreSQL (pid {was['pid']}) of {was['data_dir']}",
                  highlight=False, soft_wrap=True)
    else:
        out.print(f"PostgreSQL of {was['data_dir']} was not running", highlight=False,
                  soft_wrap=True)


@db_app.command()
@handle_errors
def status(as_json: JsonOption = False) -> None:
    """Whether the embedded server runs, its pid, port, data folder and version.
    Exit code 0 when it runs, 3 when it does not (as `pg_ctl status`).

    Example: pgface db status --json
    """
    settings = Settings()
    result = _status(settings)
    if as_json:
        print_json(result)
    else:
        for key in ("running", "crashed", "pid", "port", "data_dir", "version", "url", "in_use"):
            out.print(f"{key:>9}: {result[key]}", highlight=False, soft_wrap=True)
    if not result["running"]:
        raise typer.Exit(3)
