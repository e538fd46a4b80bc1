"""Indexing in several processes: each runs the whole pipeline of index.py (models, interpreter
lock, database connections and a share of the threads of its own) on batches it takes from
one queue, and tells this process what it stored.

One process's threads hold one interpreter lock between them (decoding's bookkeeping, anchor
decoding, alignment, storing), so on a long run its cores idle part of the time; processes do
not share a lock. A process costs its start (a fresh interpreter, the models loaded and
compiled from the cache): worth it for a long run, not for a few photos.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import queue
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgface.config import Settings
from pgface.errors import PgfaceError, describe
from pgface.index import Failure, Indexer, IndexReport, PhotoWarning, ProgressCallback, batches
from pgface.models.sessions import default_threads

# A child starts from a fresh interpreter: a fork would copy this process's threads,
# connection pool and inference sessions, none of which survive it.
_CONTEXT = multiprocessing.get_context("spawn")
BATCHES_PER_PROCESS = 6  # smaller batches for short runs, so that no process ends long first
POLL_S = 0.2
# How long after a process is seen to have exited its last messages may still arrive (its
# queue's feeder flushes them before it exits, so this only covers reading them).
LAST_WORDS_S = 1.0


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
    timings: dict[str, float] | None = None
    done: bool = False
    exited_at: float | None = None


def index_in_processes(settings: Settings, files: Sequence[Path], report: IndexReport,
                       processes: int, progress: ProgressCallback | None = None,
                       started: float | None = None) -> IndexReport:
    """Index files (listed already, into report) in PROCESSES processes.

    settings.database_url must name the database itself (the embedded server's too): a child
    connects to it and never starts a server. What a process commits stays committed, whatever
    happens to the others; should one fail or die, the others are stopped and the run raises.
    """
    started = time.perf_counter() if started is None else started
    chunks = batches(files, batch_size(len(files), processes, settings.photo_batch))
    processes = max(1, min(processes, len(chunks)))
    child = settings.model_copy(update={
        "threads": threads_each(settings.threads, processes), "index_processes": 1})
    tasks = _CONTEXT.Queue()
    for chunk in chunks:
        tasks.put([str(path) for path in chunk])
    for _ in range(processes):
        tasks.put(None)  # one stop each
    results = _CONTEXT.Queue()
    workers = [_CONTEXT.Process(target=_index_queue, args=(child, tasks, results, os.getpid()),
                                name=f"pgface-index-{n}", daemon=True)
               for n in range(processes)]
    tallies: dict[int, _Tally] = {}
    try:
        for worker in workers:
            worker.start()
            tallies[worker.pid] = _Tally()  # type: ignore[index]
        _gather(workers, tallies, results, report, progress, started)
    finally:
        # Ctrl-C or a failure: stop the others; each batch is one transaction, so a process
        # stopped mid-batch leaves nothing half-written.
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
        for worker in workers:
            worker.join()
        _drain(tasks)  # batches no process took: their queue's feeder thread can then end
        tasks.close()
        results.close()
        report.seconds = time.perf_counter() - started
    return report


def _gather(workers: list[Any], tallies: dict[int, _Tally], results: Any, report: IndexReport,
            progress: ProgressCallback | None, started: float) -> None:
    """Fold the processes' messages into report until every process is done."""
    while not all(t.done for t in tallies.values()):
        try:
            message = results.get(timeout=POLL_S)
        except queue.Empty:
            _check_alive(workers, tallies)
            continue
        kind, pid, *rest = message
        tally = tallies[pid]
        if kind == "ready":
            report.startup = max(report.startup, time.perf_counter() - started)
            continue
        if kind == "failure":
            failure = Failure(*rest)
            report.failures.append(failure)
            if progress is not None:
                progress(report, failure)
            continue
        if kind == "error":
            raise PgfaceError(f"an indexing process failed, so the run stopped ({rest[0]}); "
                              "the batches stored before are kept")
        tally.indexed, tally.skipped, tally.faces, tally.timings = rest[:4]
        if kind == "done":
            tally.done = True
            report.warnings.extend(PhotoWarning(*w) for w in rest[4])
        report.indexed = sum(t.indexed for t in tallies.values())
        report.skipped = sum(t.skipped for t in tallies.values())
        report.faces = sum(t.faces for t in tallies.values())
        report.timings = {}
        for t in tallies.values():
            for stage, seconds in (t.timings or {}).items():
                report.timings[stage] = report.timings.get(stage, 0.0) + seconds
        report.seconds = time.perf_counter() - started
        if progress is not None:
            progress(report, None)


def _drain(tasks: Any) -> None:
    while True:
        try:
            tasks.get(timeout=0.05)
        except queue.Empty:
            return


def _check_alive(workers: list[Any], tallies: dict[int, _Tally]) -> None:
    """A process that exited without saying it was done (killed, out of memory) stops the
    run, once its last messages have had time to arrive."""
    now = time.monotonic()
    for worker in workers:
        tally = tallies[worker.pid]
        if tally.done or worker.is_alive():
            continue
        if tally.exited_at is None:
            tally.exited_at = now
        elif now - tally.exited_at > LAST_WORDS_S:
            raise PgfaceError(f"an indexing process ended unexpectedly (exit code "
                              f"{worker.exitcode}), so the run stopped; the batches stored "
                              "before are kept")


def _index_queue(settings: Settings, tasks: Any, results: Any, parent: int) -> None:
    """A child: index the batches of the queue until its stop, reporting as it goes."""
    # Ctrl-C reaches the whole process group: the parent decides, and stops the children.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from pgface.library import Pgface  # which imports this module

    pid = os.getpid()

    def told(report: IndexReport, failure: Failure | None) -> None:
        if failure is not None:
            results.put(("failure", pid, failure.source, failure.reason))
        else:
            results.put(("batch", pid, *_counts(report)))

    def chunks() -> Iterator[list[Path]]:
        while os.getppid() == parent:  # an orphan (its parent killed) stops taking batches
            chunk = tasks.get()
            if chunk is None:
                return
            yield [Path(p) for p in chunk]

    try:
        with Pgface(settings) as pf:
            pf.analyzer.warm_up()
            _ = pf.pool
            results.put(("ready", pid))
            report = Indexer(pf.analyzer, pf.pool, settings).index_batches(
                chunks(), IndexReport(), told)
        results.put(("done", pid, *_counts(report),
                     [(w.source, w.reason) for w in report.warnings]))
    except BaseException as exc:  # noqa: BLE001 - told to the parent, which stops the run
        results.put(("error", pid, describe(exc)))
        raise SystemExit(1) from None


def _counts(report: IndexReport) -> tuple[int, int, int, dict[str, float]]:
    return report.indexed, report.skipped, report.faces, dict(report.timings)
