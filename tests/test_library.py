"""A library that stays true: paths follow files (move, copy, delete, prune, remove), packs are
explicit (a second pack analyses what it has not seen), file names are kept whatever their
bytes, and databases of the previous schema migrate in place. Real PostgreSQL and models."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib.resources
import json
import logging
import os
import pickle
import re
import shutil
import subprocess
import sys
import threading
import time
import typing
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psycopg
import pytest
from conftest import PHOTOS, in_pgface_schema, require_data, turned_pack
from PIL import Image
from typer.testing import CliRunner

from pgface import PersonConflict, Pgface, Settings, library
from pgface.cli import app
from pgface.db import api_keys, people_store, sql, store
from pgface.db.connection import DatabaseError, migrate, migrations
from pgface.errors import (
    ContentError,
    ImageError,
    InvalidInputError,
    ModelPackError,
    NotFoundError,
    PgfaceError,
)
from pgface.library import LINK_GONE_MISSING, build_analyzer
from pgface.models.analysis import FaceAnalyzer
from pgface.models.packs import sample_photos

runner = CliRunner()


def counts(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM photos), (SELECT count(*) FROM faces)").fetchone()


def stored_paths(url: str) -> dict[bytes, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT path_bytes, photo_id FROM photo_paths").fetchall()
    return {bytes(raw): photo_id for raw, photo_id in rows}


def faces_of_file(url: str, path: Path) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM faces f JOIN photo_paths pp ON pp.photo_id = f.photo_id "
            "WHERE pp.path_bytes = %s", [os.fsencode(path.resolve())]).fetchone()[0]


@pytest.fixture
def library_folder(tmp_path: Path) -> Path:
    """A writable copy of the labelled people's photos (obama, biden, kit, rose)."""
    people = require_data(PHOTOS) / "people"
    folder = tmp_path / "library"
    for name in ("obama", "biden", "kit_harington", "rose_leslie"):
        # not the shared files' read-only mode: tests write over these copies
        shutil.copytree(people / name, folder / name, copy_function=shutil.copyfile)
    for sub in [folder, *folder.iterdir()]:
        sub.chmod(0o755)
    return folder


def obama_matches(pf: Pgface) -> list:
    result = pf.search(PHOTOS / "queries" / "obama1.jpg")
    return [m for face in result.faces for m in face.matches]


def test_moved_file_gets_its_new_path_and_no_duplicate(
        pf: Pgface, database_url: str, library_folder: Path, tmp_path: Path) -> None:
    first = pf.index([library_folder])
    assert first.indexed > 0 and not first.failures
    before = counts(database_url)
    old = library_folder / "obama" / "obama.jpg"
    moved = tmp_path / "elsewhere" / "obama-moved.jpg"
    moved.parent.mkdir()
    old.rename(moved)

    again = pf.index([moved.parent])

    assert (again.indexed, again.skipped, again.moved) == (0, 1, 1)
    assert counts(database_url) == before  # no photo or face twice
    paths = stored_paths(database_url)
    assert os.fsencode(moved.resolve()) in paths
    assert os.fsencode(old.resolve()) not in paths  # the old path is gone, so it is dropped
    found = {m.path for m in obama_matches(pf)}
    assert str(moved.resolve()) in found and str(old.resolve()) not in found

    # A photo and its copy moved together are two files moved, as "already indexed" counts
    # files (it said "4 already indexed (3 moved or renamed)", every one followed: library61)
    copy = moved.with_name("copy.jpg")
    shutil.copyfile(moved, copy)
    assert pf.index([copy]).skipped == 1
    together = tmp_path / "together"
    moved.parent.rename(together)
    again = pf.index([together])
    assert (again.indexed, again.skipped, again.moved) == (0, 2, 2)
    assert {os.fsencode((together / n).resolve()) for n in ("obama-moved.jpg", "copy.jpg")} \
        <= set(stored_paths(database_url))


def test_copy_keeps_both_paths(pf: Pgface, database_url: str, library_folder: Path,
                               tmp_path: Path) -> None:
    pf.index([library_folder])
    before = counts(database_url)
    original = library_folder / "obama" / "obama2.jpg"
    copy = tmp_path / "copies" / "same.jpg"
    copy.parent.mkdir()
    shutil.copyfile(original, copy)

    report = pf.index([copy.parent])

    assert (report.indexed, report.skipped) == (0, 1) and counts(database_url) == before
    paths = stored_paths(database_url)
    assert paths[os.fsencode(copy.resolve())] == paths[os.fsencode(original.resolve())]


def test_deleted_file_is_flagged_then_pruned(pf: Pgface, database_url: str,
                                             library_folder: Path) -> None:
    pf.index([library_folder])
    photos, faces = counts(database_url)
    gone = library_folder / "obama" / "obama2.jpg"
    gone_faces = faces_of_file(database_url, gone)
    assert gone_faces >= 1
    gone.unlink()

    flagged = [m for m in obama_matches(pf) if m.path == str(gone.resolve())]
    assert flagged and all(m.missing for m in flagged)  # never a silent dead link
    kept = [m for m in obama_matches(pf) if m.path != str(gone.resolve())]
    assert kept and not any(m.missing for m in kept)

    report = pf.index([library_folder], prune=True)

    assert report.removed is not None
    assert (report.removed.photos, report.removed.faces, report.removed.paths) == (
        1, gone_faces, 1)
    assert counts(database_url) == (photos - 1, faces - gone_faces)
    assert str(gone.resolve()) not in {m.path for m in obama_matches(pf)}
    # Pruning again finds nothing more.
    again = pf.index([library_folder], prune=True)
    assert (again.removed.photos, again.removed.paths) == (0, 0)


def test_prune_reaches_the_folders_the_library_links_to(
        pf: Pgface, database_url: str, library_folder: Path, tmp_path: Path) -> None:
    """A photo under a linked folder is stored at its real path, outside the library given:
    pruning the library prunes there too."""
    phone = tmp_path / "phone"
    shutil.move(library_folder / "biden", phone)
    (library_folder / "Phone").symlink_to(phone)
    pf.index([library_folder])
    photos, _ = counts(database_url)
    gone = sorted(phone.iterdir())[0]
    gone_faces = faces_of_file(database_url, gone)
    gone.unlink()

    report = pf.index([library_folder], prune=True)

    assert (report.removed.photos, report.removed.faces, report.removed.paths) == (
        1, gone_faces, 1)
    assert os.fsencode(gone.resolve()) not in stored_paths(database_url)
    assert counts(database_url)[0] == photos - 1


def _indexed_through_a_link_then_gone(pf: Pgface, database_url: str, source: Path,
                                      folder: Path, link: Path, given: list[Path]
                                      ) -> tuple[int, int]:
    """SOURCE's photos moved to FOLDER, which LINK leads to, indexed (the paths GIVEN); then
    the link and the folder deleted: the library's photos then, and how many FOLDER held."""
    shutil.move(source, folder)
    link.symlink_to(folder)
    pf.index(given)
    photos, _ = counts(database_url)
    inside = len(list(folder.iterdir()))
    link.unlink()
    shutil.rmtree(folder)
    return photos, inside


def test_remove_of_a_link_that_is_gone_forgets_where_it_led(
        pf: Pgface, database_url: str, library_folder: Path, tmp_path: Path) -> None:
    """Probe living36: `home/trip -> real/trip` indexed through the link, then link and folder
    deleted: `pgface remove home/trip` forgot nothing ("0 photos ... 0 paths forgotten",
    exit 0), where a link still there is followed; the link records say where it led."""
    trip = tmp_path / "real" / "trip"
    trip.parent.mkdir()
    photos, in_trip = _indexed_through_a_link_then_gone(
        pf, database_url, library_folder / "biden", trip, library_folder / "trip",
        [library_folder])
    removal = pf.remove([library_folder / "trip"])
    assert (removal.photos, removal.paths) == (in_trip, in_trip)
    assert counts(database_url)[0] == photos - in_trip
    assert not [p for p in stored_paths(database_url) if p.startswith(os.fsencode(trip))]
    # a path that is gone and was no link forgets what is stored under it, as before
    assert pf.remove([library_folder / "never-there"]).photos == 0
    # the link deleted alone, the folder it led to still there (and indexed directly): its
    # photos stay, and the removal says where (probe reprobe36: they left search, names and
    # all, for the link)
    obama = tmp_path / "real" / "obama"
    shutil.move(library_folder / "obama", obama)
    (library_folder / "obama").symlink_to(obama)
    pf.index([library_folder, obama])
    photos, _ = counts(database_url)
    (library_folder / "obama").unlink()
    removal = pf.remove([library_folder / "obama"])
    assert (removal.photos, removal.paths, removal.linked_still_there) == (0, 0, [str(obama)])
    assert counts(database_url)[0] == photos
    # a folder given that held such a link, the link and the folder it led to both gone: their
    # photos are forgotten with the folder's (probe reprobe37: `remove albums` forgot nothing,
    # with no word, where `remove albums/kit` forgot them)
    albums = tmp_path / "albums"
    albums.mkdir()
    photos, in_kit = _indexed_through_a_link_then_gone(
        pf, database_url, library_folder / "kit_harington", tmp_path / "real" / "kit",
        albums / "kit", [albums])
    removal = pf.remove([albums])
    assert (removal.photos, removal.paths) == (in_kit, in_kit)
    assert counts(database_url)[0] == photos - in_kit


def test_prune_reaches_the_folders_the_library_linked_to_before(
        pf: Pgface, database_url: str, library_folder: Path, tmp_path: Path) -> None:
    """A link pointed to another folder: the old folder's photos were left where no prune of
    the library looked, their files gone or not, and nothing said so."""
    old, new = tmp_path / "old-phone", tmp_path / "new-phone"
    shutil.move(library_folder / "biden", old)
    shutil.move(library_folder / "kit_harington", new)
    link = library_folder / "Phone"
    link.symlink_to(old)
    pf.index([library_folder])
    link.unlink()
    link.symlink_to(new)
    kept = pf.index([library_folder], prune=True)  # the old folder's files are all there
    assert kept.removed.photos == 0 and kept.not_pruned == []
    gone = sorted(old.iterdir())[0]
    gone_faces = faces_of_file(database_url, gone)
    gone.unlink()

    report = pf.index([library_folder], prune=True)

    assert (report.removed.photos, report.removed.faces) == (1, gone_faces)
    assert os.fsencode(gone.resolve()) not in stored_paths(database_url)
    shutil.rmtree(old)  # the old folder gone whole: said, as a missing folder given is
    report = pf.index([library_folder], prune=True)
    assert report.removed.photos == 0 and report.not_pruned == [str(old.resolve())]
    pf.remove([old])  # forgotten by hand: nothing left to say
    assert pf.index([library_folder], prune=True).not_pruned == []


def test_a_library_given_as_a_link_pointed_elsewhere_is_pruned_where_it_pointed(
        pf: Pgface, database_url: str, library_folder: Path, tmp_path: Path) -> None:
    """~/Pictures a link to a disk, then to another (probe living18): the old disk's photos
    whose files went stayed stored, found by searches, with nothing said, though a link
    inside the library pointed elsewhere is pruned where it pointed before."""
    old, new = tmp_path / "old-disk", tmp_path / "new-disk"
    shutil.move(library_folder / "biden", old)
    shutil.move(library_folder / "kit_harington", new)
    pictures = tmp_path / "Pictures"
    pictures.symlink_to(old)
    pf.index([pictures], prune=True)
    photos, _ = counts(database_url)
    gone = sorted(old.iterdir())[0]
    gone_faces = faces_of_file(database_url, gone)
    gone.unlink()
    pictures.unlink()
    pictures.symlink_to(new)

    report = pf.index([pictures], prune=True)

    assert (report.removed.photos, report.removed.faces) == (1, gone_faces)
    assert os.fsencode(gone.resolve()) not in stored_paths(database_url)
    assert counts(database_url)[0] == photos - 1 + len(list(new.iterdir()))
    shutil.rmtree(old)  # the old disk gone whole: said, as a missing folder given is
    assert pf.index([pictures], prune=True).not_pruned == [str(old.resolve())]


