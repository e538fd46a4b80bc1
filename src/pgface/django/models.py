"""pgface's tables as unmanaged, read-only Django models, in pgface's schema.

Django never creates, migrates or writes these tables: pgface does (its library, CLI, HTTP
API, or `manage.py pgface ...`; `manage.py migrate` has it create them, conf.ensure_schema).
Join to them from your own models with, for example,
`models.ForeignKey("pgface.Person", on_delete=models.DO_NOTHING, db_constraint=False)`.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError
from django.db import connections, models
from django.db.models import ExpressionWrapper, F, FloatField, Func, Value, signals
from django.db.models.constants import LOOKUP_SEP
from django.db.models.functions import Trunc
from django.utils import timezone
from pgvector import Vector
from pgvector.django import VectorField

from pgface.db import sql as pgsql
from pgface.django import conf
from pgface.errors import InvalidInputError, kind_of
from pgface.search import check_similarity, first_searched_face

SCHEMA = conf.models_schema()  # a mistake in PGFACE is said by the system check, not here


def _table(name: str, schema: str = SCHEMA) -> str:
    # Django quotes db_table as one identifier: this makes it "schema"."table". A quote in the
    # schema's name doubled, as in any quoted identifier (PGFACE["DB_SCHEMA"] = 'my"faces' is
    # a schema pgface uses, and its tables were a syntax error here).
    return f'{schema.replace(chr(34), chr(34) * 2)}"."{name}'


def _refuse(what: str) -> TypeError:
    return TypeError(f"{what} rows are pgface's: change them through pgface")


class ReadOnlyQuerySet(models.QuerySet):
    """Rows written by pgface alone: a queryset's bulk writes are refused as `save()` is (an
    `update()` or `delete()` went straight to pgface's tables, past its rules and its people
    history, so no undo could bring a deleted person back)."""

    def update(self, **kwargs: object) -> int:
        raise _refuse(self.model.__name__)

    def delete(self) -> tuple[int, dict[str, int]]:
        raise _refuse(self.model.__name__)

    def bulk_create(self, *args: object, **kwargs: object) -> list:
        raise _refuse(self.model.__name__)

    def bulk_update(self, *args: object, **kwargs: object) -> int:
        raise _refuse(self.model.__name__)

    # dates() and datetimes() of a wall-clock field (Photo.taken_at) read its clock, as its
    # lookups do: Django truncated it in TIME_ZONE, so a photo of 2020-12-31 23:59 was on
    # 2021-01-01 in a project in New York, and one of year 9999 failed ("timestamp too large",
    # probe dates33). Truncated in UTC, the zone the column's clock is read in.

    def dates(self, field_name: str, kind: str, order: str = "ASC") -> models.QuerySet:
        if not _wall_clock(self.model, field_name):
            return super().dates(field_name, kind, order)
        return self._truncated(field_name, kind, order, models.DateField())

    def datetimes(self, field_name: str, kind: str, order: str = "ASC",
                  tzinfo: dt.tzinfo | None = None) -> models.QuerySet:
        """Of a wall-clock field: its clock's readings truncated, without a zone as the
        field's values are (tzinfo is taken for fields with a zone alone: the clock has
        none)."""
        if not _wall_clock(self.model, field_name):
            return super().datetimes(field_name, kind, order, tzinfo)
        return self._truncated(field_name, kind, order, models.DateTimeField())

    def _truncated(self, field_name: str, kind: str, order: str,
                   output: models.Field) -> models.QuerySet:
        """QuerySet.dates() and datetimes() as Django writes them, truncated in UTC."""
        dates = isinstance(output, models.DateField) and not isinstance(
            output, models.DateTimeField)
        kinds = (("year", "month", "week", "day") if dates
                 else ("year", "month", "week", "day", "hour", "minute", "second"))
        if kind not in kinds:
            raise ValueError(f"'kind' must be one of {', '.join(map(repr, kinds))}.")
        if order not in ("ASC", "DESC"):
            raise ValueError("'order' must be either 'ASC' or 'DESC'.")
        return (self.annotate(truncated=_WallClockTrunc(field_name, kind, output_field=output,
                                                        tzinfo=dt.timezone.utc),
                              plain_field=F(field_name))
                .values_list("truncated", flat=True).distinct()
                .filter(plain_field__isnull=False)
                .order_by(("-" if order == "DESC" else "") + "truncated"))


class _WallClockTrunc(Trunc):
    """Trunc in UTC of a wall-clock field, its datetimes without a zone as the field's are."""

    def convert_value(self, value: Any, expression: Any, connection: Any) -> Any:
        value = super().convert_value(value, expression, connection)
        return value.replace(tzinfo=None) if isinstance(value, dt.datetime) else value


