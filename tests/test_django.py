"""The Django app against the real embedded PostgreSQL: Django's own test database, pgface's
tables in it through `manage.py pgface`, the ORM queries and the admin pages."""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from conftest import PHOTOS, require_data, with_database
from test_schema import samples

django = pytest.importorskip("django",
                             reason="Django is not installed (pip install -e '.[django]')")


@pytest.fixture(scope="module")
def project(server_url: str, models_dir: Path) -> Iterator[None]:
    """Django set up on tests/django_project, its test database created on the embedded server,
    pgface's photos indexed into it with the management command."""
    query = parse_qs(urlsplit(server_url).query)
    os.environ.update(PGFACE_TEST_PGHOST=query["host"][0], PGFACE_TEST_PGPORT=query["port"][0],
                      PGFACE_TEST_MODELS_DIR=str(models_dir),
                      DJANGO_SETTINGS_MODULE="django_project.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    photos = samples()
    call_command("pgface", "index", str(photos["players.jpg"]), str(photos["yaoming.jpg"]))
    try:
        yield
    finally:
        from pgface.django import conf

        conf.close_library()  # its pool holds connections to the test database
        connection.close()
        # A session closed is gone from the server a moment later, and DROP DATABASE waits 5 s
        # for it: on a loaded machine (a full run beside other work) that was too little, "1
        # other session using the database". Waited for here, or named where one stays.
        test_name = connection.settings_dict["NAME"]
        deadline, others = time.monotonic() + 60, []
        with psycopg.connect(server_url, autocommit=True) as admin:
            while time.monotonic() < deadline:
                others = admin.execute(
                    "SELECT application_name, state, query FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()", [test_name]).fetchall()
                if not others:
                    break
                time.sleep(0.2)
        assert not others, others
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()
        os.environ.pop("DJANGO_SETTINGS_MODULE")


def yao_ming_in_players() -> Any:  # a pgface.django.models.Face
    from pgface.django.models import Face

    return Face.objects.similar_to(samples()["yaoming.jpg"]).get(
        photo__path__endswith="players.jpg")


@pytest.fixture(scope="module")
def yao_ming(project: None) -> Any:
    """Yao Ming's face among the players named through `manage.py pgface people name`."""
    from django.core.management import call_command

    from pgface.django.models import Person

    call_command("pgface", "people", "name", "Yao Ming", str(yao_ming_in_players().id))
    return Person.objects.get(name="Yao Ming")


def test_the_seed_query_through_the_app_finds_yao_ming_in_players(project: None) -> None:
    from django.core.paginator import Paginator

    from pgface.django import conf
    from pgface.django.models import Face

    yaoming = samples()["yaoming.jpg"]
    found = list(Face.objects.similar_to(yaoming))
    threshold = conf.pgface_settings().match_threshold("buffalo_sc")
    assert {Path(f.photo.path).name for f in found} == {"yaoming.jpg", "players.jpg"}
    assert all(f.similarity >= threshold for f in found)
    assert [f.distance for f in found] == sorted(f.distance for f in found)
    # the same face pgface's own search puts first among the players
    ours = conf.library().search(yaoming)
    in_players = [m for m in ours.faces[0].matches if m.path.endswith("players.jpg")]
    player = yao_ming_in_players()
    assert player.id == in_players[0].face_id
    assert player.similarity == pytest.approx(in_players[0].similarity, abs=1e-4)

    # by embedding, and by another face (which leaves itself out)
    by_vector = Face.objects.similar_to(conf.library().embed(yaoming)[0])
    assert [f.id for f in by_vector] == [f.id for f in found]
    by_face = list(Face.objects.similar_to(player))
    assert player.id not in {f.id for f in by_face}
    assert Path(by_face[0].photo.path).name == "yaoming.jpg"

    # an ordinary QuerySet: filters, select_related, pagination
    everyone = Face.objects.similar_to(player, threshold=-1.0)
    pages = Paginator(everyone, 5)
    assert pages.count == Face.objects.count() - 1 and pages.num_pages > 2
    listed = [f for n in pages.page_range for f in pages.page(n).object_list]
    assert [f.id for f in listed] == [f.id for f in everyone]
    assert [f.distance for f in listed] == sorted(f.distance for f in listed)
    assert everyone.filter(det_score__gte=2.0).count() == 0


def test_a_photo_without_a_face_is_a_clear_error(project: None) -> None:
    from pgface.django.models import Face
    from pgface.errors import NoFaceError

    blank = require_data(PHOTOS / "not-faces")
    photo = next(p for p in sorted(blank.iterdir()) if "white" in p.name or "blank" in p.name)
    with pytest.raises(NoFaceError, match=photo.name):
        Face.objects.similar_to(photo)


def test_an_application_model_joins_pgface_people(yao_ming: Any) -> None:
    from django_project.album.models import Tag

    from pgface.django.models import Face

    player, person = yao_ming_in_players(), yao_ming
    Tag.objects.create(label="basketball", person=person)

    tag = Tag.objects.select_related("person").get(person__name="Yao Ming")
    assert tag.person == person
    assert list(Face.objects.filter(person__tags__label="basketball")) == [player]
    assert {f.person_id for f in Face.objects.similar_to(samples()["yaoming.jpg"])
            .filter(person__isnull=False)} == {person.id}
    with pytest.raises(TypeError, match="pgface"):
        person.save()


def test_a_tag_whose_person_is_gone_reads_as_docs_django_md_says(project: None) -> None:
    """docs/django.md step 4: a tag of an erased person raises Person.DoesNotExist on
    tag.person, select_related("person") (an inner join: the field is not null=True) leaves it
    out while count() counts it, and exclude(person_id__in=...) finds it."""
    from django_project.album.models import Tag

    from pgface.django.models import Person

    gone = (Person.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1000
    tag = Tag.objects.create(label="dangling", person_id=gone)
    try:
        tags = Tag.objects.filter(label="dangling")
        assert tags.count() == 1 and list(tags.select_related("person")) == []
        with pytest.raises(Person.DoesNotExist):
            Tag.objects.get(pk=tag.pk).person  # noqa: B018
        assert list(tags.exclude(person_id__in=Person.objects.values("id"))) == [tag]
    finally:
        tag.delete()


def test_the_models_refuse_bulk_writes_and_similar_to_checks_what_it_is_given(
        yao_ming: Any, models_dir: Path) -> None:
    from django.conf import settings
    from django.test import override_settings

    from pgface.django import conf
    from pgface.django.models import Face, Person, Photo
    from pgface.errors import InvalidInputError

    # A queryset's update() and delete() wrote pgface's tables past its rules and its history.
    before = (Face.objects.count(), Person.objects.count(), Photo.objects.count())
    scores = list(Face.objects.values_list("id", "det_score"))
    for write in (lambda: Face.objects.filter(pk=yao_ming_in_players().pk).update(det_score=0.1),
                  lambda: Person.objects.all().delete(), lambda: Photo.objects.all().delete(),
                  lambda: Person.objects.bulk_create([Person(name="x")]),
                  lambda: Face.objects.similar_to(samples()["yaoming.jpg"]).delete(),
                  # a reverse relation's add() updates through Django's base manager
                  lambda: Person.objects.first().faces.add(yao_ming_in_players()),
                  lambda: Photo.objects.first().faces.add(yao_ming_in_players())):
        with pytest.raises(TypeError, match="pgface"):
            write()
    assert (Face.objects.count(), Person.objects.count(), Photo.objects.count()) == before
    assert list(Face.objects.values_list("id", "det_score")) == scores

    vector = conf.library().embed(samples()["yaoming.jpg"])[0]
    for threshold in (float("nan"), 5.0, -2.0):  # NaN passed every face
        with pytest.raises(InvalidInputError, match="threshold"):
            list(Face.objects.similar_to(vector, threshold=threshold))
    # The pack given as its folder (docs/django.md allows it): an embedding still finds the
    # faces stored under the pack's name, at its calibrated threshold.
    by_photo = [f.id for f in Face.objects.similar_to(samples()["yaoming.jpg"])]
    assert by_photo
    folder = str(models_dir / "buffalo_sc")
    with override_settings(PGFACE={**settings.PGFACE, "MODEL_PACK": folder}):
        assert conf.pgface_settings().model_pack == folder
        assert [f.id for f in Face.objects.similar_to(vector)] == by_photo


def test_the_admin_renders_faces_with_crops_and_people_with_faces(yao_ming: Any) -> None:
    from django.contrib.auth.models import User
    from django.test import Client

    from pgface.django.models import Face, Person, Photo

    client = Client()
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    face = Face.objects.select_related("photo").first()
    person = yao_ming
    pages = ["/admin/pgface/face/", f"/admin/pgface/face/{face.id}/change/",
             "/admin/pgface/person/", f"/admin/pgface/person/{person.id}/change/",
             "/admin/pgface/photo/", f"/admin/pgface/photo/{face.photo_id}/change/"]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
    faces_list = client.get("/admin/pgface/face/").content.decode()
    assert faces_list.count("data:image/jpeg;base64,") == min(Face.objects.count(), 100)
    person_page = client.get(pages[3]).content.decode()
    assert "data:image/jpeg;base64," in person_page and person.name in person_page
    photo_page = client.get(pages[5]).content.decode()
    assert photo_page.count("data:image/jpeg;base64,") == Photo.objects.get(
        id=face.photo_id).face_count
    # read-only: no adding, changing or deleting what pgface owns
    assert client.get("/admin/pgface/person/add/").status_code == 403
    # people in a stable order for another admin's autocomplete (a GROUP BY dropped it)
    from django.contrib.admin import site
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/autocomplete/")
    request.user = User.objects.get(username="admin")
    assert site._registry[Person].get_queryset(request).ordered
    assert client.post(f"/admin/pgface/face/{face.id}/delete/").status_code == 403


def test_the_admin_reads_pgfaces_database_alias(yao_ming: Any, server_url: str) -> None:
    """PGFACE["DATABASE"] names another alias (docs/django.md step 1): the admin's querysets read
    `default` all the same, a 500 on every list where `default` has no pgface tables
    (relation "pgface.faces" does not exist), the other library's rows where it has."""
    from django.conf import settings
    from django.contrib.admin import site
    from django.contrib.auth.models import User
    from django.db import connection, connections
    from django.test import Client, RequestFactory, override_settings

    from pgface.django import conf
    from pgface.django.models import Face, Person, Photo

    other = f"{connection.settings_dict['NAME']}_faces"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{other}"')
    user = (User.objects.filter(username="admin").first()
            or User.objects.create_superuser("admin", "admin@example.com", "pw"))
    client = Client()
    client.force_login(user)
    name = connections["faces"].settings_dict["NAME"]
    try:
        connections["faces"].settings_dict["NAME"] = other
        with override_settings(PGFACE={**settings.PGFACE, "DATABASE": "faces"}):
            conf.ensure_schema()
            conf.library().index([samples()["yaoming.jpg"]])
            faces = Face.objects.using("faces")
            assert faces.count() != Face.objects.count()  # the two libraries differ
            face = faces.get()
            lists = {page: client.get(page) for page in (
                "/admin/pgface/face/", "/admin/pgface/person/", "/admin/pgface/photo/",
                f"/admin/pgface/face/{face.id}/change/",
                f"/admin/pgface/photo/{face.photo_id}/change/")}
            for page, response in lists.items():
                assert response.status_code == 200, page
            faces_list = lists["/admin/pgface/face/"].content.decode()
            assert faces_list.count("data:image/jpeg;base64,") == 1
            photos_list = lists["/admin/pgface/photo/"].content.decode()
            assert "yaoming.jpg" in photos_list and "players.jpg" not in photos_list
            assert "Yao Ming" not in lists["/admin/pgface/person/"].content.decode()
            request = RequestFactory().get("/admin/autocomplete/")
            request.user = user
            for model in (Face, Person, Photo):  # what autocomplete and list filters read
                assert site._registry[model].get_queryset(request).db == "faces", model
    finally:
        conf.close_library()
        connections["faces"].close()
        connections["faces"].settings_dict["NAME"] = name
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{other}" WITH (FORCE)')
    assert Face.objects.count() > 1  # the project's own library, as it was


def test_a_server_without_pgvector_says_what_to_change_in_the_project(
        project: None, capsys: pytest.CaptureFixture[str]) -> None:
    """A Django project's database on a server without pgvector: the error said "unset
    PGFACE_DATABASE_URL to use the embedded server", a variable the project never set (and may
    not: PGFACE_DATABASE_URL is refused in a project), and named no server or database."""
    from django.db import connection
    from test_replica import HIDE_PGVECTOR, WITHOUT_PGVECTOR

    from pgface.django import conf
    from pgface.django.management.commands.pgface import Command
    from pgface.errors import PgfaceError

    name = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute(HIDE_PGVECTOR)
    connection.close()
    options = connection.settings_dict["OPTIONS"]
    says = re.escape(f"the database server on socket folder {connection.settings_dict['HOST']} "
                     "(port ") + r"\d+" + re.escape(
        f") (database {name!r}) has no pgvector extension; install pgvector >= 0.7 on it, or "
        "point DATABASES['default'] (PGFACE['DATABASE']) at a server that has it, such as "
        "pgface's embedded server (docs/django.md, step 1)")
    try:
        connection.settings_dict["OPTIONS"] = {**options, "options": WITHOUT_PGVECTOR}
        with pytest.raises(PgfaceError, match="^" + says + "$"):
            conf.ensure_schema()
        capsys.readouterr()
        with pytest.raises(SystemExit) as ended:
            Command().run_from_argv(["manage.py", "pgface", "stats"])
        said = capsys.readouterr().err
        assert ended.value.code == 1 and re.fullmatch("error: " + says + "\n", said), said
    finally:
        conf.close_library()
        connection.close()
        connection.settings_dict["OPTIONS"] = options
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA nopgvector CASCADE")


def test_a_test_database_without_pgvector_says_how_each_test_run_gets_it(
        project: None, server_url: str) -> None:
    """`manage.py test` as a role that is no superuser: the error said "pgvector is not
    installed in this database ...: a superuser must run CREATE EXTENSION vector in it once",
    of a test database the runner makes again on each run (once cannot help), not named."""
    from django.conf import settings
    from django.core.management.base import CommandError
    from django.db import connections
    from django.test import override_settings

    faces = connections["faces"]
    before = dict(faces.settings_dict)
    test_name = faces.creation._get_test_db_name()  # test_album_faces
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute("CREATE ROLE pgface_tester LOGIN CREATEDB")
    try:
        faces.settings_dict["USER"] = "pgface_tester"
        with override_settings(PGFACE={**settings.PGFACE, "DATABASE": "faces"}), \
                pytest.raises(CommandError, match="^" + re.escape(
                    f"pgface: pgvector is not installed in database {test_name!r} on the "
                    "database server on socket folder ") + ".*" + re.escape(
                    ", and this role ('pgface_tester') may not install it (") + ".*" + re.escape(
                    "): it is Django's test database of DATABASES['faces'], made again on each "
                    "test run, so installing pgvector in it once cannot last: have a superuser "
                    "run CREATE EXTENSION vector in template1 (every new database then has "
                    "it), name a database that has it in DATABASES['faces']['TEST']"
                    "['TEMPLATE'], or run the tests as a superuser role") + "$"):
            faces.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    finally:
        faces.close()
        faces.settings_dict.clear()
        faces.settings_dict.update(before)
        settings.DATABASES["faces"]["NAME"] = before["NAME"]
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{test_name}" WITH (FORCE)')
            admin.execute("DROP ROLE pgface_tester")


def test_manage_py_pgface_takes_djangos_own_options_manage_py_applied(
        project: None, capsys: pytest.CaptureFixture[str]) -> None:
    """`manage.py pgface stats --settings mysite.settings` (and --pythonpath) were refused, "No
    such option: --settings", exit code 2, though manage.py had applied them already."""
    from pgface.django.management.commands.pgface import Command

    for given in (["stats", "--json", "--settings", "django_project.settings"],
                  ["--settings=django_project.settings", "stats", "--json"],
                  ["--pythonpath", ".", "stats", "--pythonpath=.", "--json"],
                  ["stats", "--no-color", "--json", "--skip-checks"]):
        Command().run_from_argv(["manage.py", "pgface", *given])  # no SystemExit: it passed
        out, err = capsys.readouterr()
        assert json.loads(out)["photos"] >= 2 and err == "", (given, err)
    # after `--`, a file's name, as Django's parser reads it too
    with pytest.raises(SystemExit) as ended:
        Command().run_from_argv(["manage.py", "pgface", "search", "--", "--settings"])
    said = capsys.readouterr().err
    assert ended.value.code == 1 and said.endswith("/--settings: no such file\n"), said


def test_call_command_pgface_version_and_help_answer_into_its_output(
        project: None, capsys: pytest.CaptureFixture[str]) -> None:
    """call_command("pgface", "--version", stdout=out) and "--help" were answered by Django's
    own parser: Django's version on the process's stdout, SystemExit(0), out and err empty."""
    import io
    from importlib.metadata import version

    from django.core.management import CommandError, call_command

    for first, says in (("--version", version("pgface")), ("--help", "manage.py pgface")):
        out, err = io.StringIO(), io.StringIO()
        call_command("pgface", first, stdout=out, stderr=err)  # no SystemExit
        assert says in out.getvalue() and err.getvalue() == "", (first, out.getvalue())
        assert capsys.readouterr().out == ""  # nothing on the process's stdout
    out = io.StringIO()
    call_command("pgface", "--help", stdout=out)
    assert "search" in out.getvalue() and "stats" in out.getvalue()  # pgface's commands
    call_command("pgface", "stats", "--json", stdout=out, verbosity=0)  # Django's keywords
    with pytest.raises(CommandError, match="No such option: --bogus"):
        call_command("pgface", "--bogus", stdout=io.StringIO())


def test_manage_py_pgface_ends_as_pgface_does_without_a_traceback(
        project: None, capsys: pytest.CaptureFixture[str]) -> None:
    from pgface.django.management.commands.pgface import Command

    def run(*args: str) -> tuple[int, str]:
        with pytest.raises(SystemExit) as ended:
            Command().run_from_argv(["manage.py", "pgface", *args])
        return ended.value.code, capsys.readouterr().err

    code, said = run("search", "/nonexistent.jpg")
    assert code == 1 and said.strip() == "error: /nonexistent.jpg: no such file", said
    code, said = run("serch", "x")
    assert code == 2 and "Traceback" not in said and len(said.splitlines()) == 1, said
    assert "No such command 'serch'" in said and "manage.py pgface --help" in said
    code, said = run("index", ".", "--bogus")
    assert code == 2 and "No such option: --bogus" in said and "Traceback" not in said
    code, said = run("search")
    assert code == 2 and "missing: give a query photo" in said and "Traceback" not in said
    # Through call_command, as a Celery task runs it: the output where it is asked to go (it
    # went to the process's stdout), a failure's reason in the exception (only "failed").
    import io

    from django.core.management import CommandError, call_command

    out, err = io.StringIO(), io.StringIO()
    call_command("pgface", "stats", "--json", stdout=out, stderr=err)
    assert json.loads(out.getvalue())["photos"] == 2
    with pytest.raises(CommandError, match=r"failed \(exit code 1\): /nonexistent\.jpg: no "
                                           r"such file"):
        call_command("pgface", "search", "/nonexistent.jpg", stdout=out, stderr=err)
    assert "error: /nonexistent.jpg: no such file" in err.getvalue()
    # A mistake in settings.PGFACE: one line too (it was Django's traceback, 18 to 24 lines)
    from django.test import override_settings

    for mistake, says in (({"PHOTO_BATCH": "abc"}, "error: setting PGFACE['PHOTO_BATCH']: "),
                          ({"TRESHOLD": 0.3}, "error: PGFACE['TRESHOLD'] is no pgface setting "
                                              "(did you mean 'THRESHOLD'?)"),
                          ({"READ_DATABASES": "replica"},
                           "error: PGFACE['READ_DATABASES'] is a list of aliases")):
        with override_settings(PGFACE=mistake):
            code, said = run("stats")
        assert code == 1 and said.startswith(says) and len(said.splitlines()) == 1, said


def test_the_library_follows_the_database_django_switches_to(
        yao_ming: Any, server_url: str) -> None:
    """Django's test runner switches the connection to the test database after the apps are
    loaded: a library taken before (at an app's import) went on indexing into the real
    database. library() is one per database: made again where it changed, the former closed."""
    from django.db import connection

    from pgface.django import conf

    current = conf.library()
    assert conf.library() is current  # one per process while the database stays
    name = connection.settings_dict["NAME"]
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}_elsewhere"')
    try:
        connection.settings_dict["NAME"] = f"{name}_elsewhere"
        elsewhere = conf.library()
        assert elsewhere is not current and f"{name}_elsewhere" in elsewhere.settings.database_url
        assert elsewhere.stats()["photos"] == 0  # the other database's library, not this one's
    finally:
        connection.settings_dict["NAME"] = name
        conf.close_library()
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}_elsewhere" WITH (FORCE)')
    assert conf.library().stats()["photos"] == 2


