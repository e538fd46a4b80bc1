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

import fcntl
import importlib.util
import logging
import os
import resource
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from pgface.errors import out_of_memory
from pgface.models import torch_backend
from pgface.models.packs import file_sha256

log = logging.getLogger(__name__)

OPENVINO = "OpenVINO"
CPU = "CPUExecutionProvider"
# Seconds a session keeps to its parallel streams after two inferences last overlapped.
OVERLAP_MEMORY = 1.0
# OpenVINO's Python layer copies the input into the request and each output out of it while
# holding the interpreter lock (a fifth of the time the indexer's threads held it); shared, the
# request reads the caller's array and `_infer` makes the one copy of each output it returns.
SHARED_BUFFERS = {"share_inputs": True, "share_outputs": True}

# A compiled variant of an OpenVINO model: its input shape (None: the dynamic model), whether it
# runs parallel streams, and the pixel normalisation (mean, std) compiled into it (None: it
# takes the float blob).
Variant = tuple[tuple[int, ...] | None, bool, tuple[float, float] | None]

# OpenVINO starts threads while it compiles a model (its streams' executor). Where one could
# not be started for want of address space (a process capped with ulimit -v, RLIMIT_AS), the
# compile hung for good (destroying a condition its started threads waited on) or ended the
# process ("terminate called without an active exception"). So under such a cap a compile first
# makes sure this much is left, and is out of memory (said, the run stopped) where it is not.
# Measured: the detector's parallel variant took 44 MiB and 3 threads; each thread may also
# reserve its stack (RLIMIT_STACK, 8 MiB) and a malloc arena (64 MiB).
COMPILE_ADDRESS_SPACE = 256 << 20


def backend_name_error(name: str) -> str | None:
    """Why NAME names no backend (a misspelling was passed over in silence, the run falling
    back to ONNX Runtime's CPU), or None: a torch backend with a valid precision and layout,
    OpenVINO, or any of ONNX Runtime's provider names (usable here or not: that is told when
    a session is made)."""
    if torch_backend.is_torch_backend(name):
        try:
            torch_backend.parse_backend(name)
        except ValueError as exc:
            return str(exc)
        return None
    known = [*torch_backend.DEFAULT_PRECISION, OPENVINO, *ort.get_all_providers()]
    if name in known:
        return None
    alike = [k for k in known if k.lower() == name.lower()]
    return f"no backend is called {name!r}" + (
        f" (did you mean {alike[0]}?)" if alike else
        f"; the backends are TorchCUDA, TorchCPU, {OPENVINO} and ONNX Runtime's providers "
        f"({CPU}, CUDAExecutionProvider, ...)")


