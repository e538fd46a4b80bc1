"""Human decisions win, merges keep names, every people change is recorded and the last can be
undone exactly: on real photos, models and PostgreSQL."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import psycopg
import pytest
from conftest import PHOTOS, in_pgface_schema, require_data
from fastapi.testclient import TestClient
from PIL import Image, ImageEnhance
from test_api import error_of
from test_people import linked_folder, photos_of, stored_faces
from typer.testing import CliRunner

from pgface import (
    InvalidInputError,
    NotFoundError,
    PeopleBusyError,
    PersonError,
    Pgface,
    Settings,
    people_history,
)
from pgface.api import create_app
from pgface.cli import app
from pgface.db import api_keys
from pgface.db.people_history import PEOPLE_LOCK
from pgface.models.analysis import FaceAnalyzer
from pgface.people import PersonConflict
from pgface.people_history import UndoError, os_user


def state(pf: Pgface) -> tuple[list[tuple], list[tuple]]:
    """Everything people-related: each face's person columns and every person row, hidden
    flag included."""
    with pf.pool.connection() as conn:
        faces = conn.execute("SELECT id, person_id, assigned_by, clustered_at FROM faces "
                             "ORDER BY id").fetchall()
        people = conn.execute("SELECT id, name, hidden, created_at, updated_at FROM people "
                              "ORDER BY id").fetchall()
    return faces, people


def face_ids(pf: Pgface, identity: str) -> list[int]:
    stored = stored_faces(pf, photos_of(identity))
    return [f.face_id for faces in stored.values() for f in faces]


def enrol(pf: Pgface, tmp_path: Path, *names: str) -> None:
    pf.people.enrol(linked_folder(tmp_path / "people", {n: photos_of(n) for n in names}))


# Human decisions win

def test_naming_from_search_leaves_faces_people_placed_unless_moved(pf: Pgface, tmp_path: Path
                                                                    ) -> None:
    enrol(pf, tmp_path, "obama", "biden")
    pf.index(photos_of("kit_harington"))
    # Every stored face as a match, strangers and enrolled people alike: the page's case.
    result = pf.search(require_data(PHOTOS / "queries" / "obama1.jpg"), top=100, threshold=-1)
    matches = [m.face_id for m in result.faces[0].matches]
    obama, biden = set(face_ids(pf, "obama")), set(face_ids(pf, "biden"))
    strangers = set(face_ids(pf, "kit_harington"))
    assert obama | biden | strangers == set(matches)
    before = state(pf)

    with pytest.raises(PersonConflict, match="obama") as refused:
        pf.people.name_faces(matches, "Someone", refuse_held=True)
    affected = {p["name"]: set(p["face_ids"]) for p in refused.value.details["affected"]}
    assert affected == {"obama": obama, "biden": biden}
    assert state(pf) == before  # a refusal changes nothing

    naming = pf.people.name_faces(matches, "Someone")
    assert set(naming.named) == strangers and naming.person.faces == len(strangers)
    assert {h.face_id for h in naming.left} == obama | biden
    assert {f.face_id for f in pf.people.faces("obama")} == obama
    assert {f.face_id for f in pf.people.faces("biden")} == biden

    naming = pf.people.name_faces(sorted(obama), "Someone", move=True)
    assert {h.face_id for h in naming.moved} == obama and not naming.left
    assert pf.people.get("obama").faces == 0
    assert pf.people.get("Someone").faces == len(strangers) + len(obama)


def test_enrolment_leaves_faces_people_placed_unless_moved(pf: Pgface, tmp_path: Path) -> None:
    pf.index(photos_of("obama"))
    first = face_ids(pf, "obama")[0]
    pf.people.name_faces([first], "Barack")
    report = pf.people.enrol(linked_folder(tmp_path / "a", {"obama": photos_of("obama")}))
    assert [h.face_id for h in report.left] == [first] and report.left[0].name == "Barack"
    assert pf.people.get("obama").faces == len(photos_of("obama")) - 1
    report = pf.people.enrol(linked_folder(tmp_path / "b", {"obama": photos_of("obama")}),
                             move=True)
    assert not report.left and pf.people.get("obama").faces == len(photos_of("obama"))
    assert pf.people.get("Barack").faces == 0
    # what --move took is told, as a naming's `moved` is (a script could not tell)
    assert [(h.face_id, h.name) for h in report.moved] == [(first, "Barack")]
    assert pf.people.history(1)[0].summary.endswith("; moved 1 face of Barack")


def test_merge_keeps_a_name_and_refuses_two_without_a_choice(pf: Pgface) -> None:
    pf.index(photos_of("obama") + photos_of("biden") + photos_of("bbt-amy"))
    obama, biden, amy = face_ids(pf, "obama"), face_ids(pf, "biden"), face_ids(pf, "bbt-amy")
    named = pf.people.name_faces(obama, "Obama").person
    unnamed = pf.people.split("Obama", obama[1:])
    # Named into unnamed, and unnamed into named: the name stays either way.
    merged = pf.people.merge("Obama", unnamed.id)
    assert (merged.id, merged.name, merged.faces) == (unnamed.id, "Obama", len(obama))
    other = pf.people.split(merged.id, obama[:1])
    assert pf.people.merge(other.id, "Obama").name == "Obama"
    assert named.id != merged.id

    pf.people.name_faces(biden, "Biden")
    before = state(pf)
    with pytest.raises(PersonConflict, match="both people have names") as refused:
        pf.people.merge("Biden", "Obama")
    assert refused.value.details == {"names": ["Biden", "Obama"]}
    assert state(pf) == before
    kept = pf.people.merge("Obama", "Biden", name="Obama")
    assert (kept.name, kept.faces) == ("Obama", len(obama) + len(biden))
    pf.people.name_faces(amy, "Amy")
    pf.people.split("Obama", obama[:1], name="Third")
    with pytest.raises(PersonError, match="third person is named 'Third'"):
        pf.people.merge("Amy", "Obama", name="Third")
    assert pf.people.merge("Amy", "Obama", name="Obama and Amy").name == "Obama and Amy"


# Changes at the same time

def at_once(*calls: Callable[[], object]) -> list[object]:
    """Run the calls on threads released together; each one's result or exception."""
    start = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:  # what each got is the test's to judge
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def test_changes_at_the_same_time_happen_one_after_the_other(pf: Pgface) -> None:
    pf.index(photos_of("obama") + photos_of("biden"))
    obama, biden = face_ids(pf, "obama"), face_ids(pf, "biden")
    assert len(obama) >= 2 and len(biden) >= 2
    for round_ in range(6):
        # Two clients name a face each with the same new name: one person holds both (both
        # created it, and the second broke the unique name: a 500 over HTTP).
        name = f"Same {round_}"
        named = at_once(partial(pf.people.name_faces, obama[:1], name, move=True),
                        partial(pf.people.name_faces, biden[:1], name, move=True))
        assert not [r for r in named if isinstance(r, Exception)], named
        assert {f.face_id for f in pf.people.faces(name)} == {obama[0], biden[0]}

        # Two merges, each the reverse of the other: one merges, the other finds its source
        # gone (it moved faces into the person the first deleted: a foreign key error).
        a = pf.people.name_faces(obama[1:2], f"A {round_}", move=True).person
        b = pf.people.name_faces(biden[1:2], f"B {round_}", move=True).person
        merged = at_once(partial(pf.people.merge, a.id, b.id, name=f"A {round_}"),
                         partial(pf.people.merge, b.id, a.id, name=f"A {round_}"))
        assert sorted(type(r).__name__ for r in merged) == ["NotFoundError", "Person"], merged
        survivor = next(r for r in merged if not isinstance(r, Exception))
        assert {f.face_id for f in pf.people.faces(survivor.id)} == {obama[1], biden[1]}


