// The lstmtag page: calls POST /tag, POST /inspect/view and POST /search on this server only, and draws heatmaps.
"use strict";
const $ = (id) => document.getElementById(id);
const NAMES = { h: "h (hidden)", c: "c (cell)", i: "i (input gate)", f: "f (forget gate)", g: "g (cell candidate)", o: "o (output gate)" };
const SUMMARY = [["h_norm", "|h|"], ["c_norm", "|c|"], ["i", "mean i"], ["f", "mean f"], ["g", "mean g"], ["o", "mean o"], ["kept", "f keeps"]];
const selected = new Set(); // unit names module:layer:direction:unit
let lastTokens = null, lastTags = [], hasCorpus = false;

async function post(path, body) {
  const response = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function color(value, gate, bound) {
  if (gate) { // 0..1: white to dark green
    const t = Math.max(0, Math.min(1, value));
    return `rgb(${Math.round(255 - 215 * t)},${Math.round(255 - 120 * t)},${Math.round(255 - 185 * t)})`;
  }
  const t = Math.max(-1, Math.min(1, value / bound)); // diverging: blue - white - red
  return t >= 0 ? `rgb(255,${Math.round(255 - 200 * t)},${Math.round(255 - 200 * t)})`
                : `rgb(${Math.round(255 + 200 * t)},${Math.round(255 + 200 * t)},255)`;
}

function showTip(event, text) {
  const tip = $("tooltip");
  tip.hidden = false;
  tip.textContent = text;
  tip.style.left = `${event.clientX + 12}px`; tip.style.top = `${event.clientY + 12}px`;
}

// Sizes that fit the page: cells narrow as the sentence grows, so a panel never runs past the right edge.
function geometry(tokens, units) {
  const width = $("heatmaps").clientWidth || window.innerWidth;
  const cellW = Math.max(3, Math.min(34, Math.floor((width - 80) / tokens)));
  const rowH = units <= 64 ? 10 : Math.max(2, Math.floor(384 / units));
  return { cellW, rowH };
}

function axis(labels, cellW) {
  const row = document.createElement("div");
  row.className = cellW < 28 ? "axis vertical" : "axis";
  labels.forEach((label) => { const d = document.createElement("div"); d.style.width = `${cellW}px`; d.textContent = label; d.title = label; row.append(d); });
  return row;
}

function unitName(layer, unit) { return `${layer.module}:${layer.layer}:${layer.direction}:${unit}`; }

function toggle(name) {
  if (selected.has(name)) selected.delete(name); else selected.add(name);
  document.querySelectorAll(".unit-label").forEach((el) => el.classList.toggle("selected", selected.has(el.dataset.unit)));
  $("selected").textContent = selected.size ? [...selected].join(", ") : "none (click a unit's number or row)";
  $("search").disabled = selected.size === 0;
}

function heatmap(name, layer, labels) {
  // layer[name]: [token][k] for the chosen units layer.units[k]; drawn with tokens across and units down.
  const matrix = layer[name], units = layer.units, tokens = matrix.length;
  const { cellW, rowH } = geometry(tokens, units.length);
  const canvas = document.createElement("canvas");
  canvas.width = tokens * cellW; canvas.height = units.length * rowH;
  canvas.dataset.name = name;
  const context = canvas.getContext("2d");
  const gate = ["i", "f", "o"].includes(name);
  const bound = Math.max(1e-6, ...matrix.flat().map(Math.abs));
  matrix.forEach((vector, t) => vector.forEach((value, k) => {
    context.fillStyle = color(value, gate, bound);
    context.fillRect(t * cellW, k * rowH, cellW, rowH);
  }));
  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    return [Math.floor((event.clientX - box.left - canvas.clientLeft) / cellW), Math.floor((event.clientY - box.top - canvas.clientTop) / rowH)];
  };
  canvas.addEventListener("mousemove", (event) => {
    const [t, k] = at(event);
    if (t < 0 || t >= tokens || k < 0 || k >= units.length) return;
    showTip(event, `${name}[${labels[t]}, unit ${units[k]}] = ${matrix[t][k].toFixed(4)}`);
  });
  canvas.addEventListener("mouseleave", () => { $("tooltip").hidden = true; });
  canvas.addEventListener("click", (event) => { const [, k] = at(event); if (k >= 0 && k < units.length) toggle(unitName(layer, units[k])); });
  const names = document.createElement("div");
  names.className = "units";
  if (rowH >= 8) units.forEach((unit) => {
    const d = document.createElement("div");
    d.className = "unit-label"; d.dataset.unit = unitName(layer, unit);
    d.style.height = `${rowH}px`; d.textContent = unit;
    d.classList.toggle("selected", selected.has(d.dataset.unit));
    d.addEventListener("click", () => toggle(d.dataset.unit));
    names.append(d);
  });
  return panel(NAMES[name], names, canvas, axis(labels, cellW));
}

