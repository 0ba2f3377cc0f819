/* The halo-agent dashboard: jobs, a live accuracy-vs-joules plot fed by the job's
   server-sent events (read with fetch so the bearer token can be sent), power per
   rail, a form to start jobs, uploads, cancel and download.  Every text from the
   daemon is set with textContent, never as HTML. */
"use strict";

const FINAL = ["succeeded", "failed", "cancelled", "interrupted", "diverged"];
const state = {token: sessionStorage.getItem("halo-agent-token") || "", job: null,
               points: [], abort: null, estimated: null, source: null, formReady: false};
const $ = id => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "onclick") e.addEventListener("click", v); else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

class Unauthorized extends Error {}

async function api(path, opts) {
  const o = Object.assign({}, opts || {});
  o.headers = Object.assign({}, o.headers || {});
  if (state.token) o.headers["Authorization"] = "Bearer " + state.token;
  const r = await fetch(path, o);
  if (r.status === 401) { showLogin(state.token ? "the daemon refused this token" : ""); throw new Unauthorized(); }
  return r;
}

async function json(path, opts) {
  const r = await api(path, opts);
  const body = await r.json().catch(() => ({detail: r.statusText}));
  if (!r.ok) throw new Error(body.detail || r.statusText);
  return body;
}

function showLogin(message) {
  $("login").hidden = false;
  $("main").hidden = true;
  $("login-error").textContent = message || "";
}

$("login").addEventListener("submit", ev => {
  ev.preventDefault();
  state.token = $("token").value.trim();
  sessionStorage.setItem("halo-agent-token", state.token);
  $("login").hidden = true;
  $("main").hidden = false;
  start();
});

const fmt = (v, d) => (v === null || v === undefined ? "" : Number(v).toFixed(d));

// -- plot -------------------------------------------------------------------------------

function redraw() {
  drawPlot($("plot"), state.points.map(p => ({x: p.joules, y: p.accuracy})));
  const est = state.estimated ? " (estimated)" : "";
  $("plot-title").textContent = state.job ? `job ${state.job.slice(0, 8)}: ${state.points.length} points, ` +
    `joules from ${state.source || "?"}${est}` : "";
}

function handleEvent(block) {
  let event = "message", data = "", id = null;
  for (const line of block.split("\n")) {
    if (line.startsWith("event: ")) event = line.slice(7);
    else if (line.startsWith("data: ")) data += line.slice(6);
    else if (line.startsWith("id: ")) id = line.slice(4);
  }
  if (!data) return {id, done: false};
  const d = JSON.parse(data);
  if (event === "point") {
    state.points.push(d);
    redraw();
  } else if (event === "status") {
    state.source = d.energy_source;
    state.estimated = d.estimated;
    $("plot-note").textContent = `status: ${d.status}, progress ${Math.round(100 * (d.progress || 0))}%`;
    redraw();
    return {id, done: FINAL.includes(d.status)};
  } else if (event === "shutdown") {
    $("plot-note").textContent = d.detail;
    return {id, done: true};
  }
  return {id, done: false};
}

async function follow(jobId) {
  if (state.abort) state.abort.abort();
  const ctl = new AbortController();
  Object.assign(state, {abort: ctl, job: jobId, points: []});
  redraw();
  let lastId = null, done = false;
  while (!done && !ctl.signal.aborted) {
    try {
      const headers = lastId ? {"Last-Event-ID": lastId} : {};
      const r = await api(`/v1/adaptations/${jobId}/events`, {headers, signal: ctl.signal});
      if (!r.ok) { $("plot-note").textContent = (await r.json()).detail; return; }
      const reader = r.body.getReader();
      const decoder = new TextDecoder();
      let buf = "";
      for (;;) {
        const {value, done: end} = await reader.read();
        if (end) break;
        buf += decoder.decode(value, {stream: true});
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const res = handleEvent(buf.slice(0, i));
          buf = buf.slice(i + 2);
          if (res.id) lastId = res.id;
          done = done || res.done;
        }
      }
    } catch (e) {
      if (ctl.signal.aborted || e instanceof Unauthorized) return;
    }
    if (!done) await new Promise(res => setTimeout(res, 1000));  // reconnect, resuming after lastId
  }
}

// -- jobs, power, health ---------------------------------------------------------------

async function download(job) {
  const r = await api(`/v1/adaptations/${job.id}/model`);
  if (!r.ok) { alert((await r.json()).detail); return; }
  const name = (r.headers.get("content-disposition") || "").match(/filename="?([^";]+)/);
  const a = el("a", {href: URL.createObjectURL(await r.blob()), download: name ? name[1] : `adapted-${job.id}`});
  document.body.append(a);
  a.click();
  a.remove();
}

function jobRow(j) {
  const actions = el("td", {},
    el("button", {onclick: () => follow(j.id), class: "plot"}, "plot"));
  if (!FINAL.includes(j.status)) {
    actions.append(el("button", {class: "cancel", onclick: async () => {
      await api(`/v1/adaptations/${j.id}/cancel`, {method: "POST"}); refreshJobs(); }}, "cancel"));
  } else if (j.status !== "failed") {
    actions.append(el("button", {class: "download", onclick: () => download(j)}, "model"));
  }
  const last = j.latest_point || {};
  const data = j.dataset_id ? `dataset ${j.dataset_id.slice(0, 8)}` : j.task;
  const row = el("tr", {"data-job": j.id}, el("td", {}, j.id.slice(0, 8)), el("td", {}, data || ""),
    el("td", {}, j.optimizer), el("td", {class: "status"}, j.status + (j.error ? `: ${j.error.message}` : "")),
    el("td", {class: "num"}, `${Math.round(100 * j.progress)}%`),
    el("td", {class: "num"}, fmt(j.joules, 2) + (j.estimated ? " (est.)" : "")),
    el("td", {class: "num"}, fmt(last.accuracy, 3)), actions);
  return row;
}

