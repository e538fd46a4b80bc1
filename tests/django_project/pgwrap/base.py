"""The wrapping backend's connection: Django's PostgreSQL one, subclassed."""

from django.db.backends.postgresql import base as postgresql


class DatabaseWrapper(postgresql.DatabaseWrapper):
    pass
