"""The API's response shapes, as pydantic models: OpenAPI shows them and FastAPI checks them.

Boxes are `[x1, y1, x2, y2]` in the photo's (EXIF-rotated) pixels, clipped to the photo and
rounded to 1 decimal in every response (see `Box`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, NaiveDatetime, WithJsonSchema

from pgface.people_history import ChangeKind

BOX_DECIMALS = 1
Verdict = Literal["same", "possible"]  # pgface.verdicts (1:N verdicts)


def round_box(values: list[float]) -> list[float]:
    return [round(float(v), BOX_DECIMALS) for v in values]


Box = Annotated[list[float], AfterValidator(round_box),
                Field(description="[x1, y1, x2, y2] in the photo's pixels, 1 decimal")]

# A camera's clock (EXIF DateTimeOriginal) says no zone, and none is made up for it. Declared
# as what is sent, not as `format: date-time` (RFC 3339 wants an offset): generated clients
# (Java's OffsetDateTime, Go's time.Time) refused every page holding one (probe clients39).
LOCAL_DATE_TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?$"
LocalDateTime = Annotated[NaiveDatetime, WithJsonSchema(
    {"type": "string", "pattern": LOCAL_DATE_TIME_PATTERN, "examples": ["2012-12-06T15:46:01"]})]


# Requests


class RequestBody(BaseModel):
    """A JSON request body, taken as JSON types it: `true` is not the id 1, "yes" is not true,
    "12" is not a face id (pydantic's lax mode converts each); a field it does not have is
    refused by name (a misspelt `{"Full": true}` ran an incremental clustering, `"mvoe"` named
    faces without moving them: probe hostile24)."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="forbid")


# Errors


class PersonNamedOut(BaseModel):
    person_id: int
    name: str | None


class PersonNowOut(PersonNamedOut):
    faces: int | None = Field(None, description="Erase with `expected_faces`: how many faces "
                                                "they have now")


class PersonHoldingOut(PersonNamedOut):
    face_ids: list[int] = Field(description="The faces of the request that they hold")


class ErrorDetail(BaseModel):
    status: int = Field(description="The HTTP status, repeated")
    code: str = Field(description="What kind of error: not_found, invalid_image, ... "
                                  "(docs/http.md lists them)")
    message: str = Field(description="What went wrong, for a person to read")
    # A people change's 409 adds what the client needs to ask its user (docs/http.md), each
    # only where it applies; declared so that a client generated from the schema keeps them.
    affected: list[PersonHoldingOut] | None = Field(
        None, description="Naming: the people whose faces it would move (confirm with `move` "
        "and these as `expected_held`)")
    meanwhile: bool | None = Field(
        None, description="Naming with `expected_held`: the faces' holders changed since")
    existing: PersonNamedOut | None = Field(
        None, description="Rename or split: the person who has that name already")
    current: PersonNowOut | None = Field(
        None, description="Rename with `expected_name`, erase with `expected_faces`: the "
        "person as they are now (an erase's with their number of faces)")
    names: list[str] | None = Field(
        None, description="Merge: the names the people have; say which one as `name`")
    renamed: list[PersonNamedOut] | None = Field(
        None, description="Merge with `expected_names`: the people renamed since, as they are")
    alike: list[PersonNamedOut] | None = Field(
        None, description="A name that several people have in other letter case: those people")
    expected_now: PersonNamedOut | None = Field(
        None, description="Naming with `expected_person_id`: that person as they are now, "
        "renamed meanwhile (absent, or null where they were merged or deleted meanwhile)")
    missing: Literal["person", "face", "photo"] | None = Field(
        None, description="A 404: what does not exist (a face gone meanwhile, its photo "
        "forgotten, is not its person gone)")
    model_config = ConfigDict(extra="allow")


class ErrorResponse(BaseModel):
    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for these error statuses, all with the shared error schema."""
    descriptions = {400: "Bad input", 401: "No or wrong API key", 403: "Not allowed",
                    404: "Not found", 409: "Conflict", 413: "Upload too large",
                    422: "Invalid request", 500: "Internal error (a bug)",
                    503: "Database, models or the upload folder unavailable",
                    507: "The upload folder is full"}
    return {s: {"model": ErrorResponse, "description": descriptions.get(s, "Error")}
            for s in statuses}


# Pagination: every list is `limit` items from `offset`, with `total` and `next_offset`.


class Page(BaseModel):
    total: int = Field(description="How many items the whole list holds")
    limit: int
    offset: int
    next_offset: int | None = Field(description="The offset of the next page; null on the last")


def page_fields(total: int, limit: int, offset: int, returned: int) -> dict[str, Any]:
    following = offset + returned
    return {"total": total, "limit": limit, "offset": offset,
            "next_offset": following if following < total and returned else None}


# Admin


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    model: str


class KeyInfo(BaseModel):
    name: str
    scopes: list[str]


class AuthInfo(BaseModel):
    key_required: bool
    reason: str | None
    key: KeyInfo | None


class Stats(BaseModel):
    photos: int
    faces: int
    people: int
    hidden_people: int  # of `people`: hidden from lists (the people page shows them apart)
    photos_without_faces: int
    database_bytes: int
    server_version: str
    pgvector_version: str | None
    faces_per_model: dict[str, int]
    photos_per_model: dict[str, int]
    model_pack: str
    provider: str
    threshold: float
    threshold_calibrated: bool
    notices: list[str]
    model_config = ConfigDict(extra="allow")


# Photos and faces


class QualityOut(BaseModel):
    """How usable a face is for recognition (docs/benchmarks-quality.md); a face stored before
    quality was measured has no score or sharpness."""

    score: float | None = Field(description="0 (unusable) to 1; below the floor "
                                "(PGFACE_MIN_QUALITY) a face is neither searched nor clustered")
    face_size: float | None = Field(description="Shorter side of the box, pixels")
    yaw: float | None = Field(description="Nose off the eye-mouth axis, in axis lengths; 0 "
                              "frontal")
    pitch: float | None = Field(description="Nose along the eye-mouth axis: 0 at the eyes, 1 at "
                                "the mouth; about 0.55 frontal")
    sharpness: float | None = Field(description="Variance of the Laplacian of the aligned crop")


class FaceOut(BaseModel):
    id: int
    photo_id: int
    model: str
    bbox: Box
    landmarks: list[float] = Field(description="5 points, x and y each, 1 decimal")
    det_score: float
    quality: QualityOut | None = Field(None, description="None: stored before quality was "
                                       "measured")
    person_id: int | None
    person_name: str | None
    crop_url: str
    model_config = ConfigDict(extra="allow")


class PhotoOut(BaseModel):
    id: int
    path: str = Field(description="A path of the photo whose file exists (its newest), else "
                                  "the last one known")
    missing: bool = Field(False, description="No stored path of the photo exists any more (a "
                                            "file there with other content is not looked at "
                                            "here: its image is then a 404)")
    sha256: str = Field(description="Hex")
    size_bytes: int
    width: int
    height: int
    taken_at: LocalDateTime | None = Field(
        description="When the photo was taken by the camera's clock (EXIF DateTimeOriginal), "
                    "its local date and time without a zone or UTC offset "
                    "(`2012-12-06T15:46:01`): the zone the camera was set to is unknown, so it "
                    "is no instant and no offset is made up for it; null when the photo says "
                    "none")
    indexed_at: datetime
    face_count: int
    image_url: str
    faces: list[FaceOut] | None = Field(None, description="Only when one photo is asked for")
    model_config = ConfigDict(extra="allow")


class UploadResult(BaseModel):
    created: bool = Field(description="False when the same bytes were already stored (200)")
    photo: PhotoOut
    warning: str | None = Field(
        None, description="Why the photo may hold no face it seems to (a blank image), as "
                          "`pgface index` warns; null when none, or when it was stored before")


class PhotoPage(Page):
    photos: list[PhotoOut]


class Deleted(BaseModel):
    deleted: int


class PhotoDeleted(Deleted):
    files_failed: list[str] = Field(
        default_factory=list,
        description='"path: reason" of each uploaded file of the photo that stays (the rows '
                    "are gone: the upload folder was read-only, say)")


class Removal(BaseModel):
    photos: int = Field(description="Photos deleted with their faces: no path left")
    faces: int = Field(description="Their faces, every pack's: a photo two packs analysed "
                                   "has each of its faces twice")
    faces_by_pack: dict[str, int] = Field(default_factory=dict,
                                          description="`faces` by pack (model name)")
    paths: int = Field(description="Paths forgotten")
    people_kept: int = Field(0, description="A prune's: faces given the people of a photo it "
                                            "deleted, moved and edited (0 for a remove)")
    named: list[str] = Field(default_factory=list, description="The named people of the faces "
                             "deleted (hidden ones aside): their names stay kept for the "
                             "photos' content, which gets them back if indexed again")
    failed_files: int = Field(0, description="Files remembered as failed forgotten there "
                                             "(docs/cli.md, 'Files that failed')")
    waiting: int = Field(0, description="A prune's: photos with no path left kept, not "
                                        "deleted: the people of their faces wait for a pack "
                                        "that has not analysed their new version (0 for a "
                                        "remove)")
    waiting_for: list[str] = Field(default_factory=list,
                                   description="The packs those people wait for")
    linked_still_there: list[str] = Field(
        default_factory=list, description="A remove's: the folders a path given, a link gone "
        "now, led to that are still there: their photos stay (remove that folder to forget "
        "them)")


# Search and compare


class MatchOut(BaseModel):
    face_id: int
    photo_id: int
    path: str
    bbox: Box
    person_id: int | None
    person_name: str | None
    similarity: float
    missing: bool = Field(description="No stored path of the photo exists any more")
    verdict: Verdict | None = Field(None, description="same: the same person even in a "
                                    "library of this size; possible: strangers may score so too")
    crop_url: str
    image_url: str
    model_config = ConfigDict(extra="allow")


class QueryFaceOut(BaseModel):
    bbox: Box
    det_score: float
    matches: list[MatchOut]
    quality: QualityOut | None = None
    searched: bool = Field(True, description="False when its quality score is below the floor "
                           "(`min_quality`): reported, not searched")
    model_config = ConfigDict(extra="allow")


class SearchOut(BaseModel):
    source: str = Field(description="The uploaded file's name, or `face N` for a stored face")
    model: str
    threshold: float
    faces: list[QueryFaceOut]
    library_size: int | None = Field(None, description="Faces of the model searched")
    same_person_similarity: float | None = Field(None, description="From this similarity a "
                                                 "match is the same person in this library")
    notices: list[str]
    min_quality: float = Field(0.0, description="The quality floor: faces of the query scoring "
                               "below it were not searched")
    width: int = Field(description="The query photo's width in pixels")
    height: int
    orientation: int = Field(1, ge=1, le=8, description=(
        "The EXIF orientation (1-8) the query photo was turned upright by before its faces "
        "were found (1: none; a stored face's search: 1): a client that draws the boxes on "
        "the photo as it decoded it turns it so too"))
    model_config = ConfigDict(extra="allow")  # room for fields the library adds


class ComparisonOut(BaseModel):
    similarity: float
    threshold: float
    same_person: bool
    face_a: Box = Field(description="The face of photo a in the deciding pair")
    face_b: Box = Field(description="The face of photo b in the deciding pair")
    faces_in_b: int
    faces_in_a: int
    quality_a: float | None = Field(description="face_a's quality score (0 to 1)")
    quality_b: float | None = Field(description="face_b's quality score (0 to 1)")
    min_quality: float = Field(description="The quality floor: faces below it were not "
                                           "compared")


# People


class PersonOut(BaseModel):
    id: int
    name: str | None
    faces: int
    photos: int
    hidden: bool = Field(description="Left out of lists unless `hidden=true` is asked for")
    cover_face_id: int | None = Field(description="The face that shows the person: the one "
                                      "detected with the most confidence; null without faces")
    cover_url: str | None = Field(description="That face's crop; null without faces")
    faces_url: str
    photos_url: str


class PeoplePage(Page):
    people: list[PersonOut]
    next_after: str | None = Field(None, description="Pass back as `after` for the next page "
                                   "(it holds its place when people change meanwhile); null "
                                   "on the last")


class PersonPhotoOut(BaseModel):
    photo_id: int
    path: str
    width: int
    height: int
    face_ids: list[int] = Field(description="The person's faces in this photo")
    indexed_at: datetime = Field(description="When it was indexed: the list's order, latest "
                                 "first")
    missing: bool = Field(False, description="No stored path of the photo exists any more "
                          "(`path` is the last known; otherwise one that exists), as a "
                          "search's match says")
    image_url: str


class PersonPhotosPage(Page):
    photos: list[PersonPhotoOut]
    next_after: str | None = Field(None, description="Pass back as `after` for the next page "
                                   "(the last photo's place: it holds when photos are indexed "
                                   "or taken from the person meanwhile); null on the last")


class PersonFaceOut(BaseModel):
    face_id: int
    photo_id: int
    path: str
    bbox: Box
    assigned_by: Literal["user", "cluster"] | None = Field(
        description="'user' (a human placed it), 'cluster', or null")
    missing: bool = Field(False, description="No stored path of the photo exists any more "
                          "(`path` is the last known; otherwise one that exists), as a "
                          "search's match says")
    crop_url: str


class PersonFacesPage(Page):
    faces: list[PersonFaceOut]
    next_after: int | None = Field(None, description="Pass back as `after` for the next page "
                                   "(the last face's id: it holds its place when faces move "
                                   "meanwhile); null on the last")


class HeldFaceOut(BaseModel):
    face_id: int
    person_id: int
    name: str | None


class NamingOut(PersonOut):
    named: list[int]
    moved: list[HeldFaceOut]


class ChangeOut(BaseModel):
    id: int
    at: datetime
    actor: str
    kind: ChangeKind = Field(description="What the change was; `keep`: an indexing run gave "
                             "an edited photo's faces the people their former selves had")
    summary: str
    payload: dict[str, Any]
    undoable: bool
    undone_at: datetime | None
    undone_by: str | None


class HistoryPage(Page):
    changes: list[ChangeOut]


class ClusterOut(BaseModel):
    considered: int
    joined: int
    founded: int
    in_new_people: int = Field(description="Faces in the people clustering formed: new "
                               "ones, and those found again")
    found_again: int = Field(0, description="People a full re-cluster formed again, keeping "
                             "their earlier ids")
    unassigned: int
    below_quality: int = Field(0, description="Unassigned faces left out: quality below the "
                               "floor")
    released: int
    changed: int = Field(0, description="Faces given another person than they had; none, and "
                         "none released: the run is not recorded in the history")
    mode: str = Field(description="Where neighbours came from: 'index' (the search index, at "
                      "scale), 'bulk' (numpy, in memory) or 'sql' (pgvector, for a few faces)")
    refused: int = Field(0, description="Joins refused: the face is not like the person as a "
                         "whole (their average similarity is under the match threshold)")
    seconds: float


class PersonDeleted(BaseModel):
    deleted: str = Field(description="The id or name given in the path")
    person_id: int
    name: str | None
    faces_released: int


class FacesRemoved(BaseModel):
    person_id: int
    name: str | None = Field(description="The person's name (null: unnamed)")
    removed: list[int] = Field(description="The faces taken from the person: nobody's now")
    person: PersonOut | None = Field(description="The person as they are now; null where they "
                                     "were unnamed and had no face left (deleted)")


class ErasureOut(BaseModel):
    erased: str = Field(description="The id or name given in the path")
    person_id: int
    name: str | None
    faces_deleted: int
    photos_deleted: int
    files_deleted: int
    files_failed: list[str]
    scrub_seconds: float | None
    scrub_failed: str | None = Field(None, description=(
        "Why the tables could not be rewritten (a full disk), or null. The erase stands (no "
        "retry: the person is gone); run `pgface people scrub` when there is room."))


class CandidateOut(BaseModel):
    person_id: int
    name: str | None
    similarity: float
    confidence: float


class TakenCandidateOut(BaseModel):
    person_id: int
    name: str | None
    similarity: float = Field(description="This face's similarity to the person")
    face: int = Field(description="The face of the photo that is the person, more like them: "
                                  "its place (from 0) in `faces`")
    face_similarity: float = Field(description="That face's similarity to the person")


class IdentifiedFaceOut(BaseModel):
    bbox: Box
    det_score: float
    person_id: int | None
    name: str | None
    similarity: float | None
    confidence: float | None
    candidates: list[CandidateOut]
    verdict: Verdict | None = None
    quality: QualityOut | None = None
    searched: bool = Field(True, description="False when its quality score is below the floor "
                           "(`min_quality`): reported, not identified")
    taken: list[TakenCandidateOut] = Field(
        default_factory=list, description="One person is at most one face of a photo: the "
        "people this face is more like than its answer (all, for an unknown face) whom "
        "another face of the photo, more like them, is")
    model_config = ConfigDict(extra="allow")


class IdentificationOut(BaseModel):
    source: str
    model: str
    threshold: float
    faces: list[IdentifiedFaceOut]
    library_size: int | None = Field(None, description="Faces that belong to a person")
    same_person_similarity: float | None = Field(None, description="From this similarity a "
                                                 "face is the person in a library this size")
    min_quality: float = Field(0.0, description="The quality floor: faces of the photo "
                               "scoring below it were not identified")
    notices: list[str] = Field(default_factory=list, description="What makes the answer "
                               "empty or less sure, each with the command that fixes it")
    warning: str | None = Field(None, description="The photo's warning (a blank image: why no "
                                "face was found), as `pgface index` gives it; also in `notices`")
    model_config = ConfigDict(extra="allow")


# Jobs

# The failures a job keeps for GET, the first ones; the others are counted, and logged one
# line each (api/jobs.py). Here, where the answer says it: a job over 20,000 empty files
# kept 40,000 failures twice, ~750 bytes each, for each of the 100 finished jobs kept:
# gigabytes of the server's memory (probe scale39).
MAX_KEPT_FAILURES = 10_000


class JobFailure(BaseModel):
    file: str
    reason: str


class JobProgress(BaseModel):
    files_total: int = Field(description="Photo files found under the path (0 while listing)")
    files_done: int = Field(description="Of files_total, the files indexed, skipped or failed "
                                        "so far")
    indexed: int = Field(description="Photos indexed (new to the library)")
    skipped: int = Field(description="Photos already indexed (same content)")
    faces: int = Field(description="Faces stored")
    failed: int = Field(description="Failures so far: photo files, and paths that are no "
                                    "photo file (a link out of the allowed folders, a folder "
                                    "that cannot be listed)")
    stage: str | None = Field(
        default=None,
        description="null while photos are indexed; 'building the search index' once a bulk "
                    "load's photos are stored and pgvector's HNSW index is built again")


class IndexReportOut(BaseModel):
    path: str
    files: int
    indexed: int
    skipped: int
    faces: int
    seconds: float
    failures: list[JobFailure]
    warnings: list[JobFailure] = Field(description="Photos indexed with a warning: nearly "
                                       "every pixel one value, nothing to find (docs/cli.md)")
    empty_folders: list[str] = Field(description="Folders given that hold no photo file (an "
                                                 "unmounted share looks so)")
    passed_over: int = Field(description="Hidden or system files and folders not read "
                                         "(.thumbnails, @eaDir; docs/cli.md)")
    excluded: int = Field(description="Files and folders left out as the job's `exclude` "
                                      "patterns and the server's PGFACE_INDEX_EXCLUDE say (a "
                                      "folder counts once)")
    unchanged_failures: int = Field(
        description="Files whose content failed in an earlier job or run (not an image, "
                    "corrupt or truncated, empty, over a limit) and that are unchanged since, "
                    "for what decodes here and these limits: not read again and not among "
                    "`failures` (`reread` reads them; docs/cli.md)")
    people_kept: int = Field(description="Faces of photos edited in place, analysed by a "
                                         "new pack, or forgotten by path and found again, "
                                         "given the person their former selves had "
                                         "(docs/people.md)")
    moved: int = Field(description="Photos already indexed found at a new path, their former "
                                   "path's file gone: moved or renamed (among `skipped`)")
    removed: Removal | None = Field(description="What `prune` forgot; null without prune")
    not_pruned: list[str] = Field(description="Paths `prune` left alone, being missing or "
                                              "empty folders (an unmounted share looks so; "
                                              "POST /api/photos/remove forgets their photos)")
    outdated: int | None = Field(
        None, description="Photos of the library the active pack analysed by an older pgface "
        "analysis (their faces stored before a fix of detection), left so: a job passes over "
        "them; `pgface index --pending` analyses them again, keeping their people")


JobState = Literal["queued", "running", "done", "failed", "cancelled"]


class JobSummary(BaseModel):
    """A job as GET /api/jobs lists it: JobOut less its failures and report."""

    id: str
    kind: Literal["index"]
    path: str
    prune: bool
    reread: bool
    exclude: list[str] = Field(description="The request's patterns of files and folders "
                                           "left out (the server's PGFACE_INDEX_EXCLUDE "
                                           "applies too)")
    state: JobState
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: JobProgress
    error: str | None = Field(description="Why the job failed (state failed)")
    url: str = Field(description="The whole job, failures and report included")


class JobOut(JobSummary):
    failures: list[JobFailure] = Field(description="Files that could not be indexed, and why: "
                                       f"the first {MAX_KEPT_FAILURES:,} (`failures_omitted` "
                                       "counts the others; the server's log has every one)")
    failures_omitted: int = Field(
        description=f"Failures past the first {MAX_KEPT_FAILURES:,}, left out of `failures` "
                    "and the report's (0 under it): `progress.failed` counts them all, and the "
                    "server's log has a line for each")
    report: IndexReportOut | None = Field(description="The final report, once done (its "
                                          "`failures` are the job's)")


class JobList(BaseModel):
    jobs: list[JobSummary] = Field(
        description="The jobs this server process knows, oldest first: every queued and "
                    "running one, and the last 100 finished")
