"""`manage.py pgface ...`: pgface's command line (index, search, people, stats, ...) on this
project's database, with its settings from settings.DATABASES and settings.PGFACE.

    python manage.py pgface index /srv/photos
    python manage.py pgface people cluster
    python manage.py pgface people name "Yao Ming" 12
"""

from __future__ import annotations

import io
import os
import sys
import threading
from argparse import REMAINDER, ArgumentParser
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import click
import typer
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from pgface.django import conf
from pgface.errors import PgfaceError

try:  # typer 0.2x on carries its own click: its usage errors and exits are not click's
    from typer.exceptions import TyperException
except ImportError:  # an older typer: click's are
    TyperException = click.ClickException  # type: ignore[misc,assignment]

EXITS = (click.exceptions.Exit, typer.Exit)
ABORTS = (click.exceptions.Abort, typer.Abort)
# typer.Exit and typer.Abort are TyperExceptions too, caught before
USAGE_ERRORS = (click.ClickException, TyperException)


# pgface's command line as one click command, built once for the process (_pgface_command)
_command: Any = None
_command_lock = threading.Lock()


def _pgface_command() -> Any:
    """pgface's click command, built once, with every parameter's conversion made. Typer
    builds those lazily on a call, each with os.environ's PYDANTIC_DISABLE_PLUGINS set and put
    back around it, which two threads' calls at once (call_command from two threads) left set
    in the process's environment (the CI met it now and then); `app(...)` built the whole
    command again on every call too."""
    global _command
    with _command_lock:
        if _command is None:
            from pgface.cli import app

            command = typer.main.get_command(app)
            todo = [command]
            while todo:
                each = todo.pop()
                todo += getattr(each, "commands", {}).values()
                # its --help too: made on a command's first call, and built there (the first
                # `people list` of a process set the variable while it ran)
                helper = each.get_help_option(each.context_class(each, **each.context_settings))
                for param in [*each.params, *([helper] if helper is not None else [])]:
                    if hasattr(param, "get_runtime_param"):  # typer's own parameters
                        param.get_runtime_param()
            _command = command
    return _command


_here = threading.local()  # this thread's call: where its output goes
_shared = threading.Condition()  # guards what the calls running now share (below)
_running: list[tuple[dict[str, str], tuple[_Routed, _Routed], dict[str, str | None]]] = []


class _Routed(io.TextIOBase):
    """sys.stdout or sys.stderr while `manage.py pgface` runs: a thread running it writes where
    its own call asked (its stdout=, stderr=), every other thread where it wrote before."""

    def __init__(self, name: str, before: IO[str]) -> None:
        self._name, self.before = name, before

    def _target(self) -> IO[str]:
        return getattr(_here, self._name, None) or self.before

    def write(self, text: str) -> int:
        return self._target().write(text)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return self._target().isatty()

    def fileno(self) -> int:
        return self._target().fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target(), "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:  # buffer, errors, ...
        return getattr(self._target(), name)


@contextmanager
def _running_for(env: dict[str, str], stdout: IO[str], stderr: IO[str]) -> Iterator[None]:
    """Run pgface's command line for this thread's call: its output to STDOUT and STDERR, ENV
    (the PGFACE_* variables of the project's settings, which pgface's command line reads) in
    os.environ. The calls running at once share one routing of sys.stdout and sys.stderr and
    one environment (a call for other settings waits for them to end); the last one to end
    puts back what was there. contextlib.redirect_stdout and an os.environ edited by each call
    crossed two threads' calls (Celery's thread pool, views): one's output in the other's
    buffer, and sys.stdout and the variables left changed for good."""
    with _shared:
        while _running and _running[0][0] != env:
            _shared.wait()
        if not _running:
            saved = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            routed = (_Routed("stdout", sys.stdout), _Routed("stderr", sys.stderr))
            sys.stdout, sys.stderr = routed
            _running.append((env, routed, saved))
        else:
            _running.append(_running[0])
    before = getattr(_here, "stdout", None), getattr(_here, "stderr", None)
    _here.stdout, _here.stderr = stdout, stderr
    try:
        yield
    finally:
        _here.stdout, _here.stderr = before
        with _shared:
            _, routed, saved = _running.pop()
            if not _running:
                # put back unless someone else replaced them meanwhile
                if sys.stdout is routed[0]:
                    sys.stdout = routed[0].before
                if sys.stderr is routed[1]:
                    sys.stderr = routed[1].before
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
                _shared.notify_all()


def _unrouted(stream: IO[str]) -> IO[str]:
    """A command's stream as it was before a call running meanwhile routed sys.stdout: Django
    takes sys.stdout when call_command builds a command without stdout=, and one built while
    another thread's call ran took that call's router, which then routed this thread's writes
    to itself (RecursionError, the output lost)."""
    return stream.before if isinstance(stream, _Routed) else stream


