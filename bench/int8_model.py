"""int8 recognizer (issue 3): is an int8 w600k_mbf faster than what pgface ships (OpenVINO,
bf16 where the CPU has AMX), and does it hold LFW View 1 accuracy?

    python bench/int8_model.py              # every View 1 pair; writes docs/benchmarks-int8.md
    python bench/int8_model.py --limit 200  # a quick check on part of the pairs; prints only
    python bench/int8_model.py --smoke      # seconds; prints only

Faces are detected and aligned once (cached in $PGFACE_BENCH_DIR). The int8 models are built
with ONNX Runtime's static QDQ quantisation (per-channel weights), calibrated on DevTrain faces
only, with two placements of the QDQ pairs (RECIPES). The recognizers then embed the same
crops: fp32 on ONNX Runtime's CPU backend, fp32 on pgface's default backend (the baseline), and
each int8 model on ONNX Runtime and on OpenVINO. Each gets its own threshold calibrated on
DevTrain and is scored on DevTest. Speeds are per face in batches of 32, as ratios to the
baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
from common import DATA, DOCS, machine, markdown_table, require
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from pgface.config import CALIBRATED_THRESHOLDS, Settings
from pgface.imaging import read_photo
from pgface.lfw import Pair, Verification, calibrate, central_face, evaluate, read_pairs
from pgface.library import build_analyzer
from pgface.models.analysis import FaceAnalyzer
from pgface.models.arcface import ArcFace
from pgface.models.sessions import (
    CPU,
    OPENVINO,
    available_providers,
    create_session,
    default_threads,
)

LFW = DATA / "lfw-view1"
BENCH_DIR = Path(os.environ.get("PGFACE_BENCH_DIR", "/tmp/pgface-search-bench"))
BATCH = 32  # faces per recognizer run, for the timings and the accuracy pass alike
CALIBRATION_BATCH = 16
SHIPPED_THRESHOLD = CALIBRATED_THRESHOLDS["buffalo_sc"]
# Per-channel QuantizeLinear/DequantizeLinear (the `axis` attribute) needs opset 13;
# w600k_mbf is opset 11, so it is converted first.
QDQ_PER_CHANNEL_OPSET = 13


@dataclass(frozen=True)
class Recipe:
    """Where the QDQ pairs go; each backend fuses a different pattern into int8 kernels."""

    label: str
    description: str
    op_types: list[str] | None  # None: every op type ONNX Runtime has a QDQ rule for
    float_output_op_types: list[str]  # these ops' outputs get no QuantizeLinear
    grouped_conv_in_float: bool  # keep Conv with groups of several channels out of int8
    backends: list[str]  # where the model is measured


RECIPES = {
    # ONNX Runtime fuses DQ -> Conv -> Q into QLinearConv (and Add into QLinearAdd), so it needs
    # a QuantizeLinear on every Conv output.
    "ort": Recipe(
        "ORT placement",
        "QDQ around every op ONNX Runtime quantises (its default): Conv, Add, Gemm and "
        "BatchNormalization in and out, so PRelu sits in float between a DequantizeLinear and "
        "a QuantizeLinear",
        None, [], False, [CPU, OPENVINO]),
    # OpenVINO fuses PRelu, Add and the next QuantizeLinear into an int8 convolution when the
    # QDQ pairs sit on Conv inputs only (as its own NNCF places them); with a QuantizeLinear on
    # each Conv output, PRelu is left as a separate bf16 layer with layout reorders around it.
    # oneDNN has no fast int8 kernel for grouped convolutions whose groups hold more than one
    # channel (w600k_mbf's second Conv: 64 groups of 2) and falls back to a gemm several times
    # slower than its bf16 AMX kernel, so such a Conv stays in float. Not measured on ONNX
    # Runtime: without a QuantizeLinear after a Conv it cannot use QLinearConv and runs the
    # dequantized weights in float, so the row would only show that misuse (its optimised graph
    # is still listed in the report).
    "conv-inputs": Recipe(
        "Conv-input placement",
        "QDQ on the inputs and weights of Conv and Gemm only (outputs stay float, so OpenVINO "
        "fuses PRelu and Add into the int8 convolution); grouped Convs whose groups hold "
        "several channels stay float",
        ["Conv", "Gemm"], ["Conv", "Gemm"], True, [OPENVINO]),
}


@dataclass
class AlignedFaces:
    """The central face of each photo, aligned to the recognizer's 112x112 input."""

    photos: list[str]  # paths relative to the images folder; one row of crops each
    crops: np.ndarray  # (photos, 112, 112, 3) uint8 BGR; zeros where no face was found
    found: np.ndarray  # bool per photo: the detector found a face
    seconds: float  # detection and alignment time when computed (0 when read from the cache)
    cache: Path


