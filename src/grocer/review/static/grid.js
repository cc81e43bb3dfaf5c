// grocer review: grid mode (a page of thumbnails of one class, or of the quarantine) and
// the duplicates view (one group side by side). Uses review.js's helpers and state.
// Everything on a grid page is keep unless marked; Enter or Space sends the whole page as
// one POST /api/decisions, which the server appends in one write and one fsync.
"use strict";

const TILE = { width: 176, height: 206, gap: 10 }; // px: must match .tiles in review.css
const MARK_KEYS = { t: "trash", u: "suspicious", k: "keep" };
const MARK_WORDS = { trash: "trash", suspicious: "suspicious", relabel: "→" };

const grid = {
  source: "class", // class | quarantine
  items: [], // tiles of the page on screen (api/page or api/quarantine)
  marks: new Map(), // image_id -> {action, new_label}; unmarked = keep
  history: [], // image ids in the order they were marked, for Z
  cursor: 0,
};
const accepted = []; // event ids of each accepted page or group, newest last, for Z after Enter
let duplicates = { groups: [], index: 0 };

function pageSize() {
  if (state.page_size) return state.page_size;
  const box = ui.tiles.getBoundingClientRect();
  const columns = Math.max(1, Math.floor((box.width + TILE.gap) / (TILE.width + TILE.gap)));
  const rows = Math.max(1, Math.floor((box.height + TILE.gap) / (TILE.height + TILE.gap)));
  return columns * rows;
}

function columns() {
  const tiles = ui.tiles.children;
  if (tiles.length < 2) return 1;
  const top = tiles[0].offsetTop;
  let n = 0;
  while (n < tiles.length && tiles[n].offsetTop === top) n += 1;
  return n;
}

// ---- grid ----------------------------------------------------------------------

async function openGrid({ source, label }) {
  grid.source = source;
  if (source === "class") currentClass = label;
  show("grid"); // first, so the tiles box has its size when the page size is computed
  await loadPage();
}

async function loadPage() {
  const size = pageSize();
  const data = grid.source === "quarantine"
    ? await api(`api/quarantine?size=${size}`)
    : await api(`api/page?class=${encodeURIComponent(currentClass)}&size=${size}`);
  await refreshState();
  grid.items = data.items;
  grid.marks = new Map();
  grid.history = [];
  grid.cursor = 0;
  const done = grid.source === "quarantine" ? data.done : data.class.done;
  const total = grid.source === "quarantine" ? data.total : data.class.total;
  ui.gridTitle.textContent = grid.source === "quarantine" ? "Quarantine" : currentClass;
  ui.gridCount.textContent = `${done} / ${total} reviewed · this page ${grid.items.length}`;
  ui.gridNote.textContent = grid.source === "quarantine"
    ? "images clean quarantined, with its reasons: a keep brings one back, trash removes it"
    : "everything is keep unless marked · outlined: the model prefers another class";
  ui.gridDone.hidden = grid.items.length > 0;
  ui.gridActions.classList.toggle("disabled", grid.items.length === 0);
  if (grid.items.length === 0) {
    const other = grid.source === "class" ? nextOpenClass() : null;
    ui.gridDoneTitle.textContent = grid.source === "quarantine"
      ? `All ${total} quarantined images reviewed` : `All ${total} images of ${currentClass} reviewed`;
    ui.gridDoneText.textContent = other ? `Next with images left: ${other} (Enter).` : "Apply the decisions: dvc repro review";
  }
  ui.tiles.replaceChildren(...grid.items.map((t, k) => tileNode(t, k)));
  paint();
}

function tileNode(t, k) {
  const badge = t.badge
    ? el("span", { class: `badge${t.badge.doubted ? " doubted" : ""}` },
      t.badge.doubted ? `${t.badge.class} ${pct(t.badge.p)}` : `✓ ${pct(t.badge.p)}`)
    : "";
  const reasons = t.flags.length ? el("span", { class: "tile-flags" }, t.flags.slice(1).join(" ").replaceAll("_", " ")) : "";
  const node = el("div", {
    class: `tile${t.badge && t.badge.doubted ? " doubted" : ""}`, "data-id": t.image_id,
    title: `${t.image_id} (${t.label})`,
    onclick: () => { grid.cursor = k; toggleMark("trash"); },
  },
  el("img", { src: t.thumb, alt: t.image_id, loading: "lazy", decoding: "async" }),
  badge, el("span", { class: "mark" }),
  el("span", { class: "tile-caption" }, grid.source === "quarantine" ? `${t.label} · ${t.image_id}` : t.image_id), reasons);
  return node;
}

