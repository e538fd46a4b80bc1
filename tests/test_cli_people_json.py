"""`people delete`, `erase` and `scrub` speak JSON with the HTTP API's keys (docs/cli.md)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest
from conftest import PHOTOS, require_data
from typer.testing import CliRunner

from pgface import Pgface
from pgface.cli import app
from pgface.models.packs import sample_photos

runner = CliRunner()


def test_delete_erase_scrub_json(pf: Pgface, env: dict[str, str]) -> None:
    photos = sorted(require_data(PHOTOS / "people" / "bbt-amy").iterdir())[:3]
    pf.index(photos)
    with pf.pool.connection() as conn:
        face_ids = [r[0] for r in conn.execute("SELECT id FROM faces ORDER BY id")]
    assert len(face_ids) == 3
    amy = pf.people.name_faces(face_ids[:2], "Amy").person.id

    # deleted by name, the answer says whom (the id a client deleting by name had not)
    deleted = runner.invoke(app, ["people", "delete", "Amy", "--json"], env=env)
    assert deleted.exit_code == 0, deleted.output
    assert json.loads(deleted.stdout) == {"deleted": "Amy", "person_id": amy, "name": "Amy",
                                          "faces_released": 2}

    amy = pf.people.name_faces(face_ids, "Amy").person.id
    erased = runner.invoke(app, ["people", "erase", "Amy", "--yes", "--no-scrub", "--json"],
                           env=env)
    assert erased.exit_code == 0, erased.output
    assert json.loads(erased.stdout) == {
        "erased": "Amy", "person_id": amy, "name": "Amy", "faces_deleted": 3,
        "photos_deleted": 3, "files_deleted": 0,
        "files_failed": [], "scrub_seconds": None, "scrub_failed": None}

    scrubbed = runner.invoke(app, ["people", "scrub", "--json"], env=env)
    assert scrubbed.exit_code == 0, scrubbed.output
    answer = json.loads(scrubbed.stdout)
    assert set(answer) == {"scrub_seconds"} and answer["scrub_seconds"] >= 0


def test_an_erase_not_confirmed_is_one_error_line(pf: Pgface, env: dict[str, str]) -> None:
    # Declined at the prompt, or asked with no one to answer, typer's abort printed
    # "Aborted." alone, with no `error:` line as every other error has.
    faces = pf.index([sample_photos()[1]]).faces
    assert faces == 1
    with pf.pool.connection() as conn:
        face = conn.execute("SELECT id FROM faces").fetchone()[0]
    pf.people.name_faces([face], "Yao")
    for answer in ("n\n", ""):
        done = runner.invoke(app, ["people", "erase", "Yao"], env=env, input=answer)
        assert done.exit_code == 1, done.output
        assert done.stderr.strip().splitlines()[-1] == (
            "error: nothing was erased: Yao stays (--yes erases without asking)")
    assert pf.people.get("Yao").faces == 1
    # stdin closed (`<&-`, a daemon's job): no one to answer either; it was "error: unexpected
    # RuntimeError: input(): lost sys.stdin (a bug ...)" (probe cli31)
    done = subprocess.run([sys.executable, "-c", "from pgface.cli import app; app()", "people",
                           "erase", "Yao"], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=300, preexec_fn=lambda: os.close(0))
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "error: nothing was erased: Yao stays (--yes erases without asking)"), done.stderr
    assert pf.people.get("Yao").faces == 1


def test_the_erase_question_goes_to_stderr_never_before_the_json(pf: Pgface,
                                                                  env: dict[str, str]) -> None:
    """Probe clidocs19: `echo y | pgface people erase X --no-scrub --json` wrote its question
    to stdout, before the JSON (which no longer parsed); unanswered, stdout held the question."""
    pf.index([sample_photos()[1]])
    with pf.pool.connection() as conn:
        face = conn.execute("SELECT id FROM faces").fetchone()[0]
    yao = pf.people.name_faces([face], "Yao").person.id
    unanswered = runner.invoke(app, ["people", "erase", "Yao", "--json"], env=env, input="")
    assert unanswered.exit_code == 1 and unanswered.stdout == "", unanswered.output
    asked, said = unanswered.stderr.splitlines()
    assert asked.startswith("erase Yao and 1 face for good?") and said.startswith("error: ")
    done = runner.invoke(app, ["people", "erase", "Yao", "--no-scrub", "--json"], env=env,
                         input="y\n")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["person_id"] == yao
    assert done.stderr.startswith("erase Yao and 1 face for good?"), done.stderr


def test_an_erase_whose_rewrite_fails_says_the_erase_and_the_failure(
        pf: Pgface, env: dict[str, str], database_url: str) -> None:
    # The rewrite after an erase fails when it cannot have the tables (here a reader holds
    # them past the database's lock_timeout; on a full disk, no room for their copy): the
    # erase, committed, said only "error: database: ...", a retry said "no person named", and
    # the search index kept the erased faces' copies.
    faces = pf.index(sample_photos()).faces
    with pf.pool.connection() as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM faces ORDER BY id LIMIT 2")]
    pf.people.name_faces(ids[:1], "Yao")
    pf.people.name_faces(ids[1:], "Ming")
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {admin.info.dbname} SET lock_timeout = '300ms'")
    with psycopg.connect(database_url) as reader:
        reader.execute("SELECT count(*) FROM faces").fetchone()  # holds them until it ends
        erased = runner.invoke(app, ["people", "erase", "Yao", "--yes"], env=env)
        erased_json = runner.invoke(app, ["people", "erase", "Ming", "--yes", "--json"], env=env)
    assert erased.exit_code == 1, erased.output
    assert erased.stdout.startswith("erased Yao: 1 face, 0 photos, 0 uploaded files; tables "
                                    "not rewritten yet (run `pgface people scrub`)")
    said = erased.stderr.strip().splitlines()[-1]
    assert said.startswith("error: the tables could not be rewritten (") and "lock" in said
    assert "until `pgface people scrub` succeeds" in said
    assert erased_json.exit_code == 1, erased_json.output
    answer = json.loads(erased_json.stdout)
    assert answer["faces_deleted"] == 1 and answer["scrub_seconds"] is None
    assert "lock" in answer["scrub_failed"]
    with pf.pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM faces").fetchone()[0] == faces - 2
        assert conn.execute("SELECT count(*) FROM people").fetchone()[0] == 0
    scrubbed = runner.invoke(app, ["people", "scrub"], env=env)  # the reader is gone
    assert scrubbed.exit_code == 0, scrubbed.output


def test_an_erase_stopped_in_its_rewrite_says_the_erase_was_made(
        pf: Pgface, env: dict[str, str], database_url: str) -> None:
    """Probe crash38: Ctrl-C or SIGTERM while the tables were rewritten (minutes at scale)
    said only "stopped (Ctrl-C)" (SIGTERM: nothing): the person was erased all the same, and
    nothing said that the erased rows' bytes stayed in the tables' files until a scrub. The
    rewrite is held here by a reader of the table, as it waits for one in use."""
    pf.index([p for p in sample_photos() if p.name == "yaoming.jpg"])
    with pf.pool.connection() as conn:
        [face] = conn.execute("SELECT id FROM faces ORDER BY id LIMIT 1").fetchone()
    pf.people.name_faces(face, "Yao")
    with psycopg.connect(database_url) as reader, \
            psycopg.connect(database_url, autocommit=True) as watcher:
        reader.execute("SELECT count(*) FROM faces").fetchone()  # holds it until it ends
        erase = subprocess.Popen([sys.executable, "-m", "pgface", "people", "erase", "Yao",
                                  "--yes"], env={**os.environ, **env}, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(1200):  # the rewrite waiting for the reader's lock
            if watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                               "'Lock' AND query ILIKE 'VACUUM%%'").fetchone()[0]:
                break
            time.sleep(0.1)
        else:
            erase.kill()
            pytest.fail(f"no rewrite waited: {erase.communicate()}")
        erase.send_signal(signal.SIGTERM)
        out, said = erase.communicate(timeout=120)
    assert erase.returncode == 143, (out, said)
    assert said.strip() == (
        "stopped (SIGTERM): Yao was erased (1 face, 1 photo), but the tables were not "
        "rewritten: the erased rows' bytes may stay in their files until `pgface people "
        "scrub` is run"), said
    with pf.pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM people").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM faces WHERE id = %s", [face]
                            ).fetchone()[0] == 0
    assert runner.invoke(app, ["people", "scrub"], env=env).exit_code == 0


def test_people_remove_takes_faces_away_as_nobodys(pf: Pgface, env: dict[str, str]) -> None:
    """Probe web56: `people remove` takes faces away from a person ("not this person"): they
    are nobody's, said in words and in JSON; a face not theirs is refused; `undo` gives them
    back."""
    photos = sorted(require_data(PHOTOS / "people" / "bbt-amy").iterdir())[:3]
    pf.index(photos)
    with pf.pool.connection() as conn:
        face_ids = [r[0] for r in conn.execute("SELECT id FROM faces ORDER BY id")]
    amy = pf.people.name_faces(face_ids, "Amy").person.id

    said = runner.invoke(app, ["people", "remove", "Amy", str(face_ids[0])], env=env)
    assert said.exit_code == 0, said.output
    assert said.stdout.strip() == (
        "took 1 face from Amy, nobody's now: 2 faces in 2 photos left")
    assert face_ids[0] not in {f.face_id for f in pf.people.faces(amy)}
    with pf.pool.connection() as conn:
        assert conn.execute("SELECT person_id FROM faces WHERE id = %s",
                            [face_ids[0]]).fetchone()[0] is None

    removed = runner.invoke(app, ["people", "remove", str(amy), str(face_ids[1]), "--json"],
                            env=env)
    assert removed.exit_code == 0, removed.output
    answer = json.loads(removed.stdout)
    assert (answer["person_id"], answer["name"], answer["removed"]) == (amy, "Amy",
                                                                        [face_ids[1]])
    assert answer["person"]["faces"] == 1

    refused = runner.invoke(app, ["people", "remove", "Amy", str(face_ids[0])], env=env)
    assert refused.exit_code != 0
    assert f"face {face_ids[0]} is not a face of person {amy}" in refused.stderr
    undone = runner.invoke(app, ["people", "undo"], env=env)
    assert undone.exit_code == 0, undone.output
    assert pf.people.get(amy).faces == 2
