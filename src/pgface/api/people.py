"""People: list, review, get, their faces and photos, name faces, rename, hide, merge, split,
remove faces, delete, erase, cluster, identify, history and undo. Every change is recorded as
made by the API key's name ('api' when open)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import Field
from starlette.types import Message, Receive, Scope, Send

from pgface.api.asgi import HttpMiddleware
from pgface.api.deps import JsonRoute, get_pf, get_settings, require_read, require_write, run_cpu
from pgface.api.limits import read_upload
from pgface.api.models import (
    ChangeOut,
    ClusterOut,
    ErasureOut,
    FacesRemoved,
    HistoryPage,
    IdentificationOut,
    NamingOut,
    PeoplePage,
    PersonDeleted,
    PersonFacesPage,
    PersonOut,
    PersonPhotosPage,
    RequestBody,
    error_responses,
    page_fields,
)
from pgface.api.search import MinQuality, Threshold
from pgface.api.urls import api_url
from pgface.db.api_keys import ApiKey
from pgface.errors import InvalidInputError, NotFoundError
from pgface.imaging import decode_photo
from pgface.library import Pgface
from pgface.people import (
    MAX_ID,
    MAX_NAME_CHARS,
    MAX_OFFSET,
    HeldFace,
    People,
    Person,
    PersonConflict,
    PersonPhoto,
)
from pgface.people_history import UndoError

router = APIRouter(route_class=JsonRoute, prefix="/people", tags=["people"])
identify_router = APIRouter(route_class=JsonRoute, tags=["people"])

MAX_FACE_IDS = 10_000
FaceIds = Annotated[list[int], Field(min_length=1, max_length=MAX_FACE_IDS)]
PersonRef = int | str
# A name as sent: a bound on the body only. The 200 characters a name may have are counted in
# its stored form (people._clean_name: spaces collapsed, NFC), as the command line counts
# them; counted here, a name the CLI takes (NFD accents, doubled spaces) was a 422.
NameText = Annotated[str, Field(
    min_length=1, max_length=4 * MAX_NAME_CHARS,
    description=f"At most {MAX_NAME_CHARS} characters once its spaces are collapsed and it is "
                f"in NFC (a longer one is a 400 `invalid_input`); the bound here is the body's")]
# A name the client showed, compared with the stored one: text as a name is (a lone
# surrogate, `\ud800` of an emoji cut in two, reached the database: a 500, probe
# jsoncontract35); pydantic checks it as text where the string is bounded.
ShownNameText = Annotated[str, Field(max_length=4 * MAX_NAME_CHARS)]
READ_ERRORS = error_responses(401, 403, 404, 422, 500, 503)
LIST_ERRORS = error_responses(400, 401, 403, 404, 422, 500, 503)  # a bad `after` token
WRITE_ERRORS = error_responses(400, 401, 403, 404, 409, 422, 500, 503)
Limit = Annotated[int, Query(ge=1, le=1000, description="Items in this page")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items passed over")]


class HeldFaces(RequestBody):
    person_id: int
    face_ids: list[int] = Field(max_length=MAX_FACE_IDS)
    # a 409's `affected` entries carry it, and clients send them back as they came
    name: ShownNameText | None = Field(None, description="The person's name as the 409 gave "
                                      "it (not compared: the faces are)")


class NameFaces(RequestBody):
    face_ids: FaceIds
    name: NameText
    move: bool = Field(False, description="Also move faces that another person holds by a human "
                       "decision; without it such faces answer 409, listing those people")
    expected_held: list[HeldFaces] | None = Field(
        None, max_length=MAX_FACE_IDS, description="With `move`: the `affected` of the 409 "
        "the user confirmed. Held by other people by now (named meanwhile by another client), "
        "the answer is 409 again with `affected` as it is now and `meanwhile`: true, nothing "
        "named; left out, whatever holds them is moved")
    expected_person_id: int | None = Field(
        None, gt=0, le=MAX_ID,
        description="The person the client showed with this name (a split's 409 "
        "`existing`, offered to move the faces into). Sent, the naming is refused with 409 "
        "and `expected_now` where the name reaches another person or nobody by now (that "
        "person renamed, merged or deleted meanwhile): nothing named, no new person made")


class Rename(RequestBody):
    name: NameText
    expected_name: ShownNameText | None = Field(
        None, description="The name the client showed (null: unnamed). Sent, the rename is "
        "refused with 409 and `current` when the person has another by now (renamed by "
        "someone else meanwhile); left out, it is not checked")


class ShownName(RequestBody):
    person_id: int
    name: ShownNameText | None


class Merge(RequestBody):
    source: PersonRef | Annotated[list[PersonRef], Field(min_length=1, max_length=1000)] = Field(
        description="Id or name of the person whose faces move, or a list of them")
    target: PersonRef = Field(description="Id or name of the person who keeps them")
    name: NameText | None = Field(None, description="The name the "
                             "merged person keeps; required (409 otherwise) when two of them "
                             "have different names")
    expected_names: list[ShownName] | None = Field(
        None, max_length=1001, description="The names the client showed (null: unnamed). "
        "Sent, the merge is refused with 409 and `renamed` (those people's names now, in the "
        "same form) when one of them has another name by now; left out, they are not checked")


class Split(RequestBody):
    face_ids: FaceIds
    name: NameText | None = Field(None, description="None: a new unnamed person")


class Remove(RequestBody):
    face_ids: FaceIds


class Undo(RequestBody):
    change_id: int | None = Field(None, description="Undo only this change (the "
                                  "X-Pgface-Change of the response that made it), and only "
                                  "while it is the latest: 409 if another came after it")


class Cluster(RequestBody):
    full: bool = Field(False, description="Take back clustering's earlier choices and start over")


WriteKey = Annotated[ApiKey | None, Depends(require_write)]


def _person(person: Person) -> dict:
    cover = person.cover_face_id
    return {**asdict(person), "cover_url": api_url(f"/api/faces/{cover}/crop") if cover else None,
            "faces_url": api_url(f"/api/people/{person.id}/faces"),
            "photos_url": api_url(f"/api/people/{person.id}/photos")}


def _people(request: Request, key: ApiKey | None) -> People:
    """The people verbs, recorded as made by this key; the change a call records is told in
    the response's X-Pgface-Change header (ChangeHeader)."""
    people = get_pf(request).people.acting_as(f"api:{key.name}" if key else "api")
    request.state.people = people
    return people


