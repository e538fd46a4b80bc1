"""Large JPEGs are indexed from a reduced decode (1/2, 1/4 or 1/8 size) with small faces
aligned from more pixels: the same faces, boxes and embeddings as from the full decode, no
hand-marked face lost, stored in the photo's own pixels. Photos are phone-size JPEGs made
here from the shared photos, stored turned with an EXIF orientation tag."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import psycopg
import pytest
from conftest import PHOTOS, REPO, fresh_database, require_data
from fastapi.testclient import TestClient

from pgface import Pgface, Settings
from pgface.api import create_app
from pgface.imaging import decode_photo, reduction_factor
from pgface.index import Indexer
from pgface.models.analysis import Face, FaceAnalyzer
from pgface.placement import detail_factor, place

sys.path.insert(0, str(REPO / "bench"))
from phone_set import phone_jpeg, upscaled  # noqa: E402
from truth import missed, overlap, truth_boxes  # noqa: E402

LIMITS = {"max_bytes": 1 << 30, "max_pixels": 200_000_000}
PHONE_PIXELS = 12_200_000


def phone_photo(source: Path, orientation: int) -> tuple[bytes, float]:
    """A 12 MP JPEG of SOURCE stored turned, with the tag that turns it back; its scale."""
    image = cv2.imread(str(source), cv2.IMREAD_COLOR)
    big, scale = upscaled(image, PHONE_PIXELS)
    return phone_jpeg(big, orientation), scale


def test_a_large_jpeg_is_decoded_reduced_upright_with_the_photos_own_size() -> None:
    rng = np.random.default_rng(3)
    upright = cv2.resize(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8), (4000, 3000),
                         interpolation=cv2.INTER_LINEAR)
    data = phone_jpeg(upright, 6)  # stored 3000 wide, 4000 high; upright 4000 x 3000
    full = decode_photo(data, "full.jpg", **LIMITS)
    reduced = decode_photo(data, "reduced.jpg", **LIMITS, keep_side=1280)
    assert full.factor == 1 and full.image.shape == (3000, 4000, 3)
    assert reduced.factor == 2 and reduced.image.shape == (1500, 2000, 3)
    assert (reduced.width, reduced.height) == (full.width, full.height) == (4000, 3000)
    # The same picture, upright: the reduced decode against the full one shrunk.
    shrunk = cv2.resize(full.image, (2000, 1500), interpolation=cv2.INTER_AREA)
    assert np.abs(reduced.image.astype(int) - shrunk.astype(int)).mean() < 3
    # Decoded again at full size on request: the full decode, to the bit.
    assert np.array_equal(reduced.pixels(1), full.image)
    assert reduced.pixels(2) is reduced.image


def test_only_large_jpegs_are_reduced() -> None:
    assert reduction_factor(4000, 3000, 1280) == 2
    assert reduction_factor(9000, 6000, 1280) == 4
    assert reduction_factor(12000, 9000, 1280) == 8
    assert reduction_factor(2500, 1600, 1280) == 1  # half would be under 1280
    # A panorama keeps its short side: the detector sees it through an input as tall as a
    # square one (a 9600x630 JPEG decoded at 1/4 lost 3 of its 6 faces of 45 px).
    assert reduction_factor(9600, 630, 1280) == reduction_factor(630, 9600, 1280) == 1
    assert reduction_factor(16000, 4000, 1280) == 2
    assert reduction_factor(3000, 1001, 1280) == 2  # under 3:1, a photo as before
    assert reduction_factor(12000, 9000, 0) == 1
    image = np.full((3000, 4000, 3), 128, dtype=np.uint8)
    ok, png = cv2.imencode(".png", image)
    assert decode_photo(png.tobytes(), "big.png", **LIMITS, keep_side=1280).factor == 1


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_a_turned_jpeg_of_odd_size_is_decoded_reduced_where_it_stays_in_place(
        orientation: int) -> None:
    """The last pixel of a reduced row holds fewer than factor pixels; where the EXIF
    orientation reverses that axis it came first, and a probe's 6001-pixel photo turned 180
    decoded at 1/4 sat 3 px off the boxes placed in it. A white square's centre, found in the
    reduced decode and placed in the photo's pixels, is where the full decode has it."""
    upright = np.full((3001, 4003, 3), 128, dtype=np.uint8)
    upright[1000:1200, 1500:1700] = 255
    data = phone_jpeg(upright, orientation)
    full = decode_photo(data, "full.jpg", **LIMITS)
    reduced = decode_photo(data, "reduced.jpg", **LIMITS, keep_side=320)
    assert (reduced.width, reduced.height) == (4003, 3001)

    def centre(image: np.ndarray, factor: int) -> np.ndarray:
        weight = np.clip(image[..., 1].astype(float) - 128, 0, None)
        rows, cols = np.indices(weight.shape)
        found = np.array([(cols * weight).sum(), (rows * weight).sum()]) / weight.sum()
        return (found + 0.5) * factor - 0.5  # as placement.rescaled places a point

    assert centre(full.image, 1) == pytest.approx([1599.5, 1099.5], abs=0.5)
    assert np.abs(centre(reduced.image, reduced.factor) - [1599.5, 1099.5]).max() < 1.0, (
        reduced.factor, centre(reduced.image, reduced.factor))
    for factor in (2, 4):  # the detail decodes of a face, too
        if factor < reduced.factor:
            assert np.abs(centre(reduced.pixels(factor), factor) - [1599.5, 1099.5]).max() < 1.0


