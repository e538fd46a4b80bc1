"""Background indexing jobs: queued, run one at a time in a thread of the server, cancellable.

Jobs live in the server process's memory: a restart forgets them (what they committed stays
indexed; index the path again to finish). A cancelled job stops between batches, after the
batch it is storing commits: nothing is half-written.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg
from fastapi import APIRouter, Depends, Request
from psycopg_pool import PoolTimeout

from pgface.api.deps import JsonRoute, require_read, require_write
from pgface.api.errors import ApiError
from pgface.api.models import MAX_KEPT_FAILURES, JobList, JobOut, error_responses
from pgface.api.urls import api_url
from pgface.db.connection import DatabaseLost, connection_lost, one_line
from pgface.errors import PgfaceError, counted
from pgface.index import Failure, IndexReport
from pgface.library import FROM_PYTHON, Pgface
from pgface.paths import loggable, readable

# A line of the server's log as each job starts and ends, and for each file that failed:
# jobs live in memory, so after a restart their failures were told nowhere.
log = logging.getLogger(__name__)
KEEP_FINISHED = 100  # finished jobs remembered for GET; older ones are forgotten
FINISHED = ("done", "failed", "cancelled")
# Jobs are rows of this process's memory, not of PostgreSQL (docs/scaling.md).
NOT_HERE = ("jobs live in the memory of the server process that started them: a restart "
            "forgets them, and another process behind the same load balancer never knew them")


class JobCancelled(Exception):
    """Raised from the progress callback between batches to stop an indexing run."""


@dataclass
class Job:
    id: str
    path: Path
    prune: bool
    within: list[Path]
    reread: bool = False
    exclude: list[str] = field(default_factory=list)  # the request's (index-path's) patterns
    state: str = "queued"
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    started_at: datetime | None = None
    finished_at: datetime | None = None
    files_total: int = 0
    files_done: int = 0
    indexed: int = 0
    skipped: int = 0
    faces: int = 0
    stage: str | None = None  # the report's, while the job runs (index.REBUILDING)
    failures: list[Failure] = field(default_factory=list)  # the first MAX_KEPT_FAILURES
    failed: int = 0  # every failure, kept or not
    # report_json's, less its failures: answered with the job's own, so they are held once
    report: dict[str, Any] | None = None
    error: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def add_failure(self, failure: Failure) -> None:
        self.failed += 1
        if len(self.failures) < MAX_KEPT_FAILURES:
            self.failures.append(failure)

    def summary(self) -> dict[str, Any]:
        """The job as GET /api/jobs lists it: its fields, no failure nor report built."""
        return {
            "id": self.id, "kind": "index", "path": readable(self.path), "prune": self.prune,
            # as paths are shown: a name's byte that is not UTF-8 as \xNN (a lone surrogate
            # here made every GET /api/jobs a 500, probe jsoncontract35)
            "reread": self.reread, "exclude": [readable(p) for p in self.exclude],
            "state": self.state, "created_at": self.created_at, "started_at": self.started_at,
            "finished_at": self.finished_at,
            "progress": {"files_total": self.files_total,
                         "files_done": self.files_done, "indexed": self.indexed,
                         "skipped": self.skipped, "faces": self.faces,
                         "failed": self.failed, "stage": self.stage},
            "error": self.error, "url": api_url(f"/api/jobs/{self.id}"),
        }


@dataclass(frozen=True)
class JobSeen:
    """What a job held at one moment, read under Jobs' lock, to answer once it is let go: the
    running job's progress waits on that lock, and a job's failures are up to
    MAX_KEPT_FAILURES to write out."""

    summary: dict[str, Any]
    failures: list[Failure]  # a copy of the job's list, which the running job appends to
    report: dict[str, Any] | None

    @classmethod
    def of(cls, job: Job) -> JobSeen:
        return cls(job.summary(), list(job.failures), job.report)

    def to_dict(self) -> dict[str, Any]:
        """The whole job (GET /api/jobs/{id}): its failures, and its report's, the same."""
        failures = [{"file": readable(f.source), "reason": f.reason} for f in self.failures]
        report = None if self.report is None else {**self.report, "failures": failures}
        omitted = self.summary["progress"]["failed"] - len(self.failures)
        return {**self.summary, "failures": failures, "failures_omitted": omitted,
                "report": report}


