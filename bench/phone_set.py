"""Phone-size photos for the indexing benchmark: the shared group and detection-truth photos
upscaled to 12 MP and more, stored turned with an EXIF orientation tag as a phone writes them.

Made on first use in a folder under the system's temporary directory (never in the checkout)
and reused while the sources are unchanged.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

# Pixels of each photo, cycled: most phones write 12 MP; some 24 and 48 MP.
PIXEL_COUNTS = (12_200_000, 12_200_000, 24_000_000, 12_200_000, 48_000_000)
# EXIF orientations, cycled: 6 and 8 are a phone held upright (the pixels lie on their side).
ORIENTATIONS = (6, 1, 8, 3)
EXIF_ORIENTATION = 0x0112
# Sides a multiple of this, as cameras write them (4032 x 3024, 4000 x 3000, 8160 x 6120): a
# JPEG turned by its tag is decoded reduced only by a factor that divides the sides the turn
# reverses (imaging.reduction_factor), and a phone's always are.
SIDE_MULTIPLE = 16
# The pixels as stored, for each orientation, from the upright photo: the inverse of what a
# viewer does on reading the tag.
_STORED = {1: None, 3: cv2.ROTATE_180, 6: cv2.ROTATE_90_COUNTERCLOCKWISE,
           8: cv2.ROTATE_90_CLOCKWISE}


@dataclass(frozen=True)
class PhonePhoto:
    path: Path
    source: Path
    scale: float  # upright photo's pixels per source pixel (truth boxes scale by it)
    orientation: int


def phone_jpeg(upright_bgr: np.ndarray, orientation: int, quality: int = 90) -> bytes:
    """JPEG bytes of an upright photo stored as a phone stores it: turned, with the tag that
    turns it back."""
    code = _STORED[orientation]
    stored = upright_bgr if code is None else cv2.rotate(upright_bgr, code)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    out = io.BytesIO()
    Image.fromarray(cv2.cvtColor(stored, cv2.COLOR_BGR2RGB)).save(
        out, "JPEG", quality=quality, exif=exif.tobytes())
    return out.getvalue()


def upscaled(image: np.ndarray, pixels: int) -> tuple[np.ndarray, float]:
    """The image scaled to at least this many pixels, its sides a multiple of SIDE_MULTIPLE
    (the aspect kept to a few pixels), and the scale of its width."""
    height, width = image.shape[:2]
    scale = math.sqrt(pixels / (height * width))
    size = (SIDE_MULTIPLE * math.ceil(width * scale / SIDE_MULTIPLE),
            SIDE_MULTIPLE * math.ceil(height * scale / SIDE_MULTIPLE))
    return cv2.resize(image, size, interpolation=cv2.INTER_CUBIC), size[0] / width


def phone_set(sources: list[Path], folder: Path | None = None) -> list[PhonePhoto]:
    """One phone-size JPEG per source photo, made once and kept in FOLDER."""
    digest = hashlib.sha256(json.dumps(
        [[str(s), s.stat().st_size] for s in sources] + [PIXEL_COUNTS, ORIENTATIONS,
                                                          SIDE_MULTIPLE]
    ).encode()).hexdigest()[:12]
    folder = folder or Path(tempfile.gettempdir()) / f"pgface-bench-phone-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.json"
    if manifest.exists():
        rows = json.loads(manifest.read_text())
        return [PhonePhoto(Path(r["path"]), Path(r["source"]), r["scale"], r["orientation"])
                for r in rows]
    photos = []
    for number, source in enumerate(sources):
        image = cv2.imread(str(source), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"{source}: cannot be read as an image")
        big, scale = upscaled(image, PIXEL_COUNTS[number % len(PIXEL_COUNTS)])
        orientation = ORIENTATIONS[number % len(ORIENTATIONS)]
        path = folder / f"{number:02d}-{source.stem}.jpg"
        path.write_bytes(phone_jpeg(big, orientation))
        photos.append(PhonePhoto(path, source, scale, orientation))
    manifest.write_text(json.dumps([{"path": str(p.path), "source": str(p.source),
                                     "scale": p.scale, "orientation": p.orientation}
                                    for p in photos]))
    return photos