def test_min_face_size_is_tested_on_the_box_clipped_at_the_photos_edge() -> None:
    """A reduced row reaches past the photo's edge (5601 px at 1/4: 1401 pixels, 5604 of the
    photo's): a face cut by the edge measured 404 px there and 399.5 in the photo, and a floor
    of 402 kept it in a JPEG where the PNG of the same pixels dropped it (a probe)."""
    # (2000 tall: a panorama, 3:1 or longer, keeps its short side, not its long one)
    ok, jpeg = cv2.imencode(".jpg", np.full((2000, 5601, 3), 128, dtype=np.uint8))
    photo = decode_photo(jpeg.tobytes(), "wide.jpg", **LIMITS, keep_side=1000)
    assert photo.factor == 4 and photo.image.shape[1] == 1401
    cut = Face(np.array([1300.0, 100.0, 1401.0, 400.0]), np.full((5, 2), 200.0), 0.9)
    [placed] = place(photo, [cut], 399).faces
    assert placed.bbox[2] == 5601 and placed.bbox[2] - placed.bbox[0] == 399.5
    assert place(photo, [cut], 402).faces == []


# 1280: the default (12 MP photos decode at 1/2); 320: decoded at 1/8, where these photos'
# faces are under DETAIL_SIDE and are aligned from a second, larger decode.
@pytest.mark.parametrize("keep_side", [1280, 320])
def test_reduced_decoding_finds_the_same_faces_and_every_hand_marked_one(
        analyzer: FaceAnalyzer, keep_side: int) -> None:
    folder = require_data(PHOTOS / "detection-truth")
    truth = truth_boxes(folder)
    reduced_indexer = Indexer(analyzer, None, Settings(decode_keep_side=keep_side))  # type: ignore[arg-type]
    full_indexer = Indexer(analyzer, None, Settings(decode_keep_side=0))  # type: ignore[arg-type]
    reductions, detail_factors = set(), set()
    for number, (name, boxes) in enumerate(sorted(truth.items())):
        data, scale = phone_photo(folder / name, (6, 3, 8, 1)[number % 4])
        reduced = decode_photo(data, name, **LIMITS, keep_side=keep_side)
        reductions.add(reduced.factor)
        [row] = reduced_indexer.photo_rows([reduced])
        [full_row] = full_indexer.photo_rows([decode_photo(data, name, **LIMITS)])
        assert (row.width, row.height) == (full_row.width, full_row.height)
        found = [face.bbox for face in row.faces]
        detail_factors |= {detail_factor(Face(np.array(b), np.zeros((5, 2)), 1.0), reduced.factor)
                           for b in found}
        assert not missed(boxes * scale, found), f"{name}: a hand-marked face lost"
        assert all(0 <= b[0] <= b[2] <= row.width and 0 <= b[1] <= b[3] <= row.height
                   for b in found)
        # Each face's embedding is that of its crop aligned from the full decode at the same
        # landmarks: the coordinates and the pixels it was aligned from agree.
        full_image = decode_photo(data, name, **LIMITS).image
        crops = [analyzer.align(full_image, Face(np.array(face.bbox), np.reshape(
            face.landmarks, (5, 2)), face.det_score)) for face in row.faces]
        for face, vector in zip(row.faces, analyzer.embed_aligned(crops), strict=True):
            assert float(face.embedding @ vector) >= 0.9, f"{name}: {face.bbox}"
        if keep_side != 1280:
            continue  # detected in a 500-pixel image: fainter faces, rougher landmarks
        # Every clear face of the full decode is found again, in the same place, with an
        # embedding of the same person (faces near the detector's threshold may come and go).
        clear = [face for face in full_row.faces if face.det_score >= 0.6]
        same_place = overlap(np.array([f.bbox for f in clear]).reshape(-1, 4),
                             np.array(found).reshape(-1, 4))
        for face, overlaps in zip(clear, same_place, strict=True):
            best = int(np.argmax(overlaps))
            assert overlaps[best] >= 0.8, f"{name}: a face moved or was lost"
            assert float(face.embedding @ row.faces[best].embedding) >= 0.9, name
    assert reductions == ({2} if keep_side == 1280 else {8})
    if keep_side == 320:
        assert detail_factors - {8}, "no face was aligned from a larger decode"


