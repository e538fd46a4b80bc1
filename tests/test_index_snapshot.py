"""The search index's snapshot file against real PostgreSQL: a new process opening it answers
as an exact scan does, across inserts, deletes and people changes after it was written, and a
file that is corrupted, truncated, foreign or ahead of the server is rebuilt, never trusted."""

from __future__ import annotations

import logging
import stat
import threading
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest
from conftest import PHOTOS, require_data
from test_vector_index import MODEL, add_faces, connect, unit

from pgface import Pgface, vector_index
from pgface.db import store
from pgface.index_snapshot import MAGIC, SnapshotError, SnapshotStore
from pgface.vector_index import SignIndex


def people_of(rng: np.random.Generator, people: int, each: int) -> np.ndarray:
    """Faces of `people` people, `each` apiece: near each other, far from the rest."""
    centres = unit(rng, people).repeat(each, axis=0)
    v = centres + 0.04 * rng.standard_normal(centres.shape)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def snapshot_store(conn: psycopg.Connection, folder: Path, model: str = MODEL) -> SnapshotStore:
    return SnapshotStore.for_database(conn, folder, "pgface", model)


def wait_for_writer() -> None:
    """The background snapshot writer a sync may have started has finished."""
    for thread in threading.enumerate():
        if thread.name == "pgface-index-snapshot":
            thread.join()


def written_index(conn: psycopg.Connection, folder: Path) -> SignIndex:
    """An index loaded from PostgreSQL whose snapshot holds every face so far."""
    index = SignIndex(MODEL)
    index.snapshot = snapshot_store(conn, folder)
    # The first load starts a write in the background once its faces are settled: a
    # transaction of the server's still open at its snapshot (another database's, autovacuum's)
    # leaves them for a later sync (a run in three processes met one).
    deadline = time.monotonic() + 30
    index.sync(conn)
    while index._watermark == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        index.sync(conn)
    wait_for_writer()
    index.save()
    assert index._saved_watermark == index._watermark > 0
    return index


def assert_exact(conn: psycopg.Connection, index: SignIndex, queries: np.ndarray) -> None:
    conn.execute("SET enable_indexscan = off")  # the exact scan, not HNSW
    conn.commit()
    for query in queries:
        found = index.search(conn, query, 10, 0.3, candidates=60)
        exact = store.nearest_faces(conn, query, MODEL, 10, 0.3, ef_search=40)
        assert [(m.face_id, m.person_id, m.person_name, round(m.similarity, 4))
                for m in found] == [(m.face_id, m.person_id, m.person_name,
                                     round(m.similarity, 4)) for m in exact]


def test_a_new_process_answers_as_an_exact_scan_after_changes(
        conn: psycopg.Connection, database_url: str, tmp_path: Path) -> None:
    """Snapshot written; then faces added and deleted (old and new), people named and faces
    moved, with no sync in between (a crash); a new index opened from the file is exact."""
    rng = np.random.default_rng(21)
    old = people_of(rng, 60, 4)
    old_ids = add_faces(conn, old)
    written_index(conn, tmp_path)
    new = people_of(rng, 20, 4)
    with connect(database_url) as other:
        new_ids = add_faces(other, new)
        for face_id in old_ids[::3] + new_ids[::5]:
            store.delete_face(other, face_id)
        person = other.execute("INSERT INTO people (name) VALUES ('Ada') RETURNING id"
                               ).fetchone()[0]
        other.execute("UPDATE faces SET person_id = %s WHERE id = ANY(%s)",
                      [person, old_ids[1:40]])
        other.commit()
    opened = snapshot_store(conn, tmp_path).open(conn)
    assert opened is not None
    deleted = set(old_ids[::3])
    assert set(opened._ids[: len(opened)].tolist()) == set(old_ids) - deleted  # dropped at open
    assert_exact(conn, opened, np.concatenate([old, new]))
    assert sorted(opened._ids[: len(opened)].tolist()) == sorted(
        set(old_ids + new_ids) - deleted - set(new_ids[::5]))