@dataclass
class Variant:
    name: str
    model: Path
    providers: list[str]


@dataclass
class Outcome:
    variant: Variant
    backend: str  # the backend the session really runs on, e.g. OpenVINO:CPU:bf16
    embeddings: np.ndarray  # unit vectors, one per found face, in AlignedFaces order
    batch_seconds: list[float]  # timed full batches of BATCH faces
    train: Verification  # DevTrain, at the threshold calibrated on DevTrain
    test: Verification  # DevTest at that threshold
    test_at_shipped: Verification  # DevTest at the threshold pgface ships

    @property
    def ms_per_face(self) -> float:
        return statistics.median(self.batch_seconds) / BATCH * 1000


# ------------------------------------------------------------------ pairs and aligned crops

def limited_pairs(pair_file: Path, limit: int | None) -> list[Pair]:
    """The pairs of a file; with a limit, the first limit/2 same and limit/2 different pairs.

    The files list every same-person pair before the first different-person one, so the plain
    first N pairs would hold one class only and calibrate nothing.
    """
    pairs = read_pairs(pair_file)
    if limit is None:
        return pairs
    same = [p for p in pairs if p.same][: (limit + 1) // 2]
    different = [p for p in pairs if not p.same][: limit // 2]
    return same + different


def photos_of(pairs: Sequence[Pair]) -> set[str]:
    return {photo for pair in pairs for photo in (pair.left, pair.right)}


def crops_cache_path(photos: list[str], analyzer: FaceAnalyzer) -> Path:
    """A cache file named after everything the crops depend on, so a rerun can skip detection."""
    detector = analyzer.pack.detector
    key = json.dumps({"photos": photos, "det_sizes": analyzer.det_sizes,
                      "det_threshold": analyzer.det_threshold, "detector": detector.name,
                      "detector_bytes": detector.stat().st_size})
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return BENCH_DIR / f"int8-lfw-crops-{len(photos)}-{digest}.npz"


def aligned_faces(images: Path, photos: list[str], analyzer: FaceAnalyzer,
                  settings: Settings) -> AlignedFaces:
    """Detect, pick the central face and align each photo, or read that from the cache."""
    cache = crops_cache_path(photos, analyzer)
    if cache.exists():
        with np.load(cache) as saved:
            if saved["photos"].tolist() == photos:
                return AlignedFaces(photos, saved["crops"], saved["found"], 0.0, cache)
    started = time.perf_counter()
    crops = np.zeros((len(photos), 112, 112, 3), np.uint8)
    found = np.zeros(len(photos), bool)
    for row, relative in enumerate(photos):
        photo = read_photo(images / relative, settings.max_file_bytes, settings.max_pixels)
        height, width = photo.image.shape[:2]
        face = central_face(analyzer.detect(photo.image), width, height)
        if face is not None:
            crops[row] = analyzer.align(photo.image, face)
            found[row] = True
    seconds = time.perf_counter() - started
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(".partial.npz")
    np.savez(partial, photos=np.array(photos), crops=crops, found=found)
    os.replace(partial, cache)  # an interrupted run never leaves a truncated cache behind
    return AlignedFaces(photos, crops, found, seconds, cache)


# ------------------------------------------------------------------ the int8 models

def arcface_blob(crops: Sequence[np.ndarray], recognizer: ArcFace) -> np.ndarray:
    """The recognizer's input for these crops, built exactly as ArcFace.get_feat builds it
    (mean and std from insightface's rule for this model, BGR to RGB, NCHW float32)."""
    return cv2.dnn.blobFromImages(
        list(crops), 1.0 / recognizer.input_std, recognizer.input_size,
        (recognizer.input_mean,) * 3, swapRB=True).astype(np.float32)


class CropBatches(CalibrationDataReader):
    """Calibration input for quantize_static: preprocessed crops in small batches."""

    def __init__(self, blob: np.ndarray, input_name: str) -> None:
        self._blob = blob
        self._input_name = input_name
        self._batches: Iterator[np.ndarray] = iter(())
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {self._input_name: batch}

    def rewind(self) -> None:
        self._batches = (self._blob[start:start + CALIBRATION_BATCH]
                         for start in range(0, len(self._blob), CALIBRATION_BATCH))


def prepared_for_quantisation(fp32_model: Path, folder: Path) -> Path:
    """The fp32 model at opset 13, shape-inferred and with ONNX Runtime's basic fusions."""
    folder.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(fp32_model))
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset < QDQ_PER_CHANNEL_OPSET:
        model = onnx.version_converter.convert_version(model, QDQ_PER_CHANNEL_OPSET)
    converted = folder / f"{fp32_model.stem}.opset{QDQ_PER_CHANNEL_OPSET}.onnx"
    onnx.save(model, str(converted))
    # The fusions (BatchNormalization into Conv) let the quantiser see the graph that will
    # actually run, with no QDQ pair between ops that are fused anyway. ONNX's own shape
    # inference is enough for this plain CNN (only the batch is dynamic); the symbolic one
    # would need sympy, which pgface does not depend on.
    prepared = folder / f"{fp32_model.stem}.prep.onnx"
    quant_pre_process(str(converted), str(prepared), skip_symbolic_shape=True)
    return prepared


def grouped_convs(model_path: Path) -> list[str]:
    """Conv nodes with groups of more than one input channel (neither dense nor depthwise)."""
    graph = onnx.load(str(model_path)).graph
    weights = {w.name: list(w.dims) for w in graph.initializer}
    names = []
    for node in graph.node:
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        if node.op_type == "Conv" and group > 1 and weights.get(node.input[1], [0, 1])[1] > 1:
            names.append(node.name)
    return names


def build_int8(prepared: Path, recipe_key: str,
               calibration: np.ndarray | CalibrationDataReader, folder: Path,
               activation_type: QuantType, method: CalibrationMethod) -> tuple[Path, list[str]]:
    """Static QDQ int8 with per-channel int8 weights; returns its path and the Convs kept
    in float. calibration: the model's inputs as one array (run in small batches), or a
    reader of them (inputs of several shapes, a detector's)."""
    recipe = RECIPES[recipe_key]
    kept_float = grouped_convs(prepared) if recipe.grouped_conv_in_float else []
    activations = "s8" if activation_type == QuantType.QInt8 else "u8"
    quantized = folder / (f"{prepared.name.split('.')[0]}.int8-{recipe_key}-{activations}-"
                          f"{method.name.lower()}.onnx")
    input_name = onnx.load(str(prepared)).graph.input[0].name
    quantize_static(
        str(prepared), str(quantized),
        CropBatches(calibration, input_name) if isinstance(calibration, np.ndarray)
        else calibration,
        quant_format=QuantFormat.QDQ, per_channel=True, weight_type=QuantType.QInt8,
        activation_type=activation_type, calibrate_method=method,
        op_types_to_quantize=recipe.op_types, nodes_to_exclude=kept_float or None,
        extra_options={"OpTypesToExcludeOutputQuantization": recipe.float_output_op_types},
    )
    return quantized, kept_float


# ------------------------------------------------------------------ what really runs in int8

def counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counter.items(), key=lambda kv: -kv[1]))


