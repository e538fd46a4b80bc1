"""ONNX Runtime sessions: providers from an ordered preference list, threads set explicitly."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import onnxruntime as ort

log = logging.getLogger(__name__)


def available_providers(preferred: Sequence[str]) -> list[str]:
    """The preferred providers that this onnxruntime build offers, CPU always last."""
    offered = set(ort.get_available_providers())
    chosen = [p for p in preferred if p in offered and p != "CPUExecutionProvider"]
    return [*chosen, "CPUExecutionProvider"]


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def create_session(
    model: Path, providers: Sequence[str], threads: int = 0
) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # More intra-op threads than cores oversubscribes a small machine and halves throughput.
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # ArcFace packs declare a batch of 1 and warn on every batch
    session = ort.InferenceSession(str(model), sess_options=options, providers=list(providers))
    log.info("%s on %s, %d threads", model.name, session.get_providers()[0],
             options.intra_op_num_threads)
    return session
