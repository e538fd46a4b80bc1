"""Lists page one way everywhere; search by a stored face; boxes inside the photo, 1 decimal."""

from __future__ import annotations

import importlib.resources
import io
from pathlib import Path

from api_jobs import index_path
from conftest import PHOTOS, require_data
from fastapi.testclient import TestClient
from PIL import Image

from pgface import Pgface, Settings
from pgface.api import create_app
from pgface.imaging import read_photo
from pgface.models.analysis import FaceAnalyzer


def pages(client: TestClient, url: str, key: str, limit: int) -> tuple[list, int]:
    """Every item of a list, `limit` at a time, following next_offset; and the total."""
    items, offset, total = [], 0, None
    while offset is not None:
        page = client.get(url, params={"limit": limit, "offset": offset}).json()
        assert page["limit"] == limit and page["offset"] == offset and len(page[key]) <= limit
        assert total in (None, page["total"])
        items += page[key]
        offset, total = page["next_offset"], page["total"]
    return items, total


def test_every_list_pages_with_limit_offset_and_total(
        settings: Settings, analyzer: FaceAnalyzer) -> None:
    require_data(PHOTOS / "people")
    settings = settings.model_copy(update={"api_roots": [PHOTOS]})
    with TestClient(create_app(settings, analyzer)) as client:
        for folder in ("people/obama", "people/biden", "people/kit_harington", "groups/bbt1.jpg"):
            index_path(client, folder)
        photos, total = pages(client, "/api/photos", "photos", 2)
        assert len(photos) == total == client.get("/api/stats").json()["photos"]
        assert len({p["id"] for p in photos}) == total
        assert [p["id"] for p in photos] == sorted(p["id"] for p in photos)

        faces = [f["id"] for p in photos for f in client.get(f"/api/photos/{p['id']}").json()
                 ["faces"]]
        for number, face in enumerate(faces[:5]):
            client.post("/api/people/name", json={"face_ids": [face], "name": f"p{number}"})
        client.post("/api/people/name", json={"face_ids": faces[5:8], "name": "many"})
        people, total = pages(client, "/api/people", "people", 2)
        assert total == 6 and len({p["id"] for p in people}) == 6
        assert [p["name"] for p in people] == sorted(p["name"] for p in people)
        own, total = pages(client, "/api/people/many/faces", "faces", 2)
        assert total == 3 and sorted(f["face_id"] for f in own) == sorted(faces[5:8])
        changes, total = pages(client, "/api/people/history", "changes", 4)
        assert total == 6 and [c["id"] for c in changes] == sorted(
            (c["id"] for c in changes), reverse=True)
        past = client.get("/api/photos", params={"offset": 10_000}).json()
        assert past["photos"] == [] and past["next_offset"] is None
        # An offset and limit that sum past 32,767 (small numbers were sent as smallint, their
        # sum overflowed: a 400 for the pages of a library of more people than that).
        for url, key in (("/api/photos", "photos"), ("/api/people?unnamed=true", "people"),
                         ("/api/people/review", "people"), ("/api/people/many/faces", "faces"),
                         ("/api/people/many/photos", "photos"),
                         ("/api/people/history", "changes")):
            for offset in (32_700, 32_767, 2_147_483_000):
                answer = client.get(url, params={"limit": 1000, "offset": offset})
                assert answer.status_code == 200, (url, offset, answer.text)
                assert answer.json()[key] == [], (url, offset)
        assert client.get("/api/people?limit=0").status_code == 422
        assert client.get("/api/people/history?offset=-1").status_code == 422


