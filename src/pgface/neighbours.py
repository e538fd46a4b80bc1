"""Neighbours of the faces clustering looks at, from the engine that fits the library's size.

- "join": at scale, when most faces are asked for (a full clustering) and numba is installed
  (the `scale` extra): every pair at or above the similarity at once, each pair looked at
  once (similarity_join.py);
- "index": at scale (vector_index.MIN_FACES faces and up), the in-process sign-bit index that
  search uses, many faces per Hamming pass (batch_knn.py), exact cosines from float vectors;
- "bulk": below it, many new faces: every vector in memory, exact matrix products;
- "sql": below it, a few new faces: one pgvector query per face (docs/people.md has the costs).
All three give a face's faces of other photos at or above the similarity, best first (ties by
id), at most NEIGHBOURS_K of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import psycopg

from pgface import batch_knn, similarity_join
from pgface.db import people_store as ps
from pgface.vector_index import SignIndex, fetch_vectors

NEIGHBOURS_K = 64  # nearest faces looked at per face when clustering
# Sign-bit candidates per face: the neighbours clustering wants (>= 0.40) are far closer than
# the weak matches search must find, so fewer than search's 300 (docs/benchmarks-people-scale.md).
CLUSTER_CANDIDATES = 128
INDEX_BLOCK = 4096  # faces per batch of the index's scan
FETCH_BLOCK = 50_000  # face ids per fetch of vectors by id

NeighbourList = list[tuple[int, float]]  # (face id, similarity), best first


class VectorCache:
    """Unit float32 embeddings of faces, fetched from PostgreSQL in batches as needed."""

    def __init__(self, conn: psycopg.Connection, model: str) -> None:
        self._conn, self._model = conn, model
        self._ids = np.empty(0, np.int64)
        self._vectors = np.empty((0, 512), np.float32)
        # asked for and not found: deleted since the search index loaded them
        self._gone: set[int] = set()

    def load_all(self) -> None:
        """Every face of the model, by binary COPY."""
        parts = [(rows["id"].astype(np.int64), rows["vec"].astype(np.float32))
                 for rows in fetch_vectors(self._conn, self._model)]
        self._set([p[0] for p in parts], [p[1] for p in parts])

    def need(self, face_ids: Iterable[int]) -> None:
        wanted = np.unique(np.fromiter(face_ids, np.int64))
        missing = wanted[~np.isin(wanted, self._ids, assume_unique=True)]
        if self._gone:
            missing = missing[~np.isin(missing, np.fromiter(self._gone, np.int64))]
        if not len(missing):
            return
        ids, vectors = [self._ids], [self._vectors]
        for lo in range(0, len(missing), FETCH_BLOCK):
            asked = missing[lo : lo + FETCH_BLOCK]
            found = ps.embeddings(self._conn, self._model, asked.tolist())
            self._gone.update(np.setdiff1d(asked, found[0]).tolist())
            if len(found[0]):
                ids.append(found[0].astype(np.int64))
                vectors.append(found[1].astype(np.float32))
        self._set(ids, vectors)

    def known(self, face_ids: np.ndarray) -> np.ndarray:
        """Which of these faces exist (fetched first if needed): the search index may hold
        faces deleted since it loaded them (another process removed their photos)."""
        self.need(face_ids.tolist())
        return np.isin(face_ids, self._ids)

    def _set(self, ids: list[np.ndarray], vectors: list[np.ndarray]) -> None:
        all_ids = np.concatenate(ids) if ids else np.empty(0, np.int64)
        order = np.argsort(all_ids, kind="stable")
        self._ids = all_ids[order]
        stacked = np.concatenate(vectors) if vectors else np.empty((0, 512), np.float32)
        norms = np.maximum(np.linalg.norm(stacked, axis=1, keepdims=True), 1e-12)
        self._vectors = np.ascontiguousarray((stacked / norms)[order], dtype=np.float32)

    def get(self, face_ids: np.ndarray) -> np.ndarray:
        """Rows for these ids (fetched first if needed)."""
        face_ids = np.asarray(face_ids, dtype=np.int64)
        at = np.searchsorted(self._ids, face_ids).clip(max=max(len(self._ids) - 1, 0))
        if not len(self._ids) or np.any(self._ids[at] != face_ids):
            self.need(face_ids.tolist())
            at = np.searchsorted(self._ids, face_ids)
        return self._vectors[at]

    def row(self, face_id: int) -> np.ndarray:
        """One face's vector (fetched first if needed)."""
        at = int(np.searchsorted(self._ids, face_id))
        if at < len(self._ids) and self._ids[at] == face_id:
            return self._vectors[at]
        return self.get(np.array([face_id], dtype=np.int64))[0]

    @property
    def ids(self) -> np.ndarray:
        return self._ids


