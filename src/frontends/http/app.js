// The Nightfox dashboard: polls /api/status every second and draws it; its buttons POST to the API.
// Plain JS, no build step. Everything shown is set as text (names come from cards and shares), never as HTML.
"use strict";

const POLL_MS = 1000;
const STEPS = [
  ["scanning", "Scan"],
  ["hashing", "Hash"],
  ["copying", "Copy"],
  ["validating", "Validate"],
  ["finalizing", "Finalize"],
];

let token = "";
let timer = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function bytes(n) {
  n = Math.max(0, Number(n) || 0);
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(2)) + " " + units[i];
}

function duration(s) {
  s = Math.max(0, Math.round(s));
  if (s < 60) return s + "s";
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  if (h === 0) return m + "m" + (r ? " " + r + "s" : "");
  if (h < 48) return h + "h" + (m ? " " + m + "m" : "");
  return Math.floor(h / 24) + "d " + (h % 24) + "h";
}

function when(t) {
  if (!t) return "never";
  const d = new Date(t);
  return isNaN(d) ? t : d.toLocaleString();
}

function badge(text, kind) {
  return el("span", { class: "badge " + (kind || text).replace(/[^a-z]+/g, " ").trim(), text });
}

function headers() {
  return token ? { Authorization: "Bearer " + token } : {};
}

function notice(text, bad) {
  const n = document.getElementById("notice");
  n.textContent = text;
  n.className = "notice" + (bad ? " bad" : "");
}

function setLive(on, text) {
  const l = document.getElementById("live");
  l.className = "live " + (on ? "on" : "off");
  l.textContent = text;
}

function askToken(message) {
  document.getElementById("token-form").classList.remove("hidden");
  document.getElementById("token-error").textContent = message || "";
  setLive(false, "locked");
}

async function poll() {
  clearTimeout(timer);
  try {
    const r = await fetch("/api/status", { headers: headers(), cache: "no-store" });
    if (r.status === 401) {
      const had = token !== "";
      sessionStorage.removeItem("nightfox-token");
      token = "";
      askToken(had ? "That token was refused." : "");
      return;
    }
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || r.statusText);
    draw(body);
    setLive(true, "live · " + new Date().toLocaleTimeString());
  } catch (e) {
    setLive(false, "no answer · retrying");
  }
  timer = setTimeout(poll, POLL_MS);
}

async function act(button) {
  const path = button.dataset.path;
  if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
  button.disabled = true;
  try {
    const r = await fetch(path, { method: "POST", headers: headers(), cache: "no-store" });
    let body = {};
    try { body = await r.json(); } catch (_) { /* empty */ }
    if (r.status === 401) askToken(body.error);
    notice(body.message || body.error || r.statusText, !r.ok);
  } catch (e) {
    notice("the daemon did not answer: " + e, true);
  }
  poll();
}

function actionButton(label, path, cls, confirm) {
  return el("button", { class: cls || "", "data-path": path, "data-action": label.toLowerCase().replace(/\W+/g, "-"), "data-confirm": confirm, text: label });
}

// Widths are set through the CSSOM: the page's Content-Security-Policy refuses inline style attributes.
function bar(pct) {
  const fill = el("div");
  fill.style.width = pct.toFixed(1) + "%";
  return fill;
}

