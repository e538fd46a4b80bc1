"""The plain approach pgface must beat, reproduced faithfully as the benchmarks' baseline:
a loop of `FaceAnalysis.get(img)` at det_size 640, one INSERT (and commit) per face, raw
(unnormalised) embeddings, `faces[0]` for a pair, and `L2(raw embedding) < 22` as the rule.

`FaceAnalysis.get` for a pack of a detector and a recognizer is: one ONNX Runtime session per
model, detection at one size, then per face an aligned crop and its own recognizer run. That is
done here with pgface's copies of insightface's arithmetic (the same numbers to the bit), so the
benchmarks need no insightface install."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime
import psycopg
from pgvector.psycopg import register_vector

from pgface.models.align import norm_crop
from pgface.models.arcface import ArcFace
from pgface.models.packs import resolve_pack
from pgface.models.scrfd import SCRFD

SEED_L2_RULE = 22.0
SEED_TABLE = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS seed_faces (
    id bigserial PRIMARY KEY, path text NOT NULL, bbox real[] NOT NULL,
    det_score real NOT NULL, embedding vector(512) NOT NULL
)
"""
SEED_INSERT = "INSERT INTO seed_faces (path, bbox, det_score, embedding) VALUES (%s, %s, %s, %s)"


@dataclass
class SeedFace:
    bbox: np.ndarray
    det_score: float
    embedding: np.ndarray  # raw, as FaceAnalysis leaves it


class SeedPipeline:
    def __init__(self, pack_folder: Path, det_size: int = 640) -> None:
        pack = resolve_pack(str(pack_folder), pack_folder.parent)
        providers = ["CPUExecutionProvider"]
        self.detector = SCRFD(onnxruntime.InferenceSession(str(pack.detector),
                                                           providers=providers))
        self.recognizer = ArcFace(pack.recognizer, onnxruntime.InferenceSession(
            str(pack.recognizer), providers=providers))
        self.sizes = [(det_size, det_size)]

    def faces(self, path: Path) -> list[SeedFace]:
        image = cv2.imread(str(path))
        boxes, points = self.detector.detect(image, self.sizes)
        return [SeedFace(box[:4], float(box[4]), self.recognizer.get_feat(
                    [norm_crop(image, landmarks, self.recognizer.input_size[0])]).flatten())
                for box, landmarks in zip(boxes, points, strict=True)]

    def index(self, paths: Sequence[Path], url: str) -> tuple[float, int]:
        """Seconds and faces for the seed's indexing loop into table seed_faces."""
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SEED_TABLE)
            register_vector(conn)
            started = time.perf_counter()
            count = 0
            for path in paths:
                for face in self.faces(path):
                    conn.execute(SEED_INSERT, (str(path), face.bbox.tolist(),
                                               float(face.det_score), face.embedding))
                    count += 1
            return time.perf_counter() - started, count


def seed_same(a: np.ndarray, b: np.ndarray) -> bool:
    return float(np.linalg.norm(a - b)) < SEED_L2_RULE