def test_a_phone_photo_is_indexed_with_its_own_size(pf: Pgface, tmp_path: Path) -> None:
    source = require_data(PHOTOS / "groups" / "friends-6.jpg")
    data, _ = phone_photo(source, 8)
    path = tmp_path / "phone.jpg"
    path.write_bytes(data)
    report = pf.index([path])
    assert report.indexed == 1 and report.faces >= 6
    [faces] = pf.photo_faces([path]).values()
    upright = cv2.imread(str(path), cv2.IMREAD_COLOR)  # OpenCV turns it by its EXIF tag
    assert (faces[0].photo_width, faces[0].photo_height) == (upright.shape[1], upright.shape[0])
    assert all(0 <= f.bbox[0] < f.bbox[2] <= f.photo_width for f in faces)
    # every face keeps the quality measured on its crop, also one aligned from reduced pixels
    with psycopg.connect(pf.settings.database_url) as conn:
        scores = [r[0] for r in conn.execute("SELECT quality FROM faces").fetchall()]
    assert len(scores) == report.faces and all(q is not None and 0 <= q <= 1 for q in scores)


def test_a_large_jpeg_is_searched_uploaded_and_indexed_alike(
        pf: Pgface, settings: Settings, analyzer: FaceAnalyzer, server_url: str,
        tmp_path: Path) -> None:
    """Indexing analysed a large JPEG from a reduced decode, search, compare, identify and an
    upload from the full one: a probe's face of 1,247 px in a 3,061 x 4,600 photo found itself
    at 0.898, and the same bytes uploaded were stored 0.898 from the indexed copy. Now every
    way in analyses it alike (pgface.placement): each face finds itself at 1."""
    portrait = require_data(PHOTOS / "people" / "deepface-id08" / "img40.jpg")
    phone = tmp_path / "phone.jpg"
    phone.write_bytes(phone_photo(PHOTOS / "groups" / "friends-6.jpg", 6)[0])
    pf.index([portrait, phone])
    stored = pf.photo_faces([portrait, phone])
    for path in (portrait, phone):
        faces = stored[str(path.resolve())]
        assert decode_photo(path.read_bytes(), path.name, **LIMITS, keep_side=1280).factor > 1
        embedded = np.array(pf.embed(path))
        assert len(embedded) == len(faces)
        # each stored face is one of the photo's faces as analysed now, to float precision
        similarity = np.array([f.embedding for f in faces]) @ embedded.T
        assert similarity.max(axis=1).min() > 0.9999, similarity.max(axis=1)
        found = pf.search(path, min_quality=0)
        assert all(face.matches[0].similarity > 0.9999 for face in found.faces), [
            face.matches[0].similarity for face in found.faces]
    # The same bytes uploaded to another library are stored as the indexed copy is.
    uploads = fresh_database(server_url)
    url = next(uploads)
    try:
        other = settings.model_copy(update={"database_url": url,
                                            "upload_dir": tmp_path / "uploads"})
        with TestClient(create_app(other, analyzer)) as client:
            sent = client.post("/api/photos", files={"file": ("x.jpg", portrait.read_bytes())})
            assert sent.status_code in (200, 201), sent.text
            searched = client.post("/api/search", files={"file": ("x.jpg", portrait.read_bytes())})
            assert searched.json()["faces"][0]["matches"][0]["similarity"] > 0.9999
        with psycopg.connect(url) as conn:
            uploaded = np.array([r[0] for r in conn.execute(
                "SELECT embedding::real[] FROM faces ORDER BY id")])
        indexed = np.array([f.embedding for f in stored[str(portrait.resolve())]])
        assert uploaded.shape == indexed.shape
        assert (uploaded @ indexed.T).max(axis=1).min() > 0.9999
    finally:
        uploads.close()


