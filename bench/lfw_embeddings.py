"""Real LFW View 1 embeddings through pgface's own pipeline, cached: the seed of the generator.

For every LFW photo: detect, keep the face LFW means (the central one), align, embed. Kept per
face: the unit embedding, the recognizer's raw norm (the seed stored raw vectors), the identity
and the size of pgface's JPEG crop (so synthetic rows weigh what real ones do on disk).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from common import DATA

LFW_IMAGES = DATA / "lfw-view1" / "images"


def compute(images: Path, models_dir: Path) -> dict[str, np.ndarray]:
    from pgface.config import Settings
    from pgface.imaging import face_crop_jpeg, read_photo
    from pgface.lfw import central_face
    from pgface.library import build_analyzer

    settings = Settings(models_dir=models_dir)
    analyzer = build_analyzer(settings)
    _, recognizer = analyzer._load()
    paths = sorted(images.glob("*/*.jpg"))
    units, norms, people, crops = [], [], [], []
    for path in paths:
        photo = read_photo(path, settings.max_file_bytes, settings.max_pixels)
        face = central_face(analyzer.detect(photo.image), photo.image.shape[1],
                            photo.image.shape[0])
        if face is None:
            continue
        raw = recognizer.get_feat([analyzer.align(photo.image, face)])[0].astype(np.float32)
        norm = float(np.linalg.norm(raw))
        units.append(raw / norm)
        norms.append(norm)
        people.append(path.parent.name)
        crops.append(len(face_crop_jpeg(photo.image, face.bbox, settings.crop_size)))
    return {"unit": np.stack(units), "norm": np.array(norms, np.float32),
            "person": np.array(people), "crop_bytes": np.array(crops, np.int32)}


def load(cache: Path, models_dir: Path) -> dict[str, np.ndarray]:
    """The cached embeddings, computed on first use (about 3 minutes on 2 cores)."""
    if not cache.exists():
        started = time.perf_counter()
        data = compute(LFW_IMAGES, models_dir)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **data)
        print(f"embedded {len(data['unit'])} LFW faces in {time.perf_counter() - started:.0f} s",
              file=sys.stderr)
    with np.load(cache) as f:
        return {k: f[k] for k in f.files}


if __name__ == "__main__":
    d = load(Path(sys.argv[1]), Path(sys.argv[2]))
    print(len(d["unit"]), "faces", len(set(d["person"].tolist())), "people")
