// mis annotate: the page. Plain JavaScript, no build step, nothing from the network.
// Pixels are (row, col) of the decoded image; masks arrive as row-major run lengths
// ({size: [H, W], counts: [background, object, background, ...]}).
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const photo = $("photo");
  const overlay = $("overlay");
  const hoverCanvas = $("hover");
  const points = $("points");
  const MASK_RGBA = [30, 144, 255, 255];
  const HOVER_RGBA = [250, 204, 21, 255];

  const state = {
    sid: null, images: [], token: "", index: null, size: null, clicks: [], budget: 0,
    hover: false, chain: Promise.resolve(), version: 0, dirty: false,
    pendingHover: null, hoverInFlight: false,
  };
  // Read by the browser test and the benchmark: per-click timings and the last mask.
  const stats = { clicks: [], lastMask: null, lastHover: null, ready: false, opened: null };
  window.misStats = stats;

  function setMessage(text, info) {
    const m = $("message");
    m.textContent = text || "";
    m.className = info ? "info" : "";
  }

  async function api(path, body) {
    const res = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-MIS-Session": state.sid || "" },
      body: JSON.stringify(body || {}),
    });
    let data = null;
    try { data = await res.json(); } catch (e) { data = { error: `HTTP ${res.status}` }; }
    if (res.status === 410 && path !== "/api/session") {
      // The server dropped this tab's session (restart, or too many tabs): start a new one.
      await newSession();
      if (state.index !== null) await openImage(state.index);
      throw new Error("the session had expired; the image was reopened, please repeat the action");
    }
    if (!res.ok) throw new Error(data && data.error ? data.error : `HTTP ${res.status}`);
    return data;
  }

  // Serialise every action that changes the session's state, in the order the user made them.
  function enqueue(fn) {
    state.chain = state.chain.then(fn).catch((err) => setMessage(err.message || String(err)));
    return state.chain;
  }

  const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));

  function packColor([r, g, b, a]) { return ((a << 24) | (b << 16) | (g << 8) | r) >>> 0; }

  function drawMask(canvas, rle, rgba) {
    const [h, w] = rle.size;
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    const img = ctx.createImageData(w, h);
    const px = new Uint32Array(img.data.buffer);  // little-endian RGBA
    const color = packColor(rgba);
    const counts = rle.counts;
    let pos = 0;
    for (let i = 0; i < counts.length; i++) {
      const n = counts[i];
      if (i & 1) px.fill(color, pos, pos + n);
      pos += n;
    }
    ctx.putImageData(img, 0, 0);
  }

  // The hover preview is drawn as an outline (2 px: the region's inner and outer border), so
  // it does not tint the current mask it usually contains.
  function drawOutline(canvas, rle, rgba) {
    const [h, w] = rle.size;
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    const on = new Uint8Array(w * h);
    const counts = rle.counts;
    let pos = 0;
    for (let i = 0; i < counts.length; i++) {
      if (i & 1) on.fill(1, pos, pos + counts[i]);
      pos += counts[i];
    }
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    const img = ctx.createImageData(w, h);
    const px = new Uint32Array(img.data.buffer);
    const color = packColor(rgba);
    for (let r = 0; r < h; r++) {
      const row = r * w;
      for (let c = 0; c < w; c++) {
        const v = on[row + c];
        if ((c > 0 && on[row + c - 1] !== v) || (c + 1 < w && on[row + c + 1] !== v) ||
            (r > 0 && on[row - w + c] !== v) || (r + 1 < h && on[row + w + c] !== v)) {
          px[row + c] = color;
        }
      }
    }
    ctx.putImageData(img, 0, 0);
  }

  function clearCanvas(canvas) {
    canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  }

  function drawPoints() {
    if (!state.size) return;
    const [h, w] = state.size;
    if (points.width !== w || points.height !== h) { points.width = w; points.height = h; }
    const ctx = points.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    const scale = w / Math.max(1, points.getBoundingClientRect().width);
    const r = Math.max(3, 6 * scale);
    for (const [row, col, positive] of state.clicks) {
      ctx.beginPath();
      ctx.arc(col + 0.5, row + 0.5, r, 0, 2 * Math.PI);
      ctx.fillStyle = positive ? "#16a34a" : "#dc2626";
      ctx.fill();
      ctx.lineWidth = Math.max(1, 1.5 * scale);
      ctx.strokeStyle = "#ffffff";
      ctx.stroke();
    }
  }

  function renderList() {
    const list = $("image-list");
    list.textContent = "";
    let done = 0, failed = 0;
    for (const im of state.images) {
      const li = document.createElement("li");
      li.dataset.index = String(im.index);
      if (im.done) { li.classList.add("done"); done++; }
      if (im.failed) { li.classList.add("failed"); li.title = im.failed; failed++; }
      if (im.index === state.index) li.classList.add("current");
      const badge = document.createElement("span");
      badge.className = "badge";
      const name = document.createElement("span");
      name.textContent = im.name;
      li.append(badge, name);
      li.addEventListener("click", () => enqueue(() => (im.index === state.index ? undefined : openImage(im.index))));
      list.append(li);
    }
    $("progress").textContent =
      `${done} of ${state.images.length} saved` + (failed ? `, ${failed} failed` : "");
  }

  function showStats(r) {
    $("n-clicks").textContent = String(r.n_clicks);
    $("budget").textContent = String(r.budget);
    $("n-clicks").parentElement.classList.toggle("over", r.n_clicks > r.budget);
    if (r.server_ms) $("server-ms").textContent = r.server_ms.toFixed(1);
    $("save-state").textContent = state.dirty ? "unsaved changes" : (r.done ? "saved" : "");
  }

  function applyState(r) {
    state.version++;
    state.clicks = r.clicks;
    state.budget = r.budget;
    drawMask(overlay, r.mask, MASK_RGBA);
    clearCanvas(hoverCanvas);
    drawPoints();
    stats.lastMask = r.mask;
    showStats(r);
  }

  function loadPhoto(index) {
    return new Promise((resolve, reject) => {
      photo.onload = () => resolve();
      photo.onerror = () => reject(new Error(`image ${index} could not be loaded`));
      photo.src = `/api/images/${index}/image?v=${state.token}`;
    });
  }

  async function openImage(index) {
    if (index < 0 || index >= state.images.length) return;
    state.index = index;
    state.version++;
    state.size = null;
    state.dirty = false;
    renderList();
    const im = state.images[index];
    $("image-name").textContent = im.name;
    setMessage("building the image's merge tree\u2026", true);
    const r = await api("/api/open", { index });
    if (r.status === "failed") {
      im.failed = r.error;
      renderList();
      photo.removeAttribute("src");
      for (const c of [overlay, hoverCanvas, points]) { c.width = 0; c.height = 0; }
      setMessage(`${im.name}: ${r.error}`);
      stats.opened = index;
      return;
    }
    state.size = r.size;
    await loadPhoto(index);
    for (const c of [overlay, hoverCanvas, points]) { c.width = r.size[1]; c.height = r.size[0]; }
    applyState(r);
    setMessage(r.done ? "showing the saved mask; clicks start a new one" : "", true);
    stats.opened = index;
  }

  function pixelOf(ev) {
    const rect = points.getBoundingClientRect();
    const [h, w] = state.size;
    const col = Math.floor(((ev.clientX - rect.left) * w) / rect.width);
    const row = Math.floor(((ev.clientY - rect.top) * h) / rect.height);
    return [Math.min(h - 1, Math.max(0, row)), Math.min(w - 1, Math.max(0, col))];
  }

  function addClick(ev, positive) {
    if (!state.size) return;
    // from the input event itself (same clock as performance.now()), not from this handler
    const t0 = ev.timeStamp > 0 ? ev.timeStamp : performance.now();
    const [row, col] = pixelOf(ev);
    const index = state.index;
    enqueue(async () => {
      if (state.index !== index) return;
      const r = await api("/api/click", { index, row, col, positive });
      state.dirty = true;
      applyState(r);
      await nextFrame();  // the overlay is drawn in the frame this callback precedes
      const total = performance.now() - t0;
      $("total-ms").textContent = total.toFixed(1);
      stats.clicks.push({ index, row, col, positive, server_ms: r.server_ms, total_ms: total });
    });
  }

  function pumpHover() {
    if (state.hoverInFlight || !state.pendingHover || !state.hover || !state.size) return;
    const [row, col] = state.pendingHover;
    state.pendingHover = null;
    state.hoverInFlight = true;
    const version = state.version;
    const index = state.index;
    api("/api/hover", { index, row, col })
      .then((r) => {
        if (state.version === version && state.index === index && $("hover-toggle").checked) {
          drawOutline(hoverCanvas, r.mask, HOVER_RGBA);
          stats.lastHover = r.mask;
        }
      })
      .catch(() => {})  // a preview that fails is simply not shown
      .finally(() => { state.hoverInFlight = false; pumpHover(); });
  }

  points.addEventListener("contextmenu", (ev) => ev.preventDefault());
  points.addEventListener("mousedown", (ev) => {
    if (ev.button === 0) addClick(ev, !ev.shiftKey);
    else if (ev.button === 2) addClick(ev, false);
  });
  points.addEventListener("mousemove", (ev) => {
    if (!state.size || !state.hover || !$("hover-toggle").checked) return;
    state.pendingHover = pixelOf(ev);
    pumpHover();
  });
  points.addEventListener("mouseleave", () => { state.pendingHover = null; state.version++; clearCanvas(hoverCanvas); });

  const undo = () => enqueue(async () => {
    if (!state.size) return;
    const r = await api("/api/undo", { index: state.index });
    state.dirty = r.n_clicks > 0;
    applyState(r);
  });
  const reset = () => enqueue(async () => {
    if (!state.size) return;
    const r = await api("/api/reset", { index: state.index });
    state.dirty = false;
    applyState(r);
  });
  const save = () => enqueue(async () => {
    if (!state.size) return;
    const r = await api("/api/save", { index: state.index });
    state.dirty = false;
    state.images[state.index].done = true;
    renderList();
    showStats(r);
    setMessage(`saved ${r.saved_to}`, true);
  });
  // Next / previous stop at the ends (re-opening the same image would drop its clicks).
  const step = (d) => enqueue(() => {
    const target = Math.min(state.images.length - 1, Math.max(0, state.index + d));
    return target === state.index ? undefined : openImage(target);
  });

  $("btn-undo").addEventListener("click", undo);
  $("btn-reset").addEventListener("click", reset);
  $("btn-save").addEventListener("click", save);
  $("btn-next").addEventListener("click", () => step(1));
  $("btn-prev").addEventListener("click", () => step(-1));
  $("opacity").addEventListener("input", (ev) => { overlay.style.opacity = String(ev.target.value / 100); });
  $("hover-toggle").addEventListener("change", (ev) => { if (!ev.target.checked) clearCanvas(hoverCanvas); });
  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const action = { z: undo, s: save, n: () => step(1), p: () => step(-1), r: reset }[ev.key.toLowerCase()];
    if (action) { ev.preventDefault(); action(); }
  });

  async function newSession() {
    state.sid = null;
    const r = await api("/api/session", {});
    state.sid = r.session;
    state.hover = r.hover;
    $("budget").textContent = String(r.budget);
    if (!r.hover) {
      $("hover-toggle").checked = false;
      $("hover-toggle").disabled = true;
      $("hover-toggle").parentElement.title = `the ${r.predictor} predictor has no merge tree to preview`;
    }
  }

  async function init() {
    await newSession();
    const res = await fetch("/api/images");
    const data = await res.json();
    state.images = data.images;
    state.token = data.token;
    renderList();
    const first = state.images.find((im) => !im.done && !im.failed) || state.images[0];
    await openImage(first.index);
    stats.ready = true;
  }

  enqueue(init);
})();
