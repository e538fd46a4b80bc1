"""Decoding: EXIF orientation, colour modes, limits, and one clear error per bad file."""

from __future__ import annotations

import hashlib
import io
import os
import re
import struct
import subprocess
import sys
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps, TiffImagePlugin

from pgface import imaging
from pgface.errors import ContentError, ImageError
from pgface.imaging import (
    MAX_JPEG_SCANS,
    decode_photo,
    face_crop_jpeg,
    quiet_decoders,
    read_photo,
)
from pgface.models.analysis import FaceAnalyzer
from pgface.models.packs import sample_photos

LIMITS = {"max_bytes": 10_000_000, "max_pixels": 4_000_000}


def encode(img: Image.Image, fmt: str = "PNG", **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def tiff(samples: np.ndarray, planar: bool = False, extra: tuple[int, ...] = (),
         sample_format: int = 1, orientation: int = 1, deflate: bool = False,
         tags: tuple[tuple[int, int, tuple[int, ...]], ...] = (), photometric: int = 2,
         compression: int | None = None) -> bytes:
    """A little-endian RGB TIFF of SAMPLES (height x width x 3 colour samples and any EXTRA
    samples, ExtraSamples saying what each is), in one strip, or one a plane where PLANAR
    (PlanarConfiguration 2); deflated where DEFLATE; TAGS (tag, SHORT 3 or LONG 4, values)
    added. Pillow writes none of these, OpenCV no planes, orientation nor extra samples.
    PHOTOMETRIC 1: greyscale (one colour sample); COMPRESSION: the tag's value, whatever the
    data's."""
    height, width, count = samples.shape
    planes = [samples[:, :, i] for i in range(count)] if planar else [samples]
    strips = [np.ascontiguousarray(p, p.dtype.newbyteorder("<")).tobytes() for p in planes]
    strips = [zlib.compress(strip) for strip in strips] if deflate else strips
    def ifd(offsets: list[int]) -> bytes:  # the IFD, at byte 8, before the strips
        entries = [(256, 4, (width,)), (257, 4, (height,)),
                   (258, 3, (samples.dtype.itemsize * 8,) * count),
                   (259, 3, (compression or (8 if deflate else 1),)), (262, 3, (photometric,)),
                   (273, 4, tuple(offsets)),
                   (274, 3, (orientation,)), (277, 3, (count,)), (278, 4, (height,)),
                   (279, 4, tuple(map(len, strips))), (284, 3, (2 if planar else 1,)),
                   (339, 3, (sample_format,) * count), *([(338, 3, extra)] if extra else []),
                   *tags]
        extra_at = 8 + 2 + 12 * len(entries) + 4
        fields, values = b"", b""
        for tag, kind, numbers in sorted(entries):
            packed = struct.pack("<" + ("H" if kind == 3 else "I") * len(numbers), *numbers)
            if len(packed) > 4:
                packed, values = struct.pack("<I", extra_at + len(values)), values + packed
            fields += struct.pack("<HHI", tag, kind, len(numbers)) + packed.ljust(4, b"\0")
        return struct.pack("<H", len(entries)) + fields + b"\0\0\0\0" + values

    at = 8 + len(ifd([0] * len(strips)))
    offsets = [at + sum(map(len, strips[:i])) for i in range(len(strips))]
    return b"II*\0" + struct.pack("<I", 8) + ifd(offsets) + b"".join(strips)


def in_a_new_process(script: str) -> subprocess.CompletedProcess[str]:
    """SCRIPT run by a new Python, as an application that imports pgface: what a decode leaves
    of the process's state is seen there, where this process's is the tests' of pgface's own
    processes too (quiet_decoders). OpenCV's log level as OpenCV sets it (no OPENCV_LOG_LEVEL)."""
    env = {name: value for name, value in os.environ.items() if name != "OPENCV_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120)


def scaled(bgr16: np.ndarray, top: int) -> np.ndarray:
    """16-bit values as decode_photo scales them by the top of their range."""
    return np.clip(bgr16.astype(np.float32) * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)


def test_exif_orientation_is_applied() -> None:
    img = Image.new("RGB", (40, 20), (0, 0, 0))
    img.paste((255, 0, 0), (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: the viewer turns it 90 degrees clockwise
    photo = decode_photo(encode(img, "JPEG", exif=exif.tobytes(), quality=95), "r.jpg", **LIMITS)
    assert (photo.width, photo.height) == (20, 40)
    top_red, bottom_red = photo.image[5, 10, 2], photo.image[35, 10, 2]
    assert top_red > 200 and bottom_red < 60  # the red half is now on top


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_orientation_matches_pillow(orientation: int) -> None:
    # JPEGs decode with libjpeg-turbo and are turned upright with OpenCV; every EXIF
    # orientation must give exactly the pixels of Pillow's own decode and exif_transpose.
    rng = np.random.default_rng(orientation)
    img = Image.fromarray(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(img, "JPEG", exif=exif.tobytes(), quality=90)
    reference = ImageOps.exif_transpose(Image.open(io.BytesIO(data)).convert("RGB"))
    photo = decode_photo(data, "o.jpg", **LIMITS)
    assert photo.image.shape == (reference.height, reference.width, 3)
    difference = np.abs(photo.image[:, :, ::-1].astype(int) - np.asarray(reference).astype(int))
    assert difference.max() <= 2  # both libjpeg-turbo; only rounding may differ


@pytest.mark.parametrize("header", [b"Exif\x00\xff", b"Exif\x00"])
def test_an_exif_block_whose_header_pillow_passes_over_is_applied(header: bytes) -> None:
    """Probe hostile36: a JPEG whose APP1 header is `Exif\\0` and a pad byte other than 0
    (browsers and exiftool read it; Pillow passes it over) was analysed upside down, its face
    matching no one, where the web page showed it upright. Every way in turns it upright:
    its bytes, the reduced decoding of a large photo, and a Pillow image of it."""
    rng = np.random.default_rng(7)
    img = Image.fromarray(rng.integers(0, 256, (48, 80, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x0132] = "2021:05:06 07:08:09"  # a date in IFD0, read from the same block
    standard = encode(img, "JPEG", exif=exif.tobytes(), quality=90)
    at = standard.index(b"\xff\xe1")  # APP1, after JFIF's APP0
    assert standard[at + 4:at + 10] == b"Exif\x00\x00"
    end = at + 2 + struct.unpack(">H", standard[at + 2:at + 4])[0]
    block = header + standard[at + 10:end]
    padded = (standard[:at] + b"\xff\xe1" + struct.pack(">H", len(block) + 2) + block
              + standard[end:])
    assert Image.open(io.BytesIO(padded)).getexif().get(0x0112) is None  # Pillow passes it over
    reference = decode_photo(standard, "standard.jpg", **LIMITS)
    assert reference.image.shape[:2] == (80, 48)
    for photo in (decode_photo(padded, "padded.jpg", **LIMITS),
                  imaging.load_photo(Image.open(io.BytesIO(padded)), "padded", 10**8, 10**8)):
        assert photo.image.shape == reference.image.shape
        assert np.abs(photo.image.astype(int) - reference.image.astype(int)).max() <= 2
    assert decode_photo(padded, "padded.jpg", **LIMITS).taken_at == reference.taken_at
    reduced = [decode_photo(data, "r.jpg", **LIMITS, keep_side=20) for data in (standard, padded)]
    assert reduced[0].factor > 1 and reduced[1].factor == reduced[0].factor
    assert reduced[1].image.shape == reduced[0].image.shape
    assert np.abs(reduced[1].image.astype(int) - reduced[0].image.astype(int)).max() <= 2


def test_greyscale_and_cmyk_jpegs_become_bgr() -> None:
    grey = decode_photo(encode(Image.new("L", (16, 16), 90), "JPEG"), "g.jpg", **LIMITS)
    assert grey.image.shape == (16, 16, 3) and abs(int(grey.image[4, 4, 0]) - 90) <= 2
    # CMYK is not among libjpeg-turbo's conversions; Pillow decodes it.
    cmyk = decode_photo(encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG"),
                        "c.jpg", **LIMITS)
    blue, green, red = (int(v) for v in cmyk.image[4, 4])
    assert red > 200 and green < 60 and blue < 60


def test_greyscale_alpha_and_16_bit_become_bgr_uint8() -> None:
    grey = decode_photo(encode(Image.new("L", (8, 8), 128)), "g.png", **LIMITS)
    assert grey.image.shape == (8, 8, 3) and grey.image.dtype == np.uint8
    assert int(grey.image[0, 0, 0]) == 128

    rgba = Image.new("RGBA", (8, 8), (0, 0, 255, 0))  # fully transparent blue
    clear = decode_photo(encode(rgba), "a.png", **LIMITS)
    assert clear.image[0, 0].tolist() == [255, 255, 255]  # composited on white

    wide = Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16))
    deep = decode_photo(encode(wide), "16.png", **LIMITS)
    assert deep.image.dtype == np.uint8 and int(deep.image[0, 0, 0]) == 255


def test_not_an_image_names_file_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a photo")
    with pytest.raises(ImageError) as info:
        read_photo(path, **LIMITS)
    assert str(path) in str(info.value) and "not an image" in str(info.value)


def test_truncated_jpeg_is_reported(tmp_path: Path) -> None:
    data = encode(Image.new("RGB", (300, 300), (10, 200, 30)), "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated"):
        read_photo(path, **LIMITS)


def test_empty_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        read_photo(path, **LIMITS)


def test_size_limits_are_checked_before_decoding(tmp_path: Path) -> None:
    big = encode(Image.new("L", (3000, 2000)))  # 6 MP, over the 4 MP limit
    # failures of the bytes themselves (ContentError), given as bytes as a file's: over the
    # byte limit, bytes were a plain ImageError where a file was a ContentError (probe
    # compare35)
    with pytest.raises(ContentError, match="over the limit of 4 MP"):
        decode_photo(big, "huge.png", **LIMITS)
    with pytest.raises(ContentError, match="bytes, over the limit"):
        decode_photo(big, "huge.png", max_bytes=1000, max_pixels=10**9)


def test_pillows_pixel_limit_stays_the_applications(monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing pgface took Pillow's guard against decompression bombs away from the whole
    process (MAX_IMAGE_PIXELS = None: an application's own Image.open then read any size).
    Pillow's limit stays; decoding raises it to pgface's where that is higher, and a photo
    over twice an application's lower limit is refused in pgface's words."""
    assert Image.MAX_IMAGE_PIXELS is not None  # pgface imported above
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)  # an application's, lower than ours
    small = encode(Image.new("L", (50, 30)))  # 1,500 pixels: over Pillow's, within pgface's
    photo = decode_photo(small, "a.png", max_bytes=10**6, max_pixels=2_000)
    assert photo.image.shape[:2] == (30, 50) and Image.MAX_IMAGE_PIXELS == 2_000
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    big = encode(Image.new("L", (100, 30)))  # 3,000 pixels: over twice Pillow's limit
    with pytest.raises(ImageError, match=r"^b.png: image is 3,000 pixels, over the limit of "
                                         r"500 pixels$"):
        decode_photo(big, "b.png", max_bytes=10**6, max_pixels=500)
    assert Image.MAX_IMAGE_PIXELS == 1_000  # never lowered


def test_decoding_threads_leave_the_warning_filters_as_they_were() -> None:
    """Each decode hid Pillow's warnings with warnings.catch_warnings, which is not safe across
    threads: an index run through the Python API left the application's whole process
    ignoring every warning, its own too."""
    png = encode(Image.new("RGB", (300, 300), (90, 120, 150)))
    filters = list(warnings.filters)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: decode_photo(png, f"{i}.png", **LIMITS), range(2000)))
    assert warnings.filters == filters


def test_face_crop_is_a_small_jpeg_even_at_the_border() -> None:
    image = np.full((100, 100, 3), 200, dtype=np.uint8)
    crop = face_crop_jpeg(image, np.array([-20.0, 70.0, 30.0, 130.0]), size=64)
    decoded = Image.open(io.BytesIO(crop))
    assert decoded.format == "JPEG" and decoded.size == (64, 64)


def _thumbnail(image: np.ndarray, centre: tuple[float, float], side: float) -> np.ndarray:
    """face_crop_jpeg's 112-pixel thumbnail of a SIDE-pixel box around CENTRE, decoded (BGR)."""
    cx, cy = centre
    bbox = np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])
    jpeg = face_crop_jpeg(image, bbox, size=112)
    return np.asarray(Image.open(io.BytesIO(jpeg)))[:, :, ::-1].astype(np.float64)


@pytest.mark.parametrize("side", [400, 407, 700])
def test_large_face_thumbnail_averages_detail_away_like_an_area_resize(side: int) -> None:
    """A large face is averaged down by a whole factor first, then resized bilinearly: detail
    finer than the thumbnail's pixels (stripes 3 pixels apart) is averaged away as OpenCV's
    area resize of the whole patch does, where a bilinear resize in one step turns it into
    moire (19 dB from the area resize)."""
    ys, xs = np.mgrid[:1200, :1400].astype(np.float32)
    stripes = 40 * np.sign(np.sin(xs * 2 * np.pi / 3.0))
    level = 128 + 60 * np.sin(xs / 37.0) * np.cos(ys / 53.0) + stripes
    image = np.clip(np.dstack([level, level * 0.8, 255 - level]), 0, 255).astype(np.uint8)
    cx, cy, full = 700.0, 600.0, side * 1.5  # the thumbnail shows the box and a margin
    patch = image[int(round(cy - full / 2)):int(round(cy + full / 2)),
                  int(round(cx - full / 2)):int(round(cx + full / 2))]
    area = cv2.resize(patch, (112, 112), interpolation=cv2.INTER_AREA).astype(np.float64)
    thumbnail = _thumbnail(image, (cx, cy), side)
    assert thumbnail.shape == (112, 112, 3)
    assert 10 * np.log10(255**2 / np.mean((thumbnail - area) ** 2)) >= 28


@pytest.mark.parametrize("side", [400, 678, 150, 60])
def test_face_thumbnail_keeps_the_box_centred(side: int) -> None:
    """Whole-factor averaging trims the patch's edges evenly: a dot at the box's centre stays
    at the thumbnail's centre, whether the box is reduced, trimmed or enlarged."""
    cx, cy = 610.0, 430.0
    dot = np.zeros((900, 1200, 3), dtype=np.uint8)
    dot[int(cy) - 4:int(cy) + 5, int(cx) - 4:int(cx) + 5] = 255  # centred on pixel (610, 430)
    weights = _thumbnail(dot, (cx, cy), side)[:, :, 0]
    weights[weights < 40] = 0  # JPEG's ringing away from the dot
    found = [(np.arange(112) * weights.sum(axis=1 - axis)).sum() / weights.sum()
             for axis in (0, 1)]
    # where the dot's centre lies in a resize of the whole patch (pixel centres mapped)
    full = side * 1.5
    top, bottom = int(round(cy - full / 2)), int(round(cy + full / 2))
    left, right = int(round(cx - full / 2)), int(round(cx + full / 2))
    expected = [(cy - top + 0.5) * 112 / (bottom - top) - 0.5,
                (cx - left + 0.5) * 112 / (right - left) - 0.5]
    assert np.abs(np.array(found) - expected).max() <= 0.3  # trimmed on one side: 0.44 at 678


def test_a_heic_photo_is_decoded_though_libheif_is_loaded_only_for_it(tmp_path: Path) -> None:
    """A new process that reads a JPEG never loads libheif; its first HEIC photo does."""
    import subprocess
    import sys

    import pillow_heif

    pillow_heif.register_heif_opener()  # this test writes the HEIC file through it
    heic = tmp_path / "phone.heic"
    Image.new("RGB", (64, 48), (200, 120, 40)).save(heic, "HEIF", quality=90)
    jpeg = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 48), (200, 120, 40)).save(jpeg, "JPEG")
    script = (
        "import sys\n"
        "from pgface.imaging import decode_photo\n"
        "def read(p):\n"
        "    return decode_photo(open(p, 'rb').read(), p, 1 << 24, 1 << 24)\n"
        f"assert read({str(jpeg)!r}).image.shape == (48, 64, 3)\n"
        "assert 'pillow_heif' not in sys.modules\n"
        f"assert read({str(heic)!r}).image.shape == (48, 64, 3)\n"
        "assert 'pillow_heif' in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_decoding_a_heic_leaves_pillows_formats_as_the_application_registered_them(
        tmp_path: Path) -> None:
    """Probe hygiene39: decoding a HEIC registered pillow_heif's opener with Pillow for the
    whole process: the application's own Image.open of a .heic then read it (".heic" among
    Image.registered_extensions(), HEIF saved too), where it raised UnidentifiedImageError
    before, so a Django site's ImageField took HEIC uploads or not by what pgface had decoded.
    The photo is read as before: turned by libheif once, its EXIF date kept."""
    import pillow_heif

    pillow_heif.register_heif_opener()  # this test writes the HEIC file through it
    exif = Image.Exif()
    exif[0x0112] = 6  # to be turned a quarter clockwise: libheif's irot, once
    exif.get_ifd(0x8769)[0x9003] = "2021:05:04 10:20:30"
    sideways = Image.new("RGB", (64, 48), (200, 120, 40))
    sideways.paste((20, 40, 220), (0, 0, 32, 48))  # its left half blue: the top, upright
    heic = tmp_path / "phone.heic"
    sideways.save(heic, "HEIF", quality=90, exif=exif.tobytes())
    script = (
        "from PIL import Image, UnidentifiedImageError\n"
        "from pgface.imaging import decode_photo\n"
        f"path = {str(heic)!r}\n"
        "def application_opens() -> str:\n"
        "    try:\n"
        "        Image.open(path)\n"
        "    except UnidentifiedImageError:\n"
        "        return 'refused'\n"
        "    return 'opened'\n"
        "def pillows() -> tuple:\n"
        "    return (application_opens(), '.heic' in Image.registered_extensions(),\n"
        "            'HEIF' in Image.OPEN, 'HEIF' in Image.SAVE)\n"
        "before = pillows()\n"
        "assert before == ('refused', False, False, False), before\n"
        "photo = decode_photo(open(path, 'rb').read(), path, 1 << 24, 1 << 24)\n"
        "assert pillows() == before, pillows()\n"
        "assert (photo.format, photo.image.shape) == ('HEIF', (64, 48, 3)), photo.image.shape\n"
        "assert photo.image[:16].mean(axis=(0, 1))[0] > 150, 'turned twice, or not at all'\n"
        "assert str(photo.taken_at).startswith('2021-05-04 10:20:30'), photo.taken_at\n")
    done = in_a_new_process(script)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("mode,options", [("RGB", {}), ("RGB", {"progressive": True}),
                                          ("L", {}), ("RGB", {"subsampling": 0})])
def test_a_plain_jpeg_decodes_as_the_pillow_path_decodes_it(mode: str, options: dict) -> None:
    # A JPEG with no EXIF, XMP or colour transform is decoded without opening it in Pillow;
    # the same photo with an EXIF block (orientation 1, a date) takes Pillow's path. Same
    # pixels, size and reduction; only the EXIF one has a date.
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (1300, 2700, 3) if mode == "RGB" else (1300, 2700),
                          dtype=np.uint8)
    img = Image.fromarray(pixels)
    plain = encode(img, "JPEG", quality=85, **options)
    exif = Image.Exif()
    exif[0x0112] = 1
    exif.get_ifd(0x8769)[0x9003] = "2024:05:06 07:08:09"
    tagged = encode(img, "JPEG", quality=85, exif=exif.tobytes(), **options)
    assert imaging._plain_jpeg(plain) and not imaging._plain_jpeg(tagged)
    for keep_side in (0, 1280):
        fast = decode_photo(plain, "p.jpg", 10**8, 10**8, keep_side=keep_side)
        slow = decode_photo(tagged, "t.jpg", 10**8, 10**8, keep_side=keep_side)
        assert fast.image.dtype == np.uint8 and fast.image.shape == slow.image.shape
        assert np.array_equal(fast.image, slow.image)
        assert (fast.width, fast.height, fast.factor) == (slow.width, slow.height, slow.factor)
        assert fast.factor == (2 if keep_side else 1)
        assert np.array_equal(fast.pixels(1), slow.pixels(1))
        assert fast.taken_at is None and slow.taken_at is not None
    with pytest.raises(ImageError, match="over the limit of 1 MP"):
        decode_photo(plain, "p.jpg", 10**8, 1_000_000)


def test_a_header_that_claims_billions_of_pixels_is_refused_in_megapixels() -> None:
    # A few hundred bytes whose frame header claims 60000x60000 are refused before decoding,
    # in the units people write (".3g" gave "3.6e+03 MP").
    claimed = bytearray(encode(Image.new("RGB", (16, 16), "red"), "JPEG"))
    sof = claimed.find(b"\xff\xc0")
    claimed[sof + 5:sof + 9] = (60000).to_bytes(2, "big") * 2
    with pytest.raises(ImageError, match=r"60000x60000 \(3,600 MP\), over the limit of 100 MP"):
        decode_photo(bytes(claimed), "p.jpg", 10**8, 100_000_000)
    with pytest.raises(ImageError, match=r"\(3,600 MP\), over the limit of 0.5 MP"):
        decode_photo(bytes(claimed), "p.jpg", 10**8, 500_000)
    # a limit under a tenth of a megapixel was "0 MP", and so was a small photo over it
    with pytest.raises(ImageError, match=r"16x16 \(256 pixels\), over the limit of 1 pixel$"):
        decode_photo(encode(Image.new("RGB", (16, 16), "red"), "PNG"), "p.png", 10**8, 1)


def _with_scans(jpeg: bytes, scans: int) -> bytes:
    """A progressive JPEG with its smallest scan (and the Huffman tables before it) repeated
    before the end until it has SCANS scans: a few bytes each, every one decoded over the
    whole photo (a bogus progression, which libjpeg warns about and decodes)."""
    at, segments = 2, []
    while jpeg[at + 1] != 0xD9:
        end = at + 2 + int.from_bytes(jpeg[at + 2:at + 4], "big")
        if jpeg[at + 1] == 0xDA:  # the coded data runs to the next marker
            end = jpeg.index(b"\xff", end)
            while jpeg[end + 1] == 0 or 0xD0 <= jpeg[end + 1] <= 0xD7:
                end = jpeg.index(b"\xff", end + 2)
        segments.append((jpeg[at + 1], at, end))
        at = end
    index = min((i for i, seg in enumerate(segments) if seg[0] == 0xDA),
                key=lambda i: segments[i][2] - segments[i][1])
    first = index
    while segments[first - 1][0] == 0xC4:
        first -= 1
    repeat = jpeg[segments[first][1]:segments[index][2]]
    have = sum(seg[0] == 0xDA for seg in segments)
    return jpeg[:at] + repeat * (scans - have) + jpeg[at:]


def test_a_jpeg_of_too_many_scans_is_refused_before_decoding() -> None:
    # Each scan is decoded over every block: a 1.1 MB file of 2,100 scans took 13 s at 16 MP,
    # and the size limits allow thousands of times that.
    rng = np.random.default_rng(5)
    progressive = encode(Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8)),
                         "JPEG", progressive=True)
    allowed = _with_scans(progressive, MAX_JPEG_SCANS)
    assert allowed.count(b"\xff\xda") == MAX_JPEG_SCANS
    assert decode_photo(allowed, "ok.jpg", 10**8, 10**8).image.shape == (64, 64, 3)
    with pytest.raises(ImageError, match=f"a JPEG of {MAX_JPEG_SCANS + 1} scans, over the "
                                         f"limit of {MAX_JPEG_SCANS}"):
        decode_photo(_with_scans(progressive, MAX_JPEG_SCANS + 1), "bomb.jpg", 10**8, 10**8)