function paint() {
  [...ui.tiles.children].forEach((node, k) => {
    const mark = grid.marks.get(grid.items[k].image_id);
    node.classList.toggle("cursor", k === grid.cursor);
    node.dataset.mark = mark ? mark.action : "keep";
    node.querySelector(".mark").textContent = !mark ? ""
      : mark.action === "relabel" ? `→ ${mark.new_label}` : MARK_WORDS[mark.action];
  });
  const counts = { keep: 0, suspicious: 0, trash: 0, relabel: 0 };
  for (const t of grid.items) counts[(grid.marks.get(t.image_id) || { action: "keep" }).action] += 1;
  ui.gridMarks.replaceChildren(...actionChips(counts));
  const current = ui.tiles.children[grid.cursor];
  if (current) current.scrollIntoView({ block: "nearest" });
}

function setMark(mark) {
  const t = grid.items[grid.cursor];
  if (!t) return;
  grid.history = grid.history.filter((id) => id !== t.image_id);
  if (mark.action === "keep") grid.marks.delete(t.image_id);
  else { grid.marks.set(t.image_id, mark); grid.history.push(t.image_id); }
  paint();
}

// The same key again clears the mark: T on a tile marked trash makes it keep again.
function toggleMark(action) {
  const t = grid.items[grid.cursor];
  if (!t) return;
  const current = grid.marks.get(t.image_id);
  setMark(current && current.action === action ? { action: "keep" } : { action });
}

function relabelAtCursor() {
  const t = grid.items[grid.cursor];
  if (!t) return;
  const probs = t.badge ? { [t.badge.class]: t.badge.p } : {};
  openPicker(t, probs, (name) => setMark({ action: "relabel", new_label: name }));
}

function moveCursor(delta) {
  if (!grid.items.length) return;
  grid.cursor = Math.min(grid.items.length - 1, Math.max(0, grid.cursor + delta));
  paint();
}

async function acceptPage() {
  if (!grid.items.length) return;
  const decisions = grid.items.map((t) => ({ image_id: t.image_id, ...(grid.marks.get(t.image_id) || { action: "keep" }) }));
  const result = await api("api/decisions", { decisions });
  accepted.push(result.events.map((e) => e.event_id));
  const marked = decisions.filter((d) => d.action !== "keep").length;
  toast(`saved ${decisions.length} decisions (${marked} marked) · Z to undo the page`, "keep");
  await loadPage();
}

// Z: the last mark on this page first; with none, the last accepted page (or group).
async function undoInGrid() {
  const last = grid.history.pop();
  if (last !== undefined) {
    grid.marks.delete(last);
    grid.cursor = Math.max(0, grid.items.findIndex((t) => t.image_id === last));
    paint();
    return;
  }
  await undoAccepted();
  await loadPage();
}

// Undo the last accepted page or group in one request (after a reload: the latest decision).
async function undoAccepted() {
  const result = await api("api/undo", accepted.length ? { event_ids: accepted.pop() } : {});
  toast(`undid ${result.events.length} decision${result.events.length > 1 ? "s" : ""}`, "undo");
}

function onGridKey(event) {
  const key = event.key;
  const moves = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -columns(), ArrowDown: columns() };
  const handled = () => { event.preventDefault(); return true; };
  if (key === "z" || key === "Z" || key === "Backspace") { run(undoInGrid); return handled(); }
  if (!grid.items.length) {
    const other = grid.source === "class" ? nextOpenClass() : null;
    if (key === "Enter" && other) { run(() => openGrid({ source: "class", label: other })); return handled(); }
    return false;
  }
  if (key in moves) { moveCursor(moves[key]); return handled(); }
  if (key === "Enter" || key === " ") { run(acceptPage); return handled(); }
  if (key === "r" || key === "R") { relabelAtCursor(); return handled(); }
  const action = MARK_KEYS[key.toLowerCase()];
  if (action) { if (action === "keep") setMark({ action }); else toggleMark(action); return handled(); }
  return false;
}

// ---- duplicates ----------------------------------------------------------------

async function showDuplicates() {
  const data = await api("api/duplicates");
  await refreshState();
  duplicates = { groups: data.groups, index: data.groups.findIndex((g) => !g.done) };
  show("duplicates");
  renderGroup();
}

