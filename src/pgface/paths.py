"""File paths as pgface keeps them: exact bytes for the file system, readable text for people.

A file name on Linux is bytes; Python hands over the bytes that are not UTF-8 as lone
surrogates (os.fsdecode), which neither PostgreSQL text nor JSON can hold. pgface stores the
bytes themselves (lossless, the key) beside a readable form where each such byte is `\\xNN`.
"""

from __future__ import annotations

import io
import os
import re
import stat
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

from pgface.errors import InvalidInputError, kind_of, os_reason, shown_name

PathLike = str | os.PathLike[str]
# What the Python API's path arguments take: one path, or any number of them.
Paths = PathLike | bytes | Iterable[PathLike | bytes]


def path_list(paths: Paths) -> list[PathLike]:
    """PATHS as a list of paths: one path given alone is a list of one, a bytes file name is
    decoded as the file system does. Without this a string was taken as a sequence of
    one-character paths, and `Pgface.remove("/photos/a.jpg")` forgot every photo under "/"."""
    if isinstance(paths, str | bytes | os.PathLike):
        paths = [paths]
    elif isinstance(paths, io.IOBase) or not isinstance(paths, Iterable):
        # a file object was read line by line as paths, each with its "\n"; None or a
        # number was a TypeError from deep inside
        raise InvalidInputError(f"paths: give a path or a list of paths, not "
                                f"{kind_of(paths)}")
    # a bytes file name, or a PathLike whose __fspath__ gives bytes (pathlib's TypeError from
    # deep inside: probe apiclient), decoded as the file system does
    listed = [os.fsdecode(p) if isinstance(p, bytes) or (
        isinstance(p, os.PathLike) and isinstance(os.fspath(p), bytes)) else p for p in paths]
    for p in listed:
        if not isinstance(p, str | os.PathLike):
            raise InvalidInputError(f"paths: {p!r} is {kind_of(p)}, not a path" if p is not None
                                    else "paths: None is not a path")
    if any(isinstance(p, str) and not p for p in listed):
        # taken as a path, "" is the current folder: remove("") forgot every photo under it
        raise InvalidInputError("an empty path: name a file or folder ('.' for the current "
                                "one)")
    if nul := next((p for p in listed if b"\x00" in os.fsencode(p)), None):
        raise InvalidInputError(f"{os.fsdecode(nul)!r}: a path with a NUL byte, which no file "
                                f"name has")
    return listed


def one_path(path: PathLike | bytes, what: str) -> PathLike:
    """PATH, one path checked as path_list checks each: `enrol("")` enrolled the current
    folder, `enrol(None)` was a TypeError from os.fspath."""
    if not isinstance(path, str | bytes | os.PathLike):
        raise InvalidInputError(f"{what}: give a path, not {kind_of(path)}")
    return path_list(path)[0]


def expand(path: PathLike) -> Path:
    """`~` expanded and made absolute (from the current folder); symlinks are kept."""
    # fsdecode: a PathLike whose __fspath__ gives bytes was pathlib's TypeError (apiclient)
    given = os.path.expanduser(os.fsdecode(os.fspath(path)))
    try:
        return Path(os.path.abspath(given))
    except OSError as exc:  # the current folder deleted (a cron job's, cleaned up under it)
        raise InvalidInputError(relative_to_no_folder(given, exc)) from None


def relative_to_no_folder(path: str, exc: OSError) -> str:
    """What to say of a relative PATH where the current folder cannot be read: every command
    given one said "error: No such file or directory", naming nothing (probe cron38)."""
    return (f"{shown_name(path)}: relative, and the current folder cannot be read "
            f"({os_reason(exc)}): give the path from / or run pgface from a folder that is "
            f"there")


def canonical(path: PathLike) -> Path:
    """The path as the indexer stores it: expanded, symlinks resolved (as far as they exist).

    A link loop stays as named (reading it then fails, ELOOP, naming it): Path.resolve raised
    RuntimeError before Python 3.13, and a loop among a run's files stopped the whole run."""
    return Path(os.path.realpath(expand(path)))


def other_unicode_forms(path: PathLike) -> dict[str, Path]:
    """PATH's name in Unicode's other forms, by form ("NFC", "NFD"), where one differs: a Mac
    names files decomposed (NFD), a keyboard types them composed, and on Linux those are two
    names. Its bytes read as UTF-8, those that are not kept as they are."""
    raw = os.fsencode(path)
    text = raw.decode("utf-8", "surrogateescape")
    forms = {form: unicodedata.normalize(form, text).encode("utf-8", "surrogateescape")
             for form in ("NFC", "NFD")}
    return {form: from_bytes(other) for form, other in forms.items() if other != raw}


