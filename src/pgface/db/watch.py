"""A watchdog for long-running processes (`pgface serve`): restarts a crashed embedded server."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pgface.db import server

log = logging.getLogger(__name__)


_reviving = threading.Lock()
# A restart that keeps failing is tried again every second at most: each new connection asks
# for one (Pgface._connection_url), and a health check and a search during the outage made
# 135 tries in 30 s, each a `pg_ctl start` writing to its startup log (probe ops61). Its error
# is logged on the first failure and then once a minute, not every second.
RETRY_AFTER_FAILURE_S = 1.0
FAILURE_LOG_INTERVAL_S = 60.0
# data folder -> (last logged, failures since, when the last one was tried)
_failures: dict[Path, tuple[float, int, float]] = {}


def revive(data_dir: Path) -> bool:
    """Restart the embedded server of data_dir if it crashed; True if this call restarted it.

    A server stopped on purpose (`pgface db stop`) is left stopped. Never raises: a server that
    cannot start is logged, and the caller's connection attempt reports the failure; it stays
    crashed (server.crashed), so the next call tries again.
    """
    if not server.crashed(data_dir):
        return False
    with _reviving:  # threads that find it dead together restart it (and say so) once
        logged, failures, tried = _failures.get(data_dir, (0.0, 0, 0.0))
        if failures and time.monotonic() - tried < RETRY_AFTER_FAILURE_S:
            return False  # failed a moment ago: the caller's connection attempt says why
        if not server.crashed(data_dir):
            return False
        try:
            server.ensure_server(data_dir, after_crash=True)
        except server.StoppedMeanwhile:  # `pgface db stop` since it was found crashed
            return False
        except Exception as exc:  # the caller's next connection attempt fails and says why
            now = time.monotonic()
            if failures == 0 or now - logged >= FAILURE_LOG_INTERVAL_S:
                tries = f" ({failures + 1} tries)" if failures else ""
                log.error("the embedded PostgreSQL in %s stopped unexpectedly and could not be "
                          "restarted%s: %s", data_dir, tries, " ".join(str(exc).split()))
                logged = now
            _failures[data_dir] = (logged, failures + 1, now)
            return False
        _failures.pop(data_dir, None)
    log.warning("the embedded PostgreSQL in %s had stopped unexpectedly; restarted it", data_dir)
    return True


class ServerWatch:
    """Looks at the embedded server every `interval` seconds and restarts it if it crashed."""

    def __init__(self, data_dir: Path, on_restart: Callable[[], None] | None = None,
                 interval: float = 1.0) -> None:
        self.data_dir = data_dir
        self.on_restart = on_restart
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pgface-db-watch", daemon=True)

    def start(self) -> ServerWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if revive(self.data_dir) and self.on_restart is not None:
                try:
                    self.on_restart()
                except Exception:  # the watch must outlive any one failure
                    log.exception("checking the pool after restarting the embedded PostgreSQL")