def test_an_unchanged_snapshot_is_searched_as_mapped(conn: psycopg.Connection,
                                                     tmp_path: Path) -> None:
    vectors = people_of(np.random.default_rng(20), 50, 4)
    add_faces(conn, vectors)
    written_index(conn, tmp_path)
    opened = snapshot_store(conn, tmp_path).open(conn)
    assert isinstance(opened._codes, np.memmap) and len(opened) == 200
    # every face's embedding: this user's alone, as a backup (it was 0644: probe operator)
    [written] = list(tmp_path.rglob("*.pgfidx"))
    assert stat.S_IMODE(written.stat().st_mode) == 0o600, oct(written.stat().st_mode)
    assert_exact(conn, opened, vectors[::7])  # 60 candidates of 200: the scan prunes
    assert isinstance(opened._codes, np.memmap)  # nothing new: still the file's pages


def test_only_a_change_to_its_own_faces_makes_a_snapshot_read_its_ids(
        conn: psycopg.Connection, database_url: str, tmp_path: Path) -> None:
    """The faces up to the watermark are counted, not read: another model's faces coming and
    going leave the file mapped as it is; a deletion among its own faces is found."""
    rng = np.random.default_rng(30)
    other_ids = add_faces(conn, unit(rng, 6), model="antelopev2")
    vectors = people_of(rng, 20, 3)
    ids = add_faces(conn, vectors)
    written_index(conn, tmp_path)
    with connect(database_url) as other:
        for face_id in other_ids[:3]:
            store.delete_face(other, face_id)
        add_faces(other, unit(rng, 4), model="antelopev2")
        other.commit()
    opened = snapshot_store(conn, tmp_path).open(conn)
    assert isinstance(opened._codes, np.memmap) and len(opened) == 60
    assert_exact(conn, opened, vectors[::9])
    with connect(database_url) as other:
        store.delete_face(other, ids[7])
        other.commit()
    opened = snapshot_store(conn, tmp_path).open(conn)
    assert not isinstance(opened._codes, np.memmap) and len(opened) == 59
    assert ids[7] not in opened._ids.tolist() and opened.unsaved == 1
    assert_exact(conn, opened, vectors[6:9])


def test_a_snapshot_missing_faces_of_the_database_is_refused(
        conn: psycopg.Connection, tmp_path: Path) -> None:
    """Fewer faces in the file than the database holds up to its watermark: never trusted."""
    add_faces(conn, unit(np.random.default_rng(31), 10))
    index = written_index(conn, tmp_path)
    snapshots = snapshot_store(conn, tmp_path)
    _, arrays = snapshots.read()
    snapshots.write({k: np.array(a[1:]) for k, a in arrays.items()}, index._watermark,
                    index._lsn)
    assert snapshots.open(conn) is None