async function refreshJobs() {
  const page = await json("/v1/adaptations?limit=20");
  $("jobs").tBodies[0].replaceChildren(...page.items.map(jobRow));
}

async function refreshPower() {
  const r = await api("/v1/power");
  const p = await r.json();
  if (!r.ok) { $("power-source").textContent = p.detail; return; }
  $("power-source").replaceChildren(`source ${p.source}` + (p.profile ? ` (profile ${p.profile})` : "") +
    `, total ${fmt(p.total_w, 2)} W `, p.estimated ? el("span", {class: "badge"}, "estimated") : "measured");
  $("power").tBodies[0].replaceChildren(...Object.entries(p.rails_w).map(([rail, w]) =>
    el("tr", {}, el("td", {}, rail), el("td", {class: "num"}, fmt(w, 3)))));
}

async function refreshHealth() {
  const h = await json("/v1/health");
  $("health").textContent = `v${h.version} - ${h.queued} queued` + (h.running ? `, running ${h.running.slice(0, 8)}` : "");
}

// -- the start form and uploads ------------------------------------------------------------

function fill(select, options) {
  const keep = select.value;
  select.replaceChildren(...options.map(([value, label]) => el("option", {value}, label)));
  if (options.some(([v]) => v === keep)) select.value = keep;
}

async function loadChoices() {
  const [tasks, opts, datasets, models] = await Promise.all([json("/v1/tasks"), json("/v1/optimizers"),
    json("/v1/datasets"), json("/v1/models")]);
  fill($("task"), [["", "(none: uploaded data and model)"]].concat(tasks.tasks.map(t => [t.name, t.name])));
  if (!state.formReady) $("task").value = tasks.tasks.some(t => t.name === "synthetic-a") ? "synthetic-a" : "";
  fill($("dataset"), [["", "the task's target data"]].concat(datasets.items.map(d =>
    [d.id, `${d.name} (${d.format}, ${d.input_shape.join("x")}, ${d.num_classes} classes)`])));
  fill($("model"), [["", "the task's source model"]].concat(tasks.models.map(m => ["arch:" + m, `${m} (task's source)`]),
    models.items.map(m => ["id:" + m.id, `${m.name} (${m.format}, ${m.input_shape.join("x")}, ${m.num_classes} classes)`])));
  fill($("optimizer"), opts.optimizers.map(o => [o.name, o.name]));
  if (!state.formReady) $("optimizer").value = "adam";
  state.formReady = true;
}

$("start").addEventListener("submit", async ev => {
  ev.preventDefault();
  const body = {optimizer: $("optimizer").value, budget: {steps: Number($("steps").value)},
                eval_every: Number($("eval-every").value)};
  if ($("task").value) body.task = $("task").value;
  if ($("dataset").value) body.dataset_id = $("dataset").value;
  const model = $("model").value;
  if (model.startsWith("arch:")) body.model = model.slice(5);
  if (model.startsWith("id:")) body.model_id = model.slice(3);
  if ($("lr").value) body.lr = Number($("lr").value);
  try {
    const r = await json("/v1/adaptations", {method: "POST", body: JSON.stringify(body),
                                              headers: {"Content-Type": "application/json"}});
    $("start-result").textContent = `job ${r.id.slice(0, 8)} ${r.status}`;
    refreshJobs();
    follow(r.id);
  } catch (e) {
    if (!(e instanceof Unauthorized)) $("start-result").textContent = e.message;
  }
});

async function upload(path, form) {
  try {
    const r = await json(path, {method: "POST", body: form});
    $("upload-result").textContent = `stored ${r.name} (${r.id.slice(0, 12)})`;
    loadChoices();
  } catch (e) {
    if (!(e instanceof Unauthorized)) $("upload-result").textContent = e.message;
  }
}

$("upload-dataset").addEventListener("submit", ev => {
  ev.preventDefault();
  const f = new FormData();
  f.append("file", $("dataset-file").files[0]);
  f.append("name", $("dataset-name").value);
  f.append("label_column", $("label-column").value || "label");
  if ($("image-size").value) f.append("image_size", $("image-size").value);
  f.append("channels", $("channels").value);
  upload("/v1/datasets", f);
});

$("upload-model").addEventListener("submit", ev => {
  ev.preventDefault();
  const f = new FormData();
  f.append("file", $("model-file").files[0]);
  upload("/v1/models", f);
});

// -- main loop ----------------------------------------------------------------------------

let timer = null;

async function tick() {
  try {
    await Promise.all([refreshHealth(), refreshJobs(), refreshPower()]);
  } catch (e) {
    if (e instanceof Unauthorized) { clearInterval(timer); timer = null; }
  }
}

async function start() {
  try {
    await loadChoices();
  } catch (e) {
    if (e instanceof Unauthorized) return;
    $("start-result").textContent = e.message;
  }
  redraw();
  await tick();
  if (timer === null) timer = setInterval(tick, 2000);
}

start();
