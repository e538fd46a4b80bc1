// pgface people pages: the grid, a page per person, the review queue. Uses app.js's helpers.
"use strict";

const PEOPLE_PAGE = 60;  // people per request; the grid asks for more when its end comes near
const FACES_PAGE = 60;
const PHOTOS_PAGE = 24;

const people = {
  generation: 0,  // bumped on each reload: answers to an older one are dropped
  next: "",  // the next page's `after` ("" the first page); null at the end
  total: 0,  // the people the grid counts ("N people")
  // the `after` of a page that failed (null: none), `next` null meanwhile: asked again when
  // the grid is shown again (it never was: the rest of the people stayed unloaded for good)
  failedAt: null,
  loading: false,
  selected: new Map(),  // person id -> person, for a merge
  tiles: new Map(),  // person id -> their tile in the grid
  person: null,  // the person whose page is shown
  // the change "Undo last change" takes back while "Recent changes" shows it on top (its id;
  // null: none of those shown can be; undefined: the list not loaded): another client's
  // change since is refused, not undone unseen
  historyTop: undefined,
  personLoad: 0,  // bumped on each person page opened: a late answer for another is dropped
  // faces by place: `next` the `after` of the next page (0: the first), null at the end
  faces: { next: 0, loading: false },
  photos: { next: "", loading: false },  // the `after` of the next page ("": the first)
  chosenFaces: new Set(),  // faces of the shown person, for a split
  review: 0,  // the place in the review queue, counted from its start
  // where to load each place from: the `next_after` of the person before it, once shown (an
  // offset shifted when anyone named, hid or merged a person ahead: Skip passed one over)
  reviewAfter: [null],
  reviewed: null,  // the person the review queue shows
  reviewLoad: 0,  // bumped on each step through the queue, as personLoad
  // the grid drawn: the people's changes it is as of (historyMark), with "show hidden" then,
  // and where it was scrolled to when left: a return to it, nothing changed, keeps it there
  grid: null,
  scroll: 0,
  // the keyboard's places to go back to: the person opened from the grid (Back focuses their
  // tile), the person and the face selected last (Clear focuses their tile)
  opened: null,
  lastSelected: null,
  lastFace: null,
};

const personName = (p) => p.name || `Person ${p.id}`;
const plural = (n, word) => `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;
const peopleCount = (n, adjective = "") =>
  `${n.toLocaleString()} ${adjective}${n === 1 ? "person" : "people"}`;
// The text the grid is narrowed to, "" for everyone: the named people whose name holds it, in
// any case (reaching one of 526 people was scrolling, or their whole name in the address).
const nameFilter = () => $("#people-filter").value.trim();
// Typing narrows the grid once a pause comes, not at every key (a request a letter).
const FILTER_PAUSE_MS = 250;

// Near the end of a list (within NEAR_MARGIN pixels of the view): load its next page.
const NEAR_MARGIN = 300;
const nearEnd = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (!entry.isIntersecting) continue;
    if (entry.target.id === "people-more") loadPeoplePage();
    if (entry.target.id === "faces-more") loadFacesPage();
    if (entry.target.id === "photos-more") loadPhotosPage();
  }
}, { rootMargin: `${NEAR_MARGIN}px` });

// change: the id a write's answer gave (X-Pgface-Change): only that change is undone, and only
// while it is the latest (another client's, or a scheduled clustering, made since is left
// alone, and the server says so); null: whatever change is the latest (the history's button).
// Then the view shown is loaded again, whichever it is (an Undo outlives the view of its
// change: it redrew that view in place of the one shown, and a rename there went to the
// person of the change); a view the undo takes away (the page of a split's new person) gives
// way to the one named for it in `instead` (hash -> hash).
async function undoLast(change = null, instead = {}) {
  try {
    const options = { method: "POST" };
    if (change !== null) options.json = { change_id: change };
    // on a person's page that stays shown, the undo is drawn where the user was (it went
    // back to the page's top and its first 60 faces: probe reprobe36)
    const anchor = faceAnchor();
    const shownPerson = !$("#view-person").hidden && people.person;
    const undone = await getJson("api/people/undo", options);
    showMessage(say`Undone: ${undone.summary}.`, "ok");
    loadStats();
    const view = instead[location.hash];
    if (view) {
      location.hash = view;
    } else if (shownPerson && location.hash === `#/people/${shownPerson.id}`) {
      await showPersonInPlace(shownPerson.id);
      keepAnchor(anchor);
      // the keyboard was on the Undo, gone now: the page's heading, as route() does, without
      // scrolling there
      if (focusLost()) $("#person-title").focus({ preventScroll: true });
    } else {
      route();
    }
  } catch (error) {
    // refused (undone already in another tab, another change since): the view as it is now,
    // then the refusal — it showed the state before the undo
    await viewThenSay(`Undo failed: ${error.message}`);
  }
}

// The view shown loaded again, as it is now, then REFUSAL over it (a new view clears an
// error: said first, it never showed), and the view's own failure to load with it: that came
// after the refusal and replaced it (the person of a split merged away elsewhere: only "no
// person with id 39" was said, probe webpeople30).
async function viewThenSay(refusal) {
  // refused for a change made elsewhere: the header's counts were the ones before it (a
  // hide undone by another client still counted "1 hidden": probe review38)
  loadStats();
  await route();
  const box = $("#message");
  // its words as shown (a command in them as code: its text alone lost that)
  const failure = box.className === "error" && box.firstChild
    ? [...box.firstChild.childNodes] : [];
  const gone = !$("#view-person").hidden && $("#person-title").textContent === "No such person";
  showMessage([].concat(refusal, !failure.length ? []
    : gone ? [". This page's person is gone, merged or deleted by someone else meanwhile (",
      ...failure, ")."]
      : [". ", ...failure]));
}

// A write's answer and the id of the change it recorded (null: it changed nothing).
async function changing(path, options) {
  const response = await api(path, options);
  const change = response.headers.get("X-Pgface-Change");
  return [await response.json(), change === null ? null : Number(change)];
}

// After a change that redraws the view (a merge, a split), the keyboard goes on from its
// message's Undo: the tile or face it was on is gone, and focus fell to the page's start (80
// Tab presses back to the Undo after a merge among 75 people).
function focusMessage() {
  const action = $("#message .message-action");
  if (!action) return;
  // in view (the message is stuck to the window's top): focused where it is; focus's own
  // scrolling moved a person's page drawn again where the user was up by some 380 px (probe
  // peoplepage36). Out of view (a short window, where it is not stuck), scrolled to.
  const box = action.getBoundingClientRect();
  action.focus({ preventScroll: box.top >= 0 && box.bottom <= innerHeight });
}

// The Undo beside a change's message: that change only; none where nothing changed.
const undoOf = (change, instead = {}) =>
  (change === null ? null : { label: "Undo", run: () => undoLast(change, instead) });

// ---------- the grid ----------