def test_a_photos_time_is_the_cameras_clock_whatever_the_projects_time_zone(
        yao_ming: Any, tmp_path: Path) -> None:
    """taken_at has no zone (EXIF's clock). With TIME_ZONE = "America/New_York" Django took it
    for UTC: a photo taken 2024-12-31 22:00 was on 2025-01-01 by `taken_at__date`, and one
    taken 2024-01-01 02:00 not in `taken_at__year=2024`."""
    import datetime as dt

    from django.db.models.functions import TruncDate
    from django.test import override_settings
    from PIL import Image

    from pgface.django import conf
    from pgface.django.models import Face, Photo

    paths = []
    for name, when in (("eve.jpg", "2024:12:31 22:00:00"), ("dawn.jpg", "2024:01:01 02:00:00")):
        exif = Image.Exif()
        exif.get_ifd(0x8769)[0x9003] = when  # DateTimeOriginal
        with Image.open(samples()["yaoming.jpg"]) as photo:
            photo.save(tmp_path / name, exif=exif, quality=90)
        paths.append(tmp_path / name)
    conf.library().index(paths)
    ours = Photo.objects.filter(path__in=[str(p) for p in paths])
    for zone in ("UTC", "America/New_York", "Asia/Tokyo"):
        with override_settings(TIME_ZONE=zone):
            assert [p.path for p in ours.filter(taken_at__date=dt.date(2024, 12, 31))] == [
                str(paths[0])], zone
            assert ours.filter(taken_at__year=2024).count() == 2, zone
            assert ours.filter(taken_at__month=1).count() == 1, zone
            assert ours.filter(taken_at__gte=dt.datetime(2024, 12, 31, 21, 30)).count() == 1
            assert ours.get(taken_at__hour=2).taken_at == dt.datetime(2024, 1, 1, 2, 0)
            # Probe dates33: dates() and datetimes() truncated it in TIME_ZONE (New York: the
            # eve's photo on 2025-01-01), through a relation too
            assert list(ours.dates("taken_at", "day")) == [
                dt.date(2024, 1, 1), dt.date(2024, 12, 31)], zone
            assert list(ours.datetimes("taken_at", "hour", order="DESC")) == [
                dt.datetime(2024, 12, 31, 22, 0), dt.datetime(2024, 1, 1, 2, 0)], zone
            assert list(Face.objects.filter(photo__in=ours).dates(
                "photo__taken_at", "year")) == [dt.date(2024, 1, 1)], zone
            # a function of it takes UTC as docs/django.md says
            assert sorted(ours.annotate(day=TruncDate("taken_at", tzinfo=dt.timezone.utc))
                          .values_list("day", flat=True)) == [
                dt.date(2024, 1, 1), dt.date(2024, 12, 31)], zone


