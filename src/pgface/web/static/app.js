// pgface web page: plain JS over the HTTP API (/docs). No build step, no external files.
"use strict";

const $ = (selector) => document.querySelector(selector);
// Where the API key is kept: one per path the page is served at, "pgface.key" at the root.
// One name for all: two pgface servers behind one proxy (--root-path /a and /b) shared it,
// and each library's key was sent to the other (probe operator).
const KEY_NAME = ((path) => (path === "/" ? "pgface.key" : `pgface.key:${path}`))(
  new URL(document.baseURI).pathname);
// searches: bumped by each search; only the latest one's answer is shown (the same photo is
// searched again with another threshold, so the photo cannot tell them apart)
// file: the photo whose results are shown; asked: the last photo searched (a failed search
// leaves the results of `file`, which another number of matches asks for again); keyWanted:
// the photo whose search was refused for want of a key, searched again once one is given
// cards, headings: the matches shown and their faces' headings, drawn again when who holds
// the faces changes (holders: the people's changes as of their names shown, historyMark)
// statsMark: the people's changes the header's counts are as of (historyMark, null: not
// known), statsLoads and statsLoading: the header's loads (loadStats), counted, and the last
const state = { key: pastedKey(localStorage.getItem(KEY_NAME) || ""), images: new Map(), file: null,
  asked: null, keyWanted: null, searches: 0, cards: [], headings: [], holders: null, refreshes: 0,
  statsMark: null, statsLoads: 0, statsLoading: Promise.resolve() };

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

// Words with the values put in them isolated (<bdi>), for showMessage, ask and the like: a
// right-to-left name before ": 8 faces" took the digits into its direction, "Merged into 8
// :محمد faces." (probe web19). A value that is such a list already goes in as it is.
function say(strings, ...values) {
  const parts = [strings[0]];
  values.forEach((value, i) => {
    if (Array.isArray(value)) parts.push(...value);
    else parts.push(el("bdi", { text: String(value) }));
    parts.push(strings[i + 1]);
  });
  return parts;
}

// Names one after another, each isolated: "A, B" (two right-to-left names read "B ,A").
const sayList = (names) => names.flatMap((name, i) =>
  [i ? ", " : "", el("bdi", { text: name })]);

// A message (a string, or say's words), with one action button when given (e.g. Undo after a
// merge).
function showMessage(text, kind = "error", action = null) {
  const box = $("#message");
  const words = el("span", {}, withCodes([].concat(text)));
  box.replaceChildren(words);
  // ACTION: a button ({label, run}), or several (null ones left out)
  for (const one of [].concat(action || []).filter(Boolean)) {
    const button = el("button", { type: "button", class: "message-action",
      onclick: () => { showMessage(""); one.run(); } }, [].concat(one.label));
    button.title = button.textContent;  // whole there: a long one is cut short (style.css)
    box.append(button);
  }
  // put away with its × (stuck over the page: style.css); the keyboard, on it, goes on from
  // the view's heading
  const close = el("button", { type: "button", class: "message-close", title: "Dismiss",
    "aria-label": "Dismiss", onclick: () => {
      showMessage("");
      const shown = document.querySelector(".view:not([hidden])");
      if (focusLost() && shown) focusHeading(shown.id.replace("view-", ""));
    } });
  box.append(close);
  box.className = kind;
  box.hidden = !words.textContent;
}

// TEXT with the commands it quotes between backticks (`pgface db start`) as code, as the
// server's messages write them: the backticks showed as they are (probe web40). Only a
// pgface command: a message holds file and person names too, and a file "a`b`c.jpg" showed
// as "abc.jpg" (probe reprobe41).
function withCode(text) {
  return text.split(/`(pgface [^`\n]*)`/).map(
    (part, i) => (i % 2 ? el("code", { text: part }) : part));
}

// say's words (strings, values in <bdi>) with the pgface commands they quote as code: only a
// message of one string was (withCode), and "Undo failed: ... `pgface db start`" or "Cannot
// open person 3: ..." (the server's words a <bdi> value) kept the backticks (probe web56).
function withCodes(parts) {
  return parts.flatMap((part) => {
    if (typeof part === "string") return withCode(part);
    if (part instanceof Element && !part.children.length && part.textContent.includes("`")) {
      part.replaceChildren(...withCode(part.textContent));
    }
    return [part];
  });
}

// Said to a screen reader as it happens (the #status live region): a search's progress and
// outcome, the count selected. Nothing was: a search's results came without a word.
function announce(text) {
  const status = $("#status");
  // the same words again are said again (a live region says only what changed)
  status.textContent = status.textContent === text ? `${text}\u00a0` : text;
}

// The keyboard's place when the element it was on went away (a view hidden, a bar cleared, a
// message's Undo replaced): null when it is still somewhere shown, else the page's body.
function focusLost() {
  const active = document.activeElement;
  return !active || active === document.body || !active.getClientRects().length;
}

// Each view's heading: focused when a view is shown in place of the one the keyboard was in
// (focus fell to the page's start, and the keyboard began again from the header).
const VIEW_HEADINGS = { search: "#search-title", people: "#people-title",
  person: "#person-title", review: "#review-title" };
const VIEW_TITLES = { search: "Search", people: "People", person: "Person", review: "Review" };

function focusHeading(view) {
  const heading = $(VIEW_HEADINGS[view]);
  if (heading && !heading.closest(".view").hidden) heading.focus();
}

// A key as pasted, less what no key holds and a paste brings along: spaces, line breaks and
// invisible characters (a zero-width space from a chat message). A function, not a constant:
// `state` takes the key kept by an earlier page through it.
function pastedKey(text) {
  return text.replace(/[\s\p{Cf}]/gu, "");
}