function showPeople() {
  // the recent changes, where shown, with the change that led here (a merge, an undo)
  if ($("#history-box").open) loadHistory();
  people.generation += 1;
  const generation = people.generation;
  people.next = "";
  people.failedAt = null;
  people.selected.clear();
  people.tiles.clear();
  updateSelection();
  // the keyboard was on a tile: the grid's heading (focus fell to the page's start)
  const grid = $("#people-grid");
  const focused = grid.contains(document.activeElement);
  grid.replaceChildren();
  if (focused) focusHeading("people");
  // the people's changes first: the grid is as of them, or newer (then loaded again anyway)
  people.grid = null;
  people.loading = true;
  // (its first page awaited where a message must come after it: undoLast)
  return historyMark().then((mark) => {
    if (generation !== people.generation) return null;
    people.grid = { mark, hidden: $("#show-hidden").checked, filter: nameFilter() };
    people.loading = false;
    statsAsOf(mark);
    return loadPeoplePage();
  });
}

// The header's counts as of MARK, the people's changes the grid is loaded as of: asked for
// again where they are not the header's, once the header's load on its way is in. Another
// client's merge, hide or delete loaded the grid again with one person fewer, and the header
// kept the count from the page's load (probe webpeople42); a change made here loads the
// header itself, as of that change (asked for twice, it was not).
async function statsAsOf(mark) {
  if (mark === null) return;  // not known: nothing to compare
  let loading;
  do {
    loading = state.statsLoading;
    await loading;
  } while (loading !== state.statsLoading);
  if (mark !== state.statsMark) loadStats(mark);
}

// The grid shown again (Back from a person's page, the tab): as it was left, at the place it
// was left, when nobody changed anyone since; else loaded again. It was always emptied and
// loaded from its first page, at the top (probe web19: Back lost the place 50 tiles down).
// LOST: the keyboard's place was lost on the way (route): it goes on from the tile opened.
async function returnToPeople(lost = false) {
  const grid = people.grid;
  if (!grid || grid.mark === null || !people.tiles.size ||
      grid.hidden !== $("#show-hidden").checked || grid.filter !== nameFilter()) {
    return showPeople();
  }
  const generation = people.generation;
  scrollTo(0, people.scroll);  // at once: checked below
  const opened = people.tiles.get(people.opened);
  if (lost && opened) {
    opened.focus({ preventScroll: true });  // the place the grid was left stays
    const box = opened.getBoundingClientRect();
    if (box.bottom < 0 || box.top > innerHeight) opened.scrollIntoView({ block: "nearest" });
  }
  const was = grid.mark;
  let unknown = null;  // why the people's changes could not be had
  const mark = await historyMark((error) => { unknown = error; });
  if (generation !== people.generation || $("#view-people").hidden) return;
  if (mark === null) {
    // Not known whether anyone changed (the server away for a moment, its database stopped):
    // the grid is kept, said to be maybe out of date, and its mark kept to compare again
    // next time. It was taken for a change: the grid was emptied, its selection dropped, and
    // the load that followed failed too, leaving nothing to scroll to (probe web56).
    showMessage(`The people shown may be out of date: cannot tell whether anyone changed ` +
      `them meanwhile (${unknown.message}).`);
  } else if (mark !== grid.mark && mark !== was) {
    // as it was (a change of this tab's drawn meanwhile, gridEdited, moved the mark on)
    return showPeople();
  }
  // What failed while the server could not be reached is asked again now the grid is shown
  // again (the page of people after the one failed, the crops marked missing): the grid kept,
  // the rest of the people were never loaded and those crops stayed grey (probe webpeople23).
  showMissingAgain($("#people-grid"));
  if (people.failedAt !== null && !people.loading) {
    people.next = people.failedAt;
    people.failedAt = null;
    const more = $("#people-more");
    nearEnd.unobserve(more);
    nearEnd.observe(more);  // in view: loaded at once
  }
  if ($("#history-box").open) loadHistory();
}

// A rename or hide made in this tab (PERSON as it is now, CHANGE its id): when nothing else
// changed since the grid was drawn, that person's tile is redrawn in place at once, the grid
// kept where it was left (it was loaded again from its start, probe webscale20), whether the
// grid is shown or not. It waited for the next return to the grid: an answer that came after
// Back (a slow network) left the grid as before the change for that visit, the person hidden
// still there to select and merge (probe webpeople30). Else the grid is loaded again, at once
// where it is shown: so too for a person with no tile in it (on a page not loaded yet, or
// hidden), who cannot be redrawn in place: a person named before their tile loaded sorted
// before the pages still to load and never came, and one hidden then shown again on their
// page was left out, the count one short (probe webphone).
async function gridEdited(person, change) {
  const grid = people.grid;
  if (!grid || change === null) return;  // loading (as of the change, or newer), or no change
  // (a grid of people found by part of a name is loaded again: a rename may take them out)
  if (!grid.filter && people.tiles.has(person.id)) {
    const before = grid.mark;
    const mark = await markAfter(before, change);
    if (people.grid !== grid) return;  // loaded again meanwhile
    if (mark !== null && grid.mark === before) {
      grid.mark = mark;
      editTile({ ...person });
      return;
    }
  }
  grid.mark = null;  // (at once: Back may come before the change's mark is known)
  if (!$("#view-people").hidden) showPeople();
}

// PERSON's tile as they are now. The selection keeps each person as they are now (a merge
// sent the name they had, and was refused as "renamed by someone else meanwhile"; the redrawn
// tile lost its tick), and a person hidden leaves it, and the count (they stayed selected,
// and were merged, unseen).
function editTile(person) {
  const tile = people.tiles.get(person.id);
  if (!tile) return;
  if (person.hidden && !people.grid.hidden) {
    tile.remove();
    people.tiles.delete(person.id);
    people.selected.delete(person.id);
    people.total -= 1;
    $("#people-count").textContent = peopleCount(people.total);
  } else {
    const redrawn = personTile(person);
    const focused = tile === document.activeElement;
    tile.replaceWith(redrawn);
    if (focused) redrawn.focus({ preventScroll: true });  // the keyboard's place stays
    people.tiles.set(person.id, redrawn);
    if (people.selected.has(person.id)) people.selected.set(person.id, person);
  }
  updateSelection([person.id], false);
}