def test_a_schema_named_with_a_quote_names_its_tables_right(project: None) -> None:
    from django.db import connection
    from psycopg import sql

    from pgface.django.models import _table

    for schema in ("pgface", 'my"faces', "Faces 2"):
        assert connection.ops.quote_name(_table("people", schema)) == sql.Identifier(
            schema, "people").as_string()


def test_loaddata_cannot_write_pgface_rows(yao_ming: Any, tmp_path: Path) -> None:
    """A fixture went past save() (loaddata writes with Model.save_base): a person renamed and
    hidden, and no history of it."""
    import json

    from django.core.management import call_command

    from pgface.django.models import Person

    fixture = tmp_path / "people.json"
    fixture.write_text(json.dumps([{"model": "pgface.person", "pk": yao_ming.pk, "fields": {
        "name": "Renamed By Fixture", "hidden": True,
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}}]))
    with pytest.raises(TypeError, match="pgface"):
        call_command("loaddata", str(fixture), verbosity=0)
    again = Person.objects.get(pk=yao_ming.pk)
    assert (again.name, again.hidden) == ("Yao Ming", False)


def test_loaddata_of_a_whole_projects_dump_says_to_leave_pgface_out(
        yao_ming: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """dumpdata, flush, loaddata: the dump held pgface's rows and loaddata ended in a
    TypeError's traceback; it is one line naming `dumpdata -e pgface`, which works."""
    from django.core.management import CommandError, call_command, execute_from_command_line

    dump = tmp_path / "all.json"
    call_command("dumpdata", "pgface.person", output=str(dump), verbosity=0)
    with pytest.raises(CommandError, match=r"pgface\.Person rows are pgface's.*"
                                           r"manage\.py dumpdata -e pgface"):
        call_command("loaddata", str(dump), verbosity=0)
    with pytest.raises(SystemExit) as ended:
        execute_from_command_line(["manage.py", "loaddata", str(dump), "-v0"])
    said = capsys.readouterr().err
    assert ended.value.code == 1 and "Traceback" not in said and "dumpdata -e pgface" in said
    without = tmp_path / "without.json"
    call_command("dumpdata", "-e", "pgface", "-e", "contenttypes", "-e", "auth.permission",
                 output=str(without), verbosity=0)
    assert "pgface." not in without.read_text()
    call_command("loaddata", str(without), verbosity=0)


def test_settings_mistakes_are_named(project: None) -> None:
    import numpy as np
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.test import override_settings

    from pgface.django import conf
    from pgface.django.models import Face
    from pgface.errors import InvalidInputError

    for mistake, said in (({"READ_DATABASES": "default"}, "is a list of aliases"),
                          ({"DATABASE_URL": "postgresql:///x"}, "aliases of DATABASES"),
                          ({"DATABASE": "nowhere"}, "'nowhere' is not in DATABASES"),
                          # a misspelt key was Settings' TypeError, a 23-line traceback
                          ({"TRESHOLD": 0.3}, r"PGFACE\['TRESHOLD'\] is no pgface setting "
                                              r"\(did you mean 'THRESHOLD'\?\)"),
                          ({"THRESHOLD": 0.3, "threshold": 0.5}, "THRESHOLD twice"),
                          # a value named as the project gave it, not as PGFACE_THRESHOLD
                          ({"THRESHOLD": "abc"}, r"setting PGFACE\['THRESHOLD'\]: ")):
        with override_settings(PGFACE={**settings.PGFACE, **mistake}), \
                pytest.raises(ImproperlyConfigured, match=said):
            conf.pgface_settings()
    with override_settings(PGFACE={**settings.PGFACE, "TRESHOLD": 0.3}), \
            pytest.raises(ImproperlyConfigured, match="TRESHOLD"):
        Face.objects.similar_to(samples()["yaoming.jpg"])
    with override_settings(PGFACE={**settings.PGFACE, "THRESHOLD": "abc"}), \
            pytest.raises(InvalidInputError.__base__, match="THRESHOLD"):  # still a PgfaceError
        conf.pgface_settings()
    for bad in (np.full(512, np.nan), np.zeros(512)):
        with pytest.raises(InvalidInputError, match="embedding"):
            Face.objects.similar_to(bad)


def test_a_call_leaves_the_process_environment_alone_while_it_runs(project: None) -> None:
    """Typer built each parameter's conversion on every call, setting os.environ's
    PYDANTIC_DISABLE_PLUGINS and putting it back around each: two threads' calls at once left
    it set for good (the CI met it now and then in the test below). Built once, a call after
    the first never touches the environment: a thread watching it sees nothing."""
    import io
    import threading

    from django.core.management import call_command

    call_command("pgface", "stats", "--json", stdout=io.StringIO())  # built here, once
    # every parameter of every command, its --help included (made on a command's first call
    # and built there, which the watcher below saw now and then), built already
    from pgface.django.management.commands.pgface import _pgface_command

    todo = [_pgface_command()]
    while todo:
        each = todo.pop()
        todo += getattr(each, "commands", {}).values()
        helper = each.get_help_option(each.context_class(each, **each.context_settings))
        for param in [*each.params, helper]:
            assert getattr(param, "_runtime_param", True) is not None, (each.name, param.name)
    seen: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if "PYDANTIC_DISABLE_PLUGINS" in os.environ:
                seen.append(os.environ.get("PYDANTIC_DISABLE_PLUGINS", ""))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for args in (("stats", "--json"), ("search", str(samples()["yaoming.jpg"]), "--json"),
                     ("people", "list", "--json"), ("compare", "--help")) * 3:
            call_command("pgface", *args, stdout=io.StringIO())
    finally:
        done.set()
        watcher.join()
    assert seen == []


def test_call_command_from_two_threads_keeps_each_callers_output(project: None) -> None:
    """Two threads (Celery's thread pool, views) each call_command("pgface", ..., stdout=...):
    redirect_stdout and an os.environ edited by each call sent one's output into the other's
    buffer and left sys.stdout, sys.stderr and PGFACE_* variables changed for good."""
    import io
    import sys
    import threading
    import time

    from django.core.management import call_command
    from django.db import connections

    stdout, stderr = sys.stdout, sys.stderr
    environ = dict(os.environ)
    said: dict[str, str] = {}

    def run(name: str, *args: str) -> None:
        out, err = io.StringIO(), io.StringIO()
        try:
            call_command("pgface", *args, stdout=out, stderr=err)
        finally:
            connections.close_all()  # the thread's own, as a request's end closes them
        said[name] = out.getvalue()

    def plain() -> None:
        """Without stdout=, built while another call runs (probe django19): Django took that
        call's router for its stdout, which routed this call's writes to itself
        (RecursionError)."""
        deadline = time.monotonic() + 10
        while type(sys.stdout).__name__ != "_Routed" and time.monotonic() < deadline:
            time.sleep(0.001)
        try:
            call_command("pgface", "stats", "--json")
            said["plain"] = "done"
        except BaseException as exc:  # noqa: BLE001 - said, and asserted below
            said["plain"] = repr(exc)
        finally:
            # Django's connections are the thread's: left open, one stayed idle on the test
            # database until garbage collection, and its DROP at the end was refused
            connections.close_all()

    for _ in range(4):
        threads = [threading.Thread(target=run, args=("stats", "stats", "--json")),
                   threading.Thread(target=run, args=(
                       "search", "search", str(samples()["yaoming.jpg"]), "--json")),
                   threading.Thread(target=plain)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert json.loads(said["stats"])["photos"] >= 2
        assert json.loads(said["search"])["faces"]
        assert said["plain"] == "done", said["plain"]
        assert sys.stdout is stdout and sys.stderr is stderr
        assert dict(os.environ) == environ


def test_a_forked_child_opens_its_own_library(project: None) -> None:
    """Celery's prefork workers, gunicorn --preload: the parent used conf.library(), the
    child got the parent's (the cache knew only the database) and a PgfaceError it could not
    act on; close_library() in the child would have closed the parent's connections."""
    import warnings

    from django.db import connections

    from pgface.django import conf
    from pgface.django.models import Face

    parent = conf.library()
    photos = parent.stats()["photos"]
    read, write = os.pipe()
    # Django's connection is not the child's to close (closing it there ends the parent's
    # session on the shared socket): the parent closes it before forking, as a prefork master
    # holds none
    connections.close_all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads running
        pid = os.fork()
    if pid == 0:  # the child: report, and never return into pytest
        os.close(read)
        try:
            mine = conf.library()
            said = {"own": mine is not parent, "photos": mine.stats()["photos"],
                    "similar": Face.objects.similar_to(samples()["yaoming.jpg"]).count()}
            conf.close_library()  # closes the child's own, not the parent's
        except BaseException as exc:  # noqa: BLE001 - the parent shows it
            said = {"error": f"{type(exc).__name__}: {exc}"}
        os.write(write, json.dumps(said).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        said = json.loads(pipe.read() or "{}")
    os.waitpid(pid, 0)
    assert said.get("own") and said["photos"] == photos, said
    assert said["similar"] > 0, said
    assert conf.library() is parent and parent.stats()["photos"] == photos  # the parent's works


def test_similar_to_takes_what_a_view_has_and_names_the_rest(project: None) -> None:
    """A Django upload, a Pillow image or a bytearray of the photo was a bare TypeError or
    ValueError, and so were None and 511 numbers; docs say InvalidInputError."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    from pgface.django.models import Face
    from pgface.errors import InvalidInputError

    photo = samples()["yaoming.jpg"]
    expected = [f.id for f in Face.objects.similar_to(photo)]
    data = photo.read_bytes()
    upload = SimpleUploadedFile("yaoming.jpg", data, "image/jpeg")
    upload.read(10)  # a view may have read some of it (a check of its type)
    with Image.open(photo) as image:
        for given in (upload, image, bytearray(data), memoryview(data)):
            assert [f.id for f in Face.objects.similar_to(given)] == expected, type(given)
    for bad in (None, [0.1] * 511, ["a"] * 512, 3.5, {"x": 1}):
        with pytest.raises(InvalidInputError, match="similar_to takes"):
            Face.objects.similar_to(bad)


def test_a_database_other_than_postgresql_is_one_error_and_a_system_check(
        project: None, capsys: pytest.CaptureFixture[str]) -> None:
    """startproject's sqlite3 database: `manage.py pgface` was a ValueError's traceback and
    `manage.py check` said nothing."""
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError
    from django.db import connections
    from django.db.utils import load_backend

    from pgface.django import conf
    from pgface.django.management.commands.pgface import Command

    # pgface asks the connection's vendor (probe django39): a sqlite3 connection, made from
    # the settings as Django makes one, in place of the PostgreSQL one while this runs
    postgresql = connections["default"]
    engine = postgresql.settings_dict["ENGINE"]
    try:
        postgresql.settings_dict["ENGINE"] = "django.db.backends.sqlite3"
        connections["default"] = load_backend("django.db.backends.sqlite3").DatabaseWrapper(
            postgresql.settings_dict, "default")
        with pytest.raises(ImproperlyConfigured, match="pgface needs PostgreSQL"):
            conf.pgface_settings()
        with pytest.raises(SystemExit) as ended:
            Command().run_from_argv(["manage.py", "pgface", "stats"])
        said = capsys.readouterr().err
        assert ended.value.code == 1 and len(said.splitlines()) == 1, said
        assert said.startswith("error: DATABASES['default'] is django.db.backends.sqlite3")
        with pytest.raises(SystemCheckError, match=r"pgface\.E001.*pgface needs PostgreSQL"):
            call_command("check")
    finally:
        connections["default"].close()
        connections["default"] = postgresql
        postgresql.settings_dict["ENGINE"] = engine
    call_command("check")  # passes with PostgreSQL


def test_migrate_and_ensure_schema_create_pgface_tables(project: None, server_url: str) -> None:
    """docs said conf.library() creates pgface's schema, but it connects lazily: in a fresh
    (test) database the ORM found no table. conf.ensure_schema() creates it, and so does
    `manage.py migrate` (the test runner's creation of a test database included)."""
    from django.core.management import call_command
    from django.db import connection

    from pgface.django import conf
    from pgface.django.models import Face, Person

    name = connection.settings_dict["NAME"]
    fresh = f"{name}_fresh"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{fresh}"')
    try:
        connection.close()
        connection.settings_dict["NAME"] = fresh
        conf.library()  # lazily: no table yet
        conf.ensure_schema()
        assert Face.objects.count() == 0 and Person.objects.count() == 0
        connection.close()
        with psycopg.connect(with_database(server_url, fresh), autocommit=True) as there:
            there.execute("DROP SCHEMA pgface CASCADE")
        call_command("migrate", verbosity=0)
        assert Face.objects.count() == 0 and Person.objects.count() == 0
    finally:
        connection.close()
        connection.settings_dict["NAME"] = name
        conf.close_library()
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{fresh}" WITH (FORCE)')


def test_similar_to_finds_pgvector_in_a_schema_off_the_search_path(
        yao_ming: Any, server_url: str) -> None:
    """A server that keeps pgvector in schema `extensions` (as hosted PostgreSQL does), the
    project's connection on PostgreSQL's default search_path: similar_to failed with
    "operator does not exist: extensions.vector <=> unknown"."""
    from django.db import connection

    from pgface.django.models import Face

    player = yao_ming_in_players()
    expected = [(f.id, round(f.similarity, 5)) for f in Face.objects.similar_to(player)]
    assert expected
    database = with_database(server_url, connection.settings_dict["NAME"])
    connection.close()
    with psycopg.connect(database, autocommit=True) as admin:
        admin.execute("CREATE SCHEMA extensions")
        admin.execute("ALTER EXTENSION vector SET SCHEMA extensions")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW search_path")
            assert "extensions" not in cursor.fetchone()[0]
        found = [(f.id, round(f.similarity, 5)) for f in Face.objects.similar_to(player)]
        assert found == expected
    finally:
        connection.close()
        with psycopg.connect(database, autocommit=True) as admin:
            admin.execute("ALTER EXTENSION vector SET SCHEMA public")
            admin.execute("DROP SCHEMA extensions")


def test_similar_to_names_the_upload_it_cannot_read(project: None) -> None:
    """A Django upload that is no photo was "photo bytes: not an image": the upload's name is
    what the user knows it by, as the error of one with no face says."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from pgface.django.models import Face
    from pgface.errors import ImageError

    with pytest.raises(ImageError, match=r"^holiday-upload\.jpg: not an image"):
        Face.objects.similar_to(SimpleUploadedFile("holiday-upload.jpg", b"not a jpeg"))
    with pytest.raises(ImageError, match=r"^photo bytes: not an image"):
        Face.objects.similar_to(b"not a jpeg")

def test_similar_to_keeps_pgfaces_quality_floor(project: None, tmp_path: Path) -> None:
    """A query photo whose only face is below the quality floor: pgface's search leaves it
    unsearched (searched: false), similar_to searched it and returned strangers; and a photo
    whose largest face is below the floor was searched by that face, not by the one a search
    searches first."""
    from PIL import Image, ImageFilter

    from pgface.django import conf
    from pgface.django.models import Face
    from pgface.errors import NoFaceError

    obama = require_data(PHOTOS / "queries" / "obama1.jpg")
    blurred = tmp_path / "blurred.jpg"
    with Image.open(obama) as image, Image.open(samples()["yaoming.jpg"]) as yao:
        soft = image.filter(ImageFilter.GaussianBlur(25))
        soft.save(blurred)
        # the blurred face, larger, beside Yao Ming's
        both = Image.new("RGB", (soft.width + yao.width, soft.height), "white")
        both.paste(soft, (0, 0))
        both.paste(yao, (soft.width, 0))
        both.save(tmp_path / "both.jpg")
    library = conf.library()
    searched = library.search(blurred)
    assert [f.searched for f in searched.faces] == [False]
    with pytest.raises(NoFaceError, match=r"blurred\.jpg: no face good enough to search \(1 "
                                          r"found, the best's quality 0\.\d+ is below the floor "
                                          r"0\.1.*a lower min_quality searches it"):
        Face.objects.similar_to(blurred)
    # a lower floor searches it, as search(min_quality=0) does
    anyway = library.search(blurred, min_quality=0.0, top=1000).faces[0]
    assert anyway.searched
    assert {f.id for f in Face.objects.similar_to(blurred, min_quality=0.0)} == {
        m.face_id for m in anyway.matches}
    # the face a search searches first: the largest at or above the floor, Yao Ming's
    first = library.search(tmp_path / "both.jpg", top=1000).faces
    assert [f.searched for f in first] == [False, True]
    expected = {f.id for f in Face.objects.similar_to(samples()["yaoming.jpg"])}
    assert {f.id for f in Face.objects.similar_to(tmp_path / "both.jpg")} == expected == {
        m.face_id for m in first[1].matches}

def test_a_pgface_setting_mistake_at_import_is_one_error_and_a_system_check(
        project: None, tmp_path: Path) -> None:
    """The models read PGFACE's schema when django.setup() imports them: a mistake there (a key
    given twice, PGFACE not a dict, DB_SCHEMA not a string) was a 34-line traceback from
    `manage.py pgface` and `manage.py check`, before either could say it."""
    import subprocess
    import sys

    run = ("import sys; from django.core.management import execute_from_command_line; "
           "execute_from_command_line(['manage.py', *sys.argv[1:]])")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mistaken_settings",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).parent),
                                          *sys.path])}
    for mistake, says in (('{"threshold": 0.3, "THRESHOLD": 0.4}', "THRESHOLD twice"),
                          ('"notadict"', "PGFACE is a dict of pgface's settings"),
                          ('{"DB_SCHEMA": 5}', ("setting PGFACE['DB_SCHEMA']: Input should be a "
                                               "valid string (got 5)"))):
        (tmp_path / "mistaken_settings.py").write_text(
            f"from django_project.settings import *  # noqa: F403\nPGFACE = {mistake}\n")
        pgface = subprocess.run([sys.executable, "-c", run, "pgface", "stats"], env=env,
                                capture_output=True, text=True, timeout=120)
        said = pgface.stderr
        assert pgface.returncode == 1 and said.startswith("error: ") and says in said, said
        assert len(said.splitlines()) == 1, said
        check = subprocess.run([sys.executable, "-c", run, "check"], env=env,
                               capture_output=True, text=True, timeout=120)
        assert check.returncode == 1 and "Traceback" not in check.stderr, check.stderr
        assert "(pgface.E001)" in check.stderr and says in check.stderr, check.stderr

def test_migrate_as_a_role_that_cannot_apply_pgfaces_migration_is_one_error(
        project: None, server_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`manage.py migrate` as a role that may not apply a pending pgface migration: pgface's
    DatabaseError came through the post_migrate handler as a 52-line traceback."""
    from django.core.management import call_command
    from django.core.management.base import CommandError
    from django.core.management.commands.migrate import Command as Migrate
    from django.db import connection

    name, user = connection.settings_dict["NAME"], connection.settings_dict["USER"]
    fresh = f"{name}_reader"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{fresh}"')
        admin.execute("CREATE ROLE pgface_reader LOGIN")
    try:
        connection.close()
        connection.settings_dict["NAME"] = fresh
        call_command("migrate", verbosity=0)  # as the owner: Django's tables and pgface's
        connection.close()
        with psycopg.connect(with_database(server_url, fresh), autocommit=True) as there:
            newest = there.execute("DELETE FROM pgface.schema_migrations WHERE version = "
                                   "(SELECT max(version) FROM pgface.schema_migrations) "
                                   "RETURNING version").fetchone()[0]
            for schema in ("public", "pgface"):
                there.execute(f"GRANT USAGE ON SCHEMA {schema} TO pgface_reader")
                there.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO "
                              "pgface_reader")
        connection.settings_dict["USER"] = "pgface_reader"
        with pytest.raises(CommandError, match=rf"pgface: .*migration\(s\) {newest:04d}.*role "
                                               r"'pgface_reader' may not apply"):
            call_command("migrate", verbosity=0)
        capsys.readouterr()
        with pytest.raises(SystemExit) as ended:
            Migrate().run_from_argv(["manage.py", "migrate", "--skip-checks"])
        said = capsys.readouterr().err
        assert ended.value.code == 1 and "Traceback" not in said, said
        # after pgface's notice that it upgrades the library, the error's one line
        assert said.splitlines()[-1].startswith("CommandError: pgface: ") and said.count(
            "pgface_reader' may not apply") == 1, said
    finally:
        connection.close()
        connection.settings_dict["NAME"] = name
        connection.settings_dict["USER"] = user
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{fresh}" WITH (FORCE)')
            admin.execute("DROP ROLE pgface_reader")


ROUTER = "pgface.django.routers.PgfaceRouter"


@pytest.fixture(scope="module")
def faces_database(project: None, server_url: str) -> Iterator[str]:
    """A database of its own for the alias "faces" (PGFACE["DATABASE"] = "faces", as
    docs/django.md step 1 allows): pgface's tables there, with Yao Ming's photo indexed and
    his face named "Faces Alias Person"; none of the project's tables (album_tag)."""
    from django.conf import settings
    from django.db import connection, connections
    from django.test import override_settings

    from pgface.django import conf

    other = f"{connection.settings_dict['NAME']}_faces_alias"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{other}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{other}"')
    name = connections["faces"].settings_dict["NAME"]
    try:
        connections["faces"].settings_dict["NAME"] = other
        with override_settings(PGFACE={**settings.PGFACE, "DATABASE": "faces"}):
            conf.ensure_schema()
            library = conf.library()
            library.index([samples()["yaoming.jpg"]])
            face = library.search(samples()["yaoming.jpg"]).faces[0].matches[0].face_id
            library.people.name_faces([face], "Faces Alias Person")
    finally:
        conf.close_library()
        connections["faces"].close()
        connections["faces"].settings_dict["NAME"] = name
    try:
        yield other
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{other}" WITH (FORCE)')


@contextlib.contextmanager
def pgface_on_faces(database: str, routers: list[Any]) -> Iterator[None]:
    """PGFACE["DATABASE"] = "faces", that alias on DATABASE, DATABASE_ROUTERS = ROUTERS (the
    setting_changed signal makes Django's router read them again)."""
    from django.conf import settings
    from django.db import connections
    from django.test import override_settings

    from pgface.django import conf

    name = connections["faces"].settings_dict["NAME"]
    try:
        connections["faces"].settings_dict["NAME"] = database
        with override_settings(PGFACE={**settings.PGFACE, "DATABASE": "faces"},
                               DATABASE_ROUTERS=routers):
            yield
    finally:
        conf.close_library()
        connections["faces"].close()
        connections["faces"].settings_dict["NAME"] = name


def test_the_router_saves_a_projects_model_given_a_pgface_person_in_default(
        faces_database: str) -> None:
    """Probe django39: pgface's tables on "faces", a Tag (docs step 4) given a Person read from
    "faces" (an admin form's choice, `Tag(person=...)`) was saved into pgface's database, as
    Django's default routing follows the related instance's database, and `person.tags` read
    there. With PgfaceRouter, the Tag is the project's: `default`."""
    from django.contrib.auth.models import User
    from django.test import Client
    from django_project.album.models import Tag

    from pgface.django.models import Person
    from pgface.django.routers import PgfaceRouter

    user = (User.objects.filter(username="admin").first()
            or User.objects.create_superuser("admin", "admin@example.com", "pw"))
    client = Client()
    client.force_login(user)
    labels = ["router-friend", "router-admin", "router-subclass"]
    try:
        with pgface_on_faces(faces_database, [ROUTER]):
            person = Person.objects.using("faces").get(name="Faces Alias Person")
            tag = Tag(label="router-friend", person=person)
            assert tag._state.db == "default"
            tag.save()
            assert Tag.objects.using("default").filter(pk=tag.pk).exists()
            # (the project's other tags may point at the same id of default's people)
            assert person.tags.all().db == "default"
            assert list(person.tags.filter(label__startswith="router-")) == [tag]
            # and pgface's models read on pgface's alias without .using()
            assert Person.objects.get(name="Faces Alias Person") == person
            assert Tag.objects.get(pk=tag.pk).person.name == "Faces Alias Person"
            # the admin's add of docs step 5 (its choices on pgface's alias): a 302 and the
            # row in `default` (it went into faces' album_tag)
            response = client.post("/admin/album/tag/add/",
                                   {"label": "router-admin", "person": person.pk})
            assert response.status_code == 302, response.content.decode()[:2000]
            added = Tag.objects.using("default").get(label="router-admin")
            assert added.person_id == person.pk
        # a subclass of the router, as an instance, routes as it does
        mine = type("ProjectRouter", (PgfaceRouter,), {})()
        with pgface_on_faces(faces_database, [mine]):
            tag = Tag(label="router-subclass",
                      person=Person.objects.using("faces").get(name="Faces Alias Person"))
            tag.save()
            assert tag._state.db == "default"
    finally:
        Tag.objects.using("default").filter(label__in=labels).delete()


def test_pgfaces_database_on_another_alias_without_the_router_is_a_system_check_warning(
        faces_database: str) -> None:
    """Probe django39: nothing said that a project with PGFACE["DATABASE"] = "faces" needs a
    router, and without one its rows went into pgface's database."""
    from django.core import checks

    from pgface.django import conf
    from pgface.django.routers import PgfaceRouter

    assert conf.check_settings() == []  # pgface's tables on default: no router needed
    with pgface_on_faces(faces_database, []):
        said = [m for m in checks.run_checks() if m.id.startswith("pgface.")]
        assert [(m.id, m.level) for m in said] == [("pgface.W001", checks.WARNING)], said
        assert "PGFACE['DATABASE'] is 'faces'" in said[0].msg
        assert said[0].hint == ("add 'pgface.django.routers.PgfaceRouter' to "
                                "settings.DATABASE_ROUTERS, last (docs/django.md, step 1)")
    for routers in ([ROUTER], [type("Mine", (PgfaceRouter,), {})]):
        with pgface_on_faces(faces_database, routers):
            assert conf.check_settings() == [], routers


def test_similar_to_on_a_database_that_is_not_pgfaces_says_which_alias_to_use(
        faces_database: str) -> None:
    """Probe django39: default sqlite3, pgface's tables on "faces": similar_to without
    .using("faces") was sqlite's "no such table: pg_extension" (where default is PostgreSQL,
    another library's faces, unsaid). It says the alias and the router; the router reads
    faces."""
    from django.core.exceptions import ImproperlyConfigured
    from django.db import connections

    from pgface.django.models import Face

    says = (r"but pgface's tables are on alias 'faces' \(PGFACE\['DATABASE'\]\): query "
            r"Face\.objects\.using\('faces'\)\.similar_to\(\.\.\.\), or add "
            r"'pgface\.django\.routers\.PgfaceRouter' to settings\.DATABASE_ROUTERS")
    lite = {**connections["default"].settings_dict, "ENGINE": "django.db.backends.sqlite3",
            "NAME": ":memory:"}
    connections.settings["lite"] = lite
    try:
        with pgface_on_faces(faces_database, []):
            vector = Face.objects.using("faces").get().embedding
            expected = [f.id for f in Face.objects.using("faces").similar_to(vector)]
            assert expected
            with pytest.raises(ImproperlyConfigured,
                               match=r"^similar_to reads database 'default' \(postgresql\), "
                                     + says):
                Face.objects.similar_to(vector)
            with pytest.raises(ImproperlyConfigured,
                               match=r"^similar_to reads database 'lite' \(sqlite\), " + says):
                Face.objects.using("lite").similar_to(vector)
        with pgface_on_faces(faces_database, [ROUTER]):
            found = Face.objects.similar_to(vector)
            assert found.db == "faces" and [f.id for f in found] == expected
    finally:
        if hasattr(connections._connections, "lite"):
            connections["lite"].close()
            del connections["lite"]
        del connections.settings["lite"]


def test_plain_migrate_creates_pgfaces_tables_on_pgfaces_own_alias(
        project: None, server_url: str, tmp_path: Path) -> None:
    """Probe django39: with PGFACE["DATABASE"] = "faces", `manage.py migrate` (of default)
    never made pgface's tables there, and the admin's pages were a 500. It does now; in
    Django's test environment it leaves that alias to the test runner (which migrates each
    alias's test database, before pointing the alias at it)."""
    import subprocess
    import sys

    from django.core.management import call_command
    from django.db import connection

    base = connection.settings_dict["NAME"]
    site, faces, untouched = (f"{base}_m_site", f"{base}_m_faces", f"{base}_m_untouched")
    with psycopg.connect(server_url, autocommit=True) as admin:
        for db in (site, faces, untouched):
            admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{db}"')

    def schemas(db: str) -> set[str]:
        with psycopg.connect(with_database(server_url, db)) as there:
            return {r[0] for r in there.execute("SELECT nspname FROM pg_namespace")}

    try:
        (tmp_path / "two_settings.py").write_text(
            "from django_project.settings import *  # noqa: F403\n"
            f"DATABASES = {{'default': {{**DATABASES['default'], 'NAME': {site!r}}},\n"
            f"             'faces': {{**DATABASES['faces'], 'NAME': {faces!r}}}}}\n"
            "PGFACE = {**PGFACE, 'DATABASE': 'faces'}\n"
            f"DATABASE_ROUTERS = [{ROUTER!r}]\n")
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "two_settings",
               "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).parent),
                                              *sys.path])}
        run = ("import sys; from django.core.management import execute_from_command_line; "
               "execute_from_command_line(['manage.py', *sys.argv[1:]])")
        migrate = subprocess.run([sys.executable, "-c", run, "migrate"], env=env,
                                 capture_output=True, text=True, timeout=300)
        assert migrate.returncode == 0, migrate.stderr
        assert "pgface: applied" in migrate.stdout, migrate.stdout
        assert "pgface" in schemas(faces), migrate.stdout
        assert "pgface" not in schemas(site)  # the project's database: Django's tables alone
        # in the test environment (set up by the project fixture), migrate of default leaves
        # pgface's alias alone: there it may still name the real database
        with pgface_on_faces(untouched, [ROUTER]):
            call_command("migrate", verbosity=0)
        assert "pgface" not in schemas(untouched)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            for db in (site, faces, untouched):
                admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def test_the_library_follows_every_pgface_setting(yao_ming: Any) -> None:
    """Probe django39: conf.library() was kept while PGFACE changed but for its database:
    override_settings(PGFACE={..., "MIN_QUALITY": 0.95}) left library().settings (and so
    similar_to's quality floor) at 0.1 while pgface_settings() said 0.95."""
    from django.conf import settings
    from django.test import override_settings

    from pgface.django import conf

    before = conf.library()
    assert before.settings.min_quality == 0.1
    with override_settings(PGFACE={**settings.PGFACE, "MIN_QUALITY": 0.95}):
        assert conf.pgface_settings().min_quality == 0.95
        assert conf.library().settings.min_quality == 0.95
    # a list's value too (DET_SIZES), read as a stable text of PGFACE's options
    with override_settings(PGFACE={**settings.PGFACE, "DET_SIZES": [320, 640]}):
        assert conf.library().settings.det_sizes == [320, 640]
        assert conf.library() is conf.library()  # still one while PGFACE stays
    assert conf.library().settings.min_quality == 0.1
    assert conf.library().settings.det_sizes == conf.pgface_settings().det_sizes


