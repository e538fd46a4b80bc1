"""Photo decoding (limits, EXIF orientation, colour modes) and face crops."""

from __future__ import annotations

import errno
import functools
import hashlib
import io
import math
import os
import re
import stat
import struct
import time
import warnings
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import simplejpeg
from PIL import (
    ExifTags,
    Image,
    ImageFile,
    ImageOps,
    PngImagePlugin,
    TiffImagePlugin,
    UnidentifiedImageError,
)

from pgface.errors import (
    ContentError,
    ImageError,
    InvalidInputError,
    OutOfMemoryError,
    describe,
    kind_of,
    os_reason,
    out_of_memory,
)
from pgface.paths import expand, in_kernel_folder


def quiet_decoders() -> None:
    """What the decoders say on their own hidden in this process, for pgface's own processes
    alone (the command line, its server, its indexing children: their start calls this): in
    them what a file lacks is its report's failure, said in one line, and the decoders' own
    lines came out between those of an index run. A library leaves them as its application set
    them (it may read them: a Django site's log), so decoding itself changes none of them.

    - Pillow's warnings of a file's metadata (`Corrupt EXIF data`, `Possibly corrupt EXIF
      MakerNote data`, probe docs35). Not per decode with warnings.catch_warnings: that is not
      safe across threads, and decoding threads left the whole process ignoring every warning.
    - OpenCV's log of its decoders' warnings and errors (libtiff's too: "Unknown field with
      tag 65000" on a good 16-bit TIFF, six lines for a truncated one, probe hostile18), unless
      OPENCV_LOG_LEVEL asks for them. Decoding set it silent for the whole process, an
      application's own cv2.imread's warnings gone (probe hygiene39).
    - libtiff's errors through Pillow ("ZIPDecode: Decoding error at scanline 200", probe
      reprobe18): _quiet_libtiff. Decoding a TIFF turned them off for the whole process, an
      application's own Pillow's TIFFs too (probe hygiene39)."""
    warnings.filterwarnings("ignore", module=r"PIL(\.|$)")
    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    _quiet_libtiff()


