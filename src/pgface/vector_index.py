"""An in-process index of every stored face of a model, kept in step with PostgreSQL.

Search at scale in three steps (docs/benchmarks-search.md has the figures that chose this):
1. candidates: a flat Hamming scan over 512 sign bits a face (64 bytes), FAISS's counting
   k-NN kernel over arrays held here;
2. their approximate cosine from an int8 copy of each embedding (512 bytes + a scale), which
   picks the few that can be among the k nearest above the threshold;
3. the exact cosine of those few, with photo, person and name, from PostgreSQL by id: deleted
   faces vanish, names are always current, and PostgreSQL stays the store of record.

Face embeddings of different people are nearly orthogonal, which starves HNSW's greedy walk;
a flat scan of the sign bits has no walk to starve and reads 64 MB at 1M faces.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psycopg
from psycopg_pool import ConnectionPool

from pgface.db import sql
from pgface.db.store import MatchRow
from pgface.index_snapshot import SnapshotStore, remove_snapshots

log = logging.getLogger(__name__)

DIM = 512
CODE_BYTES = DIM // 8  # sign bits a face
DEFAULT_CANDIDATES = 300  # 1M faces: identity recall 0.993 at 5.6 ms p50 (benchmarks-search)
# The int8 cosine is within ~0.002 of the exact one (tested); these margins make sure the
# exact answer is among the faces sent to PostgreSQL.
APPROX_MARGIN = 0.02  # send faces down to threshold - this
EXTRA = 10  # and this many more than k
# Rankings of one search, each after forgetting the deleted faces found among its candidates;
# the first suffices unless faces near the query were deleted since the index loaded them.
RERANK_ROUNDS = 4
_PARALLEL_FROM = 250_000  # below this one thread scans faster than two can start


def _new_scanners() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="pgface-scan")


_scanners = _new_scanners()


def _scanners_of_the_child() -> None:
    """A forked child's own pool: the parent's, copied, held its threads as started, and
    threads do not survive a fork, so the child's first large scan waited for ever (Celery's
    prefork pool, gunicorn --preload; probe pyapi20)."""
    global _scanners
    _scanners = _new_scanners()


os.register_at_fork(after_in_child=_scanners_of_the_child)
# COPY ... (FORMAT BINARY) of (id bigint, embedding vector(512)): fixed-size rows.
_ROW = np.dtype([("nfields", ">i2"), ("id_len", ">i4"), ("id", ">i8"), ("vec_len", ">i4"),
                 ("dim", ">i2"), ("unused", ">i2"), ("vec", ">f4", (DIM,))])
_HEADER = 19  # signature (11), flags (4), header extension length (4)
_BATCH_BYTES = 64 << 20
# Rewrite the snapshot file once this many faces were added or dropped since it was written:
# catching up 10k faces costs a new process about 0.2 s (docs/benchmarks-search.md).
SAVE_AFTER = 10_000
# Every this many seconds a sync also checks that the index holds every face of its model up
# to its watermark, and loads any it lacks (and forgets any deleted): on a hot standby the
# watermark rests on the snapshot's xmax alone (pg_locks there does not show the primary's
# transactions), so a batch still storing with ids below it as a sync ran could be missed
# until the process restarted. A count and a sum by an index-only scan; the ids where they
# differ.
RECONCILE_S = 60.0
# Sooner, once faces were deleted (PostgreSQL's count of rows deleted from faces moved, which
# its statistics say within about a second of the commit, whichever process deleted them):
# the index's size is the library size verdicts are judged by, and it kept counting the faces
# of photos deleted through the server itself for up to RECONCILE_S (probe scale30). At most
# once in this many seconds, while a prune deletes photo after photo.
RECONCILE_AFTER_DELETE_S = 1.0


def sign_bits(vectors: np.ndarray) -> np.ndarray:
    """[n, 512] floats -> [n, 64] uint8: bit set where the value is > 0, most significant bit
    first, as pgvector's binary_quantize."""
    return np.packbits(np.atleast_2d(vectors) > 0, axis=1)


