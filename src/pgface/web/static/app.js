// pgface web page: plain JS over the HTTP API (/docs). No build step, no external files.
"use strict";

const $ = (selector) => document.querySelector(selector);
const state = { key: localStorage.getItem("pgface.key") || "", images: new Map(), file: null };

// Elements are built with textContent only: names and paths come from users.
function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value !== false && value !== null && value !== undefined) node.setAttribute(name, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function showMessage(text, kind = "error") {
  const box = $("#message");
  box.textContent = text;
  box.className = kind;
  box.hidden = !text;
}

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (state.key) headers.set("Authorization", `Bearer ${state.key}`);
  if (options.json !== undefined) {
    headers.set("Content-Type", "application/json");
    options.body = JSON.stringify(options.json);
  }
  const response = await fetch(path, { ...options, headers });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    let details = {};
    try {
      details = (await response.json()).error;
      message = details.message;
    } catch (_) { /* not JSON */ }
    if (response.status === 401) $("#key-form").hidden = false;
    const error = new Error(message);
    error.status = response.status;
    error.details = details;  // e.g. a 409's `affected` people or merge `names`
    throw error;
  }
  return response;
}

// Asks in a dialog on the page; resolves to the chosen label, or null when cancelled.
function ask(text, items, choices) {
  const dialog = $("#ask-dialog");
  $("#ask-text").textContent = text;
  $("#ask-list").replaceChildren(...items.map((item) => el("li", { text: item })));
  return new Promise((resolve) => {
    const buttons = [...choices, "Cancel"].map((label) => el("button", {
      type: "button", text: label,
      onclick: () => { resolve(label === "Cancel" ? null : label); dialog.close(); },
    }));
    dialog.onclose = () => resolve(null);  // Escape: cancelled (a choice made first stands)
    $("#ask-choices").replaceChildren(...buttons);
    dialog.showModal();
  });
}

const getJson = async (path, options) => (await api(path, options)).json();

// Images go through fetch so the API key travels in a header, never in a URL.
function imageUrl(path) {
  if (!state.images.has(path)) {
    state.images.set(path, api(path).then((r) => r.blob()).then((b) => URL.createObjectURL(b)));
  }
  return state.images.get(path);
}

function faceImage(path, alt) {
  const img = el("img", { alt, class: "crop", loading: "lazy" });
  imageUrl(path).then((url) => { img.src = url; }).catch(() => img.classList.add("missing"));
  return img;
}

const percent = (similarity) => `${Math.round(similarity * 100)}%`;
const fileName = (path) => path.split(/[\\/]/).pop();

// ---------- search ----------

async function search(file) {
  state.file = file;
  const form = new FormData();
  form.append("file", file, file.name);
  const params = new URLSearchParams({ top: $("#top").value || "8" });
  if ($("#threshold").value !== "") params.set("threshold", $("#threshold").value);
  $("#results").replaceChildren(el("p", { class: "muted", text: `Searching ${file.name}…` }));
  showMessage("");
  try {
    const result = await getJson(`/api/search?${params}`, { method: "POST", body: form });
    await renderResults(result, file);
  } catch (error) {
    $("#results").replaceChildren();
    showMessage(`Search failed: ${error.message}`);
  }
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the browser cannot show this image"));
    img.src = src;
  });
}

function drawBoxes(canvas, image, boxes, maxWidth) {
  const scale = Math.min(1, maxWidth / image.naturalWidth);
  canvas.width = Math.round(image.naturalWidth * scale);
  canvas.height = Math.round(image.naturalHeight * scale);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
  ctx.lineWidth = Math.max(2, canvas.width / 300);
  ctx.font = `bold ${Math.max(13, canvas.width / 45)}px system-ui, sans-serif`;
  for (const box of boxes) {
    const [x1, y1, x2, y2] = box.bbox.map((v) => v * scale);
    ctx.strokeStyle = box.highlight ? "#ffb300" : "#00c2a8";
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    if (box.label) {
      const width = ctx.measureText(box.label).width + 8;
      const height = parseInt(ctx.font.match(/(\d+)px/)[1], 10) + 6;
      const top = y1 > height ? y1 - height : y2;
      ctx.fillStyle = box.highlight ? "#ffb300" : "#00c2a8";
      ctx.fillRect(x1 - ctx.lineWidth / 2, top, width, height);
      ctx.fillStyle = "#0b1f1c";
      ctx.fillText(box.label, x1 + 4, top + height - 6);
    }
  }
}