def _allow_pixels(max_pixels: int) -> None:
    """Pillow's own pixel limit (MAX_IMAGE_PIXELS: a warning above it, DecompressionBombError
    above twice it) raised to pgface's where it is under it: pgface checks the pixel count
    itself, before decoding, with its own limit and message (_check_pixels), which may be set
    above Pillow's. Never lowered or removed: the limit is the whole process's, and an
    application that imports pgface keeps Pillow's guard for its own images (pgface's import
    set it to None)."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and limit < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels


@functools.cache
def _heif_image_file() -> type[ImageFile.ImageFile]:
    """pillow_heif's Pillow image of a HEIC/HEIF (what phones write) through libheif; Pillow
    decodes AVIF itself (Pillow >= 11.3). libheif applies the file's rotation and mirroring,
    and the image then resets the EXIF orientation to 1, so exif_transpose never turns such a
    photo twice. Imported on the first such file: a search of a JPEG never loads libheif.
    Not registered with Pillow (pillow_heif.register_heif_opener): that is the whole
    process's, and an application's own Image.open (a Django site's ImageField) then accepted
    HEIC uploads, and saved HEIF, or not, by what pgface had decoded before (probe hygiene39)."""
    from pillow_heif.as_plugin import HeifImageFile

    return HeifImageFile


# The ISO media brands pillow_heif's opener accepts (its _is_supported_heif): a file of one is
# offered to libheif first, as Image.open did with it registered (a mif1 or msf1 that libheif
# refuses then goes to Pillow's AVIF)
_LIBHEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm",
                             b"hevs", b"mif1", b"msf1"})


def _open_image(data: bytes) -> ImageFile.ImageFile:
    """DATA opened as Image.open opens it among READ_FORMATS, in their order, HEIF with it: a
    HEIC/HEIF by pillow_heif's image (_heif_image_file), unregistered, and a file that is not
    one (its SyntaxError, Image.open's sign of another format's file) by the formats after."""
    if data[4:8] == b"ftyp" and data[8:12] in _LIBHEIF_BRANDS:
        try:
            return _heif_image_file()(io.BytesIO(data))
        except (SyntaxError, IndexError, TypeError, struct.error):  # those Image.open passes
            pass
    return Image.open(io.BytesIO(data), formats=_open_formats())


IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".pgm",
     ".ppm", ".heic", ".heif", ".avif"}
)
# The file name suffix of each format, for files pgface names itself (uploads): the client's
# name says nothing sure about the bytes.
FORMAT_SUFFIXES = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif",
                   "TIFF": ".tif", "BMP": ".bmp", "HEIF": ".heic", "AVIF": ".avif", "PPM": ".ppm"}
# The formats decode_photo opens, the README's list (MPO opens through the JPEG plugin);
# Pillow's other plugins stay shut: an EPS named .jpg (walked in a folder, or uploaded) ran
# Ghostscript on its PostScript, and an ICO decoded the PNG inside it in Image.open, before the
# pixel limit was checked (a 1 MB file, 1.7 GB). PSD, JPEG 2000, TGA and a dozen more were read
# too, each a parser more to trust.
READ_FORMATS = tuple(name for name in FORMAT_SUFFIXES if name != "MPO")
# Scans a JPEG may have: libjpeg's progressive JPEGs have 10 (6 grey), tuned encoders up to
# a few dozen; a camera's file with embedded previews adds theirs. NVIDIA's nvImageCodec
# refuses more than 256 by default, against the same attack (_check_jpeg_scans).
MAX_JPEG_SCANS = 256
# Each scan is decoded over every block of the photo, so what a file's scans cost is scans x
# pixels: 256 scans of a 40 MP photo (a 306 KB file) took 8-14 s to decode here against 0.4 s
# for its 10 (probe hostile56), four of them at once held every search of a server for 30 s.
# Past FREE_JPEG_SCANS, a photo's scans are allowed up to this many megapixel-scans: 32 scans
# at 40 MP (about 2 s here), 106 at 12 MP, 256 up to 5 MP; 16 at any size, which no encoder's
# progression passes (libjpeg's has 10).
MAX_JPEG_SCAN_MEGAPIXELS = 1280
FREE_JPEG_SCANS = 16
# Frames counted of an animation or multi-page TIFF whose first frame, the only one read, is
# blank, for its warning ("of its 1,000 or more"): Pillow's n_frames walks every frame, and a
# TIFF's walk is quadratic (a 17 MB file of 150,000 1x1 pages took minutes, probe hostile49)
MAX_FRAMES_COUNTED = 1000
# Pixels converted at a time from a decoded photo into 8-bit BGR (_deep_to_bgr, _to_bgr): a
# band of rows, not the whole photo, holds its intermediate copies
BAND_PIXELS = 1 << 18
# Every read of a photo file stops after this long (PGFACE_READ_TIMEOUT_S sets it per run).
READ_TIMEOUT_S = 30.0
READ_CHUNK_BYTES = 1 << 20
# A photo whose 1st and 99th percentiles lie this close in every channel (levels of 255) gets a
# warning; measured on a sample of about this many pixels.
UNIFORM_SPREAD = 4
UNIFORM_SAMPLE_PIXELS = 65536
# The JPEG scale factors libjpeg-turbo decodes fastest: it scales inside the inverse DCT, so a
# 12 MP photo decodes to 1/4 size in a fraction of the full decode (and is turned upright in
# 1/16 of the time).
FAST_JPEG_FACTORS = (8, 4, 2)
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
    """A decoded photo: BGR pixels (what the InsightFace models take) plus file facts.

    A large JPEG may be decoded reduced (`decode_photo(..., keep_side=N)`): `image` then holds
    the upright photo at 1/`factor` of its size, `width` and `height` stay the photo's own,
    and `pixels(f)` decodes it again at 1/f where more detail is wanted.
    """

    source: str
    sha256: bytes
    size_bytes: int
    image: np.ndarray
    taken_at: datetime | None = None
    warning: str | None = None  # usable, but something the user should hear about
    factor: int = 1  # photo pixels per pixel of `image`: 1, or 2, 4, 8 when decoded reduced
    size: tuple[int, int] | None = None  # (width, height) of the upright photo when reduced
    format: str | None = None  # what the bytes are, as Pillow names it: JPEG, PNG, HEIF...
    # the EXIF orientation (1-8) the stored pixels were turned upright by (1: none); a
    # reduced JPEG's decodings again are turned by it too (pixels)
    orientation: int = 1
    _jpeg: bytes | None = field(default=None, repr=False)  # to decode again at another size
    _decoded: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def width(self) -> int:
        return self.size[0] if self.size else int(self.image.shape[1])

    @property
    def height(self) -> int:
        return self.size[1] if self.size else int(self.image.shape[0])

    def pixels(self, factor: int) -> np.ndarray:
        """The upright photo at 1/factor of its size (1: full size); `image` when that is it."""
        if factor == self.factor or self._jpeg is None:
            return self.image
        if factor not in self._decoded:
            stored_width, stored_height = ((self.height, self.width) if self.orientation >= 5
                                           else (self.width, self.height))
            self._decoded[factor] = _upright_by(
                # not strict: the file was checked when first decoded (a JPEG a few blocks
                # short was taken then, its lost corner filled)
                _decode_jpeg_scaled(self._jpeg, stored_width, stored_height, factor,
                                    strict=False),
                self.orientation)
        return self._decoded[factor]


def read_file(path: Path, max_bytes: int, timeout_s: float = READ_TIMEOUT_S) -> bytes:
    """A photo file's bytes; ImageError naming the file and the reason on any failure
    (read_file_stat says how it reads)."""
    return read_file_stat(path, max_bytes, timeout_s)[0]


def read_file_stat(path: Path, max_bytes: int, timeout_s: float = READ_TIMEOUT_S,
                   within: Sequence[Path] | None = None) -> tuple[bytes, os.stat_result]:
    """A photo file's bytes and the stat of the file they were read from, taken before reading
    (a write during the read leaves a later modification time than the one returned);
    ImageError naming the file and the reason on any failure.

    Only a regular file is opened: a FIFO, socket or device (which could block for ever or
    never end) is refused from its stat, and the open is non-blocking in case the name is
    swapped for one in between. The size limit is checked before reading and while reading,
    and the reading stops at the deadline (checked between chunks).
    within: folders (resolved) the file opened must really lie in (a server's allowed roots),
    checked on the file the kernel opened: the path was checked when its folder was walked,
    and a link put in its place before it was read was followed (probe security31).
    """
    source = str(path)
    info = _stat_regular(path, source)
    # A link to /proc/cpuinfo read as "file is empty" (procfs says 0 bytes), and was kept as
    # a failure of the content under /proc (probe hostile39). One lstat, of files read only.
    if in_kernel_folder(os.path.realpath(path) if os.path.islink(path)
                        else os.path.abspath(path)):
        raise ImageError(source, KERNEL_FILE)
    if info.st_size > max_bytes:
        raise ContentError(source, f"file is {info.st_size:,} bytes, over the limit of "
                                   f"{max_bytes:,}", info)
    if info.st_size == 0:
        raise ContentError(source, "file is empty", info)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ImageError(source, f"cannot read file ({os_reason(exc)})") from exc
    try:
        opened = os.fstat(fd)
        _check_kind(opened.st_mode, source)
        if within is not None and not _opened_within(fd, path, within):
            raise ImageError(source, OUTSIDE_ROOTS)
        return _read_bounded(fd, source, max_bytes, timeout_s), opened
    except OSError as exc:
        raise ImageError(source, f"cannot read file ({os_reason(exc)})") from exc
    finally:
        os.close(fd)


OUTSIDE_ROOTS = "outside the allowed folders (a symlink?)"
KERNEL_FILE = "in the system's folders (/proc, /sys, /dev hold no photos): not read"


def _opened_within(fd: int, path: Path, roots: Sequence[Path]) -> bool:
    """Whether the file open at FD lies in one of ROOTS, by the path the kernel has for it
    (Linux's /proc/self/fd; elsewhere the path resolved again now, after the open)."""
    try:
        real = Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        real = Path(os.path.realpath(path))
    return any(real == root or root in real.parents for root in roots)


def _stat_regular(path: Path, source: str) -> os.stat_result:
    if "\x00" in source:  # os.stat's own ValueError, "embedded null byte", came through
        raise InvalidInputError(f"{source!r}: a path with a NUL byte, which no file name has")
    try:
        info = os.stat(path)
    except FileNotFoundError as exc:
        reason = ("broken symbolic link (its target does not exist)" if os.path.islink(path)
                  else "no such file")
        raise ImageError(source, reason) from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageError(source, "symbolic link loop (too many levels of symbolic "
                                     "links)") from exc
        raise ImageError(source, f"cannot read file ({os_reason(exc)})") from exc
    _check_kind(info.st_mode, source)
    return info


def _check_kind(mode: int, source: str) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        kind = "a folder"
    elif stat.S_ISFIFO(mode):
        kind = "a FIFO (named pipe)"
    elif stat.S_ISSOCK(mode):
        kind = "a socket"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind = "a device"
    else:
        kind = "a special file"
    raise ImageError(source, f"{kind}, not a regular file: not opened")


def _read_bounded(fd: int, source: str, max_bytes: int, timeout_s: float) -> bytes:
    deadline = time.monotonic() + timeout_s
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = os.read(fd, READ_CHUNK_BYTES)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > max_bytes:  # the file grew since its stat
            raise ImageError(source, f"file is over the limit of {max_bytes:,} bytes")
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise ImageError(source, f"reading took over {timeout_s:g} s (a stalled disk or "
                                     f"network share?); read {total:,} bytes")


def read_photo(path: Path, max_bytes: int, max_pixels: int,
               timeout_s: float = READ_TIMEOUT_S, keep_side: int = 0) -> Photo:
    """Read and decode one file; every failure is an ImageError naming the file."""
    data = read_file(path, max_bytes, timeout_s)
    return decode_photo(data, str(path), max_bytes=max_bytes, max_pixels=max_pixels,
                        keep_side=keep_side)


# A photo as the Python API takes it for search, compare, embed and identify: a file path, a
# file's bytes, pixels as OpenCV and InsightFace hold them (a BGR uint8 array, as
# `cv2.imread` or a video frame gives), or a Pillow image.
PhotoInput = str | os.PathLike[str] | bytes | bytearray | memoryview | np.ndarray | Image.Image


def _looks_like_a_path(data: bytes, source: str) -> str:
    """A hint where photo bytes given to the Python API read as a file's path: bytes are a
    photo's contents there, and `pf.search(b"/photos/a.jpg")` said only "not an image"
    (probe hostile24)."""
    if source != "photo bytes" or len(data) > 4096 or b"\0" in data:
        return ""
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return ""
    if "/" in text and "\n" not in text and text.strip() == text:
        return (f": these bytes read as a path ({text!r}); bytes are a photo's contents, a "
                f"path is given as a str or a Path")
    return ""


def no_memory_decoding(source: str, exc: BaseException) -> OutOfMemoryError:
    return OutOfMemoryError(f"out of memory reading {source} ({describe(exc)}): give pgface "
                            f"more memory")


def input_label(photo: object) -> str:
    """What errors and a result's source call a photo given without a file name: "upload"
    told a Python caller nothing of which argument it was."""
    if isinstance(photo, bytes):
        return "photo bytes"
    if isinstance(photo, np.ndarray):
        return "photo array"
    if isinstance(photo, Image.Image):
        return "Pillow image"
    return "photo"


def load_photo(photo: PhotoInput, name: str | None, max_bytes: int, max_pixels: int,
               timeout_s: float = READ_TIMEOUT_S, keep_side: int = 0) -> Photo:
    """Any PhotoInput as a Photo; an ImageError naming it (the path, else NAME, else what it
    is: input_label) on failure, an OutOfMemoryError where memory ran out (a bare MemoryError
    from reading a large file). Something that is no photo input (None, a file object) is an
    InvalidInputError, as a path argument's is. keep_side: a file's large JPEG decoded
    reduced, as decode_photo says (pixels given as an array or a Pillow image are taken as
    they are)."""
    if isinstance(photo, bytearray | memoryview):  # a socket's or an object store's body
        photo = bytes(photo)
    if name is not None and not isinstance(name, str):
        # `name=5` came back as the result's source, an int where a str is promised
        raise InvalidInputError(f"name: the text errors and the result call the photo, not "
                                f"{kind_of(name)}")
    name = name or input_label(photo)
    try:
        return _load_photo(photo, name, max_bytes, max_pixels, timeout_s, keep_side)
    except MemoryError as exc:
        source = os.fspath(photo) if isinstance(photo, str | os.PathLike) else name
        raise no_memory_decoding(source, exc) from exc


def _load_photo(photo: PhotoInput, name: str, max_bytes: int, max_pixels: int,
                timeout_s: float, keep_side: int) -> Photo:
    if isinstance(photo, bytes):
        return decode_photo(photo, name, max_bytes=max_bytes, max_pixels=max_pixels,
                            keep_side=keep_side)
    if isinstance(photo, np.ndarray):
        return photo_from_array(photo, name, max_pixels)
    if isinstance(photo, Image.Image):
        return _photo_of_pillow(photo, name, max_pixels)
    if isinstance(photo, str | os.PathLike):
        if not os.fspath(photo):  # the current folder, taken as a path
            raise InvalidInputError("an empty path: name a photo file")
        return read_photo(expand(photo), max_bytes, max_pixels, timeout_s, keep_side)
    raise InvalidInputError(f"{name}: not a photo: {kind_of(photo)} (give a path, the "
                            "file's bytes, a BGR uint8 NumPy array or a Pillow image)")


def _photo_of_pillow(img: Image.Image, name: str, max_pixels: int) -> Photo:
    """A Pillow image as a Photo, upright by its EXIF orientation. Its pixels are read here
    (Image.open reads them lazily): a truncated file, a closed image, an empty one or a mode
    with no RGB form was an OSError, an AssertionError with no message, cv2's assertion or
    Pillow's ValueError, where the same file's bytes or path gave an ImageError."""
    if not img.width or not img.height:
        raise ImageError(name, "image is empty (0 pixels)")
    _check_pixels(name, img.width, img.height, max_pixels)
    try:
        # a copy where it turns: the caller's image stays as it was
        # turned as a file is: exif_transpose reads only the EXIF Pillow found itself
        return _photo_of_pixels(_upright_by(_to_bgr(img), _orientation(img)), name)
    except (OSError, SyntaxError) as exc:  # what Pillow raises for a broken file
        raise ImageError(name, f"corrupt or truncated image ({exc})") from exc
    except (ValueError, AssertionError, AttributeError) as exc:
        reason = str(exc) or "it is closed, or holds no pixels"
        raise ImageError(name, f"a Pillow image that cannot be read ({reason})") from exc


def photo_from_array(pixels: np.ndarray, source: str, max_pixels: int) -> Photo:
    """A Photo of pixels in OpenCV's layout: height x width x 3 (BGR) or 4 (BGRA), or height x
    width grey, uint8. Anything else is refused naming what it is: RGB cannot be told from
    BGR, so the layout is the caller's to give."""
    if pixels.dtype != np.uint8:
        raise ImageError(source, f"pixels are {pixels.dtype}, not uint8 (0-255) as OpenCV "
                                 "reads photos")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (3, 4))):
        raise ImageError(source, f"pixels of shape {pixels.shape} are not an image: give "
                                 "height x width x 3 (BGR), x 4 (BGRA) or height x width")
    height, width = pixels.shape[:2]
    if not height or not width:
        raise ImageError(source, "image is empty (0 pixels)")
    _check_pixels(source, width, height, max_pixels)
    if pixels.ndim == 2:
        bgr = cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    elif pixels.shape[2] == 4:
        bgr = _bgra_on_white(pixels)
    else:
        bgr = np.ascontiguousarray(pixels)
    return _photo_of_pixels(bgr, source)


def _bgra_on_white(bgra: np.ndarray) -> np.ndarray:
    """Transparent pixels become white, as a viewer shows them (as for a PNG with alpha)."""
    alpha = bgra[:, :, 3:4].astype(np.float32) / 255.0
    return (bgra[:, :, :3] * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)


def _photo_of_pixels(bgr: np.ndarray, source: str) -> Photo:
    return Photo(source=source, sha256=hashlib.sha256(bgr.tobytes()).digest(),
                 size_bytes=bgr.nbytes, image=bgr, warning=uniform_warning(bgr))


# The stored axes an EXIF orientation reverses on the way upright (_UPRIGHT): "x" the stored
# width's, "y" the stored height's.
_REVERSED_AXES = {2: "x", 3: "xy", 4: "y", 6: "y", 7: "xy", 8: "x"}


# A photo this much longer than wide (or wider than tall) or more is a panorama, which the
# detector sees through an input of its shape, as tall as a square one (models.analysis).
PANORAMA_RATIO = 3


def reduction_factor(width: int, height: int, keep_side: int, orientation: int = 1) -> int:
    """The largest of libjpeg's fast factors (8, 4, 2) that leaves the photo's longest side at
    least keep_side pixels (a panorama's shortest: the detector sees it through an input as
    tall as a square one, and a 9600x630 JPEG decoded at 1/4 lost half its faces); 1 (full
    size) when none does or keep_side is 0. width, height: the stored size. A factor must
    divide each stored side that the EXIF orientation reverses: the last pixel of a reduced
    row holds what is left of the row, fewer than factor pixels, and reversed it came first,
    shifting the whole upright photo by up to factor - 1 pixels against the boxes placed in
    it (3 px at 1/4: a probe's 6001-pixel photo turned 180)."""
    long, short = max(width, height), min(width, height)
    longest = short if long >= PANORAMA_RATIO * short else long
    reversed_axes = _REVERSED_AXES.get(orientation, "")
    for factor in FAST_JPEG_FACTORS if keep_side > 0 else ():
        if -(-longest // factor) < keep_side:
            continue
        if ("x" in reversed_axes and width % factor) or ("y" in reversed_axes and height % factor):
            continue
        return factor
    return 1


def decode_photo(data: bytes, source: str, max_bytes: int, max_pixels: int,
                 keep_side: int = 0, sha256: bytes | None = None) -> Photo:
    """Decode a photo's bytes; every failure is a ContentError naming the file: decoding
    reads nothing but the bytes, so the same bytes fail the same way again (given as bytes,
    one over the byte limit was a plain ImageError where a file's was a ContentError, probe
    compare35).

    keep_side > 0: a JPEG whose longest side is at least twice that is decoded reduced, by the
    largest of 1/2, 1/4 and 1/8 that keeps its longest side at least keep_side (Photo.factor).
    sha256: the data's digest when the caller has it already (a 12 MP photo is megabytes).
    """
    try:
        return _decode_bytes(data, source, max_bytes, max_pixels, keep_side, sha256)
    except ContentError:
        raise
    except ImageError as exc:
        raise ContentError(exc.source, exc.reason) from exc


def _decode_bytes(data: bytes, source: str, max_bytes: int, max_pixels: int,
                  keep_side: int, sha256: bytes | None) -> Photo:
    if len(data) > max_bytes:
        raise ImageError(source, f"file is {len(data):,} bytes, over the limit of {max_bytes:,}")
    if not data:
        raise ImageError(source, "file is empty")
    unpadded = data.rstrip(b"\x00")  # once: a copy of the file where it ends in zeros
    zeros = len(data) - len(unpadded)
    written = _jpeg_without_unwritten_tail(data, unpadded)
    try:
        if zeros >= UNWRITTEN_ZEROS and _coded_data_reaches(data, len(data) - zeros):
            raise ImageError(source, "corrupt or truncated image (its image data runs into "
                                     "the zeros it ends with)")
        photo = _decode_photo(written, source, max_pixels, keep_side,
                              sha256 or (hashlib.sha256(data).digest() if written is not data
                                         else None))
    except ImageError as exc:
        if written is data and (zeros < UNWRITTEN_ZEROS or data[:2] == b"\xff\xd8"
                                or not exc.reason.startswith("corrupt or truncated")):
            raise  # no zeros; a whole JPEG's padding after its end marker; no image at all
        raise ImageError(source, f"{exc.reason}; its last {zeros:,} bytes are zeros, as a copy "
                                 f"still being written leaves them") from exc
    photo.size_bytes = len(data)
    return photo


# The zeros a file's end must hold to be said to be unwritten where it is refused, and looked
# for in a WebP's or HEIF's coded image data: fewer are what a chunk's padding or a coder's
# last bytes may be.
UNWRITTEN_ZEROS = 64


def _coded_data_reaches(data: bytes, zeros_from: int) -> bool:
    """Whether a WebP's or a HEIF's (HEIC, AVIF) coded image data runs into the zeros its
    file ends with (from ZEROS_FROM on): what a copy that sets the file's size first leaves
    (Windows and SMB copies, rsync --preallocate). Decoded, those zeros were taken as picture:
    a WebP or an iPhone's HEIC caught with 70 % written was stored with a third of its rows
    wrong (probe reprobe34). Zeros in metadata after the picture (an EXIF block's padding)
    are no loss. False for other files, and for one whose layout cannot be read (its decoder
    says why)."""
    try:
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            spans = _webp_image_spans(data)
        elif data[4:8] == b"ftyp":
            spans = _heif_image_spans(data)
        else:
            return False
    except (struct.error, ValueError, IndexError, KeyError, StopIteration):
        return False  # no meta, iinf or iloc box (a video's ftyp): its decoder says what it is
    return any(zeros_from + UNWRITTEN_ZEROS <= end and start < end for start, end in spans)


def _webp_image_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each chunk of a WebP that holds its picture (VP8, VP8L, ALPH, ANMF)."""
    spans, at = [], 12
    while at + 8 <= len(data):
        kind, size = data[at:at + 4], struct.unpack_from("<I", data, at + 4)[0]
        if kind in (b"VP8 ", b"VP8L", b"ALPH", b"ANMF"):
            spans.append((at + 8, at + 8 + size))
        at += 8 + size + (size & 1)
    return spans


# The items of a HEIF that hold coded pictures (a grid's tiles are each one), by item type
_HEIF_CODED = frozenset({b"hvc1", b"av01", b"avc1"})


def _heif_image_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) in the file of each extent of a HEIF's coded picture items: its meta box's
    item types (iinf) and their places (iloc, those at file offsets)."""
    meta = next((b, e) for kind, b, e in _boxes(data, 0, len(data)) if kind == b"meta")
    children = {kind: (b, e) for kind, b, e in _boxes(data, meta[0] + 4, meta[1])}
    coded = _heif_coded_items(data, *children[b"iinf"])
    start, end = children[b"iloc"]
    version = data[start]
    at = start + 4
    offset_size, length_size = data[at] >> 4, data[at] & 15
    base_size, index_size = data[at + 1] >> 4, (data[at + 1] & 15) if version else 0
    at += 2

    def number(size: int) -> int:
        """The next SIZE bytes' number; past the box's end, a ValueError: a count of 2^32
        items in a box of a few bytes is read no further (a file made to hang the loop)."""
        nonlocal at
        if at + size > end:
            raise ValueError("the iloc box ends before its items do")
        value = int.from_bytes(data[at:at + size], "big")
        at += size
        return value

    spans = []
    for _ in range(number(4 if version == 2 else 2)):
        item = number(4 if version == 2 else 2)
        method = number(2) & 15 if version else 0
        number(2)  # data_reference_index
        base = number(base_size)
        extents = number(2)
        if extents > 1 and not (offset_size or length_size or index_size):
            # places of no bytes of their own: 65,535 of them, each read again and again
            # without moving on, took an hour and all the memory (probe reprobe38)
            raise ValueError("extents that hold no place")
        for _ in range(extents):
            number(index_size)
            offset, length = base + number(offset_size), number(length_size)
            if item in coded and method == 0:  # at a file offset (1: inside the meta box)
                spans.append((offset, offset + length if length else len(data)))
    return spans


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, content start, end) of each ISO media box from START to END."""
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, at)
        head = 8
        if size == 1:
            size, head = struct.unpack_from(">Q", data, at + 8)[0], 16
        elif size == 0:  # to the end
            size = end - at
        if size < head:
            raise ValueError("a box smaller than its header")
        yield kind, at + head, min(at + size, end)
        at += size


def _heif_coded_items(data: bytes, start: int, end: int) -> set[int]:
    """The ids of a HEIF's items of a coded picture type (_HEIF_CODED), from its iinf box."""
    version = data[start]
    first = start + 4 + (2 if version == 0 else 4)  # past its entry count
    coded = set()
    for kind, begin, _ in _boxes(data, first, end):
        if kind != b"infe" or data[begin] < 2:
            continue
        wide = data[begin] >= 3  # version 3: 32-bit item ids
        item = int.from_bytes(data[begin + 4:begin + (8 if wide else 6)], "big")
        type_at = begin + (10 if wide else 8)
        if data[type_at:type_at + 4] in _HEIF_CODED:
            coded.add(item)
    return coded


def _jpeg_without_unwritten_tail(data: bytes, unpadded: bytes) -> bytes:
    """A JPEG's bytes without the zeros it ends with where no end marker comes before them:
    what a copy that sets the file's size first and then writes it (Windows and SMB copies,
    rsync --preallocate) leaves unwritten. Decoded as coded data, those zeros were read as
    blocks: a progressive JPEG caught with 70 % of it written was taken, its picture wrong
    in a quarter of its rows, where the same file cut there was measured (probe nas33).
    Without them the file is cut short, and measured as one is. The data itself as it is
    for anything else (a whole JPEG padded with zeros after its end marker among it).
    UNPADDED: the data without the zeros it ends with (decode_photo has it)."""
    if (data[:2] != b"\xff\xd8" or len(unpadded) == len(data)
            or unpadded.endswith(b"\xff\xd9")):
        return data
    return unpadded


def _decode_photo(data: bytes, source: str, max_pixels: int, keep_side: int,
                  sha256: bytes | None) -> Photo:
    """decode_photo of data within the size limit."""
    _check_jpeg_scans(data, source, max_pixels)
    _allow_pixels(max_pixels)
    plain = _decode_plain_jpeg(data, source, max_pixels, keep_side)
    if plain is not None:
        bgr, factor, (width, height) = plain
        return Photo(source=source, sha256=sha256 or hashlib.sha256(data).digest(),
                     size_bytes=len(data), image=bgr, warning=uniform_warning(bgr),
                     format="JPEG", **({"factor": factor, "_jpeg": data, "size": (width, height)}
                        if factor > 1 else {}))
    try:
        img = _open_image(data)
        if img.format == "PPM" and img.mode == "F":  # Pillow's PPM reader opens PFMs too
            # (read when named, passed over by a walk, served as no image: probe hostile20)
            raise ImageError(source, "not a format pgface reads (a Portable FloatMap (PFM) "
                                     "file of floating-point samples; it reads JPEG, PNG, "
                                     "WebP, GIF, TIFF, BMP, PGM/PPM, HEIC and AVIF)")
        width, height = img.size
        _check_pixels(source, width, height, max_pixels)
        taken_at = _taken_at(img)
        if img.format == "TIFF":
            _check_tiff_data(data, img.tag_v2, source)
        factor = (reduction_factor(width, height, keep_side, _orientation(img))
                  if img.format == "JPEG" else 1)
        bgr = (_decode_jpeg(data, img, source, factor) if img.format == "JPEG"
               else _decode_deep_colour(data, img, source))
        turned = None  # the EXIF orientation applied, where read before it is taken away
        if bgr is None:
            factor = 1
            img.load()
            orientation = turned = _orientation(img)
            if orientation != 1 and img.getexif().get(ExifTags.Base.Orientation) == orientation:
                ImageOps.exif_transpose(img, in_place=True)  # in place: no copy of the photo
                orientation = 1
            bgr = _upright_by(_to_bgr(img), orientation)  # an EXIF Pillow passed over
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:  # over twice Pillow's limit, itself ours or more
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{_pixel_count(int(pixels[1]))}, " if pixels else ""
        raise ImageError(source, f"image is {size}over the limit of "
                                 f"{_pixel_count(max_pixels)}") from exc
    except UnidentifiedImageError as exc:
        if _is_heif_family(data):  # Pillow's AVIF opener says a truncated AVIF is no image
            raise ImageError(source, "corrupt or truncated image (an AVIF or HEIF file "
                                     "that cannot be decoded)") from exc
        tags = _tiff_tags(data)
        if tags is not None and _tiff_planar_extra(tags):
            return _photo_of_tiff_by_opencv(data, tags, source, max_pixels, sha256)
        unread = _tiff_sample_format(tags) if tags is not None else None
        if unread:  # a valid TIFF Pillow has no mode for was called corrupt
            raise ImageError(source, f"not a format pgface reads (a TIFF of {unread}; it reads "
                                     f"TIFFs of 8- and 16-bit unsigned integer samples, and "
                                     f"greyscale of 32-bit)") from exc
        layout = _tiff_layout(tags) if tags is not None else None
        if layout:
            raise _unread_tiff(source, layout) from exc
        kind = _kind_by_signature(data)
        if kind:  # a PNG whose header's checksum is wrong was "not an image"
            raise ImageError(source, f"corrupt or truncated image (a {kind} file whose "
                                     f"header cannot be read)") from exc
        other = _unread_kind(data)
        if other:
            raise ImageError(source, f"not a format pgface reads ({_a(other)} file; it reads "
                                     f"JPEG, PNG, WebP, GIF, TIFF, BMP, PGM/PPM, HEIC and "
                                     f"AVIF)") from exc
        raise ImageError(source, "not an image (unrecognised format)"
                         + _looks_like_a_path(data, source)) from exc
    except Exception as exc:
        tags = _tiff_tags(data) if isinstance(exc, ValueError) else None
        if tags is not None and _tiff_planar_extra(tags):  # "unknown raw mode" from Pillow
            return _photo_of_tiff_by_opencv(data, tags, source, max_pixels, sha256)
        layout = _tiff_layout(tags) if tags is not None and "raw mode" in str(exc) else None
        if layout:  # 8-bit planar grey + alpha: Pillow opens it, and has no raw mode for it
            raise _unread_tiff(source, layout) from exc
        if out_of_memory(exc):  # the machine's, not the file's (a PNG of 40 MP was "cannot
            # decode image (MemoryError)", an HTTP 400 where its JPEG was a 503)
            raise no_memory_decoding(source, exc) from exc
        bare = (_png_without_large_metadata(data, every_text="MAX_TEXT_MEMORY" in str(exc))
                if isinstance(exc, ValueError) and "MAX_TEXT_" in str(exc) else None)
        if bare is not None:  # the pixels are whole: read them without that metadata
            photo = _decode_photo(bare, source, max_pixels, keep_side,
                                  sha256 or hashlib.sha256(data).digest())
            photo.size_bytes = len(data)
            return photo
        if isinstance(exc, OSError | SyntaxError | ValueError):
            reason = " ".join(str(exc).split()) or type(exc).__name__  # libheif ends with "\n"
            if reason == "decoder error -2":  # libtiff's: a strip or tile that would not decode
                reason = "its compressed image data cannot be decoded"
            raise ImageError(source, f"corrupt or truncated image ({reason})") from exc
        # a decoder's own exception type is still this file's failure
        raise ImageError(source, f"cannot decode image ({describe(exc)})") from exc
    # read after decoding: libheif resets a HEIC's, which its own rotation replaces
    orientation = _orientation(img) if turned is None else turned
    reduced: dict = {}
    if factor > 1:
        reduced = {"factor": factor, "_jpeg": data,
                   "size": (height, width) if orientation >= 5 else (width, height)}
    warning = uniform_warning(bgr)
    if warning:  # a blank first frame said nothing of the others, unread
        frames = _frames_said(img, data)
        if frames:
            warning = f"its first frame, the only one read of its {frames}: {warning}"
    return Photo(
        source=source,
        sha256=sha256 or hashlib.sha256(data).digest(),
        size_bytes=len(data),
        image=bgr,
        taken_at=taken_at,
        warning=warning,
        format=img.format,
        orientation=orientation,
        **reduced,
    )


def _frames_said(img: Image.Image, data: bytes) -> str | None:
    """How many frames an animation or multi-page image holds, as its warning says it ("2",
    "1,000 or more"), counted up to MAX_FRAMES_COUNTED; None for an image of one frame. Only
    the image's first frame has been read, and no frame past the limit is looked at: Pillow's
    n_frames walks them all, a TIFF's IFDs each searched for in a list of those before it
    (10,000 pages took 6 s, 150,000 minutes), a GIF's frames one at a time."""
    if img.format == "GIF":
        count, more = _gif_frames(data)
    elif img.format == "TIFF":
        count, more = _tiff_pages(data)
    else:  # PNG, WebP, MPO, HEIF and AVIF say their count in a header Pillow has read
        try:
            count, more = int(getattr(img, "n_frames", 1)), False
        except Exception:  # noqa: BLE001 - a count that cannot be read: one frame, as read
            return None
    if count <= 1:
        return None
    return f"{count:,} or more" if more else f"{count:,}"


def _tiff_pages(data: bytes) -> tuple[int, bool]:
    """(pages, whether the count is at least that: stopped at MAX_FRAMES_COUNTED, or at a
    page that cannot be read) of a TIFF or BigTIFF, its IFDs' chain walked by their entry
    counts, tag numbers and next-IFD offsets alone. Pillow's seek to each page reads every entry of
    its IFD: pages of 1,700 unknown tags each took 29 s to count to 1,000 in a 20 MB file
    (probe reprobe50), so each IFD's tag numbers are read in one strided numpy view.

    A page is counted only where its IFD lies wholly within the file (entry count, entries,
    next-IFD offset) and holds ImageWidth and ImageLength, each with a value (a count of 0 is
    none: probe reprobe54): Pillow reads no other (a next offset past the end or into pixel
    data, and IFDs of ImageWidth alone, "Missing dimensions", were said to be pages: probe
    reprobe52). The walk stops at the first such IFD, the pages before it counted and the
    count at least that."""
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None or len(data) < 8:
        return 1, False
    big = struct.unpack_from(order + "H", data, 2)[0] == 43
    offset_format, count_format = (order + "Q", order + "Q") if big else (order + "I",
                                                                          order + "H")
    entry_size, count_size = (20, 8) if big else (12, 2)
    offset_size = struct.calcsize(offset_format)
    first_at = 8 if big else 4
    if len(data) < first_at + offset_size:
        return 1, False
    offset = struct.unpack_from(offset_format, data, first_at)[0]
    pages, seen = 0, set()
    while offset and pages < MAX_FRAMES_COUNTED:
        if offset in seen:  # the chain loops back: no page more
            return max(pages, 1), False
        # into the header (probe reprobe51), or past the end: junk, no page
        if offset < first_at + offset_size or offset + count_size > len(data):
            return max(pages, 1), True
        seen.add(offset)
        entries = struct.unpack_from(count_format, data, offset)[0]
        link = offset + count_size + entry_size * entries
        if not entries or link + offset_size > len(data):  # none, or running past the end
            return max(pages, 1), True
        tags = np.ndarray((entries,), dtype=order + "u2", buffer=data,
                          offset=offset + count_size, strides=(entry_size,))
        # each entry's count of values, after its tag and type: a width of none is none
        value_counts = np.ndarray((entries,), dtype=order + ("u8" if big else "u4"),
                                  buffer=data, offset=offset + count_size + 4,
                                  strides=(entry_size,))
        given = tags[value_counts > 0]
        if not ((given == 256).any() and (given == 257).any()):  # no width or no length
            return max(pages, 1), True
        pages += 1
        offset = struct.unpack_from(offset_format, data, link)[0]
    return max(pages, 1), pages >= MAX_FRAMES_COUNTED and bool(offset)


def _gif_frames(data: bytes) -> tuple[int, bool]:
    """(frames, whether the count stopped at MAX_FRAMES_COUNTED) of a GIF, its images counted
    block by block no further than that, none decoded (Pillow's seek decodes each, and its
    n_frames walks to the last: a 20 MB file holds a million tiny frames); a file cut short
    or corrupt past its first image counts the images met."""
    if len(data) < 13:
        return 1, False
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    count = 0

    def sub_blocks(pos: int) -> int:  # past a run of data sub-blocks and its terminator
        while pos < len(data) and data[pos]:
            pos += data[pos] + 1
        return pos + 1

    while pos < len(data) and count < MAX_FRAMES_COUNTED:
        kind = data[pos]
        if kind == 0x21:  # an extension: its label, then its sub-blocks
            pos = sub_blocks(pos + 2)
        elif kind == 0x2C:  # an image: its descriptor, colour table, LZW code size, data
            if pos + 10 > len(data):
                break
            count += 1
            local = data[pos + 9]
            pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0)
            pos = sub_blocks(pos + 1)
        else:  # the trailer, or bytes that are no block
            break
    return max(count, 1), count >= MAX_FRAMES_COUNTED