CHANGE_HEADER = "X-Pgface-Change"


class ChangeHeader(HttpMiddleware):
    """A response to a request that changed people says which change it recorded (its id, in
    X-Pgface-Change), so that a client's Undo can take back that change and no other
    (`POST /api/people/undo {"change_id": N}`); none where nothing changed."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.setdefault("state", {})  # request.state, shared with the endpoint

        async def with_change(message: Message) -> None:
            people = state.get("people")
            if message["type"] == "http.response.start" and people is not None \
                    and people.last_change is not None:
                header = (CHANGE_HEADER.lower().encode(), str(people.last_change).encode())
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        await self.app(scope, receive, with_change)


def _conflict(exc: PersonConflict) -> JSONResponse:
    """409 in the API's error envelope, with what a client needs to ask its user."""
    return JSONResponse({"error": {"status": 409, "code": "conflict", "message": str(exc),
                                   **exc.details}}, status_code=409)


def _held(faces: list[HeldFace]) -> list[dict]:
    return [asdict(f) for f in faces]


@router.get("", dependencies=[Depends(require_read)], response_model=PeoplePage,
            responses=LIST_ERRORS)
def list_people(request: Request, unnamed: bool = Query(
        False, description="Also the unnamed people that clustering found"),
        hidden: bool = Query(False, description="Also the people hidden from lists"),
        limit: Limit = 100, offset: Offset = 0,
        after: str | None = Query(None, max_length=1200, description=(
            "A page's `next_after`: the next page starts after the last person that page "
            "listed, where they were then, so people named, merged or hidden meanwhile make "
            "it neither repeat nor pass over anyone else (an offset shifts with them)")),
        name: str | None = Query(None, min_length=1, max_length=4 * MAX_NAME_CHARS,
                                 description=(
            "Only the person of this name, hidden or not: found here also when the name is "
            "one of this path's words (`review`, `history`) or holds a `/`, which "
            "`/api/people/{name}` cannot reach")),
        name_has: str | None = Query(None, min_length=1, max_length=4 * MAX_NAME_CHARS,
                                     description=(
            "Only the named people whose name holds this text, in any case (`ann` finds "
            "`Joanne`), in the same order and pages; unnamed people hold no name to find"))
        ) -> dict:
    """Named people, and with `unnamed=true` the people clustering found: named first, then
    by faces (most first), then by name and id, each with a cover face; `limit` of them from
    `offset` (or after `after`), with `total`. Hidden people only with `hidden=true`.
    `next_after` leads to the next page (null on the last); `next_offset` too when the page
    was asked by offset."""
    if name is not None and name_has is not None:
        raise InvalidInputError("name and name_has: one person by their whole name, or the "
                                "people whose name holds a text, not both")
    if name is not None:  # a lookup: a page of that person or nobody
        try:
            found = [get_pf(request).people.named(name)]
        except NotFoundError:
            found = []
        return {"people": [_person(p) for p in found[offset:offset + limit]],
                **page_fields(len(found), limit, offset, len(found[offset:offset + limit])),
                "next_after": None}
    people = get_pf(request).people
    return _page_by_place(lambda count, place: people.page(None if unnamed else True, hidden,
                                                           count, offset, place, name_has),
                          limit, offset, after)


