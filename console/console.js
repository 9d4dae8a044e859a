// Sono operator console: plain JavaScript, no build step, no network beyond sonod's console
// listener. Live data come over one WebSocket (/console/live); every command is an HTTP request
// to the control API through the console, carrying the session's CSRF token.
"use strict";

const VIEWS = ["PLAX", "PSAX", "A4C", "A2C", "SC4C"];
const DEFAULT_VIEWS = ["PLAX", "PSAX", "A4C", "A2C"];
const FORCE_WINDOW_MS = 10000;

// What the page knows; `window.sonoConsole` exposes it to the browser tests.
const model = {
  csrf: null, role: null, user: null, limits: null, status: null, telemetry: null,
  force: [], frames: 0, frameTimes: [], latencies: [], lastFrameNumber: null,
  session: null, connected: false, lastMessage: 0, ws: null,
};
window.sonoConsole = model;

const $ = (id) => document.getElementById(id);

async function request(method, path, body) {
  const headers = { "X-CSRF-Token": model.csrf || "" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, credentials: "same-origin",
                                   body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (error) {
    setReachable(false);
    throw new Error("sonod unreachable");
  }
  let data = null;
  try { data = await response.json(); } catch (error) { data = null; }
  if (response.status === 401) showLoginNeeded(data && data.error);
  return { status: response.status, data };
}

async function command(path, body) {
  const sent = performance.now();
  const { status, data } = await request("POST", path, body);
  model.lastCommand = { path, status, ms: performance.now() - sent };
  if (status >= 300) notice(`${path}: ${data ? data.error : "HTTP " + status}`, true);
  else notice(`${path}: ${status}${data && data.state ? " → " + data.state : ""}`, false);
  return status;
}

let noticeTimer = null;
function notice(text, bad) {
  const el = $("notice");
  el.textContent = text;
  el.hidden = false;
  el.style.background = bad ? "#6a1f1f" : "#23402b";
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { el.hidden = true; }, bad ? 8000 : 3000);
}

function showLoginNeeded(message) {
  document.body.innerHTML = "";
  const div = document.createElement("div");
  div.className = "login-needed";
  div.id = "login-needed";
  div.textContent = (message || "No console session.") + " Run `sonoctl console` on this machine and open the URL it prints.";
  document.body.appendChild(div);
}

function setReachable(up) {
  model.connected = up;
  $("unreachable").hidden = up;
  $("link").textContent = up ? "live" : "UNREACHABLE";
  $("link").className = up ? "link" : "link down";
}

// ---- the live stream ----------------------------------------------------------------------