function queryFaceCrop(image, bbox) {
  // The face with a margin, as a small canvas: the query face is not stored anywhere.
  const [x1, y1, x2, y2] = bbox;
  const side = Math.max(x2 - x1, y2 - y1) * 1.5;
  const canvas = el("canvas", { class: "crop query-crop", width: 112, height: 112 });
  canvas.getContext("2d").drawImage(image, (x1 + x2 - side) / 2, (y1 + y2 - side) / 2,
    side, side, 0, 0, 112, 112);
  return canvas;
}

async function renderResults(result, file) {
  const image = await loadImage(URL.createObjectURL(file));
  const overview = el("canvas", { class: "query-photo" });
  drawBoxes(overview, image, result.faces.map((f, i) => ({ bbox: f.bbox, label: `${i + 1}` })),
    520);
  const summary = result.faces.length
    ? `${result.faces.length} face${result.faces.length > 1 ? "s" : ""} found in ${file.name}; ` +
      `matches at or above ${result.threshold} similarity (${result.model}); the same person ` +
      `from ${result.same_person_similarity} among ${result.library_size} faces, below it "possible"`
    : `No face found in ${file.name}.`;
  const sections = result.faces.map((face, i) => renderFace(face, i, image));
  $("#results").replaceChildren(
    el("div", { class: "query" }, [overview, el("p", { class: "summary", text: summary })]),
    ...sections,
  );
}

function renderFace(face, index, image) {
  const cards = face.matches.map((match) => matchCard(match));
  const nameInput = el("input", { type: "text", placeholder: "Name", "aria-label": "person name",
    class: "name-input" });
  const nameForm = el("form", {
    class: "name-form",
    onsubmit: (event) => { event.preventDefault(); nameMatches(face, cards, nameInput); },
  }, [nameInput, el("button", { type: "submit", text: "Name checked faces" })]);
  const best = face.matches[0];
  const heading = face.searched === false
    ? `not searched: quality ${face.quality.score.toFixed(2)} is below the floor`
    : best
    ? `${face.matches.length} match${face.matches.length > 1 ? "es" : ""}, best ${percent(best.similarity)}` +
      (best.person_name ? ` (${best.person_name})` : "")
    : "no match in the database";
  const crop = queryFaceCrop(image, face.bbox);
  crop.title = qualityTip(face);
  return el("section", { class: "face-result", "data-face": index + 1 }, [
    el("div", { class: "face-head" }, [
      crop,
      el("div", {}, [
        el("h2", { text: `Face ${index + 1}` }),
        el("p", { class: "muted", text: heading }),
        face.matches.length ? nameForm : null,
      ]),
    ]),
    el("div", { class: "matches" }, cards.map((c) => c.node)),
  ]);
}

// The quality score and what it is made of, for the query face's tooltip.
function qualityTip(face) {
  const q = face.quality;
  if (!q) return `detection ${face.det_score}`;
  return `quality ${q.score.toFixed(2)}: detection ${face.det_score}, ` +
    `${Math.round(q.face_size)} px, yaw ${q.yaw.toFixed(2)}, pitch ${q.pitch.toFixed(2)}, ` +
    `sharpness ${Math.round(q.sharpness)}`;
}

function matchCard(match) {
  // Nothing is ticked: naming is a decision about each face, never a default.
  const check = el("input", { type: "checkbox", "aria-label": "include in naming" });
  const name = el("span", { class: "person", text: match.person_name || "unnamed" });
  if (!match.person_name) name.classList.add("muted");
  const node = el("figure", { class: "match", "data-face-id": match.face_id }, [
    el("button", {
      type: "button", class: "open-photo", title: `open ${match.path}`,
      onclick: () => openPhoto(match.photo_id, match.face_id),
    }, [faceImage(match.crop_url, `face ${match.face_id}`)]),
    el("figcaption", {}, [
      el("span", { class: "similarity", text: percent(match.similarity) }),
      // strangers of a library this size score so too: never shown as the same person
      match.verdict === "possible" ? el("span", { class: "possible", text: "possible" }) : null,
      name,
      el("span", { class: "file muted", text: fileName(match.path) }),
      el("label", { class: "check" }, [check, " use"]),
    ]),
  ]);
  return { node, match, check, name };
}

