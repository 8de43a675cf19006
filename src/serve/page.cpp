// The page at GET /, kept as one raw string so the binary carries it and the
// service needs no files at run time. Everything is inline: the server's
// Content-Security-Policy forbids any other origin, so an accidental external
// asset would fail loudly in the browser test rather than silently work online.
#include "adcorre/serve/page.h"

namespace adcorre::serve {

const std::string& index_html() {
  static const std::string page = R"PAGE(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>adcorre: facial expression recognition</title>
<style>
  :root { --fg:#1d2330; --muted:#5d6678; --bg:#f6f7fb; --card:#fff; --line:#dde1ea; --accent:#2f6fde; --bad:#b3261e; }
  * { box-sizing: border-box; }
  body { margin:0; font:15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
  header { padding:14px 22px; background:var(--card); border-bottom:1px solid var(--line); display:flex; flex-wrap:wrap; gap:6px 18px; align-items:baseline; }
  header h1 { font-size:19px; margin:0; }
  header .model { color:var(--muted); font-size:13px; }
  main { display:grid; grid-template-columns:minmax(0, 3fr) minmax(260px, 2fr); gap:18px; padding:18px 22px; max-width:1280px; }
  @media (max-width: 820px) { main { grid-template-columns:1fr; } }
  .card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:14px; }
  .controls { display:flex; flex-wrap:wrap; gap:10px; align-items:center; margin-bottom:12px; }
  button, .filebtn, select { font:inherit; padding:7px 13px; border-radius:7px; border:1px solid var(--line); background:#fff; cursor:pointer; }
  button.primary, .filebtn { background:var(--accent); color:#fff; border-color:var(--accent); }
  button:disabled { opacity:.5; cursor:default; }
  #file { position:absolute; left:-9999px; }
  #drop { border:2px dashed var(--line); border-radius:10px; min-height:260px; display:flex; flex-direction:column; gap:8px; align-items:center; justify-content:center; position:relative; overflow:hidden; background:#fbfcfe; }
  #drop.over { border-color:var(--accent); background:#eef3fd; }
  #drop .hint { color:var(--muted); text-align:center; padding:30px; }
  #view { max-width:100%; display:none; }
  video { max-width:100%; max-height:50vh; display:none; border-radius:8px; }
  #status { margin-top:10px; color:var(--muted); min-height:1.4em; }
  #status.error { color:var(--bad); }
  .face { border-top:1px solid var(--line); padding:10px 0 6px; }
  .face:first-child { border-top:0; padding-top:0; }
  .face h3 { margin:0 0 6px; font-size:15px; display:flex; align-items:center; gap:8px; }
  .swatch { width:12px; height:12px; border-radius:3px; display:inline-block; }
  .bar { display:grid; grid-template-columns:78px 1fr 52px; gap:8px; align-items:center; font-size:13px; margin:2px 0; }
  .bar .track { background:#edf0f6; border-radius:4px; height:14px; overflow:hidden; }
  .bar .fill { height:100%; border-radius:4px; }
  .bar .pct { text-align:right; font-variant-numeric:tabular-nums; color:var(--muted); }
  .bar.top .name { font-weight:600; }
  #results .empty { color:var(--muted); }
  footer { padding:0 22px 18px; color:var(--muted); font-size:12px; }
</style>
</head>
<body data-state="idle" data-faces="0">
<header>
  <h1>adcorre &middot; facial expression recognition</h1>
  <span class="model" id="model">loading model information&hellip;</span>
</header>
<main>
  <section class="card">
    <div class="controls">
      <label class="filebtn" for="file">Choose a photo&hellip;</label>
      <input type="file" id="file" accept="image/jpeg,image/png,image/bmp,image/webp">
      <button id="camera">Use the webcam</button>
      <button id="snap" class="primary" disabled>Take a snapshot</button>
      <label>detector <select id="detector"></select></label>
    </div>
    <div id="drop">
      <div class="hint" id="hint">Drop a photo here, choose one, or take a webcam snapshot.<br>Pictures go only to this adcorre server.</div>
      <canvas id="view"></canvas>
      <video id="video" autoplay playsinline muted></video>
    </div>
    <div id="status" role="status"></div>
  </section>
  <section class="card">
    <h2 style="margin:0 0 10px;font-size:16px">Faces</h2>
    <div id="results"><p class="empty">No picture yet.</p></div>
  </section>
</main>
<footer>POST an image to <code>/v1/predict</code> for the same answer as JSON. <a href="/v1/model">model</a> &middot; <a href="/v1/health">health</a></footer>
<script>
"use strict";
const COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324", "#469990", "#800000"];
const $ = (id) => document.getElementById(id);
let limits = { max_body: 10 * 1024 * 1024 };
let stream = null;

function setState(state, message, isError) {
  document.body.dataset.state = state;
  const s = $("status");
  s.textContent = message || "";
  s.className = isError ? "error" : "";
}

async function loadModel() {
  try {
    const r = await fetch("/v1/model");
    const m = await r.json();
    limits = m.limits || limits;
    const name = (m.path || "").split("/").pop();
    $("model").textContent = `${name} · ${m.class_names.length} classes (${m.class_names.join(", ")}) · input ${m.input.size}×${m.input.size}×${m.input.channels}`;
    const sel = $("detector");
    for (const d of m.detectors) {
      const o = document.createElement("option");
      o.value = d; o.textContent = d; o.selected = d === m.default_detector;
      sel.appendChild(o);
    }
  } catch (e) {
    $("model").textContent = "model information unavailable: " + e;
  }
}

// Draws the picture scaled to the box's width, then every face's box and label.
function draw(img, result) {
  const canvas = $("view");
  const maxW = Math.min($("drop").clientWidth - 4, 1200);
  const scale = Math.min(1, maxW / result.image.width);
  canvas.width = Math.round(result.image.width * scale);
  canvas.height = Math.round(result.image.height * scale);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  const line = Math.max(2, Math.round(canvas.width / 300));
  ctx.font = `${Math.max(13, Math.round(canvas.width / 45))}px system-ui, sans-serif`;
  result.faces.forEach((f, i) => {
    const [x, y, w, h] = f.box.map((v) => v * scale);
    const color = COLORS[i % COLORS.length];
    ctx.lineWidth = line; ctx.strokeStyle = color; ctx.strokeRect(x, y, w, h);
    const text = `${i + 1}: ${f.label} ${(f.score * 100).toFixed(0)}%`;
    const tw = ctx.measureText(text).width + 10, th = parseInt(ctx.font, 10) + 8;
    const ty = y >= th ? y - th : y + h;
    ctx.fillStyle = color; ctx.fillRect(x - line / 2, ty, tw, th);
    ctx.fillStyle = "#fff"; ctx.fillText(text, x + 4, ty + th - 6);
  });
  canvas.style.display = "block";
  $("hint").style.display = "none";
  // With the webcam on, its live picture stays above the snapshot for the next one.
  $("video").style.display = stream ? "block" : "none";
}

// One bar chart per face: every class, most probable first.
function showResults(result) {
  const box = $("results");
  box.innerHTML = "";
  if (!result.faces.length) {
    box.innerHTML = '<p class="empty">No face found. Try another detector, or <code>none</code> for a picture that is already a face.</p>';
    return;
  }
  result.faces.forEach((f, i) => {
    const color = COLORS[i % COLORS.length];
    const div = document.createElement("div");
    div.className = "face";
    div.dataset.label = f.label;
    const h = document.createElement("h3");
    h.innerHTML = `<span class="swatch" style="background:${color}"></span>`;
    h.appendChild(document.createTextNode(`Face ${i + 1}: ${f.label} (${(f.score * 100).toFixed(1)}%)`));
    div.appendChild(h);
    const entries = Object.entries(f.probs).sort((a, b) => b[1] - a[1]);
    entries.forEach(([name, p], j) => {
      const row = document.createElement("div");
      row.className = "bar" + (j === 0 ? " top" : "");
      row.innerHTML = `<span class="name"></span><span class="track"><span class="fill" style="display:block;width:${(p * 100).toFixed(1)}%;background:${color}"></span></span><span class="pct">${(p * 100).toFixed(1)}%</span>`;
      row.querySelector(".name").textContent = name;
      div.appendChild(row);
    });
    box.appendChild(div);
  });
}

async function predict(blob, what) {
  if (blob.size > limits.max_body) {
    setState("error", `${what} is ${(blob.size / 1048576).toFixed(1)} MB; this service takes at most ${(limits.max_body / 1048576).toFixed(1)} MB.`, true);
    return;
  }
  setState("busy", `Looking at ${what}…`);
  const url = URL.createObjectURL(blob);
  try {
    const img = new Image();
    const loaded = new Promise((ok, fail) => { img.onload = ok; img.onerror = () => fail(new Error("the browser cannot show this picture")); });
    img.src = url;
    const t0 = performance.now();
    const r = await fetch("/v1/predict?detector=" + encodeURIComponent($("detector").value || ""), {
      method: "POST", headers: { "Content-Type": blob.type || "application/octet-stream" }, body: blob });
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || ("HTTP " + r.status));
    window.adcorreLast = body;  // the last answer, for scripts and the browser test
    await loaded;
    draw(img, body);
    showResults(body);
    document.body.dataset.faces = String(body.faces.length);
    const n = body.faces.length;
    setState("done", `${n} face${n === 1 ? "" : "s"} in ${body.image.width}×${body.image.height} · ${(performance.now() - t0).toFixed(0)} ms (server ${body.elapsed_ms.toFixed(0)} ms)`);
  } catch (e) {
    setState("error", "Error: " + e.message, true);
  } finally {
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }
}

$("file").addEventListener("change", (e) => {
  const f = e.target.files[0];
  if (f) predict(f, f.name);
});
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault(); drop.classList.remove("over");
  const f = e.dataTransfer.files[0];
  if (f) predict(f, f.name);
});

$("camera").addEventListener("click", async () => {
  if (stream) { stream.getTracks().forEach((t) => t.stop()); stream = null; $("snap").disabled = true; $("camera").textContent = "Use the webcam"; $("video").style.display = "none"; return; }
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { setState("error", "This browser offers no camera here (it needs http://localhost or https).", true); return; }
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false });
    const v = $("video");
    v.srcObject = stream;
    await v.play();
    v.style.display = "block"; $("view").style.display = "none"; $("hint").style.display = "none";
    $("snap").disabled = false; $("camera").textContent = "Stop the webcam";
    setState("idle", "Webcam on: take a snapshot.");
  } catch (e) {
    setState("error", "Cannot open the webcam: " + e.message, true);
  }
});

$("snap").addEventListener("click", () => {
  const v = $("video");
  if (!v.videoWidth) { setState("error", "The webcam has no picture yet.", true); return; }
  const c = document.createElement("canvas");
  c.width = v.videoWidth; c.height = v.videoHeight;
  c.getContext("2d").drawImage(v, 0, 0);
  c.toBlob((b) => predict(b, "the snapshot"), "image/jpeg", 0.92);
});

loadModel();
</script>
</body>
</html>
)PAGE";
  return page;
}

}  // namespace adcorre::serve
