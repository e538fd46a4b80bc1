"""People: list, get, name faces, rename, merge, split, delete, erase, cluster, identify."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from pydantic import BaseModel, Field

from pgface.api.deps import get_pf, get_settings, require_read, require_write, run_cpu
from pgface.api.limits import read_upload
from pgface.imaging import decode_photo
from pgface.library import Pgface
from pgface.people import Person

router = APIRouter(prefix="/people", tags=["people"])
identify_router = APIRouter(tags=["people"])

FaceIds = Annotated[list[int], Field(min_length=1, max_length=10_000)]
PersonRef = int | str


class NameFaces(BaseModel):
    face_ids: FaceIds
    name: str = Field(min_length=1, max_length=200)


class Rename(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class Merge(BaseModel):
    source: PersonRef = Field(description="Id or name of the person whose faces move")
    target: PersonRef = Field(description="Id or name of the person who keeps them (and the name)")


class Split(BaseModel):
    face_ids: FaceIds
    name: str | None = Field(None, max_length=200, description="None: a new unnamed person")


class Cluster(BaseModel):
    full: bool = Field(False, description="Take back clustering's earlier choices and start over")


def _person(person: Person) -> dict:
    return {**asdict(person), "faces_url": f"/api/people/{person.id}/faces"}


@router.get("", dependencies=[Depends(require_read)])
def list_people(request: Request, unnamed: bool = Query(
        False, description="Also the unnamed people that clustering found")) -> dict:
    """Named people by name, and with `unnamed=true` the people clustering found."""
    return {"people": [_person(p) for p in get_pf(request).people.list(unnamed)]}


@router.post("/name", dependencies=[Depends(require_write)])
def name_faces(request: Request, body: NameFaces) -> dict:
    """Put these faces in the person called `name`, created if new."""
    return _person(get_pf(request).people.name_faces(body.face_ids, body.name))


@router.post("/merge", dependencies=[Depends(require_write)])
def merge(request: Request, body: Merge) -> dict:
    """Move every face of `source` into `target` and delete `source`."""
    return _person(get_pf(request).people.merge(body.source, body.target))


@router.post("/cluster", dependencies=[Depends(require_write)])
async def cluster(request: Request, body: Cluster | None = None) -> dict:
    """Give faces no person holds a person: join an existing one or found a new, unnamed one."""
    full = body.full if body else False
    return (await run_cpu(request, get_pf(request).people.cluster, full)).to_dict()


# `ref` is a name or an id: People tries the name first, then a number.
@router.get("/{ref}", dependencies=[Depends(require_read)])
def get_person(request: Request, ref: str) -> dict:
    """One person by id or name."""
    return _person(get_pf(request).people.get(ref))


@router.get("/{ref}/faces", dependencies=[Depends(require_read)])
def person_faces(request: Request, ref: str) -> dict:
    """Every face of the person, with its photo and box."""
    faces = get_pf(request).people.faces(ref)
    return {"faces": [{**asdict(f), "crop_url": f"/api/faces/{f.face_id}/crop"} for f in faces]}


@router.patch("/{ref}", dependencies=[Depends(require_write)])
def rename(request: Request, ref: str, body: Rename) -> dict:
    """Give the person a (new) name; 409 if another person has it (merge them instead)."""
    return _person(get_pf(request).people.rename(ref, body.name))


@router.post("/{ref}/split", dependencies=[Depends(require_write)])
def split(request: Request, ref: str, body: Split) -> dict:
    """Move some of the person's faces into a new person; returns the new person."""
    return _person(get_pf(request).people.split(ref, body.face_ids, body.name))


@router.delete("/{ref}", dependencies=[Depends(require_write)])
def delete(request: Request, ref: str) -> dict:
    """Delete the person; their faces stay, without a person."""
    return {"deleted": ref, "faces_released": get_pf(request).people.delete(ref)}


@router.post("/{ref}/erase", dependencies=[Depends(require_write)])
def erase(request: Request, ref: str) -> dict:
    """Delete the person, all their faces, and every photo only they were in."""
    faces, photos = get_pf(request).people.erase(ref)
    return {"erased": ref, "faces_deleted": faces, "photos_deleted": photos}


def _identify(pf: Pgface, data: bytes, name: str, max_bytes: int, max_pixels: int,
              threshold: float | None) -> dict:
    # Decoded here with the API's upload limits; the library takes the validated bytes.
    decode_photo(data, name, max_bytes, max_pixels)
    result = pf.people.identify(data, threshold)
    result.source = name
    return result.to_dict()


@identify_router.post("/identify", dependencies=[Depends(require_read)])
async def identify(
    request: Request,
    file: Annotated[UploadFile, File(description="Photo whose faces are identified")],
    threshold: float | None = Query(None, ge=-1.0, le=1.0),
) -> dict:
    """For each face in the photo, the most likely known person (or none), with confidence."""
    settings = get_settings(request)
    data, name = await read_upload(file, settings.api_max_upload_bytes, "file")
    return await run_cpu(request, _identify, get_pf(request), data, name,
                         settings.api_max_upload_bytes, settings.api_max_pixels, threshold)
