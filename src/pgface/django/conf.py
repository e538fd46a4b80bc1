"""pgface's settings from Django's: the database of an alias of settings.DATABASES, the rest
from settings.PGFACE (keys are pgface's setting names, any case) over the PGFACE_* variables.

    PGFACE = {"DATABASE": "default", "READ_DATABASES": ["replica"], "DB_SCHEMA": "pgface",
              "MODEL_PACK": "buffalo_sc"}
"""

from __future__ import annotations

import difflib
import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections
from psycopg.conninfo import make_conninfo

from pgface.config import InvalidSettings, Settings, setting_name
from pgface.errors import without_passwords

if TYPE_CHECKING:
    from pgface.library import Pgface

# OPTIONS of a Django PostgreSQL database that are libpq connection parameters too.
_LIBPQ_OPTIONS = {"sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "options",
                  "application_name", "connect_timeout", "target_session_attrs", "service",
                  "passfile", "channel_binding", "gssencmode", "load_balance_hosts"}


class InvalidPgfaceSetting(ImproperlyConfigured, InvalidSettings):
    """A value of settings.PGFACE pgface cannot use, named as PGFACE["KEY"]: Django's
    ImproperlyConfigured, and pgface's InvalidSettings as it was."""


def _options() -> dict[str, Any]:
    given = getattr(django_settings, "PGFACE", {})
    if not isinstance(given, dict):
        raise ImproperlyConfigured(f"PGFACE is a dict of pgface's settings, not {given!r}")
    options: dict[str, Any] = {}
    for key, value in given.items():
        if not isinstance(key, str):
            raise ImproperlyConfigured(f"PGFACE's keys are setting names, not {key!r}")
        if key.lower() in options:
            raise ImproperlyConfigured(f"PGFACE names the setting {key.upper()} twice")
        options[key.lower()] = value
    return options


def _check_names(options: dict[str, Any]) -> None:
    """A misspelt key (PGFACE = {"TRESHOLD": 0.3}) named, with the setting it looks like:
    it was Settings' TypeError, a traceback from `manage.py pgface`."""
    known = [*Settings.model_fields, "database", "read_databases"]
    for key in options:
        if key not in known:
            alike = difflib.get_close_matches(key, known, n=1)
            raise ImproperlyConfigured(
                f"PGFACE[{key.upper()!r}] is no pgface setting"
                + (f" (did you mean {alike[0].upper()!r}?)" if alike else " (see README's "
                   "settings)"))


def _named_as_given(exc: InvalidSettings, options: dict[str, Any]) -> InvalidSettings:
    """EXC with each setting given in PGFACE named as PGFACE['KEY'] (it said `setting
    PGFACE_THRESHOLD`, a variable the project never set); one from a PGFACE_* variable
    keeps that name."""
    if not exc.errors():
        return exc
    said = []
    for error in exc.errors():
        loc = error["loc"]
        name = setting_name(loc)
        if loc and str(loc[0]) in options:
            items = " ".join(f"(item {p + 1})" for p in loc[1:] if isinstance(p, int))
            name = f"PGFACE[{str(loc[0]).upper()!r}]" + (f" {items}" if items else "")
        said.append(f"setting {name}: {error['msg'].removeprefix('Value error, ')} "
                    f"(got {error.get('input')!r})")
    return InvalidPgfaceSetting("; ".join(map(without_passwords, said)), exc.validation)


def schema() -> str:
    """The schema of pgface's tables: PGFACE["DB_SCHEMA"], else PGFACE_DB_SCHEMA, else pgface;
    checked as pgface checks the setting (a number was an AttributeError from the models'
    import: 'int' object has no attribute 'replace')."""
    options = _options()
    given = {"db_schema": options["db_schema"]} if options.get("db_schema") is not None else {}
    try:
        return Settings(**given).db_schema
    except InvalidSettings as exc:
        raise _named_as_given(exc, options) from None


