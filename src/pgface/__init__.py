"""pgface: face recognition, storage and search on PostgreSQL + pgvector.

The public API is this module's names; everything else is an implementation detail. Each is
imported when first used (PEP 562): `import pgface` alone loads nothing heavy, so that the
command line's launcher (pgface.launch) is running, and says a Ctrl-C as it should, before the
models' and the database's libraries load (a Ctrl-C in that second was a Python traceback:
probes cli23 and crash23).
"""

from __future__ import annotations

import importlib
import os

# typing.TYPE_CHECKING, without importing typing (and re and enum with it) as pgface starts:
# a Ctrl-C in that tenth of a second, before the launcher's handling, was a traceback through
# this line on a loaded machine. Type checkers read the name as typing's.
TYPE_CHECKING = False

# ONNX Runtime (1.29 up) sends usage telemetry from Linux by default, with an identifier it
# keeps in ~/.cache/Microsoft: off for pgface's photos' machine unless the user turns it on
# (ORT_DISABLE_TELEMETRY=0). Read once, when onnxruntime is first imported: so here, first.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

# name -> the module that defines it
_WHERE = {
    "InvalidSettings": "pgface.config", "Settings": "pgface.config",
    "DatabaseError": "pgface.db.connection", "DatabaseLost": "pgface.db.connection",
    "ReadOnlyDatabase": "pgface.db.connection", "StatementCancelled": "pgface.db.connection",
    "StatementFailed": "pgface.db.connection",
    "ImageError": "pgface.errors", "InvalidInputError": "pgface.errors",
    "InterpreterExiting": "pgface.errors",
    "ModelPackError": "pgface.errors", "NoFaceError": "pgface.errors",
    "NotFoundError": "pgface.errors", "OpenFilesError": "pgface.errors",
    "OutOfMemoryError": "pgface.errors", "PeopleBusyError": "pgface.errors",
    "PgfaceError": "pgface.errors",
    "IndexReport": "pgface.index",
    "Pgface": "pgface.library", "open": "pgface.library",
    "Identification": "pgface.people", "People": "pgface.people", "Person": "pgface.people",
    "PersonConflict": "pgface.people", "PersonError": "pgface.people",
    "UndoError": "pgface.people_history",
    "Comparison": "pgface.search", "Match": "pgface.search", "QueryFace": "pgface.search",
    "SearchResult": "pgface.search", "StoredQuery": "pgface.search",
    # what the calls return, and what their results hold (for a user's type hints)
    "ClusterReport": "pgface.clustering",
    "FileStamp": "pgface.db.store", "Removal": "pgface.db.store", "StoredFace": "pgface.db.store",
    "EnrolReport": "pgface.enrolment",
    "Candidate": "pgface.identify", "IdentifiedFace": "pgface.identify",
    "PersonMatches": "pgface.identify", "TakenCandidate": "pgface.identify",
    "Photo": "pgface.imaging",
    "Failure": "pgface.index", "PhotoWarning": "pgface.index",
    "ProgressCallback": "pgface.index",
    "Erasure": "pgface.people", "HeldFace": "pgface.people", "Naming": "pgface.people",
    "PersonFace": "pgface.people", "PersonPhoto": "pgface.people",
    "Change": "pgface.people_history",
}

__all__ = [
    "Candidate",
    "Change",
    "ClusterReport",
    "Comparison",
    "DatabaseError",
    "DatabaseLost",
    "EnrolReport",
    "Erasure",
    "Failure",
    "FileStamp",
    "HeldFace",
    "Identification",
    "IdentifiedFace",
    "ImageError",
    "IndexReport",
    "InterpreterExiting",
    "InvalidInputError",
    "InvalidSettings",
    "Match",
    "ModelPackError",
    "Naming",
    "NoFaceError",
    "NotFoundError",
    "OpenFilesError",
    "OutOfMemoryError",
    "People",
    "PeopleBusyError",
    "Person",
    "PersonConflict",
    "PersonError",
    "PersonFace",
    "PersonMatches",
    "PersonPhoto",
    "Pgface",
    "PgfaceError",
    "Photo",
    "PhotoWarning",
    "ProgressCallback",
    "QueryFace",
    "ReadOnlyDatabase",
    "Removal",
    "SearchResult",
    "Settings",
    "StatementCancelled",
    "StatementFailed",
    "StoredFace",
    "StoredQuery",
    "TakenCandidate",
    "UndoError",
    "open",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:  # each public name is typed in the block below
    if name not in _WHERE:
        raise AttributeError(f"module 'pgface' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value  # once: the next use is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})


if TYPE_CHECKING:  # what a type checker and an IDE read
    from pgface.clustering import ClusterReport
    from pgface.config import InvalidSettings, Settings
    from pgface.db.connection import (
        DatabaseError,
        DatabaseLost,
        ReadOnlyDatabase,
        StatementCancelled,
        StatementFailed,
    )
    from pgface.db.store import FileStamp, Removal, StoredFace
    from pgface.enrolment import EnrolReport
    from pgface.errors import (
        ImageError,
        InterpreterExiting,
        InvalidInputError,
        ModelPackError,
        NoFaceError,
        NotFoundError,
        OpenFilesError,
        OutOfMemoryError,
        PeopleBusyError,
        PgfaceError,
    )
    from pgface.identify import Candidate, IdentifiedFace, PersonMatches, TakenCandidate
    from pgface.imaging import Photo
    from pgface.index import Failure, IndexReport, PhotoWarning, ProgressCallback
    from pgface.library import Pgface, open
    from pgface.people import (
        Erasure,
        HeldFace,
        Identification,
        Naming,
        People,
        Person,
        PersonConflict,
        PersonError,
        PersonFace,
        PersonPhoto,
    )
    from pgface.people_history import Change, UndoError
    from pgface.search import Comparison, Match, QueryFace, SearchResult, StoredQuery
