"""`pgface people ...`: name, cluster, enrol and identify people."""

from __future__ import annotations

import sys
from contextlib import redirect_stdout
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pgface.cli.common import (
    COSINE,
    TEXT,
    JsonOption,
    MinQualityOption,
    ThresholdOption,
    TopOption,
    box_text,
    err,
    handle_errors,
    open_library,
    out,
    path_argument,
    print_json,
    say_error,
    shown,
    stopped,
    stopped_by_sigterm_as_by_ctrl_c,
)
from pgface.cli.display import (
    MiddleEllipsis,
    Words,
    below_floor_text,
    print_rows,
    quality_text,
    working,
)
from pgface.cli.notices import print_notices
from pgface.cli.progress import (
    IndexProgress,
    file_reasons,
    report_dict,
    say_empty_folders,
    say_failure,
)
from pgface.clustering import CLUSTER_MARGIN, CLUSTER_SIMILARITY, MIN_NEIGHBOURS
from pgface.errors import InvalidInputError, NotFoundError, PgfaceError, counted
from pgface.library import Pgface
from pgface.paths import readable
from pgface.people import MAX_OFFSET, EnrolReport, HeldFace, People, Person, found_again_text
from pgface.people_history import Change, os_user

people_app = typer.Typer(help="People: name faces, cluster, enrol, identify.",
                         epilog="Examples:\npgface people cluster\npgface people review\n"
                                "pgface people name 'Ada Lovelace' 12 15\n"
                                "pgface people identify party.jpg",
                         no_args_is_help=True)

PersonArg = Annotated[str, typer.Argument(**TEXT, help="A person's name, or id.")]
FaceIds = Annotated[list[int], typer.Argument(help="Face ids (see `pgface people show`).")]


QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")]
MoveOption = Annotated[bool, typer.Option(
    "--move", help="Also move faces another person holds by a human decision (default: they "
                   "are left where they are, and listed).")]


def _confirmed(question: str) -> bool:
    """The user's yes; no answer (no terminal, end of input, Ctrl-C at the prompt) is a no.
    The question goes to stderr: on stdout it came before `--json`'s JSON, which no longer
    parsed (probe clidocs19). All of it: typer's confirm writes the prompt's last character
    (its space) with input(), to stdout even with err=True. With stdin closed (`<&-`, a
    daemon's job) there is no one to ask: input() said "lost sys.stdin", an "unexpected
    RuntimeError" (probe cli31)."""
    if sys.stdin is None:
        return False
    try:
        with redirect_stdout(sys.stderr):
            return typer.confirm(question, err=True)
    except (typer.Abort, EOFError, OSError):  # OSError: a terminal hung up, say
        typer.echo(err=True)  # the question's line ended: the `error:` line is one of its own
        return False


# A page of faces the table can still show at once (the API's most, too).
MAX_FACES_SHOWN = 1000


def _people(pf: Pgface) -> People:
    """The people verbs, recorded as made by this OS user on the command line."""
    return pf.people.acting_as(f"cli:{os_user()}")


def _say_left(left: list[HeldFace]) -> None:
    for face in left:
        err.print(f"[yellow]left[/yellow] face {face.face_id} with {shown(face.label)} "
                  f"(--move moves it)", markup=True, highlight=False)


def _say_moved(moved: list[HeldFace]) -> None:
    for face in moved:  # a line without markup: the name as it is
        out.print(f"moved face {face.face_id} from {face.label}", highlight=False)


def _person_dict(person: Person) -> dict:
    return {"id": person.id, "name": person.name, "faces": person.faces, "photos": person.photos,
            "hidden": person.hidden, "cover_face_id": person.cover_face_id}


def _print_people(found: list[Person]) -> None:
    print_rows(("id", "name", "faces", "photos"),
               [(str(p.id), (p.name or "(unnamed)") + (" (hidden)" if p.hidden else ""),
                 str(p.faces), str(p.photos)) for p in found])


