"""The detector's input (issue 13): SCRFD fed the float blob that numpy makes (pgface until
2026-12-01) against uint8 pixels normalised inside the compiled OpenVINO model (what pgface
ships), and an int8 SCRFD fed pixels (measured, not shipped). Detection alone, at every input
size pgface runs on the photo, one photo at a time on one thread, on the shared photos; the
variants alternate, in a rotating order. Faces are compared with the float blob's and with the
hand-drawn boxes of detection-truth.

    python bench/detector_input.py [--repeat 5]   # writes docs/benchmarks-detector-input.md
    python bench/detector_input.py --smoke        # seconds; prints only

The int8 model: ONNX Runtime's static QDQ quantisation, per-channel int8 weights, uint8
activations on the inputs of the convolutions only (bench/int8_model.py's placement for
OpenVINO), min-max calibration on LFW View 1 DevTrain photos (none of the measured ones): each
photo letterboxed at 256, and mosaics of four of them at 640.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import onnx
from common import DATA, DOCS, machine, markdown_table, photos_under, require
from int8_model import build_int8, prepared_for_quantisation
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantType
from truth import missed, overlap, truth_boxes

from pgface import Settings
from pgface.errors import ImageError
from pgface.imaging import read_photo
from pgface.lfw import read_pairs
from pgface.library import build_analyzer
from pgface.models.packs import resolve_pack
from pgface.models.scrfd import INPUT_MEAN, INPUT_STD, SCRFD, letterbox, pixel_blob
from pgface.models.sessions import OPENVINO, create_session

PHOTOS = DATA / "photos"
LFW = DATA / "lfw-view1"
OUT = DOCS / "benchmarks-detector-input.md"


@dataclass
class Variant:
    label: str
    detector: SCRFD
    seconds: list[float] = field(default_factory=list)
    found: list[np.ndarray] = field(default_factory=list)  # boxes with score, per photo


class Calibration(CalibrationDataReader):
    """SCRFD's float input for LFW DevTrain photos: each at 256, and mosaics of four at 640."""

    def __init__(self, input_name: str, count: int) -> None:
        names = sorted({path for pair in read_pairs(LFW / "pairsDevTrain.txt")
                        for path in (pair.left, pair.right)})[:count]
        images = [read_photo(LFW / "images" / name, 1 << 26, 1 << 26).image for name in names]
        self._blobs = [self._blob(image, 256) for image in images]
        for start in range(0, len(images) - 3, 4):
            top = np.hstack(images[start:start + 2])
            bottom = np.hstack(images[start + 2:start + 4])
            self._blobs.append(self._blob(np.vstack([top, bottom]), 640))
        self._input_name = input_name
        self._next: Iterator[np.ndarray] = iter(())
        self.rewind()

    @staticmethod
    def _blob(image: np.ndarray, side: int) -> np.ndarray:
        canvas, _ = letterbox(image, (side, side))
        return pixel_blob(canvas[np.newaxis], INPUT_MEAN, INPUT_STD)

    def get_next(self) -> dict[str, np.ndarray] | None:
        blob = next(self._next, None)
        return None if blob is None else {self._input_name: blob}

    def rewind(self) -> None:
        self._next = iter(self._blobs)


def int8_detector(fp32_model: Path, folder: Path, calibration_photos: int) -> Path:
    """SCRFD in int8 with bench/int8_model.py's Conv-input recipe (SCRFD has no grouped
    convolution for it to keep in float)."""
    prepared = prepared_for_quantisation(fp32_model, folder)
    input_name = onnx.load(str(prepared)).graph.input[0].name
    quantized, _ = build_int8(prepared, "conv-inputs", Calibration(input_name, calibration_photos),
                              folder, QuantType.QUInt8, CalibrationMethod.MinMax)
    return quantized


def detector(model: Path, pixel_input: bool) -> SCRFD:
    return SCRFD(create_session(model, [OPENVINO], 1, static_shapes=True,
                                pixel_input=pixel_input))


