"""Photos: index an upload or a server-side path, list, get, fetch the image, delete."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import AfterValidator, Field

from pgface import people_history
from pgface.api.convert import photo_json
from pgface.api.deps import JsonRoute, get_pf, get_settings, require_read, require_write, run_cpu
from pgface.api.errors import ApiError
from pgface.api.jobs import get_jobs
from pgface.api.limits import read_upload
from pgface.api.models import (
    JobOut,
    PhotoDeleted,
    PhotoOut,
    PhotoPage,
    Removal,
    RequestBody,
    UploadResult,
    error_responses,
    page_fields,
)
from pgface.config import Settings
from pgface.db import store
from pgface.errors import (
    ANALYSIS_MEMORY,
    ImageError,
    NotFoundError,
    OutOfMemoryError,
    counted,
    no_memory_while,
    os_reason,
    out_of_memory,
)
from pgface.imaging import (
    DISPLAY_SIDE,
    FORMAT_SUFFIXES,
    decode_photo,
    display_jpeg,
    media_type,
    read_file,
    suffix_of,
)
from pgface.index import Indexer, people_of_stored
from pgface.library import Pgface
from pgface.paths import exclude_problem, loggable
from pgface.people import delete_uploads

log = logging.getLogger(__name__)
router = APIRouter(route_class=JsonRoute, prefix="/photos", tags=["photos"])
READ_ERRORS = error_responses(401, 403, 404, 422, 500, 503)
WRITE_ERRORS = error_responses(400, 401, 403, 404, 413, 422, 500, 503)


def _exclude_pattern(pattern: str) -> str:
    if (problem := exclude_problem(pattern)) is not None:
        raise ValueError(problem)
    return pattern


class IndexPath(RequestBody):
    path: str = Field(description="A file or folder under one of the server's --roots; "
                                  "relative paths are taken from the first root.")
    prune: bool = Field(False, description="Then forget the photos under the path whose "
                                           "files are gone.")
    reread: bool = Field(False, description="Read every file, also those whose size and "
                                            "modification time are those they had when last "
                                            "read (which are otherwise not read again).")
    exclude: list[Annotated[str, AfterValidator(_exclude_pattern)]] = Field(
        default_factory=list,
        description="Patterns of the files and folders inside the path to leave out, besides "
                    "the server's PGFACE_INDEX_EXCLUDE: one without '/' matches a name at any "
                    "depth ('Screenshots', '*.png'), one with '/' the path inside the path "
                    "given ('2019/private'); the path given is read whatever they match "
                    "(docs/cli.md, `index --exclude`).")


class RemovePaths(RequestBody):
    paths: list[str] = Field(min_length=1, description="Files, and folders (every photo stored "
                             "under them), under the server's --roots; relative paths are "
                             "taken from the first root. The files are never touched.")


def upload_dir(settings: Settings) -> Path:
    return settings.resolved_upload_dir()


def rehome_uploads(pf: Pgface, settings: Settings) -> None:
    """At the server's start: uploaded photos whose files are in this upload folder, recorded
    in another that is gone, or, with the embedded server, in another data folder this one was
    copied from (store.rehome_uploads), recorded here. Said in the log; a failure (a role that
    may only read) leaves them as they were, said too."""
    folder = upload_dir(settings)
    if not folder.is_dir():
        return
    try:
        with pf.pool.connection() as conn, conn.transaction():
            gone, copied = store.rehome_uploads(conn, folder.resolve(), pf.embedded)
    except Exception as exc:  # noqa: BLE001 (the server serves on; they show as missing)
        log.warning("the upload folder %s was not matched with the uploads recorded elsewhere: "
                    "%s", loggable(str(folder)), loggable(" ".join(str(exc).split())))
        return
    if gone:
        log.warning("%s uploaded in another folder, which is gone, found in the upload folder "
                    "%s (the data folder moved, or a library restored here): recorded there",
                    counted(gone, "photo"), loggable(str(folder)))
    if copied:
        log.warning("%s uploaded in the upload folder of the data folder this one was copied "
                    "from, found in this one's, %s: recorded there (the copy's uploads are its "
                    "own)", counted(copied, "photo"), loggable(str(folder)))


def _photo_or_404(pf: Pgface, photo_id: int) -> tuple[dict, list[dict]]:
    with pf.pool.connection() as conn:
        row = store.get_photo(conn, photo_id)
        if row is None:
            raise NotFoundError(f"photo {photo_id} not found", "photo")
        return _placed(conn, [row])[0], store.faces_of_photo(conn, photo_id)


def _placed(conn: psycopg.Connection, rows: list[dict]) -> list[dict]:
    """ROWS with `path` a path of theirs whose file exists, else the last known one, and
    `missing`, as a search's matches and a person's photos say them: a photo whose file was
    moved away showed its old path, and nothing said it was gone but its image's 404 (probe
    apiclient60)."""
    places = store.photo_places(conn, {r["id"]: r["path"] for r in rows})
    return [{**r, "path": places[r["id"]].path, "missing": places[r["id"]].missing}
            for r in rows]


def _write_file(target: Path, data: bytes) -> bool:
    """Write data to target through a temporary file of its own; True if target was new.

    Each writer has its own temporary name, so concurrent uploads of one photo never rename
    each other's file away; os.replace makes the file appear whole or not at all.
    """
    existed = target.exists()
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return not existed


def _index_upload(pf: Pgface, settings: Settings, data: bytes, name: str
                  ) -> tuple[int, bool, str | None]:
    """Decode, detect and store one uploaded photo, kept under upload_dir; (id, new, the
    photo's warning where it was analysed)."""
    sha = hashlib.sha256(data).digest()
    with pf.pool.connection() as conn:
        known = store.known_photos(conn, [sha], pf.analyzer.model_name).get(sha)
        if known is not None and known.analysed:
            with conn.transaction():
                if store.lock_photo(conn, known.photo_id):
                    _keep_upload_file(conn, settings, known.photo_id, sha, data)
                    return known.photo_id, False, None
            known = None  # deleted since: stored again, as new
    # decoded as indexing decodes it (a large JPEG reduced): the same faces and embeddings
    photo = decode_photo(data, name, settings.api_max_upload_bytes, settings.api_max_pixels,
                         settings.decode_keep_side)
    folder = upload_dir(settings)
    # Named by content and suffixed by what the bytes are (the type it is served with), never
    # by the client's file name: a JPEG sent as "x.png" was kept, and served, as a PNG.
    target = folder / f"{sha.hex()}{FORMAT_SUFFIXES.get(photo.format or '', '.img')}"
    photo.source = str(target)
    # Analysed before anything is written: a photo the analysis refuses leaves no file.
    try:
        rows = Indexer(pf.analyzer, pf.pool, settings).photo_rows([photo])
    except Exception as exc:  # memory run out is the server's (a 503), not the photo's
        cause = exc.__cause__ if isinstance(exc, OutOfMemoryError) else exc
        if cause is not None and out_of_memory(cause):
            raise no_memory_while(f"analysing {name}", cause, ANALYSIS_MEMORY) from exc
        raise
    wrote = False

    def write(conn: psycopg.Connection) -> tuple[int, bool]:
        nonlocal wrote
        # A concurrent upload of the same photo waits here on the unique sha256 until this
        # transaction ends, then finds our row: one row, one file.
        reanalysed: list[int] = []
        inserted = store.add_photos(conn, rows, pf.analyzer.model_name, reanalysed=reanalysed,
                                    recognizer_sha256=pf.analyzer.recognizer_sha256)
        if not inserted:
            return store.photo_id_by_sha256(conn, sha), False
        people_of_stored(conn, inserted, reanalysed, pf.analyzer.model_name)
        # Written before the row commits, so a stored row always has its file.
        store.lock_upload_file(conn, target)
        try:
            wrote = _write_file(target, data)
        except OSError as exc:
            raise _not_kept(folder, exc) from None
        # A photo only another pack had analysed is not new to the library.
        return next(iter(inserted.values())), known is None

    try:
        _make_upload_folder(folder)
        # a 409 after BUSY_WAIT_S while a change holds the people (a clustering run): each
        # upload waiting held a pool connection, and enough of them left none for the others
        return (*people_history.people_first(pf.pool, write, people_history.BUSY_WAIT_S),
                photo.warning)
    except BaseException:
        if wrote:  # the row was not stored: no file without a row
            target.unlink(missing_ok=True)
        raise


def _make_upload_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _not_kept(folder, exc) from None


def _not_kept(folder: Path, exc: OSError, outcome: str = "the photo was not stored"
              ) -> ApiError:
    """An upload whose file cannot be written (a full disk, a folder made read-only since
    the server started): a 507 or 503 naming the upload folder, and OUTCOME. It was a 500
    "internal error (OSError)", which these docs call a bug."""
    reason = os_reason(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ApiError(507, f"the upload folder {folder} is full ({reason}): {outcome}",
                        "insufficient_storage")
    return ApiError(503, f"cannot write in the upload folder {folder} ({reason}): {outcome}",
                    "storage_unavailable")


def _keep_upload_file(conn: psycopg.Connection, settings: Settings, photo_id: int,
                      sha: bytes, data: bytes) -> None:
    """A photo uploaded again keeps its upload's file, written from the bytes just sent (they
    are its content: the digest matched). A kept file that has gone (a library restored
    without its upload folder, which no backup holds) is written again. A photo stored from
    folders only gets one, recorded as its oldest path (store.record_kept_copy): the upload
    answered 200 with the photo, and a remove or prune of its folder's file then deleted it
    with its faces (probe apirace30); where it cannot be written, that is said as a new
    upload's failure is (probe reprobe31). The row is locked: a delete waits, then removes
    the file."""
    folder = upload_dir(settings)
    kept = [path for path in store.paths_of_photo(conn, photo_id)
            if path.parent.resolve() == folder.resolve()]
    for path in kept:
        if path.exists():
            continue
        store.lock_upload_file(conn, path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_file(path, data)
        except OSError as exc:  # the photo is stored and kept there: said, and answered
            log.warning("photo %s's uploaded file is missing and cannot be written again "
                        "at %s: %s", photo_id, loggable(path), loggable(str(exc)))
            continue
        log.info("photo %s's uploaded file was missing: written again at %s", photo_id,
                 loggable(path))
    if kept:
        return
    path = folder / f"{sha.hex()}{suffix_of(data)}"
    store.lock_upload_file(conn, path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_file(path, data)
    except OSError as exc:
        raise _not_kept(folder, exc, f"the upload was not kept (photo {photo_id} is stored "
                                     f"from its other paths alone)") from None
    try:
        store.record_kept_copy(conn, photo_id, sha, path)
    except BaseException:  # not recorded: no file without its path
        path.unlink(missing_ok=True)
        raise


# A photo deleted between its upload's storing and the answer's reading of it (the answer
# was a 404 about a photo the client never named, and nothing was stored): stored again.
UPLOAD_TRIES = 3


@router.post("", status_code=201, dependencies=[Depends(require_write)],
             response_model=UploadResult,
             responses={200: {"model": UploadResult,
                              "description": "The same photo was already stored"},
                        **WRITE_ERRORS, **error_responses(409, 507)})
async def index_upload(request: Request, response: Response,
                       file: Annotated[UploadFile, File(description="A photo")]) -> dict:
    """Index an uploaded photo: every face is detected and stored. The photo itself is kept
    in the server's upload folder so it can be shown later. A photo already stored (same
    bytes) is not indexed again: the answer is then 200 with `created` false, else 201."""
    settings = get_settings(request)
    data, name = await read_upload(file, settings.api_max_upload_bytes, "file")
    for tries_left in reversed(range(UPLOAD_TRIES)):
        photo_id, created, warning = await run_cpu(request, _index_upload, get_pf(request),
                                                   settings, data, name)
        try:
            row, faces = await run_in_threadpool(_photo_or_404, get_pf(request), photo_id)
            break
        except NotFoundError:
            if not tries_left:
                raise
    response.status_code = 201 if created else 200
    return {"created": created, "photo": photo_json(row, faces), "warning": warning}


def allowed_roots(settings: Settings) -> list[Path]:
    return [Path(r).expanduser().resolve() for r in settings.api_roots]


def allowed_path(settings: Settings, given: str) -> Path:
    """The real path (symlinks resolved) if it lies under a configured root, else 403."""
    real = _under_roots(settings, given, "indexing server-side paths")
    if not real.exists():
        raise ApiError(404, f"path {given!r} does not exist under the allowed roots")
    return real


def _under_roots(settings: Settings, given: str, doing: str) -> Path:
    """The real path (symlinks resolved, the file may be gone) under a root, else 403 saying
    that DOING is disabled (a remove was told that indexing was: probe docsrun37)."""
    roots = allowed_roots(settings)
    if not roots:
        raise ApiError(403, f"{doing} is disabled: start the server with --roots FOLDER to "
                            f"allow folders", "paths_disabled")
    if "\x00" in given or not given.strip():
        raise ApiError(400, "path is empty or contains a NUL byte", "invalid_path")
    try:
        candidate = Path(given).expanduser()
        real = (candidate if candidate.is_absolute() else roots[0] / candidate).resolve()
        real.exists()  # a name too long for the file system raises here, not later
    except RuntimeError:  # a symlink loop, before Python 3.13 (then an OSError, ELOOP)
        raise ApiError(400, f"path {given[:200]!r} cannot be used: symbolic link loop (too "
                            "many levels of symbolic links)", "invalid_path") from None
    except (OSError, ValueError) as exc:  # too long, a name over 255 bytes, not encodable...
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ApiError(400, f"path {given[:200]!r} cannot be used: {reason}",
                       "invalid_path") from None
    if not any(real == root or root in real.parents for root in roots):
        raise ApiError(403, f"path {given!r} is outside the allowed roots "
                            f"({', '.join(map(str, roots))})", "outside_roots")
    return real


@router.post("/index-path", status_code=202, dependencies=[Depends(require_write)],
             response_model=JobOut, responses=WRITE_ERRORS)
def index_path(request: Request, response: Response, body: IndexPath) -> dict:
    """Start indexing a file or folder (recursively) on the server; answers 202 at once with
    the job (`GET /api/jobs/{id}` follows it, `DELETE` cancels it). Only paths under the
    server's configured roots are accepted; `..` and symlinks are resolved before the check,
    and every file found is checked too. Jobs run one at a time, in the order given."""
    settings = get_settings(request)
    real = allowed_path(settings, body.path)
    job = get_jobs(request).submit(real, allowed_roots(settings), body.prune, body.reread,
                                   body.exclude)
    response.headers["Location"] = job["url"]
    return job


@router.post("/remove", dependencies=[Depends(require_write)], response_model=Removal,
             responses={**WRITE_ERRORS, **error_responses(409)})
def remove_paths(request: Request, body: RemovePaths) -> dict:
    """Forget photos by path: the files given and every photo stored under the folders given
    (they need not exist any more). A photo that also lives at another path keeps it; a photo
    with no path left is deleted with its faces. Answers how many photos, faces and paths
    went."""
    settings = get_settings(request)
    targets = [_under_roots(settings, given, "removing photos by server-side path")
               for given in body.paths]
    return asdict(get_pf(request).remove(targets, wait=False))


@router.get("", dependencies=[Depends(require_read)], response_model=PhotoPage,
            responses=READ_ERRORS)
def list_photos(request: Request, limit: int = Query(100, ge=1, le=1000),
                offset: int = Query(0, ge=0, le=2**62)) -> dict:
    """Photos in id order: `limit` of them from `offset`, with `total`; pass `next_offset`
    back as `offset` for the next page."""
    with get_pf(request).pool.connection() as conn:
        rows = _placed(conn, store.list_photos(conn, offset, limit))
        total = store.count_photos(conn)
    return {"photos": [photo_json(r) for r in rows], **page_fields(total, limit, offset, len(rows))}


@router.get("/{photo_id}", dependencies=[Depends(require_read)], response_model=PhotoOut,
            responses=READ_ERRORS)
def get_photo(request: Request, photo_id: int) -> dict:
    """One photo with its faces (boxes in the photo's pixels, person, crop link)."""
    row, faces = _photo_or_404(get_pf(request), photo_id)
    return photo_json(row, faces)


@router.get("/{photo_id}/image", dependencies=[Depends(require_read)],
            response_class=Response,
            responses={200: {"content": {"image/*": {"schema": {"type": "string",
                                                                "format": "binary"}}}},
                       304: {"description": "Not Modified: If-None-Match names its ETag (the "
                                            "client holds the photo; no body)"},
                       **READ_ERRORS})
async def get_photo_image(request: Request, photo_id: int, display: bool = Query(
        False, description="The photo as pgface read it, to show beside its boxes: upright by "
                           "its EXIF orientation, as a JPEG at most `side` px on its longest "
                           "side (browsers ignore a WebP's orientation, and show no HEIC or "
                           "TIFF)"),
        side: int = Query(DISPLAY_SIDE, ge=64, le=4096,
                          description="With `display`: the longest side, in pixels")
        ) -> Response:
    """The photo file, served only while it still has the content that was indexed."""
    pf, settings = get_pf(request), get_settings(request)
    data, path, sha256 = await run_in_threadpool(_indexed_file, pf, settings, photo_id)
    etag = f'"{sha256.hex()}-display-{side}"' if display else f'"{sha256.hex()}"'
    # The copy the client holds is still the photo (checked as served: the file still holds
    # the indexed content): 304, no body, and the display JPEG not drawn again (each
    # revalidation was a full answer, and a decode and resize of the photo).
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag})
    if display:
        shown = await run_cpu(request, display_jpeg, data, str(path), settings.max_file_bytes,
                              settings.max_pixels, side)
        return Response(shown, media_type="image/jpeg", headers={"ETag": etag})
    # the type of the bytes, not of the name: a BMP, GIF or WebP named .jpg in a folder was
    # served as image/jpeg (probe http19), and a browser left to sniff may take it for another
    # (every answer says nosniff: asgi.SecurityHeaders)
    return Response(data, media_type=media_type(data), headers={"ETag": etag})


def _matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names this ETag (weakly, as RFC 9110 compares it)."""
    if not if_none_match:
        return False
    given = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in given or etag in given


def _indexed_file(pf: Pgface, settings: Settings, photo_id: int) -> tuple[bytes, Path, bytes]:
    """The photo's bytes as indexed, the path they were read at, and their digest."""
    row, _ = _photo_or_404(pf, photo_id)
    with pf.pool.connection() as conn:
        places = store.paths_of_photo(conn, photo_id)
    unreadable: list[ImageError] = []  # there, but the server cannot read it
    for path in places:  # newest first: the first that still holds the indexed content
        try:
            # Read as the indexer reads: a regular file only, bounded in size and time (a path
            # that became a FIFO held a server thread for ever), and the bytes checked are
            # the bytes sent, not a file opened again after the check.
            data = read_file(path, settings.max_file_bytes, settings.read_timeout_s)
        except ImageError as exc:
            if exc.reason.startswith(("cannot read file", "reading took")):
                unreadable.append(exc)
            continue
        if hashlib.sha256(data).digest() == bytes(row["sha256"]):
            return data, path, bytes(row["sha256"])
    # A file the server may not read, or a stalled disk, is not a photo gone: it was said to
    # be "no longer at" a path that held it (search, the CLI and a prune keep it there).
    if denied := next((e for e in unreadable if "permission denied" in e.reason.lower()), None):
        raise ApiError(403, f"photo {photo_id}'s file cannot be read by the server: "
                            f"{denied.source}: {denied.reason}", code="file_unreadable")
    if unreadable:
        raise ApiError(503, f"photo {photo_id}'s file cannot be read now: "
                            f"{unreadable[0].source}: {unreadable[0].reason}",
                       code="storage_unavailable")
    # what brings it back: an upload's file (named by the photo's content, in whichever
    # upload folder) is no folder's to index (reprobe61)
    uploaded = all(path.stem == bytes(row["sha256"]).hex() for path in places)
    raise ApiError(404, f"photo {photo_id}'s file is no longer at {row['path']} (nor at any "
                        f"other path it was seen at, with the content indexed): " + (
                            "uploaded, it comes back when the photo is uploaded again"
                            if places and uploaded else "moved, `pgface index` of the folder "
                            "it is in now finds it there"))


def _delete_unheld_uploads(pf: Pgface, kept: list[str], root: Path) -> list[str]:
    """The deleted photo's kept upload files, each unlinked under its lock unless a photo is
    at that path again (an upload of the same bytes that stored it anew after the delete
    committed); "path: reason" of those that could not be."""
    failed: list[str] = []
    with pf.pool.connection() as conn:
        for path in kept:
            with conn.transaction():
                store.lock_upload_file(conn, Path(path))
                if not store.path_held(conn, Path(path)):
                    failed += delete_uploads([path], root)[1]
    return failed


@router.delete("/{photo_id}", dependencies=[Depends(require_write)],
               response_model=PhotoDeleted,
               responses={**READ_ERRORS, **error_responses(409)})
def delete_photo(request: Request, photo_id: int) -> dict:
    """Forget a photo and its faces. An uploaded photo's kept file is removed too; files
    indexed from the server's own folders are never touched."""
    pf = get_pf(request)
    with pf.pool.connection() as conn, conn.transaction():
        # The people first where its faces hold someone, as `remove` does (nothing is locked
        # yet, so waiting is safe): an erase of a person in it deadlocked with the delete.
        # A 409 after BUSY_WAIT_S (nothing deleted): each delete waiting held a pool
        # connection, and a few during a clustering run left none for the others.
        if store.any_face_held(conn, [photo_id]):
            people_history.hold_people(conn, people_history.BUSY_WAIT_S)
        # Every path: an upload later indexed from a folder too has that path as its newest.
        kept = [str(path) for path in store.paths_of_photo(conn, photo_id)]
        if not store.delete_photo(conn, photo_id):
            raise NotFoundError(f"photo {photo_id} not found", "photo")
    failed = _delete_unheld_uploads(pf, kept, upload_dir(get_settings(request)).resolve())
    for failure in failed:  # the rows are gone: the file left is said, here and in the log
        log.warning("photo %s deleted, its uploaded file stays: %s", photo_id,
                    loggable(failure))
    return {"deleted": photo_id, "files_failed": failed}