def _wall_clock(model: type[models.Model], field_name: str) -> bool:
    """Whether FIELD_NAME (a path through relations: `photo__taken_at`) of MODEL is a
    WallClockDateTimeField."""
    field = None
    for part in field_name.split(LOOKUP_SEP):
        if model is None:
            return False
        field = model._meta.get_field(part)
        model = field.related_model
    return isinstance(field, WallClockDateTimeField)


class ReadOnlyModel(models.Model):
    objects = ReadOnlyQuerySet.as_manager()

    class Meta:
        abstract = True
        managed = False
        # Django's own writes go through the base manager: a reverse relation's add()
        # (person.faces.add(face)) updated faces.person_id with a plain manager's update(),
        # past the refusals, unrecorded, the face still "assigned by" a human.
        base_manager_name = "objects"

    def save(self, *args: object, **kwargs: object) -> None:
        raise _refuse(type(self).__name__)

    # save() is not all: `manage.py loaddata` writes with Model.save_base(obj, raw=True), past
    # any save() (a fixture renamed and hid a person, unrecorded); every row write sends
    # pre_save (_refuse_write, connected below for each model).

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise _refuse(type(self).__name__)


class Person(ReadOnlyModel):
    id = models.BigAutoField(primary_key=True)
    name = models.TextField(unique=True, null=True)  # None: found by clustering, not yet named
    hidden = models.BooleanField(default=False)  # left out of people lists (migration 0008)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta(ReadOnlyModel.Meta):
        db_table = _table("people")
        verbose_name_plural = "people"
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name or f"person {self.id}"


class _LookupsInUTC:
    """The lookups and transforms of what this is mixed into, compiled to SQL in UTC."""

    def get_lookup(self, name: str) -> type | None:
        found = super().get_lookup(name)  # type: ignore[misc]
        return _in_utc(found) if found is not None else None

    def get_transform(self, name: str) -> type | None:
        found = super().get_transform(name)  # type: ignore[misc]
        return _in_utc(found) if found is not None else None


@functools.cache  # one class for each, not one a query
def _in_utc(compiled: type) -> type:
    """COMPILED (a lookup or transform class) compiled to SQL in UTC, and so its own lookups
    and transforms (a year's bounds are made by the lookup on the year)."""

    class InUTC(_LookupsInUTC, compiled):  # type: ignore[misc,valid-type]
        def as_sql(self, compiler: Any, connection: Any) -> Any:
            with timezone.override(dt.timezone.utc):
                return super().as_sql(compiler, connection)

    InUTC.__name__ = InUTC.__qualname__ = compiled.__name__
    return InUTC


class WallClockDateTimeField(_LookupsInUTC, models.DateTimeField):
    """A `timestamp` column without a zone (a photo's EXIF time: the clock on the camera).

    With USE_TZ and a TIME_ZONE other than UTC, Django took it for a time in UTC to be shown
    in TIME_ZONE: `taken_at__date` of a photo taken 2024-12-31 22:00 said 2025-01-01 (New
    York), `taken_at__year=2024` missed one taken 2024-01-01 02:00. Here it is compared as the
    wall-clock time it is: lookups and their transforms in UTC (the zone Django's PostgreSQL
    sessions use), a value given with a zone by its own wall-clock time, without one as it is.
    """

    def get_prep_value(self, value: Any) -> Any:
        value = models.Field.get_prep_value(self, value)
        value = self.to_python(value)
        if isinstance(value, dt.datetime):
            return value.replace(tzinfo=dt.timezone.utc)  # its clock's reading, as stored
        return value


class Photo(ReadOnlyModel):
    id = models.BigAutoField(primary_key=True)
    sha256 = models.BinaryField()
    path = models.TextField()
    size_bytes = models.BigIntegerField()
    width = models.IntegerField()
    height = models.IntegerField()
    taken_at = WallClockDateTimeField(null=True)  # EXIF time, no zone
    indexed_at = models.DateTimeField()
    face_count = models.IntegerField()

    class Meta(ReadOnlyModel.Meta):
        db_table = _table("photos")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.path



class CosineDistance(Func):
    """pgvector's cosine distance (`<=>`) from a vector column to a vector (its text), the
    operator and the type named with the schema that holds pgvector, as found on the
    connection: pgvector.django's CosineDistance wrote them bare, and failed where pgvector
    lives in a schema the connection's search_path leaves out (a hosted server's
    `extensions`: "operator does not exist: extensions.vector <=> unknown")."""

    output_field = FloatField()

    def __init__(self, column: str, vector: str) -> None:
        super().__init__(F(column))
        self.vector = vector

    def as_sql(self, compiler: Any, connection: Any, *args: Any, **kwargs: Any
               ) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.get_source_expressions()[0])
        schema = connection.ops.quote_name(_vector_schema(connection))
        return (f"({column} OPERATOR({schema}.<=>) %s::{schema}.vector)",
                [*params, self.vector])


