"""What the people page asks of the API and the CLI: people in page order with a cover face,
hide and unhide (recorded, undoable), merging several people in one change, the review queue
and a person's photos; on real photos, models and PostgreSQL."""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from test_people import photos_of
from test_people_history import enrol, face_ids, state
from typer.testing import CliRunner

from pgface import InvalidInputError, Pgface, Settings
from pgface.api import create_app
from pgface.cli import app
from pgface.models.analysis import FaceAnalyzer
from pgface.people import Person

FOLDERS = ("obama", "biden", "kit_harington", "rose_leslie", "alex_lacamoire")


def test_people_page_endpoints(settings: Settings, analyzer: FaceAnalyzer, pf: Pgface,
                               tmp_path: Path) -> None:
    enrol(pf, tmp_path, *FOLDERS)
    sizes = {name: pf.people.get(name).faces for name in FOLDERS}
    # One of Obama's faces split off unnamed: the review queue's one person.
    obama = face_ids(pf, "obama")
    loner = pf.people.split("obama", obama[:1])
    sizes["obama"] -= 1
    assert sizes["obama"] >= 1
    with TestClient(create_app(settings, analyzer)) as client:
        listed = client.get("/api/people?unnamed=true").json()
        # Named people first, the most faces first (ties by name), then the unnamed.
        expected = sorted(sizes, key=lambda n: (-sizes[n], n))
        assert [p["name"] for p in listed["people"]] == [*expected, None]
        assert listed["total"] == len(FOLDERS) + 1
        assert [p["faces"] for p in listed["people"]] == [sizes[n] for n in expected] + [1]
        for person in listed["people"]:
            crop = client.get(person["cover_url"])
            assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"
            faces = client.get(person["faces_url"]).json()["faces"]
            # the face detected with the most confidence (the lowest id of equals), as the
            # person's own page says too
            with psycopg.connect(settings.database_url) as conn:
                [best] = conn.execute("SELECT id FROM faces WHERE person_id = %s "
                                      "ORDER BY det_score DESC, id LIMIT 1",
                                      [person["id"]]).fetchone()
            assert person["cover_face_id"] == best, (person, faces)
            alone = client.get(f"/api/people/{person['id']}").json()
            assert alone["cover_face_id"] == best, alone
        assert client.get("/api/people").json()["total"] == len(FOLDERS)  # named only
        page = client.get("/api/people?unnamed=true&limit=2&offset=2").json()
        assert [p["id"] for p in page["people"]] == [p["id"] for p in listed["people"][2:4]]
        assert page["next_offset"] == 4

        queue = client.get("/api/people/review").json()
        assert [p["id"] for p in queue["people"]] == [loner.id] and queue["total"] == 1

        # A person's photos: each with their faces in it, paginated.
        photos = client.get(f"/api/people/{loner.id}/photos").json()
        assert photos["total"] == 1 and photos["photos"][0]["face_ids"] == obama[:1]
        rose = face_ids(pf, "rose_leslie")
        first = client.get("/api/people/rose_leslie/photos?limit=1").json()
        assert first["total"] == 2 and first["next_offset"] == 1
        rest = client.get("/api/people/rose_leslie/photos?limit=1&offset=1").json()
        seen = first["photos"] + rest["photos"]
        assert sorted(f for p in seen for f in p["face_ids"]) == sorted(rose)
        assert len({p["photo_id"] for p in seen}) == 2
        assert client.get(seen[0]["image_url"]).status_code == 200
        assert client.get("/api/people/nobody/photos").status_code == 404

        # Hide: out of the lists and the review queue, recorded, undone exactly.
        before = state(pf)
        hidden = client.post(f"/api/people/{loner.id}/hide")
        assert hidden.status_code == 200 and hidden.json()["hidden"] is True
        assert client.get("/api/people/review").json()["total"] == 0
        assert loner.id not in [p["id"] for p in client.get(
            "/api/people?unnamed=true").json()["people"]]
        shown = client.get("/api/people?unnamed=true&hidden=true").json()["people"]
        assert [p["hidden"] for p in shown if p["id"] == loner.id] == [True]
        again = client.post(f"/api/people/{loner.id}/hide")  # already hidden: nothing recorded
        assert again.status_code == 200
        changes = client.get("/api/people/history?limit=1").json()["changes"]
        assert changes[0]["kind"] == "hide" and "hid person" in changes[0]["summary"]
        assert client.post("/api/people/undo").json()["kind"] == "hide"
        assert state(pf) == before
        assert client.post(f"/api/people/{loner.id}/hide").json()["hidden"] is True
        assert client.post(f"/api/people/{loner.id}/unhide").json()["hidden"] is False
        assert client.get("/api/people/review").json()["total"] == 1

        # Merging several people is one change; one undo brings them all back.
        before = state(pf)
        refused = client.post("/api/people/merge",
                              json={"source": ["biden", loner.id], "target": "obama"})
        assert refused.status_code == 409
        assert refused.json()["error"]["names"] == ["biden", "obama"]
        merged = client.post("/api/people/merge", json={
            "source": ["biden", loner.id], "target": "obama", "name": "obama"}).json()
        assert merged["faces"] == sizes["obama"] + sizes["biden"] + 1
        assert client.get("/api/people/biden").status_code == 404
        assert client.post("/api/people/undo").json()["kind"] == "merge"
        assert state(pf) == before
        assert client.get("/api/people/merge").status_code in (404, 405)  # no such read
        bad = client.post("/api/people/merge", json={"source": [], "target": "obama"})
        assert bad.status_code == 422


