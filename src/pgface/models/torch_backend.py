"""The PyTorch backend: InsightFace's ONNX models run by PyTorch (models/torch_graph.py) on an
NVIDIA GPU, or on the CPU where that is asked for (so CI tests the same path).

Backend names, in `Settings.providers`, optionally with a precision after a colon:
- `TorchCUDA` (half precision) or `TorchCUDA:fp32`: the first CUDA device; skipped, with the
  reason logged once, where PyTorch is not installed or sees no usable GPU;
- `TorchCPU` (fp32) or `TorchCPU:fp16`: the CPU; slower than OpenVINO, for tests.
PyTorch is an optional extra (`pip install -e '.[gpu]'` in the checkout): nothing here imports
it until a torch backend is asked for.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

log = logging.getLogger(__name__)

TORCH_CUDA = "TorchCUDA"
TORCH_CPU = "TorchCPU"
DEFAULT_PRECISION = {TORCH_CUDA: "fp16", TORCH_CPU: "fp32"}
LAYOUTS = ("nchw", "nhwc")
# Where the NVIDIA driver shows itself (Linux, WSL2); without one, importing torch (2 s, 700 MB
# of libraries) to ask for a GPU would only slow every start.
NVIDIA_DRIVER_PATHS = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/dxg")

_T = TypeVar("_T")
_reported: set[str] = set()
_report_lock = threading.Lock()


def is_torch_backend(name: str) -> bool:
    return name.split(":", 1)[0] in DEFAULT_PRECISION


def parse_backend(name: str) -> tuple[str, str]:
    """`TorchCUDA:fp32` -> ("cuda", "fp32"); `TorchCPU` -> ("cpu", "fp32"). A third part names
    the memory layout of the activations (`memory_layout`)."""
    base, _, rest = name.partition(":")
    if base not in DEFAULT_PRECISION:
        raise ValueError(f"{name}: not a torch backend (known: {', '.join(DEFAULT_PRECISION)})")
    precision, _, layout = rest.partition(":")
    precision = precision or DEFAULT_PRECISION[base]
    if precision not in ("fp16", "fp32"):
        raise ValueError(f"{name}: precision must be fp16 or fp32, not {precision!r}")
    if layout not in ("", *LAYOUTS):
        raise ValueError(f"{name}: layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    return ("cuda" if base == TORCH_CUDA else "cpu"), precision


def memory_layout(name: str) -> str:
    """`TorchCUDA:fp16:nhwc` -> "nhwc" (channels last, what tensor cores read best); the
    default, "nchw", is ONNX's own."""
    parse_backend(name)
    return name.split(":")[2] if name.count(":") >= 2 else "nchw"


def unusable_reason(name: str) -> str | None:
    """Why this torch backend cannot run here, or None when it can."""
    device, _ = parse_backend(name)
    missing = [m for m in ("torch", "onnx") if importlib.util.find_spec(m) is None]
    if missing:
        return (f"{' and '.join(missing)} not installed (pip install -e '.[gpu]' in pgface's "
                "checkout adds PyTorch and onnx)")
    if device == "cuda":
        if not any(Path(p).exists() for p in NVIDIA_DRIVER_PATHS):
            return "no NVIDIA driver on this machine"
        import torch

        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            return f"PyTorch {torch.__version__} ({build}) sees no usable CUDA device"
    return None


def report_unusable(name: str, reason: str, fallback: str, loud: bool = False) -> None:
    """One log line per backend and process: the detector and recognizer would say it twice.
    loud: a warning (the backend was asked for by name), else information (the default list
    tries the GPU first on every machine)."""
    with _report_lock:
        if name in _reported:
            return
        _reported.add(name)
    log.log(logging.WARNING if loud else logging.INFO, "%s is not used: %s; running on %s",
            name, reason, fallback)


@dataclass(frozen=True)
class _Port:
    name: str
    shape: list[int | str]