def _page_by_place(read: Callable[[int, Person | None], tuple[list[Person], int]],
                   limit: int, offset: int, after: str | None) -> dict:
    """A page of people read by READ(how many, place), from `offset` or after `after`, with
    `next_after` (null on the last page)."""
    place = None if after is None else _place_of(after)
    page, fields, following = _one_more(*read(limit + 1, place), limit, offset, place)
    return {"people": [_person(p) for p in page], **fields,
            "next_after": _cursor_of(page[-1]) if following else None}


def _one_more(rows: list, total: int, limit: int, offset: int, place: object
              ) -> tuple[list, dict, bool]:
    """A page read one longer than asked, which tells whether a page follows (`total` cannot,
    counted from the top): its rows, its fields (no `next_offset` for a page read after a
    PLACE: an offset counts from the top, not from there) and whether another follows."""
    page = rows[:limit]
    fields = page_fields(total, limit, offset, len(page))
    if place is not None:
        fields["next_offset"] = None
    return page, fields, len(rows) > limit


def _token(place: list) -> str:
    """A place in a list, as its `next_after` gives it: opaque to clients."""
    said = json.dumps(place, ensure_ascii=False)
    return base64.urlsafe_b64encode(said.encode()).decode().rstrip("=")


def _untoken(cursor: str) -> Any:
    """The place a `next_after` token holds; ValueError where it is none."""
    return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))


def _cursor_of(person: Person) -> str:
    """The person's place in the people list, as `next_after` gives it."""
    return _token([person.name, person.faces, person.id])


def _place_of(cursor: str) -> Person:
    """The place a `next_after` names, as the person it was (their name, faces and id)."""
    try:
        name, faces, person_id = _untoken(cursor)
        if name is not None and (not isinstance(name, str) or "\0" in name):
            raise ValueError
        if name is not None:
            name.encode()  # a lone surrogate: UnicodeEncodeError, a ValueError
        # an id is a bigint; a count of faces an integer (the kept counts' type)
        if not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n < limit
                   for n, limit in ((faces, 2**31), (person_id, 2**63))):
            raise ValueError
    except (ValueError, TypeError):  # binascii.Error and JSONDecodeError are ValueErrors
        raise InvalidInputError("after: not a next_after this list gave") from None
    return Person(person_id, name, faces, 0)


@router.get("/review", dependencies=[Depends(require_read)], response_model=PeoplePage,
            responses=LIST_ERRORS)
def review_people(request: Request, limit: Limit = 20, offset: Offset = 0,
           after: str | None = Query(None, max_length=1200, description=(
               "A page's `next_after`: the queue from after the last person that page "
               "listed, where they were then, so that people named, merged or hidden "
               "meanwhile by anyone make it neither repeat nor pass over anyone else"))
           ) -> dict:
    """The review queue: the unnamed people clustering found that nobody hid, the most faces
    first, to name, pass over or hide one by one; `limit` from `offset` (or after `after`),
    with `total`. `next_after` leads on (null at the end)."""
    people = get_pf(request).people
    return _page_by_place(lambda count, place: people.review(count, offset, place),
                          limit, offset, after)


