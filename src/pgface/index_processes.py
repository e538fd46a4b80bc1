"""Indexing in several processes: each runs the whole pipeline of index.py (models, interpreter
lock, database connections and a share of the threads of its own) on batches it takes from
one queue, and tells this process what it stored through a pipe of its own.

One process's threads hold one interpreter lock between them (decoding's bookkeeping, anchor
decoding, alignment, storing), so on a long run its cores idle part of the time; processes do
not share a lock. A process costs its start (a fresh interpreter, the models loaded and
compiled from the cache): worth it for a long run, not for a few photos.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import multiprocessing
import os
import queue
import resource
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import psycopg

from pgface.config import Settings
from pgface.db.connection import DatabaseLost, database_error
from pgface.errors import (
    OutOfMemoryError,
    PgfaceError,
    describe,
    no_memory_while,
    os_reason,
    out_of_memory,
)
from pgface.imaging import quiet_decoders
from pgface.index import (
    PREFETCH_BATCHES,
    Failure,
    Formers,
    Indexer,
    IndexReport,
    PhotoWarning,
    ProgressCallback,
    batches,
)
from pgface.models.sessions import default_threads
from pgface.paths import PathLike

log = logging.getLogger(__name__)

# A child starts from a fresh interpreter: a fork would copy this process's threads,
# connection pool and inference sessions, none of which survive it.
_CONTEXT = multiprocessing.get_context("spawn")
BATCHES_PER_PROCESS = 6  # smaller batches for short runs, so that no process ends long first
# A process of one thread keeps one batch prepared ahead, not index.py's two: a second would
# sit in it at the end of a run while another process idles (150 shared photos, 2 cores:
# 0.93x the time, median of 5 alternations). With more threads, index.py's reason holds.
ONE_THREAD_PREFETCH = 1
POLL_S = 0.2
# How long after a process is seen to have exited its last messages may still be read (they
# are in its pipe, sent before it exited).
LAST_WORDS_S = 1.0
# How long a stopping run waits for its processes to finish the batches they are storing.
STOP_WAIT_S = 120.0
# A spawned process imports the starting script again: one whose indexing is not under the
# guard indexes again in every process it starts, which may start none.
UNGUARDED_SCRIPT = ('a script that indexes in several processes must do so under '
                    '`if __name__ == "__main__":`, because each process it starts imports '
                    'the script again')


def processes_for(setting: int) -> int:
    """The indexing processes a setting asks for (0: one per core)."""
    return setting if setting > 0 else default_threads()


def threads_each(threads: int, processes: int) -> int:
    """Each process's share of the threads (0: of the cores), at least one."""
    return max(1, (threads if threads > 0 else default_threads()) // processes)


def batch_size(files: int, processes: int, photo_batch: int) -> int:
    """photo_batch, or fewer photos where the run is short, so that every process gets several
    batches and the last ones end close together."""
    return max(1, min(photo_batch, math.ceil(files / (processes * BATCHES_PER_PROCESS))))


@dataclass
class _Tally:
    """What one process has reported so far (its counts are running totals)."""

    indexed: int = 0
    skipped: int = 0
    faces: int = 0
    people_kept: int = 0
    moved: int = 0
    reanalysed: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    ready: bool = False
    done: bool = False
    exited_at: float | None = None


def index_in_processes(settings: Settings, files: Sequence[Path], report: IndexReport,
                       processes: int, progress: ProgressCallback | None = None,
                       started: float | None = None, keep_hnsw: bool = True,
                       formers: Formers | None = None,
                       within: Sequence[PathLike] | None = None,
                       reanalyse: bool = False) -> IndexReport:
    """Index files (listed already, into report) in PROCESSES processes.

    settings.database_url must name the database itself (the embedded server's too): a child
    connects to it and never starts a server. Stopping works as in one process: should
    progress raise (a cancelled job) or a process fail or die, the others stop after the batch
    each is storing commits, the report counts what was stored, and the exception goes on.
    Ctrl-C stops them at once: a batch cut short rolls back, nothing is half-written.
    keep_hnsw False: the caller has the HNSW index off for this run (index.hnsw_for_run), and
    the processes leave it so. formers: where the run's former versions of edited photos go,
    the processes' together, for the caller to forget once the run is done
    (index.forget_formers); no process forgets its own while another may still record a path.
    within: folders every file read must really lie in (Indexer's).
    reanalyse: photos analysed at an older revision are analysed again (Indexer's).
    """
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        # multiprocessing's own test (spawn._check_not_importing_main): this process is one
        # that a run started, still importing the script that started it
        raise PgfaceError(f"indexing in several processes started while a process of such "
                          f"a run was starting: {UNGUARDED_SCRIPT}")
    started = time.perf_counter() if started is None else started
    chunks = batches(files, batch_size(len(files), processes, settings.photo_batch))
    processes = max(1, min(processes, len(chunks)))
    child = settings.model_copy(update={
        "threads": threads_each(settings.threads, processes), "index_processes": 1})
    try:  # the queue, its lock (and multiprocessing's resource tracker), the pipes: files each
        tasks = _CONTEXT.Queue()
        stop = _CONTEXT.Event()
        # A pipe of its own for each process's messages, not one queue for all: a process
        # killed while it wrote to a shared queue kept that queue's lock, and another process,
        # waiting for the lock to send its last message, could not exit (the run then waited
        # STOP_WAIT_S before it stopped it).
        pipes = [_CONTEXT.Pipe(duplex=False) for _ in range(processes)]
    except OSError as exc:
        raise _cannot_start(processes, exc) from None
    for chunk in chunks:
        tasks.put([str(path) for path in chunk])
    for _ in range(processes):
        tasks.put(None)  # one stop each
    workers = [_CONTEXT.Process(target=_index_queue,
                                args=(child, tasks, sender, stop, os.getpid(), keep_hnsw,
                                      {name: logging.getLogger(name).getEffectiveLevel()
                                       for name in QUIETED_LOGS},
                                      None if within is None else [str(r) for r in within],
                                      reanalyse),
                                name=f"pgface-index-{n}", daemon=True)
               for n, (_, sender) in enumerate(pipes)]
    run = _Run(workers, {}, {}, report, progress, started, skipped_before=report.skipped,
               timings_before=dict(report.timings),
               formers=formers if formers is not None else {})
    try:
        for worker, (receiver, sender) in zip(workers, pipes, strict=True):
            try:
                worker.start()
            except OSError as exc:  # those started are stopped below
                raise _cannot_start(processes, exc) from None
            sender.close()  # the process's copy is its own: its end reads as EOF once it exits
            run.tallies[worker.pid] = _Tally()  # type: ignore[index]
            run.receivers[receiver] = worker.pid  # type: ignore[assignment]
        try:
            run.gather()
        except KeyboardInterrupt:
            raise
        except BaseException:
            stop.set()
            run.wind_down()
            raise
    finally:
        for worker in workers:  # Ctrl-C, or a process that would not stop in time
            if worker.is_alive():
                worker.terminate()
        for worker in workers:
            if worker.pid is not None:  # one that failed to start cannot be waited for
                worker.join()
        _drain(tasks)  # batches no process took: their queue's feeder thread can then end
        tasks.close()
        for receiver, _ in pipes:
            receiver.close()
        report.seconds = time.perf_counter() - started
    return report


def _cannot_start(processes: int, exc: OSError) -> PgfaceError:
    """The processes could not be started (a pipe or a process refused): it was the bare
    "error: Too many open files", which said neither what failed nor what to change."""
    hint = ""
    if exc.errno == errno.EMFILE:
        hint = (f"; this process may open {resource.getrlimit(resource.RLIMIT_NOFILE)[0]} "
                f"files: raise `ulimit -n`, or run fewer --processes")
    elif exc.errno in (errno.EAGAIN, errno.ENOMEM):
        hint = "; run fewer --processes"
    return PgfaceError(f"cannot start {processes} indexing processes ({os_reason(exc)}){hint}")


@dataclass
class _Run:
    """The parent's side of a run: the processes' messages folded into one report."""

    workers: list[Any]
    tallies: dict[int, _Tally]
    receivers: dict[Connection, int]  # each process's end of its pipe, still open: its pid
    report: IndexReport
    progress: ProgressCallback | None
    started: float
    pending: deque[tuple] = field(default_factory=deque)  # read, not folded yet
    # counted before the processes started: the files not to be read, and checking them
    skipped_before: int = 0
    timings_before: dict[str, float] = field(default_factory=dict)
    formers: Formers = field(default_factory=dict)  # the processes' together

    def gather(self) -> None:
        """Until every process is done; a process's error or death raises."""
        while not all(t.done for t in self.tallies.values()):
            message = self._next()
            if message is None:
                self._check_alive()
                continue
            if message[0] == "error":
                if message[3] == "memory":  # the machine's: said as one process says it
                    raise OutOfMemoryError(message[2])
                if message[3] == "lost":  # the database's, said so too (it was psycopg's class)
                    raise DatabaseLost(message[2])
                raise PgfaceError(f"an indexing process failed, so the run stopped "
                                  f"({message[2]}); the batches stored before are kept")
            self._fold(message)

    def wind_down(self) -> None:
        """While the processes finish the batches they are storing: fold what they report
        (progress told too; its exceptions are the stop already under way)."""
        deadline = time.monotonic() + STOP_WAIT_S
        while time.monotonic() < deadline:
            message = self._next()
            if message is None:
                if not any(worker.is_alive() for worker in self.workers):
                    return
                continue
            if message[0] != "error":
                with contextlib.suppress(Exception):
                    self._fold(message)
        stuck = [worker.name for worker in self.workers if worker.is_alive()]
        if stuck:  # stopped by index_in_processes' terminate; what they store rolls back
            log.warning("%s did not stop within %.0f s of the run's stop; terminated",
                        ", ".join(stuck), STOP_WAIT_S)

    def _next(self) -> tuple | None:
        """The next message of any process, after up to POLL_S for one; None if none came. A
        pipe whose process has exited (its end read, or a message cut short by a kill) is
        closed and left out from then on."""
        if not self.pending:
            for receiver in wait(list(self.receivers), timeout=POLL_S):
                try:
                    self.pending.append(receiver.recv())  # type: ignore[union-attr]
                except (EOFError, OSError):
                    del self.receivers[receiver]  # type: ignore[arg-type]
                    receiver.close()  # type: ignore[union-attr]
        return self.pending.popleft() if self.pending else None

    def _fold(self, message: tuple) -> None:
        kind, pid, *rest = message
        report, tally = self.report, self.tallies[pid]
        if kind == "ready":
            tally.ready = True
            report.startup = max(report.startup, time.perf_counter() - self.started)
            return
        if kind == "failure":
            failure = Failure(*rest)
            report.failures.append(failure)
            if self.progress is not None:
                self.progress(report, failure)
            return
        (tally.indexed, tally.skipped, tally.faces, tally.people_kept, tally.moved,
         tally.reanalysed, tally.timings) = rest[:7]
        if kind == "done":
            tally.done = True
            report.warnings.extend(PhotoWarning(*w) for w in rest[7])
            for former, now in rest[8]:
                self.formers.setdefault(former, set()).update(now)
        report.indexed = sum(t.indexed for t in self.tallies.values())
        report.skipped = self.skipped_before + sum(t.skipped for t in self.tallies.values())
        report.people_kept = sum(t.people_kept for t in self.tallies.values())
        report.moved = sum(t.moved for t in self.tallies.values())
        report.reanalysed = sum(t.reanalysed for t in self.tallies.values())
        report.faces = sum(t.faces for t in self.tallies.values())
        report.timings = dict(self.timings_before)
        for t in self.tallies.values():
            for stage, seconds in t.timings.items():
                report.timings[stage] = report.timings.get(stage, 0.0) + seconds
        report.seconds = time.perf_counter() - self.started
        if self.progress is not None:
            self.progress(report, None)

    def _check_alive(self) -> None:
        """A process that exited without saying it was done (killed, out of memory) stops
        the run, once its last messages have had time to arrive."""
        now = time.monotonic()
        for worker in self.workers:
            tally = self.tallies[worker.pid]
            if tally.done or worker.is_alive():
                continue
            if tally.exited_at is None:
                tally.exited_at = now
            elif now - tally.exited_at > LAST_WORDS_S:
                # an error as it started (a signal is a kill, or the memory gone: below)
                if not tally.ready and (worker.exitcode or 0) > 0:
                    raise PgfaceError(f"an indexing process ended before it was ready "
                                      f"(exit code {worker.exitcode}; its error, if any, is "
                                      f"on standard error), so the run stopped; the batches "
                                      f"stored before are kept. If a script started the "
                                      f"run: {UNGUARDED_SCRIPT}")
                raise PgfaceError(f"an indexing process ended unexpectedly (exit code "
                                  f"{worker.exitcode}), so the run stopped; the batches "
                                  "stored before are kept")


def _drain(tasks: Any) -> None:
    while True:
        try:
            tasks.get(timeout=0.05)
        except queue.Empty:
            return


# The logs a parent may quiet (the CLI does: its errors are one line) that its children would
# write otherwise: psycopg_pool's reconnection attempts, objects' reprs and all, and the
# restart of a crashed embedded server, while the server restarted (probe crash23).
QUIETED_LOGS = ("psycopg", "pgface.db.watch")


class _Stopped(Exception):
    """Raised in a child between batches once the parent has asked the run to stop."""


def _index_queue(settings: Settings, tasks: Any, results: Connection, stop: Any, parent: int,
                 keep_hnsw: bool, log_levels: dict[str, int] | None = None,
                 within: list[str] | None = None, reanalyse: bool = False) -> None:
    """A child: index the batches of the queue until its stop, reporting as it goes through
    its own pipe (RESULTS). Its logs of QUIETED_LOGS as quiet as the parent's (LOG_LEVELS).
    within: the folders every file read must lie in (Indexer's); reanalyse: Indexer's."""
    # Ctrl-C reaches the whole process group: the parent decides, and stops the children.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name, level in (log_levels or {}).items():
        logging.getLogger(name).setLevel(level)
    quiet_decoders()  # pgface's own process: its stderr is the parent's terminal
    from pgface.library import Pgface  # which imports this module

    pid = os.getpid()
    sending = threading.Lock()  # a pipe's messages may not interleave

    def send(message: tuple) -> None:
        with sending:
            results.send(message)

    def told(report: IndexReport, failure: Failure | None) -> None:
        if failure is not None:
            send(("failure", pid, failure.source, failure.reason))
            return
        send(("batch", pid, *_counts(report)))
        if stop.is_set():  # the batch just stored was the last: the prefetched ones are dropped
            raise _Stopped

    def chunks() -> Iterator[list[Path]]:
        # an orphan (its parent killed) takes no more batches either
        while os.getppid() == parent and not stop.is_set():
            try:
                # Not a wait without end: a process killed while it took a batch keeps the
                # queue's lock, and this one must still see the stop.
                chunk = tasks.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if chunk is None:
                return
            yield [Path(p) for p in chunk]

    report = IndexReport()
    formers: Formers = {}
    try:
        with Pgface(settings) as pf:
            pf.analyzer.warm_up()
            _ = pf.pool
            send(("ready", pid))
            with contextlib.suppress(_Stopped):
                Indexer(pf.analyzer, pf.pool, settings, within, reanalyse).index_batches(
                    chunks(), report, told, ahead=ONE_THREAD_PREFETCH
                    if settings.threads == 1 else PREFETCH_BATCHES, keep_hnsw=keep_hnsw,
                    formers=formers)
        send(("done", pid, *_counts(report), [(w.source, w.reason) for w in report.warnings],
              [(former, sorted(now)) for former, now in formers.items()]))
    except BaseException as exc:  # noqa: BLE001 - told to the parent, which stops the run
        # memory run out is said as one process says it ("an indexing process failed ...
        # (OutOfMemoryError: out of memory ...)" hid it in the middle of the line)
        if not isinstance(exc, OutOfMemoryError) and isinstance(exc, Exception) \
                and out_of_memory(exc):
            exc = no_memory_while("indexing; the batches stored before are kept", exc)
        if isinstance(exc, psycopg.Error):
            exc = database_error(exc)
        kind = ("memory" if isinstance(exc, OutOfMemoryError)
                else "lost" if isinstance(exc, DatabaseLost) else None)
        with contextlib.suppress(OSError):  # the parent gone: nobody to tell
            # pgface's own errors are said in words already, as one process says them; an
            # unexpected one needs its class ("an indexing process failed ... (StatementFailed:
            # database: ...)" read as a crash)
            said = str(exc) if isinstance(exc, PgfaceError) else describe(exc)
            send(("error", pid, said, kind))
        raise SystemExit(1) from None


def _counts(report: IndexReport) -> tuple[int, int, int, int, int, int, dict[str, float]]:
    return (report.indexed, report.skipped, report.faces, report.people_kept, report.moved,
            report.reanalysed, dict(report.timings))