def link_place(path: PathLike) -> Path:
    """Where a folder given through links is recorded (linked_folders): a link as it stands,
    its folder's real path and its own name, however that folder was spelt; a folder under a
    link as given, expanded (resolved, it would be the place it reaches now)."""
    given = expand(path)
    return canonical(given.parent) / given.name if os.path.islink(given) else given


# The kernel's pseudo file systems: no photos there, and /proc's links of each process (its
# cwd, its root) lead on to the whole machine: a link to /proc in a library walked every
# folder the processes had open and indexed them (probe hostile20).
KERNEL_FOLDERS = ("/proc", "/sys", "/dev")


def in_kernel_folder(real: str | bytes) -> bool:
    """Whether the resolved path REAL is in one of KERNEL_FOLDERS, which indexing never walks
    nor reads (/dev/shm aside: a memory file system, which may hold anything)."""
    real = os.fsdecode(real)
    if real == "/dev/shm" or real.startswith("/dev/shm/"):
        return False
    return any(real == top or real.startswith(top + "/") for top in KERNEL_FOLDERS)


def first_link_inside(folder: PathLike, looked_at: int = 50_000) -> Path | None:
    """The first symlink found under FOLDER (its links not followed) that a photo could have
    been indexed through: not broken, nor leading into KERNEL_FOLDERS (`remove`'s note named
    `-> /proc/5921`, its own process, for a link to /proc/self: probe docsrun). Looks at no
    more than LOOKED_AT entries; None where there is none (or the folder cannot be read)."""
    seen = 0
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in [*dirs, *files]:
            link = os.path.join(root, name)
            if (os.path.islink(link) and os.path.exists(link)
                    and not in_kernel_folder(os.path.realpath(link))):
                return Path(link)
            seen += 1
            if seen >= looked_at:
                return None
    return None


def to_bytes(path: PathLike) -> bytes:
    """The file name's exact bytes."""
    return os.fsencode(os.fspath(path))


def readable(path: PathLike | bytes) -> str:
    """Printable text for any path: bytes that are not UTF-8 become `\\xNN` (errors.shown_name,
    which messages naming a file use too)."""
    name = path if isinstance(path, bytes) else os.fspath(path)
    if isinstance(name, bytes):
        return name.decode("utf-8", "backslashreplace")
    return shown_name(name)


# An escape readable writes: a backslash, `x` and the byte's two lowercase hex digits, 80 to
# ff (a byte below 80 is ASCII, UTF-8 itself, never escaped).
_BYTE_ESCAPE = re.compile(rb"\\x([89a-f][0-9a-f])")


def shown_bytes(text: str) -> bytes | None:
    """The bytes of the name that readable shows as TEXT, each `\\xNN` there read as the byte
    that is not UTF-8 it stands for; None where TEXT holds no such escape, or is no name's
    readable form (`\\xc3\\xa9`: those bytes are UTF-8, shown as the letter itself). A `\\xNN`
    that is a name's own text (a backslash, "xe9") is read as the byte all the same (store._under
    matches the text as a whole too)."""
    try:
        typed = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: a name's bytes already (os.fsdecode)
        return None
    raw = _BYTE_ESCAPE.sub(lambda m: bytes([int(m[1], 16)]), typed)
    return raw if raw != typed and readable(raw) == text else None


class NamedFile:
    """A result that names a photo's file (Match, StoredFace, PersonFace, PersonPhoto): its
    `path` is text to print and to give back to pgface, in which a name's bytes that are not
    UTF-8 are shown as `\\xNN`; its `file` is the Path that open() takes, from the name's
    exact bytes as stored (`with_name_bytes`). open("caf\\xe9.jpg") of a name that is not
    UTF-8 found no file; and the text alone cannot say which of `amb\\xe9.jpg` (a backslash)
    and b"amb\\xe9.jpg" it shows, nor a name holding both (probe searchface)."""

    path: str

    @property
    def file(self) -> Path:
        """The photo's file, as a Path that open() takes (os.fsdecode of its exact name)."""
        raw = self.__dict__.get("_name_bytes")
        if raw is not None:
            return Path(os.fsdecode(raw))
        # made without its bytes (a photo with no path left, shown at the text last known;
        # dataclasses.replace; a result built by hand): the text's own name where a file has
        # it, else the bytes its escapes stand for. Not that file for a photo `missing`: its
        # file is gone, and a file there under the text is another photo's (remove(file)
        # forgot that one, probe reprobe34)
        shown = shown_bytes(self.path)
        if shown is None or (os.path.lexists(self.path)
                             and not getattr(self, "missing", False)):
            return Path(self.path)
        return Path(os.fsdecode(shown))