def compared(found: list[np.ndarray], reference: list[np.ndarray]) -> tuple[int, float, float]:
    """Faces of the reference without a box of IoU >= 0.5 here, the largest distance between
    matched boxes' corners (pixels) and the largest score difference."""
    lost, shift, score = 0, 0.0, 0.0
    for ours, theirs in zip(found, reference, strict=True):
        if not len(theirs):
            continue
        iou = overlap(theirs[:, :4].astype(np.float64), ours[:, :4].astype(np.float64))
        best = iou.argmax(axis=1) if len(ours) else np.zeros(len(theirs), dtype=int)
        for index, row in enumerate(theirs):
            if not len(ours) or iou[index, best[index]] < 0.5:
                lost += 1
                continue
            match = ours[best[index]]
            shift = max(shift, float(np.abs(match[:4] - row[:4]).max()))
            score = max(score, abs(float(match[4] - row[4])))
    return lost, shift, score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed passes of each variant")
    parser.add_argument("--calibration-photos", type=int, default=200)
    parser.add_argument("--smoke", action="store_true", help="a short run that writes nothing")
    args = parser.parse_args()
    if args.smoke:
        args.repeat, args.calibration_photos = 1, 8
    require(PHOTOS)
    require(LFW)
    cv2.setNumThreads(1)
    settings = Settings()
    pack = resolve_pack(settings.model_pack, settings.resolved_models_dir())
    sizes_for = build_analyzer(settings).sizes_for  # pgface's choice of input sizes
    photos = []
    for path in photos_under(PHOTOS)[: 12 if args.smoke else None]:
        try:
            photos.append((path, read_photo(path, settings.max_file_bytes,
                                            settings.max_pixels).image))
        except ImageError:
            continue  # the broken and refused files of the set
    truth = truth_boxes(PHOTOS / "detection-truth")
    with tempfile.TemporaryDirectory() as folder:
        int8 = int8_detector(pack.detector, Path(folder), args.calibration_photos)
        variants = [Variant("float blob made by numpy (before)", detector(pack.detector, False)),
                    Variant("pixels normalised in the model (shipped)",
                            detector(pack.detector, True)),
                    Variant("int8 model, pixels normalised in it (not shipped)",
                            detector(int8, True))]
        for variant in variants:  # compiled and first run before any clock
            variant.found = [variant.detector.detect(image, sizes_for(image))[0]
                             for _, image in photos]
        for round_ in range(args.repeat):
            for offset in range(len(variants)):
                variant = variants[(round_ + offset) % len(variants)]
                started = time.perf_counter()
                for _, image in photos:
                    variant.detector.detect(image, sizes_for(image))
                variant.seconds.append(time.perf_counter() - started)
    reference = variants[0]
    rows = []
    for variant in variants:
        lost, shift, score = compared(variant.found, reference.found)
        gained, _, _ = compared(reference.found, variant.found)
        hand = [missed(truth[path.name], boxes) for (path, _), boxes
                in zip(photos, variant.found, strict=True) if path.name in truth]
        total = sum(len(truth[path.name]) for path, _ in photos if path.name in truth)
        median = statistics.median(variant.seconds)
        rows.append([
            variant.label, variant.detector.session.get_providers()[0],
            sum(len(b) for b in variant.found), f"{lost} / {gained}",
            f"{shift:.3g} / {score:.3g}", f"{total - sum(map(len, hand))} / {sum(map(len, hand))}",
            f"{median:.2f} ({min(variant.seconds):.2f}-{max(variant.seconds):.2f})",
            f"{1000 * median / len(photos):.2f}",
            f"{statistics.median(reference.seconds) / median:.2f}x"])
    head = ["detector input", "backend", "faces", "float blob's faces lost / new",
            "largest box shift px / score difference vs float blob", "hand-drawn found / missed",
            f"s, median of {args.repeat} (range)", "ms a photo", "speed vs float blob"]
    runs = sum(len(sizes_for(image)) for _, image in photos)
    text = "\n".join([
        "## The detector's input: pixels normalised in the model, and int8",
        "",
        f"Machine: {machine()}. Run on {time.strftime('%Y-%m-%d')} with "
        f"`python bench/detector_input.py --repeat {args.repeat}`.",
        "",
        f"Detection alone (letterbox, model, decoding, suppression) of the {len(photos)} "
        f"photos of `../shared/data/photos` that decode, at the input sizes pgface runs on "
        f"each ({runs} model runs: 256 for every photo, 640 where the photo is larger than "
        "256), one photo at a time, on one thread (OpenVINO and OpenCV), the variants "
        "alternating in a rotating order. A face is the same face when the boxes overlap by "
        "0.5 (IoU) or more; hand-drawn faces as in docs/benchmarks-indexing.md.",
        "",
        markdown_table(head, rows),
        "",
        "- **float blob**: numpy makes (RGB - 127.5) / 128 as float32 in N x 3 x H x W "
        "(`pixel_blob`, to the bit what `cv2.dnn.blobFromImage` gives), which OpenVINO then "
        "reorders into its own layout (and rounds to bf16 where the CPU has AMX).",
        "- **pixels normalised in the model** (`OpenVINOPixelSession`): the letterboxed uint8 "
        "BGR canvas goes in as it is; OpenVINO's preprocessing, compiled into the model, "
        "converts, swaps the channels and normalises inside the reorder it does anyway.",
        "- **int8**: " + " ".join(__doc__.split("The int8 model: ")[1].split()),
    ])
    print(text)
    if not args.smoke:
        OUT.write_text(text + "\n")
        print(f"\nwritten to {OUT}")


if __name__ == "__main__":
    main()
