// The lstmtag page: calls POST /tag and POST /inspect on this server only, and draws heatmaps.
"use strict";
const $ = (id) => document.getElementById(id);
const NAMES = { h: "h (hidden)", c: "c (cell)", i: "i (input gate)", f: "f (forget gate)", g: "g (cell candidate)", o: "o (output gate)" };
const CELL_W = 34;

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

function heatmap(name, matrix, labels) {
  // matrix: [token][unit]; drawn with tokens across and units down.
  const units = matrix[0].length, tokens = matrix.length;
  const rowH = Math.max(1, Math.min(4, Math.floor(320 / units)));
  const canvas = document.createElement("canvas");
  canvas.width = tokens * CELL_W; canvas.height = units * rowH;
  canvas.dataset.name = name;
  const context = canvas.getContext("2d");
  const gate = ["i", "f", "o"].includes(name);
  const bound = Math.max(1e-6, ...matrix.flat().map(Math.abs));
  matrix.forEach((vector, t) => vector.forEach((value, u) => {
    context.fillStyle = color(value, gate, bound);
    context.fillRect(t * CELL_W, u * rowH, CELL_W, rowH);
  }));
  canvas.addEventListener("mousemove", (event) => {
    const box = canvas.getBoundingClientRect();
    const t = Math.floor((event.clientX - box.left - canvas.clientLeft) / CELL_W);
    const u = Math.floor((event.clientY - box.top - canvas.clientTop) / rowH);
    if (t < 0 || t >= tokens || u < 0 || u >= units) return;
    const tip = $("tooltip");
    tip.hidden = false;
    tip.textContent = `${name}[${labels[t]}, unit ${u}] = ${matrix[t][u].toFixed(4)}`;
    tip.style.left = `${event.clientX + 12}px`; tip.style.top = `${event.clientY + 12}px`;
  });
  canvas.addEventListener("mouseleave", () => { $("tooltip").hidden = true; });
  const wrap = document.createElement("div");
  wrap.className = "map";
  const title = document.createElement("span");
  title.textContent = NAMES[name];
  const axis = document.createElement("div");
  axis.className = "axis";
  labels.forEach((label) => { const d = document.createElement("div"); d.style.width = `${CELL_W}px`; d.textContent = label; d.title = label; axis.append(d); });
  wrap.append(title, canvas, axis);
  return wrap;
}

function showTags(result) {
  const rows = result.sentences[0];
  const columns = Object.keys(rows[0]).filter((k) => k !== "token" && !k.endsWith("_prob"));
  const table = document.createElement("table");
  const head = table.insertRow();
  head.insertCell().outerHTML = "<th>token</th>";
  rows.forEach((row) => { const th = document.createElement("th"); th.className = "token"; th.textContent = row.token; head.append(th); });
  columns.forEach((column) => {
    const tr = table.insertRow();
    tr.insertCell().outerHTML = `<th>${column.toUpperCase()}</th>`;
    rows.forEach((row) => {
      const td = tr.insertCell();
      td.className = "tag";
      td.dataset.column = column;
      td.innerHTML = `${row[column]}<br><span class="prob">${row[column + "_prob"].toFixed(3)}</span>`;
    });
  });
  $("tags").replaceChildren(table);
}

function showTrace(trace) {
  const container = $("heatmaps");
  container.replaceChildren();
  trace.layers.forEach((layer) => {
    const section = document.createElement("div");
    section.className = "layer";
    const title = document.createElement("h3");
    title.textContent = `${layer.module} · layer ${layer.layer} · ${layer.direction}`;
    const maps = document.createElement("div");
    maps.className = "maps";
    ["h", "c", "i", "f", "g", "o"].forEach((name) => maps.append(heatmap(name, layer[name], trace.tokens)));
    section.append(title, maps);
    container.append(section);
  });
}

async function run(event) {
  if (event) event.preventDefault();
  const text = $("sentence").value.trim();
  const model = $("model").value || undefined;
  $("status").textContent = "";
  if (!text) { $("status").textContent = "Type a sentence first."; return; }
  try {
    const tagged = await post("/tag", { text, model });
    const tokens = tagged.sentences.flatMap((s) => s.map((row) => row.token));
    tagged.sentences = [tagged.sentences.flat()];
    showTags(tagged);
    const chosen = window.modelInfo.find((m) => m.name === tagged.model);
    if (chosen && chosen.inspectable) showTrace(await post("/inspect", { tokens, model }));
    else $("heatmaps").replaceChildren(document.createTextNode("This model has no LSTM to show."));
  } catch (error) {
    $("status").textContent = error.message;
  }
}

async function start() {
  const info = await (await fetch("/models")).json();
  window.modelInfo = info.models;
  info.models.forEach((m) => { const option = document.createElement("option"); option.value = m.name; option.textContent = m.name; $("model").append(option); });
  $("model").value = info.default;
  $("form").addEventListener("submit", run);
}
start();
