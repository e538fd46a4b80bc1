"""Detection of many photos in shared model runs (what the indexer does where the detector runs
on a GPU): the same faces as one photo at a time, through the analyzer and through indexing
into PostgreSQL. Run here on the CPU, on ONNX Runtime and on the PyTorch backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import psycopg
import pytest
from conftest import LFW, PHOTOS

from pgface import Pgface, Settings
from pgface.imaging import decode_photo, read_photo
from pgface.index import Indexer
from pgface.library import build_analyzer
from pgface.models import torch_backend
from pgface.models.analysis import FaceAnalyzer
from pgface.models.packs import sample_photos
from pgface.models.sessions import CPU


def mixed_photos() -> list[Path]:
    """Photos of one input size (LFW, 250 px) and of two (group photos over 256 px), with 1 to
    30 faces, and a photo with none where the shared data has one."""
    found = [p for p in sample_photos() if p.name in ("players.jpg", "t1.jpg", "yaoming.jpg")]
    if PHOTOS.exists():
        found += [PHOTOS / "groups" / n for n in ("bbt1.jpg", "crowd-30.jpg", "couple.jpg")]
        found += sorted((PHOTOS / "not-faces").glob("*.jpg"))[:1]
    if LFW.exists():
        found += sorted((LFW / "images").glob("A*/*_0001.jpg"))[:4]
    return found


@pytest.fixture(scope="module", params=["onnx_runtime", "torch_cpu"])
def analyzer(request: pytest.FixtureRequest, models_dir: Path) -> FaceAnalyzer:
    if request.param == "onnx_runtime":
        return build_analyzer(Settings(models_dir=models_dir, providers=[CPU]))
    reason = torch_backend.unusable_reason(torch_backend.TORCH_CPU)
    if reason is not None:
        pytest.skip(f"the torch backend cannot run here: {reason}")
    return build_analyzer(Settings(models_dir=models_dir, providers=["TorchCPU"]))


def test_detect_many_finds_the_faces_detect_finds(analyzer: FaceAnalyzer) -> None:
    images = [read_photo(p, 64 << 20, 100_000_000).image for p in mixed_photos()]
    analyzer.batch_size = 3  # several runs of each size, the last one short
    try:
        batched = analyzer.detect_many(images)
    finally:
        analyzer.batch_size = 64
    assert len(batched) == len(images)
    sizes = {len(analyzer.sizes_for(image)) for image in images}
    assert sizes == {1, 2} or not PHOTOS.exists()  # both kinds of photo were in the batch
    for path, image, faces in zip(mixed_photos(), images, batched, strict=True):
        alone = analyzer.detect(image)
        assert len(faces) == len(alone), path.name
        for ours, theirs in zip(faces, alone, strict=True):
            assert np.abs(ours.bbox - theirs.bbox).max() < 0.05, path.name
            assert np.abs(ours.landmarks - theirs.landmarks).max() < 0.05, path.name
            assert abs(ours.det_score - theirs.det_score) < 1e-3, path.name
    assert sum(len(f) for f in batched) >= 25


def test_a_panorama_is_seen_through_an_input_of_its_shape(analyzer: FaceAnalyzer) -> None:
    """A photo 13.5 times as wide as it is tall (t1.jpg on a grey strip, as a phone's
    panorama holds a group): a square input shrank it to 640 x 47, its faces to 3 px, and
    found none. Now an input 16 squares wide sees each face t1 alone shows, one photo at a
    time and in shared runs."""
    t1 = read_photo(next(p for p in sample_photos() if p.name == "t1.jpg"), 64 << 20,
                    100_000_000).image
    height, width = t1.shape[:2]
    panorama = np.full((height, 12_000, 3), 128, dtype=np.uint8)
    panorama[:, 6000:6000 + width] = t1
    assert analyzer.sizes_for(panorama) == [(4096, 256), (10240, 640)]
    assert analyzer.sizes_for(t1) == [(256, 256), (640, 640)]  # a photo as it was
    alone = analyzer.detect(t1)
    found = analyzer.detect(panorama)
    assert len(alone) >= 6
    for face in alone:
        shifted = face.bbox + [6000, 0, 6000, 0]
        overlaps = [_iou(shifted, other.bbox) for other in found]
        assert max(overlaps, default=0.0) >= 0.5, (face.bbox, [f.bbox for f in found])
    batched = analyzer.detect_many([t1, panorama])
    for faces, one_by_one in zip(batched, (alone, found), strict=True):
        assert len(faces) == len(one_by_one)
        for ours, theirs in zip(faces, one_by_one, strict=True):
            assert np.abs(ours.bbox - theirs.bbox).max() < 0.05


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_where_detection_is_batched(models_dir: Path) -> None:
    """By default only a GPU detector batches photos; the setting forces it either way."""
    on_cpu = build_analyzer(Settings(models_dir=models_dir, providers=[CPU]))
    assert not on_cpu.detects_in_batches
    forced = build_analyzer(Settings(models_dir=models_dir, providers=[CPU],
                                     batch_detection=True))
    assert forced.detects_in_batches


def test_indexing_with_batched_detection_stores_the_same_faces(
        settings: Settings, analyzer: FaceAnalyzer) -> None:
    photos = mixed_photos()
    analyzer.batch_detection = True
    try:
        with Pgface(settings, analyzer=analyzer) as pf:
            report = pf.index(photos)
    finally:
        analyzer.batch_detection = None
    assert report.indexed == len(photos) and not report.failures
    assert report.timings.get("detect", 0) > 0
    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute(
            "SELECT p.path, f.bbox, f.embedding::real[] FROM faces f"
            " JOIN photos p ON p.id = f.photo_id").fetchall()
    stored: dict[str, list] = {}
    for path, bbox, embedding in rows:
        stored.setdefault(Path(path).name, []).append((np.array(bbox), np.array(embedding)))
    # The faces and embeddings the indexer makes photo by photo: the batch's alignment
    # matrices (one call for all its faces) must reach each photo's own faces.
    indexer = Indexer(analyzer, None, settings)  # type: ignore[arg-type] - stores nothing
    for path in photos:
        data = path.read_bytes()
        photo = decode_photo(data, str(path), 64 << 20, 100_000_000, settings.decode_keep_side)
        [row] = indexer.photo_rows([photo])
        ours = sorted(stored.get(path.name, []), key=lambda f: tuple(f[0]))
        expected = sorted(((np.array(f.bbox), f.embedding) for f in row.faces),
                          key=lambda f: tuple(f[0]))
        assert len(ours) == len(expected), path.name
        for (box, vector), (their_box, their_vector) in zip(ours, expected, strict=True):
            assert np.abs(box - their_box).max() < 0.05, path.name
            assert float(vector @ their_vector) > 0.999, path.name
