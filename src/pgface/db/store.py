"""Reads and writes of photos and faces. Knows rows and vectors, nothing of images or models."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import psycopg
from psycopg.rows import dict_row

from pgface.db import sql


@dataclass
class FaceRow:
    embedding: np.ndarray
    bbox: Sequence[float]
    landmarks: Sequence[float]  # 10 numbers: x, y of eyes, nose, mouth corners
    det_score: float
    crop: bytes


@dataclass
class PhotoRow:
    sha256: bytes
    path: str
    size_bytes: int
    width: int
    height: int
    taken_at: datetime | None
    faces: list[FaceRow] = field(default_factory=list)


@dataclass(frozen=True)
class MatchRow:
    face_id: int
    photo_id: int
    path: str
    bbox: list[float]
    person_id: int | None
    person_name: str | None
    similarity: float


def as_array(vector: object) -> np.ndarray:
    """A pgvector value as float32 numpy (binary results come as pgvector's Vector)."""
    to_numpy = getattr(vector, "to_numpy", None)
    return np.asarray(to_numpy() if to_numpy else vector, dtype=np.float32)


def known_hashes(conn: psycopg.Connection, hashes: Sequence[bytes]) -> set[bytes]:
    if not hashes:
        return set()
    rows = conn.execute(sql.KNOWN_HASHES, [list(hashes)]).fetchall()
    return {bytes(r[0]) for r in rows}


def photo_id_by_sha256(conn: psycopg.Connection, sha256: bytes) -> int | None:
    row = conn.execute(sql.PHOTO_ID_BY_SHA256, [sha256]).fetchone()
    return row[0] if row else None


def add_photos(
    conn: psycopg.Connection, photos: Sequence[PhotoRow], model: str
) -> dict[bytes, int]:
    """Insert photos and their faces in the caller's transaction; returns sha256 -> new photo id.

    A photo already present (same content) is left alone with its faces, so concurrent indexers
    of the same files never duplicate anything.
    """
    if not photos:
        return {}
    columns = (
        [p.sha256 for p in photos],
        [p.path for p in photos],
        [p.size_bytes for p in photos],
        [p.width for p in photos],
        [p.height for p in photos],
        [p.taken_at for p in photos],
        [len(p.faces) for p in photos],
    )
    inserted = {bytes(sha): pid for pid, sha in conn.execute(sql.INSERT_PHOTOS, columns)}
    with conn.cursor() as cur, cur.copy(sql.COPY_FACES) as copy:
        copy.set_types(sql.COPY_FACES_TYPES)
        for photo in photos:
            photo_id = inserted.get(photo.sha256)
            if photo_id is None:
                continue
            for face in photo.faces:
                copy.write_row((
                    photo_id,
                    model,
                    np.asarray(face.embedding, dtype=np.float32),
                    [float(v) for v in face.bbox],
                    [float(v) for v in face.landmarks],
                    float(face.det_score),
                    face.crop,
                ))
    return inserted


def nearest_faces(
    conn: psycopg.Connection,
    query: np.ndarray,
    model: str,
    k: int,
    min_similarity: float,
    ef_search: int,
) -> list[MatchRow]:
    """The k faces of `model` nearest to `query` with cosine similarity >= min_similarity."""
    with conn.transaction():
        # ef_search below k would cap the result at ef_search rows.
        conn.execute(sql.SET_EF_SEARCH, [str(max(ef_search, k))])
        conn.execute(sql.SET_ITERATIVE_SCAN)
        rows = conn.execute(
            sql.NEAREST_FACES,
            {
                "query": np.asarray(query, dtype=np.float32),
                "model": model,
                "k": k,
                "max_distance": 1.0 - min_similarity,
            },
        ).fetchall()
    return [
        MatchRow(r[0], r[1], r[2], list(r[3]), r[4], r[5], float(r[6])) for r in rows
    ]


def stats(conn: psycopg.Connection) -> dict:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(sql.STATS).fetchone()
    row["faces_per_model"] = dict(conn.execute(sql.FACES_PER_MODEL).fetchall())
    return row


def get_photo(conn: psycopg.Connection, photo_id: int) -> dict | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql.GET_PHOTO, [photo_id]).fetchone()


def list_photos(conn: psycopg.Connection, after_id: int = 0, limit: int = 100) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql.LIST_PHOTOS, [after_id, limit]).fetchall()


def delete_photo(conn: psycopg.Connection, photo_id: int) -> bool:
    return conn.execute(sql.DELETE_PHOTO, [photo_id]).rowcount > 0


def faces_of_photo(conn: psycopg.Connection, photo_id: int) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql.FACES_OF_PHOTO, [photo_id]).fetchall()


def get_face(conn: psycopg.Connection, face_id: int) -> dict | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql.GET_FACE, [face_id]).fetchone()


def face_crop(conn: psycopg.Connection, face_id: int) -> bytes | None:
    row = conn.execute(sql.FACE_CROP, [face_id]).fetchone()
    return bytes(row[0]) if row else None


def delete_face(conn: psycopg.Connection, face_id: int) -> bool:
    photo_ids = [r[0] for r in conn.execute(sql.DELETE_FACE, [face_id])]
    recount_faces(conn, photo_ids)
    return bool(photo_ids)


def recount_faces(conn: psycopg.Connection, photo_ids: Sequence[int]) -> None:
    if photo_ids:
        conn.execute(sql.RECOUNT_FACES, [list(photo_ids)])


@dataclass(frozen=True)
class StoredFace:
    face_id: int
    path: str
    photo_width: int
    photo_height: int
    bbox: list[float]
    det_score: float
    embedding: np.ndarray
    person_id: int | None


def faces_of_paths(
    conn: psycopg.Connection, paths: Sequence[str], model: str
) -> dict[str, list[StoredFace]]:
    """The stored faces (with embeddings) of the photos at these paths, by path."""
    found: dict[str, list[StoredFace]] = {}
    for row in conn.execute(sql.FACES_OF_PATHS, [list(paths), model]):
        face = StoredFace(row[3], row[0], row[1], row[2], list(row[4]), float(row[5]),
                          as_array(row[6]), row[7])
        found.setdefault(face.path, []).append(face)
    return found