async function loadPeoplePage() {
  if (people.loading || people.next === null) return;
  people.loading = true;
  const generation = people.generation;
  const first = !people.next;
  const after = people.next;
  // By place, not offset: someone named or merged meanwhile (in another tab, by another
  // user) moves only themselves, where an offset shifted the rest (a tile twice, one never).
  const params = new URLSearchParams({ unnamed: "true", hidden: $("#show-hidden").checked,
    limit: PEOPLE_PAGE });
  const filter = people.grid ? people.grid.filter : nameFilter();
  if (filter) params.set("name_has", filter);
  if (people.next) params.set("after", people.next);
  try {
    const page = await getJson(`api/people?${params}`);
    if (generation !== people.generation) return;
    people.next = page.next_after;
    people.total = page.total;
    $("#people-count").textContent = peopleCount(page.total) +
      (filter ? ` with “${filter}” in their name` : "");
    // A person whose faces changed meanwhile can come again further down: shown once.
    const added = page.people.filter((p) => !people.tiles.has(p.id)).map((p) => {
      const tile = personTile(p);
      people.tiles.set(p.id, tile);
      return tile;
    });
    $("#people-grid").append(...added);
    if (!page.total) {
      // nobody shown, yet people hidden: said so ("No people yet" sent the user to name again)
      let hidden = 0;
      if (!$("#show-hidden").checked) {
        const all = new URLSearchParams({ unnamed: "true", hidden: "true", limit: 1 });
        if (filter) all.set("name_has", filter);
        hidden = (await getJson(`api/people?${all}`)).total;
        if (generation !== people.generation) return;
      }
      let text = hidden
        ? `Everyone is hidden (${peopleCount(hidden)}): tick "show hidden" to see them.`
        : "No people yet: name faces in search results, or group unnamed faces into people.";
      if (filter) {
        text = hidden ? `Only hidden people have “${filter}” in their name ` +
          `(${peopleCount(hidden)}): tick "show hidden" to see them.`
          : `Nobody's name has “${filter}” in it (unnamed people have no name to find).`;
      }
      $("#people-grid").append(el("p", { class: "muted", text }));
    }
  } catch (error) {
    showMessage(`Cannot list people: ${error.message}`);
    // Not asked again until the grid is opened again: in view, its end asked 50 times a second.
    if (generation === people.generation) [people.next, people.failedAt] = [null, after];
    // an empty grid under the count of an earlier listing said there were people to show
    if (generation === people.generation && first) $("#people-count").textContent = "";
  } finally {
    if (generation === people.generation) people.loading = false;
  }
  // The sentinel may still be in view after a short page: look again.
  const more = $("#people-more");
  nearEnd.unobserve(more);
  if (people.next !== null) nearEnd.observe(more);
}

function personTile(person) {
  const label = `${personName(person)}, ${plural(person.faces, "face")}` +
    (person.hidden ? ", hidden" : "");
  // The tick a click selects with, drawn only: the tile is the one control. A checkbox in it
  // (a control inside the tile's button, probe web56) was offered to a screen reader or not,
  // as it pleased; the selection is said in the tile's name and the status region.
  const check = el("span", { class: "tile-check writes", "aria-hidden": "true" });
  // a button (it opens, and selects): it was a list item, which a screen reader does not
  // offer to press; how it selects is its description (the hint above the grid)
  const tile = el("div", {
    class: `person-tile${person.hidden ? " hidden-person" : ""}`, role: "button",
    tabindex: "0", "aria-label": label, "data-label": label, "data-person-id": person.id,
    "aria-describedby": "people-hint",
  }, [
    el("span", { class: "thumb" }, [person.cover_url ? lazyImage(person.cover_url) : null]),
    check,
    el("span", { class: `tile-name${person.name ? "" : " muted"}`, text: personName(person),
      title: personName(person), dir: "auto" }),
    el("span", { class: "tile-count muted", text: plural(person.faces, "face") }),
  ]);
  // A key that may only read selects nobody: there is no merge to select for (a tile was
  // ticked, "1 selected", and no Merge offered: probe operator35); Space opens, as Enter.
  const toggle = () => {
    if (readOnly()) return;
    if (people.selected.has(person.id)) people.selected.delete(person.id);
    else people.selected.set(person.id, person);
    if (people.selected.has(person.id)) people.lastSelected = person.id;
    updateSelection([person.id]);
  };
  const open = () => {
    people.opened = person.id;
    location.hash = `#/people/${person.id}`;
  };
  check.addEventListener("click", (event) => { event.stopPropagation(); toggle(); });
  // Once something is selected a click selects too, as in photo apps; Enter always opens.
  tile.addEventListener("click", () => {
    if (people.selected.size && !readOnly()) toggle(); else open();
  });
  tile.addEventListener("keydown", (event) => {
    if (event.target !== tile) return;
    if (event.key === "Enter") open();
    else if (event.key === " ") { event.preventDefault(); if (readOnly()) open(); else toggle(); }
    // M merges the people selected, from the tile the keyboard is on: Merge... sits above
    // the grid, 58 Shift+Tab presses back from the 56th tile (probe webphone)
    else if (event.key.toLowerCase() === "m" && !event.ctrlKey && !event.metaKey &&
             !event.altKey && people.selected.size > 1 && !readOnly()) {
      event.preventDefault();
      askMerge();
    }
  });
  return tile;
}

// ids: the people whose selection changed; only their tiles are drawn again (every tile was:
// 172 ms a click at 3,000 tiles). said: the count said to a screen reader (not for tiles
// redrawn).
function updateSelection(ids = [], said = ids.length > 0) {
  for (const id of ids) {
    const tile = people.tiles.get(id);
    if (!tile) continue;
    const chosen = people.selected.has(id);
    tile.classList.toggle("selected", chosen);
    // said in its name: aria-selected belongs to options and grid cells, not buttons (nor
    // the list items the tiles were), and screen readers ignored it here
    const label = tile.dataset.label + (chosen ? ", selected" : "");
    if (tile.getAttribute("aria-label") !== label) tile.setAttribute("aria-label", label);
  }
  const count = people.selected.size;
  $("#selection-bar").hidden = !count;
  $("#selection-count").textContent = `${count} selected`;
  $("#merge-selected").disabled = count < 2;
  // a change of the selection (not the grid drawn again) said to a screen reader too
  if (said) announce(count > 1 ? `${count} selected: M merges them` :
    count ? `${count} selected` : "Selection cleared");
}