def test_a_large_jpegs_faces_are_measured_in_its_own_pixels(
        settings: Settings, tmp_path: Path) -> None:
    """PGFACE_MIN_FACE_SIZE and each face's quality.face_size were in the pixels of the reduced
    decode: a probe's 534 px faces of a large JPEG were 133 px, dropped by a floor of 150 where
    the same pixels saved as PNG kept them. Here a phone photo decoded at 1/2, with the floor
    just under its smallest face: every face is still found, indexed and searched, at its own
    size."""
    phone = tmp_path / "phone.jpg"
    phone.write_bytes(phone_photo(require_data(PHOTOS / "groups" / "friends-6.jpg"), 6)[0])
    assert decode_photo(phone.read_bytes(), phone.name, **LIMITS, keep_side=1280).factor == 2
    png = tmp_path / "phone.png"  # the same pixels, never decoded reduced
    cv2.imwrite(str(png), cv2.imread(str(phone), cv2.IMREAD_COLOR))
    with Pgface(settings) as pf:
        sides = sorted(min(f.bbox[2] - f.bbox[0], f.bbox[3] - f.bbox[1])
                       for f in pf.search(png, min_quality=0).faces)
    assert len(sides) >= 6 and sides[0] > 40, sides
    # under every face's side, over each one's in the reduced decode (boxes found there
    # differ by a few per cent)
    floor = int(sides[0] * 0.9)
    with Pgface(settings.model_copy(update={"min_face_size": floor})) as pf:
        for path in (png, phone):
            found = pf.search(path, min_quality=0).faces
            assert sorted(min(f.bbox[2] - f.bbox[0], f.bbox[3] - f.bbox[1])
                          for f in found) == pytest.approx(sides, rel=0.05), path
            assert all(f.quality["face_size"] == pytest.approx(
                min(f.bbox[2] - f.bbox[0], f.bbox[3] - f.bbox[1]), abs=0.15) for f in found)
        report = pf.index([phone])
        assert report.faces == len(sides), report
        with psycopg.connect(settings.database_url) as conn:
            stored = conn.execute("SELECT face_size, bbox FROM faces").fetchall()
    assert sorted(size for size, _ in stored) == pytest.approx(sides, rel=0.05)