@router.post("/name", response_model=NamingOut, responses=WRITE_ERRORS)
def name_faces(request: Request, body: NameFaces, key: WriteKey) -> JSONResponse | dict:
    """Put these faces in the person called `name`, created if new. A face another person holds
    by a human decision (assigned by hand, or in a named person) is only moved with
    `move: true`; without it the answer is 409 with `affected`: each such person's id, name
    and face ids, and nothing changes."""
    try:
        expected = (None if body.expected_held is None else
                    {face: held.person_id for held in body.expected_held
                     for face in held.face_ids})
        naming = _people(request, key).name_faces(
            body.face_ids, body.name, move=body.move, refuse_held=True, expected_held=expected,
            expected_person_id=body.expected_person_id)
    except PersonConflict as exc:
        return _conflict(exc)
    return {**_person(naming.person), "named": naming.named, "moved": _held(naming.moved)}


@router.post("/merge", response_model=PersonOut, responses=WRITE_ERRORS)
def merge_people(request: Request, body: Merge, key: WriteKey) -> JSONResponse | dict:
    """Move every face of `source` into `target` and delete `source`. The merged person keeps
    the name either had; when both had one, 409 with `names` unless `name` says which;
    with `expected_names`, 409 with `renamed` where a person was renamed meanwhile."""
    try:
        expected = (None if body.expected_names is None
                    else {shown.person_id: shown.name for shown in body.expected_names})
        return _person(_people(request, key).merge(body.source, body.target, body.name,
                                                   expected))
    except PersonConflict as exc:
        return _conflict(exc)


@router.get("/history", dependencies=[Depends(require_read)], response_model=HistoryPage,
            responses=READ_ERRORS)
def people_history(request: Request, limit: Limit = 20, offset: Offset = 0) -> dict:
    """The latest people changes, newest first: who (actor), what (kind, summary, payload),
    when, and whether it can be or was undone; `limit` from `offset`, with `total`."""
    people = get_pf(request).people
    changes = people.history(limit, offset)
    return {"changes": [c.to_dict() for c in changes],
            **page_fields(people.history_count(), limit, offset, len(changes))}


@router.post("/undo", response_model=ChangeOut, responses=WRITE_ERRORS)
def undo_people_change(request: Request, key: WriteKey, body: Undo | None = None
                       ) -> JSONResponse | dict:
    """Undo the latest people change not undone yet, restoring exactly what it changed.
    409 when there is none, when it is an erase (which cannot be undone), or too old; with
    `change_id`, also when that change is no longer the latest (another came after it)."""
    try:
        return _people(request, key).undo(body.change_id if body else None).to_dict()
    except UndoError as exc:
        return _conflict(PersonConflict(str(exc), {}))


@router.post("/cluster", response_model=ClusterOut, responses=WRITE_ERRORS)
async def cluster_people(request: Request, key: WriteKey, body: Cluster | None = None) -> dict:
    """Give faces no person holds a person: join an existing one or found a new, unnamed one.
    Never moves a face a human placed."""
    full = body.full if body else False
    return (await run_cpu(request, _people(request, key).cluster, full)).to_dict()


# `ref` is an id or a name: People takes a string of digits for an id where that person exists.
# `review` and `history` reach the routes above, and a `/` splits the path: such names are
# found with GET /api/people?name=.
@router.get("/{ref}", dependencies=[Depends(require_read)], response_model=PersonOut,
            responses=READ_ERRORS)
def get_person(request: Request, ref: str) -> dict:
    """One person by id or name."""
    return _person(get_pf(request).people.get(ref))


@router.get("/{ref}/faces", dependencies=[Depends(require_read)],
            response_model=PersonFacesPage, responses=READ_ERRORS)
