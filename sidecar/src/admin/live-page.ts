import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';

/**
 * The live page on the admin port: `GET /ui` (one HTML page, no external assets, a little inline
 * JS) and the JSON it polls every second, `GET /v1/live` — this sidecar's counters read from its
 * own metric registry: requests by decision, gRPC calls by code, rate-limit decisions, circuit
 * states, leadership with fencing tokens, queue results and WebSocket closes.
 *
 * One page can show several sidecars: `/ui?peers=http://127.0.0.1:15001,http://127.0.0.1:15002`
 * polls each peer's `/v1/live` too. For that, `/v1/live` — and only it, a read-only GET — answers
 * CORS requests from loopback origins (the page is served from a loopback admin port, or through
 * `kubectl port-forward`); other origins get no CORS header, so other sites cannot read it.
 */

/** What the live view reads from a sidecar; `Sidecar` has this shape. */
export interface LiveSource {
  readonly opts: { readonly id: string; readonly labels?: Record<string, string> };
  readonly metrics: { readonly registry: Registry };
  readonly store: { readonly current: { readonly version: string } };
  status(): unknown;
}

export interface LiveElection {
  election: string;
  leader: boolean;
  holder: string | null;
  fencingToken: number | null;
  since: string | null;
}

/** The `/v1/live` document. Counter maps are keyed by label values; absent series are omitted. */
export interface LiveSnapshot {
  id: string;
  labels: Record<string, string>;
  configVersion: string;
  at: string;
  /** sluice_requests_total, summed over routes: decision → count, per protocol. */
  requests: Record<string, Record<string, number>>;
  /** sluice_grpc_requests_total: method → code → count. */
  grpc: Record<string, Record<string, number>>;
  /** sluice_ratelimit_decisions_total: rule → decision → count. */
  rateLimits: Record<string, Record<string, number>>;
  /** sluice_circuit_state and sluice_circuit_transitions_total, per breaker rule. */
  circuits: Record<string, { state: 'closed' | 'open' | 'half-open'; opened: number; closed: number }>;
  elections: LiveElection[];
  /** sluice_queue_tasks_total: queue → result → count, and the stream gauges (length, lag, …). */
  queues: Record<string, { tasks: Record<string, number>; stream: Record<string, number> }>;
  websocket: { connections: number; closes: Record<string, number> };
  /** The Upstreams this sidecar serves: listen address, calls by outcome, retries, endpoints. */
  upstreams: LiveUpstream[];
}

export interface LiveUpstream {
  upstream: string;
  listen: string;
  state: string;
  calls: Record<string, number>;
  retries: number;
  endpoints: { address: string; outstanding: number; ejected: boolean }[];
}

const CIRCUIT_STATES = ['closed', 'open', 'half-open'] as const;
const QUEUE_GAUGES: Record<string, string> = {
  sluice_queue_length: 'length', sluice_queue_lag: 'lag', sluice_queue_pending: 'pending',
  sluice_queue_delayed: 'delayed', sluice_queue_dead_letters: 'deadLetters',
};

type Values = { labels: Record<string, string | number>; value: number }[];

async function read(registry: Registry, name: string): Promise<Values> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return [];
  try {
    return ((await metric.get()) as { values?: Values }).values ?? [];
  } catch {
    return []; // a gauge whose collect() failed (Redis away): show nothing rather than fail the page
  }
}

function add(into: Record<string, Record<string, number>>, a: string, b: string, n: number): void {
  const row = (into[a] ??= {});
  row[b] = (row[b] ?? 0) + n;
}

const label = (v: Values[number], name: string): string => String(v.labels[name] ?? '');

