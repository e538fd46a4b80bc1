"""pgface: face recognition, storage and search on PostgreSQL + pgvector.

The public API is this module's names; everything else is an implementation detail.
"""

import os

# ONNX Runtime (1.29 up) sends usage telemetry from Linux by default, with an identifier it
# keeps in ~/.cache/Microsoft: off for pgface's photos' machine unless the user turns it on
# (ORT_DISABLE_TELEMETRY=0). Read once, when onnxruntime is first imported: so here, first.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from pgface.config import InvalidSettings, Settings  # noqa: E402
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

__all__ = [
    "Comparison",
    "DatabaseError",
    "DatabaseLost",
    "Identification",
    "ImageError",
    "IndexReport",
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