def test_opening_in_the_background_shares_one_index(
        pf: Pgface, monkeypatch: pytest.MonkeyPatch) -> None:
    """A search starts opening the index while its models load; every caller meanwhile gets
    that one index, not one each."""
    monkeypatch.setattr(vector_index, "MIN_FACES", 1)
    with pf.pool.connection() as c:
        add_faces(c, unit(np.random.default_rng(32), 5))
    vector_index.open_in_background(pf.pool, MODEL)
    found: list[SignIndex | None] = []
    callers = [threading.Thread(target=lambda: found.append(
        vector_index.shared_index(pf.pool, MODEL))) for _ in range(4)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert len({id(i) for i in found}) == 1 and found[0] is not None
    with pf.pool.connection() as c:
        found[0].sync(c)  # opened with no snapshot yet: it loads on its first sync
    assert len(found[0]) == 5
    vector_index.open_in_background(pf.pool, MODEL)  # open already: nothing to start
    assert vector_index.shared_index(pf.pool, MODEL) is found[0]


def test_a_deleted_face_never_comes_back_from_a_stale_snapshot(
        conn: psycopg.Connection, database_url: str, tmp_path: Path) -> None:
    vectors = unit(np.random.default_rng(22), 30)
    ids = add_faces(conn, vectors)
    written_index(conn, tmp_path)
    with connect(database_url) as other:
        store.delete_face(other, ids[4])
        other.commit()
    opened = snapshot_store(conn, tmp_path).open(conn)
    opened.snapshot = snapshot_store(conn, tmp_path)
    found = opened.search(conn, vectors[4], 5, -1.0)
    assert ids[4] not in {m.face_id for m in found} and len(found) == 5
    # and the file, which still held its copy, is written again without it
    wait_for_writer()
    assert ids[4] not in snapshot_store(conn, tmp_path).read()[1]["ids"].tolist()


def test_a_snapshot_is_rewritten_once_enough_faces_were_added(
        conn: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vector_index, "SAVE_AFTER", 10)
    rng = np.random.default_rng(23)
    add_faces(conn, unit(rng, 20))
    index = written_index(conn, tmp_path)
    path = snapshot_store(conn, tmp_path).path
    add_faces(conn, unit(rng, 5))
    index.sync(conn)  # 5 new: not yet
    wait_for_writer()
    assert snapshot_store(conn, tmp_path).read()[0]["count"] == 20
    add_faces(conn, unit(rng, 5))
    index.sync(conn)
    wait_for_writer()
    assert snapshot_store(conn, tmp_path).read()[0]["count"] == 30 and path.exists()


def damage_truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-3000])


def damage_flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-5000] ^= 0x40  # inside the int8 embeddings
    path.write_bytes(bytes(data))


def damage_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(MAGIC) + 12] ^= 0xFF
    path.write_bytes(bytes(data))


