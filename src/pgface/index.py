"""Indexing: files -> decoded photos -> faces -> rows, one transaction per batch of photos."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from psycopg_pool import ConnectionPool

from pgface.config import Settings
from pgface.db import store
from pgface.errors import ImageError
from pgface.imaging import IMAGE_SUFFIXES, Photo, decode_photo, face_crop_jpeg, read_file
from pgface.models.analysis import Face, FaceAnalyzer


@dataclass
class Failure:
    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


@dataclass
class IndexReport:
    files: int = 0
    indexed: int = 0
    skipped: int = 0  # already in the database (same content), or repeated in this run
    faces: int = 0
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    # Seconds spent in each stage, summed over threads (stages overlap in the pipeline).
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def photos_per_second(self) -> float:
        return self.indexed / self.seconds if self.seconds else 0.0

    @property
    def faces_per_second(self) -> float:
        return self.faces / self.seconds if self.seconds else 0.0


# Called after every batch with the report so far, and once per failure as it happens.
ProgressCallback = Callable[[IndexReport, Failure | None], None]


def iter_photo_files(paths: Iterable[Path], failures: list[Failure],
                     within: Sequence[Path] | None = None) -> Iterator[Path]:
    """Files named directly are always tried; inside folders only image suffixes are.

    within: folders every file must really lie in once symlinks are resolved (a server's
    allowed roots); a file elsewhere is reported, not read.
    """
    roots = [Path(r).resolve() for r in within] if within is not None else None
    for path in _walk(paths, failures):
        if roots is not None:
            real = path.resolve()
            if not any(real == root or root in real.parents for root in roots):
                failures.append(Failure(str(path), "outside the allowed folders (a symlink?)"))
                continue
        yield path


def _walk(paths: Iterable[Path], failures: list[Failure]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path, onerror=lambda e: failures.append(
                    Failure(str(e.filename), f"cannot list folder ({e.strerror})"))):
                dirs.sort()
                for name in sorted(files):
                    if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                        yield Path(root) / name
        elif path.exists():
            yield path
        else:
            failures.append(Failure(str(path), "no such file or folder"))


@dataclass
class _Read:
    path: Path
    data: bytes
    sha256: bytes


def _read(path: Path, max_bytes: int) -> _Read | Failure:
    try:
        data = read_file(path, max_bytes)
    except ImageError as exc:
        return Failure(exc.source, exc.reason)
    return _Read(path, data, hashlib.sha256(data).digest())


@dataclass
class _Prepared:
    """A batch read, deduplicated and decoded, ready for the models and the database."""

    photos: list[Photo]
    faces: list[list[Face]]  # detected already, in the decoding threads
    skipped: int
    failures: list[Failure]


class Indexer:
    """Indexing is a two-stage pipeline: a background thread reads, hashes, deduplicates and
    decodes the next batch while this one is analysed and written, so both cores stay busy."""

    def __init__(self, analyzer: FaceAnalyzer, pool: ConnectionPool, settings: Settings) -> None:
        self.analyzer = analyzer
        self.pool = pool
        self.settings = settings

    def index(self, paths: Sequence[Path | str], progress: ProgressCallback | None = None,
              within: Sequence[Path] | None = None) -> IndexReport:
        report = IndexReport()
        started = time.perf_counter()
        files = list(iter_photo_files([Path(p) for p in paths], report.failures, within))
        report.files = len(files)
        for failure in report.failures:
            _notify(progress, report, failure)
        size = max(1, self.settings.photo_batch)
        chunks = [files[i : i + size] for i in range(0, len(files), size)]
        seen: set[bytes] = set()
        decoders = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pgface-decode")
        prefetch = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pgface-prefetch")
        try:
            pending = prefetch.submit(self._prepare, chunks[0], decoders, seen, report.timings
                                      ) if chunks else None
            for number in range(len(chunks)):
                assert pending is not None
                prepared = pending.result()
                if number + 1 < len(chunks):
                    pending = prefetch.submit(self._prepare, chunks[number + 1], decoders, seen,
                                              report.timings)
                report.skipped += prepared.skipped
                for failure in prepared.failures:
                    report.failures.append(failure)
                    _notify(progress, report, failure)
                self._store(prepared, report)
                report.seconds = time.perf_counter() - started
                _notify(progress, report, None)
        finally:
            # On Ctrl-C: drop the prefetched batch, keep what is committed.
            prefetch.shutdown(wait=True, cancel_futures=True)
            decoders.shutdown(wait=True, cancel_futures=True)
        report.seconds = time.perf_counter() - started
        return report

    def _prepare(self, chunk: list[Path], decoders: ThreadPoolExecutor, seen: set[bytes],
                 timings: dict[str, float]) -> _Prepared:
        failures: list[Failure] = []
        with _timed(timings, "read"):
            reads: list[_Read] = []
            for item in decoders.map(lambda p: _read(p, self.settings.max_file_bytes), chunk):
                if isinstance(item, Failure):
                    failures.append(item)
                else:
                    reads.append(item)
            with self.pool.connection() as conn:
                known = store.known_hashes(conn, [r.sha256 for r in reads])
        fresh, skipped = [], 0
        for item in reads:
            if item.sha256 in known or item.sha256 in seen:
                skipped += 1
            else:
                seen.add(item.sha256)
                fresh.append(item)
        photos: list[Photo] = []
        faces: list[list[Face]] = []
        # Pillow and the detector release the GIL, so two threads keep both cores busy.
        work = decoders.map(lambda r: self._decode_and_detect(r, timings), fresh)
        for read, item in zip(fresh, work, strict=True):
            if isinstance(item, Failure):
                seen.discard(read.sha256)  # a copy of a bad file elsewhere is reported too
                failures.append(item)
            else:
                photos.append(item[0])
                faces.append(item[1])
        return _Prepared(photos, faces, skipped, failures)

    def _store(self, prepared: _Prepared, report: IndexReport) -> None:
        rows = self.photo_rows(prepared.photos, report.timings, prepared.faces)
        with _timed(report.timings, "store"):
            with self.pool.connection() as conn, conn.transaction():
                inserted = store.add_photos(conn, rows, self.analyzer.model_name)
        report.indexed += len(inserted)
        report.skipped += len(rows) - len(inserted)
        report.faces += sum(len(r.faces) for r in rows if r.sha256 in inserted)

    def _decode_and_detect(self, item: _Read, timings: dict[str, float]
                           ) -> tuple[Photo, list[Face]] | Failure:
        try:
            with _timed(timings, "decode"):
                photo = decode_photo(item.data, str(item.path), self.settings.max_file_bytes,
                                     self.settings.max_pixels)
        except ImageError as exc:
            return Failure(exc.source, exc.reason)
        with _timed(timings, "detect"):
            return photo, self.analyzer.detect(photo.image)

    def photo_rows(self, photos: Sequence[Photo], timings: dict[str, float] | None = None,
                   faces: list[list[Face]] | None = None) -> list[store.PhotoRow]:
        """Detect (unless done), embed (batched across photos) and make each photo a row."""
        timings = {} if timings is None else timings
        images = [p.image for p in photos]
        if faces is None:
            with _timed(timings, "detect"):
                faces = [self.analyzer.detect(image) for image in images]
        with _timed(timings, "embed"):
            self.analyzer.embed(images, faces)
        with _timed(timings, "crops"):
            rows = []
            for photo, found in zip(photos, faces, strict=True):
                rows.append(store.PhotoRow(
                    sha256=photo.sha256,
                    path=str(Path(photo.source).resolve()),
                    size_bytes=photo.size_bytes,
                    width=photo.width,
                    height=photo.height,
                    taken_at=photo.taken_at,
                    faces=[
                        store.FaceRow(
                            embedding=f.embedding,
                            bbox=f.bbox.tolist(),
                            landmarks=f.landmarks.reshape(-1).tolist(),
                            det_score=f.det_score,
                            crop=face_crop_jpeg(photo.image, f.bbox, self.settings.crop_size),
                        )
                        for f in found
                    ],
                ))
        return rows


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