def person_faces(request: Request, ref: str, limit: Limit = 100, offset: Offset = 0,
                 after: int | None = Query(None, ge=0, le=2**63 - 1, description=(
                     "A page's `next_after` (the id of the last face it listed): the next "
                     "page starts after that face, so faces moved away or added meanwhile "
                     "make it neither repeat nor pass over any other (an offset shifts "
                     "with them)"))) -> dict:
    """The person's faces, with their photo and box, in id order: `limit` from `offset` (or
    after `after`), with `total`. `next_after` leads to the next page (null on the last)."""
    page, fields, following = _one_more(
        *get_pf(request).people.face_page(ref, limit + 1, offset, after), limit, offset, after)
    return {"faces": [{**asdict(f), "crop_url": api_url(f"/api/faces/{f.face_id}/crop")}
                      for f in page],
            **fields, "next_after": page[-1].face_id if following else None}


@router.get("/{ref}/photos", dependencies=[Depends(require_read)],
            response_model=PersonPhotosPage, responses=LIST_ERRORS)
def person_photos(request: Request, ref: str, limit: Limit = 100, offset: Offset = 0,
                  after: str | None = Query(None, max_length=200, description=(
                      "A page's `next_after`: the next page starts after the last photo "
                      "that page listed, where it was then, so photos indexed or taken from "
                      "the person meanwhile make it neither repeat nor pass over another "
                      "(an offset shifts with them)"))) -> dict:
    """The photos the person is in, latest indexed first, with their faces in each:
    `limit` from `offset` (or after `after`), with `total`. `next_after` leads to the next
    page (null on the last)."""
    place = None if after is None else _photo_place_of(after)
    photos, fields, following = _one_more(
        *get_pf(request).people.photos(ref, limit + 1, offset, place), limit, offset, place)
    return {"photos": [{**asdict(p), "image_url": api_url(f"/api/photos/{p.photo_id}/image")}
                       for p in photos], **fields,
            "next_after": _photo_cursor_of(photos[-1]) if following else None}


def _photo_cursor_of(photo: PersonPhoto) -> str:
    """The photo's place in a person's photos, as `next_after` gives it."""
    return _token([photo.indexed_at.isoformat(), photo.photo_id])


def _photo_place_of(cursor: str) -> PersonPhoto:
    """The place a person's photos' `next_after` names, as the photo it was."""
    try:
        indexed_at, photo_id = _untoken(cursor)
        when = datetime.fromisoformat(indexed_at)
        if when.tzinfo is None or not (isinstance(photo_id, int) and not isinstance(
                photo_id, bool) and 0 <= photo_id < 2**63):
            raise ValueError
    except (ValueError, TypeError):  # binascii.Error and JSONDecodeError are ValueErrors
        raise InvalidInputError("after: not a next_after this list gave") from None
    return PersonPhoto(photo_id, "", 0, 0, [], when)


@router.post("/{ref}/hide", response_model=PersonOut, responses=WRITE_ERRORS)
def hide_person(request: Request, ref: str, key: WriteKey) -> dict:
    """Hide the person from lists (not a person, or not someone to see); their faces stay
    theirs and are still found. Undone by `unhide`, or by undo."""
    return _person(_people(request, key).hide(ref, True))


@router.post("/{ref}/unhide", response_model=PersonOut, responses=WRITE_ERRORS)
def unhide_person(request: Request, ref: str, key: WriteKey) -> dict:
    """Show a hidden person in lists again."""
    return _person(_people(request, key).hide(ref, False))


@router.patch("/{ref}", response_model=PersonOut, responses=WRITE_ERRORS)
def rename_person(request: Request, ref: str, body: Rename, key: WriteKey) -> JSONResponse | dict:
    """Give the person a (new) name; 409 if another person has it, with `existing` (that
    person's id and name: merge them instead)."""
    try:
        if "expected_name" in body.model_fields_set:
            return _person(_people(request, key).rename(ref, body.name, body.expected_name))
        return _person(_people(request, key).rename(ref, body.name))
    except PersonConflict as exc:
        return _conflict(exc)


@router.post("/{ref}/split", response_model=PersonOut, responses=WRITE_ERRORS)
def split_person(request: Request, ref: str, body: Split, key: WriteKey) -> JSONResponse | dict:
    """Move some of the person's faces into a new person; returns the new person. 409 if
    another person has the name, with `existing` (that person's id and name: name the faces
    into them instead, `POST /api/people/name`)."""
    try:
        return _person(_people(request, key).split(ref, body.face_ids, body.name))
    except PersonConflict as exc:
        return _conflict(exc)


