"""Indexing: files -> decoded photos -> faces -> rows, one transaction per batch of photos."""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import hashlib
import importlib.metadata
import inspect
import logging
import os
import stat
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from pgface import engine, people_history
from pgface import paths as fs_paths
from pgface.config import Settings
from pgface.db import people_store as ps
from pgface.db import store
from pgface.db.connection import (
    DatabaseError,
    StatementFailed,
    connection_lost,
    database_error,
)
from pgface.errors import (
    ContentError,
    ImageError,
    InvalidInputError,
    ModelPackError,
    OpenFilesError,
    PgfaceError,
    counted,
    describe,
    kind_of,
    machine_short,
    no_memory_while,
    os_reason,
    out_of_memory,
    shown_name,
)
from pgface.imaging import (
    IMAGE_SUFFIXES,
    OUTSIDE_ROOTS,
    Photo,
    decode_photo,
    face_crop_jpeg,
    read_file_stat,
    warning_given_faces,
)
from pgface.models.analysis import Face, FaceAnalyzer
from pgface.paths import PathLike, canonical
from pgface.placement import Placed, photo_quality, place

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass
class Failure:
    source: str
    reason: str
    # A failure of the file's content (ContentError: not an image, corrupt, empty, over a
    # limit), which the same bytes meet again; and the stamp of the file read, where it can be
    # trusted (STAMP_SETTLE_S): such a failure is remembered (store.remember_failures), and the
    # file is not read again while its stamp stays (files_to_read). Neither for a failure of
    # the moment (permission denied, a timeout, a file gone or changed while read).
    content: bool = field(default=False, compare=False, repr=False)
    stamp: store.FileStamp | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        # text to print: a name's bytes that are not UTF-8 as \xNN (source is the name
        # itself, lone surrogates in it: printed to a UTF-8 stream, a progress callback's
        # print(failure) raised and ended the run, probe reprobe34)
        return f"{shown_name(self.source)}: {self.reason}"


@dataclass
class PhotoWarning:
    """A photo stored, with something the user should know (it looks blank, for one)."""

    source: str
    reason: str

    def __str__(self) -> str:
        return f"{shown_name(self.source)}: {self.reason}"  # as a Failure's


@dataclass
class IndexReport:
    files: int = 0
    indexed: int = 0
    skipped: int = 0  # already in the database (same content), or repeated in this run
    faces: int = 0
    failures: list[Failure] = field(default_factory=list)
    # How many of the failures are paths that are not photo files: one given that does not
    # exist, a folder that cannot be listed, a file outside a server's allowed folders.
    # `files` does not count them; files_done must not either.
    unlisted: int = 0
    warnings: list[PhotoWarning] = field(default_factory=list)
    seconds: float = 0.0
    # Seconds spent in each stage, summed over threads (stages overlap in the pipeline).
    timings: dict[str, float] = field(default_factory=dict)
    removed: store.Removal | None = None  # what --prune forgot, when asked
    empty_folders: list[str] = field(default_factory=list)  # folders given that hold no photo
    # Hidden or system files and folders the walk passed over (`passed_over`): none is read.
    passed_over: int = 0
    # Files and folders the walk left out as the run's exclude patterns (and the setting
    # index_exclude) say (`excluded`); a folder is one, however many photos it holds.
    excluded: int = 0
    # (where a link to a folder is: its folder's real path and its name, the real path of the
    # folder it reaches): that folder's photos are stored there, outside the paths given, and
    # --prune of any folder above the link prunes there too.
    links: list[tuple[str, str]] = field(default_factory=list)
    # The paths --prune left alone, being missing or empty folders (library.Pgface.index).
    not_pruned: list[str] = field(default_factory=list)
    # Faces of photos edited in place given the person their former selves had (keep_people).
    people_kept: int = 0
    # Files of photos already indexed, found at a new path, their former path's file gone:
    # moved or renamed (counted among `skipped`, which counts files: a photo and its copy
    # moved together are two).
    moved: int = 0
    # Seconds from the start until the last indexing process had loaded its models (runs in
    # several processes; 0 in one, whose models load before it starts).
    startup: float = 0.0
    # What the run does once its photos are stored, where that takes a while: REBUILDING
    # after a bulk load (hnsw_for_run). None while it indexes photos, and once it is over.
    stage: str | None = None
    # Files whose content failed in an earlier run (not an image, corrupt, empty, over a
    # limit) and that are unchanged since, for what decodes here and these limits: not read
    # again, and no failures of this run (files_to_read). Counted in `files`.
    unchanged_failures: int = 0
    # Photos analysed again by `index --pending` (counted among `indexed`, their faces among
    # `faces`): this pack had analysed them at an older ANALYSIS_REVISION.
    reanalysed: int = 0
    # Photos the active pack analysed at an older ANALYSIS_REVISION, left so when the run
    # ended (a plain run passes over them; `index --pending` analyses them again). None: not
    # counted.
    outdated: int | None = None

    @property
    def linked_folders(self) -> list[str]:
        """The real paths of the folders the walk reached through links, each once."""
        return list(dict.fromkeys(real for _, real in self.links))

    @property
    def files_done(self) -> int:
        """How many of the `files` have been indexed, skipped or have failed so far."""
        return (self.indexed + self.skipped + self.unchanged_failures + len(self.failures)
                - self.unlisted)

    @property
    def photos_per_second(self) -> float:
        return self.indexed / self.seconds if self.seconds else 0.0

    @property
    def faces_per_second(self) -> float:
        return self.faces / self.seconds if self.seconds else 0.0


# The stage a bulk load's report is in while pgvector's HNSW index is built again: seconds at
# 10,000 faces on 2 cores (docs/benchmarks-hnsw-bulk.md), with every photo already counted.
REBUILDING = "building the search index"
class ProgressCallback(Protocol):
    """What `index` and `people.enrol` call as they go: after every batch with the report so
    far (failure None), once per failure as it happens (its Failure), and, after a bulk load's
    last batch, once more with report.stage REBUILDING."""

    def __call__(self, report: IndexReport, failure: Failure | None, /) -> None: ...


PROGRESS_SAID = ("a function called as progress(report, failure): the IndexReport so far, and "
                 "the Failure just met or None")


def check_progress(progress: object) -> None:
    """A progress callback, or None: `progress=5` was "'int' object is not callable" from the
    first batch, naming no argument; a function of one argument, `def progress(report)`, was
    a TypeError from inside the run after its first batch, the rest not indexed (probe
    apiclient)."""
    if progress is None:
        return
    if not callable(progress):
        raise InvalidInputError(f"progress: {PROGRESS_SAID}, not {kind_of(progress)}")
    try:
        signature = inspect.signature(progress)
    except (TypeError, ValueError):  # a builtin or extension without one: taken as it is
        return
    try:
        signature.bind(None, None)
    except TypeError as exc:
        raise InvalidInputError(f"progress: {PROGRESS_SAID}; {progress!r} cannot be called so "
                                f"({exc})") from None


def iter_photo_files(paths: Iterable[Path], failures: list[Failure],
                     within: Sequence[Path] | None = None,
                     empty: list[str] | None = None,
                     skipped: list[str] | None = None,
                     linked: list[tuple[str, str]] | None = None,
                     exclude: Sequence[str] = (),
                     excluded_paths: list[str] | None = None) -> Iterator[Path]:
    """Files named directly are always tried; inside folders only image suffixes are, and
    neither hidden nor system files and folders (passed_over), nor those an exclude pattern
    matches (excluded).

    within: folders every file must really lie in once symlinks are resolved (a server's
    allowed roots); a file elsewhere is reported, not read.
    empty: gets each folder given that holds no file with an image suffix.
    skipped: gets each file and folder passed over.
    linked: gets (the path given, the real path) of each folder walked through a link.
    exclude: patterns of the files and folders to leave out (excluded, check_exclude).
    excluded_paths: gets each file and folder left out by them.
    """
    roots = [Path(r).resolve() for r in within] if within is not None else None
    for path in _walk(paths, failures, empty if empty is not None else [],
                      skipped if skipped is not None else [],
                      linked if linked is not None else [], roots,
                      [as_matched(p) for p in exclude],
                      excluded_paths if excluded_paths is not None else []):
        if roots is not None:
            try:
                real = path.resolve()
            except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13)
                failures.append(Failure(str(path), "symbolic link loop (too many levels of "
                                                   "symbolic links)"))
                continue
            if not any(real == root or root in real.parents for root in roots):
                failures.append(Failure(str(path), OUTSIDE_ROOTS))
                continue
        yield path


# Inside a folder being walked these are passed over: hidden files and folders (a name that
# starts with "."; `.thumbnails`, `.Trash-1000`, and macOS's `._IMG_0001.jpg` beside every
# photo copied from a Mac, which is no photo), and the folders that NAS systems and others keep
# beside photos: Synology's `@eaDir` holds each photo again at five thumbnail sizes, whose
# faces would be found as more photos of everyone. A file or folder named directly is read.
# In any case: the disks they come from (NTFS, exFAT, SMB shares) do not tell `$Recycle.Bin`,
# the name Windows gives the system drive's, from `$RECYCLE.BIN` (probe nas33).
SYSTEM_FOLDERS = frozenset(name.casefold() for name in (
    "@eaDir", "@__thumb", "@Recycle", "@Recently-Snapshot", "#recycle", "#snapshot", "__MACOSX",
    "$RECYCLE.BIN", "RECYCLER", "System Volume Information", "lost+found"))
# A macOS Photos library holds each photo again as previews and thumbnails (resources/), whose
# faces would be more photos of everyone too (probe nas33): only its originals are walked
# (`originals`, `Masters` before Photos 5).
PHOTOS_LIBRARY_SUFFIX = ".photoslibrary"
PHOTOS_LIBRARY_ORIGINALS = frozenset({"originals", "masters"})


OUTSIDE_FOLDER = "a link to a folder outside the allowed folders (not walked)"
KERNEL_FOLDER = "a link to the system's folders (/proc, /sys, /dev hold no photos): not walked"
# A path given in them: walked, /proc's links of each process led on to every folder of the
# machine, other processes' working folders indexed (probe hostile39: `pgface index /`).
KERNEL_PATH = "in the system's folders (/proc, /sys, /dev hold no photos): not walked"


