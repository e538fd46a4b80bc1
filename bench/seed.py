"""The plain approach pgface must beat, reproduced faithfully as the benchmarks' baseline:
a loop of `FaceAnalysis("buffalo_sc").get(img)` prepared with det_size (256, 256) as the seed
wrote it (640 is offered as a second baseline), one INSERT (and commit) per face, raw
(unnormalised) embeddings, `faces[0]` for a pair, and `L2(raw embedding) < 22` as the rule."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import psycopg
from insightface.app import FaceAnalysis
from pgvector.psycopg import register_vector

SEED_L2_RULE = 22.0
SEED_DET_SIZE = 256  # the seed's `app.prepare(ctx_id=0, det_size=(256, 256))`
SEED_TABLE = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS seed_faces (
    id bigserial PRIMARY KEY, path text NOT NULL, bbox real[] NOT NULL,
    det_score real NOT NULL, embedding vector(512) NOT NULL
)
"""
SEED_INSERT = "INSERT INTO seed_faces (path, bbox, det_score, embedding) VALUES (%s, %s, %s, %s)"
# The seed's search: its rule as the filter, nearest first, over the whole table (no index).
SEED_SEARCH = """SELECT path, embedding <-> %(q)s AS distance FROM seed_faces
                 WHERE embedding <-> %(q)s < %(rule)s ORDER BY embedding <-> %(q)s LIMIT %(top)s"""


class SeedPipeline:
    def __init__(self, pack_folder: Path, det_size: int = SEED_DET_SIZE) -> None:
        self.app = FaceAnalysis(name=str(pack_folder), providers=["CPUExecutionProvider"])
        self.app.prepare(ctx_id=0, det_size=(det_size, det_size))

    def faces(self, path: Path) -> list:
        return self.app.get(cv2.imread(str(path)))

    def index(self, paths: Sequence[Path], url: str) -> tuple[float, dict[Path, list[list[float]]]]:
        """Seconds for the seed's indexing loop into table seed_faces, and the box of every
        face it stored, by photo."""
        boxes: dict[Path, list[list[float]]] = {}
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SEED_TABLE)
            register_vector(conn)
            started = time.perf_counter()
            for path in paths:
                for face in self.faces(path):
                    conn.execute(SEED_INSERT, (str(path), face.bbox.tolist(),
                                               float(face.det_score), face.embedding))
                    boxes.setdefault(path, []).append(face.bbox.tolist())
            return time.perf_counter() - started, boxes


    def search(self, conn: psycopg.Connection, path: Path, top: int) -> list[list[tuple]]:
        """The seed's search for every face of a photo: (path, L2) of its matches, per face."""
        return [conn.execute(SEED_SEARCH, {"q": face.embedding, "rule": SEED_L2_RULE,
                                           "top": top}).fetchall()
                for face in self.faces(path)]


def seed_same(a: np.ndarray, b: np.ndarray) -> bool:
    return float(np.linalg.norm(a - b)) < SEED_L2_RULE