def _said(person: Person, what: str, as_json: bool, was: str = "") -> None:
    """What a change made of PERSON: WHAT it did ("renamed", "merged into"), the person, and
    WAS, what they were before it where that is news. A person left hidden is said to be:
    faces named into someone another curator had hidden, or a merge into them, said only
    "named Ada: 8 faces", and Ada was then in no list (probe peopleops), as the web page says
    it (docs/http.md)."""
    if as_json:
        print_json(_person_dict(person))
        return
    hidden = (f"; hidden (`people list --hidden` lists them, `pgface people unhide "
              f"{person.id}` shows them again)" if person.hidden and what != "hid" else "")
    out.print(f"{what} {person.label}{was}: {counted(person.faces, 'face')} in "
              f"{counted(person.photos, 'photo')}{hidden}", highlight=False)


@people_app.command("list")
@handle_errors
def list_people(
    unnamed: Annotated[bool, typer.Option(
        "--all", "-a", help="Also the unnamed people clustering found.")] = False,
    hidden: Annotated[bool, typer.Option(
        "--hidden", help="Also the people hidden with `pgface people hide`.")] = False,
    name_has: Annotated[str | None, typer.Option(
        "--name-has", metavar="TEXT", **TEXT,
        help="Only the named people whose name holds TEXT, in any case.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List people, by name, with how many faces and photos each has.

    Example: pgface people list --all
    """
    looking = name_has is not None
    with open_library() as pf:
        try:
            # looking for a name, the hidden people too: those not asked for are said apart
            found = pf.people.list(unnamed=unnamed, hidden=hidden or looking,
                                   name_has=name_has)
        except InvalidInputError as exc:  # said of the option, as it is given here
            raise InvalidInputError(str(exc).replace("name_has:", "--name-has:", 1)) from None
        # the unnamed people a clustering just said it formed were nowhere in this list,
        # with no word of where they are (none are when looking for a name); with --hidden,
        # the hidden ones too, as --hidden --all lists them (the review queue holds none)
        left_out = 0 if unnamed or looking else pf.people.page(
            named=False, hidden=hidden, limit=0)[1]
        to_review = pf.people.review(limit=0)[1] if hidden and left_out else left_out
        # and the hidden people --hidden would add: a person hidden by another curator, faces
        # named into them since, was in no list with no word of it (probe peopleops)
        kinds = None if unnamed else True
        hidden_left = 0 if hidden or looking else (
            pf.people.page(named=kinds, hidden=True, limit=0)[1]
            - pf.people.page(named=kinds, hidden=False, limit=0)[1])
    # nor the hidden people whose name holds the text (an empty table, no word of them)
    hidden_found = 0 if hidden else sum(p.hidden for p in found)
    found = [p for p in found if hidden or not p.hidden]
    if as_json:
        print_json([_person_dict(p) for p in found])
        return
    _print_people(found)
    if left_out:
        # (`people review` goes through the unnamed people nobody hid: with --hidden, not all)
        review = ("`pgface people review` goes through them" if to_review == left_out
                  else f"`pgface people review` goes through the {to_review:,} not hidden"
                  if to_review else "none is in `pgface people review`: all are hidden")
        err.print(f"and {left_out:,} unnamed {'person' if left_out == 1 else 'people'}: "
                  f"--all lists them, {review}", highlight=False)
    if hidden_found:
        err.print(f"and {hidden_found:,} hidden {'person' if hidden_found == 1 else 'people'} "
                  f"whose name holds it: --hidden lists them", highlight=False)
    if hidden_left:
        err.print(f"and {hidden_left:,} hidden {'person' if hidden_left == 1 else 'people'}: "
                  f"--hidden lists them", highlight=False)


@people_app.command()
@handle_errors
def review(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many people.")] = 20,
    offset: Annotated[int, typer.Option(min=0, max=MAX_OFFSET, help="People passed over.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """The review queue: unnamed people nobody hid, the most faces first.

    Name them (`people rename`), or hide those who are not a person (`people hide`).

    Example: pgface people review -n 5
    """
    with open_library() as pf:
        found, total = pf.people.review(limit, offset)
    if as_json:
        print_json({"people": [_person_dict(p) for p in found], "total": total,
                    "limit": limit, "offset": offset})
        return
    _print_people(found)
    err.print(f"{len(found)} of {total} unnamed people to review", highlight=False)


@people_app.command()
@handle_errors
def show(
    person: PersonArg,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=MAX_FACES_SHOWN,
                                       help="How many faces.")] = 100,
    offset: Annotated[int, typer.Option(min=0, max=MAX_OFFSET, help="Faces passed over.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """A person's faces, in id order: face id, photo and box; 100 of them unless --limit.

    Example: pgface people show "Ada Lovelace" --limit 500
    """
    with open_library() as pf:
        found = pf.people.get(person)
        faces, total = pf.people.face_page(found.id, limit, offset)
    shown_to = offset + len(faces)
    more = shown_to if shown_to < total else None
    if as_json:
        print_json({**_person_dict(found), "face_list": [asdict(f) for f in faces],
                    "total_faces": total, "limit": limit, "offset": offset,
                    "next_offset": more})
        return
    # a line of its own: a table's title is wrapped to the table's width (cli.search says why)
    # hidden said as `people list` says it (probe review38: only --json and the page said so)
    out.print(f"{found.label}{' (hidden)' if found.hidden else ''}: "
              f"{counted(found.faces, 'face')}", highlight=False)
    table = Table()
    # an id is never cut: `search --face ID` takes it (at 22 columns it was `1…`, probe
    # reprobe34); the photo gives up its room first
    ids = max((len(str(f.face_id)) for f in faces), default=4)
    table.add_column("face", no_wrap=True, min_width=max(ids, 4))
    for column in ("photo", "box", "by"):
        table.add_column(column)
    table.columns[1].ratio = 1
    for f in faces:
        shown = (MiddleEllipsis(f.path, style="red", after="(missing: file gone)")
                 if f.missing else MiddleEllipsis(f.path))  # as search marks it
        table.add_row(str(f.face_id), shown, box_text(f.bbox),
                      f.assigned_by or "")
    out.print(table)
    if not faces and offset:
        err.print(f"no faces from offset {offset:,}: {counted(total, 'face')} in all",
                  highlight=False)
    elif more is not None or offset:
        err.print(f"faces {offset + 1} to {shown_to} of {total:,}"
                  + (f"; --offset {more} for the next" if more is not None else ""),
                  highlight=False)


@people_app.command()
@handle_errors
def name(
    person_name: Annotated[str, typer.Argument(metavar="NAME", **TEXT, help="The person's name.")],
    faces: FaceIds,
    move: MoveOption = False,
    as_json: JsonOption = False,
) -> None:
    """Put faces in the person called NAME (created if new). Clustering never undoes this.

    A face that another person holds by a human decision (named by hand, or in a named person)
    stays there, and is listed, unless --move. `pgface people undo` takes it back.

    Example: pgface people name "Ada Lovelace" 12 57 301
    """
    with open_library() as pf:
        people = _people(pf)
        naming = people.name_faces(faces, person_name, move=move)
    if as_json:
        # change_id: what `people undo --change` takes back, null where nothing changed (every
        # face the person's already): a script's undo after such a naming took back another
        # user's change (probe scripting37)
        print_json({**(_person_dict(naming.person) if naming.person else {"name": None}),
                    "named": naming.named, "left": [asdict(h) for h in naming.left],
                    "moved": [asdict(h) for h in naming.moved],
                    "change_id": people.last_change})
        return
    if naming.person:
        # every face theirs already (no change recorded): said so, not "named Ada", as the
        # web page says it (probe peoplepage36)
        _said(naming.person, "named" if people.last_change is not None else
              f"{counted(len(naming.named), 'face')} already in", False)
    _say_moved(naming.moved)
    _say_left(naming.left)


@people_app.command()
@handle_errors
def rename(
    person: PersonArg,
    new_name: Annotated[str, typer.Argument(**TEXT, help="The name the person has from now on.")],
    expected_name: Annotated[str | None, typer.Option(
        "--expected-name", **TEXT,
        help="Rename only if the person is still named this (\"\" for unnamed), as a script "
             "read them earlier; else nothing is renamed, exit 1.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Give a person, named or found by clustering, a new name.

    Example: pgface people rename 17 "Ada Lovelace" --expected-name "Ada"
    """
    with open_library() as pf:
        people = _people(pf)
        try:
            before = people.get(person)
        except NotFoundError:  # the rename says so, after what is wrong with the name, if any
            before = None
        # the name it replaces, guarded from here to the rename: another curator's rename a
        # moment before was replaced with no word of it ("renamed Ann Veneman", probe
        # peopleops); said, `people undo` gives it back. A script's own reading, from
        # earlier, is guarded as the Python and HTTP APIs guard it (expected_name).
        if expected_name is not None:
            renamed = people.rename(person if before is None else before.id, new_name,
                                    expected_name=expected_name or None)
        elif before is None:
            renamed = people.rename(person, new_name)
        else:
            renamed = people.rename(before.id, new_name, expected_name=before.name)
    was = ("" if before is None or before.name in (None, renamed.name) else
           f" (was {before.name}: `pgface people undo` gives that name back)")
    _said(renamed, "renamed", as_json, was)


@people_app.command()
@handle_errors
def merge(
    sources: Annotated[list[str], typer.Argument(
        metavar="SOURCE", **TEXT, help="People whose faces move; then deleted.")],
    target: Annotated[str, typer.Argument(**TEXT, help="Person who receives them.")],
    new_name: Annotated[str | None, typer.Option(
        "--name", **TEXT, help="The name the merged person keeps; needed when two have names.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Merge SOURCE (one person or several) into TARGET, keeping the name one of them has.

    When they have different names, --name says which the merged person keeps (or gives a new
    one). One change: one `people undo` takes the whole merge back.

    Example: pgface people merge 23 24 "Ada Lovelace"
    """
    with open_library() as pf:
        _said(_people(pf).merge(sources, target, new_name), "merged into", as_json)


@people_app.command()
@handle_errors
def split(
    person: PersonArg,
    faces: FaceIds,
    new_name: Annotated[str | None, typer.Option(
        "--name", **TEXT, help="Name of the new person (default: unnamed).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Move FACES out of PERSON into a new person.

    Example: pgface people split "Ada Lovelace" 301 --name "Annabella Milbanke"
    """
    with open_library() as pf:
        _said(_people(pf).split(person, faces, new_name), "split off", as_json)


@people_app.command()
@handle_errors
def remove(person: PersonArg, faces: FaceIds, as_json: JsonOption = False) -> None:
    """Take FACES away from PERSON: they are not this person, nor anyone known.

    The faces become nobody's (a split would make them a new person), and `people cluster
    --full` keeps them out of PERSON. One change: `people undo` gives them back.

    Example: pgface people remove "Ada Lovelace" 301 302
    """
    with open_library() as pf:
        people = _people(pf)
        named = people.get(person)  # by id from here on: said even where they are gone after
        left = people.remove(named.id, faces)
        removed = sorted(set(faces))
        if as_json:
            print_json({"person_id": named.id, "name": named.name, "removed": removed,
                        "person": _person_dict(left) if left else None})
            return
        out.print(f"took {counted(len(removed), 'face')} from {shown(named.label)}, nobody's now: "
                  + (f"{counted(left.faces, 'face')} in {counted(left.photos, 'photo')} left"
                     if left else "no face left, the unnamed person is gone"), highlight=False)


@people_app.command()
@handle_errors
def hide(person: PersonArg, as_json: JsonOption = False) -> None:
    """Hide a person from lists and the people page (not a person, or not one to see).

    Their faces stay theirs and are still found; `people unhide` shows them again.

    Example: pgface people hide 23
    """
    with open_library() as pf:
        _said(_people(pf).hide(person, True), "hid", as_json)


@people_app.command()
@handle_errors
def unhide(person: PersonArg, as_json: JsonOption = False) -> None:
    """Show a hidden person in lists and the people page again.

    Example: pgface people unhide 23
    """
    with open_library() as pf:
        _said(_people(pf).hide(person, False), "unhid", as_json)


@people_app.command()
@handle_errors
def delete(person: PersonArg, as_json: JsonOption = False) -> None:
    """Delete a person; their faces stay, unassigned (clustering may regroup them: `people
    hide` keeps someone out of sight).

    Example: pgface people delete 23
    """
    with open_library() as pf:
        found = pf.people.get(person)
        released = _people(pf).delete(found.id)
    if as_json:
        print_json({"deleted": person, "person_id": found.id, "name": found.name,
                    "faces_released": released})  # the HTTP API's keys
        return
    who = f"{found.name} (person {found.id})" if found.name is not None else found.label
    out.print(f"deleted {who}; {counted(released, 'face')} unassigned now", highlight=False)


@people_app.command()
@handle_errors
def erase(
    person: PersonArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    scrub: Annotated[bool, typer.Option(
        "--scrub/--no-scrub", help="Rewrite the tables so no byte of the erased rows stays in "
                                   "the database files (locks them meanwhile; docs/people.md).")
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Erase a person for good: faces, crops, embeddings, their photos. Cannot be undone.

    Deleted: every face of theirs (embeddings, crops), the photos left without a face, and of
    those the files pgface keeps in its upload folder (photo files elsewhere are not touched);
    then the tables are rewritten so no byte of them stays in the database files.

    Example: pgface people erase "Ada Lovelace" --yes
    """
    with open_library() as pf:
        found = pf.people.get(person)
        if not yes and not _confirmed(f"erase {found.label} and {counted(found.faces, 'face')} "
                                      f"for good? (this cannot be undone)"):
            # one `error:` line, as every error (typer's abort printed "Aborted." alone)
            raise PgfaceError(f"nothing was erased: {found.label} stays (--yes erases "
                              f"without asking)")
        # as confirmed: a merge into them while the question waited was erased with them
        with stopped_by_sigterm_as_by_ctrl_c("nothing was erased"):
            try:
                done = _people(pf).erase(found.id, scrub=scrub, expected_name=found.name,
                                         expected_faces=found.faces)
            except KeyboardInterrupt as exc:
                erased = getattr(exc, "erasure", None)
                if erased is None:
                    raise
                # committed before the interruption: said, and the rewrite still owed
                stopped(exc, f": {found.label} was erased ({counted(erased.faces, 'face')}, "
                             f"{counted(erased.photos, 'photo')}), but the tables were not "
                             f"rewritten: the erased rows' bytes may stay in their files "
                             f"until `pgface people scrub` is run")
    if as_json:
        print_json({"erased": person, "person_id": found.id, "name": found.name,
                    "faces_deleted": done.faces,  # the HTTP API's keys
                    "photos_deleted": done.photos, "files_deleted": len(done.files),
                    "files_failed": done.files_failed, "scrub_seconds": done.scrub_seconds,
                    "scrub_failed": done.scrub_failed})
        if done.files_failed or done.scrub_failed:
            raise typer.Exit(1)
        return
    scrubbed = (f"; tables rewritten in {done.scrub_seconds:.1f} s"
                if done.scrub_seconds is not None
                else "; tables not rewritten yet (run `pgface people scrub`)")
    out.print(f"erased {found.label}: {counted(done.faces, 'face')}, "
              f"{counted(done.photos, 'photo')}, "
              f"{counted(len(done.files), 'uploaded file')}{scrubbed}", highlight=False)
    for failure in done.files_failed:
        err.print(f"[red]could not delete[/red] {shown(str(failure))}",
                  markup=True, highlight=False)
    if done.scrub_failed:
        say_error(PgfaceError(f"the tables could not be rewritten ({done.scrub_failed}): the "
                              f"erased rows' bytes may stay in their files until `pgface "
                              f"people scrub` succeeds"))
    if done.files_failed or done.scrub_failed:
        raise typer.Exit(1)


@people_app.command()
@handle_errors
def scrub(as_json: JsonOption = False) -> None:
    """Rewrite the tables so no byte of erased people stays in their files.

    What `erase` does unless --no-scrub: run it once after several such erases.

    Example: pgface people scrub
    """
    with open_library() as pf:
        seconds = pf.people.scrub()
    if as_json:
        print_json({"scrub_seconds": seconds})
        return
    out.print(f"tables rewritten in {seconds:.1f} s", highlight=False)


@people_app.command()
@handle_errors
def cluster(
    full: Annotated[bool, typer.Option(
        "--full", help="Redo what clustering did before (never what a person did).")] = False,
    similarity: Annotated[float | None, typer.Option(
        **COSINE,
        help=f"Cosine similarity from which two faces of different photos are neighbours "
             f"(default: {CLUSTER_SIMILARITY['buffalo_sc']:.2f} for buffalo_sc; another pack: "
             f"its match threshold + {CLUSTER_MARGIN:.2f}). Higher: fewer, surer joins.")
    ] = None,
    min_neighbours: Annotated[int, typer.Option(
        min=1, help="Neighbours a face needs to found a person or draw others in (a face "
                    "with fewer joins its nearest neighbour's person, or stays alone).")
    ] = MIN_NEIGHBOURS,
    min_quality: MinQualityOption = None,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Group the faces no person holds: each joins a person or founds one.

    Faces whose quality is below the floor are left out.

    Example: pgface people cluster --json
    """
    with open_library() as pf, working("clustering…", enabled=not (quiet or as_json)):
        report = _people(pf).cluster(full=full, similarity=similarity,
                                     min_neighbours=min_neighbours, min_quality=min_quality)
    if as_json:
        print_json(report.to_dict())
        return
    # --full looks again at the faces clustering had grouped: they were called "unassigned";
    # a run looks at the new faces and the unassigned ones near them, not all those still
    # without a person ("0 unassigned faces: ..., 17 faces still without a person")
    looked_at = ("faces no one named by hand" if full
                 else "faces looked at (new, and unassigned ones near them)")
    out.print(f"{report.considered} {looked_at}: {report.joined} joined people, "
              f"{report.in_new_people} formed {report.founded} new people"
              f"{found_again_text(report)}, "
              f"{counted(report.unassigned, 'face')} still without a person, "
              f"{report.below_quality} below the quality floor; {report.seconds:.1f} s "
              f"({report.mode})",
              highlight=False)


@people_app.command()
@handle_errors
def enrol(
    folder: Annotated[Path, typer.Argument(
        parser=path_argument, help="A folder with one folder per person.")],
    move: MoveOption = False,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Index FOLDER/<name>/* and name each photo's face <name>.

    A face another person holds by a human decision stays there, and is listed, unless --move.

    Example: pgface people enrol ~/people
    """
    shown = not (quiet or as_json)
    with stopped_by_sigterm_as_by_ctrl_c(), open_library() as pf:
        with IndexProgress(enabled=shown) as show:
            report = _people(pf).enrol(folder, move=move, progress=show)
    indexed = report.index
    if as_json:
        print_json({"people": report.people, "new": report.new,
                    "failures": file_reasons(report.failures),
                    "no_face": report.no_face,
                    "several_faces": report.several_faces,
                    "left": [asdict(h) for h in report.left],
                    "moved": [asdict(h) for h in report.moved],
                    "index": report_dict(indexed) if indexed is not None else None})
    else:
        _say_enrolled(report)
    if report.failures or (indexed is not None and (indexed.failures or indexed.empty_folders)):
        raise typer.Exit(1)


def _say_enrolled(report: EnrolReport) -> None:
    if report.index is not None:
        say_empty_folders(report.index)
    for person_name, count in report.people.items():
        new = report.new.get(person_name, count)
        out.print(f"{person_name}: {counted(count, 'face')}"
                  + ("" if new == count else f" ({new} new)"), highlight=False)
    for failure in report.failures:
        say_failure(failure)
    for path in report.no_face:
        err.print(f"[yellow]no face[/yellow] in {shown(readable(path))}",
                  markup=True, highlight=False)
    for path in report.several_faces:
        err.print(f"[yellow]several faces[/yellow] in {shown(readable(path))}: "
                  "took the likeliest", markup=True, highlight=False)
    _say_left(report.left)
    _say_moved(report.moved)
    if report.index is not None:
        err.print(f"{counted(report.index.indexed, 'photo')} indexed, "
                  f"{report.index.skipped} already indexed, "
                  # enrolment's own failures too (a loose photo, a folder no name): each
                  # was a `failed` line above, and the count said 0
                  f"{len(report.index.failures) + len(report.failures)} failed",
                  highlight=False)


@people_app.command()
@handle_errors
def history(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many changes.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The latest people changes, newest first: when, who, what, and whether undone.

    Example: pgface people history -n 5
    """
    with open_library() as pf:
        changes = pf.people.history(limit)
    if as_json:
        print_json([c.to_dict() for c in changes])
        return
    table = Table()
    # a change's id never cut, as `people undo --change N` takes it (people show says why)
    table.add_column("id", no_wrap=True,
                     min_width=max((len(str(c.id)) for c in changes), default=2))
    for column in ("when", "who", "what", "undo"):
        table.add_column(column)
    for c in changes:
        table.add_row(str(c.id), f"{c.at:%Y-%m-%d %H:%M:%S}", Words(c.actor), Words(c.summary),
                      _undo_state(c))
    out.print(table)


def _undo_state(change: Change) -> str:
    if change.undone_at:
        return f"undone {change.undone_at:%Y-%m-%d %H:%M:%S} by {change.undone_by}"
    return "" if change.undoable else "cannot be undone"


@people_app.command()
@handle_errors
def undo(
    change_id: Annotated[int | None, typer.Option(
        "--change", min=1, metavar="N",
        help="Undo only if change N (`people history` lists them) is still the latest: "
             "never someone else's made since.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Undo the latest people change: faces, names and people as they were before it.

    Run again to go further back, one change at a time. An erase cannot be undone. Beside
    other users (the web page, the HTTP API), --change N takes back your change N only.

    Example: pgface people undo --change 42
    """
    with open_library() as pf:
        change = _people(pf).undo(change_id)
    if as_json:
        print_json(change.to_dict())
        return
    out.print(f"undone: {change.summary} ({change.kind} {change.id}, {change.actor}, "
              f"{change.at:%Y-%m-%d %H:%M:%S})", highlight=False)


@people_app.command()
@handle_errors
def identify(
    photo: Annotated[Path, typer.Argument(
        parser=path_argument, help="Every face in it is identified.")],
    threshold: Annotated[float | None, typer.Option(
        **COSINE,
        help="Minimum cosine similarity (default: the calibrated match threshold).")] = None,
    min_quality: MinQualityOption = None,
    as_json: JsonOption = False,
) -> None:
    """Who is in PHOTO: for each face, the likeliest person and a confidence, or unknown.

    A face whose quality is below the floor is listed, not identified (as search does).

    Example: pgface people identify party.jpg --json
    """
    with open_library() as pf, working("identifying…", enabled=not as_json):
        result = pf.people.identify(photo, threshold=threshold, min_quality=min_quality)
        notices = result.notices() + pf.notices()
    print_notices(notices)
    if as_json:
        print_json({**result.to_dict(), "notices": notices})  # search --json's keys
        return
    if not result.faces:
        out.print(f"no face found in {photo}", highlight=False)
    for face in result.faces:
        box = box_text(face.bbox)
        if not face.searched:
            out.print(f"face at {box}: not identified, "
                      f"{below_floor_text(face.quality, result.min_quality)}", highlight=False)
            continue
        # the people it is more like than its answer, that other faces of the photo are
        taken = "".join(f"; {_who(t.name, t.person_id)} ({t.similarity:.4f}) is the face at "
                        f"{box_text(result.faces[t.face].bbox)} of this photo "
                        f"({t.face_similarity:.4f})" for t in face.taken)
        if face.person_id is None:
            out.print(f"face at {box}: unknown{taken}", highlight=False)
            continue
        who = _who(face.name, face.person_id)
        if face.verdict == "possible":
            # Strangers of a library this size score so too. No confidence beside it: that
            # number is one comparison's, and "possibly Bono, confidence 1.00" at 0.3849 under
            # a bar of 0.424 (186,490 faces) read as sure (probe scale57).
            # (counted: "this library's 1 faces of people" in a library of one face)
            out.print(f"face at {box}: possibly {who} (similarity {face.similarity:.4f}, under "
                      f"the {result.same_person_similarity:.4f} from which a match among this "
                      f"library's {counted(result.library_size, 'face')} of people is the same "
                      f"person: strangers score so too){taken}", highlight=False)
            continue
        out.print(f"face at {box}: {who}, confidence {face.confidence:.2f} "
                  f"(similarity {face.similarity:.4f}){taken}", highlight=False)


def _who(name: str | None, person_id: int) -> str:
    return name or f"person {person_id} (unnamed)"


@people_app.command()
@handle_errors
def search(
    photo: Annotated[Path, typer.Argument(
        parser=path_argument, help="Query photo; every face in it is searched.")],
    top: TopOption = None,
    threshold: ThresholdOption = None,
    min_quality: MinQualityOption = None,
    as_json: JsonOption = False,
) -> None:
    """Search by photo, the matches of each face grouped by person.

    A face whose quality is below the floor is listed, not searched.

    Example: pgface people search party.jpg --top 20
    """
    with open_library() as pf, working("searching…", enabled=not as_json):
        result, groups = pf.people.search(photo, top=top, threshold=threshold,
                                          min_quality=min_quality)
    print_notices(result.notices)
    if as_json:
        # search --json's object, each face's matches grouped by person under "people"
        print_json({**{k: v for k, v in result.to_dict().items() if k != "faces"},
                    "faces": [{"bbox": face.bbox, "det_score": face.det_score,
                               "quality": face.quality, "searched": face.searched,
                               "people": [asdict(g) for g in face_groups]}
                              for face, face_groups in zip(result.faces, groups, strict=True)]})
        return
    if not result.faces:
        out.print(f"no face found in {photo}", highlight=False)
    for face, face_groups in zip(result.faces, groups, strict=True):
        if not face.searched:
            # as `search` and `people identify` say it, the score once, with the digits that
            # show it below the floor (a heading's 2 said 0.10 of 0.0959, probe consistency33)
            out.print(f"face at {box_text(face.bbox)}: not searched, "
                      f"{below_floor_text(face.quality, result.min_quality)}", highlight=False)
            continue
        out.print(f"face at {box_text(face.bbox)} ({quality_text(face.quality)}):",
                  highlight=False)
        if not face_groups:
            out.print("  no match", highlight=False)
        for g in face_groups:
            who = ("unassigned faces" if g.person_id is None
                   else _who(g.name, g.person_id))
            possible = all(m.verdict == "possible" for m in g.matches)
            if g.taken_by is not None:  # one person is at most one face of a photo
                note = (f" (the face at {box_text(result.faces[g.taken_by].bbox)} is {who}, "
                        f"{g.taken_by_similarity:.4f})")
            else:
                note = " (possible, not sure at this library's size)" if possible else ""
            out.print(f"  {who}: {counted(len(g.matches), 'match', 'matches')}, "
                      f"best {g.best_similarity:.4f}{note}", highlight=False)
