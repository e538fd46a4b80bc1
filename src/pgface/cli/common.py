"""What every command module shares: consoles, the error handler, JSON output, the library."""

from __future__ import annotations

import codecs
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import click
import psycopg
import typer
from pydantic_settings import SettingsError
from rich.console import Console
from rich.markup import escape
from rich.segment import Segment
from rich.text import Text

from pgface import paths
from pgface.config import Settings
from pgface.db.connection import database_error
from pgface.errors import PgfaceError, describe, more_room, out_of_memory, without_passwords
from pgface.library import FROM_PYTHON, Pgface
from pgface.paths import terminal_safe
from pgface.search import MAX_TOP


def shown(text: str) -> str:
    """TEXT (a name, a path, a message that holds them) for a line that uses markup, to show
    as it is: bytes that are not UTF-8 as `\\xNN` (_readable_text: an `error:` line showed
    them as '\\udcff' where `index` showed the same file's name with '\\xff'), control
    characters escaped (terminal_safe), brackets never read as markup."""
    return escape(terminal_safe(_readable_text(text)))


def box_text(bbox: Sequence[float]) -> str:
    """A box in a table, in whole pixels, rounded as its JSON's tenths would be (cut, 1330.9
    was shown as 1330)."""
    return str([round(v) for v in bbox])


def say_error(exc: BaseException) -> None:
    """The one `error:` line of a command that failed (error_line says what)."""
    # no part of a database URL's password, whatever the error quotes (errors.without_passwords);
    # no advice to a Python caller (`db stop` said "from Python: close() this Pgface")
    line = without_passwords(error_line(exc)).replace(FROM_PYTHON, "")
    err.print(f"[red]error:[/red] {shown(line)}", markup=True,
              highlight=False,
              soft_wrap=True)


# what Rich ends a title or cell it cuts with, and pgface a path it shortens (display.py)
ELLIPSIS = "\u2026"


def zero_size(name: str, value: str) -> bool:
    """Whether NAME=VALUE is a terminal size of 0 (COLUMNS=0, LINES=0): none given."""
    return name in ("COLUMNS", "LINES") and value.strip().isdigit() and int(value) == 0


class _ConsoleEnvironment(Mapping[str, str]):
    """os.environ as the consoles read it (live: a test's or a caller's change is seen), but
    for a COLUMNS or LINES of 0, which some CI runners and containers export: Rich took it
    for a width of 0 and printed nothing at all, `error:` and `failed` lines included, exit
    status alone telling (probe cli42). It is no size given, as a terminal that reports 0."""

    def __getitem__(self, key: str) -> str:
        value = os.environ[key]
        if zero_size(key, value):
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(os.environ)

    def __len__(self) -> int:
        return len(os.environ)


class SafeConsole(Console):
    """A console for text that holds names and paths: no markup unless a call asks for it
    (`[/red]` in a person's name made `people list` fail), and control characters escaped
    (the message's own lines kept; names and paths in it are escaped whole where they go in,
    with terminal_safe), and no emoji codes (`bad:x:file.jpg` was printed as `bad❌file.jpg`).
    A line is never broken where the console is 80 columns wide: piped into a log or a file,
    the demo's database URL was cut in two ("...&por" / "t=5432") and so was a summary line
    that a script greps; a terminal wraps a long line itself. Tables (any renderable that is
    not text) still fit the width, their titles wrapped inside it."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("_environ", _ConsoleEnvironment())
        super().__init__(markup=False, emoji=False, **kwargs)
        # Rich fixes the width and height to COLUMNS and LINES as they are when the console
        # is made (at import); read when drawing instead, as the environment is: a program
        # that imported pgface.cli under COLUMNS=80 (pytest-xdist's workers set it) drew
        # every table 80 wide whatever COLUMNS said later.
        self._width, self._height = kwargs.get("width"), kwargs.get("height")

    def print(self, *objects: Any, **kwargs: Any) -> None:
        kwargs.setdefault("soft_wrap", all(isinstance(o, str) for o in objects))
        super().print(*(terminal_safe(o, lines=True) if isinstance(o, str) else o
                        for o in objects), **kwargs)

    def render(self, renderable: Any, options: Any = None) -> Iterator[Segment]:
        """Rich's own mark of a cut title or cell, '…', as '.' where the stream cannot write
        it (one cell, as Rich measured it): under LC_ALL=C it came out as the six characters
        `\\u2026`, and every row of a narrow table pushed past its frame (probe reprobe33).
        Text of pgface's own is escaped before Rich sees it (render_str), so each '…' left
        is Rich's."""
        segments = super().render(renderable, options)
        if writable(ELLIPSIS, self.encoding):
            yield from segments
            return
        for segment in segments:
            yield (Segment(segment.text.replace(ELLIPSIS, "."), segment.style,
                           segment.control) if ELLIPSIS in segment.text else segment)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        """Text a stream that is not UTF-8 cannot write (a name, a path) as the escapes it
        will be written as (escape_what_cannot_be_encoded), so that a table measures them:
        "José" took 4 columns in the table and 7 on the line, and pushed its row's bars."""
        return super().render_str(encodable(text, self.encoding), **kwargs)