// Why KEY cannot be sent, or null: a header takes printable ASCII only, and the browser's
// refusal of any other ("Failed to execute 'set' on 'Headers'", an en dash for the "_") was
// all the page said, on every view and after every reload (probe web38).
function keyProblem(key) {
  const wrong = [...key].find((character) => !/^[\x21-\x7e]$/.test(character));
  if (wrong === undefined) return null;
  const code = wrong.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
  return `the API key holds "${wrong}" (U+${code}), which no key has: paste it again as ` +
    "pgface keys create printed it";
}

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const wrongKey = state.key ? keyProblem(state.key) : null;
  if (wrongKey) {
    $("#key-form").hidden = false;
    const error = new Error(wrongKey);
    error.status = 401;
    error.details = {};
    throw error;
  }
  if (state.key) headers.set("Authorization", `Bearer ${state.key}`);
  if (options.json !== undefined) {
    headers.set("Content-Type", "application/json");
    options.body = JSON.stringify(options.json);
  }
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (_) {
    // The browser's words for no answer ("Failed to fetch") said plainly, on every view.
    const error = new Error("the server did not answer (is pgface serve running?)");
    error.status = 0;
    error.details = {};
    throw error;
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    let details = {};
    try {
      details = (await response.json()).error;
      message = details.message;
    } catch (_) { /* not JSON */ }
    if (response.status === 401) {
      $("#key-form").hidden = false;
      // the API's words end telling a client which header to send: here the key box takes
      // it (probe web40: "send it as 'Authorization: Bearer pgf_...'" beside that box)
      const why = message.replace(/: send it as 'Authorization: Bearer pgf_\.\.\.'$/, "");
      if (!state.key && why !== message) {
        // where none exists yet the server's words say to create one (reprobe41: said twice)
        message = why.includes("pgface keys create")
          ? `${why}, then enter it in the API key box above`
          : `${why}: enter one in the API key box above ` +
            "(`pgface keys create NAME --scope read` makes one)";
      }
    }
    const error = new Error(message);
    error.status = response.status;
    error.details = details;  // e.g. a 409's `affected` people or merge `names`
    throw error;
  }
  return response;
}

// A write runs once at a time from the form or button that asked for it: a second click while
// the first was on its way sent it again, and the second's refusal (a split already made)
// replaced the first's success and its Undo.
const working = new WeakSet();

async function once(control, work) {
  if (working.has(control)) return;
  working.add(control);
  const buttons = control.matches("form") ? [...control.querySelectorAll("button")] : [control];
  const focused = document.activeElement;
  for (const button of buttons) button.disabled = true;
  try {
    await work();
  } finally {
    working.delete(control);
    for (const button of buttons) button.disabled = false;
    // A dialog asked meanwhile gave focus back to a button then disabled: it fell to the
    // page's start, and the keyboard began again from the header.
    if (document.activeElement === document.body && focused && focused.isConnected) {
      focused.focus();
    }
  }
}

// Asks in a dialog on the page; resolves to the chosen label, or null when cancelled.
function ask(text, items, choices) {
  const dialog = $("#ask-dialog");
  $("#ask-text").replaceChildren(...[].concat(text));  // a string, or say's words
  $("#ask-list").replaceChildren(...items.map((item) => el("li", {}, [].concat(item))));
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

// Images go through fetch so the API key travels in a header, never in a URL. The latest ones
// are kept as blobs (a grid shown again, a photo opened again, asks nothing): at most
// IMAGES_KEPT of them and IMAGE_BYTES_KEPT bytes, the least recently used going first. Each
// image shown gets a blob: URL of its own, revoked once it has loaded or failed: the URLs were
// kept for the page's life, and with them every image's bytes (the people grid grew by 110 to
// 130 MB per 1,000 tiles scrolled, never given back).
const IMAGES_KEPT = 300;
const IMAGE_BYTES_KEPT = 32 * 1024 * 1024;

// Fetches of images and of the search view's refresh wait their turn: at most FETCHES_AT_ONCE
// on their way, the rest first come first served. All at once, Chromium refused the surplus
// (net::ERR_INSUFFICIENT_RESOURCES): a crowd searched 100 matches a face (2,600 crops) left
// about 1,100 of them blank for good, and a refresh of its 2,520 photos lost 1,160 (probe
// webscale20). WANTED, asked when a fetch that waited gets its turn: false, it is dropped
// (rejected, never sent; the results it was for replaced meanwhile). URGENT: it goes first
// (the photo clicked open waited behind a crowd's crops).
const FETCHES_AT_ONCE = 6;
const fetches = { running: 0, waiting: [] };

function queued(task, wanted = () => true, urgent = false) {
  return new Promise((resolve, reject) => {
    const job = { task, wanted, resolve, reject };
    if (fetches.running < FETCHES_AT_ONCE) runFetch(job);
    else if (urgent) fetches.waiting.unshift(job);
    else fetches.waiting.push(job);
  });
}

function runFetch(job) {
  fetches.running += 1;
  Promise.resolve().then(job.task).then(job.resolve, job.reject).finally(() => {
    fetches.running -= 1;
    while (fetches.running < FETCHES_AT_ONCE && fetches.waiting.length) {
      const next = fetches.waiting.shift();
      if (next.wanted()) {
        runFetch(next);
      } else {
        const error = new Error("no longer shown");
        error.dropped = true;
        next.reject(error);
      }
    }
  });
}

// WANTED: whether an image waiting its turn is still to be shown (queued's); an image asked
// by several (the same face matched by two faces of a crowd) is fetched while any wants it.
function imageBlob(path, wanted = () => true, urgent = false) {
  let entry = state.images.get(path);
  if (entry) {
    state.images.delete(path);  // set again below: the latest used
    if (entry.wanted) entry.wanted.push(wanted);
  } else {
    entry = { size: 0, wanted: [wanted] };
    entry.blob = queued(() => api(path), () => entry.wanted.some((w) => w()), urgent)
      .then((r) => r.blob()).then((blob) => {
        entry.size = blob.size;
        entry.wanted = null;
        trimImages();
        return blob;
      });
    // A failure is not kept: the image is asked again once it can be had (the database back).
    entry.blob.catch(() => { if (state.images.get(path) === entry) state.images.delete(path); });
  }
  state.images.set(path, entry);
  trimImages();
  return entry.blob;
}

function trimImages() {
  let bytes = 0;
  for (const entry of state.images.values()) bytes += entry.size;
  for (const [path, entry] of state.images) {  // the least recently used first
    if (state.images.size <= IMAGES_KEPT && bytes <= IMAGE_BYTES_KEPT) break;
    state.images.delete(path);
    bytes -= entry.size;
  }
}

// PATH's image shown in IMG through a blob: URL of its own, revoked once the image has loaded
// or failed (the image shown stays); rejects when the image cannot be had.
async function showImage(img, path) {
  const url = URL.createObjectURL(await imageBlob(path, () => img.isConnected));
  const done = () => {
    URL.revokeObjectURL(url);
    img.removeEventListener("load", done);
    img.removeEventListener("error", done);
  };
  img.addEventListener("load", done);
  img.addEventListener("error", done);
  img.src = url;
}

// A crop shows a neutral placeholder until its image arrives, never alt text: the face's
// name or number is said by the element around it.
// Not loading="lazy": its blob: URL is revoked when it loads, and a crop below the fold of
// results replaced before it came into view never did (30 URLs kept a search of a crowd).
function faceImage(path) {
  const img = el("img", { alt: "", class: "crop loading", "data-src": path });
  img.addEventListener("load", () => img.classList.remove("loading"));
  showFace(img, path);
  return img;
}

// showImage, with a fetch the browser could not make (no answer at all: refused for want of
// resources, the connection dropped) tried again twice, a little later, while the image is
// shown; an image that cannot be had is marked missing (asked again when shown again).
const IMAGE_RETRIES_MS = [1000, 3000];

async function showFace(img, path) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      await showImage(img, path);
      return;
    } catch (error) {
      if (error.dropped) return;  // no longer shown: nothing to mark
      if (error.status !== 0 || attempt >= IMAGE_RETRIES_MS.length || !img.isConnected) {
        // no longer loading: a tile's or photo's placeholder stays hidden while it loads, and
        // one marked missing too looked as if it still were, for good (probe webscale30)
        img.classList.replace("loading", "missing") || img.classList.add("missing");
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, IMAGE_RETRIES_MS[attempt]));
    }
  }
}

