"""Indexing: files -> decoded photos -> faces -> rows, one transaction per batch of photos."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from psycopg_pool import ConnectionPool

from pgface.config import Settings
from pgface.db import store
from pgface.errors import ImageError
from pgface.imaging import IMAGE_SUFFIXES, Photo, decode_photo, face_crop_jpeg
from pgface.models.analysis import FaceAnalyzer


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

    @property
    def photos_per_second(self) -> float:
        return self.indexed / self.seconds if self.seconds else 0.0

    @property
    def faces_per_second(self) -> float:
        return self.faces / self.seconds if self.seconds else 0.0


# Called after every batch with the report so far, and once per failure as it happens.
ProgressCallback = Callable[[IndexReport, Failure | None], None]


def iter_photo_files(paths: Iterable[Path], failures: list[Failure]) -> Iterator[Path]:
    """Files named directly are always tried; inside folders only image suffixes are."""
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
        size = path.stat().st_size
        if size > max_bytes:
            return Failure(str(path), f"file is {size:,} bytes, over the limit of {max_bytes:,}")
        data = path.read_bytes()
    except OSError as exc:
        return Failure(str(path), f"cannot read file ({exc.strerror or exc})")
    return _Read(path, data, hashlib.sha256(data).digest())


class Indexer:
    def __init__(self, analyzer: FaceAnalyzer, pool: ConnectionPool, settings: Settings) -> None:
        self.analyzer = analyzer
        self.pool = pool
        self.settings = settings

    def index(self, paths: Sequence[Path | str], progress: ProgressCallback | None = None
              ) -> IndexReport:
        report = IndexReport()
        started = time.perf_counter()
        files = list(iter_photo_files([Path(p) for p in paths], report.failures))
        report.files = len(files)
        for failure in report.failures:
            _notify(progress, report, failure)
        seen: set[bytes] = set()
        batch_size = max(1, self.settings.photo_batch)
        with ThreadPoolExecutor(max_workers=2) as pool:
            for start in range(0, len(files), batch_size):
                chunk = files[start : start + batch_size]
                self._index_batch(chunk, pool, seen, report, progress)
                report.seconds = time.perf_counter() - started
                _notify(progress, report, None)
        report.seconds = time.perf_counter() - started
        return report

    def _index_batch(self, chunk: list[Path], pool: ThreadPoolExecutor, seen: set[bytes],
                     report: IndexReport, progress: ProgressCallback | None) -> None:
        reads: list[_Read] = []
        for item in pool.map(lambda p: _read(p, self.settings.max_file_bytes), chunk):
            if isinstance(item, Failure):
                report.failures.append(item)
                _notify(progress, report, item)
            else:
                reads.append(item)
        with self.pool.connection() as conn:
            known = store.known_hashes(conn, [r.sha256 for r in reads])
        fresh = []
        for item in reads:
            if item.sha256 in known or item.sha256 in seen:
                report.skipped += 1
            else:
                seen.add(item.sha256)
                fresh.append(item)
        photos: list[Photo] = []
        # Pillow releases the GIL while decoding, so two threads keep both cores busy.
        for read, item in zip(fresh, pool.map(self._decode, fresh), strict=True):
            if isinstance(item, Failure):
                seen.discard(read.sha256)  # a copy of a bad file elsewhere gets its own report
                report.failures.append(item)
                _notify(progress, report, item)
            else:
                photos.append(item)
        rows = self.photo_rows(photos)
        with self.pool.connection() as conn, conn.transaction():
            inserted = store.add_photos(conn, rows, self.analyzer.model_name)
        report.indexed += len(inserted)
        report.skipped += len(rows) - len(inserted)
        report.faces += sum(len(r.faces) for r in rows if r.sha256 in inserted)

    def _decode(self, item: _Read) -> Photo | Failure:
        try:
            return decode_photo(item.data, str(item.path), self.settings.max_file_bytes,
                                self.settings.max_pixels)
        except ImageError as exc:
            return Failure(exc.source, exc.reason)

    def photo_rows(self, photos: Sequence[Photo]) -> list[store.PhotoRow]:
        """Detect and embed (batched across photos) and turn each photo into a row."""
        images = [p.image for p in photos]
        faces = self.analyzer.analyze(images)
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


def _notify(progress: ProgressCallback | None, report: IndexReport, failure: Failure | None
            ) -> None:
    if progress is not None:
        progress(report, failure)
