"""pgface's own detection, alignment and recognition arithmetic (models/scrfd.py, align.py,
arcface.py), checked on what it must do; bench/insightface_equivalence.py checks it gives
insightface's numbers to the bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pgface.imaging import read_photo
from pgface.models.align import (
    ARCFACE_LANDMARKS,
    estimate_norm,
    estimate_norms,
    norm_crop,
    umeyama,
)
from pgface.models.analysis import FaceAnalyzer
from pgface.models.arcface import ArcFace, onnx_node_names
from pgface.models.packs import resolve_pack, sample_photos
from pgface.models.scrfd import non_maximum_suppression
from pgface.models.sessions import create_session


def _similar(points: np.ndarray, angle: float, scale: float, shift: tuple[float, float]
             ) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, -s], [s, c]])
    return (scale * points @ rotation.T + np.array(shift)).astype(np.float32)


def test_umeyama_recovers_a_similarity_transform() -> None:
    src = np.array([[0, 0], [10, 0], [0, 5], [7, 9]], dtype=np.float64)
    dst = _similar(src, 0.3, 2.5, (40.0, -7.0)).astype(np.float64)
    matrix = umeyama(src, dst)
    moved = src @ matrix[:2, :2].T + matrix[:2, 2]
    np.testing.assert_allclose(moved, dst, atol=1e-4)  # dst went through float32
    assert np.isclose(np.hypot(*matrix[:2, 0]), 2.5)  # the scale, uniform


def test_alignment_puts_the_landmarks_where_arcface_expects_them() -> None:
    # Landmarks of a face turned 20 degrees, twice the crop's size, somewhere in a photo.
    landmarks = _similar(ARCFACE_LANDMARKS, np.radians(20), 2.0, (300.0, 120.0))
    matrix = estimate_norm(landmarks, 112)
    np.testing.assert_allclose(landmarks @ matrix[:, :2].T + matrix[:, 2], ARCFACE_LANDMARKS,
                               atol=1e-3)
    image = np.full((600, 600, 3), 200, dtype=np.uint8)
    crop = norm_crop(image, landmarks, 112)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    assert (crop[40:80, 40:80] == 200).all()  # inside the photo: its pixels
    with pytest.raises(ValueError, match="5 landmarks"):
        estimate_norm(landmarks[:4], 112)


def test_degenerate_landmarks_give_no_transform() -> None:
    same_point = np.full((5, 2), 10.0, dtype=np.float32)
    assert np.isnan(umeyama(same_point, ARCFACE_LANDMARKS)).all()


def test_non_maximum_suppression_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 100, 100, 0.9], [5, 5, 105, 105, 0.95],  # the same face twice
                      [300, 300, 350, 350, 0.6],  # another face
                      [0, 0, 100, 40, 0.8]],  # overlaps the kept one by a third: kept
                     dtype=np.float32)
    assert non_maximum_suppression(boxes, 0.4) == [1, 3, 2]  # best score first
    assert non_maximum_suppression(boxes[:0], 0.4) == []


def test_the_recognizer_normalisation_rule_reads_the_onnx_file(tmp_path: Path) -> None:
    pack = resolve_pack("buffalo_sc", tmp_path)
    names = onnx_node_names(pack.recognizer, limit=8)
    assert len(names) == 8 and all(isinstance(n, str) for n in names)
    recognizer = ArcFace(pack.recognizer, create_session(pack.recognizer,
                                                         ["CPUExecutionProvider"], 1))
    # w600k_mbf normalises outside its graph: pixels go in as (p - 127.5) / 127.5.
    assert (recognizer.input_mean, recognizer.input_std) == (127.5, 127.5)
    assert recognizer.input_size == (112, 112)
    embeddings = recognizer.get_feat([np.zeros((112, 112, 3), np.uint8)] * 2)
    assert embeddings.shape == (2, 512)

    not_onnx = tmp_path / "not.onnx"
    not_onnx.write_bytes(b"\xff" * 64)
    with pytest.raises(ValueError, match="not an ONNX"):
        onnx_node_names(not_onnx, limit=8)


def test_many_faces_are_aligned_as_each_alone_to_the_bit(analyzer: FaceAnalyzer) -> None:
    """estimate_norms (every face of a batch at once) against estimate_norm face by face: real
    landmarks of the install's sample photos, turned and scaled ones, and degenerate sets
    (all points on one spot: NaN; on one line: the rank-deficient branches)."""
    images = [read_photo(p, 64 << 20, 100_000_000).image for p in sample_photos()]
    real = [f.landmarks for image in images for f in analyzer.detect(image)]
    assert len(real) >= 20
    rng = np.random.default_rng(7)
    moved = [_similar(points, rng.uniform(-3, 3), rng.uniform(0.2, 5), rng.uniform(-500, 500, 2))
             for points in real]
    line = np.stack([np.linspace(0, 40, 5), np.linspace(3, 20, 5)], axis=1).astype(np.float32)
    degenerate = [np.full((5, 2), 17.0, np.float32), line, line[::-1].copy(), line * [1, -1]]
    for size in (112, 128, 224):
        landmarks = np.stack(real + moved + degenerate).astype(np.float32)
        many = estimate_norms(landmarks, size)
        alone = np.stack([estimate_norm(points, size) for points in landmarks])
        assert many.shape == (len(landmarks), 2, 3)
        assert np.array_equal(many, alone, equal_nan=True)
    assert np.isnan(many[len(real) + len(moved)]).all()
    with pytest.raises(ValueError):
        estimate_norms(landmarks[:, :4], 112)
