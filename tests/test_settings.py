"""PGFACE_* variables as a shell user writes them, and settings that cannot work refused by
name before any photo is read."""

from __future__ import annotations

import logging
import os
import pickle
import threading
from pathlib import Path

import pytest

from pgface import Settings, config
from pgface.config import InvalidSettings
from pgface.errors import PgfaceError


def test_list_settings_take_json_or_the_plain_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGFACE_API_ROOTS", "/srv/photos:/srv/more photos")
    monkeypatch.setenv("PGFACE_DET_SIZES", "640, 256")
    monkeypatch.setenv("PGFACE_PROVIDERS", "OpenVINO,CPUExecutionProvider")
    monkeypatch.setenv("PGFACE_INDEX_EXCLUDE", "Screenshots, *.png,2019/private,")
    plain = Settings()
    assert plain.api_roots == [Path("/srv/photos"), Path("/srv/more photos")]
    assert plain.det_sizes == [256, 640]  # in the order the detector runs them
    assert plain.providers == ["OpenVINO", "CPUExecutionProvider"]
    # the spaces around the plain form's commas are its syntax, taken off
    assert plain.index_exclude == ["Screenshots", "*.png", "2019/private"]
    monkeypatch.setenv("PGFACE_INDEX_EXCLUDE", '["a,b.jpg"]')  # JSON: a "," inside a name
    assert Settings().index_exclude == ["a,b.jpg"]
    # a pattern that starts with "[" in the plain form (probe reprobe34: refused as JSON)
    for plain_form, patterns in (("[Ss]creenshots,*.tmp", ["[Ss]creenshots", "*.tmp"]),
                                 ("[2019]", ["[2019]"]), ("[ab],[cd]", ["[ab]", "[cd]"]),
                                 ("x,[Ss]creenshots", ["x", "[Ss]creenshots"]),
                                 ("[!.]*,tmp", ["[!.]*", "tmp"]),
                                 ("[a-z]*, Photos [2019]", ["[a-z]*", "Photos [2019]"])):
        monkeypatch.setenv("PGFACE_INDEX_EXCLUDE", plain_form)
        assert Settings().index_exclude == patterns
    # a JSON list with a slip was the plain form, its pieces (`["2019"`) matching nothing, the
    # folders meant to be left out indexed (probe reprobe42): refused, saying why
    for slipped in ('["2019", "Screenshots",]', "['2019', 'Screenshots']", '[ "2019" "x"]',
                    '["Screenshots", "2019", 7]', "[Screenshots, 2019]", "[a,b]",
                    "[Screenshots, 2019],", "[Screenshots, 2019], *.tmp",
                    # no closing bracket; quotes escaped as an env file may keep them (reprobe45)
                    "[Screenshots, 2019", '[\\"Screenshots\\"]'):
        monkeypatch.setenv("PGFACE_INDEX_EXCLUDE", slipped)
        with pytest.raises(InvalidSettings, match="not a JSON list of patterns"):
            Settings()
    # quotes a shell takes off, kept by docker's --env-file or a YAML value quoted twice
    for quoted in ('"Screenshots,2019"', "'Screenshots'", '\'["2019"]\''):
        monkeypatch.setenv("PGFACE_INDEX_EXCLUDE", quoted)
        with pytest.raises(InvalidSettings, match="wrapped in . quotes"):
            Settings()
    # a pattern may hold a quote, and a bracket left open (a folder named so) without a comma
    for plain_form, patterns in (("it's,*.tmp", ["it's", "*.tmp"]), ("[draft", ["[draft"]),
                                 ('x"y', ['x"y'])):
        monkeypatch.setenv("PGFACE_INDEX_EXCLUDE", plain_form)
        assert Settings().index_exclude == patterns
    monkeypatch.delenv("PGFACE_INDEX_EXCLUDE")

    monkeypatch.setenv("PGFACE_API_ROOTS", '["/srv/a:b"]')  # JSON: a ":" inside a name
    monkeypatch.setenv("PGFACE_DET_SIZES", "[320]")
    monkeypatch.setenv("PGFACE_PROVIDERS", '["CPUExecutionProvider"]')
    as_json = Settings()
    assert (as_json.api_roots, as_json.det_sizes, as_json.providers) == (
        [Path("/srv/a:b")], [320], ["CPUExecutionProvider"])

    monkeypatch.setenv("PGFACE_API_ROOTS", "")
    assert Settings().api_roots == []


