"""Search by photo and 1:1 compare, on real photos, models and PostgreSQL."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import LFW, PHOTOS, require_data
from PIL import Image

from pgface import ImageError, NoFaceError, NotFoundError, Pgface, SearchResult, Settings
from pgface.db import store
from pgface.errors import InvalidInputError
from pgface.library import build_analyzer
from pgface.models.packs import sample_photos, vectron_model_folder
from pgface.paths import readable


def identity(path: str) -> str:
    return Path(path).parent.name


def test_query_photos_find_their_people(enrolled: Pgface) -> None:
    pf = enrolled  # the photos of people/ indexed
    result = pf.search(PHOTOS / "queries" / "obama1.jpg")
    assert len(result.faces) == 1
    matches = result.faces[0].matches
    assert matches and all(m.similarity >= result.threshold for m in matches)
    assert [m.similarity for m in matches] == sorted((m.similarity for m in matches), reverse=True)
    assert {identity(m.path) for m in matches} == {"obama"}

    pair = pf.search(PHOTOS / "queries" / "obama_and_biden.jpg")
    best = {identity(face.matches[0].path) for face in pair.faces if face.matches}
    assert best == {"obama", "biden"}


def test_no_match_and_no_face_are_answers(pf: Pgface) -> None:
    require_data(PHOTOS)
    pf.index([PHOTOS / "people" / "obama"])
    stranger = pf.search(PHOTOS / "people" / "bbt-sheldon" / sorted(
        (PHOTOS / "people" / "bbt-sheldon").iterdir())[0].name)
    assert len(stranger.faces) == 1 and stranger.faces[0].matches == []
    nobody = pf.search(PHOTOS / "not-faces" / "white.png")
    assert nobody.faces == []


def test_top_and_threshold_bound_the_results(pf: Pgface) -> None:
    pf.index(sample_photos())
    t1 = [p for p in sample_photos() if p.name == "t1.jpg"][0]
    loose = pf.search(t1, top=3, threshold=-1.0)
    assert all(len(face.matches) == 3 for face in loose.faces)
    exact = pf.search(t1, threshold=0.99)
    # Each face of t1 finds exactly itself.
    assert all(len(face.matches) == 1 and face.matches[0].similarity > 0.99
               for face in exact.faces)
    # The most matches there are, and no more: pgvector refuses an ef_search over 1,000
    # (1,001 rows are asked for when a stored face's own row is left out).
    stored = sum(len(f) for f in pf.photo_faces(sample_photos()).values())
    widest = pf.search(t1, top=np.int64(1000), threshold=-1.0)
    assert all(len(face.matches) == stored for face in widest.faces)
    # a whole float is that many, as the CLI's --top 10.0 and HTTP's ?top=10.0 take it
    assert all(len(face.matches) == 2 for face in pf.search(t1, top=2.0, threshold=-1.0).faces)
    with pf.pool.connection() as conn:
        query = np.asarray(pf.embed(t1)[0], dtype=np.float32)
        assert len(store.nearest_faces(conn, query, "buffalo_sc", 1001, -1.0, 200)) == stored
    for top, threshold, reason in ((0, None, "top is 1 to 1000 matches per face, not 0"),
                                   (-5, None, "not -5"), (2000, None, "not 2000"),
                                   (True, None, "not True"), (2.5, None, "not 2.5"),
                                   (3, 5.0, "threshold is a cosine similarity, -1 to 1"),
                                   # a TypeError from the comparison, '<=' float and str
                                   (3, "0.3", "threshold is a cosine similarity, -1 to 1, "
                                              "not '0.3'")):
        with pytest.raises(InvalidInputError, match=reason):
            pf.search(t1, top=top, threshold=threshold)


def test_a_stored_face_is_searched_without_its_photo(pf: Pgface) -> None:
    """Pgface.search_face: a stored face's nearest stored faces, itself left out, as an exact
    computation over every stored embedding ranks them."""
    pf.index(sample_photos())
    stored = [face for faces in pf.photo_faces(sample_photos()).values() for face in faces]
    assert len(stored) > 6
    ids = np.array([face.face_id for face in stored])
    vectors = np.stack([face.embedding for face in stored])
    for face in stored:
        result = pf.search_face(face.face_id, top=4, threshold=-1.0, min_quality=0.0)
        assert result.source == f"face {face.face_id}" and result.threshold == -1.0
        assert len(result.faces) == 1 and result.faces[0].searched
        assert result.faces[0].bbox == [round(float(v), 1) for v in face.bbox]
        similarities = vectors @ face.embedding
        others = [i for i in np.lexsort((ids, -similarities)) if ids[i] != face.face_id][:4]
        matches = result.faces[0].matches
        assert [m.face_id for m in matches] == [int(ids[i]) for i in others]
        assert [m.similarity for m in matches] == pytest.approx(
            [float(similarities[i]) for i in others], abs=2e-4)
    # the pack's own threshold and quality floor when none is given: a face below the floor
    # is said with its quality, not searched, as a photo's is
    defaults = [pf.search_face(face.face_id) for face in stored]
    assert {result.threshold for result in defaults} == {pf.threshold}
    assert all(m.similarity >= pf.threshold for result in defaults for m in result.faces[0].matches)
    unsearched = [r.faces[0] for r in defaults if not r.faces[0].searched]
    assert unsearched and all(face.matches == [] and face.quality["score"] < pf.settings.min_quality
                              for face in unsearched)
    assert any(r.faces[0].matches for r in defaults)
    missing = int(ids.max()) + 1000
    for face_id in (missing, 0, -3, 2**63, np.int64(missing)):
        with pytest.raises(NotFoundError, match=f"face {face_id} not found"):
            pf.search_face(face_id)
    for face_id, top, reason in ((True, 3, "a face id is a whole number, not True"),
                                 ("7", 3, "a face id is a whole number, not '7'"),
                                 # NumPy's TypeError from an array's __index__ (searchface)
                                 (np.array([1]), 3, "a face id is a whole number, not array"),
                                 (int(ids[0]), np.array([3]), "top is 1 to 1000 matches per "
                                                              "face, not array"),
                                 (int(ids[0]), 0, "top is 1 to 1000 matches per face, not 0")):
        with pytest.raises(InvalidInputError, match=reason):
            pf.search_face(face_id, top=top)


def test_a_file_whose_name_is_not_utf8_is_opened_from_every_result(
        pf: Pgface, tmp_path: Path) -> None:
    """A result's `path` is text to print (bytes that are not UTF-8 as \\xNN); its `file` is
    the Path that open() takes, from the name's exact bytes: open(match.path) of `caf\\xe9.jpg`
    found no file, and the text alone named the wrong one of `amb\\xe9.jpg` (a backslash) and
    b"amb\\xe9.jpg", and no file for a name holding both (probe searchface)."""
    yaoming = Image.open([p for p in sample_photos() if p.name == "yaoming.jpg"][0])
    names = [b"caf\xe9.jpg", b"amb\xe9.jpg", b"amb\\xe9.jpg", b"mix\\xe9-\xe9.jpg",
             b"gone\\xe9.jpg"]
    files = [tmp_path / os.fsdecode(name) for name in names]
    for quality, file in zip((95, 90, 85, 80, 75), files, strict=True):  # five photos
        yaoming.save(file, quality=quality)
    pf.index([tmp_path])
    face_of = {file: pf.photo_faces([file])[readable(file)][0].face_id for file in files}
    moved = tmp_path.parent / "elsewhere.jpg"
    files[-1].rename(moved)  # the last one's file gone: its photo missing at its name
    file_of = {face: file for file, face in face_of.items()}
    matches = pf.search(moved, threshold=-1.0).faces[0].matches
    assert {m.face_id for m in matches} == set(file_of)
    assert {m.face_id: m.file for m in matches} == file_of
    assert [m.face_id for m in matches if m.missing] == [face_of[files[-1]]]
    stored = [face for faces in pf.photo_faces([tmp_path]).values() for face in faces]
    assert {face.face_id: face.file for face in stored} == file_of  # as stored, gone or not
    person = pf.people.name_faces(list(file_of), "Yao Ming").person.id
    assert {face.face_id: face.file for face in pf.people.faces(person)} == file_of
    assert {photo.face_ids[0]: photo.file for photo in pf.people.photos(person)[0]} == file_of
    # the text given back: the file that has it as its name, else the one shown so
    by_path = {m.face_id: m.path for m in matches}
    for file, shown_as in ((files[0], files[0]), (files[1], files[2]), (files[3], files[3])):
        given = by_path[face_of[file]]
        assert [f.face_id for f in pf.photo_faces([given])[given]] == [face_of[shown_as]], given
    # the exact file forgotten, not its namesake in text
    assert pf.remove(file_of[face_of[files[1]]]).photos == 1
    assert {f.face_id for faces in pf.photo_faces([tmp_path]).values() for f in faces} == {
        face_of[file] for file in files if file != files[1]}
    json.dumps(pf.search(moved).to_dict())  # the text, as before: a JSON document's
    # the file searched by its file, and one gone: said as text to print (they held lone
    # surrogates: printing them to a UTF-8 stream raised UnicodeEncodeError)
    assert pf.search(files[0]).source == str(tmp_path / "caf\\xe9.jpg")
    assert pf.people.identify(files[0]).source == str(tmp_path / "caf\\xe9.jpg")
    gone = tmp_path / os.fsdecode(b"no-such-\xff.jpg")
    with pytest.raises(ImageError) as raised:
        pf.search(gone)
    assert str(raised.value) == f"{tmp_path}/no-such-\\xff.jpg: no such file"
    assert raised.value.source == str(gone)  # the name itself, to read or remember it by


def test_a_photo_with_no_path_left_is_opened_at_its_name_and_failures_print(
        pf: Pgface, tmp_path: Path) -> None:
    """Probe reprobe34: a photo whose only file a broken file took (missing, with no path
    left: its name known as text alone) gave as its `file` the file of another photo, named
    with the escape's own text, and remove(match.file) forgot that one; and a Failure of a
    name that is not UTF-8 held lone surrogates, so a progress callback's print(failure)
    raised and ended the run."""
    yaoming = Image.open([p for p in sample_photos() if p.name == "yaoming.jpg"][0])
    byte_named, text_named = (tmp_path / os.fsdecode(b"amb\xe9.jpg"),
                              tmp_path / "amb\\xe9.jpg")
    yaoming.save(byte_named, quality=90)
    yaoming.save(text_named, quality=80)
    pf.index([tmp_path])
    gone = pf.photo_faces([byte_named])[readable(byte_named)][0].face_id
    byte_named.write_bytes(b"no photo any more")
    hour_ago = time.time() - 3600  # older than index.STAMP_SETTLE_S: remembered as failed
    os.utime(byte_named, (hour_ago, hour_ago))
    printed: list[str] = []
    report = pf.index([tmp_path], progress=lambda _, failure: failure and printed.append(
        str(failure).encode("utf-8").decode()))  # as a strict UTF-8 stream takes it
    assert [str(f) for f in report.failures] == printed == [
        f"{tmp_path}/amb\\xe9.jpg: not an image (unrecognised format)"]
    assert report.failures[0].source == str(byte_named)  # the name itself
    [match] = [m for m in pf.search(text_named, threshold=-1.0).faces[0].matches
               if m.face_id == gone]
    assert match.missing and match.file == byte_named
    # never the other photo: its text is the other's name too, which a pathless photo is
    # known by alone, so remove leaves it (store._shown_under) and forgets the failed file
    removal = pf.remove(match.file)
    assert (removal.photos, removal.failed_files) == (0, 1), removal
    assert len(pf.photo_faces([text_named])[str(text_named)]) == 1


def test_search_takes_pixels_as_opencv_and_pillow_hold_them(pf: Pgface, tmp_path: Path) -> None:
    t1 = next(p for p in sample_photos() if p.name == "t1.jpg")
    pf.index([t1])
    by_path = pf.search(t1, threshold=0.99)

    def same_faces(result: SearchResult) -> None:
        assert len(result.faces) == len(by_path.faces) >= 6
        for got, want in zip(result.faces, by_path.faces, strict=True):
            assert np.allclose(got.bbox, want.bbox, atol=1.0)
            assert [m.face_id for m in got.matches] == [m.face_id for m in want.matches]

    bgr = cv2.imread(str(t1))
    same_faces(pf.search(bgr, threshold=0.99))  # what the seed's `app.get(img)` takes
    same_faces(pf.search(cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA), threshold=0.99))
    same_faces(pf.search(Image.open(t1), threshold=0.99))
    same_faces(pf.search(t1.read_bytes(), threshold=0.99))
    # A Pillow image is turned upright by its EXIF orientation, as a file is.
    turned = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned a quarter left; shown turned back right
    Image.open(t1).transpose(Image.Transpose.ROTATE_90).save(turned, quality=95, exif=exif)
    upright = pf.search(Image.open(turned), threshold=0.9)
    assert len(upright.faces) == len(by_path.faces)
    assert all(face.matches for face in upright.faces)
    assert pf.compare(bgr[:, :, ::-1].copy(), t1).faces_in_b == len(by_path.faces)
    assert len(pf.people.identify(bgr).faces) == len(by_path.faces)

    for wrong, reason in ((bgr.astype(np.float32), "photo array: pixels are float32, not uint8"),
                          (bgr[:, :, 0].ravel(), "photo array: .* are not an image"),
                          (bgr[:0], "photo array: image is empty"),
                          (b"GIF89a", "photo bytes: "),
                          # a path given as bytes is read as a photo's contents: said so
                          # (probe hostile24: it was "not an image" alone)
                          (bytes(t1), "photo bytes: not an image .*: these bytes read as a "
                                      "path .*; bytes are a photo's contents, a path is given "
                                      "as a str or a Path")):
        with pytest.raises(ImageError, match=reason):
            pf.search(wrong)
    # Something that is no photo input is refused as a wrong path argument is.
    with t1.open("rb") as opened:
        for wrong, reason in (([[0, 0], [0, 0]], "photo: not a photo: a list"),
                              (None, "photo: not a photo: None"),
                              (opened, "photo: not a photo: a BufferedReader")):
            with pytest.raises(InvalidInputError, match=reason):
                pf.search(wrong)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="photo B: not a photo: None"):
        pf.compare(t1, None)  # type: ignore[arg-type]
    # A result says what it was given where there is no file name.
    assert pf.search(t1.read_bytes(), threshold=0.9).source == "photo bytes"
    assert pf.search(bgr, threshold=0.9).source == "photo array"


def test_compare_json_shape_and_decisions(pf: Pgface) -> None:
    require_data(PHOTOS)
    obama = sorted((PHOTOS / "people" / "obama").iterdir())
    same = pf.compare(obama[0], PHOTOS / "queries" / "obama_and_biden.jpg").to_dict()
    assert {"similarity", "threshold", "same_person", "face_a", "face_b"} <= same.keys()
    assert isinstance(same["similarity"], float) and isinstance(same["same_person"], bool)
    assert same["same_person"] and same["faces_in_b"] == 3  # Obama, Biden and a girl
    biden = sorted((PHOTOS / "people" / "biden").iterdir())[0]
    different = pf.compare(obama[0], biden)
    assert not different.same_person and different.similarity < different.threshold
    with pytest.raises(NoFaceError, match="white.png"):
        pf.compare(obama[0], PHOTOS / "not-faces" / "white.png")
    with pytest.raises(InvalidInputError, match="threshold is a cosine similarity, -1 to 1"):
        pf.compare(obama[0], biden, threshold=5)
    with pytest.raises(InvalidInputError, match="not 1.5"):
        pf.people.identify(obama[0], threshold=1.5)
    with pytest.raises(InvalidInputError, match="similarity is a cosine similarity"):
        pf.people.cluster(similarity=-2)
    # A NumPy threshold is taken, and the answers stay JSON (its float32 went in as given:
    # "Object of type float32 is not JSON serializable")
    pf.index(obama[:1])
    for answer in (pf.compare(obama[0], biden, threshold=np.float32(0.3)),
                   pf.search(obama[0], threshold=np.float32(0.3))):
        assert json.loads(json.dumps(answer.to_dict()))["threshold"] == pytest.approx(0.3)


def test_compare_is_the_same_whichever_photo_comes_first(pf: Pgface, tmp_path: Path) -> None:
    """Probe verdicts19: compare took the largest face of its first photo, and in these the
    largest is a stranger's cut by the frame's edge: Winona Ryder was 0.56 "same person" one
    way and -0.06 "different people" the other. And a face too small or blurred for a search
    to use was compared all the same (strangers called the same person)."""
    images = require_data(LFW / "images")
    for name, first, second in (("Winona_Ryder", 6, 15), ("Elsa_Zylberstein", 1, 5)):
        a, b = (images / name / f"{name}_{n:04d}.jpg" for n in (first, second))
        forth, back = pf.compare(a, b), pf.compare(b, a)
        assert forth.same_person and back.same_person, (forth, back)
        assert forth.similarity == back.similarity
        assert (forth.face_a, forth.face_b) == (back.face_b, back.face_a)
        assert (forth.faces_in_a, forth.faces_in_b) == (back.faces_in_b, back.faces_in_a)
    small = tmp_path / "small.jpg"
    Image.open(a).resize((30, 30), Image.Resampling.LANCZOS).save(small)
    with pytest.raises(NoFaceError, match=r"small\.jpg: no face good enough to compare \(1 "
                       r"found, the best's quality 0\.\d+ is below the floor 0\.1: too small"):
        pf.compare(small, b)
    # said as a search says it: at a floor just above it, the score as many decimals as show
    # it below (at 2 decimals it read "0.11, below the floor 0.1096", probe hostile20)
    score = pf.compare(b, small, min_quality=0).quality_b
    assert score is not None
    with pytest.raises(NoFaceError) as refused:
        pf.compare(small, b, min_quality=score + 0.00005)
    said = re.search(r"quality (\S+) is (just )?below the floor", str(refused.value))
    assert said is not None and float(said.group(1)) < score + 0.00005, str(refused.value)
    anyway = pf.compare(b, small, min_quality=0)
    assert anyway.quality_b is not None and anyway.quality_b < 0.1 and anyway.min_quality == 0
    assert pf.compare(a, b).quality_a == 1.0


def test_search_never_mixes_model_packs(settings: Settings, pf: Pgface, tmp_path: Path) -> None:
    other = tmp_path / "other_pack"
    other.mkdir()
    source = vectron_model_folder()
    shutil.copy(source / "scrfd_500m_bnkps.onnx", other / "det_500m.onnx")
    shutil.copy(source / "w600k_mbf.onnx", other / "w600k_mbf.onnx")
    other_settings = settings.model_copy(update={"model_pack": str(other)})
    with Pgface(other_settings, analyzer=build_analyzer(other_settings)) as other_pf:
        assert other_pf.index(sample_photos()).faces > 0
        same_photo = other_pf.search(sample_photos()[0])
        assert same_photo.model == "other_pack" and same_photo.faces[0].matches
    # The same photos, but embedded by another pack: invisible to buffalo_sc searches.
    result = pf.search(sample_photos()[0], threshold=-1.0)
    assert all(face.matches == [] for face in result.faces)
    assert pf.stats()["faces_per_model"].keys() == {"other_pack"}
    # A stored face of the other pack is searched among its own pack's faces, and told of with
    # its own pack's notices: it had buffalo_sc's ("analysed 0 of the 4 stored photos"), and
    # not that other_pack has no calibrated threshold (probe searchface).
    face_id = pf.photo_faces(sample_photos()[0])  # buffalo_sc's: none
    assert face_id == {}
    with Pgface(other_settings, analyzer=build_analyzer(other_settings)) as other_pf:
        face_id = next(iter(other_pf.photo_faces(sample_photos()[0]).values()))[0].face_id
    found = pf.search_face(face_id, threshold=-1.0)
    assert found.model == "other_pack" and found.faces[0].matches
    assert [n.split(":")[0] for n in found.notices] == [
        "model pack 'other_pack' has no calibrated threshold"], found.notices
    assert any("'buffalo_sc' has analysed 0 of the" in n for n in pf.notices())


def test_compare_and_search_decide_on_the_same_cosine_and_show_it(pf: Pgface) -> None:
    """compare decided on the similarity rounded to 4 decimals, search on the exact cosine: at
    a threshold between the two, compare said "same person" of a pair search did not match.
    Both decide on the cosine; and rounded to nearest, what they showed could contradict it
    (0.3390 "different people" at a threshold of 0.339, a match's 0.2600 "possible" under a
    bar of 0.26: probe verdicts). Shown rounded down, at or above a threshold of 4 decimals is
    the decision, both sides of it."""
    people = sorted(p for p in (require_data(PHOTOS) / "people").iterdir() if p.is_dir())
    query = sorted((PHOTOS / "people" / "obama").iterdir())[0]
    [query_face] = pf.embed(query)
    for folder in people:  # a pair whose similarity rounded to nearest went up a step
        for photo in sorted(folder.iterdir()):
            faces = pf.embed(photo)
            if len(faces) != 1 or photo == query:
                continue
            cosine = float(np.dot(query_face, faces[0]))
            if round(cosine, 4) > cosine + 1e-7:
                break
        else:
            continue
        break
    else:
        pytest.fail("no photo whose similarity rounds up")
    down = math.floor(cosine * 10_000) / 10_000
    assert down < cosine < down + 0.0001, cosine
    pf.index(photo)

    def found(threshold: float) -> list[float]:
        return [m.similarity for f in pf.search(query, threshold=threshold).faces
                for m in f.matches if m.path == str(photo.resolve())]

    # at the value shown: the same person, and a match shown as that value
    at = pf.compare(query, photo, threshold=down)
    assert (at.similarity, at.same_person) == (down, True)
    assert found(down) == [down]
    # a step above it: neither (rounded to nearest, both showed that step)
    step = round(down + 0.0001, 4)
    above = pf.compare(query, photo, threshold=step)
    assert (above.similarity, above.same_person) == (down, False)
    assert found(step) == []
    # a face against itself is 1 in both, and the same person at a threshold of 1: compare's
    # float32 dot product gave 0.99999994, "different people" (probe numbers38)
    pf.index(query)
    itself = pf.compare(query, query, threshold=1.0)
    assert (itself.similarity, itself.same_person) == (1.0, True)
    assert [m.similarity for f in pf.search(query, threshold=1.0).faces for m in f.matches
            ] == [1.0]


def test_matches_at_the_same_similarity_come_in_face_id_order_whatever_the_top(
        pf: Pgface) -> None:
    """Pixel-identical copies of a photo (a PNG saved again, a JPEG without its EXIF) hold
    faces at the same distance from any query. They were cut at `top` in the scan's order: a
    probe's top 2 was not the start of its top 10 (the photo itself gave way to its copies,
    indexed after it). Now ties come by face id, so a smaller top is always the start of a
    larger one. Copies are made here by giving faces one embedding, the highest id first, so
    that the table's order is not the ids'. More of them than the rows a search scans past
    its top (store.TIED_ROWS): 24 copies of a photo cut the smallest ids, the photo's own face
    among them, out of its top 1 (probe verdicts)."""
    original = require_data(PHOTOS / "people" / "obama" / "obama.jpg")
    pf.index([original.parent, *sample_photos()])
    with pf.pool.connection() as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM faces ORDER BY id")]
        [own] = [f.face_id for f in pf.photo_faces([original])[str(original.resolve())]]
        extra = store.TIED_ROWS + 8
        assert len(ids) > extra + 1, len(ids)
        copies = sorted({own, *ids[-extra:]}, reverse=True)
        for face_id in copies:  # each row rewritten: the last written, first in the table
            conn.execute("UPDATE faces SET embedding = (SELECT embedding FROM faces WHERE id = "
                         "%s) WHERE id = %s", [own, face_id])
    widest = [m.face_id for m in pf.search(original, top=len(copies) + 5).faces[0].matches]
    assert widest[:len(copies)] == sorted(copies), widest
    for top in range(1, len(copies) + 2):
        found = pf.search(original, top=top).faces[0].matches
        assert [m.face_id for m in found] == widest[:top], top
