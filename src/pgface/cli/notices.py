"""Notices: why answers may be empty or less sure, printed on stderr so --json stays clean."""

from __future__ import annotations

from collections.abc import Sequence

from pgface.cli.common import err, shown


def print_notices(notices: Sequence[str]) -> None:
    for notice in notices:
        err.print(f"[yellow]notice:[/yellow] {shown(notice)}", markup=True,
                  highlight=False, soft_wrap=True)