function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/console/live`);
  ws.binaryType = "arraybuffer";
  model.ws = ws;
  ws.onopen = () => { setReachable(true); model.lastMessage = performance.now(); };
  ws.onmessage = (message) => {
    model.lastMessage = performance.now();
    if (typeof message.data === "string") handleText(JSON.parse(message.data));
    else drawImage(message.data);
  };
  ws.onclose = (event) => {
    setReachable(false);
    if (event.code === 4001) { showLoginNeeded("The console session has ended."); return; }
    setTimeout(connect, 1000);
  };
}

// Nothing for 2 s on an open stream (telemetry comes at 25 Hz) counts as unreachable too.
setInterval(() => {
  if (model.connected && performance.now() - model.lastMessage > 2000) setReachable(false);
  else if (!model.connected && model.ws && model.ws.readyState === 1 && performance.now() - model.lastMessage < 500) setReachable(true);
}, 500);

const imageCanvas = document.createElement("canvas");
function drawImage(buffer) {
  const view = new DataView(buffer);
  if (view.getUint8(0) !== 1) return;
  const width = view.getUint16(2, true), height = view.getUint16(4, true);
  const number = Number(view.getBigUint64(8, true));
  const acquired = view.getFloat64(16, true);
  const pixels = new Uint8Array(buffer, 32, width * height);
  if (imageCanvas.width !== width || imageCanvas.height !== height) { imageCanvas.width = width; imageCanvas.height = height; }
  const context = imageCanvas.getContext("2d");
  const image = context.createImageData(width, height);
  const rgba = image.data;
  for (let i = 0, j = 0; i < pixels.length; i++, j += 4) {
    const v = pixels[i];
    rgba[j] = v; rgba[j + 1] = v; rgba[j + 2] = v; rgba[j + 3] = 255;
  }
  context.putImageData(image, 0, 0);
  const display = $("image").getContext("2d");
  display.imageSmoothingEnabled = true;
  display.drawImage(imageCanvas, 0, 0, $("image").width, $("image").height);
  const now = Date.now();
  model.frames++;
  model.lastFrameNumber = number;
  model.frameTimes.push(performance.now());
  model.latencies.push(now - acquired);
  if (model.frameTimes.length > 120) model.frameTimes.shift();
  if (model.latencies.length > 600) model.latencies.shift();
  $("frame").textContent = number;
}

setInterval(() => {
  const times = model.frameTimes.filter((t) => performance.now() - t < 1000);
  $("fps").textContent = `${times.length} frames/s`;
  const recent = model.latencies.slice(-30).sort((a, b) => a - b);
  $("latency").textContent = recent.length ? `latency ${recent[Math.floor(recent.length / 2)].toFixed(0)} ms` : "– ms";
}, 500);

function handleText(message) {
  if (message.type === "telemetry") { model.telemetry = message; onTelemetry(message); }
  else if (message.type === "status") { model.status = message.status; onStatus(message.status); }
  else if (message.type === "event") onEvent(message);
}

// ---- telemetry: state, force chart, interlocks, view call ----------------------------------

const STATE_CLASS = { disabled: "", ready: "ok", operator_enabled: "ok", scanning: "ok",
                      protective_stop: "warn", emergency_stop: "bad", fault: "bad" };

function onTelemetry(t) {
  const badge = $("state");
  badge.textContent = t.state.replace(/_/g, " ");
  badge.className = "badge " + (STATE_CLASS[t.state] || "");
  const latched = $("latched");
  latched.hidden = !t.latched;
  if (t.latched) latched.textContent = `latched: ${t.latched.cause} ${t.latched.value} (limit ${t.latched.limit})`;
  model.force.push({ t: t.t_ms, z: t.force_n.z, target: t.contact_target_n });
  while (model.force.length && model.force[0].t < t.t_ms - FORCE_WINDOW_MS) model.force.shift();
  drawForce();
  drawInterlocks(t);
  drawView(t.view);
}

function drawForce() {
  const canvas = $("force"), g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  const soft = model.limits ? model.limits.force.soft_limit_n : 15;
  const hard = model.limits ? model.limits.force.hard_limit_n : 20;
  const top = Math.ceil(hard * 1.15), bottom = -2;
  const y = (n) => h - 14 - (n - bottom) / (top - bottom) * (h - 20);
  g.clearRect(0, 0, w, h);
  g.font = "10px sans-serif";
  g.fillStyle = "#666";
  for (let n = 0; n <= top; n += 5) { g.fillRect(28, y(n), w - 28, 1); g.fillText(`${n} N`, 0, y(n) + 3); }
  const line = (n, color) => { g.strokeStyle = color; g.setLineDash([6, 4]); g.beginPath(); g.moveTo(28, y(n)); g.lineTo(w, y(n)); g.stroke(); g.setLineDash([]); };
  line(soft, "#ffcc00");
  line(hard, "#ff5050");
  if (!model.force.length) return;
  const end = model.force[model.force.length - 1].t;
  const x = (t) => 28 + (w - 28) * (1 - (end - t) / FORCE_WINDOW_MS);
  g.strokeStyle = "#8fd18f";
  g.beginPath();
  let drawing = false;
  for (const s of model.force) {
    if (s.target == null) { drawing = false; continue; }
    if (drawing) g.lineTo(x(s.t), y(s.target)); else g.moveTo(x(s.t), y(s.target));
    drawing = true;
  }
  g.stroke();
  g.strokeStyle = "#4fc3f7";
  g.lineWidth = 2;
  g.beginPath();
  model.force.forEach((s, i) => (i ? g.lineTo(x(s.t), y(s.z)) : g.moveTo(x(s.t), y(s.z))));
  g.stroke();
  g.lineWidth = 1;
  g.fillStyle = "#ddd";
  g.fillText(`${model.force[model.force.length - 1].z.toFixed(1)} N`, w - 44, 12);
}

function drawInterlocks(t) {
  const l = model.limits;
  if (!l) return;
  const maxJoint = t.joint_speed_rad_s.reduce((best, v, i) => {
    const ratio = v / (l.speed.joint_rad_s[i] || Infinity);
    return ratio > best.ratio ? { ratio, v, limit: l.speed.joint_rad_s[i], i } : best;
  }, { ratio: 0, v: 0, limit: l.speed.joint_rad_s[0] || 0, i: 0 });
  const p = t.position_mm, lo = l.workspace.min_mm, hi = l.workspace.max_mm;
  const margin = Math.min(...p.map((v, i) => Math.min(v - lo[i], hi[i] - v)));
  const rows = [
    ["Axial force (soft limit)", t.force_n.z, l.force.soft_limit_n, "N"],
    ["Axial force (hard cap)", t.force_n.z, l.force.hard_limit_n, "N"],
    ["Tip speed", t.tip_speed_mm_s, l.speed.tip_mm_s, "mm/s"],
    [`Joint speed (fastest: J${maxJoint.i + 1})`, maxJoint.v, maxJoint.limit, "rad/s"],
    ["Force data age", t.force_age_ms, l.stale.force_ms, "ms"],
    ["Joint data age", t.joint_age_ms, l.stale.joints_ms, "ms"],
    ["Workspace margin", margin, 0, "mm", true],
    ["Contact lease left", t.lease_remaining_ms, l.contact.lease_ms, "ms", true],
  ];
  const body = $("interlocks").tBodies[0];
  body.innerHTML = "";
  for (const [name, value, limit, unit, lowerBound] of rows) {
    const tr = body.insertRow();
    const fraction = lowerBound ? 0 : (limit > 0 ? value / limit : 0);
    const over = lowerBound ? (name.startsWith("Workspace") && value < 0) : fraction >= 1;
    tr.className = over ? "over" : fraction > 0.8 ? "near" : "";
    tr.insertCell().textContent = name;
    const v = tr.insertCell(); v.className = "num"; v.textContent = `${Number(value).toFixed(value < 10 ? 2 : 1)} ${unit}`;
    const m = tr.insertCell(); m.className = "num"; m.textContent = `${name.startsWith("Workspace") ? "≥ 0" : Number(limit).toFixed(limit < 10 ? 2 : 1)} ${unit}`;
    tr.insertCell().textContent = over ? "OVER" : "";
  }
}

function drawView(view) {
  $("viewcall").textContent = view ? `${view.label} ${(view.confidence * 100).toFixed(0)}%` : "no view";
  const meters = $("meters");
  const scanViews = model.status && model.status.scan.views.length ? model.status.scan.views : DEFAULT_VIEWS;
  const quality = view && view.quality;
  $("quality-kind").textContent = quality ? "(predicted diagnostic quality)" : "(classifier probability: this model predicts no quality)";
  const line = model.status && model.status.view ? model.status.view.diagnostic_quality : 0.7;
  meters.innerHTML = "";
  for (const name of scanViews) {
    const value = view ? (quality ? quality[name] : view.probabilities[name]) : null;
    const label = document.createElement("div"); label.textContent = name;
    const meter = document.createElement("div"); meter.className = "meter";
    const fill = document.createElement("div"); fill.className = "fill" + (value != null && value >= line ? " good" : "");
    fill.style.width = `${Math.max(0, Math.min(1, value || 0)) * 100}%`;
    const mark = document.createElement("div"); mark.className = "line"; mark.style.left = `${line * 100}%`;
    meter.append(fill, mark);
    const number = document.createElement("div"); number.textContent = value == null ? "–" : value.toFixed(2);
    meters.append(label, meter, number);
  }
}

// ---- status: protocol, recording ------------------------------------------------------------

function onStatus(status) {
  if (status.recording.session) model.session = status.recording.session;
  // The run's MCAP stops early only on a write error or at its disk's free-space floor.
  const run = status.run_recording;
  const stopped = $("recording-stopped");
  stopped.hidden = !run || run.active;
  if (run && !run.active) stopped.textContent = `This run is no longer recorded: ${run.error}`;
  const scan = status.scan;
  $("scan-step").textContent = scan.running ? `running${scan.step ? ": " + scan.step : ""}` : (scan.views.length ? "finished" : "no scan yet");
  const list = $("views");
  list.innerHTML = "";
  for (const name of scan.views) {
    const result = scan.results.find((r) => r.view === name);
    const li = document.createElement("li");
    const title = document.createElement("span"); title.className = "name"; title.textContent = name;
    const st = document.createElement("span"); st.className = "st";
    li.append(title);
    if (result && result.acquired) {
      li.className = "acquired";
      st.textContent = `acquired in ${result.seconds.toFixed(1)} s (confidence ${result.confidence.toFixed(2)})`;
      if (model.session) {
        const img = document.createElement("img");
        img.alt = `${name} key frame`;
        img.src = `/console/sessions/${encodeURIComponent(model.session)}/${name}.png`;
        li.append(img);
      }
    } else if (result) {
      li.className = "failed";
      st.textContent = `failed: ${result.reason || "not acquired"}`;
    } else if (scan.running && scan.current_view === name) {
      li.className = "searching";
      st.textContent = `searching${scan.step ? " (" + scan.step + ")" : ""}`;
    } else {
      li.className = "pending";
      st.textContent = "pending";
    }
    li.append(st);
    list.append(li);
  }
}

function onEvent(message) {
  const li = document.createElement("li");
  li.className = "ev-" + message.name;
  const time = message.at.slice(11, 23);
  li.textContent = `${time} ${message.name} ${JSON.stringify(message.data)}`;
  li.title = li.textContent;
  const list = $("events");
  list.prepend(li);
  while (list.children.length > 300) list.lastChild.remove();
  if (message.name === "recording" || message.name === "scan") loadSessions();
}

async function loadSessions() {
  const { status, data } = await request("GET", "/v1/sessions");
  if (status !== 200) return;
  const list = $("sessions");
  list.innerHTML = "";
  for (const s of data.sessions.slice().reverse()) {
    const li = document.createElement("li");
    li.textContent = `${s.name} (${(s.bytes / 1024).toFixed(0)} kB)`;
    const report = document.createElement("a");
    report.href = `/console/sessions/${encodeURIComponent(s.name)}/report`;
    report.target = "_blank";
    report.rel = "noopener";
    report.textContent = "report";
    li.append(report);
    for (const view of s.views_acquired) {
      const a = document.createElement("a");
      a.href = `/console/sessions/${encodeURIComponent(s.name)}/${view}.png`;
      a.target = "_blank";
      a.textContent = view;
      li.append(a);
    }
    list.append(li);
  }
}

// ---- controls -------------------------------------------------------------------------------

function confirmThen(text, action) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  dialog.returnValue = "";
  dialog.onclose = () => { if (dialog.returnValue === "ok") action(); };
  dialog.showModal();
}

function setUpControls() {
  const picker = $("picker");
  for (const name of VIEWS) {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox"; box.value = name; box.checked = DEFAULT_VIEWS.includes(name);
    label.append(box, name);
    picker.append(label);
  }
  for (const button of document.querySelectorAll("button[data-post]")) {
    button.addEventListener("click", () => {
      const go = () => command(button.dataset.post);
      if (button.dataset.confirm) confirmThen(button.dataset.confirm, go); else go();
    });
  }
  $("scan-start").addEventListener("click", () => {
    const views = [...picker.querySelectorAll("input:checked")].map((b) => b.value);
    if (!views.length) return notice("pick at least one view", true);
    command("/v1/scan", { views });
  });
  const stop = () => command("/v1/stop");
  $("stop").addEventListener("click", stop);
  // Esc is STOP wherever the focus is (a dialog's Esc closes it too).
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    event.preventDefault();
    model.stopKeyAt = Date.now();  // the browser tests time STOP from here
    stop();
  });
  $("estop").addEventListener("click", () => command("/v1/estop"));
  const viewer = model.role !== "operator";
  for (const button of document.querySelectorAll("[data-access=motion]")) button.disabled = viewer;
  $("role-hint").textContent = viewer
    ? "Viewer console: motion controls are off. STOP, E-STOP, Disable and Stop scan work for everyone."
    : "Operator console: every command is logged with your Unix user.";
}

async function main() {
  const { status, data } = await request("GET", "/console/session");
  if (status !== 200) return;
  model.csrf = data.csrf_token;
  model.role = data.role;
  model.user = data.user;
  $("who").textContent = `${data.user} · ${data.role}`;
  setUpControls();
  const limits = await request("GET", "/v1/limits");
  if (limits.status === 200) model.limits = limits.data;
  loadSessions();
  connect();
}

main();
