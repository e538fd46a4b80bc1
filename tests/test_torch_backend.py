"""The PyTorch backend (models/torch_backend.py, torch_graph.py): chosen only where it can run,
falling back to the CPU backends with the reason logged, and, run on the CPU, the same faces and
embeddings as ONNX Runtime on real photos, through detection, recognition, indexing and search.

The comparisons need PyTorch and onnx (test.sh installs a CPU build of PyTorch); without them
those tests are skipped with the reason, and the fallback test still runs."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import LFW, PHOTOS, require_data

from pgface import Pgface, Settings
from pgface.imaging import read_photo
from pgface.library import build_analyzer
from pgface.models import torch_backend
from pgface.models.align import norm_crop
from pgface.models.analysis import Face, FaceAnalyzer
from pgface.models.packs import resolve_pack, sample_photos
from pgface.models.sessions import CPU, available_providers, create_session

LFW_PHOTOS = ("Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "Abdullah_Gul/Abdullah_Gul_0013.jpg",
              "George_W_Bush/George_W_Bush_0353.jpg", "Serena_Williams/Serena_Williams_0017.jpg",
              "Tony_Blair/Tony_Blair_0006.jpg", "Colin_Powell/Colin_Powell_0038.jpg")


def require_torch() -> None:
    reason = torch_backend.unusable_reason(torch_backend.TORCH_CPU)
    if reason is not None:
        pytest.skip(f"the torch backend cannot run here: {reason}")


def cuda_usable() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@pytest.fixture(autouse=True)
def fresh_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees the once-per-process fallback line afresh."""
    monkeypatch.setattr(torch_backend, "_reported", set())


@pytest.fixture(scope="module")
def onnx_runtime(models_dir: Path) -> FaceAnalyzer:
    return build_analyzer(Settings(models_dir=models_dir, providers=[CPU]))


@pytest.fixture(scope="module")
def torch_cpu(models_dir: Path) -> FaceAnalyzer:
    require_torch()
    return build_analyzer(Settings(models_dir=models_dir, providers=["TorchCPU"]))


def photos() -> list[Path]:
    """Real photos: the install's samples (players.jpg: 21 faces), insightface's t1.jpg, group
    photos and LFW crops from the shared data where it is present."""
    found = [p for p in sample_photos() if p.name in ("players.jpg", "t1.jpg", "yaoming.jpg")]
    if PHOTOS.exists():
        found += [PHOTOS / "groups" / "bbt1.jpg", PHOTOS / "queries" / "obama_and_biden.jpg"]
    if LFW.exists():
        found += [LFW / "images" / name for name in LFW_PHOTOS]
    return found


def analysed(analyzer: FaceAnalyzer, paths: list[Path]) -> list[list[Face]]:
    images = [read_photo(p, 64 << 20, 100_000_000).image for p in paths]
    return analyzer.analyze(images)