// The merge: the selected people's faces in a dialog, the name kept chosen there, then Undo.
async function askMerge() {
  const chosen = [...people.selected.values()];
  if (chosen.length < 2) return;
  // The merged person is the named one with the most faces (else the one with most faces).
  const target = [...chosen].sort((a, b) =>
    (b.name !== null) - (a.name !== null) || b.faces - a.faces)[0];
  const names = [...new Set(chosen.filter((p) => p.name).map((p) => p.name))];
  const rows = await Promise.all(chosen.map(async (person) => {
    let faces = [];
    try {
      faces = (await getJson(`api/people/${person.id}/faces?limit=6`)).faces;
    } catch (_) { /* the dialog still names them */ }
    // the name isolated from the count: "· 6 faces" after a right-to-left name read "faces 6"
    return el("li", { class: "merge-person" }, [
      el("strong", {}, [el("bdi", { text: personName(person) }),
        ` · ${plural(person.faces, "face")}`]),
      el("div", { class: "merge-faces" }, faces.map((f) => faceImage(f.crop_url))),
    ]);
  }));
  $("#merge-list").replaceChildren(...rows);
  const choice = $("#merge-names");
  choice.replaceChildren(...(names.length > 1 ? [
    el("legend", { text: "They have different names: the merged person is called" }),
    ...names.map((name, i) => el("label", {}, [
      el("input", { type: "radio", name: "merge-name", value: name, checked: i === 0 ? "" : null }),
      " ", el("bdi", { text: name }),
    ])),
  ] : []));
  choice.hidden = names.length < 2;
  $("#merge-text").textContent = `Merge ${peopleCount(chosen.length)} ` +
    `into one${names.length === 1 ? `, ${names[0]}` : ""}? Their faces become one person's.`;
  const dialog = $("#merge-dialog");
  dialog.returnValue = "";
  dialog.showModal();
  $("#merge-confirm").focus();
  dialog.onclose = async () => {
    if (dialog.returnValue !== "merge") return;
    // someone in it renamed or hidden on their page while the dialog was open (that answer
    // came late): not as the dialog showed them (the person hidden was merged, unseen)
    const changed = chosen.filter((p) => people.selected.get(p.id) !== p);
    if (changed.length) {
      showMessage([...say`Not merged: ${sayList(changed.map(personName))} changed meanwhile.`,
        " Select them again from the grid as it is now."]);
      return;
    }
    const picked = choice.querySelector("input:checked");
    // the names shown: one renamed by someone else meanwhile refuses the merge (the name
    // picked here put back the one they had just changed)
    const body = { source: chosen.filter((p) => p.id !== target.id).map((p) => p.id),
      target: target.id,
      expected_names: chosen.map((p) => ({ person_id: p.id, name: p.name })) };
    if (picked) body.name = picked.value;
    try {
      const [merged, change] = await changing("api/people/merge", { method: "POST", json: body });
      loadStats();
      showPeople();
      // hidden meanwhile (by another client): the merged faces leave the grid with them
      showMessage([...say`Merged into ${personName(merged)}: ${plural(merged.faces, "face")}.`,
        ...hiddenNote(merged)], "ok", undoOf(change));
      focusMessage();
    } catch (error) {
      if (error.status === 409 && error.details.renamed) {
        showMessage([...say`Not merged: ${renamedText(error.details.renamed)}.`,
          " Select them again from the grid as it is now."]);
        showPeople();
        return;
      }
      if (error.status === 409 && error.details.names) {
        // named by someone else since the grid loaded: the dialog could not ask which name
        // stays (the server's words are for the command line and the API)
        showMessage(say`Not merged: they have different names now (${sayList(error.details.names
          .filter((n) => n))}). Select them again to choose the name to keep.`);
        showPeople();
        return;
      }
      if (error.status === 404) {
        // merged into someone else or deleted since the grid loaded: the grid again (the
        // bare "no person with id 3" left the one gone selected, the grid as it was)
        showMessage("Not merged: one of them was merged or deleted by someone else " +
          "meanwhile. Select them again from the grid as it is now.");
        showPeople();  // the selection cleared too
        return;
      }
      showMessage(`Merge failed: ${error.message}`);
    }
  };
}

async function cluster() {
  try {
    const report = await getJson("api/people/cluster", { method: "POST", json: {} });
    showMessage(`${peopleCount(report.founded, "new ")}, ${plural(report.joined, "face")} ` +
      `joined existing people, ${plural(report.unassigned, "face")} left alone.`, "ok");
    loadStats();  // the people founded, in the header too
    showPeople();
  } catch (error) {
    showMessage(`Grouping failed: ${error.message}`);
  }
}

async function loadHistory() {
  people.historyTop = undefined;
  try {
    const { changes } = await getJson("api/people/history?limit=8");
    // the latest not undone, the indexer's `keep` passed over, as the server's undo does
    const top = changes.find((c) => !c.undone_at && c.kind !== "keep");
    people.historyTop = top ? top.id : null;
    $("#history").replaceChildren(...changes.map((c) => el("li", {
      class: c.undone_at ? "undone" : "", dir: "auto",
      text: `${new Date(c.at).toLocaleString()} · ${c.actor} · ${c.summary}` +
        (c.undone_at ? ` (undone by ${c.undone_by})` : ""),
    })));
  } catch (error) {
    $("#history").replaceChildren(el("li", { class: "muted" }, withCode(error.message)));
  }
}

// ---------- a person's page ----------

// ref: the person part of the page's link as written there, an id or a name (a link typed or
// shared by name).
async function showPerson(ref) {
  const load = ++people.personLoad;
  // Nobody to act on until this person is loaded: renaming on a "No such person" page renamed
  // the person shown before it.
  people.person = null;
  clearPersonHead("");
  people.chosenFaces.clear();
  people.faces = { next: 0, loading: false };
  people.photos = { next: "", loading: false };
  $("#person-faces").replaceChildren();
  $("#person-photos").replaceChildren();
  $("#faces-end").hidden = true;
  updateFaceChoice();
  let id = ref;
  try {
    id = decodeURIComponent(ref);
  } catch (_) {
    clearPersonHead("No such person");
    showMessage(`Cannot open person ${ref}: the link is cut short or garbled`);
    return;
  }
  try {
    const person = await findPerson(id);
    // another person's page was opened meanwhile: this answer came late, and is not shown
    // (it replaced that page, and a name typed there went to this person)
    if (load !== people.personLoad) return;
    // opened by name: the link names the id from here on (renamed, the name led nowhere)
    if (String(person.id) !== id) history.replaceState(null, "", `#/people/${person.id}`);
    people.person = person;
    renderPersonHead(person);
    await loadFacesPage();
    await loadPhotosPage();
  } catch (error) {
    if (load !== people.personLoad) return;
    clearPersonHead(error.status === 404 ? "No such person" : "Cannot open this person");
    showMessage(say`Cannot open person ${id}: ${error.message}`);
  }
}

// The person's page drawn again after a change made on it (faces taken away, split off,
// moved into someone, undone), as many faces loaded as were shown; keepAnchor then puts the
// face the user was looking at back where it was. It was drawn from its first page at its
// top: cleaning a person of 110 faces took a scroll back and "More faces" after each
// correction, and an Undo lost the place and the faces loaded (probes peoplepage36,
// reprobe36).
async function showPersonInPlace(id) {
  const tiles = () => document.querySelectorAll("#person-faces .face-tile").length;
  const shown = tiles();
  await showPerson(id);
  for (let waits = 0; people.person && people.faces.next !== null && tiles() < shown;) {
    if (people.faces.loading) {  // a page the view asked for itself: its answer first
      if (++waits > 200) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
      continue;
    }
    const before = tiles();
    await loadFacesPage();
    if (tiles() === before && !people.faces.loading) break;  // failed: said by it
  }
}

// The first face of a person's page whose top is in the window, of those a change leaves
// there (not LEAVING's ids), and where: what keepAnchor puts back. null: none in view.
function faceAnchor(leaving = []) {
  if ($("#view-person").hidden) return null;
  for (const tile of document.querySelectorAll("#person-faces .face-tile")) {
    if (leaving.includes(Number(tile.dataset.faceId))) continue;
    const top = tile.getBoundingClientRect().top;
    if (top >= 0 && top < innerHeight) return { id: tile.dataset.faceId, top };
  }
  return null;
}

// The page scrolled so that ANCHOR's face is where it was in the window (once the page is
// drawn again and its message shown: the bars and message above it move the page).
function keepAnchor(anchor) {
  if (!anchor) return;
  const tile = document.querySelector(`#person-faces .face-tile[data-face-id="${anchor.id}"]`);
  if (tile) window.scrollBy(0, tile.getBoundingClientRect().top - anchor.top);
}