function drawImports(v) {
  const box = document.getElementById("imports");
  const cards = v.imports.map((s) => {
    const pct = s.bytes_total > 0 ? Math.min(100, (100 * s.bytes_done) / s.bytes_total) : (s.files_total > 0 ? 100 * s.files_processed / s.files_total : 0);
    const cur = STEPS.findIndex(([k]) => k === s.step);
    const steps = el("ol", { class: "steps" }, STEPS.map(([k, label], i) => {
      let cls = "";
      if (s.step === "completed" || (cur >= 0 && i < cur)) cls = "done";
      else if (i === cur) cls = "current";
      return el("li", { class: cls, "data-step": k, text: label });
    }));
    const buttons = el("div", { class: "buttons" });
    if (s.can_resume) buttons.append(actionButton("Resume", "/api/sessions/" + s.id + "/resume"));
    if (s.can_cancel) {
      const running = s.state === "running";
      buttons.append(actionButton("Cancel", "/api/sessions/" + s.id + "/cancel", "danger",
        running ? "Cancel session " + s.id + "? It stops; what it finished stays in the archive, the rest is not imported."
          : "End session " + s.id + " for good? What it finished stays in the archive; it can no longer be resumed."));
    }
    const numbers = el("div", { class: "numbers" },
      el("span", { class: "files" }, el("b", { text: s.files_processed + " / " + s.files_total }), " files"),
      el("span", { class: "bytes-done", "data-bytes": s.bytes_done }, el("b", { text: bytes(s.bytes_done) }), " of " + bytes(s.bytes_total)),
      s.bytes_per_sec != null ? el("span", { class: "speed" }, el("b", { text: bytes(s.bytes_per_sec) + "/s" })) : null,
      s.eta_seconds != null ? el("span", { class: "eta" }, "ETA ", el("b", { text: duration(s.eta_seconds) })) : null,
      s.files_duplicate ? el("span", { class: "muted", text: s.files_duplicate + " duplicate" }) : null,
      s.files_failed ? el("span", { class: "error", text: s.files_failed + " failed" }) : null,
      el("span", { class: "muted", text: "started " + when(s.started_at) }),
    );
    const errors = [];
    if (s.error) errors.push(s.error);
    errors.push(...s.file_errors);
    return el("div", { class: "card import", "data-session": s.id, "data-state": s.state },
      el("div", { class: "top" },
        el("span", { class: "title", text: "Session " + s.id + " · " + s.couple }),
        badge(s.state, s.state === "completed with errors" ? "failed" : s.state.split(" ")[0]),
        s.run_here ? badge("started here", "ok") : null,
        el("span", { class: "muted wrap", text: s.source }),
        buttons),
      steps,
      el("div", { class: "bar", role: "progressbar", "aria-valuenow": Math.round(pct), "aria-valuemin": 0, "aria-valuemax": 100 },
        bar(pct)),
      numbers,
      errors.length ? el("ul", { class: "errors" }, errors.map((e) => el("li", { text: e }))) : null);
  });
  box.replaceChildren(...(cards.length ? cards : [el("p", { class: "muted", text: "No import running, paused or failed." })]));
}

function table(head, rows, empty) {
  if (!rows.length) return el("p", { class: "muted", text: empty });
  return el("table", {}, el("thead", {}, el("tr", {}, head.map(([h, cls]) => el("th", { class: cls, text: h })))),
    el("tbody", {}, rows));
}

function drawSources(v) {
  const rows = v.status.sources.map((s) => el("tr", { "data-source": s.id },
    el("td", { class: "num", text: s.id }),
    el("td", { class: "wrap", text: s.url }),
    el("td", { text: s.couple }),
    el("td", {}, badge(s.enabled ? s.connection_state : "disabled", s.enabled ? s.connection_state : "unknown")),
    el("td", { class: "num", text: s.consecutive_failures }),
    el("td", { text: when(s.last_scan_at) }),
    el("td", { class: "wrap error", text: s.last_error || "" }),
    el("td", {}, el("div", { class: "buttons" },
      actionButton("Test", "/api/sources/" + s.id + "/test", "secondary"),
      s.enabled ? actionButton("Import now", "/api/sources/" + s.id + "/import") : null))));
  document.getElementById("sources").replaceChildren(table(
    [["#", "num"], ["Share"], ["Couple"], ["State"], ["Failures", "num"], ["Last scan"], ["Last error"], [""]],
    rows, "No network source (nightfox source add)."));
}

function drawCouples(v) {
  const rows = v.couples.map((c) => el("tr", { "data-couple": c.folder },
    el("td", {}, el("div", { text: c.name }), el("div", { class: "muted", text: c.folder })),
    el("td", { text: c.date }),
    el("td", { class: "num", text: c.files }),
    el("td", { class: "num", "data-bytes": c.bytes, text: bytes(c.bytes) })));
  document.getElementById("couples").replaceChildren(table(
    [["Couple"], ["Date"], ["Files", "num"], ["Size", "num"]], rows, "No couple yet."));
}

