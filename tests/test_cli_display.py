"""The CLI's human formatting: sizes in binary units, paths shortened in the middle."""

from __future__ import annotations

import io
import os
import re
import shutil
import unicodedata
from pathlib import Path

import pytest
import regex
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from pgface import paths
from pgface.cli import app
from pgface.cli.common import encodable
from pgface.cli.display import (
    MAX_DRAWN_ROWS,
    MiddleEllipsis,
    Words,
    below_floor_text,
    human_size,
    plain,
    print_rows,
    shorten_middle,
)
from pgface.models.packs import sample_photos

runner = CliRunner()


def test_human_size() -> None:
    assert human_size(0) == "0 bytes"
    assert human_size(1023) == "1023 bytes"
    assert human_size(1536) == "1.5 KiB"
    assert human_size(57_881_395) == "55.2 MiB"
    assert human_size(3 * 1024**4) == "3.0 TiB"


def test_shorten_middle_keeps_both_ends_and_marks_the_cut() -> None:
    path = "/home/ada/Pictures/2024/summer/holiday-at-the-sea/IMG_0042.jpg"
    assert shorten_middle(path, len(path)) == path
    short = shorten_middle(path, 30)
    assert len(short) == 30 and "…" in short
    assert short.startswith("/home/ada/Pic") and short.endswith("IMG_0042.jpg")
    assert shorten_middle(path, 1) == "…"


def test_shorten_middle_keeps_the_file_name_before_the_start() -> None:
    """Probe clidocs19: six characters of the start were kept at the file name's expense
    (`/tmp/h…n_Peirsol_0001.jpg`)."""
    path = "/tmp/hunt-clidocs19/photos/lfw/Aaron_Peirsol/Aaron_Peirsol_0001.jpg"
    assert shorten_middle(path, 25) == "/…/Aaron_Peirsol_0001.jpg"
    assert shorten_middle(path, 30) == "/tmp/h…/Aaron_Peirsol_0001.jpg"
    assert shorten_middle(path, 20) == "/…n_Peirsol_0001.jpg"  # as much of it as fits
    assert shorten_middle("/home/me/Pictures/2024/IMG_0042.jpg", 26) == (
        "/home/me/Pic…/IMG_0042.jpg")  # docs/cli.md's example
    assert shorten_middle(path, 27, "...") == "/.../Aaron_Peirsol_0001.jpg"  # ASCII


def test_a_path_of_wide_characters_is_shortened_by_its_cells_and_keeps_its_file_name() -> None:
    """Probe cli23: a CJK character takes two cells and was counted as one, so a table cut
    the end of the file name (`/tmp/li…真/obama/obama2.jp`) with no mark."""
    path = "/tmp/lib/ünïcödé 写真/obama/写真2.jpg"
    for width in range(2, cell_len(path) + 1):
        short = shorten_middle(path, width)
        assert cell_len(short) <= width, (width, short)
        assert short == path or "…" in short
    assert shorten_middle(path, 20) == "/tmp/lib/…/写真2.jpg"  # 9 + 1 + 10 cells
    # a wide character that would pass the width by one cell is left out, not half shown
    assert shorten_middle("/写真/😀😀😀😀😀😀/a.jpg", 9) == "/…/a.jpg"
    assert shorten_middle("/a/😀😀😀😀😀😀😀.jpg", 12) == "/…😀😀😀.jpg"
    table = Table()
    table.add_column("similarity")
    table.add_column("photo", ratio=1)
    table.add_row("0.7605", MiddleEllipsis(path))
    for width in (30, 40, 100):
        buffer = io.StringIO()
        Console(file=buffer, width=width).print(table)
        row = next(line for line in buffer.getvalue().splitlines() if "0.7605" in line)
        assert row.rstrip(" │").endswith("写真2.jpg"), (width, row)
        assert "…" in row or path in row, (width, row)


# A path in each form a cut fell inside of (probe hunt-i18n39): a folder a Mac named in
# decomposed form, a file name shown with the `\\xNN` escapes of its Latin-1 bytes, and folder
# and file names of family emoji (one ZWJ sequence each, drawn in two cells).
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
DECOMPOSED = "/tmp/hunt-i18n39/photos/Zoe\u0308/café.jpg"
ESCAPED = "/tmp/hunt-i18n39/photos/latin1/caf\\xe9 \\xe0 Montr\\xe9al.jpg"
FAMILIES = f"/photos/{FAMILY * 6}/{FAMILY * 3}.jpg"
_ESCAPE = re.compile(r"\\(?:x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8})")


def splits_a_character(text: str, at: int) -> bool:
    """Whether a cut of TEXT before index AT falls inside what shows as one character (a
    letter and its combining marks, a ZWJ sequence, a variation selector's emoji) or inside
    an escape."""
    return 0 < at < len(text) and (
        at not in {found.start() for found in regex.finditer(r"\X", text)}  # UAX #29
        or unicodedata.category(text[at]) in ("Mn", "Me", "Mc")
        or text[at] in "\u200d\ufe0f" or text[at - 1] == "\u200d"
        or any(found.start() < at < found.end() for found in _ESCAPE.finditer(text)))