// A person by id, or by name through the list's lookup: /api/people/<name> cannot reach a
// name that is a word of that path (`review`, `history`: the page showed the review queue's
// list as a person, and failed on it) or holds a `/`.
async function findPerson(id) {
  if (/^\d+$/.test(id)) return getJson(`api/people/${id}`);
  const found = await getJson(`api/people?${new URLSearchParams({ name: id })}`);
  if (found.people.length) return found.people[0];
  const error = new Error(`no person is named ${id}`);
  error.status = 404;
  throw error;
}

function clearPersonHead(title) {
  $("#person-title").textContent = title;
  $("#person-summary").textContent = "";
  $("#person-cover").replaceChildren();
  $("#person-name").value = "";
  $("#rename-form").hidden = true;
}

function renderPersonHead(person) {
  $("#rename-form").hidden = false;
  if (!$("#view-person").hidden) document.title = `${personName(person)} · pgface`;
  $("#person-title").textContent = personName(person);
  $("#person-summary").textContent = `${plural(person.faces, "face")} in ` +
    `${plural(person.photos, "photo")}${person.hidden ? " · hidden" : ""}`;
  $("#person-cover").replaceChildren(person.cover_url ? faceImage(person.cover_url) : "");
  $("#person-name").value = person.name || "";
  $("#person-hide").textContent = person.hidden ? "Unhide" : "Hide";
}

async function loadFacesPage() {
  const state = people.faces;
  const person = people.person;
  if (!person || state.loading || state.next === null) return;
  state.loading = true;
  try {
    // By place (the last face's id), not offset: a face split off elsewhere meanwhile shifted
    // the rest, one never shown while the page said "All N faces" (probe webpeople23).
    const page = await getJson(`${person.faces_url}?limit=${FACES_PAGE}&after=${state.next}`);
    if (person !== people.person) return;
    state.next = page.next_after;
    $("#person-faces").append(...page.faces.map(faceTile));
    // How many are left, and a button for the next page: the faces' end sits above the
    // photos, and scrolled past it to them the faces stopped loading without a word (a
    // person of 200,000 faces seemed to have 120).
    const shown = document.querySelectorAll("#person-faces .face-tile").length;
    $("#faces-shown").textContent = state.next === null ? `All ${plural(page.total, "face")}.`
      : `${shown.toLocaleString()} of ${plural(page.total, "face")} shown.`;
    $("#faces-more-button").hidden = state.next === null;
    $("#faces-end").hidden = page.total <= FACES_PAGE;
  } catch (error) {
    showMessage(`Cannot list faces: ${error.message}`);
    if (person === people.person) state.next = null;  // until the page is opened again
    if (person === people.person) $("#faces-more-button").hidden = true;
  } finally {
    state.loading = false;
  }
  if (person !== people.person) return;
  const more = $("#faces-more");
  nearEnd.unobserve(more);
  if (state.next === null) return;
  nearEnd.observe(more);
  // Still near the view after this page (the view held on the photos below while the faces
  // grew above them): the next page, without waiting for the sentinel to come in again.
  if (nearView(more)) loadFacesPage();
}

// Whether an element is within the nearEnd observer's margin of the view.
function nearView(node) {
  const box = node.getBoundingClientRect();
  return box.bottom >= -NEAR_MARGIN && box.top <= innerHeight + NEAR_MARGIN &&
    !$("#view-person").hidden;
}

// A face: selected for a split; for a key that may only read, its photo opened (it was
// ticked, "1 face selected", and no split offered: probe operator35).
function faceTile(face) {
  const tile = el("button", {
    type: "button", class: "face-tile", "aria-pressed": readOnly() ? null : "false",
    "data-face-id": face.face_id,
    // its crop is stored, and shows; the photo's file gone is said where its name is
    "aria-label": `face ${face.face_id} in ${fileName(face.path)}` +
      (face.missing ? ", file gone" : ""),
    title: face.missing ? `${face.path} no longer exists` : fileName(face.path),
    onclick: () => {
      if (readOnly()) {
        openPhoto(face.photo_id, face.face_id);
        return;
      }
      if (people.chosenFaces.has(face.face_id)) people.chosenFaces.delete(face.face_id);
      else people.chosenFaces.add(face.face_id);
      if (people.chosenFaces.has(face.face_id)) people.lastFace = face.face_id;
      updateFaceChoice();
      announce(people.chosenFaces.size ? $("#split-count").textContent : "Selection cleared");
    },
  }, [lazyImage(face.crop_url)]);
  return tile;
}

function updateFaceChoice() {
  for (const tile of document.querySelectorAll(".face-tile")) {
    const chosen = people.chosenFaces.has(Number(tile.dataset.faceId));
    // not a toggle for a key that may only read (a tile drawn before its scopes were known)
    if (readOnly()) tile.removeAttribute("aria-pressed");
    else tile.setAttribute("aria-pressed", chosen);
    tile.classList.toggle("selected", chosen);
  }
  const count = people.chosenFaces.size;
  $("#split-form").hidden = !count;
  $("#split-count").textContent = `${plural(count, "face")} selected`;
}

// A key that may only read given (app.js start): the people and faces selected with the key
// before it are let go, their ticks and counts with them.
function dropSelections() {
  const ids = [...people.selected.keys()];
  const any = ids.length || people.chosenFaces.size;
  people.selected.clear();
  updateSelection(ids, false);
  people.chosenFaces.clear();
  updateFaceChoice();
  // the live region's count went with them (it kept "2 selected": probe reprobe37)
  if (any) announce("Selection cleared");
}

async function loadPhotosPage() {
  const state = people.photos;
  const person = people.person;
  if (!person || state.loading || state.next === null) return;
  state.loading = true;
  try {
    // By place too: a photo indexed with the person meanwhile, or one taken from them,
    // shifted an offset's pages (one photo twice, another never)
    const params = new URLSearchParams({ limit: PHOTOS_PAGE });
    if (state.next) params.set("after", state.next);
    const page = await getJson(`${person.photos_url}?${params}`);
    if (person !== people.person) return;
    state.next = page.next_after;
    $("#person-photos").append(...page.photos.map(photoTile));
  } catch (error) {
    showMessage(`Cannot list photos: ${error.message}`);
    if (person === people.person) state.next = null;  // until the page is opened again
  } finally {
    state.loading = false;
  }
  const more = $("#photos-more");
  nearEnd.unobserve(more);
  if (state.next !== null) nearEnd.observe(more);
}

// A photo of the person's page, opened by a click. One whose files are all gone (`missing`)
// says "file gone", as a search's match does, its path in its tooltip, and its image is not
// asked for: it was, a 404 each, and showed an empty outlined box named "open X.jpg".
function photoTile(photo) {
  const name = fileName(photo.path);
  return el("button", {
    type: "button", class: `photo-tile${photo.missing ? " photo-gone" : ""}`,
    "aria-label": `open ${name}${photo.missing ? ", file gone" : ""}`,
    title: photo.missing ? `${photo.path} no longer exists` : name,
    onclick: () => openPhoto(photo.photo_id, photo.face_ids[0]),
  }, photo.missing ? [el("span", { class: "gone", text: "file gone" }),
    el("span", { class: "file muted", text: name, dir: "auto" })]
    : [lazyImage(`${photo.image_url}?display=true&side=480`, "photo-thumb")]);
}