def models_schema() -> str:
    """The schema the models are declared in, read when django.setup() imports them: the
    schema(), or where settings.PGFACE (or a PGFACE_* variable) holds a mistake, pgface's
    default schema, the mistake left to the system check (pgface.E001) and `manage.py
    pgface` (its one `error:` line), which say it; raised at import, it was a traceback before
    either could (PGFACE = "notadict", a key given twice, DB_SCHEMA 5)."""
    try:
        return schema()
    except (ImproperlyConfigured, InvalidSettings):
        return str(Settings.model_fields["db_schema"].default)


def conninfo(alias: str = "default") -> str:
    """A libpq connection string for a database of settings.DATABASES (during tests, the test
    database: Django renames it in the connection's settings)."""
    if alias not in connections:
        raise ImproperlyConfigured(f"PGFACE: database {alias!r} is not in DATABASES")
    db = connections[alias].settings_dict
    if not is_postgresql(alias):
        # a ValueError was a traceback from `manage.py pgface` in a new project (sqlite3)
        raise ImproperlyConfigured(
            f"DATABASES[{alias!r}] is {db['ENGINE']}; pgface needs PostgreSQL: point it at "
            "pgface's embedded server or your own (docs/django.md, step 1), or name another "
            "alias in PGFACE['DATABASE']")
    params = {"dbname": db["NAME"], "user": db.get("USER"), "password": db.get("PASSWORD"),
              "host": db.get("HOST"), "port": str(db.get("PORT") or "")}
    params.update({k: v for k, v in db.get("OPTIONS", {}).items() if k in _LIBPQ_OPTIONS})
    return make_conninfo(**{k: v for k, v in params.items() if v})


def is_postgresql(alias: str) -> bool:
    """Whether ALIAS's backend is PostgreSQL, by its connection's vendor: a backend that wraps
    Django's (PostGIS's django.contrib.gis.db.backends.postgis, psqlextra.backend, any
    subclass) was refused as "not PostgreSQL" by "postgresql" in its ENGINE (probe django39)."""
    return connections[alias].vendor == "postgresql"


def _databases(options: dict[str, Any]) -> tuple[str, list[str]]:
    """PGFACE's database aliases (DATABASE, READ_DATABASES), checked and taken out of
    OPTIONS."""
    for url in ("database_url", "read_database_url"):
        if url in options:  # Settings() got it twice: "multiple values for keyword argument"
            raise ImproperlyConfigured(
                f"PGFACE[{url.upper()!r}]: in a Django project pgface's databases are aliases "
                "of DATABASES: PGFACE['DATABASE'] (default 'default') and "
                "PGFACE['READ_DATABASES'] (a list)")
    alias = options.pop("database", "default")
    reads = options.pop("read_databases", [])
    if not isinstance(reads, list | tuple) or not all(isinstance(a, str) for a in reads):
        # a string was read letter by letter: "The connection 'r' doesn't exist"
        raise ImproperlyConfigured(f"PGFACE['READ_DATABASES'] is a list of aliases of "
                                   f"DATABASES, such as ['replica'], not {reads!r}")
    return alias, list(reads)


def database_alias() -> str:
    """The alias of DATABASES pgface's tables live on: PGFACE["DATABASE"], else "default"."""
    return _databases(_options())[0]


def pgface_settings() -> Settings:
    """pgface's Settings for this Django project."""
    options = _options()
    _check_names(options)
    alias, reads = _databases(options)
    given = dict(options)
    options.pop("db_schema", None)
    try:
        return Settings(database_url=conninfo(alias),
                        read_database_url=[conninfo(a) for a in reads],
                        db_schema=schema(), **options)
    except InvalidSettings as exc:
        raise _named_as_given(exc, given) from None


def environment(settings: Settings) -> dict[str, str]:
    """The PGFACE_* variables that make pgface's command line use these settings."""
    env = {}
    for name in sorted(settings.model_fields_set):
        value = getattr(settings, name)
        if value is None:
            continue
        text = str(value) if isinstance(value, str | Path) else json.dumps(value, default=str)
        env[f"PGFACE_{name.upper()}"] = text
    return env


_libraries: list[tuple[tuple, Pgface]] = []  # the one in use, with what it connects to
_library_lock = threading.Lock()


