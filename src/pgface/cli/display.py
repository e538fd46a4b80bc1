"""Human output: sizes in binary units, paths and names that fit their table column, long
lists as plain columns, spinners."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import regex
from rich.cells import cell_len, split_graphemes
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from pgface.cli.common import ELLIPSIS, encodable, err, out, terminal_safe, writable
from pgface.models.quality import below_floor_said

ASCII_ELLIPSIS = "..."
_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_size(size: int | float) -> str:
    """1536 -> '1.5 KiB'; 57 881 395 -> '55.2 MiB'."""
    value = float(size)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def ellipsis_for(encoding: str | None) -> str:
    """The ellipsis a stream in ENCODING can write: '…', or '...' in ASCII."""
    return ELLIPSIS if writable(ELLIPSIS, encoding) else ASCII_ELLIPSIS


def shorten_middle(text: str, width: int, ellipsis: str = ELLIPSIS) -> str:
    """TEXT in at most WIDTH terminal cells, the middle replaced by an ellipsis: a path keeps
    its end (the file name) and its start (the library), and visibly lost the rest. Cells, not
    characters: a CJK character or an emoji takes two, and counted as one, a path of them
    lost the end of its file name to the table's crop, with no mark (probe cli23)."""
    if cell_len(text) <= width:
        return text
    mark = cell_len(ellipsis)
    if width <= mark:
        return ellipsis[:width]
    room = width - mark
    # The file name is what tells photos apart: the end gets it whole, with the slash before
    # it, where it fits beside one character of the start (the root), else as much of it as
    # fits; at least half the room, the start the rest. Six characters of the start were
    # kept before at the file name's expense: `/tmp/h…n_Peirsol_0001.jpg` (probe clidocs19).
    # Cut between grapheme clusters and escapes, each measured as Rich draws it (cut_units).
    units = cut_units(text)
    name = cell_len(text[text.rstrip("/").rfind("/"):])  # the file name and the slash before it
    tail, tail_cells = _last_cells(units, max((room + 1) // 2, min(name, room - 1)))
    return _first_cells(units, room - tail_cells)[0] + ellipsis + tail


# An escape pgface writes for what a terminal must not or cannot show (paths.readable's
# `\xNN` of a byte that is not UTF-8, terminal_safe's `\n` and `\u202e`, encodable's
# `\u0308` and `\U0001f468` in an ASCII locale): cut inside, `\xe9` lost its `\xe`
# and left a `9` that reads as the name's (probe hunt-i18n39).
_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[nrt])")


def cut_units(text: str) -> list[tuple[str, int]]:
    """TEXT as the pieces a cut may fall between, each with its width in terminal cells as
    Rich measures it (rich.cells.split_graphemes, which draws the table): a grapheme cluster
    (a letter with its combining marks, an emoji sequence joined by ZWJ, a flag) and an
    escape (_ESCAPE) each one piece. Cut by code point, a path in decomposed form showed
    `/tmp/…\\u0308/café.jpg` (the diaeresis of "Zoë" on the ellipsis), a family emoji was cut
    inside its sequence and measured 6 cells where Rich draws 2 (probe hunt-i18n39)."""
    spans, _ = split_graphemes(text)
    escape_ends = {match.start(): match.end() for match in _ESCAPE.finditer(text)}
    units: list[list[int]] = []  # [start, end, cells]
    inside_escape_to = 0  # where the escape a piece is being made of ends
    # Unicode's grapheme clusters (UAX #29, `regex`'s \X), within which no cut falls: Rich
    # splits some of them, as a flag's two regional indicators and Thai's SARA AM (น้ำ: "ำ"
    # was cut off its consonant onto the ellipsis, probe i18n37); its widths are kept, added
    # up, as they are what it draws.
    clusters = {found.start() for found in regex.finditer(r"\X", text)}
    for start, end, cells in spans:
        joined = units and (start < inside_escape_to or start not in clusters)
        if joined:
            units[-1][1:] = [end, units[-1][2] + cells]
        else:
            units.append([start, end, cells])
            inside_escape_to = escape_ends.get(start, 0)
    return [(text[start:end], cells) for start, end, cells in units]


def _first_cells(units: list[tuple[str, int]], cells: int) -> tuple[str, int]:
    """The longest start of UNITS (cut_units) that takes at most CELLS terminal cells, and
    the cells it takes."""
    used = 0
    for count, (_, width) in enumerate(units):
        if used + width > cells:
            return "".join(piece for piece, _ in units[:count]), used
        used += width
    return "".join(piece for piece, _ in units), used


def _last_cells(units: list[tuple[str, int]], cells: int) -> tuple[str, int]:
    """The longest end of UNITS (cut_units) that takes at most CELLS terminal cells, and the
    cells it takes."""
    used = 0
    for count, (_, width) in enumerate(reversed(units)):
        if used + width > cells:
            return "".join(piece for piece, _ in units[len(units) - count:]), used
        used += width
    return "".join(piece for piece, _ in units), used


class MiddleEllipsis:
    """A table cell that takes the width the table gives it, shortened in the middle. AFTER:
    words on it ("(missing: file gone)"), after it on its line where the cell has room for
    both, else on a line of their own: joined to the path before it was shortened, they were
    taken for the file name's end, and the name itself was cut (`/… (missing: file gone)`,
    probe docs28)."""

    MIN_WIDTH = 12

    def __init__(self, text: str, style: str = "", after: str = "") -> None:
        self.text = terminal_safe(text)  # a path: any control character in it shown escaped
        self.style = style
        self.after = after

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        cells = cell_len(f"{self.text} {self.after}" if self.after else self.text)
        return Measurement(min(cells, self.MIN_WIDTH), cells)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        ellipsis = ellipsis_for(options.encoding)
        text, width = encodable(self.text, options.encoding), options.max_width
        if not self.after:
            lines = [shorten_middle(text, width, ellipsis)]
        elif cell_len(f"{text} {self.after}") <= width:
            lines = [f"{text} {self.after}"]
        else:
            lines = [shorten_middle(text, width, ellipsis),
                     shorten_middle(self.after, width, ellipsis)]
        yield Text("\n".join(lines), style=self.style, no_wrap=True, overflow="crop")


class Words:
    """A table cell of words (a person's name, a change's summary) as Rich draws text in a
    cell, wrapped at its spaces, a word wider than its column cut at its end with an
    ellipsis: but cut only between characters as they show (cut_units), never inside an
    escape. In an ASCII locale Rich cut the name `zo\\xeb` in a narrow column as `zo\\x.`
    (probe docsrun). Control characters are escaped (terminal_safe), what the stream cannot
    encode written as its escapes (common.encodable) and measured so."""

    def __init__(self, text: str) -> None:
        self.text = terminal_safe(text)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        text = encodable(self.text, options.encoding)
        return Measurement(max(map(cell_len, text.split()), default=0), cell_len(text))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width, ellipsis = options.max_width, ellipsis_for(options.encoding)
        lines = [""]
        for word in encodable(self.text, options.encoding).split(" "):
            if lines[-1] and cell_len(f"{lines[-1]} {word}") > width:
                lines.append(word)
            else:
                lines[-1] = f"{lines[-1]} {word}" if lines[-1] else word
        yield Text("\n".join(_shorten_end(line, width, ellipsis) for line in lines),
                   no_wrap=True, overflow="crop")


def _shorten_end(text: str, width: int, ellipsis: str) -> str:
    """TEXT in at most WIDTH terminal cells: its start and ELLIPSIS, cut between cut_units."""
    if cell_len(text) <= width:
        return text
    if width <= cell_len(ellipsis):
        return ellipsis[:width]
    return _first_cells(cut_units(text), width - cell_len(ellipsis))[0] + ellipsis


# Rows drawn as a Rich table at most; a longer list is written as plain aligned columns, a
# few hundred lines at a time. Rich measures and draws each cell, about 1 ms a row here:
# `people list --all` of 26,774 people wrote nothing for 20 s, then 1.9 MB at once, in 24-35 s
# where its data took 0.5 s (probe scale57); plain, 20,000 rows take 0.4 s.
MAX_DRAWN_ROWS = 500
_PLAIN_ROWS_AT_ONCE = 500


def print_rows(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """ROWS under COLUMNS on stdout: a table up to MAX_DRAWN_ROWS rows, plain aligned columns
    (two spaces apart, a rule of dashes under the header) past it. Cells are shown as
    SafeConsole shows text: control characters escaped, what the stream cannot encode as
    backslash escapes; widths are measured on the text as shown."""
    if len(rows) <= MAX_DRAWN_ROWS:
        table = Table()
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(Words(cell) for cell in row))
        out.print(table)
        return
    shown = [[encodable(terminal_safe(cell), out.encoding) for cell in row] for row in rows]
    widths = [max([cell_len(column)] + [cell_len(row[i]) for row in shown])
              for i, column in enumerate(columns)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell + " " * (width - cell_len(cell))
                         for cell, width in zip(cells, widths, strict=True)).rstrip()

    out.out(line(columns), highlight=False)
    out.out(line(["-" * width for width in widths]), highlight=False)
    for start in range(0, len(shown), _PLAIN_ROWS_AT_ONCE):
        out.out("\n".join(line(row) for row in shown[start:start + _PLAIN_ROWS_AT_ONCE]),
                highlight=False)


def plain(value: Any) -> str:
    """A value of a stats-like dict as a person reads it: mappings as `key: value, ...`,
    lists joined with commas, booleans as yes/no, never a Python repr."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {plain(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple):
        return ", ".join(plain(v) for v in value) or "none"
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@contextmanager
def working(what: str, enabled: bool = True) -> Iterator[None]:
    """A spinner on stderr while WHAT runs (nothing with --json or --quiet, or when stderr is
    not a terminal: rich's status is transient and draws only there)."""
    with err.status(what, spinner="dots") if enabled else nullcontext():
        yield


def quality_text(quality: dict | None) -> str:
    """A face's quality score as a few words ("quality 0.87"; "quality not measured")."""
    score = quality.get("score") if quality else None
    return "quality not measured" if score is None else f"quality {score:.2f}"


def below_floor_text(quality: dict | None, floor: float) -> str:
    """Why a face was left out (models.quality.below_floor_said), from a result's quality."""
    return below_floor_said(quality.get("score") if quality else None, floor)
