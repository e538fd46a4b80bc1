"""An ONNX graph run by PyTorch: the weights become tensors of a torch module, the nodes torch
calls, so the same model runs on CUDA, in half precision and in large batches.

Only the operators InsightFace's SCRFD and ArcFace graphs use are supported; any other raises
at load time, naming it. (onnx2torch converts these graphs too, but it imports torchvision,
whose PyPI wheel is a CUDA build that fails to load beside a CPU build of PyTorch.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

# ONNX TensorProto data types that Cast may ask for.
_CAST_TYPES = {1: "float", 6: torch.int32, 7: torch.int64, 9: torch.bool}
# Operators whose float initializers are weights: they follow the module to its device and dtype.
_WEIGHTED = {"Conv", "Gemm", "PRelu", "BatchNormalization", "Add", "Mul", "Sub", "Div"}


class OnnxGraphModule(torch.nn.Module):
    """One ONNX model as a torch module: forward(input) -> tuple of the graph's outputs.

    Float tensors (weights, activations) live on the module's device in its dtype; integer
    tensors (shape arithmetic: Shape, Gather, Concat, Reshape targets) stay on the CPU.
    """

    def __init__(self, model_file: Path | str) -> None:
        super().__init__()
        graph = onnx.load(str(model_file)).graph
        initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        weight_names = {name for node in graph.node if node.op_type in _WEIGHTED
                        for name in node.input[1:]}
        self._buffer_of: dict[str, str] = {}
        self._constants: dict[str, torch.Tensor] = {}
        for name, value in initializers.items():
            tensor = torch.from_numpy(np.array(value))
            if name in weight_names and tensor.is_floating_point():
                self._buffer_of[name] = f"w{len(self._buffer_of)}"
                self.register_buffer(self._buffer_of[name], tensor)
            else:
                self._constants[name] = tensor
        self.input_names = [i.name for i in graph.input if i.name not in initializers]
        self.output_names = [o.name for o in graph.output]
        self.input_shapes = [_dims(i) for i in graph.input if i.name not in initializers]
        self.output_shapes = [_dims(o) for o in graph.output]
        self._steps: list[tuple[Callable[..., Any], list[str], list[str]]] = []
        for node in graph.node:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            if node.op_type == "Constant":
                self._constants[node.output[0]] = torch.from_numpy(
                    np.array(numpy_helper.to_array(attrs["value"])))
                continue
            if node.op_type == "PRelu":  # F.prelu wants one slope per channel, not C x 1 x 1
                slope = node.input[1]
                buffer = getattr(self, self._buffer_of[slope])
                if buffer.ndim > 1 and buffer.numel() == buffer.shape[0]:
                    self.register_buffer(self._buffer_of[slope], buffer.reshape(-1))
            self._steps.append((_operator(node.op_type, attrs, node.name),
                                list(node.input), list(node.output)))

    @property
    def float_dtype(self) -> torch.dtype:
        return next(self.buffers()).dtype

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        values: dict[str, Any] = {self.input_names[0]: x, "": None}
        for name, buffer in self._buffer_of.items():
            values[name] = getattr(self, buffer)
        values.update(self._constants)
        dtype = self.float_dtype
        for run, inputs, outputs in self._steps:
            result = run(dtype, *(values[name] for name in inputs))
            if len(outputs) == 1:
                values[outputs[0]] = result
            else:
                values.update(zip(outputs, result, strict=False))
        return tuple(values[name] for name in self.output_names)


def _dims(value: Any) -> list[int | str]:
    return [d.dim_value if d.HasField("dim_value") else "?"
            for d in value.type.tensor_type.shape.dim]


def _ints(value: torch.Tensor | None) -> list[int]:
    return [] if value is None else [int(v) for v in value.reshape(-1).tolist()]


def _operator(op: str, attrs: dict[str, Any], node: str) -> Callable[..., Any]:
    """The torch function of one ONNX node: f(float dtype, *inputs) -> output."""
    if op == "Conv":
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        if pads[:2] != pads[2:]:
            raise ValueError(f"{node}: asymmetric Conv padding {pads} is not supported")
        options = {"stride": attrs.get("strides", 1), "padding": pads[:2],
                   "dilation": attrs.get("dilations", 1), "groups": attrs.get("group", 1)}
        return lambda _, x, w, b=None: F.conv2d(x, w, b, **options)
    if op == "Relu":
        return lambda _, x: F.relu(x)
    if op == "Sigmoid":
        return lambda _, x: torch.sigmoid(x)
    if op == "PRelu":
        return lambda _, x, slope: F.prelu(x, slope)
    if op == "Add":
        return lambda _, a, b: a + b
    # the mean and scale an MXNet-made ArcFace graph takes off its input itself
    # (_minusscalar0, _mulscalar0: glintr100's and other converted recognizers')
    if op == "Sub":
        return lambda _, a, b: a - b
    if op == "Mul":
        return lambda _, a, b: a * b
    if op == "Div":
        return lambda _, a, b: a / b
    if op == "Flatten":
        axis = attrs.get("axis", 1)
        return lambda _, x: x.flatten(axis)
    if op == "Gemm":
        if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 \
                or attrs.get("transA", 0) or not attrs.get("transB", 0):
            raise ValueError(f"{node}: only Gemm with transB=1, alpha=beta=1 is supported")
        return lambda _, x, w, b=None: F.linear(x, w, b)
    if op == "BatchNormalization":
        eps = attrs.get("epsilon", 1e-5)
        return lambda _, x, scale, bias, mean, var: F.batch_norm(
            x, mean, var, scale, bias, False, 0.0, eps)
    if op == "Shape":
        return lambda _, x: torch.tensor(x.shape, dtype=torch.int64)
    if op == "Gather":
        if attrs.get("axis", 0) != 0:
            raise ValueError(f"{node}: only Gather on axis 0 is supported")
        return lambda _, data, indices: data[indices.long()]
    if op == "Unsqueeze":
        axes = sorted(attrs["axes"])

        def unsqueeze(_: torch.dtype, x: torch.Tensor) -> torch.Tensor:
            for axis in axes:
                x = x.unsqueeze(axis)
            return x
        return unsqueeze
    if op == "Concat":
        axis = attrs["axis"]
        return lambda _, *parts: torch.cat(parts, axis)
    if op == "Slice":
        def slice_(_: torch.dtype, x: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor,
                   axes: torch.Tensor | None = None, steps: torch.Tensor | None = None
                   ) -> torch.Tensor:
            index = [slice(None)] * x.ndim
            axes_ = _ints(axes) or list(range(len(_ints(starts))))
            steps_ = _ints(steps) or [1] * len(axes_)
            for axis, start, end, step in zip(axes_, _ints(starts), _ints(ends), steps_,
                                              strict=True):
                index[axis] = slice(start, end, step)
            return x[tuple(index)]
        return slice_
    if op == "Cast":
        target = _CAST_TYPES.get(attrs["to"])
        if target is None:
            raise ValueError(f"{node}: Cast to ONNX type {attrs['to']} is not supported")
        return lambda dtype, x: x.to(dtype if target == "float" else target)
    if op == "Resize":
        if (attrs.get("mode", b"nearest") != b"nearest"
                or attrs.get("coordinate_transformation_mode") != b"asymmetric"
                or attrs.get("nearest_mode", b"round_prefer_floor") != b"floor"):
            raise ValueError(f"{node}: only nearest/asymmetric/floor Resize is supported")

        # torch's "nearest" is exactly ONNX's nearest with asymmetric coordinates and floor.
        def resize(_: torch.dtype, x: torch.Tensor, roi: Any = None, scales: Any = None,
                   sizes: torch.Tensor | None = None) -> torch.Tensor:
            if sizes is not None and sizes.numel():
                return F.interpolate(x, size=_ints(sizes)[2:], mode="nearest")
            factors = [float(s) for s in scales.reshape(-1).tolist()][2:]
            return F.interpolate(x, scale_factor=factors, mode="nearest")
        return resize
    if op == "Transpose":
        perm = attrs["perm"]
        return lambda _, x: x.permute(*perm)
    if op == "Reshape":
        def reshape(_: torch.dtype, x: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
            # ONNX: a 0 keeps that dimension of the input.
            target = [x.shape[i] if s == 0 else s for i, s in enumerate(_ints(shape))]
            return x.reshape(target)
        return reshape
    raise ValueError(f"{node}: ONNX operator {op} is not supported by pgface's torch backend")