def passed_over(name: str, folder: bool, parent: str = "") -> bool:
    """Whether a walk passes over this file or folder name, in a folder named PARENT
    (SYSTEM_FOLDERS and PHOTOS_LIBRARY_SUFFIX say why)."""
    return name.startswith(".") or (folder and (
        name.casefold() in SYSTEM_FOLDERS
        or (parent.casefold().endswith(PHOTOS_LIBRARY_SUFFIX)
            and name.casefold() not in PHOTOS_LIBRARY_ORIGINALS)))


def check_exclude(patterns: object, name: str = "exclude") -> list[str]:
    """Exclude patterns (excluded): a list or tuple of strings paths.exclude_problem takes, else
    InvalidInputError naming NAME (a string alone would be its letters, each a pattern:
    `exclude="*.png"` would leave out every name `p`, `n` or `g`)."""
    if isinstance(patterns, str) or not isinstance(patterns, list | tuple):
        one = " (one pattern: put it in a list)" if isinstance(patterns, str) else ""
        raise InvalidInputError(f"{name}: a list of patterns, as in ['Screenshots', '*.png', "
                                f"'2019/private'], not {kind_of(patterns)}{one}")
    for pattern in patterns:
        if (problem := fs_paths.exclude_problem(pattern)) is not None:
            raise InvalidInputError(f"{name}: {problem}")
    return list(patterns)


def excluded(name: str, relative: str, folder: bool, patterns: Sequence[str]) -> bool:
    """Whether an exclude pattern leaves out the file or folder NAME, at RELATIVE inside the
    folder given to the walk (POSIX "/", no leading "/"). A pattern without "/" is matched
    against the name, at any depth; one with "/" against the relative path (fnmatch's `*`
    crosses "/" there); a pattern ending in "/" matches folders only. Matched as
    fnmatch.fnmatchcase does: in the case the file system lists the name in, and as
    as_matched() reads names and patterns alike: a folder "Zoë" copied from a Mac is named
    decomposed, and `--exclude Zoë` typed on a keyboard left it in (probe reprobe34).
    PATTERNS as as_matched() gives them (iter_photo_files reads them so once a walk)."""
    name = as_matched(name)
    relative = as_matched(relative)
    for pattern in patterns:
        if pattern.endswith("/"):  # `Screenshots/`, as a shell completes a folder's name
            if not folder:
                continue
            pattern = pattern.rstrip("/")
        if fnmatch.fnmatchcase(relative if "/" in pattern else name, pattern):
            return True
    return False


def as_matched(text: str) -> str:
    """A name, a path inside the folder given or a pattern as excluded() matches them: the
    text its bytes say read as UTF-8 (bytes that are not UTF-8 kept as lone surrogates, as
    os.fsdecode keeps them), in Unicode's composed form (NFC), whatever the locale. Where the
    file system's encoding is ASCII (LC_ALL=C with PYTHONUTF8=0) os.walk lists a Mac's
    decomposed "Zoë" as 'Zoe\\udccc\\udc88', whose surrogates NFC cannot compose: read
    as it was, `--exclude Zoë` left it in there and out under C.UTF-8 (probe hunt-i18n39).
    Text no file name of this locale holds ("Zoë" given to Pgface.index or an HTTP job
    under LC_ALL=C) has the bytes UTF-8 gives it, as a terminal would type it."""
    try:
        raw = os.fsencode(text)
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a lone surrogate no bytes are read as: matches no name
            return text
    return unicodedata.normalize("NFC", raw.decode("utf-8", "surrogateescape"))


def _excluded_real(real: str, folder: bool, tops: Sequence[str], patterns: Sequence[str],
                   whole: bool) -> bool:
    """Whether the patterns leave out what lies at REAL (a real path) as the walk of a folder
    given (TOPS: their real paths) would reach it there; outside them, by its name. WHOLE:
    every folder on its way from that top is matched too (what a link reaches, from anywhere);
    else its own name alone (an entry of a folder whose own real path was matched as the walk
    entered it). A folder left out was walked through a link to it, or to a folder above it,
    or from another folder given first, its photos stored (probes reprobe34, reprobe35)."""
    inside = [top for top in tops if real.startswith(top.rstrip("/") + "/")]
    if not inside:
        name = os.path.basename(real)
        return excluded(name, name, folder, patterns)
    for top in inside:
        parts = real[len(top.rstrip("/")) + 1:].split("/")
        if any(excluded(parts[at], "/".join(parts[:at + 1]), folder or at < len(parts) - 1,
                        patterns) for at in range(0 if whole else len(parts) - 1, len(parts))):
            return True
    return False


def _excluded_file(folder: str, name: str, folder_real: str, tops: Sequence[str],
                   patterns: Sequence[str]) -> bool:
    """_excluded_real of the file NAME in FOLDER (whose real path is FOLDER_REAL): a link
    matched by where it leads, on its whole way there."""
    place = os.path.join(folder, name)
    if os.path.islink(place):
        return _excluded_real(os.path.realpath(place), False, tops, patterns, True)
    return _excluded_real(os.path.join(folder_real, name), False, tops, patterns, False)


def _inside(real: str, roots: list[Path] | None) -> bool:
    return roots is None or any(Path(real) == root or root in Path(real).parents
                                for root in roots)


def _walk(paths: Iterable[Path], failures: list[Failure], empty: list[str],
          skipped: list[str], linked: list[tuple[str, str]],
          roots: list[Path] | None = None, exclude: Sequence[str] = (),
          excluded_paths: list[str] | None = None) -> Iterator[Path]:
    # Links to folders are followed, as links to files are (a library's `Phone -> /mnt/phone`
    # was passed over without a word); a folder already walked, through a link or not, is not
    # walked again, so a link to an ancestor ends there instead of looping. With roots (a
    # server's allowed folders), a link to a folder outside them is one failure and is not
    # walked: walked, every image file behind it came back as a failure by name, and a link
    # to / listed the machine's. A path given is walked whatever the exclude patterns say;
    # inside it they leave out files and folders (excluded), a folder with all it holds.
    walked: set[str] = set()  # real paths of the folders walked or about to be
    left_out = excluded_paths if excluded_paths is not None else []
    paths = list(paths)
    # the real paths of the folders given, from which the patterns match what links reach
    tops = [os.path.realpath(p) for p in paths if exclude and os.path.isdir(p)]
    for path in paths:
        try:
            folder = path.is_dir()
        except OSError as exc:  # a path this user may not reach stopped the whole run
            failures.append(Failure(str(path), f"cannot be reached ({_reason(exc)})"))
            continue
        if folder:
            found = False
            # each folder's real path: a link's resolved, a subfolder's its parent's and name
            reals = {str(path): os.path.realpath(path)}
            # each folder's path inside the one given, as patterns with "/" see it: "2019/"
            rels = {str(path): ""}
            if not _inside(reals[str(path)], roots):
                failures.append(Failure(str(path), OUTSIDE_FOLDER))
                continue
            if fs_paths.in_kernel_folder(reals[str(path)]):
                failures.append(Failure(str(path), KERNEL_PATH))
                continue
            if reals[str(path)] in walked:
                # walked already, inside a folder given before it: its files are found, and
                # what it left out counted (walked again, twice: reprobe36)
                continue
            walked.add(reals[str(path)])
            for root, dirs, files in os.walk(path, followlinks=True, onerror=lambda e: (
                    failures.append(Failure(str(e.filename),
                                            f"cannot list folder ({e.strerror})")))):
                kept = []
                rel = rels[root]
                for name in sorted(dirs):
                    if passed_over(name, True, os.path.basename(root)):
                        skipped.append(os.path.join(root, name))
                        continue
                    inside = os.path.join(root, name)
                    link = os.path.islink(inside)
                    inside_real = os.path.join(reals[root], name)  # a link: where it is
                    real = os.path.realpath(inside) if link else inside_real
                    if exclude and (excluded(name, rel + name, True, exclude)
                                    or _excluded_real(real, True, tops, exclude, link)):
                        left_out.append(inside)
                        found = True  # left out on purpose: no unmounted share's empty folder
                        continue
                    if link and not _inside(real, roots):
                        failures.append(Failure(inside, OUTSIDE_FOLDER))
                        continue
                    if fs_paths.in_kernel_folder(real):
                        if link:
                            failures.append(Failure(inside, KERNEL_FOLDER))
                        else:  # /proc of a walk of / (probe hostile39): the system's own
                            skipped.append(inside)
                        continue
                    if real not in walked:
                        walked.add(real)
                        reals[inside] = real
                        rels[inside] = f"{rel}{name}/"
                        kept.append(name)
                        if link:
                            linked.append((inside_real, real))
                dirs[:] = kept
                for name in sorted(files):
                    if Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                        if (not Path(name).suffix and not passed_over(name, True)
                                and not (exclude and excluded(name, rel + name, True, exclude))
                                and (unreachable := _unreachable_folder_link(root, name))):
                            failures.append(unreachable)
                        continue
                    if passed_over(name, False):
                        skipped.append(os.path.join(root, name))
                        continue
                    if exclude and (excluded(name, rel + name, False, exclude)
                                    or _excluded_file(root, name, reals[root], tops, exclude)):
                        left_out.append(os.path.join(root, name))
                        found = True
                        continue
                    found = True
                    yield Path(root) / name
            if not found:
                empty.append(str(path))
        elif os.path.lexists(path):  # a broken or looping link too: reading it says which
            yield path
        else:
            failures.append(Failure(str(path), "no such file or folder"))


def _reason(exc: OSError) -> str:
    """An OSError as a failure says it: "permission denied", "no such file or folder"."""
    return os_reason(exc).replace("directory", "folder")


def _unreachable_folder_link(folder: str, name: str) -> Failure | None:
    """A link named like a folder (no suffix, nor its target) whose target cannot be reached:
    os.walk lists it among the files, and a library's `Phone -> /mnt/phone` not mounted, or a
    link into a folder this user may not enter, was passed over without a word. Asked of
    names without a suffix only (a sidecar file costs no lstat)."""
    link = os.path.join(folder, name)
    if not os.path.islink(link):
        return None
    try:
        os.stat(link)
        return None  # reached: a file of another kind
    except OSError as exc:
        try:
            target = os.readlink(link)
        except OSError as unread:  # /proc's links of other users' processes: the whole run
            # stopped, nothing else indexed (probe hostile20: `L/proclink -> /proc`)
            return Failure(link, f"a link that cannot be read ({_reason(unread)}): not "
                                 f"followed")
        if Path(target).suffix:
            return None  # a link to a file, broken (`notes -> notes.txt`): not a photo
        return Failure(link, f"a link to a folder that cannot be reached ({_reason(exc)}): "
                             f"not followed")