def quantize(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[n, 512] floats -> (int8 [n, 512], float32 [n] scales) with int8 * scale ~ the unit
    vector, so the dot product with a unit query approximates the cosine."""
    v = np.atleast_2d(vectors).astype(np.float32)
    unit = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    scale = np.maximum(np.abs(unit).max(axis=1), 1e-12) / 127.0
    return np.rint(unit / scale[:, None]).astype(np.int8), scale.astype(np.float32)


def int8_cosines(int8: np.ndarray, scales: np.ndarray, rows: np.ndarray,
                 query: np.ndarray) -> np.ndarray:
    """The approximate cosines of the faces at rows with the unit float32 query [512]. By
    numpy's own loop, row by row (einsum), not BLAS's gemv, whose value for a row could be an
    ulp apart at another position among the rows or with other threads: copies of a face
    must tie exactly, to be ordered by id whatever the rows' order."""
    return np.einsum("wd,d->w", int8[rows].astype(np.float32), query) * scales[rows]


def _knn(codes: np.ndarray, query: np.ndarray, count: int, lo: int,
         hi: int) -> tuple[np.ndarray, np.ndarray]:
    import faiss  # imported on first use: small libraries never scan

    k = min(count, hi - lo)
    block = codes[lo:hi]  # rows of a C-contiguous array: contiguous
    distances, positions = np.empty(k, np.int32), np.empty(k, np.int64)
    # the counting variant: one pass, a histogram of the 513 possible distances, no heap
    faiss.hammings_knn_mc(faiss.swig_ptr(query), faiss.swig_ptr(block), 1, hi - lo, k,
                          CODE_BYTES, faiss.swig_ptr(distances), faiss.swig_ptr(positions))
    return distances, positions + lo


# Hamming distances are integers: hundreds of faces can share the distance of the count-th
# nearest (probe scale49: 233 nearer, 82 tied for the 67 places left), and which of them a
# k-NN kernel keeps depends on the row order, the number of threads and the dead rows, so a
# running server and a fresh process answered the same query differently. Each part of a scan
# asks for this share more rows than `count` (count + count // TIE_SLACK), enough that the
# faces tied at the cut are all among them but for rare queries, which take every row within
# the cut by one exact scan more (exact_within_cut).
TIE_SLACK = 2
# A tie block that would make the candidates more than this many times `count` (identical
# codes: copies of one face by the thousand) is cut by face id, still deterministic.
MAX_TIED = 2


def nearest_codes(codes: np.ndarray, query: np.ndarray, count: int,
                  ids: np.ndarray | None = None, dead: np.ndarray | None = None) -> np.ndarray:
    """Positions of the rows of codes [n, 64] uint8 nearest to query [64] uint8 by Hamming
    distance, in no order: every row at a distance <= d, d the distance of the count-th
    nearest, ties at d included, so that the answer depends on the rows and the query alone
    (not on the rows' order, the number of threads or the faces pending deletion). Rows whose
    id (ids[row]) is in dead are left out before d is taken. When the rows at d would make
    more than MAX_TIED * count, those at d are taken by smallest id (position without ids)
    up to count rows in all. The batch form, many queries a scan: batch_knn.hamming_knn."""
    n = len(codes)
    if count <= 0:
        return np.empty(0, np.int64)
    drop = dead is not None and ids is not None and len(dead) > 0
    if count >= n:
        at = np.arange(n)
        return at[~np.isin(ids[at], dead)] if drop else at
    if not (codes.flags.c_contiguous and query.flags.c_contiguous):
        raise ValueError("codes and query must be C-contiguous uint8 arrays")
    # FAISS releases the GIL: above _PARALLEL_FROM the cores share one scan, each its rows
    parts = 1 if n < _PARALLEL_FROM else os.cpu_count() or 1
    step = -(-n // parts)
    bounds = [(lo, min(n, lo + step)) for lo in range(0, n, step)]
    want = tie_room(count, len(dead) if drop else 0)
    if len(bounds) == 1:
        found = [_knn(codes, query, want, *bounds[0])]
    else:
        found = list(_scanners.map(lambda b: _knn(codes, query, want, *b), bounds))
    distances = np.concatenate([d for d, _ in found])
    positions = np.concatenate([p for _, p in found])
    live = ~np.isin(ids[positions], dead) if drop else None
    cut = live_cut(distances, count, live)
    if not all(none_left_behind(d, hi - lo, cut)
               for (d, _), (lo, hi) in zip(found, bounds, strict=True)):
        # a tie block wider than the slack
        return exact_within_cut(codes, query, count, cut, ids, dead)
    return within_cut(distances, positions, count, cut, ids, live)


def exact_within_cut(codes: np.ndarray, query: np.ndarray, count: int, cut: int | None,
                     ids: np.ndarray | None, dead: np.ndarray | None) -> np.ndarray:
    """nearest_codes' answer for query [64] where a k-NN scan left rows at its cut behind:
    every row of codes [n, 64] at a Hamming distance <= cut (None, where the scan found
    fewer live rows than count: every row) by one exact scan whose memory is the rows it
    finds (FAISS's range search), the cut taken again among the live ones (the same where
    it was known), then within_cut. A k-NN scan asked again for twice as many rows until a
    tie block fitted held a heap of each size a query (probe reprobe52: 2,000 copies of a
    face among 50,000 made the batch path 12 times slower, 100,000 copies took 1.1 GB)."""
    import faiss  # imported on first use: small libraries never scan

    radius = CODE_BYTES * 8 + 1 if cut is None else cut + 1  # FAISS's range is d < radius
    result = faiss.RangeSearchResult(1)
    faiss.hamming_range_search(faiss.swig_ptr(query), faiss.swig_ptr(codes), 1, len(codes),
                               radius, CODE_BYTES, result)
    found = int(faiss.rev_swig_ptr(result.lims, 2)[1])
    distances, positions = np.empty(0, np.int32), np.empty(0, np.int64)
    if found:
        distances = faiss.rev_swig_ptr(result.distances, found).astype(np.int32)
        positions = faiss.rev_swig_ptr(result.labels, found).copy()
    drop = dead is not None and ids is not None and len(dead) > 0
    live = ~np.isin(ids[positions], dead) if drop else None
    return within_cut(distances, positions, count, live_cut(distances, count, live), ids, live)


def tie_room(count: int, dead: int = 0) -> int:
    """How many rows a k-NN scan asks for to find the `count` nearest live ones and, but for
    rare queries, every row tied with the last of them (TIE_SLACK; dead: rows known to be
    deleted, which may be among the nearest)."""
    return count + count // TIE_SLACK + dead


def live_cut(distances: np.ndarray, count: int, live: np.ndarray | None) -> int | None:
    """d, the count-th smallest of the distances of the rows a k-NN scan returned, among the
    live ones (live: mask, None: all); None when fewer than count are live."""
    if live is not None:
        distances = distances[live]
    if len(distances) < count:
        return None
    return int(np.partition(distances, count - 1)[count - 1])


def none_left_behind(distances: np.ndarray, rows: int, cut: int | None) -> bool:
    """Whether a k-NN scan over `rows` rows that returned these distances (its nearest, the
    deleted ones among them) left no row at a distance <= cut behind: it returned all its
    rows, or one farther than the cut (so every row it did not return is farther too)."""
    return len(distances) == rows or (cut is not None and int(distances.max()) > cut)


def within_cut(distances: np.ndarray, positions: np.ndarray, count: int, cut: int | None,
               ids: np.ndarray | None, live: np.ndarray | None) -> np.ndarray:
    """The positions, among those a k-NN scan returned (none left behind), of the live rows
    at a distance <= cut (all the live ones where cut is None); a tie block that would make
    more than MAX_TIED * count taken by smallest id (position without ids) up to count."""
    if live is not None:
        distances, positions = distances[live], positions[live]
    if cut is None:  # fewer live rows than count: all of them
        return positions
    within = distances <= cut
    if int(within.sum()) <= MAX_TIED * count:
        return positions[within]
    nearer = positions[distances < cut]
    tied = positions[distances == cut]
    order = np.argsort(ids[tied] if ids is not None else tied, kind="stable")
    return np.concatenate([nearer, tied[order[: count - len(nearer)]]])


def fetch_vectors(conn: psycopg.Connection, model: str, after: int = 0,
                  ids: Sequence[int] | None = None) -> Iterator[np.ndarray]:
    """The faces of model with id > after (or those of these ids), as batches of binary COPY
    rows (fields "id" and "vec"; about 64 MB each: the raw rows of a million faces never sit
    in memory at once)."""
    buffer, started = bytearray(), False
    statement, params = ((sql.COPY_FACE_VECTORS, (model, after)) if ids is None
                         else (sql.COPY_FACE_VECTORS_OF, (model, [int(i) for i in ids])))
    with conn.cursor() as cur, cur.copy(statement, params) as copy:
        for block in copy:
            buffer += block
            if not started and len(buffer) >= _HEADER:
                del buffer[:_HEADER]
                started = True
            if len(buffer) >= _BATCH_BYTES:
                yield _copy_rows(buffer)
    rows = _copy_rows(buffer)
    if bytes(buffer) != b"\xff\xff":  # the COPY trailer: all that may remain
        raise ValueError("unexpected end of the COPY of face vectors")
    yield rows


def _copy_rows(buffer: bytearray) -> np.ndarray:
    """Takes the whole rows off the front of buffer."""
    whole = len(buffer) // _ROW.itemsize * _ROW.itemsize
    rows = np.frombuffer(buffer[:whole], dtype=_ROW)  # the slice is the one copy
    del buffer[:whole]
    if len(rows) and (np.any(rows["nfields"] != 2) or np.any(rows["dim"] != DIM)):
        raise ValueError("unexpected COPY row layout for the face vectors")
    return rows


class SignIndex:
    """Face ids, sign bits and int8 embeddings of one model. Safe to share between threads.

    Kept in step by `sync`: the first call loads every face, later calls fetch only faces with
    an id above a watermark. The watermark only passes ids whose transactions have all ended
    (judged by PostgreSQL snapshots), so faces of an indexer that commits late are not missed.
    """

    # A first load from PostgreSQL of this many face ids or more is said before it starts: a
    # first search of 300,000 faces with no snapshot (one indexing made, say) waited 15-18 s
    # in silence (probe scale57), a million about a minute.
    load_said_from = 100_000

    def __init__(self, model: str) -> None:
        self.model = model
        self._lock = threading.Lock()
        # the file copy kept in step (index_snapshot.py); None: memory only
        self.snapshot: SnapshotStore | None = None
        self._saving = False
        self._forgotten = 0  # erasures so far: a check that fetched across one loads nothing
        self._empty()

    def _empty(self) -> None:
        """No face loaded, as new."""
        # parallel arrays, row i one face; only the first _n rows are in use
        self._ids = np.empty(0, np.int64)
        self._codes = np.empty((0, CODE_BYTES), np.uint8)
        self._int8 = np.empty((0, DIM), np.int8)
        self._scales = np.empty(0, np.float32)
        self._n = 0
        self._watermark = 0  # every face with id <= this is loaded (or deleted)
        self._max_id = 0
        self._pending: list[tuple[int, int]] = []  # (xmax of a sync's snapshot, ids taken by then)
        self._recent = np.empty(0, np.int64)  # loaded ids above the watermark, sorted
        self._dead: set[int] = set()  # deleted faces seen by a re-rank, dropped on next sync
        self.loaded = False
        self.unsaved = 0  # faces added or dropped since the snapshot was written
        self._saved_watermark: int | None = None
        self._lsn: str | None = None  # the server's WAL position when the watermark last moved
        self._checked_at = time.monotonic()
        self._deleted: int | None = None  # faces rows deleted, as of the last check
        self._table: int | None = None  # the faces table's oid, as of the last sync

    @classmethod
    def restored(cls, model: str, arrays: dict[str, np.ndarray], watermark: int,
                 lsn: str) -> SignIndex:
        """An index holding the faces of a snapshot (every face with id <= watermark), to be
        caught up by sync. The arrays may be read-only memory maps: appends copy them."""
        index = cls(model)
        index._ids, index._codes = arrays["ids"], arrays["codes"]
        index._int8, index._scales = arrays["int8"], arrays["scales"]
        index._n = len(index._ids)
        index._watermark = index._saved_watermark = watermark
        index._max_id = int(index._ids.max()) if index._n else 0
        index._lsn = lsn
        return index

    def __len__(self) -> int:
        return self._n

    def nbytes(self, in_use: bool = False) -> int:
        """Memory held by the index arrays: allocated (they grow by half at a time), or only
        the rows in use."""
        return sum(a[: self._n].nbytes if in_use else a.nbytes for a in self._arrays())

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self._ids, self._codes, self._int8, self._scales

    def sync(self, conn: psycopg.Connection) -> int:
        """Catch up with PostgreSQL; returns the number of faces added. conn: idle, not in a
        transaction (the steps need fresh READ COMMITTED snapshots, in this order)."""
        with self._lock:
            # 1. ids taken from the sequence so far (on a hot standby: at most `taken`, surely
            # `handed`; the ids in between may go to transactions that start after step 2) ...
            taken, handed, deleted, table = conn.execute(sql.FACES_ID_TAKEN).fetchone()
            if self._table is not None and table != self._table:
                # A restore (`db restore --replace` under a running `pgface serve`) made the
                # table anew: its ids, handed out again, are other faces than those loaded
                # under them, and the faces indexed since were never found (probe backup39).
                log.warning("the faces table was made anew (a restore): the search index of "
                            "%s is loaded again from PostgreSQL", self.model)
                self._empty()
                if self.snapshot is not None:  # the file's identity holds the table's
                    self.snapshot = self.snapshot.renewed(conn)
            self._table = table
            # 2. ... then a snapshot: transactions with xid >= xmax took their ids after step 1.
            xmin, xmax = (int(v) for v in conn.execute(sql.SNAPSHOT_BOUNDS).fetchone())
            self._pending.append((xmax, handed))
            if len(self._pending) > 32:  # xmin held back long: dropping one only delays it
                del self._pending[-2]
            settled = [t for x, t in self._pending if x <= xmin]
            # Ids up to `handed` of a sync (this one included) are settled once every
            # transaction that could hold them (xid < that sync's xmax) has ended. Only then
            # can faces below the highest id loaded still appear: otherwise fetch above it.
            after = self._watermark if settled else max(self._watermark, self._max_id)
            # No face has an id above `taken` yet; any that appear are fetched next time.
            if not self.loaded and taken - after >= self.load_said_from:
                log.warning("loading the search index of %s from PostgreSQL: up to %s faces, "
                            "a while at this size%s", self.model, f"{taken - after:,}",
                            "; the next process reads the snapshot this one writes"
                            if self.snapshot is not None else "")
            added = (sum(self._append(rows) for rows in self._fetch(conn, after))
                     if after < taken else 0)
            if settled and self.snapshot is not None:
                # after the snapshot that settled the ids: a server that has come this far
                # has seen every face up to the new watermark
                self._lsn = conn.execute(sql.WAL_POSITION).fetchone()[0]
            conn.commit()
            self._pending = [(x, t) for x, t in self._pending if x > xmin]
            if settled:
                self._watermark = max(self._watermark, *settled)
                self._recent = self._recent[self._recent > self._watermark]
            self.unsaved += added
            if self._dead:
                before = self._n
                self._drop(self._dead)
                self.unsaved += before - self._n
                self._dead.clear()
            self.loaded = True
        with self._lock:  # one check at a time: two appended the same faces twice
            since = time.monotonic() - self._checked_at
            if self._deleted is None:
                self._deleted = deleted  # the first sync's: a snapshot's age is RECONCILE_S's
            due = since >= RECONCILE_S or (deleted != self._deleted
                                           and since >= RECONCILE_AFTER_DELETE_S)
            if due:
                self._checked_at, self._deleted = time.monotonic(), deleted
        if due:
            added += self._reconcile(conn)
        self._save_when_due()
        return added

    def _reconcile(self, conn: psycopg.Connection) -> int:
        """Loads the faces of the model up to the watermark that the index lacks, marks those
        it holds that are gone; returns how many it loaded (RECONCILE_S says why). Only this
        adds ids at or below the watermark, so what it found missing stays missing until it
        appends them; a face deleted stays deleted."""
        with self._lock:
            watermark, forgotten = self._watermark, self._forgotten
            loaded = self._ids[: self._n]
            loaded = loaded[loaded <= watermark]
        count, total = conn.execute(sql.FACES_OF_MODEL_UP_TO, [self.model, watermark]).fetchone()
        if (count, int(total)) == (len(loaded), int(loaded.sum())):
            conn.commit()
            return 0
        packed = conn.execute(sql.FACE_IDS_OF_MODEL_UP_TO, [self.model, watermark]).fetchone()[0]
        present = np.frombuffer(packed or b"", ">i8").astype(np.int64)
        with self._lock:
            loaded = self._ids[: self._n]
            loaded = loaded[loaded <= watermark]
        missing = np.setdiff1d(present, loaded)
        gone = np.setdiff1d(loaded, present)
        rows = list(fetch_vectors(conn, self.model, ids=missing)) if len(missing) else []
        conn.commit()
        with self._lock:
            if self._forgotten != forgotten:  # an erase since the fetch: its faces may be
                self._checked_at = 0.0  # among the rows; the next sync checks again
                return 0
            added = sum(self._append(r) for r in rows)
            self._dead.update(gone.tolist())
            self.unsaved += added
            if added:
                self._saved_watermark = None  # the snapshot file lacks them too
        if added:
            log.warning("the search index of %s lacked %d faces up to id %d; loaded them",
                        self.model, added, watermark)
        return added

    def _save_when_due(self) -> None:
        """Rewrites the snapshot in the background when it lags enough (or there is none)."""
        with self._lock:
            due = (self._saved_watermark is None or self.unsaved >= SAVE_AFTER)
            job = self._take_save() if due else None
        if job is not None:
            # not a daemon: a one-shot CLI process finishes the file before it exits
            threading.Thread(target=self._save, args=job, name="pgface-index-snapshot").start()

    def save(self) -> bool:
        """Writes the snapshot now, if there is one to keep and anything new to write."""
        with self._lock:
            job = self._take_save()
        return job is not None and self._save(*job)

    def _take_save(self) -> tuple | None:
        """What a save writes (under the lock): views of the rows in use, which never change."""
        if (self.snapshot is None or self._saving or self._lsn is None
                or self._watermark <= (self._saved_watermark or 0)):
            return None
        self._saving = True
        arrays = dict(zip(("ids", "codes", "int8", "scales"),
                          (a[: self._n] for a in self._arrays()), strict=True))
        return self.snapshot, arrays, self._watermark, self._lsn, self.unsaved

    def _save(self, store: SnapshotStore, arrays: dict[str, np.ndarray], watermark: int,
              lsn: str, unsaved: int) -> bool:
        try:
            keep = arrays["ids"] <= watermark  # above it: faces a later sync may still miss
            if not keep.all():
                arrays = {k: a[keep] for k, a in arrays.items()}
            store.write(arrays, watermark, lsn)
            with self._lock:
                self._saved_watermark = watermark
                self.unsaved -= unsaved
            return True
        except OSError as exc:
            log.warning("cannot write the index snapshot %s (%s): the search index stays in "
                        "memory only", store.path, exc)
            self.snapshot = None
            return False
        finally:
            self._saving = False

    def _fetch(self, conn: psycopg.Connection, after: int) -> Iterator[np.ndarray]:
        return fetch_vectors(conn, self.model, after)

    def _append(self, rows: np.ndarray) -> int:
        if not len(rows):
            return 0
        ids = rows["id"].astype(np.int64)
        if len(self._recent):  # a refetch above a watermark that could not advance yet
            at = np.searchsorted(self._recent, ids).clip(max=len(self._recent) - 1)
            keep = self._recent[at] != ids
            rows, ids = rows[keep], ids[keep]
            if not len(ids):
                return 0
        vectors = rows["vec"].astype(np.float32)
        codes, (int8, scales) = sign_bits(vectors), quantize(vectors)
        need = self._n + len(ids)
        if need > len(self._ids):
            # grow by half: appends stay amortised O(1) and readers keep their old arrays
            size = max(need, len(self._ids) * 3 // 2, 1024)
            grown = []
            for old in self._arrays():
                new = np.empty((size, *old.shape[1:]), old.dtype)
                new[: self._n] = old[: self._n]
                grown.append(new)
            self._ids, self._codes, self._int8, self._scales = grown
        for array, values in zip(self._arrays(), (ids, codes, int8, scales), strict=True):
            array[self._n : need] = values
        self._n = need
        self._max_id = max(self._max_id, int(ids.max()))
        self._recent = np.union1d(self._recent, ids[ids > self._watermark])
        return len(ids)

    def forget(self, face_ids: Sequence[int]) -> None:
        """Drop these faces now (erased: their copies must not wait for a search to find them
        gone), and write the snapshot again without them at the next save."""
        with self._lock:
            before = self._n
            self._drop(set(face_ids))
            self._forgotten += 1
            self.unsaved += before - self._n
            self._dead.difference_update(face_ids)
            self._saved_watermark = None

    def _drop(self, dead: set[int]) -> None:
        keep = ~np.isin(self._ids[: self._n], np.fromiter(dead, np.int64))
        # new arrays, so a search scanning the old ones is not disturbed
        self._ids, self._codes, self._int8, self._scales = (
            np.ascontiguousarray(a[: self._n][keep]) for a in self._arrays())
        self._n = len(self._ids)

    def _snapshot(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        with self._lock:  # rows below _n never change: the views stay valid without the lock
            return tuple(a[: self._n] for a in self._arrays())  # type: ignore[return-value]

    def candidates(self, query: np.ndarray, count: int = DEFAULT_CANDIDATES) -> np.ndarray:
        """Ids of the `count` faces nearest to query by sign bits and those tied with the last
        of them (nearest_codes), in no order."""
        ids, codes, _, _ = self._snapshot()
        return ids[self._nearest_live(ids, codes, np.asarray(query, np.float32), count)]

    def approximate(self, query: np.ndarray, k: int, min_similarity: float,
                    candidates: int = DEFAULT_CANDIDATES) -> np.ndarray:
        """Ids of the faces that can be among the k nearest with cosine >= min_similarity:
        the sign-bit candidates, ranked by their int8 embeddings."""
        ids, codes, int8, scales = self._snapshot()
        query = np.asarray(query, dtype=np.float32)
        query = query / max(float(np.linalg.norm(query)), 1e-12)
        at = self._nearest_live(ids, codes, query, max(candidates, k))
        cosines = int8_cosines(int8, scales, at, query)
        keep = np.flatnonzero(cosines >= min_similarity - APPROX_MARGIN)
        if len(keep) > k + EXTRA:  # the best, ties (copies of a face) by id, not by row
            keep = keep[np.lexsort((ids[at[keep]], -cosines[keep]))[: k + EXTRA]]
        return ids[at[keep]]

    def _nearest_live(self, ids: np.ndarray, codes: np.ndarray, query: np.ndarray,
                      count: int) -> np.ndarray:
        """Positions of the `count` faces nearest to query by sign bits and of those tied
        with the last of them (nearest_codes), among the faces not known to be deleted (still
        here until the next sync drops them): the same faces whatever the rows' order and
        however many deleted ones are pending."""
        return nearest_codes(codes, sign_bits(query)[0], count, ids, self._dead_ids())

    def _dead_ids(self) -> np.ndarray:
        """The ids of the faces known to be deleted, still in the arrays until the next sync
        drops them: never candidates."""
        with self._lock:
            return np.fromiter(self._dead, np.int64, len(self._dead))

    def approximate_many(self, queries: np.ndarray, k: int, min_similarity: float,
                         candidates: int = DEFAULT_CANDIDATES,
                         among: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """approximate() for many queries at once (batch_knn.py), with the int8 cosines;
        among: sorted ids, the only faces looked at (None: every face). Its candidates follow
        nearest_codes' rule, the faces pending deletion left out: the same answer whatever
        the rows' order."""
        from pgface.batch_knn import approximate_many

        ids, codes, int8, scales = self._snapshot()
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        rows = None if among is None else np.flatnonzero(np.isin(ids, among))
        return approximate_many(ids, codes, int8, scales, queries, k, min_similarity,
                                candidates, rows, self._dead_ids())

    def search(self, conn: psycopg.Connection, query: np.ndarray, k: int,
               min_similarity: float, candidates: int = DEFAULT_CANDIDATES,
               sync: bool = True) -> list[MatchRow]:
        """The k faces nearest to query with cosine similarity >= min_similarity: candidates
        here, exact distances, photos and names from PostgreSQL."""
        if sync or not self.loaded:
            self.sync(conn)
        for _ in range(RERANK_ROUNDS):
            ids = self.approximate(query, k, min_similarity, candidates)
            if not len(ids):  # nobody close enough: PostgreSQL need not be asked
                return []
            with conn.transaction():
                rows = conn.execute(sql.RERANK_FACES, {
                    "ids": ids.tolist(), "model": self.model, "k": k,
                    "query": np.asarray(query, dtype=np.float32),
                    "max_distance": 1.0 - min_similarity,
                }).fetchall()
                if (rows[0][7] if rows else 0) == len(ids):
                    break
                # Faces deleted since they were loaded took the places of nearer faces that
                # exist (copies of a photo removed, a person erased: all of them, and the
                # search found nothing): forget those among the sign-bit candidates, rank
                # again. The next sync drops them from the arrays. All that were ranked: k
                # of them where k is more than `candidates` (probe reprobe53).
                self._forget_deleted(conn, self._candidate_ids(query, max(candidates, k)))
        return [MatchRow(r[0], r[1], r[2], list(r[3]), r[4], r[5], float(r[6]))
                for r in rows if r[8]]

    def _candidate_ids(self, query: np.ndarray, candidates: int) -> np.ndarray:
        ids, codes, _, _ = self._snapshot()
        query = np.asarray(query, dtype=np.float32)
        return ids[self._nearest_live(ids, codes, query, candidates)]

    def _forget_deleted(self, conn: psycopg.Connection, ids: np.ndarray) -> None:
        present = {r[0] for r in conn.execute(sql.PRESENT_FACES, [ids.tolist()])}
        with self._lock:
            self._dead.update(int(i) for i in ids.tolist() if i not in present)


# Below this many faces of a model, PostgreSQL alone answers (HNSW with a generous ef_search
# is near exact there and needs no memory); docs/benchmarks-search.md has the crossover.
MIN_FACES = 20_000
_RECHECK_S = 30.0  # how long a "too few faces" answer is trusted
_shared: weakref.WeakKeyDictionary[ConnectionPool, dict[str, SignIndex | float]] = \
    weakref.WeakKeyDictionary()
_shared_lock = threading.Lock()
_opening: weakref.WeakKeyDictionary[ConnectionPool, dict[str, threading.Lock]] = \
    weakref.WeakKeyDictionary()
# pool -> (folder, schema): where the indexes of that pool's database keep their snapshots
_snapshot_folders: weakref.WeakKeyDictionary[ConnectionPool, tuple[Path, str]] = \
    weakref.WeakKeyDictionary()


def keep_snapshots(pool: ConnectionPool, folder: Path, schema: str) -> None:
    """Indexes of pool's database keep a snapshot file in folder (index_snapshot.py)."""
    _snapshot_folders[pool] = (folder, schema)


def _open(conn: psycopg.Connection, pool: ConnectionPool, model: str) -> SignIndex:
    """The index of model: from its snapshot when one can be trusted, else empty (the first
    sync loads every face); kept in a snapshot when the pool asks for one."""
    where = _snapshot_folders.get(pool)
    if where is None:
        return SignIndex(model)
    try:
        store = SnapshotStore.for_database(conn, where[0], where[1], model)
    except psycopg.Error as exc:
        conn.rollback()
        log.warning("no index snapshot: the database's identity cannot be read (%s)",
                    str(exc).strip().splitlines()[0])
        return SignIndex(model)
    index = store.open(conn) or SignIndex(model)
    index.snapshot = store
    return index


def forget_erased(pool: ConnectionPool, face_ids: Sequence[int]) -> None:
    """After an erase: the faces leave the indexes this process holds of pool's library (the
    read pools' too) at once, and the snapshot files of that database and schema are written
    again without them (deleted where no index of this process can write them): otherwise
    their sign bits and int8 copies stayed on disk until some later process rewrote the file."""
    face_ids = list(face_ids)
    where = _snapshot_folders.get(pool)
    with _shared_lock:
        pools = [p for p in _shared if p is pool or (where and _snapshot_folders.get(p) == where)]
        loaded = [i for p in pools for i in _shared[p].values() if isinstance(i, SignIndex)]
    for index in loaded:
        index.forget(face_ids)
    if where is None:
        return
    with pool.connection() as conn:
        stores = {model: SnapshotStore.for_database(conn, where[0], where[1], model)
                  for model in {i.model for i in loaded}}
        remove_snapshots(where[0], *conn.execute(sql.DATABASE_IDENTITY).fetchone()[:2],
                         where[1])
        conn.commit()
    for index in loaded:
        if index.snapshot is not None:
            index.snapshot = stores[index.model]  # the scrub gave the faces table a new file
            index.save()


def shared_index(pool: ConnectionPool, model: str,
                 min_faces: int | None = None) -> SignIndex | None:
    """The index of `model` for the database behind pool, shared by every search on that pool;
    None while the model has fewer than min_faces (default MIN_FACES) faces."""
    min_faces = MIN_FACES if min_faces is None else min_faces
    with _shared_lock:
        entry = _shared.setdefault(pool, {}).get(model)
        opening = _opening.setdefault(pool, {}).setdefault(model, threading.Lock())
    if isinstance(entry, SignIndex):
        return entry
    if entry is not None and time.monotonic() - entry < _RECHECK_S:
        return None
    with opening:  # one opening at a time: a second caller takes the first one's index
        with _shared_lock:
            entry = _shared.setdefault(pool, {}).get(model)
        if isinstance(entry, SignIndex):
            return entry
        if entry is not None and time.monotonic() - entry < _RECHECK_S:
            return None
        with pool.connection() as conn:
            # counts at most min_faces rows (faces_model_id_idx): cheap at any size
            enough = conn.execute(sql.FACES_UP_TO, [model, min_faces]).fetchone()[0] >= min_faces
            conn.commit()
            opened = _open(conn, pool, model) if enough else None
        with _shared_lock:
            _shared.setdefault(pool, {})[model] = opened if opened is not None else time.monotonic()
        return opened


def open_in_background(pool: ConnectionPool, model: str) -> None:
    """Starts opening the index of model (its snapshot checked and mapped) unless it is open,
    so that a new process does it while its models load; shared_index then waits for it."""
    with _shared_lock:
        entry = _shared.get(pool, {}).get(model)
    if isinstance(entry, SignIndex) or (entry is not None
                                        and time.monotonic() - entry < _RECHECK_S):
        return

    def opening() -> None:
        try:
            shared_index(pool, model)
        except Exception as exc:  # the search's own call meets it again and reports it
            log.debug("opening the search index in the background: %s", exc)

    threading.Thread(target=opening, name="pgface-index-open", daemon=True).start()
