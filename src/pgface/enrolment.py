"""Enrolment: which face of each photo of folder/<name>/ is the person's (People.enrol)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg

from pgface.db import people_store as ps
from pgface.errors import ImageError, NotFoundError, PersonError, os_reason
from pgface.imaging import IMAGE_SUFFIXES, read_file
from pgface.index import Failure, IndexReport, passed_over, photo_files


@dataclass
class EnrolReport:
    people: dict[str, int] = field(default_factory=dict)  # name -> faces enrolled now
    # name -> how many of those this enrolment gave them (the others were theirs already: a
    # rerun that put one face back was recorded "enrolled 8 faces", probe library39)
    new: dict[str, int] = field(default_factory=dict)
    index: IndexReport | None = None
    no_face: list[str] = field(default_factory=list)  # photos in which no face was found
    several_faces: list[str] = field(default_factory=list)  # photos where one face was chosen
    # faces another person holds (people.HeldFace): not moved
    left: list = field(default_factory=list)
    # those faces, taken with move (people.HeldFace, the person they were taken from): a
    # script could not tell which decisions an enrolment with --move overrode
    moved: list = field(default_factory=list)
    # What enrolment itself could not use (indexing's failures are in index.failures): a
    # person folder whose name no person can have, a photo unreadable since it was indexed.
    failures: list[Failure] = field(default_factory=list)


def enrol_faces(conn: psycopg.Connection, model: str, files: list[Path], report: EnrolReport,
                max_bytes: int, timeout_s: float) -> list[int]:
    """The face to enrol of each photo: its only face, or the one most like the person's
    single-face photos (the photo listed in report.several_faces); photos without one listed.
    A file the indexing could not read is passed over (its failure is in report.index); one
    that cannot be read now (read as the indexer reads: a regular file, within max_bytes and
    timeout_s) is a failure in report.failures."""
    failed = {f.source for f in report.index.failures} if report.index else set()
    hashes = {}
    for file in files:
        if str(file) in failed:
            continue  # unreadable, or not a photo: reading it again would fail the whole call
        try:
            hashes[hashlib.sha256(read_file(file, max_bytes, timeout_s)).digest()] = file
        except ImageError as exc:  # gone, locked or swapped for a FIFO since it was indexed
            report.failures.append(Failure(str(file), exc.reason))
    by_photo: dict[bytes, list[tuple[int, list[float]]]] = {}
    for sha, face_id, bbox, _ in ps.faces_of_hashes(conn, list(hashes), model):
        by_photo.setdefault(sha, []).append((face_id, bbox))
    chosen = [faces[0][0] for faces in by_photo.values() if len(faces) == 1]
    crowded = {sha: faces for sha, faces in by_photo.items() if len(faces) > 1}
    if crowded:
        reference = ps.embeddings(conn, model, chosen)[1] if chosen else None
        for sha, faces in crowded.items():
            report.several_faces.append(str(hashes[sha]))
            chosen.append(likeliest(conn, model, faces, reference))
    report.no_face.extend(str(f) for sha, f in hashes.items() if sha not in by_photo)
    return chosen


def likeliest(conn: psycopg.Connection, model: str, faces: list[tuple[int, list[float]]],
               reference: np.ndarray | None) -> int:
    """Of several faces in one photo, the one nearest the person's other faces, else largest."""
    if reference is None or len(reference) == 0:
        return max(faces, key=lambda f: (f[1][2] - f[1][0]) * (f[1][3] - f[1][1]))[0]
    ids, vectors = ps.embeddings(conn, model, [f[0] for f in faces])
    scores = (vectors @ reference.T).max(axis=1)
    return int(ids[int(scores.argmax())])


LOOSE_PHOTO = ("a photo in the enrolment folder itself is no one's: put it in a folder named "
               "after its person")


def loose_photos(folder: Path) -> list[Failure]:
    """The photos directly in FOLDER, beside the person folders: enrolment passed over them
    without a word (whose they are, only a person folder says)."""
    return [Failure(str(p), LOOSE_PHOTO) for p in sorted(folder.iterdir())
            if p.suffix.lower() in IMAGE_SUFFIXES and not passed_over(p.name, False)
            and p.is_file()]


def person_folders(folder: Path) -> tuple[list[tuple[Path, list[Path]]], list[Failure]]:
    """Each person folder under FOLDER with its photos: every photo under it, sub-folders
    (`Biden/2019/...`) included, listed by indexing's own walk, which indexes them; the
    person folder's photos alone left a sub-folder's indexed and given to nobody, unsaid.
    And the failures of the person folders that gave no photo for a reason (one that cannot
    be listed was left out, unsaid, the run ending well)."""
    try:
        is_folder = folder.is_dir()
    except OSError as exc:  # a name too long, a folder this user may not enter: was raw
        raise NotFoundError(f"{folder}: cannot be reached ({os_reason(exc)})") from None
    if not is_folder:  # a photo given for the folder of person folders is no folder
        raise NotFoundError(f"{folder}: " + ("not a folder (enrolment reads a folder of "
                                             "person folders)" if folder.exists()
                                             else "no such folder"))
    try:
        # Passed over as indexing's walk passes them over: `@eaDir` is nobody's name, and
        # `._photo.jpg` no photo.
        subs = sorted(p for p in folder.iterdir() if p.is_dir() and not passed_over(p.name, True))
    except OSError as exc:  # a folder that may be read but not entered (mode 600): was raw
        raise NotFoundError(f"{folder}: cannot list folder ({os_reason(exc)})") from None
    found, failures = [], []
    for sub in subs:
        walked, files = photo_files([sub])
        if files:
            found.append((sub, files))  # indexing walks it again, and says what failed
        else:
            failures += walked.failures
    if not found and not failures:
        raise PersonError(f"{folder}: no person folders with photos in it "
                          f"(expected {folder}/<name>/*.jpg)")
    return found, failures