def _vector_schema(connection: Any) -> str:
    """The schema pgvector is in, asked once per database connection (a new one asks again)."""
    known = getattr(connection, "_pgface_vector_schema", None)
    if known is not None and connection.connection is not None and known[0] is (
            connection.connection):
        return known[1]
    with connection.cursor() as cursor:
        cursor.execute(pgsql.VECTOR_SCHEMA)
        row = cursor.fetchone()
    schema = row[0] if row else "public"
    connection._pgface_vector_schema = (connection.connection, schema)
    return schema


class FaceQuerySet(ReadOnlyQuerySet):
    def similar_to(self, target: Face | Sequence[float] | np.ndarray | str | Path | bytes | Any,
                   threshold: float | None = None, model: str | None = None,
                   min_quality: float | None = None) -> FaceQuerySet:
        """Faces of the same person as target, most similar first, with photo and person.

        target: a Face (itself left out), an embedding (512 floats), or a photo (a path, its
        bytes, a Django upload or File, a Pillow image, a BGR uint8 array; the face pgface's
        search searches first: its largest at or above the quality floor, `min_quality`,
        default the MIN_QUALITY setting; a NoFaceError where it has none); anything else is
        an InvalidInputError. Cosine similarity, at least `threshold` (default: the threshold
        pgface calibrated for the model pack). Each face carries `distance` (cosine) and
        `similarity` (1 - distance); the result is a QuerySet: filter, slice, paginate.

        It reads pgface's alias (PGFACE["DATABASE"], or one of READ_DATABASES); a queryset on
        any other database is an ImproperlyConfigured saying so.
        """
        _check_database(self.db)
        embedding, model, itself = _query_vector(target, model, min_quality)
        if threshold is None:
            threshold = conf.pgface_settings().match_threshold(model)
        # NaN passed every row (PostgreSQL orders it above every number), 5 none, unsaid
        check_similarity("threshold", threshold)
        vector = Vector(embedding).to_text()
        found = self.filter(model_pack=model).annotate(
            distance=CosineDistance("embedding", vector),
            similarity=ExpressionWrapper(Value(1.0) - CosineDistance("embedding", vector),
                                         output_field=FloatField()),
        ).filter(distance__lte=1.0 - threshold)
        if itself is not None:
            found = found.exclude(pk=itself)
        return found.select_related("photo", "person").order_by("distance", "id")


def _check_database(db: str) -> None:
    """The queryset's database DB is pgface's (PGFACE["DATABASE"], or one of READ_DATABASES)
    and PostgreSQL. With pgface's tables on another alias and no router, similar_to read
    `default`: sqlite's "no such table: pg_extension" (pgface's query for pgvector's schema,
    sent there), or where `default` is PostgreSQL, another library's faces (probe django39).
    An ImproperlyConfigured, as conf's other mistakes of DATABASES and PGFACE are: what to
    change is the project's routing (or the query's .using())."""
    alias, reads = conf._databases(conf._options())
    if db in (alias, *reads):
        conf.conninfo(db)  # not in DATABASES, or not PostgreSQL: said as conf says it
        return
    conf.conninfo(alias)  # PGFACE['DATABASE'] itself wrong: that first
    vendor = connections[db].vendor if db in connections else "not in DATABASES"
    raise ImproperlyConfigured(
        f"similar_to reads database {db!r} ({vendor}), but pgface's tables are on alias "
        f"{alias!r} (PGFACE['DATABASE']): query Face.objects.using({alias!r}).similar_to(...), "
        f"or add {conf.ROUTER!r} to settings.DATABASE_ROUTERS (last), which reads pgface's "
        "models there (docs/django.md, step 1)")


def _query_vector(target: object, model: str | None, min_quality: float | None = None
                  ) -> tuple[np.ndarray, str, int | None]:
    if isinstance(target, Face):
        return np.asarray(target.embedding, np.float32), target.model_pack, target.pk
    photo, name = _photo_of(target)
    if photo is not None:
        library = conf.library()
        # named as the error of one without a face names it: an upload that is no photo was
        # "photo bytes: not an image", not its file's name
        loaded = library.load_photo(photo, name)
        # the face pgface's search searches first, under its quality floor: the largest face,
        # however blurred or small, was searched and found strangers where a search leaves it
        # unsearched ("searched": false)
        face = first_searched_face(
            library.analyzer, loaded,
            library.settings.min_quality if min_quality is None else min_quality)
        return face.embedding, library.analyzer.model_name, None
    vector = _embedding_of(target)
    # PostgreSQL's "NaN not allowed in vector" came when the queryset ran; zeros have no
    # direction (every cosine distance NaN: nothing found, nothing said)
    if not np.isfinite(vector).all():
        raise InvalidInputError("an embedding's 512 numbers are finite; this one holds NaN "
                                "or infinity")
    if not vector.any():
        raise InvalidInputError("an embedding of zeros has no direction to compare")
    # The pack's name, as faces are stored under it: the setting may be the pack's folder
    # (stored faces never matched it, and its threshold was the uncalibrated one).
    return vector, model or conf.library().analyzer.model_name, None


