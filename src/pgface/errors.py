"""Domain errors. Interfaces turn these into clean messages and exit codes or HTTP statuses."""

from __future__ import annotations

import errno
import os
import re
import resource


class PgfaceError(Exception):
    """Base of every error pgface raises on purpose."""


class ModelPackError(PgfaceError):
    """A model pack is missing, incomplete or corrupt."""


class OpenFilesError(PgfaceError):
    """The process opened as many files as its limit (`ulimit -n`) lets it: no photo's fault,
    nor the pack's."""


def shown_name(source: str) -> str:
    """A file's name as text to print (pgface.paths.readable gives it so): its bytes (the
    file system's encoding) that are not UTF-8, held by Python as lone surrogates
    (os.fsdecode), as `\\xNN`. A message naming such a file raised UnicodeEncodeError where
    it was printed to a UTF-8 stream (probe searchface). Text the file system's encoding cannot
    hold (a name decoded from UTF-8 in a message, where the locale is ASCII) is its UTF-8 (it
    was an "unexpected UnicodeEncodeError", probe cli31); a surrogate of no file name's byte
    is an escape too."""
    try:
        raw = os.fsencode(source)
    except UnicodeEncodeError:
        try:
            raw = source.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = source.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")


class ImageError(PgfaceError):
    """A file could not be used as a photo; the message names the file and the reason."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{shown_name(source)}: {reason}")
        self.source = source  # as given: the file's own name, to read or remember it by
        self.reason = reason

    def __reduce__(self) -> tuple:
        # Pickled with its own arguments (a worker process sends it to its pool): the default
        # passes the one message to __init__, which unpickling could not call, and a
        # ProcessPoolExecutor called every job broken, a multiprocessing.Pool hung.
        return type(self), (self.source, self.reason)


class ContentError(ImageError):
    """An ImageError of the file's content: its bytes are no photo pgface reads (not an image,
    corrupt or truncated, empty, over the byte or pixel limit, a format it does not read), so
    the same bytes fail the same way again. Not a failure of the moment (permission denied, a
    read timeout, a file gone or changed while read, memory): the indexer remembers such a
    file with its stamp and does not read it again while it is unchanged (index.py).

    info: the stat of the file, taken before its size was checked, where the check of the
    size failed it (read_file_stat)."""

    def __init__(self, source: str, reason: str, info: os.stat_result | None = None) -> None:
        super().__init__(source, reason)
        self.info = info

    def __reduce__(self) -> tuple:  # with its stat too (ImageError's passed two arguments)
        return type(self), (self.source, self.reason, self.info)


# user:password@ in a URL, and password=... in a key=value connection string (quoted or not)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^/\s]*@")
_KEY_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def without_passwords(text: str) -> str:
    """TEXT (a database URL, or a message that quotes one) with every password in it written
    `***`: an operator's PGFACE_DATABASE_URL with its password was echoed by the error that
    refused it, and so into a server's log. So is every part of the password of each database
    URL this process was given (remember_password_of), wherever it shows: libpq quotes the
    part of a URL it could not read, or a host it could not find, which may be part of it."""
    secrets = {password_text(url) for url in _URL_IN_TEXT.findall(text)} | _REMEMBERED
    text = _KEY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = without_secret(text, secret)
    return text


# The start of a URL's user information, up to its password (scheme://user:)
_URL_USER = re.compile(r"[a-z][a-z0-9+.-]*://[^:/@\s]*:", re.IGNORECASE)
# What libpq splits a URL at: where the text it quotes from one begins and ends
_URL_DELIMITERS = re.compile(r"[@/:?#&=,\s]+")
_URL_IN_TEXT = re.compile(r"[a-z][a-z0-9+.-]*://[^\s'\"]+", re.IGNORECASE)
# The passwords (as written in their URLs) of the database URLs this process was given
_REMEMBERED: set[str] = set()


def password_text(url: str) -> str | None:
    """The password of database URL URL as written in it (None where it has none): between
    `scheme://user:` and the @ that ends the user information. In a URL libpq cannot split
    cleanly, a password written raw (not percent-encoded) with an @, a / or a % in it, that
    is everything up to the LAST @ of the URL: libpq took `p@ssword` up to its first @ and
    quoted the rest of it with the host (`invalid percent-encoded token: "ssword%@host"`),
    and `ab/cd@host` as host `app`, port `ab` and database `cd@host` (probe pgint31)."""
    start = _URL_USER.match(url.strip())
    if start is None:
        return None
    rest = url.strip()[start.end():]
    first = rest.find("@")
    if first < 0:
        return None  # no user information: the colon was a port's
    slash = rest.find("/")
    if 0 <= slash < first and re.fullmatch(r"\d*(,[^@/]*)?", rest[:slash]):
        return None  # host:port/database, an @ in the database's name or the query
    # to the last @ before the query: README's own `p@ss/w%rd` was taken up to its first @
    # where a / followed it (probe docs31); one @ is a URL split cleanly. The query begins
    # after the first @: libpq reads a ? or # before it as the password's, where ending the
    # URL there made the host and database the password's, all masked (probe reprobe33)
    query = re.search(r"[?#]", rest[first:])
    return rest[:rest[:first + query.start() if query else len(rest)].rfind("@")]


def remember_password_of(url: str) -> None:
    """Have without_passwords mask the password of database URL URL wherever it shows."""
    secret = password_text(url) if isinstance(url, str) else None
    if secret:
        _REMEMBERED.add(secret)


# Where a message quotes what it was given: a quoted token, a URL (libpq's "invalid
# percent-encoded token", a host it could not find, pgface's "(got '...')")
_QUOTED = re.compile(r"""'[^'\n]*'|"[^"\n]*"|[a-z][a-z0-9+.-]*://[^\s'"]+""", re.IGNORECASE)


