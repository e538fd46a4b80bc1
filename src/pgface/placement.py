"""Faces found in a photo decoded reduced, placed in the photo's own pixels, and aligned from
the pixels that keep their detail: one way for everything that analyses a photo (indexing,
uploads, search, compare, identify), so that a photo gives the same faces and embeddings
whichever way it comes in.

A large JPEG is decoded reduced (imaging.decode_photo's keep_side, PGFACE_DECODE_KEEP_SIDE):
the detector sees it at 640 px anyway. Each face is then aligned from the largest reduction
that keeps DETAIL_SIDE pixels of it, decoded again where that is not the first decode.
Indexing did so while search aligned from the full-size photo: a face of 1,247 px of a
3,061 x 4,600 photo found itself at cosine 0.898 (ArcFace's 112 px crop warped from 11 times
its size in one step, without a filter, aliases more than from half that).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pgface.imaging import Photo
from pgface.models.analysis import Face, FaceAnalyzer
from pgface.models.quality import FaceQuality, score

# A face whose shorter side is under this many pixels of a reduced decode is aligned (and its
# thumbnail cut) from the photo decoded again at the largest reduction that gives it this, or
# in full. Measured on the shared photos over 1200 px: from 64 px up, a face's embedding lies
# within cosine 0.95 (mean 0.98) of its alignment from full size; at 32 to 48 px, 0.89.
DETAIL_SIDE = 64


@dataclass
class Placed:
    """A photo's detected faces in its own pixels, each with the reduction it is aligned
    from (detail_factor) and its copy in that reduction's pixels."""

    faces: list[Face]
    factors: list[int]
    local: list[Face]


def place(photo: Photo, detected: Sequence[Face], min_face_size: float = 0) -> Placed:
    """Faces detected in photo.image, placed in the photo's own pixels; those whose shorter
    side is then under min_face_size dropped (PGFACE_MIN_FACE_SIZE: in the photo's pixels,
    clipped at its edge, which a reduced decode's last row reaches past)."""
    faces = [face for face in (in_photo(face, photo) for face in detected)
             if min(face.bbox[2] - face.bbox[0], face.bbox[3] - face.bbox[1]) >= min_face_size]
    factors = [detail_factor(face, photo.factor) for face in faces]
    # each face in the pixels it is aligned from (a copy where those are reduced)
    local = [rescaled(face, 1.0 / factor) for face, factor in zip(faces, factors, strict=True)]
    return Placed(faces, factors, local)


def analyze_placed(analyzer: FaceAnalyzer, photo: Photo) -> list[Face]:
    """Every face of the photo in its own pixels, its quality measured and embedded, as
    indexing analyses it (the same crops, so the same embeddings)."""
    placed = place(photo, analyzer.detect(photo.image), analyzer.min_face_size)
    matrices = analyzer.alignments(placed.local)
    crops = []
    for face, there, factor, matrix in zip(placed.faces, placed.local, placed.factors, matrices,
                                           strict=True):
        crops.append(analyzer.align(photo.pixels(factor), there, matrix))
        face.quality = photo_quality(face, there)
    for face, vector in zip(placed.faces, analyzer.embed_aligned(crops), strict=True):
        face.embedding = vector
    return placed.faces


def photo_quality(face: Face, there: Face) -> FaceQuality | None:
    """THERE's quality, measured on the crop aligned from its reduction, with the face's size
    in the photo's own pixels (FACE), as stored and shown: a 534 px face was said to be 133 px.
    The score is the same: a face aligned from a reduction keeps DETAIL_SIDE pixels there,
    past quality.SIZE_RAMP."""
    measured = there.quality
    if measured is None or there is face:
        return measured
    size = float(max(0.0, min(face.bbox[2] - face.bbox[0], face.bbox[3] - face.bbox[1])))
    return FaceQuality(score(face.det_score, size, measured.yaw, measured.pitch,
                             measured.sharpness), size, measured.yaw, measured.pitch,
                       measured.sharpness)


def rescaled(face: Face, scale: float) -> Face:
    """The face in the pixels of the same image scaled by SCALE (pixel centres kept)."""
    if scale == 1.0:
        return face
    bbox = face.bbox.copy()
    bbox[:4] = (bbox[:4] + 0.5) * scale - 0.5
    return Face(bbox=bbox, landmarks=(face.landmarks + 0.5) * scale - 0.5,
                det_score=face.det_score, embedding=face.embedding)


def in_photo(face: Face, photo: Photo) -> Face:
    """A face found in `photo.image` (reduced by photo.factor) in the photo's own pixels."""
    if photo.factor == 1:
        return face
    face = rescaled(face, float(photo.factor))
    face.bbox[[0, 2]] = face.bbox[[0, 2]].clip(0, photo.width)
    face.bbox[[1, 3]] = face.bbox[[1, 3]].clip(0, photo.height)
    return face


def detail_factor(face: Face, factor: int) -> int:
    """The largest reduction, no more than FACTOR, at which the face's shorter side keeps
    DETAIL_SIDE pixels; 1 (full size) when none does."""
    side = min(face.bbox[2] - face.bbox[0], face.bbox[3] - face.bbox[1])
    while factor > 1 and side / factor < DETAIL_SIDE:
        factor //= 2
    return factor