export async function liveSnapshot(source: LiveSource): Promise<LiveSnapshot> {
  const registry = source.metrics.registry;
  const [requests, grpc, decisions, circuitState, transitions, tasks, wsConns, wsCloses, outCalls, outRetries] = await Promise.all([
    read(registry, 'sluice_requests_total'),
    read(registry, 'sluice_grpc_requests_total'),
    read(registry, 'sluice_ratelimit_decisions_total'),
    read(registry, 'sluice_circuit_state'),
    read(registry, 'sluice_circuit_transitions_total'),
    read(registry, 'sluice_queue_tasks_total'),
    read(registry, 'sluice_websocket_connections'),
    read(registry, 'sluice_websocket_closes_total'),
    read(registry, 'sluice_outbound_calls_total'),
    read(registry, 'sluice_outbound_retries_total'),
  ]);
  const snap: LiveSnapshot = {
    id: source.opts.id,
    labels: source.opts.labels ?? {},
    configVersion: source.store.current.version,
    at: new Date().toISOString(),
    requests: {}, grpc: {}, rateLimits: {}, circuits: {}, elections: [], queues: {},
    websocket: { connections: wsConns[0]?.value ?? 0, closes: {} },
    upstreams: [],
  };
  for (const v of requests) add(snap.requests, label(v, 'protocol'), label(v, 'decision'), v.value);
  for (const v of grpc) add(snap.grpc, label(v, 'method'), label(v, 'code'), v.value);
  for (const v of decisions) add(snap.rateLimits, label(v, 'rule'), label(v, 'decision'), v.value);
  for (const v of circuitState) snap.circuits[label(v, 'rule')] = { state: CIRCUIT_STATES[v.value] ?? 'closed', opened: 0, closed: 0 };
  for (const v of transitions) {
    const c = (snap.circuits[label(v, 'rule')] ??= { state: 'closed', opened: 0, closed: 0 });
    if (label(v, 'to') === 'open') c.opened += v.value;
    if (label(v, 'to') === 'closed') c.closed += v.value;
  }
  const queue = (name: string) => (snap.queues[name] ??= { tasks: {}, stream: {} });
  for (const v of tasks) {
    const t = queue(label(v, 'queue')).tasks;
    t[label(v, 'result')] = (t[label(v, 'result')] ?? 0) + v.value;
  }
  // The stream gauges cost a Redis query (cached by the queue feature): read them only where a queue runs.
  if (tasks.length > 0) {
    for (const [metric, key] of Object.entries(QUEUE_GAUGES)) {
      for (const v of await read(registry, metric)) queue(label(v, 'queue')).stream[key] = v.value;
    }
  }
  for (const v of wsCloses) snap.websocket.closes[label(v, 'code')] = v.value;
  const status = source.status();
  snap.elections = electionsOf(status);
  snap.upstreams = upstreamsOf(status);
  for (const u of snap.upstreams) {
    for (const v of outCalls) if (label(v, 'upstream') === u.upstream) u.calls[label(v, 'outcome')] = v.value;
    u.retries = outRetries.find((v) => label(v, 'upstream') === u.upstream)?.value ?? 0;
  }
  return snap;
}

/** Upstreams from the sidecar's status document (`features.outbound.upstreams`). */
function upstreamsOf(status: unknown): LiveUpstream[] {
  const list = (status as { features?: { outbound?: { upstreams?: unknown } } } | undefined)?.features?.outbound?.upstreams;
  if (!Array.isArray(list)) return [];
  return list.map((u: Record<string, unknown>) => ({
    upstream: String(u.id ?? ''),
    listen: String(u.listen ?? ''),
    state: String(u.state ?? ''),
    calls: {},
    retries: 0,
    endpoints: (Array.isArray(u.endpoints) ? u.endpoints : []).map((e: Record<string, unknown>) => ({ address: String(e.address), outstanding: Number(e.outstanding ?? 0), ejected: e.ejected === true })),
  }));
}

/** Leadership from the sidecar's status document (`features.leadership.elections`). */
function electionsOf(status: unknown): LiveElection[] {
  const list = (status as { features?: { leadership?: { elections?: unknown } } } | undefined)?.features?.leadership?.elections;
  if (!Array.isArray(list)) return [];
  return list.map((e: Record<string, unknown>) => ({
    election: String(e.election ?? e.name ?? ''),
    leader: e.leader === true,
    holder: e.holder == null ? null : String(e.holder),
    fencingToken: typeof e.fencingToken === 'number' ? e.fencingToken : null,
    since: e.since == null ? null : String(e.since),
  }));
}

/** Loopback origins only: the page is served from a loopback admin port (or a port-forward). */
export function isLoopbackOrigin(origin: string | undefined): boolean {
  if (!origin) return false;
  try {
    const u = new URL(origin);
    return (u.protocol === 'http:' || u.protocol === 'https:') && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
  } catch {
    return false;
  }
}

type AdminRoute = (res: ServerResponse, req: IncomingMessage) => void;

/** The admin routes of the live page, for the admin server's `extraRoutes`. */
export function livePageRoutes(source: LiveSource): [string, AdminRoute][] {
  return [
    ['/ui', (res) => {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        // Inline script and style only; fetches go to this origin and loopback peers.
        'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self' http://127.0.0.1:* http://localhost:*",
      });
      res.end(LIVE_PAGE_HTML);
    }],
    ['/v1/live', (res, req) => {
      const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-store' };
      const origin = req.headers.origin;
      if (isLoopbackOrigin(origin)) {
        headers['access-control-allow-origin'] = origin as string;
        headers.vary = 'Origin';
      }
      liveSnapshot(source).then(
        (snap) => res.writeHead(200, headers).end(JSON.stringify(snap)),
        () => res.writeHead(500, headers).end(JSON.stringify({ error: 'live snapshot failed' })),
      );
    }],
  ];
}

/**
 * The page. Everything from the network is rendered with textContent (never innerHTML), so a
 * hostile peer cannot inject markup. Peers come from `?peers=` (comma-separated admin URLs).
 */
