"""A database router for a project whose pgface tables live on another alias of DATABASES
(PGFACE["DATABASE"] = "faces"):

    DATABASE_ROUTERS = [..., "pgface.django.routers.PgfaceRouter"]  # last: yours decide first

Without it Django's default routing follows a related instance's database (probe django39):
a project's Tag given a Person read from "faces" (an admin form's choice, `Tag(person=...)`)
was saved into pgface's database, not the project's, and `person.tags` read from there; and
`Face.objects.similar_to(...)` without `.using("faces")` read `default`.
"""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS, models

from pgface.django import conf

APP_LABEL = "pgface"  # PgfaceConfig.label


def is_pgface_model(model: type[models.Model] | None) -> bool:
    """Whether MODEL is one of pgface's (Person, Photo, Face)."""
    return model is not None and getattr(model, "_meta", None) is not None and (
        model._meta.app_label == APP_LABEL)


class PgfaceRouter:
    """pgface's models read (and would write, which they refuse) on pgface's alias; a model of
    the project's that Django routes by a pgface instance (a Tag given a Person, the Person's
    `tags`) on `default`, not where that instance was read. Everything else is left to the
    routers listed before it and to Django (None)."""

    def db_for_read(self, model: type[models.Model], **hints: Any) -> str | None:
        return self._db_for(model, hints)

    def db_for_write(self, model: type[models.Model], **hints: Any) -> str | None:
        return self._db_for(model, hints)

    def _db_for(self, model: type[models.Model], hints: dict[str, Any]) -> str | None:
        if is_pgface_model(model):
            return conf.database_alias()
        instance = hints.get("instance")
        if instance is not None and is_pgface_model(type(instance)):
            # Django would answer instance._state.db: pgface's alias, where the project's
            # tables are not (or are, unused: the probe's rows landed in faces' album_tag)
            return DEFAULT_DB_ALIAS
        return None

    def allow_relation(self, obj1: models.Model, obj2: models.Model,
                       **hints: Any) -> bool | None:
        """A project's row may point at pgface's on another database (db_constraint=False):
        Django allows a relation only within one database unless a router says so."""
        if is_pgface_model(type(obj1)) or is_pgface_model(type(obj2)):
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None,
                      **hints: Any) -> bool | None:
        return None  # pgface's models are unmanaged; its schema is pgface's own migrations