class _Said(io.TextIOBase):
    """A stream that writes through to OUT and keeps pgface's last `error:` line."""

    def __init__(self, out: IO[str]) -> None:
        self._out, self._line, self.error = out, "", ""

    def write(self, text: str) -> int:
        lines = (self._line + text).split("\n")
        self._line = lines.pop()
        for line in lines:
            if line.startswith("error: "):
                self.error = line.removeprefix("error: ")
        return self._out.write(text)

    def flush(self) -> None:
        self._out.flush()

    # a terminal stays one: pgface's progress bar is drawn only on a terminal
    def isatty(self) -> bool:
        return self._out.isatty()

    def fileno(self) -> int:
        return self._out.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._out, "encoding", "utf-8")


# Django's own options of every command that `manage.py` applied before the command ran
# (ManagementUtility reads them wherever they stand): taken out of pgface's arguments, which
# refused them ("No such option: --settings").
_APPLIED = ("--settings", "--pythonpath")
# ... and those taken as they are for any command: checks are skipped anyway (pgface's command
# line is no server), colour is click's
_TAKEN = {"--skip-checks": None, "--no-color": False, "--force-color": True}


def _without_djangos_options(args: list[str]) -> tuple[list[str], bool | None]:
    """ARGS less Django's options (_APPLIED with their values, as --settings X or
    --settings=X, and _TAKEN) up to a `--` (after it each is a file name, as Django's parser
    reads it too), and the colour they ask for (None: click's own choice)."""
    kept: list[str] = []
    color: bool | None = None
    rest = iter(args)
    for arg in rest:
        if arg == "--":
            kept += [arg, *rest]
            break
        if arg in _APPLIED:
            next(rest, None)
        elif arg.startswith(tuple(f"{o}=" for o in _APPLIED)):
            pass
        elif arg in _TAKEN:
            color = _TAKEN[arg] if _TAKEN[arg] is not None else color
        else:
            kept.append(arg)
    return kept, color


class PgfaceFailed(CommandError):
    """pgface ran and failed: it said why on stderr already (its `error:` line)."""


def _color(options: dict[str, object]) -> bool | None:
    """click's colour from Django's --no-color and --force-color (None: click decides)."""
    if options.get("no_color"):
        return False
    return True if options.get("force_color") else None


class Command(BaseCommand):
    help = "Run a pgface command (index, search, people ...) on this project's database."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("args", nargs=REMAINDER, help="pgface's own arguments, e.g. index .")

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> Any:
        """Django's parser (`manage.py help pgface` prints it), whose parse_args, which
        call_command uses, takes every argument as pgface's: call_command("pgface",
        "--version", stdout=out) and "--help" were answered by Django's parser itself (Django's
        version on the process's stdout, SystemExit(0), `out` empty), as an argument before
        pgface's subcommand that looks like an option would be. Django's own options come as
        call_command's keywords (stdout=, no_color=), never among these arguments."""
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        defaults = parser.parse_args

        def parse_args(args: Any = None, namespace: Any = None) -> Any:
            parsed = defaults([], namespace)  # Django's defaults (verbosity, ...)
            parsed.args = list(args or [])
            return parsed

        parser.parse_args = parse_args
        return parser

    def run_from_argv(self, argv: list[str]) -> None:
        # Everything after `pgface` is pgface's, --help included. Ends as `pgface` ends: its
        # error line and exit code, a usage error's message and 2; never Django's traceback
        # (BaseCommand.run_from_argv, which prints CommandError cleanly, is not used here).
        self._called_from_command_line = True
        args, color = _without_djangos_options(argv[2:])
        try:
            self.execute(*args, traceback=False, no_color=color is False,
                         force_color=color is True, skip_checks=True, stdout=None, stderr=None)
        except PgfaceFailed as exc:
            sys.exit(exc.returncode)
        except CommandError as exc:
            sys.stderr.write(f"error: {exc}\n")
            sys.exit(exc.returncode)

    def handle(self, *args: str, **options: object) -> None:
        try:
            settings = conf.pgface_settings()
        except (ImproperlyConfigured, PgfaceError) as exc:
            # a mistake in settings.PGFACE (InvalidSettings, a bad alias): one `error:` line,
            # as pgface's own command says it for the same setting, not Django's traceback
            raise CommandError(str(exc), returncode=1) from None
        # What pgface prints goes where the command's output goes: call_command("pgface",
        # ..., stdout=buffer) left the buffer empty and printed to the process's stdout.
        said = _Said(_unrouted(self.stderr._out))
        with _running_for(conf.environment(settings), _unrouted(self.stdout._out), said):
            try:
                code = _pgface_command().main(args=list(args), prog_name="manage.py pgface",
                                              standalone_mode=False, color=_color(options))
            except EXITS as exc:
                code = exc.exit_code
            except USAGE_ERRORS as exc:
                raise CommandError(f"{exc.format_message()} (see manage.py pgface --help)",
                                   returncode=exc.exit_code) from None
            except ABORTS:
                raise PgfaceFailed("aborted", returncode=1) from None
        if code:
            # with its reason: a task that logs the exception of call_command had only "failed"
            raise PgfaceFailed(f"pgface {' '.join(args[:2])} failed (exit code {code})"
                               + (f": {said.error}" if said.error else ""), returncode=code)