def photo_files(paths: fs_paths.Paths, progress: ProgressCallback | None = None,
                within: fs_paths.Paths | None = None, exclude: Sequence[str] = ()
                ) -> tuple[IndexReport, list[Path]]:
    """The photo files under paths, and a report that holds their count and what could not be
    listed (each failure told to progress as it is found); exclude: patterns of files and
    folders inside them to leave out (excluded), counted in report.excluded."""
    report = IndexReport()
    roots = [Path(r) for r in fs_paths.path_list(within)] if within is not None else None
    skipped: list[str] = []
    left_out: list[str] = []
    found = iter_photo_files([Path(p) for p in fs_paths.path_list(paths)], report.failures,
                             roots, report.empty_folders, skipped, report.links,
                             exclude, left_out)
    # A file named twice, or named and inside a folder named too, is one file: counted twice,
    # its second turn was reported "already indexed" by the run that had just indexed it. So
    # too one named through a link to its folder (`photos/a.jpg photos-link/a.jpg`: "1 photo
    # indexed, 1 already indexed" of a photo new to the library, probe scripting37): by its
    # folder's real path, resolved once a folder, as _stamp_now keys it; and a link to a file
    # beside that file (`a.jpg a-link.jpg`), which is stored at the file's path: by that path
    # (an lstat a file; counted twice, probe reprobe38).
    unique: dict[Path, Path] = {}
    folders: dict[Path, Path] = {}
    for path in found:
        given = fs_paths.expand(path)
        folder = folders.get(given.parent)
        if folder is None:
            folder = folders[given.parent] = fs_paths.canonical(given.parent)
        key = fs_paths.canonical(given) if os.path.islink(given) else folder / given.name
        unique.setdefault(key, path)
    files = list(unique.values())
    report.passed_over = len(skipped)
    report.excluded = len(left_out)
    report.files = len(files)
    report.unlisted = len(report.failures)
    for failure in report.failures:
        _notify(progress, report, failure)
    return report, files


# Photos whose path moved to new content (edited in place): each former photo's id, and the
# ids of the photos at its paths now.
Formers = dict[int, set[int]]


@dataclass
class FormersForgotten:
    """What forget_formers did: how many faces it gave a person, and a warning for each new
    version whose former's people it could place nowhere (their faces not found in it)."""

    people_kept: int = 0
    warnings: list[PhotoWarning] = field(default_factory=list)


def forget_formers(pool: ConnectionPool, formers: Formers, model: str,
                   recorded: Collection[bytes] = (), roots: Sequence[PathLike] = (),
                   alone: Callable[[], AbstractContextManager[bool]] | None = None
                   ) -> FormersForgotten:
    """Once a run's paths are all recorded (a file swapped with another comes back at its
    other path; a photo moved, at its new one), the former version of an edited photo that no
    path holds goes: it was still found by search, at the path of its new version. Its people
    are kept for its content, should it come back (as --prune does). Not where it may have been
    swapped with a file the run did not read: the photo now at its path has another path whose
    file changed since it was recorded (a/x.jpg and b/y.jpg swapped, `index a`): that file may
    hold it. recorded: the paths the run stored, known to hold what they are recorded with.

    Several processes of one run: once all are done. One that forgot its formers while
    another still had to record a moved photo's new path deleted that photo, and the path,
    recorded after, was dropped with it (a renamed photo gone, and its person emptied).

    roots, alone: the run's paths (as given) and its store.index_run. Runs stopped before their
    end left formers too (recorded in the database as they were stored); those whose new
    version is at or under the run's paths go as well, as the run has now read every file
    there where the photo could have moved: only by a run alone, as another may still record
    a path of them (taking the lock alone keeps runs from starting meanwhile, so only where
    there are such formers). Formers found at a path again are formers no more.

    Before a former with people goes, they go to a new version of the run whose faces are its
    own (two files' names swapped and one edited: the path it was edited at had held the
    other photo, so its people went nowhere). A named person on no face of a photo that holds
    a former's content now (cropped out of the edit, or turned so that the detector misses
    the face) has left that photo: each such photo gets a warning naming them, and they wait
    for it (people_back): a later version at its path with their face (turned back, cropped
    again) takes them back."""
    real = [fs_paths.canonical(r) for r in roots]
    if real and alone is not None:
        with pool.connection() as conn:
            stale = set(store.stored_formers(conn, real)) - set(formers)
        if stale:
            with alone() as only:
                return _forget_formers(pool, formers, model, recorded, real if only else [])
    return _forget_formers(pool, formers, model, recorded, [])


def _forget_formers(pool: ConnectionPool, formers: Formers, model: str,
                    recorded: Collection[bytes], stale_under: Sequence[Path]
                    ) -> FormersForgotten:
    """forget_formers' work: FORMERS, and those recorded under STALE_UNDER."""
    with pool.connection() as conn, conn.transaction():
        formers = {former: set(now) for former, now in formers.items()}
        if stale_under:
            for former, now in store.stored_formers(conn, stale_under).items():
                formers.setdefault(former, set()).update(now)
        if not formers:
            return FormersForgotten()
        elsewhere = store.maybe_elsewhere(conn, formers, recorded)
        doomed = sorted(set(formers) - elsewhere)
        kept = 0
        held = store.any_face_held(conn, doomed)
        if held:  # nothing locked yet: waiting is safe
            people_history.hold_people(conn)  # people_first says why
        pathless = store.pathless_photos(conn, doomed, False)  # once the people are held
        handed: Formers = {}  # former -> the photos the hand-over below gave its people to
        if held:
            # Only formers whose people the hand-over by path did not carry, to new versions
            # that hold nobody: a run that re-saved thousands of named photos compared each
            # with every other.
            new_versions = sorted({now for nows in formers.values() for now in nows})
            left = ps.formers_with_people_left(
                conn, {former: formers[former] for former in pathless}, model,
                MOVED_EDIT_SIMILARITY)
            unheld = store.photos_with_nobody(conn, new_versions) if left else []
            for former in left:
                given = ps.people_for_replacements(
                    conn, [(former, now) for now in unheld if now != former], model,
                    MOVED_EDIT_SIMILARITY)
                kept += _give_kept(conn, given, "photos renamed and edited")
                if given:
                    unheld = store.photos_with_nobody(conn, unheld)
                    handed[former] = store.photos_of_faces(conn, [k.face_id for k in given])
        # A former whose people are on faces of a pack that has not analysed its new version,
        # and on no face of it, stays, recorded, until that pack does (people_of_stored then
        # gives them over, as for an edit it indexed itself): an edit first indexed under
        # another pack (buffalo_l tried on the folder) deleted the former with every name of
        # the photo, which that pack's faces, not comparable with these, could not take.
        # (a former none of whose faces holds a person waits for nobody)
        waiting = store.formers_waiting_for_packs(
            conn, {former: formers[former] for former in pathless}) if held else set()
        deleting = [p for p in pathless if p not in waiting]
        # A former kept for a pack, of a version deleted now (edited again): recorded for the
        # version now at its path, and given over at once where this pack can.
        if store.formers_recorded_for(conn, deleting):
            if not held:
                people_history.hold_people(conn)  # nothing written yet: waiting is safe
            nows = store.repoint_formers(conn, {gone: formers[gone] for gone in deleting})
            kept += people_of_waiting_formers(conn, nows, model)
        # Their people are kept for the former content (forgotten_faces) but leave the photo,
        # which went without a word: a user who had named a face saw the name gone.
        holding = _places(deleting, formers, handed) if held else []
        warnings = _people_left_behind(conn, holding)
        # ... and wait at its path for a later version that holds their faces again (turned
        # back, cropped again): what waited for a former deleted now waits for the version now
        # at its path.
        successors = _successors(deleting, formers)
        places = [(former, successors.get(place, place)) for former, place in holding]
        waited = store.photos_waited_for(conn, sorted(successors))
        if waited and not held:  # nothing written yet, or held already (a re-point's)
            people_history.hold_people(conn)
        store.delete_pathless(conn, deleting, places,
                              {gone: successors[gone] for gone in waited})
        # a version waited for from now on, which no edit's hand-over compared with what
        # waits (several edits of a photo in one run, the last one's)
        kept += people_back(conn, [(now, now) for now in sorted(
            {successors[gone] for gone in waited} | {place for _, place in places})], model)
        store.drop_settled_formers(conn, sorted(formers))
        return FormersForgotten(kept, warnings)


def _places(deleting: Sequence[int], formers: Formers, handed: Formers
            ) -> list[tuple[int, int]]:
    """(former about to be deleted, a photo that holds its content now): its new versions
    (each copy edited on its own), or, where the hand-over gave its people to another file
    (two files swapped and one edited: the photo at its path is the other one, moved),
    those."""
    return [(former, photo) for former in deleting
            for photo in sorted(handed.get(former) or formers[former])]


def _successors(deleting: Sequence[int], formers: Formers) -> dict[int, int]:
    """Each former about to be deleted -> the version now at its path that stays (the first
    by id where there are several: a photo at two paths, each edited on its own), through
    the versions deleted too (edited twice in one run); none where every one goes."""
    going = set(deleting)
    found: dict[int, int] = {}
    for former in deleting:
        seen, now = {former}, former
        while now in going:
            later = sorted(n for n in formers.get(now, ()) if n not in seen)
            if not later:
                break
            now = later[0]
            seen.add(now)
        if now not in going:
            found[former] = now
    return found


def _people_left_behind(conn: psycopg.Connection, places: Sequence[tuple[int, int]]
                        ) -> list[PhotoWarning]:
    """A warning for each photo holding the content of a former about to be deleted (PLACES,
    _places's pairs) that lacks named people of its faces. The file is named by its newest
    path."""
    if not places:
        return []
    left: dict[int, list[store.PersonLeft]] = {}
    for person in store.people_left_behind(conn, places):
        left.setdefault(person.place, []).append(person)
    warnings = []
    for photo, people in left.items():
        paths = store.paths_of_photo(conn, photo)
        if not paths:
            continue
        who = ", ".join(f"'{p.name}'" + (f" ({p.faces} faces)" if p.faces > 1 else "")
                        for p in people)
        # "edited" of a photo another was moved over (`mv cy.jpg bob.jpg`) sent the user
        # looking for a crop that never was (probe living36): both are said
        warnings.append(PhotoWarning(str(paths[0]), (
            f"changed: {who} {'was' if len(people) == 1 else 'were'} not found in the photo "
            "now at this path (cropped out of it, turned so that the detector misses the "
            "face, or another photo moved over it): the photo no longer holds them; saved "
            "here again with the face in it (turned back, cropped again, or the photo put "
            "back), it gets them again")))
    return warnings