out = SafeConsole()
err = SafeConsole(stderr=True)


def writable(text: str, encoding: str | None) -> bool:
    """Whether a stream in ENCODING can write TEXT as it is."""
    try:
        text.encode(encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def encodable(text: str, encoding: str | None) -> str:
    """TEXT with what ENCODING cannot encode as backslash escapes (`Jos\\xe9`)."""
    if writable(text, encoding):
        return text
    try:
        return text.encode(encoding or "utf-8", "backslashreplace").decode(encoding or "utf-8")
    except LookupError:
        return text.encode("ascii", "backslashreplace").decode("ascii")


def escape_what_cannot_be_encoded() -> None:
    """stdout and stderr in an encoding that is not UTF-8 (LC_ALL=C with PYTHONUTF8=0,
    PYTHONIOENCODING=ascii) write what it cannot encode, a person's name, a path, as
    backslash escapes (`Jos\\xe9`). Strict, `people list` with a "José" in it, or a path
    shortened with an ellipsis, was `error: unexpected UnicodeEncodeError` (probe clidocs19).
    pgface's own characters fall back to ASCII where they cannot be written (`...`)."""
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None) or "utf-8"
        try:
            utf8 = codecs.lookup(encoding).name == "utf-8"
        except LookupError:
            utf8 = False
        if not utf8 and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
F = TypeVar("F", bound=Callable[..., Any])

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (stable, see docs/cli.md).")]
TopOption = Annotated[int | None, typer.Option(
    "--top", "-k", min=1, max=MAX_TOP, show_default=False,
    help="Matches per face (default: PGFACE_TOP_K, else 10).")]


def number_from(low: float, high: float) -> Callable[[str], float]:
    """A parser for an option that takes a number from LOW to HIGH. NaN is refused as not a
    number: typer's own range check said NaN was not "less than or equal to 1"."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise typer.BadParameter(f"{text!r} is not a number") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise typer.BadParameter(f"{text} is not a number from {low:g} to {high:g}")
        return value
    return parse


COSINE = {"parser": number_from(-1.0, 1.0), "metavar": "FLOAT [-1.0<=x<=1.0]"}
UNIT = {"parser": number_from(0.0, 1.0), "metavar": "FLOAT [0.0<=x<=1.0]"}
ThresholdOption = Annotated[float | None, typer.Option(
    **COSINE,
    help="Minimum cosine similarity (default: the match threshold calibrated on LFW).")]
MinQualityOption = Annotated[float | None, typer.Option(
    **UNIT, help="Quality floor: faces scoring below it are left out (not searched for, "
                           "compared nor grouped; default: PGFACE_MIN_QUALITY, 0.1; "
                           "docs/benchmarks-quality.md).")]


class CutShort(Exception):
    """A run's failure after it had stored part of its work: said with what it keeps."""

    def __init__(self, failure: BaseException, kept: str) -> None:
        super().__init__(f"{failure}; {kept}")
        self.failure, self.kept = failure, kept


def error_line(exc: BaseException) -> str:
    """What went wrong, for the `error:` line: the message of a domain error as it is; for the
    rest (database, settings, files), a sentence that says what to do where there is one."""
    if isinstance(exc, CutShort):
        return f"{error_line(exc.failure)}; {exc.kept}"
    first = (str(exc).strip().splitlines() or [""])[0]
    if isinstance(exc, PgfaceError):  # settings too (config.InvalidSettings)
        return str(exc)
    if isinstance(exc, SettingsError):
        return f"a PGFACE_ setting cannot be read: {first}"
    if isinstance(exc, psycopg.Error):  # as the Python API says it (database_error)
        return str(database_error(exc))
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    if out_of_memory(exc):  # `serve` loading its models under `ulimit -v` called it a bug
        return f"out of memory ({describe(exc)}): {more_room(exc)}"
    return f"unexpected {type(exc).__name__}: {first} (a bug; PGFACE_DEBUG=1 shows where)"


class Terminated(KeyboardInterrupt):
    """SIGTERM during a run: it stops as Ctrl-C stops it (its cleanup runs)."""


RUN_STOPPED = ("what was stored until then is kept, a batch cut short rolled back; run it "
               "again to go on")