def available_providers(preferred: Sequence[str], explicit: bool = False) -> list[str]:
    """The preferred backends that can run here, in order, ONNX Runtime's CPU last; OpenVINO
    (where installed) before it unless ONNX Runtime's CPU is asked for by name: a list of GPU
    backends only fell back to the slower CPU path. A backend left out is logged once with the
    reason (PyTorch missing, no usable GPU, not in this onnxruntime); as a warning where the
    list was given
    (`explicit`: PGFACE_PROVIDERS set), which the command line shows (it said nothing)."""
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
        elif backend in offered:
            if backend != CPU:
                chosen.append(backend)
        elif explicit:
            # said as a torch backend's is: CUDAExecutionProvider named without a CUDA build
            # of onnxruntime ran on the CPU without a word (probe packs38). The default list
            # names it for a CUDA build, where one is installed.
            skipped.append((backend, "openvino is not installed" if backend == OPENVINO else
                            f"this onnxruntime does not offer it (it offers "
                            f"{', '.join(ort.get_available_providers())})"))
    if CPU not in preferred and OPENVINO in offered and OPENVINO not in chosen:
        chosen.append(OPENVINO)
    chosen.append(CPU)
    for backend, reason in skipped:
        torch_backend.report_unusable(backend, reason, chosen[0], loud=explicit)
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
                   cache_dir: Path | None = None, pixel_input: bool = False) -> Any:
    """An ONNX Runtime session, or its OpenVINO stand-in, on the first backend that works.

    streams > 1 (OpenVINO): while callers overlap, each inference gets a stream of its own, the
    threads shared among that many streams; a caller alone gets every thread. With one stream,
    concurrent callers queue for it.

    A CUDA build of onnxruntime lists CUDA even on a machine without a GPU, and then quietly
    runs on the CPU: such a session is dropped for the next backend in the list.

    cache_dir (OpenVINO): where compiled models are kept, so a new process imports them
    instead of compiling again (docs/benchmarks-search.md, cold start).

    pixel_input (OpenVINO): the session also takes uint8 BGR images (`run_pixels`, as the
    torch backend's), normalised inside the compiled model (OpenVINOPixelSession).
    """
    threads = threads or default_threads()
    remaining = list(providers) or [CPU]
    while True:
        backend = remaining[0]
        if torch_backend.is_torch_backend(backend):
            reason = torch_backend.unusable_reason(backend)
            failed = False  # usable here, and this model did not load on it: said as a warning
            if reason is None:
                try:
                    session: Any = torch_backend.TorchSession(model, backend, threads)
                except (RuntimeError, OSError, ValueError) as exc:
                    # a driver too old, memory taken; an operator the torch graph does not
                    # run (a ValueError naming it), which the next backend may: such a pack
                    # was refused outright (probe packs38)
                    reason = f"{model.name} did not load: {exc}"
                    failed = True
                else:
                    log.info("%s on %s", model.name, session.get_providers()[0])
                    return session
            remaining = remaining[1:] or [CPU]
            torch_backend.report_unusable(backend, reason, remaining[0], loud=failed)
            continue
        if backend == OPENVINO:
            kind = OpenVINOPixelSession if pixel_input else OpenVINOSession
            session = kind(model, threads, static_shapes, streams, cache_dir)
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


# OpenVINO's compile_model, with a cache folder, sets the process's locale to "C" and then puts
# back the one it found: two threads compiling at once (two libraries opened by a server's or a
# Django project's threads) each put back the other's "C", and the process stayed in the C
# locale (its text files and pipes then read as ASCII). One compilation at a time in a process.
_COMPILING_IN_PROCESS = threading.Lock()


def _compiling_lock_of_the_child() -> None:
    """A forked child's own lock: forked while another thread compiled, it held the parent's
    taken for good, and its first compilation waited for ever."""
    global _COMPILING_IN_PROCESS
    _COMPILING_IN_PROCESS = threading.Lock()


os.register_at_fork(after_in_child=_compiling_lock_of_the_child)


def _compile(core: Any, model: Any, config: dict[str, Any]) -> Any:
    with _COMPILING_IN_PROCESS:
        return core.compile_model(model, "CPU", config)


