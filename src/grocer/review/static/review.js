// grocer review: the swipe page (single mode; grid.js adds the grid, quarantine and
// duplicates views). Every URL is relative to the page (/<token>/), so the
// token travels with each request. One request at a time: keys pressed while a request
// is in flight are ignored, so a held key can never send two decisions.
"use strict";

const KEYS = "1234567890abcdefghijklmnopqrtuvwxy"; // class keys; s (summary) and z (undo) keep their meaning
const ACTION_WORDS = { keep: "kept", suspicious: "marked suspicious", trash: "trashed", relabel: "relabelled" };

const ui = {};
let state = null; // /api/state
let view = "classes";
let mode = "single"; // single | grid: what opening a class shows (state.mode at start, G toggles)
let currentClass = null;
let item = null; // the image on screen, or null when the class is done
let busy = false;

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function pct(p) { return p >= 0.995 ? "100%" : p < 0.005 ? "<1%" : `${Math.round(p * 100)}%`; }

function toast(text, kind) {
  ui.toast.textContent = text;
  ui.toast.className = `toast ${kind || ""}`;
  ui.toast.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { ui.toast.hidden = true; }, kind === "error" ? 6000 : 2500);
}

async function run(task) {
  if (busy) return;
  busy = true;
  document.body.classList.add("busy");
  try { await task(); } catch (err) { toast(err.message, "error"); } finally {
    busy = false;
    document.body.classList.remove("busy");
  }
}

