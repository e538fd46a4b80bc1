"""Search by an uploaded photo, and compare two uploaded photos."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool

from pgface.api.deps import get_pf, get_settings, require_read, run_cpu
from pgface.api.limits import read_upload
from pgface.imaging import decode_photo
from pgface.library import Pgface
from pgface.models.analysis import Face
from pgface.search import SearchResult, compare_photos, search_faces

router = APIRouter(tags=["search"])


def _analyze(pf: Pgface, data: bytes, name: str, max_bytes: int, max_pixels: int
             ) -> tuple[list[Face], int, int]:
    photo = decode_photo(data, name, max_bytes, max_pixels)
    return pf.analyzer.analyze([photo.image])[0], photo.width, photo.height


@router.post("/search", dependencies=[Depends(require_read)])
async def search(
    request: Request,
    file: Annotated[UploadFile, File(description="Query photo; every face in it is searched")],
    top: int = Query(10, ge=1, le=1000, description="Matches per face"),
    threshold: float | None = Query(None, ge=-1.0, le=1.0,
                                    description="Minimum cosine similarity; default calibrated"),
) -> dict:
    """For every face in the photo, the stored faces at or above the threshold, best first,
    with their photo, box and person. Boxes are in the pixels of the (EXIF-rotated) photo."""
    pf, settings = get_pf(request), get_settings(request)
    data, name = await read_upload(file, settings.api_max_upload_bytes, "file")
    # Inference is bounded by the CPU limiter; the database part runs beside other requests.
    faces, width, height = await run_cpu(request, _analyze, pf, data, name,
                                         settings.api_max_upload_bytes, settings.api_max_pixels)
    chosen = pf.threshold if threshold is None else threshold
    found: SearchResult = await run_in_threadpool(
        search_faces, pf.read_pool, pf.analyzer.model_name, faces, top, chosen,
        settings.ef_search, name, pf.threshold)
    found.notices = await run_in_threadpool(pf.notices)
    result = found.to_dict()
    result.update(width=width, height=height)
    for face in result["faces"]:
        for match in face["matches"]:
            match["crop_url"] = f"/api/faces/{match['face_id']}/crop"
            match["image_url"] = f"/api/photos/{match['photo_id']}/image"
    return result


def _compare(pf: Pgface, a: tuple[bytes, str], b: tuple[bytes, str], max_bytes: int,
             max_pixels: int, threshold: float | None) -> dict:
    photo_a = decode_photo(*a, max_bytes, max_pixels)
    photo_b = decode_photo(*b, max_bytes, max_pixels)
    chosen = pf.threshold if threshold is None else threshold
    return compare_photos(pf.analyzer, photo_a, photo_b, chosen).to_dict()


@router.post("/compare", dependencies=[Depends(require_read)])
async def compare(
    request: Request,
    a: Annotated[UploadFile, File(description="Its largest face is compared")],
    b: Annotated[UploadFile, File(description="Every face in it is tried")],
    threshold: float | None = Query(None, ge=-1.0, le=1.0),
) -> dict:
    """Is the largest face of photo `a` someone in photo `b`? 422 when either has no face."""
    pf, settings = get_pf(request), get_settings(request)
    limit = settings.api_max_upload_bytes
    upload_a = await read_upload(a, limit, "a")
    upload_b = await read_upload(b, limit, "b")
    return await run_cpu(request, _compare, pf, upload_a, upload_b, limit,
                         settings.api_max_pixels, threshold)
