"""`pgface db start|stop|status`: the embedded PostgreSQL that pgface runs in its data folder;
`pgface db backup|restore`: the library as a file, for the embedded server or any other."""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from psycopg.conninfo import conninfo_to_dict

from pgface.cli.common import (
    CutShort,
    JsonOption,
    err,
    handle_errors,
    open_library,
    out,
    path_argument,
    print_json,
    stopped_by_sigterm_as_by_ctrl_c,
)
from pgface.cli.display import human_size, plain
from pgface.config import Settings
from pgface.db import backup as backups
from pgface.db import server
from pgface.errors import counted
from pgface.library import Pgface
from pgface.paths import readable

db_app = typer.Typer(help="Start, stop and look at the embedded PostgreSQL server; back the "
                     "library up and restore it.",
                     epilog="Examples:\npgface db status\npgface db backup ~/pgface.dump\n"
                            "pgface db restore ~/pgface.dump",
                     no_args_is_help=True)


def _status(settings: Settings) -> dict:
    status = server.server_status(settings.resolved_data_dir())
    return {**status, "in_use": _in_use(settings, status)}


def _in_use(settings: Settings, status: dict) -> bool:
    """Whether pgface uses this embedded server: no PGFACE_DATABASE_URL, or one naming its
    socket folder (and port, where it runs). `manage.py pgface` sets the variable to the
    project's DATABASES entry, which names the embedded server so (docs/django.md step 1):
    that server was said "not in use" by `manage.py pgface db status`, and `db stop` stopped
    it saying so (probe django39)."""
    if not settings.database_url:
        return True
    try:
        given = conninfo_to_dict(settings.database_url)
    except psycopg.ProgrammingError:
        return False
    pgdata = Path(status["data_dir"]) / "pgdata"
    hosts = [h for h in str(given.get("host") or "").split(",") if h.startswith("/")]
    here = any(os.path.realpath(h) == os.path.realpath(pgdata) for h in hosts)
    return here and (status["port"] is None or str(given.get("port") or 5432)
                     == str(status["port"]))


def _not_in_use(settings: Settings, status: dict) -> None:
    if not status["in_use"]:
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
    _not_in_use(settings, status)
    out.print(f"PostgreSQL {status['version']} running, pid {status['pid']}, port "
              f"{status['port']}, data folder {status['data_dir']}", highlight=False,
              soft_wrap=True)


@db_app.command()
@handle_errors
def stop(as_json: JsonOption = False) -> None:
    """Stop the embedded server (fast shutdown: sessions end, nothing stored is lost).

    The next command that needs the database starts it again; a running `pgface serve`
    answers 503 until then (it restarts only a server that crashed, not one stopped here).
    --json: the status after it (`running`: false), `was_running` and `stopped_pid`.

    Example: pgface db stop
    """
    settings = Settings()
    data_dir = settings.resolved_data_dir()
    was = server.server_status(data_dir)
    server.stop_server(data_dir)
    status = _status(settings)
    if as_json:
        print_json({**status, "was_running": was["running"], "stopped_pid":
                    was["pid"] if was["running"] else None})
        return
    _not_in_use(settings, status)
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
            # as stats says them (yes/no, a dash for none, words), not True, None, data_dir
            label = key.replace("_", " ")
            out.print(f"{label:>9}: {plain(result[key])}", highlight=False, soft_wrap=True)
    if not result["running"]:
        raise typer.Exit(3)


def _uploads_note(pf: Pgface) -> str | None:
    """The photos uploaded over HTTP are files in the server's upload folder, which no backup
    holds: those the library records, in the folders it records them in (counted in this
    process's PGFACE_UPLOAD_DIR, a cron job without the server's variable said nothing of a
    server's uploads, probe restore35)."""
    folders = backups.upload_folders(pf.database_url(), pf.settings.db_schema)
    if not folders:
        return None
    files = sum(folders.values())
    return (f"note: the {counted(files, 'photo')} uploaded over HTTP "
            f"{'is a file' if files == 1 else 'are files'} in {', '.join(folders)}, "
            f"not in the backup: copy {'that folder' if len(folders) == 1 else 'those folders'}"
            " too")


def _counts_text(counts: backups.LibraryCounts) -> str:
    keys = f", {counted(counts.api_keys, 'API key')}" if counts.api_keys else ""
    return f"{counts.photos} photos, {counts.faces} faces, {counts.people} people{keys}"