// The images marked missing in ROOT, shown again (a grid kept as it was left, the search's
// results on the way back to them): asked for again, each once near the viewport
// (docs/http.md: "asked for again the next time it is shown"; the results' stayed grey).
function showMissingAgain(root) {
  for (const img of root.querySelectorAll("img.missing")) {
    img.classList.replace("missing", "loading");
    lazyImages.observe(img);  // by its data-src, as a lazyImage
  }
}

// The same, fetched only once the image comes near the viewport.
const lazyImages = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (!entry.isIntersecting) continue;
    const img = entry.target;
    lazyImages.unobserve(img);
    showFace(img, img.dataset.src);
  }
}, { rootMargin: "100px" });

function lazyImage(path, className = "crop") {
  const img = el("img", { alt: "", class: `${className} loading`, "data-src": path });
  img.addEventListener("load", () => img.classList.remove("loading"));
  lazyImages.observe(img);
  return img;
}

// Rounded down, as the API gives a similarity (verdicts.shown): rounded to nearest, a match
// just under the same-person bar of 0.26 showed as "26%" beside "possible" (probe verdicts).
// (1e-7: 0.29 * 100 is 28.999999999999996.)
const percent = (similarity) => `${Math.floor(similarity * 100 + 1e-7)}%`;
// A file's name: what follows the last "/" of its path (a server's path; a backslash is a
// character of a name there, and starts the `\xNN` of a byte that is not UTF-8)
const fileName = (path) => path.split("/").pop();

// ---------- search ----------

// The two controls' values, or why one will not do: said of the control (the server's words
// were "Search failed: obama1.jpg: query parameter 'top' Input should be greater than or
// equal to 1", blaming the photo).
function searchParams() {
  const top = $("#top").value.trim() || "8";
  if (!/^\d+$/.test(top) || Number(top) < 1 || Number(top) > 100) {
    return [null, "Matches per face is a whole number from 1 to 100."];
  }
  const params = new URLSearchParams({ top });
  const threshold = $("#threshold").value.trim();
  if (threshold !== "") {
    if (!Number.isFinite(Number(threshold)) || Math.abs(Number(threshold)) > 1) {
      return [null, "Min. similarity is a number from -1 to 1, or empty for the calibrated one."];
    }
    params.set("threshold", threshold);
  }
  return [params, null];
}

async function search(file) {
  const [params, wrong] = searchParams();
  if (wrong) {
    showMessage(wrong);  // nothing sent, the results shown stay
    return;
  }
  state.asked = file;
  const asked = ++state.searches;
  const form = new FormData();
  form.append("file", file, file.name);
  // The results shown stay until this search has its own: a failed one (not a photo, the
  // server gone) took away the faces ticked and the name typed in them.
  endSearching();
  $("#results").prepend(el("p", { class: "muted searching", text: `Searching ${file.name}…` }));
  announce(`Searching ${file.name}…`);
  showMessage("");
  try {
    const holders = await historyMark();  // before the search: the names it answers are newer
    const result = await getJson(`api/search?${params}`, { method: "POST", body: form });
    if (asked !== state.searches) return;  // searched again meanwhile: that answer counts
    // as many matches as asked for: there may be more (matchesHeading says so)
    for (const face of result.faces) face.top = Number(params.get("top"));
    await renderResults(result, file, asked, holders);
  } catch (error) {
    if (asked !== state.searches) return;
    endSearching();
    announce("");  // the failure is said by the message (an alert)
    if (error.status === 401) state.keyWanted = file;
    showMessage(`Search failed: ${aboutFile(file.name, error)}`);
  }
}

const endSearching = () => {
  for (const line of document.querySelectorAll("#results .searching")) line.remove();
};

// An error as said of a file: its name first unless the server's message has it already.
function aboutFile(name, error) {
  const reason = error.message;
  return reason.includes(name) ? reason : `${name}: ${reason}`;
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the browser cannot show this image"));
    img.src = src;
  });
}

