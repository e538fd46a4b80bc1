"""One engine for nearest faces at every size (DESIGN.md, 15).

From vector_index.MIN_FACES faces of a model up, search, identify, enrolment, clustering and
suggestions all ask the in-process sign-bit index (vector_index.py, batch_knn.py); below it,
PostgreSQL answers with pgvector. The HNSW index on faces.embedding serves only those small
libraries, and costs every insert (12x on bulk loads), so it is kept only while it can be used:
dropped once the library reaches MIN_FACES faces, built again when it shrinks below half that
(the gap keeps a library that hovers near the threshold from rebuilding it again and again).
Between the two, pgvector scans exactly, which at that size takes milliseconds. A run that adds
many photos to a small library leaves it off until it ends and then builds it as above (below
half of MIN_FACES), pgvector's advice for bulk loads (hnsw_off_for_bulk).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from pgface import vector_index
from pgface.db import people_store as ps
from pgface.db import sql

log = logging.getLogger(__name__)

_LOCK_WAIT = "2s"  # a DROP or CREATE INDEX that would wait longer on searches tries next time
# A run of at least this many photos, and at least half as many photos as the library has faces,
# is a bulk load. On this project's 2-core machine an insert kept the HNSW index in step for 1.4
# to 5.1 ms (more the larger the graph: 3.3 ms at 5,000 random vectors, 5.1 at 20,000), where
# building it over the same rows took 0.3 to 1.2 ms a row (docs/benchmarks-hnsw-bulk.md).
BULK_MIN_PHOTOS = 64


def index_at_scale(pool: ConnectionPool, model: str) -> vector_index.SignIndex | None:
    """The model's shared search index, caught up with PostgreSQL; None below its threshold."""
    index = vector_index.shared_index(pool, model)
    if index is not None:
        with pool.connection() as conn:
            index.sync(conn)
    return index


def keep_hnsw_in_step(conn: psycopg.Connection, min_faces: int | None = None) -> str | None:
    """Drops or builds the HNSW index as the library crosses the threshold; says which it
    did ("dropped", "built") or None. conn: idle (runs and commits its own transaction)."""
    min_faces = vector_index.MIN_FACES if min_faces is None else min_faces
    exists, faces = _hnsw_state(conn, min_faces)
    conn.commit()
    if exists and faces >= min_faces:
        statement, done = sql.DROP_HNSW, "dropped"
    elif not exists and faces < min_faces // 2:
        statement, done = sql.CREATE_HNSW, "built"
    else:
        return None
    if not _change_hnsw(conn, statement, done):
        return None
    log.info("HNSW index on faces.embedding %s (the library has %s%s faces)", done,
             "at least " if faces >= min_faces else "", faces)
    return done


def hnsw_off_for_bulk(conn: psycopg.Connection, photos: int, min_faces: int | None = None,
                      min_photos: int | None = None,
                      analysed_share: Callable[[], float] | None = None) -> bool:
    """Before a run over PHOTOS photos: whether it is a bulk load into a library that keeps
    the HNSW index (below min_faces faces), which then runs without it, dropped here: at least
    min_photos photos to add, and at least half as many as the library has faces. The run
    leaves the index alone while it lasts and calls keep_hnsw_in_step when it ends, which builds
    it again (below half of min_faces; in the gap above, pgvector scans exactly, as it does
    meanwhile). False where the index is busy: the run then keeps it in step as any other does.
    analysed_share: the share of the photos this pack has analysed already (the run skips
    them), asked only where the library is small enough for the answer to matter.
    conn: idle (runs and commits its own transactions)."""
    min_faces = vector_index.MIN_FACES if min_faces is None else min_faces
    min_photos = BULK_MIN_PHOTOS if min_photos is None else min_photos
    if photos < min_photos:
        return False
    exists, faces = _hnsw_state(conn, min_faces)
    if faces < min_faces and analysed_share is not None:
        photos = round(photos * (1 - analysed_share()))
    conn.commit()
    if faces >= min_faces or photos < min_photos or photos * 2 < faces:
        return False
    if exists and not _change_hnsw(conn, sql.DROP_HNSW, "dropped"):
        return False
    log.info("HNSW index on faces.embedding off while %d photos are indexed into a library of "
             "%d faces; built again when they are in", photos, faces)
    return True