def test_cli_hide_unhide_review(settings: Settings, pf: Pgface, tmp_path: Path,
                                env: dict[str, str]) -> None:
    enrol(pf, tmp_path, "obama", "biden")
    pf.people.split("obama", face_ids(pf, "obama")[:1])
    runner = CliRunner()
    result = runner.invoke(app, ["people", "hide", "biden", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["hidden"] is True
    listed = json.loads(runner.invoke(app, ["people", "list", "--json"], env=env).output)
    assert [p["name"] for p in listed] == ["obama"]
    listed = json.loads(runner.invoke(app, ["people", "list", "--hidden", "--json"],
                                      env=env).output)
    assert {p["name"]: p["hidden"] for p in listed} == {"biden": True, "obama": False}
    result = runner.invoke(app, ["people", "list", "--hidden"], env=env)
    assert "biden (hidden)" in result.output
    # the unnamed person split off is not listed: said, where clustering's said nothing
    assert "and 1 unnamed person: --all lists them" in result.stderr
    assert "unnamed" not in runner.invoke(app, ["people", "list", "--all"], env=env).stderr
    # a hidden unnamed person is counted by --hidden, as --hidden --all lists it (it was left
    # out of the count: "and 1 unnamed person", then --all listed 2; probe docs60)
    pf.people.hide(pf.people.split("obama", face_ids(pf, "obama")[1:2]).id)
    result = runner.invoke(app, ["people", "list", "--hidden"], env=env)
    assert ("and 2 unnamed people: --all lists them, `pgface people review` goes through the 1 "
            "not hidden") in " ".join(result.stderr.split()), result.stderr
    listed = json.loads(runner.invoke(app, ["people", "list", "--hidden", "--all", "--json"],
                                      env=env).output)
    assert sum(p["name"] is None for p in listed) == 2
    result = runner.invoke(app, ["people", "list"], env=env)
    assert "and 1 unnamed person: --all lists them" in result.stderr, result.stderr
    pf.people.hide(pf.people.review()[0][0].id)
    result = runner.invoke(app, ["people", "list", "--hidden"], env=env)
    assert ("and 2 unnamed people: --all lists them, none is in `pgface people review`: all are "
            "hidden") in " ".join(result.stderr.split()), result.stderr
    pf.people.undo()
    pf.people.undo()
    pf.people.undo()
    result = runner.invoke(app, ["people", "unhide", "biden"], env=env)
    assert result.exit_code == 0 and "unhid biden" in result.output
    assert pf.people.get("biden").hidden is False
    review = json.loads(runner.invoke(app, ["people", "review", "--json"], env=env).output)
    assert review["total"] == 1 and review["people"][0]["name"] is None
    assert review["people"][0]["faces"] == 1
    result = runner.invoke(app, ["people", "review"], env=env)
    assert result.exit_code == 0 and "1 of 1 unnamed people to review" in result.output
    # Merging several people from the command line: one change, one undo.
    loner = review["people"][0]["id"]
    sizes = {p: pf.people.get(p).faces for p in ("biden", "obama")}
    result = runner.invoke(app, ["people", "merge", "biden", str(loner), "obama", "--name",
                                 "obama", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["faces"] == sizes["biden"] + sizes["obama"] + 1
    assert runner.invoke(app, ["people", "undo"], env=env).exit_code == 0
    assert {p: pf.people.get(p).faces for p in ("biden", "obama")} == sizes
    assert pf.people.get(loner).faces == 1
    result = runner.invoke(app, ["people", "hide", "nobody"], env=env)
    assert result.exit_code != 0 and "nobody" in result.output


def test_the_people_list_pages_by_place_so_changes_meanwhile_skip_nobody(
        settings: Settings, analyzer: FaceAnalyzer, pf: Pgface, tmp_path: Path) -> None:
    enrol(pf, tmp_path, *FOLDERS)
    # Two unnamed people of one face each: a tie the order breaks by id.
    obama = face_ids(pf, "obama")
    loners = [pf.people.split("obama", obama[i:i + 1]).id for i in range(2)]
    with TestClient(create_app(settings, analyzer)) as client:
        full = client.get("/api/people?unnamed=true").json()["people"]
        assert [p["id"] for p in full][-2:] == sorted(loners)
        everyone = [p["id"] for p in full]

        def by_place(limit: int) -> list[int]:
            listed, after = [], None
            while True:
                page = client.get("/api/people", params={
                    "unnamed": "true", "limit": limit, **({"after": after} if after else {})
                }).json()
                listed += [p["id"] for p in page["people"]]
                assert page["total"] == len(everyone)
                after = page["next_after"]
                if after is None:
                    return listed
                assert page["next_offset"] is None or page["offset"] == 0

        # Unchanged, the pages by place are the list.
        for limit in (1, 2, 3, len(everyone), len(everyone) + 1):
            assert by_place(limit) == everyone

        # The first person of the first page is hidden before the second page is asked for:
        # by offset the second page starts one further on and one person is never shown; by
        # place it starts where the first page ended.
        first = client.get("/api/people?unnamed=true&limit=2").json()
        assert [p["id"] for p in first["people"]] == everyone[:2]
        assert client.post(f"/api/people/{everyone[0]}/hide").status_code == 200
        second = client.get("/api/people", params={
            "unnamed": "true", "limit": 2, "after": first["next_after"]}).json()
        assert [p["id"] for p in second["people"]] == everyone[2:4]
        assert second["next_offset"] is None and second["next_after"]
        by_offset = client.get("/api/people?unnamed=true&limit=2&offset=2").json()
        assert [p["id"] for p in by_offset["people"]] == everyone[3:5]  # everyone[2] skipped

        # The Python API takes the last person of a page.
        page, total = pf.people.page(limit=2)
        rest, _ = pf.people.page(limit=100, after=page[-1])
        assert [p.id for p in page + rest] == [
            p["id"] for p in client.get("/api/people?unnamed=true").json()["people"]]

        # A count of faces past an integer's is no place a list gives (it reached the
        # database: "a value was refused by the database: integer out of range").
        too_many = base64.urlsafe_b64encode(json.dumps([None, 2**40, 1]).encode()).decode()
        for bad in ("nonsense", "WzEsMl0", "W251bGwsIDEsIC0xXQ", "!!", too_many):
            refused = client.get("/api/people", params={"after": bad})
            assert refused.status_code == 400, (bad, refused.text)
            assert "after" in refused.json()["error"]["message"]
        # The Python API takes such a place as before everyone unnamed.
        rest, _ = pf.people.page(named=False, limit=100, after=Person(1, None, 2**40, 0))
        assert [p.id for p in rest] == [p.id for p in pf.people.page(named=False, limit=100)[0]]
        # The review queue goes on by place too (the web page's Skip).
        first = client.get("/api/people/review?limit=1").json()
        second = client.get("/api/people/review",
                            params={"limit": 1, "after": first["next_after"]}).json()
        assert [p["id"] for p in first["people"] + second["people"]] == [
            p["id"] for p in client.get("/api/people/review?limit=2").json()["people"]]
        assert second["next_offset"] is None and second["total"] == first["total"]
        assert client.get("/api/people/review?after=nonsense").status_code == 400
        # Not a Person (an id, a name): AttributeError 'int' object has no attribute 'name'
        for wrong in (page[-1].id, page[-1].name):
            with pytest.raises(InvalidInputError, match="after: the last Person of the prev"):
                pf.people.page(limit=2, after=wrong)  # type: ignore[arg-type]
        # A page's bounds say what was given: "5" was said as 5, in range
        with pytest.raises(InvalidInputError, match=r"not limit='5', offset=0"):
            pf.people.history("5")  # type: ignore[arg-type]


def test_a_persons_faces_page_by_place_so_a_face_moved_meanwhile_skips_no_other(
        settings: Settings, analyzer: FaceAnalyzer, pf: Pgface, tmp_path: Path) -> None:
    """Probe webpeople23: a face split off by another client while the person's page showed
    their first page shifted the offset of the next, and one face was never shown."""
    enrol(pf, tmp_path, *FOLDERS)
    faces = sorted(f for name in FOLDERS for f in face_ids(pf, name))
    pf.people.name_faces(faces, "obama", move=True)  # one person of them all
    assert len(faces) >= 5, faces
    with TestClient(create_app(settings, analyzer)) as client:
        url = "/api/people/obama/faces"

        def by_place(limit: int) -> list[int]:
            listed, after = [], None
            while True:
                page = client.get(url, params={
                    "limit": limit, **({"after": after} if after is not None else {})}).json()
                listed += [f["face_id"] for f in page["faces"]]
                assert page["total"] == len(faces)
                after = page["next_after"]
                if after is None:
                    return listed
                assert page["next_offset"] is None or page["offset"] == 0
                assert after == listed[-1]

        for limit in (1, 2, len(faces) - 1, len(faces), len(faces) + 1):
            assert by_place(limit) == faces
        first = client.get(url, params={"limit": 2}).json()
        assert [f["face_id"] for f in first["faces"]] == faces[:2]
        assert first["next_offset"] == 2 and first["next_after"] == faces[1]
        pf.people.split("obama", faces[:1])  # another client, meanwhile
        second = client.get(url, params={"limit": 2, "after": first["next_after"]}).json()
        assert [f["face_id"] for f in second["faces"]] == faces[2:4]
        assert second["next_offset"] is None and second["total"] == len(faces) - 1
        by_offset = client.get(url, params={"limit": 2, "offset": 2}).json()
        assert [f["face_id"] for f in by_offset["faces"]] == faces[3:5]  # faces[2] skipped
        for bad in ("nonsense", "-1", str(2**63)):
            assert client.get(url, params={"after": bad}).status_code == 422, bad
        page, _ = pf.people.face_page("obama", limit=100, after=faces[2])
        assert [f.face_id for f in page] == faces[3:]
        with pytest.raises(InvalidInputError, match="after: a face id"):
            pf.people.face_page("obama", after=-1)


def test_people_whose_names_the_path_cannot_carry_are_found_by_name(
        settings: Settings, analyzer: FaceAnalyzer, pf: Pgface, tmp_path: Path) -> None:
    enrol(pf, tmp_path, "obama", "biden", "kit_harington")
    ids = {n: pf.people.get(n).id for n in ("obama", "biden", "kit_harington")}
    with TestClient(create_app(settings, analyzer)) as client:
        for old, new in (("obama", "review"), ("biden", "AC/DC"), ("kit_harington", "history")):
            assert client.patch(f"/api/people/{ids[old]}", json={"name": new}).status_code == 200
        assert client.post(f"/api/people/{ids['kit_harington']}/hide").status_code == 200
        # The path reaches the review queue, a route that is not there, and the history.
        assert "people" in client.get("/api/people/review").json()
        assert client.get("/api/people/AC%2FDC").status_code == 404
        assert "changes" in client.get("/api/people/history").json()
        for old, new in (("obama", "review"), ("biden", "AC/DC"), ("kit_harington", "history")):
            found = client.get("/api/people", params={"name": new}).json()
            assert found["total"] == 1 and found["next_offset"] is None, found
            person = found["people"][0]
            assert (person["id"], person["name"]) == (ids[old], new)
            assert person["faces"] == pf.people.get(ids[old]).faces
        assert client.get("/api/people", params={"name": "history"}).json()["people"][0][
            "hidden"] is True
        nobody = client.get("/api/people", params={"name": "nobody"}).json()
        assert nobody["total"] == 0 and nobody["people"] == []
        # A name is a name: digits are not taken for an id.
        assert client.get("/api/people", params={"name": str(ids["obama"])}).json()["total"] == 0
        assert client.get("/api/people", params={"name": ""}).status_code == 422
    assert pf.people.named("AC/DC").id == ids["biden"]


def test_the_people_list_finds_people_by_part_of_their_name(
        settings: Settings, analyzer: FaceAnalyzer, pf: Pgface, tmp_path: Path,
        env: dict[str, str]) -> None:
    """A library of many people is a long grid: reaching one of 526 was scrolling, or typing
    their whole name into the address (probe webpeople23). `name_has` finds them by any part
    of the name, in any case, in the grid's order and pages."""
    enrol(pf, tmp_path, *FOLDERS)
    pf.people.rename("rose_leslie", "Rosé Leslie")
    pf.people.rename("alex_lacamoire", "ALEX Lacamoire")
    pf.people.rename("biden", "100% Biden")
    loner = pf.people.split("obama", face_ids(pf, "obama")[:1]).id  # unnamed: no name to find
    with TestClient(create_app(settings, analyzer)) as client:
        def found(text: str, **more: object) -> tuple[list[str], int]:
            page = client.get("/api/people", params={"unnamed": "true", "name_has": text,
                                                     **more})
            assert page.status_code == 200, page.text
            return [p["name"] for p in page.json()["people"]], page.json()["total"]

        everyone = [p["name"] for p in client.get("/api/people?unnamed=true").json()["people"]]
        assert None in everyone and len(everyone) == len(FOLDERS) + 1
        # in any case, in the grid's order (named first, then the most faces)
        le = [n for n in everyone if n and "le" in n.lower()]
        assert sorted(le) == ["ALEX Lacamoire", "Rosé Leslie"]
        assert found("LE") == (le, 2)
        assert found("rosé") == (["Rosé Leslie"], 1)
        assert found("ROSÉ") == (["Rosé Leslie"], 1)  # É lowered by the server too
        assert found("rose\u0301") == (["Rosé Leslie"], 1)  # typed decomposed (macOS)
        # folded as names typed in other case are: a final sigma, a sharp s (lower() alone
        # missed both, probe reprobe28)
        pf.people.rename("kit_harington", "Οδυσσέας Straße")
        assert found("ΟΔΥΣΣΈΑΣ") == (["Οδυσσέας Straße"], 1)
        assert found("STRASSE") == (["Οδυσσέας Straße"], 1)
        pf.people.rename("Οδυσσέας Straße", "kit_harington")
        # the text is text: % and _ are no wildcards
        assert found("%") == (["100% Biden"], 1)
        assert found("_") == (["kit_harington"], 1)
        assert found("nobody") == ([], 0)
        # pages by place, as the grid reads them
        with_a = [n for n in everyone if n and "a" in n.lower()]
        assert len(with_a) == 3
        listed, after = [], None
        while True:
            page = client.get("/api/people", params={
                "name_has": "a", "limit": 1, **({"after": after} if after else {})}).json()
            listed += [p["name"] for p in page["people"]]
            assert page["total"] == len(with_a)
            after = page["next_after"]
            if after is None:
                break
        assert listed == with_a
        # hidden people only with hidden=true, as without a filter
        client.post("/api/people/kit_harington/hide")
        assert found("_") == ([], 0)
        assert found("_", hidden="true") == (["kit_harington"], 1)
        # one person by their whole name, or by a part: not both; nothing to find is refused
        both = client.get("/api/people", params={"name": "obama", "name_has": "ob"})
        assert both.status_code == 400 and "name_has" in both.json()["error"]["message"]
        assert client.get("/api/people", params={"name_has": ""}).status_code == 422
        blank = client.get("/api/people", params={"name_has": " \u200b "})
        assert blank.status_code == 400 and "nothing to find" in blank.json()["error"]["message"]
    # the Python API takes it too, and the command line's list (by name)
    page, total = pf.people.page(name_has="OBA")
    assert ([p.name for p in page], total) == (["obama"], 1) and loner not in [p.id for p in page]
    assert [p.name for p in pf.people.list(unnamed=True, name_has="le")] == [
        "ALEX Lacamoire", "Rosé Leslie"]
    listed = CliRunner().invoke(app, ["people", "list", "--name-has", "LE", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert [p["name"] for p in json.loads(listed.stdout)] == ["ALEX Lacamoire", "Rosé Leslie"]
    blank = CliRunner().invoke(app, ["people", "list", "--name-has", " "], env=env)
    assert blank.exit_code == 1 and "--name-has: nothing to find" in blank.stderr, blank.output
    # a hidden person whose name holds it is said to be there (an empty table said nothing)
    pf.people.hide("kit_harington")
    none_shown = CliRunner().invoke(app, ["people", "list", "--name-has", "_"], env=env)
    assert none_shown.exit_code == 0, none_shown.output
    assert "kit_harington" not in none_shown.stdout
    assert "and 1 hidden person whose name holds it: --hidden lists them" in " ".join(
        none_shown.stderr.split())
    for wrong in (b"oba", "a\x00b"):
        with pytest.raises(InvalidInputError, match="name_has"):
            pf.people.page(name_has=wrong)  # type: ignore[arg-type]


def test_a_persons_photos_page_by_place_so_a_photo_taken_meanwhile_skips_no_other(
        settings: Settings, analyzer: FaceAnalyzer, pf: Pgface, tmp_path: Path) -> None:
    """A person's photos paged by offset: a photo of the first page whose face was split off
    meanwhile (on another tab, by another user) shifted the rest, and the next page passed
    one over (probe web23, left alone then for the photos)."""
    enrol(pf, tmp_path, *FOLDERS)
    name = "kit_harington"  # with the photos of two more: a few pages of them
    pf.people.merge(["rose_leslie", "alex_lacamoire"], name, name=name)
    with TestClient(create_app(settings, analyzer)) as client:
        url = f"/api/people/{name}/photos"
        everyone = client.get(url).json()["photos"]
        assert len(everyone) >= 3, everyone

        def by_place(limit: int) -> list[int]:
            listed, after = [], None
            while True:
                page = client.get(url, params={"limit": limit,
                                               **({"after": after} if after else {})}).json()
                listed += [p["photo_id"] for p in page["photos"]]
                after = page["next_after"]
                if after is None:
                    return listed
                assert page["total"] == len(everyone)

        for limit in (1, 2, len(everyone), len(everyone) + 1):
            assert by_place(limit) == [p["photo_id"] for p in everyone]
        # the first photo's faces split off before the second page is asked for
        first = client.get(url, params={"limit": 1}).json()
        assert first["photos"][0]["photo_id"] == everyone[0]["photo_id"]
        pf.people.split(name, everyone[0]["face_ids"])
        second = client.get(url, params={"limit": 1, "after": first["next_after"]}).json()
        assert [p["photo_id"] for p in second["photos"]] == [everyone[1]["photo_id"]]
        assert second["next_offset"] is None and second["total"] == len(everyone) - 1
        by_offset = client.get(url, params={"limit": 1, "offset": 1}).json()
        assert [p["photo_id"] for p in by_offset["photos"]] == [everyone[2]["photo_id"]]
        for bad in ("nonsense", "WzEsMl0", base64.urlsafe_b64encode(
                json.dumps(["2026-01-01T00:00:00", 1]).encode()).decode()):  # no time zone
            refused = client.get(url, params={"after": bad})
            assert refused.status_code == 400 and "after" in refused.json()["error"]["message"]
    # the Python API takes the last photo of a page
    page, total = pf.people.photos(name, limit=1)
    rest, _ = pf.people.photos(name, limit=100, after=page[-1])
    assert [p.photo_id for p in page + rest] == [p["photo_id"] for p in everyone[1:]]
    with pytest.raises(InvalidInputError, match="after: the last PersonPhoto"):
        pf.people.photos(name, after=page[-1].photo_id)  # type: ignore[arg-type]
    # a place no page returns: an id past a bigint was PostgreSQL's "bigint out of range", a
    # time without its zone taken in the server's (probe reprobe30); a Person's as well
    for forged in (dataclasses.replace(page[-1], photo_id=2**70),
                   dataclasses.replace(page[-1], indexed_at=page[-1].indexed_at.replace(
                       tzinfo=None))):
        with pytest.raises(InvalidInputError, match="after: .* of fields no page returns"):
            pf.people.photos(name, after=forged)
    person = pf.people.page(limit=1)[0][0]
    for forged_person in (dataclasses.replace(person, id=2**70),
                          dataclasses.replace(person, faces=2.5)):
        with pytest.raises(InvalidInputError, match="after: .* of fields no page returns"):
            pf.people.page(after=forged_person)


def test_a_persons_faces_and_photos_name_a_path_whose_file_is_there_as_search_does(
        settings: Settings, env: dict[str, str], analyzer: FaceAnalyzer, pf: Pgface,
        tmp_path: Path) -> None:
    """A photo seen at two paths (a copy indexed), the copy deleted without a prune: people
    show, GET /api/people/{ref}/faces and /photos named the copy's path, the newest recorded,
    whose file was gone, while search and the image endpoint took the original, there all
    along (probe living42). They choose as search does: a path whose file exists, else the
    last known one with `missing`."""
    library = tmp_path / "lib"
    (library / "Rose").mkdir(parents=True)
    for photo in photos_of("rose_leslie"):
        shutil.copy(photo, library / "Rose" / photo.name)
    pf.people.enrol(library)
    original = sorted((library / "Rose").iterdir())[0]
    copy = library / "copy.jpg"
    shutil.copy(original, copy)
    pf.index(library)
    copy.unlink()
    [photo_id] = {m.photo_id for face in pf.search(original, top=1).faces
                  for m in face.matches}
    faces = [f for f in pf.people.faces("Rose") if f.photo_id == photo_id]
    paged = [f for f in pf.people.face_page("Rose")[0] if f.photo_id == photo_id]
    photos = [p for p in pf.people.photos("Rose")[0] if p.photo_id == photo_id]
    assert faces and paged and photos
    for listed in (*faces, *paged, *photos):
        assert (listed.path, listed.missing) == (str(original), False), listed
    with TestClient(create_app(settings, analyzer)) as client:
        for url, key in (("/api/people/Rose/faces", "faces"),
                         ("/api/people/Rose/photos", "photos")):
            listed = [f for f in client.get(url).json()[key] if f["photo_id"] == photo_id]
            assert [(f["path"], f["missing"]) for f in listed] == [
                (str(original), False)] * len(listed), listed
    shown = json.loads(CliRunner().invoke(app, ["people", "show", "Rose", "--json"],
                                          env=env).output)["face_list"]
    assert {(f["path"], f["missing"]) for f in shown if f["photo_id"] == photo_id} == {
        (str(original), False)}
    # none of its files left: missing, at the last path known, as search says
    original.unlink()
    [match] = [m for face in pf.search(photos_of("rose_leslie")[0], top=1).faces
               for m in face.matches if m.photo_id == photo_id]
    for listed in (*[f for f in pf.people.face_page("Rose")[0] if f.photo_id == photo_id],
                   *[p for p in pf.people.photos("Rose")[0] if p.photo_id == photo_id]):
        assert (listed.path, listed.missing) == (match.path, True), (listed, match)
    table = CliRunner().invoke(app, ["people", "show", "Rose"],
                               env={**env, "COLUMNS": "200"}).output
    assert "(missing: file gone)" in table, table