def _check_jpeg_scans(data: bytes, source: str, max_pixels: int) -> None:
    """A progressive JPEG is decoded scan by scan, each over every block of the photo, and a
    scan can be a few bytes (runs of empty blocks): a 1.1 MB file of 2,100 scans took 13 s to
    decode at 16 MP here, and the size limits allow thousands of times that. Such a file is
    refused before decoding: more than MAX_JPEG_SCANS scans, or more than FREE_JPEG_SCANS
    whose work at the photo's size passes MAX_JPEG_SCAN_MEGAPIXELS. A scan starts with an SOS
    marker, FF DA, which the coded data never holds (a data byte FF is followed by 00).

    The scans priced are the photo's own, read segment by segment from its start to its end
    marker: an EXIF thumbnail's lie inside its APP1 segment and an MPF preview's after the
    end, and neither is decoded with the photo (a 96 MP photo with a progressive thumbnail
    was refused: probe reprobe57). Where the segments do not read so to the end (a stray
    byte before a marker, a length below 2: libjpeg reads on past both, with a warning), every
    FF DA of the file is priced, at the frame's size where one was read before, else at the
    pixel limit: a byte put before the frame header had the file decoded unpriced."""
    if data[:2] != b"\xff\xd8":
        return
    scans = data.count(b"\xff\xda")
    if scans > MAX_JPEG_SCANS:
        raise ImageError(source, f"a JPEG of {scans:,} scans, over the limit of "
                                 f"{MAX_JPEG_SCANS} (a progressive JPEG has about 10; "
                                 f"this many make decoding take minutes)")
    if scans <= FREE_JPEG_SCANS:
        return
    size, own_scans = _jpeg_frame_and_scans(data)
    if own_scans is not None:
        scans = own_scans
    pixels = size[0] * size[1] if size is not None else max_pixels
    allowed = max(FREE_JPEG_SCANS, MAX_JPEG_SCAN_MEGAPIXELS * 1_000_000 // max(1, pixels))
    if scans > allowed:
        at = (f"{size[0]}x{size[1]} ({_pixel_count(pixels)})" if size is not None
              else f"the pixel limit ({_pixel_count(pixels)}; its frame header unread)")
        raise ImageError(source, f"a JPEG of {scans:,} scans at {at}, over the limit of "
                                 f"{allowed} scans at that size (a progressive JPEG has about "
                                 f"10; each scan is decoded over the whole photo, so this "
                                 f"many take seconds a photo)")


def _jpeg_frame_and_scans(data: bytes) -> tuple[tuple[int, int] | None, int | None]:
    """A JPEG's frame size (width, height) from its first frame header (SOFn), or None; and
    its scans, counted segment by segment to its end marker, or None where the segments do
    not read so to the end. An EXIF thumbnail lies inside its APP1 segment, passed over
    whole."""
    size, scans = None, 0
    for marker, payload, _ in _jpeg_segments(data):
        if marker == 0xD9:
            return size, scans
        if marker == 0xDA:
            scans += 1
        elif size is None and marker in _FRAME_MARKERS and len(payload) >= 5:
            size = int.from_bytes(payload[3:5], "big"), int.from_bytes(payload[1:3], "big")
    return size, None


def _check_pixels(source: str, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageError(
            source,
            f"image is {width}x{height} ({_pixel_count(width * height)}), over the limit "
            f"of {_pixel_count(max_pixels)}",
        )


def _pixel_count(pixels: int) -> str:
    """12.2 MP, 100 MP, 3,600 MP as people write megapixels (`.3g` wrote 3.6e+03); under a
    tenth of one, the pixels themselves (a limit of 1 pixel was "0 MP")."""
    if pixels < 100_000:
        return f"{pixels:,} pixel{'s' if pixels != 1 else ''}"
    return f"{pixels / 1e6:,.1f}".removesuffix(".0") + " MP"


def _decode_plain_jpeg(data: bytes, source: str, max_pixels: int, keep_side: int
                       ) -> tuple[np.ndarray, int, tuple[int, int]] | None:
    """(pixels, factor, (width, height)) of a JPEG that holds nothing Pillow's path would read
    (no EXIF or XMP: upright, no date; no Adobe colour transform), decoded by libjpeg-turbo
    alone; None for any other file, which takes the Pillow path (that path decodes plain JPEGs
    the same way, so the pixels are the same). Opening the file with Pillow first cost 0.1 ms
    and decoding's blank check 0.1 ms more of a 250x250 photo's 1 ms, all of it holding the
    GIL: what bounds how many photos a second a GPU's feeding threads decode."""
    if not _plain_jpeg(data):
        return None
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None
    if colorspace not in ("YCbCr", "Gray"):  # Pillow's "RGB" and "L" modes
        return None
    _check_pixels(source, width, height, max_pixels)
    factor = reduction_factor(width, height, keep_side)
    try:
        return _decode_jpeg_checked(data, width, height, factor, source), factor, (width, height)
    except ValueError:  # corrupt or truncated: the Pillow path says which, as for any file
        return None


# What a JPEG may hold before its image data and still be plain: JFIF's APP0, quantisation and
# Huffman tables, a baseline, extended or progressive frame, a restart interval, comments.
# Anything else (APP1's EXIF or XMP, APP2's ICC or MPF, APP14's colour transform, a lossless or
# arithmetic-coded frame) leaves the file to Pillow's path.
_PLAIN_JPEG_MARKERS = frozenset({0xE0, 0xDB, 0xC4, 0xC0, 0xC1, 0xC2, 0xDD, 0xFE})
# Start-of-frame markers, SOF0 to SOF15 but DHT (C4), JPG (C8) and DAC (CC): a frame header,
# P(8) Y(16) X(16) Nf(8) ...
_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _plain_jpeg(data: bytes) -> bool:
    """Whether data is a JPEG whose segments before the image data are all plain ones."""
    if data[:3] != b"\xff\xd8\xff":
        return False
    for marker, _, _ in _jpeg_segments(data):
        if marker == 0xDA:  # start of scan: every segment before it was plain
            return True
        if marker not in _PLAIN_JPEG_MARKERS:
            return False
    return False


def uniform_warning(bgr: np.ndarray) -> str | None:
    """Why a photo looks blank, when nearly all its pixels have one value; else None."""
    height, width = bgr.shape[:2]
    step = max(1, int(math.sqrt(height * width / UNIFORM_SAMPLE_PIXELS)))
    sample = np.ascontiguousarray(bgr[::step, ::step])
    count = sample.shape[0] * sample.shape[1]
    cut = max(1, count // 100)  # pixels below the 1st and above the 99th percentile
    for channel in range(sample.shape[2]):
        # percentiles from a histogram (50x np.percentile); OpenCV's counts without the GIL,
        # at half of np.bincount's time
        histogram = cv2.calcHist([sample], [channel], None, [256], [0, 256])
        counts = np.cumsum(histogram.reshape(-1).astype(np.int64))
        low = int(np.searchsorted(counts, cut))
        high = int(np.searchsorted(counts, count - cut))
        if high - low > UNIFORM_SPREAD:
            return None
    # one level where the channels agree (a grey); else the colour: a pure red was "level 85",
    # a dark grey no pixel had (probe hostile24)
    blue, green, red = (int(round(float(v))) for v in sample.reshape(-1, 3).mean(axis=0))
    value = (f"level {round((blue + green + red) / 3)} of 255"
             if max(blue, green, red) - min(blue, green, red) <= UNIFORM_SPREAD
             else f"colour RGB {red}, {green}, {blue}")
    return (f"{BLANK_WARNING} ({value}): a blank image, or one whose values use only a sliver "
            f"of their range: no face can be found in it")


BLANK_WARNING = "nearly every pixel has the same value"


def warning_given_faces(warning: str | None, faces: int) -> str | None:
    """A photo's warning once its faces are known: the blank one says no face can be found,
    which a face found belies (a small face on a white page, as a scanned ID is), and was
    given beside it."""
    return None if faces and warning is not None and BLANK_WARNING in warning else warning


def _decode_jpeg(data: bytes, img: Image.Image, source: str, factor: int = 1
                 ) -> np.ndarray | None:
    """A JPEG straight into a BGR array with libjpeg-turbo, made upright per its EXIF tag;
    None when it is one for Pillow (CMYK, or anything TurboJPEG refuses).

    Why not Pillow for JPEG: Pillow holds the GIL while it allocates the image and again while
    numpy copies it out (tobytes), so two decoding threads ran at 1.5x one thread; simplejpeg
    decodes into the array with the GIL released (0.47 s against 0.89 s on 2 threads for the
    89 JPEGs of the benchmark's group set). A file simplejpeg refuses goes to Pillow, which
    decodes it or says why not: pgface accepts exactly the JPEGs it accepted before.
    factor > 1: decoded at 1/factor of its size.
    """
    if img.mode == "CMYK":
        closed = _cmyk_cut_closed(data, source)
        if closed is None:
            return None  # whole, or a complaint Pillow's decoding says
        with Image.open(io.BytesIO(closed), formats=["JPEG"]) as cut:
            cut.load()
            return _upright(_to_bgr(cut), img)
    if img.mode not in ("RGB", "L"):
        return None
    try:
        bgr = _decode_jpeg_checked(data, img.size[0], img.size[1], factor, source)
    except ValueError:
        return None
    return _upright(bgr, img)


# A JPEG whose image data ends early decodes with the rest of its picture filled flat (each
# block repeats the last colour read). A few blocks short (a byte or a few hundred lost at the
# end, which Pillow and browsers show whole) is taken; a photo with this share or more of its
# picture lost (a broken copy, a header that claims a larger picture: half a face would be
# searched, probe hostile21) is refused. Refused whole, a JPEG one byte short cost its photo
# (probe reprobe23).
CUT_SHORT_REFUSED = 0.02


def _decode_jpeg_checked(data: bytes, width: int, height: int, factor: int, source: str
                         ) -> np.ndarray:
    """_decode_jpeg_scaled, strict, with a JPEG whose image data ends before its picture
    does told apart: Pillow sees a cut only where the file's end marker is missing too, so
    one cut short and then closed is caught here (libjpeg-turbo's strict decoding), and
    taken or refused by how much of it is lost (_refuse_if_cut_too_short). Its other warnings
    (bytes between markers, which cameras write) raise ValueError, for Pillow's path. An
    arithmetic-coded JPEG is measured whether or not libjpeg warned: its decoder reads zeros
    past a marker without a word, so one cut and closed by an end marker decoded without a
    warning, the lost half garbage (probe reprobe27)."""
    try:
        bgr = _decode_jpeg_scaled(data, width, height, factor)
    except ValueError as exc:
        if not _cut_short(exc):
            raise
        _refuse_if_cut_too_short(data, "BGR", source, exc)
        return _decode_jpeg_scaled(data, width, height, factor, strict=False)
    if _arithmetic(data):
        _refuse_if_cut_too_short(data, "BGR", source)
    return bgr


def _cut_short(exc: ValueError) -> bool:
    """libjpeg's "premature end of data segment" (closed again by an end marker) or "of
    JPEG file" (no end marker: Pillow refused such a file whole, one whose last two bytes
    alone were lost too), or "found marker 0xd9 instead of RSTn": the end marker where a
    restart interval's should be, in a JPEG of restart intervals (cameras write them) cut where
    one ends, or in an arithmetic-coded one cut anywhere, and closed (taken, its bottom two
    thirds garbage, where its twin without restart markers was refused: probe reprobe30)."""
    said = str(exc).lower()
    return "premature end of" in said or "found marker 0xd9 instead of rst" in said


def _refuse_if_cut_too_short(data: bytes, colorspace: str, source: str,
                             exc: ValueError | None = None) -> None:
    """An ImageError for a JPEG cut short that lost more than a few blocks. Its data ends in
    its last scan whose header it holds (or after it: the scan is whole); the scans before it
    are whole, those after it missing. Refused when:
    - scans it must have are missing (_scans_missing: a progressive JPEG cut before its last
      scans is whole but coarse everywhere, libjpeg-turbo smoothing the blocks whose detail
      is missing, which no lost share tells: a photo cut to a quarter of its bytes was
      searched, blurred; one of a scan per component would lack a colour);
    - its last scan is a first pass over its coefficients (every scan of a sequential JPEG,
      a progressive scan with Ah 0) and CUT_SHORT_REFUSED or more of the blocks it codes are
      not reached (_lost_share): where the data stops, those blocks get nothing of it (a
      progressive JPEG whose last scan is all of luma's detail, cut early in it, was taken
      with no detail in nearly all of it, probe reprobe27).
    A refinement scan (Ah above 0) cut short loses only the last bit of some blocks' detail:
    taken. exc: libjpeg's warning, None where it gave none (an arithmetic-coded JPEG)."""
    frame = _jpeg_frame(data)
    said = f"; {' '.join(str(exc).split())}" if exc is not None else ""
    if _scans_missing(frame):
        kind = "a progressive JPEG" if frame.progressive else "a JPEG of a scan per component"
        raise ImageError(source, f"corrupt or truncated image (its image data ends before "
                                 f"the picture does: {kind} cut before its last scans, its "
                                 f"{'detail' if frame.progressive else 'colour'} missing"
                                 f"{said})") from exc
    if not frame.scans or frame.scans[-1].refines:
        return
    try:
        lost = _lost_share(data, frame, colorspace)
    except ValueError as failed:  # known cut, not measured: not taken as whole
        raise ImageError(source, f"corrupt or truncated image (its image data ends before "
                                 f"the picture does, by how much cannot be told: {failed}"
                                 f"{said})") from exc
    if lost >= CUT_SHORT_REFUSED:
        what = ("is missing" if not frame.progressive
                else "is missing the detail of its last scan")
        raise ImageError(source, f"corrupt or truncated image (its image data ends before "
                                 f"the picture does: the bottom {lost:.0%} of it {what}"
                                 f"{said})") from exc


# What follows a scan's data where it ends, to see which of its blocks that data reaches: two
# fillers (one might decode to the very blocks the data's end gives). An arithmetic decoder
# reads zero bytes past the data (T.81 D.2.6; an encoder drops the zero bytes its data ends
# with, libjpeg's all of them), so there the filler comes after a few: right after the data, it
# rewrote the last block of a whole file, and a 16x16 photo was all lost. Those dropped zeros
# may code many blocks, though (_flat_past_data): no count of them tells a whole file's end.
_FILLERS = (b"\x55", b"\xa3\x1c")
_ARITHMETIC_ZEROS = 4
# The most a channel's values may spread where an arithmetic-coded scan's blocks past its data
# are taken as one flat colour (_flat_past_data); a whole file's are one value exactly
_FLAT_SPREAD = 2


def _lost_share(data: bytes, frame: _JpegFrame, colorspace: str) -> float:
    """The share of the blocks a cut JPEG's last scan codes that its data does not reach:
    decoded (at an eighth of each side, a block a pixel; at half, where the scan holds only
    detail, which an eighth does not show) as it is and with filler bytes where its data
    stops, the blocks that differ are those the filler reached. Rows of one colour at the
    bottom took a photo's own white border for lost data (probe reprobe24), and the rows from
    the first that differs took a whole row of blocks for lost where the filler rewrote only
    its last block, the data a byte short (6 % of a 250-pixel photo, probe reprobe25).
    Its data ends where the last scan's coded data does: a segment cut short after it and an
    0xFF the data ends with (a stuffed byte whose 00 is lost, the end marker's FF whose D9
    is) are dropped. Filler after a lone FF made marker FF55, which libjpeg refused, and the
    file went to Pillow, which took it: a JPEG one byte short was refused (Pillow's
    "image file is truncated"), one cut after a stuffed FF taken with its lost half grey
    (probe reprobe27)."""
    scan = frame.scans[-1]
    across, down = frame.block_pixels(scan)  # of the full picture, a block of this scan
    factor = next(f for f in (8, 4, 2, 1)
                  if (scan.first == 0 or f <= 2) and across % f == 0 and down % f == 0)
    across, down = across // factor, down // factor
    body = data[:frame.coded_end].rstrip(b"\xff")
    zeros = b"\x00" * _ARITHMETIC_ZEROS if frame.arithmetic else b""
    size = {"colorspace": colorspace, "strict": False,
            "min_width": -(-frame.width // factor), "min_height": -(-frame.height // factor)}
    as_it_is = simplejpeg.decode_jpeg(body + b"\xff\xd9", **size)
    height, width = as_it_is.shape[:2]
    shape = (-(-height // down) * down, -(-width // across) * across)

    def first_reached(ending: bytes) -> tuple[int, int]:
        """The first block, in the order the scan codes them (MCU by MCU, or a component's
        blocks row by row), that the fillers after ENDING reach (the grid's size where none
        does), and the grid's blocks across."""
        reached = np.zeros(shape, dtype=bool)
        for filler in _FILLERS:
            filled = simplejpeg.decode_jpeg(body + ending + filler * 8192 + b"\xff\xd9", **size)
            reached[:height, :width] |= (cv2.absdiff(filled, as_it_is) > 2).reshape(
                height, width, -1).any(axis=2)
        grid = reached.reshape(shape[0] // down, down, -1, across).any(axis=(1, 3))
        found = np.flatnonzero(grid.ravel())
        return (int(found[0]) if found.size else grid.size), grid.shape[1]

    first, columns = first_reached(zeros)
    blocks = shape[0] // down * columns
    if first < blocks and frame.arithmetic and _flat_past_data(body, frame, colorspace,
                                                                divmod(first, columns)):
        first = blocks
    if frame.restarts:
        # Cut where a restart interval ends, the data's next bytes are taken for the next
        # interval's only once its restart marker comes: with none, filler reached no block,
        # and a JPEG of restart intervals (cameras write them) cut at one's end was taken,
        # its lost part grey (probe reprobe30). A whole file's last interval ends the picture,
        # so any block reached after the marker is lost, whatever its colour.
        first = min(first, first_reached(zeros + _next_restart(body, frame.coded_start))[0])
    # from the first block the filler reached, all are lost
    return (blocks - first) / blocks


def _next_restart(body: bytes, coded_start: int) -> bytes:
    """The restart marker that follows the last one in the scan's coded data (RST0 first,
    then RST1 to RST7 in turn)."""
    markers = re.findall(rb"\xff([\xd0-\xd7])", body[coded_start:])
    return bytes((0xFF, 0xD0 + (markers[-1][0] - 0xD0 + 1) % 8 if markers else 0xD0))


def _flat_past_data(body: bytes, frame: _JpegFrame, colorspace: str,
                    first: tuple[int, int]) -> bool:
    """Whether an arithmetic-coded scan's blocks from FIRST (its row and column in the grid of
    the scan's blocks: the first the filler reached) to the picture's end are one flat colour
    as its data decodes: what the zeros past a whole file's data give, and not a cut's.
    The arithmetic encoder codes a block the same as the one before (its mean unchanged, no
    detail) in a small fraction of a bit where a run of them makes that the likely case, and
    the bits of such a run are zeros, which it drops with the rest at the end of its data: a
    whole file whose last part is one colour (a white border, a wall) has that part decoded
    from the zeros its decoder reads past the data, and filler after any number of them
    rewrites some of it (a whole photo whose lower part was white was refused as "the bottom
    63% of it is missing", 24 of 576 whole files, probe reprobe28). A cut file's lost part is
    decoded from those zeros too, which its coder's state turns into blocks of changing colour
    and detail (mean differences of 85 levels from the lost picture, probe reprobe27): not one
    colour, so lost. A file cut where its picture is one colour, whose zeros repeat that colour
    to the end, is taken: its lost part cannot be told from a whole file's flat end (its bytes
    are one), and where the picture did go on flat nothing visible is lost.
    Decoded with its quantisation steps rewritten (_steps_to_show), at half of each side (a
    block 4 x 4 pixels, its detail shown, which an eighth does not), colour not blended across
    blocks (fast upsampling: a blend with the row of blocks above a flat part's first made it
    not flat)."""
    row, column = first
    across, down = (side // 2 for side in frame.block_pixels(frame.scans[-1]))
    half = simplejpeg.decode_jpeg(_steps_to_show(body) + b"\xff\xd9", colorspace=colorspace,
                                  strict=False, fastupsample=True,
                                  min_width=-(-frame.width // 2), min_height=-(-frame.height // 2))
    half = half.reshape(half.shape[0], half.shape[1], -1)
    parts = [part.reshape(-1, half.shape[2]) for part in
             (half[row * down:(row + 1) * down, column * across:], half[(row + 1) * down:])]
    pixels = np.concatenate(parts)
    return bool(np.all(pixels.max(axis=0).astype(np.int16) - pixels.min(axis=0)
                       <= _FLAT_SPREAD))


def _steps_to_show(data: bytes) -> bytes:
    """A JPEG with every quantisation table's steps rewritten so that a block's decoded pixels
    show its coefficients themselves: each block's mean (DC) at a step of 1, an eighth of a
    level, so no coded mean reaches black or white (-1024 to 1023 span 0 to 255), and its
    detail at 255, so any shows. Decoded with its own steps, a cut's zeros that lower the mean
    block by block turned black and stayed black, one colour from the first block the filler
    reached (a photo cut at a quarter taken with its face lost, probe reprobe28's sweep)."""
    steps = bytearray(data)
    for marker, segment, at in _jpeg_segments(data):
        if marker == 0xDA:
            break
        if marker != 0xDB:
            continue
        offset = 0
        while offset < len(segment):
            size = 2 if segment[offset] >> 4 else 1  # Pq: 16-bit steps, or 8-bit
            if offset + 1 + 64 * size > len(segment):
                break
            table = at + 4 + offset + 1
            steps[table:table + 64 * size] = (b"\x00\x01" + b"\x00\xff" * 63 if size == 2
                                              else b"\x01" + b"\xff" * 63)
            offset += 1 + 64 * size
    return bytes(steps)


# A marker in a JPEG's entropy-coded data: 0xFF then neither a stuffed 0x00, a restart
# marker, nor another fill byte.
_MARKER_IN_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
# Start of frame, progressive: Huffman-, arithmetic-, differentially coded
_PROGRESSIVE_FRAMES = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
# Start of frame, arithmetic-coded (0xCC is DAC, a table of them)
_ARITHMETIC_FRAMES = frozenset({0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, bytes, int]]:
    """A JPEG's marker segments after its start (SOI), in order: (marker, its payload; empty
    for a marker without one, the marker's offset), a scan's (SOS, FF DA) followed by the
    segment after its coded data; to the end marker (EOI, yielded) or as far as the bytes
    read as segments (the last one's payload cut short where the data is)."""
    at, end = 2, len(data)
    while at + 2 <= end:
        if data[at] != 0xFF:
            return
        marker = data[at + 1]
        if marker == 0xFF:  # a fill byte before the marker
            at += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD9:  # no length
            yield marker, b"", at
            if marker == 0xD9:
                return
            at += 2
            continue
        length = int.from_bytes(data[at + 2:at + 4], "big")
        yield marker, data[at + 4:at + 2 + length], at
        at += 2 + length
        if marker == 0xDA:  # past the scan's coded data
            found = _MARKER_IN_SCAN.search(data, at)
            if found is None:
                return
            at = found.start()


def _sof(marker: int) -> bool:
    return 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC)


def _arithmetic(data: bytes) -> bool:
    """Whether a JPEG's frame is arithmetic-coded (read up to its frame header only)."""
    return next((marker in _ARITHMETIC_FRAMES for marker, _, _ in _jpeg_segments(data)
                 if _sof(marker) or marker == 0xDA), False)


class _Scan(NamedTuple):
    components: list[int]  # their ids
    first: int  # its first and last coefficient (spectral selection, 0 to 63)
    last: int
    high: int  # successive approximation: Ah (0: a first pass) and Al
    low: int

    @property
    def refines(self) -> bool:
        return self.high > 0


class _JpegFrame(NamedTuple):
    """A JPEG's frame and the scans whose header its data holds."""

    progressive: bool
    arithmetic: bool
    width: int
    height: int
    components: dict[int, tuple[int, int]]  # id: its sampling factors, across and down
    scans: list[_Scan]
    coded_end: int  # where the last scan's coded data ends, or the data does
    coded_start: int  # where the last scan's coded data begins
    restarts: bool  # the last scan's data comes in restart intervals (a DRI of 1 or more)

    def block_pixels(self, scan: _Scan) -> tuple[int, int]:
        """The pixels across and down of the picture a block of SCAN covers: an MCU where it
        holds several components, else the component's block (of one component, 8 x 8)."""
        across = max((h for h, _ in self.components.values()), default=1)
        down = max((v for _, v in self.components.values()), default=1)
        if len(self.components) <= 1:
            return 8, 8
        if len(scan.components) > 1:
            return 8 * across, 8 * down
        h, v = self.components.get(scan.components[0], (across, down))
        return 8 * across // max(1, h), 8 * down // max(1, v)


def _jpeg_frame(data: bytes) -> _JpegFrame:
    progressive = arithmetic = False
    width = height = 0
    components: dict[int, tuple[int, int]] = {}
    scans: list[_Scan] = []
    coded_end = coded_start = len(data)
    restarts = False
    in_scan = False  # the last segment read was a scan's header: its coded data follows
    for marker, segment, at in _jpeg_segments(data):
        if in_scan:
            coded_end, in_scan = at, False
        if marker == 0xDD and len(segment) >= 2:  # DRI: MCUs per restart interval, 0 none
            restarts = int.from_bytes(segment[:2], "big") > 0
        if _sof(marker) and len(segment) >= 6:
            progressive = marker in _PROGRESSIVE_FRAMES
            arithmetic = marker in _ARITHMETIC_FRAMES
            height, width = int.from_bytes(segment[1:3], "big"), int.from_bytes(segment[3:5],
                                                                                "big")
            components = {c: (f >> 4 or 1, f & 15 or 1) for c, f in
                          zip(segment[6::3][:segment[5]], segment[7::3][:segment[5]],
                              strict=False)}
        elif marker == 0xDA and segment:
            count = segment[0]
            tail = segment[1 + 2 * count:4 + 2 * count]
            if len(tail) == 3:
                scans.append(_Scan(list(segment[1:1 + 2 * count:2]), tail[0], tail[1],
                                   tail[2] >> 4, tail[2] & 0x0F))
                coded_end, in_scan = len(data), True
                coded_start = at + 2 + len(segment) + 2
    return _JpegFrame(progressive, arithmetic, width, height, components, scans, coded_end,
                      coded_start, restarts)


def _scans_missing(frame: _JpegFrame) -> bool:
    """Whether a JPEG was cut before its last scans: a component with no scan at all (a
    sequential JPEG may code each in a scan of its own), and in a progressive one a
    coefficient whose successive approximation began (a scan of it with Al above 0) and that
    no scan in it finishes (Al 0), or a component none of whose detail (coefficients 1 to 63)
    came at all. A scan script that never sends some coefficients is the encoder's choice,
    not a cut (one sending detail 1 to 10 only was refused whole, probe reprobe25); cut in its
    last scan, a file lost what _lost_share tells, or a bit of some blocks' detail."""
    begun: set[tuple[int, int]] = set()
    finished: set[tuple[int, int]] = set()
    detailed: set[int] = set()
    for scan in frame.scans:
        for c in scan.components:
            for k in range(scan.first, scan.last + 1):
                (finished if scan.low == 0 else begun).add((c, k))
            if scan.last >= 1:
                detailed.add(c)
    return bool(begun - finished) or not set(frame.components) <= detailed


def _cmyk_cut_closed(data: bytes, source: str) -> bytes | None:
    """A CMYK JPEG cut short judged as an RGB one is (_decode_jpeg_checked): refused where it
    lost too much, else its data up to the cut closed by an end marker, for Pillow to decode
    (it decodes CMYK itself: libjpeg-turbo gives no BGR of it), its last blocks filled in as
    an RGB one's are: without the marker Pillow refused it, "image file is truncated (6 bytes
    not processed)", where the same cut of an RGB JPEG was taken. None: whole, or another
    complaint, left to Pillow as for RGB. libjpeg-turbo decodes it to CMYK at its smallest
    scale (an eighth of each side: every coefficient is still read, so a cut shows) to tell."""
    try:
        simplejpeg.decode_jpeg(data, colorspace="CMYK", strict=True, min_width=1, min_height=1)
    except ValueError as exc:
        if not _cut_short(exc):
            return None
        _refuse_if_cut_too_short(data, "CMYK", source, exc)
        return data[:_jpeg_frame(data).coded_end].rstrip(b"\xff") + b"\xff\xd9"
    if _arithmetic(data):
        _refuse_if_cut_too_short(data, "CMYK", source)
    return None


# ISO base media file brands of still images (AVIF, HEIC/HEIF): "ftyp" at byte 4, brand at 8
_HEIF_BRANDS = {b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx",
                b"mif1", b"msf1"}


# The first bytes of the formats pgface reads, to say a file that starts as one is broken
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"),
               (b"GIF89a", "GIF"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))


# Image formats Pillow has plugins for that pgface does not open (READ_FORMATS), to say so
_UNREAD_SIGNATURES = ((b"%!PS", "PostScript (EPS)"), (b"\xc5\xd0\xd3\xc6", "PostScript (EPS)"),
                      (b"%PDF", "PDF"), (b"8BPS", "Photoshop (PSD)"),
                      (b"\x00\x00\x01\x00", "Windows icon (ICO)"),  # (a cursor's is a TGA's)
                      (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"), (b"\xffO\xffQ", "JPEG 2000"),
                      (b"qoif", "QOI"), (b"DDS ", "DirectDraw surface (DDS)"),
                      (b"SIMPLE  =", "FITS"), (b"icns", "macOS icon (ICNS)"))
# Formats whose signature is too short to trust alone (probe http19: each was "not an image
# (unrecognised format)"): a PCX's first byte 0x0A is any text's newline, so its version (0 to
# 5), encoding (1, run-length) and bits per pixel are checked too; an SGI's 0x01DA, its storage
# (0 or 1) and bytes per channel (1 or 2); an XBM is C text, its width and height #defines.
_PCX_VERSIONS, _PCX_BITS = frozenset({0, 2, 3, 4, 5}), frozenset({1, 2, 4, 8})
_XBM_HEAD = re.compile(rb"\s*#define[ \t]+\S*_width[ \t]+[0-9]+[\r\n]+"
                       rb"#define[ \t]+\S*_height[ \t]+[0-9]+[\r\n]")
# A TGA has no signature at its start; a TGA 2.0 file ends with this footer (its header's
# colour map type, image type and depth checked too: any file may end so)
_TGA_FOOTER = b"TRUEVISION-XFILE.\0"
_TGA_TYPES, _TGA_DEPTHS = frozenset({1, 2, 3, 9, 10, 11}), frozenset({8, 15, 16, 24, 32})
# An MSP's key ("DanM", "LinS") is text's too ("DanM is my name"): its header's 16 words XOR
# to 0 (its checksum) and its sides are not 0. An IM is text, its type and its size lines.
_MSP_KEYS = (b"DanM", b"LinS")
_IM_HEAD = re.compile(rb"Image type: [^\r\n]+\r?\n(?:[^\r\n]*\r?\n)*?Image size \(x\*y\): \d+\*\d+")


def _msp(data: bytes) -> bool:
    if data[:4] not in _MSP_KEYS or len(data) < 32:
        return False
    words = struct.unpack("<16H", data[:32])
    checksum = 0
    for word in words:
        checksum ^= word
    return checksum == 0 and words[2] > 0 and words[3] > 0


def _unread_kind(data: bytes) -> str | None:
    """The format of a file Pillow could open but pgface does not (READ_FORMATS), or None."""
    known = next((kind for magic, kind in _UNREAD_SIGNATURES if data.startswith(magic)), None)
    if known:
        return known
    if (data[:1] == b"\x0a" and len(data) >= 128 and data[1] in _PCX_VERSIONS and data[2] == 1
            and data[3] in _PCX_BITS):
        return "PCX"
    if data[:2] == b"\x01\xda" and len(data) >= 512 and data[2] in (0, 1) and data[3] in (1, 2):
        return "Silicon Graphics (SGI)"
    if _XBM_HEAD.match(data[:512]):
        return "X11 bitmap (XBM)"
    if (data.endswith(_TGA_FOOTER) and len(data) > 44 and data[1] in (0, 1)
            and data[2] in _TGA_TYPES and data[16] in _TGA_DEPTHS):
        return "Truevision TGA"
    if _msp(data):
        return "Microsoft Paint (MSP)"
    if data.startswith(b"Image type:") and _IM_HEAD.match(data[:1024]):
        return "IFUNC Image Memory (IM)"
    return None


def _a(kind: str) -> str:
    """KIND with its article: "a PCX", "an X11 bitmap", "an IFUNC ..."."""
    return f"{'an' if kind[:1] in 'AEIOX' else 'a'} {kind}"


def _open_formats() -> list[str]:
    """READ_FORMATS as Pillow knows them, HEIF left out: _open_image opens it itself (where an
    application registered pillow_heif's opener too, the same class)."""
    Image.init()
    return [name for name in READ_FORMATS if name != "HEIF" and name in Image.OPEN]


# PNG chunks of metadata pgface never uses whose compressed text Pillow refuses to inflate past
# PngImagePlugin.MAX_TEXT_CHUNK (1 MB), calling the whole file unreadable: XMP in an iTXt
# (Photoshop's DocumentAncestors lists grow past it), a zTXt comment, a printer's ICC profile.
_PNG_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")


def _png_without_large_metadata(data: bytes, every_text: bool) -> bytes | None:
    """The PNG without its text and ICC profile chunks that inflate past what Pillow reads
    (every text chunk too with every_text: their total was over its MAX_TEXT_MEMORY), a cut
    at its end kept (said as a cut: without the chunk, it was said as the chunk's, probe
    reprobe31); None when it is no PNG or none was dropped."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    kept, at, dropped = [data[:8]], 8, False
    while at + 12 <= len(data):
        (length,), kind = struct.unpack(">I", data[at:at + 4]), data[at + 4:at + 8]
        end = at + 12 + length
        if end > len(data):
            break
        if (every_text and kind in _PNG_TEXT_CHUNKS) or _inflates_past_limit(
                kind, data[at + 8:end - 4]):
            dropped = True
        else:
            kept.append(data[at:end])
        at = end
        if kind == b"IEND":
            return b"".join(kept) if dropped else None
    kept.append(data[at:])  # cut short: as it is, for Pillow to say so
    return b"".join(kept) if dropped else None


def _inflates_past_limit(kind: bytes, body: bytes) -> bool:
    """Whether a zTXt, iTXt or iCCP chunk's compressed part inflates past Pillow's limit."""
    if kind not in (b"zTXt", b"iTXt", b"iCCP"):
        return False
    keyword, _, rest = body.partition(b"\0")
    if kind == b"iTXt":  # compression flag, method, language \0, translated keyword \0, text
        if rest[:1] != b"\x01":
            return False
        rest = rest[2:].split(b"\0", 2)[-1]
    else:  # compression method, then the compressed text or profile
        rest = rest[1:]
    inflater = zlib.decompressobj()
    try:
        inflater.decompress(rest, PngImagePlugin.MAX_TEXT_CHUNK)
    except zlib.error:
        return False
    return bool(inflater.unconsumed_tail)


def _kind_by_signature(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return next((kind for magic, kind in _SIGNATURES if data.startswith(magic)), None)


# The media type of each format pgface reads, by its first bytes (FORMAT_SUFFIXES' formats;
# an MPO is a JPEG to any browser). A BigTIFF's is a TIFF's too.
_MEDIA_SIGNATURES = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"),
                     (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"),
                     (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"),
                     (b"II+\x00", "image/tiff"), (b"MM\x00+", "image/tiff"),
                     (b"BM", "image/bmp"))
_NETPBM_TYPES = {b"1": "image/x-portable-bitmap", b"4": "image/x-portable-bitmap",
                 b"2": "image/x-portable-graymap", b"5": "image/x-portable-graymap",
                 b"3": "image/x-portable-pixmap", b"6": "image/x-portable-pixmap"}


def media_type(data: bytes) -> str:
    """The Content-Type of a photo file, by its first bytes, as decode_photo tells them apart
    (the name tells nothing sure: a BMP, GIF or WebP named .jpg was served as image/jpeg, probe
    http19); application/octet-stream for bytes of no format pgface reads."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if _is_heif_family(data):
        return {b"avif": "image/avif", b"avis": "image/avif", b"mif1": "image/heif",
                b"msf1": "image/heif"}.get(data[8:12], "image/heic")
    if data[:1] == b"P" and data[1:2] in _NETPBM_TYPES and data[2:3].isspace():
        return _NETPBM_TYPES[data[1:2]]
    return next((kind for magic, kind in _MEDIA_SIGNATURES if data.startswith(magic)),
                "application/octet-stream")


# The suffix of a kept upload's file by its media type, as FORMAT_SUFFIXES names the file of a
# photo decoded: for bytes already analysed, not decoded again
_SUFFIXES_OF_MEDIA_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp",
                            "image/gif": ".gif", "image/tiff": ".tif", "image/bmp": ".bmp",
                            "image/heic": ".heic", "image/heif": ".heic", "image/avif": ".avif",
                            "image/x-portable-graymap": ".ppm", "image/x-portable-pixmap": ".ppm"}


def suffix_of(data: bytes) -> str:
    """The file name suffix of a photo's bytes (".img" for none pgface reads)."""
    return _SUFFIXES_OF_MEDIA_TYPES.get(media_type(data), ".img")


def _is_heif_family(data: bytes) -> bool:
    return data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS


def _decode_jpeg_scaled(data: bytes, width: int, height: int, factor: int,
                        strict: bool = True) -> np.ndarray:
    """A JPEG of that stored size decoded at exactly 1/factor (libjpeg rounds sides up);
    strict: libjpeg-turbo's warnings (a cut, stray bytes) are a ValueError."""
    if factor == 1:
        return simplejpeg.decode_jpeg(data, colorspace="BGR", strict=strict)
    # simplejpeg picks the smallest scale whose sides reach these minimums: ours exactly.
    return simplejpeg.decode_jpeg(data, colorspace="BGR", strict=strict,
                                  min_width=-(-width // factor), min_height=-(-height // factor))


def _decode_deep_colour(data: bytes, img: Image.Image, source: str) -> np.ndarray | None:
    """A PNG, TIFF or PPM of 16 bits per colour channel through OpenCV, scaled by its real
    range and made upright; None for any other image. Pillow keeps only the high byte of each
    value, so a photo whose values use only the bottom of the 16 bits (10-, 12- and 14-bit
    camera data) came out black (a PNG's grey with an alpha channel too: Pillow opens it as
    8-bit RGBA, past the greyscale path's scaling)."""
    tiff = _tiff_deep_colour(img)
    if not (tiff or _png_deep_colour(data, img) or _ppm_deep_colour(img)):
        return None
    # the first page of a TIFF of several, as Pillow's. IMREAD_UNCHANGED keeps 16 bits and
    # ignores a PNG's EXIF orientation (applied below), but OpenCV's TIFF reader applies the
    # TIFF's own Orientation tag (all eight: the same pixels as Pillow's upright photo)
    if tiff and img.tag_v2.get(284, 1) == 2:  # PlanarConfiguration: one plane per channel
        pixels = _planar_tiff_16(data, img, source)
    else:
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.dtype != np.uint16 or pixels.ndim != 3:
        return None  # a TIFF compression OpenCV's libtiff lacks: Pillow's 8 bits, as before
    # A 4th sample is alpha in a PNG; in a TIFF only where ExtraSamples says so: 0 is some
    # other value (a probe's, all 0, turned the photo white), 1 alpha the colour is already
    # multiplied by, 2 alpha it is not
    alpha_kind = (_tiff_alpha(img) if tiff else 2) if pixels.shape[2] == 4 else 0
    bgr = _deep_to_bgr(pixels, alpha_kind)
    del pixels  # before turning: the 16-bit pixels are the largest array here
    return bgr if tiff else _upright(bgr, img)


def _deep_to_bgr(pixels: np.ndarray, alpha_kind: int) -> np.ndarray:
    """16-bit BGR(A) pixels scaled by their range into 8-bit BGR, transparent pixels white,
    a band of rows at a time: the whole photo's float32 copies (colour, alpha and each step
    between) took 5.6 GB for a 100 MP RGBA PNG, against its 0.8 GB of 16-bit pixels."""
    height, width = pixels.shape[:2]
    rows = max(1, BAND_PIXELS // max(1, width))
    starts = range(0, height, rows)
    # by bands too: NumPy's max of the whole colour view (every 4th value skipped) took GBs
    top = _range_top(int(_brightest((pixels[y:y + rows, :, :3] for y in starts),
                                    height * width * 3)))
    bgr = np.empty((height, width, 3), np.uint8)
    for y in starts:
        colour = pixels[y:y + rows, :, :3].astype(np.float32)
        if alpha_kind:  # transparent pixels become white, as for 8-bit images
            alpha = pixels[y:y + rows, :, 3:].astype(np.float32) / 65535.0
            colour = (colour if alpha_kind == 1 else colour * alpha) + top * (1.0 - alpha)
        bgr[y:y + rows] = np.clip(colour * (255.0 / top) + 0.5, 0, 255)  # cast as astype's
    return bgr


_SAMPLE_FORMATS = {1: "unsigned integer", 2: "signed integer", 3: "floating-point",
                   4: "undefined", 5: "complex integer", 6: "complex floating-point"}


def _tiff_tags(data: bytes) -> TiffImagePlugin.ImageFileDirectory_v2 | None:
    """The first IFD of a TIFF, read as Pillow reads it; None for another file, or a TIFF
    whose IFD cannot be read (a corrupt one)."""
    if data[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    try:
        ifd = TiffImagePlugin.ImageFileDirectory_v2(data[:8])
        stream = io.BytesIO(data)
        stream.seek(ifd.next)
        ifd.load(stream)  # a "Corrupt EXIF data" warning, and a None below
        ifd.get(258), ifd.get(339)  # noqa: B018 - values read now, not when asked for
    except Exception:  # noqa: BLE001 - any failure to read the IFD: a corrupt file
        return None
    return ifd


def _tiff_values(tags: TiffImagePlugin.ImageFileDirectory_v2, tag: int,
                 default: tuple[int, ...]) -> tuple[int, ...]:
    try:
        value = tags.get(tag, default)
    except Exception:  # noqa: BLE001 - a value that cannot be read: as if absent
        return default
    return tuple(value) if isinstance(value, tuple) else (value,)


def _tiff_sample_format(tags: TiffImagePlugin.ImageFileDirectory_v2) -> str | None:
    """What a TIFF Pillow could not open holds, when its first IFD says samples other than 8-
    or 16-bit unsigned integers ("32-bit floating-point RGB samples"); else None."""
    bits, formats = _tiff_values(tags, 258, (1,)), _tiff_values(tags, 339, (1,))
    if not bits or (set(formats) <= {1} and set(bits) <= {1, 2, 4, 8, 16}):
        return None
    kind = _SAMPLE_FORMATS.get(formats[0], f"sample format {formats[0]}")
    colour = _TIFF_COLOURS.get(tags.get(262), "")
    return f"{bits[0]}-bit {kind} {colour} samples".replace("  ", " ")


_TIFF_COLOURS = {0: "greyscale", 1: "greyscale", 2: "RGB", 5: "CMYK"}
_EXTRA_SAMPLES = {0: "unspecified", 1: "associated alpha", 2: "alpha"}


def _tiff_layout(tags: TiffImagePlugin.ImageFileDirectory_v2) -> str | None:
    """What a TIFF of 8- or 16-bit samples Pillow could not open holds, when it has samples
    beyond its colour ("16-bit greyscale samples and 1 extra sample per pixel (alpha)"): Pillow
    has no mode for 16-bit samples with alpha, nor for some planar ones; else None."""
    bits = _tiff_values(tags, 258, (1,))
    colours = {0: 1, 1: 1, 2: 3}.get(tags.get(262))
    samples = int(tags.get(277, 1))
    if not colours or samples <= colours:
        return None
    extra = _tiff_values(tags, 338, ())
    kinds = ", ".join(_EXTRA_SAMPLES.get(kind, f"kind {kind}") for kind in extra)
    count = samples - colours
    planes = ", stored one plane per channel" if tags.get(284, 1) == 2 else ""
    return (f"{bits[0]}-bit {_TIFF_COLOURS[tags.get(262)]} samples and {count} extra "
            f"sample{'s' if count > 1 else ''} per pixel" + (f" ({kinds})" if kinds else "")
            + planes)


def _unread_tiff(source: str, layout: str) -> ImageError:
    return ImageError(source, f"not a format pgface reads (a TIFF of {layout}, which neither "
                              f"Pillow nor OpenCV reads)")


def _tiff_planar_extra(tags: TiffImagePlugin.ImageFileDirectory_v2) -> bool:
    """An 8-bit RGB TIFF stored one plane per channel with a 4th sample that is associated
    alpha or unspecified: Pillow opens neither (no raw mode for the first, no mode for the
    second), and OpenCV reads both as BGRA, exactly (with unassociated alpha it does not,
    and Pillow reads that)."""
    return (tags.get(284, 1) == 2 and tags.get(262) == 2 and int(tags.get(277, 1)) == 4
            and _tiff_values(tags, 258, (1,)) == (8,) * 4
            and set(_tiff_values(tags, 339, (1,))) == {1}
            and _tiff_values(tags, 338, ()) in ((0,), (1,)))


def _photo_of_tiff_by_opencv(data: bytes, tags: TiffImagePlugin.ImageFileDirectory_v2,
                             source: str, max_pixels: int, sha256: bytes | None) -> Photo:
    """A _tiff_planar_extra TIFF decoded by OpenCV (which applies its Orientation tag): the
    4th sample dropped where it is unspecified, the colour composited on white where it is
    associated alpha (the colour already multiplied by it)."""
    width, height = int(tags.get(256, 0)), int(tags.get(257, 0))
    _check_pixels(source, width, height, max_pixels)
    _check_tiff_data(data, tags, source)
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 4:
        raise ImageError(source, "corrupt or truncated image (an 8-bit TIFF stored one plane "
                                 "per channel whose image data cannot be decoded)")
    if _tiff_values(tags, 338, ()) == (1,):
        bgr = cv2.add(pixels[:, :, :3], cv2.cvtColor(255 - pixels[:, :, 3], cv2.COLOR_GRAY2BGR))
    else:
        bgr = np.ascontiguousarray(pixels[:, :, :3])
    return Photo(source=source, sha256=sha256 or hashlib.sha256(data).digest(),
                 size_bytes=len(data), image=bgr, warning=uniform_warning(bgr), format="TIFF")


@functools.cache
def _quiet_libtiff() -> None:
    """libtiff writes its errors on stderr ("ZIPDecode: Decoding error at scanline 200",
    "Using code not yet in table.") around pgface's one line per file, and Pillow offers no
    way to route them: its decoder only sets libtiff's warning handlers to none, before each
    decode. Its error handlers are set to none likewise, in pgface's own processes alone
    (quiet_decoders), in the libtiff Pillow's _imaging module is linked with (not OpenCV's
    own, whose messages its log level silences); the failure itself still reaches pgface, as
    Pillow's "decoder error -2". Where libtiff is built into Pillow unexported (Windows),
    nothing changes."""
    import ctypes

    from PIL import _imaging

    try:
        pillow = ctypes.CDLL(_imaging.__file__)  # its symbols, then its libraries' (libtiff)
        for name in ("TIFFSetErrorHandler", "TIFFSetErrorHandlerExt"):
            setter = getattr(pillow, name)
            setter.argtypes, setter.restype = [ctypes.c_void_p], ctypes.c_void_p
            setter(None)
    except (OSError, AttributeError):  # no such library or function: libtiff keeps printing
        pass


def _check_tiff_data(data: bytes, tags: TiffImagePlugin.ImageFileDirectory_v2,
                     source: str) -> None:
    """A TIFF whose strips or tiles run past the end of the file is refused before decoding:
    libtiff printed its own read errors on stderr and the reason was "decoder error -2"."""
    offsets = _tiff_values(tags, 273, ()) or _tiff_values(tags, 324, ())
    counts = _tiff_values(tags, 279, ()) or _tiff_values(tags, 325, ())
    if not offsets or not counts:
        return
    end = max(int(at) + int(count) for at, count in zip(offsets, counts, strict=False))
    if end > len(data):
        raise ImageError(source, f"corrupt or truncated image (a TIFF file cut short: its "
                                 f"image data runs to byte {end:,}, the file has "
                                 f"{len(data):,})")


def _planar_tiff_16(data: bytes, img: Image.Image, source: str) -> np.ndarray:
    """A 16-bit TIFF stored one plane per channel (PlanarConfiguration 2, as scanners and
    ImageMagick's -interlace plane write) as height x width x BGR(A) uint16. OpenCV's reader
    took such a file's planes as interleaved samples (three grey copies of the photo across
    its top third) and Pillow's unpacks 16-bit planes a byte at a time, so each plane is read
    by OpenCV as a 16-bit greyscale TIFF of its own: an IFD naming that plane's strips or
    tiles, appended to the file's bytes, which stay as they are (whatever their compression
    and predictor, and the Orientation tag applied to each plane alike). Never None: neither
    Pillow's path nor OpenCV's whole-file read is right for such a file."""
    tags = img.tag_v2
    tiled = 324 in tags
    offsets, counts = tags.get(324 if tiled else 273), tags.get(325 if tiled else 279)
    samples = int(tags.get(277, 1))
    channels = 4 if _tiff_alpha(img) else 3
    compression = tags.get(259, 1)
    if (data[:4] not in (b"II*\x00", b"MM\x00*") or not offsets or not counts
            or len(offsets) != len(counts) or len(offsets) % samples or samples < channels):
        raise ImageError(source, "a 16-bit TIFF stored one plane per channel whose layout "
                                 "pgface cannot read")
    order = "<" if data[:2] == b"II" else ">"
    per_plane = len(offsets) // samples
    common = [(256, 4, (tags[256],)), (257, 4, (tags[257],)), (258, 3, (16,)),
              (259, 3, (compression,)), (262, 3, (1,)), (277, 3, (1,)), (284, 3, (1,)),
              (339, 3, (1,))]
    common += [(tag, 3, (int(tags[tag]),)) for tag in (274, 317) if tag in tags]
    if tiled:
        common += [(322, 4, (tags[322],)), (323, 4, (tags[323],))]
    else:
        common += [(278, 4, (min(int(tags.get(278, tags[257])), tags[257]),))]
    buffer = bytearray(data) + b"\x00" * (len(data) % 2)
    starts = []
    for plane in range(channels):
        chosen = slice(plane * per_plane, (plane + 1) * per_plane)
        entries = [*common, (324 if tiled else 273, 4, tuple(offsets[chosen])),
                   (325 if tiled else 279, 4, tuple(counts[chosen]))]
        starts.append(len(buffer))
        buffer += _tiff_ifd(order, entries, len(buffer))
    pixels = None
    for plane, start in enumerate(starts):
        buffer[4:8] = struct.pack(order + "I", start)  # the first IFD: this plane's
        grey = cv2.imdecode(np.frombuffer(buffer, np.uint8), cv2.IMREAD_UNCHANGED)
        if grey is None or grey.dtype != np.uint16 or grey.ndim != 2:
            coded = OPENCV_TIFF_COMPRESSIONS.get(compression)
            if coded:  # a compression OpenCV reads, whose data would not decode
                raise ImageError(source, f"corrupt or truncated image (a 16-bit TIFF stored "
                                         f"one plane per channel whose {coded} image data "
                                         f"cannot be decoded)")
            raise ImageError(source, f"a 16-bit TIFF stored one plane per channel, in a "
                                     f"compression pgface cannot read ({compression})")
        if pixels is None:
            pixels = np.empty((*grey.shape, channels), np.uint16)
        # RGB(A) planes into OpenCV's BGR(A) order
        pixels[:, :, (2, 1, 0, 3)[plane]] = grey
    return pixels


# The TIFF compressions OpenCV's libtiff decodes 16-bit samples of (checked against its build:
# LZMA, Zstandard and WebP are not in it, and JPEG holds no 16-bit samples): a plane of one of
# these that does not decode is corrupt, not in a compression pgface lacks (a deflated file
# with damaged data was said to be "in a compression pgface cannot read (8)").
OPENCV_TIFF_COMPRESSIONS = {1: "uncompressed", 5: "LZW", 8: "deflated", 32946: "deflated",
                            32773: "PackBits"}


def _tiff_ifd(order: str, entries: list[tuple[int, int, tuple[int, ...]]], at: int) -> bytes:
    """A TIFF image file directory of ENTRIES (tag, type 3 SHORT or 4 LONG, values), to be
    written at byte AT, the values that do not fit in an entry right after it."""
    entries = sorted(entries)
    head = struct.pack(order + "H", len(entries))
    extra_at = at + 2 + 12 * len(entries) + 4
    body, extra = b"", b""
    for tag, kind, values in entries:
        packed = struct.pack(order + ("H" if kind == 3 else "I") * len(values), *values)
        if len(packed) <= 4:
            field = packed.ljust(4, b"\x00")
        else:
            field = struct.pack(order + "I", extra_at + len(extra))
            extra += packed
        body += struct.pack(order + "HHI", tag, kind, len(values)) + field
    return head + body + struct.pack(order + "I", 0) + extra


def _tiff_alpha(img: Image.Image) -> int:
    """A TIFF's first extra sample as alpha: 1 associated (premultiplied), 2 unassociated;
    0 where it is no alpha (ExtraSamples 0, unspecified) or there is none."""
    extra = _tiff_values(img.tag_v2, 338, ())
    return extra[0] if extra and extra[0] in (1, 2) else 0


def _png_deep_colour(data: bytes, img: Image.Image) -> bool:
    # IHDR: bit depth at byte 24, colour type at 25 (2: RGB, 4: grey + alpha, 6: RGBA;
    # OpenCV gives grey + alpha as BGRA)
    return (img.format == "PNG" and len(data) >= 26 and data[24] == 16
            and data[25] in (2, 4, 6))


def _ppm_deep_colour(img: Image.Image) -> bool:
    """A colour PPM whose maxval is 65535: Pillow scales it by that, so 10-bit values kept in
    16 bits were near black (probe hostile21); a smaller maxval is the range its values are
    meant in, which Pillow scales by already."""
    return (img.format == "PPM" and img.mode == "RGB" and bool(img.tile)
            and img.tile[0].args[-1] == 65535)


def _tiff_deep_colour(img: Image.Image) -> bool:
    """An RGB TIFF of unsigned 16-bit samples (not floats: SampleFormat 1 or unsaid)."""
    if img.format != "TIFF":
        return False
    tags = img.tag_v2
    bits = tags.get(258)  # BitsPerSample
    formats = tags.get(339, 1)  # SampleFormat
    return (tags.get(262) == 2  # PhotometricInterpretation: RGB
            and isinstance(bits, tuple) and len(bits) >= 3 and set(bits) == {16}
            and set(formats if isinstance(formats, tuple) else (formats,)) == {1})


def _range_top(brightest: int) -> int:
    """The top of the range an image's values were meant in: the smallest bit depth of 8 or
    more that holds its brightest value (10-, 12- and 14-bit data is often kept in 16 bits)."""
    return (1 << max(8, brightest.bit_length())) - 1


# One value in this many may lie above the range an image's values are judged to be meant in:
# a sensor's stuck pixel at 65535 in 10-bit data kept in 16 bits set the range to 16 bits, and
# the photo was shown near black, its faces unfound (probe hostile30). It is clipped instead.
STRAY_VALUES = 10_000


def _brightest(bands: Iterable[np.ndarray], count: int) -> float:
    """The brightest of COUNT values, given a band at a time, but for a stray few (one in
    STRAY_VALUES): of each band only its largest values are kept (its copy, where it is a
    view of some channels, gone before the next: all of them at once held the whole photo's
    colour again, probe reprobe31)."""
    keep = count // STRAY_VALUES + 1
    tops = []
    for band in bands:
        values = band.ravel()
        tops.append(values if values.size <= keep
                    else np.partition(values, values.size - keep)[-keep:].copy())
    values = np.concatenate(tops) if tops else np.zeros(1)
    if not values.size:  # bands of no values (a float image's, all NaN)
        return 0.0
    keep = min(keep, values.size)
    return float(np.partition(values, values.size - keep)[values.size - keep])


def _upright(bgr: np.ndarray, img: Image.Image) -> np.ndarray:
    """The pixels turned as the image's EXIF orientation says."""
    return _upright_by(bgr, _orientation(img))


def _orientation(img: Image.Image) -> int:
    orientation = _exif(img).get(ExifTags.Base.Orientation, 1)
    return orientation if orientation in _UPRIGHT else 1


# What Pillow raises for an EXIF block it cannot read: not TIFF data ("not a TIFF file"),
# cut short, offsets past its end
_UNREADABLE_EXIF = (SyntaxError, ValueError, TypeError, KeyError, IndexError, EOFError,
                    struct.error)


def _exif(img: Image.Image) -> Image.Exif:
    """A photo's EXIF, empty where its block cannot be read: its pixels are whole, and a PNG,
    WebP or HEIC whose EXIF was no TIFF data was refused as "corrupt or truncated image (not
    a TIFF file ...)", where a JPEG with the same block was read (probe dates33). A PNG's is
    looked for in the chunks after its image data too, so its pixels are read first, outside:
    their failure is the file's."""
    if img.format == "PNG" and "exif" not in img.info:
        img.load()
    try:
        exif = img.getexif()
        if not exif and img.format in ("JPEG", "MPO"):
            exif = _exif_of_app1(img)
        return exif
    except _UNREADABLE_EXIF:
        return Image.Exif()


def _exif_of_app1(img: Image.Image) -> Image.Exif:
    """The EXIF of a JPEG whose APP1 block Pillow passed over: its header `Exif\0` followed by
    a pad byte other than 0 (or none), which browsers and exiftool read. Its orientation was
    not applied, and the photo analysed upside down matched no one, where the web page
    showed it upright (probe hostile36)."""
    exif = Image.Exif()
    for marker, block in getattr(img, "applist", ()):
        if marker != "APP1" or block[:5] != b"Exif\0":
            continue
        start = next((at for at in (6, 5) if block[at:at + 2] in (b"II", b"MM")), None)
        if start is not None:
            exif.load(block[start:])
            break
    return exif


def _upright_by(bgr: np.ndarray, orientation: int) -> np.ndarray:
    for operation, code in _UPRIGHT.get(orientation, ()):
        if operation == "flip":
            bgr = cv2.flip(bgr, code)
        elif operation == "rotate":
            bgr = cv2.rotate(bgr, code)
        else:
            bgr = cv2.transpose(bgr)
    return bgr


_DEEP_GREY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def _to_bgr(img: Image.Image) -> np.ndarray:
    """A Pillow image of any mode as 8-bit BGR, converted a band of rows at a time into the
    result: the whole photo's copies (RGBA, a white background, the composite, RGB, the
    array) took 2.6 GB for a 100 MP RGBA PNG; each step is per pixel, so bands give the same
    pixels."""
    width, height = img.size
    rows = max(1, BAND_PIXELS // max(1, width))
    bands = [(y, min(height, y + rows)) for y in range(0, height, rows)]
    top = 0.0
    if img.mode == "F":
        top = _float_top(img, bands)
    elif img.mode in _DEEP_GREY_MODES:
        # 16-bit and 32-bit greyscale: scale by the range the values were meant in, not by
        # clipping at 255
        brightest = _brightest((np.asarray(img.crop((0, y0, width, y1))) for y0, y1 in bands),
                               width * height)
        top = float(_range_top(int(max(0.0, min(brightest, 2.0**32 - 1)))))
    bgr = np.empty((height, width, 3), np.uint8)
    for y0, y1 in bands:
        bgr[y0:y1] = _band_to_bgr(img.crop((0, y0, width, y1)), top)
    return bgr


def _float_top(img: Image.Image, bands: list[tuple[int, int]]) -> float:
    """The top of the range a float greyscale image's values were meant in, NaN and infinite
    values passed over (a masked edge of NaN, more than the stray few, made the photo black):
    1 for values in 0..1; for whole numbers, the range of the bit depth that holds them, as
    for integers; for any other values, their own brightest, the stray few above it clipped
    (an HDR export's highlights a little above 1.0 set the range to 255, and the photo was
    black; values up to 1e30 were clipped at 2**32, and it was white: probe hostile49)."""
    width = img.size[0]

    def finite() -> Iterator[np.ndarray]:
        for y0, y1 in bands:
            values = np.asarray(img.crop((0, y0, width, y1)))
            yield values[np.isfinite(values)]

    brightest = _brightest(finite(), width * img.size[1])
    if brightest <= 1.0:
        return 1.0
    if brightest < 2.0**32 and all(np.array_equal(band, np.floor(band)) for band in finite()):
        return float(_range_top(int(brightest)))
    return brightest


def _band_to_bgr(img: Image.Image, top: float) -> np.ndarray:
    if img.mode in _DEEP_GREY_MODES:
        values = np.asarray(img, dtype=np.float64)
        # NaN black, infinities the range's ends: cast to integers, NaN was a RuntimeWarning
        # on stderr ("invalid value encountered in cast") and an undefined level
        grey = np.clip(np.nan_to_num(values / top * 255.0, nan=0.0, posinf=255.0,
                                     neginf=0.0), 0, 255).astype(np.uint8)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent pixels become white, as a viewer shows them, not black.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    rgb = np.asarray(img if img.mode == "RGB" else img.convert("RGB"))
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def _taken_at(img: Image.Image) -> datetime | None:
    exif = _exif(img)  # outside: a PNG's pixels are read for it, and their failure is the file's
    try:
        value = exif.get_ifd(_EXIF_IFD).get(_EXIF_DATETIME_ORIGINAL)
        if isinstance(value, bytes):  # written as UNDEFINED, not ASCII: str() made it "b'...'"
            value = value.decode("ascii")
        return datetime.strptime(str(value).strip("\x00 "), "%Y:%m:%d %H:%M:%S") if value else None
    except (*_UNREADABLE_EXIF, AttributeError):
        return None


def _reduced_by_whole_factor(patch: np.ndarray, size: int) -> np.ndarray:
    """The patch averaged down by the largest whole factor that keeps it at least SIZE pixels
    a side (its edges trimmed evenly, by under a factor's pixels, to a multiple of it), so that
    what remains is under halving: a bilinear resize then loses no detail the thumbnail can
    show. OpenCV's area averaging by a whole factor is its fast path; its area resize to 112
    pixels from any other ratio took 0.30 ms a face on LFW and 1.06 ms on the shared photos'
    larger faces, this way 0.11 and 0.41 ms (docs/benchmarks-index-workers.md)."""
    height, width = patch.shape[:2]
    factor = min(height, width) // size if size > 0 else 1
    if factor < 2:
        return patch
    kept_h, kept_w = height - height % factor, width - width % factor
    top, left = (height - kept_h) // 2, (width - kept_w) // 2
    return cv2.resize(patch[top:top + kept_h, left:left + kept_w],
                      (kept_w // factor, kept_h // factor), interpolation=cv2.INTER_AREA)


def face_patch(image: np.ndarray, bbox: np.ndarray, margin: float = 0.25) -> np.ndarray:
    """The square around the face box with MARGIN of its side on each side, black beyond the
    photo's edges: what a thumbnail shows."""
    x1, y1, x2, y2 = (float(v) for v in bbox[:4])
    side = max(x2 - x1, y2 - y1) * (1 + 2 * margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    right, bottom = int(round(cx + side / 2)), int(round(cy + side / 2))
    h, w = image.shape[:2]
    pad = [max(0, -top), max(0, bottom - h), max(0, -left), max(0, right - w)]
    patch = image[max(0, top) : min(h, bottom), max(0, left) : min(w, right)]
    if patch.size == 0 or right <= left or bottom <= top:  # a box outside the image
        return np.zeros((1, 1, 3), dtype=np.uint8)
    if any(pad):
        patch = cv2.copyMakeBorder(patch, *pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    return patch


def face_crop_jpeg(image: np.ndarray, bbox: np.ndarray, size: int, margin: float = 0.25) -> bytes:
    """A square JPEG thumbnail of the face box with some context around it."""
    patch = _reduced_by_whole_factor(face_patch(image, bbox, margin), size)
    patch = cv2.resize(patch, (size, size), interpolation=cv2.INTER_LINEAR)
    ok, buf = cv2.imencode(".jpg", patch, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ValueError("JPEG encoding of a face crop failed")
    return buf.tobytes()


DISPLAY_SIDE = 2048  # the longest side of a photo as the web page shows it


def display_jpeg(data: bytes, source: str, max_bytes: int, max_pixels: int,
                 side: int = DISPLAY_SIDE) -> bytes:
    """The photo as pgface reads it (upright by its EXIF orientation, any format it decodes),
    as a JPEG any browser shows, at most `side` pixels on its longest side: browsers ignore
    a WebP's EXIF orientation, so boxes in pgface's pixels landed beside the faces on the
    photo they showed, and they show no HEIC, TIFF or PPM at all."""
    photo = decode_photo(data, source, max_bytes, max_pixels, keep_side=side)
    image = photo.image
    longest = max(image.shape[:2])
    if longest > side:
        scale = side / longest
        image = cv2.resize(image, (max(1, round(image.shape[1] * scale)),
                                   max(1, round(image.shape[0] * scale))),
                           interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 88])
    if not ok:
        raise ImageError(source, "cannot be encoded as a JPEG to show")
    return buf.tobytes()