def test_a_change_waits_for_the_one_before_then_says_it_is_busy(
        pf: Pgface, monkeypatch: pytest.MonkeyPatch) -> None:
    pf.index(photos_of("obama"))
    obama = face_ids(pf, "obama")
    pf.people.name_faces(obama, "Obama")
    monkeypatch.setattr(people_history, "BUSY_WAIT_S", 0.5)
    before = state(pf)
    with psycopg.connect(in_pgface_schema(pf.settings.database_url)) as other:
        other.execute(PEOPLE_LOCK)  # what a long clustering run holds while it runs
        for change in (lambda: pf.people.rename("Obama", "Barack"), pf.people.undo,
                       lambda: pf.people.name_faces(obama[:1], "Someone")):
            with pytest.raises(PeopleBusyError, match="still running after 0.5 s"):
                change()
        # a library in another schema of the database is not held up (it waited, then was
        # told another change was running)
        beside = pf.settings.model_copy(update={"db_schema": "beside"})
        with Pgface(beside, analyzer=pf.analyzer) as other_library, \
                pytest.raises(UndoError, match="no change to undo"):
            other_library.people.undo()
        # Clustering waits as long as it takes: it runs once the lock is let go.
        clustered: list[object] = []
        clustering = threading.Thread(target=lambda: clustered.append(pf.people.cluster()))
        clustering.start()
        for _ in range(600):
            waiting = other.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                    "AND NOT granted").fetchone()[0]
            if waiting or not clustering.is_alive():
                break
            threading.Event().wait(0.05)
        assert waiting == 1 and clustering.is_alive() and not clustered
        other.commit()
        clustering.join(120)
        assert len(clustered) == 1
    assert state(pf)[1] == before[1]
    assert pf.people.rename("Obama", "Barack").name == "Barack"
    with pytest.raises(NotFoundError):
        pf.people.get("Obama")