async function nameMatches(face, cards, input) {
  const chosen = cards.filter((c) => c.check.checked);
  const name = input.value.trim();
  if (!name || !chosen.length) {
    showMessage(!name ? "Type a name first." : "Tick the faces to name first.");
    return;
  }
  const body = { face_ids: chosen.map((c) => c.match.face_id), name };
  try {
    let person;
    try {
      person = await getJson("/api/people/name", { method: "POST", json: body });
    } catch (error) {
      if (error.status !== 409 || !error.details.affected) throw error;
      // Faces someone placed in another person: move them only if the user says so.
      const affected = error.details.affected.map((p) =>
        `${p.name || `person ${p.person_id} (unnamed)`}: ${p.face_ids.length} face` +
        `${p.face_ids.length > 1 ? "s" : ""}`);
      const answer = await ask(`Naming these faces ${name} moves faces out of:`, affected,
        ["Move them"]);
      if (!answer) {
        showMessage("Nothing was named.", "ok");
        return;
      }
      person = await getJson("/api/people/name", { method: "POST", json: { ...body, move: true } });
    }
    for (const card of chosen) {
      card.match.person_name = person.name;
      card.name.textContent = person.name;
      card.name.classList.remove("muted");
      card.check.checked = false;
    }
    input.value = "";
    loadStats();
    showMessage(`Named ${chosen.length} face${chosen.length > 1 ? "s" : ""} ${person.name}.`, "ok");
  } catch (error) {
    showMessage(`Naming failed: ${error.message}`);
  }
}

// ---------- photo viewer ----------

async function openPhoto(photoId, faceId) {
  try {
    const photo = await getJson(`/api/photos/${photoId}`);
    const image = await loadImage(await imageUrl(photo.image_url));
    const boxes = photo.faces.map((f) => ({
      bbox: f.bbox, label: f.person_name || "", highlight: f.id === faceId,
    }));
    drawBoxes($("#photo-canvas"), image, boxes, Math.min(1100, window.innerWidth - 80));
    $("#photo-title").textContent =
      `${fileName(photo.path)}: ${photo.width}×${photo.height}, ${photo.faces.length} faces`;
    $("#photo-dialog").showModal();
  } catch (error) {
    showMessage(`Cannot open photo ${photoId}: ${error.message}`);
  }
}

// ---------- people ----------

async function loadPeople() {
  const unnamed = $("#show-unnamed").checked;
  loadHistory();
  try {
    const { people } = await getJson(`/api/people?unnamed=${unnamed}&limit=1000`);
    const options = people.map((p) => el("option", { value: p.id, text: personLabel(p) }));
    $("#merge-source").replaceChildren(...options.map((o) => o.cloneNode(true)));
    $("#merge-target").replaceChildren(...options);
    if (options.length > 1) $("#merge-target").selectedIndex = 1;
    $("#people").replaceChildren(...(people.length
      ? people.map(personCard)
      : [el("p", { class: "muted", text: "No people yet: name faces in search results, or " +
          "group unnamed faces into people." })]));
  } catch (error) {
    showMessage(`Cannot list people: ${error.message}`);
  }
}

const personLabel = (p) => `${p.name || `person ${p.id} (unnamed)`} · ${p.faces} faces`;

function personCard(person) {
  const faces = el("div", { class: "person-faces" });
  getJson(`/api/people/${person.id}/faces?limit=1000`).then(({ faces: list }) => {
    faces.replaceChildren(...list.slice(0, 12).map((f) => el("button", {
      type: "button", class: "open-photo", title: fileName(f.path),
      onclick: () => openPhoto(f.photo_id, f.face_id),
    }, [faceImage(`/api/faces/${f.face_id}/crop`, `face ${f.face_id}`)])));
  }).catch((error) => faces.replaceChildren(el("p", { class: "muted", text: error.message })));
  const input = el("input", { type: "text", value: person.name || "", placeholder: "Name",
    "aria-label": `name of person ${person.id}` });
  const form = el("form", {
    class: "rename", onsubmit: async (event) => {
      event.preventDefault();
      try {
        const renamed = await getJson(`/api/people/${person.id}`, {
          method: "PATCH", json: { name: input.value },
        });
        showMessage(`Person ${person.id} is now ${renamed.name}.`, "ok");
        await loadPeople();
      } catch (error) {
        showMessage(`Renaming failed: ${error.message}`);
      }
    },
  }, [input, el("button", { type: "submit", text: "Save name" })]);
  return el("article", { class: "person-card", "data-person-id": person.id }, [
    el("div", { class: "person-head" }, [
      el("h2", { text: person.name || `Person ${person.id}` }),
      el("span", { class: "muted", text: `${person.faces} faces in ${person.photos} photos` }),
    ]),
    form,
    faces,
  ]);
}

