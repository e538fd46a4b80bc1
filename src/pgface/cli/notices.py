"""Notices: why answers may be empty or less sure, printed on stderr so --json stays clean."""

from __future__ import annotations

from collections.abc import Sequence

from rich.markup import escape

from pgface.cli.common import err, terminal_safe


def print_notices(notices: Sequence[str]) -> None:
    for notice in notices:
        err.print(f"[yellow]notice:[/yellow] {escape(terminal_safe(notice))}", markup=True,
                  highlight=False, soft_wrap=True)
