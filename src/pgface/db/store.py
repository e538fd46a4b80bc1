"""Reads and writes of photos and faces. Knows rows and vectors, nothing of images or models."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections import Counter
from collections.abc import (
    Callable,
    Collection,
    Hashable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import psycopg
from psycopg.rows import dict_row

from pgface import paths
from pgface.db import sql
from pgface.errors import ModelPackError
from pgface.models import ANALYSIS_REVISION
from pgface.paths import (
    NamedFile,
    PathLike,
    canonical,
    readable,
    to_bytes,
    with_name_bytes,
)

if TYPE_CHECKING:  # a type only: the store knows rows, not models
    from psycopg_pool import ConnectionPool

    from pgface.models.quality import FaceQuality


@dataclass
class FaceRow:
    embedding: np.ndarray
    bbox: Sequence[float]
    landmarks: Sequence[float]  # 10 numbers: x, y of eyes, nose, mouth corners
    det_score: float
    crop: bytes
    quality: FaceQuality | None = None


@dataclass(frozen=True)
class FileStamp:
    """A file as it was read: size, modification and change time. The same stamp on a later
    run means the same content (rsync's quick check, with the change time, which a rename or
    a tool setting the modification time back sets to now), so the file is not read again."""

    size_bytes: int
    mtime_ns: int
    ctime_ns: int
    # The file's inode (st_ino) and device (st_dev): kept with a failure only (failed_files,
    # migrations 0032 and 0034), to tell a failed file moved with its folder from another file
    # of its name and stamp. Both: an inode number is unique on one file system only (probe
    # reprobe45). The device may change when a disk is mounted again, so neither is part of
    # the stamp that says a file at its own path is unchanged.
    inode: int | None = None
    device: int | None = None

    @classmethod
    def of(cls, info: os.stat_result) -> FileStamp:
        return cls(info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev)


@dataclass(frozen=True)
class Sighting:
    """A stored photo's content (sha256) found at a path, with its file's stamp where one can
    be trusted."""

    sha256: bytes
    path: str  # as os.fsdecode gives it
    stamp: FileStamp | None = None


@dataclass
class PhotoRow:
    sha256: bytes
    path: str  # as os.fsdecode gives it: names that are not UTF-8 hold lone surrogates
    size_bytes: int
    width: int
    height: int
    taken_at: datetime | None
    faces: list[FaceRow] = field(default_factory=list)
    stamp: FileStamp | None = None  # the file's, where it was read from one


@dataclass(frozen=True)
class MatchRow:
    face_id: int
    photo_id: int
    path: str
    bbox: list[float]
    person_id: int | None
    person_name: str | None
    similarity: float


def as_array(vector: object) -> np.ndarray:
    """A pgvector value as float32 numpy (binary results come as pgvector's Vector)."""
    to_numpy = getattr(vector, "to_numpy", None)
    return np.asarray(to_numpy() if to_numpy else vector, dtype=np.float32)


def known_hashes(conn: psycopg.Connection, hashes: Sequence[bytes]) -> set[bytes]:
    if not hashes:
        return set()
    rows = conn.execute(sql.KNOWN_HASHES, [list(hashes)]).fetchall()
    return {bytes(r[0]) for r in rows}


def photo_id_by_sha256(conn: psycopg.Connection, sha256: bytes) -> int | None:
    row = conn.execute(sql.PHOTO_ID_BY_SHA256, [sha256]).fetchone()
    return row[0] if row else None


@dataclass(frozen=True)
class KnownPhoto:
    photo_id: int
    analysed: bool  # by the pack asked about
    # that analysis is of an older revision than ANALYSIS_REVISION (`index --pending` makes it
    # again; any other run passes over it as analysed)
    outdated: bool = False


def known_photos(conn: psycopg.Connection, hashes: Sequence[bytes], model: str
                 ) -> dict[bytes, KnownPhoto]:
    """The stored photos among these hashes, and whether `model` has analysed each (and at an
    older revision)."""
    if not hashes:
        return {}
    rows = conn.execute(sql.PHOTOS_BY_SHA256, {"model": model, "hashes": list(hashes),
                                               "revision": ANALYSIS_REVISION}).fetchall()
    return {bytes(r[0]): KnownPhoto(r[1], r[2], r[3]) for r in rows}


def add_photos(
    conn: psycopg.Connection, photos: Sequence[PhotoRow], model: str,
    replaced: list[tuple[int, int]] | None = None, reanalysed: list[int] | None = None,
    recognizer_sha256: str | None = None,
) -> dict[bytes, int]:
    """Store photos analysed by `model` in the caller's transaction, with their faces and paths;
    returns sha256 -> photo id of the photos whose faces this call stored.

    A photo already present (same content) gets this pack's faces only if no one stored them
    before (photo_analyses decides), so concurrent indexers never duplicate anything.
    replaced: gets record_paths' (former photo, photo now there) pairs: photos edited in place.
    reanalysed: gets the ids of the photos stored before (another pack's) whose faces of
    `model` this call stored.
    recognizer_sha256: the recognizer that made the embeddings; refused (ModelPackError) where
    the library knows the pack by another by now (known_pack: a record taken over meanwhile).
    """
    if not photos:
        return {}
    if recognizer_sha256 is not None:
        check_recognizer(conn, model, recognizer_sha256, storing=True)
    columns = (
        [p.sha256 for p in photos],
        [readable(p.path) for p in photos],
        [p.size_bytes for p in photos],
        [p.width for p in photos],
        [p.height for p in photos],
        [p.taken_at for p in photos],
        [len(p.faces) for p in photos],
    )
    inserted = {bytes(sha): pid for pid, sha in conn.execute(sql.INSERT_PHOTOS, columns)}
    others = [p.sha256 for p in photos if p.sha256 not in inserted]
    ids = dict(inserted)
    while others:
        # Stored by another (it committed first): each kept from a delete until this commits.
        # One deleted in between (the insert found it, the select no more) is stored again,
        # as new: its path's insert failed on the foreign key, a 500 (probe hostile62).
        found = {bytes(sha): pid for sha, pid in conn.execute(sql.PHOTO_IDS_BY_SHA256_KEPT,
                                                               [others])}
        ids.update(found)
        gone = {sha for sha in others if sha not in found}
        if not gone:
            break
        again = [p for p in photos if p.sha256 in gone]
        stored_now = {bytes(sha): pid for pid, sha in conn.execute(sql.INSERT_PHOTOS, [
            [column[i] for i, p in enumerate(photos) if p.sha256 in gone] for column in columns])}
        inserted.update(stored_now)
        ids.update(stored_now)
        others = [p.sha256 for p in again if p.sha256 not in stored_now]
    by_id = {ids[p.sha256]: p for p in photos if p.sha256 in ids}
    won = {r[0] for r in conn.execute(sql.INSERT_ANALYSES, [
        model, ANALYSIS_REVISION, list(by_id), [len(p.faces) for p in by_id.values()]])}
    stored = {sha: pid for sha, pid in ids.items() if pid in won}
    _copy_faces(conn, photos, stored, model)
    # Photos stored before by another pack now hold this pack's faces too.
    before = [pid for sha, pid in stored.items() if sha not in inserted]
    recount_faces(conn, before)
    if reanalysed is not None:
        reanalysed.extend(before)
    _record_where(conn, photos, replaced)
    return stored


def _record_where(conn: psycopg.Connection, photos: Sequence[PhotoRow],
                  replaced: list[tuple[int, int]] | None) -> None:
    """The paths the photos were read at, recorded (record_paths); REPLACED gets the (former
    photo, photo now) pairs of the paths whose content changed."""
    edited = record_paths(conn, [Sighting(p.sha256, p.path, p.stamp) for p in photos])
    if replaced is not None:
        replaced.extend(edited)


def _copy_faces(conn: psycopg.Connection, photos: Sequence[PhotoRow], ids: Mapping[bytes, int],
                model: str) -> None:
    """The faces of those of these photos IDS holds (sha256 -> photo id), as `model`'s."""
    with conn.cursor() as cur, cur.copy(sql.COPY_FACES) as copy:
        copy.set_types(sql.COPY_FACES_TYPES)
        for photo in photos:
            photo_id = ids.get(photo.sha256)
            if photo_id is None:
                continue
            for face in photo.faces:
                copy.write_row((
                    photo_id,
                    model,
                    np.asarray(face.embedding, dtype=np.float32),
                    [float(v) for v in face.bbox],
                    [float(v) for v in face.landmarks],
                    float(face.det_score),
                    face.crop,
                    *_quality_columns(face.quality),
                ))


def analyse_again(conn: psycopg.Connection, photos: Sequence[PhotoRow], model: str,
                  replaced: list[tuple[int, int]] | None = None,
                  recognizer_sha256: str | None = None
                  ) -> tuple[dict[bytes, int], dict[int, list[int]]]:
    """Store the faces of photos whose analysis by `model` is of an older revision than
    ANALYSIS_REVISION beside their old faces, in the caller's transaction, and make that
    analysis current; (sha256 -> photo id of the photos analysed again, photo id -> the ids of
    its old faces, which the caller gives their people over from and then deletes:
    drop_replaced_faces). A photo another run analysed again first
    (it waits for that run's commit) or deleted meanwhile is passed over, as are photos of the
    current revision. Their paths are recorded as add_photos records them (REPLACED gets the
    same pairs)."""
    if not photos:
        return {}, {}
    if recognizer_sha256 is not None:
        check_recognizer(conn, model, recognizer_sha256, storing=True)
    ids = {bytes(sha): pid for sha, pid in conn.execute(
        sql.PHOTO_IDS_BY_SHA256, [[p.sha256 for p in photos]])}
    locked = {r[0] for r in conn.execute(sql.LOCK_OUTDATED_ANALYSES, [
        model, sorted(ids.values()), ANALYSIS_REVISION])}
    again = {sha: pid for sha, pid in ids.items() if pid in locked}
    old: dict[int, list[int]] = {pid: [] for pid in again.values()}
    for photo_id, face_id in conn.execute(sql.FACES_OF_PACK_IN_PHOTOS, [sorted(old), model]):
        old[photo_id].append(face_id)
    _copy_faces(conn, photos, again, model)
    by_id = {again[p.sha256]: len(p.faces) for p in photos if p.sha256 in again}
    conn.execute(sql.ANALYSED_AGAIN, [ANALYSIS_REVISION, list(by_id), list(by_id.values()),
                                      model])
    _record_where(conn, photos, replaced)
    return again, old


def drop_replaced_faces(conn: psycopg.Connection, old: Mapping[int, Sequence[int]],
                        carried: Collection[int]) -> None:
    """Delete the old faces of photos analysed again (OLD: photo id -> face ids, as
    analyse_again gave them), once the new faces took their people: those whose person or
    before-images a new face took (CARRIED) with their before-images; each other one with a
    person waits for its own photo (sql.REMEMBER_PEOPLE: a later version at its path, or the
    photo analysed again, whose face is that close takes the person back), as an edit's lost
    faces do. The photos' face counts follow."""
    faces = [face for ids in old.values() for face in ids]
    left = [face for face in faces if face not in carried]
    if left:
        photos = sorted(old)
        conn.execute(sql.REMEMBER_PEOPLE, {"photos": photos, "formers": photos,
                                           "places": photos, "only": left})
    conn.execute(sql.DELETE_REPLACED_FACES, {"carried": sorted(carried), "faces": faces})
    recount_faces(conn, list(old))


def _quality_columns(quality: FaceQuality | None) -> tuple[float | None, ...]:
    """quality, face_size, yaw, pitch, sharpness as stored; all None when not measured."""
    if quality is None:
        return (None,) * 5
    return (quality.score, quality.face_size, quality.yaw, quality.pitch, quality.sharpness)


# A face row's quality columns, and the names they take in its `quality` object.
QUALITY_COLUMNS = {"quality": "score", "face_size": "face_size", "yaw": "yaw", "pitch": "pitch",
                   "sharpness": "sharpness"}


def quality_json(row: dict) -> dict | None:
    """A face row's quality columns as one object; None for a face stored before quality was
    measured (no column set)."""
    values = {name: row.get(column) for column, name in QUALITY_COLUMNS.items()}
    if all(v is None for v in values.values()):
        return None
    return {k: None if v is None else round(float(v), 4) for k, v in values.items()}


def faces_below_quality(conn: psycopg.Connection, model: str, floor: float) -> set[int]:
    """Ids of the faces of the model whose quality score is below the floor."""
    return {r[0] for r in conn.execute(sql.FACES_BELOW_QUALITY, [model, floor])}


def unstored(conn: psycopg.Connection, sightings: Sequence[Sighting]) -> list[Sighting]:
    """Those of these sightings whose photo is not stored (any more): record_paths passes over
    them."""
    contents = sorted({seen.sha256 for seen in sightings})
    gone = {bytes(r[0]) for r in conn.execute(sql.UNSTORED_CONTENTS, [contents])}
    return [seen for seen in sightings if seen.sha256 in gone]


def record_paths(conn: psycopg.Connection, sightings: Sequence[Sighting],
                 moved: list[int] | None = None) -> list[tuple[int, int]]:
    """Record that the photo with this sha256 is at this path (the photo must be stored), and
    the path's file stamp (none: the file is read again next time).

    A photo seen at a new path loses those of its other paths whose file is gone (it moved:
    MOVED gets its id once for each of its new paths); paths that still exist are kept
    (copies). A path seen with other content moves to it: returns those (former photo id,
    photo id now there) pairs, the photos edited in place. A path remembered as a file whose
    content failed (remember_failures) holds a photo now: it is forgotten there.
    """
    latest = {to_bytes(seen.path): seen for seen in sightings}
    if not latest:
        return []
    keys = sorted(latest)  # one order for every writer: concurrent indexers never deadlock
    # a file whose content failed before (failed_files), stored now: fixed, and forgotten
    conn.execute(sql.FORGET_FAILURES, [keys])
    owners = {bytes(r[0]): r[1:] for r in conn.execute(sql.OWNERS_OF_PATHS, [keys]).fetchall()}
    before = {raw: owner[0] for raw, owner in owners.items()}
    stamps = {k: (None, None, None) if latest[k].stamp is None
              else (latest[k].stamp.size_bytes, latest[k].stamp.mtime_ns,
                    latest[k].stamp.ctime_ns) for k in keys}
    changed = conn.execute(sql.RECORD_PATHS, [
        [latest[k].sha256 for k in keys], keys, [readable(k) for k in keys],
        [stamps[k][0] for k in keys], [stamps[k][1] for k in keys],
        [stamps[k][2] for k in keys]]).fetchall()
    # a path that keeps its photo gets its new stamp, where the stamp changed
    new_here = {bytes(raw) for raw, _ in changed}
    restamp = [k for k in keys if k in owners and k not in new_here
               and owners[k][1:] != stamps[k]]
    if restamp:
        conn.execute(sql.STAMP_PATHS, [
            [latest[k].sha256 for k in restamp], restamp,
            [stamps[k][0] for k in restamp], [stamps[k][1] for k in restamp],
            [stamps[k][2] for k in restamp]])
    if not changed:
        return []
    gained = {photo_id for _, photo_id in changed}
    recorded = {bytes(raw) for raw, _ in changed}
    gone = {raw: photo_id for photo_id, raw, _ in _paths_of(conn, gained)
            if raw not in recorded and not paths.exists(raw)}
    if gone:
        conn.execute(sql.DELETE_PATHS, [list(gone)])
        if moved is not None:
            # a file each, as the run's summary counts its files ("4 already indexed (3
            # moved)" where a photo and its copy, moved together, are two: probe library61)
            lost_a_path = set(gone.values())
            moved += sorted(photo_id for _, photo_id in changed if photo_id in lost_a_path)
        _move_link_records(conn, gone, changed)
    # A path it held already comes back only when it moved to another photo; the check is for
    # another writer moving it away and back between the two statements.
    replaced = sorted({(before[bytes(raw)], photo_id) for raw, photo_id in changed
                       if bytes(raw) in before and before[bytes(raw)] != photo_id})
    conn.execute(sql.REFRESH_DISPLAY_PATHS,
                 [list(gained | {former for former, _ in replaced})])
    return replaced


def _move_link_records(conn: psycopg.Connection, gone: dict[bytes, int],
                       changed: Sequence[tuple[Any, int]]) -> None:
    """The links recorded inside a folder that moved (its photos found at their new paths:
    GONE, their old paths, CHANGED, the (new path, photo) pairs recorded) move with it. Their
    records stayed at the old place, under no folder a run was given: after `mv home home2`
    and `Phone` pointed elsewhere, `index home2 --prune` never reached where Phone pointed
    before, and a photo deleted there stayed stored, said nowhere (probe living20)."""
    now_at: dict[int, list[bytes]] = {}
    for raw, photo_id in changed:
        now_at.setdefault(photo_id, []).append(bytes(raw))
    # the folders a file moved between, under the same name (one look for each two folders)
    between = {(old.rpartition(b"/")[0], new.rpartition(b"/")[0])
               for old, photo_id in gone.items() for new in now_at.get(photo_id, [])
               if old.rpartition(b"/")[2] == new.rpartition(b"/")[2]}
    moves = {found for pair in between if (found := _moved_folder(*pair))}
    for old_folder, new_folder in sorted(moves):
        conn.execute(sql.MOVE_LINK_RECORDS, {"old": old_folder, "new": new_folder})


def _moved_folder(old: bytes, new: bytes) -> tuple[bytes, bytes] | None:
    """The folder whose move took a file from the folder OLD to the folder NEW, as (its old
    path, its new): the highest whose path below it is the same at both, which is gone from
    its old path and is at its new (`mv home home2`, `mv home archive/home`); None for a file
    moved between two folders that are both there."""
    old_parts, new_parts = old.split(b"/"), new.split(b"/")
    found = None
    for below in range(min(len(old_parts), len(new_parts)) - 1):
        if below and old_parts[-below] != new_parts[-below]:
            break
        was = b"/".join(old_parts[:len(old_parts) - below])
        now = b"/".join(new_parts[:len(new_parts) - below])
        if paths.exists(was):
            break  # its ancestors are there too
        if paths.exists(now):
            found = (was, now)
    return found


def unchanged_paths(conn: psycopg.Connection, stamps: Sequence[tuple[bytes, FileStamp]],
                    model: str, current: bool = False) -> set[bytes]:
    """Of these (path bytes, file stamp now), the paths whose file has the stamp recorded when
    it was last read and whose photo `model` has analysed (CURRENT: at ANALYSIS_REVISION, for
    `index --pending`, which analyses older analyses again): nothing there to read again. A
    path recorded before change times were gets its file's now (sql.RECORD_CHANGE_TIMES)."""
    if not stamps:
        return set()
    columns = [[raw for raw, _ in stamps], [s.size_bytes for _, s in stamps],
               [s.mtime_ns for _, s in stamps], [s.ctime_ns for _, s in stamps]]
    rows = conn.execute(sql.UNCHANGED_PATHS, [
        *columns, model, ANALYSIS_REVISION if current else 0]).fetchall()
    if not all(has_ctime for _, has_ctime in rows):
        conn.execute(sql.RECORD_CHANGE_TIMES, columns)
    return {bytes(r[0]) for r in rows}


@dataclass(frozen=True)
class Reader:
    """What read a file: what decoded it (pgface's version with a digest of its decoding,
    index.reader_version) and the limits it read under. Its failure of a file's content
    stands while these are the same: another decoding may read the file, and a
    file over the byte or pixel limit may be under a limit raised since."""

    version: str
    max_file_bytes: int
    max_pixels: int


@dataclass(frozen=True)
class FailedFile:
    """A file whose content failed to decode (not an image, corrupt or truncated, empty, over
    a limit), with its stamp when read and why."""

    path: str  # canonical, as os.fsdecode gives it (photo_paths' key)
    stamp: FileStamp
    reason: str


def remember_failures(conn: psycopg.Connection, failed: Sequence[FailedFile], reader: Reader
                      ) -> None:
    """Remember these files (failed_files, migration 0030) as READER failed them: the same
    file failed again takes its new stamp and reason. A path of a stored photo whose file has
    changed since (sql.DROP_FAILED_PATHS: a broken file written over it, a sync cut short)
    holds that photo no more: the path is forgotten, and the photo, its faces and people kept,
    is where its other paths are, or, with none, a photo whose file is gone (search says
    `missing`, a prune forgets it, its names kept for its content; the file saved back finds
    it again). It stayed at the path for good: search gave it there, not missing, while the
    image endpoint found no file with its content, later runs passed the file over as a failure
    remembered, and a prune forgot nothing (probe living42). In the caller's transaction: the
    failure and the path's end are written together."""
    latest = {to_bytes(f.path): f for f in failed}
    if not latest:
        return
    keys = sorted(latest)
    stamps = {"paths": keys, "sizes": [latest[k].stamp.size_bytes for k in keys],
              "mtimes": [latest[k].stamp.mtime_ns for k in keys],
              "ctimes": [latest[k].stamp.ctime_ns for k in keys]}
    conn.execute(sql.REMEMBER_FAILURES, {
        **stamps, "texts": [readable(k) for k in keys],
        "inodes": [latest[k].stamp.inode for k in keys],
        "devices": [latest[k].stamp.device for k in keys],
        "reasons": [latest[k].reason for k in keys],
        "version": reader.version, "max_bytes": reader.max_file_bytes,
        "max_pixels": reader.max_pixels})
    left = sorted({r[0] for r in conn.execute(sql.DROP_FAILED_PATHS, stamps)})
    if left:  # shown at another path of theirs, where they have one
        conn.execute(sql.REFRESH_DISPLAY_PATHS, [left])


def unchanged_failures(conn: psycopg.Connection, stamps: Sequence[tuple[bytes, FileStamp]],
                       reader: Reader) -> set[bytes]:
    """Of these (path bytes, file stamp now), the paths whose content failed with this stamp,
    as READER read it (remember_failures): nothing there to read again. A file at a path with
    no failure remembered is one remembered elsewhere where its name, stamp, device and inode
    are that failure's and the file there is gone: moved with its folder, whose rename or move
    on one file system keeps its files' size, modification and change time, device and inode
    (a file renamed itself has a new change time: read again). Its row moves to the new path:
    a folder renamed read its broken file again, failed again, and kept the former path for
    ever, no prune reaching it (probe reprobe39). Another file of the failure's name and
    stamp (one `touch -d` over both, a tar or `rsync -t` setting both) has its own inode, and
    is read: a good photo was taken for a broken file moved, and never stored (probe
    reprobe42); so has one on another file system of the same inode number, its device
    another (probe reprobe45). A failure remembered with
    no inode or device (before migration 0032 or 0034) is never taken for moved."""
    if not stamps:
        return set()
    rows = conn.execute(sql.UNCHANGED_FAILURES, {
        "paths": [raw for raw, _ in stamps], "sizes": [s.size_bytes for _, s in stamps],
        "mtimes": [s.mtime_ns for _, s in stamps], "ctimes": [s.ctime_ns for _, s in stamps],
        "inodes": [s.inode for _, s in stamps], "devices": [s.device for _, s in stamps],
        "version": reader.version, "max_bytes": reader.max_file_bytes,
        "max_pixels": reader.max_pixels}).fetchall()
    unchanged: set[bytes] = set()
    former: dict[bytes, list[bytes]] = {}  # path now -> the gone paths it may have had
    folders: dict[bytes, bool] = {}
    for now, remembered in ((bytes(r[0]), bytes(r[1])) for r in rows):
        if now == remembered:
            unchanged.add(now)
        elif (os.path.basename(now) == os.path.basename(remembered)
              and not paths.exists(remembered, folders)):
            former.setdefault(now, []).append(remembered)
    # one former path for one file, and each former path claimed once: two files alike in
    # name and stamp to the nanosecond cannot be told apart, and are read
    claims = Counter(old for olds in former.values() for old in olds)
    moves = sorted((olds[0], now) for now, olds in former.items()
                   if len(olds) == 1 and claims[olds[0]] == 1)
    if moves:
        moved = conn.execute(sql.MOVE_FAILURES, {
            "olds": [old for old, _ in moves], "news": [new for _, new in moves],
            "texts": [readable(new) for _, new in moves]}).fetchall()
        unchanged |= {bytes(r[0]) for r in moved}
    return unchanged


def forget_failures(conn: psycopg.Connection, targets: Sequence[PathLike], gone_only: bool
                    ) -> int:
    """Forget the failed files remembered at or under these paths (files or folders); with
    gone_only, only those whose file is gone (forget_paths' way). Returns how many."""
    rows = conn.execute(sql.FAILURES_UNDER, _under(targets)).fetchall()
    folders: dict[bytes, bool] = {}
    doomed = sorted(bytes(r[0]) for r in rows
                    if not gone_only or not paths.exists(bytes(r[0]), folders))
    if doomed:
        conn.execute(sql.FORGET_FAILURES, [doomed])
    return len(doomed)


@dataclass(frozen=True)
class Namesake:
    """A stored photo with people, at a path of a new photo's file name whose file is gone."""

    photo_id: int
    gone_path: bytes
    held_faces: int  # its faces the pack gave a person


def gone_namesakes(conn: psycopg.Connection, new_photos: Sequence[PhotoRow],
                   ids: dict[bytes, int], model: str) -> dict[int, Namesake]:
    """For photos just stored (ids: sha256 -> id): the one other photo, with faces this pack
    gave people, recorded at a path of the same file name whose file is gone from a folder
    that is there (not an unmounted share's), taken at the same time where both say when:
    where each may have been before it was moved and edited in one step. A photo with two such
    candidates, or a candidate for two of them, gets none (which one it was is not known)."""
    names = {ids[p.sha256]: readable(p.path).rsplit("/", 1)[-1] for p in new_photos}
    taken = {ids[p.sha256]: p.taken_at for p in new_photos}
    rows = conn.execute(sql.HELD_PATHS_NAMED, {"names": sorted(set(names.values())),
                                               "photos": sorted(names), "model": model})
    gone: dict[str, dict[int, tuple[bytes, datetime | None, int]]] = {}
    for former, raw, name, taken_at, held in rows.fetchall():
        raw = bytes(raw)
        if not paths.exists(raw) and paths.holds_anything(os.path.dirname(raw)):
            gone.setdefault(name, {})[former] = (raw, taken_at, held)
    found = {}
    for photo_id, name in names.items():
        # the namesakes of another date are no candidates: counted as such, one whose photo
        # was deleted kept the names from the photo moved and edited until a prune (probe
        # dates33), where the prune (sql.NAMESAKES_OF_PATHLESS) passed over it
        such = [(former, (raw, held)) for former, (raw, taken_at, held)
                in gone.get(name, {}).items()
                if taken_at is None or taken[photo_id] is None or taken_at == taken[photo_id]]
        if len(such) == 1:
            found[photo_id] = such[0]
    claims = Counter(former for former, _ in found.values())
    return {photo_id: Namesake(former, raw, held)
            for photo_id, (former, (raw, held)) in found.items() if claims[former] == 1}


def forget_gone_paths(conn: psycopg.Connection, raws: Sequence[bytes]) -> None:
    """Forget these paths, their files gone; their photos show another of their paths."""
    touched = {r[0] for r in conn.execute(sql.DELETE_PATHS, [sorted(raws)])}
    if touched:
        conn.execute(sql.REFRESH_DISPLAY_PATHS, [sorted(touched)])


def _paths_of(conn: psycopg.Connection, photo_ids: Iterable[int]
              ) -> list[tuple[int, bytes, str]]:
    rows = conn.execute(sql.PATHS_OF_PHOTOS, [list(photo_ids)]).fetchall()
    return [(r[0], bytes(r[1]), r[2]) for r in rows]


def record_kept_copy(conn: psycopg.Connection, photo_id: int, sha256: bytes,
                     path: Path) -> None:
    """Record an upload's kept copy of stored photo PHOTO_ID (content SHA256) at PATH as the
    oldest of its paths: the path its answers name stays the newest of the others
    (sql.KEPT_COPY_OLDEST)."""
    record_paths(conn, [Sighting(sha256, str(path))])
    conn.execute(sql.KEPT_COPY_OLDEST, [to_bytes(path)])
    conn.execute(sql.REFRESH_DISPLAY_PATHS, [[photo_id]])


UPLOAD_NAME = re.compile(r"[0-9a-f]{64}\.[a-z0-9]+")  # an upload's file: its sha256 and a suffix


def upload_folders(conn: psycopg.Connection) -> dict[str, int]:
    """The folders holding the files of photos stored from uploads (readable text), each with
    how many photos: what the library records, whatever this process's upload folder."""
    photos: dict[str, set[int]] = {}
    for raw, photo_id in conn.execute(sql.UPLOADS_BY_FOLDER):
        folder = paths.readable(paths.from_bytes(bytes(raw)).parent)
        photos.setdefault(folder, set()).add(photo_id)
    return {folder: len(ids) for folder, ids in sorted(photos.items())}


def rehome_uploads(conn: psycopg.Connection, folder: Path, own_database: bool = False
                   ) -> tuple[int, int]:
    """Uploads whose kept file is in FOLDER, the upload folder, while their recorded path is in
    another whose file is gone (the data folder moved or copied, a library restored into
    another with its upload folder copied, as `db restore` says to): recorded at FOLDER, as a
    move is. Every such photo was shown `missing` and its image was a 404, its file beside
    the server (probe ops61). Where the database is this folder's own (OWN_DATABASE: the
    embedded server's, in the data folder), those whose file is still there too, in the
    upload folder of another data folder: this one was copied from it, and showed the
    original's files, gone with the original or an upload deleted there. Returns how many of
    each: (gone there, still there)."""
    kept_here = [bytes.fromhex(entry.name[:64]) for entry in os.scandir(folder)
                 if UPLOAD_NAME.fullmatch(entry.name)]
    if not kept_here:
        return 0, 0
    rows = conn.execute(sql.UPLOADS_ELSEWHERE,
                        [kept_here, str(folder).rstrip("/") + "/"]).fetchall()
    gone = copied = 0
    done: set[int] = set()  # a photo with paths in several other folders: recorded here once
    for raw, photo_id, sha256 in rows:
        recorded = paths.from_bytes(bytes(raw))
        kept = folder / recorded.name
        there = paths.exists(bytes(raw))
        # still there: taken over only from the upload folder of another data folder (one
        # holding pgdata), never from a folder of the user's that holds copies of uploads
        theirs = recorded.parent.parent / "pgdata" / "PG_VERSION"
        if (there and not (own_database and theirs.is_file())) or not kept.is_file() \
                or photo_id in done:
            continue  # kept by a server of that folder on a shared database, or not copied
        done.add(photo_id)
        if not there:
            record_kept_copy(conn, photo_id, bytes(sha256), kept)
            gone += 1
            continue
        # the original's file, which its library may delete: this copy's takes its place
        record_paths(conn, [Sighting(bytes(sha256), str(kept))])
        conn.execute(sql.FORGET_FOREIGN_UPLOAD_PATH, [photo_id, bytes(raw)])
        conn.execute(sql.REFRESH_DISPLAY_PATHS, [[photo_id]])
        copied += 1
    return gone, copied


def paths_of_photo(conn: psycopg.Connection, photo_id: int) -> list[Path]:
    """Every stored path of the photo, newest first, as the file system names it."""
    return [paths.from_bytes(raw) for _, raw, _ in _paths_of(conn, [photo_id])]


@dataclass(frozen=True)
class PhotoPlace:
    """Where a stored photo is now: a path that exists, or its last known path, missing."""

    path: str  # readable
    missing: bool
    raw: bytes | None = None  # the path's exact bytes; None where only the text is known


def photo_places(conn: psycopg.Connection, last_known: Mapping[int, str]
                 ) -> dict[int, PhotoPlace]:
    """For each photo (its id, and the path it was last shown at: photos.path), its newest
    path whose file exists; missing when none does, at its newest path, or, where it has none
    left (a broken file written over its only one), at the one last known."""
    places: dict[int, PhotoPlace] = {}
    folders: dict[bytes, bool] = {}  # each folder looked at once (a page of 1,000 faces in
    # one folder looked at it 1,000 times, and every folder above it: probe scale42)
    for photo_id, raw, text in _paths_of(conn, set(last_known)):
        known = places.get(photo_id)
        if known is not None and not known.missing:
            continue
        if paths.exists(raw, folders):
            places[photo_id] = PhotoPlace(text, False, raw)
        elif known is None:
            places[photo_id] = PhotoPlace(text, True, raw)
    return {photo_id: places.get(photo_id, PhotoPlace(path, True))
            for photo_id, path in last_known.items()}


@dataclass
class Removal:
    photos: int = 0  # deleted with their faces: no path left
    faces: int = 0
    paths: int = 0  # paths forgotten (a photo with another path keeps it)
    # (a prune) faces given the people of a deleted photo's, moved and edited (index.py)
    people_kept: int = 0
    # The named people (hidden ones aside) of faces deleted: their names stay kept for the
    # photos' content (found again, they get them back); a prune emptied people unsaid.
    named: list[str] = field(default_factory=list)
    # files remembered as failed (failed_files) forgotten there: no photo's paths, and a
    # remove of a folder of 25,000 of them said only "0 paths forgotten" (probe scale39)
    failed_files: int = 0
    # (a prune) photos with no path left kept, not deleted: people of their faces wait for a
    # pack that has not analysed their new version yet (moved and edited, or edited in place),
    # which gives them over when it does (index.people_of_pruned); and those packs. Deleted,
    # the names were lost for good (probe packs56).
    waiting: int = 0
    waiting_for: list[str] = field(default_factory=list)
    # faces_by_pack: `faces` by pack. A photo each of two packs analysed has its faces twice,
    # once a pack, and "1 photo and their 8 faces" of a photo of 4 faces misled (probe packs56).
    faces_by_pack: dict[str, int] = field(default_factory=dict)
    # (a remove) the folders a link given, gone now, led to that are still there: their
    # photos are the folder's, maybe indexed there directly, and are not forgotten through
    # the link (remove that folder to forget them)
    linked_still_there: list[str] = field(default_factory=list)


@dataclass
class ForgottenPaths:
    """What forget_paths forgot: how many paths, and the photos they held (and those shown
    there that no path holds)."""

    paths: int
    photos: list[int]


def _under(targets: Sequence[PathLike]) -> dict[str, list]:
    """PATHS_UNDER's (and FAILURES_UNDER's) parameters for these files and folders."""
    exact = [to_bytes(t) for t in targets]
    # A path as pgface shows it (`\xNN` for a byte that is not UTF-8) names that file too,
    # but only while no file has that name itself: `x\xff.jpg` typed was also the file named
    # with a backslash, and removing one forgot both.
    texts = [os.fspath(t) for t in targets
             if readable(t) == os.fspath(t) and not os.path.lexists(to_bytes(t))]
    # ... and that folder, everything under it: the shown text matched stored paths only as a
    # whole (`path = ANY(texts)`), so a folder named as shown forgot nothing (probe
    # living42). Its bytes are the folder's (paths.shown_bytes), ranged as any folder's: only
    # where nothing is there at those bytes either. The text reads both ways, and a folder
    # literally named `Jos\xe9`, deleted, removed so forgot the b"Jos\xe9" folder beside it
    # too, which is there (probe reprobe43); that one is given by its own name.
    exact += [raw for text in texts
              if (raw := paths.shown_bytes(text)) is not None and not os.path.lexists(raw)]
    ranges = [paths.prefix_range(raw) for raw in exact]
    return {"exact": exact, "texts": texts,
            "lows": [low for low, _ in ranges], "highs": [high for _, high in ranges]}


def _shown_under(targets: Sequence[PathLike]) -> dict[str, list[str]]:
    """PATHLESS_SHOWN_UNDER's parameters: each of these files and folders as shown (readable),
    where no other name shown so is there: a literal `Jos\\xe9` and b"Jos\\xe9" read alike, and
    a photo shown under that text may have been under either (only its text is kept)."""
    shown = []
    for target in targets:
        raw = to_bytes(target)
        text = readable(raw)
        others = {text.encode("utf-8"), paths.shown_bytes(text)} - {raw, None}
        if not any(os.path.lexists(other) for other in others):
            shown.append(text)
    # each also a folder: the text strictly inside it, [folder/, folder0) ('/' is 0x2f)
    folders = [t if t.endswith("/") else t + "/" for t in shown]
    return {"files": shown, "lows": folders, "highs": [f[:-1] + "0" for f in folders]}


def forget_paths(conn: psycopg.Connection, targets: Sequence[PathLike], gone_only: bool
                 ) -> ForgottenPaths:
    """Forget the stored paths at or under these (files or folders); with gone_only, only
    those whose file is gone. Their photos are not deleted yet (delete_forgotten). The photos
    shown there that no path holds any more (remember_failures: a broken file written over
    their only one) are among them, to be deleted: such a photo kept its faces and people,
    search gave it `missing` at its last path, and a remove of that file or its folder forgot
    nothing (PATHS_UNDER reads only photo_paths) while a prune of the folder, emptied, pointed
    to `remove` (probe reprobe43)."""
    rows = conn.execute(sql.PATHS_UNDER, _under(targets)).fetchall()
    folders: dict[bytes, bool] = {}
    doomed = [bytes(raw) for raw, _ in rows
              if not gone_only or not paths.exists(bytes(raw), folders)]
    touched = {r[0] for r in conn.execute(sql.DELETE_PATHS, [doomed])} if doomed else set()
    touched |= {r[0] for r in conn.execute(sql.PATHLESS_SHOWN_UNDER, _shown_under(targets))}
    return ForgottenPaths(len(doomed), sorted(touched))


def pathless_photos(conn: psycopg.Connection, photo_ids: Sequence[int], everywhere: bool
                    ) -> list[int]:
    """Those of these photos (everywhere: any photo) that no path holds."""
    return [r[0] for r in conn.execute(sql.PATHLESS_PHOTOS, {"ids": list(photo_ids),
                                                            "everywhere": everywhere})]


def delete_forgotten(conn: psycopg.Connection, forgotten: ForgottenPaths, gone_only: bool,
                     pathless: Sequence[int] | None = None) -> Removal:
    """After forget_paths: the photos left with no path deleted with their faces (gone_only:
    any photo in the library with no path; pathless: those, found by pathless_photos
    already), the others shown at a path they still have."""
    removal = Removal(paths=forgotten.paths)
    doomed = (list(pathless) if pathless is not None
              else pathless_photos(conn, forgotten.photos, gone_only))
    if doomed:
        removal.named = [r[0] for r in conn.execute(sql.NAMED_ON_PHOTOS, {"photos": doomed})]
        removal.faces_by_pack = dict(conn.execute(sql.FACES_OF_PHOTOS_BY_PACK,
                                                  [doomed]).fetchall())
    removal.photos, removal.faces = _delete_photos(conn, doomed)
    if forgotten.photos:
        conn.execute(sql.REFRESH_DISPLAY_PATHS, [forgotten.photos])
    return removal


# The paths of one file name looked at for a photo a prune deletes; more: none is taken.
MOST_NAMESAKE_PATHS = 8


def present_namesakes(conn: psycopg.Connection, pathless: Sequence[int]) -> dict[int, int]:
    """For photos no path holds any more whose faces hold people (a prune deletes them next):
    the one other photo recorded at a path of the same file name as the one the photo was
    shown at last, whose file is there, taken at the same time where both say when (as
    gone_namesakes, from the other side). A photo with two such candidates, or a candidate of
    two, gets none; so does one whose file name is at more than MOST_NAMESAKE_PATHS paths."""
    if not pathless:
        return {}
    folders: dict[bytes, bool] = {}
    candidates: dict[int, set[int]] = {}
    for gone, other, raw in conn.execute(sql.NAMESAKES_OF_PATHLESS, {
            "ids": list(pathless), "most": MOST_NAMESAKE_PATHS}).fetchall():
        if paths.exists(bytes(raw), folders):
            candidates.setdefault(gone, set()).add(other)
    found = {gone: next(iter(others)) for gone, others in candidates.items() if len(others) == 1}
    claims = Counter(found.values())
    return {gone: other for gone, other in found.items() if claims[other] == 1}


def any_face_held(conn: psycopg.Connection, photo_ids: Sequence[int]) -> bool:
    """Whether a face of these photos holds a person."""
    return bool(photo_ids) and conn.execute(sql.ANY_FACE_HELD, [list(photo_ids)]).fetchone()[0]


def held_faces_by_pack(conn: psycopg.Connection, photo_ids: Sequence[int]
                       ) -> dict[tuple[int, str], int]:
    """(photo, pack) -> how many of the photo's faces in that pack hold a person."""
    return {(photo, model): count for photo, model, count in conn.execute(
        sql.HELD_FACES_BY_PACK, [list(photo_ids)]).fetchall()}


def linked_folders(conn: psycopg.Connection, roots: Sequence[PathLike]) -> list[Path]:
    """The folders runs before reached through links at or under these roots (real paths, or
    the places of links given), and through links inside those, under which paths are stored
    still."""
    raw = [to_bytes(r) for r in roots]
    ranges = [paths.prefix_range(r) for r in raw]
    rows = conn.execute(sql.LINKED_FOLDERS, {
        "roots": raw, "lows": [low for low, _ in ranges], "highs": [high for _, high in ranges],
    }).fetchall()
    return [paths.from_bytes(bytes(r[0])) for r in rows]


def links_gone(conn: psycopg.Connection) -> list[Path]:
    """The folders reached through links that are gone from where they were (the folder
    holding a link renamed with nothing of its own to follow: store._move_link_records moves
    those it can), under which paths are stored still."""
    rows = conn.execute(sql.STORED_LINK_RECORDS).fetchall()
    return list(dict.fromkeys(paths.from_bytes(bytes(folder)) for place, folder in rows
                              if not os.path.lexists(bytes(place))))


def record_linked_folders(conn: psycopg.Connection,
                          links: Sequence[tuple[PathLike, PathLike]]) -> None:
    """The (place, folder) links a run found, each where the link is and the real folder it
    reaches; the folders linked to before are kept while any path is stored under them."""
    pairs = sorted({(to_bytes(place), to_bytes(folder)) for place, folder in links})
    if pairs:
        conn.execute(sql.RECORD_LINKED_FOLDERS, [[p for p, _ in pairs], [f for _, f in pairs]])
    conn.execute(sql.DROP_LINKED_FOLDERS, {"now": [f for _, f in pairs]})


@contextmanager
def index_run(pool: ConnectionPool) -> Iterator[Callable[[], AbstractContextManager[bool]]]:
    """Held for an index run's life, on a connection of its own (sql.INDEX_RUN_LOCK); yields
    `alone()`, a context that says whether no other run holds it, and while it is open keeps
    runs from starting (their first step, taking the lock, waits): what a run alone does then
    cannot miss what another is about to record. False where that cannot be told (the
    connection lost to a restarted server)."""
    with pool.connection() as conn:
        conn.autocommit = True  # a session lock, and no transaction left open for the run
        held = False

        @contextmanager
        def alone() -> Iterator[bool]:
            try:
                only = bool(conn.execute(sql.INDEX_RUN_ALONE).fetchone()[0])
            except psycopg.Error:
                only = False
            try:
                yield only
            finally:
                if only:
                    with suppress(psycopg.Error):
                        conn.execute(sql.INDEX_RUN_ALONE_DONE)

        try:
            conn.execute(sql.INDEX_RUN_LOCK)
            held = True
            yield alone
        finally:
            with suppress(psycopg.Error):
                if held:
                    conn.execute(sql.INDEX_RUN_UNLOCK)  # the pool keeps the session
                conn.autocommit = False


def record_formers(conn: psycopg.Connection, pairs: Sequence[tuple[int, int]],
                   by_name: bool = False) -> None:
    """Record (former photo, photo now at its path) pairs: photos edited in place, found by
    record_paths, in the transaction that stored them; by_name: photos moved and edited, found
    by their file name (people_of_moved_and_edited, people_of_pruned: migration 0037)."""
    if pairs:
        conn.execute(sql.RECORD_FORMERS, [by_name, [f for f, _ in pairs],
                                          [n for _, n in pairs]])


def recorded_formers(conn: psycopg.Connection, former_ids: Sequence[int]
                     ) -> dict[int, set[int]]:
    """Those of these photos recorded as formers, with the photos now at their paths."""
    found: dict[int, set[int]] = {}
    if former_ids:
        for former, now in conn.execute(sql.RECORDED_FORMERS, [list(former_ids)]):
            found.setdefault(former, set()).add(now)
    return found


def maybe_elsewhere(conn: psycopg.Connection, formers: Mapping[int, Iterable[int]],
                    read: Collection[bytes] = ()) -> set[int]:
    """Those of these formers (-> the photos now at their paths) that a file not read may
    hold: a path of a photo now at theirs, other than those in READ (a run's, known to hold
    what they are recorded with), has a file changed since it was recorded (a/x.jpg and
    b/y.jpg swapped, only `a` indexed since)."""
    return {former for former, now in formers.items() if changed_paths(conn, now, read)}


def forget_formers_recorded(conn: psycopg.Connection, pairs: Sequence[tuple[int, int]]
                            ) -> None:
    """Forget these recorded (former, photo now) pairs: the photos are not one photo's
    versions after all."""
    if pairs:
        conn.execute(sql.FORGET_FORMERS_RECORDED, {"formers": [f for f, _ in pairs],
                                                   "now": [n for _, n in pairs]})


def stored_formers(conn: psycopg.Connection, roots: Sequence[PathLike]) -> dict[int, set[int]]:
    """The recorded former photos whose new version is at or under one of these real paths
    (a run's), with the photos now at their paths."""
    raw = [to_bytes(r) for r in roots]
    ranges = [paths.prefix_range(r) for r in raw]
    formers: dict[int, set[int]] = {}
    for former, now in conn.execute(sql.STORED_FORMERS_UNDER, {
            "roots": raw, "lows": [low for low, _ in ranges],
            "highs": [high for _, high in ranges]}):
        formers.setdefault(former, set()).add(now)
    return formers


@dataclass(frozen=True)
class PersonLeft:
    """A named person of a former version's faces who holds no face of a photo that holds
    its content now (PLACE), and how many faces they had in the former."""

    place: int
    person_id: int
    name: str
    faces: int


def people_left_behind(conn: psycopg.Connection, pairs: Sequence[tuple[int, int]]
                       ) -> list[PersonLeft]:
    """For (former photo, photo that holds its content now) pairs: the named people of the
    former's faces who hold no face of the photo now (sql.PEOPLE_LEFT_BEHIND)."""
    if not pairs:
        return []
    return [PersonLeft(*r) for r in conn.execute(sql.PEOPLE_LEFT_BEHIND, {
        "formers": [former for former, _ in pairs], "places": [place for _, place in pairs]})]


def photos_of_faces(conn: psycopg.Connection, face_ids: Sequence[int]) -> set[int]:
    """The photos these faces are of."""
    return {r[0] for r in conn.execute(sql.PHOTOS_OF_FACES, [list(face_ids)])} \
        if face_ids else set()


def photos_with_nobody(conn: psycopg.Connection, photo_ids: Sequence[int]) -> list[int]:
    """Those of these photos none of whose faces holds a person."""
    return [r[0] for r in conn.execute(sql.PHOTOS_WITH_NOBODY, [list(photo_ids)])] \
        if photo_ids else []


def formers_waiting_for_packs(conn: psycopg.Connection, formers: dict[int, set[int]]
                              ) -> set[int]:
    """Those of these formers (former -> photos now at its paths) with a face a person holds
    in a pack that has not analysed a photo now at its path."""
    pairs = [(former, now) for former, nows in formers.items() for now in nows]
    if not pairs:
        return set()
    return {r[0] for r in conn.execute(sql.FORMERS_WAITING_FOR_PACKS, {
        "formers": [f for f, _ in pairs], "now": [n for _, n in pairs]})}


def packs_of_photos(conn: psycopg.Connection, photo_ids: Sequence[int]) -> list[str]:
    """The packs that analysed any of these photos."""
    return [r[0] for r in conn.execute(sql.PACKS_OF_PHOTOS, [list(photo_ids)])]


def formers_recorded_for(conn: psycopg.Connection, photo_ids: Sequence[int]) -> list[int]:
    """The recorded formers whose new version is one of these photos."""
    if not photo_ids:
        return []
    return [r[0] for r in conn.execute(sql.FORMERS_OF_DELETED, [list(photo_ids)])]


def repoint_formers(conn: psycopg.Connection, deleted: dict[int, set[int]]) -> list[int]:
    """The formers recorded for these photos (about to be deleted -> photos now at their
    paths) recorded for the photos now at their paths instead; those photos."""
    pairs = [(gone, now) for gone, nows in deleted.items() for now in nows]
    if not pairs:
        return []
    return sorted({r[0] for r in conn.execute(sql.REPOINT_FORMERS, {
        "deleted": [g for g, _ in pairs], "now": [n for _, n in pairs]})})


def formers_of_pack(conn: psycopg.Connection, photo_ids: Sequence[int], model: str
                    ) -> list[tuple[int, int, bool]]:
    """The recorded (former, new version, found by file name) of these photos whose former
    MODEL analysed."""
    if not photo_ids:
        return []
    return [(former, now, by_name) for former, now, by_name in conn.execute(
        sql.FORMERS_OF_PACK, [list(photo_ids), model])]


def packs_by_photo(conn: psycopg.Connection, photo_ids: Sequence[int]) -> dict[int, set[str]]:
    """Each of these photos -> the packs that analysed it."""
    found: dict[int, set[str]] = {}
    if photo_ids:
        for photo, model in conn.execute(sql.PACKS_BY_PHOTO, [list(photo_ids)]):
            found.setdefault(photo, set()).add(model)
    return found


def drop_settled_formers(conn: psycopg.Connection, former_ids: Sequence[int]) -> None:
    """Of these recorded formers, forget those found at a path again: no formers any more."""
    if former_ids:
        conn.execute(sql.DROP_SETTLED_FORMERS, [list(former_ids)])


def changed_paths(conn: psycopg.Connection, photo_ids: Iterable[int], read: Collection[bytes]
                  ) -> bool:
    """Whether any stored path of these photos, other than those in `read`, has a file that
    changed since its stamp was recorded (or has no stamp to tell): it may hold other content
    now."""
    rows = conn.execute(sql.STAMPS_OF_PHOTOS, [list(photo_ids)]).fetchall()
    for raw, size, mtime_ns, ctime_ns in rows:
        if bytes(raw) in read:
            continue
        try:
            info = os.stat(bytes(raw))
        except OSError:
            continue  # gone, or not to be checked: holds nothing we could find
        if size is None or (info.st_size, info.st_mtime_ns) != (size, mtime_ns) or (
                ctime_ns is not None and info.st_ctime_ns != ctime_ns):
            return True
    return False


def delete_pathless(conn: psycopg.Connection, pathless: Sequence[int],
                    places: Sequence[tuple[int, int]] = (),
                    successors: Mapping[int, int] | None = None) -> tuple[int, int]:
    """Delete these photos, which no path holds (pathless_photos, in the caller's transaction),
    with their faces (their people kept for the content, should it be found again); (photos,
    faces) deleted. Former versions of edits in place: PLACES, (former, a photo that holds its
    content now) pairs, where the people the edit lost wait (sql.REMEMBER_PEOPLE); SUCCESSORS,
    each deleted photo's version now at its path, which what waited for it waits for now."""
    return _delete_photos(conn, list(pathless), places, successors or {})


def _delete_photos(conn: psycopg.Connection, pathless: list[int],
                   places: Sequence[tuple[int, int]] = (),
                   successors: Mapping[int, int] | None = None) -> tuple[int, int]:
    if not pathless:
        return 0, 0
    faces = conn.execute(sql.COUNT_FACES_OF_PHOTOS, [pathless]).fetchone()[0]
    conn.execute(sql.REMEMBER_PEOPLE, {  # for the photo found again, or a later version
        "photos": pathless, "formers": [f for f, _ in places], "places": [p for _, p in places],
        "only": None})
    if successors:
        conn.execute(sql.REPOINT_WAITS, {"deleted": list(successors),
                                         "places": list(successors.values())})
    return len(conn.execute(sql.DELETE_PHOTOS, [pathless]).fetchall()), faces


def photos_waited_for(conn: psycopg.Connection, photo_ids: Sequence[int]) -> list[int]:
    """Those of these photos that people an edit lost wait for (sql.REMEMBER_PEOPLE)."""
    if not photo_ids:
        return []
    return [r[0] for r in conn.execute(sql.PHOTOS_WAITED_FOR, [list(photo_ids)])]


def unanalysed_paths(conn: psycopg.Connection, model: str) -> tuple[list[Path], list[Path]]:
    """The stored paths of photos this pack has not analysed: those that still exist, and one
    path of each photo none of whose paths does (moved or deleted since)."""
    return _present_and_gone([(r[0], bytes(r[1]))
                              for r in conn.execute(sql.UNANALYSED_PATHS, [model])])


def _present_and_gone(rows: list[tuple[int, bytes]]) -> tuple[list[Path], list[Path]]:
    """(photo id, path bytes) rows: the paths that exist, and one path of each photo none of
    whose paths does."""
    folders: dict[bytes, bool] = {}
    present = [(photo, raw) for photo, raw in rows if paths.exists(raw, folders)]
    reachable = {photo for photo, _ in present}
    gone = {photo: raw for photo, raw in rows if photo not in reachable}
    return ([paths.from_bytes(raw) for _, raw in present],
            [paths.from_bytes(raw) for raw in sorted(set(gone.values()))])


def outdated_paths(conn: psycopg.Connection, model: str) -> tuple[list[Path], list[Path]]:
    """The stored paths of photos this pack analysed at a revision older than
    ANALYSIS_REVISION: those that still exist, and one path of each photo none of whose paths
    does (as unanalysed_paths gives them)."""
    return _present_and_gone([(r[0], bytes(r[1])) for r in conn.execute(
        sql.OUTDATED_PATHS, [model, ANALYSIS_REVISION])])


def count_outdated(conn: psycopg.Connection, model: str) -> int:
    """How many photos this pack analysed at a revision older than ANALYSIS_REVISION."""
    return int(conn.execute(sql.OUTDATED_ANALYSES, [model, ANALYSIS_REVISION]).fetchone()[0])


def analysed_share(conn: psycopg.Connection, files: Sequence[Path], model: str,
                   sample: int = 1000) -> float:
    """The share of these files whose path holds a photo this pack has analysed, or whose size
    and modification time a path of such a photo recorded (moved there), from up to SAMPLE of
    them evenly spread: how much of a run over them would be skipped."""
    if not files:
        return 0.0
    count = min(sample, len(files))
    chosen = [files[i * len(files) // count] for i in range(count)]
    sizes: list[int | None] = []
    times: list[int | None] = []
    for path in chosen:
        try:
            info = os.stat(path)
        except OSError:  # gone, or not ours to look at: by its path alone
            sizes.append(None)
            times.append(None)
        else:
            sizes.append(info.st_size)
            times.append(info.st_mtime_ns)
    known = conn.execute(sql.ANALYSED_AT_PATHS, {
        "paths": [to_bytes(canonical(f)) for f in chosen], "sizes": sizes, "times": times,
        "model": model}).fetchone()[0]
    return known / len(chosen)


def pack_coverage(conn: psycopg.Connection, model: str) -> tuple[int, int]:
    """(photos stored that a run can analyse, photos this pack has analysed)."""
    photos, analysed = conn.execute(sql.PACK_COVERAGE, [model]).fetchone()
    if analysed < photos:  # the other query only where there is a gap: it reads every photo
        photos -= conn.execute(sql.PATHLESS_UNANALYSED, [model]).fetchone()[0]
    return photos, analysed


T = TypeVar("T")


class KeptCounts:
    """Counts that cost a scan, kept until PostgreSQL's statistics say their rows changed:
    counted again at most every `recount_s` while the statistics change, and at least every
    `max_age_s` (statistics are seconds late, or off). One count at a time."""

    def __init__(self) -> None:
        self._kept: dict[Hashable, tuple[tuple[int, ...], float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable,
            connection: Callable[[], AbstractContextManager[psycopg.Connection]],
            stamp: Callable[[psycopg.Connection], tuple[int, ...]],
            count: Callable[[psycopg.Connection], T], recount_s: float, max_age_s: float) -> T:
        with self._lock, connection() as conn:
            current = stamp(conn)
            kept = self._kept.get(key)
            now = time.monotonic()
            if kept is not None:
                kept_stamp, at, value = kept
                age = now - at
                if age < max_age_s and (current == kept_stamp or age < recount_s):
                    return value
            value = count(conn)
            self._kept[key] = (current, now, value)
        return value

    def __contains__(self, key: Hashable) -> bool:
        """Whether a count is kept for key, however old."""
        return key in self._kept

    def clear(self) -> None:
        """Forget every count (their rows changed, as the caller knows)."""
        self._kept.clear()


def coverage_stamp(conn: psycopg.Connection) -> tuple[int, ...]:
    """A value that changes whenever rows are added to or deleted from photos or
    photo_analyses, or photo_analyses' are updated (PostgreSQL's statistics: seconds late, all
    zeros if they are off)."""
    return tuple(int(v or 0) for row in conn.execute(sql.COVERAGE_STAMP) for v in row)


def count_faces(conn: psycopg.Connection, model: str) -> int:
    """Faces stored for the model: the size of the library a search of it looks through."""
    return int(conn.execute(sql.FACES_OF_MODEL, [model]).fetchone()[0])


# pgvector refuses an hnsw.ef_search above this; its iterative scans go on past it.
MAX_EF_SEARCH = 1000


# Faces at the k-th match's distance that a search still puts in id order (sql.NEAREST_FACES).
TIED_ROWS = 16


def set_knn(conn: psycopg.Connection, ef_search: int, k: int) -> None:
    """This transaction's HNSW search settings for k neighbours: ef_search below k would cap
    the result at ef_search rows, and above 1000 pgvector refuses it (a search for the top
    1,000 matches of a stored face asks for 1,001 rows); iterative scans give the rest."""
    conn.execute(sql.SET_EF_SEARCH, [str(min(max(ef_search, k), MAX_EF_SEARCH))])
    conn.execute(sql.SET_ITERATIVE_SCAN)


def nearest_faces(
    conn: psycopg.Connection,
    query: np.ndarray,
    model: str,
    k: int,
    min_similarity: float,
    ef_search: int,
) -> list[MatchRow]:
    """The k faces of `model` nearest to `query` with cosine similarity >= min_similarity;
    faces at the same distance by id. Where the k-th ties with the last row scanned, the scan
    goes on, 4 times as far each time, until a row past the ties is met: with more than
    TIED_ROWS copies of one photo, the index's order cut the smallest ids, and the photo
    itself dropped out of its own top 1 (probe verdicts: 24 copies)."""
    scan = k + TIED_ROWS
    while True:
        with conn.transaction():
            set_knn(conn, ef_search, scan)
            rows = conn.execute(
                sql.NEAREST_FACES,
                {
                    "query": np.asarray(query, dtype=np.float32),
                    "model": model,
                    "k": k,
                    "scan": scan,
                    "max_distance": 1.0 - min_similarity,
                },
            ).fetchall()
        # r[7]: the row's distance; r[8], r[9]: the scan's last distance and its rows
        if len(rows) < k or rows[-1][9] < scan or rows[-1][7] < rows[-1][8]:
            break
        scan *= 4
    return [
        MatchRow(r[0], r[1], r[2], list(r[3]), r[4], r[5], float(r[6])) for r in rows
    ]


def stats(conn: psycopg.Connection, model: str) -> dict:
    """Counts and versions; `people` as the active pack (MODEL) shows them."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(sql.STATS, {"model": model}).fetchone()
    row["faces_per_model"] = dict(conn.execute(sql.FACES_PER_MODEL).fetchall())
    row["photos_per_model"] = dict(conn.execute(sql.ANALYSES_PER_MODEL).fetchall())
    return row


def lock_upload_file(conn: psycopg.Connection, path: Path) -> None:
    """Hold the lock of an uploaded photo's kept file until the transaction ends."""
    conn.execute(sql.UPLOAD_FILE_LOCK, [str(path)])


def path_held(conn: psycopg.Connection, path: Path) -> bool:
    """Whether a stored photo is at this path."""
    return conn.execute(sql.PATH_HELD, [paths.to_bytes(path)]).fetchone()[0]


def lock_photo(conn: psycopg.Connection, photo_id: int) -> bool:
    """Hold the photo's row (a delete, and another upload of it, wait) until the transaction
    ends; False if it is gone."""
    return conn.execute(sql.LOCK_PHOTO, [photo_id]).fetchone() is not None


def get_photo(conn: psycopg.Connection, photo_id: int) -> dict | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql.GET_PHOTO, [photo_id]).fetchone()


def list_photos(conn: psycopg.Connection, offset: int = 0, limit: int = 100) -> list[dict]:
    """Photos in id order, `limit` of them from `offset`."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql.LIST_PHOTOS, [limit, offset]).fetchall()


def count_photos(conn: psycopg.Connection) -> int:
    return conn.execute(sql.COUNT_PHOTOS).fetchone()[0]


def delete_photo(conn: psycopg.Connection, photo_id: int) -> bool:
    return conn.execute(sql.DELETE_PHOTO, [photo_id]).rowcount > 0


def faces_of_photo(conn: psycopg.Connection, photo_id: int) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql.FACES_OF_PHOTO, [photo_id]).fetchall()


def get_face(conn: psycopg.Connection, face_id: int) -> dict | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql.GET_FACE, [face_id]).fetchone()


def face_as_query(conn: psycopg.Connection, face_id: int) -> dict | None:
    """A stored face's model, embedding (float32 numpy), box, landmarks, score, photo size."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(sql.FACE_AS_QUERY, [face_id]).fetchone()
    if row is not None:
        row["embedding"] = as_array(row["embedding"])
    return row


def face_crop(conn: psycopg.Connection, face_id: int) -> bytes | None:
    row = conn.execute(sql.FACE_CROP, [face_id]).fetchone()
    return bytes(row[0]) if row else None


def delete_face(conn: psycopg.Connection, face_id: int) -> bool:
    photo_ids = [r[0] for r in conn.execute(sql.DELETE_FACE, [face_id])]
    recount_faces(conn, photo_ids)
    return bool(photo_ids)


def recount_faces(conn: psycopg.Connection, photo_ids: Sequence[int]) -> None:
    if photo_ids:
        conn.execute(sql.RECOUNT_FACES, [list(photo_ids)])
        conn.execute(sql.RECOUNT_ANALYSED_FACES, [list(photo_ids)])


@dataclass(frozen=True)
class StoredFace(NamedFile):
    face_id: int
    path: str
    photo_width: int
    photo_height: int
    bbox: list[float]
    det_score: float
    # left out of ==: numpy's array == array is an array, and comparing two results of one
    # face raised "The truth value of an array ... is ambiguous" (probe pyapi39)
    embedding: np.ndarray = field(compare=False)
    person_id: int | None


def faces_of_paths(
    conn: psycopg.Connection, files: Sequence[PathLike], model: str,
    folders: Sequence[PathLike] = ()
) -> dict[str, list[StoredFace]]:
    """The stored faces (with embeddings) of the photos at these paths, and of those inside
    these folders (at any depth), by readable path. The folders' paths are listed first
    (sql.PATHS_UNDER, remove's): asked for in one statement with the files, an OR of the
    two, PostgreSQL read every face of the pack (170 ms for one file among 200,000
    synthetic photos, 1.6 ms by the paths alone)."""
    found: dict[str, list[StoredFace]] = {}
    wanted = [to_bytes(p) for p in files]
    # A file given as pgface shows it (`\xNN` for a byte that is not UTF-8: a result's path),
    # where no file has that text as its name: the stored paths shown so, as remove takes it
    # (its faces were {}, probe searchface). Their text, not the bytes the escapes stand for:
    # a name may hold a backslash's `\xe9` and a byte both.
    shown = [os.fspath(p) for p in files
             if paths.shown_bytes(os.fspath(p)) is not None and not os.path.lexists(p)]
    if shown:
        wanted += [bytes(r[0]) for r in conn.execute(sql.PATHS_SHOWN_AS, [shown])]
    if folders:
        ranges = [paths.prefix_range(to_bytes(folder)) for folder in folders]
        wanted += [bytes(r[0]) for r in conn.execute(sql.PATHS_UNDER, {
            "exact": [], "texts": [], "lows": [low for low, _ in ranges],
            "highs": [high for _, high in ranges]})]
    for row in conn.execute(sql.FACES_OF_PATHS, [wanted, model]):
        face = with_name_bytes(StoredFace(row[3], row[0], row[1], row[2], list(row[4]),
                                          float(row[5]), as_array(row[6]), row[7]), row[8])
        found.setdefault(face.path, []).append(face)
    return found


def check_recognizer(conn: psycopg.Connection, model: str, recognizer_sha256: str,
                     storing: bool = False) -> None:
    """ModelPackError where the library knows the pack by another recognizer by now than
    the one that made the caller's vectors: a name under which nothing had been stored is
    taken over by the next recognizer used under it (known_pack), and a process that checked
    it before would compare its vectors with the new one's (a search of a stored photo scored
    0.09 against itself), or store them among them. storing: the record is held until the
    caller's transaction ends, so that a take-over waits for the store, then sees it."""
    known = conn.execute(sql.MODEL_PACK_STORING if storing else sql.MODEL_PACK,
                         [model]).fetchone()
    if known is not None and known[0] != recognizer_sha256:  # none: not recorded (a reader's)
        raise ModelPackError(
            f"model pack {model!r}: the library knows it by another recognizer since "
            f"{known[2]:%Y-%m-%d %H:%M} (sha256 {known[0][:12]}..., this process's "
            f"{recognizer_sha256[:12]}...); nothing was "
            + ("stored" if storing else "compared: start it again to use the library's"))


def known_pack(conn: psycopg.Connection, name: str, recognizer_sha256: str,
               recognizer_file: str) -> tuple[str, str, datetime] | None:
    """Record the pack at its first use; returns how the library knew it before where its
    recognizer was another (sha256, file, first used), None where it is the same.

    A pack recorded but under which nothing was stored is this one now: a first try with a
    truncated recognizer recorded its digest, and the name was refused ever after, once the
    file was whole ("not the pack whose embeddings this library holds": none)."""
    try:
        with conn.transaction():
            conn.execute(sql.RECORD_MODEL_PACK, [name, recognizer_sha256, recognizer_file])
            known = conn.execute(sql.MODEL_PACK, [name]).fetchone()
            if known is not None and known[0] != recognizer_sha256:
                # The update first: it waits for a store of the recorded recognizer's faces
                # under way (add_photos holds the row); the check after it then sees them.
                conn.execute(sql.ADOPT_MODEL_PACK, [recognizer_sha256, recognizer_file, name])
                if conn.execute(sql.PACK_STORED_ANYTHING, [name]).fetchone()[0]:
                    raise psycopg.Rollback()
    except (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege):
        pass  # a role that may only read: it checks, the next writer records
    known = conn.execute(sql.MODEL_PACK, [name]).fetchone()
    if known is None or known[0] == recognizer_sha256:
        return None
    if not conn.execute(sql.PACK_STORED_ANYTHING, [name]).fetchone()[0]:
        # a reader, which may not take the record over: nothing is stored under the name to
        # compare with (its searches check the record again: check_recognizer)
        return None
    return tuple(known)


def same_paths_run_lock(conn: psycopg.Connection, key: bytes, wait: bool) -> bool:
    """Take the session lock of index runs over KEY (library, pack, paths, as bytes: a path
    need not be UTF-8) on CONN, where no other session holds it (wait: once it lets go);
    whether it was taken."""
    number = int.from_bytes(hashlib.sha256(key).digest()[:4], "big", signed=True)
    if not wait:
        return bool(conn.execute(sql.TRY_SAME_PATHS_RUN_LOCK, [number]).fetchone()[0])
    conn.execute(sql.SAME_PATHS_RUN_LOCK, [number])
    return True