def test_default_prefers_torch_cuda_and_falls_back_with_the_reason(
        models_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(models_dir=models_dir)
    assert settings.providers[0] == torch_backend.TORCH_CUDA
    caplog.set_level(logging.INFO, logger="pgface.models.torch_backend")
    chosen = available_providers(settings.providers)
    provider = build_analyzer(settings).provider  # loads the detector and the recognizer
    if cuda_usable():
        assert chosen[0] == torch_backend.TORCH_CUDA
        assert provider.startswith("TorchCUDA:") and provider.endswith(":fp16"), provider
        return
    assert torch_backend.TORCH_CUDA not in chosen and provider.startswith(chosen[0]), provider
    lines = [r.getMessage() for r in caplog.records if r.name == "pgface.models.torch_backend"]
    # One line for both models, saying why and what runs instead.
    assert len(lines) == 1, lines
    assert lines[0].startswith("TorchCUDA is not used: ")
    assert any(why in lines[0] for why in ("no NVIDIA driver", "sees no usable CUDA device",
                                           "not installed")), lines[0]
    assert lines[0].endswith(f"running on {chosen[0]}")


def test_without_pytorch_the_torch_backends_fall_back_to_onnx_runtime(
        models_dir: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # as if PyTorch were not installed
    caplog.set_level(logging.INFO, logger="pgface.models.torch_backend")
    detector = resolve_pack("buffalo_sc", models_dir).detector
    session = create_session(detector, ["TorchCPU", "TorchCUDA"], threads=1)
    assert session.get_providers()[0] == CPU
    lines = [r.getMessage() for r in caplog.records if r.name == "pgface.models.torch_backend"]
    assert lines[0] == ("TorchCPU is not used: torch not installed (pip install -e '.[gpu]' in "
                        "pgface's checkout adds PyTorch and onnx); running on TorchCUDA")
    assert lines[1].startswith("TorchCUDA is not used: torch not installed")
    assert lines[1].endswith(f"running on {CPU}")


def _with_nodes_before_its_input(model: Path, target: Path, ops: list[tuple[str, float]]
                                 ) -> Path:
    """MODEL with ops (operator, constant) applied to its input first, as the MXNet-made
    ArcFace graphs take the mean and scale off their input (_minusscalar0, _mulscalar0)."""
    onnx = pytest.importorskip("onnx", reason="onnx is not installed")
    graph_model = onnx.load(str(model))
    graph = graph_model.graph
    given = graph.input[0].name
    taken = given
    nodes = []
    for i, (op, value) in enumerate(ops):
        graph.initializer.append(onnx.numpy_helper.from_array(
            np.array([value], np.float32), f"_constant{i}"))
        inputs = [taken] if op == "Identity" else [taken, f"_constant{i}"]
        nodes.append(onnx.helper.make_node(op, inputs, [f"_step{i}"], name=f"_step{i}"))
        taken = f"_step{i}"
    for node in graph.node:
        node.input[:] = [taken if name == given else name for name in node.input]
    for node in reversed(nodes):
        graph.node.insert(0, node)
    onnx.save(graph_model, str(target))
    return target


def test_a_recognizer_that_takes_its_own_mean_off_runs_on_torch(models_dir: Path,
                                                                tmp_path: Path) -> None:
    """Probe packs38: Sub and Mul were listed as weighted operators but not run: a recognizer
    converted from MXNet (its input's mean and scale taken off by its first nodes) was refused
    by the torch backend. Here those nodes undo each other, so the embeddings are the pack's."""
    require_torch()
    recognizer = resolve_pack("buffalo_sc", models_dir).recognizer
    steps = [("Sub", 0.5), ("Mul", 4.0), ("Div", 4.0), ("Add", 0.5)]
    model = _with_nodes_before_its_input(recognizer, tmp_path / "w600k_mx.onnx", steps)
    faces = np.random.default_rng(5).normal(size=(3, 3, 112, 112)).astype(np.float32)
    reference = create_session(recognizer, [CPU], threads=1)
    converted = create_session(model, ["TorchCPU"], threads=1)
    assert converted.get_providers()[0].startswith("TorchCPU")
    name = reference.get_inputs()[0].name
    ours = converted.run(None, {converted.get_inputs()[0].name: faces})[0]
    theirs = reference.run(None, {name: faces})[0]
    cosines = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cosines.min() > 0.9999, cosines


def test_a_model_the_torch_backend_cannot_run_goes_to_the_next_backend(
        models_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Probe packs38: an operator the torch graph does not run (a ValueError naming it) failed
    the pack outright where PGFACE_PROVIDERS listed a backend after the torch one, as the
    default list does on a GPU machine. The next backend runs it, a warning saying why."""
    require_torch()
    recognizer = resolve_pack("buffalo_sc", models_dir).recognizer
    model = _with_nodes_before_its_input(recognizer, tmp_path / "w600k_id.onnx",
                                         [("Identity", 0.0)])
    caplog.set_level(logging.INFO, logger="pgface.models.torch_backend")
    session = create_session(model, ["TorchCPU", CPU], threads=1)
    assert session.get_providers()[0] == CPU
    [line] = [r for r in caplog.records if r.name == "pgface.models.torch_backend"]
    assert line.levelno == logging.WARNING
    assert line.getMessage() == (
        "TorchCPU is not used: w600k_id.onnx did not load: _step0: ONNX operator Identity is "
        f"not supported by pgface's torch backend; running on {CPU}")


def test_backend_names_and_precisions() -> None:
    assert torch_backend.parse_backend("TorchCUDA") == ("cuda", "fp16")
    assert torch_backend.parse_backend("TorchCUDA:fp32") == ("cuda", "fp32")
    assert torch_backend.parse_backend("TorchCPU") == ("cpu", "fp32")
    assert torch_backend.memory_layout("TorchCUDA:fp16:nhwc") == "nhwc"
    assert torch_backend.memory_layout("TorchCUDA") == "nchw"
    with pytest.raises(ValueError, match="layout"):
        torch_backend.parse_backend("TorchCUDA:fp16:nchwc")
    with pytest.raises(ValueError, match="fp16 or fp32"):
        torch_backend.parse_backend("TorchCPU:int8")
    assert not torch_backend.is_torch_backend("OpenVINO")


def test_forced_torch_cpu_runs_on_pytorch(torch_cpu: FaceAnalyzer) -> None:
    assert torch_cpu.provider == "TorchCPU:CPU:fp32"


@pytest.fixture(scope="module")
def both(onnx_runtime: FaceAnalyzer, torch_cpu: FaceAnalyzer
         ) -> Iterator[tuple[list[Path], list[list[Face]], list[list[Face]]]]:
    paths = photos()
    yield paths, analysed(onnx_runtime, paths), analysed(torch_cpu, paths)


def test_torch_finds_the_faces_onnx_runtime_finds(both: tuple) -> None:
    paths, reference, converted = both
    assert sum(len(f) for f in reference) >= 21 + 6  # players.jpg and t1.jpg alone hold more
    for path, ours, theirs in zip(paths, converted, reference, strict=True):
        assert len(ours) == len(theirs), path.name
        for a, b in zip(ours, theirs, strict=True):
            assert np.abs(a.bbox - b.bbox).max() < 1.0, path.name
            assert np.abs(a.landmarks - b.landmarks).max() < 1.0, path.name
            assert abs(a.det_score - b.det_score) < 1e-3, path.name


def test_torch_embeddings_match_onnx_runtime(both: tuple) -> None:
    _, reference, converted = both
    cosines = [float(a.embedding @ b.embedding)
               for ours, theirs in zip(converted, reference, strict=True)
               for a, b in zip(ours, theirs, strict=True)]
    print(f"torch on the CPU against ONNX Runtime: {len(cosines)} faces, "
          f"lowest cosine {min(cosines):.6f}")
    assert min(cosines) > 0.99


def test_half_precision_embeddings_stay_close(models_dir: Path, onnx_runtime: FaceAnalyzer
                                              ) -> None:
    """fp16, the GPU's default, checked here on the CPU: same faces, embeddings within 0.99.
    On t1.jpg's six faces alone: PyTorch's fp16 on a CPU is slow (players.jpg's 23 faces took
    10 to 15 s more); bench/gpu.py compares fp16 with ONNX Runtime over LFW on the GPU."""
    require_torch()
    half = build_analyzer(Settings(models_dir=models_dir, providers=["TorchCPU:fp16"]))
    assert half.provider == "TorchCPU:CPU:fp16"
    paths = [p for p in sample_photos() if p.name == "t1.jpg"]
    cosines = []
    for path, ours, theirs in zip(paths, analysed(half, paths), analysed(onnx_runtime, paths),
                                  strict=True):
        assert len(ours) == len(theirs), path.name
        for a, b in zip(ours, theirs, strict=True):
            assert np.abs(a.bbox - b.bbox).max() < 2.0, path.name
            cosines.append(float(a.embedding @ b.embedding))
    print(f"fp16 torch against ONNX Runtime: lowest cosine {min(cosines):.6f}")
    assert min(cosines) > 0.99


@pytest.mark.parametrize("backend", ["onnx_runtime", "torch_cpu"])
def test_batched_detection_gives_each_photo_its_own_faces(backend: str,
                                                          request: pytest.FixtureRequest
                                                          ) -> None:
    """SCRFD.detect_batch (several photos per run, the GPU's way) against one photo per run."""
    require_data(LFW)
    analyzer: FaceAnalyzer = request.getfixturevalue(backend)
    detector, _ = analyzer._load()
    images = [read_photo(LFW / "images" / n, 64 << 20, 100_000_000).image for n in LFW_PHOTOS]
    batched = detector.detect_batch(images, (256, 256))
    assert len(batched) == len(images)
    for name, image, (boxes, points) in zip(LFW_PHOTOS, images, batched, strict=True):
        alone_boxes, alone_points = detector.detect(image, [(256, 256)])
        assert len(boxes) == len(alone_boxes) >= 1, name
        assert np.abs(boxes - alone_boxes).max() < 0.01, name
        assert np.abs(points - alone_points).max() < 0.01, name


def test_index_and_search_through_torch(settings: Settings, torch_cpu: FaceAnalyzer,
                                        onnx_runtime: FaceAnalyzer) -> None:
    """Yao Ming's photo finds him among the players, indexed and searched through PyTorch:
    the face ONNX Runtime's embeddings say is his."""
    samples = {p.name: p for p in sample_photos()}
    players, (yao,) = analysed(onnx_runtime, [samples["players.jpg"], samples["yaoming.jpg"]])
    his_box = players[int(np.argmax([f.embedding @ yao.embedding for f in players]))].bbox
    with Pgface(settings, analyzer=torch_cpu) as pf:
        report = pf.index([samples["players.jpg"]])
        assert report.indexed == 1 and not report.failures
        stats = pf.stats()
        result = pf.search(samples["yaoming.jpg"])
    assert stats["faces"] == len(players) and stats["provider"] == "TorchCPU:CPU:fp32"
    (face,) = result.faces
    best = face.matches[0]
    assert best.path.endswith("players.jpg") and best.verdict == "same"
    assert np.abs(np.array(best.bbox) - his_box).max() < 1.0


def test_batch_buckets_are_few_and_hold_the_batch() -> None:
    sizes = {torch_backend.batch_bucket(n) for n in range(1, 1025)}
    assert sorted(sizes)[:8] == [1, 2, 4, 8, 16, 32, 64, 128]
    assert len(sizes) == 8 + 7  # then 256, 384, ... 1024
    for n in range(1, 1025):
        size = torch_backend.batch_bucket(n)
        assert n <= size <= max(2 * n - 1, 1) if n <= 128 else n <= size < n + 128


def test_padded_batches_and_pixel_input_give_the_same_answers(models_dir: Path) -> None:
    """What TorchCUDA does (uint8 pixels normalised by the session, batches padded to a bucket
    size), run here on the CPU against the float blob at the batch's own size."""
    require_torch()
    from pgface.models.arcface import ArcFace
    from pgface.models.scrfd import INPUT_MEAN, INPUT_STD, SCRFD, letterbox_into, pixel_blob

    pack = resolve_pack("buffalo_sc", models_dir)
    images = [read_photo(p, 64 << 20, 100_000_000).image for p in photos()[:3]]
    canvases = np.zeros((3, 256, 256, 3), dtype=np.uint8)
    for image, canvas in zip(images, canvases, strict=True):
        letterbox_into(image, canvas)
    plain = torch_backend.TorchSession(pack.detector, "TorchCPU", pad_batches=False)
    padded = torch_backend.TorchSession(pack.detector, "TorchCPU", pad_batches=True)
    channels_last = torch_backend.TorchSession(pack.detector, "TorchCPU:fp32:nhwc",
                                               pad_batches=True)
    assert padded.pad_batches and not plain.pad_batches
    assert channels_last.get_providers() == ["TorchCPU:CPU:fp32:nhwc"]
    names = [o.name for o in plain.get_outputs()]
    reference = plain.run(names, {plain.get_inputs()[0].name:
                                  pixel_blob(canvases, INPUT_MEAN, INPUT_STD)})
    for session in (padded, channels_last):
        answers = session.run_pixels(names, canvases, INPUT_MEAN, INPUT_STD)  # 3 run as 4
        for ours, theirs in zip(answers, reference, strict=True):
            assert ours.shape == theirs.shape and ours.shape[0] == 3
            assert np.abs(ours - theirs).max() < 1e-4

    # the same faces through SCRFD and ArcFace on either session
    faces = SCRFD(padded).detect_batch(images, (256, 256))
    assert [len(b) for b, _ in faces] == [len(b) for b, _ in SCRFD(plain).detect_batch(images,
                                                                                     (256, 256))]
    crops = [norm_crop(image, points) for image, (_, found) in zip(images, faces, strict=True)
             for points in found]
    assert len(crops) >= 3
    recognizers = [ArcFace(pack.recognizer, torch_backend.TorchSession(
        pack.recognizer, backend, pad_batches=pad))
        for backend, pad in (("TorchCPU", False), ("TorchCPU", True), ("TorchCPU:fp32:nhwc", True))]
    plain_vectors, *others = (r.get_feat(crops[:3]) for r in recognizers)
    for vectors in others:
        assert vectors.shape == plain_vectors.shape == (3, 512)
        cosines = [float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
                   for a, b in zip(plain_vectors, vectors, strict=True)]
        assert min(cosines) > 0.99999


def test_runs_from_many_threads_are_done_on_the_sessions_own_thread(models_dir: Path) -> None:
    """TorchCUDA does every run on one thread of the session's own, where cudnn's choices of
    algorithm (kept per thread by PyTorch) are made once; the same path here on the CPU: the
    callers' answers, their errors, and the session (its model) freed when dropped."""
    require_torch()
    import gc
    import threading
    import weakref
    from concurrent.futures import ThreadPoolExecutor

    from pgface.models.scrfd import INPUT_MEAN, INPUT_STD, letterbox_into

    pack = resolve_pack("buffalo_sc", models_dir)
    assert not torch_backend.TorchSession(pack.detector, "TorchCPU").own_thread  # CPU default
    images = [read_photo(p, 64 << 20, 100_000_000).image for p in photos()[:3]]
    canvases = np.zeros((6, 256, 256, 3), dtype=np.uint8)
    for i, canvas in enumerate(canvases):
        letterbox_into(images[i % len(images)], canvas)
    plain = torch_backend.TorchSession(pack.detector, "TorchCPU")
    held = [torch_backend.TorchSession(pack.detector, "TorchCPU", own_thread=True)]
    runners: set[int] = set()
    held[0].module.register_forward_pre_hook(lambda *_: runners.add(threading.get_ident()))
    names = [o.name for o in plain.get_outputs()]
    callers: set[int] = set()

    def run(i: int) -> list[np.ndarray]:
        callers.add(threading.get_ident())
        return held[0].run_pixels(names, canvases[i:i + 1], INPUT_MEAN, INPUT_STD)

    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(run, range(6)))
    answers.append(run(0))  # and from this thread
    for i, ours in enumerate(answers):
        theirs = plain.run_pixels(names, canvases[i % 6:i % 6 + 1], INPUT_MEAN, INPUT_STD)
        for a, b in zip(ours, theirs, strict=True):
            assert np.array_equal(a, b)
    assert len(runners) == 1 and not runners & callers and len(callers) >= 2
    with pytest.raises(RuntimeError) as theirs_error:
        plain.run_pixels(names, np.zeros((1, 256, 256, 4), np.uint8), INPUT_MEAN, INPUT_STD)
    with pytest.raises(RuntimeError) as ours_error:
        held[0].run_pixels(names, np.zeros((1, 256, 256, 4), np.uint8), INPUT_MEAN, INPUT_STD)
    assert str(ours_error.value) == str(theirs_error.value)
    del ours_error  # its traceback holds the session's frames
    dropped = weakref.ref(held.pop())
    gc.collect()
    assert dropped() is None


def test_batched_detection_with_a_pool_is_the_same(torch_cpu: FaceAnalyzer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    detector, _ = torch_cpu._load()
    images = [read_photo(p, 64 << 20, 100_000_000).image for p in photos()]
    with ThreadPoolExecutor(2) as pool:
        pooled = detector.detect_batch(images, (256, 256), pool)
    for (boxes, points), (alone_boxes, alone_points) in zip(
            pooled, detector.detect_batch(images, (256, 256)), strict=True):
        assert np.array_equal(boxes, alone_boxes) and np.array_equal(points, alone_points)