@db_app.command()
@handle_errors
def backup(
    file: Annotated[Path, typer.Argument(
        parser=path_argument, help="The backup file to write (replaced if it exists).")],
    as_json: JsonOption = False,
) -> None:
    """Back the library up into FILE: photos, paths, faces, people, history and API keys, in
    one consistent snapshot while indexing and searches go on.

    FILE is a PostgreSQL custom-format archive of pgface's schema (`pg_restore -l FILE` lists
    it), written complete or not at all. Photos uploaded over HTTP are files in the upload
    folder: copy it too.

    Example: pgface db backup ~/backups/pgface-$(date +%F).dump
    """
    written: list[str] = []  # FILE, once the archive is in its place
    settings = Settings()
    folder = settings.resolved_data_dir()
    if settings.database_url is None and not (folder / "pgdata").exists():
        # a mistyped PGFACE_DATA_DIR made a data folder and left its server running to say
        # there was nothing to back up (probe backup39)
        raise backups.BackupError(f"{readable(file)}: no pgface library in data folder "
                                  f"{readable(folder)} (it holds no database; is "
                                  f"PGFACE_DATA_DIR right?): nothing to back up")

    def said() -> str:
        # stopped once the archive had taken FILE's place, "no backup was written" was said
        # of a FILE replaced by the whole new one (probe crash38)
        return (f"the backup was done: {readable(Path(written[0]))} holds it whole" if written
                else "no backup was written (its partial file removed)")

    with stopped_by_sigterm_as_by_ctrl_c(said), open_library() as pf:
        try:
            report = backups.backup(pf.database_url(), pf.settings.db_schema, file)
        except KeyboardInterrupt as exc:
            written += [exc.backup_written] if hasattr(exc, "backup_written") else []
            raise
        written.append(report.path)
        note = _uploads_note(pf)
    if as_json:
        print_json({**asdict(report), "uploads_note": note})
        return
    out.print(f"backed up {_counts_text(report.counts)} to {readable(report.path)} "
              f"({human_size(report.size_bytes)}) in {report.seconds:.1f} s",
              highlight=False, soft_wrap=True)
    if note:
        err.print(note, highlight=False, soft_wrap=True)


def _holds_nothing(pf: Pgface) -> bool:
    """Whether PF's library holds nothing to keep; False where that cannot be asked (the
    restore's own failure is said, not this one's)."""
    try:
        return backups.holds_nothing(pf.database_url(), pf.settings.db_schema)
    except Exception:  # noqa: BLE001 - not known: the folder stays
        return False


@db_app.command()
@handle_errors
def restore(
    file: Annotated[Path, typer.Argument(
        parser=path_argument, help="A file `pgface db backup` wrote.")],
    replace: Annotated[bool, typer.Option(
        "--replace",
        help="Replace a library that holds photos, people or API keys (default: refused).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Restore the library from FILE, in one transaction: a damaged or truncated file, or one
    a newer pgface wrote, leaves the library as it was.

    Into an empty library (a new data folder); one that holds photos, people or API keys only
    with --replace. Nothing else may be connected: stop `pgface serve` first. The migrations this
    pgface has and the backup lacks are applied after it.

    Example: PGFACE_DATA_DIR=~/pgface-restored pgface db restore pgface-2026-12-01.dump
    """
    settings = Settings()
    # before a server is made or started for it
    file = backups.checked_archive(file, settings.db_schema)
    # A data folder this restore makes (a new machine's), or its server's files in a folder
    # made for it beforehand (`mkdir`): where the restore fails (a file truncated past its
    # readable table of contents), they were left behind, 39 MB and its server running, for
    # a restore that restored nothing. What was there before stays.
    folder = settings.resolved_data_dir()
    made = (folder if settings.database_url is None and not (folder / "pgdata").exists()
            else None)
    there = set(os.listdir(folder)) if made is not None and folder.is_dir() else None
    empty_after_failure = False
    try:
        with stopped_by_sigterm_as_by_ctrl_c(
                "a restore commits whole or not at all, so the library is the backup's or as "
                "it was: `pgface stats` says which"), \
                open_library() as pf:
            try:
                report = backups.restore(pf.database_url(), pf.settings.db_schema, file, replace)
            except BaseException:  # Ctrl-C and SIGTERM too (probe backup39: a folder left)
                empty_after_failure = made is not None and _holds_nothing(pf)
                raise
    except Exception as exc:
        if not empty_after_failure or made is None:
            raise
        server.stop_server(made)
        if there is None:
            shutil.rmtree(made)
            removed = f"the data folder {readable(made)} made for it is removed again"
        else:
            for entry in set(os.listdir(made)) - there:
                path = made / entry
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            removed = f"the database files made for it in {readable(made)} are removed again"
        if isinstance(exc, typer.Exit):  # stopped by Ctrl-C or SIGTERM, said so: its code kept
            err.print(f"note: {removed}", highlight=False, soft_wrap=True)
            raise
        raise CutShort(exc, removed) from exc
    if as_json:
        print_json(asdict(report))
        return
    if report.replaced is not None:
        out.print(f"replaced {_counts_text(report.replaced)}", highlight=False)
    out.print(f"restored {_counts_text(report.counts)} from {readable(report.path)} in "
              f"{report.seconds:.1f} s", highlight=False, soft_wrap=True)
    if report.migrations:
        out.print(("then applied migration " if len(report.migrations) == 1
                   else "then applied migrations ")
                  + ", ".join(f"{v:04d}" for v in report.migrations),
                  highlight=False)
    if report.kept_revoked:
        out.print(f"kept revoked: {counted(len(report.kept_revoked), 'API key')} the replaced "
                  f"library had revoked ({', '.join(report.kept_revoked)})",  # no markup
                  highlight=False, soft_wrap=True)
