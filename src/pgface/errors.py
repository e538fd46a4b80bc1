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


class ImageError(PgfaceError):
    """A file could not be used as a photo; the message names the file and the reason."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason

    def __reduce__(self) -> tuple:
        # Pickled with its own arguments (a worker process sends it to its pool): the default
        # passes the one message to __init__, which unpickling could not call, and a
        # ProcessPoolExecutor called every job broken, a multiprocessing.Pool hung.
        return type(self), (self.source, self.reason)


# user:password@ in a URL, and password=... in a key=value connection string (quoted or not)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^/\s]*@")
_KEY_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def without_passwords(text: str) -> str:
    """TEXT (a database URL, or a message that quotes one) with every password in it written
    `***`: an operator's PGFACE_DATABASE_URL with its password was echoed by the error that
    refused it, and so into a server's log."""
    return _KEY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))


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
    """A photo that had to contain a face has none."""


class NotFoundError(PgfaceError):
    """A photo, face or person id that does not exist."""


class InvalidInputError(PgfaceError):
    """A value the user gave that pgface cannot use (a name with a NUL, a path too long)."""


class PersonError(PgfaceError):
    """A people operation that cannot be done as asked (a taken name, a face of someone else)."""


class PeopleBusyError(PersonError):
    """Another change to people (a clustering run, most likely) held them longer than a
    change waits; nothing was changed, and asking again once it ends will do."""
