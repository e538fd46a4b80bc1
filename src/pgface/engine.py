"""One engine for nearest faces at every size (DESIGN.md, 15).

From vector_index.MIN_FACES faces of a model up, search, identify, enrolment, clustering and
suggestions all ask the in-process sign-bit index (vector_index.py, batch_knn.py); below it,
PostgreSQL answers with pgvector. The HNSW index on faces.embedding serves only those small
libraries, and costs every insert (12x on bulk loads), so it is kept only while it can be used:
dropped once the library reaches MIN_FACES faces, built again when it shrinks below half that
(the gap keeps a library that hovers near the threshold from rebuilding it again and again).
Between the two, pgvector scans exactly, which at that size takes milliseconds.
"""

from __future__ import annotations

import logging

import numpy as np
import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from pgface import vector_index
from pgface.db import people_store as ps
from pgface.db import sql

log = logging.getLogger(__name__)

_LOCK_WAIT = "2s"  # a DROP or CREATE INDEX that would wait longer on searches tries next time


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
    exists = conn.execute(sql.HNSW_EXISTS).fetchone()[0]
    faces = conn.execute(sql.ALL_FACES_UP_TO, [min_faces]).fetchone()[0]
    conn.commit()
    if exists and faces >= min_faces:
        statement, done = sql.DROP_HNSW, "dropped"
    elif not exists and faces < min_faces // 2:
        statement, done = sql.CREATE_HNSW, "built"
    else:
        return None
    try:
        with conn.transaction():
            conn.execute(sql.LOCK_TIMEOUT, [_LOCK_WAIT])
            conn.execute(statement)
    except psycopg.errors.LockNotAvailable:
        log.info("the HNSW index is busy; it will be %s later", done)
        return None
    log.info("HNSW index on faces.embedding %s (the library has %s%s faces)", done,
             "at least " if faces >= min_faces else "", faces)
    return done


def nearest_assigned(conn: psycopg.Connection, index: vector_index.SignIndex | None,
                     queries: np.ndarray, model: str, k: int, min_similarity: float,
                     ef_search: int) -> list[list[dict]]:
    """For each query vector, up to k nearest faces that belong to a person, best first, as
    rows (id, photo_id, person_id, name, similarity). index: the synced search index at
    scale, None: pgvector. At scale the candidates are the faces nearest by sign bits that can
    reach min_similarity (vector_index.DEFAULT_CANDIDATES of them), of any person or none; those
    that belong to someone are ranked by their exact cosine in PostgreSQL. (Restricting the
    scan to the faces people hold would need their ids, a scan of the faces table: seconds at
    1M faces.)"""
    if index is None:
        return [ps.nearest_assigned(conn, q, model, k, min_similarity, ef_search)
                for q in queries]
    if not len(queries):
        return []
    wide = vector_index.DEFAULT_CANDIDATES
    candidates = index.approximate_many(queries, wide, min_similarity, wide)
    out = []
    with conn.cursor(row_factory=dict_row) as cur:
        for query, (ids, _) in zip(queries, candidates, strict=True):
            out.append(cur.execute(sql.RERANK_ASSIGNED, {
                "ids": ids.tolist(), "model": model, "k": k,
                "query": np.asarray(query, dtype=np.float32),
                "max_distance": 1.0 - min_similarity}).fetchall() if len(ids) else [])
    conn.commit()
    return out
