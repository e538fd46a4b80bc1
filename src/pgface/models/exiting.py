"""Face analysis and the interpreter's exit.

A program whose daemon threads were inside a search, a compare or an embed when it ended
died with "terminate called without an active exception" or "FATAL: exception not rethrown"
(SIGABRT, exit status 134; probes pyapi45, reprobe47): Python ends daemon threads at exit by
unwinding them, and an unwind through C++ frames (ONNX Runtime's, OpenVINO's, OpenCV's
decoding, resizing and alignment, FAISS's search) aborts the process. So each call of the
library that reaches them runs inside `inference()` as a whole (Pgface.load_photo, search,
compare, embed, index, index_pending; People.cluster, identify, suggest, search, enrol; and
each model run, for callers of the models themselves), and at exit (an atexit hook: those
run after the non-daemon threads are joined, before the daemon threads are ended) no new one
starts in another thread than the main one, InterpreterExiting raised, and those under way
are waited for, EXIT_WAIT_S at most. (A daemon thread asking for one was made to wait for the
end, out of native code: it held its application's lock as it waited, and the application's
own exit hook waited for that lock for ever: probe reprobe48.) The main thread, which is not
unwound, still calls from an application's exit hook run after pgface's. An index run in a
daemon thread is not waited for: its thread pool is shut down before any exit hook runs
(concurrent.futures), so it stops there with InterpreterExiting (pools_refused_at_exit), what
it stored whole.
"""

from __future__ import annotations

import atexit
import concurrent.futures.thread
import functools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from pgface.errors import InterpreterExiting

# Longest the interpreter's exit waits for calls under way (a search takes well under a
# second on a CPU; an indexing run longer than this may still abort the exit, as before)
EXIT_WAIT_S = 30.0

_state = threading.Condition()
_running = 0
_exiting = False
_depth = threading.local()  # calls of this thread under way: a call inside another is its

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def inference() -> Iterator[None]:
    """Around work that reaches native code: refused once the interpreter exits, waited for
    by its exit while under way."""
    global _running
    depth = getattr(_depth, "calls", 0)
    if depth == 0:
        with _state:
            if _exiting and threading.current_thread() is not threading.main_thread():
                raise InterpreterExiting("the interpreter is exiting: no face analysis "
                                         "starts now")
            _running += 1
    _depth.calls = depth + 1
    try:
        yield
    finally:
        _depth.calls = depth
        if depth == 0:
            with _state:
                _running -= 1
                _state.notify_all()


def whole(func: F) -> F:
    """FUNC run inside inference(), as a whole."""
    @functools.wraps(func)
    def gated(*args: Any, **kwargs: Any) -> Any:
        with inference():
            return func(*args, **kwargs)
    return gated  # type: ignore[return-value]


@contextmanager
def pools_refused_at_exit() -> Iterator[None]:
    """Around a run on thread pools (indexing): once the interpreter exits, concurrent.futures
    has shut its pools down before any exit hook runs, and their refusal of new work
    ("RuntimeError: cannot schedule new futures after ...") escaped an index run in a daemon
    thread, or in an application's exit hook, where every error is to be a PgfaceError (probe
    reprobe49): said as InterpreterExiting. What the run stored before is whole."""
    try:
        yield
    except RuntimeError as exc:
        if "cannot schedule new futures after" not in str(exc) or not _pools_shut():
            raise
        raise InterpreterExiting("the interpreter is exiting: the index run stopped; what it "
                                 "stored before is kept") from None


def _pools_shut() -> bool:
    # concurrent.futures keeps whether its exit hook ran in a module global (Python 3.9 to
    # 3.14); where it is not found, this module's own flag, set later in the exit
    return bool(getattr(concurrent.futures.thread, "_shutdown", False)) or _exiting


def _wait_for_inference(timeout: float = EXIT_WAIT_S) -> None:
    global _exiting
    with _state:
        _exiting = True
        _state.wait_for(lambda: _running == 0, timeout)


def _forked() -> None:
    """A forked child has none of its parent's threads: nothing of theirs is under way (an
    exit would wait for a count no thread will lower)."""
    global _state, _running, _exiting, _depth
    _state, _running, _exiting, _depth = threading.Condition(), 0, False, threading.local()


atexit.register(_wait_for_inference)
os.register_at_fork(after_in_child=_forked)