# Every change recorded, the last one undone exactly

def test_undo_restores_the_state_before_each_change(pf: Pgface, tmp_path: Path) -> None:
    pf.index(photos_of("obama") + photos_of("biden") + photos_of("bbt-amy")
             + photos_of("bbt-penny"))
    folder = linked_folder(tmp_path / "people", {"bbt-amy": photos_of("bbt-amy")})
    obama, biden = face_ids(pf, "obama"), face_ids(pf, "biden")
    people = pf.people

    def undone(change: callable) -> None:  # the change, then its undo: nothing moved
        before = state(pf)
        change()
        assert state(pf) != before
        people.undo()
        assert state(pf) == before
        change()  # and done for good, for the next step

    undone(lambda: people.enrol(folder))
    undone(lambda: people.cluster(full=True))
    undone(lambda: people.name_faces(obama, "Obama"))
    undone(lambda: people.rename("Obama", "Barack Obama"))
    undone(lambda: people.name_faces(biden, "Biden"))
    undone(lambda: people.merge("Biden", "Barack Obama", name="Barack Obama"))
    undone(lambda: people.split("Barack Obama", biden, name="Joe Biden"))
    undone(lambda: people.delete("Joe Biden"))
    unnamed = [p for p in people.list(unnamed=True) if p.name is None]
    assert unnamed  # clustering found Penny
    undone(lambda: people.merge(unnamed[0].id, "Barack Obama", name="Barack Obama"))
    undone(lambda: people.cluster(full=True))

    # Undo goes back one change at a time.
    first = state(pf)
    people.name_faces(obama[:1], "One", move=True)
    second = state(pf)
    people.rename("One", "Two")
    people.undo()
    assert state(pf) == second
    people.undo()
    assert state(pf) == first


def test_history_says_who_what_when_and_erase_cannot_be_undone(pf: Pgface) -> None:
    started = datetime.now(timezone.utc)
    pf.index(photos_of("obama") + photos_of("biden"))
    obama, biden = face_ids(pf, "obama"), face_ids(pf, "biden")
    pf.people.acting_as("cli:ada").name_faces(obama, "Obama")
    pf.people.acting_as("api:phone").name_faces(biden, "Biden")
    pf.people.rename("Biden", "Joe")
    pf.people.acting_as("api:phone").undo()
    changes = pf.people.history()
    assert [(c.kind, c.actor) for c in changes] == [
        ("rename", f"python:{os_user()}"), ("name", "api:phone"), ("name", "cli:ada")]
    assert changes[0].undone_by == "api:phone" and changes[0].undone_at is not None
    assert changes[0].payload["previous_name"] == "Biden"
    assert changes[2].payload["faces"] == obama and "'Obama'" in changes[2].summary
    assert all(started <= c.at <= datetime.now(timezone.utc) for c in changes)
    # Names as they are: repr() wrote 'O\'Brien "Q" back\\slash', in the history, the CLI
    # and the page's "Undone: ..." line.
    odd = 'O\'Brien "Q" back\\slash'
    pf.people.rename("Obama", odd)
    pf.people.hide(odd)
    assert [c.summary for c in pf.people.history(2)] == [
        f"hid '{odd}'", f"renamed 'Obama' to '{odd}'"]
    pf.people.undo()
    pf.people.undo()

    pf.people.erase("Biden", scrub=False)
    with pytest.raises(UndoError, match="cannot be undone"):
        pf.people.undo()
    changes = pf.people.history()
    assert changes[0].kind == "erase" and not changes[0].undoable
    # The record keeps no name of the erased person.
    text = json.dumps([c.to_dict() for c in changes])
    assert "Biden" not in text and "Obama" in text
    assert not any(c.undoable for c in changes)