NamedResult = TypeVar("NamedResult", bound=NamedFile)


def with_name_bytes(result: NamedResult, raw: bytes | None) -> NamedResult:
    """RESULT, its file known by RAW, its name's exact bytes (None: unknown, a photo whose
    every path is gone, shown at the text last known). Kept beside the dataclass's fields,
    not among them: asdict, to_dict and JSON give `path`, the text, as before."""
    if raw is not None:
        object.__setattr__(result, "_name_bytes", bytes(raw))
    return result


def refused_text(text: str) -> str:
    """TEXT as an error refusing it quotes it: bytes that are not UTF-8, and control
    characters, as \\xNN (a person's or a key's name; a lone surrogate of no file name
    escaped too: readable does)."""
    shown = readable(text)
    return "".join(f"\\x{ord(c):02x}" if unicodedata.category(c) == "Cc" else c for c in shown)


_ESCAPED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Format characters (Unicode's category Cf) are written as escapes: the bidirectional
# embeddings, overrides and isolates, which reorder what follows on the line
# ("photo\u202egpj.exe" shows as "photoexe.jpg"), the direction marks LRM, RLM and ALM, which
# reorder the characters around them, and the invisible ones (zero-width space, word joiner,
# BOM, soft hyphen, invisible operators, tags); so are the characters that show as nothing
# though they are letters or marks (the combining grapheme joiner, the Hangul fillers, Khmer's
# inherent vowels): "d\u200b.jpg" and "d\u2062.jpg" showed as "d.jpg", another file's name
# (probes hostile56, reprobe57). The zero-width joiners stay, and the variation selectors, as
# scripts and emoji are written with them.
_KEPT_FORMAT = frozenset("\u200c\u200d")
_BLANK = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u3164\uffa0")


def _unseen(c: str) -> bool:
    """Whether C is a character a terminal shows as nothing, or one that moves others."""
    return c in _BLANK or (unicodedata.category(c) == "Cf" and c not in _KEPT_FORMAT)


def _shows_as_is(text: str) -> bool:
    """Whether a terminal shows TEXT as it is: nothing in it to escape (the quick answer for
    nearly every name)."""
    return text.isprintable() and _BLANK.isdisjoint(text)


def terminal_safe(text: str, lines: bool = False) -> str:
    """TEXT as a terminal shows it unchanged: control characters (an ESC that would start a
    colour or move the cursor, a newline that would split a failure's line; a file name may
    hold any of them) written as escapes, as `ls` quotes such names. lines: newlines and tabs
    are kept (a message's own layout)."""
    if _shows_as_is(text):
        return text
    kept = "\n\t" if lines else ""
    return "".join(
        _ESCAPED.get(c, f"\\x{ord(c):02x}" if ord(c) < 0x100 else
                     f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}")
        if c not in kept and (unicodedata.category(c) in ("Cc", "Zl", "Zp") or _unseen(c))
        else c
        for c in text)


def loggable(text: PathLike | bytes) -> str:
    """TEXT (a path, a name, a message holding them) for one line of a log: bytes that are not
    UTF-8 as `\\xNN` (readable), control characters escaped (terminal_safe). A request path
    or a file name holding a newline wrote a forged line into the server's log (probe http19:
    `GET /api/people/x%0A2026-... INFO: ...`), an ESC a terminal's colours, a NUL itself."""
    if not isinstance(text, str):
        return terminal_safe(readable(text))
    if _shows_as_is(text):
        return text
    try:  # a name os.fsdecode made of bytes that are not UTF-8 holds them as lone surrogates
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "backslashreplace")
    return terminal_safe(raw.decode("utf-8", "backslashreplace"))


def from_bytes(raw: bytes) -> Path:
    """A path the file system opens, from stored bytes."""
    return Path(os.fsdecode(raw))


def exists(raw: bytes, real_folders: dict[bytes, bool] | None = None) -> bool:
    """Whether the file a stored path named is still there. Stored paths are real (symlinks
    resolved when stored), so a path that is now a link, or runs through one (a folder moved
    to another disk and a link left in its place), names some other file, or the same file
    under another name: gone from there (a prune kept such paths, and an edited photo's former
    version stayed in the library beside the new one).

    Otherwise False only where the system says the file is not there (no such file, or a part
    of the path is no folder). A path it cannot check (a folder pgface may not enter, an I/O
    error) counts as there: a prune forgets only what is known to be gone, where
    os.path.exists said False, and forgot a folder's photos with their people while a
    permission kept pgface out of it. real_folders: a cache of folders found real (or not),
    for one pass over many paths."""
    try:
        if stat.S_ISLNK(os.lstat(raw).st_mode):
            return False
    except (FileNotFoundError, NotADirectoryError):
        return False
    except (OSError, ValueError):
        return True
    folder = os.path.dirname(raw)
    real = real_folders.get(folder) if real_folders is not None else None
    if real is None:
        try:
            real = os.path.realpath(folder) == folder
        except (OSError, ValueError):
            real = True  # cannot tell: counts as there
        if real_folders is not None:
            real_folders[folder] = real
    return real