def without_secret(text: str, secret: str) -> str:
    """TEXT with SECRET (a password as written in a URL) written `***` where TEXT quotes
    what it was given (a quoted token, a URL), and every part of it libpq may quote on its
    own: the pieces between the characters it splits a URL at (one of two or three characters
    alone as a word, not inside one; a quoted token that is one, of any length). Elsewhere a
    password that is a word is that word: masked anywhere, "database" made messages read
    "cannot connect to the ***" (probe reprobe32)."""
    from urllib.parse import unquote

    if not secret:
        return text
    pieces = {secret, unquote(secret), *_URL_DELIMITERS.split(secret),
              *_URL_DELIMITERS.split(unquote(secret))} - {""}

    def masked(quoted: re.Match[str]) -> str:
        part = quoted[0]
        if part[0] in "'\"" and part[1:-1] in pieces:
            return f"{part[0]}***{part[0]}"
        for piece in sorted((p for p in pieces if len(p) > 1), key=len, reverse=True):
            if len(piece) > 3:
                part = part.replace(piece, "***")
            else:
                part = re.sub(rf"(?<![A-Za-z0-9]){re.escape(piece)}(?![A-Za-z0-9])", "***",
                              part)
        return part

    return _QUOTED.sub(masked, text)


def os_reason(exc: OSError) -> str:
    """An OSError's reason as a message says it in parentheses: "permission denied"."""
    return exc.strerror.lower() if exc.strerror else str(exc)