async function renamePerson(event) {
  event.preventDefault();
  const person = people.person;
  if (!person) return;
  const before = personName(person);  // the object is updated in place below
  await once($("#rename-form"), async () => {
    try {
      // the name this page shows: renamed by someone else meanwhile, the server refuses
      // (this page overwrote their rename, and said the stale name was the old one)
      const [renamed, change] = await changing(`api/people/${person.id}`, {
        method: "PATCH", json: { name: $("#person-name").value, expected_name: person.name },
      });
      const stale = facesChangedElsewhere(person, renamed);
      if (person === people.person) {
        // in place: a new object made the faces and photos on their way (person !== shown)
        // dropped, and their grids stayed empty for good
        Object.assign(person, renamed);
        renderPersonHead(person);
      }
      gridEdited(renamed, change);
      if (stale) await route();
      // the same name again changes nothing: no Undo, which would take back an earlier change
      showMessage([...(change === null ? say`${renamed.name}: the name is unchanged.`
        : say`${before} is now ${renamed.name}.`), ...(stale || [])], "ok", undoOf(change));
    } catch (error) {
      // the page again, with the name the person has now
      if (renamedMeanwhile(error, person, () => { if (person === people.person) route(); })) {
        return;
      }
      if (await refusedMeanwhile(error, person, "Renaming failed")) return;
      offerMerge(error, person, "Renaming failed", true);  // this page has no merge of its own
    }
  });
}

// Where the faces of PERSON, as this page shows them, are not those of ANSWER (the person as a
// rename's or a hide's answer has them): the words saying so, else null. Faces split off in
// another tab stayed on this page's grids under the new name, nothing said (probe review38);
// the caller loads the page again.
function facesChangedElsewhere(person, answer) {
  if (person !== people.person || (person.faces === answer.faces
      && person.photos === answer.photos)) return null;
  return [` Their faces changed elsewhere meanwhile (${plural(person.faces, "face")} shown, ` +
    `${plural(answer.faces, "face")} now): the page shows them as they are now.`];
}

// A rename refused because the person's name changed since the page showed it: shows the
// person again (`again`, before the message: a new view clears an error) and says so, with
// the name they have now; true where it was that.
function renamedMeanwhile(error, person, again) {
  const current = error.status === 409 && error.details.current;
  if (!current) return false;
  again();
  showMessage(say`Not renamed: someone else renamed ${personName(person)} to ${personName(
    { id: current.person_id, name: current.name })} meanwhile.`);
  return true;
}

// A name refused because someone has it: most likely the same person, found twice ("this is
// Grandma too"), so the merge into them is offered (a bare refusal told to merge); any other
// refusal is said as it is. toMerged: the merged person's page is shown after the merge.
function offerMerge(error, person, failed, toMerged, before = () => {}) {
  const existing = error.status === 409 && error.details.existing;
  if (!existing) {
    showMessage(`${failed}: ${error.message}`);
    return;
  }
  showMessage(say`${existing.name} exists already.`, "error", {
    label: say`Merge into ${existing.name}`,
    run: () => {
      before();
      mergeInto(person, existing, toMerged ? `#/people/${existing.person_id}` : null);
    },
  });
}

// PERSON's faces go to EXISTING ({person_id, name}, a 409's `existing`); then the page at
// `hash` (the merged person's), or the same view again.
async function mergeInto(person, existing, hash = null) {
  try {
    const [merged, change] = await changing("api/people/merge",
      // the name asked for, which a named person would otherwise be asked to choose
      { method: "POST", json: { source: person.id, target: existing.person_id,
        name: existing.name, expected_names: [{ person_id: person.id, name: person.name },
          existing] } });
    const back = `#/people/${person.id}`;
    loadStats();  // one person fewer in the header (it said the count before the merge)
    // into a hidden person (a name refused as a hidden person's): their faces leave the grid
    // with them, which the grid's own merge said and this did not (probe naming45)
    showMessage([...say`Merged into ${personName(merged)}: ${plural(merged.faces, "face")}.`,
      ...hiddenNote(merged)], "ok", undoOf(change, hash ? { [hash]: back } : {}));
    if (hash && location.hash !== hash) location.hash = hash; else route();
  } catch (error) {
    // the view again, with the names as they are now, then why
    await viewThenSay(error.status === 409 && error.details.renamed
      ? say`Not merged: ${renamedText(error.details.renamed)}.` : `Merge failed: ${error.message}`);
    focusMessage();
  }
}

// An action on a person's page refused because another client changed that person since
// the page showed them (merged or deleted: 404; their faces split off: a 409 without a choice
// to offer): the page again, as it is now, then the refusal over it (the page kept the faces,
// the selection and the controls of a person gone, and said only "no person with id 1").
// True where it was that.
async function refusedMeanwhile(error, person, failed) {
  // A clustering run holding the people changed nothing of anyone's: said as it is by the
  // caller, the faces kept selected for the try again it asks for (they were dropped, and
  // the page said "changed by someone else meanwhile": probe concurrent61).
  if (error.details.code === "people_busy") return false;
  const stale = error.status === 404 || (error.status === 409 && !error.details.existing &&
    !error.details.current && !error.details.affected);
  if (!stale) return false;
  if (person === people.person) await showPerson(person.id);
  // a 404 names what is gone: a face (its photo forgotten by an index --prune, or the face
  // deleted) is not its person, who was said to be "merged or deleted" while still there
  const faceGone = error.status === 404 && error.details.missing === "face";
  showMessage(faceGone
    ? `${failed}: ${error.message}: gone meanwhile (its photo forgotten or the face ` +
      "deleted); the page is shown as it is now."
    : error.status === 404
      ? say`${failed}: ${personName(person)} was merged or deleted by someone else meanwhile.`
      : `${failed}: ${error.message} (changed by someone else meanwhile: shown as it is now).`);
  return true;
}

// A merge's 409 `renamed` ([{person_id, name}]: their names now) in words (say's).
function renamedText(renamed) {
  return say`renamed by someone else meanwhile (now ${sayList(renamed.map((p) =>
    p.name === null ? `Person ${p.person_id}, unnamed` : p.name))})`;
}

// A person shown after a change who is hidden, said (say's words): else their faces seem to
// vanish with them.
const hiddenNote = (person) => (!person.hidden ? [] : [
  ...say` ${personName(person)} is hidden from the people page`,
  " (Unhide on their page shows them again)."]);