def _photo_of(target: object) -> tuple[Any, str | None]:
    """TARGET as a photo pgface reads (a path, bytes, a Pillow image, a BGR uint8 array) and
    what an error calls it (None: what pgface calls it, "photo bytes", "Pillow image"); (None,
    None) where it is no photo. A Django upload (a form's cleaned_data["photo"]) or another
    Django File is read as its bytes, named by its name; a bytearray or memoryview is read as
    bytes: they were a bare TypeError, or taken for an embedding."""
    from django.core.files import File
    from PIL import Image

    if isinstance(target, str | Path):
        return target, str(target)
    if isinstance(target, bytes | bytearray | memoryview):
        return bytes(target), None
    if isinstance(target, File):
        # A closed File is opened again by its name, as Django's own File.open() does, and
        # closed after, as found: a model's FieldFile after `with instance.photo.open(): ...`
        # was "cannot read the file: seek of closed file" (probe django39). One that cannot be
        # opened again (an upload's closed memory, a File without a name) is said as before.
        reopened = False
        try:
            if target.closed:
                target.open("rb")
                reopened = True
            data = b"".join(target.chunks())  # from its start, in chunks (chunks() seeks to 0)
        except (OSError, ValueError) as exc:  # closed for good, or never opened
            raise InvalidInputError(f"{target.name}: cannot read the file: {exc}") from None
        finally:
            if reopened:
                target.close()
        return data, str(target.name or "the uploaded photo")
    if isinstance(target, Image.Image):
        return target, None
    if isinstance(target, np.ndarray) and target.ndim == 3:  # pixels, not an embedding
        return target, None
    return None, None


def _embedding_of(target: object) -> np.ndarray:
    """TARGET as an embedding of 512 numbers; else an InvalidInputError saying what
    similar_to takes (None, 511 numbers or strings were a bare TypeError or ValueError)."""
    takes = ("similar_to takes a Face, an embedding (512 numbers), or a photo (a path, its "
             "bytes, a Django upload, a Pillow image)")
    if target is None or isinstance(target, str | bytes | dict) or not hasattr(target, "__len__"):
        raise InvalidInputError(f"{takes}, not {kind_of(target)}")
    try:
        vector = np.asarray(target, np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{takes}: an embedding holds numbers ({exc})") from None
    if vector.shape != (512,):
        raise InvalidInputError(f"{takes}: an embedding has 512 numbers, not shape "
                                f"{vector.shape}")
    return vector


class Face(ReadOnlyModel):
    id = models.BigAutoField(primary_key=True)
    photo = models.ForeignKey(Photo, models.DO_NOTHING, related_name="faces")
    model_pack = models.TextField(db_column="model")
    embedding = VectorField(dimensions=512)
    bbox = ArrayField(models.FloatField(), size=4)  # x1, y1, x2, y2 in the photo's pixels
    landmarks = ArrayField(models.FloatField(), size=10)
    det_score = models.FloatField()
    crop = models.BinaryField()  # JPEG of the aligned face
    person = models.ForeignKey(Person, models.DO_NOTHING, null=True, related_name="faces")
    assigned_by = models.TextField(null=True)  # 'user' or 'cluster'
    clustered_at = models.DateTimeField(null=True)

    objects = FaceQuerySet.as_manager()

    class Meta(ReadOnlyModel.Meta):
        db_table = _table("faces")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"face {self.id}"


class FixtureRefused(CommandError, TypeError):
    """loaddata met pgface's rows (a whole project's dumpdata holds them): a CommandError, so
    `manage.py loaddata` says it in one line (a TypeError was a traceback), and the TypeError
    every refused write is."""


def _refuse_write(sender: type[models.Model], instance: models.Model, raw: bool = False,
                  **kwargs: object) -> None:
    if raw:  # loaddata (Model.save_base(raw=True))
        raise FixtureRefused(
            f"{sender._meta.label} rows are pgface's: a fixture cannot write them (dump the "
            f"project without them: manage.py dumpdata -e pgface)")
    raise _refuse(sender.__name__)


for _model in (Person, Photo, Face):
    signals.pre_save.connect(_refuse_write, sender=_model, dispatch_uid=f"pgface.{_model.__name__}")
