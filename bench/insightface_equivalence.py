"""pgface's copies of insightface's arithmetic (models/scrfd.py, align.py, arcface.py) against
insightface 2.1 itself, on the JPEGs of ../shared/data/photos at one and at both detector input
sizes: boxes, landmarks, aligned crops and embeddings must be equal to the bit. Runs in the
environment test.sh makes (insightface without opencv-python; the bench extra has the rest).

    PYTHONPATH=src python bench/insightface_equivalence.py [MAX_PHOTOS]
"""

from __future__ import annotations

import argparse
import warnings

import cv2
import numpy as np
from common import DATA
from insightface.model_zoo.arcface_onnx import ArcFaceONNX
from insightface.model_zoo.scrfd import SCRFD as InsightfaceSCRFD
from insightface.utils.face_align import norm_crop as insightface_norm_crop

from pgface.config import Settings
from pgface.models.align import norm_crop
from pgface.models.arcface import ArcFace
from pgface.models.packs import resolve_pack
from pgface.models.scrfd import SCRFD, letterbox_into
from pgface.models.sessions import available_providers, create_session

SIZES = [(256, 256), (640, 640)]


def main(limit: int) -> None:
    warnings.simplefilter("ignore", FutureWarning)  # skimage's estimate() deprecation
    settings = Settings()
    pack = resolve_pack(settings.model_pack, settings.resolved_models_dir())
    providers = available_providers(settings.providers)
    det_session = create_session(pack.detector, providers, 2, static_shapes=True, streams=1)
    rec_session = create_session(pack.recognizer, providers, 2)
    theirs = InsightfaceSCRFD(None, session=det_session)
    theirs.prepare(0, input_size=SIZES, det_thresh=0.5)
    ours = SCRFD(det_session, det_threshold=0.5)
    their_rec = ArcFaceONNX(str(pack.recognizer), session=rec_session)
    our_rec = ArcFace(pack.recognizer, rec_session)
    assert (their_rec.input_mean, their_rec.input_std) == (our_rec.input_mean, our_rec.input_std)
    files = sorted((DATA / "photos").rglob("*.jpg"))[:limit]
    faces = rescaled = 0
    for path in files:
        image = cv2.imread(str(path))
        if image is None:
            continue
        if all(len(set(axis_scales(image, size))) == 1 for size in SIZES):
            for sizes in (SIZES[:1], SIZES):
                boxes, points = theirs.detect(image, input_size=sizes)
                our_boxes, our_points = ours.detect(image, sizes)
                assert np.array_equal(boxes, our_boxes), path
                assert np.array_equal(points, our_points), path
        else:
            # insightface scales x by the height's scale, its rows rounded down; pgface by
            # the width's own (models/scrfd.py, letterbox_into): theirs with x put right
            rescaled += 1
            for size in SIZES:
                scale_x, scale_y = axis_scales(image, size)
                boxes, points = theirs.detect(image, input_size=[size])
                our_boxes, our_points = ours.detect(image, [size])
                boxes[:, [0, 2]] *= scale_y / scale_x
                points[:, :, 0] *= scale_y / scale_x
                assert np.allclose(boxes, our_boxes, rtol=1e-5, atol=1e-3), path
                assert np.allclose(points, our_points, rtol=1e-5, atol=1e-3), path
            our_points = ours.detect(image, SIZES)[1]  # both sizes', as in the other case
        crops = [insightface_norm_crop(image, landmark=p, image_size=112) for p in our_points]
        our_crops = [norm_crop(image, p, 112) for p in our_points]
        assert all(np.array_equal(a, b) for a, b in zip(crops, our_crops, strict=True)), path
        if crops:
            assert np.array_equal(their_rec.get_feat(crops), our_rec.get_feat(our_crops)), path
        faces += len(our_points)
    print(f"{len(files)} photos, {faces} faces: identical boxes, landmarks, crops, embeddings "
          f"({rescaled} photos whose two axes scale apart: boxes and landmarks equal to 1e-5 "
          f"with insightface's x scaled by the width's scale)")


def axis_scales(image: np.ndarray, size: tuple[int, int]) -> tuple[float, float]:
    """(x, y) scale of IMAGE letterboxed into SIZE, as pgface's detector has them."""
    return letterbox_into(image, np.zeros((size[1], size[0], 3), dtype=np.uint8))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("max_photos", nargs="?", type=int, default=1_000_000,
                        help="compare at most this many photos (default: all)")
    main(parser.parse_args().max_photos)