class NeighbourSource:
    """Neighbours of faces, computed in batches (`prefetch`) or one at a time, and cached."""

    def __init__(self, mode: str, compute: Callable[[Sequence[int]], dict[int, NeighbourList]],
                 vectors: VectorCache) -> None:
        self.mode = mode
        self.vectors = vectors
        self._compute = compute
        self._cache: dict[int, NeighbourList] = {}
        self.skip: set[int] = set()  # faces that are nobody's neighbour (quality below floor)

    def _add(self, found: dict[int, NeighbourList]) -> None:
        for face_id, near in found.items():
            self._cache[face_id] = [n for n in near if n[0] not in self.skip]

    def neighbours(self, face_id: int) -> NeighbourList:
        if face_id not in self._cache:
            self._add(self._compute([face_id]))
        return self._cache[face_id]

    def prefetch(self, face_ids: Iterable[int]) -> None:
        todo = [f for f in dict.fromkeys(face_ids) if f not in self._cache]
        if todo:
            self._add(self._compute(todo))

    def known(self) -> dict[int, NeighbourList]:
        return self._cache

    @classmethod
    def choose(cls, conn: psycopg.Connection, model: str, photo_of: dict[int, int],
               fresh: Sequence[int], similarity: float, ef_search: int, bulk: bool | None,
               index: SignIndex | None, bulk_from: int, bulk_share: int, join: bool = True
               ) -> NeighbourSource:
        """The index when there is one (a library at scale; one join of all faces when most
        are asked for, `join` allows it and numba is installed), else bulk or SQL by how many
        faces are new (`bulk` forces one of those two)."""
        vectors = VectorCache(conn, model)
        if index is not None and bulk is None:
            if len(fresh) * 2 >= len(photo_of):  # most faces are asked for: one COPY of all
                vectors.load_all()
                if join and similarity_join.available():
                    return cls("join", _join_compute(vectors, photo_of, similarity), vectors)
            return cls("index", _index_compute(index, vectors, photo_of, similarity), vectors)
        if bulk or (bulk is None and len(fresh) >= max(bulk_from, len(photo_of) // bulk_share)):
            vectors.load_all()
            return cls("bulk", _bulk_compute(vectors, photo_of, similarity), vectors)

        def one_by_one(face_ids: Sequence[int]) -> dict[int, NeighbourList]:
            found = {}
            for face_id in face_ids:
                rows = ps.neighbours(conn, vectors.get(np.array([face_id]))[0], face_id,
                                     photo_of[face_id], model, NEIGHBOURS_K, similarity,
                                     ef_search)
                found[face_id] = [(r[0], float(r[2])) for r in rows]
            return found

        return cls("sql", one_by_one, vectors)


def _keep(face_id: int, ids: np.ndarray, sims: np.ndarray, photo_of: dict[int, int]
          ) -> NeighbourList:
    """Faces of other photos of this clustering's faces (the index may hold faces deleted
    since, or of no photo here), best first, at most NEIGHBOURS_K."""
    photo = photo_of[face_id]
    out = []
    for other, sim in zip(ids.tolist(), sims.tolist(), strict=True):
        if other != face_id and photo_of.get(other, photo) != photo:
            out.append((other, float(sim)))
            if len(out) == NEIGHBOURS_K:
                break
    return out


def _index_compute(index: SignIndex, vectors: VectorCache, photo_of: dict[int, int],
                   similarity: float) -> Callable[[Sequence[int]], dict[int, NeighbourList]]:
    def compute(face_ids: Sequence[int]) -> dict[int, NeighbourList]:
        found: dict[int, NeighbourList] = {}
        for lo in range(0, len(face_ids), INDEX_BLOCK):
            block = np.array(face_ids[lo : lo + INDEX_BLOCK], dtype=np.int64)
            present = vectors.known(block)
            found.update((int(gone), []) for gone in block[~present])  # deleted meanwhile
            block = block[present]
            if not len(block):
                continue
            queries = vectors.get(block)
            # a face's own photo may hold several faces: room for them before the k
            k = NEIGHBOURS_K + 8
            candidates = index.approximate_many(queries, k, similarity, CLUSTER_CANDIDATES)
            # Faces deleted since the index loaded them (removed by another process, or over
            # HTTP) are left out: they have no vector to rank by (clustering failed on them
            # in a long-running process until it was restarted).
            wanted = np.unique(np.concatenate([ids for ids, _ in candidates]
                                              or [np.empty(0, np.int64)]))
            alive = wanted[vectors.known(wanted)]
            kept = [np.isin(ids, alive) for ids, _ in candidates]
            candidates = [(ids[k], cos[k]) for (ids, cos), k in zip(candidates, kept, strict=True)]
            exact = batch_knn.exact_rerank(candidates, queries, vectors.get, k, similarity)
            for face_id, (ids, sims) in zip(block.tolist(), exact, strict=True):
                found[face_id] = _keep(face_id, ids, sims, photo_of)
        return found

    return compute


def _join_compute(vectors: VectorCache, photo_of: dict[int, int], similarity: float
                  ) -> Callable[[Sequence[int]], dict[int, NeighbourList]]:
    """Every face's neighbours from one join of all faces, computed on the first call."""
    lists: dict[int, NeighbourList] = {}

    def compute(face_ids: Sequence[int]) -> dict[int, NeighbourList]:
        if not lists:
            lists.update(join_neighbours(vectors.ids, vectors.get(vectors.ids), photo_of,
                                         similarity))
        return {f: lists.get(f, []) for f in face_ids}

    return compute


def join_neighbours(ids: np.ndarray, matrix: np.ndarray, photo_of: dict[int, int],
                    similarity: float) -> dict[int, NeighbourList]:
    """Each face's faces of other photos at or above the similarity, best first (ties by id),
    at most NEIGHBOURS_K, for all faces of photo_of at once; faces not in photo_of (deleted
    since the vectors were read) are nobody's neighbour."""
    photo = np.array([photo_of.get(f, -1) for f in ids.tolist()], dtype=np.int64)

    def other_photos(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return (photo[i] != photo[j]) & (photo[i] >= 0) & (photo[j] >= 0)

    i, j, sims = similarity_join.near_pairs(matrix, similarity, NEIGHBOURS_K, other_photos)
    # rows are in id order (VectorCache), so ties by row are ties by id
    near = similarity_join.top_neighbours(len(ids), i, j, sims, NEIGHBOURS_K)
    id_list = ids.tolist()
    return {id_list[row]: list(zip(ids[rows].tolist(), cos.astype(float).tolist(), strict=True))
            for row, (rows, cos) in enumerate(near) if photo[row] >= 0}


def _bulk_compute(vectors: VectorCache, photo_of: dict[int, int], similarity: float
                  ) -> Callable[[Sequence[int]], dict[int, NeighbourList]]:
    ids = vectors.ids
    matrix = vectors.get(ids)
    block = max(64, 2**25 // max(1, len(ids)))  # about 128 MB of similarities at a time

    def compute(face_ids: Sequence[int]) -> dict[int, NeighbourList]:
        found: dict[int, NeighbourList] = {}
        for lo in range(0, len(face_ids), block):
            part = np.array(face_ids[lo : lo + block], dtype=np.int64)
            exact = batch_knn.exact_knn(ids, matrix, vectors.get(part), NEIGHBOURS_K + 8,
                                        similarity)
            for face_id, (near, sims) in zip(part.tolist(), exact, strict=True):
                found[face_id] = _keep(face_id, near, sims, photo_of)
        return found

    return compute