// BLOB (a chosen file, a fetched image) as a loaded image, through a blob: URL of its own that
// is revoked once it has loaded or failed: the image stays drawable, and the query photos of a
// session's searches are not all kept (each URL held its photo, megabytes, for the page's life).
async function loadBlobImage(blob) {
  const url = URL.createObjectURL(blob);
  try {
    return await loadImage(url);
  } finally {
    URL.revokeObjectURL(url);
  }
}

// photoWidth: the photo's width in the pixels the boxes are in (the server's); the image shown
// may be smaller (the server's display copy).
function drawBoxes(canvas, image, boxes, maxWidth, photoWidth) {
  const shown = Math.min(1, maxWidth / image.naturalWidth);
  canvas.width = Math.round(image.naturalWidth * shown);
  canvas.height = Math.round(image.naturalHeight * shown);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
  ctx.lineWidth = Math.max(2, canvas.width / 300);
  ctx.font = `bold ${Math.max(13, canvas.width / 45)}px system-ui, sans-serif`;
  const scale = canvas.width / photoWidth;
  const scaled = boxes.map((box) => box.bbox.map((v) => v * scale));
  const coversAFace = (x, y, w, h) => scaled.some(([x1, y1, x2, y2]) =>
    x < x2 && x + w > x1 && y < y2 && y + h > y1);
  const placed = [];  // canvas pixels of each label drawn, kept on the canvas for the tests
  boxes.forEach((box, i) => {
    const [x1, y1, x2, y2] = scaled[i];
    ctx.strokeStyle = box.highlight ? "#ffb300" : "#00c2a8";
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    if (!box.label) return;
    // A label goes above its box, else below it, and is left out where both would cover a
    // face (a crowd): each face's section below names it anyway.
    const width = ctx.measureText(box.label).width + 8;
    const height = parseInt(ctx.font.match(/(\d+)px/)[1], 10) + 6;
    const left = Math.min(Math.max(0, x1), canvas.width - width);
    const top = [y1 - height - 1, y2 + 1].find((t) => t >= 0 && t + height <= canvas.height &&
      !coversAFace(left, t, width, height));
    if (top === undefined) return;
    ctx.fillStyle = box.highlight ? "#ffb300" : "#00c2a8";
    ctx.fillRect(left, top, width, height);
    ctx.fillStyle = "#0b1f1c";
    ctx.fillText(box.label, left + 4, top + height - 6);
    placed.push({ label: box.label, rect: [left, top, left + width, top + height] });
  });
  canvas.dataset.labels = JSON.stringify({ boxes: scaled, labels: placed });
}

function queryFaceCrop(image, bbox, photoWidth) {
  // The face with a margin, as a small canvas: the query face is not stored anywhere.
  const [x1, y1, x2, y2] = bbox.map((v) => (v * image.naturalWidth) / photoWidth);
  const side = Math.max(x2 - x1, y2 - y1) * 1.5;
  const canvas = el("canvas", { class: "crop query-crop", width: 112, height: 112 });
  canvas.getContext("2d").drawImage(image, (x1 + x2 - side) / 2, (y1 + y2 - side) / 2,
    side, side, 0, 0, 112, 112);
  return canvas;
}

// Whether the image shows the photo the way the server read it: its shape (a photo turned
// by EXIF that the browser did not turn has the other one). Within rounding of a smaller copy.
const sameShape = (image, width, height) =>
  Math.abs(image.naturalWidth * height - image.naturalHeight * width) <= width + height;

// Whether a photo's shape tells if the browser turned it as the server did: for no turn, and
// for a quarter turn (orientations 5-8) of a photo that is not square.
const shapeTells = (orientation, width, height) => orientation === 1 ||
  (orientation >= 5 && orientation <= 8 &&
   !sameShape({ naturalWidth: height, naturalHeight: width }, width, height));

// The query photo to draw the boxes on: a JPEG as the browser shows it (browsers turn JPEGs
// by EXIF as pgface does); any other, or a JPEG shown in another shape, as the server read it
// (browsers ignore a WebP's EXIF orientation, and show no HEIC or TIFF). So too a JPEG turned
// in a way that keeps its shape: 180 degrees or mirrored (orientations 2-4), or a quarter turn
// of a square photo: a browser that did not read that orientation (written as a LONG, not a
// SHORT) drew it upside down or sideways under boxes in upright pixels (probes hostile36,
// reprobe37). null: none to show.
async function queryImage(file, width, height, orientation = 1) {
  const head = new Uint8Array(await file.slice(0, 3).arrayBuffer());
  const jpeg = head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff;
  if (jpeg && shapeTells(orientation, width, height)) {
    const local = await loadBlobImage(file).catch(() => null);
    if (local && sameShape(local, width, height)) return local;
  }
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const blob = await (await api("api/display", { method: "POST", body: form })).blob();
    const served = await loadBlobImage(blob);
    return sameShape(served, width, height) ? served : null;
  } catch (_) {
    return null;
  }
}

async function renderResults(result, file, asked, holders = null) {
  const image = await queryImage(file, result.width, result.height, result.orientation);
  if (asked !== state.searches) return;
  state.cards = [];
  state.headings = [];
  state.holders = holders;
  // the photo whose results are shown from here: set once they are (set when its answer came,
  // a search made while its photo loaded left it to the controls, never shown)
  state.file = file;
  let overview = el("p", { class: "muted query-photo-missing",
    text: `${file.name} cannot be shown here; its faces are numbered as found.` });
  if (image) {
    overview = el("canvas", { class: "query-photo" });
    drawBoxes(overview, image, result.faces.map((f, i) => ({ bbox: f.bbox, label: `${i + 1}` })),
      520, result.width);
  }
  const summary = result.faces.length
    ? `${result.faces.length} face${result.faces.length > 1 ? "s" : ""} found in ${file.name}; ` +
      `matches at or above ${result.threshold} similarity (${result.model}); the same person ` +
      `from ${result.same_person_similarity} among ${result.library_size} faces, below it "possible"`
    : `No face found in ${file.name}.`;
  // The answer's notices, each as it is (`pgface search` prints them as `notice:` lines): why
  // a blank photo has no face, photos the pack has not analysed, a threshold not calibrated.
  // The page said "No face found in white.png." and never why (probe consistency33). Text:
  // they hold the file's name.
  const notices = result.notices || [];
  const sections = result.faces.map((face, i) =>
    renderFace(face, i, image, result.width, result.min_quality));
  const matches = result.faces.reduce((n, face) => n + face.matches.length, 0);
  announce([result.faces.length ? `${plural(result.faces.length, "face")} found in ${file.name}, ` +
    `${matches.toLocaleString()} match${matches === 1 ? "" : "es"}.` : `No face found in ${file.name}.`,
  ...notices].join(" "));
  $("#results").replaceChildren(
    el("div", { class: "query" }, [overview, el("div", { class: "query-text" }, [
      el("p", { class: "summary", text: summary }),
      notices.length ? el("ul", { class: "notices hint muted" },
        notices.map((text) => el("li", { class: "notice", text, dir: "auto" }))) : null,
    ])]),
    ...sections,
  );
}

