"""Search by an uploaded photo or a stored face, and compare two uploaded photos."""

from __future__ import annotations

from typing import Annotated, NamedTuple

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BeforeValidator

from pgface.api.deps import JsonRoute, get_pf, get_settings, require_read, run_cpu
from pgface.api.limits import read_upload
from pgface.api.models import ComparisonOut, SearchOut, error_responses
from pgface.api.urls import api_url
from pgface.imaging import decode_photo, display_jpeg
from pgface.library import Pgface
from pgface.models.analysis import Face
from pgface.search import (
    MAX_TOP,
    SearchResult,
    analyze_photos,
    compare_photos,
    photo_notices,
    search_faces,
)

router = APIRouter(route_class=JsonRoute, tags=["search"])
UPLOAD_ERRORS = error_responses(400, 401, 403, 413, 422, 500, 503)


def _empty_is_not_given(value: object) -> object:
    """An optional query parameter sent empty (`threshold=`, as an HTML form sends a field
    left blank, and as docs/http.md's table writes it) is not given: its default. It was a 422
    "Input should be a valid number" (probe http19)."""
    return None if value == "" else value


EmptyIsDefault = BeforeValidator(_empty_is_not_given)
Top = Annotated[int | None, Query(ge=1, le=MAX_TOP, description="Matches per face; default "
                                  "(also when empty): PGFACE_TOP_K (10)"), EmptyIsDefault]
Threshold = Annotated[float | None, Query(
    ge=-1.0, le=1.0, allow_inf_nan=False,
    description="Minimum cosine similarity; default (also when empty): PGFACE_THRESHOLD, "
                "else the pack's calibrated one"), EmptyIsDefault]
MinQuality = Annotated[float | None, Query(ge=0.0, le=1.0, allow_inf_nan=False,
                                           description="Quality floor: query "
                                           "faces scoring below it are reported, not searched; "
                                           "default (also when empty): PGFACE_MIN_QUALITY"),
                       EmptyIsDefault]
# compare's own words: a face below the floor is not compared (search reports it)
CompareMinQuality = Annotated[float | None, Query(
    ge=0.0, le=1.0, allow_inf_nan=False,
    description="Quality floor: faces scoring below it are not compared (a photo with none "
                "above it is a 422 no_face); default (also when empty): PGFACE_MIN_QUALITY"),
    EmptyIsDefault]


class _Analysed(NamedTuple):
    """A query photo's faces and what the answer says of it (not its pixels: they are let
    go as soon as the faces are found)."""
    faces: list[Face]
    width: int
    height: int
    orientation: int
    warning: str | None


def _analyze(pf: Pgface, data: bytes, name: str, max_bytes: int, max_pixels: int
             ) -> _Analysed:
    photo = decode_photo(data, name, max_bytes, max_pixels, pf.settings.decode_keep_side)
    return _Analysed(analyze_photos(pf.analyzer, [photo])[0], photo.width, photo.height,
                     photo.orientation, photo.warning)


def result_json(result: SearchResult, width: int, height: int, orientation: int = 1) -> dict:
    """The search answer: the library's result, the query photo's size and the EXIF
    orientation it was turned upright by, and links."""
    answer = result.to_dict()
    answer.update(width=width, height=height, orientation=orientation)
    for face in answer["faces"]:
        for match in face["matches"]:
            match["crop_url"] = api_url(f"/api/faces/{match['face_id']}/crop")
            match["image_url"] = api_url(f"/api/photos/{match['photo_id']}/image")
    return answer


@router.post("/search", dependencies=[Depends(require_read)], response_model=SearchOut,
             responses=UPLOAD_ERRORS)
