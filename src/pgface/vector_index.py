"""An in-process index of the sign bits of every stored face, kept in step with PostgreSQL.

Search at scale in two steps (docs/benchmarks-search.md has the figures that chose this):
1. candidates: a flat Hamming scan over 512 sign bits a face (64 bytes), here in memory;
2. the exact cosine re-rank of those candidates, done in PostgreSQL by id, so deleted faces
   simply vanish, names are always current and PostgreSQL stays the store of record.

Face embeddings of different people are nearly orthogonal, which starves HNSW's greedy walk;
a flat scan of the sign bits has no walk to starve and costs 64 MB at 1M faces.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import psycopg
from psycopg_pool import ConnectionPool

from pgface.db import sql
from pgface.db.store import MatchRow

WORDS = 8  # 512 bits as uint64 words
DEFAULT_CANDIDATES = 300  # 1M faces: identity recall 0.993, as the exact top-10 (0.992)
_CHUNK = 32768  # faces per scan step: the temporaries stay in L2 cache
_PARALLEL_FROM = 250_000  # below this one thread scans faster than two can start
_scanners = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="pgface-scan")
# COPY ... (FORMAT BINARY) of (id bigint, binary_quantize(embedding) bit(512)): fixed-size rows.
_ROW = np.dtype([("nfields", ">i2"), ("id_len", ">i4"), ("id", ">i8"), ("bits_len", ">i4"),
                 ("nbits", ">i4"), ("bits", "u1", (64,))])
_HEADER = 19  # signature (11), flags (4), header extension length (4)


def sign_bits(vectors: np.ndarray) -> np.ndarray:
    """[n, 512] floats -> [n, 8] uint64: bit set where the value is > 0, as binary_quantize."""
    packed = np.packbits(np.atleast_2d(vectors) > 0, axis=1)  # most significant bit first
    return np.ascontiguousarray(packed).view(np.uint64)


if hasattr(np, "bitwise_count"):
    _popcount = np.bitwise_count
else:  # numpy < 2: a byte table, several times slower
    _BYTE_BITS = np.array([bin(i).count("1") for i in range(256)], np.uint8)

    def _popcount(x: np.ndarray, out: np.ndarray) -> np.ndarray:
        return _BYTE_BITS[x.view(np.uint8)].reshape(-1, 8).sum(axis=1, dtype=np.uint8, out=out)


def _scan(columns: np.ndarray, query: np.ndarray, out: np.ndarray, lo: int, hi: int) -> None:
    x = np.empty(min(_CHUNK, hi - lo), np.uint64)
    c = np.empty(len(x), np.uint8)
    for start in range(lo, hi, _CHUNK):
        end = min(start + _CHUNK, hi)
        acc, xx, cc = out[start:end], x[: end - start], c[: end - start]
        # one word at a time over contiguous columns: every step is a plain SIMD loop
        for w in range(WORDS):
            np.bitwise_xor(columns[w, start:end], query[w], out=xx)
            _popcount(xx, out=cc)
            if w == 0:
                acc[:] = cc
            else:
                np.add(acc, cc, out=acc)


def hamming(columns: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Hamming distances (uint16) of every face to query [8] uint64. columns: [8, n] uint64,
    word-major, so each word of every face is one contiguous array."""
    n = columns.shape[1]
    out = np.empty(n, np.uint16)
    parts = min(os.cpu_count() or 1, 4) if n >= _PARALLEL_FROM else 1
    if parts == 1:
        _scan(columns, query, out, 0, n)
    else:  # numpy releases the GIL inside each step: the cores share one scan
        step = -(-n // parts)
        list(_scanners.map(lambda i: _scan(columns, query, out, i * step,
                                           min(n, (i + 1) * step)), range(parts)))
    return out


def nearest_by_hamming(distances: np.ndarray, count: int) -> np.ndarray:
    """Positions of the `count` smallest distances (ties at the cut kept), in no order."""
    if count >= len(distances):
        return np.arange(len(distances))
    # a histogram of 513 values finds the cut in one pass: cheaper than argpartition
    cumulative = np.bincount(distances, minlength=513).cumsum()
    cut = int(np.searchsorted(cumulative, count))
    chosen = np.flatnonzero(distances <= cut)
    if len(chosen) > 2 * count:  # many ties at the cut: trim them
        chosen = chosen[np.argpartition(distances[chosen], count)[:count]]
    return chosen


class SignIndex:
    """Face ids and sign bits of one model. Safe to share between threads.

    Kept in step by `sync`: the first call loads every face, later calls fetch only faces with
    an id above a watermark. The watermark only passes ids whose transactions have all ended
    (judged by PostgreSQL snapshots), so faces of an indexer that commits late are not missed.
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self._ids = np.empty(0, np.int64)
        self._bits = np.empty((WORDS, 0), np.uint64)  # word-major: see hamming()
        self._n = 0
        self._watermark = 0  # every face with id <= this is loaded (or deleted)
        self._max_id = 0
        self._pending: list[tuple[int, int]] = []  # (xmax of a sync's snapshot, ids taken by then)
        self._recent = np.empty(0, np.int64)  # loaded ids above the watermark, sorted
        self._dead: set[int] = set()  # deleted faces seen by a re-rank, dropped on next sync
        self._lock = threading.Lock()
        self.loaded = False

    def __len__(self) -> int:
        return self._n

    def nbytes(self) -> int:
        """Memory held by the index arrays (ids and bits, including growth room)."""
        return self._ids.nbytes + self._bits.nbytes

    def sync(self, conn: psycopg.Connection) -> int:
        """Catch up with PostgreSQL; returns the number of faces added. conn: idle, not in a
        transaction (the steps need fresh READ COMMITTED snapshots, in this order)."""
        with self._lock:
            # 1. ids taken from the sequence so far ...
            taken = conn.execute(sql.FACES_ID_TAKEN).fetchone()[0]
            # 2. ... then a snapshot: transactions with xid >= xmax took their ids after step 1.
            xmin, xmax = (int(v) for v in conn.execute(sql.SNAPSHOT_BOUNDS).fetchone())
            self._pending.append((xmax, taken))
            if len(self._pending) > 32:  # xmin held back long: dropping one only delays it
                del self._pending[-2]
            settled = [t for x, t in self._pending if x <= xmin]
            # Ids up to `taken` of a sync (this one included) are settled once every
            # transaction that could hold them (xid < that sync's xmax) has ended. Only then
            # can faces below the highest id loaded still appear: otherwise fetch above it.
            after = self._watermark if settled else max(self._watermark, self._max_id)
            rows = self._fetch(conn, after)
            conn.commit()
            added = self._append(rows)
            self._pending = [(x, t) for x, t in self._pending if x > xmin]
            if settled:
                self._watermark = max(self._watermark, *settled)
                self._recent = self._recent[self._recent > self._watermark]
            if self._dead:
                self._drop(self._dead)
                self._dead.clear()
            self.loaded = True
            return added

    def _fetch(self, conn: psycopg.Connection, after: int) -> np.ndarray:
        with conn.cursor() as cur:
            # binary_quantize on the server: 64 bytes a face cross the wire instead of 2 KB
            with cur.copy(sql.COPY_SIGN_BITS, (self.model, after)) as copy:
                data = b"".join(bytes(block) for block in copy)
        body = data[_HEADER:-2] if len(data) > _HEADER + 2 else b""
        rows = np.frombuffer(body, dtype=_ROW)
        if len(rows) and (np.any(rows["nbits"] != 512) or np.any(rows["nfields"] != 2)):
            raise ValueError("unexpected COPY row layout for the sign bits")
        return rows

    def _append(self, rows: np.ndarray) -> int:
        if not len(rows):
            return 0
        ids = rows["id"].astype(np.int64)
        if len(self._recent):  # a refetch above a watermark that could not advance yet
            at = np.searchsorted(self._recent, ids).clip(max=len(self._recent) - 1)
            keep = self._recent[at] != ids
            rows, ids = rows[keep], ids[keep]
        bits = np.ascontiguousarray(rows["bits"]).view(np.uint64).reshape(-1, WORDS).T
        need = self._n + len(ids)
        if need > len(self._ids):
            # grow by half: appends stay amortised O(1) and readers keep their old arrays
            size = max(need, len(self._ids) * 3 // 2, 1024)
            ids_new, bits_new = np.empty(size, np.int64), np.empty((WORDS, size), np.uint64)
            ids_new[: self._n] = self._ids[: self._n]
            bits_new[:, : self._n] = self._bits[:, : self._n]
            self._ids, self._bits = ids_new, bits_new
        self._ids[self._n : need], self._bits[:, self._n : need] = ids, bits
        self._n = need
        self._max_id = max(self._max_id, int(ids.max()))
        self._recent = np.union1d(self._recent, ids[ids > self._watermark])
        return len(ids)

    def _drop(self, dead: set[int]) -> None:
        keep = ~np.isin(self._ids[: self._n], np.fromiter(dead, np.int64))
        # new arrays, so a search scanning the old ones is not disturbed
        self._ids = self._ids[: self._n][keep]
        self._bits = np.ascontiguousarray(self._bits[:, : self._n][:, keep])
        self._n = len(self._ids)

    def candidates(self, query: np.ndarray, count: int = DEFAULT_CANDIDATES) -> np.ndarray:
        """Ids of the `count` faces (or a few more, on ties) nearest to query by sign bits."""
        with self._lock:
            ids, bits = self._ids[: self._n], self._bits[:, : self._n]
        if not len(ids):
            return ids
        distances = hamming(bits, sign_bits(query)[0])
        return ids[nearest_by_hamming(distances, count)]

    def search(self, conn: psycopg.Connection, query: np.ndarray, k: int,
               min_similarity: float, candidates: int = DEFAULT_CANDIDATES,
               sync: bool = True) -> list[MatchRow]:
        """The k faces nearest to query with cosine similarity >= min_similarity: candidates
        here, exact distances, photos and names from PostgreSQL."""
        if sync or not self.loaded:
            self.sync(conn)
        ids = self.candidates(query, max(candidates, k))
        if not len(ids):
            return []
        with conn.transaction():
            rows = conn.execute(sql.RERANK_FACES, {
                "ids": ids.tolist(), "model": self.model, "k": k,
                "query": np.asarray(query, dtype=np.float32),
                "max_distance": 1.0 - min_similarity,
            }).fetchall()
            if rows and rows[0][7] < len(ids):  # some candidates were deleted meanwhile
                present = {r[0] for r in conn.execute(sql.PRESENT_FACES, [ids.tolist()])}
                with self._lock:
                    self._dead.update(int(i) for i in ids if int(i) not in present)
        return [MatchRow(r[0], r[1], r[2], list(r[3]), r[4], r[5], float(r[6])) for r in rows]


# Below this many faces of a model, PostgreSQL alone answers (HNSW with a generous ef_search
# is near exact there and needs no memory); docs/benchmarks-search.md has the crossover.
MIN_FACES = 20_000
_RECHECK_S = 30.0  # how long a "too few faces" answer is trusted
_shared: weakref.WeakKeyDictionary[ConnectionPool, dict[str, SignIndex | float]] = \
    weakref.WeakKeyDictionary()
_shared_lock = threading.Lock()


def shared_index(pool: ConnectionPool, model: str,
                 min_faces: int | None = None) -> SignIndex | None:
    """The index of `model` for the database behind pool, shared by every search on that pool;
    None while the model has fewer than min_faces (default MIN_FACES) faces."""
    min_faces = MIN_FACES if min_faces is None else min_faces
    with _shared_lock:
        entry = _shared.setdefault(pool, {}).get(model)
    if isinstance(entry, SignIndex):
        return entry
    if entry is not None and time.monotonic() - entry < _RECHECK_S:
        return None
    with pool.connection() as conn:
        # counts at most min_faces rows (faces_model_idx): cheap at any size
        enough = conn.execute(sql.FACES_UP_TO, [model, min_faces]).fetchone()[0] >= min_faces
    with _shared_lock:
        indexes = _shared.setdefault(pool, {})
        if not enough:
            indexes[model] = time.monotonic()
            return None
        entry = indexes.get(model)
        if not isinstance(entry, SignIndex):
            entry = indexes[model] = SignIndex(model)
        return entry