async function toggleHidden() {
  const person = people.person;
  if (!person) return;
  const verb = person.hidden ? "unhide" : "hide";
  // the rename form's turn too (the button is in it): a rename and a hide at once drew
  // whichever answered first, and dropped the other
  await once($("#rename-form"), async () => {
    try {
      const [changed, change] = await changing(`api/people/${person.id}/${verb}`,
        { method: "POST" });
      const stale = facesChangedElsewhere(person, changed);
      if (person === people.person) {
        Object.assign(person, changed);  // in place, as a rename's answer
        renderPersonHead(person);
      }
      gridEdited(changed, change);
      loadStats();  // the header counts hidden people apart
      if (stale) await route();
      showMessage([...(changed.hidden ? say`${personName(changed)} is hidden from the people page.`
        : say`${personName(changed)} is shown again.`), ...(stale || [])], "ok", undoOf(change));
    } catch (error) {
      const failed = `${person.hidden ? "Unhiding" : "Hiding"} failed`;
      if (!await refusedMeanwhile(error, person, failed)) showMessage(`${failed}: ${error.message}`);
    }
  });
}

async function splitFaces(event) {
  event.preventDefault();
  const person = people.person;
  if (!person) return;
  const name = $("#split-name").value.trim();
  const body = { face_ids: [...people.chosenFaces] };
  if (name) body.name = name;
  const view = location.hash;
  const anchor = faceAnchor(body.face_ids);
  await once($("#split-form"), async () => {
    try {
      const [created, change] = await changing(`api/people/${person.id}/split`,
        { method: "POST", json: body });
      $("#split-name").value = "";
      loadStats();
      // Every face moved: the person is no more, and their page ("No such person") led
      // nowhere; the new person's page is shown instead. Undone there, the page goes back.
      const from = `#/people/${person.id}`;
      const to = `#/people/${created.id}`;
      const here = location.hash === view;  // another view opened meanwhile stays
      const emptied = here && await leftWithNoFace(person, body.face_ids.length);
      if (emptied) location.hash = to;  // route() keeps "ok"
      else if (here) await showPersonInPlace(person.id);
      showMessage(say`Moved ${plural(body.face_ids.length, "face")} to ${personName(created)}.`,
        "ok", undoOf(change, { [to]: from }));
      focusMessage();
      if (here && !emptied) keepAnchor(anchor);
    } catch (error) {
      if (error.status === 409 && error.details.existing) {
        offerMove(person, body.face_ids, error.details.existing, view);
        return;
      }
      if (!await refusedMeanwhile(error, person, "Split failed")) {
        showMessage(`Split failed: ${error.message}`);
      }
    }
  });
}

// Whether PERSON has no face left after a change took MOVED of theirs. The count the page
// loaded may be more than they had now (faces taken from them elsewhere meanwhile): a split of
// every face left stayed on their page, "No such person" for an unnamed one (probe web39).
async function leftWithNoFace(person, moved) {
  if (moved >= person.faces) return true;
  try {
    return (await (await api(`api/people/${person.id}`)).json()).faces === 0;
  } catch (error) {
    return error.status === 404;  // gone (another error: the page drawn again says it)
  }
}

// The faces selected are not this person, nor anyone known: nobody's (a split made them one
// more unnamed person in the review queue each time, probe web56), with Undo. An unnamed
// person left with no face is gone: the grid is shown instead (their page said "No such
// person"); Undo brings them back.
async function removeFaces() {
  const person = people.person;
  if (!person || !people.chosenFaces.size) return;
  const faceIds = [...people.chosenFaces];
  const view = location.hash;
  const anchor = faceAnchor(faceIds);
  await once($("#split-form"), async () => {
    try {
      const [removed, change] = await changing(`api/people/${person.id}/remove`,
        { method: "POST", json: { face_ids: faceIds } });
      loadStats();
      const here = location.hash === view;  // another view opened meanwhile stays
      if (here && !removed.person) location.hash = "#/people";  // route() keeps "ok"
      else if (here) await showPersonInPlace(person.id);
      const taken = plural(faceIds.length, "face");
      showMessage(say`${taken} taken from ${personName(person)}: nobody's now.`, "ok",
        undoOf(change));
      focusMessage();
      if (here && removed.person) keepAnchor(anchor);
    } catch (error) {
      if (!await refusedMeanwhile(error, person, "Not taken away")) {
        showMessage(`Not taken away: ${error.message}`);
      }
    }
  });
}

// Faces to split off named as someone is already called (EXISTING, the 409's `existing`):
// most likely theirs, so the move into them is offered; the faces stay selected (this said
// "changed by someone else meanwhile", which nobody had, and dropped them: probe web19).
function offerMove(person, faceIds, existing, view) {
  if (existing.person_id === person.id) {
    showMessage([...say`${existing.name} is this person's name:`,
      " give the new person another name, or none."]);
    return;
  }
  showMessage(say`${existing.name} exists already.`, "error", {
    label: say`Move ${plural(faceIds.length, "face")} into ${existing.name}`,
    run: () => once($("#split-form"), () => moveInto(person, faceIds, existing, view)),
  });
}

// FACEIDS of PERSON named into EXISTING ({person_id, name}) in one change: the faces taken
// from PERSON only (another client's move of them meanwhile is refused, with `affected`).
async function moveInto(person, faceIds, existing, view) {
  const anchor = faceAnchor(faceIds);
  try {
    // the person offered, by id: renamed or merged meanwhile, the name reached someone
    // else or nobody, and a new person of these faces alone was made (probe concurrent61)
    const [named, change] = await changing("api/people/name", { method: "POST", json: {
      face_ids: faceIds, name: existing.name, move: true,
      expected_held: [{ person_id: person.id, face_ids: faceIds }],
      expected_person_id: existing.person_id } });
    $("#split-name").value = "";
    loadStats();
    // every face moved: the person they went to (as a split's new person), Undo leads back
    const from = `#/people/${person.id}`;
    const to = `#/people/${named.id}`;
    const here = location.hash === view;
    const emptied = here && await leftWithNoFace(person, faceIds.length);
    if (emptied) location.hash = to;
    else if (here) await showPersonInPlace(person.id);
    // into a hidden person, who stays hidden: said, as everywhere else, or the faces seemed
    // to vanish (probe peoplepage36)
    showMessage([...say`Moved ${plural(faceIds.length, "face")} to ${personName(named)}.`,
      ...hiddenNote(named)], "ok", undoOf(change, { [to]: from }));
    focusMessage();
    if (here && !emptied) keepAnchor(anchor);
  } catch (error) {
    if (error.status === 409 && "expected_now" in error.details) {
      if (person === people.person) await showPerson(person.id);
      showMessage(`Not moved: ${error.message}. The page is shown as it is now.`);
      return;
    }
    if (await refusedMeanwhile(error, person, "Not moved")) return;
    if (error.status === 409 && error.details.affected) {
      if (person === people.person) await showPerson(person.id);
      showMessage("Not moved: someone else moved these faces meanwhile; " +
        "the page is shown as it is now.");
      return;
    }
    showMessage(`Not moved: ${error.message}`);
  }
}

// ---------- the review queue ----------