def _fail_lost(lost: Sequence[store.Sighting], report: IndexReport,
               progress: ProgressCallback | None) -> None:
    """Files found holding a stored photo that was deleted before their path was recorded
    (`remove` of its only path, a prune, another run's former version): the path could not
    take it, and the file was counted "already indexed" and stored nowhere. A failure; the
    next run reads it again (its path has no stamp) and stores it."""
    for seen in lost:
        failure = Failure(seen.path, "its photo was deleted meanwhile (by `remove`, a prune, "
                                     "an erase of a person in it or another run), so it is not "
                                     "stored: index it again")
        report.skipped -= 1
        report.failures.append(failure)
        _notify(progress, report, failure)


def _add_pairs(formers: Formers, pairs: Iterable[tuple[int, int]]) -> None:
    for former, now in pairs:
        formers.setdefault(former, set()).add(now)


def batches(files: Sequence[Path], size: int) -> list[list[Path]]:
    size = max(1, size)
    return [list(files[i : i + size]) for i in range(0, len(files), size)]


# A file modified this recently when read gets no stamp, so the next run reads it again: a
# second write within the file system's clock tick (a few ms; 2 s on FAT) with the same size
# would leave the same stamp on other content. A modification time ahead of the clock (a
# camera's clock ran ahead, an archive unpacked with such dates) was set by hand, and says
# nothing of when the file was written: its change time does (every write sets it, and no
# tool sets it back); by the modification time such a file was never stamped, and every run
# read it again.
STAMP_SETTLE_S = 2.0


@dataclass
class _Read:
    path: Path
    data: bytes
    sha256: bytes
    stamp: store.FileStamp | None = None  # the file's, where it can be trusted


def _read(path: Path, max_bytes: int, timeout_s: float, within: Sequence[Path] | None = None
          ) -> _Read | Failure:
    try:
        data, info = read_file_stat(path, max_bytes, timeout_s, within)
    except ContentError as exc:  # empty, or over the byte limit, by its stat
        return Failure(exc.source, exc.reason, content=True,
                       stamp=None if exc.info is None else _settled_stamp(exc.info))
    except ImageError as exc:
        return Failure(exc.source, exc.reason)
    return _Read(path, data, hashlib.sha256(data).digest(), _settled_stamp(info))


def _settled_stamp(info: os.stat_result) -> store.FileStamp | None:
    """The file's stamp, where it can be trusted (STAMP_SETTLE_S says when); else None."""
    now = time.time_ns()
    written = info.st_ctime_ns if info.st_mtime_ns > now else info.st_mtime_ns
    settled = now - written >= STAMP_SETTLE_S * 1e9
    return store.FileStamp.of(info) if settled else None


# The libraries that decode photos for pgface (imaging.py): another version of one may read a
# file the last refused
DECODERS = ("pillow", "pillow-heif", "simplejpeg", "opencv-python-headless")


@functools.cache
def reader_version() -> str:
    """What decodes photos here: pgface's version, as `pgface --version` says it, and a digest
    of its decoding code and of the decoding libraries' versions (`0.1.0+decoders.3f2a...`).
    The version alone stays the same between the commits of a release: a file refused by a
    decoding fixed since was still passed over as failed."""
    try:
        version = importlib.metadata.version("pgface")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        from pgface import __version__ as version
    digest = hashlib.sha256(Path(decode_photo.__code__.co_filename).read_bytes())
    for name in DECODERS:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            digest.update(f"{name} {importlib.metadata.version(name)}\n".encode())
    return f"{version}+decoders.{digest.hexdigest()[:12]}"


def reader_of(settings: Settings) -> store.Reader:
    """What reads files with these settings: a file whose content it failed stays failed
    while the file, what decodes it (reader_version) and the limits stay the same
    (store.Reader)."""
    return store.Reader(reader_version(), settings.max_file_bytes, settings.max_pixels)


# Files whose stamps are checked with one query. Their stats are taken in this thread: threads
# took 2.2x (2) to 4.4x (8) as long for LFW View 1's 4,992 (0.16 s in one), contending for the
# interpreter lock around each stat and folder resolution.
STAMP_QUERY_FILES = 1000


def files_to_read(pool: ConnectionPool, files: Sequence[Path], model: str, report: IndexReport,
                  progress: ProgressCallback | None = None, reader: store.Reader | None = None,
                  current: bool = False) -> list[Path]:
    """FILES less those unchanged since they were last read, whose photo MODEL has analysed:
    the size, modification and change time recorded then are the file's now (store.unchanged_paths;
    rsync's quick check). Those count as skipped in REPORT, told to progress, and are never
    opened. So are those whose content READER failed (not an image, corrupt, empty, over a
    limit) with the stamp they have now (store.unchanged_failures), counted in
    report.unchanged_failures, no failures of this run: a library with a thousand empty files
    printed a thousand failures every night, and its run never exited 0.
    CURRENT: a photo analysed at an older ANALYSIS_REVISION is read (`index --pending`)."""
    folders: dict[Path, Path] = {}  # each folder's real path, taken once
    keep: list[Path] = []
    for start in range(0, len(files), STAMP_QUERY_FILES):
        part = files[start:start + STAMP_QUERY_FILES]
        with _timed(report.timings, "read"):
            now = [_stamp_now(path, folders) for path in part]
            stamped = [found for found in now if found is not None]
            unchanged: set[bytes] = set()
            failed: set[bytes] = set()
            if stamped:
                with pool.connection() as conn:
                    unchanged = store.unchanged_paths(conn, stamped, model, current)
                    if reader is not None:
                        failed = store.unchanged_failures(
                            conn, [found for found in stamped if found[0] not in unchanged],
                            reader)
        kept = [path for path, found in zip(part, now, strict=True)
                if found is None or (found[0] not in unchanged and found[0] not in failed)]
        keep += kept
        if len(kept) < len(part):
            failing = sum(found is not None and found[0] in failed for found in now)
            report.skipped += len(part) - len(kept) - failing
            report.unchanged_failures += failing
            _notify(progress, report, None)
    return keep


def _stamp_now(path: Path, folders: dict[Path, Path]) -> tuple[bytes, store.FileStamp] | None:
    """The file's key in photo_paths (its canonical path) and its stamp now; None where either
    cannot be had (reading the file then says why). A file that is no link lies in its
    folder's real path, resolved once for all its files."""
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            real, info = canonical(path), os.stat(path)
        else:
            parent = folders.get(path.parent)
            if parent is None:
                parent = folders[path.parent] = canonical(path.parent)
            real = parent / path.name
    except (OSError, RuntimeError, ValueError):  # RuntimeError: a link loop before Python 3.13
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return fs_paths.to_bytes(real), store.FileStamp.of(info)


@dataclass
class _Analyzed:
    """A photo decoded, its faces detected, aligned and cut out as thumbnails; the pixels of
    the photo are dropped here, so a batch in flight holds 112x112 crops, not whole photos."""

    row: store.PhotoRow  # its faces are added once they are embedded
    faces: list[Face]
    aligned: list[np.ndarray]  # the recognizer's input, one per face
    thumbnails: list[bytes]  # JPEG, one per face
    source: str = ""
    warning: str | None = None


@dataclass
class _Prepared:
    """A batch read, deduplicated and analysed up to the recognizer."""

    photos: list[_Analyzed]
    skipped: int
    failures: list[Failure]
    # Photos this pack has analysed already, seen (again, or at a new path).
    sightings: list[store.Sighting] = field(default_factory=list)
    # Copies of a photo met earlier in this run, recorded once that photo is stored.
    copies: list[store.Sighting] = field(default_factory=list)
    # The photos among `photos` this pack analysed at an older revision, analysed again
    # (Indexer.reanalyse).
    again: set[bytes] = field(default_factory=set)


# Batches prepared ahead of the one being embedded and stored: with one, the workers sat idle
# whenever a batch with many faces took longer to embed than the next took to decode and detect.
PREFETCH_BATCHES = 2
HNSW_CHECK_BATCHES = 32  # a growing library drops the HNSW index within this many batches
# Workers beyond one per core. A worker holds the interpreter lock a sixth (the shared
# photos) to a third (LFW) of its time, in the detector's and OpenVINO's Python around each
# model run, quality and placing faces (py-spy --gil), and one that waits for it, or for a
# detector stream, leaves its core idle: with one worker per core the cores sat idle a fifth
# of the time while only the workers ran. Without the extra worker, indexing took 1.08x as
# long on the shared photos, 1.10x on the phone-size set and 1.02x on LFW (2 cores, medians
# of 8 alternated rounds; docs/benchmarks-index-workers.md). It holds one more decoded photo.
EXTRA_WORKERS = 1