def report_json(path: Path, report: IndexReport) -> dict[str, Any]:
    """The report as a job answers it, less its failures: those are the job's (JobSeen)."""
    return {
        "path": readable(path), "files": report.files, "indexed": report.indexed,
        "skipped": report.skipped, "faces": report.faces, "seconds": round(report.seconds, 3),
        "warnings": [{"file": readable(w.source), "reason": w.reason} for w in report.warnings],
        "empty_folders": [readable(p) for p in report.empty_folders],
        "passed_over": report.passed_over,
        "excluded": report.excluded,
        "unchanged_failures": report.unchanged_failures,
        "people_kept": report.people_kept,
        "moved": report.moved,
        "removed": asdict(report.removed) if report.removed is not None else None,
        "not_pruned": [readable(p) for p in report.not_pruned],
        "outdated": report.outdated,
    }


class Jobs:
    """The server's indexing jobs and the one thread that runs them in order."""

    def __init__(self, pf: Pgface) -> None:
        self.pf = pf
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="pgface-jobs", daemon=True)
        self._thread.start()

    def submit(self, path: Path, within: list[Path], prune: bool, reread: bool = False,
               exclude: list[str] | None = None) -> dict[str, Any]:
        job = Job(uuid.uuid4().hex[:16], path, prune, within, reread, list(exclude or []))
        with self._lock:
            self._jobs[job.id] = job
            self._forget_old()
            seen = JobSeen.of(job)
        self._queue.put(job)
        return seen.to_dict()

    def listed(self) -> list[dict[str, Any]]:
        """Every job this process knows, oldest first, without its failures and report."""
        with self._lock:
            return [job.summary() for job in self._jobs.values()]

    def known(self, job_id: str) -> Job:
        """The job of this id, or the 404 that says why it is not known. Read it under the
        lock: the running job changes it."""
        job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"job {job_id!r} not found: {NOT_HERE}")
        return job

    def get(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            seen = JobSeen.of(self.known(job_id))
        return seen.to_dict()

    def cancel(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self.known(job_id)
            if job.state in FINISHED:
                raise ApiError(409, f"job {job_id} is already {job.state}", "job_finished")
            job.cancel.set()
            if job.state == "queued":  # never started: nothing to stop
                self._finish(job, "cancelled")
            seen = JobSeen.of(job)
        return seen.to_dict()

    def close(self) -> None:
        """Stop the running job between batches and forget the queued ones."""
        with self._lock:
            for job in self._jobs.values():
                if job.state not in FINISHED:
                    log.warning("job %s (%s) %s: the server is stopping", job.id,
                                loggable(job.path), "stops after the batch it is storing"
                                if job.state == "running" else "is dropped, never started")
                job.cancel.set()
        self._queue.put(None)
        self._thread.join(timeout=60)

    def _forget_old(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.state in FINISHED]
        for job_id in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[job_id]

    def _finish(self, job: Job, state: str) -> None:
        job.state, job.stage = state, None  # a finished job is in no stage of a run
        job.finished_at = datetime.now(timezone.utc)
        unchanged = (job.report or {}).get("unchanged_failures", 0)
        excluded = (job.report or {}).get("excluded", 0)
        counts = (f"{counted(job.indexed, 'photo')} indexed, {counted(job.faces, 'face')}, "
                  f"{job.skipped} already indexed, {job.failed} failed"
                  # the files that failed before, passed over (the counts added up to fewer
                  # than the files read: probe reprobe37)
                  + (f", {unchanged} that failed before not read again" if unchanged else "")
                  # as `pgface index` says it: the files a pattern left out were told nowhere
                  + (f", excluded {excluded} "
                     + ("file or folder" if excluded == 1 else "files and folders")
                     if excluded else ""))
        if state == "failed":
            log.warning("job %s (%s) failed: %s; %s", job.id, loggable(job.path),
                        loggable(job.error or ""), counts)
        else:
            log.info("job %s (%s) %s: %s", job.id, loggable(job.path), state, counts)
        # Here too, not only when a job is submitted: the last job to finish made it 101.
        self._forget_old()

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            with self._lock:
                if job.cancel.is_set():
                    if job.state not in FINISHED:
                        self._finish(job, "cancelled")
                    continue
                job.state, job.started_at = "running", datetime.now(timezone.utc)
            log.info("job %s (%s) started", job.id, loggable(job.path))
            self._index(job)

    def _index(self, job: Job) -> None:
        def progress(report: IndexReport, failure: Failure | None) -> None:
            with self._lock:
                job.files_total, job.indexed = report.files, report.indexed
                job.files_done = report.files_done
                job.skipped, job.faces = report.skipped, report.faces
                job.stage = report.stage
                if failure is not None:
                    job.add_failure(failure)
                    log.warning("job %s: failed %s: %s", job.id, loggable(failure.source),
                                loggable(failure.reason))
            # Called after each batch has committed: the place to stop without a half-write.
            if failure is None and job.cancel.is_set():
                raise JobCancelled

        try:
            report = self.pf.index([job.path], progress, within=job.within, prune=job.prune,
                                   reread=job.reread, exclude=job.exclude)
        except JobCancelled:
            with self._lock:
                self._finish(job, "cancelled")
        except Exception as exc:  # the job's failure, reported through GET, not a crash
            with self._lock:
                job.error = failure_message(exc)
                self._finish(job, "failed")
        else:
            with self._lock:
                job.report = report_json(job.path, report)
                job.files_total, job.indexed = report.files, report.indexed
                job.files_done = report.files_done
                job.skipped, job.faces = report.skipped, report.faces
                for warning in report.warnings:
                    log.info("job %s: warning: %s: %s", job.id, loggable(warning.source),
                             loggable(warning.reason))
                self._finish(job, "done")


def failure_message(exc: Exception) -> str:
    """Why a job failed, for its `error`: the database gone says so and what was kept (it was
    psycopg_pool's "PoolTimeout: couldn't get a connection after 30.00 sec"). pgface's own
    errors are written to be read and say it all; another's class names what it is."""
    if isinstance(exc, DatabaseLost) and isinstance(exc.__cause__, psycopg.Error):
        exc = exc.__cause__  # said below in a job's words (the Python API's: "run the command")
    reason = (one_line(exc) if isinstance(exc, PgfaceError)
              else f"{type(exc).__name__}: {one_line(exc)}")
    # an HTTP client has no Pgface to close(): the library's advice to Python programs goes
    reason = reason.replace(FROM_PYTHON, "")
    if isinstance(exc, PoolTimeout) or (isinstance(exc, psycopg.Error)
                                        and connection_lost(exc)):
        return (f"the database went away while indexing ({reason}); every photo stored until "
                f"then is kept: once it is back (`pgface db start` for the embedded one), "
                f"start the job again, and it goes on from there")
    return reason


router = APIRouter(route_class=JsonRoute, prefix="/jobs", tags=["jobs"])


def get_jobs(request: Request) -> Jobs:
    return request.app.state.jobs


@router.get("", dependencies=[Depends(require_read)], response_model=JobList,
            responses=error_responses(401, 403, 500, 503))
def list_jobs(request: Request) -> dict:
    """The jobs this server process knows, oldest first: their state and counts (GET a job's
    url for its failures and report). Another process's jobs, or those from before a
    restart, are not known here."""
    return {"jobs": get_jobs(request).listed()}


@router.get("/{job_id}", dependencies=[Depends(require_read)], response_model=JobOut,
            responses=error_responses(401, 403, 404, 422, 500, 503))
def get_job(request: Request, job_id: str) -> dict:
    """A job's state (queued, running, done, failed, cancelled), its progress, the files
    that failed and why, and once done its report."""
    return get_jobs(request).get(job_id)


@router.delete("/{job_id}", dependencies=[Depends(require_write)], response_model=JobOut,
               responses=error_responses(401, 403, 404, 409, 422, 500, 503))
def cancel_job(request: Request, job_id: str) -> dict:
    """Cancel a job. A queued job is cancelled at once; a running one stops after the batch
    it is storing commits (poll GET until `state` is cancelled). 409 when it had finished."""
    return get_jobs(request).cancel(job_id)