function summaryStrip(layer, labels) {
  // One row per summary number, coloured by its share of the row's largest value; exact values on hover.
  const tokens = labels.length, rowH = 12;
  const { cellW } = geometry(tokens, 1);
  const canvas = document.createElement("canvas");
  canvas.width = tokens * cellW; canvas.height = SUMMARY.length * rowH;
  canvas.className = "summary";
  const context = canvas.getContext("2d");
  SUMMARY.forEach(([key], r) => {
    const values = layer.summary.map((row) => row[key]);
    const top = Math.max(1e-6, ...values.filter((v) => v !== null).map(Math.abs));
    values.forEach((v, t) => {
      context.fillStyle = v === null ? "#eee" : color(v / top, true, 1);
      context.fillRect(t * cellW, r * rowH, cellW, rowH);
    });
  });
  canvas.addEventListener("mousemove", (event) => {
    const box = canvas.getBoundingClientRect();
    const t = Math.floor((event.clientX - box.left) / cellW), r = Math.floor((event.clientY - box.top) / rowH);
    if (t < 0 || t >= tokens || r < 0 || r >= SUMMARY.length) return;
    const value = layer.summary[t][SUMMARY[r][0]];
    showTip(event, `${SUMMARY[r][1]}[${labels[t]}] = ${value === null ? "- (first step read)" : value.toFixed(4)}`);
  });
  canvas.addEventListener("mouseleave", () => { $("tooltip").hidden = true; });
  const names = document.createElement("div");
  names.className = "units";
  SUMMARY.forEach(([, label]) => { const d = document.createElement("div"); d.style.height = `${rowH}px`; d.textContent = label; names.append(d); });
  return panel("per token: |h|, |c|, gate means, share of c kept", names, canvas, axis(labels, cellW));
}

function panel(title, names, canvas, axisRow) {
  const wrap = document.createElement("div");
  wrap.className = "map";
  const heading = document.createElement("span");
  heading.textContent = title;
  const body = document.createElement("div");
  body.className = "body";
  const column = document.createElement("div");
  column.append(canvas, axisRow);
  body.append(names, column);
  wrap.append(heading, body);
  return wrap;
}

// One cell's content: the tag (features as one chip per Key=Value, none as "_") and its probability.
function tagCell(td, column, value, prob) {
  td.className = "tag";
  td.dataset.column = column;
  const shown = document.createElement("div");
  if (column === "feats") {
    shown.className = "feats";
    (value === "_" ? ["_"] : value.split("|")).forEach((feature) => {
      const chip = document.createElement("span");
      chip.className = feature === "_" ? "feat none" : "feat";
      chip.textContent = feature;
      shown.append(chip);
    });
  } else {
    shown.textContent = value; // text, never markup: a lemma is built from the user's own words
  }
  const p = document.createElement("span");
  p.className = "prob";
  p.textContent = prob.toFixed(3);
  td.append(shown, p);
}

// sentences: /tag's answer for text: tokens with their words; a multiword token spans its words.
function showTags(sentences) {
  const words = sentences.flatMap((s) => s.tokens.flatMap((t) => t.words));
  const named = Object.keys(words[0]).filter((k) => k !== "word" && !k.endsWith("_prob"));
  const columns = [...named.filter((c) => c !== "feats"), ...named.filter((c) => c === "feats")];
  const table = document.createElement("table");
  const starts = new Set(); // the word index where each sentence begins, drawn with a wider rule
  let count = 0;
  sentences.forEach((s) => { starts.add(count); count += s.tokens.reduce((n, t) => n + t.words.length, 0); });
  const heading = (text, title) => { const th = document.createElement("th"); th.textContent = text; if (title) th.title = title; return th; };
  if (sentences.some((s) => s.tokens.some((t) => t.words.length > 1))) {
    const tr = table.insertRow();
    tr.append(heading("token", "as written; a multiword token spans its words"));
    sentences.forEach((s) => s.tokens.forEach((t) => {
      const th = heading(t.text);
      th.colSpan = t.words.length;
      th.className = t.words.length > 1 ? "surface mwt" : "surface";
      if (t.words.length > 1) th.title = `multiword token: ${t.words.map((w) => w.word).join(" + ")}`;
      tr.append(th);
    }));
  }
  const head = table.insertRow();
  head.append(heading("word"));
  words.forEach((w) => { const th = heading(w.word); th.className = "token"; head.append(th); });
  columns.forEach((column) => {
    const tr = table.insertRow();
    tr.append(heading(column.toUpperCase()));
    words.forEach((w) => tagCell(tr.insertCell(), column, w[column], w[column + "_prob"]));
  });
  [...table.rows].forEach((tr) => {
    let at = -1; // the word index of the cell's first word (-1: the row's heading)
    [...tr.cells].forEach((cell) => {
      if (at > 0 && starts.has(at)) cell.classList.add("sentence-start");
      at += cell.colSpan;
    });
  });
  $("tags").replaceChildren(table);
  lastTags = [...new Set(words.map((w) => w[columns[0]]))].sort();
  tagOptions();
}

