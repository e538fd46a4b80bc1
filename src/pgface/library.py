"""The Python API: one object that owns the models and the database pool."""

from __future__ import annotations

import ctypes
import itertools
import logging
import multiprocessing
import os
import shlex
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import platformdirs
import psycopg
from psycopg_pool import ConnectionPool

from pgface import engine, people_history, vector_index
from pgface import paths as fs_paths
from pgface.config import CALIBRATED_THRESHOLDS, Settings
from pgface.db import server, store
from pgface.db.connection import (
    DatabaseError,
    open_pool,
    public_calls_said_plainly,
    server_identity,
)
from pgface.errors import (
    InvalidTypeError,
    ModelPackError,
    PgfaceError,
    files_run_short,
    shown_name,
)
from pgface.imaging import Photo, PhotoInput, load_photo
from pgface.index import (
    Failure,
    Formers,
    Indexer,
    IndexReport,
    PhotoWarning,
    ProgressCallback,
    batches,
    check_exclude,
    check_progress,
    files_to_read,
    forget_formers,
    hnsw_for_run,
    people_of_pruned,
    photo_files,
    reader_of,
)
from pgface.index_processes import index_in_processes, processes_for
from pgface.models.analysis import FaceAnalyzer
from pgface.models.exiting import pools_refused_at_exit, whole
from pgface.models.packs import resolve_pack
from pgface.models.sessions import available_providers
from pgface.people import People
from pgface.search import (
    Comparison,
    SearchResult,
    StoredQuery,
    analyze_photos,
    check_flag,
    compare_photos,
    photo_notices,
    search_photo,
    search_stored_face,
)

log = logging.getLogger(__name__)
# How stale a library's photo counts may be (Pgface.pack_coverage): recounted at most this
# often while other processes index, and at least this often whatever the statistics say.
COVERAGE_RECOUNT_S = 5.0
COVERAGE_MAX_AGE_S = 60.0


def build_analyzer(settings: Settings,
                   analyzer_class: type[FaceAnalyzer] = FaceAnalyzer) -> FaceAnalyzer:
    """The face analyzer the settings describe; its sessions open on first use.
    analyzer_class: FaceAnalyzer or a subclass of it (a benchmark's variant)."""
    return analyzer_class(
        resolve_pack(settings.model_pack, settings.resolved_models_dir()),
        providers=available_providers(settings.providers,
                                      explicit="providers" in settings.model_fields_set),
        threads=settings.threads,
        det_sizes=settings.det_sizes,
        det_threshold=settings.det_threshold,
        min_face_size=settings.min_face_size,
        batch_size=settings.rec_batch_size,
        cache_dir=model_cache_dir(settings),
        batch_detection=settings.batch_detection,
    )


def model_cache_dir(settings: Settings) -> Path:
    """Where OpenVINO keeps compiled models: in the data folder, unless it belongs to another
    user (root running a command on a user's library), whose folder then gained files of this
    user's that its owner could not remove (their own cache lost from then on); this user's
    cache folder instead."""
    data_dir = settings.resolved_data_dir()
    try:
        mine = data_dir.stat().st_uid == os.geteuid()
    except OSError:
        mine = True  # not there yet: this process makes it
    if mine:
        return data_dir / "cache" / "openvino"
    return platformdirs.user_cache_path("pgface") / "openvino"


def _gone(path: Path) -> bool:
    """Known not to be there (os.path.lexists said False for a path this user may not reach
    too, and `index --prune` passed it over with "0 failed")."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


STOPPED_ON_PURPOSE = ("the embedded PostgreSQL is stopped (`pgface db stop`): start it with "
                      "`pgface db start`")


def outdated_notice(photos: int) -> str:
    """The notice of the photos the active pack analysed at an older revision of pgface's
    analysis (models.ANALYSIS_REVISION): searches, stats and `pgface index` say it."""
    return (f"{photos} {'photo was' if photos == 1 else 'photos were'} analysed by an older "
            f"pgface analysis (before a fix of its face detection: their face boxes and "
            f"embeddings are off, and each searches less surely): `pgface index --pending` "
            f"analyses {'it' if photos == 1 else 'them'} again, keeping their people")


# A photo this pack has not analysed whose every stored path is gone (Pgface.index_pending)
PENDING_GONE = ("file gone since it was indexed (moved or deleted), so this pack cannot "
                "analyse it: index the folder it is in now, or forget it with `pgface index "
                "FOLDER --prune` or `pgface remove`")
# A folder a link led to, the link gone from where it was, itself missing (Pgface.index)
LINK_GONE_MISSING = ("missing, empty or unreadable, and reached through a link that is gone "
                     "from where an earlier run found it, so the photos stored under it were "
                     "not pruned; `pgface remove` forgets them")
# for a program using pgface as a library (the HTTP API's clients have no Pgface to close)
FROM_PYTHON = " (from Python: close() this Pgface, and its next call starts it)"

# Every Pgface of this process, for a forked child to keep what they opened (_kept_in_child)
_INSTANCES: weakref.WeakSet[Pgface] = weakref.WeakSet()


def _kept_in_child() -> None:
    """In a forked child, what the parent's Pgfaces opened is never freed: their models'
    sessions wait, as they are freed, for inference threads that are the parent's and not
    here, for ever (OpenVINO's CPUStreamsExecutor, ONNX Runtime's pools), and their pools'
    connections are the parent's. A gunicorn --preload or Celery prefork worker hung at its
    first request once it let go of the parent's Pgface (pgface.django forgets it), or as it
    exited without ever using pgface (probe hygiene39). A reference Python never gives back
    keeps each alive, past the child's exit too; the child's memory was the parent's."""
    for pf in list(_INSTANCES):
        for opened in (pf._analyzer, pf._pool, *pf._read_pools):
            if opened is not None:
                ctypes.pythonapi.Py_IncRef(ctypes.py_object(opened))