def kind_of(value: object) -> str:
    """What a value of the wrong type is, for a message: "None", "an int", "a BytesIO" ("a
    NoneType" and "a int" read as slips)."""
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def describe(exc: BaseException) -> str:
    """An unexpected exception as one line: its type and its message (OpenCV's span lines)."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def stopped_by_ctrl_c(exc: BaseException) -> bool:
    """Whether a KeyboardInterrupt is behind EXC: a Ctrl-C while ONNX Runtime or OpenVINO
    imports its compiled module comes out as "ImportError: initialization failed" (pybind11
    turns whatever its module's start raised into that), which was the pack's fault, exit 1,
    or while pgface starts, a traceback (probe reprobe26, the last stop's CI)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


class OutOfMemoryError(PgfaceError):
    """The models ran out of memory: the machine's (or its limit's) fault, not a photo's."""


# How the inference runtimes say they could not allocate (OpenVINO "can't alloc", C++'s
# std::bad_alloc, ONNX Runtime "Failed to allocate memory", OpenCV "Insufficient memory").
_NO_MEMORY_SAID = ("can't alloc", "bad_alloc", "bad allocation", "failed to allocate",
                   "cannot allocate memory", "insufficient memory", "out of memory")
# How a thread or a library that found no address space to map is said where the process's
# address space is capped (ulimit -v): Python's "can't start new thread", OpenVINO's
# "Resource temporarily unavailable" (EAGAIN from starting a thread while it compiles; it was
# "cannot analyse image", the photo blamed) and the loader's "failed to map segment". Not
# from an OSError: there EAGAIN is I/O's (a pipe, a network file), no memory's.
_NO_ROOM_SAID = ("can't start new thread", "resource temporarily unavailable",
                 "failed to map segment")


def out_of_memory(exc: BaseException) -> bool:
    """Whether an exception says memory ran out (MemoryError, or a runtime's own words)."""
    if isinstance(exc, MemoryError):
        return True
    said = str(exc).lower()
    return any(words in said for words in _NO_MEMORY_SAID) or (
        not isinstance(exc, OSError) and any(words in said for words in _NO_ROOM_SAID))


INDEXING_MEMORY = "or run fewer indexing processes (--processes) or threads (PGFACE_THREADS)"
# a search, an upload: fewer photos analysed at once
ANALYSIS_MEMORY = ("or analyse fewer photos at once (a server's PGFACE_API_INFERENCE_WORKERS, or "
                   "fewer searches in parallel)")


def no_memory_while(doing: str, exc: BaseException, fewer: str = INDEXING_MEMORY
                    ) -> OutOfMemoryError:
    """The error that ends a run (or a request) whose models ran out of memory."""
    return OutOfMemoryError(f"out of memory {doing} ({describe(exc)}): {more_room(exc)}, "
                            f"{fewer}")


# Open files left below which a failure to load a library or open a file is the limit's
# (`ulimit -n`): OpenVINO says only "Cannot load library" or "Can not open file", which was
# the pack's fault ("cannot be loaded as the pack's SCRFD detector") or the photo's.
FILES_MARGIN = 8


def files_run_short() -> OpenFilesError | None:
    """Why nothing more could be opened, where the process has (nearly) all the files its
    limit lets it open; None otherwise."""
    limit, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if limit == resource.RLIM_INFINITY:
        return None
    try:
        used = len(os.listdir("/proc/self/fd")) - 1  # less the listing's own
    except OSError as exc:
        if exc.errno != errno.EMFILE:
            return None
        used = limit  # not even the listing could be opened
    if used < limit - FILES_MARGIN:
        return None
    return OpenFilesError(f"too many open files ({used} of the {limit} this process may open): "
                          f"raise the limit (`ulimit -n`)")


def machine_short(exc: BaseException, doing: str, fewer: str = INDEXING_MEMORY
                  ) -> PgfaceError | None:
    """The error to raise where EXC, met analysing a photo, is the machine's and not the
    photo's: memory run out (OutOfMemoryError; of a decode's OutOfMemoryError its cause, said
    once) or the open files' limit (OpenFilesError); None where it may be the photo's."""
    cause = exc.__cause__ if isinstance(exc, OutOfMemoryError) and exc.__cause__ else exc
    if out_of_memory(cause):
        return no_memory_while(doing, cause, fewer)
    short = files_run_short()
    return OpenFilesError(f"{short}; {doing}") if short else None


def more_room(exc: BaseException) -> str:
    """What to give pgface: memory, and threads where a thread could not start (a process
    limit, `ulimit -u`, says so in the same words as memory run out)."""
    said = str(exc).lower()
    threads = "can't start new thread" in said or "resource temporarily unavailable" in said
    return "give pgface more memory" + (" or more threads (`ulimit -u`)" if threads else "")


class NoFaceError(PgfaceError):
    """A photo that had to contain a face has none; `source` names it (as the message does:
    which of compare's two photos it was could be read from the message alone, probe
    pyapi39), None where it is not known."""

    def __init__(self, message: str, source: str | None = None) -> None:
        super().__init__(message)
        self.source = source

    def __reduce__(self) -> tuple:  # pickled with both arguments, as ImageError
        return type(self), (str(self), self.source)


class NotFoundError(PgfaceError):
    """A photo, face or person that does not exist; `missing` says which ("person", "face",
    "photo"), for a client to tell a face gone meanwhile from its person gone (the web page
    said a person still there "was merged or deleted": probe concurrent61)."""

    def __init__(self, message: str, missing: str | None = None) -> None:
        super().__init__(message)
        self.missing = missing

    @property
    def details(self) -> dict | None:  # the API's error envelope adds them (api.errors)
        return {"missing": self.missing} if self.missing else None

    def __reduce__(self) -> tuple:  # pickled with both arguments (an indexing process's)
        return type(self), (str(self), self.missing)


class InterpreterExiting(PgfaceError):
    """A face analysis asked for while the interpreter exits (a daemon thread's, after the
    main thread returned): not started (models.exiting says why)."""


class InvalidInputError(PgfaceError):
    """A value the user gave that pgface cannot use (a name with a NUL, a path too long)."""


class InvalidTypeError(InvalidInputError, TypeError):
    """An argument of a type pgface does not take (a dict for its Settings): a PgfaceError, as
    every error pgface raises on purpose is, and a TypeError, as Python's own would be."""


class PersonError(PgfaceError):
    """A people operation that cannot be done as asked (a taken name, a face of someone else)."""


class PeopleBusyError(PersonError):
    """Another change to people (a clustering run, most likely) held them longer than a
    change waits; nothing was changed, and asking again once it ends will do."""


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """'1 face', '2 faces', '0 photos': a count with its noun, plural NOUN + 's' unless given
    (the command line's and the server's log lines alike)."""
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"