function show(name) {
  view = name;
  for (const v of ["classes", "review", "grid", "duplicates", "summary"]) $(`view-${v}`).hidden = v !== name;
  ui.navClasses.classList.toggle("active", name === "classes");
  ui.navSummary.classList.toggle("active", name === "summary");
  ui.navQuarantine.classList.toggle("active", name === "grid" && grid.source === "quarantine");
  ui.navDuplicates.classList.toggle("active", name === "duplicates");
  ui.navMode.textContent = `Mode: ${mode}`;
  const hash = name === "review" ? `#class=${encodeURIComponent(currentClass)}`
    : name === "grid" ? (grid.source === "quarantine" ? "#quarantine" : `#grid=${encodeURIComponent(currentClass)}`)
      : `#${name}`;
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

async function refreshState() {
  state = await api("api/state");
  ui.session.textContent = `session ${state.session}`;
  ui.overallText.textContent = progressLine(state.progress);
  ui.overallFill.style.width = `${state.total ? (100 * state.done) / state.total : 0}%`;
  ui.navQuarantine.textContent = `Quarantine ${state.quarantine.done}/${state.quarantine.total}`;
  ui.navDuplicates.textContent = `Duplicates ${state.duplicates.done}/${state.duplicates.total}`;
}

function duration(seconds) {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  const minutes = Math.round(seconds / 60);
  return minutes < 90 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

// "120 / 9889 reviewed · 0.42 s/image · about 1 h 08 min left"
function progressLine(p) {
  const parts = [`${p.done} / ${p.total} reviewed`];
  if (p.seconds_per_image !== null) {
    parts.push(`${p.seconds_per_image.toFixed(2)} s/image`);
    if (p.done < p.total) parts.push(`about ${duration(p.seconds_left)} left`);
  }
  return parts.join(" · ");
}

function actionChips(actions) {
  return Object.entries(actions).filter(([, n]) => n > 0).map(([a, n]) => el("span", { class: `chip ${a}` }, `${a} ${n}`));
}

// ---- classes -------------------------------------------------------------------

async function showClasses() {
  await refreshState();
  ui.classesSub.textContent = state.warning ? `${state.warning} · file order` : state.predictions
    ? `${state.order === "likely_errors" ? "likely errors first" : "file order"} · hints from ${state.predictions}`
    : "no model predictions yet (run dvc repro for hints and likely-errors order): file order";
  ui.classGrid.replaceChildren(...state.classes.map((c, k) => {
    const left = c.total - c.done;
    const bar = el("div", { class: "meter" }, el("div", { class: "meter-fill" }));
    bar.firstChild.style.width = `${c.total ? (100 * c.done) / c.total : 0}%`;
    const counts = el("div", { class: "mini" }, ...actionChips(c.actions));
    return el("button", {
      type: "button", class: `class-card${left === 0 ? " complete" : ""}`, "data-class": c.name,
      onclick: () => run(() => openClass(c.name)),
    },
    el("div", { class: "card-top" }, el("kbd", {}, KEYS[k] || ""), el("span", { class: "card-name" }, c.name)),
    el("div", { class: "card-count" }, left === 0 ? `all ${c.total} done` : `${c.done} / ${c.total}`),
    bar, counts);
  }));
  show("classes");
}

// ---- review --------------------------------------------------------------------

async function openClass(name) {
  if (mode === "grid") return openGrid({ source: "class", label: name });
  currentClass = name;
  const data = await api(`api/next?class=${encodeURIComponent(name)}`);
  await refreshState();
  render(data.item, data.class);
  show("review");
}

function render(next, progress) {
  item = next;
  ui.infoLabel.textContent = progress.name;
  ui.infoCount.textContent = `${progress.done} / ${progress.total} reviewed`;
  ui.classFill.style.width = `${progress.total ? (100 * progress.done) / progress.total : 0}%`;
  ui.classActions.replaceChildren(...actionChips(progress.actions));
  ui.doneCard.hidden = item !== null;
  ui.photo.hidden = item === null;
  ui.actions.classList.toggle("disabled", item === null);
  if (item === null) {
    ui.hints.hidden = true;
    for (const id of ["infoId", "infoSize", "infoGroup", "infoFlags"]) ui[id].textContent = "–";
    const other = nextOpenClass();
    ui.doneTitle.textContent = `All ${progress.total} images of ${progress.name} reviewed`;
    ui.doneText.textContent = other ? `Next with images left: ${other}.` : "Every class is done. Apply the decisions:";
    ui.doneNext.hidden = !other;
    ui.doneText.append(...(other ? [] : [el("pre", {}, state.apply.join("   # or\n"))]));
    return;
  }
  ui.photo.src = item.url;
  ui.photo.alt = `${item.image_id} (${item.label})`;
  ui.infoId.textContent = item.image_id;
  ui.infoSize.textContent = `${item.width} × ${item.height} px`;
  ui.infoGroup.textContent = item.group || "–";
  const flags = item.flags.length
    ? [el("span", { class: `chip flag ${item.flags[0]}` }, item.flags[0]),
       ...item.flags.slice(1).map((f) => el("span", { class: "chip reason" }, f.replaceAll("_", " ")))]
    : [el("span", { class: "chip ok" }, "no flag")];
  if (!item.in_variant) flags.push(el("div", { class: "note" }, `not in the ${state.variant} variant: keep brings it back`));
  ui.infoFlags.replaceChildren(...flags);
  ui.source.textContent = state.predictions
    ? `${state.order === "likely_errors" ? "Likely errors first, ranked by cleanlab's label quality" : "File order"}. Hints: ${state.predictions}.`
    : "No model predictions yet: file order, no hints.";
  ui.hints.hidden = item.hints.length === 0;
  const disagrees = item.hints.length > 1 && item.hints[1].p > item.hints[0].p;
  ui.hintsTitle.textContent = disagrees ? `model prefers ${item.hints[1].class}` : "model";
  ui.hints.classList.toggle("disagree", disagrees);
  ui.hintList.replaceChildren(...item.hints.map((h) => {
    const bar = el("span", { class: "hint-bar" });
    bar.style.width = `${Math.max(2, Math.round(h.p * 100))}%`;
    return el("li", { class: h.current ? "current" : "" },
      el("span", { class: "hint-name" }, h.class), el("span", { class: "hint-p" }, pct(h.p)), bar);
  }));
}

function nextOpenClass() {
  const open = state.classes.filter((c) => c.done < c.total);
  const after = open.find((c) => c.name > currentClass);
  return (after || open[0] || {}).name;
}

async function decide(action, newLabel) {
  if (!item) return;
  const decided = item;
  const body = { image_id: decided.image_id, action };
  if (newLabel) body.new_label = newLabel;
  const result = await api("api/decision", body);
  const what = action === "relabel" ? `relabelled ${decided.image_id} → ${newLabel}` : `${ACTION_WORDS[action]} ${decided.image_id}`;
  ui.last.textContent = `last: ${what}`;
  toast(`${what} · Z to undo`, action);
  const data = await api(`api/next?class=${encodeURIComponent(currentClass)}`);
  await refreshState();
  render(data.item, data.class || result.class);
}

async function undo() {
  const result = await api("api/undo", {});
  const ev = result.event;
  ui.last.textContent = `last: undid ${ev.image_id}`;
  toast(`undid the decision on ${ev.image_id} (${ev.class})`, "undo");
  await refreshState();
  if (result.item) {
    currentClass = result.item.label;
    render(result.item, state.classes.find((c) => c.name === currentClass));
    show("review");
  } else if (view === "classes") {
    await showClasses();
  }
}

// ---- relabel picker ------------------------------------------------------------

// The class picker for one image: `target` has image_id, label and choices (the model's
// likeliest first); `probs` maps class -> probability where known; `onPick(name)` runs on a choice.
let picking = null;

function openPicker(target, probs, onPick) {
  picking = { choices: target.choices, onPick };
  ui.pickerFrom.textContent = `${target.image_id} (${target.label})`;
  ui.pickerGrid.replaceChildren(...target.choices.map((name, k) => el("button", {
    type: "button", class: "pick", "data-class": name, onclick: () => pick(name),
  }, el("kbd", {}, KEYS[k] || ""), el("span", { class: "pick-name" }, name),
  el("span", { class: "pick-p" }, name in probs ? pct(probs[name]) : ""))));
  ui.picker.hidden = false;
}

function pick(name) {
  const { onPick } = picking;
  closePicker();
  onPick(name);
}

function openSinglePicker() {
  if (!item) return;
  openPicker(item, Object.fromEntries(item.hints.map((h) => [h.class, h.p])), (name) => run(() => decide("relabel", name)));
}

function closePicker() { ui.picker.hidden = true; picking = null; }

// ---- summary -------------------------------------------------------------------

async function showSummary() {
  const s = await api("api/summary");
  await refreshState();
  ui.summarySession.textContent = `session ${s.session} · ${s.done} / ${s.total} reviewed`;
  const row = (cells, cls) => el("tr", { class: cls || "" }, ...cells.map((c, i) => el(i ? "td" : "th", {}, String(c))));
  ui.summaryBody.replaceChildren(...s.classes.map((c) => row(
    [c.name, `${c.done} / ${c.total}`, c.actions.keep, c.actions.suspicious, c.actions.trash, c.actions.relabel],
    c.done === 0 ? "idle" : "",
  )));
  ui.summaryFoot.replaceChildren(row(["all", `${s.done} / ${s.total}`, s.totals.keep, s.totals.suspicious, s.totals.trash, s.totals.relabel]));
  ui.summaryJournal.textContent = s.journal;
  ui.summaryApply.textContent = `${s.apply[0]}      # the review stage only\n${s.apply[1]}             # review and everything after it`;
  const relabels = Object.entries(s.relabels);
  ui.summaryRelabels.replaceChildren(...(relabels.length ? relabels.map(([pair, n]) => el("li", {}, `${pair}: ${n}`))
    : [el("li", { class: "sub" }, "none yet")]));
  ui.summaryRecent.replaceChildren(...(s.recent.length ? s.recent.map((e) => el("li", {},
    el("span", { class: `chip ${e.action}` }, e.action), ` ${e.image_id} (${e.class}${e.new_label ? ` → ${e.new_label}` : ""})`))
    : [el("li", { class: "sub" }, "no decisions yet")]));
  show("summary");
}

// ---- keyboard ------------------------------------------------------------------

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return; // a held key acts once
  const key = event.key;
  if (!ui.picker.hidden) {
    event.preventDefault();
    if (key === "Escape") closePicker();
    const k = KEYS.indexOf(key.toLowerCase());
    if (k >= 0 && k < picking.choices.length) pick(picking.choices[k]);
    return;
  }
  if ((key === "g" || key === "G") && view !== "classes") { event.preventDefault(); run(toggleMode); return; }
  if (view === "grid" && onGridKey(event)) return;
  if (view === "duplicates" && onDuplicatesKey(event)) return;
  if (key === "z" || key === "Z" || key === "Backspace") { event.preventDefault(); run(undo); return; }
  if (key === "s" || key === "S") { event.preventDefault(); run(showSummary); return; }
  if (key === "Escape") { event.preventDefault(); run(showClasses); return; }
  if (view === "classes") {
    const k = KEYS.indexOf(key.toLowerCase());
    if (k >= 0 && state && k < state.classes.length) { event.preventDefault(); run(() => openClass(state.classes[k].name)); }
    return;
  }
  if (view !== "review") return;
  if (!item) {
    const other = nextOpenClass();
    if (key === "Enter" && other) { event.preventDefault(); run(() => openClass(other)); }
    return;
  }
  const action = { ArrowLeft: "keep", ArrowRight: "suspicious", t: "trash", T: "trash" }[key];
  if (action) { event.preventDefault(); run(() => decide(action)); }
  else if (key === "r" || key === "R") { event.preventDefault(); openSinglePicker(); }
}

// Single <-> grid: the class on screen stays on screen in the other mode.
async function toggleMode() {
  mode = mode === "grid" ? "single" : "grid";
  if (view === "review" || (view === "grid" && grid.source === "class")) await openClass(currentClass);
  else show(view);
}

// ---- start ---------------------------------------------------------------------

function start() {
  for (const [name, id] of Object.entries({
    session: "session", overallText: "overall-text", overallFill: "overall-fill", navClasses: "nav-classes",
    navSummary: "nav-summary", classesSub: "classes-sub", classGrid: "class-grid", photo: "photo", hints: "hints",
    hintList: "hint-list", hintsTitle: "hints-title", classActions: "class-actions", doneCard: "done-card", doneTitle: "done-title", doneText: "done-text", doneNext: "done-next",
    infoLabel: "info-label", infoCount: "info-count", classFill: "class-fill", infoId: "info-id", infoSize: "info-size",
    infoGroup: "info-group", infoFlags: "info-flags", last: "last", source: "source", actions: "actions", picker: "picker",
    pickerFrom: "picker-from", pickerGrid: "picker-grid", toast: "toast", summarySession: "summary-session",
    summaryJournal: "summary-journal", summaryApply: "summary-apply", summaryRelabels: "summary-relabels",
    summaryRecent: "summary-recent", navMode: "nav-mode", navQuarantine: "nav-quarantine",
    navDuplicates: "nav-duplicates",
  })) ui[name] = $(id);
  startGrid();
  ui.summaryBody = document.querySelector("#summary-table tbody");
  ui.summaryFoot = document.querySelector("#summary-table tfoot");

  ui.navClasses.addEventListener("click", () => run(showClasses));
  ui.navSummary.addEventListener("click", () => run(showSummary));
  ui.navMode.addEventListener("click", () => run(toggleMode));
  ui.navQuarantine.addEventListener("click", () => run(() => openGrid({ source: "quarantine" })));
  ui.navDuplicates.addEventListener("click", () => run(showDuplicates));
  $("done-next").addEventListener("click", () => run(() => openClass(nextOpenClass())));
  $("done-classes").addEventListener("click", () => run(showClasses));
  $("done-summary").addEventListener("click", () => run(showSummary));
  for (const button of document.querySelectorAll(".act[data-action]")) {
    const action = button.dataset.action;
    button.addEventListener("click", () => (action === "relabel" ? openSinglePicker() : run(() => decide(action))));
  }
  $("undo").addEventListener("click", () => run(undo));
  ui.picker.addEventListener("click", (event) => { if (event.target === ui.picker) closePicker(); });
  document.addEventListener("keydown", onKey);

  const [, hashMode, hashClass] = location.hash.match(/^#(class|grid)=(.+)$/) || [];
  const wanted = decodeURIComponent(hashClass || "");
  run(async () => {
    await refreshState();
    mode = hashMode === "grid" ? "grid" : hashMode === "class" ? "single" : state.mode;
    if (wanted && state.classes.some((c) => c.name === wanted)) await openClass(wanted);
    else if (location.hash === "#summary") await showSummary();
    else if (location.hash === "#quarantine") await openGrid({ source: "quarantine" });
    else if (location.hash === "#duplicates") await showDuplicates();
    else await showClasses();
  });
}

document.addEventListener("DOMContentLoaded", start);
