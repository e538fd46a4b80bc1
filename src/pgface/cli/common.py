"""What every command module shares: consoles, the error handler, JSON output, the library."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from pgface.config import Settings
from pgface.errors import PgfaceError
from pgface.library import Pgface

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (stable, see docs/cli.md).")]
TopOption = Annotated[int, typer.Option("--top", "-k", min=1, max=1000, help="Matches per face.")]
ThresholdOption = Annotated[float | None, typer.Option(
    help="Minimum cosine similarity (default: the match threshold calibrated on LFW).")]


def handle_errors(func: F) -> F:
    """Domain errors become one line on stderr and exit code 1, not a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PgfaceError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def open_library() -> Pgface:
    return Pgface(Settings())


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
