"""Faces: details, the stored crop as a JPEG, delete."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from pgface.api.convert import face_json
from pgface.api.deps import JsonRoute, get_pf, require_read, require_write
from pgface.api.models import Deleted, FaceOut, error_responses
from pgface.db import store
from pgface.errors import NotFoundError

router = APIRouter(route_class=JsonRoute, prefix="/faces", tags=["faces"])
ERRORS = error_responses(401, 403, 404, 422, 500, 503)


@router.get("/{face_id}", dependencies=[Depends(require_read)], response_model=FaceOut,
            responses=ERRORS)
def get_face(request: Request, face_id: int) -> dict:
    """One face: its photo, box, landmarks, detection score and person."""
    with get_pf(request).pool.connection() as conn:
        row = store.get_face(conn, face_id)
    if row is None:
        raise NotFoundError(f"face {face_id} not found", "face")
    return face_json(row)


JPEG = {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}


@router.get("/{face_id}/crop", dependencies=[Depends(require_read)],
            response_class=Response, responses={200: JPEG, **ERRORS})
def get_face_crop(request: Request, face_id: int) -> Response:
    """The square JPEG thumbnail of the face stored at indexing time."""
    with get_pf(request).pool.connection() as conn:
        crop = store.face_crop(conn, face_id)
    if crop is None:
        raise NotFoundError(f"face {face_id} not found", "face")
    # Crops never change for a face id; ids are never reused.
    return Response(crop, media_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=86400"})


@router.delete("/{face_id}", dependencies=[Depends(require_write)], response_model=Deleted,
               responses=ERRORS)
def delete_face(request: Request, face_id: int) -> dict:
    """Forget one face (a false detection, say); its photo stays."""
    with get_pf(request).pool.connection() as conn, conn.transaction():
        if not store.delete_face(conn, face_id):
            raise NotFoundError(f"face {face_id} not found", "face")
    return {"deleted": face_id}