class Indexer:
    """Indexing is a pipeline. A worker per core and one more (EXTRA_WORKERS) read, decode,
    detect and align photo after photo (the detector gives overlapping callers a stream per
    core); this thread embeds each batch's faces in one recognizer call and stores the batch
    in one transaction."""

    def __init__(self, analyzer: FaceAnalyzer, pool: ConnectionPool, settings: Settings,
                 within: fs_paths.Paths | None = None, reanalyse: bool = False) -> None:
        """within: folders every file read must really lie in, checked again on the file
        opened (a server's allowed roots; read_file_stat).
        reanalyse: photos this pack analysed at an older ANALYSIS_REVISION are analysed again,
        their faces replaced and their people kept (`index --pending`); passed over as
        analysed otherwise."""
        self.reanalyse = reanalyse
        self.analyzer = analyzer
        self.pool = pool
        self.settings = settings
        self.within = (None if within is None
                       else [Path(r).resolve() for r in fs_paths.path_list(within)])

    def index(self, paths: fs_paths.Paths, progress: ProgressCallback | None = None
              ) -> IndexReport:
        started = time.perf_counter()
        roots = fs_paths.path_list(paths)
        report, files = photo_files(roots, progress, self.within)
        # (no reader: `people enrol`'s, whose files that failed are read and listed again:
        # passed over, a corrupt one was read by the enrolment and called a photo with no face)
        files = files_to_read(self.pool, files, self.analyzer.model_name, report, progress)
        self.index_batches(batches(files, self.settings.photo_batch), report, progress, started,
                           files=files, roots=roots)
        return report

    def index_batches(self, chunks: Iterable[list[Path]], report: IndexReport,
                      progress: ProgressCallback | None = None, started: float | None = None,
                      ahead: int = PREFETCH_BATCHES, files: Sequence[Path] = (),
                      keep_hnsw: bool = True, formers: Formers | None = None,
                      roots: Sequence[PathLike] = ()) -> IndexReport:
        """Index batch after batch of files into report, preparing AHEAD of them beyond the
        one being stored; chunks may be a queue's (several processes share one,
        index_processes.py).

        files: the chunks' files where known, so that a bulk load runs without the HNSW index
        (hnsw_for_run). keep_hnsw False: another process looks after that index for this run.
        formers: where the run's former versions of edited photos go, for the caller to
        forget once every writer of the run is done (forget_formers); None: forgotten here.
        roots: the paths the run was given (forget_formers says what for).
        """
        started = time.perf_counter() if started is None else started
        with store.index_run(self.pool) as alone, hnsw_for_run(
                self.pool, files if keep_hnsw else (), self.analyzer.model_name, report,
                progress) as bulk:
            self._index_batches(chunks, report, progress, started, ahead, keep_hnsw and not bulk,
                                formers, alone, roots)
        report.seconds = time.perf_counter() - started  # building the index again included
        return report

    def _index_batches(self, chunks: Iterable[list[Path]], report: IndexReport,
                       progress: ProgressCallback | None, started: float, ahead: int,
                       keep_hnsw: bool, run_formers: Formers | None,
                       alone: Callable[[], AbstractContextManager[bool]],
                       roots: Sequence[PathLike]) -> None:
        upcoming = iter(chunks)
        reader = reader_of(self.settings)
        if keep_hnsw:
            self._keep_hnsw_in_step()
        seen: set[bytes] = set()
        workers = ThreadPoolExecutor(max_workers=self.analyzer.threads + EXTRA_WORKERS,
                                     thread_name_prefix="pgface-worker")
        prefetch = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pgface-prefetch")
        # Prepared one after another by the prefetch thread, so deduplication sees batches in
        # order; each waits for the workers, and this thread takes them in the same order.
        pending: deque[Future[_Prepared]] = deque()

        def prepare_next() -> None:
            chunk = next(upcoming, None)
            if chunk is not None:
                pending.append(prefetch.submit(self._prepare, chunk, workers, seen,
                                               report.timings))

        copies: list[store.Sighting] = []
        formers: Formers = {}
        recorded: set[bytes] = set()  # the paths this run stored

        def record_copies() -> None:
            """Where the stored batches found copies of the photos this run stored; once
            (cleared when committed: a stop that comes after does not record them again)."""
            if not copies:
                return
            def write(conn: psycopg.Connection
                      ) -> tuple[list[int], list[tuple[int, int]], list[store.Sighting], int]:
                moved: list[int] = []
                replaced = store.record_paths(conn, copies, moved)
                store.record_formers(conn, replaced)
                # A photo deleted since it was found stored (`remove`, a prune, another run's
                # former version) cannot take the path: _fail_lost.
                lost = store.unstored(conn, copies)
                kept = keep_people(conn, replaced, self.analyzer.model_name) if replaced else 0
                return moved, replaced, lost, kept

            moved, replaced, lost, kept = people_history.people_first(self.pool, write)
            recorded.update(fs_paths.to_bytes(c.path) for c in copies if c not in lost)
            report.people_kept += kept
            _add_pairs(formers, replaced)
            report.moved += len(moved)
            copies.clear()
            _fail_lost(lost, report, progress)

        try:
            for _ in range(max(1, ahead)):
                prepare_next()
            number = 0
            while pending:
                prepared = pending.popleft().result()
                prepare_next()
                report.skipped += prepared.skipped
                for failure in prepared.failures:
                    report.failures.append(failure)
                    _notify(progress, report, failure)
                report.warnings.extend(PhotoWarning(photo.source, photo.warning)
                                       for photo in prepared.photos if photo.warning)
                self._remember(prepared.failures, reader)
                replaced, lost = self._store(prepared, report, recorded)
                _add_pairs(formers, replaced)
                _fail_lost(lost, report, progress)
                number += 1
                if keep_hnsw and number % HNSW_CHECK_BATCHES == 0:
                    self._keep_hnsw_in_step()
                copies += prepared.copies
                report.seconds = time.perf_counter() - started
                _notify(progress, report, None)
            record_copies()
            if run_formers is None:
                gone = forget_formers(self.pool, formers, self.analyzer.model_name,
                                      recorded, roots, alone)
                report.people_kept += gone.people_kept
                report.warnings += gone.warnings
            else:
                for former, now in formers.items():
                    run_formers.setdefault(former, set()).update(now)
        except BaseException as exc:
            # A run stopped (Ctrl-C, SIGTERM, a job cancelled) records where its stored batches
            # found copies, which the next run would otherwise read again. It forgets no former
            # version: the photo may have moved to a file the run did not reach (a.jpg renamed
            # b.jpg, new content saved as a.jpg), which the next run finds it at; left without
            # a path until then (a complete run, or --prune, forgets it).
            with contextlib.suppress(Exception):
                record_copies()
            if not isinstance(exc, PgfaceError) and out_of_memory(exc):
                # a worker thread that could not start ("can't start new thread": ulimit -v)
                raise no_memory_while("indexing; the batches stored before are kept",
                                      exc) from exc
            raise
        finally:
            # On Ctrl-C: drop the prefetched batches, keep what is committed.
            prefetch.shutdown(wait=True, cancel_futures=True)
            workers.shutdown(wait=True, cancel_futures=True)

    def _remember(self, failures: Sequence[Failure], reader: store.Reader) -> None:
        """Remember the files of these failures whose content failed, where their stamp can be
        trusted (Failure.stamp), as READER failed them: the next run passes over them while
        they are unchanged (files_to_read)."""
        failed = [store.FailedFile(str(canonical(failure.source)), failure.stamp,
                                   failure.reason)
                  for failure in failures if failure.content and failure.stamp is not None]
        if failed:
            with self.pool.connection() as conn, conn.transaction():
                store.remember_failures(conn, failed, reader)

    def _keep_hnsw_in_step(self) -> None:
        """Inserts maintain the HNSW index only while searches can use it (engine.py)."""
        with self.pool.connection() as conn:
            engine.keep_hnsw_in_step(conn)

    def _prepare(self, chunk: list[Path], workers: ThreadPoolExecutor, seen: set[bytes],
                 timings: dict[str, float]) -> _Prepared:
        failures: list[Failure] = []
        with _timed(timings, "read"):
            reads: list[_Read] = []
            for item in workers.map(lambda p: _read(p, self.settings.max_file_bytes,
                                                    self.settings.read_timeout_s, self.within),
                                    chunk):
                if isinstance(item, Failure):
                    failures.append(item)
                else:
                    reads.append(item)
            with self.pool.connection() as conn:
                known = store.known_photos(conn, [r.sha256 for r in reads],
                                           self.analyzer.model_name)
        fresh, skipped = [], 0
        sightings: list[store.Sighting] = []
        copies: list[store.Sighting] = []
        copied: list[_Read] = []  # the reads behind copies
        again: set[bytes] = set()
        for item in reads:
            # A photo this pack has analysed is not analysed again (unless at an older
            # revision, where asked to); where it is now is recorded.
            if item.sha256 in seen:
                skipped += 1
                copies.append(store.Sighting(item.sha256, str(canonical(item.path)), item.stamp))
                copied.append(item)
            elif (item.sha256 in known and known[item.sha256].analysed
                  and not (self.reanalyse and known[item.sha256].outdated)):
                skipped += 1
                sightings.append(store.Sighting(item.sha256, str(canonical(item.path)),
                                                item.stamp))
            else:
                seen.add(item.sha256)
                fresh.append(item)
                if item.sha256 in known and known[item.sha256].analysed:
                    again.add(item.sha256)
        photos: list[_Analyzed] = []
        # The decoder (simplejpeg), the detector and OpenCV release the GIL, so the workers
        # keep every core busy.
        if not fresh:  # nothing to analyse: the models are not even loaded (85 MB)
            work = []
        elif self.analyzer.detects_in_batches:
            work = self._decode_detect_in_batches(fresh, workers, timings)
        else:
            work = _largest_first(workers, lambda r: self._decode_and_analyze(r, timings),
                                  fresh)
        bad: dict[bytes, Failure] = {}
        for read, item in zip(fresh, work, strict=True):
            if isinstance(item, Failure):
                seen.discard(read.sha256)  # a copy of a bad file elsewhere is reported too
                if item.content:  # these bytes, read from a file of this stamp
                    item.stamp = read.stamp
                failures.append(item)
                bad[read.sha256] = item
            else:
                item.row.stamp = read.stamp
                photos.append(item)
        # A copy of a bad file in this batch fails as it does (it was counted as already
        # indexed, with nothing stored).
        good_copies = []
        for read, copy in zip(copied, copies, strict=True):
            if read.sha256 in bad:
                skipped -= 1
                failed = bad[read.sha256]
                failures.append(Failure(str(read.path), failed.reason, failed.content,
                                        read.stamp if failed.content else None))
            else:
                good_copies.append(copy)
        return _Prepared(photos, skipped, failures, sightings, good_copies, again)

    def _store(self, prepared: _Prepared, report: IndexReport, recorded: set[bytes]
               ) -> tuple[list[tuple[int, int]], list[store.Sighting]]:
        """Store a batch (its paths added to recorded); the (former photo, photo now there)
        pairs of the paths that moved to new content (edited in place), and the sightings
        whose photo was deleted since it was found stored (_fail_lost)."""
        if not prepared.photos and not prepared.sightings:
            return [], []  # a batch of failures and copies: nothing to write
        rows = self._rows(prepared.photos, report.timings)
        model = self.analyzer.model_name
        again_rows = [r for r in rows if r.sha256 in prepared.again]
        new_rows = [r for r in rows if r.sha256 not in prepared.again]

        def write(conn: psycopg.Connection) -> tuple[dict[bytes, int], list[int],
                                                      list[tuple[int, int]],
                                                      list[store.Sighting], int, Reanalysed]:
            replaced: list[tuple[int, int]] = []
            reanalysed: list[int] = []
            stored = store.add_photos(conn, new_rows, model, replaced, reanalysed,
                                      self.analyzer.recognizer_sha256)
            # photos analysed again: the new faces beside the old, which give them their
            # people and go (an older analysis's: Indexer.reanalyse)
            ids, old = store.analyse_again(conn, again_rows, model, replaced,
                                           self.analyzer.recognizer_sha256)
            again = reanalyse_people(conn, old, model)
            again.photos = ids
            moved: list[int] = []  # photos found at a new path, their old one gone
            replaced += store.record_paths(conn, prepared.sightings, moved)
            lost = store.unstored(conn, prepared.sightings) if prepared.sightings else []
            kept = keep_people(conn, replaced, model) if replaced else 0
            kept += people_of_stored(conn, stored, reanalysed, model)
            # Photos new to this pack, at paths that held none (no edit in place): those
            # another pack analysed first too (a pack tried on the folder), whose own
            # hand-over could give nothing (its faces do not compare with this pack's), and
            # left the former self with its gone path and the names until a prune.
            kept_from = {now for _, now in replaced}
            new = [r for r in rows if r.sha256 in stored and stored[r.sha256] not in kept_from]
            edited, given = people_of_moved_and_edited(conn, new, stored, model)
            # kept beside the run's own list: a run stopped before its end forgets none
            store.record_formers(conn, replaced)
            store.record_formers(conn, edited, by_name=True)
            return stored, moved, replaced + edited, lost, kept + given, again

        with _timed(report.timings, "store"):
            stored, moved, replaced, lost, kept, again = people_history.people_first(
                self.pool, write)
        report.people_kept += kept + again.people_kept
        report.indexed += len(stored) + len(again.photos)
        report.reanalysed += len(again.photos)
        report.moved += len(moved)
        report.skipped += len(rows) - len(stored) - len(again.photos)
        report.faces += sum(len(r.faces) for r in rows
                            if r.sha256 in stored or r.sha256 in again.photos)
        report.warnings += again.warnings
        recorded.update(fs_paths.to_bytes(r.path) for r in rows)
        recorded.update(fs_paths.to_bytes(s.path) for s in prepared.sightings if s not in lost)
        return replaced, lost

    def _decode_and_analyze(self, item: _Read, timings: dict[str, float]) -> _Analyzed | Failure:
        return self._guarded(item.path, lambda: self._analyze(self._decode(item, timings),
                                                              timings))

    def _decode_detect_in_batches(self, fresh: Sequence[_Read], workers: ThreadPoolExecutor,
                                  timings: dict[str, float]) -> list[_Analyzed | Failure]:
        """Decoded on the workers, detected in shared model runs (a GPU's way: one run per
        input size for the whole batch), aligned on the workers; the same faces as one photo
        at a time. Should the shared run fail, each photo is detected alone, so that one bad
        photo costs no other its faces."""
        decoded = list(workers.map(
            lambda r: self._guarded(r.path, lambda: self._decode(r, timings)), fresh))
        photos = [d for d in decoded if isinstance(d, Photo)]
        try:
            with _timed(timings, "detect"):
                found = self.analyzer.detect_many([photo.image for photo in photos], workers)
        except Exception:  # noqa: BLE001 - retried photo by photo, where the cause shows
            log.debug("batched detection failed; detecting one photo at a time", exc_info=True)
            found = [None] * len(photos)
        placed = [None if faces is None else _placed_or_none(photo, faces,
                                                             self.analyzer.min_face_size)
                  for photo, faces in zip(photos, found, strict=True)]
        matrices = self._batch_alignments(placed, timings)
        by_photo = iter(zip(placed, matrices, strict=True))  # in the order of `decoded`'s photos

        def analyse(item: _Read, photo: Photo | Failure,
                    prepared: tuple[Placed | None, np.ndarray | None]
                    ) -> _Analyzed | Failure:
            if isinstance(photo, Failure):
                return photo
            return self._guarded(item.path, lambda: self._analyze(photo, timings, *prepared))

        return list(workers.map(analyse, fresh, decoded,
                                [next(by_photo) if isinstance(d, Photo) else (None, None)
                                 for d in decoded]))

    def _batch_alignments(self, placed: Sequence[Placed | None], timings: dict[str, float]
                          ) -> list[np.ndarray | None]:
        """Every face's alignment matrix of a batch in one call, split by photo (None where a
        photo's faces are still to be found). Photo by photo, the call's fixed cost (0.4 ms)
        came to more CPU than a GPU's model runs took for the photo."""
        with _timed(timings, "crops"):
            local = [face for photo in placed if photo is not None for face in photo.local]
            try:
                matrices = self.analyzer.alignments(local)
            except Exception:  # noqa: BLE001 - each photo then aligns its own faces
                log.debug("batch alignment failed; aligning photo by photo", exc_info=True)
                return [None] * len(placed)
            out: list[np.ndarray | None] = []
            at = 0
            for photo in placed:
                if photo is None:
                    out.append(None)
                else:
                    out.append(matrices[at:at + len(photo.local)])
                    at += len(photo.local)
            return out

    def _decode(self, item: _Read, timings: dict[str, float]) -> Photo:
        with _timed(timings, "decode"):  # its failures are ContentErrors: the bytes' own
            return decode_photo(item.data, str(item.path), self.settings.max_file_bytes,
                                self.settings.max_pixels, self.settings.decode_keep_side,
                                item.sha256)

    @staticmethod
    def _guarded(path: Path, work: Callable[[], _T]) -> _T | Failure:
        try:
            return work()
        except ImageError as exc:
            return Failure(exc.source, exc.reason, content=isinstance(exc, ContentError))
        except (ModelPackError, OpenFilesError):
            raise  # the models cannot run: the run stops, naming the file (no photo's fault)
        except Exception as exc:  # one photo's surprise never costs the batch its good photos
            # unless memory or open files ran short: the machine's, not the photo's (memory,
            # blamed on it, went on to fail as "unexpected RuntimeError ... (a bug)" in the
            # recognizer; the files, as "cannot analyse image" of every photo)
            machines = machine_short(exc, f"analysing {path}; the batches stored before it "
                                          f"are kept")
            if machines:
                raise machines from exc
            log.debug("analysing %s failed", fs_paths.loggable(path), exc_info=True)
            return Failure(str(path), f"cannot analyse image ({describe(exc)})")

    def _analyze(self, photo: Photo, timings: dict[str, float],
                 placed: Placed | None = None, matrices: np.ndarray | None = None
                 ) -> _Analyzed:
        """Detect (unless the faces are placed already), align, measure and cut thumbnails.
        matrices: the alignments of placed.local, where computed for a whole batch."""
        if placed is None:
            with _timed(timings, "detect"):
                placed = place(photo, self.analyzer.detect(photo.image),
                               self.analyzer.min_face_size)
        faces, factors, local = placed.faces, placed.factors, placed.local
        with _timed(timings, "crops"):
            aligned, thumbnails = [], []
            if matrices is None:
                matrices = self.analyzer.alignments(local)
            for face, there, factor, matrix in zip(faces, local, factors, matrices,
                                                   strict=True):
                pixels = photo.pixels(factor)
                aligned.append(self.analyzer.align(pixels, there, matrix))
                face.quality = photo_quality(face, there)  # kept with the stored face
                thumbnails.append(face_crop_jpeg(pixels, there.bbox, self.settings.crop_size))
        row = store.PhotoRow(sha256=photo.sha256, path=str(canonical(photo.source)),
                             size_bytes=photo.size_bytes, width=photo.width,
                             height=photo.height, taken_at=photo.taken_at)
        photo.warning = warning_given_faces(photo.warning, len(faces))  # an upload's too
        return _Analyzed(row=row, faces=faces, aligned=aligned, thumbnails=thumbnails,
                         source=photo.source, warning=photo.warning)

    def _rows(self, photos: Sequence[_Analyzed], timings: dict[str, float]
              ) -> list[store.PhotoRow]:
        """Embed the faces of all photos in one recognizer call and make each photo a row."""
        if not photos:  # a batch of paths to record only: no stage that did not run is timed
            return []
        with _timed(timings, "embed"):
            try:
                vectors = iter(self.analyzer.embed_aligned(
                    [crop for photo in photos for crop in photo.aligned]))
            except Exception as exc:
                if out_of_memory(exc):
                    raise no_memory_while(f"embedding the faces of {len(photos)} photos; the "
                                          f"batches stored before them are kept", exc) from exc
                raise
        for photo in photos:
            photo.row.faces = [
                store.FaceRow(
                    embedding=next(vectors),
                    bbox=face.bbox.tolist(),
                    landmarks=face.landmarks.reshape(-1).tolist(),
                    det_score=face.det_score,
                    crop=thumbnail,
                    quality=face.quality,
                )
                for face, thumbnail in zip(photo.faces, photo.thumbnails, strict=True)
            ]
        return [photo.row for photo in photos]

    def photo_rows(self, photos: Sequence[Photo], timings: dict[str, float] | None = None
                   ) -> list[store.PhotoRow]:
        """Detect, embed (batched across photos) and make each decoded photo a row."""
        timings = {} if timings is None else timings
        return self._rows([self._analyze(photo, timings) for photo in photos], timings)