@contextmanager
def stopped_by_sigterm_as_by_ctrl_c(
        said: str | Callable[[], str] = RUN_STOPPED) -> Iterator[None]:
    """A run stopped by SIGTERM (systemd, `kill`, a container stopping) winds down as Ctrl-C
    does: a batch cut short rolls back, indexing processes are stopped and waited for, and
    the command exits 143 (Ctrl-C: 130), saying SAID (called then, where it is a function).
    Killed outright by the signal, the processes were left to notice on their own, and
    Python's resource tracker warned of "leaked semaphore objects"; a backup's pg_dump went on
    and left its partial file for good."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only (a test runner's thread, say)
        return

    def terminated(signum: int, frame: object) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    except KeyboardInterrupt as exc:  # Ctrl-C said nothing: its user never learnt a run goes on
        # what the interruption says of itself, where the work it stopped knows better
        stopped(exc, f": {getattr(exc, 'said', None) or (said() if callable(said) else said)}")
    except typer.Exit:
        raise  # an interruption said already, within (its Exit holds it as its context)
    except Exception as exc:  # its clean-up's failure (interrupt_behind)
        interrupt = interrupt_behind(exc)
        if interrupt is None:
            raise
        stopped(interrupt, f": {said() if callable(said) else said}")
    finally:
        signal.signal(signal.SIGTERM, previous)


def stopped(interrupt: KeyboardInterrupt, said: str = "") -> NoReturn:
    """Say what stopped the command, SIGTERM (exit 143) or Ctrl-C (130), with SAID."""
    if isinstance(interrupt, Terminated):
        err.print(f"stopped (SIGTERM){said}", highlight=False)
        raise typer.Exit(143) from None
    err.print(f"stopped (Ctrl-C){said}", highlight=False)
    raise typer.Exit(130) from None


def handle_errors(func: F) -> F:
    """Any error becomes one `error:` line on stderr and exit code 1, never a traceback
    (PGFACE_DEBUG=1 lets it through, traceback and all). A Ctrl-C that the command does not
    say itself (index, enrol, backup: what is kept) is `stopped (Ctrl-C)`, exit 130: typer
    turned it into a silent 130, and `search` or `compare` stopped with no word (probe
    cli31)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.BadParameter, click.ClickException):
            raise  # typer's own ways out: exit codes, usage errors, a declined prompt
        except KeyboardInterrupt as exc:
            stopped(exc)
        except Exception as exc:
            if os.environ.get("PGFACE_DEBUG"):
                raise
            interrupt = interrupt_behind(exc)
            if interrupt is not None:
                stopped(interrupt)
            say_error(exc)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def interrupt_behind(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C (or SIGTERM: Terminated) EXC was raised while handling, if any: a query it
    cut short left its connection busy, and the clean-up's next statement failed "another
    command is already in progress", said as the database's failure where the user had
    pressed Ctrl-C (a Ctrl-C 0.7 s into `pgface stats` on a busy machine, as it opened the
    library); a SIGTERM's so was said as a Ctrl-C's (probe reprobe35)."""
    seen: set[int] = set()
    chain: list[BaseException | None] = [exc]
    while chain:
        link = chain.pop()
        if link is None or id(link) in seen:
            continue
        if isinstance(link, KeyboardInterrupt):
            return link
        seen.add(id(link))
        chain += [link.__cause__, link.__context__]
    return None


def open_library() -> Pgface:
    return Pgface(Settings())


class OutputLost(PgfaceError):
    """Standard output could not take the command's report (closed, a full disk): said as
    stdout's failure, where `error: No space left on device` had an operator look at the
    library's disk, and the run's work is kept. REASON: the system's word for it."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class GuardedStdout:
    """sys.stdout while the command line runs (guarded_stdout): every write to it, a table,
    JSON, help, the version, fails as stdout's failure (OutputLost), whoever writes it. A
    table on a full disk said only `error: No space left on device`, where --json said it was
    standard output (probe cli31); --help and --version were a traceback. A reader that stops
    early (`| head`, `| grep -q`) ends the output quietly: what follows goes to /dev/null and
    the command ends as it would have, with its own exit status (a table exited 1, rich's
    broken-pipe exit, where JSON exited 0)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except OSError as exc:
            self._failed(exc)
            return len(text)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except OSError as exc:
            self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        if isinstance(exc, BrokenPipeError):
            try:
                fd = self.stream.fileno()
            except (AttributeError, OSError, ValueError):
                return  # a stream of no file: nothing held for the exit to write
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, fd)
            finally:
                os.close(devnull)
            self.stream.flush()  # what it held goes there too, not to an error at exit
            return
        reason = exc.strerror or str(exc)
        raise OutputLost(f"cannot write the report to standard output ({reason}); what the "
                         f"command did before it is kept", reason) from exc


class GuardedStderr(GuardedStdout):
    """sys.stderr while the command line runs: messages (progress, failed files, notices)
    that it cannot take are lost, and the command goes on. `pgface index DIR 2>&1 | head -1`
    (or `| grep -q '^failed'`) stopped the run after its first batch, exit 1, its other
    files neither stored nor remembered as failed, and `people enrol` enrolled no one: the
    broken pipe on stderr was the command's error (probe scripting). Where it fails, what
    follows goes to /dev/null, as for a reader of stdout that stops early."""

    def _failed(self, exc: OSError) -> None:
        try:
            fd = self.stream.fileno()
        except (AttributeError, OSError, ValueError):
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)
        with suppress(OSError):  # what it held goes there too
            self.stream.flush()


@contextmanager
def guarded_stdout() -> Iterator[None]:
    """sys.stdout as GuardedStdout, and sys.stderr as GuardedStderr, while the command line
    runs; what a command wrote and did not flush is flushed inside it (else a full disk was
    Python's own message at exit)."""
    stream, errors = sys.stdout, sys.stderr
    if stream is None or isinstance(stream, GuardedStdout):
        yield
        return
    sys.stdout = GuardedStdout(stream)
    if errors is not None:  # `2>&-`: nothing is written there
        sys.stderr = GuardedStderr(errors)
    try:
        try:
            yield
        finally:
            sys.stdout.flush()
            if sys.stderr is not None:
                sys.stderr.flush()
    finally:
        sys.stdout, sys.stderr = stream, errors


def stdout_closed() -> OutputLost:
    return OutputLost("standard output is closed (`>&-`): pgface writes its report there; "
                      "send it to a file or to /dev/null instead")


def print_json(value: Any) -> None:
    """VALUE as JSON on stdout, every string in it readable (`_readable_text`), written out
    now: a stdout that cannot take it is the command's error (OutputLost), said as such."""
    if sys.stdout is None:  # fd 1 closed before Python started
        raise stdout_closed()
    sys.stdout.write(json.dumps(_readable_values(value), indent=2, default=str) + "\n")
    sys.stdout.flush()  # a failure is said as stdout's (GuardedStdout)


def _readable_values(value: Any) -> Any:
    if isinstance(value, str):
        return _readable_text(value)
    if isinstance(value, dict):
        return {_readable_values(k): _readable_values(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_readable_values(v) for v in value]
    return value


def _readable_text(text: str) -> str:
    """Text as docs/cli.md promises it: a path's bytes that are not UTF-8 (Python holds them
    as lone surrogates, which JSON writes as "\\udcff" and strict parsers refuse) as `\\xNN`,
    the form `index --json` and `remove` use; any other lone surrogate as `\\udNNN`."""
    if not any("\ud800" <= c <= "\udfff" for c in text):
        return text
    try:
        return paths.readable(text)
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def text_argument(value: str) -> str:
    """A name or other text given on the command line, as its bytes say it. Where the locale
    is ASCII (LC_ALL=C with PYTHONUTF8=0) Python holds every byte past ASCII of the command
    line as a lone surrogate ('Zo\\udcc3\\udcab'): "Zoë" named in a UTF-8 terminal could not
    be shown, renamed to nor looked for (probe cli31). Bytes that are UTF-8 are read so; others
    are refused here, as bytes that are no text (no name can hold them). Paths keep their
    bytes as they are (path_argument): a file's name is its bytes."""
    if not any("\udc80" <= c <= "\udcff" for c in value):
        return value
    raw = os.fsencode(value)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise typer.BadParameter(
            f"the bytes '{raw.decode('utf-8', 'backslashreplace')}' are not UTF-8 text, "
            f"which a name is") from None


TEXT = {"parser": text_argument}


def pattern_argument(value: str) -> str:
    """A pattern of file and folder names (`--exclude`) as given, its bytes kept as a path's
    are (bytes that are not UTF-8 as os.fsdecode's surrogates): it matches names, which are
    bytes, so `--exclude "$(printf 'caf\\xe9*')"` leaves out the folder an old Windows zip
    named in Latin-1, as PGFACE_INDEX_EXCLUDE and Pgface.index do; read by text_argument, as
    a name, it was a usage error (probe hunt-i18n39). index.as_matched reads a pattern and
    the names it matches as the same text, whatever the locale."""
    return value


PATTERN = {"parser": pattern_argument}


def path_argument(value: str) -> Path:
    """A path argument as given; an empty one is refused. Read as a Path, "" is ".", so
    `pgface remove "$FOLDER"` with FOLDER unset forgot every photo under the current folder."""
    if value == "":
        raise typer.BadParameter("an empty path: name a file or folder (. for the current one)")
    return Path(value)
