"""ArcFace recognition on an ONNX Runtime or OpenVINO session: aligned crops -> embeddings.

As insightface 2.1's `model_zoo/arcface_onnx.py` (MIT licence) computes them, including its
rule for the pixel normalisation: a model converted from MXNet normalises inside its graph
(a Sub and a Mul among its first nodes) and takes raw pixels; any other takes (p - 127.5) /
127.5. The rule reads the node names from the ONNX file itself (`onnx_node_names`), so the
`onnx` package is not needed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pgface.models.exiting import inference

EMBEDDING_SIZE = 512  # the faces table's vector(512)


class ArcFace:
    def __init__(self, model_file: Path | str, session: Any) -> None:
        self.session = session
        first_nodes = onnx_node_names(Path(model_file), limit=8)
        in_graph = (any(n.startswith(("Sub", "_minus")) for n in first_nodes)
                    and any(n.startswith(("Mul", "_mul")) for n in first_nodes))
        self.input_mean, self.input_std = (0.0, 1.0) if in_graph else (127.5, 127.5)
        port = session.get_inputs()[0]
        self.input_name = port.name
        self.input_size = tuple(port.shape[2:4][::-1])  # (width, height): 112 x 112
        self.output_names = [o.name for o in session.get_outputs()]
        if len(self.output_names) != 1:
            raise ValueError(f"{model_file}: a recognizer has one output, this one has "
                             f"{len(self.output_names)}")
        # The library stores vector(512): a recognizer of another width loaded, then every
        # store failed with "database: expected 512 dimensions, not 128", naming no file.
        width = session.get_outputs()[0].shape[-1]
        if isinstance(width, int) and width != EMBEDDING_SIZE:
            raise ValueError(f"it gives {width}-d embeddings; pgface stores "
                             f"{EMBEDDING_SIZE}-d ones (ArcFace's)")

    def get_feat(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Raw (not normalised) embeddings of aligned BGR crops, one row each."""
        run_pixels = getattr(self.session, "run_pixels", None)
        if run_pixels is not None and all(c.shape[1::-1] == self.input_size for c in crops):
            # A GPU session normalises where the model runs: a quarter of the bytes to send.
            pixels = np.stack([np.asarray(c, dtype=np.uint8) for c in crops])
            with inference():
                return run_pixels(self.output_names, pixels, self.input_mean,
                                  self.input_std)[0]
        blob = cv2.dnn.blobFromImages(list(crops), 1.0 / self.input_std, self.input_size,
                                      (self.input_mean,) * 3, swapRB=True)
        blob = np.ascontiguousarray(blob, dtype=np.float32)
        with inference():
            return self.session.run(self.output_names, {self.input_name: blob})[0]


def onnx_node_names(model_file: Path, limit: int) -> list[str]:
    """The names of the first LIMIT nodes of an ONNX model's graph, read from its protobuf
    bytes (ModelProto field 7 graph -> GraphProto field 1 node -> NodeProto field 3 name)."""
    data = memoryview(model_file.read_bytes())
    graph = next((value for field, value in _fields(data) if field == 7), None)
    if graph is None:
        raise ValueError(f"{model_file}: no graph in this ONNX file")
    names = []
    for field, node in _fields(graph):
        if field == 1:
            names.append(next((bytes(v).decode("utf-8", "replace")
                               for f, v in _fields(node) if f == 3), ""))
            if len(names) == limit:
                break
    return names


def _fields(data: memoryview) -> Iterator[tuple[int, memoryview]]:
    """(field number, bytes) of each length-delimited field of a protobuf message; the other
    wire types are stepped over."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(data, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(data, pos)
            yield field, data[pos:pos + length]
            pos += length
        else:
            raise ValueError(f"not an ONNX (protobuf) file: wire type {wire}")


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("not an ONNX (protobuf) file: truncated")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