# An edit (cropped, brightened, made smaller, saved again) leaves a face's embedding at cosine
# 0.82 to 0.93 of its former self's, while the photo's other faces stay at 0.22 or below
# (friends-6 and bbt-6 cropped by a tenth, contrast 1.15, 0.6 of the size, JPEG quality 80):
# a face of the photo now at a path takes over its former self's person from 0.6 up (and at
# its place from people_store.PLACE_SIMILARITY: small faces drift further).
EDIT_SIMILARITY = 0.6
# A photo of the same file name elsewhere is its former self only if every face it gave a
# person is this close to one of the new photo's. Two photos of one person (IMG_0042.JPG of two
# years) lie further apart than an edit's 0.82 to 0.93: LFW View 1 DevTest's 500 same-person
# pairs at 0.63 (median), 0.79 (95th percentile), 4.6 % of them at 0.8 or above.
MOVED_EDIT_SIMILARITY = 0.8


def keep_people(conn: psycopg.Connection, replaced: Sequence[tuple[int, int]], model: str
                ) -> int:
    """Photos edited in place keep their people: each (former photo, photo now at its path)
    gives its faces' people to the same faces of the new content (people_store says how), in
    the caller's transaction and recorded in the people history (by `index:<user>`, undoable
    like a human's change). Returns how many faces were given a person."""
    people_history.hold_people_now(conn)
    kept = ps.people_for_replacements(conn, replaced, model, EDIT_SIMILARITY, by_place=True)
    return _give_kept(conn, kept, "edited photos") + people_back(conn, replaced, model)