def test_search_by_a_stored_face_answers_like_a_photo_search(
        settings: Settings, analyzer: FaceAnalyzer) -> None:
    require_data(PHOTOS / "people")
    settings = settings.model_copy(update={"api_roots": [PHOTOS]})
    with TestClient(create_app(settings, analyzer)) as client:
        for person in ("obama", "biden", "kit_harington"):
            index_path(client, f"people/{person}")
        by_path = {Path(p["path"]).name: p for p in client.get("/api/photos").json()["photos"]}
        obama = client.get(f"/api/photos/{by_path['obama.jpg']['id']}").json()
        [face] = obama["faces"]
        found = client.get(f"/api/faces/{face['id']}/search")
        assert found.status_code == 200, found.text
        body = found.json()
        query = (PHOTOS / "queries" / "obama1.jpg").read_bytes()
        by_photo = client.post("/api/search", files={"file": ("q.jpg", query)}).json()
        assert set(body) == set(by_photo)
        assert set(body["faces"][0]["matches"][0]) == set(by_photo["faces"][0]["matches"][0])
        assert body["source"] == f"face {face['id']}"
        assert (body["width"], body["height"]) == (obama["width"], obama["height"])
        [query_face] = body["faces"]
        assert query_face["bbox"] == face["bbox"]
        matches = query_face["matches"]
        assert face["id"] not in {m["face_id"] for m in matches}  # not itself
        assert Path(matches[0]["path"]).name == "obama2.jpg"
        assert all(m["similarity"] >= body["threshold"] for m in matches)
        assert len(client.get(f"/api/faces/{face['id']}/search?top=1&threshold=-1").json()
                   ["faces"][0]["matches"]) == 1
        missing = client.get("/api/faces/987654321/search")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def within(box: list[float], width: int, height: int) -> bool:
    x1, y1, x2, y2 = box
    return 0 <= x1 <= x2 <= width and 0 <= y1 <= y2 <= height


def one_decimal(box: list[float]) -> bool:
    return all(round(v, 1) == v for v in box)


def test_boxes_are_clipped_to_the_photo_and_rounded_alike(
        settings: Settings, analyzer: FaceAnalyzer, tmp_path: Path) -> None:
    source = require_data(PHOTOS / "people" / "obama" / "obama.jpg")
    # Cut through the middle of the face: the detector's box reaches past the left edge.
    [face] = analyzer.detect(read_photo(source, settings.max_file_bytes, settings.max_pixels).image)
    image = Image.open(source).convert("RGB")
    cut = image.crop((int((face.bbox[0] + face.bbox[2]) / 2), 0, image.width, image.height))
    data = io.BytesIO()
    cut.save(data, "JPEG", quality=95)
    files = {"file": ("cut.jpg", data.getvalue(), "image/jpeg")}
    width, height = cut.size
    with TestClient(create_app(settings, analyzer)) as client:
        stored = client.post("/api/photos", files=files).json()["photo"]
        assert stored["faces"], "the cut face is still found"
        boxes = [f["bbox"] for f in stored["faces"]]
        assert min(b[0] for b in boxes) == 0.0  # it was cut by the edge
        face_id = stored["faces"][0]["id"]
        boxes.append(client.get(f"/api/faces/{face_id}").json()["bbox"])
        searched = client.post("/api/search?threshold=-1", files=files).json()
        boxes += [f["bbox"] for f in searched["faces"]]
        boxes += [m["bbox"] for f in searched["faces"] for m in f["matches"]]
        boxes += [f["bbox"] for f in client.post("/api/identify", files=files).json()["faces"]]
        compared = client.post("/api/compare", files={"a": files["file"], "b": files["file"]})
        boxes += [compared.json()["face_a"], compared.json()["face_b"]]
        client.post("/api/people/name", json={"face_ids": [face_id], "name": "cut"})
        boxes += [f["bbox"] for f in client.get("/api/people/cut/faces").json()["faces"]]
        assert len(boxes) >= 8
        for box in boxes:
            assert within(box, width, height) and one_decimal(box), box


def test_the_migration_clips_boxes_stored_before(pf: Pgface) -> None:
    source = require_data(PHOTOS / "people" / "obama" / "obama.jpg")
    pf.index([source])
    script = (importlib.resources.files("pgface.db") / "migrations" / "0007_clip_boxes.sql")
    with pf.pool.connection() as conn:
        width, height = conn.execute("SELECT width, height FROM photos").fetchone()
        conn.execute("UPDATE faces SET bbox = ARRAY[-12.5, -3, %s, %s]::real[]",
                     [width + 40, height + 7])
        conn.execute(script.read_text())
        [bbox] = conn.execute("SELECT bbox FROM faces").fetchone()
    assert bbox == [0, 0, width, height]