def test_a_large_jpeg_may_have_fewer_scans_than_a_small_one() -> None:
    # The work is scans x pixels: 256 scans of a 40 MP photo (306 KB) took 8-14 s to decode
    # against 0.4 s for its own 10, and four such searches at once held a server's every
    # search for 30 s (probe hostile56).
    width, height = 5000, 4000
    allowed = imaging.MAX_JPEG_SCAN_MEGAPIXELS * 1_000_000 // (width * height)
    assert imaging.FREE_JPEG_SCANS < allowed < MAX_JPEG_SCANS
    rows, columns = np.mgrid[0:height, 0:width]
    gradient = ((rows // 7 + columns // 5) % 256).astype(np.uint8)
    progressive = encode(Image.fromarray(gradient), "JPEG", progressive=True, quality=30)
    assert imaging._jpeg_frame_and_scans(progressive) == (
        (width, height), progressive.count(b"\xff\xda"))
    with pytest.raises(ImageError, match=rf"bomb.jpg: a JPEG of {allowed + 1} scans at "
                                         rf"5000x4000 \(20 MP\), over the limit of {allowed} "
                                         rf"scans at that size"):
        decode_photo(_with_scans(progressive, allowed + 1), "bomb.jpg", 10**8, 10**8)
    # as many as the size allows, and as many as any photo may have, are decoded
    kept = decode_photo(_with_scans(progressive, allowed), "ok.jpg", 10**8, 10**8, keep_side=500)
    assert (kept.width, kept.height) == (width, height)
    free = _with_scans(progressive, imaging.FREE_JPEG_SCANS)
    assert decode_photo(free, "ok.jpg", 10**8, 10**8, keep_side=500).width == width
    # A byte before the frame header, or a segment of length 0, which libjpeg reads past
    # (with a warning) and a walk of the segments does not: the file was decoded unpriced
    # (probe reprobe57). Its scans are priced at the pixel limit.
    bomb = _with_scans(progressive, allowed + 1)
    frame = bomb.index(b"\xff\xc2")
    for odd in (bomb[:frame] + b"\x00" + bomb[frame:], bomb[:frame] + b"\xff\xfe\x00\x00"
                + bomb[frame:]):
        assert imaging._jpeg_frame_and_scans(odd) == (None, None)
        with pytest.raises(ImageError, match=rf"a JPEG of {allowed + 1} scans at the pixel "
                                             rf"limit \(100 MP; its frame header unread\), "
                                             rf"over the limit of 16 scans"):
            decode_photo(odd, "odd.jpg", 10**8, 10**8, keep_side=500)
    # An EXIF thumbnail's scans are not decoded with the photo, and not priced with it (a
    # 96 MP photo with a progressive thumbnail was refused: probe reprobe57)
    thumbnail = encode(Image.fromarray(gradient[:120, :160]), "JPEG", progressive=True)
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<HI", 0, 14)  # IFD0, none
    tiff += struct.pack("<H", 2) + struct.pack("<HHII", 0x0201, 4, 1, 14 + 30) \
        + struct.pack("<HHII", 0x0202, 4, 1, len(thumbnail)) + struct.pack("<I", 0)
    with_thumbnail = _with_scans(encode(Image.fromarray(gradient), "JPEG", progressive=True,
                                        quality=30, exif=b"Exif\0\0" + tiff + thumbnail),
                                 allowed)
    assert with_thumbnail.count(b"\xff\xda") > allowed
    assert decode_photo(with_thumbnail, "ok.jpg", 10**8, 10**8, keep_side=500).width == width


def test_jpeg_segments_decide_which_path_decodes_it() -> None:
    jfif = encode(Image.new("RGB", (16, 16)), "JPEG")
    assert imaging._plain_jpeg(jfif)
    cmyk = encode(Image.new("CMYK", (16, 16)), "JPEG")  # APP14: Adobe's colour transform
    icc = encode(Image.new("RGB", (16, 16)), "JPEG", icc_profile=b"\0" * 64)  # APP2
    assert not imaging._plain_jpeg(cmyk) and not imaging._plain_jpeg(icc)
    assert not imaging._plain_jpeg(b"\xff\xd8\xff")  # no segment at all
    assert not imaging._plain_jpeg(encode(Image.new("RGB", (16, 16))))  # a PNG


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_a_png_whose_metadata_pillow_will_not_inflate_is_read_without_it() -> None:
    """Pillow refuses a zTXt, iTXt or iCCP chunk that inflates past 1 MB (XMP grows so in
    Photoshop, a printer's ICC profile is that size), and text chunks of 64 MB in all; the
    file was called corrupt (probe hostile30). Its pixels are read, the file's own digest and
    size kept; a PNG whose image data is broken is still refused."""
    pixels = np.random.default_rng(7).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    png = encode(Image.fromarray(pixels))
    xmp = b"<x:xmpmeta>" + b"<rdf:li>xmp.did:0123456789abcdef</rdf:li>" * 30_000 + b"</x:xmpmeta>"
    metadata = {
        "compressed XMP": png_chunk(b"iTXt", b"XML:com.adobe.xmp\0\x01\0\0\0" + zlib.compress(xmp)),
        "zTXt comment": png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(bytes(2_000_000))),
        "ICC profile": png_chunk(b"iCCP", b"printer\0\0" + zlib.compress(bytes(2_000_000))),
        "70 MB of text": b"".join(png_chunk(b"zTXt", b"Note\0\0" + zlib.compress(bytes(1_000_000)))
                                  for _ in range(70)),
    }
    for what, chunks in metadata.items():
        data = png[:33] + chunks + png[33:]  # after IHDR, before the image data
        photo = decode_photo(data, "meta.png", **LIMITS)
        assert photo.image[:, :, ::-1].tolist() == pixels.tolist(), what
        assert photo.sha256 == hashlib.sha256(data).digest() and photo.size_bytes == len(data)
        assert photo.format == "PNG"
    idat = png.index(b"IDAT")
    broken = png[:33] + metadata["ICC profile"] + png[33:idat + 8] + bytes(40) + png[idat + 48:]
    with pytest.raises(ImageError, match="meta.png: corrupt or truncated image"):
        decode_photo(broken, "meta.png", **LIMITS)
    # cut short, it is said to be cut (it was said as the chunk's: probe reprobe31)
    with_icc = png[:33] + metadata["ICC profile"] + png[33:]
    with pytest.raises(ImageError, match=r"meta.png: corrupt or truncated image \(image file is "
                                         r"truncated"):
        decode_photo(with_icc[:len(with_icc) - len(png) // 3], "meta.png", **LIMITS)


def test_a_pillow_image_that_cannot_be_read_is_an_image_error(tmp_path: Path) -> None:
    # Image.open reads pixels lazily: a truncated file, a closed image, an empty one or a
    # mode with no RGB form came through as OSError, AssertionError(''), cv2.error and
    # ValueError, where the same file's bytes gave an ImageError
    def load(img: Image.Image) -> imaging.Photo:
        return imaging.load_photo(img, "upload", 10**8, 10**8)

    whole = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(whole, "PNG")
    truncated = Image.open(io.BytesIO(whole.getvalue()[:-30]))
    closed = Image.open(io.BytesIO(whole.getvalue()))
    closed.close()
    cases = [(truncated, "upload: corrupt or truncated image"),
             (closed, "upload: a Pillow image that cannot be read"),
             (Image.new("RGB", (0, 0)), "upload: image is empty (0 pixels)"),
             (Image.new("La", (8, 8)), "upload: a Pillow image that cannot be read")]
    for img, reason in cases:
        with pytest.raises(ImageError, match="^" + re.escape(reason)):
            load(img)
    assert load(Image.open(io.BytesIO(whole.getvalue()))).image.shape == (48, 64, 3)


def test_paths_no_file_can_have_are_refused_by_name(tmp_path: Path) -> None:
    from pgface import paths
    from pgface.errors import InvalidInputError

    for bad in ("", str(tmp_path / "a\x00b.jpg")):  # "" searched the current folder
        with pytest.raises(InvalidInputError):
            imaging.load_photo(bad, "upload", 10**8, 10**8)  # a ValueError came through
    for given, said in ((None, "not None"), (5, "not an int"),
                        ([tmp_path, None], "None is not a path"),
                        (io.BytesIO(b"/a.jpg\n"), "not a BytesIO"),
                        ([str(tmp_path / "a\x00b")], "a path with a NUL byte")):
        with pytest.raises(InvalidInputError, match=said):
            paths.path_list(given)
    assert paths.path_list(p for p in [tmp_path]) == [tmp_path]  # a generator is a list

    class BytesPath:  # os.DirEntry of a scandir(b"...") is one: a TypeError in the NUL check
        def __init__(self, raw: bytes) -> None:
            self.raw = raw

        def __fspath__(self) -> bytes:
            return self.raw

    assert len(paths.path_list([BytesPath(b"/photos/a.jpg")])) == 1
    with pytest.raises(InvalidInputError, match="a path with a NUL byte"):
        paths.path_list([BytesPath(b"/photos/a\x00.jpg")])


@pytest.mark.parametrize("deflate", [False, True])
def test_a_16_bit_tiff_stored_one_plane_per_channel_decodes_as_its_interleaved_twin(
        deflate: bool) -> None:
    """A probe's find: OpenCV read a planar TIFF's planes as interleaved samples (three grey
    copies of the photo across its top third, stored as three faces), and Pillow's path
    unpacks 16-bit planes a byte at a time: each plane is now read as one of its own."""
    rgb = np.random.default_rng(7).integers(0, 1024, (37, 53, 3)).astype(np.uint16)  # 10-bit
    want = scaled(np.rot90(rgb[:, :, ::-1], -1), 1023)  # orientation 6: turned clockwise
    for extra in ((), (2,)):  # the 4th plane as (opaque) alpha too
        samples = np.dstack([rgb, np.full(rgb.shape[:2], 65535, np.uint16)]) if extra else rgb
        planar = decode_photo(tiff(samples, planar=True, extra=extra, orientation=6,
                                   deflate=deflate), "planar.tif", **LIMITS)
        interleaved = decode_photo(tiff(samples, extra=extra, orientation=6, deflate=deflate),
                                   "chunky.tif", **LIMITS)
        assert np.array_equal(planar.image, want), extra
        assert np.array_equal(interleaved.image, want), extra


def test_a_corrupt_planar_16_bit_tiff_is_called_corrupt_not_an_unread_compression() -> None:
    """A probe's find: a planar 16-bit TIFF whose deflated data was damaged was "in a
    compression pgface cannot read (8)": a plane OpenCV did not decode was always put down to
    the compression. Only one OpenCV lacks (Zstandard, 50000) is now."""
    rgb = np.random.default_rng(12).integers(0, 1024, (40, 50, 3)).astype(np.uint16)
    whole = bytearray(tiff(rgb, planar=True, deflate=True))
    middle = len(whole) * 2 // 3
    whole[middle:middle + 256] = bytes((i * 37 + 11) % 256 for i in range(256))
    with pytest.raises(ImageError, match=r"corrupt or truncated image \(a 16-bit TIFF stored "
                                         r"one plane per channel whose deflated image data"):
        decode_photo(bytes(whole), "damaged.tif", **LIMITS)
    with pytest.raises(ImageError, match=r"in a compression pgface cannot read \(50000\)"):
        decode_photo(tiff(rgb, planar=True, compression=50000), "zstd.tif", **LIMITS)


def test_a_16_bit_tiffs_4th_sample_is_alpha_only_where_extra_samples_says_so() -> None:
    """A probe's find: a 4th sample of ExtraSamples 0 (unspecified: not alpha), all 0, was
    composited as alpha and turned the photo white (its face lost); 8-bit, Pillow's path,
    kept it. Associated alpha (1) is already multiplied into the colour."""
    rgb = np.random.default_rng(8).integers(0, 1024, (20, 30, 3)).astype(np.uint16)
    zero = np.zeros(rgb.shape[:2], np.uint16)
    unspecified = decode_photo(tiff(np.dstack([rgb, zero]), extra=(0,)), "x.tif", **LIMITS)
    assert np.array_equal(unspecified.image, scaled(rgb[:, :, ::-1], 1023))
    rgb[0, 0] = 1023  # one opaque white pixel: the top of the range, premultiplied too
    alpha = np.full(rgb.shape[:2], 32768, np.uint16)
    alpha[0, 0] = 65535
    share = (alpha / 65535)[:, :, None]
    premultiplied = np.round(rgb * share).astype(np.uint16)
    want = (rgb[:, :, ::-1] * share + 1023 * (1 - share)) * 255 / 1023  # half way to white
    for kind, colour in ((2, rgb), (1, premultiplied)):  # unassociated, associated
        composited = decode_photo(tiff(np.dstack([colour, alpha]), extra=(kind,)), "a.tif",
                                  **LIMITS)
        assert np.abs(composited.image - want).max() <= 1.0, kind


@pytest.mark.parametrize("mode", ["RGBA16", "RGB16"])
def test_decoding_holds_no_whole_photo_copies_beyond_its_pixels_and_the_result(
        mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A probe's find: a 100 MP RGBA PNG of 16 bits took 5.6 GB to decode (whole-photo float32
    copies), one of 8 bits 2.6 GB (RGBA, background, composite and RGB copies): conversion is
    by bands of rows now. Traced by NumPy's allocations, which OpenCV's output arrays are
    too: the peak allowed is the decoded pixels, the file's bytes, the result and a band's
    copies. (Pillow's own allocations, the 8-bit path's, are not traced.)"""
    import tracemalloc

    monkeypatch.setattr(imaging, "BAND_PIXELS", 1 << 16, raising=False)  # 1/18 of the photo

    height, width = 1000, 1200
    rng = np.random.default_rng(9)
    channels = 4 if mode == "RGBA16" else 3
    _, buf = cv2.imencode(".png", rng.integers(0, 65536, (height, width, channels))
                          .astype(np.uint16), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    data, decoded = buf.tobytes(), height * width * channels * 2
    tracemalloc.start()
    try:
        photo = decode_photo(data, "big.png", **LIMITS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    result = height * width * 3
    assert photo.image.shape == (height, width, 3)
    assert peak < decoded + result + 64 * (1 << 16) + len(data), (peak, decoded)


def test_opencv_and_libtiff_say_nothing_on_stderr_and_a_cut_tiff_is_called_truncated(
        capfd: pytest.CaptureFixture[str]) -> None:
    """A probe's find: OpenCV's log ("[ WARN:0@0.5] global grfmt_tiff.cpp ... Unknown field
    with tag 65000") leaked onto stderr for a good 16-bit TIFF, and six lines of OpenCV's and
    libtiff's for a truncated one, whose reason ended "(decoder error -2)". pgface's own
    processes (the command line, its server, its indexing children) quiet them at their start;
    a library leaves them to its application (the next test)."""
    quiet_decoders()
    rgb = np.random.default_rng(10).integers(0, 1024, (30, 40, 3)).astype(np.uint16)
    private = decode_photo(tiff(rgb, tags=((65000, 3, (1,)),)), "tag.tif", **LIMITS)
    assert np.array_equal(private.image, scaled(rgb[:, :, ::-1], 1023))
    whole = tiff(rgb, deflate=True)
    for cut, bits in ((whole, "16"), (tiff(rgb.astype(np.uint8), deflate=True), "8")):
        with pytest.raises(ImageError, match=r"truncated image \(a TIFF file cut short"):
            decode_photo(cut[: len(cut) // 2], f"cut{bits}.tif", **LIMITS)
    assert capfd.readouterr().err == ""


def test_decoding_leaves_opencvs_log_level_as_the_application_set_it(tmp_path: Path) -> None:
    """Probe hygiene39: decoding a TIFF or a 16-bit PNG (OpenCV reads their 16 bits) set
    OpenCV's log level to silent for the whole process, its warnings (3) to nothing (0): an
    application's own cv2.imread of a missing file then said nothing on stderr."""
    rgb = np.random.default_rng(12).integers(0, 1024, (30, 40, 3)).astype(np.uint16)
    (tmp_path / "deep.tif").write_bytes(tiff(rgb, tags=((65000, 3, (1,)),)))
    (tmp_path / "deep.png").write_bytes(cv2.imencode(".png", rgb)[1].tobytes())
    missing = tmp_path / "no-such-photo.jpg"
    script = (
        "import cv2\n"
        "from pgface.imaging import decode_photo\n"
        "before = cv2.utils.logging.getLogLevel()\n"
        "for name in ('deep.tif', 'deep.png'):\n"
        f"    path = {str(tmp_path)!r} + '/' + name\n"
        "    photo = decode_photo(open(path, 'rb').read(), path, 1 << 24, 1 << 24)\n"
        "    assert photo.image.shape == (30, 40, 3), name\n"
        "    assert cv2.utils.logging.getLogLevel() == before, (name, before,\n"
        "                                                      cv2.utils.logging.getLogLevel())\n"
        f"assert cv2.imread({str(missing)!r}) is None\n")
    done = in_a_new_process(script)
    assert done.returncode == 0, done.stderr
    assert str(missing) in done.stderr  # OpenCV's warning, as the application's to see


def test_a_corrupt_tiff_pillow_decodes_says_why_and_libtiff_says_nothing_on_stderr(
        capfd: pytest.CaptureFixture[str]) -> None:
    """A probe's find: a TIFF whose deflated or LZW data was damaged (the file not cut
    short) printed libtiff's own lines on stderr ("ZIPDecode: Decoding error at scanline
    ...", "Using code not yet in table.") through Pillow's decoder, and its reason was
    "decoder error -2". pgface's own processes quiet libtiff at their start; a library leaves
    it to its application (the next test)."""
    quiet_decoders()
    rgb = np.random.default_rng(13).integers(0, 255, (40, 50, 3)).astype(np.uint8)
    whole = bytearray(tiff(rgb, deflate=True))
    middle = len(whole) * 2 // 3
    whole[middle:middle + 256] = bytes((i * 37 + 11) % 256 for i in range(256))
    with pytest.raises(ImageError, match=r"corrupt or truncated image \(its compressed image "
                                         r"data cannot be decoded\)$"):
        decode_photo(bytes(whole), "damaged.tif", **LIMITS)
    assert capfd.readouterr().err == ""


def test_decoding_a_tiff_leaves_libtiffs_errors_to_the_application(tmp_path: Path) -> None:
    """Probe hygiene39: decoding a TIFF turned libtiff's error messages off for the whole
    process: an application's own Pillow then said nothing on stderr of a damaged TIFF it
    read, where it had said "ZIPDecode: Decoding error at scanline ..." before."""
    rgb = np.random.default_rng(14).integers(0, 255, (40, 50, 3)).astype(np.uint8)
    damaged = bytearray(tiff(rgb, deflate=True))
    middle = len(damaged) * 2 // 3
    damaged[middle:middle + 256] = bytes((i * 37 + 11) % 256 for i in range(256))
    (tmp_path / "damaged.tif").write_bytes(damaged)
    (tmp_path / "good.tif").write_bytes(tiff(rgb, deflate=True))
    script = (
        "import sys\n"
        "from PIL import Image\n"
        "from pgface.errors import ImageError\n"
        "from pgface.imaging import decode_photo\n"
        f"folder = {str(tmp_path)!r}\n"
        "def application_reads() -> None:\n"
        "    try:\n"
        "        Image.open(folder + '/damaged.tif').load()\n"
        "    except OSError:\n"
        "        pass\n"
        "    sys.stderr.write('-- read\\n')\n"
        "    sys.stderr.flush()\n"
        "application_reads()\n"
        "assert decode_photo(open(folder + '/good.tif', 'rb').read(), 'good.tif', 1 << 24,\n"
        "                    1 << 24).image.shape == (40, 50, 3)\n"
        "try:\n"
        "    decode_photo(open(folder + '/damaged.tif', 'rb').read(), 'damaged.tif', 1 << 24,\n"
        "                 1 << 24)\n"
        "except ImageError:\n"
        "    pass\n"
        "application_reads()\n")
    done = in_a_new_process(script)
    assert done.returncode == 0, done.stderr
    before, after, _ = done.stderr.split("-- read\n")
    assert "Decoding error" in before, done.stderr  # libtiff's, as Pillow's decoder leaves it
    assert "Decoding error" in after, done.stderr


def test_a_valid_tiff_pillow_has_no_mode_for_is_read_by_opencv_or_said_to_be_unread() -> None:
    """A probe's find: valid TIFFs Pillow has no mode for were "corrupt or truncated image (a
    TIFF file whose header cannot be read)" (16-bit grey + alpha, 16-bit RGB + 2 extra
    samples, 8-bit planar RGB + an unspecified 4th), or Pillow's "unknown raw mode for given
    image mode" (8-bit planar RGB + associated alpha). The 8-bit planar RGB ones OpenCV reads
    exactly are decoded; the others are named."""
    rng = np.random.default_rng(14)
    rgb = rng.integers(0, 256, (30, 40, 3)).astype(np.uint8)
    alpha = rng.integers(0, 256, (30, 40)).astype(np.uint8)
    unspecified = decode_photo(tiff(np.dstack([rgb, alpha]), planar=True, extra=(0,)),
                               "x.tif", **LIMITS)
    assert np.array_equal(unspecified.image, rgb[:, :, ::-1])
    premultiplied = np.round(rgb * (alpha / 255)[:, :, None]).astype(np.uint8)
    associated = decode_photo(tiff(np.dstack([premultiplied, alpha]), planar=True, extra=(1,)),
                              "a.tif", **LIMITS)
    want = premultiplied[:, :, ::-1].astype(int) + (255 - alpha)[:, :, None]
    assert np.array_equal(associated.image, np.clip(want, 0, 255))
    grey16 = rng.integers(0, 65536, (30, 40, 2)).astype(np.uint16)
    rgb16 = rng.integers(0, 65536, (30, 40, 5)).astype(np.uint16)
    for data, said in (
            (tiff(grey16, extra=(2,), photometric=1),
             r"16-bit greyscale samples and 1 extra sample per pixel \(alpha\)"),
            (tiff(rgb16, extra=(2, 0)),
             r"16-bit RGB samples and 2 extra samples per pixel \(alpha, unspecified\)"),
            (tiff(np.dstack([rgb[:, :, :1], alpha]), planar=True, extra=(2,), photometric=1),
             r"8-bit greyscale samples and 1 extra sample per pixel \(alpha\), stored one "
             r"plane per channel")):
        with pytest.raises(ImageError, match=f"not a format pgface reads \\(a TIFF of {said}"):
            decode_photo(data, "x.tif", **LIMITS)


def test_a_tiff_of_samples_pgface_cannot_read_says_so_and_a_broken_one_stays_corrupt() -> None:
    """A probe's find: valid float, 32-bit and signed 16-bit RGB TIFFs were "corrupt or
    truncated image (a TIFF file whose header cannot be read)"."""
    rgb = np.random.default_rng(11).integers(0, 255, (10, 12, 3))
    for samples, sample_format, said in (
            (rgb.astype(np.float32) / 255, 3, "32-bit floating-point RGB samples"),
            (rgb.astype(np.uint32), 1, "32-bit unsigned integer RGB samples"),
            (rgb.astype(np.int16), 2, "16-bit signed integer RGB samples")):
        with pytest.raises(ImageError, match=f"not a format pgface reads \\(a TIFF of {said}"):
            decode_photo(tiff(samples, sample_format=sample_format), "x.tif", **LIMITS)
    with pytest.raises(ImageError, match="corrupt or truncated image"):
        decode_photo(b"II*\x00" + struct.pack("<I", 10**6) + b"\0" * 64, "bad.tif", **LIMITS)


def test_a_photo_files_media_type_is_told_by_its_bytes() -> None:
    # Probe http19: GET /api/photos/{id}/image named the type after the file's name.
    grey = Image.new("L", (8, 8), 128)
    for fmt, media in [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("GIF", "image/gif"),
                       ("TIFF", "image/tiff"), ("BMP", "image/bmp"), ("WEBP", "image/webp"),
                       ("PPM", "image/x-portable-graymap")]:
        assert imaging.media_type(encode(grey, fmt)) == media, fmt
    assert imaging.media_type(encode(grey.convert("RGB"), "PPM")) == "image/x-portable-pixmap"
    for brand, media in [(b"heic", "image/heic"), (b"avif", "image/avif"),
                         (b"mif1", "image/heif")]:
        assert imaging.media_type(b"\0\0\0\x1cftyp" + brand + b"\0" * 20) == media, brand
    for other in (b"%PDF-1.4", b"PX", b"", b"RIFF\0\0\0\0WAVE"):
        assert imaging.media_type(other) == "application/octet-stream", other


def test_formats_pillow_writes_and_pgface_does_not_read_are_named() -> None:
    # Probe http19: a real PCX, SGI, XBM or TGA was "not an image (unrecognised format)", where
    # an EPS or an ICO was named.
    photo = Image.new("RGB", (64, 48), (200, 120, 40))
    for fmt, kind, img in [("PCX", "PCX", photo), ("SGI", "Silicon Graphics (SGI)", photo),
                           ("XBM", "X11 bitmap (XBM)", photo.convert("1")),
                           ("TGA", "Truevision TGA", photo),
                           ("MSP", "Microsoft Paint (MSP)", photo.convert("1")),
                           ("IM", "IFUNC Image Memory (IM)", photo)]:
        article = "an" if kind[0] in "IX" else "a"  # "an X11 bitmap", "an IFUNC ..." (hostile20)
        with pytest.raises(ImageError, match=re.escape(f"not a format pgface reads ({article} "
                                                       f"{kind} file; it reads JPEG")):
            decode_photo(encode(img, fmt), f"x.{fmt.lower()}", **LIMITS)
    # Their first bytes alone are not taken for them: a text that starts with a newline, two
    # bytes of an SGI's magic, a C header's #define
    for text in (b"\n\n# notes\n" + b"x" * 200, b"\x01\xda" + b"\xff" * 600,
                 b"#define VERSION 3\n#define NAME x\n" + b"x" * 100,
                 # an MSP's key, an IM's first line, a TGA's footer in text (probe hostile20)
                 b"DanM is my name, and this is my story." + b"x" * 100,
                 b"Image type: notes\nsee below\n" + b"x" * 100,
                 b"some notes " * 10 + b"TRUEVISION-XFILE.\0"):
        with pytest.raises(ImageError, match=re.escape("not an image (unrecognised format)")):
            decode_photo(text, "x.jpg", **LIMITS)
    # A PFM, which Pillow's PPM reader opens: read when named, passed over by a folder's walk
    # and served as no image type (probe hostile20)
    floats = Image.fromarray(np.full((48, 64), 0.5, np.float32))
    with pytest.raises(ImageError, match=re.escape("not a format pgface reads (a Portable "
                                                   "FloatMap (PFM) file")):
        decode_photo(encode(floats, "PPM"), "x.pfm", **LIMITS)


def test_a_photo_whose_exif_block_cannot_be_read_is_read_without_it() -> None:
    """Probe dates33: a PNG, WebP or HEIC whose EXIF block is no TIFF data was refused as
    "corrupt or truncated image (not a TIFF file ...)", its pixels whole, where a JPEG with the
    same block was read; so was a Pillow image of it handed in."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    picture = Image.open(next(p for p in sample_photos() if p.name == "yaoming.jpg"))
    picture = picture.convert("RGB")
    garbage = b"Exif\x00\x00" + bytes(range(7, 71))  # no TIFF header
    plain = io.BytesIO()
    picture.save(plain, "PNG")
    png = plain.getvalue()
    at = png.index(b"IDAT") - 4
    with_exif = {"png": png[:at] + png_chunk(b"eXIf", garbage[6:]) + png[at:]}
    for fmt, suffix in (("WEBP", "webp"), ("HEIF", "heic"), ("JPEG", "jpg")):
        data = io.BytesIO()
        picture.save(data, fmt, exif=garbage)
        with_exif[suffix] = data.getvalue()
    for suffix, data in with_exif.items():
        photo = decode_photo(data, f"garbage-exif.{suffix}", 10**8, 10**8)
        assert photo.image.shape[:2] == (picture.height, picture.width), suffix
        assert photo.taken_at is None, suffix
    handed = imaging.load_photo(Image.open(io.BytesIO(with_exif["png"])), "x", 10**8, 10**8)
    assert handed.image.shape[:2] == (picture.height, picture.width)


def test_a_date_written_as_bytes_is_read() -> None:
    """Probe dates33: a DateTimeOriginal written as UNDEFINED (bytes), not ASCII, was read as
    "b'2019:06:15 14:30:05'", no date, and the photo stored without one."""
    for value, taken in ((b"2019:06:15 14:30:05\x00", datetime(2019, 6, 15, 14, 30, 5)),
                         (b"\xff\xfe not a date", None)):
        exif = Image.Exif()
        exif.get_ifd(0x8769)[0x9003] = value
        photo = decode_photo(encode(Image.new("RGB", (32, 32)), "JPEG", exif=exif.tobytes()),
                             "dated.jpg", **LIMITS)
        assert photo.taken_at == taken


def _yao() -> Image.Image:
    return Image.open(next(p for p in sample_photos() if p.name == "yaoming.jpg"))


def pages_tiff(first: Image.Image, pages: int) -> bytes:
    """FIRST as a TIFF's first page, then PAGES more of one black pixel each (13 bytes an
    IFD and 2 a pixel: 150,000 of them are 17 MB)."""
    data = bytearray(encode(first.convert("RGB"), "TIFF"))
    at = struct.unpack("<I", data[4:8])[0]
    link = at + 2 + 12 * struct.unpack("<H", data[at:at + 2])[0]  # the first IFD's next
    for _ in range(pages):
        data += b"\0" * (len(data) % 2)
        pixel = len(data)
        data += b"\0\0"
        struct.pack_into("<I", data, link, len(data))
        entries = ((256, 3, 1), (257, 3, 1), (258, 3, 8), (259, 3, 1), (262, 3, 1),
                   (273, 4, pixel), (277, 3, 1), (278, 3, 1), (279, 4, 1))
        data += struct.pack("<H", len(entries)) + b"".join(
            struct.pack("<HHII", tag, kind, 1, value) for tag, kind, value in entries)
        link = len(data)
        data += b"\0\0\0\0"
    return bytes(data)


def big_tiff_chain(pages: int, order: str = "<", tags: tuple[int, ...] = (256, 257)) -> bytes:
    """A BigTIFF's header, in byte ORDER, and a chain of PAGES IFDs, each of one entry of
    value 1 a tag of TAGS (ImageWidth and ImageLength: no image data)."""
    data = bytearray({"<": b"II", ">": b"MM"}[order] + struct.pack(order + "HHHQ", 43, 8, 0, 16))
    for page in range(pages):
        data += struct.pack(order + "Q", len(tags)) + b"".join(
            struct.pack(order + "HHQQ", tag, 3, 1, 1) for tag in tags)
        data += struct.pack(order + "Q", len(data) + 8 if page < pages - 1 else 0)
    return bytes(data)


def test_a_tiff_of_thousands_of_pages_is_read_without_walking_them_all(
        analyzer: FaceAnalyzer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Probe hostile49: every multi-page TIFF's pages were counted (Pillow's n_frames, whose
    walk searches a list of the pages before for each: 10,000 pages took 6 s, and a 17 MB
    upload of 150,000 minutes, holding an inference worker after its client had gone). They
    are counted only for a blank first page's warning, and no further than
    MAX_FRAMES_COUNTED."""
    ifds_read = 0
    load = TiffImagePlugin.ImageFileDirectory_v2.load

    def counted(self: TiffImagePlugin.ImageFileDirectory_v2, fp: object) -> None:
        nonlocal ifds_read
        ifds_read += 1
        load(self, fp)

    monkeypatch.setattr(TiffImagePlugin.ImageFileDirectory_v2, "load", counted)
    pages = 5 * imaging.MAX_FRAMES_COUNTED
    photo = decode_photo(pages_tiff(_yao(), pages), "pages.tif", **LIMITS)
    assert len(analyzer.detect(photo.image)) == 1 and photo.warning is None
    assert ifds_read < 10  # the first page's, none of the others'

    ifds_read = 0
    blank = Image.new("RGB", (400, 225), "white")
    photo = decode_photo(pages_tiff(blank, pages), "blank-pages.tif", **LIMITS)
    assert photo.warning is not None and photo.warning.startswith(
        "its first frame, the only one read of its 1,000 or more: nearly every pixel")
    # the chain of pages walked, no page's entries read: a seek to each read them all, and
    # pages of 1,700 unknown tags took 29 s to count in 20 MB (probe reprobe50)
    assert ifds_read < 10
    few = decode_photo(pages_tiff(blank, 3), "blank-4-pages.tif", **LIMITS)
    assert few.warning is not None and few.warning.startswith(
        "its first frame, the only one read of its 4: ")
    # a next page that cannot be read: Pillow's count raised TypeError out of decode_photo;
    # and it is no page (probe reprobe52: "of its 2 or more" of a one-page file)
    broken = bytearray(pages_tiff(blank, 0))
    at = struct.unpack("<I", broken[4:8])[0]
    link = at + 2 + 12 * struct.unpack("<H", broken[at:at + 2])[0]  # the first IFD's next
    for past in (len(broken) + 1000, 0x7FFFFFFF, len(broken) - 1):
        struct.pack_into("<I", broken, link, past)  # past the end, or cut by it
        cut = decode_photo(bytes(broken), "cut-pages.tif", **LIMITS)
        assert cut.warning is not None and cut.warning.startswith("nearly every pixel"), past
        assert imaging._tiff_pages(bytes(broken)) == (1, True), past
    # into its pixel data (white: an entry count of 65,535, running past the end), or to an
    # appended IFD of 65,535 entries that runs past the end: Pillow reads no such page
    struct.pack_into("<I", broken, link, 2000)
    assert imaging._tiff_pages(bytes(broken)) == (1, True)
    assert decode_photo(bytes(broken), "junk-next.tif", **LIMITS).warning.startswith(
        "nearly every pixel")
    struct.pack_into("<I", broken, link, len(broken))
    assert imaging._tiff_pages(bytes(broken) + struct.pack("<H", 65535) + b"\0" * 100) == (
        1, True)
    # a chain of IFDs of ImageWidth alone: Pillow says "Missing dimensions", no page; nor is
    # one whose values (not tags) hold ImageLength's number; one of both is a page
    def chained(*entries: tuple[int, int], count: int = 1) -> bytes:
        chain, next_at = bytearray(broken), link  # its first page, then 10 IFDs of ENTRIES
        for _ in range(10):
            struct.pack_into("<I", chain, next_at, len(chain))
            chain += struct.pack("<H", len(entries)) + b"".join(
                struct.pack("<HHII", tag, 4, count if tag == 256 else 1, value)
                for tag, value in entries)
            next_at = len(chain)
            chain += b"\0\0\0\0"
        return bytes(chain)

    assert imaging._tiff_pages(chained((256, 8))) == (1, True)
    assert decode_photo(chained((256, 8)), "widths.tif", **LIMITS).warning.startswith(
        "nearly every pixel")
    assert imaging._tiff_pages(chained((256, 257), (258, 257))) == (1, True)
    assert imaging._tiff_pages(chained((256, 8), (257, 8))) == (11, False)
    # a width of no value (its count 0): Pillow says "Missing dimensions" (probe reprobe54)
    assert imaging._tiff_pages(chained((256, 8), (257, 8), count=0)) == (1, True)
    # a chain that loops back to the first page holds one page: no count said
    struct.pack_into("<I", broken, link, at)
    assert decode_photo(bytes(broken), "looped.tif", **LIMITS).warning.startswith(
        "nearly every pixel")
    # a next page pointed into the header, or of no entries, is junk, no page (probe
    # reprobe51: "of its 2 or more", and a chain of 999 empty IFDs "of its 1,000")
    struct.pack_into("<I", broken, link, 5)
    assert imaging._tiff_pages(bytes(broken)) == (1, True)
    empty = bytes(broken[:link]) + struct.pack("<I", len(broken)) + bytes(
        broken[link + 4:]) + b"\0\0" + b"\0\0\0\0"
    assert imaging._tiff_pages(empty) == (1, True)
    # a BigTIFF's chain (Pillow writes none: its header and IFDs made here)
    assert imaging._tiff_pages(big_tiff_chain(3)) == (3, False)
    assert imaging._tiff_pages(big_tiff_chain(3, ">")) == (3, False)
    assert imaging._tiff_pages(big_tiff_chain(3, ">", (256,))) == (1, True)
    assert imaging._tiff_pages(big_tiff_chain(3, "<", (257, 258))) == (1, True)
    assert imaging._tiff_pages(big_tiff_chain(2 * imaging.MAX_FRAMES_COUNTED)) == (
        imaging.MAX_FRAMES_COUNTED, True)


def test_an_animation_of_many_frames_is_counted_no_further_than_its_warning_needs() -> None:
    """Probe hostile49: a GIF's frames were counted one by one to the last (a 20 MB GIF holds a
    million tiny ones); only a blank first frame's warning counts them, up to a bound."""
    image = io.BytesIO()
    Image.new("P", (400, 225), 0).save(image, "GIF")
    tiny = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    start = image.getvalue()[:-1]  # before its trailer, ";"
    for frames, said in ((2, "2"), (5, "5"), (imaging.MAX_FRAMES_COUNTED - 1, "999"),
                         (20 * imaging.MAX_FRAMES_COUNTED, "1,000 or more")):
        photo = decode_photo(start + tiny * (frames - 1) + b";", "frames.gif", **LIMITS)
        assert Image.open(io.BytesIO(start + tiny * (frames - 1) + b";")).n_frames == frames
        assert photo.warning is not None and photo.warning.startswith(
            f"its first frame, the only one read of its {said}: nearly every pixel"), frames


def test_a_float_tiff_is_scaled_by_its_finite_range_and_says_nothing_on_stderr(
        analyzer: FaceAnalyzer, capfd: pytest.CaptureFixture[str]) -> None:
    """Probe hostile49: a 32-bit float greyscale TIFF whose highlights went a little above 1.0
    (an HDR export) was read as black, no face found and a "blank image" notice; so was one
    with rows of NaN (a masked edge), which printed "RuntimeWarning: invalid value encountered
    in cast" on stderr too; values up to 1e30 came out white. NaN and infinities are passed
    over in finding the range, and values other than 0..1 or whole numbers are scaled by their
    own brightest."""
    grey = np.asarray(_yao().convert("L"), dtype=np.float32)
    unit = grey / 255
    nan, inf = unit.copy(), unit.copy()
    nan[:3] = np.nan
    inf[:3], inf[3:6] = np.inf, -np.inf
    floats = {"unit": unit, "overshoot": unit * 1.3, "nan": nan, "inf": inf,
              "huge": unit * 1e30, "whole": grey, "whole-12-bit": np.round(unit * 4095)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning raised, not printed
        photos = {name: decode_photo(encode(Image.fromarray(values, "F"), "TIFF"),
                                     f"{name}.tif", **LIMITS)
                  for name, values in floats.items()}
        blank = decode_photo(encode(Image.fromarray(np.full_like(unit, np.nan), "F"), "TIFF"),
                             "nan.tif", **LIMITS)
    for name, photo in photos.items():
        assert len(analyzer.detect(photo.image)) == 1 and photo.warning is None, name
    # 0..1, and whole numbers in the range of their bit depth, as they were
    eight_bit = np.asarray(_yao().convert("L"))
    assert np.abs(photos["unit"].image[:, :, 0].astype(int) - eight_bit).max() <= 1
    assert np.array_equal(photos["whole"].image[:, :, 0], eight_bit)
    assert np.array_equal(photos["nan"].image[3:], photos["unit"].image[3:])
    assert not photos["nan"].image[:3].any()  # NaN black
    assert blank.warning is not None and "nearly every pixel has the same value" in blank.warning
    assert capfd.readouterr().err == ""
