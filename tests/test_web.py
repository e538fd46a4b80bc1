"""The web page in a real headless Chromium (Debian's package, driven by Playwright)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_jobs import index_path
from conftest import CHROMIUM, PHOTOS, REPO, require_data
from PIL import Image
from test_api import running_server

from pgface import Pgface, Settings
from pgface.api import create_app
from pgface.db import api_keys
from pgface.models.analysis import FaceAnalyzer

SCREENSHOT = REPO / "docs" / "web-results.png"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Chromium not found at /usr/bin/chromium: apt-get install -y chromium",
)


def opened_page(browser, url: str, **options: object):  # noqa: ANN001, ANN201
    """The page at URL in a context of its own of BROWSER (the module's Chromium; new_page's
    OPTIONS: a viewport), and the list its script errors go to: each test asserts it empty at
    its end, and closes the page's context."""
    page = browser.new_page(**options)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # what the server's Content-Security-Policy stopped: the page's own scripts, styles and
    # images are all it allows, and a page that needed more would work only in part
    page.on("console", lambda message: errors.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.goto(url)
    return page, errors


def test_the_api_docs_pages_work_under_the_servers_content_security_policy(
        chromium: Any, settings: Settings, analyzer: FaceAnalyzer) -> None:
    """The server lets no script run in a page but the page's own files (script-src 'self'),
    and the docs pages' set-up scripts are inline: each page names its own by hash."""
    expect = pytest.importorskip("playwright.sync_api").expect
    with running_server(create_app(settings, analyzer)) as url:
        page, errors = opened_page(chromium, f"{url}/docs")
        expect(page.locator(".opblock").first).to_be_visible()  # the routes, drawn by script
        assert page.locator(".opblock").count() > 30
        page.goto(f"{url}/redoc")
        expect(page.get_by_text("/api/people/{ref}/split").first).to_be_attached()
        # ReDoc's logo is on its makers' site: no image of another site is shown, offline or not
        assert [e for e in errors if "https://cdn.redoc.ly/" not in e] == [], errors
        page.context.close()


def face_section(page, file_name: str):  # noqa: ANN001, ANN201 - Playwright types
    """The result section of the query face whose best match is in `file_name`."""
    return page.locator(".face-result").filter(
        has=page.locator(".match").first.filter(has_text=file_name))


def test_search_page_shows_matches_names_and_merges_people(
        chromium: Any, settings: Settings, analyzer: FaceAnalyzer) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    require_data(PHOTOS)
    settings = settings.model_copy(update={"api_roots": [PHOTOS]})
    with running_server(create_app(settings, analyzer)) as url, \
            httpx.Client(base_url=url, timeout=120) as http:
        for path in ("people/obama", "people/biden", "tricky", "groups/couple.jpg"):
            assert index_path(http, path)["indexed"]
        page, errors = opened_page(chromium, url, viewport={"width": 1280, "height": 900})
        expect = sync_api.expect
        expect(page.locator("#stats")).to_contain_text("photos")

        page.set_input_files("#file", str(PHOTOS / "queries" / "obama_and_biden.jpg"))
        expect(page.locator(".face-result")).to_have_count(3)  # Obama, Biden, a girl
        expect(page.locator(".summary")).to_contain_text("3 faces found")
        obama, biden = face_section(page, "obama"), face_section(page, "biden")
        expect(obama).to_have_count(1)
        expect(biden).to_have_count(1)
        expect(page.locator(".face-result", has_text="no match in the database")).to_have_count(1)
        obama_cards = obama.locator(".match")
        assert obama_cards.count() >= 3
        for text in obama.locator(".similarity").all_inner_texts():
            assert text.endswith("%") and int(text[:-1]) >= 23
        page.wait_for_function(
            "() => [...document.querySelectorAll('.match img')].every(i => i.naturalWidth > 0)")

        # Nothing is ticked by default: naming is a decision about each face.
        checks = obama.locator(".match input[type=checkbox]")
        all_checks = page.locator(".match input[type=checkbox]")
        assert all_checks.count() > 3
        assert not any(all_checks.nth(i).is_checked() for i in range(all_checks.count()))
        obama.locator(".name-input").fill("Barack Obama")
        obama.get_by_role("button", name="Name checked faces").click()
        expect(page.locator("#message")).to_contain_text("Tick the faces")
        # Name one Obama face, then another under a second name, then all of Biden's.
        checks.nth(0).check()
        obama.get_by_role("button", name="Name checked faces").click()
        expect(obama_cards.nth(0).locator(".person")).to_have_text("Barack Obama")
        expect(obama_cards.nth(1).locator(".person")).to_have_text("unnamed")
        assert not checks.nth(0).is_checked()  # a named face is unticked again
        checks.nth(1).check()
        obama.locator(".name-input").fill("B. Obama")
        obama.get_by_role("button", name="Name checked faces").click()
        expect(obama_cards.nth(1).locator(".person")).to_have_text("B. Obama")
        # A face named after a hidden person goes to that person, still hidden: the message
        # says so (the face vanished from view, unsaid). Both changes are taken back after.
        http.post("/api/people/B. Obama/hide").raise_for_status()
        checks.nth(2).check()
        obama.locator(".name-input").fill("B. Obama")
        obama.get_by_role("button", name="Name checked faces").click()
        expect(page.locator("#message")).to_contain_text(
            "Named 1 face B. Obama. B. Obama is hidden from the people page")
        for _ in range(2):
            http.post("/api/people/undo").raise_for_status()
        assert not http.get("/api/people/B. Obama").json()["hidden"]
        biden_checks = biden.locator(".match input[type=checkbox]")
        for i in range(biden_checks.count()):
            biden_checks.nth(i).check()
        biden.locator(".name-input").fill("Joe Biden")
        biden.get_by_role("button", name="Name checked faces").click()
        expect(biden.locator(".person").first).to_have_text("Joe Biden")
        expect(page.locator("#message")).to_contain_text("Named")
        people = {p["name"]: p for p in http.get("/api/people").json()["people"]}
        assert people["Barack Obama"]["faces"] == 1 and people["B. Obama"]["faces"] == 1
        assert people["Joe Biden"]["faces"] == biden.locator(".match").count()
        # named again as they are: nothing changed, and said so (probe peoplepage36: "Named
        # 2 faces")
        for i in range(biden_checks.count()):
            biden_checks.nth(i).check()
        biden.locator(".name-input").fill("Joe Biden")
        biden.get_by_role("button", name="Name checked faces").click()
        expect(page.locator("#message")).to_contain_text(
            f"{'That face is' if biden_checks.count() == 1 else 'Those faces are'} Joe Biden's "
            f"already.")
        expect(page.locator("#message").get_by_role("button", name="Undo")).to_have_count(0)

        # Naming faces people already named asks first, listing whose they are.
        for i in range(checks.count()):
            checks.nth(i).check()
        obama.locator(".name-input").fill("Someone")
        obama.get_by_role("button", name="Name checked faces").click()
        expect(page.locator("#ask-dialog")).to_be_visible()
        expect(page.locator("#ask-text")).to_contain_text("moves faces out of")
        expect(page.locator("#ask-list li")).to_have_count(2)
        assert sorted(page.locator("#ask-list li").all_inner_texts()) == [
            "B. Obama: 1 face", "Barack Obama: 1 face"]
        page.locator("#ask-choices").get_by_role("button", name="Cancel").click()
        expect(page.locator("#message")).to_contain_text("Nothing was named")
        assert {p["name"]: p["faces"] for p in http.get("/api/people").json()["people"]} == {
            name: p["faces"] for name, p in people.items()}
        for i in range(checks.count()):
            checks.nth(i).uncheck()

        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.evaluate("document.querySelector('#message').hidden = true")
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        # A match opens its photo with the boxes drawn.
        obama_cards.nth(0).locator(".open-photo").click()
        expect(page.locator("#photo-dialog")).to_be_visible()
        expect(page.locator("#photo-title")).to_have_text(re.compile(r", (1 face|\d+ faces)$"))
        page.wait_for_function("() => document.querySelector('#photo-img').naturalWidth > 100")
        assert page.locator(".face-box").count() >= 1
        expect(page.locator(".face-box.highlight")).to_have_count(1)
        page.locator("#photo-close").click()

        # A match's person opens their page (the name was text: where else they appear took
        # the People tab and a search by eye); a face nobody holds links nowhere.
        named = obama_cards.nth(0).locator(".person")
        barack = people["Barack Obama"]["id"]
        expect(named).to_have_attribute("href", f"#/people/{barack}")
        unheld = page.locator(".match .person:not([href])")
        expect(unheld.first).to_have_text("unnamed")
        named.click()
        expect(page).to_have_url(re.compile(rf"#/people/{barack}$"))
        expect(page.locator("#person-title")).to_have_text("Barack Obama")
        page.go_back()
        expect(page.locator(".face-result")).to_have_count(3)

        # People: merge the two Obamas, rename Biden (tests/test_web_people.py: at scale).
        page.get_by_role("button", name="People", exact=True).click()
        tiles = page.locator(".person-tile")
        expect(tiles).to_have_count(3)
        for name in ("Barack Obama", "B. Obama"):  # the first selected keeps the faces
            tiles.filter(has_text=name).locator(".tile-check").click()
        page.get_by_role("button", name="Merge…").click()
        # Both have names: the dialog asks which one the merged person keeps.
        expect(page.locator("#merge-names")).to_contain_text("different names")
        page.locator("#merge-dialog").get_by_label("Barack Obama").check()
        page.locator("#merge-dialog").get_by_role("button", name="Merge", exact=True).click()
        expect(page.locator("#message")).to_contain_text("Merged into Barack Obama: 2 faces")
        expect(tiles).to_have_count(2)
        # the keyboard goes on from the change's Undo (focus fell to the page's start)
        expect(page.locator("#message .message-action")).to_be_focused()
        tiles.filter(has_text="Joe Biden").click()
        expect(page.locator("#person-title")).to_have_text("Joe Biden")
        page.fill("#person-name", "Joseph Biden")
        page.get_by_role("button", name="Save name").click()
        expect(page.locator("#person-title")).to_have_text("Joseph Biden")
        people = {p["name"]: p for p in http.get("/api/people").json()["people"]}
        assert set(people) == {"Barack Obama", "Joseph Biden"}
        assert people["Barack Obama"]["faces"] == 2

        # Undo takes back the last change: the rename.
        page.get_by_role("button", name="People", exact=True).click()
        expect(tiles).to_have_count(2)
        page.get_by_role("button", name="Undo last change").click()
        expect(page.locator("#message")).to_contain_text("Undone: renamed 'Joe Biden'")
        expect(tiles.filter(has_text="Joe Biden")).to_have_count(1)
        assert {p["name"] for p in http.get("/api/people").json()["people"]} == {
            "Barack Obama", "Joe Biden"}
        # the history comes next to Undo, ahead of the grid, which grows as its end is
        # reached: after it, a large library's history was out of reach (probe webscale49)
        page.get_by_role("button", name="Undo last change").focus()
        page.keyboard.press("Tab")
        expect(page.locator("#history-box summary")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.locator("#history li").first).to_contain_text("(undone by api)")

        # A crowd: the numbers on the query photo sit outside every face box, or are left out.
        page.goto(f"{url}/#/search")
        page.set_input_files("#file", str(PHOTOS / "groups" / "crowd-30.jpg"))
        # (30 faces analysed and searched: over 5 s on a loaded machine)
        expect(page.locator(".summary")).to_contain_text("faces found in crowd-30.jpg",
                                                         timeout=60_000)
        drawn = page.locator("canvas.query-photo").evaluate("c => JSON.parse(c.dataset.labels)")
        assert len(drawn["boxes"]) == page.locator(".face-result").count() >= 20
        assert drawn["labels"], "no face number could be placed at all"
        for label in drawn["labels"]:
            lx1, ly1, lx2, ly2 = label["rect"]
            for bx1, by1, bx2, by2 in drawn["boxes"]:
                assert not (lx1 < bx2 and lx2 > bx1 and ly1 < by2 and ly2 > by1), label
        assert not errors, errors
        page.context.close()


def test_page_asks_for_a_key_and_sends_it(chromium: Any, settings: Settings,
                                          analyzer: FaceAnalyzer) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    require_data(PHOTOS)
    expect = sync_api.expect
    # A server on the network with no key yet: how to make one, said once, then where it goes
    # (probe reprobe41: the command twice), the command as code.
    public = settings.model_copy(update={"api_host": "0.0.0.0"})
    with running_server(create_app(public, analyzer)) as url:
        page = chromium.new_page()
        page.goto(url)
        page.set_input_files("#file", str(PHOTOS / "queries" / "obama1.jpg"))
        expect(page.locator("#message")).to_contain_text(
            "create one with pgface keys create NAME --scope read, then enter it in the API "
            "key box above")
        expect(page.locator("#message code")).to_have_count(1)
        page.context.close()
    settings = settings.model_copy(update={"api_roots": [PHOTOS], "api_auth": "always"})
    with Pgface(settings, analyzer=analyzer) as pf, pf.pool.connection() as conn:
        _, key = api_keys.create_key(conn, "browser", ["write"])
    with running_server(create_app(settings, analyzer)) as url:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
            assert index_path(http, "people/obama")["indexed"] == 2
        page = chromium.new_page()
        page.goto(url)
        expect(page.locator("#key-form")).to_be_visible()
        page.set_input_files("#file", str(PHOTOS / "queries" / "obama1.jpg"))
        expect(page.locator("#message")).to_contain_text(
            "this server requires an API key (api_auth=always): enter one in the API key box")
        page.fill("#key", key)
        page.get_by_role("button", name="Use key").click()
        expect(page.locator("#stats")).to_contain_text("2 photos")
        expect(page.locator(".match")).to_have_count(2)  # the refused search, run again
        page.wait_for_function(
            "() => [...document.querySelectorAll('.match img')].every(i => i.naturalWidth > 0)")
        assert page.evaluate("localStorage.getItem('pgface.key')") == key
        page.context.close()

        # Probe web38: a key given on the people page, after a search refused for want of one,
        # loaded the search again on the hidden search view and left the people page empty;
        # a key pasted with a zero-width space, or an en dash for its "_", was kept and gave
        # the browser's "Failed to execute 'set' on 'Headers'" on every view and reload.
        with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
            faces = [face["id"] for photo in http.get("/api/photos").json()["photos"]
                     for face in http.get(f"/api/photos/{photo['id']}").json()["faces"]]
            http.post("/api/people/name", json={"face_ids": faces, "name": "Obama"}
                      ).raise_for_status()
        page = chromium.new_page()
        page.goto(url)
        page.set_input_files("#file", str(PHOTOS / "queries" / "obama1.jpg"))
        expect(page.locator("#message")).to_contain_text("requires an API key")
        page.locator(".tab[data-view=people]").click()
        expect(page.locator("#message")).to_contain_text("requires an API key")
        page.fill("#key", key.replace("_", "\u2013", 1))
        page.get_by_role("button", name="Use key").click()
        expect(page.locator("#message")).to_contain_text(
            'the API key holds "\u2013" (U+2013), which no key has')
        assert page.evaluate("localStorage.getItem('pgface.key')") is None
        asked: list[str] = []
        page.on("request", lambda request: asked.append(f"{request.method} {request.url}"))
        page.fill("#key", f" {key}\u200b")
        page.get_by_role("button", name="Use key").click()
        expect(page.locator("#people-grid .person-tile", has_text="Obama")).to_have_count(1)
        expect(page.locator("#message")).to_be_hidden()
        assert page.evaluate("localStorage.getItem('pgface.key')") == key
        assert not [a for a in asked if "/api/search" in a], asked
        page.reload()
        expect(page.locator("#people-grid .person-tile", has_text="Obama")).to_have_count(1)
        page.context.close()



@contextmanager
def served_album(settings: Settings, analyzer: FaceAnalyzer, tmp_path: Path
                 ) -> Iterator[tuple[str, httpx.Client, Path]]:
    """Obama's two photos copied to an album, indexed through a running server: its URL, a
    client of it, and the album."""
    album = tmp_path / "album"
    shutil.copytree(require_data(PHOTOS / "people" / "obama"), album)
    album.chmod(0o755)
    settings = settings.model_copy(update={"api_roots": [tmp_path]})
    with running_server(create_app(settings, analyzer)) as url, \
            httpx.Client(base_url=url, timeout=120) as http:
        assert index_path(http, "album")["indexed"] == 2
        yield url, http, album


def test_a_match_whose_file_is_gone_says_so(chromium: Any, settings: Settings,
                                            analyzer: FaceAnalyzer, tmp_path: Path) -> None:
    expect = pytest.importorskip("playwright.sync_api").expect
    with served_album(settings, analyzer, tmp_path) as (url, http, album):
        # A file's name is what follows the last "/" of its path: a backslash is a character
        # of a name here, and a byte that is not UTF-8 is written `\xNN`; both were cut at
        # the backslash ("slash.jpg", "xe9.jpg": probe i18n37)
        odd = os.fsdecode(b"back\\slash caf\xe9.jpg")
        Image.open(album / "obama.jpg").save(album / odd, quality=80)  # a photo of its own
        assert index_path(http, "album")["indexed"] == 1
        (album / "obama2.jpg").unlink()  # moved away or deleted, not pruned yet
        page, errors = opened_page(chromium, url)
        page.set_input_files("#file", str(PHOTOS / "queries" / "obama1.jpg"))
        expect(page.locator(".match")).to_have_count(3)
        expect(page.locator(".match .file", has_text="caf")).to_have_text(
            "back\\slash caf\\xe9.jpg")
        gone = page.locator(".match", has_text="obama2.jpg").locator(".gone")
        expect(gone).to_have_text("file gone")
        assert gone.get_attribute("title") == f"{(album / 'obama2.jpg').resolve()} no longer exists"
        expect(page.locator(".match .gone")).to_have_count(1)  # obama.jpg is still there
        assert not errors, errors
        page.context.close()


def test_a_persons_photo_whose_file_is_gone_says_so(chromium: Any, settings: Settings,
                                                    analyzer: FaceAnalyzer, tmp_path: Path
                                                    ) -> None:
    """Probe webpeople42: a person's photo whose files were all gone (`missing: true` in GET
    /api/people/{id}/photos) was fetched all the same (a 404 in the console) and shown as an
    empty pink-outlined box, no word said, named "open obama2.jpg" (README: such a photo shows
    as "file gone" on the web page, as a search's match does). Its face's crop is stored, and
    shows; its name says the file is gone."""
    expect = pytest.importorskip("playwright.sync_api").expect
    with served_album(settings, analyzer, tmp_path) as (url, http, album):
        photos = {Path(p["path"]).name: p["id"] for p in http.get("/api/photos").json()["photos"]}
        faces = {name: [f["id"] for f in http.get(f"/api/photos/{i}").json()["faces"]]
                 for name, i in photos.items()}
        person = http.post("/api/people/name", json={
            "face_ids": faces["obama.jpg"] + faces["obama2.jpg"], "name": "Obama"}).json()
        gone_path = (album / "obama2.jpg").resolve()
        gone_path.unlink()  # moved away or deleted, not pruned yet
        page, errors = opened_page(chromium, f"{url}/#/search")
        asked: list[str] = []
        page.on("request", lambda request: asked.append(request.url)
                if "/image" in request.url else None)
        page.goto(f"{url}/#/people/{person['id']}")
        tiles = page.locator("#person-photos .photo-tile")
        expect(tiles).to_have_count(2)
        gone = tiles.filter(has_text="file gone")
        expect(gone).to_have_count(1)
        expect(gone.locator(".gone")).to_be_visible()
        expect(gone).to_have_attribute("aria-label", "open obama2.jpg, file gone")
        expect(gone).to_have_attribute("title", f"{gone_path} no longer exists")
        expect(gone.locator("img")).to_have_count(0)
        kept = tiles.filter(has_not_text="file gone")
        expect(kept).to_have_attribute("aria-label", "open obama.jpg")
        page.wait_for_function("""() => [...document.querySelectorAll('#person-photos img')]
            .every((i) => i.naturalWidth > 0)""")
        page.wait_for_load_state("networkidle")
        assert [u for u in asked if f"/photos/{photos['obama2.jpg']}/" in u] == [], asked
        assert [u for u in asked if f"/photos/{photos['obama.jpg']}/" in u], asked

        # its face: the crop shows (stored), its name and tooltip say the file is gone
        face = page.locator(f".face-tile[data-face-id='{faces['obama2.jpg'][0]}']")
        expect(face).to_have_attribute(
            "aria-label", f"face {faces['obama2.jpg'][0]} in obama2.jpg, file gone")
        expect(face).to_have_attribute("title", f"{gone_path} no longer exists")
        page.wait_for_function("""() => [...document.querySelectorAll('#person-faces img')]
            .every((i) => i.naturalWidth > 0)""")
        expect(page.locator(f".face-tile[data-face-id='{faces['obama.jpg'][0]}']")
               ).to_have_attribute("aria-label", f"face {faces['obama.jpg'][0]} in obama.jpg")

        # opened, it says what can be said (the photo's boxes need its image)
        gone.click()
        expect(page.locator("#message")).to_contain_text(
            f"Cannot open photo {photos['obama2.jpg']}")
        expect(page.locator("#message code")).to_have_text("pgface index")  # what to run
        assert not errors, errors
        page.context.close()


def test_docs_render_with_the_network_blocked(chromium: Any, settings: Settings,
                                              analyzer: FaceAnalyzer) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    app = create_app(settings, analyzer)
    with running_server(app) as url:
        operations = sum(len(ops) for ops in httpx.get(f"{url}/openapi.json").json()["paths"]
                         .values())
        page = chromium.new_page()
        blocked: list[str] = []

        def offline(route) -> None:  # noqa: ANN001 - Playwright types
            if route.request.url.startswith(url):
                route.continue_()
            else:
                blocked.append(route.request.url)
                route.abort()

        page.route("**/*", offline)
        expect = sync_api.expect
        page.goto(f"{url}/docs")
        expect(page.locator(".opblock")).to_have_count(operations, timeout=60_000)
        expect(page.locator(".opblock-summary-path", has_text="/api/jobs/{job_id}").first
               ).to_be_visible(timeout=60_000)
        assert blocked == []  # Swagger UI asked nothing of the network
        page.goto(f"{url}/redoc")
        expect(page.get_by_text("Index Path", exact=True).first).to_be_attached(timeout=60_000)
        # ReDoc's bundle links its "powered by" logo on its CDN: an image, nothing else.
        assert [u for u in blocked if not u.endswith("/redoc/logo-mini.svg")] == []
        page.context.close()


def test_a_search_shows_every_notice_of_its_answer_until_the_next_search(
        chromium: Any, settings: Settings, analyzer: FaceAnalyzer, tmp_path: Path) -> None:
    """Probe consistency33: a blank photo searched on the page said "No face found in
    white.png." and nothing of why, where the answer's notices (and `pgface search`'s
    `notice:` lines) said nearly every pixel has the same value. Each notice is shown as text:
    the file's name is the user's, never markup."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    from PIL import Image

    blank = tmp_path / "white <b>bold.png"
    Image.new("RGB", (320, 240), "white").save(blank)
    with running_server(create_app(settings, analyzer)) as url, \
            httpx.Client(base_url=url, timeout=120) as http:
        def notices(photo: Path) -> list[str]:
            answer = http.post("/api/search", files={"file": (photo.name, photo.read_bytes())})
            answer.raise_for_status()
            return answer.json()["notices"]

        said = notices(blank)
        assert any("white <b>bold.png: nearly every pixel has the same value" in n
                   for n in said), said
        page, errors = opened_page(chromium, url)
        expect = sync_api.expect
        page.set_input_files("#file", str(blank))
        expect(page.locator(".summary")).to_have_text("No face found in white <b>bold.png.")
        shown = page.locator("#results .notice")
        expect(shown).to_have_count(len(said))
        assert shown.all_inner_texts() == said
        expect(page.locator("#results .notices b")).to_have_count(0)  # text, not markup
        # the next search's answer has its own notices: the blank photo's are gone
        query = require_data(PHOTOS / "queries" / "obama1.jpg")
        page.set_input_files("#file", str(query))
        expect(page.locator(".summary")).to_contain_text("1 face found in obama1.jpg")
        expect(shown).to_have_count(len(notices(query)))
        assert shown.all_inner_texts() == notices(query)
        assert not any("nearly every pixel" in text for text in shown.all_inner_texts())
        assert not errors, errors
        page.context.close()


def test_a_face_below_the_floor_says_its_quality_and_the_floor_as_the_cli_does(
        chromium: Any, settings: Settings, analyzer: FaceAnalyzer, tmp_path: Path) -> None:
    """Probe consistency33: a face of quality 0.0959 under a floor of 0.1 said "not searched:
    quality 0.10 is below the floor" on the page (the score at 2 decimals, the floor unnamed),
    where `pgface search` says "quality 0.096 is below the floor 0.1": the score with as many
    decimals as show it below the floor, up to 4, "just below" when even 4 round to it."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    from PIL import Image

    from pgface.models.quality import below_floor_said

    # A face too small to score 1 whose score 2 decimals round up (0.0959 read "0.10"), and a
    # floor just above it: "below the floor" at 2 decimals was not, and the floor went unsaid.
    small = tmp_path / "small.jpg"
    photo = Image.open(require_data(PHOTOS / "queries" / "obama1.jpg"))
    with Pgface(settings, analyzer=analyzer) as pf:
        for factor in range(8, 16):
            photo.reduce(factor).save(small)
            faces = pf.search(small, min_quality=0).faces
            score = faces[0].quality["score"] if len(faces) == 1 else None
            if score is not None and score < round(score, 2) < 1:
                break
        else:
            pytest.fail("no copy of obama1.jpg has a face whose score 2 decimals round up")
    floor = round(score + 0.00005, 5)
    assert round(score, 2) >= floor
    settings = settings.model_copy(update={"min_quality": floor})
    with running_server(create_app(settings, analyzer)) as url:
        page, errors = opened_page(chromium, url)
        expect = sync_api.expect
        page.set_input_files("#file", str(small))
        expect(page.locator(".face-result")).to_have_count(1)
        expect(page.locator(".face-result .face-head p")).to_have_text(
            f"not searched: {below_floor_said(score, floor)}")
        # the rule's every case, in the CLI's words: a tie rounds as Python does (0.125 at 2
        # decimals is 0.12 there, 0.13 by toFixed), and the floor is written as Python does
        for score, floor in ((0.0959, 0.1), (0.0888, 0.089), (0.0889, 0.0889), (0.42, 0.5),
                             (0.125, 0.126), (0.625, 0.626), (0.99, 1.0), (0.0, 0.00005),
                             (None, 0.1), (0.09995, 0.1)):
            assert page.evaluate("([s, f]) => belowFloorSaid(s, f)", [score, floor]) == \
                below_floor_said(score, floor), (score, floor)
        assert not errors, errors
        page.context.close()