def assert_cut_between_characters(path: str, short: str, width: int,
                                  ellipsis: str = "…") -> None:
    """SHORT (shorten_middle's PATH in WIDTH cells) is a start of PATH, ELLIPSIS and an end of
    it, each cut between characters as they show, in WIDTH cells as Rich draws them."""
    assert cell_len(short) <= width, (width, short)
    head, mark, tail = short.partition(ellipsis)
    assert path.startswith(head) and path.endswith(tail) and (mark or short == path), short
    for at in (len(head), len(path) - len(tail)):
        assert not splits_a_character(path, at), (width, ascii(short))


def test_a_path_is_cut_between_characters_as_they_show_never_inside_an_escape() -> None:
    """Probe hunt-i18n39: the cut fell between code points: `/tmp/…\\u0308/café.jpg` (the
    diaeresis of Zoë on the ellipsis), `/…9 \\xe0 Montr\\xe9al.jpg` (the `9` of a cut `\\xe9`
    taken for the name's), a family emoji cut inside its ZWJ sequence and measured as the 6
    cells of its three people where Rich draws 2, its file name cut short."""
    assert shorten_middle(DECOMPOSED, 15) == "/tmp/…/café.jpg"
    assert shorten_middle(DECOMPOSED, 20) == "/tmp/hunt…e\u0308/café.jpg"  # ë whole
    assert shorten_middle(ESCAPED, 24) == "/t… \\xe0 Montr\\xe9al.jpg"
    assert shorten_middle(FAMILIES, 15) == f"/ph…/{FAMILY * 3}.jpg"  # the file name whole
    # Thai's SARA AM, which Rich takes for a cluster of its own (probe i18n37: `/…ำน้ำ….jpg`),
    # and flags
    for path in (DECOMPOSED, ESCAPED, FAMILIES, f"/a/{FAMILY}\U0001f44d\U0001f3fd/b❤\ufe0f.jpg",
                 "/photos/" + "\u0e19\u0e49\u0e33" * 12 + ".jpg", "/f/\U0001f1eb\U0001f1f7" * 9):
        for width in range(2, cell_len(path) + 1):
            assert_cut_between_characters(path, shorten_middle(path, width), width)
    # in an ASCII locale, where the emoji and the diaeresis are escapes too (`\\U0001f468`)
    for path in (encodable(DECOMPOSED, "ascii"), encodable(FAMILIES, "ascii")):
        for width in range(4, len(path) + 1):
            short = shorten_middle(path, width, "...")
            assert_cut_between_characters(path, short, width, "...")


def test_a_search_table_cuts_a_photos_path_between_characters(
        env: dict[str, str], tmp_path: Path) -> None:
    """Probe hunt-i18n39, through `pgface search`'s table: a photo in a folder a Mac named
    decomposed, in a folder of family emoji, its file name of Latin-1 bytes (`\\xNN`)."""
    photo = (tmp_path / "Zoe\u0308" / f"{FAMILY * 4}"
             / os.fsdecode(b"caf\xe9 \xe0 Montr\xe9al " + "\u00e9t\u00e9".encode() + b".jpg"))
    photo.parent.mkdir(parents=True)
    shutil.copyfile(next(p for p in sample_photos() if p.name == "yaoming.jpg"), photo)
    assert runner.invoke(app, ["index", "--quiet", str(photo)], env=env).exit_code == 0
    shown = paths.readable(photo)
    for columns in range(40, 81, 4):
        done = runner.invoke(app, ["search", str(photo)], env={**env, "COLUMNS": str(columns)})
        assert done.exit_code == 0, done.output
        row = next(line for line in done.stdout.splitlines() if "│ 1.0000" in line)
        cell = next(cell.strip() for cell in row.split("│") if "/" in cell)
        assert_cut_between_characters(shown, cell, cell_len(cell))
        assert "…" in cell, (columns, row)


def test_plain_has_no_python_reprs() -> None:
    assert plain({"buffalo_sc": 511, "antelopev2": 3}) == "buffalo_sc: 511, antelopev2: 3"
    assert plain({}) == "none" and plain(True) == "yes" and plain(None) == "-"


def test_a_path_cell_takes_the_width_left_and_shortens_in_the_middle() -> None:
    path = "/photos/" + "long-folder-name/" * 8 + "the-file.jpg"
    table = Table()
    table.add_column("similarity")
    table.add_column("photo", ratio=1)
    table.add_row("0.987", MiddleEllipsis(path))
    buffer = io.StringIO()
    Console(file=buffer, width=60).print(table)
    lines = buffer.getvalue().splitlines()
    assert max(map(len, lines)) <= 60
    row = next(line for line in lines if "0.987" in line)
    assert "/photos/long" in row and "the-file.jpg" in row and "…" in row

    buffer = io.StringIO()
    Console(file=buffer, width=300).print(table)
    assert path in buffer.getvalue()  # room enough: never shortened