def test_an_erase_redacts_enrolments_recorded_with_names(pf: Pgface) -> None:
    # Enrolments recorded before their payload kept ids held {"name": faces} under "people",
    # which the erase matched only as ids: the erased person's name stayed in the record.
    pf.index(photos_of("obama") + photos_of("biden"))
    pf.people.name_faces(face_ids(pf, "obama"), "Obama")
    pf.people.name_faces(face_ids(pf, "biden"), "Biden")
    with pf.pool.connection() as conn:
        conn.execute("INSERT INTO people_changes (actor, kind, summary, payload) VALUES "
                     "('cli:ada', 'enrol', 'enrolled 5 face(s) of 2 people from /p', %s), "
                     "('cli:ada', 'enrol', 'enrolled 2 face(s) of 1 people from /q', %s)",
                     [json.dumps({"folder": "/p", "people": {"Obama": 3, "Biden": 2}}),
                      json.dumps({"folder": "/q", "people": {"Biden": 2}})])
    pf.people.erase("Obama", scrub=False)
    text = json.dumps([c.to_dict() for c in pf.people.history()])
    assert "Obama" not in text and "/p" not in text
    assert '"Biden": 2' in text  # the enrolment that did not involve him is as it was


def person_of_photo(pf: Pgface, photo: Path) -> tuple[str | None, str | None]:
    """(person's name, assigned_by) of the one face of PHOTO as stored now."""
    with pf.pool.connection() as conn:
        [row] = conn.execute(
            "SELECT p.name, f.assigned_by FROM faces f JOIN photos ph ON ph.id = f.photo_id "
            "LEFT JOIN people p ON p.id = f.person_id WHERE ph.path = %s",
            [str(photo.resolve())]).fetchall()
    return row