def people_back(conn: psycopg.Connection, replaced: Sequence[tuple[int, int]], model: str
                ) -> int:
    """The people an earlier edit at these paths lost (their faces cropped out, or turned so
    that the detector missed them), kept waiting for the photo each pair replaces (its own
    photo, for a photo just waited for): the new version's faces that nobody holds take them,
    at EDIT_SIMILARITY or above (people_store.people_waiting_for), as an edit's own faces do
    (keep_people), recorded the same way; what was kept for them goes. A photo turned back,
    or cropped again with the face in it, gets the name again; another photo saved there,
    nobody's. Returns how many faces were given a person. The caller holds the people."""
    back = ps.people_waiting_for(conn, replaced, model, EDIT_SIMILARITY)
    if not back:
        return 0
    given = _give_kept(conn, back, "edited photos (back from an earlier edit that lost them)")
    ps.drop_waiting(conn, [k.forgotten_id for k in back if k.forgotten_id is not None])
    return given


@dataclass
class Reanalysed:
    """What analysing photos again (reanalyse_people) did: the photos (sha256 -> id), how many
    faces were given a person, and a warning for each photo whose new faces lack a named
    person of its old ones."""

    photos: dict[bytes, int] = field(default_factory=dict)
    people_kept: int = 0
    warnings: list[PhotoWarning] = field(default_factory=list)


# A photo analysed again whose new faces lack a named person of its old ones (reanalyse_people)
LOST_IN_REANALYSIS = (
    "analysed again (its faces were stored by an older pgface analysis): {who} not found "
    "among the new faces, none close enough to the old face; kept waiting for this photo (a "
    "later version saved here with the face in it gets the name again): name the face with "
    "`pgface people` meanwhile")


def reanalyse_people(conn: psycopg.Connection, old: dict[int, list[int]], model: str
                     ) -> Reanalysed:
    """Photos analysed again (OLD: photo id -> its old faces, the new ones stored beside them
    by store.analyse_again) keep their people: each old face's person goes to the photo's new
    face most like it, at EDIT_SIMILARITY or above, as an edited photo's faces do
    (keep_people: recorded in the people history as a keep, the old faces' before-images
    carried to the new ones, so an undo of an earlier change puts its person on the new face).
    Then the old faces go; one whose person no new face of the photo took waits for the photo
    (people_back gives it to a later version at its path), said in a warning where the person
    is named. In the caller's transaction, which holds the people from here."""
    done = Reanalysed()
    if not old:
        return done
    people_history.hold_people_now(conn)
    kept = ps.people_for_reanalysed(conn, old, model, EDIT_SIMILARITY)
    done.people_kept = _give_kept(conn, kept, "photos analysed again")
    carried = {k.former_face_id for k in kept if k.former_face_id is not None}
    photo_of = {face: photo for photo, faces in old.items() for face in faces}
    taken = {(photo_of[k.former_face_id], k.person_id) for k in kept
             if k.former_face_id is not None and k.person_id is not None}
    lost: dict[int, dict[int, tuple[str | None, bool, int]]] = {}
    for face, (person, name, hidden) in ps.people_of_faces(
            conn, [f for f in photo_of if f not in carried]).items():
        photo = photo_of[face]
        if (photo, person) in taken:
            # a face the old analysis found twice (two passes' boxes of one face, before
            # 1d36905), its person on a new face: nothing to wait for
            carried.add(face)
            continue
        _, _, count = lost.setdefault(photo, {}).get(person, (name, hidden, 0))
        lost[photo][person] = (name, hidden, count + 1)
    store.drop_replaced_faces(conn, old, carried)
    for photo, people in sorted(lost.items()):
        named = [(n, c) for n, hidden, c in people.values() if n is not None and not hidden]
        paths = store.paths_of_photo(conn, photo) if named else []
        if not paths:
            continue
        who = ", ".join(f"'{n}'" + (f" ({c} faces)" if c > 1 else "") for n, c in sorted(named))
        done.warnings.append(PhotoWarning(str(paths[0]), LOST_IN_REANALYSIS.format(who=who)))
    return done


def _as_moved_and_edited(conn: psycopg.Connection, former: int, now: int, model: str,
                         held: int) -> list[ps.KeptFace] | None:
    """The people of FORMER's faces (HELD of them hold one) for NOW's faces, where NOW is
    FORMER moved and edited: each of those faces one of NOW's at MOVED_EDIT_SIMILARITY; None
    where any is not (a photo of the same file name, not an edit of it)."""
    given = ps.people_for_replacements(conn, [(former, now)], model, MOVED_EDIT_SIMILARITY)
    return given if sum(k.person_id is not None for k in given) == held else None


def people_of_moved_and_edited(conn: psycopg.Connection, new_photos: Sequence[store.PhotoRow],
                               ids: dict[bytes, int], model: str
                               ) -> tuple[list[tuple[int, int]], int]:
    """Photos moved and edited in one step (saved again, cropped or turned, and filed in
    another folder) keep their people. Such a photo is new content at a new path, and its
    former self stayed at a path whose file is gone, with the people, until a prune forgot
    them. A new photo's former self is the photo with people recorded at a path of the same
    file name whose file is gone from a folder that is there (store.gone_namesakes), when each
    of its faces with a person is one of the new photo's at MOVED_EDIT_SIMILARITY: then they
    give the new faces their people, and its gone path is forgotten, so the former goes at the
    end of the run as an edited photo's former version does (forget_formers). Returns the
    (former, new photo) pairs and how many faces were given a person."""
    if not new_photos:
        return [], 0
    if not store.gone_namesakes(conn, new_photos, ids, model):
        return [], 0
    people_history.hold_people_now(conn)  # then read again: whose the former faces are now
    pairs, kept, gone = [], [], []
    for photo_id, former in sorted(store.gone_namesakes(conn, new_photos, ids, model).items()):
        given = _as_moved_and_edited(conn, former.photo_id, photo_id, model, former.held_faces)
        if given is not None:
            pairs.append((former.photo_id, photo_id))
            kept += given
            gone.append(former.gone_path)
    if not pairs:
        return [], 0
    store.forget_gone_paths(conn, gone)
    given = _give_kept(conn, kept, "photos moved and edited")
    # and on to the same faces of the packs that analysed the new photo first (a pack tried
    # on the folder), by place: they stayed nameless for good, as no hand-over of theirs can
    # compare their faces with this pack's (probe packs56)
    return pairs, given + people_to_other_packs(conn, sorted({now for _, now in pairs}), [model])


@dataclass
class PrunedPeople:
    """What people_of_pruned did: how many faces it gave a person, and the photos about to be
    deleted that stay instead, their people waiting for a pack (with those packs)."""

    people_kept: int = 0
    waiting: list[int] = field(default_factory=list)
    waiting_for: list[str] = field(default_factory=list)


def people_of_pruned(conn: psycopg.Connection, pathless: Sequence[int]) -> PrunedPeople:
    """Photos a prune is about to delete (no path holds them: their files gone) give their
    faces' people to a photo moved and edited from them, before their faces go: the rule of
    people_of_moved_and_edited, from the other side, where the prune says the files are gone.
    The indexing run left such a former self be when its whole folder was gone (an unmounted
    share's looks so): a folder moved with a photo in it edited, the folder's other photos
    found moved, that one's names were lost at the prune. Each pack's faces are compared with
    its own faces of the new photo, and the people given go on to the other packs' faces of
    it at the same places.

    A pack that holds people on the former but has not analysed the new photo cannot compare
    them (two packs' vectors do not compare; boxes of the former's pixels are not the edit's
    places): the former stays, recorded as the new photo's former, and waits for that pack,
    as an edit in place first indexed under another pack waits (_forget_formers; a former
    waiting so is not deleted by a prune either). When the pack analyses the new photo,
    people_of_waiting_formers gives the people over as a move and edit is (every named face
    at MOVED_EDIT_SIMILARITY) and on to the other packs' faces by place, and the run deletes
    the former. Giving nothing now, the prune deleted the former, and the names never
    reached the new photo under any pack (probe packs56). Not where a pack that analysed both
    found the faces not alike: the new photo is not the former's edit. Returns what it did;
    the caller deletes the photos of PATHLESS that do not wait."""
    pairs = store.present_namesakes(conn, pathless)
    going = set(pathless)
    recorded = {former: {now for now in nows if now not in going}
                for former, nows in store.recorded_formers(conn, pathless).items()}
    if not pairs and not any(recorded.values()):
        return PrunedPeople()
    # After the people changes under way, as a change is: a merge that moved the former's
    # face and deleted its person meanwhile deadlocked with the prune's delete of that face.
    people_history.hold_people_now(conn)
    held = store.held_faces_by_pack(conn, sorted(pairs))
    analysed = store.packs_by_photo(conn, sorted(set(pairs.values()) | {
        now for nows in recorded.values() for now in nows}))
    kept: list[ps.KeptFace] = []
    givers: dict[int, set[str]] = {}  # new photo -> the packs that gave it people
    unlike: set[int] = set()  # formers a pack that analysed both found unlike the new photo
    for (former, model), count in sorted(held.items()):
        now = pairs[former]
        if model not in analysed.get(now, set()):
            continue  # this pack's people wait for it, below
        given = _as_moved_and_edited(conn, former, now, model, count)
        if given is not None:
            kept += given
            givers.setdefault(now, set()).add(model)
        else:
            unlike.add(former)
    done = PrunedPeople(_give_kept(conn, kept, "photos moved and edited (found at a prune)"))
    for now, models in sorted(givers.items()):
        done.people_kept += people_to_other_packs(conn, [now], sorted(models))
    candidates = {former: set(nows) for former, nows in recorded.items() if nows}
    for former, now in pairs.items():
        if former not in unlike:
            candidates.setdefault(former, set()).add(now)
    done.waiting = sorted(store.formers_waiting_for_packs(conn, candidates))
    if done.waiting:
        store.record_formers(conn, [(former, pairs[former]) for former in done.waiting
                                    if former in pairs and former not in unlike], by_name=True)
        waited = store.held_faces_by_pack(conn, done.waiting)
        done.waiting_for = sorted({model for former, model in waited if any(
            model not in analysed.get(now, set()) for now in candidates[former])})
    return done