class OpenVINOSession:
    """OpenVINO behind the slice of onnxruntime.InferenceSession that InsightFace uses."""

    def __init__(self, model: Path, threads: int, static_shapes: bool = False,
                 streams: int = 1, cache_dir: Path | None = None) -> None:
        import openvino as ov
        from openvino.frontend import FrontEndManager

        # Asked of the ONNX reader alone: OpenVINO tries every reader on a file none of them
        # reads, and TensorFlow's wrote its log lines on the process's stderr ("Error parsing
        # text-format tensorflow.GraphDef") of a saved web page or a zip named w600k_r50.onnx
        # (probe packs38)
        if not FrontEndManager().load_by_framework("onnx").supported(str(model)):
            raise RuntimeError("not an ONNX model (its reader cannot parse the file)")
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
        with _compiling(self._cache_dir, model, None, None):
            room_to_compile(self._model_path)
            dynamic = _compile(self._core, self._model_path, self._configs[False])
        self._compiled: dict[Variant, Any] = {(None, False, None): dynamic}
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

    def _compiled_for(self, key: Variant) -> Any:
        shape, parallel, normalisation = key
        with self._compile_lock:
            compiled = self._compiled.get(key)
            if compiled is None:
                with _compiling(self._cache_dir, self._model_path, shape, normalisation):
                    model: Any = self._model_path
                    if shape is not None or normalisation is not None:
                        model = (self._variant_file(shape, normalisation)
                                 or self._variant_model(shape, normalisation))
                    room_to_compile(self._model_path)
                    compiled = self._compiled[key] = _compile(
                        self._core, model, self._configs[parallel])
            return compiled

    def _variant_model(self, shape: tuple[int, ...] | None,
                       normalisation: tuple[float, float] | None) -> Any:
        """The model reshaped to SHAPE (a pixel shape N x H x W x 3 where it takes pixels),
        taking uint8 pixels where NORMALISATION is given."""
        model = self._core.read_model(self._model_path)
        if shape is not None:
            if normalisation is not None:
                count, height, width, _ = shape
                shape = (count, 3, height, width)
            model.reshape({model.inputs[0].get_any_name(): list(shape)})
        return model if normalisation is None else _with_pixel_input(model, *normalisation)

    def _variant_file(self, shape: tuple[int, ...] | None,
                      normalisation: tuple[float, float] | None) -> str | None:
        """The variant's model, saved once in the cache folder: OpenVINO's cache finds a
        compiled file by its path in a few milliseconds, where a reshaped model in memory is
        read, converted and hashed first (a quarter second each time)."""
        if self._cache_dir is None:
            return None
        import openvino as ov

        source = Path(self._model_path)
        # Named by the model's content: by its size and time, a detector replaced by another
        # of the same size with its time kept (unzip, tar, rsync -t) ran the old one on
        digest = file_sha256(source)[:16]
        name = f"{source.stem}-{digest}-{_variant_name(shape, normalisation)}"
        xml = self._cache_dir / f"{name}.xml"
        if not xml.exists():
            model = self._variant_model(shape, normalisation)
            temp = self._cache_dir / f"{name}.{os.getpid()}.{threading.get_ident()}.tmp.xml"
            try:
                ov.save_model(model, str(temp), compress_to_fp16=False)
                # the weights first, then the file that names them: a reader never meets an
                # .xml without its .bin
                os.replace(temp.with_suffix(".bin"), xml.with_suffix(".bin"))
                os.replace(temp, xml)
            except (OSError, RuntimeError) as exc:
                log.info("cannot keep the model's variant in %s (%s)", self._cache_dir, exc)
                return None
            finally:
                temp.unlink(missing_ok=True)
                temp.with_suffix(".bin").unlink(missing_ok=True)
        return str(xml)

    def compile_shapes(self, shapes: Sequence[tuple[int, ...]],
                       normalisation: tuple[float, float] | None = None) -> None:
        """Compile every variant for these input shapes now rather than on first use (pixel
        shapes, N x H x W x 3, with the normalisation of `run_pixels` where given)."""
        for shape in shapes:
            for parallel in self._configs:
                self._compiled_for((tuple(shape) if self._static_shapes else None, parallel,
                                    normalisation))

    def get_inputs(self) -> list[_Port]:
        return list(self._inputs)

    def get_outputs(self) -> list[_Port]:
        return list(self._outputs)

    def get_providers(self) -> list[str]:
        return [f"{OPENVINO}:CPU:{self.precision}"]

    def run(self, output_names: Sequence[str] | None, feed: dict[str, np.ndarray]
            ) -> list[np.ndarray]:
        (_, value), = feed.items()
        return self._infer(output_names, value, None)

    def _infer(self, output_names: Sequence[str] | None, value: np.ndarray,
               normalisation: tuple[float, float] | None) -> list[np.ndarray]:
        with self._flight_lock:
            now = time.monotonic()
            if self._in_flight:
                self._last_overlap = now
            # Remembered for a while: a worker that finds the other one decoding would
            # otherwise take every thread and then share the cores with it.
            parallel = True in self._configs and now - self._last_overlap < OVERLAP_MEMORY
            self._in_flight += 1
        try:
            key = (tuple(value.shape) if self._static_shapes else None, parallel, normalisation)
            requests = self._local.__dict__.setdefault("requests", {})
            made = requests.get(key)  # (request, the compiled model it came from)
            inputs = {0: np.ascontiguousarray(value)}  # the one input, by position
            if made is None:
                # OpenVINO can deadlock when two threads make their first inference at once.
                with self._compile_lock:
                    compiled = self._compiled_for(key)
                    made = (compiled.create_infer_request(), compiled)
                    results = self._run_or_forget(key, made, inputs)
                requests[key] = made
            else:
                results = self._run_or_forget(key, made, inputs)
        finally:
            with self._flight_lock:
                self._in_flight -= 1
        names = output_names or [o.name for o in self._outputs]
        # Copies: the request reuses its output buffers on the next call.
        return [np.array(results[self._port_of[n]]) for n in names]

    def _run_or_forget(self, key: Variant, made: tuple[Any, Any], inputs: dict) -> Any:
        """MADE's request run on INPUTS. Should memory run out, the request and its compiled
        model are forgotten, so that the next run compiles the model again: a run that failed
        for want of memory ("can't alloc") left them broken, and every later run failed too
        ("std::future_error: Broken promise"), long after memory was back (a server's every
        search). The compiled model is forgotten only if it is still the one in use: another
        thread may have compiled it again already."""
        request, compiled = made
        try:
            _mark_outputs(request)
            results = request.infer(inputs, **SHARED_BUFFERS)
            _check_outputs(results)
            return results
        except Exception as exc:
            if out_of_memory(exc) or "Broken promise" in str(exc):
                self._local.__dict__.get("requests", {}).pop(key, None)
                with self._compile_lock:
                    if self._compiled.get(key) is compiled:
                        del self._compiled[key]
            raise


