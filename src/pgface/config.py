"""Settings: environment (PGFACE_*), then defaults. Built at the entry point and passed down."""

from __future__ import annotations

import difflib
import json
import logging
import os
import pickle
import re
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, unquote

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pgface.errors import (
    PgfaceError,
    os_reason,
    password_text,
    remember_password_of,
    shown_name,
    without_passwords,
    without_secret,
)

# Cosine-similarity thresholds of best accuracy on LFW View 1 DevTrain; docs/calibration.md.
CALIBRATED_THRESHOLDS: dict[str, float] = {"buffalo_sc": 0.23}
# Fallback for packs we could not calibrate here (ArcFace models share the cosine geometry).
UNCALIBRATED_THRESHOLD = 0.28


# Detector input sizes allowed: SCRFD's coarsest stride is 32; above 4096 a canvas costs
# more memory than any photo needs (a 48 MP photo's longest side is 8,000 px, detected at 640).
MIN_DET_SIZE, MAX_DET_SIZE = 32, 4096


class InvalidSettings(PgfaceError, ValueError):
    """Settings pgface cannot use: each named with its reason and the value given. A
    PgfaceError, as every error pgface raises on purpose (pydantic's ValidationError came
    through the Python API as it was); a ValueError, as that was."""

    def __init__(self, message: str, validation: ValidationError | None = None,
                 errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.validation = validation
        # pydantic's account as plain data, kept apart from the ValidationError: it pickles
        # (the error lost it on its way from a worker process: errors() came back [])
        self._errors = errors if errors is not None else (
            [_plain(error) for error in validation.errors()] if validation is not None else [])

    @classmethod
    def of(cls, exc: ValidationError, keywords: Collection[str] = ()) -> InvalidSettings:
        """EXC told as settings errors; a setting given as one of KEYWORDS (Settings(
        threshold=1.5)) is named as the keyword, not as the variable it did not come from."""
        # pydantic writes a validator's own message as "Value error, <message>"
        # a database URL may hold its password: never echoed (nor the list parser's excerpt)
        return cls("; ".join(_without_secrets_of(e.get("input"), without_passwords(
            f"setting {setting_name(e['loc'], keywords)}: "
            f"{e['msg'].removeprefix('Value error, ')} "
            f"(got {_given(e.get('input'))})")) for e in exc.errors()), exc)

    def errors(self) -> list[dict[str, Any]]:
        """pydantic's account: one dict per setting refused (`type`, `loc`, `msg`, `input`,
        `ctx`, `url`), as plain data (a validator's exception in `ctx` as its message, an
        input of another type as its repr); the same once pickled."""
        return [dict(error) for error in self._errors]

    def __reduce__(self) -> tuple:
        # pickled with its fields: the ValidationError too where it pickles (an input that
        # does not, a lock given as a setting, leaves it behind, as a cause is)
        validation = self.validation
        try:
            pickle.dumps(validation)
        except Exception:  # noqa: BLE001 - whatever the input's own pickling raises
            validation = None
        return type(self), (str(self), validation, self._errors)


def _plain(value: object) -> Any:
    """VALUE of a settings error as plain data, which pickles and compares: an exception as its
    message, a value of another type than the builtin ones (and Path) as its repr."""
    if value is None or isinstance(value, str | int | float | Path):
        return value
    if isinstance(value, list | tuple):
        return type(value)(_plain(item) for item in value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, BaseException):
        return str(value)
    return repr(value)


def _absolute(folder: Path) -> Path:
    """A folder setting made absolute, ~ expanded, against the current folder; ValueError
    saying why it cannot be."""
    try:
        return folder.expanduser().absolute()
    except RuntimeError as exc:  # ~user of no such user, or no home to expand ~ to
        raise ValueError(f"cannot expand ~ ({exc})") from None
    except OSError as exc:  # relative, and the current folder is deleted
        raise ValueError(f"relative, and the current folder cannot be read "
                         f"({os_reason(exc)})") from None


def _given(value: object) -> str:
    """A value as given, for a message: a path's bytes that are not UTF-8 as `\\xNN`, as
    paths are shown everywhere (repr wrote Python's '\\udce9')."""
    if isinstance(value, str) and any("\udc80" <= c <= "\udcff" for c in value):
        return f"'{shown_name(value)}'"
    return repr(value)


def _real_path(folder: Path) -> str:
    """FOLDER with its links resolved, as far as they can be (as given where not)."""
    try:
        return os.path.realpath(folder)
    except OSError:  # relative, the current folder gone: said where the setting is read
        return str(folder)


def not_text_path(folder: Path, server: bool = False) -> str | None:
    """Why the data or models folder cannot be FOLDER: its name holds bytes that are not
    UTF-8 (a Latin-1 home folder), which PostgreSQL's connection and the model runtimes
    (ONNX Runtime, OpenVINO) take as text only: every command was "unexpected
    UnicodeDecodeError (a bug)" (probe i18n37); and SERVER: the embedded server's, a line
    break, which initdb refuses, or what pg_ctl's shell line cannot hold. None where it can."""
    try:
        os.fsencode(folder).decode("utf-8")
    except UnicodeDecodeError:
        return (f"{shown_name(str(folder))}: its name holds bytes that are not UTF-8, which "
                f"PostgreSQL's connection and the model runtimes cannot take: choose a folder "
                f"whose path is UTF-8")
    if server and (real := _real_path(folder)) != str(folder):
        # the server is given the folder links lead to: `data -> a$b` passed as `data` and
        # never started (probe reprobe38b)
        if why := not_text_path(Path(real), server=True):
            return f"{folder} leads to {why}"
    if server and any(c in str(folder) for c in "\n\r"):
        # initdb refuses it, and its error was cut at the newline (probe reprobe37b)
        shown = str(folder).replace("\n", "\\n").replace("\r", "\\r")
        return (f"{shown}: its path holds a line break, which PostgreSQL's "
                f"initdb refuses: choose a folder whose path has none")
    if server and (special := sorted(set(str(folder)) & set('"$`'))):
        # pg_ctl starts the server through a shell line that puts the path in double quotes:
        # the library was made and its server never started, "did not start: Examine the log
        # output" of a log that was never written (probe reprobe37c)
        return (f"{folder}: its path holds {' '.join(special)}, which PostgreSQL's pg_ctl "
                f"cannot pass on (it starts the server through a shell): choose a folder "
                f"whose path has none of \" $ `")
    if server and "\\\\" in str(folder):
        # in that shell line's double quotes two backslashes are one: the server was pointed
        # at another folder and never started (probe reprobe38)
        return (f"{folder}: its path holds two backslashes in a row, which PostgreSQL's pg_ctl "
                f"passes on as one (it starts the server through a shell): choose a folder "
                f"whose path has no such pair")
    return None


def unreadable_url(url: str) -> str | None:
    """Why libpq cannot read a database URL, without a word of its password (libpq's words
    quote the part it could not read, which may be the password); None where it can. The
    settings and a URL handed to the database layer directly (db.connection) say it alike."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(url)
    except ProgrammingError as exc:
        return _without_secrets_of(url, without_passwords(" ".join(str(exc).split())))
    return None


def _check_conninfo(url: str) -> None:
    """A database URL as libpq reads it, or a ValueError saying why not. Its password is
    masked from then on wherever pgface says something (errors.without_passwords)."""
    remember_password_of(url)
    reason = unreadable_url(url)
    if reason is not None:
        raise ValueError(f"not a database URL PostgreSQL can read: {reason}")


def _without_secrets_of(given: object, text: str) -> str:
    """TEXT with the password of a database URL GIVEN (a setting's value, or a list of them)
    written `***` wherever it or a word of it shows: libpq quotes the part of a URL it cannot
    read, and a password with a space in it (`postgresql://u:s3 cret@host`) passed
    without_passwords whole, twice in one message (probe reprobe24)."""
    for url in given if isinstance(given, list) else [given]:
        if not isinstance(url, str):
            continue
        text = without_secret(text, password_text(url) or "")
        for found in _URL_SECRETS.findall(url):
            secret = "".join(found).strip("'")  # one of the two forms matched
            for piece in sorted({secret, *secret.split()}, key=len, reverse=True):
                if len(piece) > 1:
                    text = text.replace(piece, "***")
    return text


# A query's `password=`, a key=value string's (up to the next keyword, its words taken with
# it); a URL's own password is errors.password_text's
_URL_SECRETS = re.compile(r"[?&]password=([^&#]*)"
                          r"|\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|.*?)(?=\s+\w+\s*=|$)",
                          re.IGNORECASE)


def setting_name(loc: tuple, keywords: Collection[str] = ()) -> str:
    """The variable a settings error is about, and which item of a list: `PGFACE_DET_SIZES
    (item 2)`, not `PGFACE_DET_SIZES_1`; a setting given as one of KEYWORDS by its keyword."""
    if not loc:
        return "PGFACE_*"
    items = " ".join(f"(item {part + 1})" for part in loc[1:] if isinstance(part, int))
    name = str(loc[0]) if loc[0] in keywords else f"PGFACE_{str(loc[0]).upper()}"
    return name + (f" {items}" if items else "")


log = logging.getLogger(__name__)

# PGFACE_ variables read besides the settings: debugging's, the tests' and the benchmarks'.
OTHER_VARIABLES = re.compile(r"PGFACE_(DEBUG|TEST_\w+|BENCH_\w+|GPU_\w+)", re.IGNORECASE)
_said_misspelt: set[str] = set()


def warn_of_misspelt_variables(fields: Iterable[str]) -> None:
    """A PGFACE_ variable that is no setting but nearly one (PGFACE_TRESHOLD) is said, once a
    process: it was ignored without a word, the default used (probe ops61), where a keyword
    misspelt so is refused. Other PGFACE_ names stay the environment's business."""
    fields = list(fields)
    for name in os.environ:
        if not name.upper().startswith("PGFACE_") or name in _said_misspelt:
            continue
        key = name[len("PGFACE_"):].lower()
        if key in fields or OTHER_VARIABLES.fullmatch(name):
            continue
        alike = difflib.get_close_matches(key, fields, n=1, cutoff=0.8)
        if alike:
            _said_misspelt.add(name)
            log.warning("%s is no setting of pgface's and is not read: did you mean PGFACE_%s?",
                        name, alike[0].upper())


def _no_setting(name: str) -> str:
    alike = difflib.get_close_matches(name, Settings.model_fields, n=1)
    return f"Settings has no setting {name!r}" + (f" (did you mean {alike[0]!r}?)" if alike
                                                   else "")


class Settings(BaseSettings):
    """Every setting can be given as an environment variable with the PGFACE_ prefix."""

    # extra="ignore": PGFACE_ variables that are no setting (PGFACE_DEBUG, a test's data
    # folder) are the environment's business; a keyword given here is checked in __init__.
    # NaN and infinity are no setting's value ("nan" was refused as "less than or equal to 1")
    # validate_assignment: `settings.threshold = 5` (or "abc", NaN) was kept, and the next
    # search said "threshold is a cosine similarity ... not 5" of an argument never given, an
    # index_exclude of 5 a bare TypeError (probe pyapi39): an assignment is checked as a
    # keyword is.
    model_config = SettingsConfigDict(env_prefix="PGFACE_", extra="ignore", allow_inf_nan=False,
                                      validate_assignment=True)

    def __init__(self, **values: Any) -> None:
        # A misspelt keyword (Settings(treshold=0.3)) was dropped in silence and the default
        # used. pydantic-settings' own options (_env_file, ...) start with an underscore.
        unknown = [k for k in values if k not in type(self).model_fields and k[:1] != "_"]
        if unknown:
            raise TypeError(_no_setting(unknown[0]))
        warn_of_misspelt_variables(type(self).model_fields)
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise InvalidSettings.of(exc, keywords=values) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in type(self).model_fields and name[:1] != "_":
            raise AttributeError(_no_setting(name))
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:  # named as the attribute assigned, as a keyword is
            raise InvalidSettings.of(exc, keywords=[name]) from None

    # Empty: start (and keep) the embedded PostgreSQL in data_dir.
    database_url: str | None = None
    # Hot standbys that serve searches (a JSON list or comma-separated); writes go to the primary.
    read_database_url: Annotated[list[str], NoDecode] = Field(default_factory=list)
    db_schema: str = "pgface"  # pgface's tables live in this schema of the database
    data_dir: Path | None = None
    model_pack: str = "buffalo_sc"
    models_dir: Path | None = None

    # Detection runs at every size and merges by NMS: 256 finds faces that fill the frame,
    # 640 finds small faces in large photos.
    det_sizes: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [256, 640])
    det_threshold: float = Field(default=0.5, gt=0, le=1)
    # pixels; 0 keeps every face the detector finds, however small
    min_face_size: int = Field(default=0, ge=0)
    # Faces whose quality score (pgface.models.quality) is below this are stored but neither
    # searched for nor clustered; chosen on LFW and the shared photos, docs/benchmarks-quality.md.
    min_quality: float = Field(default=0.1, ge=0, le=1)
    rec_batch_size: int = Field(default=64, ge=1, le=4096)
    # 0: one per core. Bounded: a huge count reached OpenVINO, whose error named the model file
    threads: int = Field(default=0, ge=0, le=1024)
    providers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["TorchCUDA", "CUDAExecutionProvider", "OpenVINO",
                                 "CPUExecutionProvider"]
    )

    # Match rule: cosine similarity at or above this is the same person. None: calibrated default.
    threshold: float | None = Field(default=None, ge=-1, le=1)
    top_k: int = Field(default=10, ge=1, le=1000)
    # Keep a memory-mapped copy of the in-process search index in data_dir/index, so a new
    # process answers its first search without loading every face (docs/benchmarks-search.md).
    index_snapshot: bool = True
    ef_search: int = Field(default=200, ge=1, le=1000)  # pgvector's hnsw.ef_search range

    photo_batch: int = Field(default=32, ge=1, le=100_000)
    # Indexing processes, each with its own models, interpreter lock and share of the threads,
    # taking batches from one queue: 0 is one per core. One process (the default) starts
    # fastest; several keep more cores busy on a long run (docs/benchmarks-processes.md).
    index_processes: int = Field(default=1, ge=0, le=1024)
    # Files and folders every indexing walk leaves out (comma-separated or a JSON list), as
    # `pgface index --exclude` does, whose patterns (and Pgface.index's, a job's) add to these.
    index_exclude: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Indexing detects the photos of a batch in shared model runs, one per input size, instead
    # of one photo per run. None: where the detector runs on a GPU (docs/benchmarks-indexing.md).
    batch_detection: bool | None = None
    max_file_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    max_pixels: int = Field(default=100_000_000, ge=1)
    # a photo file not read within this long is reported
    read_timeout_s: float = Field(default=30.0, gt=0)
    crop_size: int = Field(default=112, ge=16, le=1024)  # the stored face thumbnail's side
    # Indexing decodes a JPEG whose longest side is at least twice this at 1/2, 1/4 or 1/8 size,
    # keeping this many pixels or more (the detector sees 640 at most); a face too small there
    # for the recognizer is aligned from pixels decoded again at a larger size. 0: full size.
    decode_keep_side: int = Field(default=1280, ge=0)

    # HTTP API (`pgface serve`), docs/http.md. Keys are required once any exists, when bound
    # to a non-loopback address, or always with api_auth="always".
    api_host: str = "127.0.0.1"
    # where --port is not given (an operator setting PGFACE_API_HOST sets this beside it: it
    # was no setting, and the server listened on 8000 without a word)
    api_port: int = Field(default=8000, ge=1, le=65535)
    # Server-side folders allowed to index (a JSON list, or separated by ":" as in PATH).
    api_roots: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    api_auth: Literal["auto", "always"] = "auto"
    # at most 1 TiB: a huge number meant as "no limit" (2**63) was taken, then every upload
    # answered 500 (read(limit + 1) must fit a C ssize_t)
    api_max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1, le=1 << 40)
    # a decoded upload costs 3 bytes per pixel of memory
    api_max_pixels: int = Field(default=40_000_000, ge=1)
    # Photos analysed at once; 0: one per core (overlapping detections get a stream each).
    api_inference_workers: int = Field(default=0, ge=0)
    # A request body that sends nothing for this long is answered 408 and its connection
    # closed: a client that stopped mid-upload held its spooled part and its socket for good.
    api_body_idle_s: float = Field(default=60.0, gt=0)
    # A request body not all in this long after its headers is answered 408 and its
    # connection closed: one trickled a byte at a time never stalled for api_body_idle_s, and
    # held its connection for good. 300 s takes a 20 MiB photo at 70 KB/s.
    api_body_timeout_s: float = Field(default=300.0, gt=0)
    # A request's line and headers not all in this long after its first byte (or after the
    # connection opened) are answered 408 and the connection closed; one that sent nothing is
    # closed: uvicorn timed neither, and such connections were held for good.
    api_head_timeout_s: float = Field(default=30.0, gt=0)
    # Open connections and requests at once; more are answered 503 (uvicorn's
    # limit_concurrency): stalled clients cannot take every file descriptor.
    api_max_connections: int = Field(default=500, ge=1)
    # The path a reverse proxy serves pgface at ("/faces": https://example.org/faces/ reaches
    # the server's /, the proxy taking the path off), "" at the root: the page's links and the
    # API's (crop_url, ...) are made under it (uvicorn's root_path).
    api_root_path: str = ""
    upload_dir: Path | None = None  # uploaded photos are kept here; default data_dir/uploads

    @field_validator("read_database_url", "det_sizes", "providers", "api_roots", "index_exclude",
                     mode="before")
    @classmethod
    def _list_from_text(cls, value: object, info: ValidationInfo) -> object:
        """A list setting from a variable: a JSON list, or the plain form a shell user writes
        (`640,1280`; `OpenVINO,CPUExecutionProvider`; folders separated by ":" as in PATH)."""
        if isinstance(value, str):
            text = value.strip()
            if (info.field_name == "index_exclude" and len(text) > 1
                    and text[0] == text[-1] and text[0] in "\"'"):
                # Quotes that a shell would take off, kept by what set the variable (docker's
                # --env-file, a YAML value quoted twice): `"Screenshots,2019"` was the patterns
                # `"Screenshots` and `2019"`, matching nothing (probe reprobe45)
                raise ValueError(
                    f"the value is wrapped in {text[0]} quotes, which are taken as part of the "
                    f"patterns: write it without them (an env file and docker --env-file keep "
                    f"quotes), as in 2019,*.png")
            if text.startswith("[") and info.field_name == "index_exclude":
                # a pattern may start with "[" itself (`[Ss]creenshots`, as docs/cli.md
                # suggests for case): only a JSON list of text is JSON, the rest is the
                # plain form (it was refused as JSON that is not, probe reprobe34)
                try:
                    listed = json.loads(text)
                except json.JSONDecodeError:
                    listed = None
                if isinstance(listed, list) and all(isinstance(p, str) for p in listed):
                    return listed
                pieces = text.split(",")
                if ((isinstance(listed, list) and len(pieces) > 1)  # `[2019]`: a glob
                        or re.match(r"\[\s*\\?[\"']", text) or (
                        "]" not in pieces[0] and len(pieces) > 1  # `[a, b], *.tmp`, `[a, b`
                        and ("]" not in text
                             or any("]" in p and "[" not in p for p in pieces[1:])))):
                    # a list meant, not written as JSON's of text (a comma after the last,
                    # single quotes, a number in it, no quotes: `[Screenshots, 2019]`), was
                    # taken as the plain form, each piece (`["2019"`, `[Screenshots`)
                    # matching nothing: the folders meant to stay private were indexed
                    # (probes reprobe42, reprobe43). No glob starts with a bracket holding a
                    # quote (or a quote escaped, `[\"2019\"]` from an env file, reprobe45),
                    # and a bracket closed only past a comma, or never (`[Screenshots, 2019`),
                    # is none of the plain form's (a pattern that holds a comma is for a JSON
                    # list).
                    raise ValueError(
                        "not a JSON list of patterns (for one, quote each pattern with double "
                        "quotes and put no comma after the last, as in [\"2019\", \"*.png\"]; "
                        "or write them plainly, as in 2019,*.png)")
            elif text.startswith("["):
                try:
                    return json.loads(text)
                except json.JSONDecodeError as exc:
                    # `[OpenVINO]` gave only the parser's "Expecting value: line 1 column 2"
                    raise ValueError(
                        f"not a JSON list ({exc.msg} at character {exc.pos + 1}): quote each "
                        f"item, as in [\"a\", \"b\"], or write the items plainly, as in a,b"
                    ) from None
            if info.field_name == "read_database_url":
                # a URL may hold commas itself (several hosts): split only before a scheme
                parts = re.split(r",\s*(?=postgres(?:ql)?://)", text)
            else:
                parts = text.split(os.pathsep if info.field_name == "api_roots" else ",")
            return [part.strip() for part in parts if part.strip()]
        if (info.field_name == "det_sizes" and isinstance(value, int)
                and not isinstance(value, bool)):
            # one size given as a number, as PGFACE_DET_SIZES=640 gives it: the list of it
            # (Settings(det_sizes=300) said "Input should be a valid list", where the
            # variable said why 300 is no size)
            return [value]
        return value

    @field_validator("database_url", mode="before")
    @classmethod
    def _url_or_embedded(cls, value: object) -> object:
        # Empty is the embedded server; a blank one (" ") counted as set and libpq took it as
        # "connect to the default socket", an error about /var/run/postgresql
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("database_url")
    @classmethod
    def _readable_url(cls, url: str | None) -> str | None:
        # A URL libpq cannot read was refused only when a connection was made, by words that
        # named no setting; a bad standby URL not at all by commands that do not search (a
        # nightly `stats` passed with it: probe cli23).
        if url is not None:
            _check_conninfo(url)
        return url

    @field_validator("read_database_url")
    @classmethod
    def _readable_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            _check_conninfo(url)
        return urls

    @field_validator("index_exclude")
    @classmethod
    def _exclude_patterns(cls, patterns: list[str]) -> list[str]:
        from pgface.paths import exclude_problem

        for pattern in patterns:
            if (problem := exclude_problem(pattern)) is not None:
                raise ValueError(problem)
        return patterns

    @field_validator("providers")
    @classmethod
    def _backend_names(cls, names: list[str]) -> list[str]:
        from pgface.models.sessions import backend_name_error  # loads ONNX Runtime

        if not names:
            raise ValueError("empty: name at least one backend, or leave the variable unset "
                             "for the default order")
        for name in names:
            if (reason := backend_name_error(name)) is not None:
                raise ValueError(reason)
        return names

    @field_validator("db_schema")
    @classmethod
    def _schema_name(cls, name: str) -> str:
        # PostgreSQL cuts a longer name to 63 bytes unsaid (two such names were one library);
        # pg_ names are the system's; public is where pgface kept its tables before it had a
        # schema, which the migrations move into the library's schema (a library of another
        # schema opened in that database took a library in public over)
        if not name.strip():
            raise ValueError("the schema's name is empty")
        if name != name.strip():
            # `docker run --env-file` keeps a trailing space: 'pgface ' opened a new, empty
            # library beside the user's (probe operator)
            raise ValueError("the name begins or ends with white space (an environment file "
                             "keeps it): give it without")
        if len(name.encode()) > 63:
            raise ValueError(f"PostgreSQL names are at most 63 bytes; this is "
                             f"{len(name.encode())}")
        if name.startswith("pg_") or name == "information_schema":
            raise ValueError("names starting with pg_, and information_schema, are "
                             "PostgreSQL's own")
        if name == "public":
            raise ValueError("public is where pgface kept its tables before it had a schema of "
                             "its own, and a library there is moved into the library's schema "
                             "when one is opened: choose another name")
        return name

    @field_validator("data_dir", "models_dir", "upload_dir", mode="before")
    @classmethod
    def _folder_named(cls, value: object) -> object:
        # Path("") is ".": an exported but empty PGFACE_DATA_DIR made a library (its own
        # PostgreSQL) in whatever folder a command ran from; unset it for the default
        if isinstance(value, str) and not value.strip():
            raise ValueError("empty: name a folder, or leave the variable unset for the "
                             "default")
        if isinstance(value, str) and value != value.strip():
            # an environment file's trailing space made a second embedded PostgreSQL in
            # 'data ', an empty library (probe operator); a folder so named is given as a Path
            raise ValueError("the path begins or ends with white space (an environment file "
                             "keeps it): give it without")
        return value

    @field_validator("data_dir", "models_dir", "upload_dir", "api_roots")
    @classmethod
    def _absolute_folders(cls, value: Path | list[Path] | None) -> Path | list[Path] | None:
        # Made absolute (and ~ expanded) here, once, against the folder the settings are read
        # in: resolved at each use, a relative data_dir followed os.chdir, so the library's
        # running server was called stopped and, once closed, a new empty library started in
        # the new folder without a word (probe pyapi30)
        if value is None:
            return None
        if isinstance(value, list):
            return [_absolute(folder) for folder in value]
        return _absolute(value)

    @field_validator("data_dir", "models_dir")
    @classmethod
    def _text_folder(cls, folder: Path | None, info: ValidationInfo) -> Path | None:
        if folder is not None and (why := not_text_path(folder, info.field_name == "data_dir")):
            raise ValueError(why)
        return folder

    @field_validator("model_pack")
    @classmethod
    def _pack_folder_absolute(cls, pack: str) -> str:
        # A pack named by its folder's path (not a bare name, which models_dir's folders
        # answer: packs.resolve_pack) is fixed as the folders above are: relative, it followed
        # os.chdir, and a search found no pack, or another one (probe reprobe31)
        named = pack.rstrip("/")
        if not named or ("/" not in named and os.sep not in named
                         and not named.startswith(("~", "."))):
            return pack
        return str(_absolute(Path(pack)))

    @field_validator("api_host")
    @classmethod
    def _host_named(cls, host: str) -> str:
        # "" binds every address: PGFACE_API_HOST=$HOST with HOST unset put the API on the
        # network instead of loopback
        if not host.strip():
            raise ValueError("empty: name an address (127.0.0.1: this machine only; 0.0.0.0: "
                             "every address), or leave the variable unset for 127.0.0.1")
        return host

    @field_validator("api_root_path")
    @classmethod
    def root_path_checked(cls, path: str) -> str:
        """PGFACE_API_ROOT_PATH (or serve's --root-path) as uvicorn takes it, or ValueError."""
        path = path.strip().rstrip("/")
        if path and (not path.startswith("/") or path.startswith("//")
                     or any(c in path for c in "?#\\\"'<> ") or not path.isprintable()
                     # percent-encoded too: a browser resolves "/faces/%2e%2e/" to "/"
                     or any(part in (".", "..") for part in unquote(path).split("/"))
                     or re.search(r"%(?![0-9A-Fa-f]{2})", path)):
            raise ValueError(f"{path!r} is not a path a proxy serves pgface at: write it as "
                             f"/faces (a slash first, no query, no spaces, no . or .. "
                             f"part), or leave it unset for the server's root")
        if not path.isascii():  # uvicorn takes it as ASCII: every request was dropped
            raise ValueError(f"{path!r}: write it as a URL has it, percent-encoded: "
                             f"{quote(path, safe='/%')}")
        return path

    @field_validator("decode_keep_side")
    @classmethod
    def _keep_what_the_detector_sees(cls, side: int, info: ValidationInfo) -> int:
        # Decoded smaller than every detector input, every photo is scaled up for every pass:
        # side 1 decoded any JPEG of 2 pixels or more at 1/8 (a 1,000-pixel photo at 125), and
        # its faces were lost without a word. 320 decodes a 12 MP photo at 1/8 and finds its
        # faces (tests/test_reduced_decoding.py).
        smallest = min(info.data.get("det_sizes") or [0])
        if 0 < side < smallest:
            raise ValueError(f"{side} is smaller than the smallest detector size ({smallest}, "
                             f"PGFACE_DET_SIZES): 0 (decode in full) or at least {smallest}")
        return side

    @field_validator("det_sizes")
    @classmethod
    def _detector_sizes(cls, sizes: list[int]) -> list[int]:
        # SCRFD's anchors sit on grids of stride 8, 16 and 32: at a size that is not a multiple
        # of 32 its boxes land in the wrong places (det 300 put Obama's face 400 px to the
        # right), and every photo then "failed" or got wrong faces instead of one clear error.
        if not sizes:
            raise ValueError("give at least one detector size, such as 640")
        for size in sizes:
            if size % 32 or not MIN_DET_SIZE <= size <= MAX_DET_SIZE:
                raise ValueError(f"{size} is not a detector size: a multiple of 32 from "
                                 f"{MIN_DET_SIZE} to {MAX_DET_SIZE}, such as 256 or 640")
        return sorted(set(sizes))

    # The folders below are absolute from the settings' making (_absolute_folders), never
    # against the current folder of the moment
    def resolved_data_dir(self) -> Path:
        if self.data_dir is not None:
            return self.data_dir
        from pgface.db.server import default_data_dir

        folder = default_data_dir()
        if why := not_text_path(folder, server=True):  # (a folder set is checked when set)
            raise InvalidSettings(f"the default data folder {why}: set PGFACE_DATA_DIR to one")
        return folder

    def resolved_upload_dir(self) -> Path:
        """Where the HTTP API keeps the photos uploaded to it."""
        return self.upload_dir or self.resolved_data_dir() / "uploads"

    def resolved_models_dir(self) -> Path:
        if self.models_dir is not None:
            return self.models_dir
        return self.resolved_data_dir() / "models"

    def match_threshold(self, pack_name: str) -> float:
        if self.threshold is not None:
            return self.threshold
        return CALIBRATED_THRESHOLDS.get(pack_name, UNCALIBRATED_THRESHOLD)