def test_a_backend_that_wraps_djangos_postgresql_is_postgresql(
        project: None, server_url: str) -> None:
    """Probe django39: PostGIS's backend (django.contrib.gis.db.backends.postgis),
    psqlextra.backend, any subclass of Django's PostgreSQL backend was refused as "not
    PostgreSQL": pgface looked for "postgresql" in ENGINE. It asks the connection's vendor."""
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections
    from django.test import override_settings

    from pgface.django import conf
    from pgface.django.models import Face, Person

    fresh = f"{connections['default'].settings_dict['NAME']}_wrapped"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{fresh}"')
    connections.settings["wrapped"] = {**connections["default"].settings_dict,
                                       "ENGINE": "django_project.pgwrap", "NAME": fresh}
    try:
        assert connections["wrapped"].vendor == "postgresql"
        with override_settings(PGFACE={**settings.PGFACE, "DATABASE": "wrapped"},
                               DATABASE_ROUTERS=[ROUTER]):
            assert f"dbname={fresh}" in conf.pgface_settings().database_url
            assert conf.check_settings() == []
            call_command("migrate", database="wrapped", verbosity=0)  # pgface's tables too
            assert Face.objects.count() == 0 and Person.objects.count() == 0
            assert Face.objects.db == "wrapped"
    finally:
        conf.close_library()
        connections["wrapped"].close()
        del connections["wrapped"]
        del connections.settings["wrapped"]
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)')