def ort_runtime_ops(model_path: Path) -> str:
    """The op types of ONNX Runtime's optimised CPU graph: QLinear* ops run in int8."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    with tempfile.TemporaryDirectory() as folder:
        options.optimized_model_filepath = str(Path(folder) / "optimized.onnx")
        ort.InferenceSession(str(model_path), options, providers=[CPU])
        graph = onnx.load(options.optimized_model_filepath).graph
    return counts(Counter(node.op_type for node in graph.node))


def openvino_runtime_ops(model_path: Path, threads: int) -> str:
    """OpenVINO's compiled CPU graph as layer type and precision, compiled as pgface does."""
    import openvino as ov

    compiled = ov.Core().compile_model(
        str(model_path), "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"})
    layers: Counter[str] = Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        kind = info["layerType"].astype(str)
        if kind not in ("Const", "Input", "Output", "Reshape"):
            layers[f"{kind} {info['runtimePrecision'].astype(str)}"] += 1
    return counts(layers)


# ------------------------------------------------------------------ embedding and scoring

def embed_all(recognizer: ArcFace, crops: np.ndarray) -> np.ndarray:
    """Unit embeddings, BATCH crops per session run, as FaceAnalyzer.embed_aligned does."""
    raw = [recognizer.get_feat(list(crops[start:start + BATCH]))
           for start in range(0, len(crops), BATCH)]
    vectors = np.vstack(raw).astype(np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def timed_batches(recognizers: dict[str, ArcFace], crops: np.ndarray, rounds: int,
                  batches: int) -> dict[str, list[float]]:
    """Seconds per batch of BATCH faces for each recognizer.

    Rounds alternate between the recognizers, so a change in background load touches them all
    alike; the first batch of each turn is untimed, as the previous session's spinning thread
    pool and a cold cache would count against the next one.
    """
    faces = np.resize(np.arange(len(crops)), (batches + 1) * BATCH)  # wraps when faces are few
    inputs = [list(crops[faces[i * BATCH:(i + 1) * BATCH]]) for i in range(batches + 1)]
    seconds: dict[str, list[float]] = {name: [] for name in recognizers}
    for _ in range(rounds):
        for name, recognizer in recognizers.items():
            recognizer.get_feat(inputs[-1])
            for batch in inputs[:-1]:
                started = time.perf_counter()
                recognizer.get_feat(batch)
                seconds[name].append(time.perf_counter() - started)
    return seconds


def pair_cosines(vectors: dict[str, np.ndarray], pairs: Sequence[Pair]) -> np.ndarray:
    """Cosine per pair; a photo without a face makes its pair -1 (a sure `different`)."""
    out = []
    for pair in pairs:
        left, right = vectors.get(pair.left), vectors.get(pair.right)
        out.append(-1.0 if left is None or right is None else float(left @ right))
    return np.array(out)


def score(vectors: dict[str, np.ndarray], train: Sequence[Pair], test: Sequence[Pair]
          ) -> tuple[Verification, Verification, Verification]:
    """DevTrain-calibrated threshold and accuracy, DevTest at it and at the shipped one."""
    train_same = np.array([p.same for p in train])
    test_same = np.array([p.same for p in test])
    chosen = calibrate(pair_cosines(vectors, train), train_same)
    test_cosines = pair_cosines(vectors, test)
    return (chosen, evaluate(test_cosines, test_same, chosen.threshold),
            evaluate(test_cosines, test_same, SHIPPED_THRESHOLD))


# ------------------------------------------------------------------ report

def percent(value: float) -> str:
    return f"{value * 100:.2f} %"


def results_table(outcomes: list[Outcome], baseline: Outcome) -> str:
    fp32 = outcomes[0].embeddings
    rows = []
    for outcome in outcomes:
        agreement = np.sum(outcome.embeddings * fp32, axis=1)
        rows.append([
            outcome.variant.name, outcome.backend, f"{outcome.ms_per_face:.2f}",
            f"{baseline.ms_per_face / outcome.ms_per_face:.2f}x",
            f"{outcome.train.threshold:.2f}", percent(outcome.train.accuracy),
            percent(outcome.test.accuracy), percent(outcome.test.false_accept_rate),
            percent(outcome.test.false_reject_rate), percent(outcome.test_at_shipped.accuracy),
            f"{agreement.mean():.4f} / {agreement.min():.4f}",
        ])
    return markdown_table(
        ["recognizer", "backend", "ms/face (batch 32)", "speed vs pgface default",
         "threshold (DevTrain)", "DevTrain acc.", "DevTest acc.", "DevTest FAR", "DevTest FRR",
         f"DevTest acc. at shipped {SHIPPED_THRESHOLD}", "cosine to fp32 (mean / min)"],
        rows)



WORTH_SHIPPING = 1.2  # below this speed-up a second model file is not worth its upkeep


def decision(baseline: Outcome, fastest: Outcome) -> str:
    """What pgface ships, from this run's figures."""
    speedup = baseline.ms_per_face / fastest.ms_per_face
    held = fastest.test.accuracy >= baseline.test.accuracy - 0.002
    if speedup >= WORTH_SHIPPING and held:
        return (f"**Worth shipping**: {speedup:.2f}x with accuracy held; pgface still ships "
                "the fp32 model until it does.")
    return (f"**Not shipped.** pgface keeps the fp32 model on OpenVINO: the best int8 "
            f"placement runs at {speedup:.2f}x its speed (below {WORTH_SHIPPING}x), "
            + ("with accuracy held. " if held else "and loses accuracy. ")
            + "On this CPU bf16 on AMX already takes most of what int8 would give to this "
            "mostly depthwise network, and an int8 model would be a second file to quantise, "
            "check and ship per pack.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None,
                        help="use N pairs of each file (the first N/2 same, the first N/2 "
                             "different) for a quick check; nothing is written to docs/")
    parser.add_argument("--smoke", action="store_true",
                        help="10 pairs per file and few batches: runs in seconds, writes no docs")
    parser.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=list(RECIPES),
                        help="QDQ placements to build and measure")
    parser.add_argument("--calibration-faces", type=int, default=300,
                        help="DevTrain faces that calibrate the int8 activation ranges")
    parser.add_argument("--activations", choices=["uint8", "int8"], default="uint8",
                        help="int8 activation type; ONNX Runtime advises uint8 on x86 with VNNI")
    parser.add_argument("--calibrate-method", choices=["minmax", "entropy", "percentile"],
                        default="minmax")
    parser.add_argument("--rounds", type=int, default=5,
                        help="timing rounds; each recognizer runs --batches batches per round")
    parser.add_argument("--batches", type=int, default=10)
    args = parser.parse_args()
    if args.smoke:
        args.limit, args.rounds, args.batches = args.limit or 10, 1, 1
        args.calibration_faces = min(args.calibration_faces, 16)
    full_run = args.limit is None
    # ArcFace packs declare a batch of 1: every calibration batch would warn about it.
    ort.set_default_logger_severity(3)

    images = require(LFW / "images")
    train = limited_pairs(require(LFW / "pairsDevTrain.txt"), args.limit)
    test = limited_pairs(require(LFW / "pairsDevTest.txt"), args.limit)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()

    settings = Settings()
    analyzer = build_analyzer(settings)  # pgface's defaults: detector, backend, threads
    photos = sorted(photos_of(train) | photos_of(test))
    faces = aligned_faces(images, photos, analyzer, settings)
    row_of = {photo: row for row, photo in enumerate(faces.photos)}
    found_rows = np.flatnonzero(faces.found)
    crops = faces.crops[found_rows]
    print(f"{len(photos)} photos, {len(found_rows)} with a face; crops "
          f"{'computed in ' + format(faces.seconds, '.0f') + ' s' if faces.seconds else 'cached'}"
          f" ({faces.cache})", file=sys.stderr)

    fp32_model = analyzer.pack.recognizer
    threads = settings.threads or default_threads()
    # Every recognizer preprocesses as insightface decides for the fp32 file (its rule looks
    # at the first node names, which quantisation changes), so all of them see the same input.
    fp32_cpu = ArcFace(fp32_model, create_session(fp32_model, [CPU], threads))

    # Calibration: DevTrain photos only (never one that a DevTest pair uses), spread evenly over
    # the alphabetical list so that many people are seen.
    candidates = [row_of[p] for p in sorted(photos_of(train) - photos_of(test))
                  if faces.found[row_of[p]]]
    step = max(1, len(candidates) // max(1, args.calibration_faces))
    calibration_rows = candidates[::step][: args.calibration_faces]
    calibration_blob = arcface_blob(faces.crops[calibration_rows], fp32_cpu)
    prepared = prepared_for_quantisation(fp32_model, BENCH_DIR)
    activation_type = QuantType.QUInt8 if args.activations == "uint8" else QuantType.QInt8
    method = CalibrationMethod[{"minmax": "MinMax", "entropy": "Entropy",
                                "percentile": "Percentile"}[args.calibrate_method]]

    variants = [Variant("fp32", fp32_model, [CPU]),
                Variant("fp32, pgface default (baseline)", fp32_model,
                        available_providers(settings.providers))]
    notes = []
    for key in args.recipes:
        quantise_started = time.perf_counter()
        int8_model, kept_float = build_int8(prepared, key, calibration_blob, BENCH_DIR,
                                            activation_type, method)
        recipe = RECIPES[key]
        print(f"{int8_model} built in {time.perf_counter() - quantise_started:.0f} s",
              file=sys.stderr)
        variants += [Variant(f"int8 QDQ, {recipe.label}", int8_model,
                             [OPENVINO, CPU] if backend == OPENVINO else [CPU])
                     for backend in recipe.backends]
        notes.append(
            f"- **{recipe.label}** (`{int8_model.name}`, "
            f"{int8_model.stat().st_size / 1e6:.1f} MB against "
            f"{fp32_model.stat().st_size / 1e6:.1f} MB fp32): {recipe.description}"
            f"{' (here: ' + ', '.join(kept_float) + ')' if kept_float else ''}.\n"
            f"  - ONNX Runtime's optimised graph: {ort_runtime_ops(int8_model)}.\n"
            f"  - OpenVINO's compiled graph: {openvino_runtime_ops(int8_model, threads)}.")
    notes.append(f"- fp32 on OpenVINO, for comparison: "
                 f"{openvino_runtime_ops(fp32_model, threads)}.")

    recognizers = {"fp32 ORT": fp32_cpu}
    for index, variant in enumerate(variants[1:], start=1):
        session = create_session(variant.model, variant.providers, threads)
        recognizers[f"{index}"] = ArcFace(fp32_model, session)

    # The accuracy pass embeds every face and warms every session before the timed rounds.
    embeddings = {label: embed_all(r, crops) for label, r in recognizers.items()}
    seconds = timed_batches(recognizers, crops, args.rounds, args.batches)
    outcomes = []
    for (label, recognizer), variant in zip(recognizers.items(), variants, strict=True):
        vectors = {faces.photos[row]: v for row, v in zip(found_rows, embeddings[label],
                                                          strict=True)}
        backend = recognizer.session.get_providers()[0]
        if OPENVINO in variant.providers and not backend.startswith(OPENVINO):
            print(f"warning: {variant.model.name} did not load on OpenVINO but on {backend}",
                  file=sys.stderr)
        outcomes.append(Outcome(variant, backend, embeddings[label], seconds[label],
                                *score(vectors, train, test)))
    elapsed = time.perf_counter() - started

    command = "python bench/int8_model.py" + "".join(f" {a}" for a in sys.argv[1:])
    notes_text = "\n".join(notes)
    baseline = outcomes[1]
    fastest = min(outcomes[2:], key=lambda o: o.ms_per_face)
    text = f"""## int8 recognizer on LFW View 1

Machine: {machine()}; 1-minute load average {load_before:.1f} at the start. Command:
`{command}` ({time.strftime('%Y-%m-%d')}, {elapsed:.0f} s). {threads} inference
{'thread' if threads == 1 else 'threads'} per session, pgface's default (one per core).

Question (issue 3): is an int8 `{fp32_model.name}` faster than what pgface ships, fp32 weights
on OpenVINO (which computes in bf16 on CPUs with AMX), and does it hold LFW accuracy?

Protocol: {len(photos)} LFW View 1 photos ({len(train)} DevTrain and {len(test)} DevTest pairs),
{len(found_rows)} with a face; each photo's central face is detected and aligned once with
pgface's detector, and every recognizer embeds the same crops. Each recognizer gets its own
threshold, the cosine of best accuracy on DevTrain, and is scored on DevTest at it; the column
"at shipped" keeps the threshold pgface ships ({SHIPPED_THRESHOLD}). "cosine to fp32" compares
each face's embedding with the fp32 ONNX Runtime one. Speed: median time of a batch of {BATCH}
aligned faces (preprocessing and inference, as pgface's embed step), {args.rounds} rounds of
{args.batches} batches per recognizer, rounds alternating between recognizers; "speed vs pgface
default" is the baseline's time divided by the row's (above 1: faster). The backend column for
OpenVINO names its floating-point precision; its int8 layers are listed below.

{results_table(outcomes, baseline)}

Fastest int8 row: {fastest.variant.name} on {fastest.backend.split(':')[0]},
{baseline.ms_per_face / fastest.ms_per_face:.2f}x the baseline's speed; DevTest accuracy
{percent(fastest.test.accuracy)} against the baseline's {percent(baseline.test.accuracy)}
(each at its own DevTrain threshold).

{decision(baseline, fastest)}

int8 models: ONNX Runtime `quantize_static`, QDQ format, per-channel int8 weights,
{args.activations} activations, {args.calibrate_method} calibration on {len(calibration_rows)}
DevTrain faces (none from DevTest), after conversion to opset {QDQ_PER_CHANNEL_OPSET} and
`quant_pre_process`. The placements of the QDQ pairs, with what each backend then runs (layer
counts; on ONNX Runtime the QLinear* ops and QGemm run in int8, PRelu and BatchNormalization in
float; on OpenVINO u8/i8 layers run in int8):

{notes_text}
"""
    print(text)
    if full_run:
        (DOCS / "benchmarks-int8.md").write_text(text)
        print(f"wrote {DOCS / 'benchmarks-int8.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
