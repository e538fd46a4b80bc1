"""SCRFD face detection on an ONNX Runtime or OpenVINO session: letterbox, run, decode the
anchors of every stride, merge input sizes, non-maximum suppression.

The arithmetic of insightface 2.1's `model_zoo/scrfd.py` (MIT licence), kept step for step so
that boxes and landmarks are the same to the last bit (tests/test_models.py checks them); what
pgface never used (model download, per-size sessions, `max_num`) is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

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
        boxes_per_size, points_per_size = [], []
        for size in input_sizes:
            boxes, points = self._candidates(image, size)
            if boxes.shape[0]:
                boxes_per_size.append(boxes)
                points_per_size.append(points)
        if not boxes_per_size:
            return np.empty((0, 5), dtype=np.float32), np.empty((0, 5, 2), dtype=np.float32)
        boxes = np.vstack(boxes_per_size).astype(np.float32, copy=False)
        order = np.argsort(-boxes[:, 4], kind="stable")
        boxes = boxes[order, :]
        points = np.vstack(points_per_size)[order, :, :]
        keep = non_maximum_suppression(boxes, NMS_THRESHOLD)
        return boxes[keep, :], points[keep, :, :]

    def detect_batch(self, images: Sequence[np.ndarray], size: tuple[int, int]
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Faces of several BGR images at one input size, in one session run: what `detect`
        gives for each at that size alone. A model without a batch axis runs them one by one."""
        if not self.batched:
            return [self.detect(image, [size]) for image in images]
        letterboxed = [letterbox(image, size) for image in images]
        blob = np.ascontiguousarray(cv2.dnn.blobFromImages(
            [canvas for canvas, _ in letterboxed], 1.0 / INPUT_STD, size,
            (INPUT_MEAN, INPUT_MEAN, INPUT_MEAN), swapRB=True), dtype=np.float32)
        outs = self.session.run(self.output_names, {self.input_name: blob})
        found = []
        for item, (_, scale) in enumerate(letterboxed):
            boxes, points = self._scaled(self._decode(outs, size, item), scale)
            keep = non_maximum_suppression(boxes, NMS_THRESHOLD)
            found.append((boxes[keep, :], points[keep, :, :]))
        return found

    def _candidates(self, image: np.ndarray, size: tuple[int, int]
                    ) -> tuple[np.ndarray, np.ndarray]:
        canvas, scale = letterbox(image, size)
        return self._scaled(self._forward(canvas), scale)

    @staticmethod
    def _scaled(decoded: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]],
                scale: float) -> tuple[np.ndarray, np.ndarray]:
        scores_list, boxes_list, points_list = decoded
        if sum(s.size for s in scores_list) == 0:
            return np.empty((0, 5), dtype=np.float32), np.empty((0, 5, 2), dtype=np.float32)
        scores = np.vstack(scores_list)
        order = np.argsort(-scores.ravel(), kind="stable")
        boxes = np.vstack(boxes_list) / scale
        points = np.vstack(points_list) / scale
        candidates = np.hstack((boxes, scores)).astype(np.float32, copy=False)
        return candidates[order, :], points[order, :, :]

    def _forward(self, canvas: np.ndarray
                 ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        size = tuple(canvas.shape[0:2][::-1])
        blob = np.ascontiguousarray(cv2.dnn.blobFromImage(
            canvas, 1.0 / INPUT_STD, size, (INPUT_MEAN, INPUT_MEAN, INPUT_MEAN), swapRB=True),
            dtype=np.float32)
        outs = self.session.run(self.output_names, {self.input_name: blob})
        return self._decode(outs, size, 0)

    def _decode(self, outs: list[np.ndarray], size: tuple[int, int], item: int
                ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """Scores, boxes and landmarks above the threshold of one image (ITEM of a batch)."""
        width, height = size
        count = self.strides_count
        scores_list, boxes_list, points_list = [], [], []
        for idx, stride in enumerate(self.strides):
            first = (lambda a: a[item]) if self.batched else (lambda a: a)
            scores = first(outs[idx])
            box_preds = first(outs[idx + count]) * stride
            point_preds = first(outs[idx + count * 2]) * stride
            centers = self._anchor_centers(height // stride, width // stride, stride)
            positive = np.where(scores >= self.det_threshold)[0]
            scores_list.append(scores[positive])
            boxes_list.append(distance_to_box(centers, box_preds)[positive])
            points = distance_to_points(centers, point_preds)
            points_list.append(points.reshape((points.shape[0], -1, 2))[positive])
        return scores_list, boxes_list, points_list

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


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """The image scaled to fit a (width, height) input, aspect kept, padded right and below;
    and its scale."""
    im_ratio = float(image.shape[0]) / image.shape[1]
    model_ratio = float(size[1]) / size[0]
    if im_ratio > model_ratio:
        new_height = size[1]
        new_width = int(new_height / im_ratio)
    else:
        new_width = size[0]
        new_height = int(new_width * im_ratio)
    scale = float(new_height) / image.shape[0]
    canvas = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    canvas[:new_height, :new_width, :] = cv2.resize(image, (new_width, new_height))
    return canvas, scale


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
