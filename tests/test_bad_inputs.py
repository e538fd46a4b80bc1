"""A corpus of hostile, broken and odd input files, made here at run time (no binary is
committed), beside one good photo, indexed by the real `pgface index --json` in a subprocess:
each file gets its expected outcome, the good photo is always stored with its faces, nothing
prints a traceback, and a second run adds nothing."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import shutil
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import cv2
import numpy as np
import pillow_heif
import pytest
from conftest import REPO
from PIL import Image
from typer.testing import CliRunner

from pgface import Pgface, Settings, engine, imaging
from pgface.cli import app
from pgface.db import store
from pgface.errors import ImageError, NoFaceError, NotFoundError
from pgface.imaging import decode_photo, read_file
from pgface.index import STAMP_SETTLE_S
from pgface.models.analysis import FaceAnalyzer
from pgface.models.packs import sample_photos
from pgface.paths import readable

TAKEN = datetime(2021, 7, 4, 10, 20, 30)
MAX_FILE_BYTES = 16 * 1024 * 1024  # the run's limit, so that an over-size file is cheap to make
# Stored pixels for each EXIF orientation: the inverse of what exif_transpose does for it.
STORED_AS = {
    1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270,
}


@dataclass(frozen=True)
class Expect:
    """What must become of one corpus file."""

    faces: int | None = None  # stored with this many faces; None: not stored
    reason: str | None = None  # reported as failed, the reason containing this
    warning: str | None = None  # stored with a warning containing this
    upright: bool = False  # stored with the good photo's upright width and height
    dated: bool = False  # stored with TAKEN as its date


GOOD = -1  # as many faces as the good photo has


def face_on_a_page() -> Image.Image:
    """Yao Ming's photo on a white page: under 1 % of its pixels are not white."""
    yao = next(p for p in sample_photos() if p.name == "yaoming.jpg")
    page = Image.new("RGB", (3200, 2400), "white")
    page.paste(Image.open(yao).convert("RGB"), (1500, 1000))
    return page


def good_photo() -> Path:
    return next(p for p in sample_photos() if p.name == "t1.jpg")  # insightface's group photo


def _exif(orientation: int = 1, dated: bool = False) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    if dated:
        exif.get_ifd(0x8769)[0x9003] = TAKEN.strftime("%Y:%m:%d %H:%M:%S")
    return exif.tobytes()


def _noise(width: int, height: int, seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return (struct.pack(">I", len(body)) + kind + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))


def _bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming width x height over a few bytes of data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b""))


def _png_with_chunk_after_header(photo: Image.Image, kind: bytes, body: bytes) -> bytes:
    """PHOTO as a PNG with a chunk put after its header (where metadata goes)."""
    buffer = io.BytesIO()
    photo.save(buffer, "PNG", compress_level=1)
    png = buffer.getvalue()
    return png[:33] + _png_chunk(kind, body) + png[33:]


def _icon_over_png(png: bytes) -> bytes:
    """A Windows icon whose one entry says 16x16 and holds PNG (as Vista's icons do)."""
    entry = struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(png), 6 + 16)
    return struct.pack("<HHH", 0, 1, 1) + entry + png


def _grey_alpha_png_16(grey: np.ndarray) -> bytes:
    """A 16-bit grey + alpha PNG (colour type 4, which neither Pillow nor OpenCV writes),
    opaque: each row a filter byte, then big-endian (grey, alpha) pairs."""
    height, width = grey.shape
    pairs = np.stack([grey, np.full_like(grey, 65535)], axis=2).astype(">u2")
    rows = b"".join(b"\x00" + pairs[y].tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 4, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(rows, 1)) + _png_chunk(b"IEND", b""))


def _rgb_tiff_16(rgb: np.ndarray, orientation: int) -> bytes:
    """An uncompressed RGB TIFF of 16-bit samples with an EXIF-style orientation tag (Pillow
    cannot write one, OpenCV writes no orientation)."""
    height, width, _ = rgb.shape
    pixels = rgb.astype("<u2").tobytes()
    entries = [(256, 3, 1, width), (257, 3, 1, height), (258, 3, 3, 8),  # bits: at offset 8
               (259, 3, 1, 1), (262, 3, 1, 2), (273, 4, 1, 14), (274, 3, 1, orientation),
               (277, 3, 1, 3), (278, 3, 1, height), (279, 4, 1, len(pixels))]
    ifd_at = 14 + len(pixels)
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHII" if kind == 4 else "<HHIHxx", tag, kind, count, value)
        for tag, kind, count, value in entries) + struct.pack("<I", 0)
    return (b"II*\x00" + struct.pack("<I", ifd_at) + struct.pack("<HHH", 16, 16, 16)
            + pixels + ifd)


