"""Photo decoding (limits, EXIF orientation, colour modes) and face crops."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import simplejpeg
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from pgface.errors import ImageError

# We check the pixel count ourselves, before decoding, with our own limit and message.
Image.MAX_IMAGE_PIXELS = None

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".jfif", ".pgm", ".ppm"}
)
_EXIF_DATETIME_ORIGINAL = 0x9003
_EXIF_IFD = 0x8769

# EXIF orientation -> the OpenCV operations that make the pixels upright, in order; the same
# transforms as Pillow's exif_transpose (tests compare the two for every orientation).
_UPRIGHT: dict[int, tuple[tuple[str, int | None], ...]] = {
    2: (("flip", 1),),
    3: (("rotate", cv2.ROTATE_180),),
    4: (("flip", 0),),
    5: (("transpose", None),),
    6: (("rotate", cv2.ROTATE_90_CLOCKWISE),),
    7: (("transpose", None), ("flip", -1)),
    8: (("rotate", cv2.ROTATE_90_COUNTERCLOCKWISE),),
}


@dataclass
class Photo:
    """A decoded photo: BGR pixels (what the InsightFace models take) plus file facts."""

    source: str
    sha256: bytes
    size_bytes: int
    image: np.ndarray
    taken_at: datetime | None = None

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


def read_file(path: Path, max_bytes: int) -> bytes:
    """A photo file's bytes, refused before reading when over max_bytes; ImageError on failure."""
    source = str(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageError(source, f"file is {size:,} bytes, over the limit of {max_bytes:,}")
        return path.read_bytes()
    except OSError as exc:
        raise ImageError(source, f"cannot read file ({exc.strerror or exc})") from exc


def read_photo(path: Path, max_bytes: int, max_pixels: int) -> Photo:
    """Read and decode one file; every failure is an ImageError naming the file."""
    data = read_file(path, max_bytes)
    return decode_photo(data, str(path), max_bytes=max_bytes, max_pixels=max_pixels)


def decode_photo(data: bytes, source: str, max_bytes: int, max_pixels: int) -> Photo:
    if len(data) > max_bytes:
        raise ImageError(source, f"file is {len(data):,} bytes, over the limit of {max_bytes:,}")
    if not data:
        raise ImageError(source, "file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's own warnings become our errors below
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > max_pixels:
                raise ImageError(
                    source,
                    f"image is {width}x{height} ({width * height / 1e6:.3g} MP), over the limit "
                    f"of {max_pixels / 1e6:.3g} MP",
                )
            taken_at = _taken_at(img)
            bgr = _decode_jpeg(data, img) if img.format == "JPEG" else None
            if bgr is None:
                img.load()
                # in place: no copy of the whole photo when it is already upright
                ImageOps.exif_transpose(img, in_place=True)
                bgr = _to_bgr(img)
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError(source, "not an image (unrecognised format)") from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        reason = str(exc) or type(exc).__name__
        raise ImageError(source, f"corrupt or truncated image ({reason})") from exc
    return Photo(
        source=source,
        sha256=hashlib.sha256(data).digest(),
        size_bytes=len(data),
        image=bgr,
        taken_at=taken_at,
    )


def _decode_jpeg(data: bytes, img: Image.Image) -> np.ndarray | None:
    """A JPEG straight into a BGR array with libjpeg-turbo, made upright per its EXIF tag;
    None when it is one for Pillow (CMYK, or anything TurboJPEG refuses).

    Why not Pillow for JPEG: Pillow holds the GIL while it allocates the image and again while
    numpy copies it out (tobytes), so two decoding threads ran at 1.5x one thread; simplejpeg
    decodes into the array with the GIL released (0.47 s against 0.89 s on 2 threads for the
    89 JPEGs of the benchmark's group set). A file simplejpeg refuses goes to Pillow, which
    decodes it or says why not: pgface accepts exactly the JPEGs it accepted before.
    """
    if img.mode not in ("RGB", "L"):
        return None
    try:
        bgr = simplejpeg.decode_jpeg(data, colorspace="BGR", strict=True)
    except ValueError:
        return None
    orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
    for operation, code in _UPRIGHT.get(orientation, ()):
        if operation == "flip":
            bgr = cv2.flip(bgr, code)
        elif operation == "rotate":
            bgr = cv2.rotate(bgr, code)
        else:
            bgr = cv2.transpose(bgr)
    return bgr


def _to_bgr(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16-bit and float greyscale: scale by the format's range, not by clipping at 255.
        values = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode != "F" or values.max() > 1.0 else 1.0
        if img.mode == "I" and values.max() <= 255:
            top = 255.0
        grey = np.clip(values / top * 255.0, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent pixels become white, as a viewer shows them, not black.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    rgb = np.asarray(img if img.mode == "RGB" else img.convert("RGB"))
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)  # one pass, into a new contiguous array


def _taken_at(img: Image.Image) -> datetime | None:
    try:
        value = img.getexif().get_ifd(_EXIF_IFD).get(_EXIF_DATETIME_ORIGINAL)
        return datetime.strptime(str(value).strip("\x00 "), "%Y:%m:%d %H:%M:%S") if value else None
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def face_crop_jpeg(image: np.ndarray, bbox: np.ndarray, size: int, margin: float = 0.25) -> bytes:
    """A square JPEG thumbnail of the face box with some context around it."""
    x1, y1, x2, y2 = (float(v) for v in bbox[:4])
    side = max(x2 - x1, y2 - y1) * (1 + 2 * margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    right, bottom = int(round(cx + side / 2)), int(round(cy + side / 2))
    h, w = image.shape[:2]
    pad = [max(0, -top), max(0, bottom - h), max(0, -left), max(0, right - w)]
    patch = image[max(0, top) : min(h, bottom), max(0, left) : min(w, right)]
    if any(pad):
        patch = cv2.copyMakeBorder(patch, *pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    if patch.size == 0:
        patch = np.zeros((size, size, 3), dtype=np.uint8)
    patch = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", patch, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ValueError("JPEG encoding of a face crop failed")
    return buf.tobytes()