// FLOOR: the answer's quality floor (`min_quality`), said of a face below it.
function renderFace(face, index, image, photoWidth, floor) {
  const cards = face.matches.map((match, i) => matchCard(match, i + 1));
  const nameInput = el("input", { type: "text", placeholder: "Name", "aria-label": "person name",
    class: "name-input" });
  const heading = el("p", { class: "muted", text: matchesHeading(face, floor), dir: "auto" });
  state.cards.push(...cards);
  state.headings.push(() => { heading.textContent = matchesHeading(face, floor); });
  const nameForm = el("form", {
    class: "name-form writes",
    onsubmit: (event) => {
      event.preventDefault();
      // the heading names the best match's person: named here, it says the new name
      once(nameForm, () => nameMatches(face, cards, nameInput)
        .then(() => { heading.textContent = matchesHeading(face, floor); }));
    },
  }, [nameInput, el("button", { type: "submit", text: "Name checked faces" })]);
  const crop = image ? queryFaceCrop(image, face.bbox, photoWidth)
    : el("span", { class: "crop query-crop", text: `${index + 1}` });
  crop.title = qualityTip(face);
  return el("section", { class: "face-result", "data-face": index + 1 }, [
    el("div", { class: "face-head" }, [
      crop,
      el("div", {}, [
        el("h2", { text: `Face ${index + 1}` }),
        heading,
        face.matches.length ? nameForm : null,
      ]),
    ]),
    el("div", { class: "matches" }, cards.map((c) => c.node)),
  ]);
}

function matchesHeading(face, floor) {
  const best = face.matches[0];
  if (face.searched === false) {
    return `not searched: ${belowFloorSaid(face.quality ? face.quality.score : null, floor)}`;
  }
  if (!best) return "no match in the database";
  // "8 matches" where 8 were asked for read as all there are (probe library61)
  const more = face.top && face.matches.length >= face.top
    ? " (as many as Matches per face asks for: raise it for more)" : "";
  return `${face.matches.length} match${face.matches.length > 1 ? "es" : ""}, best ` +
    `${percent(best.similarity)}${best.person_name ? ` (${best.person_name})` : ""}${more}`;
}

// Why a face was left out, in the CLI's words (models/quality.py below_floor_said): the score
// with as many decimals as show it below the floor, up to 4, "just below" it when even 4 round
// to it, and the floor named. The page said "quality 0.10 is below the floor" of 0.0959 under
// 0.1, the score at 2 decimals and the floor unsaid (probe consistency33).
function belowFloorSaid(score, floor) {
  if (score === null || score === undefined) {
    return `quality not measured, below the floor ${pythonFloat(floor)}`;
  }
  for (const decimals of [2, 3, 4]) {
    const shown = pythonFixed(score, decimals);
    if (Number(shown) < floor) return `quality ${shown} is below the floor ${pythonFloat(floor)}`;
  }
  return `quality ${pythonFixed(score, 4)} is just below the floor ${pythonFloat(floor)}`;
}

// X at DECIMALS as Python writes it (f"{x:.2f}", round): toFixed but for a value exactly
// halfway, which Python rounds to the even digit and toFixed up (0.125: "0.12", not "0.13").
// X is exactly halfway at DECIMALS when X·2^(DECIMALS+1) is an odd whole number.
function pythonFixed(x, decimals) {
  const halves = x * 2 ** (decimals + 1);  // exact: a power of two
  if (!Number.isInteger(halves) || Math.abs(halves % 2) !== 1) return x.toFixed(decimals);
  const below = (halves * 5 ** decimals - 1) / 2;  // the candidates: below and below + 1
  return ((below % 2 === 0 ? below : below + 1) / 10 ** decimals).toFixed(decimals);
}

// X as Python's str() writes a float: 1.0, not 1; 5e-05, not 0.00005.
function pythonFloat(x) {
  if (Number.isInteger(x)) return x.toFixed(1);
  if (x !== 0 && Math.abs(x) < 1e-4) return x.toExponential().replace(/e([+-])(\d)$/, "e$10$2");
  return String(x);
}

// The quality score and what it is made of, for the query face's tooltip.
function qualityTip(face) {
  const q = face.quality;
  if (!q) return `detection ${face.det_score}`;
  return `quality ${q.score.toFixed(2)}: detection ${face.det_score}, ` +
    `${Math.round(q.face_size)} px, yaw ${q.yaw.toFixed(2)}, pitch ${q.pitch.toFixed(2)}, ` +
    `sharpness ${Math.round(q.sharpness)}`;
}