@pytest.mark.parametrize(("sizes", "reason"), [
    ("", "give at least one detector size"),
    ("300", "300 is not a detector size: a multiple of 32"),
    ("640,16", "16 is not a detector size"),
    ("100000", "100000 is not a detector size"),
    ("-32", "-32 is not a detector size"),
])
def test_detector_sizes_that_cannot_work_are_refused(monkeypatch: pytest.MonkeyPatch,
                                                     sizes: str, reason: str) -> None:
    monkeypatch.setenv("PGFACE_DET_SIZES", sizes)
    with pytest.raises(InvalidSettings, match=reason):
        Settings()


@pytest.mark.parametrize(("variable", "value", "reason"), [
    ("PGFACE_DET_THRESHOLD", "-1", "greater than 0"),  # stored 8,423 "faces" for one portrait
    ("PGFACE_THREADS", "-2", "greater than or equal to 0"),  # was "a bug" from a thread pool
    ("PGFACE_CROP_SIZE", "0", "greater than or equal to 16"),  # every photo failed
    ("PGFACE_MAX_FILE_BYTES", "0", "greater than or equal to 1"),  # every photo failed
    ("PGFACE_READ_TIMEOUT_S", "0", "greater than 0"),  # every photo failed
    ("PGFACE_THRESHOLD", "-3", "greater than or equal to -1"),  # a cosine is -1 to 1
    ("PGFACE_MIN_QUALITY", "5", "less than or equal to 1"),  # nothing searchable
    ("PGFACE_EF_SEARCH", "5000", "less than or equal to 1000"),  # pgvector's own limit
    ("PGFACE_API_AUTH", "sometimes", "'auto' or 'always'"),
    # a misspelt backend was passed over in silence: the models ran on ONNX Runtime's CPU
    ("PGFACE_PROVIDERS", "openvino,CPUExecutionProvider", "did you mean OpenVINO"),
    ("PGFACE_PROVIDERS", "OpenVino2", "no backend is called 'OpenVino2'"),
    ("PGFACE_PROVIDERS", "TorchCUDA:fp61", "precision must be fp16 or fp32"),  # "a bug"
    # a library in public was moved into pgface's schema by the next library opened beside it
    ("PGFACE_DB_SCHEMA", "public", "public is where pgface kept its tables"),
    # PostgreSQL cut it to 63 bytes: two names that differ after that were one library
    ("PGFACE_DB_SCHEMA", "s" * 64, "at most 63 bytes; this is 64"),
    ("PGFACE_DB_SCHEMA", "pg_lib", "PostgreSQL's own"),  # was "database: unacceptable ..."
    ("PGFACE_DB_SCHEMA", "", "the schema's name is empty"),  # "zero-length ... identifier"
    ("PGFACE_DB_SCHEMA", " ", "the schema's name is empty"),
    # pgface's tables went into PostgreSQL's own information_schema
    ("PGFACE_DB_SCHEMA", "information_schema", "PostgreSQL's own"),
    # Path("") is ".": a library (and its PostgreSQL) in whatever folder a command ran from
    ("PGFACE_DATA_DIR", "", "empty: name a folder"),
    ("PGFACE_MODELS_DIR", " ", "empty: name a folder"),
    ("PGFACE_UPLOAD_DIR", "", "empty: name a folder"),
    # an environment file's trailing space (docker run --env-file keeps it) opened a new,
    # empty library: a schema 'pgface ', a second PostgreSQL in 'data ' (probe operator)
    ("PGFACE_DB_SCHEMA", "pgface ", "begins or ends with white space"),
    ("PGFACE_DATA_DIR", "/srv/pgface/data ", "begins or ends with white space"),
    ("PGFACE_MODELS_DIR", " /srv/models", "begins or ends with white space"),
    # reached OpenVINO, whose error named the model file
    ("PGFACE_THREADS", "2147483648", "less than or equal to 1024"),
    ("PGFACE_INDEX_PROCESSES", str(10**23), "less than or equal to 1024"),
    # a pattern with "/" is matched inside the folder given: an absolute one matches nothing
    ("PGFACE_INDEX_EXCLUDE", "Screenshots,/srv/photos/2019", "starts with '/'"),
    ("PGFACE_INDEX_EXCLUDE", '["*.png", ""]', "an empty pattern"),
    # a JSON list keeps each pattern as written: one that matches nothing is refused, as
    # --exclude refuses it (probe reprobe39: the plain form's spaces were taken off, and
    # --exclude 'skip ' matched nothing); `./skip` matched nothing anywhere
    ("PGFACE_INDEX_EXCLUDE", '["skip "]', "'skip ' ends with white space"),
    ("PGFACE_INDEX_EXCLUDE", '["  "]', "is blank"),
    ("PGFACE_INDEX_EXCLUDE", "Screenshots,./skip", "starts with './'"),
    ("PGFACE_INDEX_EXCLUDE", "a/../b", "a '..' part"),
    # the JSON parser's "Expecting value: line 1 column 2 (char 1)" alone
    ("PGFACE_PROVIDERS", "[OpenVINO]", r"not a JSON list .*quote each item.*plainly, as in a,b"),
    ("PGFACE_DET_SIZES", "[256,", "not a JSON list"),
    # an empty list ran on whatever backend came last, unsaid
    ("PGFACE_PROVIDERS", " ", "empty: name at least one backend"),
    # decoded at 1/8, large photos lost their small faces without a word
    ("PGFACE_DECODE_KEEP_SIDE", "1", r"1 is smaller than the smallest detector size \(256"),
    # "less than or equal to 1", as if NaN were a number past the range
    ("PGFACE_THRESHOLD", "nan", "finite number"),
    ("PGFACE_API_BODY_IDLE_S", "inf", "finite number"),
    # a proxy's path: uvicorn takes it as ASCII, and every request of a server started with
    # "/лица" was dropped unanswered, a traceback each (probe reprobe29)
    ("PGFACE_API_ROOT_PATH", "/лица", "percent-encoded: /%D0%BB%D0%B8%D1%86%D0%B0"),
    ("PGFACE_API_ROOT_PATH", "faces", "a slash first"),
    ("PGFACE_API_ROOT_PATH", "/a/../b", r"no \. or \.\. part"),  # a browser leaves the path
    ("PGFACE_API_ROOT_PATH", "/faces/%2e%2e", r"no \. or \.\. part"),  # so does it encoded
    ("PGFACE_API_ROOT_PATH", "/a%zz", "not a path a proxy serves pgface at"),
])
def test_settings_that_cannot_work_are_refused_by_name(
        monkeypatch: pytest.MonkeyPatch, variable: str, value: str, reason: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(InvalidSettings, match=reason) as refused:
        Settings()
    [error] = refused.value.errors()
    assert f"PGFACE_{error['loc'][0]}".upper() == variable
    # one of pgface's errors, as the Python API promises (pydantic's came through), and still
    # the ValueError it was
    assert isinstance(refused.value, PgfaceError) and isinstance(refused.value, ValueError)
    assert str(refused.value).startswith(f"setting {variable}: ")
    again = pickle.loads(pickle.dumps(refused.value))  # as a worker process sends it
    assert type(again) is InvalidSettings and str(again) == str(refused.value)
    # with its fields (errors() came back [], the ValidationError left behind)
    assert again.errors() == refused.value.errors() == [error]
    assert again.validation is not None and again.validation.error_count() == 1


def test_invalid_settings_pickle_whole_whatever_was_given() -> None:
    # a validator's ValueError in `ctx` is its message, an input of no plain type its repr:
    # errors() is plain data that compares equal once pickled
    with pytest.raises(InvalidSettings) as refused:
        Settings(det_sizes=[300], threshold=threading.Lock())
    errors = refused.value.errors()
    assert [e["loc"] for e in errors] == [("det_sizes",), ("threshold",)]
    assert errors[0]["ctx"] == {"error": "300 is not a detector size: a multiple of 32 from 32 "
                                         "to 4096, such as 256 or 640"}
    assert errors[1]["input"].startswith("<unlocked _thread.lock object")
    again = pickle.loads(pickle.dumps(refused.value))
    assert again.errors() == errors and str(again) == str(refused.value)


def test_a_blank_database_url_is_the_embedded_server(monkeypatch: pytest.MonkeyPatch) -> None:
    # " " counted as a URL: libpq's default socket, "/var/run/postgresql/.s.PGSQL.5432 failed"
    for blank in ("", " ", "\t"):
        monkeypatch.setenv("PGFACE_DATABASE_URL", blank)
        assert Settings().database_url is None
    monkeypatch.setenv("PGFACE_DET_SIZES", "640,1280")
    monkeypatch.setenv("PGFACE_DECODE_KEEP_SIDE", "320")
    with pytest.raises(InvalidSettings, match=r"smaller than the smallest detector size \(640"):
        Settings()
    monkeypatch.setenv("PGFACE_DECODE_KEEP_SIDE", "0")  # 0 decodes in full: any sizes
    assert Settings().decode_keep_side == 0


def test_a_keyword_that_is_no_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Settings(treshold=0.3) ran with the calibrated threshold, unsaid.
    with pytest.raises(TypeError, match=r"no setting 'treshold' \(did you mean 'threshold'\?\)"):
        Settings(treshold=0.3)
    with pytest.raises(TypeError, match="no setting 'colour'$"):
        Settings(colour="blue")
    # a PGFACE_ variable that is no setting is still the environment's business
    monkeypatch.setenv("PGFACE_NOT_A_SETTING", "1")
    assert Settings(threshold=0.3).threshold == 0.3


def test_a_setting_assigned_is_checked_as_a_keyword_is() -> None:
    """Probe pyapi39: `settings.threshold = 5` (or "abc", NaN) was kept, and a library's next
    search said "threshold is a cosine similarity ... not 5" of an argument never given; an
    index_exclude of 5 was a bare TypeError. Refused as the keyword is, the value kept."""
    settings = Settings(threshold=0.3)
    for name, value, said in (("threshold", 5, "less than or equal to 1"),
                              ("threshold", "abc", "a valid number"),
                              ("threshold", float("nan"), "finite number"),
                              ("index_exclude", 5, "a valid list"),
                              ("top_k", None, "a valid integer")):
        with pytest.raises(InvalidSettings, match=rf"^setting {name}: .*{said}"):
            setattr(settings, name, value)
    assert (settings.threshold, settings.top_k, settings.index_exclude) == (0.3, 10, [])
    settings.threshold = 0.4  # a good one is taken
    assert settings.threshold == 0.4
    with pytest.raises(AttributeError, match=r"no setting 'treshold' \(did you mean "
                                             r"'threshold'\?\)"):
        settings.treshold = 0.3  # type: ignore[attr-defined]


def test_a_data_or_models_folder_whose_name_is_not_utf8_is_refused_by_name(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    r"""Probe i18n37: PGFACE_DATA_DIR=$'/srv/jos\xe9' made every command "unexpected
    UnicodeDecodeError (a bug)", leaving a half-made server folder: PostgreSQL's connection
    and the model runtimes take paths as text. Refused at once, naming the setting, the path
    shown as paths are (`\xNN`)."""
    latin1 = os.fsdecode(os.fsencode(tmp_path) + b"/jos\xe9")
    shown = f"{tmp_path}/jos\\xe9"
    for variable in ("PGFACE_DATA_DIR", "PGFACE_MODELS_DIR"):
        monkeypatch.setenv(variable, latin1)
        with pytest.raises(InvalidSettings) as refused:
            Settings()
        assert str(refused.value) == (
            f"setting {variable}: {shown}: its name holds bytes that are not UTF-8, which "
            f"PostgreSQL's connection and the model runtimes cannot take: choose a folder "
            f"whose path is UTF-8 (got '{shown}')")
        monkeypatch.delenv(variable)
    assert Settings(data_dir=tmp_path / "José").data_dir == tmp_path / "José"  # UTF-8 is
    # a line break: initdb refuses it, its error cut at the newline (probe reprobe37b)
    with pytest.raises(InvalidSettings, match=r"holds a line break, which PostgreSQL's initdb"):
        Settings(data_dir=tmp_path / "n\nl")
    # nor what pg_ctl's shell line cannot hold: the server never started, "Examine the log
    # output" of a log never written (probe reprobe37c); a models folder may hold them
    for name in ('q"x', "d$x", "b`x`"):
        with pytest.raises(InvalidSettings, match=r"which PostgreSQL's pg_ctl cannot pass on"):
            Settings(data_dir=tmp_path / name)
    assert Settings(models_dir=tmp_path / "d$x").models_dir == tmp_path / "d$x"
    # two backslashes, which that line's quotes make one: the server was looked for in
    # another folder (probe reprobe38); one is itself there
    with pytest.raises(InvalidSettings, match=r"holds two backslashes in a row, which "):
        Settings(data_dir=tmp_path / "a\\\\b")
    assert Settings(data_dir=tmp_path / "a\\b").data_dir == tmp_path / "a\\b"
    # nor where a link leads there, which the server is given (probe reprobe38b)
    (tmp_path / "d$x").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "d$x")
    with pytest.raises(InvalidSettings, match=rf"{tmp_path / 'link' / 'data'} leads to "
                                              rf".*which PostgreSQL's pg_ctl cannot pass on"):
        Settings(data_dir=tmp_path / "link" / "data")


def test_a_keyword_setting_refused_is_named_as_the_keyword(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings(threshold=1.5) was refused as `setting PGFACE_THRESHOLD`, a variable the
    program never set; one from the environment keeps its variable's name."""
    with pytest.raises(InvalidSettings, match=r"^setting threshold: .*less than or equal to 1 "
                                              r"\(got 1\.5\)$"):
        Settings(threshold=1.5)
    with pytest.raises(InvalidSettings, match=r"^setting det_sizes: -1 is not a detector"):
        Settings(det_sizes=[640, -1])
    # one size as a number, as the variable takes it: why 300 is no size, not "a valid list"
    with pytest.raises(InvalidSettings, match=r"^setting det_sizes: 300 is not a detector"):
        Settings(det_sizes=300)
    assert Settings(det_sizes=640).det_sizes == [640]
    monkeypatch.setenv("PGFACE_MIN_QUALITY", "7")
    with pytest.raises(InvalidSettings) as refused:
        Settings(threshold=1.5)
    assert "setting threshold:" in str(refused.value)
    assert "setting PGFACE_MIN_QUALITY:" in str(refused.value)


def test_a_variable_misspelt_from_a_setting_is_said_once(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Probe ops61: PGFACE_TRESHOLD=0.5 in a unit's environment ran with the default 0.23,
    without a word, where Settings(treshold=...) is refused."""
    monkeypatch.setattr(config, "_said_misspelt", set())
    for name, value in (("PGFACE_TRESHOLD", "0.5"), ("PGFACE_min_qualty", "0.9"),
                        ("PGFACE_NOT_A_SETTING", "1"), ("PGFACE_DEBUG", "1"),
                        ("PGFACE_TEST_DATA", "/data"), ("PGFACE_THRESHOLD", "0.3")):
        monkeypatch.setenv(name, value)
    with caplog.at_level(logging.WARNING, "pgface.config"):
        assert Settings().threshold == 0.3
        Settings()  # once a process
    assert caplog.messages == [
        "PGFACE_TRESHOLD is no setting of pgface's and is not read: did you mean "
        "PGFACE_THRESHOLD?",
        "PGFACE_min_qualty is no setting of pgface's and is not read: did you mean "
        "PGFACE_MIN_QUALITY?"]


def test_onnx_runtime_keeps_no_telemetry_identifier_unless_asked(tmp_path: Path) -> None:
    # A probe's find: ONNX Runtime (1.29 up) sends usage telemetry from Linux, with a device
    # identifier it writes under ~/.cache/Microsoft; with HOME read-only every command printed
    # its colour-coded warning. pgface turns it off before onnxruntime is first imported,
    # unless the user set ORT_DISABLE_TELEMETRY themselves.
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    code = ("import pgface.models.sessions, onnxruntime, os; "
            "print(os.environ['ORT_DISABLE_TELEMETRY'])")
    for home, given, said in ((tmp_path / "home", None, "1"), (tmp_path / "asked", "0", "0")):
        home.mkdir()
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={**env, "HOME": str(home),
                                   **({"ORT_DISABLE_TELEMETRY": given} if given else {})},
                              timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == [said]
        if given is None:
            assert not (home / ".cache" / "Microsoft").exists()
            assert "telemetry" not in done.stderr


def test_relative_folders_are_taken_against_the_folder_the_settings_are_made_in(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Resolved at each use, a relative data_dir followed os.chdir: the library's running server
    # was "stopped", and once closed a new empty library started in the new folder (pyapi30).
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PGFACE_UPLOAD_DIR", "uploads")
    given = Settings(data_dir="data", models_dir="packs", api_roots=["photos", "/srv/more"],
                     model_pack="packs/mine")  # a pack by its folder (reprobe31); a name stays
    monkeypatch.setenv("PGFACE_DATA_DIR", "data")
    from_env = Settings()
    monkeypatch.chdir(tmp_path / "elsewhere")  # as a worker, a daemon may
    for settings in (given, from_env):
        assert settings.data_dir == settings.resolved_data_dir() == tmp_path / "data"
        assert settings.resolved_upload_dir() == tmp_path / "uploads"
    assert given.resolved_models_dir() == tmp_path / "packs"
    assert from_env.resolved_models_dir() == tmp_path / "data" / "models"
    assert given.api_roots == [tmp_path / "photos", Path("/srv/more")]
    assert given.model_pack == str(tmp_path / "packs" / "mine")
    assert [Settings(model_pack=pack).model_pack for pack in ("buffalo_l", "buffalo_l/")] == [
        "buffalo_l", "buffalo_l/"]
    assert Settings(data_dir="~/pgface").data_dir == Path.home() / "pgface"
    with pytest.raises(InvalidSettings, match="setting data_dir: cannot expand ~"):
        Settings(data_dir="~no-such-user-pgface/data")


# Passwords written raw (not percent-encoded) into a URL: libpq cannot split such a URL
# cleanly, and quoted what it could not read, or named as the host, with part of the password
# (probe pgint31). The port is one nothing listens on.
RAW_PASSWORDS = ["p@ssSECRETword%", "ab/cdSECRET%zz", "xx@yySECRET",
                 "p@ss/wSECRET%rd", "pa@ss/wordSECRET"]  # README's, probe docs31
SECRET_PARTS = ("SECRET", "p@ss", "ab/cd", "xx@", "pa@", "ss/w")


def _shows_no_password(text: str) -> None:
    assert not any(part in text for part in SECRET_PARTS), text


@pytest.mark.parametrize("password", RAW_PASSWORDS)
def test_a_password_written_raw_in_a_database_url_shows_nowhere(
        password: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import logging

    from pgface import errors
    monkeypatch.setattr(errors, "_REMEMBERED", set())  # this test's passwords for it alone

    import psycopg
    from typer.testing import CliRunner

    import pgface
    from pgface.cli import app as cli_app
    from pgface.cli.serve import MaskedFormatter
    from pgface.db.connection import DatabaseError, open_pool
    from pgface.errors import without_passwords

    url = f"postgresql://app:{password}@127.0.0.1:1/appdb"
    said: list[str] = []
    # the settings' refusal, or the library's "cannot connect"
    try:
        with pgface.open(Settings(database_url=url, data_dir=tmp_path)) as pf:
            pf.stats()
    except PgfaceError as exc:
        said.append(str(exc))
    # a URL handed to the database layer past the settings
    with pytest.raises(DatabaseError) as refused:
        open_pool(url, migrate_first=False)
    said.append(str(refused.value))
    # a server's log line of the pool's (psycopg_pool logs libpq's words) and the URL itself
    try:
        psycopg.connect(url, connect_timeout=2)
    except psycopg.Error as exc:
        record = logging.LogRecord("psycopg.pool", logging.WARNING, __file__, 1,
                                   "error connecting in 'pool-1': %s", (exc,), None)
        said.append(MaskedFormatter("%(levelprefix)s %(message)s").format(record))
    said.append(without_passwords(f"on {url}"))
    # the CLI's error line, and --version with the setting wrong or right
    monkeypatch.setenv("PGFACE_DATABASE_URL", url)
    monkeypatch.setenv("PGFACE_DATA_DIR", str(tmp_path))
    for args in (["stats"], ["--version"]):
        result = CliRunner().invoke(cli_app, args)
        said.append(result.output)
    for text in said:
        _shows_no_password(text)
    assert all("***" in text for text in said[:-2]), said


def test_a_servers_own_lines_and_requests_keep_the_words_a_password_happens_to_be(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A password that is a word or an address was blanked wherever it showed in the server's
    log, and so said: `"GET /api/*** HTTP/1.1" 200` with the password `photos`, `pgface on
    http://***:8000/` with `127.0.0.1` (probe operator). A request line and the server's
    first line quote no database error; the pool's lines that quote libpq's are masked."""
    from pgface import errors
    from pgface.cli.serve import UNMASKED, MaskedAccessFormatter, MaskedFormatter

    monkeypatch.setattr(errors, "_REMEMBERED", set())  # this test's passwords, no other's
    for password in ("photos", "127.0.0.1"):
        errors.remember_password_of(f"postgresql://app:{password}@db.example/app")
    request = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                                '%s - "%s %s HTTP/%s" %d',
                                ("127.0.0.1:5000", "GET", "/api/photos?limit=1", "1.1", 200),
                                None)
    line = MaskedAccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s'
                                 ).format(request)
    assert line == '127.0.0.1:5000 - "GET /api/photos?limit=1 HTTP/1.1" 200 OK', line
    first = logging.LogRecord("pgface.cli.serve", logging.INFO, __file__, 1,
                              "pgface on http://%s:%s/", ("127.0.0.1", 8000), None)
    setattr(first, UNMASKED, True)
    assert MaskedFormatter("%(message)s").format(first) == "pgface on http://127.0.0.1:8000/"
    pool = logging.LogRecord("psycopg.pool", logging.WARNING, __file__, 1,
                             "error connecting: could not translate host name \"%s\"",
                             ("photos",), None)
    assert MaskedFormatter("%(message)s").format(pool) == (
        'error connecting: could not translate host name "***"')
    # one line a record: libpq's words kept their newline and tab, and the line after had no
    # time or level (probe operator)
    split = logging.LogRecord("psycopg.pool", logging.WARNING, __file__, 1,
                              "error connecting in %r: %s", ("pool-1", "connection failed: "
                              "refused\n\tIs the server running on that host?"), None)
    assert MaskedFormatter("%(levelname)s %(message)s").format(split) == (
        "WARNING error connecting in 'pool-1': connection failed: refused Is the server "
        "running on that host?")
    # an API key in a request's URL is still masked
    keyed = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                              '%s - "%s %s HTTP/%s" %d',
                              ("127.0.0.1:5000", "GET", "/api/stats?key=pgf_0123456789ab_"
                               + "s" * 40, "1.1", 200), None)
    assert "s" * 40 not in MaskedAccessFormatter('"%(request_line)s"').format(keyed)


