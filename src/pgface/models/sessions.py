"""Inference sessions: a backend from an ordered preference list, threads set explicitly.

Backends, by name in `Settings.providers`:
- `TorchCUDA`, `TorchCPU`: PyTorch, on an NVIDIA GPU or on the CPU (models/torch_backend.py;
  needs the `gpu` extra); TorchCUDA is skipped, saying why, where no GPU is usable;
- `CUDAExecutionProvider`: ONNX Runtime on an NVIDIA GPU (needs onnxruntime-gpu and a GPU);
- `OpenVINO`: OpenVINO on the CPU, in bf16 where the CPU has AMX/AVX-512 BF16 (several times
  ONNX Runtime's speed on such CPUs; see docs/benchmarks.md);
- `CPUExecutionProvider`: ONNX Runtime on the CPU, always available, always last.
InsightFace's model classes take an ONNX Runtime session; OpenVINOSession and TorchSession offer
the part of that interface they use, so the same detection and recognition code runs on either.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from pgface.models import torch_backend

log = logging.getLogger(__name__)

OPENVINO = "OpenVINO"
CPU = "CPUExecutionProvider"
# Seconds a session keeps to its parallel streams after two inferences last overlapped.
OVERLAP_MEMORY = 1.0


def available_providers(preferred: Sequence[str]) -> list[str]:
    """The preferred backends that can run here, in order, ONNX Runtime's CPU last. A torch
    backend left out is logged once with the reason (PyTorch missing, no usable GPU)."""
    offered = set(ort.get_available_providers())
    if importlib.util.find_spec("openvino") is not None:
        offered.add(OPENVINO)
    chosen, skipped = [], []
    for backend in preferred:
        if torch_backend.is_torch_backend(backend):
            reason = torch_backend.unusable_reason(backend)
            if reason is None:
                chosen.append(backend)
            else:
                skipped.append((backend, reason))
        elif backend in offered and backend != CPU:
            chosen.append(backend)
    chosen.append(CPU)
    for backend, reason in skipped:
        torch_backend.report_unusable(backend, reason, chosen[0])
    return chosen


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_pinning(threads: int) -> bool:
    """Whether OpenVINO may pin its inference threads to cores: only where the session has
    every core this process may use. OpenVINO pins from the first core of the process's set,
    the calling thread included, and processes do not share out the cores: two processes of
    one thread each on two cores both ran on the first while the second idled, each at half
    its speed (docs/benchmarks-processes.md)."""
    return threads >= default_threads()


def create_session(model: Path, providers: Sequence[str], threads: int = 0,
                   static_shapes: bool = False, streams: int = 1,
                   cache_dir: Path | None = None) -> Any:
    """An ONNX Runtime session, or its OpenVINO stand-in, on the first backend that works.

    streams > 1 (OpenVINO): while callers overlap, each inference gets a stream of its own, the
    threads shared among that many streams; a caller alone gets every thread. With one stream,
    concurrent callers queue for it.

    A CUDA build of onnxruntime lists CUDA even on a machine without a GPU, and then quietly
    runs on the CPU: such a session is dropped for the next backend in the list.

    cache_dir (OpenVINO): where compiled models are kept, so a new process imports them
    instead of compiling again (docs/benchmarks-search.md, cold start).
    """
    threads = threads or default_threads()
    remaining = list(providers) or [CPU]
    while True:
        backend = remaining[0]
        if torch_backend.is_torch_backend(backend):
            reason = torch_backend.unusable_reason(backend)
            if reason is None:
                try:
                    session: Any = torch_backend.TorchSession(model, backend, threads)
                except (RuntimeError, OSError) as exc:  # a driver too old, memory taken
                    reason = f"{model.name} did not load: {exc}"
                else:
                    log.info("%s on %s", model.name, session.get_providers()[0])
                    return session
            remaining = remaining[1:] or [CPU]
            torch_backend.report_unusable(backend, reason, remaining[0])
            continue
        if backend == OPENVINO:
            session = OpenVINOSession(model, threads, static_shapes, streams, cache_dir)
        else:
            session = _onnx_runtime_session(model, [p for p in remaining if p != OPENVINO],
                                            threads)
        actual = session.get_providers()[0]
        if actual.startswith(backend) or backend == CPU or len(remaining) == 1:
            log.info("%s on %s, %d threads", model.name, actual, threads)
            return session
        log.warning("%s: %s is not usable here, trying %s", model.name, backend, remaining[1])
        remaining = remaining[1:]


def _onnx_runtime_session(model: Path, providers: list[str], threads: int) -> Any:
    options = ort.SessionOptions()
    # More intra-op threads than cores oversubscribes a small machine and halves throughput.
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # ArcFace packs declare a batch of 1 and warn per batch
    return ort.InferenceSession(str(model), sess_options=options, providers=providers or [CPU])


@dataclass(frozen=True)
class _Port:
    name: str
    shape: list[int | str]


class OpenVINOSession:
    """OpenVINO behind the slice of onnxruntime.InferenceSession that InsightFace uses."""

    def __init__(self, model: Path, threads: int, static_shapes: bool = False,
                 streams: int = 1, cache_dir: Path | None = None) -> None:
        import openvino as ov

        self._core = ov.Core()
        self._cache_dir = cache_dir if cache_dir is not None and _writable_folder(cache_dir) \
            else None
        if self._cache_dir is not None:
            self._core.set_property({"CACHE_DIR": str(self._cache_dir)})
        self._model_path = str(model)
        # Latency mode: one stream using every thread, like ONNX Runtime's intra-op pool; the
        # fastest for one caller. With it alone, two indexing workers detected no faster than
        # one: the second waited for the stream. So while callers overlap (an indexer's
        # workers, a server under load), inferences take the parallel compilation, one
        # stream per `streams`; a lone caller (one search) keeps every thread.
        pinning = {"ENABLE_CPU_PINNING": cpu_pinning(threads)}
        self._configs: dict[bool, dict[str, Any]] = {
            False: {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", **pinning}}
        if streams > 1:
            self._configs[True] = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": streams,
                                   **pinning}
        self._in_flight = 0
        self._last_overlap = -OVERLAP_MEMORY
        self._flight_lock = threading.Lock()
        # A model compiled for one exact input shape runs faster than the dynamic one when
        # shapes alternate (SCRFD's 256 and 640 inputs); recognition keeps a dynamic batch.
        self._static_shapes = static_shapes
        self._compile_lock = threading.RLock()
        dynamic = self._core.compile_model(self._model_path, "CPU", self._configs[False])
        # Compiled models by (input shape, or None for the dynamic one; parallel or not).
        self._compiled: dict[tuple[tuple[int, ...] | None, bool], Any] = {(None, False): dynamic}
        self.precision = dynamic.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self._inputs = [_Port(p.get_any_name(), _shape(p)) for p in dynamic.inputs]
        # ONNX output names are among each port's names; InsightFace asks by those names.
        self._outputs = []
        self._port_of: dict[str, int] = {}
        for index, port in enumerate(dynamic.outputs):
            names = sorted(port.get_names())
            onnx_name = next((n for n in names if not n.isdigit()), names[0])
            self._outputs.append(_Port(onnx_name, _shape(port)))
            for name in names:
                self._port_of[name] = index
        self._local = threading.local()  # an infer request is not thread-safe; one per thread

    def _compiled_for(self, key: tuple[tuple[int, ...] | None, bool]) -> Any:
        shape, parallel = key
        with self._compile_lock:
            compiled = self._compiled.get(key)
            if compiled is None:
                model: Any = self._reshaped_file(shape) if shape is not None else None
                if model is None:
                    model = self._core.read_model(self._model_path)
                    if shape is not None:
                        model.reshape({model.inputs[0].get_any_name(): list(shape)})
                compiled = self._compiled[key] = self._core.compile_model(
                    model, "CPU", self._configs[parallel])
            return compiled

    def _reshaped_file(self, shape: tuple[int, ...]) -> str | None:
        """The model reshaped to shape, saved once in the cache folder: OpenVINO's cache
        finds a compiled file by its path in a few milliseconds, where a reshaped model in
        memory is read, converted and hashed first (a quarter second each time)."""
        if self._cache_dir is None:
            return None
        import openvino as ov

        source = Path(self._model_path)
        info = source.stat()
        name = f"{source.stem}-{info.st_size}-{info.st_mtime_ns}-{'x'.join(map(str, shape))}"
        xml = self._cache_dir / f"{name}.xml"
        if not xml.exists():
            model = self._core.read_model(self._model_path)
            model.reshape({model.inputs[0].get_any_name(): list(shape)})
            temp = self._cache_dir / f"{name}.{os.getpid()}.{threading.get_ident()}.tmp.xml"
            try:
                ov.save_model(model, str(temp), compress_to_fp16=False)
                # the weights first, then the file that names them: a reader never meets an
                # .xml without its .bin
                os.replace(temp.with_suffix(".bin"), xml.with_suffix(".bin"))
                os.replace(temp, xml)
            except (OSError, RuntimeError) as exc:
                log.info("cannot keep the reshaped model in %s (%s)", self._cache_dir, exc)
                return None
            finally:
                temp.unlink(missing_ok=True)
                temp.with_suffix(".bin").unlink(missing_ok=True)
        return str(xml)

    def compile_shapes(self, shapes: Sequence[tuple[int, ...]]) -> None:
        """Compile every variant for these input shapes now rather than on first use."""
        for shape in shapes:
            for parallel in self._configs:
                self._compiled_for((tuple(shape) if self._static_shapes else None, parallel))

    def get_inputs(self) -> list[_Port]:
        return list(self._inputs)

    def get_outputs(self) -> list[_Port]:
        return list(self._outputs)

    def get_providers(self) -> list[str]:
        return [f"{OPENVINO}:CPU:{self.precision}"]

    def run(self, output_names: Sequence[str] | None, feed: dict[str, np.ndarray]
            ) -> list[np.ndarray]:
        (name, value), = feed.items()
        with self._flight_lock:
            now = time.monotonic()
            if self._in_flight:
                self._last_overlap = now
            # Remembered for a while: a worker that finds the other one decoding would
            # otherwise take every thread and then share the cores with it.
            parallel = True in self._configs and now - self._last_overlap < OVERLAP_MEMORY
            self._in_flight += 1
        try:
            key = (tuple(value.shape) if self._static_shapes else None, parallel)
            requests = self._local.__dict__.setdefault("requests", {})
            request = requests.get(key)
            inputs = {name: np.ascontiguousarray(value)}
            if request is None:
                # OpenVINO can deadlock when two threads make their first inference at once.
                with self._compile_lock:
                    request = self._compiled_for(key).create_infer_request()
                    results = request.infer(inputs)
                requests[key] = request
            else:
                results = request.infer(inputs)
        finally:
            with self._flight_lock:
                self._in_flight -= 1
        names = output_names or [o.name for o in self._outputs]
        # Copies: the request reuses its output buffers on the next call.
        return [np.array(results[self._port_of[n]]) for n in names]


def _writable_folder(folder: Path) -> bool:
    """Whether compiled models can be kept in folder (made if missing); without it OpenVINO
    compiles each model anew, as it would with no cache."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.info("no OpenVINO model cache in %s (%s)", folder, exc)
        return False
    return os.access(folder, os.W_OK | os.X_OK)


def _shape(port: Any) -> list[int | str]:
    return [d.get_length() if d.is_static else "?" for d in port.get_partial_shape()]