# Short of memory or of threads (`ulimit -v`, two indexing processes), a request's infer now and
# then returned without running the model and without an error: its outputs were the last run's.
# A batch of 4 faces was stored with the embeddings of the batch before (cosine 1.000 with
# another photo's faces; 8 faces of 39 photos, the run "0 failed"), or a batch of another size
# came back short ("StopIteration"). So each output's first and last values are set to a NaN of
# pgface's own bits before a run, which no model output holds; one still so after it is a run
# that did not happen. Its own bits, not any NaN: a damaged model computing NaN was told
# "memory or threads ran short" (probe reprobe39), where its file is to blame.
NOT_RUN = ("the model returned without running (its outputs were left as before): memory or "
           "threads ran short")
_MARKS = {np.dtype(np.float16): np.uint16(0x7E5D),  # quiet NaNs, payload 0x5D / 0xDEAD
          np.dtype(np.float32): np.uint32(0x7FC0DEAD),
          np.dtype(np.float64): np.uint64(0x7FF800000000DEAD)}


def _mark_outputs(request: Any) -> None:
    """Each of the request's output buffers with its first and last value set to the mark (a
    run that changes an output's shape gives it a new buffer, written whole)."""
    for tensor in request.output_tensors:
        data = tensor.data
        mark = _MARKS.get(data.dtype)
        if data.size and mark is not None:
            bits = data.reshape(-1).view(mark.dtype)
            bits[0] = bits[-1] = mark


def _check_outputs(results: Any) -> None:
    """MemoryError (NOT_RUN) where an output still holds the mark of _mark_outputs."""
    for value in results.values():
        data = np.asarray(value)
        mark = _MARKS.get(data.dtype)
        if data.size and mark is not None:
            bits = data.reshape(-1).view(mark.dtype)
            if bits[0] == mark or bits[-1] == mark:
                raise MemoryError(NOT_RUN)


class OpenVINOPixelSession(OpenVINOSession):
    """An OpenVINO session that also takes BGR uint8 images, as the torch backend does.

    OpenVINO's preprocessing, compiled into the model, makes the float input (RGB - mean) / std
    in N x 3 x H x W itself, inside the reorder that its first layer does anyway: SCRFD on the
    shared photos (both input sizes, one thread) detects 1.16x to 1.44x as fast in three runs,
    where numpy's blob alone took 1.9 ms of a photo's 12 at 640 (docs/benchmarks-detector-
    input.md). For SCRFD (mean 127.5, std 128, a power of two) the outputs are the float
    blob's to the bit in bf16, and within 1e-5 in f32 (another order of summation). The
    recognizer keeps the blob: its std of 127.5 rounds differently in bf16 (outputs moved by
    up to 0.03), for 1.5 % of its time.
    """

    def run_pixels(self, output_names: Sequence[str] | None, pixels: np.ndarray, mean: float,
                   std: float) -> list[np.ndarray]:
        """The model on BGR uint8 images (N x H x W x 3), normalised inside it as the model
        classes' blob would be: (RGB - mean) / std in N x 3 x H x W."""
        return self._infer(output_names, np.asarray(pixels, dtype=np.uint8),
                           (float(mean), float(std)))