function drawHealth(v) {
  const st = v.status;
  const scrub = st.last_scrub;
  let last = "never";
  if (scrub) {
    const bad = scrub.damaged + scrub.missing + scrub.orphans;
    last = when(scrub.finished_at) + " (" + scrub.trigger + "): " + scrub.blobs_checked + " blobs, " + bytes(scrub.bytes_checked) +
      " checked, " + (bad ? scrub.damaged + " damaged, " + scrub.missing + " missing, " + scrub.orphans + " orphan(s)" : "clean") +
      (scrub.error ? " (" + scrub.error + ")" : scrub.complete ? "" : " (partial)");
  }
  const dl = el("dl", {},
    el("dt", { text: "Last scrub" }), el("dd", { id: "last-scrub", text: last }),
    el("dt", { text: "Next scrub" }), el("dd", { text: st.next_scrub ? when(st.next_scrub) + " (every " + st.scrub_every + ")" : "not scheduled" }),
    el("dt", { text: "Damaged blobs" }), el("dd", {}, st.unhealthy_total ? badge(String(st.unhealthy_total), "bad") : badge("none", "ok")));
  const blobs = st.unhealthy_blobs.map((b) => el("tr", {},
    el("td", {}, badge(b.health)), el("td", { class: "wrap" }, el("code", { text: b.hash.slice(0, 16) + "…" })),
    el("td", { class: "wrap", text: b.files.join(", ") })));
  const damaged = st.damaged_files.map((d) => el("tr", {},
    el("td", {}, badge("salvaged", "paused")), el("td", { class: "wrap", text: d.path }), el("td", { class: "wrap", text: d.bad_ranges })));
  const parts = [el("div", { class: "panel" }, dl)];
  if (blobs.length || damaged.length) {
    parts.push(el("p", { class: "muted", text: "Damaged or missing blobs read as errors until healed (a verified copy, or nightfox repair); salvaged files hold zeros where the card could not be read." }));
    parts.push(table([["Health"], ["Blob / path"], ["Files / ranges"]], [...blobs, ...damaged], ""));
  }
  document.getElementById("health").replaceChildren(...parts);
}

function drawProblems(v) {
  const rows = v.status.last_errors.map((e) => el("tr", {},
    el("td", { text: when(e.at) }),
    el("td", { text: "source " + e.source_id + (e.session_id ? " · session " + e.session_id : "") }),
    el("td", {}, badge(e.level, e.level === "error" ? "failed" : "paused")),
    el("td", { class: "wrap", text: e.message })));
  document.getElementById("problems").replaceChildren(table([["When"], ["Where"], ["Level"], ["Message"]], rows, "None."));
}

function drawActions(v) {
  const rows = v.actions.map((a) => el("tr", { "data-action-id": a.id, "data-state": a.state },
    el("td", { text: when(a.started_at) }),
    el("td", { text: a.kind + (a.session ? " session " + a.session : a.source ? " source " + a.source : "") }),
    el("td", {}, badge(a.state, a.state === "done" ? "ok" : a.state)),
    el("td", { class: "wrap", text: a.message || "" })));
  document.getElementById("actions").replaceChildren(table([["Started"], ["What"], ["State"], ["Outcome"]], rows, "Nothing yet."));
}

function draw(v) {
  const d = v.status.daemon;
  document.getElementById("daemon").textContent =
    (d.running ? "nightfox " + (d.command || "serve") + ", pid " + d.pid + (d.mountpoint ? ", mounted at " + d.mountpoint : "") : "daemon not running");
  document.getElementById("footer").textContent = "Archive " + v.status.archive;
  drawImports(v);
  drawSources(v);
  drawCouples(v);
  drawHealth(v);
  drawProblems(v);
  drawActions(v);
}

document.addEventListener("click", (e) => {
  const b = e.target.closest("button[data-path]");
  if (b && !b.disabled) act(b);
});

document.addEventListener("DOMContentLoaded", () => {
  token = document.querySelector('meta[name="nightfox-token"]').content || sessionStorage.getItem("nightfox-token") || "";
  document.getElementById("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    token = document.getElementById("token").value.trim();
    sessionStorage.setItem("nightfox-token", token);
    document.getElementById("token-form").classList.add("hidden");
    poll();
  });
  poll();
});