async function showReview() {
  const load = ++people.reviewLoad;
  const offset = people.review;
  const after = people.reviewAfter[offset];
  // by offset until the person before is known (a step taken before its answer came)
  const query = after === undefined ? `offset=${offset}`
    : after === null ? "offset=0" : `after=${encodeURIComponent(after)}`;
  try {
    const page = await getJson(`api/people/review?limit=1&${query}`);
    // a later step was taken meanwhile: its answers count (the title and the person a name
    // went to came from one step, the faces from another)
    if (load !== people.reviewLoad) return;
    if (!page.people.length && offset > 0 && page.total) {
      // past the end (others were named meanwhile): the last one there is
      people.review = after === undefined ? page.total - 1 : offset - 1;
      return showReview();
    }
    const person = page.people[0];
    people.reviewAfter.length = offset + 1;  // the places after this one are this one's
    if (page.next_after) people.reviewAfter.push(page.next_after);
    $("#review-progress").textContent = person
      ? `${(offset + 1).toLocaleString()} of ${peopleCount(page.total, "unnamed ")}, the most faces first`
      : "Nobody left to review: every person found has a name or is hidden.";
    $("#review-form").hidden = !person;
    $("#review-faces").replaceChildren();
    $("#review-more").replaceChildren();
    people.reviewed = person || null;
    if (!person) {
      $("#review-title").textContent = "";  // it named the last person reviewed
      // the form the keyboard was in is hidden with the last person: it goes on from the
      // message's Undo (focus fell to the page's start, the next Tab on the header: webphone)
      if (focusLost()) focusMessage();
      return;
    }
    $("#review-name").value = "";
    $("#review-title").textContent = `Person ${person.id}: ${plural(person.faces, "face")} in ` +
      `${plural(person.photos, "photo")}`;
    const { faces } = await getJson(`${person.faces_url}?limit=12`);
    if (load !== people.reviewLoad) return;
    $("#review-faces").replaceChildren(...faces.map((f) => faceImage(f.crop_url)));
    // Naming names every face: how many are shown, and the way to the person's page, where
    // they all are and a wrong one can be taken out first (12 of 26 were shown without a
    // word, and nothing led there: probe review38)
    const theirs = el("a", { href: `#/people/${person.id}`, text: `Person ${person.id}'s page` });
    $("#review-more").replaceChildren(...(faces.length < person.faces
      ? [`${faces.length} of ${plural(person.faces, "face")} shown: all of them on `, theirs,
        ", where any that is not theirs can be taken out before naming."]
      : ["Their photos on ", theirs, "."]));
    $("#review-name").focus();
  } catch (error) {
    if (load !== people.reviewLoad) return;
    showMessage(`Cannot load the review queue: ${error.message}`);
  }
}

function reviewStep(step) {
  people.review = Math.max(0, people.review + step);
  showReview();
}

async function reviewName(event) {
  event.preventDefault();
  const person = people.reviewed;
  const name = $("#review-name").value.trim();
  if (!person) return;
  if (!name) {
    showMessage("Type a name first, or skip.");
    return;
  }
  await once($("#review-form"), async () => {
    try {
      const [renamed, change] = await changing(`api/people/${person.id}`,
        { method: "PATCH", json: { name, expected_name: person.name } });
      // hidden by another client meanwhile: said, as a merge's and a search's naming do
      showMessage([...say`Named ${renamed.name}.`, ...hiddenNote(renamed)], "ok", undoOf(change));
      await showReview();  // the same offset now holds the next person
    } catch (error) {
      if (renamedMeanwhile(error, person, showReview)) return;
      if (error.status === 404) {
        // merged or deleted by someone else meanwhile: the queue as it is now (the page stayed
        // on them, and Skip then passed over the person who had taken their place)
        await showReview();
        showMessage([...say`Not named: ${personName(person)} was merged or deleted by someone`,
          " else meanwhile. The queue is shown as it is now."]);
        return;
      }
      // merged, the same offset holds the next person
      offerMerge(error, person, "Naming failed", false, () => { $("#review-name").value = ""; });
    }
  });
}

async function reviewHide() {
  const person = people.reviewed;
  if (!person) return;
  // the whole form waits: a name typed meanwhile went to the person being hidden
  await once($("#review-form"), async () => {
    try {
      const [, change] = await changing(`api/people/${person.id}/hide`, { method: "POST" });
      loadStats();
      showMessage(`Person ${person.id} is hidden.`, "ok", undoOf(change));
      await showReview();
    } catch (error) {
      showMessage(`Hiding failed: ${error.message}`);
    }
  });
}

// Arrow keys move through the queue, unless they move the caret in a name being typed, or a
// name or hide is on its way (its answer loads the person after it: a step then skipped one).
function reviewKeys(event) {
  if ($("#view-review").hidden || document.querySelector("dialog[open]")) return;
  if (working.has($("#review-form"))) return;
  const typing = event.target.matches("input[type=text]") && event.target.value !== "";
  if (typing) return;
  if (event.key === "ArrowRight") { event.preventDefault(); reviewStep(1); }
  if (event.key === "ArrowLeft") { event.preventDefault(); reviewStep(-1); }
}

function setUpPeople() {
  $("#show-hidden").addEventListener("change", showPeople);
  let filterPause = null;
  $("#people-filter").addEventListener("input", () => {
    clearTimeout(filterPause);
    filterPause = setTimeout(() => {
      const grid = people.grid;
      if (!grid || grid.filter !== nameFilter()) showPeople();
    }, FILTER_PAUSE_MS);
  });
  $("#cluster").addEventListener("click", () => once($("#cluster"), cluster));
  // the change the open list shows on top, by id: a later one of another client's (a CLI's
  // hide) was taken back in its place, unseen (probe concurrent61); the list closed: the latest
  $("#undo").addEventListener("click", () => once($("#undo"), () => {
    const shown = $("#history-box").open ? people.historyTop : undefined;
    if (shown === null) {  // none shown can be: the latest (another's, unseen) is not taken
      showMessage("None of the recent changes shown can be undone (each is undone already, " +
        "or the indexer's): nothing was undone.");
      return null;
    }
    return undoLast(shown === undefined ? null : shown);
  }));
  $("#merge-selected").addEventListener("click", askMerge);
  // Clear hides the bar the keyboard was on: it goes on from the tile selected last
  $("#clear-selection").addEventListener("click", () => {
    const ids = [...people.selected.keys()];
    people.selected.clear();
    updateSelection(ids);
    const tile = people.tiles.get(people.lastSelected);
    if (tile) tile.focus(); else focusHeading("people");
  });
  $("#history-box").addEventListener("toggle", () => {
    if ($("#history-box").open) loadHistory();
  });
  $("#rename-form").addEventListener("submit", renamePerson);
  $("#person-hide").addEventListener("click", toggleHidden);
  $("#split-form").addEventListener("submit", splitFaces);
  $("#split-remove").addEventListener("click", removeFaces);
  $("#faces-more-button").addEventListener("click", loadFacesPage);
  $("#split-clear").addEventListener("click", () => {
    people.chosenFaces.clear();
    updateFaceChoice();
    announce("Selection cleared");
    const tile = $(`.face-tile[data-face-id="${people.lastFace}"]`);
    if (tile) tile.focus(); else focusHeading("person");
  });
  $("#review-form").addEventListener("submit", reviewName);
  $("#review-skip").addEventListener("click", () => reviewStep(1));
  $("#review-back").addEventListener("click", () => reviewStep(-1));
  $("#review-hide").addEventListener("click", reviewHide);
  document.addEventListener("keydown", reviewKeys);
}
