"""Notices: why answers may be empty or less sure, printed on stderr so --json stays clean."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pgface.cli.common import err, shown


def print_notices(notices: Sequence[str]) -> None:
    for notice in notices:
        err.print(f"[yellow]notice:[/yellow] {shown(notice)}", markup=True,
                  highlight=False, soft_wrap=True)


class LogNotices(logging.Handler):
    """Every warning and error pgface logs, as a notice line without its traceback: the library
    being upgraded, a wait for another process's upgrade (both went to the log alone, and a
    long upgrade looked like a hang), an index snapshot rebuilt."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print_notices([record.getMessage()])
        except Exception:  # a log line must never fail the command
            self.handleError(record)


def show_log_warnings_as_notices() -> None:
    """Once per process (a test runner invokes commands again and again)."""
    logger = logging.getLogger("pgface")
    if not any(isinstance(handler, LogNotices) for handler in logger.handlers):
        logger.addHandler(LogNotices())