def people_of_stored(conn: psycopg.Connection, stored: dict[bytes, int],
                     reanalysed: Sequence[int], model: str) -> int:
    """The people the photos add_photos just stored (STORED, its answer) keep: those it
    analysed again for this pack (REANALYSED) from another pack's faces, the new ones from
    when their content was forgotten by path. Returns how many faces were given a person."""
    new = [photo_id for photo_id in stored.values() if photo_id not in reanalysed]
    return (people_of_waiting_formers(conn, reanalysed, model)
            + people_from_other_packs(conn, reanalysed, model)
            + people_found_again(conn, new, model))


def people_of_waiting_formers(conn: psycopg.Connection, photo_ids: Sequence[int], model: str
                              ) -> int:
    """Photos this pack analyses again that are the new version of a photo edited in place
    whose former version this pack had analysed (kept for it: _forget_formers): the former's
    people go to the same faces of the new content, as when this pack indexed the edit
    (keep_people). Before the other packs' hand-over by place, which would give them nobody.

    A former found by its file name (moved and edited, kept for this pack by a prune under
    another: people_of_pruned) gives them as a move and edit does (people_of_moved_and_edited:
    only where each of its faces this pack gave a person is one of the new photo's at
    MOVED_EDIT_SIMILARITY): its file name is all that paired them. Where they are not alike,
    the pair is forgotten: the former is no version of that photo, and the next prune deletes
    it, its people kept for its content, as a prune with one pack does."""
    pairs = store.formers_of_pack(conn, photo_ids, model)
    if not pairs:
        return 0
    edits = [(former, now) for former, now, by_name in pairs if not by_name]
    kept = keep_people(conn, edits, model) if edits else 0
    moves = [(former, now) for former, now, by_name in pairs if by_name]
    unlike: list[tuple[int, int]] = []
    if moves:
        people_history.hold_people_now(conn)
        held = store.held_faces_by_pack(conn, sorted({former for former, _ in moves}))
        given: list[ps.KeptFace] = []
        for former, now in moves:
            faces = _as_moved_and_edited(conn, former, now, model, held.get((former, model), 0))
            if faces is not None:
                given += faces
            else:
                unlike.append((former, now))
        kept += _give_kept(conn, given, "photos moved and edited (kept for this pack)")
        kept += people_back(conn, [pair for pair in moves if pair not in unlike], model)
        store.forget_formers_recorded(conn, unlike)
    # and from these faces to the same faces of the packs that analysed the new version first
    # (the pack tried on the folder), by place, as a new pack's faces take their people
    new_versions = sorted({now for former, now in edits + moves if (former, now) not in unlike})
    return kept + people_to_other_packs(conn, new_versions, [model])


def people_to_other_packs(conn: psycopg.Connection, photo_ids: Sequence[int],
                          givers: Collection[str]) -> int:
    """After the packs GIVERS gave these photos' faces people (an edit's, a move's): the other
    packs that analysed them take those people on their faces at the same places, as a new
    pack's faces take theirs (people_from_other_packs). Their faces cannot be compared with
    the givers', nor with the former version's; without this they stayed nameless, and no
    later run of theirs gave them anything (probe packs56). Returns how many faces were given
    a person."""
    if not photo_ids:
        return 0
    return sum(people_from_other_packs(conn, photo_ids, pack)
               for pack in store.packs_of_photos(conn, photo_ids) if pack not in givers)


def people_from_other_packs(conn: psycopg.Connection, photo_ids: Sequence[int], model: str
                            ) -> int:
    """Photos a new pack analyses keep their people: the faces people hold in another pack's
    analysis of a photo give them to this pack's faces at the same places (people_store says
    how), in the caller's transaction and recorded as keep_people records. Without it a switch
    of pack (to buffalo_l, say) left every person with no face the new pack could find them
    by. Returns how many faces were given a person."""
    if not photo_ids:
        return 0
    people_history.hold_people_now(conn)
    kept = ps.people_from_other_packs(conn, photo_ids, model, ps.PACK_FACE_OVERLAP)
    return _give_kept(conn, kept, "photos another pack had analysed")


def people_found_again(conn: psycopg.Connection, photo_ids: Sequence[int], model: str
                       ) -> int:
    """Photos forgotten by path (`--prune`, `remove`) and found again get their people back:
    the people their faces had when forgotten go to this pack's faces at the same places
    (people_store says how), recorded as keep_people records; what was kept for them is then
    dropped. Without it a photo moved out of the folder a nightly `--prune` covers, and indexed
    where it went, came back with no name on any face. Returns how many faces were given a
    person."""
    if not ps.people_found_again(conn, photo_ids, model, ps.PACK_FACE_OVERLAP)[1]:
        return 0  # the common case, a photo new to the library: nothing held
    people_history.hold_people_now(conn)  # then read again: a merge may have moved them
    kept, found = ps.people_found_again(conn, photo_ids, model, ps.PACK_FACE_OVERLAP)
    given = _give_kept(conn, kept, "photos forgotten and found again")
    ps.drop_forgotten(conn, found)
    return given


def _give_kept(conn: psycopg.Connection, kept: Sequence[ps.KeptFace], what: str) -> int:
    if not kept:
        return 0
    # Recorded, not undoable: undo passes over it (people_history.undo says why). A face whose
    # former self had nobody (it carried before-images only) is given nobody.
    giving = [k for k in kept if k.person_id is not None]
    # ... and the versions of faces nobody holds that a change touched: a face a human took
    # away from a person (`remove`, "Not this person") is kept out of them in its new
    # version too (people_store.KEPT_SINCE); unrecorded, the edit or `index --pending` lost
    # the removal, and the next clustering put the face back (probe living36)
    versions = giving + [k for k in kept if k.person_id is None and k.former_face_id is not None]
    with people_history.recorded_in(conn, people_history.default_actor("index"),
                                    "keep", undoable=False) as change:
        given = ps.assign_kept(conn, giving) if giving else 0
        people_history.carry_to_successors(
            conn, change.id, [(k.face_id, k.person_id, *k.former()) for k in kept])
        change.involve(*dict.fromkeys(k.person_id for k in giving))
        # pairwise (null: a face found again, given what was kept for it): a prune's removal
        # reads which faces an edit gave their people (sql.NAMED_ON_PHOTOS)
        change.payload.update(faces=[k.face_id for k in versions],
                              former_faces=[k.former_face_id for k in versions])
        nobodys = len(versions) - len(giving)
        change.summary = (f"kept the people of {counted(given, 'face')} of {what}"
                          + (f" (and what was decided of {counted(nobodys, 'face')} nobody "
                             f"holds)" if nobodys else ""))
        change.discard = given == 0 and not nobodys
    return given


def _largest_first(workers: ThreadPoolExecutor, analyse: Callable[[_Read], _T],
                   reads: Sequence[_Read]) -> list[_T]:
    """analyse(read) of every read on the workers, the largest files started first; the
    results in the order of the reads. A batch waits for its slowest photo: started last, a
    large one kept one worker busy while the others had nothing left to do. In the order
    listed, indexing took 1.04x as long on the shared photos, 1.03x on the phone-size set and
    1.02x on LFW (docs/benchmarks-index-workers.md)."""
    order = sorted(range(len(reads)), key=lambda i: -len(reads[i].data))
    futures = {i: workers.submit(analyse, reads[i]) for i in order}
    return [futures[i].result() for i in range(len(reads))]


@contextmanager
def hnsw_for_run(pool: ConnectionPool, files: Sequence[Path], model: str, report: IndexReport,
                 progress: ProgressCallback | None = None) -> Iterator[bool]:
    """Around a run over FILES: whether it is a bulk load, which runs without the HNSW index
    (engine.hnsw_off_for_bulk, from the files this pack has not analysed yet, as a sample of
    their paths says), and which builds it again when it ends (engine.keep_hnsw_in_step's rule:
    below half of vector_index.MIN_FACES faces), report.stage REBUILDING told to progress
    first. Should progress raise there (a cancelled job), the building goes on as after any
    other failure of the run. Ctrl-C ends it at once: the next run's keep_hnsw_in_step builds
    the index (or a server's start, api/app.py), and searches meanwhile scan exactly."""
    bulk = False
    if len(files) >= engine.BULK_MIN_PHOTOS:  # no connection taken for a short run
        with pool.connection() as conn:
            bulk = engine.hnsw_off_for_bulk(conn, len(files), analysed_share=lambda: (
                store.analysed_share(conn, files, model)))
    ended = False
    try:
        yield bulk
        if bulk:
            report.stage = REBUILDING
            _notify(progress, report, None)
        ended = True
    except KeyboardInterrupt:
        bulk = False
        raise
    except (psycopg.Error, PoolTimeout, DatabaseError) as exc:
        # A run that lost its database (the server stopped): building now would wait the
        # pool's 30 s for a connection, then fail too. The next run builds the index.
        if isinstance(exc, PoolTimeout | DatabaseError) or connection_lost(exc):
            bulk = False
        raise
    finally:
        try:
            if bulk:
                with pool.connection() as conn:
                    engine.keep_hnsw_in_step(conn)
        except Exception as exc:
            if ended:
                # every photo is stored: said so, and what is left to do (a full disk there
                # read as if storing had failed, and the next run said "0 photos indexed")
                reason = (str(database_error(exc)) if isinstance(exc, psycopg.Error)
                          else describe(exc))
                raise StatementFailed(
                    f"every photo of this run is stored ({counted(report.indexed, 'photo')} "
                    f"indexed, {counted(report.faces, 'face')}), but building the search "
                    f"index again failed: {reason}; searches read every face until it is "
                    f"built, which the next `pgface index` (of any folder) does",
                    getattr(exc, "sqlstate", None)) from exc
            # the run's own failure goes on, said once by its caller; this is a footnote
            log.warning("the HNSW index was not built again after the failed run (%s); the "
                        "next run builds it", database_error(exc) if isinstance(
                            exc, psycopg.Error) else describe(exc))
        finally:
            report.stage = None  # the run is over


def _placed_or_none(photo: Photo, detected: Sequence[Face], min_face_size: float
                    ) -> Placed | None:
    """place, or None (the photo is then detected again alone, where a failure is its own)."""
    try:
        return place(photo, detected, min_face_size)
    except Exception:  # noqa: BLE001
        log.debug("placing the faces of %s failed", fs_paths.loggable(photo.source),
                  exc_info=True)
        return None


_timings_lock = threading.Lock()


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        with _timings_lock:  # stages run in several threads at once
            timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - started


def _notify(progress: ProgressCallback | None, report: IndexReport, failure: Failure | None
            ) -> None:
    if progress is not None:
        progress(report, failure)
