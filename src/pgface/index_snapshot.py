"""A file copy of the in-process search index, so a new process need not load every face.

One file per (database, schema, model) in `<data dir>/index/`: a header (format version, the
database's system identifier and oid, schema, model, the id watermark it covers, the server's
WAL position when it was taken, an xxh3 hash of each array) and the index arrays, which a new
process memory-maps and then catches up from the watermark exactly as a running one does.

PostgreSQL stays the store of record; a snapshot is only trusted when
- its header and hashes check out and it names this database, schema and model (anything else
  is rebuilt from PostgreSQL and rewritten);
- the server has reached the WAL position it was taken at (a lagging standby or a database
  restored to an earlier point does not get ids it has not seen), and a sample of its faces
  is the database's under their ids (one restored and written to past that position holds
  others);
- its faces still exist: the model's faces up to its watermark are counted (an index-only
  scan); only when some were deleted are their ids read, and those gone dropped before the
  first search.
A search's exact check in PostgreSQL still reads every result by id, so a face deleted after
that check can never be returned either.

Written atomically (a temporary file, fsync, rename, fsync of the folder) by a background
thread; a folder pgface cannot write to leaves the index in memory only, with one log line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from pathlib import Path

import numpy as np
import psycopg
import xxhash

from pgface.db import sql

log = logging.getLogger(__name__)

FORMAT = 1
MAGIC = b"PGFACEIX"
_ALIGN = 4096  # arrays start on page boundaries: each maps as it is
_PREFIX = len(MAGIC) + 8  # magic, then the header's length (little-endian uint64)
ARRAYS = ("ids", "codes", "int8", "scales")


class SnapshotError(ValueError):
    """A snapshot file that cannot be trusted (the reason is the message)."""


def _name_part(text: str) -> str:
    """A schema or model name as a file name part: readable when it is plain, else hex."""
    return text if re.fullmatch(r"[A-Za-z0-9_.]{1,64}", text) else "x" + text.encode().hex()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _hash(array: np.ndarray) -> str:
    return xxhash.xxh3_64_hexdigest(np.ascontiguousarray(array).view(np.uint8).reshape(-1))


def remove_snapshots(folder: Path, system_identifier: str, database_oid: int,
                     schema: str) -> int:
    """Delete the snapshot files of every model of this database and schema; how many."""
    prefix = f"{system_identifier}-{database_oid}-{_name_part(schema)}-"
    removed = 0
    for path in folder.glob(f"{prefix}*.pgfidx"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


class SnapshotStore:
    """Where the snapshot of one model's index for one database lives, and its identity."""

    def __init__(self, folder: Path, system_identifier: str, database_oid: int, schema: str,
                 model: str, faces_file: tuple[int, int] = (0, 0)) -> None:
        # faces_file: the table's oid and file node, new after TRUNCATE or a re-created table
        self.identity = {"format": FORMAT, "system_identifier": system_identifier,
                         "database_oid": database_oid, "schema": schema, "model": model,
                         "faces_file": list(faces_file)}
        self.model = model
        self.path = folder / (f"{system_identifier}-{database_oid}-{_name_part(schema)}-"
                              f"{_name_part(model)}.pgfidx")
        self._writing = threading.Lock()

    @classmethod
    def for_database(cls, conn: psycopg.Connection, folder: Path, schema: str,
                     model: str) -> SnapshotStore:
        system_identifier, oid, table, node = conn.execute(sql.DATABASE_IDENTITY).fetchone()
        conn.commit()
        return cls(folder, system_identifier, int(oid), schema, model, (int(table), int(node)))

    def renewed(self, conn: psycopg.Connection) -> SnapshotStore:
        """The store of this folder, schema and model for the database as it is now (its
        faces table made anew, or given a new file)."""
        return SnapshotStore.for_database(conn, self.path.parent, self.identity["schema"],
                                          self.model)

    # ------------------------------------------------------------------ reading

    def read(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Header and memory-mapped arrays, checked; SnapshotError says why one is refused."""
        try:
            return self._read()
        except SnapshotError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:  # a header pgface never wrote
            raise SnapshotError(f"malformed ({type(exc).__name__}: {exc})") from exc

    def _read(self) -> tuple[dict, dict[str, np.ndarray]]:
        try:
            size = self.path.stat().st_size
            with open(self.path, "rb") as f:
                prefix = f.read(_PREFIX)
                if len(prefix) < _PREFIX or prefix[: len(MAGIC)] != MAGIC:
                    raise SnapshotError("not a pgface index snapshot")
                length = int.from_bytes(prefix[len(MAGIC):], "little")
                if length > 1 << 20:
                    raise SnapshotError("header too long")
                header = json.loads(f.read(length))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SnapshotError(f"unreadable ({exc})") from exc
        found = {k: header.get(k) for k in self.identity}
        if found != self.identity:
            differ = [k for k in self.identity if found[k] != self.identity[k]]
            if differ == ["faces_file"]:  # the likeliest: the same library, its table rewritten
                raise SnapshotError("written for an earlier file of the faces table (a restore, "
                                    "an erase's scrub or another VACUUM FULL gives it a new one)")
            raise SnapshotError(f"another database, schema, model or format ({', '.join(differ)}"
                                f" differ: {found})")
        if size != header.get("size"):
            raise SnapshotError(f"truncated or extended ({size} bytes, not {header.get('size')})")
        arrays = {}
        for name in ARRAYS:
            spec = header["arrays"][name]
            shape = tuple(spec["shape"])
            end = spec["offset"] + int(np.prod(shape)) * np.dtype(spec["dtype"]).itemsize
            if end > size:
                raise SnapshotError(f"truncated ({size} bytes, {name} ends at {end})")
            arrays[name] = (np.memmap(self.path, dtype=spec["dtype"], mode="r",
                                      offset=spec["offset"], shape=shape)
                            if shape[0] else np.empty(shape, spec["dtype"]))
            if _hash(arrays[name]) != spec["xxh3"]:
                raise SnapshotError(f"{name} does not match its hash (corrupted)")
        if len({len(a) for a in arrays.values()}) != 1:
            raise SnapshotError("arrays of different lengths")
        return header, arrays

    def open(self, conn: psycopg.Connection):  # -> SignIndex | None (import cycle)
        """The index as the snapshot holds it, checked against the database and without the
        faces deleted since; None (with the reason logged) when there is none to trust."""
        from pgface.vector_index import SignIndex

        if not self.path.exists():
            return None
        try:
            header, arrays = self.read()
            reached, remaining = conn.execute(sql.SNAPSHOT_CHECK, {
                "lsn": header["lsn"], "model": self.model,
                "watermark": int(header["watermark"])}).fetchone()
            if not reached:
                raise SnapshotError("taken further on than this server has come (a lagging "
                                    "standby or a database restored to an earlier point)")
            # No face up to the watermark can appear after it, so the faces there now are a
            # subset of the snapshot's: the same number means the same faces.
            if remaining > len(arrays["ids"]):
                raise SnapshotError(f"holds {len(arrays['ids'])} faces up to its watermark, "
                                    f"the database {remaining}")
            keep = (None if remaining == len(arrays["ids"]) else np.isin(
                arrays["ids"], self._present_ids(conn, int(header["watermark"])),
                assume_unique=True))
            self._check_sample(conn, arrays, keep)
        except SnapshotError as exc:
            log.warning("index snapshot %s not used: %s; rebuilding it from PostgreSQL",
                        self.path, exc)
            return None
        finally:
            conn.rollback()
        gone = 0
        if keep is not None:  # deleted since it was written: copies the rest into memory
            gone = int(len(keep) - keep.sum())
            arrays = {k: np.ascontiguousarray(a[keep]) for k, a in arrays.items()}
        index = SignIndex.restored(self.model, arrays, int(header["watermark"]), header["lsn"])
        index.unsaved = gone
        if gone:  # the file still holds the deleted faces' copies: write it again
            index._saved_watermark = None
        return index

    @staticmethod
    def _check_sample(conn: psycopg.Connection, arrays: dict[str, np.ndarray],
                      present: np.ndarray | None, newest: int = 32, spread: int = 32) -> None:
        """SnapshotError unless the snapshot's sign bits of a sample of its faces the database
        still has (PRESENT: a mask of them, None: all; the NEWEST ids, and SPREAD across the
        rest) are those of the faces the database holds under those ids now. A database
        restored to an earlier point and written to past the snapshot's WAL position passed
        every other check, its new faces under ids the snapshot held for others: they were
        never found (probe bigindex38). The newest of those still there, not of the file's:
        a data folder's copy put back lost the file's newest, and the ids written again were
        between the others sampled (probe reprobe39)."""
        from pgface.vector_index import sign_bits

        live = np.arange(len(arrays["ids"])) if present is None else np.flatnonzero(present)
        ids = arrays["ids"][live]
        if not len(ids):
            return
        rows = live[np.unique(np.concatenate([
            np.argpartition(ids, -newest)[-newest:] if len(ids) > newest else np.arange(len(ids)),
            np.linspace(0, len(ids) - 1, min(spread, len(ids))).astype(np.int64)]))]
        by_id = {int(i): r for i, r in zip(arrays["ids"][rows], rows, strict=True)}
        for face_id, text in conn.execute(sql.EMBEDDINGS_BY_ID, [list(by_id)]):
            vector = np.array(json.loads(text), dtype=np.float32)
            if not np.array_equal(sign_bits(vector)[0], arrays["codes"][by_id[face_id]]):
                raise SnapshotError(
                    f"face {face_id} in the database is not the one it holds under that id (a "
                    f"database restored to an earlier point and written to since)")

    @staticmethod
    def _present_ids(conn: psycopg.Connection, watermark: int) -> np.ndarray:
        """Every face id <= watermark, of any model."""
        packed = conn.execute(sql.FACE_IDS_UP_TO, [watermark]).fetchone()[0]
        return np.frombuffer(packed or b"", ">i8").astype(np.int64)

    # ------------------------------------------------------------------ writing

    def _remove_orphans(self) -> None:
        """Temporary files of writers that died (a crash, a kill) before their rename."""
        for temp in self.path.parent.glob(f"{self.path.name}.*.tmp"):
            pid = temp.name[len(self.path.name) + 1:].split(".")[0]
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                temp.unlink(missing_ok=True)

    def write(self, arrays: dict[str, np.ndarray], watermark: int, lsn: str) -> None:
        """Writes the arrays (rows of faces with id <= watermark) atomically; OSError when
        the folder cannot be written."""
        header = dict(self.identity, watermark=watermark, lsn=lsn, count=len(arrays["ids"]),
                      arrays={})
        offset = _ALIGN
        for name in ARRAYS:
            a = arrays[name]
            header["arrays"][name] = {"offset": offset, "dtype": a.dtype.str,
                                      "shape": list(a.shape), "xxh3": _hash(a)}
            offset += -(-a.nbytes // _ALIGN) * _ALIGN
        header["size"] = offset
        text = json.dumps(header).encode()
        if _PREFIX + len(text) > _ALIGN:
            raise ValueError("snapshot header longer than its page")
        # Only this user's: the file holds every face's embedding, as a backup does (0600), and
        # a root install's data folder is 0755 for its server's user (probe operator: 0644)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._remove_orphans()
        temp = self.path.with_name(f"{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with os.fdopen(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                           "wb") as f:
                f.write(MAGIC + len(text).to_bytes(8, "little") + text)
                for name in ARRAYS:
                    f.seek(header["arrays"][name]["offset"])
                    f.write(np.ascontiguousarray(arrays[name]).data)
                f.truncate(offset)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, self.path)
            folder = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)  # the rename itself survives a crash
            finally:
                os.close(folder)
        finally:
            temp.unlink(missing_ok=True)