def test_similar_to_reads_a_model_file_opened_and_closed_before(
        project: None, tmp_path: Path) -> None:
    """Probe django39: a model's file field (`similar_to(upload.photo)`) after a `with
    upload.photo.open(): ...` block was "cannot read the file: seek of closed file"; Django's
    File.open() opens a closed file again by its name. Left closed, as found."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import override_settings
    from django_project.album.models import Upload

    from pgface.django.models import Face
    from pgface.errors import InvalidInputError

    photo = samples()["yaoming.jpg"]
    expected = [f.id for f in Face.objects.similar_to(photo)]
    with override_settings(MEDIA_ROOT=str(tmp_path)):
        upload = Upload.objects.create(
            photo=SimpleUploadedFile("yaoming.jpg", photo.read_bytes(), "image/jpeg"))
        try:
            upload = Upload.objects.get(pk=upload.pk)
            with upload.photo.open("rb"):
                upload.photo.read(10)
            assert upload.photo.closed
            assert [f.id for f in Face.objects.similar_to(upload.photo)] == expected
            assert upload.photo.closed  # as it was found
            # one left open: read from its start, and left open
            upload.photo.open("rb")
            upload.photo.read(10)
            assert [f.id for f in Face.objects.similar_to(upload.photo)] == expected
            assert not upload.photo.closed
            upload.photo.close()
            # fresh from the database (never opened): read, and left closed
            fresh = Upload.objects.get(pk=upload.pk).photo
            assert [f.id for f in Face.objects.similar_to(fresh)] == expected
            assert fresh.closed
        finally:
            upload.photo.delete(save=False)
            upload.delete()
    # one that cannot be opened again (an upload's memory, closed) is said as before
    gone = SimpleUploadedFile("gone.jpg", photo.read_bytes(), "image/jpeg")
    gone.close()
    with pytest.raises(InvalidInputError, match=r"^gone\.jpg: cannot read the file: "):
        Face.objects.similar_to(gone)