function matchCard(match, number) {
  // Nothing is ticked: naming is a decision about each face, never a default. Its name starts
  // with the word shown beside it, and tells the matches apart ("include in naming", for
  // every one, was not what a voice user could say: WCAG 2.5.3).
  const check = el("input", { type: "checkbox" });
  // the person a face is in opens their page: where else they appear, named or not
  const name = el("a", { class: "person", dir: "auto" });
  const node = el("figure", { class: "match", "data-face-id": match.face_id }, [
    el("button", {
      type: "button", class: "open-photo", title: `open ${match.path}`,
      "aria-label": `open ${fileName(match.path)}, face ${match.face_id}`,
      onclick: () => openPhoto(match.photo_id, match.face_id),
    }, [faceImage(match.crop_url)]),
    el("figcaption", {}, [
      el("span", { class: "similarity", text: percent(match.similarity) }),
      // strangers of a library this size score so too: never shown as the same person
      match.verdict === "possible" ? el("span", { class: "possible", text: "possible" }) : null,
      name,
      el("span", { class: "file muted", text: fileName(match.path) }),
      // every stored path of the photo is gone: `pgface index --prune` or `remove` forgets it
      match.missing ? el("span", { class: "gone", text: "file gone",
        title: `${match.path} no longer exists` }) : null,
      // a box that selects for naming: none for a reader (probe web40: it ticked, to no end)
      el("label", { class: "check writes" }, [check, " use"]),
    ]),
  ]);
  const card = { node, match, check, name, number };
  showCardHolder(card);
  return card;
}

// A match's person (showHolder), in its box's name too.
function showCardHolder(card) {
  const { match } = card;
  showHolder(card.name, match.person_id, match.person_name);
  card.check.setAttribute("aria-label",
    `use match ${card.number}, ${match.person_name || "unnamed"}, ${percent(match.similarity)}`);
}

// The people's changes as far as one can tell them apart (the latest 50, each undone or not),
// or null when they cannot be had (FAILED given why): the same mark, nobody's faces moved in
// between; null tells nothing either way.
async function historyMark(failed = () => {}) {
  try {
    const { changes } = await getJson("api/people/history?limit=50");
    return JSON.stringify(changes.map((c) => [c.id, c.undone_at]));
  } catch (error) {
    failed(error);
    return null;
  }
}

// The matches shown, with who holds each face now: a naming undone on the people page stayed
// on them, and its link led to "No such person" (probe web19). Asked only when the people
// changed since (historyMark), one photo's faces per photo shown, FETCHES_AT_ONCE at a time
// (queued: all at once, a crowd's 2,520 photos lost 1,160 to the browser, probe webscale20);
// a refresh asked again meanwhile takes over from this one.
async function refreshHolders() {
  const cards = state.cards.filter((card) => card.node.isConnected);
  if (!cards.length) return;
  const refresh = ++state.refreshes;
  const mark = await historyMark();
  if (mark !== null && mark === state.holders) return;
  const current = () => refresh === state.refreshes && cards[0].node.isConnected;
  const photos = new Map();  // photo id -> its faces, as they are now
  await Promise.all([...new Set(cards.map((card) => card.match.photo_id))].map(async (id) => {
    try {
      photos.set(id, (await queued(() => getJson(`api/photos/${id}`), current)).faces);
    } catch (_) { /* gone, or not to be had now: shown as it was */ }
  }));
  if (!current()) return;  // other results shown, or asked again, meanwhile
  for (const card of cards) {
    const face = (photos.get(card.match.photo_id) || []).find((f) => f.id === card.match.face_id);
    if (!face) continue;
    card.match.person_id = face.person_id;
    card.match.person_name = face.person_name;
    showCardHolder(card);
  }
  for (const redraw of state.headings) redraw();
  state.holders = mark;
}

// After a naming made here (CHANGE), the matches are as of it: the people's changes are those
// they were as of, and this one. The next time the view is shown asks nothing again (each
// naming made here had every photo shown asked for again, probe webscale20); a change made
// by anyone else meanwhile still does.
async function advanceHolders(change) {
  const before = state.holders;
  const mark = await markAfter(before, change);
  if (mark !== null && state.holders === before) state.holders = mark;
}

// The people's changes now (historyMark) when they are BEFORE and CHANGE only; else null.
async function markAfter(before, change) {
  if (before === null || change === null) return null;
  const mark = await historyMark();
  if (mark === null) return null;
  const now = JSON.parse(mark);
  const was = JSON.parse(before);
  return now.length && now[0][0] === change && now[0][1] === null &&
    JSON.stringify(now.slice(1)) === JSON.stringify(was.slice(0, now.length - 1)) ? mark : null;
}

// A match's person: a link to their page; a face nobody holds says "unnamed", no link.
function showHolder(link, personId, personName) {
  link.textContent = personName || "unnamed";
  link.classList.toggle("muted", !personName);
  if (personId) {
    link.href = `#/people/${personId}`;
    link.title = `${personName || `person ${personId} (unnamed)`}: all their faces`;
  } else {
    link.removeAttribute("href");
    link.removeAttribute("title");
  }
}

async function nameMatches(face, cards, input) {
  const chosen = cards.filter((c) => c.check.checked);
  const name = input.value.trim();
  if (!name || !chosen.length) {
    showMessage(!name ? "Type a name first." : "Tick the faces to name first.");
    return;
  }
  const body = { face_ids: chosen.map((c) => c.match.face_id), name };
  // the unnamed people (clustering's groups) the faces were in, before the naming
  const groups = [...new Set(chosen.filter((c) => c.match.person_id && !c.match.person_name)
    .map((c) => c.match.person_id))];
  try {
    let person;
    let change = null;
    let json = body;
    for (;;) {
      try {
        [person, change] = await changing("api/people/name", { method: "POST", json });
        break;
      } catch (error) {
        if (error.status !== 409 || !error.details.affected) throw error;
        // Faces someone placed in another person: move them only if the user says so, and
        // only those the user was asked about (placed otherwise while the question was open,
        // by another client, the server asks again: a bare `move` took them from whoever)
        const affected = error.details.affected.map((p) =>
          say`${p.name || `person ${p.person_id} (unnamed)`}: ${plural(p.face_ids.length, "face")}`);
        const asked = error.details.meanwhile
          ? ["Someone changed these faces' people meanwhile. ",
            ...say`Naming them ${name} now moves faces out of:`]
          : say`Naming these faces ${name} moves faces out of:`;
        const answer = await ask(asked, affected, ["Move them"]);
        if (!answer) {
          showMessage("Nothing was named.", "ok");
          return;
        }
        json = { ...body, move: true, expected_held: error.details.affected };
      }
    }
    // every match of those faces (a face of the library can match two faces of a crowd)
    const named = new Set(body.face_ids);
    for (const card of state.cards.filter((c) => named.has(c.match.face_id))) {
      card.match.person_name = person.name;
      card.match.person_id = person.id;
      showCardHolder(card);
    }
    for (const card of chosen) card.check.checked = false;
    for (const redraw of state.headings) redraw();
    input.value = "";
    if (change !== null) advanceHolders(change);
    loadStats();
    // a hidden person keeps the faces and stays hidden: said, or the faces seem to vanish
    // with its Undo, as every change made elsewhere on the page (the view shown again then
    // shows who holds the faces: route, refreshHolders)
    // Faces taken from a group clustering made, whose other faces stay in it: most likely the
    // same person, who was named in part, unsaid (probe library61); the merge is offered.
    const rest = await restOfGroup(groups, person);
    // no change made (every face theirs already): said so, not "Named 2 faces" (probe
    // peoplepage36)
    const done = change === null
      ? say`${chosen.length === 1 ? "That face is" : "Those faces are"} ${person.name}'s already.`
      : say`Named ${plural(chosen.length, "face")} ${person.name}.`;
    showMessage([...done,
      ...hiddenNote(person),
      ...(rest ? say` ${personName(rest)}, where they were, has ${plural(rest.faces,
        "more face")}.` : [])], "ok",
    [undoOf(change), rest && { label: say`Merge ${personName(rest)} into ${person.name}`,
      run: () => mergeGroupInto(rest, person) }]);
  } catch (error) {
    showMessage(`Naming failed: ${error.message}`);
  }
}