def linked_disks(library_folder: Path, tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """Three disks made of the library's people (old, new, inner), `library/Phone -> old` and
    `old/inner -> inner`: (old, new, inner, the Phone link)."""
    old, new, inner = tmp_path / "old-disk", tmp_path / "new-disk", tmp_path / "inner-disk"
    shutil.move(library_folder / "biden", old)
    shutil.move(library_folder / "kit_harington", new)
    shutil.move(library_folder / "rose_leslie", inner)
    (old / "inner").symlink_to(inner)
    phone = library_folder / "Phone"
    phone.symlink_to(old)
    return old, new, inner, phone


def test_a_link_is_pruned_where_it_pointed_whichever_folder_above_it_is_given(
        pf: Pgface, database_url: str, library_folder: Path, tmp_path: Path) -> None:
    """Probe living19: a link was recorded under the folder the run walked, so once `Phone`
    pointed elsewhere, `index home/Phone --prune` missed where it pointed when only a run of
    `home` had recorded it; and a link inside the old target (`RO1/inner -> C1`) was recorded
    under RO1, which no later run gave: C1's deleted photos were never pruned."""
    old, new, inner, phone = linked_disks(library_folder, tmp_path)
    pf.index([library_folder])  # the whole library; Phone alone is never given before
    gone = [sorted(old.glob("*.jpg"))[0], sorted(inner.iterdir())[0]]
    gone_faces = sum(faces_of_file(database_url, g) for g in gone)
    for path in gone:
        path.unlink()
    phone.unlink()
    phone.symlink_to(new)

    report = pf.index([phone], prune=True)

    assert (report.removed.photos, report.removed.faces) == (2, gone_faces)
    assert not {os.fsencode(g.resolve()) for g in gone} & set(stored_paths(database_url))
    shutil.rmtree(inner)  # the inner disk gone whole: said, as a missing folder given is
    assert pf.index([phone], prune=True).not_pruned == [str(inner.resolve())]
    assert pf.index([library_folder], prune=True).not_pruned == [str(inner.resolve())]


@pytest.mark.parametrize("moved_to", ["library2", "archive/library"])
def test_a_library_renamed_keeps_its_links_records(
        pf: Pgface, database_url: str, library_folder: Path, tmp_path: Path, moved_to: str
) -> None:
    """Probe living20: `mv home home2`, `Phone` pointed elsewhere and a photo deleted from
    where it pointed before: `index home2 --prune` found the photos of home moved, but the
    link's record stayed at home/Phone, under no folder given: the deleted photo stayed stored
    (found by searches as missing), and nothing said so."""
    old, new, _, _ = linked_disks(library_folder, tmp_path)
    pf.index([library_folder])
    gone = sorted(old.glob("*.jpg"))[0]
    gone_faces = faces_of_file(database_url, gone)
    gone.unlink()
    (tmp_path / moved_to).parent.mkdir(exist_ok=True)
    renamed = library_folder.rename(tmp_path / moved_to)
    (renamed / "Phone").unlink()
    (renamed / "Phone").symlink_to(new)

    report = pf.index([renamed], prune=True)

    assert report.moved > 0
    assert (report.removed.photos, report.removed.faces) == (1, gone_faces)
    assert os.fsencode(gone.resolve()) not in stored_paths(database_url)
    shutil.rmtree(old)  # and once the old disk is gone whole, it is said
    assert pf.index([renamed], prune=True).not_pruned == [str(old.resolve())]


def test_a_folder_of_links_renamed_is_pruned_where_its_links_pointed(
        pf: Pgface, database_url: str, library_folder: Path, tmp_path: Path) -> None:
    """Probe reprobe20: a folder holding links alone (~/Pictures of `Phone -> /disk`) renamed
    has no photo of its own to be found moved, so its links' records stayed where it was:
    the photo deleted where Phone pointed before stayed stored, said nowhere."""
    old, new, _, _ = linked_disks(library_folder, tmp_path)
    pictures = tmp_path / "Pictures"
    pictures.mkdir()
    (library_folder / "Phone").rename(pictures / "Phone")
    pf.index([pictures])
    gone = sorted(old.glob("*.jpg"))[0]
    gone_faces = faces_of_file(database_url, gone)
    gone.unlink()
    renamed = pictures.rename(tmp_path / "Photos")
    (renamed / "Phone").unlink()
    (renamed / "Phone").symlink_to(new)

    report = pf.index([renamed], prune=True)

    assert (report.removed.photos, report.removed.faces) == (1, gone_faces)
    assert os.fsencode(gone.resolve()) not in stored_paths(database_url)
    shutil.rmtree(old)  # gone whole: said, as a warning (no folder given leads to it)
    other = tmp_path / "other-library"
    other.mkdir()
    shutil.copy(sample_photos()[0], other)
    for given in (renamed, other):  # a prune of another library exited 1 for it (reprobe21)
        report = pf.index([given], prune=True)
        assert report.not_pruned == [] and [(w.source, w.reason) for w in report.warnings] == [
            (str(old.resolve()), LINK_GONE_MISSING)]


def test_links_recorded_before_by_the_folder_walked_are_still_pruned(
        pf: Pgface, database_url: str, library_folder: Path, tmp_path: Path) -> None:
    """Rows written before links were recorded where they are hold the folder the run walked
    (`library -> old`, and a link inside old under old itself): found as they were."""
    old, new, inner, phone = linked_disks(library_folder, tmp_path)
    pf.index([library_folder])
    with psycopg.connect(in_pgface_schema(database_url), autocommit=True) as conn:
        conn.execute("DELETE FROM linked_folders")
        conn.execute("INSERT INTO linked_folders (root, folder) VALUES (%s, %s), (%s, %s)",
                     [os.fsencode(library_folder.resolve()), os.fsencode(old.resolve()),
                      os.fsencode(old.resolve()), os.fsencode(inner.resolve())])
    gone = [sorted(old.glob("*.jpg"))[0], sorted(inner.iterdir())[0]]
    for path in gone:
        path.unlink()
    phone.unlink()
    phone.symlink_to(new)

    assert pf.index([library_folder], prune=True).removed.photos == 2
    assert not {os.fsencode(g.resolve()) for g in gone} & set(stored_paths(database_url))


def test_a_folder_linked_under_one_root_is_not_pruned_under_another(
        pf: Pgface, library_folder: Path, tmp_path: Path) -> None:
    """Indexed together, A's link was recorded as B's too: `index B --prune` pruned there, and
    said the folder missing once it went. A link under a subfolder counts for its parent."""
    phone = tmp_path / "phone"
    shutil.move(library_folder / "biden", phone)
    (library_folder / "obama" / "Phone").symlink_to(phone)
    other = library_folder / "rose_leslie"
    pf.index([library_folder / "obama", other])
    shutil.rmtree(phone)
    assert pf.index([other], prune=True).not_pruned == []
    assert pf.index([library_folder], prune=True).not_pruned == [str(phone.resolve())]


def test_a_folder_moved_and_linked_back_has_its_photos_once(
        pf: Pgface, database_url: str, library_folder: Path, tmp_path: Path) -> None:
    """A folder moved to another disk, a link left in its place: its stored paths still
    opened (through the link) so no run ever forgot them; each photo had two paths, and an
    edited photo's former version stayed at the old one, found by search beside the new."""
    from PIL import Image

    pf.index([library_folder])
    photos, faces = counts(database_url)
    disk = tmp_path / "disk2"
    disk.mkdir()
    shutil.move(library_folder / "obama", disk / "obama")
    (library_folder / "obama").symlink_to(disk / "obama")
    inside = os.fsencode(library_folder / "obama") + b"/"

    moved = pf.index([library_folder], prune=True)
    paths = stored_paths(database_url)
    assert not [raw for raw in paths if raw.startswith(inside)]  # each photo once, where it is
    assert counts(database_url) == (photos, faces) and moved.removed.photos == 0
    edited = disk / "obama" / "obama2.jpg"
    with Image.open(edited) as image:
        image.resize((image.width // 2, image.height // 2)).save(edited)
    pf.index([library_folder], prune=True)
    assert counts(database_url)[0] == photos  # the former version went
    found = [m.path for m in obama_matches(pf)]
    assert sorted(found) == sorted(set(found)) and str(edited) in found
    # A file replaced by a link to another photo: its photo is gone from there.
    replaced = library_folder / "biden" / sorted(os.listdir(library_folder / "biden"))[0]
    before = stored_paths(database_url)[os.fsencode(replaced)]
    replaced.unlink()
    replaced.symlink_to(edited)
    pf.index([library_folder], prune=True)
    assert os.fsencode(replaced) not in stored_paths(database_url)
    assert before not in stored_paths(database_url).values()


def test_prune_leaves_a_path_that_is_missing_or_an_empty_folder(
        pf: Pgface, database_url: str, library_folder: Path) -> None:
    """A share not mounted is a missing folder, or an empty one (its mount point): pruning it
    would forget every photo on it with its people. Prune leaves it and says so; `remove`
    forgets its photos where the folder was deleted on purpose."""
    folder = library_folder / "obama"
    pf.index([folder])
    with psycopg.connect(database_url) as conn:
        pf.people.name_faces(conn.execute("SELECT min(id) FROM faces").fetchone()[0], "Barack")
    before = counts(database_url)
    shutil.rmtree(folder)

    report = pf.index([folder], prune=True)

    assert report.failures == []  # pruning a folder that is gone is no failure
    assert report.not_pruned == [str(folder)]
    assert (report.removed.photos, report.removed.paths) == (0, 0)
    assert counts(database_url) == before
    folder.mkdir()  # the mount point, without its share
    assert pf.index([folder], prune=True).not_pruned == [str(folder)]
    assert counts(database_url) == before and pf.people.get("Barack").faces == 1

    (folder / "notes.txt").write_text("a folder with anything in it is there")
    report = pf.index([folder], prune=True)
    assert report.not_pruned == [] and report.removed.photos == before[0]
    assert counts(database_url) == (0, 0)


def test_remove_by_folder_and_by_file(pf: Pgface, database_url: str, library_folder: Path,
                                      tmp_path: Path) -> None:
    pf.index([library_folder])
    photos, faces = counts(database_url)
    biden = library_folder / "biden"
    biden_faces = sum(faces_of_file(database_url, p) for p in biden.iterdir())
    biden_photos = len(list(biden.iterdir()))

    removal = pf.remove([biden])

    assert (removal.photos, removal.faces, removal.paths) == (
        biden_photos, biden_faces, biden_photos)
    assert counts(database_url) == (photos - biden_photos, faces - biden_faces)
    assert all(p.exists() for p in biden.iterdir())  # files are never touched

    # A photo that also lives elsewhere only loses the path removed.
    copy = tmp_path / "copy.jpg"
    shutil.copyfile(library_folder / "obama" / "obama.jpg", copy)
    pf.index([copy])
    one = pf.remove([library_folder / "obama" / "obama.jpg"])
    assert (one.photos, one.paths) == (0, 1)
    assert {m.path for m in obama_matches(pf)} >= {str(copy.resolve())}


def test_one_path_given_alone_is_one_path(pf: Pgface, database_url: str, library_folder: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         env: dict[str, str]) -> None:
    # A str is a sequence of one-character paths: `remove("/library/obama/obama.jpg")` once
    # forgot every photo under "/", and `index("obama.jpg")` indexed the folder "." as well.
    obama = library_folder / "obama"
    monkeypatch.chdir(obama)
    report = pf.index("obama.jpg")
    assert (report.files, report.indexed, report.failures) == (1, 1, [])
    report = pf.index(library_folder / "biden")
    assert report.indexed == len(list((library_folder / "biden").iterdir()))
    photos, faces = counts(database_url)
    assert set(pf.photo_faces(str(obama / "obama.jpg"))) == {str(obama / "obama.jpg")}
    # a folder, as index and remove take one: every photo in it (it was {}, probe apiclient)
    in_folder = pf.photo_faces(library_folder / "biden")
    assert set(in_folder) == {str(p.resolve()) for p in (library_folder / "biden").iterdir()}
    assert pf.photo_faces(library_folder).keys() > in_folder.keys()
    # the same face asked twice is equal (its embedding, an array, made == raise: pyapi39)
    again = pf.photo_faces(library_folder / "biden")
    assert again == in_folder and next(iter(again.values()))[0] in next(iter(in_folder.values()))

    removal = pf.remove(str(obama / "obama.jpg"))

    assert (removal.photos, removal.paths) == (1, 1)
    assert counts(database_url)[0] == photos - 1  # Biden's photos stay
    # The allowed folders too: "/" among one-character roots let every file through.
    outside = pf.index(obama / "obama.jpg", within=str(library_folder / "biden"))
    assert [f.reason for f in outside.failures] == ["outside the allowed folders (a symlink?)"]
    assert counts(database_url)[0] == photos - 1
    # "" taken as a path is the current folder: remove("") forgot every photo under it.
    for call in (lambda: pf.remove(""), lambda: pf.remove(["", "x.jpg"]),
                 lambda: pf.index(b""), lambda: pf.photo_faces(""),
                 lambda: pf.people.enrol("")):  # enrol("") enrolled the current folder
        with pytest.raises(InvalidInputError, match="an empty path"):
            call()
    with pytest.raises(InvalidInputError, match="folder: give a path, not None"):
        pf.people.enrol(None)  # type: ignore[arg-type]  # os.fspath's TypeError
    for call in (lambda: pf.index("obama.jpg", progress=5),  # type: ignore[arg-type]
                 lambda: pf.people.enrol(library_folder, progress=5)):  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="progress: a function .*, not an int"):
            call()  # "'int' object is not callable" from the first batch
    # a function of the report alone: a TypeError from inside the run after its first batch,
    # the rest not indexed (probe apiclient); refused before any file is read
    for call in (lambda: pf.index(library_folder, progress=lambda report: None),
                 lambda: pf.people.enrol(library_folder, progress=lambda report: None)):
        with pytest.raises(InvalidInputError, match=r"called as progress\(report, failure\)"):
            call()
    assert counts(database_url)[0] == photos - 1
    # a PathLike whose __fspath__ gives bytes was pathlib's TypeError from deep inside
    class BytesPath(os.PathLike):
        def __init__(self, path: Path) -> None:
            self.path = path

        def __fspath__(self) -> bytes:
            return os.fsencode(self.path)

    biden = sorted((library_folder / "biden").iterdir())[0]
    assert set(pf.photo_faces(BytesPath(biden))) == {str(biden.resolve())}
    assert pf.search(BytesPath(biden), top=1).faces
    # a photo's name that is no text came back as the result's source (probe apiclient)
    with pytest.raises(InvalidInputError, match="name: the text errors and the result call"):
        pf.load_photo(biden.read_bytes(), name=5)  # type: ignore[arg-type]
    assert pf.load_photo(biden.read_bytes(), name="upload.jpg").source == "upload.jpg"
    # and a Pgface sent to a process pool says what to do (it was "cannot pickle 'Core'")
    with pytest.raises(PgfaceError, match="open one in each worker process"):
        pickle.dumps(pf)
    # ... and so do its people (`pool.map(pf.people.identify, files)`: an AttributeError of a
    # lambda, no PgfaceError; probe pyapp36), acting as anyone
    for people in (pf.people, pf.people.acting_as("batch")):
        for sent in (people, people.identify):
            with pytest.raises(PgfaceError, match="open a Pgface in each worker process"):
                pickle.dumps(sent)
    monkeypatch.chdir(library_folder)
    empty = runner.invoke(app, ["remove", ""], env=env)
    assert empty.exit_code == 2 and "an empty path" in empty.output
    assert counts(database_url)[0] == photos - 1  # Biden's photos, under the current folder
    # Probe security31: a file checked when its folder was walked, then swapped for a link
    # to one outside the allowed folders before it was read, was read through the link and
    # stored at its real path. The file opened is checked again: in one process and in two.
    secret = library_folder / "kit_harington" / next(
        p.name for p in (library_folder / "kit_harington").iterdir())
    for processes in (1, 2):
        roots = library_folder / f"allowed{processes}"
        roots.mkdir()
        for n, photo in enumerate(sorted((library_folder / "rose_leslie").iterdir())):
            Image.open(photo).convert("RGB").save(roots / f"{n}.jpg", quality=80 + processes)
        shutil.copyfile(obama / "obama.jpg", roots / "swapped.jpg")
        (roots / "a-link-out.jpg").symlink_to(secret)  # said as the folder is listed
        before = counts(database_url)
        link = roots / "swapped.jpg"

        def swap(*_: object, link: Path = link) -> None:  # at the listing's first failure
            if not link.is_symlink():
                link.unlink()
                link.symlink_to(secret)

        pf.settings.index_processes, pf.settings.photo_batch = processes, 1
        swapped = pf.index(roots, progress=swap, within=str(roots))
        pf.settings.index_processes, pf.settings.photo_batch = 1, Settings().photo_batch
        assert [(Path(f.source).name, f.reason) for f in swapped.failures] == [
            (name, "outside the allowed folders (a symlink?)")
            for name in ("a-link-out.jpg", "swapped.jpg")], processes
        assert counts(database_url)[0] == before[0] + swapped.indexed > before[0]
        assert not pf.photo_faces(str(secret)), processes


def test_cli_prune_and_remove_say_how_many(env: dict[str, str], pf: Pgface,
                                           library_folder: Path, database_url: str) -> None:
    done = runner.invoke(app, ["index", "--quiet", str(library_folder)], env=env)
    assert done.exit_code == 0, done.output
    for photo in sorted((library_folder / "obama").iterdir())[:2]:  # renamed: said so
        photo.rename(photo.with_name("renamed-" + photo.name))
    again = runner.invoke(app, ["index", str(library_folder)], env=env)
    assert again.exit_code == 0, again.output
    assert "already indexed (2 moved or renamed)" in again.stderr
    gone = library_folder / "rose_leslie"
    gone_faces = sum(faces_of_file(database_url, p) for p in gone.iterdir())
    gone_photos = len(list(gone.iterdir()))
    # Named faces go with their photos, said so (a prune emptied people without a word);
    # a hidden person's are not told of.
    rose = [f.face_id for faces in pf.photo_faces(sorted(gone.iterdir())).values()
            for f in faces]
    pf.people.name_faces(rose[:-1], "Rose")
    pf.people.name_faces(rose[-1:], "Not a face")
    pf.people.hide("Not a face")
    kit = library_folder / "kit_harington"
    pf.people.name_faces([f.face_id for faces in pf.photo_faces(sorted(kit.iterdir())).values()
                          for f in faces],
                         "Kit")
    shutil.rmtree(gone)

    pruned = runner.invoke(app, ["index", "--json", str(library_folder), "--prune"], env=env)
    assert pruned.exit_code == 0, pruned.output
    removed = json.loads(pruned.stdout)["removed"]
    assert removed == {"photos": gone_photos, "faces": gone_faces, "paths": gone_photos,
                       "people_kept": 0, "named": ["Rose"], "failed_files": 0,
                       "waiting": 0, "waiting_for": [], "faces_by_pack": {
                           "buffalo_sc": gone_faces}, "linked_still_there": []}
    assert json.loads(pruned.stdout)["not_pruned"] == []

    # A folder given that is gone (a share not mounted?) is left, said so, and exit 1.
    biden = library_folder / "biden"
    shutil.rmtree(biden)
    held = runner.invoke(app, ["index", "--quiet", str(biden), "--prune"], env=env)
    assert held.exit_code == 1
    assert (f"warning: {biden}: missing, empty or unreadable, so the photos stored under it "
            f"were not pruned") in " ".join(held.stderr.split())
    assert "pruned: 0 photos" in held.stderr

    kit_photos = len(list(kit.iterdir()))
    text = runner.invoke(app, ["remove", str(kit)], env=env)
    assert text.exit_code == 0, text.output
    assert f"{kit_photos} photos and their" in text.stdout
    assert "forgotten; named faces among them: 'Kit' (their names stay kept" in " ".join(
        text.stdout.split())

    # A folder of links: indexed, its photos are stored where the links lead; removed, it
    # forgets none of them, which is said with where they are (it said only "0 paths
    # forgotten", probe docs28).
    album = library_folder.parent / "album-of-links"
    album.mkdir()
    target = next((library_folder / "obama").iterdir())
    (album / "best.jpg").symlink_to(target)
    assert runner.invoke(app, ["index", "--quiet", str(album)], env=env).exit_code == 0
    # links no photo was indexed through are not the one named: one into /proc (the note
    # said `-> /proc/5921`, the remove's own process: probe docsrun), one broken
    (album / "system").symlink_to("/proc/self")
    (album / "gone.jpg").symlink_to(album / "nothing-here.jpg")
    links = runner.invoke(app, ["remove", str(album)], env=env)
    assert links.exit_code == 0 and "0 paths forgotten" in links.stdout, links.output
    assert (f"note: {album} holds links ({album / 'best.jpg'} -> {target.resolve()}); a photo "
            f"indexed through a link is stored where it leads: remove that path to forget it"
            ) in " ".join(links.stderr.split()), links.stderr
    forgotten = runner.invoke(app, ["remove", str(target)], env=env)
    assert "1 path forgotten" in forgotten.stdout and "note:" not in forgotten.stderr


@pytest.fixture(scope="module")
def other_pack(analyzer: FaceAnalyzer, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[FaceAnalyzer]:
    """buffalo_sc's two files laid out as a pack of another name (no calibrated threshold)."""
    folder = tmp_path_factory.mktemp("packs") / "other_pack"
    folder.mkdir()
    for onnx in analyzer.pack.folder.glob("*.onnx"):
        shutil.copyfile(onnx, folder / onnx.name)
    yield build_analyzer(Settings(model_pack=str(folder)))


def test_second_pack_analyses_every_photo_and_explains_an_empty_pack(
        pf: Pgface, settings: Settings, other_pack: FaceAnalyzer, library_folder: Path,
        database_url: str) -> None:
    first = pf.index([library_folder])
    assert other_pack.model_name == "other_pack"
    second = Pgface(settings.model_copy(update={"model_pack": str(other_pack.pack.folder)}),
                    analyzer=other_pack)
    with second:
        empty = second.search(PHOTOS / "queries" / "obama1.jpg")
        assert all(not face.matches for face in empty.faces)
        assert any("pgface index --pending" in n and f"0 of the {first.indexed}" in n
                   for n in empty.notices)
        assert any("no calibrated threshold" in n for n in empty.notices)
        stats = second.stats()
        assert stats["threshold_calibrated"] is False
        assert any("pgface index --pending" in n for n in stats["notices"])

        # Half by path, the rest from the stored paths: nothing is "already indexed".
        part = second.index([library_folder / "obama"])
        assert part.indexed == len(list((library_folder / "obama").iterdir()))
        rest = second.index_pending()
        assert part.indexed + rest.indexed == first.indexed and rest.skipped == 0
        assert second.index([library_folder]).indexed == 0

        found = second.search(PHOTOS / "queries" / "obama1.jpg")
        assert any(face.matches for face in found.faces)
        assert not any("--pending" in n for n in found.notices)
        per_model = second.stats()["faces_per_model"]
        assert per_model["other_pack"] == per_model["buffalo_sc"] == first.faces
    assert pf.stats()["notices"] == []  # the calibrated pack has seen every photo


def test_pending_names_each_photo_it_cannot_analyse_because_its_file_is_gone(
        pf: Pgface, settings: Settings, other_pack: FaceAnalyzer, library_folder: Path,
        tmp_path: Path, env: dict[str, str]) -> None:
    """Probe packs21: `index --pending`, which every search's notice advises, passed over a
    stored photo whose file was gone (moved elsewhere, or deleted) without a word, and the
    notice went on advising it."""
    pf.index([library_folder])
    deleted, moved = sorted((library_folder / "obama").iterdir())[:2]
    deleted.unlink()
    moved.rename(tmp_path / moved.name)  # out of the library: not indexed there yet
    with Pgface(settings.model_copy(update={"model_pack": str(other_pack.pack.folder)}),
                analyzer=other_pack) as second:
        report = second.index_pending()
        assert sorted((f.source, f.reason) for f in report.failures) == sorted(
            (str(p.resolve()), library.PENDING_GONE) for p in (deleted, moved))
        assert report.indexed == pf.stats()["photos"] - 2
        assert second.index([tmp_path / moved.name]).indexed == 1  # where it went
        assert [f.source for f in second.index_pending().failures] == [str(deleted.resolve())]
    # and printed, as every failure is (only --json had them: probe reprobe22)
    done = runner.invoke(app, ["index", "--pending"],
                         env={**env, "PGFACE_MODEL_PACK": str(other_pack.pack.folder)})
    assert done.exit_code == 1 and f"failed {deleted.resolve()}: file gone" in done.output, (
        done.output)


def test_people_another_pack_found_are_not_listed_with_no_faces(
        pf: Pgface, settings: Settings, other_pack: FaceAnalyzer, library_folder: Path) -> None:
    """Clustered under another pack, unnamed people hold only that pack's faces: under the
    active pack they were reviewed and counted with 0 faces and no cover."""
    pf.index([library_folder])
    with Pgface(settings.model_copy(update={"model_pack": str(other_pack.pack.folder)}),
                analyzer=other_pack) as second:
        second.index([library_folder])
        assert second.people.cluster().founded >= 2
        found, total = second.people.review(limit=100)
        assert total == len(found) >= 2 and all(p.faces for p in found)
        assert second.stats()["people"] == total
    queue, total = pf.people.review(limit=100)
    assert (queue, total) == ([], 0)
    listed, total = pf.people.page(limit=100)
    assert (listed, total) == ([], 0)
    assert pf.people.list(unnamed=True) == [] and pf.stats()["people"] == 0


def test_a_server_that_takes_no_writes_reads_the_kept_counts_without_adding_them_up(
        pf: Pgface, library_folder: Path, database_url: str) -> None:
    """A standby (here: a session whose transactions are read-only, the same refusal) cannot
    add the counts up: the page reads their sum all the same."""
    pf.index([library_folder])
    pf.people.cluster()
    expected = shown_face_counts(database_url, "buffalo_sc")
    someone = next(iter(expected))
    with psycopg.connect(in_pgface_schema(database_url)) as conn:  # changes that add up to 0
        conn.execute("INSERT INTO person_face_counts (person_id, pack, faces) "
                     "SELECT %s, 'buffalo_sc', (-1) ^ g FROM generate_series(1, 3000) g",
                     [someone])
    read_only = in_pgface_schema(database_url) + "%20-cdefault_transaction_read_only%3Don"
    with psycopg.connect(read_only) as conn:
        assert not people_store.add_up_face_counts(conn, 1)
        rows, total = people_store.people_page(conn, None, False, 1000, 0, "buffalo_sc")
    assert {r["id"]: r["faces"] for r in rows if r["faces"]} == expected
    assert kept_face_counts(database_url, "buffalo_sc") == expected
    with psycopg.connect(in_pgface_schema(database_url)) as conn:  # a primary adds them up
        assert people_store.add_up_face_counts(conn, 1)


def test_a_pack_that_starts_while_a_people_change_is_open_counts_that_change(
        pf: Pgface, settings: Settings, other_pack: FaceAnalyzer, library_folder: Path,
        database_url: str) -> None:
    """A pack's first analysis counts every person's faces under its view; a people change
    open meanwhile read the pack as not there yet, and the count read the face with its former
    person: the face was counted under neither person (a helper's probe). The first analysis
    now waits for such a change to end."""
    pf.index([library_folder / "obama", library_folder / "biden"])
    pf.people.cluster()
    with psycopg.connect(in_pgface_schema(database_url)) as conn, \
            ThreadPoolExecutor(1) as thread, \
            Pgface(settings.model_copy(update={"model_pack": str(other_pack.pack.folder)}),
                   analyzer=other_pack) as other:
        moved = conn.execute("INSERT INTO people (name) VALUES ('Held') RETURNING id"
                             ).fetchone()[0]
        conn.execute("UPDATE faces SET person_id = %s WHERE id = (SELECT min(id) FROM faces "
                     "WHERE person_id IS NOT NULL)", [moved])
        indexing = thread.submit(other.index, [library_folder / "kit_harington"])
        with psycopg.connect(in_pgface_schema(database_url), autocommit=True) as watch:
            deadline = time.monotonic() + 120
            while not indexing.done() and time.monotonic() < deadline and not watch.execute(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted "
                    "AND relation = 'person_face_counts'::regclass").fetchone()[0]:
                time.sleep(0.1)
        conn.commit()  # the change ends: after the first analysis (before), or while it waits
        assert indexing.result(timeout=120).indexed > 0
    for pack in ("buffalo_sc", "*", "other_pack"):
        assert kept_face_counts(database_url, pack) == shown_face_counts(database_url, pack)


def test_a_folder_named_like_a_pack_the_library_holds_but_with_another_recognizer_is_refused(
        pf: Pgface, settings: Settings, tmp_path: Path, env: dict[str, str]) -> None:
    """A pack is known by its folder's name: another recognizer under the name buffalo_sc wrote
    its embeddings among buffalo_sc's, and the same photo scored -0.05 against itself."""
    onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
    from onnx import numpy_helper

    pf.index(sample_photos()[:1])
    stats = pf.stats()
    impostor = tmp_path / "elsewhere" / "buffalo_sc"
    impostor.mkdir(parents=True)
    shutil.copyfile(pf.analyzer.pack.detector, impostor / pf.analyzer.pack.detector.name)
    # Other weights in the same graph, under the same file name: a model that loads and runs.
    model = onnx.load(str(pf.analyzer.pack.recognizer))
    largest = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    weights = numpy_helper.to_array(largest)
    largest.CopyFrom(numpy_helper.from_array(weights[::-1].copy(), largest.name))
    onnx.save(model, str(impostor / pf.analyzer.pack.recognizer.name))
    # buffalo_sc's recognizer is known: a folder of that name holding another is refused as it is
    # read (a damaged copy stored zero vectors as buffalo_sc's, probe reprobe39)
    with pytest.raises(ModelPackError) as refused:
        with Pgface(settings.model_copy(update={"model_pack": str(impostor)})) as there:
            there.index(sample_photos())
    assert str(refused.value).startswith(
        f"model pack folder {impostor} is named buffalo_sc, but w600k_mbf.onnx is not "
        f"buffalo_sc's recognizer (sha256 "), refused.value
    done = CliRunner().invoke(app, ["index", str(sample_photos()[-1])],
                              env={**env, "PGFACE_MODEL_PACK": str(impostor)})
    assert done.exit_code == 1 and "a damaged copy?" in done.stderr, done.output
    # Another pack the library holds, whose files pgface does not know: its recorded digest.
    mine = tmp_path / "elsewhere" / "mine"
    shutil.copytree(pf.analyzer.pack.folder, mine)
    with Pgface(settings.model_copy(update={"model_pack": str(mine)})) as there:
        assert there.index(sample_photos()[:1]).indexed == 1
        held = there.stats()["faces_per_model"]
    shutil.copyfile(impostor / pf.analyzer.pack.recognizer.name,
                    mine / pf.analyzer.pack.recognizer.name)
    with Pgface(settings.model_copy(update={"model_pack": str(mine)})) as there, \
            pytest.raises(ModelPackError) as refused:
        there.index(sample_photos())
    message = str(refused.value)
    assert "'mine'" in message and str(mine) in message, message
    assert "give this one a name of its own" in message
    done = CliRunner().invoke(app, ["index", str(sample_photos()[-1])],
                              env={**env, "PGFACE_MODEL_PACK": str(mine)})
    assert done.exit_code == 1 and "not the 'mine'" in done.stderr, done.output
    assert pf.stats()["faces_per_model"] == held  # nothing was written
    # Under a name of its own it is a pack of its own, and the library's buffalo_sc is as it was.
    renamed = impostor.rename(tmp_path / "elsewhere" / "retrained")
    with Pgface(settings.model_copy(update={"model_pack": str(renamed)})) as there:
        assert there.index(sample_photos()[:1]).indexed == 1
        assert there.stats()["faces_per_model"]["retrained"] >= 1
    assert pf.stats()["faces_per_model"]["buffalo_sc"] == stats["faces"]


def test_a_pack_recorded_that_stored_nothing_is_taken_over_but_not_one_storing(
        pf: Pgface) -> None:
    """A first try of a pack with a truncated recognizer recorded its digest, and the name was
    refused ever after, once the file was whole: "not the pack whose embeddings this library
    holds" (none). A record under which nothing was stored is taken over; a store of the
    recorded recognizer under way is not overtaken (the take-over waits for it, then refuses),
    and a store of a recognizer taken over is refused."""
    broken, whole, other = "a" * 64, "b" * 64, "c" * 64
    vector = np.ones(512, dtype=np.float32) / np.sqrt(512)

    def photo(tag: bytes) -> store.PhotoRow:
        sha = hashlib.sha256(tag).digest()
        face = store.FaceRow(vector, [0, 0, 10, 10], [1.0] * 10, 0.9, b"jpeg")
        return store.PhotoRow(sha, f"/photos/{tag.decode()}.jpg", 1, 10, 10, None, [face])

    with pf.pool.connection() as conn:
        assert store.known_pack(conn, "trial", broken, "w600k_mbf.onnx") is None
    with pf.pool.connection() as conn:
        assert store.known_pack(conn, "trial", whole, "w600k_mbf.onnx") is None  # taken over
    with pf.pool.connection() as conn, pytest.raises(ModelPackError,
                                                    match="knows it by another recognizer"):
        store.add_photos(conn, [photo(b"late")], "trial", recognizer_sha256=broken)
    with pf.pool.connection() as writer:
        store.add_photos(writer, [photo(b"stored")], "trial", recognizer_sha256=whole)

        def take_over() -> tuple | None:
            with pf.pool.connection() as conn:
                return store.known_pack(conn, "trial", other, "w600k_mbf.onnx")

        with ThreadPoolExecutor(1) as pool:
            taking = pool.submit(take_over)
            time.sleep(1.0)
            assert not taking.done()  # waits for the store, which has not committed
            writer.commit()
            known = taking.result(timeout=60)
    assert known is not None and known[0] == whole  # refused: the faces stored are whole's
    with pf.pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM faces WHERE model = 'trial'").fetchone() == (1,)
        assert store.known_pack(conn, "trial", whole, "w600k_mbf.onnx") is None
        # what a process that checked the name before the take-over is told when it searches
        with pytest.raises(ModelPackError, match="nothing was compared: start it again"):
            store.check_recognizer(conn, "trial", broken)
        store.check_recognizer(conn, "trial", whole)
    # A role that may only read cannot take a record over: where nothing is stored under the
    # name it goes on (nothing to compare with), where something is it is refused.
    with pf.pool.connection() as conn:
        assert store.known_pack(conn, "unfinished", broken, "w600k_mbf.onnx") is None
    read_only = in_pgface_schema(pf.settings.database_url) + (
        "%20-cdefault_transaction_read_only%3Don")
    with psycopg.connect(read_only) as reader:
        assert store.known_pack(reader, "unfinished", whole, "w600k_mbf.onnx") is None
        assert store.known_pack(reader, "trial", other, "w600k_mbf.onnx")[0] == whole


def test_a_process_whose_pack_name_was_taken_over_since_compares_nothing(
        settings: Settings, analyzer: FaceAnalyzer, tmp_path: Path) -> None:
    """A process that opened a fresh pack name and stored nothing (it searched) went on
    searching with its recognizer once another had taken the name over and stored faces: a
    stored photo scored 0.09 against itself, and identify found nobody."""
    photo = sample_photos()[1]
    mine = tmp_path / "mine" / "fresh"
    mine.mkdir(parents=True)
    for onnx in (analyzer.pack.detector, analyzer.pack.recognizer):
        shutil.copyfile(onnx, mine / onnx.name)
    theirs = turned_pack(analyzer, tmp_path / "theirs" / "fresh")
    with Pgface(settings.model_copy(update={"model_pack": str(mine)})) as first:
        assert first.search(photo).faces[0].matches == []  # checked, recorded, nothing stored
        with Pgface(settings.model_copy(update={"model_pack": str(theirs)})) as second:
            assert second.index([photo]).faces == 1  # the name taken over: nothing was stored
            assert second.search(photo).faces[0].matches[0].similarity > 0.99
        for call in (lambda: first.search(photo), lambda: first.people.identify(photo)):
            with pytest.raises(ModelPackError, match="knows it by another recognizer"):
                call()


def test_notices_follow_photos_another_process_stores(
        pf: Pgface, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The photo counts behind the notices are kept between searches, and counted again once
    PostgreSQL's statistics show another session changed the photos."""
    monkeypatch.setattr(library, "COVERAGE_RECOUNT_S", 0.0)
    pack = pf.analyzer.model_name
    assert pf.pack_coverage(pack) == (0, 0) and pf.notices() == []
    with psycopg.connect(database_url, autocommit=True) as other:
        other.execute("SET search_path TO pgface, public")
        # a photo stored as an index run stores it: with its path (one with none is a former
        # version kept for another pack, which no run can analyse: pack_coverage)
        other.execute("WITH photo AS (INSERT INTO photos (sha256, path, size_bytes, width, "
                      "height, face_count) VALUES (sha256('elsewhere'::bytea), "
                      "'/elsewhere.jpg', 1, 10, 10, 0) RETURNING id) "
                      "INSERT INTO photo_paths (path_bytes, photo_id, path) "
                      "SELECT '/elsewhere.jpg'::bytea, id, '/elsewhere.jpg' FROM photo")
        other.execute("SELECT pg_stat_force_next_flush()")  # statistics sent when idle
    assert pf.pack_coverage(pack) == (1, 0)
    assert any("analysed 0 of the 1 stored photos" in n for n in pf.notices())


def test_people_search_gives_the_librarys_notices_as_search_does(
        settings: Settings, analyzer: FaceAnalyzer, tmp_path: Path) -> None:
    """Probe consistency33: `people search` and People.search said only the photo's own
    notices, where search gave the library's too (a pack that has not analysed every photo,
    a threshold no one calibrated)."""
    uncalibrated = tmp_path / "uncalibrated"
    uncalibrated.mkdir()
    for onnx in (analyzer.pack.detector, analyzer.pack.recognizer):
        shutil.copyfile(onnx, uncalibrated / onnx.name)
    photo = sample_photos()[1]
    with Pgface(settings.model_copy(update={"model_pack": str(uncalibrated)})) as own:
        said = own.search(photo).notices
        assert any("has no calibrated threshold" in notice for notice in said), said
        # the command to calibrate it names the pack as set, its folder's path: its name
        # alone, run from elsewhere, named no pack (probe readme42)
        assert any(f"bench/accuracy.py --skip-seed --pack {uncalibrated}`" in notice
                   for notice in said), said
        assert own.people.search(photo)[0].notices == said
        assert own.people.acting_as("api:x").search(photo)[0].notices == said


def test_file_name_that_is_not_utf8_round_trips(pf: Pgface, env: dict[str, str],
                                               database_url: str, tmp_path: Path) -> None:
    source = require_data(PHOTOS) / "people" / "obama"
    folder = tmp_path / "names"
    folder.mkdir()
    odd = os.path.join(os.fsencode(folder), b"latin\xe9.jpg")
    shutil.copyfile(source / "obama.jpg", odd)
    shutil.copyfile(source / "obama2.jpg", folder / "plain.jpg")

    report = pf.index([folder])

    assert (report.indexed, report.failures) == (2, [])  # the batch's other photo too
    exact = os.path.realpath(odd)
    assert exact in stored_paths(database_url)  # the bytes themselves
    readable = os.fsdecode(exact).encode("utf-8", "surrogateescape").decode(
        "utf-8", "backslashreplace")
    assert readable.endswith("latin\\xe9.jpg")
    assert readable in {m.path for m in obama_matches(pf)}

    shown = runner.invoke(app, ["search", str(PHOTOS / "queries" / "obama1.jpg"), "--json"],
                          env=env)
    assert shown.exit_code == 0, shown.output
    assert "latin\\\\xe9.jpg" in shown.stdout  # JSON of the readable form

    assert pf.index([folder]).skipped == 2  # known again, by its path too
    by_raw = pf.remove([os.fsdecode(odd)])  # the name as the file system has it
    assert (by_raw.photos, by_raw.paths) == (1, 1)
    pf.index([folder])
    by_text = pf.remove([readable])  # or as pgface printed it
    assert (by_text.photos, by_text.paths) == (1, 1)

    # A file whose name is that text itself (a backslash, "xe9"): named, it is that file
    # only (both photos were forgotten), and the text matches the other only while no file
    # of that name exists.
    literal = folder / "latin\\xe9.jpg"
    assert os.path.realpath(literal) == readable
    shutil.copyfile(PHOTOS / "queries" / "obama1.jpg", literal)  # a third content
    assert pf.index([folder]).indexed == 2  # the odd name again, and the literal one
    just_it = pf.remove([str(literal)])
    assert (just_it.photos, just_it.paths) == (1, 1)
    assert exact in stored_paths(database_url)
    literal.unlink()
    assert pf.remove([readable]).paths == 1  # no such file now: the text names the other
    assert exact not in stored_paths(database_url)


def test_a_folder_named_as_shown_is_removed_through_every_door(
        pf: Pgface, env: dict[str, str], settings: Settings, analyzer: FaceAnalyzer,
        database_url: str, tmp_path: Path) -> None:
    """A folder whose name holds a byte that is not UTF-8 is shown `Jos\\xe9`; named so, gone
    (docs/cli.md: a name shown with `\\xNN` escapes may be given as shown), `remove` said
    "0 photos ... 0 paths forgotten" while the same form removed a file in it (probe
    living42): the shown text was matched as a whole path, never as a folder's."""
    from fastapi.testclient import TestClient

    from pgface.api import create_app
    from pgface.paths import readable

    source = require_data(PHOTOS) / "people" / "obama"
    root = tmp_path / "lib"
    sibling = os.path.join(os.fsencode(root), b"Jos\xe9-2")  # after it, and outside it
    os.makedirs(sibling)
    shutil.copyfile(source / "obama2.jpg", os.path.join(sibling, b"a.jpg"))
    assert pf.index([root]).indexed == 1
    an_hour_ago = time.time_ns() - 3600 * 10**9  # a failure is remembered once it is still

    def indexed_then_gone(name: bytes) -> str:
        """A folder NAME under root of a photo and a failed file, indexed and deleted: its
        path as pgface shows it."""
        folder = os.path.join(os.fsencode(root), name)
        os.makedirs(folder)
        shutil.copyfile(source / "obama.jpg", os.path.join(folder, b"a.jpg"))
        bad = os.path.join(folder, b"bad.jpg")
        Path(os.fsdecode(bad)).write_bytes(b"\xff\xd8 not really a JPEG")
        os.utime(bad, ns=(an_hour_ago, an_hour_ago))
        report = pf.index([root])
        assert report.indexed == 1 and len(report.failures) == 1, report
        shutil.rmtree(folder)
        return readable(os.path.realpath(folder))

    def under(url: str, folder: str) -> tuple[list[str], ...]:
        """The stored paths, and the failed files' paths, inside FOLDER as shown."""
        with psycopg.connect(url) as conn:
            return tuple(sorted(r[0] for r in conn.execute(
                f"SELECT path FROM {table} WHERE starts_with(path, %s)", [folder + "/"]))
                for table in ("photo_paths", "failed_files"))

    def sibling_kept() -> None:
        assert os.path.join(os.path.realpath(sibling), b"a.jpg") in stored_paths(database_url)

    # The Python API
    shown = indexed_then_gone(b"Jos\xe9")
    assert shown.endswith("/lib/Jos\\xe9")
    assert under(database_url, shown) == ([shown + "/a.jpg"], [shown + "/bad.jpg"])
    removal = pf.remove(shown)
    assert (removal.photos, removal.paths, removal.failed_files) == (1, 1, 1)
    assert under(database_url, shown) == ([], [])
    sibling_kept()

    # The command line (two bytes that are not UTF-8, the folder given with a trailing "/")
    shown = indexed_then_gone(b"Jos\xe9\xff")
    text = runner.invoke(app, ["remove", shown + "/"], env=env)
    assert text.exit_code == 0, text.output
    assert "1 photo and their" in text.stdout
    assert "1 path and 1 file remembered as failed forgotten" in " ".join(text.stdout.split())
    assert under(database_url, shown) == ([], [])
    sibling_kept()

    # HTTP
    shown = indexed_then_gone(b"Jos\xe9")
    with TestClient(create_app(settings.model_copy(update={"api_roots": [root]}),
                               analyzer)) as client:
        answer = client.post("/api/photos/remove", json={"paths": [shown]})
    assert answer.status_code == 200, answer.text
    assert {k: answer.json()[k] for k in ("photos", "paths", "failed_files")} == {
        "photos": 1, "paths": 1, "failed_files": 1}
    assert under(database_url, shown) == ([], [])
    sibling_kept()

    # A folder named with that very text (a backslash, "xe9") is that folder only, while it
    # is there: as a file's name is.
    shown = indexed_then_gone(b"Jos\xe9")
    literal = root / "Jos\\xe9"
    literal.mkdir()
    shutil.copyfile(PHOTOS / "queries" / "obama1.jpg", literal / "b.jpg")
    assert pf.index([literal]).indexed == 1
    assert pf.remove(str(literal)).paths == 1
    assert under(database_url, shown) == ([shown + "/a.jpg"], [shown + "/bad.jpg"])
    shutil.rmtree(literal)
    assert pf.remove(shown).paths == 1  # no such folder now: the text names the other
    assert under(database_url, shown) == ([], [])
    sibling_kept()


def test_a_deleted_folder_named_like_a_folder_there_shown_so_is_that_one_only(
        pf: Pgface, database_url: str, tmp_path: Path) -> None:
    """A folder literally named `Jos\\xe9` (a backslash, "xe9"), deleted, beside a folder
    b"Jos\\xe9" that is there (shown `Jos\\xe9` too): `remove .../Jos\\xe9` forgot both
    folders' photos (probe reprobe43). The shown form's bytes name a folder only where nothing
    is there at them, as its text does only where nothing is there at the text."""
    source = require_data(PHOTOS) / "people" / "obama"
    root = tmp_path / "lib"
    literal = root / "Jos\\xe9"
    byte_folder = os.path.join(os.fsencode(root), b"Jos\xe9")
    literal.mkdir(parents=True)
    os.makedirs(byte_folder)
    shutil.copyfile(source / "obama.jpg", literal / "a.jpg")
    kept = os.path.join(os.path.realpath(byte_folder), b"b.jpg")
    shutil.copyfile(source / "obama2.jpg", kept)
    assert pf.index([root]).indexed == 2
    shutil.rmtree(literal)

    removal = pf.remove(str(literal))
    assert (removal.photos, removal.paths) == (1, 1)
    assert kept in stored_paths(database_url)  # the folder that is there keeps its photo
    assert pf.stats()["photos"] == 1
    assert pf.remove(os.fsdecode(byte_folder)).paths == 1  # given by its own name
    assert kept not in stored_paths(database_url)


def test_remove_finds_photos_no_path_holds_through_an_index(database_url: str) -> None:
    """`remove` of 200 paths took 19.7 s in a library of 250,000 photos, 10,000 over ten
    minutes (probe scale49): the photos no path holds shown inside each path given as a folder
    were found by starts_with(photos.path, folder), every photo read once per path. Ranges of
    text compared byte by byte (migration 0036's index) find them; a folder is the text
    strictly inside it, whatever the database's collation sorts."""
    migrate(database_url)
    shown = ["/gone/a/x.jpg", "/gone/a/deep/y.jpg", "/gone/ab/z.jpg", "/gone/a0.jpg",
             "/gone/a", "/gone/Ä/é.jpg", "/held/a/w.jpg"]
    with psycopg.connect(in_pgface_schema(database_url), autocommit=True) as conn:
        conn.execute("""INSERT INTO photos (sha256, path, size_bytes, width, height, face_count)
                        SELECT sha256(int8send(g)), '/lib/' || g || '.jpg', 1, 1, 1, 0
                        FROM generate_series(1, 20000) g""")
        conn.execute("""INSERT INTO photo_paths (path_bytes, photo_id, path)
                        SELECT convert_to(path, 'UTF8'), id, path FROM photos""")
        ids = {path: conn.execute(
            "INSERT INTO photos (sha256, path, size_bytes, width, height, face_count) "
            "VALUES (sha256(convert_to(%s, 'UTF8')), %s, 1, 1, 1, 0) RETURNING id",
            [path, path]).fetchone()[0] for path in shown}
        conn.execute("INSERT INTO photo_paths (path_bytes, photo_id, path) "
                     "VALUES ('\\x00', %s, '/held/a/w.jpg')", [ids["/held/a/w.jpg"]])
        conn.execute("ANALYZE photos")
        conn.execute("ANALYZE photo_paths")

        def found(*targets: str) -> list[str]:
            rows = conn.execute(sql.PATHLESS_SHOWN_UNDER, store._shown_under(targets))
            photos = {r[0] for r in rows}
            return sorted(path for path, photo in ids.items() if photo in photos)

        assert found("/gone/a") == ["/gone/a", "/gone/a/deep/y.jpg", "/gone/a/x.jpg"]
        assert found("/gone/a/") == ["/gone/a/deep/y.jpg", "/gone/a/x.jpg"]
        assert found("/gone/a/x.jpg", "/gone/a0.jpg") == ["/gone/a/x.jpg", "/gone/a0.jpg"]
        assert found("/gone/Ä", "/held") == ["/gone/Ä/é.jpg"]
        assert found("/gone") == sorted(set(shown) - {"/held/a/w.jpg"})
        assert found("/lib/1.jpg", "/nowhere") == []
        plan = conn.execute("EXPLAIN (FORMAT JSON) " + sql.PATHLESS_SHOWN_UNDER,
                            store._shown_under([f"/gone/{n}.jpg" for n in range(200)])
                            ).fetchone()[0]

    def scans(node: dict) -> Iterator[dict]:
        yield node
        for child in node.get("Plans", []):
            yield from scans(child)

    photos = [n for n in scans(plan[0]["Plan"]) if n.get("Relation Name") == "photos"]
    # each read through the index on path (a bitmap's heap scan rechecks its condition), not
    # a sequential scan with the folders as a filter
    unindexed = [n["Node Type"] for n in photos
                 if "path" not in n.get("Index Cond", n.get("Recheck Cond", ""))]
    assert unindexed == [], photos


def test_database_of_the_previous_schema_migrates_in_place(empty_database_url: str) -> None:
    database_url = empty_database_url
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, "
                     "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        for version, name, script in migrations():
            if version <= 4:
                conn.execute(script)
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                             [version, name])
        photo_ids = [conn.execute(
            "INSERT INTO photos (sha256, path, size_bytes, width, height, face_count) "
            "VALUES (%s, %s, 1, 10, 10, %s) RETURNING id",
            [bytes([n]) * 32, path, faces]).fetchone()[0]
            for n, path, faces in ((1, "/photos/a.jpg", 1), (2, "/photos/ü/b.jpg", 0))]
        conn.execute(
            "INSERT INTO faces (photo_id, model, embedding, bbox, landmarks, det_score, crop) "
            "VALUES (%s, 'buffalo_sc', %s, '{0,0,1,1}', '{0,0,0,0,0,0,0,0,0,0}', 0.9, '')",
            [photo_ids[0], "[" + ",".join(["0.01"] * 512) + "]"])

    assert migrate(database_url) == [v for v, _, _ in migrations() if v > 4]

    with psycopg.connect(database_url) as conn:
        paths = conn.execute("SELECT photo_id, path_bytes, path FROM photo_paths "
                             "ORDER BY photo_id").fetchall()
        analyses = conn.execute("SELECT photo_id, model, face_count FROM photo_analyses "
                                "ORDER BY photo_id").fetchall()
    assert paths == [(photo_ids[0], b"/photos/a.jpg", "/photos/a.jpg"),
                     (photo_ids[1], "/photos/ü/b.jpg".encode(), "/photos/ü/b.jpg")]
    assert analyses == [(photo_ids[0], "buffalo_sc", 1), (photo_ids[1], "buffalo_sc", 0)]


def test_a_database_a_newer_pgface_migrated_is_refused_by_name(database_url: str) -> None:
    migrate(database_url)
    newest = migrations()[-1][0]
    with psycopg.connect(in_pgface_schema(database_url), autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, 'from_later')",
                     [newest + 1])
    with pytest.raises(DatabaseError, match=f"migration {newest + 1} applied; pgface .* knows "
                                            f"up to {newest}\\): use a pgface that knows "
                                            f"migration {newest + 1} \\(pgface --version"):
        migrate(database_url)
    with psycopg.connect(in_pgface_schema(database_url), autocommit=True) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = %s", [newest + 1])
    assert migrate(database_url) == []


def test_an_upgrade_and_a_wait_for_another_process_upgrading_are_said(
        empty_database_url: str, env: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    # A library opened by a pgface with migrations it lacks was upgraded without a word (16 s
    # of silence on 114,000 faces), and one opened meanwhile waited for it without one.
    url, (before, newest) = empty_database_url, [v for v, _, _ in migrations()[-2:]]
    env = {**env, "PGFACE_DATABASE_URL": url}
    caplog.set_level(logging.WARNING, "pgface")
    assert migrate(url) == [v for v, _, _ in migrations()]
    assert caplog.text == ""  # a new library's first start is no upgrade
    # Another open holding the lock for a moment (every open takes it; an indexing run's
    # processes open together): no upgrade, and none said.
    with ThreadPoolExecutor(1) as pool, psycopg.connect(url) as opening:
        opening.execute(sql.MIGRATIONS_LOCK)
        opened = pool.submit(migrate, url)
        time.sleep(0.5)
        opening.rollback()
        assert opened.result(timeout=60) == []
    assert caplog.text == ""
    unapply = "DELETE FROM schema_migrations WHERE version = %s"
    with psycopg.connect(in_pgface_schema(url), autocommit=True) as conn:
        conn.execute(unapply, [newest])  # as a library of the pgface before it has it
    # the connection closes first, whatever happens: the pool then waits for an open that ends
    with ThreadPoolExecutor(1) as pool, psycopg.connect(url) as upgrading:
        upgrading.execute(sql.MIGRATIONS_LOCK)  # another process upgrading it, for now
        opened = pool.submit(migrate, url)
        deadline = time.monotonic() + 30
        while "waiting for another pgface" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "waiting for another pgface process to finish upgrading" in caplog.text
        assert not opened.done()
        upgrading.rollback()
        assert opened.result(timeout=60) == [newest]
    assert f"upgrading the library from migration {before} to {newest}" in caplog.text
    # The command line says both as notices, on stderr.
    with psycopg.connect(in_pgface_schema(url), autocommit=True) as conn:
        conn.execute(unapply, [newest])
    shown = runner.invoke(app, ["stats", "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    assert (f"notice: upgrading the library from migration {before} to {newest}"
            in shown.stderr)
    assert json.loads(shown.stdout)["photos"] == 0


def test_an_upgrade_waiting_for_a_table_another_session_holds_names_that_session(
        database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    # An upgrade behind another session's open transaction on the library's tables waited in
    # silence, having said only that "a large library takes a while" (probe upgrade22). The
    # newest migration that alters a table is run again (one that only creates a table, as
    # 0030 does, waits for no other session's)
    newest, name = next(m[:2] for m in reversed(migrations())
                        if re.search(r"^ALTER TABLE", m[2], re.MULTILINE))
    migrate(database_url)
    with psycopg.connect(in_pgface_schema(database_url), autocommit=True) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = %s", [newest])
    caplog.set_level(logging.WARNING, "pgface")
    holder_url = in_pgface_schema(database_url)
    with ThreadPoolExecutor(1) as pool, psycopg.connect(
            holder_url, application_name="a psql session") as holder:
        holder_pid = holder.info.backend_pid
        tables = [r[0] for r in holder.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'pgface'")]
        for table in tables:  # whichever the newest migration takes
            holder.execute(f'LOCK TABLE "{table}" IN ROW EXCLUSIVE MODE')
        opened = pool.submit(migrate, database_url)
        deadline = time.monotonic() + 60
        while f"migration {newest:04d}_{name} waits" not in caplog.text and (
                time.monotonic() < deadline) and not opened.done():
            time.sleep(0.05)
        assert not opened.done(), opened.result()
        said = caplog.text
        assert f"process {holder_pid} (application 'a psql session', role " in said, said
        assert "idle in transaction" in said, said
        holder.rollback()
        assert opened.result(timeout=60) == [newest]
    with psycopg.connect(in_pgface_schema(database_url)) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations WHERE version = %s",
                            [newest]).fetchone()[0] == 1


def test_http_prune_remove_and_missing_matches(
        settings: Settings, analyzer: FaceAnalyzer, library_folder: Path) -> None:
    from api_jobs import index_path
    from fastapi.testclient import TestClient

    from pgface.api import create_app

    settings = settings.model_copy(update={"api_roots": [library_folder]})
    query = (PHOTOS / "queries" / "obama1.jpg").read_bytes()
    with TestClient(create_app(settings, analyzer)) as client:
        assert index_path(client, ".")["removed"] is None
        gone = library_folder / "obama" / "obama2.jpg"
        gone.unlink()

        found = client.post("/api/search", files={"file": ("q.jpg", query, "image/jpeg")})
        matches = [m for face in found.json()["faces"] for m in face["matches"]]
        assert {m["path"]: m["missing"] for m in matches}[str(gone.resolve())] is True
        assert found.json()["notices"] == []
        stale = next(m for m in matches if m["missing"])
        assert client.get(f"/api/photos/{stale['photo_id']}/image").status_code == 404
        kept = next(m for m in matches if not m["missing"])
        served = client.get(f"/api/photos/{kept['photo_id']}/image")
        assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
        assert served.content == Path(kept["path"]).read_bytes()

        # A path that became a FIFO is not waited on (reading one waits for a writer).
        fifo = Path(kept["path"])
        fifo.unlink()
        os.mkfifo(fifo)
        answer: list = []
        asking = threading.Thread(target=lambda: answer.append(
            client.get(f"/api/photos/{kept['photo_id']}/image")), daemon=True)
        asking.start()
        asking.join(10)
        waited = asking.is_alive()
        if waited:  # release the reader, so the test ends either way
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            asking.join(30)
        assert not waited, "the request waited on the FIFO"
        assert answer and answer[0].status_code == 404
        fifo.unlink()
        shutil.copy(PHOTOS / "people" / "obama" / fifo.name, fifo)

        pruned = index_path(client, ".", prune=True)
        assert (pruned["removed"]["photos"], pruned["not_pruned"]) == (1, [])
        kit = library_folder / "kit_harington"
        shutil.rmtree(kit)
        kit.mkdir()  # as the mount point of a share not mounted looks: left, and said so
        held = index_path(client, "kit_harington", prune=True)
        assert (held["removed"]["photos"], held["not_pruned"]) == (0, [str(kit)])

        biden = len(list((library_folder / "biden").iterdir()))
        removed = client.post("/api/photos/remove", json={"paths": ["biden"]})
        assert removed.status_code == 200, removed.text
        assert removed.json()["photos"] == removed.json()["paths"] == biden
        assert removed.json()["people_kept"] == 0  # a prune's, documented in both answers
        assert held["removed"]["people_kept"] == 0
        outside = client.post("/api/photos/remove", json={"paths": ["/etc"]})
        assert outside.status_code == 403
    # a server without roots says that removing by path is what it does not do (it said
    # "indexing server-side paths is disabled" of a remove: probe docsrun37)
    with TestClient(create_app(settings.model_copy(update={"api_roots": []}), analyzer)) as bare:
        refused = bare.post("/api/photos/remove", json={"paths": [str(library_folder)]})
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["message"].startswith(
            "removing photos by server-side path is disabled: start the server with --roots")


# A library in the programs that use it: worker processes and threads.

def _embed_in_worker(url: str, photo: str) -> None:
    with Pgface(Settings(database_url=url)) as worker_library:
        worker_library.embed(photo)


def _conflict_in_worker() -> None:
    raise PersonConflict("Ann holds face 3", {"face_ids": [3]})


def test_the_errors_the_library_raises_can_be_caught_by_their_public_names() -> None:
    import pgface

    # raised by open, index (a database gone), search (a bad top), people (a taken face,
    # nothing to undo): each was importable only from a private module
    for name in ("DatabaseError", "InvalidInputError", "PersonConflict", "UndoError"):
        assert name in pgface.__all__
        assert issubclass(getattr(pgface, name), pgface.PgfaceError)
    # Each public name is there, loaded when first used (PEP 562), and listed by dir(); one
    # that is not is an AttributeError naming it
    for name in pgface.__all__:
        assert getattr(pgface, name).__name__ == name and name in dir(pgface), name
    with pytest.raises(AttributeError, match="has no attribute 'Pgfase'"):
        pgface.Pgfase  # noqa: B018
    # The API's type hints reach a user's type checker (PEP 561): without the marker, mypy
    # took every pgface name as Any.
    assert (importlib.resources.files("pgface") / "py.typed").is_file()
    # a URL libpq cannot read was psycopg's ProgrammingError; the settings refuse it by name,
    # and one that reaches the library all the same (model_copy does not validate) is named
    with pytest.raises(pgface.InvalidSettings, match="^setting database_url: not a "
                                                     "database URL PostgreSQL can read"):
        Settings(database_url="not a url")
    with pgface.open(Settings().model_copy(update={"database_url": "not a url"})) as unreadable, \
            pytest.raises(pgface.DatabaseError, match="URL is not one PostgreSQL can read"):
        unreadable.stats()
    # ... with no word of its password, as the settings' refusal (a spaced one was quoted)
    spaced = Settings().model_copy(update={"database_url": "postgresql://u:S3cretPW99 x@h/d"})
    with pgface.open(spaced) as unreadable, pytest.raises(pgface.DatabaseError) as refused:
        unreadable.stats()
    assert "S3cretPW99" not in str(refused.value) and "***" in str(refused.value)


def test_errors_of_a_worker_process_reach_its_pool_whole(pf: Pgface) -> None:
    # An ImageError or a PersonConflict raised in a worker could not be unpickled in the
    # parent (its __init__ takes two arguments): a ProcessPoolExecutor called every job
    # broken, a multiprocessing.Pool hung.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    url = pf.database_url()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as workers:
        failed = workers.submit(_embed_in_worker, url, "/nonexistent/photo.jpg")
        with pytest.raises(ImageError) as raised:
            failed.result(timeout=300)
        assert (raised.value.source, raised.value.reason) == ("/nonexistent/photo.jpg",
                                                              "no such file")
        with pytest.raises(PersonConflict) as conflict:
            workers.submit(_conflict_in_worker).result(timeout=60)
        assert conflict.value.details == {"face_ids": [3]}
        assert str(conflict.value) == "Ann holds face 3"
        # the pool is not broken: the next job runs
        assert workers.submit(os.getpid).result(timeout=60) != os.getpid()


def test_threads_that_open_a_library_together_share_one_pool(
        settings: Settings, analyzer: FaceAnalyzer) -> None:
    # Eight threads' first calls each opened a pool (migrations run eight times, eight times
    # the connections) where one was meant to be shared.
    with Pgface(settings, analyzer=analyzer) as fresh:
        start = threading.Barrier(8)
        pools_seen = []  # held, so that no pool is collected and its id reused

        def first_call() -> None:
            start.wait()
            pools_seen.append(fresh.pool)
            assert fresh.stats()["photos"] >= 0

        threads = [threading.Thread(target=first_call) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(pools_seen) == 8
        assert {id(pool) for pool in pools_seen} == {id(fresh.pool)}


def test_a_people_view_kept_across_close_goes_on_as_its_library_does(pf: Pgface) -> None:
    # The library opens a new pool on its next call after close(); a People view taken before
    # kept the closed pool and failed with psycopg_pool's PoolClosed.
    photo = sample_photos()[0]
    pf.index(photo)
    [faces] = pf.photo_faces(photo).values()
    people = pf.people
    people.name_faces([faces[0].face_id], "Ann")
    pf.close()
    assert [p.name for p in people.list()] == ["Ann"]
    assert people.pool is pf.pool


def test_the_pools_failures_are_pgfaces_errors(pf: Pgface) -> None:
    """psycopg_pool's PoolTimeout (every connection taken, or the database down: after 30 s)
    and PoolClosed (close() while another thread was about to use the pool) came through the
    Python API raw, where every error is a PgfaceError."""
    from psycopg_pool import PoolClosed, PoolTimeout

    pool = pf.pool
    taken = [pool.getconn() for _ in range(pool.max_size)]
    try:
        with pytest.raises(DatabaseError, match="no database connection became free in time: "
                           "the database answers, and none of this process's 8 connections "
                           r"became free: all in use by other calls \(busy\), or being made "
                           "again after the database went away") as busy:
            pool.getconn(timeout=0.2)
        assert isinstance(busy.value, PoolTimeout)  # what code that caught it catches still
    finally:
        for conn in taken:
            pool.putconn(conn)
    pf.close()
    with pytest.raises(DatabaseError, match=r"closed \(close\(\)\) while this call") as closed:
        with pool.connection():
            pass
    assert isinstance(closed.value, PoolClosed)
    assert pf.stats()["faces"] == 0  # the next call opens it again


def test_a_forked_child_is_told_to_open_its_own_pgface(pf: Pgface) -> None:
    """A child forked after the parent had searched hung for ever in OpenVINO's infer (where
    the parent had searched from several threads), or used the parent's connections."""
    photo = sample_photos()[0]
    pf.search(photo)
    child = os.fork()
    if child == 0:  # the child: report by exit code only, never return into pytest
        code = 9
        try:
            pf.search(photo)
            code = 0
        except PgfaceError as exc:
            code = 3 if "child forked from it: open a Pgface in the child" in str(exc) else 4
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 3
    assert pf.search(photo).faces  # the parent's goes on


_FORKED_WORKER = """
import faulthandler, gc, os, sys, time
import psycopg
import pgface

def idle_sessions(pf):  # the backends of the parent's idle pool connections (psycopg_pool's
    # own deque): a count of every session on the database took in the script's own counting
    # sessions, closed and still leaving the server, and autovacuum workers, gone a second
    # later as if the child had ended them (CI, twice)
    return {conn.info.backend_pid for conn in pf.pool._pool}

def alive(pids):
    with psycopg.connect(os.environ["PGFACE_DATABASE_URL"]) as admin:
        return {pid for pid, in admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", [list(pids)])}

pf = pgface.open()
assert pf.search(sys.argv[1]).faces
for how in ("collected", "exit", "closed"):
    before = idle_sessions(pf)
    assert before
    child = os.fork()
    if child == 0:
        faulthandler.dump_traceback_later(60, exit=True)  # a hang ends, said, in 60 s
        if how == "collected":  # pgface.django's forgets the parent's library so
            del pf
            gc.collect()
        elif how == "closed":  # as a worker leaving `with pgface.open() as pf:` does
            pf.close()
        else:
            sys.exit(0)  # as a gunicorn worker ends, Python's finalizing freeing what is left
        os._exit(0)
    _, status = os.waitpid(child, 0)
    time.sleep(1)  # time for a session the child ended to be gone
    print(how, os.waitstatus_to_exitcode(status), len(before - alive(before)), flush=True)
pf.close()
"""


def test_a_forked_worker_that_lets_go_of_the_parents_pgface_ends(env: dict[str, str]) -> None:
    """Probe hygiene39: a worker forked after its parent searched (gunicorn --preload, Celery
    prefork) hung for ever as Python freed the parent's Pgface there: its models' sessions
    waited for the parent's inference threads, at a gc.collect() after pgface.django forgot
    the parent's library, or at the worker's exit though it never used pgface; and one that
    closed the parent's Pgface (leaving `with pgface.open()`) ended its idle sessions."""
    run = subprocess.run([sys.executable, "-c", _FORKED_WORKER, str(sample_photos()[0])],
                         env={**os.environ, **env}, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:3] == ["collected 0 0", "exit 0 0", "closed 0 0"], (
        run.stdout, run.stderr)


_DAEMONS_AT_EXIT = """
import atexit, sys, threading, time
# the application's own exit hook, registered before pgface's (so run after it), takes the
# lock its workers hold around each call
lock = threading.Lock()
atexit.register(lock.acquire)
# and one that analyses a photo in the main thread, which is never unwound: it may
atexit.register(lambda: print("at exit:", len(pf.embed(photo)), "faces", flush=True))
# and one that indexes: the thread pools of a run are shut down by then (concurrent.futures)
def index_at_exit():
    try:
        pf.index([photo])
    except pgface.PgfaceError as exc:
        print("index at exit:", type(exc).__name__, flush=True)
atexit.register(index_at_exit)
import pgface
pf = pgface.open()
photo = sys.argv[1]
pf.embed(photo)  # the models loaded before the threads start
started, refused = threading.Semaphore(0), []
def analyse():
    started.release()
    while True:
        with lock:
            try:
                pf.embed(photo)
            except pgface.InterpreterExiting:
                refused.append(1)
                return
for _ in range(4):
    threading.Thread(target=analyse, daemon=True).start()
for _ in range(4):
    started.acquire()
time.sleep(1.0)
print("main returns", flush=True)
"""


def test_a_program_ends_whole_while_its_daemon_threads_analyse_faces(
        env: dict[str, str]) -> None:
    """Probe pyapi45: a program that returned while its daemon threads were inside a search,
    a compare or an embed died at exit: "terminate called without an active exception",
    SIGABRT (exit status 134), 7 runs of 7, as Python's unwinding of a daemon thread passed
    through the inference library's C++ frames. The exit waits for the analyses under way
    and starts none (models.exiting); a call asked for then raises, so a worker lets go of
    its application's lock (made to wait instead, it held the lock the application's exit
    hook took: the exit hung for ever, probe reprobe48). An index run then, whose thread pools
    concurrent.futures has shut down, raised its RuntimeError, no PgfaceError (reprobe49)."""
    for _ in range(2):
        run = subprocess.run([sys.executable, "-c", _DAEMONS_AT_EXIT, str(sample_photos()[0])],
                             env={**os.environ, **env}, capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 0, run.stderr
        assert re.fullmatch(r"main returns\nindex at exit: InterpreterExiting\n"
                            r"at exit: [1-9]\d* faces\n", run.stdout), (
            run.stdout, run.stderr)
        assert "terminate called" not in run.stderr, run.stderr


def test_pgface_takes_settings_only() -> None:
    # a dict was taken, and failed at the first call: "'dict' object has no attribute ..."
    with pytest.raises(TypeError, match="takes a pgface.Settings, not a dict"):
        Pgface({"threshold": 0.3})  # type: ignore[arg-type]
    # and every error pgface raises on purpose is a PgfaceError, as the README says (probe
    # pyapi62: a plain TypeError); an analyzer of another type failed at the first call
    with pytest.raises(InvalidInputError, match="takes a pgface.Settings, not a str"):
        Pgface("/srv/pgface")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="analyzer is a pgface FaceAnalyzer .*, not a "
                       "str"):
        Pgface(analyzer="buffalo_l")  # type: ignore[arg-type]


def test_the_python_api_checks_its_actor_and_its_faces_and_takes_any_bytes(pf: Pgface) -> None:
    """Probe pyapi62: acting_as stored any actor (bytes as PostgreSQL's hex of them, a number,
    a newline and a terminal's colour code as they were, a NUL as the database's error, ""
    as the default); suggest left out a face id no face has, where every other verb on faces
    says it is gone; a bytearray or memoryview of a photo's bytes was "not a photo"; a
    content error lost its stat when pickled; a conflict told a Python caller the command
    line's and HTTP's spellings only."""
    for actor, said in ((b"app", "an actor is text"), (5, "an actor is text"),
                        ("a\nb", "control characters"), ("a\x1b[31mRED", "control characters"),
                        ("a\0b", "control characters"), ("", "cannot be blank"),
                        ("  ", "cannot be blank"), ("x" * 301, "at most 300 characters")):
        with pytest.raises(InvalidInputError, match=said):
            pf.people.acting_as(actor)  # type: ignore[arg-type]
    yao = next(p for p in sample_photos() if p.name == "yaoming.jpg")
    pf.index([yao])
    [face] = pf.photo_faces([yao])[str(yao.resolve())]
    people = pf.people.acting_as("app:alice")
    people.name_faces([face.face_id], "Yao")
    assert pf.people.history()[0].actor == "app:alice"
    # the HTTP API's actor: "api:" and a key's name of the longest a key may have
    longest = "api:" + "k" * api_keys.MAX_KEY_NAME_CHARS
    pf.people.acting_as(longest).rename("Yao", "Yao Ming")
    assert pf.people.history()[0].actor == longest

    assert list(pf.people.suggest([face.face_id])) == [face.face_id]
    with pytest.raises(NotFoundError, match="no face with id 999999999") as gone:
        pf.people.suggest([face.face_id, 999999999])
    assert gone.value.missing == "face"

    data = yao.read_bytes()
    as_bytes = pf.search(data).to_dict()
    for given in (bytearray(data), memoryview(data)):
        assert pf.search(given).to_dict() == as_bytes

    error = ContentError("a.jpg", "file is empty", os.stat(yao))
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy), copy.info) == (ContentError, str(error), error.info)

    with pytest.raises(PersonConflict, match="move=True from Python"):
        pf.people.name_faces([face.face_id], "Ming", refuse_held=True)


def kept_face_counts(url: str, pack: str) -> dict[int, int]:
    """Each person's faces under PACK as the people page reads them (migration 0018)."""
    with psycopg.connect(in_pgface_schema(url)) as conn:
        return dict(conn.execute(
            "SELECT person_id, sum(faces)::bigint FROM person_face_counts WHERE pack = %s "
            "GROUP BY person_id HAVING sum(faces) <> 0", [pack]).fetchall())


def shown_face_counts(url: str, pack: str) -> dict[int, int]:
    """Each person's faces under PACK counted from the faces themselves ('*': as a pack that
    has analysed nothing shows them)."""
    shown = people_store.SHOWN_FACE
    with psycopg.connect(in_pgface_schema(url)) as conn:
        return dict(conn.execute(
            f"SELECT person_id, count(*) FROM faces f WHERE person_id IS NOT NULL AND {shown} "
            "GROUP BY person_id", {"model": pack}).fetchall())


def first_pack_face_counts(url: str) -> dict[int, int]:
    """Each person's faces as a pack that analysed nothing shows them, counted here: in each
    photo, those of the first pack (by name) that analysed it."""
    with psycopg.connect(in_pgface_schema(url)) as conn:
        packs: dict[int, list[str]] = {}
        for photo_id, model in conn.execute("SELECT photo_id, model FROM photo_analyses"):
            packs.setdefault(photo_id, []).append(model)
        faces = conn.execute("SELECT person_id, photo_id, model FROM faces "
                             "WHERE person_id IS NOT NULL").fetchall()
    counts: Counter[int] = Counter(person for person, photo, model in faces
                                   if model == min(packs[photo], key=str.encode))
    return dict(counts)


def test_the_kept_face_counts_follow_every_change_under_every_pack(
        pf: Pgface, settings: Settings, other_pack: FaceAnalyzer, library_folder: Path,
        database_url: str) -> None:
    """The people page reads each person's faces from counts triggers keep (migration 0018)
    instead of counting them: after each kind of change, under each pack, they must be the
    faces themselves, and the page must say them."""

    def same(*packs: str) -> None:
        for pack in packs:
            assert kept_face_counts(database_url, pack) == shown_face_counts(database_url, pack)

    pf.index([library_folder])
    same("buffalo_sc", "*", "other_pack")  # a pack that analysed nothing sees every face
    assert pf.people.cluster().founded >= 3
    same("buffalo_sc", "*")
    people, _ = pf.people.page(limit=100)
    first, second, third = people[:3]
    pf.people.rename(first.id, "First")
    pf.people.merge(second.id, first.id)
    moved = pf.people.faces(third.id)[0].face_id
    pf.people.name_faces([moved], "First", move=True)
    pf.people.split("First", [moved], name="Split off")
    pf.people.delete(third.id)
    pf.people.undo()  # the deleted person's faces come back to them
    same("buffalo_sc", "*")

    with Pgface(settings.model_copy(update={"model_pack": str(other_pack.pack.folder)}),
                analyzer=other_pack) as other:
        other.index([library_folder / "obama"])  # some photos analysed by both packs
        same("buffalo_sc", "*", "other_pack")
        with psycopg.connect(in_pgface_schema(database_url)) as conn:  # people carried over
            assert conn.execute("SELECT count(*) FROM faces WHERE model = 'other_pack' "
                                "AND person_id IS NOT NULL").fetchone()[0] > 0
        other.people.cluster(full=True)
        same("buffalo_sc", "*", "other_pack")
        other.index([library_folder])
        same("buffalo_sc", "*", "other_pack")
        listed, _ = other.people.page(limit=1000)
        assert {p.id: p.faces for p in listed if p.faces} == shown_face_counts(
            database_url, "other_pack")

    # A third pack (a_third_pack: first by name) analyses Obama's photos: three packs hold each
    # of their faces. Where the pack in use has not analysed a photo (a pack that analysed
    # nothing yet, '*'), each face is shown once (it was once per other pack: twice).
    third = other_pack.pack.folder.parent / "a_third_pack"
    if not third.exists():
        shutil.copytree(other_pack.pack.folder, third)
    with Pgface(settings.model_copy(update={"model_pack": str(third)})) as trying:
        trying.index([library_folder / "obama"])
    same("buffalo_sc", "*", "other_pack", "a_third_pack")
    assert kept_face_counts(database_url, "*") == first_pack_face_counts(database_url)
    unused = other_pack.pack.folder.parent / "unused_pack"
    if not unused.exists():
        shutil.copytree(other_pack.pack.folder, unused)
    with Pgface(settings.model_copy(update={"model_pack": str(unused)})) as fresh:
        listed, _ = fresh.people.page(limit=1000)
        assert {p.id: p.faces for p in listed if p.faces} == first_pack_face_counts(
            database_url)

    # Photos three packs analysed, their faces people's under each, removed at once.
    pf.remove([library_folder / "obama"])
    same("buffalo_sc", "*", "other_pack", "a_third_pack")
    # A write from a session with another search path (psql, an application) counts too.
    with psycopg.connect(database_url) as conn:
        conn.execute("SET search_path TO public")
        conn.execute("UPDATE pgface.faces SET person_id = NULL WHERE id = "
                     "(SELECT min(id) FROM pgface.faces WHERE person_id IS NOT NULL)")
    same("buffalo_sc", "*", "other_pack")

    with psycopg.connect(in_pgface_schema(database_url)) as conn:
        assert people_store.add_up_face_counts(conn, 1)
        conn.commit()
        assert conn.execute("SELECT count(*) FROM person_face_counts WHERE pending"
                            ).fetchone()[0] == 0
        assert not people_store.add_up_face_counts(conn, 1)
    same("buffalo_sc", "*", "other_pack")
    with psycopg.connect(in_pgface_schema(database_url)) as conn:  # drifted, then made again
        conn.execute("INSERT INTO person_face_counts (person_id, pack, faces) "
                     "SELECT min(id), 'buffalo_sc', 5 FROM people")
        conn.commit()
        assert kept_face_counts(database_url, "buffalo_sc") != shown_face_counts(
            database_url, "buffalo_sc")
        conn.execute("SELECT pgface_recount_person_faces()")
    same("buffalo_sc", "*", "other_pack")
    listed, total = pf.people.page(limit=1000)
    assert {p.id: p.faces for p in listed if p.faces} == shown_face_counts(
        database_url, "buffalo_sc")
    assert total == len(listed)


def page_order_from_faces(url: str, pack: str, named: bool | None, hidden: bool
                          ) -> list[tuple[int, str | None, int]]:
    """The people page's people, (id, name, faces) in its order, from the faces themselves:
    named first, then the most faces, then by name and id; an unnamed person without a face
    shown is nobody to list."""
    counts = shown_face_counts(url, pack)
    with psycopg.connect(in_pgface_schema(url)) as conn:
        people = conn.execute("SELECT id, name, hidden FROM people").fetchall()
    listed = [(pid, name, counts.get(pid, 0)) for pid, name, is_hidden in people
              if (named is None or (name is not None) == named) and (hidden or not is_hidden)
              and (name is not None or counts.get(pid, 0) > 0)]
    return sorted(listed, key=lambda p: (p[1] is None, -p[2], p[1] or "", p[0]))


def assert_pages_in_order(library: Pgface, url: str, pack: str) -> None:
    """Every filter of the people page, walked 2 at a time by place and 3 at a time by offset,
    lists the people of page_order_from_faces, with that total on every page."""
    for named in (None, True, False):
        for hidden in (False, True):
            expected = page_order_from_faces(url, pack, named, hidden)
            walked, after = [], None
            while True:
                page, total = library.people.page(named=named, hidden=hidden, limit=2,
                                                  after=after)
                assert total == len(expected), (named, hidden)
                if not page:
                    break
                walked += [(p.id, p.name, p.faces) for p in page]
                after = page[-1]
            assert walked == expected, (named, hidden)
            for offset in range(0, len(expected) + 1, 3):
                page, total = library.people.page(named=named, hidden=hidden, limit=3,
                                                  offset=offset)
                assert [(p.id, p.name, p.faces) for p in page] == expected[offset:offset + 3]


def test_the_people_page_reads_people_in_order_from_added_up_and_pending_counts(
        pf: Pgface, settings: Settings, other_pack: FaceAnalyzer, library_folder: Path,
        database_url: str) -> None:
    """Unnamed people whose counts are added up are read in the page's order from an index
    (migration 0021); named people, and people with changes pending, are summed: every filter
    and every way of paging must list the people the faces say, in the page's order, with the
    right total, whether the counts are all added up, all pending, or some of each."""

    def add_up() -> None:
        with psycopg.connect(in_pgface_schema(database_url)) as conn:
            people_store.add_up_face_counts(conn, 1)
            assert conn.execute("SELECT count(*) FROM person_face_counts WHERE pending"
                                ).fetchone()[0] == 0

    pf.index([library_folder, *(PHOTOS / "people" / f"bbt-{name}"
                                for name in ("amy", "bernadette", "howard"))])
    pf.people.cluster()
    with psycopg.connect(in_pgface_schema(database_url)) as conn:
        faces = [r[0] for r in conn.execute("SELECT id FROM faces ORDER BY id")]
    assert len(faces) >= 12
    pf.people.name_faces(faces[:8], "Named", move=True)
    four = pf.people.split("Named", faces[:4])  # unnamed, 4 faces
    for face in faces[4:7]:  # unnamed people of one face each: a tie of 3
        pf.people.split("Named", [face])
    pf.people.name_faces(faces[8:10], "No face left", move=True)
    pf.people.name_faces(faces[8:10], "Named", move=True)
    pf.people.hide(four.id)
    assert_pages_in_order(pf, database_url, "buffalo_sc")  # every change pending
    add_up()
    assert_pages_in_order(pf, database_url, "buffalo_sc")  # all added up
    singles = [p for p in pf.people.page(named=False, limit=100)[0] if p.faces == 1]
    pf.people.merge(singles[0].id, singles[1].id)  # some pending again, among those added up
    pf.people.split("Named", [faces[9]])
    pf.people.hide(singles[2].id)
    assert_pages_in_order(pf, database_url, "buffalo_sc")

    with Pgface(settings.model_copy(update={"model_pack": str(other_pack.pack.folder)}),
                analyzer=other_pack) as other:
        other.index([library_folder / "obama"])  # the other pack's view: its own counts
        assert_pages_in_order(other, database_url, "other_pack")
        add_up()
        assert_pages_in_order(other, database_url, "other_pack")
        assert_pages_in_order(pf, database_url, "buffalo_sc")


def test_add_ups_of_the_kept_counts_wait_for_each_other_and_for_an_erase(
        pf: Pgface, database_url: str) -> None:
    """An add-up replaces a person's rows by one per pack, which the page reads as their count
    (migration 0021). Two at once, with a change committed between their snapshots, left a
    person two such rows (listed twice, the total one too many); an erase meanwhile left an
    erased person's rows, counted in the total for good."""
    pf.index([PHOTOS / "people" / f"bbt-{name}" for name in ("amy", "bernadette", "howard")])
    people = pf.people
    people.cluster()
    with psycopg.connect(in_pgface_schema(database_url)) as conn:
        conn.execute("SELECT pgface_recount_person_faces()")
        conn.commit()

    def racing(change) -> None:  # noqa: ANN001
        """CHANGE made while an add-up is under way, another add-up started after it."""
        first = psycopg.connect(in_pgface_schema(database_url))
        try:  # the add-up a page or a change runs, held open
            first.execute(people_store.ADD_UP_LOCK)
            first.execute(people_store.ADD_UP_FACE_COUNTS)
            changing = threading.Thread(target=change)
            changing.start()
            changing.join(2)  # waits for the add-up, or is done
            with psycopg.connect(in_pgface_schema(database_url), autocommit=True) as other:
                second = threading.Thread(
                    target=lambda: people_store.add_up_face_counts(other, 1))
                second.start()
                time.sleep(0.5)
                first.commit()
                second.join(30)
                changing.join(30)
                assert not second.is_alive() and not changing.is_alive()
        finally:
            first.close()

    biggest = people.page(limit=1)[0][0]
    split = people.split(biggest.id, [people.faces(biggest.id)[0].face_id])
    racing(lambda: people.merge(split.id, biggest.id))
    with psycopg.connect(in_pgface_schema(database_url)) as conn:
        assert conn.execute("SELECT count(*) FROM (SELECT 1 FROM person_face_counts "
                            "WHERE NOT pending GROUP BY person_id, pack HAVING count(*) > 1) "
                            "twice").fetchone()[0] == 0
    assert_pages_in_order(pf, database_url, "buffalo_sc")

    erased = people.split(biggest.id, [people.faces(biggest.id)[0].face_id])
    racing(lambda: people.erase(erased.id, scrub=False))
    with psycopg.connect(in_pgface_schema(database_url)) as conn:
        assert conn.execute("SELECT count(*) FROM person_face_counts WHERE person_id = %s",
                            [erased.id]).fetchone()[0] == 0
    assert_pages_in_order(pf, database_url, "buffalo_sc")


def test_a_reference_longer_than_any_name_is_not_echoed_whole(pf: Pgface) -> None:
    """Probe hostile62: a 60,000-character person reference came back whole in the 404's
    message (and the log's line): no person's name is longer than 200 characters."""
    with pytest.raises(NotFoundError) as gone:
        pf.people.rename("x" * 60_000, "Anyone")
    assert str(gone.value) == f"no person named 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' and " \
                              f"{60_000 - 40:,} characters more"


def _pgface_types(hint: object, seen: set[type]) -> None:
    """Every class of pgface's own that `hint` names, and those its dataclasses' fields name."""
    for arg in typing.get_args(hint):
        _pgface_types(arg, seen)
    if not isinstance(hint, type) or not hint.__module__.startswith("pgface") or hint in seen:
        return
    seen.add(hint)
    if dataclasses.is_dataclass(hint):
        for field_hint in typing.get_type_hints(hint).values():
            _pgface_types(field_hint, seen)


def test_what_the_public_calls_return_is_importable_from_pgface() -> None:
    import pgface

    # A user's type hints for what index, remove, cluster, enrol, history... return needed
    # private modules (pgface.db.store.Removal, pgface.people.PersonFace): each result type,
    # and each type its fields hold, is a public name of the package's own
    returned: set[type] = set()
    for api in (pgface.Pgface, pgface.People):
        for name, call in vars(api).items():
            if not name.startswith("_") and callable(call):
                _pgface_types(typing.get_type_hints(call).get("return"), returned)
    assert {pgface.IndexReport, pgface.SearchResult, pgface.Person} <= returned
    for kind in sorted(returned, key=lambda kind: kind.__name__):
        assert getattr(pgface, kind.__name__, None) is kind, f"{kind.__module__}.{kind.__name__}"
        assert kind.__name__ in pgface.__all__
    # and a type checker reads them: the block it reads imports each public name (it lacked
    # InterpreterExiting, which mypy then took as an unknown attribute)
    source = ast.parse((Path(pgface.__file__)).read_text())
    (checked,) = [node for node in source.body if isinstance(node, ast.If)
                  and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"]
    assert {alias.asname or alias.name for node in checked.body
            for alias in node.names} == set(pgface.__all__)