// Order by a tag: within this sentence (its predicted tags), or over the server's corpus (gold tags).
function tagOptions() {
  const order = $("order"), keep = order.value;
  order.querySelectorAll("option.tag").forEach((o) => o.remove());
  const scopes = [["tag", "this sentence"], ...(hasCorpus ? [["corpus-tag", "the corpus"]] : [])];
  scopes.forEach(([prefix, where]) => lastTags.forEach((tag) => {
    const option = document.createElement("option");
    option.className = "tag"; option.value = `${prefix}:${tag}`; option.textContent = `selectivity for ${tag} (${where})`;
    order.append(option);
  }));
  order.value = [...order.options].some((o) => o.value === keep) ? keep : "variance";
}

function showView(view) {
  if (view.corpus && !hasCorpus) { hasCorpus = true; tagOptions(); }
  const container = $("heatmaps");
  container.replaceChildren();
  view.layers.filter((layer) => layer.units.length).forEach((layer) => {
    const section = document.createElement("div");
    section.className = "layer";
    const title = document.createElement("h3");
    const how = layer.units.length === layer.size ? "all" : `top ${layer.units.length} of`;
    title.textContent = `${layer.module} · layer ${layer.layer} · ${layer.direction} — ${how} ${layer.size} units, by ${view.order}`;
    const maps = document.createElement("div");
    maps.className = "maps";
    ["h", "c", "i", "f", "g", "o"].forEach((name) => maps.append(heatmap(name, layer, view.tokens)));
    maps.append(summaryStrip(layer, view.tokens));
    section.append(title, maps);
    container.append(section);
  });
  if (!container.children.length) container.append(document.createTextNode("No layer has the units asked for."));
}

function viewRequest() {
  let order = $("order").value;
  if (order === "units") order = `units:${$("unit-list").value}`;
  const top = $("all-units").checked ? 0 : Math.max(1, parseInt($("top").value, 10) || 32);
  return { order, top };
}

async function redraw() {
  if (!lastTokens) return;
  $("unit-list").hidden = $("order").value !== "units";
  if ($("order").value.startsWith("corpus-tag:")) $("status").textContent = "ordering by the corpus (the first time, the server reads it all)...";
  try {
    showView(await post("/inspect/view", { tokens: lastTokens, model: $("model").value || undefined, ...viewRequest() }));
    $("status").textContent = "";
  } catch (error) {
    $("status").textContent = error.message;
  }
}

async function run(event) {
  if (event) event.preventDefault();
  const text = $("sentence").value.trim();
  const model = $("model").value || undefined;
  $("status").textContent = "";
  if (!text) { $("status").textContent = "Type a sentence first."; return; }
  try {
    const tagged = await post("/tag", { text, model });
    const tokens = tagged.sentences.flatMap((s) => s.tokens.flatMap((t) => t.words.map((w) => w.word)));
    showTags(tagged.sentences);
    const chosen = window.modelInfo.find((m) => m.name === tagged.model);
    lastTokens = null;
    if (chosen && chosen.inspectable) { lastTokens = tokens; $("view").hidden = false; await redraw(); }
    else $("heatmaps").replaceChildren(document.createTextNode("This model has no LSTM to show."));
  } catch (error) {
    $("status").textContent = error.message;
  }
}

async function search() {
  const body = { units: [...selected], threshold: parseFloat($("threshold").value), min_length: parseInt($("min-length").value, 10) || 1, model: $("model").value || undefined };
  const list = $("results");
  list.replaceChildren();
  $("search-status").textContent = "searching...";
  try {
    const found = await post("/search", body);
    $("search-status").textContent = `${found.matches} spans in ${found.sentences} sentences where ${found.units.join(", ")} > ${found.threshold}; the longest:`;
    found.spans.forEach((span) => {
      const item = document.createElement("li");
      const hit = document.createElement("mark");
      hit.textContent = span.text;
      item.append(document.createTextNode(`${span.left} `), hit, document.createTextNode(` ${span.right}`));
      item.title = `length ${span.length}, strength ${span.strength.toFixed(3)}`;
      list.append(item);
    });
  } catch (error) {
    $("search-status").textContent = error.message;
  }
}

async function start() {
  const info = await (await fetch("/models")).json();
  window.modelInfo = info.models;
  info.models.forEach((m) => { const option = document.createElement("option"); option.value = m.name; option.textContent = m.name; $("model").append(option); });
  $("model").value = info.default;
  $("form").addEventListener("submit", run);
  ["order", "all-units"].forEach((id) => $(id).addEventListener("change", redraw));
  ["top", "unit-list"].forEach((id) => $(id).addEventListener("change", redraw));
  $("search").addEventListener("click", search);
  let width = window.innerWidth;
  window.addEventListener("resize", () => { if (Math.abs(window.innerWidth - width) > 40) { width = window.innerWidth; redraw(); } });
}
start();