export const LIVE_PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sluice — live</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1rem;background:#f6f7f9;color:#1d232b}
h1{font-size:1.2rem;margin:0 0 .5rem}
#grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:.8rem}
.card{background:#fff;border:1px solid #d9dde3;border-radius:6px;padding:.6rem .8rem}
.card.down{opacity:.55;border-style:dashed}
.card h2{font-size:1rem;margin:0}.sub{color:#68717d;font-size:.8rem;margin-bottom:.3rem}
h3{font-size:.8rem;text-transform:uppercase;color:#68717d;margin:.5rem 0 .15rem}
table{border-collapse:collapse;width:100%}td{padding:1px 4px;border-bottom:1px solid #eef0f3;font-variant-numeric:tabular-nums}
td.n{text-align:right}.ok{color:#1a7f37}.bad{color:#c62828}.warn{color:#b26a00}
</style></head><body>
<h1>Sluice — live state <span id="at" class="sub"></span></h1>
<div id="grid"></div>
<script>
"use strict";
const peers = [location.origin];
for (const p of (new URLSearchParams(location.search).get("peers") || "").split(",")) {
  try { const u = new URL(p.trim()); if ((u.protocol === "http:" || u.protocol === "https:") && !peers.includes(u.origin)) peers.push(u.origin); } catch (e) {}
}
const grid = document.getElementById("grid");
const cards = new Map();
function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; }
function table(rows) { const t = el("table"); for (const r of rows) { const tr = el("tr"); r.forEach((c, i) => { const td = el("td", c.text !== undefined ? c.text : c, (i === r.length - 1 ? "n " : "") + (c.cls || "")); tr.append(td); }); t.append(tr); } return t; }
function section(card, title, rows) { if (rows.length) { card.append(el("h3", title), table(rows)); } }
const DECISION_CLS = { allowed: "ok", rate_limited: "bad", circuit_open: "bad", bulkhead_full: "bad", would_limit: "warn", would_break: "warn", limited: "bad", OK: "ok" };
const flat = (obj) => Object.entries(obj || {}).flatMap(([a, row]) => Object.entries(row).map(([b, n]) => [a, { text: b, cls: DECISION_CLS[b] || "" }, n]));
for (const peer of peers) { const card = el("div", undefined, "card"); cards.set(peer, card); grid.append(card); }
function render(peer, s, err) {
  const card = cards.get(peer);
  card.replaceChildren();
  if (err) { card.className = "card down"; card.append(el("h2", peer), el("div", "unreachable: " + err, "sub bad")); return; }
  card.className = "card";
  card.append(el("h2", s.id), el("div", Object.entries(s.labels).map(([k, v]) => k + "=" + v).join(", ") + " · config " + s.configVersion + " · " + peer, "sub"));
  section(card, "requests by decision", flat(s.requests));
  section(card, "gRPC calls by code", flat(s.grpc));
  section(card, "rate-limit decisions", flat(s.rateLimits));
  section(card, "circuits", Object.entries(s.circuits).map(([rule, c]) => [rule, "opened " + c.opened + " · closed " + c.closed, { text: c.state, cls: c.state === "closed" ? "ok" : c.state === "open" ? "bad" : "warn" }]));
  section(card, "leadership", s.elections.map((e) => [e.election, e.leader ? { text: "LEADER", cls: "ok" } : "follows " + (e.holder || "?"), "token " + (e.fencingToken || "–")]));
  for (const [q, v] of Object.entries(s.queues)) {
    section(card, "queue " + q, [...Object.entries(v.tasks).map(([r, n]) => [r, { text: n, cls: r === "dead_lettered" ? "bad" : r === "retried" ? "warn" : "" }]), ...Object.entries(v.stream).map(([k, n]) => ["stream " + k, n])]);
  }
  for (const u of s.upstreams || []) {
    section(card, "upstream " + u.upstream + " (" + u.listen + ", " + u.state + ")", [
      ...Object.entries(u.calls).map(([o, n]) => ["calls " + o, { text: n, cls: o === "ok" || o === "2xx" ? "ok" : "bad" }]),
      ["retries", u.retries],
      ...u.endpoints.map((e) => [e.address, e.outstanding + " in flight", { text: e.ejected ? "ejected" : "ready", cls: e.ejected ? "bad" : "ok" }]),
    ]);
  }
  if (s.websocket.connections || Object.keys(s.websocket.closes).length) section(card, "websocket", [["open connections", s.websocket.connections], ...Object.entries(s.websocket.closes).map(([c, n]) => ["closed with " + c, n])]);
}
async function poll() {
  await Promise.all(peers.map(async (peer) => {
    try {
      const r = await fetch(peer + "/v1/live", { cache: "no-store" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      render(peer, await r.json());
    } catch (e) { render(peer, null, e.message || String(e)); }
  }));
  document.getElementById("at").textContent = new Date().toLocaleTimeString();
  setTimeout(poll, 1000);
}
poll();
</script></body></html>
`;
