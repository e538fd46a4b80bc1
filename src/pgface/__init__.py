"""pgface: face recognition, storage and search on PostgreSQL + pgvector.

The public API is this module's names; everything else is an implementation detail.
"""

from pgface.config import InvalidSettings, Settings
from pgface.db.connection import DatabaseError
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
    "SearchResult",
    "Settings",
    "UndoError",
    "open",
]
__version__ = "0.1.0"
