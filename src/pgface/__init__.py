"""pgface: face recognition, storage and search on PostgreSQL + pgvector.

The public API is this module's names; everything else is an implementation detail.
"""

from pgface.config import Settings
from pgface.errors import (
    ImageError,
    ModelPackError,
    NoFaceError,
    NotFoundError,
    PeopleBusyError,
    PgfaceError,
)
from pgface.index import IndexReport
from pgface.library import Pgface, open
from pgface.people import Identification, People, Person, PersonError
from pgface.search import Comparison, Match, QueryFace, SearchResult

__all__ = [
    "Comparison",
    "Identification",
    "ImageError",
    "IndexReport",
    "Match",
    "ModelPackError",
    "NoFaceError",
    "NotFoundError",
    "People",
    "PeopleBusyError",
    "Person",
    "PersonError",
    "Pgface",
    "PgfaceError",
    "QueryFace",
    "SearchResult",
    "Settings",
    "open",
]
__version__ = "0.1.0"