@pytest.mark.parametrize("password", ["a#fragSECRET", "qSECRET?x=1", "a:b?SECRET#d"])
def test_a_password_holding_a_query_mark_is_masked_and_the_host_shown(
        password: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Probe reprobe33: libpq reads a ? or # before the user information's @ as the
    password's, where pgface ended the URL there and took its host, port and database for
    the password: `connection to server at "***", port 1 failed`."""
    from typer.testing import CliRunner

    from pgface import errors
    from pgface.cli import app as cli_app

    monkeypatch.setattr(errors, "_REMEMBERED", set())  # this test's password for it alone
    url = f"postgresql://app:{password}@127.0.0.1:1/appdb"
    assert errors.password_text(url) == password
    assert errors.without_passwords(f"given {url}") == "given postgresql://app:***@127.0.0.1:1/appdb"
    monkeypatch.setenv("PGFACE_DATABASE_URL", url)
    monkeypatch.setenv("PGFACE_DATA_DIR", str(tmp_path))
    said = CliRunner().invoke(cli_app, ["stats"]).output
    assert 'connection to server at "127.0.0.1", port 1 failed' in said, said
    assert "SECRET" not in said, said


@pytest.mark.parametrize("password", ["database", "server", "connection", "localhost"])
def test_a_password_that_is_a_word_is_masked_where_quoted_not_in_the_words_around(
        password: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Probe reprobe32: every piece of a password was masked anywhere in any message, so a
    password "database" made the CLI say "cannot connect to the ***", and "connection" made
    "*** failed: *** to server at ...". It is masked where a message quotes what it was
    given: a URL, a quoted token."""
    from pgface import errors
    from pgface.errors import remember_password_of, without_passwords

    monkeypatch.setattr(errors, "_REMEMBERED", set())  # this test's password for it alone
    url = f"postgresql://app:{password}@127.0.0.1:1/appdb"
    remember_password_of(url)
    said = without_passwords(f'cannot connect to the database: connection to server at '
                             f'"127.0.0.1", port 1 failed: is the server running on localhost '
                             f'and accepting connections? (got {url!r}; token "{password}")')
    assert said.startswith("cannot connect to the database: connection to server at "
                           '"127.0.0.1", port 1 failed: is the server running on localhost '
                           "and accepting connections?"), said
    assert said.endswith("(got 'postgresql://app:***@127.0.0.1:1/appdb'; token \"***\")"), said
