"""A database backend that wraps Django's PostgreSQL one, as PostGIS's
(django.contrib.gis.db.backends.postgis) and psqlextra.backend do: its ENGINE,
"django_project.pgwrap", does not say "postgresql" (probe django39)."""