def test_undo_puts_the_person_back_on_the_face_there_is_now(pf: Pgface, tmp_path: Path) -> None:
    """A change's face forgotten by path, found again or edited after the change: undoing the
    change gave it the person the change had given (a merge's target), nobody (the person a
    split made), or nobody with `assigned_by = user`; its before-images now follow it."""
    album = tmp_path / "album"
    album.mkdir()
    obama, biden = [], []
    for name, into in (("obama", obama), ("biden", biden)):
        for photo in photos_of(name):
            into.append(album / photo.name)
            shutil.copyfile(photo, into[-1])
    pf.index([album])
    people = pf.people

    def forget_and_find(photo: Path) -> None:
        pf.remove([photo])
        assert person_of_photo_gone(photo)
        assert pf.index([photo]).people_kept == 1  # its person kept for it, given back

    def person_of_photo_gone(photo: Path) -> bool:
        with pf.pool.connection() as conn:
            return conn.execute("SELECT count(*) FROM photos WHERE path = %s",
                                [str(photo.resolve())]).fetchone()[0] == 0

    # A merge undone after a photo of its source was forgotten: back to the source.
    def faces_of(photos: list[Path]) -> list[int]:
        return [f.face_id for faces in stored_faces(pf, photos).values() for f in faces]

    people.name_faces(faces_of(obama), "Obama")
    people.name_faces(faces_of(biden), "Biden")
    people.merge("Biden", "Obama", name="Obama")
    pf.remove([biden[0]])
    people.undo()
    pf.index([biden[0]])
    assert person_of_photo(pf, biden[0]) == ("Biden", "user")  # was ("Obama", "user")

    # A split undone after its face's photo was forgotten: back to the person split.
    people.split("Obama", faces_of([obama[0]]), name="Someone")
    pf.remove([obama[0]])
    people.undo()
    pf.index([obama[0]])
    assert person_of_photo(pf, obama[0]) == ("Obama", "user")  # was (None, None)

    # A deletion undone after a photo of the person was forgotten (nothing was kept for it:
    # its face had no person then): the photo found again is theirs again.
    people.delete("Biden")
    pf.remove([biden[1]])
    people.undo()
    pf.index([biden[1]])
    assert person_of_photo(pf, biden[1]) == ("Biden", "user")  # was (None, None)

    # A naming undone after its photo was forgotten and found again, and after it was edited:
    # the face there is now goes back to nobody, as before the naming, not to nobody "by hand".
    people.delete("Biden")
    people.name_faces(faces_of([biden[1]]), "Joe")
    forget_and_find(biden[1])
    assert person_of_photo(pf, biden[1]) == ("Joe", "user")
    people.undo()
    assert person_of_photo(pf, biden[1]) == (None, None)  # was (None, "user")

    people.name_faces(faces_of([obama[1]]), "Barack", move=True)
    with Image.open(obama[1]) as img:
        w, h = img.size
        edited = ImageEnhance.Contrast(img.crop((w // 20, h // 20, w - w // 20, h - h // 20)))
        edited.enhance(1.1).save(obama[1], quality=90)
    assert pf.index([obama[1]]).people_kept == 1
    assert person_of_photo(pf, obama[1]) == ("Barack", "user")
    people.undo()
    assert person_of_photo(pf, obama[1]) == ("Obama", "user")  # was (None, "user")

    # A deletion undone after its faces' photos were forgotten and found again, or edited:
    # the faces nobody held then carry what the deletion took off them (nothing was kept for
    # them, and nothing paired them with the faces there are now).
    people.delete("Obama")
    pf.remove([obama[0]])
    assert pf.index([obama[0]]).people_kept == 0  # found again with nobody, as it went
    with Image.open(obama[1]) as img:
        w, h = img.size
        img.crop((w // 20, h // 20, w - w // 20, h - h // 20)).save(obama[1], quality=90)
    assert pf.index([obama[1]]).people_kept == 0
    assert person_of_photo(pf, obama[0]) == person_of_photo(pf, obama[1]) == (None, None)
    people.undo()
    for photo in obama:
        assert person_of_photo(pf, photo) == ("Obama", "user")  # was (None, None)
    people.undo()  # the deletion of Biden, whose face was named Joe, forgotten and found since
    assert person_of_photo(pf, biden[1]) == ("Biden", "user")
    # and the indexer's keep changes, which cannot be undone, keep no before-images
    with pf.pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM people_change_rows r JOIN people_changes c "
                            "ON c.id = r.change_id WHERE NOT c.undoable").fetchone()[0] == 0


def test_undos_around_a_photo_forgotten_and_found_again_keep_its_face_once_and_given_back(
        pf: Pgface, tmp_path: Path) -> None:
    """Two finds of a model-based fuzz (probe people17). An undo of a later change took the
    row kept for a forgotten photo's face away, though an earlier change's before-images
    were on it: the photo found again came back with nothing to carry, and undoing the
    earlier deletion gave the face nobody. And a merge undone after its face was found again
    and forgotten again put back the row dropped when it was found, beside the one kept
    then: the face kept twice."""
    album = tmp_path / "album"
    album.mkdir()
    photo, other = album / "obama.jpg", album / "biden.jpg"
    shutil.copyfile(photos_of("obama")[0], photo)
    shutil.copyfile(photos_of("biden")[0], other)
    pf.index([album])
    people = pf.people
    [face] = [f.face_id for f in stored_faces(pf, [photo])[str(photo.resolve())]]

    people.name_faces([face], "Ada")
    people.delete("Ada")  # the face released; undone, it is Ada's again
    people.name_faces([face], "Bea")
    pf.remove([photo])
    assert people.undo().kind == "name"  # Bea's naming: the face kept, holding nobody
    assert pf.index([photo]).people_kept == 0
    assert person_of_photo(pf, photo) == (None, None)
    assert people.undo().kind == "delete"
    assert person_of_photo(pf, photo) == ("Ada", "user")  # was (None, None)

    def kept_rows() -> list[tuple]:
        with pf.pool.connection() as conn:
            return conn.execute("SELECT p.name, ff.assigned_by FROM forgotten_faces ff "
                                "LEFT JOIN people p ON p.id = ff.person_id").fetchall()

    [face] = [f.face_id for f in stored_faces(pf, [photo])[str(photo.resolve())]]
    people.name_faces([face], "Ann", move=True)
    people.name_faces([f.face_id for f in stored_faces(pf, [other])[str(other.resolve())]],
                      "Bob")
    pf.remove([photo])
    people.merge("Ann", "Bob", name="Bob")
    assert pf.index([photo]).people_kept == 1
    pf.remove([photo])
    assert kept_rows() == [("Bob", "user")]
    assert people.undo().kind == "merge"
    assert kept_rows() == [("Ann", "user")]  # was two rows, the face kept twice
    pf.index([photo])
    assert person_of_photo(pf, photo) == ("Ann", "user")


# The interfaces

def test_cli_move_history_undo(settings: Settings, pf: Pgface, models_dir: Path, tmp_path: Path
                               ) -> None:
    env = {"PGFACE_DATABASE_URL": settings.database_url, "PGFACE_MODELS_DIR": str(models_dir)}
    runner = CliRunner()
    enrol(pf, tmp_path, "obama", "biden")
    obama, biden = face_ids(pf, "obama"), face_ids(pf, "biden")
    before = state(pf)

    result = runner.invoke(app, ["people", "name", "Joe", *map(str, obama + biden)], env=env)
    assert result.exit_code == 0, result.output
    assert f"left face {obama[0]} with obama" in result.output
    assert "named" not in result.output  # nothing was free to name
    result = runner.invoke(app, ["people", "name", "Joe", *map(str, biden), "--move",
                                 "--json"], env=env)
    assert json.loads(result.output)["named"] == biden and pf.people.get("biden").faces == 0

    result = runner.invoke(app, ["people", "merge", "biden", "obama", "--name", "obama"],
                           env=env)
    assert result.exit_code == 0 and pf.people.get("obama").faces == len(obama)
    result = runner.invoke(app, ["people", "merge", "Joe", "obama"], env=env)
    assert result.exit_code == 1 and "--name" in result.output
    result = runner.invoke(app, ["people", "merge", "Joe", "obama", "--name", "Joe"], env=env)
    assert result.exit_code == 0 and pf.people.get("Joe").faces == len(obama) + len(biden)

    result = runner.invoke(app, ["people", "history", "--json"], env=env)
    changes = json.loads(result.output)
    # The naming that named nothing changed nothing, and is not recorded.
    assert [c["kind"] for c in changes] == ["merge", "merge", "name", "enrol"]
    assert {c["actor"] for c in changes[:3]} == {f"cli:{os_user()}"}
    result = runner.invoke(app, ["people", "history"], env=env)
    assert "merged" in result.output and f"cli:{os_user()}" in result.output
    # --change N: only while N is the latest (a plain undo beside web users took back theirs:
    # probe people21); refused, nothing changes
    result = runner.invoke(app, ["people", "undo", "--change", str(changes[1]["id"])], env=env)
    assert result.exit_code == 1 and f"change {changes[0]['id']}" in result.output, result.output
    assert pf.people.get("Joe").faces == len(obama) + len(biden)
    result = runner.invoke(app, ["people", "undo", "--change", str(changes[0]["id"])], env=env)
    assert result.exit_code == 0 and "undone:" in result.output, result.output
    for _ in range(2):
        result = runner.invoke(app, ["people", "undo"], env=env)
        assert result.exit_code == 0 and "undone:" in result.output, result.output
    assert state(pf) == before


def test_http_asks_before_moving_and_undoes(settings: Settings, analyzer: FaceAnalyzer,
                                            pf: Pgface, tmp_path: Path) -> None:
    enrol(pf, tmp_path, "obama", "biden")
    obama = face_ids(pf, "obama")
    settings = settings.model_copy(update={"api_auth": "always"})
    with pf.pool.connection() as conn:
        _, key = api_keys.create_key(conn, "phone", ["read", "write"])
    with TestClient(create_app(settings, analyzer),
                    headers={"Authorization": f"Bearer {key}"}) as client:
        before = state(pf)
        refused = client.post("/api/people/name", json={"face_ids": obama, "name": "Joe"})
        assert refused.status_code == 409 and "move" in error_of(refused)
        assert refused.json()["error"]["affected"] == [
            {"person_id": pf.people.get("obama").id, "name": "obama", "face_ids": obama}]
        assert state(pf) == before
        moved = client.post("/api/people/name",
                            json={"face_ids": obama, "name": "Joe", "move": True})
        assert moved.status_code == 200 and moved.json()["faces"] == len(obama)

        refused = client.post("/api/people/merge", json={"source": "Joe", "target": "biden"})
        assert refused.status_code == 409 and refused.json()["error"]["names"] == ["Joe", "biden"]
        merged = client.post("/api/people/merge",
                             json={"source": "Joe", "target": "biden", "name": "biden"})
        assert merged.json()["name"] == "biden"

        changes = client.get("/api/people/history?limit=2").json()["changes"]
        assert [(c["kind"], c["actor"]) for c in changes] == [("merge", "api:phone"),
                                                              ("name", "api:phone")]
        assert client.post("/api/people/undo").json()["kind"] == "merge"
        assert client.post("/api/people/undo").json()["kind"] == "name"
        assert state(pf) == before
        erased = client.post("/api/people/obama/erase?scrub=false").json()
        assert erased["faces_deleted"] == len(obama) and erased["scrub_seconds"] is None
        refused = client.post("/api/people/undo")
        assert refused.status_code == 409 and "cannot be undone" in error_of(refused)


def test_a_change_that_changes_nothing_is_not_recorded(pf: Pgface, tmp_path: Path) -> None:
    # Naming faces already the person's, renaming to the same name, or enrolling again with
    # nothing new were recorded: the next undo "undid" them, changing nothing, and the change
    # the user meant needed a second undo (and a nightly enrolment filled the history).
    pf.index(photos_of("obama"))
    obama = face_ids(pf, "obama")
    people = pf.people
    people.name_faces(obama, "Obama")
    people.rename("Obama", "Barack")
    recorded = people.history_count()
    unchanged = state(pf)
    assert people.name_faces(obama[:1], "Barack").person.name == "Barack"
    assert people.rename("Barack", "Barack").name == "Barack"
    folder = linked_folder(tmp_path / "people", {"bbt-amy": photos_of("bbt-amy")})
    people.enrol(folder)
    after_enrolment = state(pf)
    assert people.history_count() == recorded + 1
    assert state(pf)[0] != unchanged[0]
    people.enrol(folder)  # again: nothing new
    assert people.history_count() == recorded + 1 and state(pf) == after_enrolment
    assert people.undo().kind == "enrol"
    assert people.undo().kind == "rename"  # the change the user meant, at the first undo
    assert [p.name for p in people.list()] == ["Obama"]


def test_an_undo_given_its_change_takes_back_that_change_or_nothing(
        settings: Settings, analyzer: FaceAnalyzer, pf: Pgface, tmp_path: Path) -> None:
    # The page's Undo beside a change undid whatever change was the latest: another client's
    # rename made meanwhile (its name gone), or a scheduled clustering; and beside a rename to
    # the same name (no change) it undid the change before.
    enrol(pf, tmp_path, "obama", "biden")
    with TestClient(create_app(settings, analyzer)) as phone, \
            TestClient(create_app(settings, analyzer)) as laptop:
        mine = phone.patch("/api/people/obama", json={"name": "Barack"})
        change = int(mine.headers["X-Pgface-Change"])
        assert [c.id for c in pf.people.history(1)] == [change]
        theirs = laptop.patch("/api/people/biden", json={"name": "Joe"})
        assert int(theirs.headers["X-Pgface-Change"]) > change
        before = state(pf)

        refused = phone.post("/api/people/undo", json={"change_id": change})
        assert refused.status_code == 409
        assert error_of(refused).startswith(f"change {change} is not the latest change any "
                                            f"more: renamed ")
        assert state(pf) == before  # the laptop's Joe is still there

        same = phone.patch("/api/people/Barack", json={"name": "Barack"})
        assert same.status_code == 200 and "X-Pgface-Change" not in same.headers
        assert phone.get("/api/people/history?limit=1").json()["changes"][0]["summary"] == (
            pf.people.history(1)[0].summary)  # nothing recorded

        latest = int(theirs.headers["X-Pgface-Change"])
        undone = laptop.post("/api/people/undo", json={"change_id": latest})
        assert undone.status_code == 200 and undone.json()["id"] == latest
        again = laptop.post("/api/people/undo", json={"change_id": latest})
        assert again.status_code == 409 and "was undone already" in error_of(again)
        never = laptop.post("/api/people/undo", json={"change_id": latest + 1000})
        assert never.status_code == 409  # it was "undone already": an id never given out
        assert error_of(never) == f"there is no change {latest + 1000} (nothing was undone)"
        past_bigint = laptop.post("/api/people/undo", json={"change_id": 2**70})
        assert past_bigint.status_code == 409, past_bigint.text  # PostgreSQL's "out of range"
        assert error_of(past_bigint) == f"there is no change {2**70} (nothing was undone)"
        # In Python, a change id of another type: psycopg's own errors, and "2" said "not the
        # latest change any more" of the latest change
        before = state(pf)
        for wrong in (str(change), "x", [change], 2.0, True):
            with pytest.raises(InvalidInputError, match="change_id is a change's number"):
                pf.people.undo(wrong)  # type: ignore[arg-type]
        assert state(pf) == before  # nothing was undone
        assert phone.post("/api/people/undo", json={"change_id": change}).json()["id"] == change
        assert {p.name for p in pf.people.list()} == {"obama", "biden"}
        # a request that changes no people says no change
        assert "X-Pgface-Change" not in phone.get("/api/people").headers


def test_a_clustering_run_that_moves_no_face_is_not_recorded(pf: Pgface) -> None:
    """A scheduled `people cluster` with nothing to do (or only faces left alone) changes no
    one's faces: recorded, it became the change undo took back, "undoing" nothing, in place of
    the human's naming before it."""
    people = pf.people  # one view: its last_change is its own calls'
    pf.index([PHOTOS / "people" / name for name in ("obama", "biden")])
    assert people.cluster().founded >= 1
    person = people.page(limit=1)[0][0]
    face = people.faces(person.id)[0].face_id
    people.name_faces([face], "Barack", move=True)
    named = people.last_change

    again = people.cluster()  # nothing new to look at
    assert (again.considered, again.joined, again.founded) == (0, 0, 0)
    assert people.last_change is None
    pf.index([PHOTOS / "people" / "alex_lacamoire"])  # a face with no one near it
    alone = people.cluster()
    assert alone.considered >= 1 and alone.joined == alone.founded == 0
    assert people.last_change is None
    assert people.cluster().considered == 0  # its faces stay looked at all the same
    assert [c.id for c in people.history(limit=1)] == [named]
    # A full re-cluster that forms the same people again (probe kills17: it was recorded,
    # "0 joined, N formed 0 new people and K found again", and undone in place of the naming)
    first_full = people.cluster(full=True)
    full = people.last_change
    again_full = people.cluster(full=True)
    assert (again_full.found_again, again_full.changed, again_full.released) == (
        first_full.found_again, 0, 0) and again_full.found_again >= 1
    assert people.last_change is None
    if full is not None:  # the first full run moved faces clustering had placed otherwise
        assert people.undo().id == full

    assert people.undo().id == named
    assert face in {f.face_id for f in people.faces(person.id)}


def test_an_undo_and_a_new_packs_first_batch_do_not_deadlock(pf: Pgface, database_url: str
                                                             ) -> None:
    """A batch that starts a pack (or analyses a photo another pack has faces of) locks the
    kept face counts (migration 0018), then records its `keep` change; an undo locked the
    history, then moved faces, which counts them: each waited for the other, and PostgreSQL
    failed one ("deadlock detected": the index run stopped, or the undo answered 503)."""
    people = pf.people
    pf.index([PHOTOS / "people" / name for name in ("obama", "biden")])
    people.cluster()
    person = people.page(limit=1)[0][0]
    people.split(person.id, [people.faces(person.id)[0].face_id])
    batch = psycopg.connect(in_pgface_schema(database_url))
    try:
        # the batch: a new pack's first analysis takes the counts' lock ...
        photo = batch.execute("SELECT min(id) FROM photos").fetchone()[0]
        batch.execute("INSERT INTO photo_analyses (photo_id, model, face_count) "
                      "VALUES (%s, 'a_new_pack', 0)", [photo])
        undone: list[object] = []
        undoing = threading.Thread(target=lambda: undone.append(people.undo()))
        undoing.start()
        time.sleep(1.0)  # the undo is waiting for the batch now
        # ... then records what it kept (an edited photo's people, say)
        batch.execute("INSERT INTO people_changes (actor, kind, undoable) "
                      "VALUES ('index:test', 'keep', false)")
        batch.commit()
    finally:
        batch.close()
    undoing.join(30)
    assert len(undone) == 1 and undone[0].kind == "split"