@router.post("/{ref}/remove", response_model=FacesRemoved, responses=WRITE_ERRORS)
def remove_from_person(request: Request, ref: str, body: Remove, key: WriteKey) -> dict:
    """Take faces away from the person: they are not this person, nor anyone known. They
    become nobody's (no new person, as a split makes), and a full re-cluster keeps them out
    of the person. 409 without details if a face is no longer the person's (moved meanwhile:
    nothing is taken)."""
    people = _people(request, key)
    # resolved first, then by id (as a delete): the answer names the person even where they
    # were unnamed, left with no face, and deleted
    person = people.get(ref)
    left = people.remove(person.id, body.face_ids)
    return {"person_id": person.id, "name": person.name,
            "removed": sorted(set(body.face_ids)), "person": _person(left) if left else None}


@router.delete("/{ref}", response_model=PersonDeleted, responses=WRITE_ERRORS)
def delete_person(request: Request, ref: str, key: WriteKey) -> dict:
    """Delete the person; their faces stay, without a person. Answers the reference given,
    and the id and name of the person it named."""
    people = _people(request, key)
    # resolved first, then deleted by id: a client deleting by name learns the id (and a
    # rename in between cannot turn the delete onto whoever takes the name)
    person = people.get(ref)
    return {"deleted": ref, "person_id": person.id, "name": person.name,
            "faces_released": people.delete(person.id)}


@router.post("/{ref}/erase", response_model=ErasureOut, responses=WRITE_ERRORS)
def erase_person(request: Request, ref: str, key: WriteKey, scrub: bool = Query(
        True, description="Rewrite the tables now (locks them meanwhile: seconds to minutes, "
                          "docs/people.md); false leaves it for `pgface people scrub`"),
        expected_faces: int | None = Query(
            None, ge=0, le=2**62, description="The number of faces the client showed its user "
            "when asking to confirm: a 409, nothing erased, where the person has another by "
            "now (a merge into them meanwhile)")) -> dict:
    """Erase the person for good (no undo): all their faces with embeddings and crops, every
    photo left without a face and, of those, the files kept in the upload folder; then the
    tables are rewritten so no byte of them stays in the database's files (docs/people.md)."""
    people = _people(request, key)
    person = people.get(ref)  # resolved first, as delete: the answer names whom
    done = people.erase(person.id, scrub=scrub, expected_faces=expected_faces)
    return {"erased": ref, "person_id": person.id, "name": person.name,
            "faces_deleted": done.faces, "photos_deleted": done.photos,
            "files_deleted": len(done.files), "files_failed": done.files_failed,
            "scrub_seconds": done.scrub_seconds, "scrub_failed": done.scrub_failed}


def _identify(pf: Pgface, data: bytes, name: str, max_bytes: int, max_pixels: int,
              threshold: float | None, min_quality: float | None) -> dict:
    # Decoded here with the API's upload limits; the library takes the validated bytes.
    decode_photo(data, name, max_bytes, max_pixels)
    result = pf.people.identify(data, threshold, min_quality)
    result.source = name
    # as a search answer carries them
    return {**result.to_dict(),
            "notices": result.notices() + pf.notices()}


@identify_router.post("/identify", dependencies=[Depends(require_read)],
                      response_model=IdentificationOut,
                      responses=error_responses(400, 401, 403, 413, 422, 500, 503))
async def identify(
    request: Request,
    file: Annotated[UploadFile, File(description="Photo whose faces are identified")],
    threshold: Threshold = None,
    min_quality: MinQuality = None,
) -> dict:
    """For each face in the photo, the most likely known person (or none), with confidence.
    A face whose quality is below the floor is reported with `searched: false`, not
    identified."""
    settings = get_settings(request)
    data, name = await read_upload(file, settings.api_max_upload_bytes, "file")
    return await run_cpu(request, _identify, get_pf(request), data, name,
                         settings.api_max_upload_bytes, settings.api_max_pixels, threshold,
                         min_quality)
