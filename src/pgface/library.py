"""The Python API: one object that owns the models and the database pool."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from psycopg_pool import ConnectionPool

from pgface.config import Settings
from pgface.db import store
from pgface.db.connection import open_pool
from pgface.imaging import Photo, decode_photo, read_photo
from pgface.index import Indexer, IndexReport, ProgressCallback
from pgface.models.analysis import FaceAnalyzer
from pgface.models.packs import resolve_pack
from pgface.models.sessions import available_providers
from pgface.people import People
from pgface.search import Comparison, SearchResult, compare_photos, search_photo

PhotoInput = str | Path | bytes


def build_analyzer(settings: Settings) -> FaceAnalyzer:
    """The face analyzer the settings describe; its sessions open on first use."""
    return FaceAnalyzer(
        resolve_pack(settings.model_pack, settings.resolved_models_dir()),
        providers=available_providers(settings.providers),
        threads=settings.threads,
        det_sizes=settings.det_sizes,
        det_threshold=settings.det_threshold,
        min_face_size=settings.min_face_size,
        batch_size=settings.rec_batch_size,
    )


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
        self.settings = settings or Settings()
        self._analyzer = analyzer
        self._pool: ConnectionPool | None = None
        self._url: str | None = None

    # Models and the database are opened on first use: `compare` needs no database.
    @property
    def analyzer(self) -> FaceAnalyzer:
        if self._analyzer is None:
            self._analyzer = build_analyzer(self.settings)
        return self._analyzer

    @property
    def pool(self) -> ConnectionPool:
        if self._pool is None:
            self._url = self.database_url()
            self._pool = open_pool(self._connection_url)
        return self._pool

    @property
    def people(self) -> People:
        """Name, cluster and identify people; a light view over the pool and the models."""
        return People(self.pool, self.analyzer, self.settings)

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
        """The URL of each new pool connection: a crashed embedded server is restarted first."""
        if self.embedded:
            from pgface.db.watch import revive

            revive(self.settings.resolved_data_dir())
        return self._url or self.database_url()

    @property
    def threshold(self) -> float:
        return self.settings.match_threshold(self.analyzer.model_name)

    def load_photo(self, photo: PhotoInput, name: str = "upload") -> Photo:
        s = self.settings
        if isinstance(photo, bytes):
            return decode_photo(photo, name, s.max_file_bytes, s.max_pixels)
        return read_photo(Path(photo), s.max_file_bytes, s.max_pixels)

    def index(self, paths: Sequence[str | Path], progress: ProgressCallback | None = None,
              within: Sequence[Path] | None = None) -> IndexReport:
        """Index files and folders (recursively); photos already stored are skipped.

        within: only files that really lie in these folders (symlinks resolved) are read.
        """
        return Indexer(self.analyzer, self.pool, self.settings).index(paths, progress, within)

    def search(self, photo: PhotoInput, top: int | None = None,
               threshold: float | None = None) -> SearchResult:
        """For each face in the photo, the stored faces at or above the threshold, best first."""
        return search_photo(
            self.analyzer, self.pool, self.load_photo(photo),
            top=top or self.settings.top_k,
            threshold=self.threshold if threshold is None else threshold,
            ef_search=self.settings.ef_search,
        )

    def compare(self, photo_a: PhotoInput, photo_b: PhotoInput,
                threshold: float | None = None) -> Comparison:
        return compare_photos(
            self.analyzer, self.load_photo(photo_a, "photo A"), self.load_photo(photo_b, "photo B"),
            self.threshold if threshold is None else threshold,
        )

    def embed(self, photo: PhotoInput) -> list[np.ndarray]:
        """Unit embeddings of every face in the photo, largest face first."""
        return [f.embedding for f in self.analyzer.analyze([self.load_photo(photo).image])[0]]

    def photo_faces(self, paths: Sequence[str | Path]) -> dict[str, list[store.StoredFace]]:
        """The faces stored for these photo files (this model pack's), keyed by stored path."""
        resolved = [str(Path(p).resolve()) for p in paths]
        with self.pool.connection() as conn:
            return store.faces_of_paths(conn, resolved, self.analyzer.model_name)

    def stats(self) -> dict:
        with self.pool.connection() as conn:
            result = store.stats(conn)
        result["model_pack"] = self.analyzer.model_name
        result["provider"] = self.analyzer.provider
        result["threshold"] = self.threshold
        return result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> Pgface:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open(settings: Settings | None = None) -> Pgface:  # noqa: A001 - mirrors sqlite3-style APIs
    """A Pgface with settings from the environment (PGFACE_*) unless given."""
    return Pgface(settings)
