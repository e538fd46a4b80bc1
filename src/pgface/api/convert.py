"""Rows and results as JSON-ready dicts (bytes as hex, links to crops and images)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pgface.api.urls import api_url
from pgface.db.store import QUALITY_COLUMNS, quality_json


def _plain(value: Any) -> Any:
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return round(value, 4)
    return value


def face_json(row: dict) -> dict:
    face = {k: _plain(v) for k, v in row.items() if k not in QUALITY_COLUMNS}
    face["quality"] = quality_json(row)
    face["person_name"] = face.pop("name", None)
    face["bbox"] = [round(float(v), 1) for v in row["bbox"]]
    if "landmarks" in row:
        face["landmarks"] = [round(float(v), 1) for v in row["landmarks"]]
    face["crop_url"] = api_url(f"/api/faces/{row['id']}/crop")
    return face


def photo_json(row: dict, faces: list[dict] | None = None) -> dict:
    photo = {k: _plain(v) for k, v in row.items()}
    photo["image_url"] = api_url(f"/api/photos/{row['id']}/image")
    if faces is not None:
        photo["faces"] = [face_json(f) for f in faces]
    return photo