class TorchSession:
    """A PyTorch module behind the slice of onnxruntime.InferenceSession that the model classes
    use (run, get_inputs, get_outputs, get_providers). Safe to call from several threads;
    on CUDA the runs are done one at a time on a thread of its own (own_thread)."""

    def __init__(self, model: Path, backend: str, threads: int = 0,
                 pad_batches: bool | None = None, own_thread: bool | None = None) -> None:
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
        self.on_gpu = device == "cuda"  # detection then takes many photos a run (analysis.py)
        self.channels_last = memory_layout(backend) == "nhwc"
        module = module.to(device=self.device, dtype=self.dtype)
        self.module = module.to(memory_format=torch.channels_last) if self.channels_last \
            else module
        # On CUDA every new input shape costs a round of cudnn's algorithm search, and the
        # number of faces per batch is rarely the same twice: batches are padded up to a few
        # sizes (batch_bucket). Only where the model's batch axis is free to grow.
        dynamic_batch = bool(module.input_shapes) and not isinstance(module.input_shapes[0][0],
                                                                     int)
        self.pad_batches = dynamic_batch and (device == "cuda" if pad_batches is None
                                              else pad_batches)
        # Every run on one thread of the session's own. PyTorch keeps the convolution
        # algorithms cudnn's search chose per thread (a thread_local cache in ATen's
        # cudnn/Conv_v8.cpp: cudnn's execution plans are not safe to share between threads),
        # so each thread's first run of a batch shape searched again, seconds for the
        # detector's convolutions, whatever other threads had found: the indexer detects on a
        # prefetch thread started for each run, the HTTP API analyses on its pool's threads.
        # On an H200 the indexer's last detection run (13 photos) took 3.3 s, in a run and
        # again in the next with the same models, where a thread that had searched ran 64
        # photos in 11 ms. On the CPU (a test twin) where asked for.
        self.own_thread = device == "cuda" if own_thread is None else own_thread
        self._runner: ThreadPoolExecutor | None = None
        # the thread's identity, noted by the thread itself (a bound method as initializer
        # would keep the session, its model on the GPU, alive as long as the thread)
        self._runner_ident: list[int] = []
        if self.own_thread:
            self._runner = ThreadPoolExecutor(1, thread_name_prefix="pgface-torch",
                                              initializer=_note_thread,
                                              initargs=(self._runner_ident,))
        where = torch.cuda.get_device_name(self.device) if device == "cuda" else "CPU"
        self._provider = (f"{backend.split(':', 1)[0]}:{where}:{precision}"
                          + (":nhwc" if self.channels_last else ""))

    def get_inputs(self) -> list[_Port]:
        return list(self._inputs)

    def get_outputs(self) -> list[_Port]:
        return list(self._outputs)

    def get_providers(self) -> list[str]:
        return [self._provider]

    def _on_own_thread(self, work: Callable[..., _T], *args: Any) -> _T:
        """WORK done on the session's thread, where it has one (from the caller's thread on
        that thread itself), its exception raised here."""
        if self._runner is None or threading.get_ident() in self._runner_ident:
            return work(*args)
        return self._runner.submit(work, *args).result()

    def run(self, output_names: Sequence[str] | None, feed: dict[str, np.ndarray]
            ) -> list[np.ndarray]:
        return self._on_own_thread(self._run, output_names, feed)

    def run_pixels(self, output_names: Sequence[str] | None, pixels: np.ndarray, mean: float,
                   std: float) -> list[np.ndarray]:
        """The model on BGR uint8 images (N x H x W x 3), normalised on the device as the model
        classes' blob would be, (RGB - mean) / std in N x 3 x H x W: the bytes that cross to a
        GPU are a quarter of the float blob's, and the CPU does no per-pixel arithmetic."""
        return self._on_own_thread(self._run_pixels, output_names, pixels, mean, std)

    def _run(self, output_names: Sequence[str] | None, feed: dict[str, np.ndarray]
             ) -> list[np.ndarray]:
        (_, value), = feed.items()
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
            return self._outputs_of(x.to(self.device, non_blocking=True).to(self.dtype),
                                    output_names)

    def _run_pixels(self, output_names: Sequence[str] | None, pixels: np.ndarray, mean: float,
                    std: float) -> list[np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.uint8))
            x = x.to(self.device, non_blocking=True).flip(-1).permute(0, 3, 1, 2)
            # float32 arithmetic, as on the CPU, before any cast to half precision
            x = (x.to(torch.float32) - mean) * (1.0 / std)
            return self._outputs_of(x.to(self.dtype), output_names)

    def _outputs_of(self, x: Any, output_names: Sequence[str] | None) -> list[np.ndarray]:
        count = int(x.shape[0])
        size = batch_bucket(count) if self.pad_batches else count
        if size != count:
            x = self._torch.cat([x, x.new_zeros((size - count, *x.shape[1:]))])
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=self._torch.channels_last)
        else:
            x = x.contiguous()
        outputs = self.module(x)
        names = output_names or [o.name for o in self._outputs]
        picked = [outputs[self._index[n]] for n in names]
        return [(o[:count] if size != count and o.shape[0] == size else o).float().cpu().numpy()
                for o in picked]


def _note_thread(idents: list[int]) -> None:
    idents.append(threading.get_ident())


def batch_bucket(count: int) -> int:
    """The batch size a padded session runs COUNT inputs at: the next power of two up to 128,
    then the next multiple of 128. A few shapes, each tuned once; at most twice the work (129
    inputs run as 256), under a sixth more from 768 inputs up."""
    if count <= 128:
        return 1 << max(count - 1, 0).bit_length()
    return -(-count // 128) * 128