async function merge(event) {
  event.preventDefault();
  const body = { source: Number($("#merge-source").value), target: Number($("#merge-target").value) };
  try {
    let person;
    try {
      person = await getJson("/api/people/merge", { method: "POST", json: body });
    } catch (error) {
      if (error.status !== 409 || !error.details.names) throw error;
      const keep = await ask("Both people have names. Which one does the merged person keep?",
        [], error.details.names.map((n) => `Keep ${n}`));
      if (!keep) {
        showMessage("Nothing was merged.", "ok");
        return;
      }
      person = await getJson("/api/people/merge", {
        method: "POST", json: { ...body, name: keep.slice("Keep ".length) },
      });
    }
    loadStats();
    showMessage(`Merged into ${person.name || `person ${person.id}`}: ${person.faces} faces.`, "ok");
    await loadPeople();
  } catch (error) {
    showMessage(`Merge failed: ${error.message}`);
  }
}

async function undo() {
  try {
    const change = await getJson("/api/people/undo", { method: "POST" });
    showMessage(`Undone: ${change.summary}.`, "ok");
    loadStats();
    await loadPeople();
  } catch (error) {
    showMessage(`Undo failed: ${error.message}`);
  }
}

async function loadHistory() {
  try {
    const { changes } = await getJson("/api/people/history?limit=8");
    $("#history").replaceChildren(...changes.map((c) => el("li", {
      class: c.undone_at ? "undone" : "",
      text: `${new Date(c.at).toLocaleString()} · ${c.actor} · ${c.summary}` +
        (c.undone_at ? ` (undone by ${c.undone_by})` : ""),
    })));
  } catch (error) {
    $("#history").replaceChildren(el("li", { class: "muted", text: error.message }));
  }
}

async function cluster() {
  try {
    const report = await getJson("/api/people/cluster", { method: "POST", json: {} });
    showMessage(`${report.founded} new people, ${report.joined} faces joined existing people, ` +
      `${report.unassigned} left alone.`, "ok");
    await loadPeople();
  } catch (error) {
    showMessage(`Grouping failed: ${error.message}`);
  }
}

// ---------- page ----------

function showView(name) {
  for (const tab of document.querySelectorAll(".tab")) {
    tab.classList.toggle("active", tab.dataset.view === name);
  }
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `view-${name}`;
  if (name === "people") loadPeople();
}

async function loadStats() {
  try {
    const stats = await getJson("/api/stats");
    $("#stats").textContent = `${stats.photos} photos · ${stats.faces} faces · ${stats.people} people`;
  } catch (_) {
    $("#stats").textContent = "";
  }
}

async function start() {
  $("#key").value = state.key;
  try {
    const auth = await getJson("/api/auth");
    $("#key-form").hidden = !auth.key_required;
  } catch (error) {
    showMessage(error.message);
  }
  loadStats();
}

document.addEventListener("DOMContentLoaded", () => {
  const drop = $("#drop");
  $("#file").addEventListener("change", (e) => {
    const file = e.target.files[0];
    e.target.value = "";  // picking the same file again must search again
    if (file) search(file);
  });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files[0]) search(e.dataTransfer.files[0]);
  });
  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => showView(tab.dataset.view));
  }
  $("#key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.key = $("#key").value.trim();
    localStorage.setItem("pgface.key", state.key);
    state.images.clear();
    showMessage("");
    start();
    if (state.file) search(state.file);  // the search that asked for the key
  });
  $("#photo-close").addEventListener("click", () => $("#photo-dialog").close());
  $("#merge-form").addEventListener("submit", merge);
  $("#cluster").addEventListener("click", cluster);
  $("#undo").addEventListener("click", undo);
  $("#show-unnamed").addEventListener("change", loadPeople);
  start();
});