def damage_nothing(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize("damage", [damage_truncate, damage_flip, damage_header,
                                    damage_nothing])
def test_a_damaged_snapshot_is_refused_and_rebuilt(
        conn: psycopg.Connection, tmp_path: Path, damage, caplog: pytest.LogCaptureFixture
        ) -> None:
    vectors = unit(np.random.default_rng(24), 40)
    add_faces(conn, vectors)
    written_index(conn, tmp_path)
    snapshots = snapshot_store(conn, tmp_path)
    damage(snapshots.path)
    with pytest.raises(SnapshotError):
        snapshots.read()
    with caplog.at_level(logging.WARNING):
        assert snapshots.open(conn) is None
    assert "not used" in caplog.text
    rebuilt = written_index(conn, tmp_path)  # what shared_index does next
    assert snapshots.open(conn) is not None and len(rebuilt) == 40
    assert_exact(conn, snapshots.open(conn), vectors[:5])


def test_a_foreign_snapshot_is_refused(conn: psycopg.Connection, database_url: str,
                                       server_url: str, tmp_path: Path) -> None:
    add_faces(conn, unit(np.random.default_rng(25), 10))
    mine = snapshot_store(conn, tmp_path)
    written_index(conn, tmp_path)
    # the same file where another model's, then another database's snapshot belongs
    other_model = snapshot_store(conn, tmp_path, model="antelopev2")
    other_model.path.write_bytes(mine.path.read_bytes())
    with pytest.raises(SnapshotError, match=r"another .*\(model differ"):
        other_model.read()
    assert other_model.open(conn) is None
    other_db = SnapshotStore(tmp_path, mine.identity["system_identifier"],
                             mine.identity["database_oid"] + 1, "pgface", MODEL,
                             tuple(mine.identity["faces_file"]))
    other_db.path.write_bytes(mine.path.read_bytes())
    with pytest.raises(SnapshotError, match=r"\(database_oid differ"):
        other_db.read()
    assert other_db.open(conn) is None
    assert mine.open(conn) is not None
    # after TRUNCATE ids may be handed out again: the table's new file node refuses the file,
    # and the reason says so (it said "another database, schema, model or format")
    conn.execute("TRUNCATE faces CASCADE")
    conn.commit()
    with pytest.raises(SnapshotError, match="an earlier file of the faces table"):
        snapshot_store(conn, tmp_path).read()
    assert snapshot_store(conn, tmp_path).open(conn) is None


def test_a_snapshot_ahead_of_the_server_is_refused(conn: psycopg.Connection,
                                                   tmp_path: Path) -> None:
    """A lagging standby, or a database restored to an earlier point, has not seen every face
    the file holds up to its watermark."""
    add_faces(conn, unit(np.random.default_rng(26), 10))
    index = written_index(conn, tmp_path)
    snapshots = snapshot_store(conn, tmp_path)
    _, arrays = snapshots.read()
    snapshots.write({k: np.array(a) for k, a in arrays.items()}, index._watermark, "FFFF/0")
    assert snapshots.open(conn) is None


def test_a_snapshot_of_other_faces_under_the_same_ids_is_refused(
        conn: psycopg.Connection, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Probe bigindex38: a database restored to an earlier point, then written to past the
    snapshot's WAL position, holds new faces under ids the snapshot holds for others; every
    other check passed, and those faces were never found. A sample of the faces is compared
    with the database's (here one made another by hand, as such a restore makes it)."""
    add_faces(conn, unit(np.random.default_rng(32), 10))
    written_index(conn, tmp_path)
    [newest] = conn.execute("SELECT max(id) FROM faces").fetchone()
    assert_refused_once_written_again(conn, tmp_path, caplog, newest)


def assert_refused_once_written_again(conn: psycopg.Connection, tmp_path: Path,
                                      caplog: pytest.LogCaptureFixture, face_id: int) -> None:
    """Face FACE_ID made another under its id (as a restore and later writes make it): the
    snapshot in tmp_path is refused, naming it."""
    conn.execute("UPDATE faces SET embedding = embedding * array_fill(-1, ARRAY[512])::vector "
                 "WHERE id = %s", [face_id])
    conn.commit()
    caplog.set_level(logging.WARNING, logger="pgface.index_snapshot")
    assert snapshot_store(conn, tmp_path).open(conn) is None
    assert f"face {face_id} in the database is not the one it holds under that id" in caplog.text


def test_a_copy_put_back_and_written_to_under_the_files_ids_is_refused(
        conn: psycopg.Connection, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Probe reprobe39: a data folder's copy put back (the file's newest faces gone from the
    database) and then written to, new faces under ids the file holds for others: the sample
    took the file's newest ids, gone and passed over, and the ids written again lay between
    the others; the first search missed them. The newest of those still there are sampled."""
    add_faces(conn, unit(np.random.default_rng(33), 200))
    written_index(conn, tmp_path)
    ids = [r[0] for r in conn.execute("SELECT id FROM faces ORDER BY id")]
    conn.execute("DELETE FROM faces WHERE id = ANY(%s)", [ids[100:]])  # the copy's state
    # a face written since under an id the file holds for another (none of the 32 taken
    # across the file's 200: the 96th and the 102nd are)
    assert_refused_once_written_again(conn, tmp_path, caplog, ids[97])


def test_an_unwritable_folder_leaves_the_index_in_memory(
        conn: psycopg.Connection, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "index"
    blocker.write_text("a file where the folder should be")
    vectors = unit(np.random.default_rng(27), 10)
    add_faces(conn, vectors)
    index = SignIndex(MODEL)
    index.snapshot = snapshot_store(conn, blocker)
    with caplog.at_level(logging.WARNING):
        index.sync(conn)
        wait_for_writer()
    assert index.snapshot is None and "memory only" in caplog.text
    assert [m.face_id for m in index.search(conn, vectors[3], 1, 0.9)] == \
        [int(conn.execute("SELECT min(id) + 3 FROM faces").fetchone()[0])]


def test_pgface_opens_its_snapshot_in_a_new_instance(
        enrolled: Pgface, analyzer, monkeypatch: pytest.MonkeyPatch) -> None:
    pf = enrolled  # the photos of people/ indexed
    monkeypatch.setattr(vector_index, "MIN_FACES", 1)
    query = PHOTOS / "queries" / "obama_and_biden.jpg"
    first = pf.search(query)
    index = vector_index.shared_index(pf.pool, MODEL)
    wait_for_writer()
    index.save()
    assert index._saved_watermark is not None
    with Pgface(pf.settings, analyzer=analyzer) as fresh:
        opened = vector_index.shared_index(fresh.pool, MODEL)
        assert opened is not index and opened._saved_watermark == index._saved_watermark
        assert fresh.search(query).to_dict() == first.to_dict()


def test_a_writer_killed_before_its_rename_leaves_the_snapshot_whole(
        conn: psycopg.Connection, tmp_path: Path) -> None:
    """A crash while writing: the old file stays in place, the dead writer's temporary file
    is removed by the next write."""
    vectors = unit(np.random.default_rng(28), 12)
    add_faces(conn, vectors)
    index = written_index(conn, tmp_path)
    snapshots = snapshot_store(conn, tmp_path)
    orphan = snapshots.path.with_name(f"{snapshots.path.name}.999999999.1.tmp")
    orphan.write_bytes(snapshots.path.read_bytes()[:5000])  # half written, never renamed
    assert len(snapshots.open(conn)) == 12
    add_faces(conn, unit(np.random.default_rng(29), 3))
    index.sync(conn)
    wait_for_writer()
    assert index.save() and not orphan.exists()
    assert snapshots.read()[0]["count"] == 15


@pytest.mark.parametrize("scrub", [False, True])
def test_an_erased_persons_faces_leave_the_index_and_its_snapshot_file(
        pf: Pgface, analyzer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        scrub: bool) -> None:
    # The erased faces' sign bits and int8 copies stayed in <data dir>/index until some later
    # process rewrote the file (never, with --no-scrub, before 10,000 other changes).
    from test_people import linked_folder, photos_of

    monkeypatch.setattr(vector_index, "MIN_FACES", 1)
    monkeypatch.setattr(vector_index, "_RECHECK_S", 0.0)
    pf.people.enrol(linked_folder(tmp_path / "people", {
        "obama": photos_of("obama"), "biden": photos_of("biden")}))
    query = require_data(PHOTOS / "queries" / "obama_and_biden.jpg")
    pf.search(query)  # loads the index and writes its snapshot
    index = vector_index.shared_index(pf.pool, MODEL)
    wait_for_writer()
    index.save()
    with pf.pool.connection() as conn:
        erased = {r[0] for r in conn.execute(
            "SELECT f.id FROM faces f JOIN people p ON p.id = f.person_id "
            "WHERE p.name = 'obama'")}
        path = snapshot_store(conn, pf.settings.resolved_data_dir() / "index").path
    assert erased and erased <= set(index.snapshot.read()[1]["ids"].tolist())

    pf.people.erase("obama", scrub=scrub)
    wait_for_writer()
    assert not erased & set(index._ids[: len(index)].tolist())
    if path.exists():
        with pf.pool.connection() as conn:
            header, arrays = snapshot_store(conn, path.parent).read()  # trusted, and clean
        assert not erased & set(arrays["ids"].tolist()) and header["count"] == len(index)
    with Pgface(pf.settings, analyzer=analyzer) as fresh:
        found = fresh.search(query)
        assert not erased & {m.face_id for f in found.faces for m in f.matches}
        wait_for_writer()
        with fresh.pool.connection() as conn:
            ids = snapshot_store(conn, path.parent).read()[1]["ids"]
        assert not erased & set(ids.tolist()) and len(ids) == len(index)