def _hnsw_state(conn: psycopg.Connection, min_faces: int) -> tuple[bool, int]:
    """Whether the HNSW index exists, and the library's faces, counted up to min_faces."""
    exists = conn.execute(sql.HNSW_EXISTS).fetchone()[0]
    return exists, conn.execute(sql.ALL_FACES_UP_TO, [min_faces]).fetchone()[0]


def _change_hnsw(conn: psycopg.Connection, statement: str, done: str) -> bool:
    """Runs a DROP or CREATE of the HNSW index unless it would wait on others; whether it ran."""
    try:
        with conn.transaction():
            conn.execute(sql.LOCK_TIMEOUT, [_LOCK_WAIT])
            conn.execute(statement)
    except psycopg.errors.LockNotAvailable:
        log.info("the HNSW index is busy; it will be %s later", done)
        return False
    except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
        # built by another run at the same moment (IF NOT EXISTS does not see an index being
        # made): two overlapping index runs of one folder, as cron starts them, ended one of
        # them "building the search index again failed: duplicate key value" of an index
        # the other had built (probe cron38)
        log.info("the HNSW index was built by another process meanwhile")
    return True


def nearest_assigned(conn: psycopg.Connection, index: vector_index.SignIndex | None,
                     queries: np.ndarray, model: str, k: int, min_similarity: float,
                     ef_search: int, exclude: Sequence[int] = ()) -> list[list[dict]]:
    """For each query vector, up to k nearest faces that belong to a person, best first, as
    rows (id, photo_id, person_id, name, similarity). index: the synced search index at
    scale, None: pgvector. At scale the candidates are the faces nearest by sign bits that can
    reach min_similarity (vector_index.DEFAULT_CANDIDATES of them and any tied with the
    last), of any person or none; those that belong to someone are ranked by their exact
    cosine in PostgreSQL. (Restricting the scan to the faces people hold needs their ids, a
    read of the faces table: done only for a query whose candidates are crowded with faces
    nobody holds.) exclude: people whose faces are left out."""
    exclude = [int(p) for p in exclude]
    if index is None:
        return [ps.nearest_assigned(conn, q, model, k, min_similarity, ef_search, exclude)
                for q in queries]
    if not len(queries):
        return []
    wide = vector_index.DEFAULT_CANDIDATES
    candidates = index.approximate_many(queries, wide, min_similarity, wide)
    with conn.cursor(row_factory=dict_row) as cur:
        def assigned_of(query: np.ndarray, ids: np.ndarray) -> list[dict]:
            return cur.execute(sql.RERANK_ASSIGNED, {
                "ids": ids.tolist(), "model": model, "k": k, "exclude": exclude,
                "query": np.asarray(query, dtype=np.float32),
                "max_distance": 1.0 - min_similarity}).fetchall() if len(ids) else []

        out = [assigned_of(q, ids) for q, (ids, _) in zip(queries, candidates, strict=True)]
        # Crowded: as many candidates as asked for (wide; with ties, a query has more) could
        # reach the floor, so faces past them may too, and too few of them belong to someone
        # (hundreds of unassigned photos of a person nearer than any they hold turned "Colin
        # Powell" into unknown). Those queries look again among the faces people hold: their
        # ids, one read of the faces table, paid only here.
        crowded = [i for i, ((ids, _), rows) in enumerate(zip(candidates, out, strict=True))
                   if len(ids) >= wide and len(rows) < k]
        if crowded:
            held = np.array([r["id"] for r in cur.execute(sql.ASSIGNED_FACE_IDS,
                                                          [model, exclude])], dtype=np.int64)
            again = (index.approximate_many(queries[crowded], wide, min_similarity, wide,
                                            among=held) if len(held) else [])
            for i, (ids, _) in zip(crowded, again, strict=False):  # none: nobody holds any
                out[i] = assigned_of(queries[i], ids)
    conn.commit()
    return out