// Of the unnamed people GROUPS (ids), the first still there with faces, unnamed, and not
// PERSON; null where none is (or cannot be asked now: nothing is offered then).
async function restOfGroup(groups, person) {
  for (const id of groups) {
    if (id === person.id) continue;
    try {
      const left = await getJson(`api/people/${id}`);
      if (left.name === null && left.faces > 0) return left;
    } catch (_) { /* merged or deleted meanwhile, or not to be had: nothing to offer */ }
  }
  return null;
}

// The rest of a group merged into the person named from it, as each was when offered
// (renamed or named meanwhile by another client: refused, and said).
async function mergeGroupInto(group, person) {
  try {
    const [merged, change] = await changing("api/people/merge", { method: "POST", json: {
      source: group.id, target: person.id, name: person.name,
      expected_names: [{ person_id: group.id, name: null },
        { person_id: person.id, name: person.name }] } });
    loadStats();
    refreshHolders();  // the group's faces shown among the matches are the person's now
    showMessage(say`Merged ${personName(group)} into ${merged.name}: ${plural(merged.faces,
      "face")} now.`, "ok", undoOf(change));
    focusMessage();  // the offer the keyboard was on is gone with its message (webphone)
  } catch (error) {
    showMessage(`Not merged: ${error.message}`);
  }
}

// ---------- photo viewer ----------

// The photo with a focusable box per face; a face's name shows below its box on hover or
// focus only, so no label ever covers a face (a crowd's labels would).
// Only the photo opened last is shown, and none once its view is left (a slow answer opened
// over the people page, or replaced the photo clicked after it).
let photoOpening = 0;

async function openPhoto(photoId, faceId) {
  const opening = ++photoOpening;
  const view = location.hash;
  try {
    const photo = await queued(() => getJson(`api/photos/${photoId}`), undefined, true);
    // upright, and a JPEG any browser shows (a WebP turned by EXIF, a HEIC, a TIFF)
    const src = URL.createObjectURL(await imageBlob(`${photo.image_url}?display=true`, undefined, true));
    const img = await loadImage(src).catch(() => null);
    URL.revokeObjectURL(src);  // loaded (or not): the image stays
    if (opening !== photoOpening || location.hash !== view) return;
    if (!img) {
      showMessage(`Cannot show ${fileName(photo.path)}: the browser cannot show its image.`);
      return;
    }
    const frame = $("#photo-frame");
    img.id = "photo-img";
    img.alt = "";
    const boxes = photo.faces.map((f) => {
      const [x1, y1, x2, y2] = f.bbox;
      const name = f.person_name || (f.person_id ? `person ${f.person_id} (unnamed)` : "no person");
      // The name under a box near the photo's left or right edge starts or ends at the box,
      // else is centred on it: centred on a face at the edge of a phone's photo, a long name
      // was cut by the dialog ("José da Silva Pereira dos / antos de Oliveira", probe webphone)
      const centre = (x1 + x2) / 2 / photo.width;
      const side = centre < 1 / 3 ? " label-left" : centre > 2 / 3 ? " label-right" : "";
      const box = el("button", {
        type: "button", class: `face-box${f.id === faceId ? " highlight" : ""}${side}`,
        "aria-label": name, "data-face-id": f.id,
        style: `left:${(100 * x1) / photo.width}%;top:${(100 * y1) / photo.height}%;` +
          `width:${(100 * (x2 - x1)) / photo.width}%;height:${(100 * (y2 - y1)) / photo.height}%`,
        onclick: () => { if (f.person_id) { $("#photo-dialog").close(); location.hash = `#/people/${f.person_id}`; } },
      }, [el("span", { class: "face-label", text: name, dir: "auto" })]);
      return box;
    });
    frame.replaceChildren(img, ...boxes);
    const named = photo.faces.filter((f) => f.person_name).map((f) => f.person_name);
    $("#photo-title").textContent =
      `${fileName(photo.path)}: ${photo.width}×${photo.height}, ${plural(photo.faces.length, "face")}`;
    $("#photo-people").replaceChildren(
      ...(named.length ? say`In this photo: ${sayList(named)}` : []));
    $("#photo-dialog").showModal();
  } catch (error) {
    if (opening !== photoOpening) return;
    showMessage(`Cannot open photo ${photoId}: ${error.message}`);
  }
}

// ---------- page ----------

