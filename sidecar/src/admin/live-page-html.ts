import { createHash } from 'node:crypto';

/**
 * The live page (`GET /ui`): one HTML document with its style and script inline, no external
 * assets, no framework. It polls `/v1/live` of this sidecar and of each `?peers=` admin URL every
 * second and draws, per sidecar, the last minutes from the snapshot's `history` as inline SVG,
 * then the counters as tables.
 *
 * Everything from the network is rendered with textContent and setAttribute (never innerHTML), so
 * a hostile peer cannot inject markup. The Content-Security-Policy allows exactly this style and
 * this script by their SHA-256 hashes: no other inline code runs, nothing loads from elsewhere.
 */

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:.8rem 1rem;background:#f6f7f9;color:#1d232b}
h1{font-size:1.15rem;margin:0 0 .6rem}h1 .sub{font-weight:400;margin-left:.5rem}
#grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(310px,1fr));gap:.8rem;align-items:start}
.card{min-width:0;background:#fff;border:1px solid #d9dde3;border-radius:6px;padding:.6rem .8rem}
.card.down{opacity:.6;border-style:dashed}
.card h2{font-size:1rem;margin:0}
.sub{color:#68717d;font-size:.8rem;overflow-wrap:anywhere}
h3{font-size:.72rem;letter-spacing:.03em;text-transform:uppercase;color:#68717d;margin:.6rem 0 .15rem}
table{border-collapse:collapse;width:100%;max-width:36rem}
td{padding:1px 4px;border-bottom:1px solid #eef0f3;vertical-align:top;overflow-wrap:anywhere;font-variant-numeric:tabular-nums}
td.n{width:1%;text-align:right;white-space:nowrap}
td.g{font-weight:600;padding-top:3px}td.i{padding-left:1rem}
.ok{color:#1a7f37}.bad{color:#c62828}.warn{color:#b26a00}
.plot{margin:.45rem 0 0}
.pt{display:flex;flex-wrap:wrap;align-items:baseline;gap:0 .7rem;font-size:.75rem;color:#68717d}
.pt b{font-weight:600;color:#1d232b}
.key{white-space:nowrap;font-variant-numeric:tabular-nums}
.sw{display:inline-block;width:.65rem;height:.65rem;border-radius:2px;margin-right:.25rem}
svg.chart{display:block;overflow:visible}
svg .grid{stroke:#e6e9ed;stroke-width:1}
svg .ax{font-size:9px;fill:#7b8591}
svg .line{fill:none;stroke-width:1.6;stroke-linejoin:round;stroke-linecap:round}
svg .lbl{font-size:10px;fill:#1d232b}
`;

const SCRIPT = `
"use strict";
const peers = [location.origin];
for (const p of (new URLSearchParams(location.search).get("peers") || "").split(",")) {
  try { const u = new URL(p.trim()); if ((u.protocol === "http:" || u.protocol === "https:") && !peers.includes(u.origin)) peers.push(u.origin); } catch (e) {}
}
const grid = document.getElementById("grid");
const cards = new Map();
const NS = "http://www.w3.org/2000/svg";
function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; }
function sv(tag, attrs, text) { const e = document.createElementNS(NS, tag); for (const k of Object.keys(attrs)) e.setAttribute(k, String(attrs[k])); if (text !== undefined) e.textContent = String(text); return e; }
function fmt(v) { if (v === null || v === undefined) return "–"; const a = Math.abs(v); return a >= 1e6 ? (v / 1e6).toFixed(1) + "M" : a >= 1e4 ? (v / 1e3).toFixed(0) + "k" : a >= 100 || Number.isInteger(v) ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2); }
function niceCeil(v) { if (!(v > 0)) return 1; const e = Math.pow(10, Math.floor(Math.log10(v))); for (const m of [1, 2, 2.5, 5, 10]) if (m * e >= v) return m * e; return 10 * e; }

const COLORS = { allowed: "#1a7f37", rate_limited: "#c62828", circuit_open: "#7b1fa2", bulkhead_full: "#6d4c41", concurrency_limited: "#5d4037", priority_shed: "#8d6e63", would_limit: "#e69500", would_break: "#b26a00", rejected: "#546e7a",
  p50: "#1565c0", p99: "#ef6c00", length: "#1565c0", lag: "#ef6c00", limit: "#1565c0", inFlight: "#ef6c00", ready: "#1a7f37", ejected: "#c62828" };
const PALETTE = ["#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#00838f", "#ad1457", "#5d4037"];
const color = (name, i) => COLORS[name] || PALETTE[i % PALETTE.length];

// The plots, in order, each read from one sidecar's history. "series" gives the lines of one
// plot; "gauges" names a section of history.gauges and draws one plot per entry in it, a line per
// field ("fields" first, in that order), or with kind "state" one band per entry. A plot with no
// data is not drawn, so a section a sidecar does not report (no queue, no adaptive limit, no
// upstream) leaves no gap.
const PLOTS = [
  { title: "requests / s by decision", series: (h) => Object.entries(h.requests).filter(([k, v]) => k === "allowed" || v.some((x) => x > 0)).map(([k, v]) => ({ name: k, values: v })) },
  { title: "latency to the app, ms", series: (h) => [{ name: "p50", values: h.latencyMs.p50 }, { name: "p99", values: h.latencyMs.p99 }] },
  { title: "circuits", gauges: "circuits", kind: "state", field: "state", states: [["closed", "#2e9e4f"], ["open", "#d32f2f"], ["half-open", "#f0a202"]] },
  { title: "leadership", gauges: "leadership", kind: "state", field: "leader", states: [["follower", "#b0bac5"], ["leader", "#2e9e4f"]] },
  { title: "adaptive limit vs in flight", gauges: "adaptiveLimits", fields: ["limit", "inFlight"] },
  { title: "queue", gauges: "queues", fields: ["length", "lag"] },
  { title: "upstream endpoints", gauges: "upstreams", fields: ["ready", "ejected"] },
];

const H = 84, L = 34, R = 6, T = 6, B = 14;
function axisX(h) { const now = h.at[h.at.length - 1]; const span = h.windowMs; return { now: now, t0: now - span, span: span }; }
function lineChart(width, h, series) {
  const ax = axisX(h);
  let max = 0;
  for (const s of series) for (const v of s.values) if (v !== null && v > max) max = v;
  const top = niceCeil(max);
  const x = (t) => L + ((t - ax.t0) / ax.span) * (width - L - R);
  const y = (v) => T + (1 - v / top) * (H - T - B);
  const svg = sv("svg", { class: "chart", width: width, height: H, viewBox: "0 0 " + width + " " + H });
  for (const f of [0, 0.5, 1]) {
    svg.append(sv("line", { class: "grid", x1: L, x2: width - R, y1: y(top * f), y2: y(top * f) }));
    svg.append(sv("text", { class: "ax", x: L - 4, y: y(top * f) + 3, "text-anchor": "end" }, fmt(top * f)));
  }
  for (let m = Math.floor(ax.span / 60000); m >= 1; m--) svg.append(sv("text", { class: "ax", x: x(ax.now - m * 60000), y: H - 2, "text-anchor": "middle" }, "−" + m + "m"));
  svg.append(sv("text", { class: "ax", x: width - R, y: H - 2, "text-anchor": "end" }, "now"));
  let points = 0;
  series.forEach((s) => {
    let d = "", pen = false;
    s.values.forEach((v, i) => {
      if (v === null || h.at[i] < ax.t0) { pen = false; return; }
      d += (pen ? "L" : "M") + x(h.at[i]).toFixed(1) + " " + y(v).toFixed(1);
      pen = true; points++;
    });
    if (d) svg.append(sv("path", { class: "line", d: d, stroke: s.color }));
  });
  svg.setAttribute("data-points", points);
  return svg;
}
function stateChart(width, h, rows, states) {
  const ax = axisX(h);
  const x = (t) => L + ((t - ax.t0) / ax.span) * (width - L - R);
  const svg = sv("svg", { class: "chart", width: width, height: rows.length * 26, viewBox: "0 0 " + width + " " + rows.length * 26 });
  let points = 0;
  rows.forEach((r, k) => {
    const y = k * 26;
    const last = r.values[r.values.length - 1];
    const now = states[last] ? states[last][0] : "?";
    svg.append(sv("text", { class: "lbl", x: L, y: y + 10 }, r.name + " · " + now));
    svg.append(sv("rect", { x: L, y: y + 14, width: width - L - R, height: 9, fill: "#f1f3f5" }));
    for (let i = 0; i < r.values.length; i++) {
      const s = states[r.values[i]];
      if (!s || h.at[i] < ax.t0) continue;
      let j = i;
      while (j + 1 < r.values.length && r.values[j + 1] === r.values[i]) j++;
      const from = x(Math.max(ax.t0, h.at[i] - h.intervalMs)), to = x(h.at[j]);
      svg.append(sv("rect", { x: from.toFixed(1), y: y + 14, width: Math.max(1, to - from).toFixed(1), height: 9, fill: s[1] }, undefined));
      points += j - i + 1; i = j;
    }
  });
  svg.setAttribute("data-points", points);
  return svg;
}
function plotBlock(title, keys, chart) {
  const box = el("div", undefined, "plot");
  const head = el("div", undefined, "pt");
  head.append(el("b", title));
  for (const k of keys) { const key = el("span", undefined, "key"); const sw = el("span", undefined, "sw"); sw.style.background = k.color; key.append(sw, k.name + " " + fmt(k.last)); head.append(key); }
  box.append(head, chart);
  chart.setAttribute("data-plot", title);
  return box;
}
const lastOf = (values) => { for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null) return values[i]; return null; };
function drawPlots(into, h) {
  if (!h || !h.at) return; // a sidecar that keeps no history: its tables only
  if (h.at.length < 2) { into.append(el("div", "collecting samples…", "sub")); return; }
  const width = Math.max(220, into.clientWidth || 320);
  for (const p of PLOTS) {
    if (p.series) {
      const series = p.series(h).map((s, i) => ({ name: s.name, values: s.values, color: color(s.name, i) }));
      if (!series.some((s) => s.values.some((v) => v !== null))) continue;
      into.append(plotBlock(p.title, series.map((s) => ({ name: s.name, color: s.color, last: lastOf(s.values) })), lineChart(width, h, series)));
      continue;
    }
    const section = (h.gauges || {})[p.gauges];
    if (!section || !Object.keys(section).length) continue;
    if (p.kind === "state") {
      const rows = Object.entries(section).map(([name, f]) => ({ name: name, values: f[p.field] || [] }));
      into.append(plotBlock(p.title, [], stateChart(width, h, rows, p.states)));
      continue;
    }
    for (const [name, fields] of Object.entries(section)) {
      const order = (p.fields || []).filter((f) => f in fields).concat(Object.keys(fields).filter((f) => !(p.fields || []).includes(f)));
      const series = order.map((f, i) => ({ name: f, values: fields[f], color: color(f, i) }));
      if (!series.some((s) => s.values.some((v) => v !== null))) continue;
      into.append(plotBlock(p.title + " · " + name, series.map((s) => ({ name: s.name, color: s.color, last: lastOf(s.values) })), lineChart(width, h, series)));
    }
  }
}

function table(rows) {
  const t = el("table");
  for (const r of rows) {
    const tr = el("tr");
    if (!Array.isArray(r)) { const td = el("td", r.group, "g"); td.setAttribute("colspan", "2"); tr.append(td); t.append(tr); continue; }
    for (const c of r) { const cell = c !== null && typeof c === "object" ? c : { text: c }; tr.append(el("td", cell.text, (typeof cell.text === "number" || cell.n ? "n " : "") + (cell.cls || ""))); }
    t.append(tr);
  }
  return t;
}
function section(card, title, rows) { if (rows.length) card.append(el("h3", title), table(rows)); }
const DECISION_CLS = { allowed: "ok", rate_limited: "bad", circuit_open: "bad", bulkhead_full: "bad", concurrency_limited: "bad", priority_shed: "bad", would_limit: "warn", would_break: "warn", limited: "bad", OK: "ok" };
// A name (protocol, method, rule) on its own row, then its counts: long names never squeeze the numbers.
const grouped = (obj) => Object.entries(obj || {}).flatMap(([a, row]) => [{ group: a }, ...Object.entries(row).map(([b, n]) => [{ text: b, cls: "i " + (DECISION_CLS[b] || "") }, n])]);
for (const peer of peers) { const card = el("div", undefined, "card"); cards.set(peer, card); grid.append(card); }
function render(peer, s, err) {
  const card = cards.get(peer);
  card.replaceChildren();
  if (err) { card.className = "card down"; card.append(el("h2", peer), el("div", "unreachable: " + err, "sub bad")); return; }
  card.className = "card";
  card.append(el("h2", s.id), el("div", Object.entries(s.labels).map(([k, v]) => k + "=" + v).join(", ") + " · config " + s.configVersion + " · " + peer, "sub"));
  const plots = el("div", undefined, "plots");
  card.append(plots);
  drawPlots(plots, s.history);
  section(card, "requests by decision", grouped(s.requests));
  section(card, "gRPC calls by code", grouped(s.grpc));
  section(card, "rate-limit decisions", grouped(s.rateLimits));
  section(card, "circuits", Object.entries(s.circuits).flatMap(([rule, c]) => [{ group: rule }, [{ text: c.state, cls: "i " + (c.state === "closed" ? "ok" : c.state === "open" ? "bad" : "warn") }, { text: "opened " + c.opened + " · closed " + c.closed, n: true }]]));
  section(card, "leadership", s.elections.flatMap((e) => [{ group: e.election }, [e.leader ? { text: "LEADER", cls: "i ok" } : { text: "follows " + (e.holder || "?"), cls: "i" }, { text: "token " + (e.fencingToken || "–"), n: true }]]));
  for (const [q, v] of Object.entries(s.queues)) {
    section(card, "queue " + q, [...Object.entries(v.tasks).map(([r, n]) => [{ text: r, cls: r === "dead_lettered" ? "bad" : r === "retried" ? "warn" : "" }, n]), ...Object.entries(v.stream).map(([k, n]) => ["stream " + k, n])]);
  }
  if (s.websocket.connections || Object.keys(s.websocket.closes).length) section(card, "websocket", [["open connections", s.websocket.connections], ...Object.entries(s.websocket.closes).map(([c, n]) => ["closed with " + c, n])]);
  card.setAttribute("data-samples", s.history && s.history.at ? s.history.at.length : 0);
}
async function poll() {
  await Promise.all(peers.map(async (peer) => {
    try {
      const r = await fetch(peer + "/v1/live", { cache: "no-store" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      render(peer, await r.json());
    } catch (e) { render(peer, null, e.message || String(e)); }
  }));
  document.getElementById("at").textContent = "last 5 minutes · " + new Date().toLocaleTimeString();
  setTimeout(poll, 1000);
}
poll();
`;

const hash = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

/** Only this page's own style and script run; data comes from this origin and loopback peers. */
export const LIVE_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${hash(SCRIPT)}`,
  `style-src ${hash(STYLE)}`,
  "connect-src 'self' http://127.0.0.1:* http://localhost:*",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const LIVE_PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sluice — live</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${STYLE}</style></head><body>
<h1>Sluice — live state<span id="at" class="sub"></span></h1>
<div id="grid"></div>
<script>${SCRIPT}</script></body></html>
`;