def _with_pixel_input(model: Any, mean: float, std: float) -> Any:
    """MODEL taking BGR uint8 images N x H x W x 3 and normalising them itself."""
    from openvino import Layout, Type
    from openvino.preprocess import ColorFormat, PrePostProcessor

    steps = PrePostProcessor(model)
    steps.input().tensor().set_element_type(Type.u8).set_layout(Layout("NHWC")) \
        .set_color_format(ColorFormat.BGR)
    steps.input().model().set_layout(Layout("NCHW"))
    steps.input().preprocess().convert_element_type(Type.f32) \
        .convert_color(ColorFormat.RGB).mean(mean).scale(std)
    return steps.build()


def compile_lock(cache_dir: Path, model: str | Path, shape: tuple[int, ...] | None,
                 normalisation: tuple[float, float] | None) -> Path:
    """The lock file, in cache_dir, of the compilations of one variant of a model."""
    return cache_dir / f".compile-{Path(model).stem}-{_variant_name(shape, normalisation)}.lock"


def _variant_name(shape: tuple[int, ...] | None,
                  normalisation: tuple[float, float] | None) -> str:
    """A model variant in a file name: its input shape (or "dynamic"), and the normalisation of
    a pixel input where it has one."""
    name = "x".join(map(str, shape)) if shape is not None else "dynamic"
    if normalisation is not None:
        name += "-pixels-{:g}-{:g}".format(*normalisation)
    return name


@contextmanager
def _compiling(cache_dir: Path | None, model: str | Path, shape: tuple[int, ...] | None,
               normalisation: tuple[float, float] | None) -> Iterator[None]:
    """One compilation of a model variant at a time among all the processes and threads that
    share a model cache folder. OpenVINO writes a compiled model's cache file in place, then
    sets its permissions, and drops a cache file it cannot load; two processes compiling the
    same model into a fresh cache met there, and one's compile_model failed ("filesystem
    error: cannot set permissions: No such file or directory [...blob]"). That stopped 2 of 95
    runs of `pgface index --processes 2` on a fresh cache. A lock per variant, not one for the
    folder: processes starting together then load different variants side by side (one lock
    for the folder made the slower of two starts from a warm cache 0.14 s longer). flock, not
    fcntl's record locks: it also excludes a second open file of the same process. A lock file
    that cannot be opened leaves compiling as it was."""
    if cache_dir is None:
        yield
        return
    try:
        lock = open(compile_lock(cache_dir, model, shape, normalisation), "a")
    except OSError as exc:
        log.debug("compiling without the cache's lock (%s)", exc)
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        yield


def room_to_compile(model: str | Path) -> None:
    """Raise MemoryError where the process's address space is capped and less than
    COMPILE_ADDRESS_SPACE of it is left (see there)."""
    limit, _ = resource.getrlimit(resource.RLIMIT_AS)
    if limit == resource.RLIM_INFINITY:
        return
    used = address_space()
    if used is not None and limit - used < COMPILE_ADDRESS_SPACE:
        raise MemoryError(
            f"{max(0, limit - used) >> 20} MiB of address space left under the process's limit "
            f"(ulimit -v {limit >> 10}), compiling {Path(model).name} needs "
            f"{COMPILE_ADDRESS_SPACE >> 20} MiB")


def address_space() -> int | None:
    """Bytes of address space the process has mapped (VmSize), None where unknown."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) << 10
    except (OSError, ValueError):
        pass
    return None


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
