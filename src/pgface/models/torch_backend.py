"""The PyTorch backend: InsightFace's ONNX models run by PyTorch (models/torch_graph.py) on an
NVIDIA GPU, or on the CPU where that is asked for (so CI tests the same path).

Backend names, in `Settings.providers`, optionally with a precision after a colon:
- `TorchCUDA` (half precision) or `TorchCUDA:fp32`: the first CUDA device; skipped, with the
  reason logged once, where PyTorch is not installed or sees no usable GPU;
- `TorchCPU` (fp32) or `TorchCPU:fp16`: the CPU; slower than OpenVINO, for tests.
PyTorch is an optional extra (`pip install 'pgface[gpu]'`): nothing here imports it until a
torch backend is asked for.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

TORCH_CUDA = "TorchCUDA"
TORCH_CPU = "TorchCPU"
DEFAULT_PRECISION = {TORCH_CUDA: "fp16", TORCH_CPU: "fp32"}
# Where the NVIDIA driver shows itself (Linux, WSL2); without one, importing torch (2 s, 700 MB
# of libraries) to ask for a GPU would only slow every start.
NVIDIA_DRIVER_PATHS = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/dxg")

_reported: set[str] = set()
_report_lock = threading.Lock()


def is_torch_backend(name: str) -> bool:
    return name.split(":", 1)[0] in DEFAULT_PRECISION


def parse_backend(name: str) -> tuple[str, str]:
    """`TorchCUDA:fp32` -> ("cuda", "fp32"); `TorchCPU` -> ("cpu", "fp32")."""
    base, _, precision = name.partition(":")
    if base not in DEFAULT_PRECISION:
        raise ValueError(f"{name}: not a torch backend (known: {', '.join(DEFAULT_PRECISION)})")
    precision = precision or DEFAULT_PRECISION[base]
    if precision not in ("fp16", "fp32"):
        raise ValueError(f"{name}: precision must be fp16 or fp32, not {precision!r}")
    return ("cuda" if base == TORCH_CUDA else "cpu"), precision


def unusable_reason(name: str) -> str | None:
    """Why this torch backend cannot run here, or None when it can."""
    device, _ = parse_backend(name)
    missing = [m for m in ("torch", "onnx") if importlib.util.find_spec(m) is None]
    if missing:
        return (f"{' and '.join(missing)} not installed (pip install 'pgface[gpu]' adds "
                "PyTorch and onnx)")
    if device == "cuda":
        if not any(Path(p).exists() for p in NVIDIA_DRIVER_PATHS):
            return "no NVIDIA driver on this machine"
        import torch

        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            return f"PyTorch {torch.__version__} ({build}) sees no usable CUDA device"
    return None


def report_unusable(name: str, reason: str, fallback: str) -> None:
    """One log line per backend and process: the detector and recognizer would say it twice."""
    with _report_lock:
        if name in _reported:
            return
        _reported.add(name)
    log.info("%s is not used: %s; running on %s", name, reason, fallback)


@dataclass(frozen=True)
class _Port:
    name: str
    shape: list[int | str]


class TorchSession:
    """A PyTorch module behind the slice of onnxruntime.InferenceSession that the model classes
    use (run, get_inputs, get_outputs, get_providers). Safe to call from several threads."""

    def __init__(self, model: Path, backend: str, threads: int = 0) -> None:
        import torch

        from pgface.models.torch_graph import OnnxGraphModule

        device, precision = parse_backend(backend)
        self._torch = torch
        if device == "cpu" and threads:
            torch.set_num_threads(threads)  # PyTorch's pool is per process: the last one wins
        self.device = torch.device(device)
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        if device == "cuda":
            torch.backends.cudnn.benchmark = True  # a few input shapes, each reused many times
        module = OnnxGraphModule(model).eval()
        self._inputs = [_Port(n, s) for n, s in zip(module.input_names, module.input_shapes,
                                                    strict=True)]
        self._outputs = [_Port(n, s) for n, s in zip(module.output_names, module.output_shapes,
                                                     strict=True)]
        self._index = {name: i for i, name in enumerate(module.output_names)}
        self.module = module.to(device=self.device, dtype=self.dtype)
        where = torch.cuda.get_device_name(self.device) if device == "cuda" else "CPU"
        self._provider = f"{backend.split(':', 1)[0]}:{where}:{precision}"

    def get_inputs(self) -> list[_Port]:
        return list(self._inputs)

    def get_outputs(self) -> list[_Port]:
        return list(self._outputs)

    def get_providers(self) -> list[str]:
        return [self._provider]

    def run(self, output_names: Sequence[str] | None, feed: dict[str, np.ndarray]
            ) -> list[np.ndarray]:
        (_, value), = feed.items()
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
            outputs = self.module(x.to(self.device, non_blocking=True).to(self.dtype))
            names = output_names or [o.name for o in self._outputs]
            return [outputs[self._index[n]].float().cpu().numpy() for n in names]