def holds_anything(path: PathLike | bytes) -> bool:
    """Whether a path is there to say what is gone under it: a file, or a folder with an entry
    (an unmounted share's mount point is an empty folder, or no folder at all)."""
    try:
        if not os.path.isdir(path):
            return os.path.lexists(path)
        with os.scandir(path) as entries:
            return next(entries, None) is not None
    except OSError:  # cannot be listed: nothing can be said to be gone there
        return False


def prefix_range(folder: bytes) -> tuple[bytes, bytes]:
    """[low, high) of the byte strings of the paths strictly inside `folder` ('/' is 0x2f)."""
    base = folder if folder.endswith(b"/") else folder + b"/"
    return base, base[:-1] + b"0"


def exclude_problem(pattern: object) -> str | None:
    """Why PATTERN cannot be a pattern of files and folders a walk leaves out
    (index.excluded: `Screenshots`, `*.png`, `2019/private`), or None where it can."""
    if not isinstance(pattern, str):
        return f"each pattern is text, not {kind_of(pattern)}"
    # One rule for every door (--exclude, an HTTP job's exclude, Pgface.index's,
    # PGFACE_INDEX_EXCLUDE): each took some patterns that match nothing in silence (probe
    # reprobe39: `skip ` pasted from a list, `./skip`, a blank one).
    if not pattern:
        return "an empty pattern, which matches no name"
    shown = repr(readable(pattern))
    if not pattern.strip():
        return f"the pattern {shown} is blank, which matches no name"
    if "\x00" in pattern:
        return f"the pattern {shown} holds a NUL byte, which no name does"
    # a surrogate of \udc80-\udcff is a name's byte that is not UTF-8 (caf\xe9 as Python's
    # JSON writes it); another (\ud800, an emoji cut in two) is no name's and could not be
    # shown back (an HTTP job's list answered 500 for every client, probe jsoncontract35)
    lone = next((c for c in pattern if "\ud800" <= c <= "\udfff"
                 and not "\udc80" <= c <= "\udcff"), None)
    if lone is not None:
        return (f"the pattern holds the lone surrogate \\u{ord(lone):04x}, which no file "
                f"name's bytes give")
    if pattern.startswith("/"):
        # an absolute path, or a root's anchor: a pattern with "/" is matched against the
        # path inside the folder given already, and one starting with "/" matched nothing
        return (f"the pattern {shown} starts with '/': a pattern with '/' is "
                f"matched against the path inside the folder given, as in 2019/private "
                f"(never against an absolute path)")
    if pattern[0].isspace() or pattern[-1].isspace():
        # most likely pasted with the spaces around it; a name that has one is matched by its
        # character in brackets (`[ ]`, `[\t]`: a '[ ]' told for a tab matched nothing,
        # probe reprobe40), which says so on purpose
        example = pattern
        if example[-1].isspace():
            example = f"{example[:-1]}[{example[-1]}]"
        if example[0].isspace():
            example = f"[{example[0]}]{example[1:]}"
        where = " and ".join(end for end, space in (("begins", pattern[0].isspace()),
                                                     ("ends", pattern[-1].isspace())) if space)
        return (f"the pattern {shown} {where} with white space, which is taken for a slip: a "
                f"name with it there is matched by that character in brackets, as in "
                f"{readable(example)!r}")
    if pattern.startswith("./"):
        return (f"the pattern {shown} starts with './': the path inside the folder given "
                f"is matched from its first name, as in 2019/private (never './2019/private')")
    # "Screenshots/" ends in "/" on purpose (folders only); any other empty part, or a "." or
    # ".." one, is in no path the walk matches (relative, one "/" between names)
    for part in pattern.removesuffix("/").split("/"):
        if part in ("", ".", ".."):
            what = "an empty part ('//')" if not part else f"a {part!r} part"
            return (f"the pattern {shown} holds {what}: the path inside the folder given "
                    f"has one '/' between names and no '.' or '..' part, as in 2019/private")
    return None