def _forget_in_child() -> None:
    """In a forked child (Celery's prefork workers, gunicorn --preload): the parent's library
    forgotten, not closed (its pool's connections and models' threads are the parent's; closing
    them here would end the parent's connections), and a lock no parent thread holds."""
    global _library_lock
    _library_lock = threading.Lock()
    _libraries.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def library() -> Pgface:
    """One Pgface per process for this project's pgface database (its models load on first
    use, once). Django's test runner switches a connection's database to the test database
    after the apps are loaded: a Pgface taken before (at import, say) went on writing into the
    real database, so one is made again where the database changed, and the former closed
    (its pool held connections the test database's teardown refused to drop). A forked child
    opens its own: the parent's cannot be used there."""
    from pgface.library import Pgface

    # what it connects to, and every other option of PGFACE (a stable text: values may be
    # lists or dicts), read without building Settings (a millisecond, each similar_to): keyed
    # on the database alone, it kept the settings it was made with after PGFACE changed
    # (override_settings(PGFACE={..., "MIN_QUALITY": 0.95}): similar_to's floor stayed 0.1
    # while pgface_settings() said 0.95, probe django39)
    options = _options()
    alias, reads = _databases(options)
    where = (os.getpid(), conninfo(alias), tuple(conninfo(a) for a in reads),
             json.dumps(options, sort_keys=True, default=repr))
    with _library_lock:
        if _libraries and _libraries[0][0] == where:
            return _libraries[0][1]
        _close_ours()
        _libraries[:] = [(where, Pgface(pgface_settings()))]
        return _libraries[0][1]


def _close_ours() -> None:
    for (pid, *_), former in _libraries:
        if pid == os.getpid():  # a parent's (a child forked without at-fork hooks): left open
            former.close()
    _libraries.clear()


def close_library() -> None:
    """Close the library and forget it (the next library() opens one again): at the end of a
    project's tests, before Django drops the test database, which it refuses while pgface's
    pool holds connections to it ("being accessed by other users")."""
    with _library_lock:
        _close_ours()


def ensure_schema() -> list[int]:
    """Create (or migrate) pgface's schema and tables in its database now, as pgface does when
    it first connects, and return the migrations applied. conf.library() connects lazily:
    until it indexed or searched something, the ORM found no table. `manage.py migrate` (and
    so Django's test databases) call this for pgface's database (a post_migrate handler)."""
    from pgface.db.connection import migrate

    settings = pgface_settings()
    if not settings.database_url:  # cannot be: conninfo() always names the alias's database
        raise ImproperlyConfigured("PGFACE: no database")
    return migrate(settings.database_url, settings.db_schema)


def create_schema_after_migrate(using: str = "default", verbosity: int = 1,
                                stdout: Any = None, **kwargs: object) -> None:
    """post_migrate: pgface's tables in pgface's database (PGFACE['DATABASE']) once `migrate`
    (or the test runner's creation of a test database, or `flush`) ran on it, or on `default`
    where pgface's alias is another: a project runs plain `manage.py migrate`, which made no
    pgface tables in PGFACE['DATABASE'], and the admin's pages were a 500 (probe django39).
    Not on `default` while Django's test environment is set up: the test runner makes and
    migrates each alias's test database itself (pgface's alias among them, this handler then
    called for it), and while it migrates `default`'s, pgface's alias still names the real
    database, which this would have migrated."""
    try:
        alias = _databases(_options())[0]
    except ImproperlyConfigured:
        return  # the system check says it
    if using != alias and (using != DEFAULT_DB_ALIAS or _test_environment()):
        return
    if alias not in connections or not is_postgresql(alias):
        return  # the system check says it
    from django.core.management.base import CommandError

    from pgface.errors import PgfaceError

    try:
        applied = ensure_schema()
    except PgfaceError as exc:
        # a role that may not apply a pending pgface migration: one line from `migrate`, as
        # `manage.py pgface` says it, not a traceback through this handler
        raise CommandError(f"pgface: {exc}") from exc
    if applied and verbosity >= 1 and stdout is not None:
        stdout.write(f"  pgface: applied {len(applied)} of pgface's own migrations "
                     f"(schema {schema()!r})\n")