// Views by URL hash: #/search, #/people, #/people/<id>, #/review.
function route() {
  // An error is about the view it came from: it goes with it (a "Cannot load" stayed on after
  // the next view loaded). A message with an action (Undo) stays.
  if ($("#message").className === "error") showMessage("");
  // a person's link is everything after #/people/: a name with a "/" (AC/DC) looked up "AC"
  const [, view = "search", ...rest] = location.hash.split("/");
  const id = rest.join("/");
  const name = view === "people" && id ? "person" : view;
  const known = ["search", "people", "person", "review"].includes(name) ? name : "search";
  // where the grid was left: a return to it goes back there (people.js returnToPeople)
  if (!$("#view-people").hidden) people.scroll = scrollY;
  for (const tab of document.querySelectorAll(".tab")) {
    const current = tab.dataset.view === known ||
      (tab.dataset.view === "people" && known === "person");
    tab.classList.toggle("active", current);
    // the current tab said to a screen reader too (it was its background colour only)
    if (current) tab.setAttribute("aria-current", "page"); else tab.removeAttribute("aria-current");
  }
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `view-${known}`;
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
  document.title = `${VIEW_TITLES[known]} · pgface`;  // a person's name once loaded
  // The keyboard's place was in the view left, or on a button gone (a message's Undo): the
  // view shown goes on from its heading, or from the tile opened on the way back to the grid.
  // Not on the page's first load, which starts at its start.
  const lost = state.routed && focusLost();
  state.routed = true;
  if (known === "search") {
    refreshHolders();
    showMissingAgain($("#results"));
  }
  let loaded = null;
  if (known === "people") loaded = returnToPeople(lost);
  if (known === "person") loaded = showPerson(id);  // as written in the link: decoded there
  if (known === "review") loaded = showReview();
  if (lost && focusLost()) focusHeading(known);
  // the view loaded (null: at once), for a message that must come after the view's own
  // (people.js undoLast)
  return loaded;
}

// The header's counts, as of MARK, the people's changes (historyMark; asked first when not
// given: the counts are as of them, or newer), which the people grid compares with its own
// (people.js statsAsOf): changed by another client, the counts are asked for again.
function loadStats(mark) {
  const load = ++state.statsLoads;
  state.statsLoading = (async () => {
    const asOf = mark === undefined ? await historyMark() : mark;
    try {
      const stats = await getJson("api/stats");
      if (load !== state.statsLoads) return;  // a later load's answer counts
      state.statsMark = asOf;
      // the people the grid counts (hidden ones only when asked): said apart, as there
      $("#stats").textContent = `${plural(stats.photos, "photo")} · ${plural(stats.faces, "face")}` +
        ` · ${peopleCount(stats.people - stats.hidden_people)}` +
        (stats.hidden_people ? ` (${stats.hidden_people.toLocaleString()} hidden)` : "");
    } catch (_) {
      if (load !== state.statsLoads) return;
      state.statsMark = null;
      $("#stats").textContent = "";
    }
  })();
  return state.statsLoading;
}

// Whether the page's key may only read: the one rule, the body's class start() sets from the
// key's scopes. Its controls and hints are hidden by that class (style.css); what selects
// for a change (a tile, a face) asks this (people.js).
const readOnly = () => document.body.classList.contains("read-only");

async function start() {
  $("#key").value = state.key;
  try {
    const auth = await getJson("api/auth");
    $("#key-form").hidden = !auth.key_required;
    // A key that may only read: the page offers no change the server would refuse (it
    // offered every one, each answered "lacks the 'write' scope").
    document.body.classList.toggle("read-only",
      auth.key !== null && !auth.key.scopes.includes("write"));
    // none selected for a change it may not make (a key that could write given before it)
    if (readOnly()) dropSelections();
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
    tab.addEventListener("click", () => {
      const target = `#/${tab.dataset.view}`;
      if (location.hash === target) route(); else location.hash = target;
    });
  }
  window.addEventListener("hashchange", route);
  $("#key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const key = pastedKey($("#key").value);
    const wrong = keyProblem(key);
    if (wrong) {
      showMessage(wrong);  // neither kept nor sent: the key given before stays
      return;
    }
    state.key = key;
    $("#key").value = key;
    localStorage.setItem(KEY_NAME, state.key);
    state.images.clear();
    showMessage("");
    start();
    // The view shown, loaded again (a list stops asking on a 401); on the search view, the
    // search that asked for the key. Any photo searched before was searched again on any view:
    // the people page asked for stayed empty, under that photo's old error (probe web38).
    const wanted = state.keyWanted;
    state.keyWanted = null;
    if (wanted && !$("#view-search").hidden) search(wanted);
    else route();
  });
  $("#photo-close").addEventListener("click", () => $("#photo-dialog").close());
  // Another number of matches or threshold asks again for the photo shown (its results
  // stayed under a box that said otherwise).
  for (const input of [$("#top"), $("#threshold")]) {
    input.addEventListener("change", () => { if (state.file) search(state.file); });
  }
  setUpPeople();
  // A bar stuck to the top of the view (a selection's, a split's) covers what is scrolled
  // under it: what the keyboard moves to is scrolled clear of it (at 400 % zoom a focused
  // face was entirely under it: WCAG 2.4.11).
  // The message stuck above them all (style.css), the bars stuck below it.
  const clearOfBars = () => {
    const stuck = (node) => node.offsetHeight && getComputedStyle(node).position === "sticky";
    const message = $("#message");
    const messageSpace = stuck(message) ? message.offsetHeight : 0;
    document.documentElement.style.setProperty("--message-space", `${messageSpace}px`);
    const heights = [...document.querySelectorAll(".action-bar")].filter(stuck)
      .map((bar) => bar.offsetHeight);
    const covered = messageSpace + (heights.length ? Math.max(...heights) : 0);
    document.documentElement.style.scrollPaddingTop = covered ? `${covered + 8}px` : "";
  };
  const barSpace = new ResizeObserver(clearOfBars);  // shown, hidden, wrapped onto more lines
  for (const bar of [$("#message"), ...document.querySelectorAll(".action-bar")]) {
    barSpace.observe(bar);
  }
  window.addEventListener("resize", clearOfBars);  // stuck or not (style.css, short windows)
  start();
  route();
});