function renderGroup() {
  const { groups, index } = duplicates;
  const group = groups[index];
  ui.dupCount.textContent = `${groups.filter((g) => g.done).length} / ${groups.length} groups decided`;
  ui.dupDone.hidden = Boolean(group);
  ui.dupMembers.hidden = !group;
  if (!group) {
    ui.dupTitle.textContent = groups.length ? "Every duplicate group is decided" : "clean found no duplicate groups";
    ui.dupMembers.replaceChildren();
    return;
  }
  ui.dupTitle.textContent = `Group ${index + 1} of ${groups.length}${group.cross_label ? " · the same image under two labels" : ""}`;
  ui.dupMembers.replaceChildren(...group.members.map((m, k) => el("div", {
    class: `member${k === 0 ? " keeper" : ""}${m.decided ? " decided" : ""}`, "data-id": m.image_id,
  },
  el("img", { src: m.thumb, alt: m.image_id }),
  el("div", { class: "member-label" }, el("kbd", {}, String(k + 1)), ` ${m.label}`),
  el("div", { class: "member-id" }, `${m.image_id}${k === 0 ? " · keeper" : ""}`),
  el("div", { class: "member-flags" }, m.flags.length ? m.flags.join(" · ").replaceAll("_", " ") : "no flag"),
  m.decided ? el("div", { class: "member-flags" }, `decided: ${m.decided.action}`) : "")));
}

// The keeper (first member) stays under `label`: keep, or relabel when it had another; every
// other member is trash. Members decided before (in another view) are left as they are.
function groupDecisions(group, label) {
  return group.members.filter((m) => !m.decided).map((m, k) => {
    if (m !== group.members[0] || label === null) return { image_id: m.image_id, action: "trash" };
    return label === m.label ? { image_id: m.image_id, action: "keep" }
      : { image_id: m.image_id, action: "relabel", new_label: label };
  });
}

async function decideGroup(label) {
  const group = duplicates.groups[duplicates.index];
  if (!group) return;
  const result = await api("api/decisions", { decisions: groupDecisions(group, label) });
  accepted.push(result.events.map((e) => e.event_id));
  toast(label === null ? "trashed the group · Z to undo" : `kept the keeper as ${label} · Z to undo`, label === null ? "trash" : "keep");
  await showDuplicates();
}

function onDuplicatesKey(event) {
  const key = event.key;
  const group = duplicates.groups[duplicates.index];
  const handled = () => { event.preventDefault(); return true; };
  if (key === "z" || key === "Z" || key === "Backspace") {
    run(async () => { await undoAccepted(); await showDuplicates(); });
    return handled();
  }
  if (!group) return false;
  const k = Number(key) - 1;
  if (Number.isInteger(k) && k >= 0 && k < group.members.length) { run(() => decideGroup(group.members[k].label)); return handled(); }
  if (key === "Enter" || key === " ") { run(() => decideGroup(group.members[0].label)); return handled(); }
  if (key === "t" || key === "T") { run(() => decideGroup(null)); return handled(); }
  if (key === "ArrowRight" || key === "n" || key === "N") { // skip: decide this group later
    const next = duplicates.groups.findIndex((g, i) => i > duplicates.index && !g.done);
    duplicates.index = next >= 0 ? next : duplicates.groups.findIndex((g) => !g.done);
    renderGroup();
    return handled();
  }
  return false;
}

// ---- start ---------------------------------------------------------------------

function startGrid() {
  for (const [name, id] of Object.entries({
    tiles: "tiles", gridTitle: "grid-title", gridCount: "grid-count", gridNote: "grid-note", gridMarks: "grid-marks",
    gridDone: "grid-done", gridDoneTitle: "grid-done-title", gridDoneText: "grid-done-text", gridActions: "grid-actions",
    dupTitle: "dup-title", dupCount: "dup-count", dupMembers: "dup-members", dupDone: "dup-done",
  })) ui[name] = $(id);
  for (const button of document.querySelectorAll("#grid-actions [data-mark]")) {
    const action = button.dataset.mark;
    button.addEventListener("click", () => (action === "relabel" ? relabelAtCursor() : toggleMark(action)));
  }
  $("grid-accept").addEventListener("click", () => run(acceptPage));
  $("grid-undo").addEventListener("click", () => run(undoInGrid));
}