def _advice(url: str, problem: str) -> str | None:
    """pgface.db.connection's advice for a database of this project's (URL is the conninfo()
    of one of PGFACE's aliases): what to change in DATABASES, not PGFACE_DATABASE_URL, which a
    project never sets; for a test database the runner makes, how pgvector gets into each."""
    options = _options()
    alias, reads = _databases(options)
    named = next((a for a in (alias, *reads) if conninfo(a) == url), None)
    if named is None:
        return None
    key = "PGFACE['DATABASE']" if named == alias else "PGFACE['READ_DATABASES']"
    if problem == "no pgvector":
        return (f"install pgvector >= 0.7 on it, or point DATABASES[{named!r}] ({key}) at a "
                "server that has it, such as pgface's embedded server (docs/django.md, "
                "step 1)")
    if problem == "may not install pgvector" and _is_test_database(named):
        return (f"it is Django's test database of DATABASES[{named!r}], made again on each "
                "test run, so installing pgvector in it once cannot last: have a superuser "
                "run CREATE EXTENSION vector in template1 (every new database then has it), "
                f"name a database that has it in DATABASES[{named!r}]['TEST']['TEMPLATE'], "
                "or run the tests as a superuser role")
    return None


def _test_environment() -> bool:
    """Whether Django's test environment is set up (manage.py test, pytest-django)."""
    from django.test.utils import _TestState

    return hasattr(_TestState, "saved_data")  # set by setup_test_environment()


def _is_test_database(alias: str) -> bool:
    """Whether ALIAS's connection is on a test database Django's test runner made: the test
    environment is set up (manage.py test, pytest-django) and its NAME is the TEST NAME, or
    the test_ prefix's name (Django renames the connection's NAME to it), or a parallel run's
    clone of either (NAME_1, ...)."""
    from django.db.backends.base.creation import TEST_DATABASE_PREFIX

    if not _test_environment():
        return False
    db = connections[alias].settings_dict
    name, test = str(db["NAME"]), (db.get("TEST") or {}).get("NAME")
    if test:
        return name == test or name.startswith(f"{test}_")
    return name.startswith(TEST_DATABASE_PREFIX)


def _register_advice() -> None:
    from pgface.db import connection

    if _advice not in connection.advisers:
        connection.advisers.append(_advice)


_register_advice()


ROUTER = "pgface.django.routers.PgfaceRouter"


def has_router() -> bool:
    """Whether settings.DATABASE_ROUTERS holds PgfaceRouter (or a subclass), as a dotted path,
    a class or an instance."""
    from django.utils.module_loading import import_string

    from pgface.django.routers import PgfaceRouter

    for given in getattr(django_settings, "DATABASE_ROUTERS", []):
        try:
            found = import_string(given) if isinstance(given, str) else given
        except ImportError:
            continue  # Django's own routing says it
        if isinstance(found, PgfaceRouter) or (
                isinstance(found, type) and issubclass(found, PgfaceRouter)):
            return True
    return False


def check_settings(**kwargs: object) -> list[Any]:
    """Django's system check (`manage.py check`, runserver, migrate): pgface's databases are
    PostgreSQL aliases of DATABASES and settings.PGFACE is settings pgface can use; where
    pgface's alias is not `default`, PgfaceRouter is among DATABASE_ROUTERS (without it a
    project's model given a pgface Person was saved into pgface's database, probe django39)."""
    from django.core.checks import Error, Warning

    from pgface.errors import PgfaceError

    try:
        pgface_settings()
    except (ImproperlyConfigured, PgfaceError) as exc:
        return [Error(str(exc), hint="see docs/django.md", obj="settings.PGFACE",
                      id="pgface.E001")]
    alias = database_alias()
    if alias != DEFAULT_DB_ALIAS and not has_router():
        return [Warning(
            f"PGFACE['DATABASE'] is {alias!r} but DATABASE_ROUTERS has no PgfaceRouter: a "
            f"model of yours given a pgface Person read from {alias!r} is saved into "
            f"DATABASES[{alias!r}], not 'default', and pgface's models are read on 'default' "
            f"unless each query says .using({alias!r})",
            hint=f"add {ROUTER!r} to settings.DATABASE_ROUTERS, last (docs/django.md, step 1)",
            obj="settings.DATABASE_ROUTERS", id="pgface.W001")]
    return []