os.register_at_fork(after_in_child=_kept_in_child)


@public_calls_said_plainly
class Pgface:
    """Index photos, search them by face, compare faces.

    >>> import pgface
    >>> with pgface.open() as pf:
    ...     pf.index(["photos/"])
    ...     result = pf.search("someone.jpg")
    """

    def __init__(self, settings: Settings | None = None,
                 analyzer: FaceAnalyzer | None = None) -> None:
        # An analyzer may be shared between instances: its sessions are the costly part.
        if settings is not None and not isinstance(settings, Settings):
            # a dict was taken, and failed later: "'dict' object has no attribute ..."
            raise InvalidTypeError(f"Pgface takes a pgface.Settings, not a "
                                   f"{type(settings).__name__}: Pgface(Settings(threshold=0.3)),"
                                   f" say")
        if analyzer is not None and not isinstance(analyzer, FaceAnalyzer):
            # taken, it failed at the first call: "'str' object has no attribute 'pack'"
            raise InvalidTypeError(f"Pgface's analyzer is a pgface FaceAnalyzer (or None: the "
                                   f"settings' pack), not a {type(analyzer).__name__}")
        self.settings = settings or Settings()
        self._analyzer = analyzer
        self._pool: ConnectionPool | None = None
        self._url: str | None = None
        # the embedded library's pgdata as first opened, (device, inode): data_folder_gone
        self._pgdata_identity: tuple[int, int] | None = None
        self._read_pools: list[ConnectionPool] = []
        self._reads = itertools.count()
        self._read_lock = threading.Lock()
        # one opening of the models and of the pool: threads that arrive first together each
        # opened a pool (and ran the migrations) and loaded the models
        self._open_lock = threading.RLock()
        # pack -> (photos, analysed): see pack_coverage; ("outdated", pack): outdated_analyses
        self._coverage = store.KeptCounts()
        self._pid = os.getpid()
        _INSTANCES.add(self)

    # Models and the database are opened on first use: `compare` needs no database.
    def _same_process(self) -> None:
        """A forked child may not use what its parent opened: the models' threads and the
        pool's connections were the parent's, and a search there hung for ever (in OpenVINO's
        infer, where the parent had searched from several threads)."""
        if os.getpid() == self._pid:
            return
        if self._analyzer is not None or self._pool is not None:
            raise PgfaceError(f"this Pgface was opened in process {self._pid}, and this is a "
                              f"child forked from it: open a Pgface in the child (or start "
                              f"children with multiprocessing's 'spawn' method)")
        self._pid = os.getpid()  # nothing opened yet: the child opens its own

    @property
    def analyzer(self) -> FaceAnalyzer:
        self._same_process()
        if self._analyzer is None:
            with self._open_lock:
                if self._analyzer is None:
                    analyzer = build_analyzer(self.settings)
                    if self._pool is not None:
                        self._check_pack(self._pool, analyzer)
                    self._analyzer = analyzer
        return self._analyzer

    @property
    def pool(self) -> ConnectionPool:
        self._same_process()
        if self._pool is not None and (reason := self._stopped()) is not None:
            # stopped on purpose, it stays stopped (as `pgface serve` leaves it): each call
            # waited the pool's 30 s, then raised psycopg_pool's PoolTimeout
            raise DatabaseError(reason)
        if self._pool is None:
            with self._open_lock:
                if self._pool is None:
                    self._url = self.database_url()
                    if self.embedded:
                        opened = (self.settings.resolved_data_dir() / "pgdata").stat()
                        self._pgdata_identity = (opened.st_dev, opened.st_ino)
                    pool = self._keep_snapshots(
                        open_pool(self._connection_url, schema=self.settings.db_schema,
                                  stopped=self._stopped if self.embedded else None))
                    if self._analyzer is not None:
                        try:
                            self._check_pack(pool, self._analyzer)
                        except BaseException:
                            pool.close()
                            raise
                    self._pool = pool
        return self._pool

    def _stopped(self) -> str | None:
        """Why the embedded server cannot answer: its data folder gone (data_folder_gone), or
        stopped on purpose (`pgface db stop`); the pool asks too, before each wait for a
        connection (a run under way, which holds the pool, waited its 30 s)."""
        if (gone := self.data_folder_gone()) is not None:
            return gone
        if not self.embedded or not server.stopped(self.settings.resolved_data_dir()):
            return None
        return STOPPED_ON_PURPOSE + FROM_PYTHON

    def data_folder_gone(self) -> str | None:
        """Why the embedded library cannot be reached where this process opened it: its data
        folder moved, renamed or deleted since (what is there now, if anything, is another).
        `pgface serve` said its server was stopped, and the `pgface db start` it advised made
        a new, empty library at the old place, which its new connections went to (probe
        reprobe61). None while it is where it was, or before it is opened."""
        if not self.embedded or self._pgdata_identity is None:
            return None
        data_dir = self.settings.resolved_data_dir()
        try:
            now = (data_dir / "pgdata").stat()
            if (now.st_dev, now.st_ino) == self._pgdata_identity:
                return None
        except OSError:
            pass
        return (f"the data folder {data_dir} that this process opened is gone since (moved, "
                f"renamed or deleted; a library there now is another): start it again with "
                f"PGFACE_DATA_DIR set to where the library is now")

    @staticmethod
    def _check_pack(pool: ConnectionPool, analyzer: FaceAnalyzer) -> None:
        """The pack is the one the library knows by its name (models/packs.py): a folder is
        known by its name alone, and one named like a pack the library holds but with another
        recognizer wrote its embeddings among that pack's, to be compared with them."""
        pack = analyzer.pack
        digest = analyzer.recognizer_sha256
        with pool.connection() as conn:
            known = store.known_pack(conn, pack.name, digest, pack.recognizer.name)
        if known is not None:
            sha, file, first = known
            raise ModelPackError(
                f"model pack {pack.name!r} at {pack.folder} is not the {pack.name!r} whose "
                f"embeddings this library holds: its recognizer {pack.recognizer.name} has "
                f"sha256 {digest[:12]}..., the library's (first used "
                f"{first:%Y-%m-%d}) {file} {sha[:12]}...; two models' embeddings cannot be "
                f"compared. A pack is known by its folder's name: give this one a name of "
                f"its own")

    @property
    def read_pool(self) -> ConnectionPool:
        """Where searches go: the hot standbys of PGFACE_READ_DATABASE_URL in turn, else the
        primary. Each standby has its own pool, and so its own in-process index: an index
        must sync and re-rank on one server, or a face a lagging standby lacks looks deleted."""
        urls = self.settings.read_database_url
        if not urls:
            return self.pool
        _ = self.pool  # the primary is migrated before anything is read from a standby
        with self._read_lock:
            if not self._read_pools:
                with self.pool.connection() as conn:
                    primary = server_identity(conn)
                opened = []
                try:
                    for url in urls:
                        opened.append(self._keep_snapshots(open_pool(
                            url, schema=self.settings.db_schema, migrate_first=False,
                            standby_of=primary)))
                except DatabaseError as exc:
                    for pool in opened:
                        pool.close()
                    raise DatabaseError(f"read database {len(opened) + 1} of "
                                        f"PGFACE_READ_DATABASE_URL: {exc}") from exc
                self._read_pools = opened
        return self._read_pools[next(self._reads) % len(self._read_pools)]

    @property
    def read_pools(self) -> list[ConnectionPool]:
        """Every pool searches go to, opened: the standbys', else the primary's."""
        _ = self.read_pool
        return list(self._read_pools) or [self.pool]

    def _keep_snapshots(self, pool: ConnectionPool) -> ConnectionPool:
        """The search index of this pool keeps a snapshot file in data_dir/index."""
        if self.settings.index_snapshot:
            vector_index.keep_snapshots(pool, self.settings.resolved_data_dir() / "index",
                                        self.settings.db_schema)
        return pool

    @property
    def people(self) -> People:
        """Name, cluster and identify people; a light view over the pool and the models."""
        return People(lambda: self.pool, self.analyzer, self.settings,
                      library_notices=self.notices)

    def database_url(self) -> str:
        if self.settings.database_url:
            return self.settings.database_url
        from pgface.db.server import ensure_server

        return ensure_server(self.settings.resolved_data_dir())

    @property
    def embedded(self) -> bool:
        """Whether pgface runs its own PostgreSQL (no PGFACE_DATABASE_URL)."""
        return not self.settings.database_url

    def _connection_url(self) -> str:
        """The URL of each new pool connection: a crashed embedded server is restarted first;
        none where its data folder is gone (a new connection went to whatever was there)."""
        if self.embedded:
            from pgface.db.watch import revive

            if (gone := self.data_folder_gone()) is not None:
                raise DatabaseError(gone)
            revive(self.settings.resolved_data_dir())
        return self._url or self.database_url()

    @property
    def threshold(self) -> float:
        return self.settings.match_threshold(self.analyzer.model_name)

    @whole
    def load_photo(self, photo: PhotoInput, name: str | None = None) -> Photo:
        """A path, a file's bytes, a BGR uint8 array or a Pillow image, as a Photo; NAME is
        what errors and the result's source call one that is not a path (default: what it
        is, "photo bytes", "photo array" or "Pillow image")."""
        s = self.settings
        return load_photo(photo, name, s.max_file_bytes, s.max_pixels, s.read_timeout_s,
                          s.decode_keep_side)

    @whole
    def index(self, paths: fs_paths.Paths, progress: ProgressCallback | None = None,
              within: fs_paths.Paths | None = None, prune: bool = False,
              reread: bool = False, exclude: Sequence[str] = ()) -> IndexReport:
        """Index files and folders (recursively, `~` and relative paths allowed). Photos this
        model pack has analysed are skipped, and where they are now is recorded; a file whose
        size, modification and change time are those it had when last read is not read again.

        within: only files that really lie in these folders (symlinks resolved) are read.
        prune: then forget the photos under these paths whose files are gone
        (report.removed), and the files remembered there as failed that are gone; not under
        a path that is missing, or a folder that holds nothing at all (report.not_pruned): a
        share not mounted, or a disk not plugged in, looks so, and pruning it would forget
        every photo on it with its people (`remove` forgets them).
        reread: read every file, unchanged or not (a check that no content changed behind
        an unchanged size and time), those whose content failed in a run before too. Without
        it, a file whose content failed (not an image, corrupt or truncated, empty, over a
        limit) is passed over while it, what decodes (index.reader_version) and the limits
        are unchanged: counted in report.unchanged_failures, not among report.failures.
        exclude: patterns of the files and folders inside the folders given to leave out,
        besides settings.index_exclude (docs/cli.md, `index --exclude`): `Screenshots` and
        `*.png` match a name at any depth, `2019/private` the path inside a folder given. A
        path given is read whatever they match; the photos stored under a path left out are
        not gone, so `prune` keeps them (`remove` forgets them). report.excluded counts them.
        """
        prune, reread = check_flag("prune", prune), check_flag("reread", reread)
        patterns = [*self.settings.index_exclude, *check_exclude(exclude)]
        expanded = [fs_paths.expand(p) for p in fs_paths.path_list(paths)]
        # With prune, a path that is gone is no failure to index: the prune says why it leaves
        # it alone (report.not_pruned).
        present = [p for p in expanded if not prune or not _gone(p)]
        folders = [fs_paths.canonical(p) for p in present if os.path.isdir(p)]
        # A folder given through a link (~/Pictures -> a disk) is recorded as the links found
        # inside it are, where the link is (paths.link_place): pointed at another disk, a
        # prune of it reached only the new one, and the old disk's photos whose files went
        # stayed, said nowhere.
        given_links = [(fs_paths.link_place(p), real) for p, real in zip(
            (p for p in present if os.path.isdir(p)), folders, strict=True) if p != real]
        with self._one_run_over(present):
            return self._index_alone(present, expanded, folders, given_links, progress,
                                     within, prune, reread, patterns)

    @contextmanager
    def _one_run_over(self, paths: Sequence[Path]) -> Iterator[None]:
        """A run over PATHS while another over the same paths goes on (cron starting one before
        the last one ended) waits for it, saying so, then reads only what that one left: each
        analysed every photo the other was analysing, at twice the time, to call them all
        "already indexed" (probe cron38). Runs over other paths go on side by side."""
        key = b"\0".join([os.fsencode(self.settings.db_schema),
                          os.fsencode(self.analyzer.model_name),
                          # each once: `index x x/` did not wait for `index x` (reprobe39)
                          *sorted({os.fsencode(fs_paths.canonical(p)) for p in paths})])
        conn: psycopg.Connection | None = None
        if files_run_short() is not None or getattr(multiprocessing.current_process(),
                                                    "_inheriting", False):
            # a connection of its own is a file too: a run at its open files' limit goes on
            # without, to say that limit where the models or photos meet it; and a process a
            # run in processes started, importing a script that indexes unguarded, would wait
            # for good for its parent's run: it is told what is wrong (index_processes)
            yield
            return
        try:
            conn = psycopg.connect(self.database_url(), autocommit=True)
            named = list(dict.fromkeys(paths))
            if not store.same_paths_run_lock(conn, key, wait=False):
                log.warning("another pgface index of %s is running: this one waits for it to "
                            "end, then reads what it left (Ctrl-C stops this one)",
                            ", ".join(shown_name(str(p)) for p in named[:3])
                            + (f" and {len(named) - 3} more" if len(named) > 3 else ""))
                try:
                    store.same_paths_run_lock(conn, key, wait=True)
                except KeyboardInterrupt as exc:  # it was "what was stored until then is
                    # kept, a batch cut short rolled back" of a run that began none
                    exc.said = (  # type: ignore[attr-defined]
                        "it was waiting for the other run over these paths: nothing was done")
                    raise
        except BaseException as exc:
            if conn is not None:
                conn.close()
                conn = None
            if not isinstance(exc, psycopg.Error):
                raise
            # no lock to be had (the server going away): the run says what is wrong as it
            # stores, in its own words
        try:
            yield  # the lock goes with the connection
        finally:
            if conn is not None:
                conn.close()  # closed, never rolled back: a server stopped meanwhile is fine

    def _index_alone(self, present: list[Path], expanded: list[Path], folders: list[Path],
                     given_links: list[tuple[Path, Path]],
                     progress: ProgressCallback | None, within: fs_paths.Paths | None,
                     prune: bool, reread: bool, patterns: Sequence[str]) -> IndexReport:
        """Pgface.index's run, with no other over the same paths going on."""
        try:
            report = self._index(present, progress, within, reread, patterns)
        finally:
            self._coverage.clear()  # its photo counts changed
        if prune:  # the folders reached through links hold their photos at their real paths
            # and those linked to before: a link pointed elsewhere left the old folder's photos
            # where no prune looked (a missing one is said, as a missing path given is).
            # And those reached through links gone from where they were, whichever run
            # recorded them: a folder of links (~/Pictures holding `Phone -> /disk`) renamed
            # took its links' records nowhere (no photo of its own was found moved), and a
            # photo deleted where Phone pointed before stayed stored, said nowhere (probe
            # reprobe20). Only files that are gone are forgotten there.
            with self.pool.connection() as conn:
                linked_before = store.linked_folders(conn, [*folders,
                                                            *(p for p, _ in given_links)])
                links_gone = store.links_gone(conn)
            linked = dict.fromkeys([*report.linked_folders, *map(str, linked_before)])
            targets = [*expanded, *map(Path, linked)]
            report.not_pruned = [str(t) for t in targets if not fs_paths.holds_anything(t)]
            # One of those reached through links gone from where they were that is missing too
            # is a warning, not this run's failure: no PATH given leads to it, and a nightly
            # prune of another library exited 1 for it until `pgface remove` (probe reprobe21).
            elsewhere = [f for f in links_gone if str(f) not in linked]
            unreached = [f for f in elsewhere if not fs_paths.holds_anything(f)]
            report.warnings += [PhotoWarning(str(f), LINK_GONE_MISSING) for f in unreached]
            targets += [f for f in elsewhere if f not in unreached]
            report.removed = self.remove([t for t in targets if str(t) not in report.not_pruned],
                                         gone_only=True)
            report.people_kept += report.removed.people_kept
            report.empty_folders = []  # a folder emptied on purpose is what pruning is for
        with self.pool.connection() as conn, conn.transaction():
            store.record_linked_folders(conn, [*report.links, *given_links])
            # said at the end of the run: a run over a big library passes over the photos
            # of an older analysis, and must not turn into analysing them all again
            report.outdated = store.count_outdated(conn, self.analyzer.model_name)
        return report

    @whole
    def index_pending(self, progress: ProgressCallback | None = None) -> IndexReport:
        """Analyse, from their stored paths, the photos this model pack has not analysed, and
        again those it analysed at an older revision of pgface's analysis
        (models.ANALYSIS_REVISION: a detector's fix since changed their faces), their faces
        replaced and each person kept on the new face most like theirs (index.reanalyse_people;
        report.reanalysed counts them)."""
        model = self.analyzer.model_name
        with self.pool.connection() as conn:
            pending, gone = store.unanalysed_paths(conn, model)
            again, again_gone = store.outdated_paths(conn, model)
        gone = sorted({*gone, *again_gone})
        try:
            report = self._index([*pending, *again], progress, reanalyse=True)
            with self.pool.connection() as conn:
                report.outdated = store.count_outdated(conn, model)
        finally:
            self._coverage.clear()
        # Each said, where it was passed over without a word while every search said to run
        # --pending for it (probe packs21), and told as every failure is (the CLI prints it
        # from there: probe reprobe22)
        for path in gone:
            failure = Failure(str(path), PENDING_GONE)
            report.failures.append(failure)
            if progress is not None:
                progress(report, failure)
        return report

    def _index(self, paths: Sequence[Path], progress: ProgressCallback | None,
               within: fs_paths.Paths | None = None, reread: bool = False,
               exclude: Sequence[str] = (), reanalyse: bool = False) -> IndexReport:
        """In this process, or in settings.index_processes of them where the run has more
        than a batch of photos for each: the walk (and its exclude patterns) is this
        process's, the processes are handed the files it found. reanalyse: the photos this
        pack analysed at an older revision are analysed again (index.Indexer's)."""
        with pools_refused_at_exit():
            return self._index_files(paths, progress, within, reread, exclude, reanalyse)

    def _index_files(self, paths: Sequence[Path], progress: ProgressCallback | None,
                     within: fs_paths.Paths | None, reread: bool, exclude: Sequence[str],
                     reanalyse: bool) -> IndexReport:
        check_progress(progress)
        started = time.perf_counter()
        report, files = photo_files(paths, progress, within, exclude)
        if not reread:
            files = files_to_read(self.pool, files, self.analyzer.model_name, report, progress,
                                  reader_of(self.settings), current=reanalyse)
        processes = processes_for(self.settings.index_processes)
        if processes > 1 and len(files) > self.settings.photo_batch:
            _ = self.pool  # the database migrated, and the embedded server up, before they connect
            # The embedded server's children know it is theirs, to restart it as this process
            # does should it crash (handed its URL, they waited 30 s and stopped the run).
            settings = self.settings if self.embedded else self.settings.model_copy(
                update={"database_url": self._url})
            formers: Formers = {}
            with store.index_run(self.pool) as alone, hnsw_for_run(
                    self.pool, files, self.analyzer.model_name, report, progress) as bulk:
                index_in_processes(settings, files, report, processes, progress, started,
                                   keep_hnsw=not bulk, formers=formers,
                                   within=None if within is None
                                   else fs_paths.path_list(within), reanalyse=reanalyse)
                # once every process has recorded its paths (not after a stop: index.py says why)
                gone = forget_formers(self.pool, formers, self.analyzer.model_name,
                                      roots=paths, alone=alone)
                report.people_kept += gone.people_kept
                report.warnings += gone.warnings
            report.seconds = time.perf_counter() - started  # building the index again included
            return report
        return Indexer(self.analyzer, self.pool, self.settings, within,
                       reanalyse).index_batches(
            batches(files, self.settings.photo_batch), report, progress, started, files=files,
            roots=paths)

    def remove(self, paths: fs_paths.Paths, gone_only: bool = False, *, wait: bool = True
               ) -> store.Removal:
        """Forget photos by path: the files given and every file under the folders given.
        A photo that also lives at another path keeps it; a photo with no path left is
        deleted with its faces (its people keep their other faces), as is a photo no path holds
        any more (a broken file written over its only one) shown at a path given or under a
        folder given. Files are never touched.
        The files there whose content failed, remembered so that runs pass over them while
        they are unchanged, are forgotten too (the next run reads them).

        gone_only: only the paths whose file no longer exists (and photos with no path).
        wait: where the photos' faces hold people and a change to people (a clustering run:
        minutes) holds them, wait as long as it takes; False: PeopleBusyError after
        people_history.BUSY_WAIT_S, nothing forgotten (the HTTP API's).
        """
        gone_only = check_flag("gone_only", gone_only)
        wait = check_flag("wait", wait)
        targets = [fs_paths.canonical(p) for p in fs_paths.path_list(paths)]

        def write(conn: psycopg.Connection) -> store.Removal:
            # A link given that is gone (`home/trip -> real/trip`, both deleted): what runs
            # stored through it is where it led, which the link records say. It forgot
            # nothing, with no word (probe living36), where an existing link is followed.
            # Only where the folder it led to is gone too: one still there is the folder's,
            # maybe indexed there directly, and its photos stay, said (probe reprobe36: they
            # left search, names and all, for a link deleted alone).
            gone_links = [] if gone_only else [t for t in targets if not os.path.lexists(t)]
            # A path gone, named in the other Unicode form than a Mac stored it (`Zoë` typed,
            # the folder decomposed, deleted): what is stored under that form is gone too, as
            # a prune would forget it; it stayed, "nothing was stored at it" (probe
            # reprobe37b). One there is another name on Linux, and stays (the CLI names it).
            targets.extend(other for gone in gone_links
                           for other in fs_paths.other_unicode_forms(gone).values()
                           if other not in targets and not os.path.lexists(other))
            reached = store.linked_folders(conn, gone_links) if gone_links else []
            still_there = [folder for folder in reached if os.path.lexists(folder)]
            targets.extend(folder for folder in reached
                           if folder not in targets and folder not in still_there)
            # ... and a folder given that held such a link: where the folder the link led to
            # is gone too, its photos are forgotten with the folder's (`remove home` forgot
            # nothing of `home/r -> real`, both deleted, with no word: probe reprobe37); one
            # still there stays its own (docs/cli.md: a folder of links forgets none of them)
            present = [] if gone_only else [t for t in targets if os.path.lexists(t)]
            targets.extend(folder for folder in store.linked_folders(conn, present)
                           if folder not in targets and not os.path.lexists(folder))
            # the files remembered there as failed (index.files_to_read), gone or not
            failed = store.forget_failures(conn, targets, gone_only)
            forgotten = store.forget_paths(conn, targets, gone_only)
            # The people, before their faces are remembered and deleted: an erase, merge or
            # delete of a person of these photos at the same time deadlocked with it.
            if store.any_face_held(conn, forgotten.photos):
                people_history.hold_people_now(conn)
            if not gone_only:
                removal = store.delete_forgotten(conn, forgotten, gone_only)
            else:
                pathless = store.pathless_photos(conn, forgotten.photos, everywhere=True)
                # ... but not the former of a photo swapped with a file in a folder no run
                # read since: a path of the photo now at its path holds a file changed since
                # it was recorded, which may hold it (index.forget_formers keeps it so). The
                # prune of one folder deleted it with its people, 'Ada' said among the named
                # faces removed, and the other folder's run analysed it again (probe living).
                elsewhere = store.maybe_elsewhere(conn, store.recorded_formers(conn, pathless))
                pathless = [photo for photo in pathless if photo not in elsewhere]
                if store.any_face_held(conn, pathless):  # pathless before: another run's
                    people_history.hold_people_now(conn)
                kept = people_of_pruned(conn, pathless)
                # those whose people wait for a pack stay (people_of_pruned says why)
                waiting = set(kept.waiting)
                removal = store.delete_forgotten(
                    conn, forgotten, gone_only, [p for p in pathless if p not in waiting])
                removal.people_kept = kept.people_kept
                removal.waiting, removal.waiting_for = len(kept.waiting), kept.waiting_for
            removal.failed_files = failed
            removal.linked_still_there = [str(folder) for folder in still_there]
            return removal

        try:
            return people_history.people_first(
                self.pool, write, None if wait else people_history.BUSY_WAIT_S)
        finally:
            self._coverage.clear()

    def notices(self, pack: str | None = None) -> list[str]:
        """What makes answers of the active model pack (or of PACK, a stored face's own, which
        search_face searches among) empty or less sure, with the fix."""
        active = self.analyzer.model_name
        pack = active if pack is None else pack
        found = []
        photos, analysed = self.pack_coverage(pack)
        if analysed < photos:
            found.append(
                f"model pack {pack!r} has analysed {analysed} of the {photos} stored photos, "
                f"so it cannot find faces in the others: run `pgface index --pending` (with "
                f"{'this PGFACE_MODEL_PACK' if pack == active else f'PGFACE_MODEL_PACK={pack}'}"
                f") to analyse them")
        outdated = self.outdated_analyses(pack)
        if outdated:
            found.append(outdated_notice(outdated))
        if self.settings.threshold is None and pack not in CALIBRATED_THRESHOLDS:
            # the pack as set (a folder's path): its folder's name alone, run from elsewhere,
            # named no pack (probe readme42); another pack by its name
            named = self.settings.model_pack if pack == active else pack
            found.append(
                f"model pack {pack!r} has no calibrated threshold: using "
                f"{self.settings.match_threshold(pack)}; calibrate it on LFW View 1 with "
                f"`.venv/bin/python bench/accuracy.py --skip-seed --pack {shlex.quote(named)}` "
                f"(README, Configuration) and set PGFACE_THRESHOLD")
        return found

    def pack_coverage(self, pack: str, pool: ConnectionPool | None = None) -> tuple[int, int]:
        """(photos stored that a run can analyse, photos the pack has analysed), counted
        again only once rows of photos or photo_analyses were added or deleted (by any
        process, as PostgreSQL's statistics tell, or by this object), at most every
        COVERAGE_RECOUNT_S while they
        change, and at least every COVERAGE_MAX_AGE_S: two counts of every photo were the
        cost of each search's notices. pool: the one to count in (the library's)."""
        return self._coverage.get(pack, (pool or self.pool).connection, store.coverage_stamp,
                                  lambda conn: store.pack_coverage(conn, pack),
                                  COVERAGE_RECOUNT_S, COVERAGE_MAX_AGE_S)

    def outdated_analyses(self, pack: str, pool: ConnectionPool | None = None) -> int:
        """How many photos the pack analysed at an older revision of pgface's analysis
        (models.ANALYSIS_REVISION), kept as pack_coverage keeps its counts."""
        return self._coverage.get(("outdated", pack), (pool or self.pool).connection,
                                  store.coverage_stamp,
                                  lambda conn: store.count_outdated(conn, pack),
                                  COVERAGE_RECOUNT_S, COVERAGE_MAX_AGE_S)

    def _count_ahead(self, pack: str) -> None:
        """pack_coverage in the background, so a new process counts while its models load.
        In the pool open now: the library closed meanwhile, self.pool would open it again,
        and its connections stayed (a Django test database's DROP was refused: "being
        accessed by other users")."""
        pool = self.pool

        def count() -> None:
            try:
                self.pack_coverage(pack, pool)
                self.outdated_analyses(pack, pool)
            except Exception as exc:  # notices() meets it again and reports it
                log.debug("counting photos in the background: %s", exc)

        threading.Thread(target=count, name="pgface-coverage", daemon=True).start()

    @whole
    def search(self, photo: PhotoInput, top: int | None = None,
               threshold: float | None = None, min_quality: float | None = None
               ) -> SearchResult:
        """For each face in the photo, the stored faces at or above the threshold, best first;
        faces below the quality floor (default: settings.min_quality) are not searched."""
        pool = self.read_pool  # opened here, before another thread may use the primary's pool
        if self.analyzer.model_name not in self._coverage:
            self._count_ahead(self.analyzer.model_name)
        loaded = self.load_photo(photo)
        result = search_photo(
            self.analyzer, pool, loaded,
            top=self.settings.top_k if top is None else top,
            threshold=self.threshold if threshold is None else threshold,
            ef_search=self.settings.ef_search, one_to_one=self.threshold,
            min_quality=self.settings.min_quality if min_quality is None else min_quality,
        )
        result.notices = photo_notices(loaded.source, loaded.warning) + self.notices()
        return result

    @whole
    def search_face(self, face_id: int, top: int | None = None,
                    threshold: float | None = None, min_quality: float | None = None
                    ) -> SearchResult:
        """The stored faces most like stored face FACE_ID (a Match's or StoredFace's
        face_id), the face itself left out: one query face, in the shape of `search`'s result.
        Nothing is analysed; the face is searched among its own pack's faces, with that pack's
        threshold unless one is given. NotFoundError where no face has that id."""
        found = self.search_stored_face(face_id, top, threshold, min_quality)
        found.result.notices = self.notices(found.result.model)
        return found.result

    @whole
    def search_stored_face(self, face_id: int, top: int | None = None,
                           threshold: float | None = None, min_quality: float | None = None
                           ) -> StoredQuery:
        """search_face's result with the size of the face's photo (its box's frame)."""
        return search_stored_face(
            self.read_pool, face_id, self.settings.top_k if top is None else top, threshold,
            self.settings.ef_search,
            self.settings.min_quality if min_quality is None else min_quality,
            self.settings.match_threshold)

    @whole
    def compare(self, photo_a: PhotoInput, photo_b: PhotoInput,
                threshold: float | None = None, min_quality: float | None = None) -> Comparison:
        """Whether the main face of either photo is someone in the other (search.compare_photos):
        the order of the photos does not matter; faces below the quality floor (default:
        settings.min_quality) are not compared."""
        return compare_photos(
            self.analyzer, self.load_photo(photo_a, "photo A"), self.load_photo(photo_b, "photo B"),
            self.threshold if threshold is None else threshold,
            self.settings.min_quality if min_quality is None else min_quality,
        )

    @whole
    def embed(self, photo: PhotoInput) -> list[np.ndarray]:
        """Unit embeddings of every face in the photo, largest face first."""
        return [f.embedding for f in analyze_photos(self.analyzer, [self.load_photo(photo)])[0]]

    def photo_faces(self, paths: fs_paths.Paths) -> dict[str, list[store.StoredFace]]:
        """The faces stored for these photo files, and for the photos in these folders (at
        any depth, as `index` and `remove` take a folder; a folder was {} without a word),
        this model pack's, keyed by stored path."""
        resolved = [fs_paths.canonical(p) for p in fs_paths.path_list(paths)]
        folders = [p for p in resolved if p.is_dir()]
        with self.pool.connection() as conn:
            return store.faces_of_paths(conn, [p for p in resolved if p not in folders],
                                        self.analyzer.model_name, folders)

    def keep_hnsw_in_step(self) -> str | None:
        """Build the HNSW index where the library is small and lacks it (a bulk indexing run
        killed before it built it again), or drop it where the library has outgrown it
        (engine.keep_hnsw_in_step); says which it did, or None."""
        with self.pool.connection() as conn:
            return engine.keep_hnsw_in_step(conn)

    def stats(self) -> dict:
        with self.pool.connection() as conn:
            result = store.stats(conn, self.analyzer.model_name)
        result["model_pack"] = self.analyzer.model_name
        result["provider"] = self.analyzer.provider
        result["threshold"] = self.threshold
        result["threshold_calibrated"] = (self.settings.threshold is not None
                                          or self.analyzer.model_name in CALIBRATED_THRESHOLDS)
        result["notices"] = self.notices()
        return result

    def close(self) -> None:
        """Close the database pools (the next call opens them again). In a child forked from
        the process that opened them they are let go, not closed: their connections are the
        parent's, and a worker leaving `with pgface.open() as pf:` ended the parent's idle
        sessions (probe reprobe40); _kept_in_child keeps them from being freed there."""
        parents = os.getpid() != self._pid
        for pool in [*self._read_pools, self._pool]:
            if pool is not None and not parents:
                pool.close()
        self._read_pools, self._pool = [], None

    def __reduce__(self) -> tuple:
        """A Pgface holds models, threads and connections of this process: sent to another
        (`pool.map(pf.search, files)` with a process pool) it was "cannot pickle
        '_thread.lock' object", or OpenVINO's 'Core' (probe apiclient)."""
        raise PgfaceError("a Pgface cannot be sent to another process (its models and "
                          "database connections are this process's): open one in each worker "
                          "process, `pgface.Pgface(settings)` with the same settings")

    def __enter__(self) -> Pgface:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open(settings: Settings | None = None) -> Pgface:  # noqa: A001 - mirrors sqlite3-style APIs
    """A Pgface with settings from the environment (PGFACE_*) unless given."""
    return Pgface(settings)