async def search(
    request: Request,
    file: Annotated[UploadFile, File(description="Query photo; every face in it is searched")],
    top: Top = None,
    threshold: Threshold = None,
    min_quality: MinQuality = None,
) -> dict:
    """For every face in the photo, the stored faces at or above the threshold, best first,
    with their photo, box and person. Boxes are in the pixels of the (EXIF-rotated) photo.
    A face whose quality is below the floor is reported with `searched: false`."""
    pf, settings = get_pf(request), get_settings(request)
    data, name = await read_upload(file, settings.api_max_upload_bytes, "file")
    # Inference is bounded by the CPU limiter; the database part runs beside other requests.
    photo = await run_cpu(request, _analyze, pf, data, name, settings.api_max_upload_bytes,
                          settings.api_max_pixels)
    chosen = pf.threshold if threshold is None else threshold
    floor = settings.min_quality if min_quality is None else min_quality
    found: SearchResult = await run_in_threadpool(
        search_faces, pf.read_pool, pf.analyzer.model_name, photo.faces,
        settings.top_k if top is None else top, chosen,
        settings.ef_search, name, pf.threshold, floor, pf.analyzer.recognizer_sha256)
    found.notices = photo_notices(name, photo.warning) + await run_in_threadpool(pf.notices)
    return result_json(found, photo.width, photo.height, photo.orientation)


@router.post("/display", dependencies=[Depends(require_read)], response_class=Response,
             responses={200: {"content": {"image/jpeg": {"schema": {
                 "type": "string", "format": "binary"}}}}, **UPLOAD_ERRORS})
async def display_photo(
    request: Request,
    file: Annotated[UploadFile, File(description="A photo, as for a search")],
) -> Response:
    """The photo as a search reads it, to show beside its boxes: upright by its EXIF
    orientation, as a JPEG at most 2048 px on its longest side. The web page shows a query
    photo so when the browser would show it otherwise (a WebP turned by EXIF) or not at all
    (HEIC, TIFF, PPM)."""
    settings = get_settings(request)
    data, name = await read_upload(file, settings.api_max_upload_bytes, "file")
    shown = await run_cpu(request, display_jpeg, data, name, settings.api_max_upload_bytes,
                          settings.api_max_pixels)
    return Response(shown, media_type="image/jpeg")


@router.get("/faces/{face_id}/search", dependencies=[Depends(require_read)],
            response_model=SearchOut, responses=error_responses(401, 403, 404, 422, 500, 503))
def search_face(request: Request, face_id: int, top: Top = None,
                threshold: Threshold = None, min_quality: MinQuality = None) -> dict:
    """The stored faces most like a stored face (the face itself left out), in the same shape
    as a photo search: one query face (the stored one, its box in its photo's pixels, and
    `width`/`height` of its photo) with its matches, best first."""
    pf = get_pf(request)
    found = pf.search_stored_face(face_id, top, threshold, min_quality)
    found.result.notices = pf.notices(found.result.model)
    return result_json(found.result, found.photo_width, found.photo_height)


def _compare(pf: Pgface, a: tuple[bytes, str], b: tuple[bytes, str], max_bytes: int,
             max_pixels: int, threshold: float | None, min_quality: float | None) -> dict:
    # Each named by its field with its file name, as an empty upload is ("a 'photo.jpg' is
    # empty"): a phone or a browser names both photo.jpg, and "photo.jpg: no face found" did
    # not say which had none (probe http19).
    photo_a, photo_b = (decode_photo(data, f"{field} {name!r}", max_bytes, max_pixels,
                                     pf.settings.decode_keep_side)
                        for field, (data, name) in (("a", a), ("b", b)))
    chosen = pf.threshold if threshold is None else threshold
    floor = pf.settings.min_quality if min_quality is None else min_quality
    return compare_photos(pf.analyzer, photo_a, photo_b, chosen, floor).to_dict()


@router.post("/compare", dependencies=[Depends(require_read)], response_model=ComparisonOut,
             responses=UPLOAD_ERRORS)
async def compare(
    request: Request,
    a: Annotated[UploadFile, File(description="A photo (its main face is tried in b)")],
    b: Annotated[UploadFile, File(description="Another (its main face is tried in a)")],
    threshold: Threshold = None,
    min_quality: CompareMinQuality = None,
) -> dict:
    """Is the main face of either photo someone in the other? The order does not matter;
    faces below the quality floor are not compared. 422 when either has no face, or none
    good enough."""
    pf, settings = get_pf(request), get_settings(request)
    limit = settings.api_max_upload_bytes
    upload_a = await read_upload(a, limit, "a")
    upload_b = await read_upload(b, limit, "b")
    return await run_cpu(request, _compare, pf, upload_a, upload_b, limit,
                         settings.api_max_pixels, threshold, min_quality)
