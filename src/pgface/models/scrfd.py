"""SCRFD face detection on an ONNX Runtime or OpenVINO session: letterbox, run, decode the
anchors of every stride, merge input sizes, non-maximum suppression.

The arithmetic of insightface 2.1's `model_zoo/scrfd.py` (MIT licence), kept step for step so
that boxes and landmarks are the same to the last bit (tests/test_models.py checks them); what
pgface never used (model download, per-size sessions, `max_num`) is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Any

import cv2
import numpy as np

from pgface.models.exiting import inference

INPUT_MEAN = 127.5
INPUT_STD = 128.0
NMS_THRESHOLD = 0.4


class SCRFD:
    """One SCRFD model. `detect` returns (N x 5 boxes with score, N x 5 x 2 landmarks)."""

    def __init__(self, session: Any, det_threshold: float = 0.5) -> None:
        self.session = session
        self.det_threshold = det_threshold
        self.input_name = session.get_inputs()[0].name
        outputs = session.get_outputs()
        self.output_names = [o.name for o in outputs]
        self.batched = len(outputs[0].shape) == 3  # a leading batch axis to take the first of
        # 6 or 9 outputs: 3 strides, 2 anchors each; 10 or 15: 5 strides, 1 anchor; the larger
        # of each pair adds landmarks.
        self.strides_count = 3 if len(outputs) in (6, 9) else 5
        self.strides = [8, 16, 32] if self.strides_count == 3 else [8, 16, 32, 64, 128]
        self.anchors = 2 if self.strides_count == 3 else 1
        self.use_landmarks = len(outputs) in (9, 15)
        if not self.use_landmarks:
            raise ValueError("this SCRFD model gives no landmarks: faces cannot be aligned")
        self._centers: dict[tuple[int, int, int], np.ndarray] = {}

    def detect(self, image: np.ndarray, input_sizes: Sequence[tuple[int, int]]
               ) -> tuple[np.ndarray, np.ndarray]:
        """Faces of a BGR image at every (width, height) input size, merged."""
        return self._merged([self._candidates(image, size) for size in input_sizes])

    def detect_many(self, images: Sequence[np.ndarray],
                    sizes_of: Sequence[Sequence[tuple[int, int]]], batch: int,
                    pool: Executor | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """`detect` for many images, each at its own input sizes (sizes_of), BATCH images per
        model run of a size: the same faces, in far fewer runs (what a GPU wants)."""
        per_image: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in images]
        for size in sorted({size for sizes in sizes_of for size in sizes}):
            members = [i for i, sizes in enumerate(sizes_of) if size in sizes]
            for lo in range(0, len(members), batch):
                part = members[lo : lo + batch]
                found = self.candidates_batch([images[i] for i in part], size, pool)
                for i, candidates in zip(part, found, strict=True):
                    per_image[i].append(candidates)
        return [self._merged(candidates) for candidates in per_image]

    @staticmethod
    def _merged(per_size: Sequence[tuple[np.ndarray, np.ndarray]]
                ) -> tuple[np.ndarray, np.ndarray]:
        """One image's candidates of every input size (in the order of the sizes), merged by
        score and suppressed."""
        kept = [(boxes, points) for boxes, points in per_size if boxes.shape[0]]
        if not kept:
            return np.empty((0, 5), dtype=np.float32), np.empty((0, 5, 2), dtype=np.float32)
        boxes = np.vstack([b for b, _ in kept]).astype(np.float32, copy=False)
        order = np.argsort(-boxes[:, 4], kind="stable")
        boxes = boxes[order, :]
        points = np.vstack([p for _, p in kept])[order, :, :]
        keep = non_maximum_suppression(boxes, NMS_THRESHOLD)
        return boxes[keep, :], points[keep, :, :]

    def detect_batch(self, images: Sequence[np.ndarray], size: tuple[int, int],
                     pool: Executor | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Faces of several BGR images at one input size, in one session run: what `detect`
        gives for each at that size alone. POOL, where given, scales the images into the
        batch on its threads."""
        return [self._merged([candidates])
                for candidates in self.candidates_batch(images, size, pool)]

    def candidates_batch(self, images: Sequence[np.ndarray], size: tuple[int, int],
                         pool: Executor | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each image's candidates at one input size, before suppression (as `_candidates`),
        in one session run; a model without a batch axis runs them one by one."""
        if not self.batched:
            return [self._candidates(image, size) for image in images]
        width, height = size
        canvases = np.zeros((len(images), height, width, 3), dtype=np.uint8)
        scales = list((pool.map if pool is not None else map)(letterbox_into, images, canvases))
        return [self._scaled(decoded, scale)
                for decoded, scale in zip(self._decode(self._run(canvases), size, len(images)),
                                          scales, strict=True)]

    def _candidates(self, image: np.ndarray, size: tuple[int, int]
                    ) -> tuple[np.ndarray, np.ndarray]:
        canvas, scale = letterbox(image, size)
        return self._scaled(self._forward(canvas), scale)

    @staticmethod
    def _scaled(decoded: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]],
                scale: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
        scores_list, boxes_list, points_list = decoded
        if sum(s.size for s in scores_list) == 0:
            return np.empty((0, 5), dtype=np.float32), np.empty((0, 5, 2), dtype=np.float32)
        scores = np.vstack(scores_list)
        order = np.argsort(-scores.ravel(), kind="stable")
        scale_x, scale_y = scale
        boxes = np.vstack(boxes_list) / np.array([scale_x, scale_y] * 2, dtype=np.float32)
        points = np.vstack(points_list) / np.array([scale_x, scale_y], dtype=np.float32)
        candidates = np.hstack((boxes, scores)).astype(np.float32, copy=False)
        return candidates[order, :], points[order, :, :]

    def _forward(self, canvas: np.ndarray
                 ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        size = tuple(canvas.shape[0:2][::-1])
        return self._decode(self._run(canvas[np.newaxis]), size, 1)[0]

    def _run(self, canvases: np.ndarray) -> list[np.ndarray]:
        """The model's outputs for letterboxed BGR uint8 canvases (N x H x W x 3)."""
        run_pixels = getattr(self.session, "run_pixels", None)
        if run_pixels is not None:
            # The session normalises the pixels where the model runs (OpenVINO's compiled
            # preprocessing, a GPU): no float blob is made here, a quarter of its bytes.
            with inference():
                return run_pixels(self.output_names, canvases, INPUT_MEAN, INPUT_STD)
        blob = pixel_blob(canvases, INPUT_MEAN, INPUT_STD)
        with inference():
            return self.session.run(self.output_names, {self.input_name: blob})

    def compile_sizes(self, sizes: Sequence[tuple[int, int]]) -> None:
        """Have the session compile every variant it keeps for these (width, height) input
        sizes of one image now, rather than on a photo's time."""
        compile_shapes = getattr(self.session, "compile_shapes", None)
        if compile_shapes is None:
            return
        with inference():
            if hasattr(self.session, "run_pixels"):
                compile_shapes([(1, height, width, 3) for width, height in sizes],
                               (INPUT_MEAN, INPUT_STD))
            else:
                compile_shapes([(1, 3, height, width) for width, height in sizes])

    def _decode(self, outs: list[np.ndarray], size: tuple[int, int], items: int
                ) -> list[tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]]:
        """Scores, boxes and landmarks above the threshold of each of ITEMS images of a run.

        Only the anchors above the threshold are decoded (a few dozen of thousands): the same
        arithmetic, element by element, as decoding all of them and keeping those."""
        width, height = size
        count = self.strides_count
        decoded: list[tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]] = [
            ([], [], []) for _ in range(items)]
        for idx, stride in enumerate(self.strides):
            scores, box_preds, point_preds = (
                out if self.batched else out[np.newaxis]
                for out in (outs[idx], outs[idx + count], outs[idx + count * 2]))
            # row-major: grouped by image, anchors in order within each, as per image before
            item_of, anchor = np.nonzero(scores[:, :, 0] >= self.det_threshold)
            centers = self._anchor_centers(height // stride, width // stride, stride)[anchor]
            boxes = distance_to_box(centers, box_preds[item_of, anchor] * stride)
            points = distance_to_points(centers, point_preds[item_of, anchor] * stride)
            points = points.reshape((-1, point_preds.shape[-1] // 2, 2))
            kept_scores = scores[item_of, anchor]
            bounds = np.searchsorted(item_of, np.arange(items + 1))
            for item, (start, end) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
                decoded[item][0].append(kept_scores[start:end])
                decoded[item][1].append(boxes[start:end])
                decoded[item][2].append(points[start:end])
        return decoded

    def _anchor_centers(self, height: int, width: int, stride: int) -> np.ndarray:
        key = (height, width, stride)
        centers = self._centers.get(key)
        if centers is None:
            centers = np.stack(np.mgrid[:height, :width][::-1], axis=-1).astype(np.float32)
            centers = (centers * stride).reshape((-1, 2))
            if self.anchors > 1:
                centers = np.stack([centers] * self.anchors, axis=1).reshape((-1, 2))
            if len(self._centers) < 100:
                self._centers[key] = centers  # dict writes are atomic: threads may share it
        return centers


def letterbox(image: np.ndarray, size: tuple[int, int]
              ) -> tuple[np.ndarray, tuple[float, float]]:
    """The image scaled to fit a (width, height) input, aspect kept, padded right and below;
    and its scale (x, y)."""
    canvas = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    return canvas, letterbox_into(image, canvas)


def letterbox_into(image: np.ndarray, canvas: np.ndarray) -> tuple[float, float]:
    """`letterbox` into a zeroed (height, width, 3) canvas given (one of a batch); the scale
    of each axis (x, y). One scale, the height's (insightface's), put the boxes of a strip
    wider than the input's shape too far right: its height is the width's scale rounded down
    to whole rows, 42 rows for 42.67 in a 96-face strip of 24,000 x 250, so x was 1.6 % off,
    381 pixels at its end, and the two detector passes' boxes of one face both kept (probe
    crowd39)."""
    size = (canvas.shape[1], canvas.shape[0])
    im_ratio = float(image.shape[0]) / image.shape[1]
    model_ratio = float(size[1]) / size[0]
    if im_ratio > model_ratio:
        new_height = size[1]
        new_width = int(new_height / im_ratio)
    else:
        new_width = size[0]
        new_height = int(new_width * im_ratio)
    canvas[:new_height, :new_width, :] = cv2.resize(image, (new_width, new_height))
    return float(new_width) / image.shape[1], float(new_height) / image.shape[0]


def pixel_blob(images: np.ndarray, mean: float, std: float) -> np.ndarray:
    """BGR uint8 images (N x H x W x 3) -> the model's input, N x 3 x H x W float32 of
    (RGB - mean) / std: what cv2.dnn.blobFromImages(swapRB=True) gives, a little faster."""
    out = np.empty((images.shape[0], 3, images.shape[1], images.shape[2]), dtype=np.float32)
    for channel in range(3):
        np.subtract(images[:, :, :, 2 - channel], np.float32(mean), out=out[:, channel],
                    dtype=np.float32)
    out *= np.float32(1.0 / std)
    return out


def distance_to_box(points: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Anchor centres and (left, top, right, bottom) distances -> x1, y1, x2, y2."""
    return np.stack([points[:, 0] - distance[:, 0], points[:, 1] - distance[:, 1],
                     points[:, 0] + distance[:, 2], points[:, 1] + distance[:, 3]], axis=-1)


def distance_to_points(points: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Anchor centres and (dx, dy) offsets of each landmark -> x, y of each landmark."""
    coords = []
    for i in range(0, distance.shape[1], 2):
        coords.append(points[:, i % 2] + distance[:, i])
        coords.append(points[:, i % 2 + 1] + distance[:, i + 1])
    return np.stack(coords, axis=-1)


def non_maximum_suppression(dets: np.ndarray, threshold: float) -> list[int]:
    """Indices of the boxes kept, best score first; a box overlapping a kept one by more than
    THRESHOLD (intersection over union, with insightface's +1 pixel sides) is dropped."""
    x1, y1, x2, y2, scores = dets[:, 0], dets[:, 1], dets[:, 2], dets[:, 3], dets[:, 4]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(i)
        xx1 = np.maximum(x1[i], x1[order[1:]])
        yy1 = np.maximum(y1[i], y1[order[1:]])
        xx2 = np.minimum(x2[i], x2[order[1:]])
        yy2 = np.minimum(y2[i], y2[order[1:]])
        w = np.maximum(0.0, xx2 - xx1 + 1)
        h = np.maximum(0.0, yy2 - yy1 + 1)
        inter = w * h
        overlap = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[np.where(overlap <= threshold)[0] + 1]
    return keep
