"""pgface: face recognition, storage and search on PostgreSQL + pgvector.

The public API is this module's names; everything else is an implementation detail. Each is
imported when first used (PEP 562): `import pgface` alone loads nothing heavy, so that the
command line's launcher (pgface.launch) is running, and says a Ctrl-C as it should, before the
models' and the database's libraries load (a Ctrl-C in that second was a Python traceback:
probes cli23 and crash23).
"""

import importlib
import os
from typing import TYPE_CHECKING, Any

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
    "SearchResult": "pgface.search",
}

__all__ = [
    "Comparison",
    "DatabaseError",
    "DatabaseLost",
    "Identification",
    "ImageError",
    "IndexReport",
    "InterpreterExiting",
    "InvalidInputError",
    "InvalidSettings",
    "Match",
    "ModelPackError",
    "NoFaceError",
    "NotFoundError",
    "OpenFilesError",
    "OutOfMemoryError",
    "People",
    "PeopleBusyError",
    "Person",
    "PersonConflict",
    "PersonError",
    "Pgface",
    "PgfaceError",
    "QueryFace",
    "ReadOnlyDatabase",
    "SearchResult",
    "Settings",
    "StatementCancelled",
    "StatementFailed",
    "UndoError",
    "open",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'pgface' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value  # once: the next use is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})


if TYPE_CHECKING:  # what a type checker and an IDE read
    from pgface.config import InvalidSettings, Settings
    from pgface.db.connection import (
        DatabaseError,
        DatabaseLost,
        ReadOnlyDatabase,
        StatementCancelled,
        StatementFailed,
    )
    from pgface.errors import (
        ImageError,
        InvalidInputError,
        ModelPackError,
        NoFaceError,
        NotFoundError,
        OpenFilesError,
        OutOfMemoryError,
        PeopleBusyError,
        PgfaceError,
    )
    from pgface.index import IndexReport
    from pgface.library import Pgface, open
    from pgface.people import Identification, People, Person, PersonConflict, PersonError
    from pgface.people_history import UndoError
    from pgface.search import Comparison, Match, QueryFace, SearchResult
