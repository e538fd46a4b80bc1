"""A watchdog for long-running processes (`pgface serve`): restarts a crashed embedded server."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from pgface.db import server

log = logging.getLogger(__name__)


_reviving = threading.Lock()


def revive(data_dir: Path) -> bool:
    """Restart the embedded server of data_dir if it crashed; True if this call restarted it.

    A server stopped on purpose (`pgface db stop`) is left stopped. Never raises: a server that
    cannot start is logged, and the caller's connection attempt reports the failure.
    """
    if not server.crashed(data_dir):
        return False
    with _reviving:  # threads that find it dead together restart it (and say so) once
        if not server.crashed(data_dir):
            return False
        try:
            server.ensure_server(data_dir)
        except Exception as exc:  # the caller's next connection attempt fails and says why
            log.error("the embedded PostgreSQL in %s stopped unexpectedly and could not be "
                      "restarted: %s", data_dir, " ".join(str(exc).split()))
            return False
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