def make_corpus(folder: Path) -> dict[str, Expect]:
    """Every kind of input file this project has met or been asked about, with its outcome."""
    folder.mkdir(parents=True)
    folder.chmod(0o755)
    good = good_photo()
    photo = Image.open(good).convert("RGB")
    expected: dict[str, Expect] = {}

    def save(name: str, expect: Expect, write: Callable[[Path], object]) -> None:
        write(folder / name)
        expected[readable(name)] = expect  # the key is the name as pgface shows it

    shutil.copy(good, folder / "good.jpg")
    expected["good.jpg"] = Expect(faces=GOOD, upright=True)

    # The rows of issue 11 that are about files
    # A good photo whose name is not UTF-8 (re-encoded: other bytes, so not the same photo)
    save(os.fsdecode(b"latin\xe9.jpg"), Expect(faces=GOOD, upright=True),
         lambda p: photo.save(p, quality=90))
    save("wide.png", Expect(faces=0), lambda p: _noise(100_000, 1, 1).save(p))
    save("tall.png", Expect(faces=0), lambda p: _noise(1, 50_000, 2).save(p))
    save("strip.png", Expect(faces=0), lambda p: _noise(5000, 3, 3).save(p))
    os.mkfifo(folder / "fifo.jpg")  # reading it would wait for a writer for ever
    expected["fifo.jpg"] = Expect(reason="FIFO")
    grey = np.asarray(photo.convert("L"), dtype=np.float64)
    low_grey = np.round(grey / 255 * 1000).astype(np.uint16)  # the bottom 1.5 % of 16 bits
    save("grey16-low.png", Expect(faces=GOOD, upright=True),
         lambda p: Image.fromarray(low_grey).save(p, compress_level=1))
    # with an alpha channel it was decoded near black by Pillow's 8-bit RGBA, and no face found
    save("greyalpha16-low.png", Expect(faces=GOOD, upright=True),
         lambda p: p.write_bytes(_grey_alpha_png_16(low_grey)))
    bgr = cv2.cvtColor(np.asarray(photo), cv2.COLOR_RGB2BGR).astype(np.float64)
    low_colour = np.round(bgr / 255 * 1023).astype(np.uint16)  # 10-bit data in 16 bits
    save("colour16-low.png", Expect(faces=GOOD, upright=True),
         lambda p: cv2.imwrite(str(p), low_colour))
    # a sensor's stuck pixel at the top of 16 bits set the range to 16 bits: near black, no
    # face (probe hostile30); the stray few values above the rest are clipped instead
    hot_grey, hot_colour = low_grey.copy(), low_colour.copy()
    hot_grey[3, 5] = hot_colour[7, 2, 1] = 65535
    save("grey16-low-hot-pixel.png", Expect(faces=GOOD, upright=True),
         lambda p: Image.fromarray(hot_grey).save(p, compress_level=1))
    save("colour16-low-hot-pixel.png", Expect(faces=GOOD, upright=True),
         lambda p: cv2.imwrite(str(p), hot_colour))
    # XMP Photoshop grew past the 1 MB Pillow inflates made the PNG "corrupt" (probe hostile30)
    xmp = zlib.compress(b"<x:xmpmeta>" + b"<rdf:li>xmp.did:0123456789abcdef</rdf:li>" * 30_000)
    save("large-xmp.png", Expect(faces=GOOD, upright=True),
         lambda p: p.write_bytes(_png_with_chunk_after_header(
             photo, b"iTXt", b"XML:com.adobe.xmp\0\x01\0\0\0" + xmp)))
    # a PPM's maxval 65535 was scaled by Pillow as the PNG's high bytes were (probe hostile21)
    save("colour16-low.ppm", Expect(faces=GOOD, upright=True),
         lambda p: cv2.imwrite(str(p), low_colour))
    # a 16-bit colour TIFF came out near black the same way (Pillow keeps high bytes), and
    # its orientation must still turn it upright
    turned = np.asarray(photo.transpose(Image.Transpose.ROTATE_90), dtype=np.float64)
    save("colour16-low-sideways.tif", Expect(faces=GOOD, upright=True),
         lambda p: p.write_bytes(_rgb_tiff_16(np.round(turned / 255 * 1023), 6)))
    # an animation whose first frame is blank: the warning says only that frame was read
    save("blank-first-frame.gif", Expect(faces=0, warning="first frame, the only one read"),
         lambda p: Image.new("RGB", photo.size, "white").save(
             p, save_all=True, append_images=[photo.convert("P")], duration=100))
    near_black = np.full((300, 400), 2, dtype=np.uint16)
    near_black[::7, ::5] = 3
    save("grey16-blank.png", Expect(faces=0, warning="nearly every pixel has the same value "
                                                     "(level "),  # a grey: one level
         lambda p: Image.fromarray(near_black).save(p))
    sideways = photo.transpose(Image.Transpose.ROTATE_90)  # upright once turned by orientation 6
    pillow_heif.register_heif_opener()  # Pillow writes HEIC through it (pgface reads lazily)
    for suffix, kind, fast in ((".heic", "HEIF", {"enc_params": {"preset": "ultrafast"}}),
                               (".avif", "AVIF", {"speed": 10})):
        save(f"phone{suffix}", Expect(faces=GOOD, upright=True, dated=True),
             lambda p, kind=kind, fast=fast: sideways.save(p, kind, quality=90,
                                                           exif=_exif(6, dated=True), **fast))
        # cut in half: a truncated AVIF was "not an image (unrecognised format)"
        whole = (folder / f"phone{suffix}").read_bytes()
        save(f"phone-half{suffix}", Expect(reason="corrupt or truncated image"),
             lambda p, whole=whole: p.write_bytes(whole[: len(whole) // 2]))

    # Broken files the older tests met one by one (tests/test_imaging.py, tests/test_index.py)
    save("notes.jpg", Expect(reason="not an image"), lambda p: p.write_text("not a photo at all"))
    # a PNG whose header's checksum is wrong: broken, not "not an image"
    png = bytearray(_bomb_png(64, 48))
    png[29] ^= 0xFF
    save("bad-crc.png", Expect(reason="corrupt or truncated image (a PNG file"),
         lambda p: p.write_bytes(bytes(png)))
    save("random.webp", Expect(reason="not an image"),
         lambda p: p.write_bytes(np.random.default_rng(4).bytes(5000)))
    jpeg = io.BytesIO()
    _noise(300, 300, 5).save(jpeg, "JPEG", quality=90)
    save("truncated.jpg", Expect(reason="truncated"),
         lambda p: p.write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 3]))
    # Cut short and then closed with the end marker (a broken copy, a tool that lost data): the
    # rest of the picture came out grey and half a face was stored, without a word (probe
    # hostile21); plain, with EXIF (Pillow's path), and CMYK (Pillow's own decoder)
    for name, image, options in (("cut-closed.jpg", photo, {}),
                                 ("cut-closed-exif.jpg", photo, {"exif": _exif(1)}),
                                 ("cut-closed-cmyk.jpg", photo.convert("CMYK"), {})):
        closed = io.BytesIO()
        image.save(closed, "JPEG", quality=90, **options)
        save(name, Expect(reason="its image data ends before the picture does"),
             lambda p, closed=closed: p.write_bytes(
                 closed.getvalue()[: len(closed.getvalue()) // 3] + b"\xff\xd9"))
    # ... but a JPEG a few bytes short, closed again or without its end marker, is shown whole
    # by Pillow and browsers (its last blocks filled in): refused whole, it cost its photo
    # (probe reprobe23)
    whole = io.BytesIO()
    photo.save(whole, "JPEG", quality=90)
    save("one-byte-short.jpg", Expect(faces=GOOD, upright=True),
         lambda p: p.write_bytes(whole.getvalue()[:-3] + b"\xff\xd9"))
    save("no-end-marker.jpg", Expect(faces=GOOD, upright=True),
         lambda p: p.write_bytes(whole.getvalue()[:-2]))
    # a CMYK one a few bytes short of its end marker too: its RGB twin was taken, and Pillow
    # refused it, "image file is truncated (6 bytes not processed)"
    cmyk = io.BytesIO()
    photo.convert("CMYK").save(cmyk, "JPEG", quality=90)
    save("cmyk-bytes-short.jpg", Expect(faces=GOOD, upright=True),
         lambda p: p.write_bytes(cmyk.getvalue()[:-10]))
    # ... and a small one (LFW's 250 pixels), whose last row of blocks is 6 % of it: the row
    # the cut is in was counted lost whole, and such a photo a byte short refused (reprobe25)
    small = io.BytesIO()
    photo.resize((250, 250 * photo.height // photo.width)).save(small, "JPEG", quality=90)
    save("small-one-byte-short.jpg", Expect(faces=GOOD),
         lambda p: p.write_bytes(small.getvalue()[:-3] + b"\xff\xd9"))
    # ... a white border at its bottom is the photo's, not data lost: it was "the bottom 8% of
    # it is missing" (probe reprobe24)
    framed = Image.new("RGB", (photo.width, photo.height * 11 // 10), "white")
    framed.paste(photo, (0, 0))
    bordered = io.BytesIO()
    framed.save(bordered, "JPEG", quality=90)
    save("border-no-end-marker.jpg", Expect(faces=GOOD),
         lambda p: p.write_bytes(bordered.getvalue()[:-2]))
    # a progressive JPEG cut before its last scans is whole but coarse everywhere (no flat
    # rows tell it): refused; cut in its last scan, it lost a bit of detail: taken
    progressive = io.BytesIO()
    photo.save(progressive, "JPEG", quality=90, progressive=True)
    save("progressive-cut.jpg", Expect(reason="a progressive JPEG cut before its last scans"),
         lambda p: p.write_bytes(progressive.getvalue()[:len(progressive.getvalue()) // 3]))
    save("progressive-short.jpg", Expect(faces=GOOD, upright=True),
         lambda p: p.write_bytes(progressive.getvalue()[:-66] + b"\xff\xd9"))
    # Its data ending in an 0xFF: the end marker's D9 alone lost (whole to the eye) was refused
    # as Pillow's "image file is truncated", and one cut after a stuffed FF (its 00 lost) taken
    # with its lost half grey: the filler after the FF made a marker (probe reprobe27)
    save("last-byte-short.jpg", Expect(faces=GOOD, upright=True),
         lambda p: p.write_bytes(whole.getvalue()[:-1]))
    save("small-last-byte-short.jpg", Expect(faces=GOOD),
         lambda p: p.write_bytes(small.getvalue()[:-1]))
    stuffed = whole.getvalue().find(b"\xff\x00", len(whole.getvalue()) // 2)
    for name, end in (("cut-after-ff.jpg", b"\xff\xd9"), ("cut-after-ff-open.jpg", b"")):
        save(name, Expect(reason="the bottom 45% of it is missing"),
             lambda p, end=end: p.write_bytes(whole.getvalue()[:stuffed + 1] + end))
    save("empty.png", Expect(reason="empty"), lambda p: p.write_bytes(b""))
    save("bomb.png", Expect(reason="over the limit"), lambda p: p.write_bytes(_bomb_png(60_000,
                                                                                       60_000)))
    save("oversize.jpg", Expect(reason="over the limit"),
         lambda p: (p.touch(), os.truncate(p, MAX_FILE_BYTES + 1)))  # sparse: nothing written
    save("png-named.jpg", Expect(faces=GOOD, upright=True),
         lambda p: photo.save(p, "PNG", compress_level=1))
    save("notes.txt", Expect(), lambda p: p.write_text("a sidecar file: never read"))
    # Formats Pillow has plugins for and pgface does not read (README's list): an EPS was
    # handed to Ghostscript (the test's `gs` on PATH says whether it ran); an ICO decoded the
    # PNG inside it in Image.open, before the pixel limit was checked (here 60,000 squared,
    # over the limit: a 1 MB file of 20,000 squared took 1.7 GB); a TGA was read as a photo.
    save("postscript.jpg", Expect(reason="not a format pgface reads (a PostScript (EPS) file"),
         lambda p: p.write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 80\n"
                                "newpath 10 10 moveto 90 70 lineto stroke\nshowpage\n"))
    save("icon.jpg", Expect(reason="not a format pgface reads (a Windows icon (ICO) file"),
         lambda p: p.write_bytes(_icon_over_png(_bomb_png(60_000, 60_000))))
    save("targa.jpg", Expect(reason="not a format pgface reads (a Truevision TGA file"),
         lambda p: photo.save(p, "TGA"))

    # Colour modes, frames and orientations
    save("cmyk.jpg", Expect(faces=GOOD, upright=True),
         lambda p: photo.convert("CMYK").save(p, "JPEG", quality=92))
    alpha = np.asarray(photo.convert("RGBA")).copy()
    alpha[:40, :, 3] = 0  # a transparent band along the top
    save("alpha.png", Expect(faces=GOOD, upright=True),
         lambda p: Image.fromarray(alpha, "RGBA").save(p, compress_level=1))
    frames = [photo, Image.new("RGB", photo.size, (20, 40, 60))]
    save("animated.gif", Expect(faces=GOOD, upright=True),
         lambda p: frames[0].save(p, save_all=True, append_images=frames[1:], duration=100))
    save("animated.webp", Expect(faces=GOOD, upright=True),
         lambda p: frames[0].save(p, save_all=True, append_images=frames[1:], duration=100,
                                  quality=90, method=0))
    for orientation, transpose in STORED_AS.items():
        stored = photo if transpose is None else photo.transpose(transpose)
        save(f"orientation-{orientation}.jpg", Expect(faces=GOOD, upright=True, dated=True),
             lambda p, s=stored, o=orientation: s.save(p, "JPEG", quality=92,
                                                        exif=_exif(o, dated=True)))
    # its colour, where it had "level 73 of 255", a grey it does not hold (probe hostile24)
    save("dot.png", Expect(faces=0, warning="nearly every pixel has the same value (colour "
                                            "RGB 200, 10, 10)"),
         lambda p: Image.new("RGB", (1, 1), (200, 10, 10)).save(p))
    # a face on a white page, as a scanned ID is: nearly every pixel is white, and the face
    # found; it was stored with the warning that no face can be found in it
    save("face-on-a-page.png", Expect(faces=1), lambda p: face_on_a_page().save(p))

    # Things that are not regular files
    save("zero.jpg", Expect(reason="empty"), lambda p: p.touch())
    inner = folder / "folder.jpg"  # a folder, whatever its name, is walked
    inner.mkdir()
    inner.chmod(0o755)
    save("folder.jpg/inside.png", Expect(faces=0), lambda p: _noise(64, 48, 7).save(p))
    (folder / "loop.jpg").symlink_to("loop.jpg")
    expected["loop.jpg"] = Expect(reason="symbolic link loop")
    (folder / "dangling.jpg").symlink_to("nowhere.jpg")
    expected["dangling.jpg"] = Expect(reason="broken symbolic link")
    (folder / "device.jpg").symlink_to("/dev/zero")  # endless, if it were ever read
    expected["device.jpg"] = Expect(reason="a device")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(folder / "socket.jpg"))
    listener.close()  # the socket file stays
    expected["socket.jpg"] = Expect(reason="a socket")
    return expected


def cli(args: list[str], env: dict[str, str], user: list[str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    """`pgface ARGS` in a process of its own (as another user when given); killed if it hangs."""
    command = [*(user or []), sys.executable, "-c", "from pgface.cli import main; main()", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    """conftest's CLI environment, complete for a subprocess, with this corpus's size limit."""
    src = str(REPO / "src")
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
        **env,
        "PGFACE_MAX_FILE_BYTES": str(MAX_FILE_BYTES),
    }


@pytest.fixture
def corpus_dir(work_dir: Path) -> Iterator[Path]:
    # Under the session's 0755 folder: reachable by the server's user and by `nobody`.
    folder = work_dir / f"corpus-{uuid.uuid4().hex[:8]}"
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def stored_photos(pf: Pgface) -> dict[str, dict]:
    """Every stored photo, keyed by its stored path."""
    with pf.pool.connection() as conn:
        return {row["path"]: row for row in store.list_photos(conn, limit=10_000)}


def test_a_link_loop_fails_alone_in_a_bulk_run_named_on_its_own_and_when_removed(
        pf: Pgface, corpus_dir: Path) -> None:
    """A probe's find: Path.resolve raised RuntimeError on a loop (before Python 3.13), so a
    loop among a bulk run's files (engine.BULK_MIN_PHOTOS or more), a loop named beside a good
    photo, or one given to `remove` stopped the whole command: "unexpected RuntimeError",
    nothing indexed in the first, no report in the others."""
    corpus_dir.mkdir()
    for i in range(engine.BULK_MIN_PHOTOS + 6):
        _noise(48, 48, i).save(corpus_dir / f"p{i:03}.png")
    (corpus_dir / "loop1.jpg").symlink_to("loop2.jpg")
    (corpus_dir / "loop2.jpg").symlink_to("loop1.jpg")

    report = pf.index(corpus_dir)

    assert report.indexed == engine.BULK_MIN_PHOTOS + 6
    assert sorted((Path(f.source).name, f.reason.split(" (")[0]) for f in report.failures) == [
        ("loop1.jpg", "symbolic link loop"), ("loop2.jpg", "symbolic link loop")]
    good = corpus_dir / "good.png"
    _noise(48, 48, 99).save(good)
    named = pf.index([good, corpus_dir / "loop1.jpg"])
    assert (named.indexed, [Path(f.source).name for f in named.failures]) == (1, ["loop1.jpg"])
    assert pf.remove([corpus_dir / "loop1.jpg"]).photos == 0


def test_every_hostile_or_odd_file_gets_its_outcome_and_the_good_photo_is_stored(
        pf: Pgface, env: dict[str, str], corpus_dir: Path) -> None:
    expected = make_corpus(corpus_dir)
    tools = corpus_dir.parent / f"{corpus_dir.name}-bin"  # a Ghostscript that says it ran
    tools.mkdir()
    ran = tools / "gs-ran"
    (tools / "gs").write_text(f"#!/bin/sh\ntouch {ran}\nexit 1\n")
    (tools / "gs").chmod(0o755)
    env = {**env, "PATH": f"{tools}{os.pathsep}{env.get('PATH', os.defpath)}"}
    # every file's stamp can be trusted, so that each failure of its content is remembered
    # (one written a moment before it is read is read again by the next run)
    time.sleep(STAMP_SETTLE_S + 0.2)

    first = cli(["index", str(corpus_dir), "--json"], env)
    assert not ran.exists(), "Ghostscript ran"

    assert "Traceback" not in first.stderr + first.stdout, first.stderr
    assert first.returncode == 1, first.stderr  # some files failed
    report = json.loads(first.stdout)
    failed = {str(Path(f["file"]).relative_to(corpus_dir)): f["reason"]
              for f in report["failures"]}
    warned = {str(Path(w["file"]).relative_to(corpus_dir)): w["reason"]
              for w in report["warnings"]}
    stored = {str(Path(path).relative_to(corpus_dir.resolve())): row
              for path, row in stored_photos(pf).items()}
    good = stored["good.jpg"]
    assert good["face_count"] >= 1
    upright = (good["width"], good["height"])
    for name, expect in expected.items():
        if expect.reason is not None:
            assert name in failed and expect.reason in failed[name], (name, failed.get(name))
            assert name not in stored, name
            continue
        assert name not in failed, (name, failed[name])
        if expect.faces is None:  # not a photo file: not even looked at
            assert name not in stored, name
            continue
        assert name in stored, name
        row = stored[name]
        want = good["face_count"] if expect.faces == GOOD else expect.faces
        assert row["face_count"] == want, (name, row["face_count"], want)
        if expect.upright:
            assert (row["width"], row["height"]) == upright, name
        if expect.dated:
            assert row["taken_at"] == TAKEN, name
        if expect.warning is not None:
            assert expect.warning in warned.get(name, ""), (name, warned.get(name))
        else:
            assert name not in warned, (name, warned[name])
    assert set(failed) == {n for n, e in expected.items() if e.reason is not None}
    assert report["indexed"] == len(stored)
    assert report["faces"] == sum(row["face_count"] for row in stored.values())

    # The files whose content failed are remembered; those that failed for the moment (not
    # regular files, links that lead nowhere) are not.
    with pf.pool.connection() as conn:
        remembered = {str(Path(r[0]).relative_to(corpus_dir.resolve()))
                      for r in conn.execute("SELECT path FROM failed_files")}
    assert {"empty.png", "notes.jpg"} <= remembered <= set(failed), remembered
    assert not {"fifo.jpg", "device.jpg", "dangling.jpg"} & remembered, remembered
    for name in remembered:
        assert not re.search(r"not a regular file|symbolic link|cannot read", failed[name]), (
            name, failed[name])

    # Again, as a person would run it: one line per failure of the moment, the others counted
    # unread, nothing new stored.
    again = cli(["index", str(corpus_dir)], env)

    assert "Traceback" not in again.stderr + again.stdout, again.stderr
    assert again.returncode == 1
    lines = again.stderr.splitlines()
    moment = len(failed) - len(remembered)
    assert sum(line.startswith("failed ") for line in lines) == moment
    assert f"failed {corpus_dir / 'fifo.jpg'}: a FIFO (named pipe)" in again.stderr
    assert (f"0 photos indexed, 0 faces, {len(stored)} already indexed, {moment} failed"
            in again.stderr)
    assert (f"{len(remembered)} files that failed before and are unchanged were not read again"
            in " ".join(again.stderr.split()))
    assert not any(line.startswith("warning:") for line in lines)  # skipped, not decoded again
    assert len(stored_photos(pf)) == len(stored)
    assert sum(row["face_count"] for row in stored_photos(pf).values()) == report["faces"]


def _libjpeg_tool(name: str, data: bytes, *args: str) -> bytes:
    """DATA through libjpeg's cjpeg or jpegtran, which write what Pillow cannot: arithmetic
    coding and progressive JPEGs of a scan script given."""
    return subprocess.run([name, *args], input=data, capture_output=True, check=True).stdout


@pytest.mark.skipif(not (shutil.which("cjpeg") and shutil.which("jpegtran")),
                    reason="libjpeg's cjpeg and jpegtran (libjpeg-turbo-progs) are not installed")
def test_a_cut_arithmetic_or_progressive_jpeg_is_judged_by_what_its_last_scan_lost(
        tmp_path: Path) -> None:
    """Probe reprobe27: an arithmetic-coded JPEG cut at half and closed by an end marker
    decoded with no warning (libjpeg's arithmetic decoder reads zeros past a marker), its lost
    half garbage, and was taken; a progressive JPEG whose last scan is a first pass of luma's
    detail, cut early in that scan, was taken with no detail in nearly all of it. Probe
    reprobe28: a whole arithmetic JPEG whose lower part is one colour was refused as cut."""
    limits = {"max_bytes": 10**8, "max_pixels": 10**8}
    ppm = io.BytesIO()
    Image.open(good_photo()).convert("RGB").save(ppm, "PPM")
    for options in (["-arithmetic"], ["-arithmetic", "-progressive"],
                    ["-arithmetic", "-grayscale"]):
        whole = _libjpeg_tool("cjpeg", ppm.getvalue(), "-quality", "85", *options)
        for data in (whole, whole[:-1], whole[:-10] + b"\xff\xd9"):  # whole, or a few bytes
            assert decode_photo(data, "arithmetic.jpg", **limits).image.shape[0] > 0
        with pytest.raises(ImageError, match=r"arithmetic.jpg: corrupt or truncated image \(its "
                                             r"image data ends before the picture does: "):
            decode_photo(whole[:len(whole) // 2] + b"\xff\xd9", "arithmetic.jpg", **limits)
    # Probe reprobe28: a whole arithmetic JPEG whose lower part is one colour (a white border, a
    # black band) was refused as "the bottom 63% of it is missing": its encoder codes that part
    # in zeros it drops, which the filler past them rewrote. Cut in its picture, it is refused.
    for colour, options in ((255, []), (255, ["-sample", "1x1"]), (0, ["-rgb"]),
                            (255, ["-quality", "5"]), (128, ["-restart", "1"]),
                            (0, ["-grayscale"]), (128, ["-progressive"])):
        pixels = np.array(Image.open(good_photo()).convert("RGB"))
        pixels[pixels.shape[0] // 3:] = colour
        flat = io.BytesIO()
        Image.fromarray(pixels).save(flat, "PPM")
        whole = _libjpeg_tool("cjpeg", flat.getvalue(), "-arithmetic", *options)
        for data in (whole, whole[:-1]):
            assert decode_photo(data, "flat.jpg", **limits).image.shape[0] > 0, options
        if "-progressive" in options:
            continue  # cut, it ends in a refinement scan
        with pytest.raises(ImageError, match="the bottom [0-9]+% of it is missing"):
            decode_photo(whole[:len(whole) // 4] + b"\xff\xd9", "flat.jpg", **limits)
    # Probe reprobe30: a JPEG of restart intervals (cameras write them), of any coding, cut
    # where an interval ends and closed by an end marker, was taken with its lost part grey
    # (libjpeg says "found marker 0xd9 instead of RSTn", not "premature end"); an
    # arithmetic-coded one so cut anywhere too
    for options in (["-restart", "1"], ["-restart", "4B"], ["-arithmetic", "-restart", "1"],
                    ["-progressive", "-restart", "1"]):
        whole = _libjpeg_tool("cjpeg", ppm.getvalue(), *options)
        for data in (whole, whole[:-1], whole[:-4] + b"\xff\xd9"):
            assert decode_photo(data, "restarts.jpg", **limits).image.shape[0] > 0, options
        restarts = [found.start() for found in re.finditer(rb"\xff[\xd0-\xd7]", whole)]
        at = min(restarts, key=lambda start: abs(start - len(whole) // 3))
        for cut in (at, at + 2, at - 20):  # before its restart marker, after it, inside one
            with pytest.raises(ImageError, match=r"restarts.jpg: corrupt or truncated image "
                                                 r"\(its image data ends before the picture"):
                decode_photo(whole[:cut] + b"\xff\xd9", "restarts.jpg", **limits)
    # a whole arithmetic JPEG of one block: filler where its data ends rewrote that block
    tiny = io.BytesIO()
    Image.open(good_photo()).convert("RGB").resize((8, 8)).save(tiny, "PPM")
    arithmetic = _libjpeg_tool("cjpeg", tiny.getvalue(), "-arithmetic", "-sample", "1x1")
    assert decode_photo(arithmetic, "tiny.jpg", **limits).image.shape == (8, 8, 3)

    script = tmp_path / "luma-last.scans"
    script.write_text("0,1,2: 0-0, 0, 0;\n1: 1-63, 0, 0;\n2: 1-63, 0, 0;\n0: 1-63, 0, 0;\n")
    whole = _libjpeg_tool("jpegtran", _libjpeg_tool("cjpeg", ppm.getvalue(), "-quality", "90"),
                          "-scans", str(script))
    last = whole.rindex(b"\xff\xda")
    for cut, share in ((last + 24, "100"), ((last + len(whole)) // 2, "4")):
        with pytest.raises(ImageError, match=f"the bottom {share}[0-9]*% of it is missing the "
                                             f"detail of its last scan"):
            decode_photo(whole[:cut] + b"\xff\xd9", "luma-last.jpg", **limits)
    assert decode_photo(whole[:-3] + b"\xff\xd9", "luma-last.jpg", **limits).width > 0


def test_a_photo_whose_end_is_still_zeros_is_judged_as_cut_where_its_writing_stopped() -> None:
    """Probe nas33: a copy that sets the file's size first and then writes it (Windows and SMB
    copies, rsync --preallocate) leaves zeros where its data is still to come. Decoded as coded
    data, a progressive JPEG so caught with 70 % written was taken with its picture wrong in a
    quarter of its rows, where the same file cut there was measured as cut."""
    limits = {"max_bytes": 10**8, "max_pixels": 10**8}
    photo = Image.open(good_photo()).convert("RGB")
    photo = photo.resize((photo.width * 2, photo.height * 2))  # 4.5 MP
    for options in ({"progressive": True}, {}):
        data = io.BytesIO()
        photo.save(data, "JPEG", quality=95, **options)
        whole = data.getvalue()
        for share in (0.3, 0.8, 0.9):
            # its data where the copy stopped (zeros it ends with are coded data or not
            # written: no file tells; a white page's detail codes long runs of them)
            written = whole[:round(len(whole) * share)].rstrip(b"\x00")
            unwritten = written + bytes(len(whole) - len(written))
            try:
                cut = decode_photo(written, "copying.jpg", **limits)
            except ImageError as refused:
                with pytest.raises(ImageError) as caught:
                    decode_photo(unwritten, "copying.jpg", **limits)
                assert str(caught.value) == (f"{refused}; its last {len(whole) - len(written):,}"
                                             f" bytes are zeros, as a copy still being written "
                                             f"leaves them"), (options, share)
                continue
            taken = decode_photo(unwritten, "copying.jpg", **limits)
            assert np.array_equal(taken.image, cut.image), (options, share)
            assert taken.size_bytes == len(whole)
            assert taken.sha256 == hashlib.sha256(unwritten).digest()
        padded = decode_photo(whole + bytes(4096), "padded.jpg", **limits)  # zeros after its end
        assert np.array_equal(padded.image, decode_photo(whole, "whole.jpg", **limits).image)
    # Probe reprobe34: a WebP or an iPhone's HEIC so caught was stored with a third of its rows
    # wrong; an EXIF block padded with zeros at the end of a whole one is no loss
    pillow_heif.register_heif_opener()  # Pillow writes HEIC and AVIF through it
    photo = Image.open(good_photo()).convert("RGB")  # 1.1 MP: encoding these at 4.5 took 10 s
    exif = Image.Exif()
    exif[0x010F] = "Camera"  # Make
    padded_exif = exif.tobytes() + bytes(2000)
    for fmt, options in (("WEBP", {"quality": 90}), ("WEBP", {"lossless": True}),
                         ("HEIF", {"quality": 80}), ("AVIF", {"quality": 60}), ("PNG", {})):
        data = io.BytesIO()
        photo.save(data, fmt, exif=padded_exif, **options)
        whole = data.getvalue()
        assert decode_photo(whole, "whole", **limits).image.shape[:2] == (photo.height,
                                                                         photo.width)
        written = round(len(whole) * 0.7)
        with pytest.raises(ImageError, match=r"^copying: corrupt or truncated image \(.*\); its "
                                             r"last [0-9,]+ bytes are zeros, as a copy still "
                                             r"being written leaves them$"):
            decode_photo(whole[:written] + bytes(len(whole) - written), "copying", **limits)
    # an ISO media file with no picture items (a video's ftyp) and zeros at its end: no image,
    # said so (its layout's StopIteration escaped)
    clip = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2\x00\x00\x00\x08free" + bytes(200)
    with pytest.raises(ImageError, match=r"^clip.mp4: not an image \(unrecognised format\)$"):
        decode_photo(clip, "clip.mp4", **limits)
    # a HEIF whose iloc box claims 2^32 - 1 items in a few bytes, ending in zeros: its layout
    # is read no further than the box (the loop over its items ran for hours)

    def box(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", 8 + len(body)) + kind + body

    places = box(b"iloc", b"\x02\x00\x00\x00\x44\x00\xff\xff\xff\xff")
    hostile = (box(b"ftyp", b"heic\x00\x00\x00\x00mif1heic")
               + box(b"meta", bytes(4) + box(b"iinf", bytes(6)) + places) + bytes(1000))
    with pytest.raises(ImageError, match=r"^hostile.heic: corrupt or truncated image"):
        decode_photo(hostile, "hostile.heic", **limits)
    # and items of 65,535 places of no bytes each (an hour and all the memory, reprobe38)
    coded = box(b"infe", b"\x02\x00\x00\x00\x00\x01\x00\x00hvc1\x00")
    places = box(b"iloc", bytes(6) + struct.pack(">H", 40) + b"\x00\x01\x00\x00\xff\xff" * 40)
    hostile = (box(b"ftyp", b"heic\x00\x00\x00\x00mif1heic") + box(b"meta", bytes(4) + box(
        b"iinf", bytes(4) + b"\x00\x01" + coded) + places) + bytes(1000))
    with pytest.raises(ValueError, match="extents that hold no place"):
        imaging._heif_image_spans(hostile)  # 2.6 million places before, 2 s and 300 MB
    with pytest.raises(ImageError, match=r"^hostile.heic: corrupt or truncated image"):
        decode_photo(hostile, "hostile.heic", **limits)


def test_the_cli_prints_a_warning_line_for_a_photo_that_looks_blank(
        env: dict[str, str], tmp_path: Path) -> None:
    blank = tmp_path / "scan.png"
    Image.fromarray(np.full((120, 160), 3, dtype=np.uint16)).save(blank)

    done = CliRunner().invoke(app, ["index", str(blank)], env=env)

    assert done.exit_code == 0, done.output  # stored: a warning is not a failure
    assert f"warning: {blank}: nearly every pixel has the same value" in done.output
    assert "1 photo indexed" in done.output


def test_a_search_or_upload_of_a_photo_that_looks_blank_says_why_no_face_was_found(
        pf: Pgface, env: dict[str, str], settings: Settings, tmp_path: Path) -> None:
    """`pgface index` warned of a blank photo; a search of it (CLI, Python API, HTTP) and an
    upload answered no face and said nothing of why."""
    from fastapi.testclient import TestClient

    from pgface.api import create_app

    blank = tmp_path / "scan.png"
    Image.fromarray(np.full((120, 160), 3, dtype=np.uint16)).save(blank)
    said = "nearly every pixel has the same value"
    found = pf.search(blank)
    assert found.faces == [] and any(
        n.startswith(f"{blank}: {said}") for n in found.notices), found.notices
    assert "stored" not in found.notices[0]  # a query photo is not stored
    for command in (["search"], ["people", "identify"], ["people", "search"]):
        done = CliRunner().invoke(app, [*command, str(blank), "--json"], env=env)
        assert done.exit_code == 0 and f"notice: {blank}: {said}" in done.output, done.output
    identified = pf.people.identify(blank)
    assert identified.faces == [] and said in (identified.warning or ""), identified
    with TestClient(create_app(settings.model_copy(
            update={"upload_dir": tmp_path / "uploads"}), pf.analyzer)) as client:
        searched = client.post("/api/search", files={"file": ("scan.png", blank.read_bytes())})
        assert searched.status_code == 200, searched.text
        assert any(n.startswith(f"scan.png: {said}") for n in searched.json()["notices"])
        identified = client.post("/api/identify",
                                 files={"file": ("scan.png", blank.read_bytes())})
        assert identified.status_code == 200, identified.text
        assert any(n.startswith(f"scan.png: {said}") for n in identified.json()["notices"])
        # A face found on a page nearly all white: no word of a blank photo with no face.
        page = tmp_path / "id-scan.png"
        face_on_a_page().save(page)
        searched = client.post("/api/search", files={"file": ("id-scan.png", page.read_bytes())})
        assert len(searched.json()["faces"]) == 1 and not any(
            said in n for n in searched.json()["notices"]), searched.json()["notices"]
        uploaded = client.post("/api/photos", files={"file": ("id-scan.png", page.read_bytes())})
        assert uploaded.status_code in (200, 201), uploaded.text
        assert uploaded.json()["warning"] is None
        sent = client.post("/api/photos", files={"file": ("scan.png", blank.read_bytes())})
        assert sent.status_code == 201 and said in sent.json()["warning"], sent.text
        again = client.post("/api/photos", files={"file": ("scan.png", blank.read_bytes())})
        assert again.status_code == 200 and again.json()["warning"] is None, again.text
    found = pf.search(page)
    assert len(found.faces) == 1 and not any(said in n for n in found.notices), found.notices
    identified = pf.people.identify(page)
    assert len(identified.faces) == 1 and identified.warning is None
    # a photo with faces has none
    assert not any(n.startswith(str(good_photo())) for n in pf.search(good_photo()).notices)


@pytest.mark.parametrize("size", [(100_000, 1), (1, 50_000), (1, 1), (3, 5000)])
def test_search_compare_and_identify_on_extreme_images_answer_no_face(
        pf: Pgface, tmp_path: Path, size: tuple[int, int]) -> None:
    path = tmp_path / "extreme.png"
    _noise(*size, 8).save(path)
    assert pf.search(path).faces == []
    with pytest.raises(NoFaceError, match="no face"):
        pf.compare(path, good_photo())
    assert pf.people.identify(path.read_bytes()).faces == []


def test_special_files_named_directly_are_refused_without_being_opened(
        pf: Pgface, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.jpg")
    (tmp_path / "dir.jpg").mkdir()
    for name, reason in (("fifo.jpg", "FIFO"), ("dir.jpg", "a folder")):
        with pytest.raises(ImageError, match=reason):
            pf.search(tmp_path / name)  # a FIFO opened for reading would block here
    with pytest.raises(ImageError, match="a device"):
        read_file(Path("/dev/zero"), max_bytes=1 << 20)
    report = pf.index([tmp_path / "fifo.jpg", tmp_path / "dir.jpg", good_photo()])
    assert report.indexed == 1 and report.faces >= 1
    assert [f.reason for f in report.failures] == [
        "a FIFO (named pipe), not a regular file: not opened"]


def test_reading_stops_at_its_deadline(tmp_path: Path) -> None:
    path = tmp_path / "slow.jpg"
    path.write_bytes(b"\xff" * (3 << 20))  # three chunks: the deadline is checked between them
    with pytest.raises(ImageError, match="reading took over"):
        read_file(path, max_bytes=1 << 30, timeout_s=0.0)
    assert len(read_file(path, max_bytes=1 << 30)) == 3 << 20


def test_one_photo_failing_in_analysis_costs_the_batch_nothing(
        settings: Settings, analyzer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # A crop size of 0 makes OpenCV fail on every face thumbnail: the only way to reach this
    # path with real code now that extreme images are analysed.
    for number in range(3):
        _noise(120, 90, 10 + number).save(tmp_path / f"noface-{number}.png")
    shutil.copy(good_photo(), tmp_path / "faces.jpg")
    with Pgface(settings.model_copy(update={"crop_size": 0}), analyzer=analyzer) as broken:
        report = broken.index([tmp_path])
    assert report.indexed == 3 and report.faces == 0
    assert len(report.failures) == 1
    assert report.failures[0].source.endswith("faces.jpg")
    assert "cannot analyse image" in report.failures[0].reason
    assert "\n" not in report.failures[0].reason


def ordinary_user(env: dict[str, str]) -> list[str]:
    """The command prefix that runs a process as an ordinary user: none for one, and user
    nobody for root (who reads anything); skips where that cannot be done."""
    if os.geteuid() != 0:
        return []
    user = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    if shutil.which("setpriv") is None:
        pytest.skip("running as root and setpriv (util-linux) is missing")
    probe = subprocess.run([*user, sys.executable, "-c", "import pgface"], env=env,
                           capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"user nobody cannot import pgface from here: {probe.stderr[-300:]}")
    return user


def test_paths_that_cannot_be_reached_are_failures_and_the_rest_is_indexed(
        pf: Pgface, tmp_path: Path) -> None:
    # A path the system would not look up (too long a name here; permission denied for an
    # ordinary user) stopped the whole run before anything was stored; a link to a folder
    # that cannot be reached (`Camera -> /mnt/camera`, not mounted) was passed over unsaid.
    good = tmp_path / "good"
    good.mkdir()
    shutil.copy(good_photo(), good / "a.jpg")
    (good / "Camera").symlink_to("/nonexistent/mnt/camera")
    (good / "notes.txt").symlink_to("/nonexistent/notes.txt")  # a file's link: no photo
    (good / "notes").symlink_to("/nonexistent/notes.txt")  # a file's link too
    (good / ".#draft").symlink_to("/nonexistent/lock")  # hidden: passed over as hidden files
    too_long = tmp_path / ("x" * 300 + ".jpg")
    report = pf.index([good, too_long])
    assert report.indexed == 1
    assert sorted((f.source, f.reason) for f in report.failures) == [
        (str(good / "Camera"), "a link to a folder that cannot be reached (no such file or "
                               "folder): not followed"),
        (str(too_long), "cannot be reached (file name too long)")]
    assert pf.index([too_long], prune=True).failures[0].reason == (
        "cannot be reached (file name too long)")  # it was left out unsaid
    with pytest.raises(NotFoundError, match=r": cannot be reached \(file name too long\)$"):
        pf.people.enrol(too_long)  # a raw OSError


def test_a_path_an_ordinary_user_cannot_reach_is_one_failure(
        settings: Settings, analyzer: FaceAnalyzer, env: dict[str, str], corpus_dir: Path
) -> None:
    closed = corpus_dir / "closed"
    (corpus_dir / "good").mkdir(parents=True)
    closed.mkdir()
    for folder in (corpus_dir, corpus_dir / "good"):
        folder.chmod(0o755)
    shutil.copy(good_photo(), corpus_dir / "good" / "a.jpg")
    shutil.copy(good_photo(), closed / "b.jpg")
    closed.chmod(0)
    user = ordinary_user(env)
    env = {**env, "HOME": str(corpus_dir)}
    try:
        with socket_for_others(settings.database_url or "", corpus_dir / "db") as url:
            done = cli(["index", str(corpus_dir / "good"), str(closed / "b.jpg"), "--json"],
                       {**env, "PGFACE_DATABASE_URL": url}, user)
    finally:
        closed.chmod(0o755)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout or "null")
    assert report is not None, done.stderr  # "error: ...: Permission denied", nothing indexed
    assert report["indexed"] == 1
    assert [(f["file"], f["reason"]) for f in report["failures"]] == [
        (str(closed / "b.jpg"), "cannot be reached (permission denied)")]


def test_serve_refuses_an_upload_folder_its_user_may_not_write(
        env: dict[str, str], corpus_dir: Path) -> None:
    # It started, and every new upload was a 500 PermissionError.
    corpus_dir.mkdir()
    corpus_dir.chmod(0o755)
    uploads = corpus_dir / "uploads"
    uploads.mkdir()
    uploads.chmod(0o555)
    user = ordinary_user(env)
    if not user and os.access(uploads, os.W_OK):  # an ordinary user who may write there
        pytest.skip("this user may write into a read-only folder")
    for folder, where in ((uploads, ""), (uploads / "new", f" (it would be made in {uploads})")):
        done = cli(["serve", "--port", "1"], {**env, "HOME": str(corpus_dir),
                                              "PGFACE_UPLOAD_DIR": str(folder)}, user)
        assert (done.returncode, done.stderr.splitlines()[-1]) == (
            1, f"error: PGFACE_UPLOAD_DIR {folder}: this user may not write there{where}; "
               f"uploaded photos are kept there"), done.stderr


def test_backup_and_restore_name_the_file_this_user_may_not_write_or_read(
        settings: Settings, env: dict[str, str], corpus_dir: Path) -> None:
    # pg_dump named its hidden temporary file; pg_restore's "could not open input file" was
    # "not a backup pg_restore can read"
    corpus_dir.mkdir()
    corpus_dir.chmod(0o755)
    closed = corpus_dir / "closed"
    closed.mkdir(mode=0o555)
    closed.chmod(0o555)
    locked = corpus_dir / "lib.dump"
    locked.write_bytes(b"PGDMP")
    locked.chmod(0)
    user = ordinary_user(env)
    if not user and os.access(closed, os.W_OK):
        pytest.skip("this user may write into a read-only folder")
    env = {**env, "HOME": str(corpus_dir)}
    with socket_for_others(settings.database_url or "", corpus_dir / "db") as url:
        env["PGFACE_DATABASE_URL"] = url
        backup = cli(["db", "backup", str(closed / "lib.dump")], env, user)
        restore = cli(["db", "restore", str(locked)], env, user)
    assert (backup.returncode, backup.stderr.splitlines()[-1]) == (
        1, f"error: {closed / 'lib.dump'}: this user may not write in folder {closed}"), backup
    assert (restore.returncode, restore.stderr.splitlines()[-1]) == (
        1, f"error: {locked}: cannot read it (permission denied)"), restore


def test_enrol_passes_over_a_file_it_cannot_read_and_enrols_the_rest(
        settings: Settings, analyzer: FaceAnalyzer, env: dict[str, str], corpus_dir: Path
) -> None:
    # Enrolment reads each file again to find its faces: a locked one made the whole call an
    # error after every photo had been indexed. A person folder it may not list was left out,
    # unsaid, the run ending well (a probe's find).
    alice, bob = corpus_dir / "people" / "alice", corpus_dir / "people" / "bob"
    alice.mkdir(parents=True)
    bob.mkdir()
    for folder in (corpus_dir, corpus_dir / "people", alice):
        folder.chmod(0o755)
    yao = next(p for p in sample_photos() if p.name == "yaoming.jpg")
    shutil.copy(yao, alice / "one.jpg")
    shutil.copy(good_photo(), alice / "locked.jpg")
    shutil.copy(good_photo(), bob / "bob.jpg")
    (alice / "locked.jpg").chmod(0)
    bob.chmod(0)
    user = ordinary_user(env)  # `analyzer` has put the models where that user reads them
    env = {**env, "HOME": str(corpus_dir)}

    try:
        with socket_for_others(settings.database_url or "", corpus_dir / "db") as url:
            done = cli(["people", "enrol", str(corpus_dir / "people"), "--json"],
                       {**env, "PGFACE_DATABASE_URL": url}, user)
    finally:
        bob.chmod(0o755)

    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1, done.stderr  # a failure to report, as `index` does
    report = json.loads(done.stdout or "null")
    assert report is not None, done.stderr
    assert report["people"] == {"alice": 1}
    assert [(Path(f["file"]).name, f["reason"]) for f in report["index"]["failures"]] == [
        ("locked.jpg", "cannot read file (permission denied)")]  # enrolment passed it over
    assert [(f["file"], f["reason"]) for f in report["failures"]] == [
        (str(bob), "cannot list folder (Permission denied)")]


def test_prune_keeps_the_photos_of_a_folder_it_may_not_enter(
        pf: Pgface, settings: Settings, env: dict[str, str], corpus_dir: Path) -> None:
    # A prune forgot every path os.path.exists called missing, and it calls a file behind a
    # folder pgface may not enter so: a permission changed on a share forgot its photos with
    # their people. Only what the system says is not there is gone.
    library = corpus_dir / "library"
    yao = next(p for p in sample_photos() if p.name == "yaoming.jpg")
    for name, photo in (("open", good_photo()), ("locked", yao)):
        (library / name).mkdir(parents=True)
        shutil.copy(photo, library / name / photo.name)
    for folder in (corpus_dir, library, library / "open", library / "locked"):
        folder.chmod(0o755)
    pf.index([library])
    locked_photo = library / "locked" / yao.name
    [face, *_] = pf.photo_faces([locked_photo])[str(locked_photo)]
    pf.people.name_faces([face.face_id], "Ada")
    before = {path: row["face_count"] for path, row in stored_photos(pf).items()}
    (library / "locked").chmod(0)
    user = ordinary_user(env)
    env = {**env, "HOME": str(corpus_dir)}
    try:
        with socket_for_others(settings.database_url or "", corpus_dir / "db") as url:
            done = cli(["index", "--prune", str(library), "--json"],
                       {**env, "PGFACE_DATABASE_URL": url}, user)
    finally:
        (library / "locked").chmod(0o755)

    assert "Traceback" not in done.stderr, done.stderr
    report = json.loads(done.stdout or "null")
    assert report is not None, done.stderr
    assert [(f["file"], f["reason"]) for f in report["failures"]] == [
        (str(library / "locked"), "cannot list folder (Permission denied)")]
    assert report["removed"] == {"photos": 0, "faces": 0, "paths": 0, "people_kept": 0,
                                 "named": [], "failed_files": 0, "waiting": 0,
                                 "waiting_for": [], "faces_by_pack": {},
                                 "linked_still_there": []}
    assert {path: row["face_count"] for path, row in stored_photos(pf).items()} == before
    assert pf.people.get("Ada").faces == 1


@contextmanager
def socket_for_others(url: str, folder: Path) -> Iterator[str]:
    """The URL of a PostgreSQL reached through a world-connectable Unix socket in folder,
    relayed to the server's own socket (0700, so another user cannot connect to it)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host, port = query["host"][0], query.get("port", ["5432"])[0]
    target = f"{host}/.s.PGSQL.{port}"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)

    class Relay(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with socket.socket(socket.AF_UNIX) as upstream:
                upstream.connect(target)
                pump = threading.Thread(target=_pump, args=(upstream, self.request), daemon=True)
                pump.start()
                _pump(self.request, upstream)
                pump.join()

    server = socketserver.ThreadingUnixStreamServer(str(folder / f".s.PGSQL.{port}"), Relay)
    server.daemon_threads = True
    (folder / f".s.PGSQL.{port}").chmod(0o777)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        query["host"] = [str(folder)]
        yield urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
    finally:
        server.shutdown()
        server.server_close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def test_a_file_without_read_permission_is_reported_as_such_for_an_ordinary_user(
        settings: Settings, analyzer: FaceAnalyzer, env: dict[str, str], corpus_dir: Path
) -> None:
    corpus_dir.mkdir()
    corpus_dir.chmod(0o755)
    _noise(80, 60, 9).save(corpus_dir / "readable.png")
    shutil.copy(good_photo(), corpus_dir / "locked.jpg")
    (corpus_dir / "locked.jpg").chmod(0)
    user = ordinary_user(env)  # `analyzer` has put the models where that user reads them
    env = {**env, "HOME": str(corpus_dir)}

    with socket_for_others(settings.database_url or "", corpus_dir / "db") as url:
        done = cli(["index", str(corpus_dir), "--json"], {**env, "PGFACE_DATABASE_URL": url},
                   user)

    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout or "null")
    assert report is not None, done.stderr
    assert report["indexed"] == 1
    assert [(Path(f["file"]).name, f["reason"]) for f in report["failures"]] == [
        ("locked.jpg", "cannot read file (permission denied)")]


def test_compare_of_a_photo_with_no_face_says_why_as_a_search_does(
        pf: Pgface, tmp_path: Path) -> None:
    """Probe hostile42: an animated GIF whose first frame, the only one read, is blank was
    "no face found" to compare (the CLI, HTTP and the Django lookup alike), where a search of
    it says that only its blank first frame was read."""
    animated = tmp_path / "face-second.gif"
    photo = Image.open(good_photo()).convert("RGB")
    Image.new("RGB", photo.size, "white").save(
        animated, save_all=True, append_images=[photo.convert("P")], duration=100)
    said = "its first frame, the only one read of its 2: nearly every pixel has the same value"
    assert any(said in notice for notice in pf.search(animated).notices)
    for pair in ((animated, good_photo()), (good_photo(), animated)):
        with pytest.raises(NoFaceError, match=f"face-second.gif: no face found; {said}") as no:
            pf.compare(*pair)
        # which of the two, without reading the message (probe pyapi39), pickled too
        assert no.value.source == str(animated)
        assert pickle.loads(pickle.dumps(no.value)).source == str(animated)
    with pytest.raises(NoFaceError, match=r"extreme.png: no face found$"):  # nothing to add
        _noise(60, 40, 8).save(tmp_path / "extreme.png")
        pf.compare(tmp_path / "extreme.png", good_photo())
