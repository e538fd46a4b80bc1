"""Face analysis and the interpreter's exit.

A program whose daemon threads were inside a search, a compare or an embed when it ended
died with "terminate called without an active exception" (SIGABRT, exit status 134; probe
pyapi45, 7 runs of 7): Python ends daemon threads at exit by unwinding them, and an unwind
through ONNX Runtime's or OpenVINO's C++ frames aborts the process (either library alone
does it). So every inference goes through `inference()`, and at exit (an atexit hook: those
run after the non-daemon threads are joined, before the daemon threads are ended) no new
one starts (InterpreterExiting) and those under way are waited for, EXIT_WAIT_S at most.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from pgface.errors import InterpreterExiting

# Longest the interpreter's exit waits for analyses under way (one batch of photos takes a
# few seconds on a CPU; an analysis past this one may still abort the exit, as before)
EXIT_WAIT_S = 30.0

_state = threading.Condition()
_running = 0
_exiting = False


@contextmanager
def inference() -> Iterator[None]:
    """Around a call into an inference library: refused once the interpreter exits, waited
    for by its exit while under way."""
    global _running
    with _state:
        if _exiting:
            raise InterpreterExiting("the interpreter is exiting: no face analysis starts now")
        _running += 1
    try:
        yield
    finally:
        with _state:
            _running -= 1
            _state.notify_all()


def _wait_for_inference(timeout: float = EXIT_WAIT_S) -> None:
    global _exiting
    with _state:
        _exiting = True
        _state.wait_for(lambda: _running == 0, timeout)


def _forked() -> None:
    """A forked child has none of its parent's threads: nothing of theirs is under way (an
    exit would wait for a count no thread will lower)."""
    global _state, _running, _exiting
    _state, _running, _exiting = threading.Condition(), 0, False


atexit.register(_wait_for_inference)
os.register_at_fork(after_in_child=_forked)