def test_the_progress_bar_names_the_stage_a_bulk_load_ends_with() -> None:
    """Once a bulk load's photos are stored the bar is full while the HNSW index is built: it
    says so instead of standing still under its usual label."""
    from pgface.cli.progress import IndexProgress
    from pgface.index import REBUILDING, IndexReport

    show = IndexProgress(enabled=False, label="enrolling")
    report = IndexReport(files=70, indexed=70)
    show(report, None)
    assert show.progress.tasks[0].fields["stage"] == "enrolling"
    report.stage = REBUILDING
    show(report, None)
    task = show.progress.tasks[0]
    assert task.fields["stage"] == REBUILDING and task.completed == task.total == 70


def test_a_face_below_the_quality_floor_is_said_to_be_below_it() -> None:
    # "quality 0.09 is below the floor 0.089": the score at 2 decimals, the floor in full
    assert below_floor_text({"score": 0.0888}, 0.089) == "quality 0.0888 is below the floor 0.089"
    assert below_floor_text({"score": 0.42}, 0.5) == "quality 0.42 is below the floor 0.5"
    assert below_floor_text({"score": 0.0889}, 0.0889) == (
        "quality 0.0889 is just below the floor 0.0889")  # the exact score decided
    assert below_floor_text(None, 0.5) == "quality not measured, below the floor 0.5"


def test_a_gone_files_path_keeps_its_file_name_beside_the_word_on_it() -> None:
    """Probe docs28: the search table joined " (missing: file gone)" to the path before
    shortening it, which took the words for the file name's end and cut the name itself: at
    80 columns the cell read `/… (missing: file gone)`, which file unsaid."""
    path = "/tmp/hunt-docs28/rm1/Pictures/2024/summer/holiday-at-the-sea/IMG_0042.jpg"
    table = Table()
    table.add_column("similarity")
    table.add_column("photo", ratio=1)
    table.add_row("0.9533", MiddleEllipsis(path, style="red", after="(missing: file gone)"))
    for width in (40, 60, 80, 200):
        buffer = io.StringIO()
        Console(file=buffer, width=width).print(table)
        lines = buffer.getvalue().splitlines()
        assert max(map(len, lines)) <= width, (width, lines)
        row = next(i for i, line in enumerate(lines) if "0.9533" in line)
        cell = " ".join(line.split("│")[2].strip() for line in lines[row:row + 2]
                        if line.count("│") == 3)
        assert "/IMG_0042.jpg (missing: file gone)" in cell, (width, lines)
        assert "…" in cell or path in cell, (width, lines)


def test_a_long_list_is_written_as_plain_columns_a_short_one_as_a_table(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Probe scale57: `people list --all` of 26,774 people wrote nothing for 20 s, then all
    of it at once, in 24-35 s (Rich draws each cell, about 1 ms a row); its data took 0.5 s.
    Past MAX_DRAWN_ROWS the rows are plain aligned columns, names shown as a table shows
    them (control characters escaped, wide characters two columns)."""
    rows = [(str(i), f"Person {i}", str(i % 7)) for i in range(MAX_DRAWN_ROWS + 1)]
    rows[3] = ("3", "a\x1b[31mred", "1")
    rows[4] = ("4", "王小明", "2")
    print_rows(("id", "name", "faces"), rows)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["id", "name", "faces"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert len(lines) == len(rows) + 2
    assert "\x1b" not in "".join(lines) and lines[5].split()[:2] == ["3", "a\\x1b[31mred"]
    # every row's columns start where the header's do, measured in cells
    starts = [lines[0].index("name"), lines[0].index("faces")]
    for line, row in zip(lines[2:], rows, strict=True):
        shown = [cell.replace("\x1b", "\\x1b") for cell in row]
        assert [cell_len(line[:line.index(shown[1], len(shown[0]))]),
                cell_len(line[:line.rindex(shown[2])])] == starts, line
    print_rows(("id", "name", "faces"), rows[:MAX_DRAWN_ROWS])  # a table, drawn
    drawn = capsys.readouterr().out
    assert "┃" in drawn and "Person 499" in drawn and "-----" not in drawn
    assert "\x1b" not in drawn and "a\\x1b[31mred" in drawn  # a name put in by SQL: reprobe59


def test_a_name_cell_wraps_at_spaces_and_cuts_a_long_word_between_characters() -> None:
    """Words, the cell of a name or summary: wrapped where Rich wraps text, at its spaces; a
    word wider than the column cut at its end between characters as they show (a letter with
    its combining mark, a family emoji), with the ellipsis."""
    name = f"Zoe\u0308 {FAMILY * 5} Ångström"
    for width in range(3, cell_len(name) + 2):
        table = Table(box=None, show_header=False, padding=0)
        table.add_column(width=width)
        table.add_row(Words(name))
        buffer = io.StringIO()
        Console(file=buffer, width=80).print(table)
        lines = [line.rstrip() for line in buffer.getvalue().splitlines()]
        assert all(cell_len(line) <= width for line in lines), (width, lines)
        for line in lines:
            head = line.removesuffix("…")
            start = name.index(head.split(" ")[0])  # a line starts at a word
            assert name[start:].startswith(head) and not splits_a_character(
                name, start + len(head)), (width, lines)
        if width >= cell_len(name):
            assert lines == [name]
