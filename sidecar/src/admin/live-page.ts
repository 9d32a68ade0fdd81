import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { Clock } from '../../../lib/clock.ts';
import { LiveHistory, type LiveHistoryColumns, type LiveReading } from './live-history.ts';
import { LIVE_PAGE_CSP, LIVE_PAGE_HTML } from './live-page-html.ts';

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
 *
 * The page plots the last minutes: each second `startLiveSampling` reads the snapshot into a
 * bounded LiveHistory, and `/v1/live` carries it as `history`.
 */

/** What the live view reads from a sidecar; `Sidecar` has this shape. */
export interface LiveSource {
  readonly opts: { readonly id: string; readonly labels?: Record<string, string> };
  readonly metrics: { readonly registry: Registry };
  readonly store: { readonly current: { readonly version: string } };
  readonly clock: Clock;
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
  /**
   * Optional gauge sections, name → field → value, present only where a feature reports them.
   * Each section listed in GAUGE_SECTIONS is sampled over time and plotted by the page when present:
   * `adaptiveLimits` (per rule: `limit`, `inFlight`), `upstreams` (per upstream: `ready`, `ejected`).
   */
  adaptiveLimits?: Record<string, Record<string, number>>;
  upstreams?: Record<string, Record<string, number>>;
  /** The last minutes, one sample per second (absent when the sidecar keeps no history). */
  history?: LiveHistoryColumns;
}

/**
 * The gauges sampled over time, by section of `history.gauges`: how each is read from a snapshot
 * (circuit state 0 closed, 1 open, 2 half-open; leader 1 or 0).
 * A feature that wants a plot adds its section to LiveSnapshot and a line here; the page draws the
 * sections it finds (see PLOTS in live-page-html.ts).
 */
const GAUGE_SECTIONS: Record<string, (s: LiveSnapshot) => Record<string, Record<string, number>> | undefined> = {
  circuits: (s) => mapValues(s.circuits, (c) => ({ state: CIRCUIT_STATES.indexOf(c.state) })),
  queues: (s) => mapValues(s.queues, (q) => pick(q.stream, ['length', 'lag'])),
  leadership: (s) => Object.fromEntries(s.elections.map((e) => [e.election, { leader: e.leader ? 1 : 0, fencingToken: e.fencingToken ?? 0 }])),
  adaptiveLimits: (s) => s.adaptiveLimits,
  upstreams: (s) => s.upstreams,
};

function mapValues<A, B>(obj: Record<string, A>, f: (a: A) => B): Record<string, B> {
  return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, f(v)]));
}

function pick(obj: Record<string, number>, keys: string[]): Record<string, number> {
  return Object.fromEntries(keys.filter((k) => typeof obj[k] === 'number').map((k) => [k, obj[k] as number]));
}

const CIRCUIT_STATES = ['closed', 'open', 'half-open'] as const;
const QUEUE_GAUGES: Record<string, string> = {
  sluice_queue_length: 'length', sluice_queue_lag: 'lag', sluice_queue_pending: 'pending',
  sluice_queue_delayed: 'delayed', sluice_queue_dead_letters: 'deadLetters',
};

type Values = { labels: Record<string, string | number>; value: number; metricName?: string }[];

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

/**
 * `history`: the samples to include. `queueGauges: false` leaves out the queues' stream gauges,
 * which cost a Redis query (see startLiveSampling).
 */
export async function liveSnapshot(source: LiveSource, { history, queueGauges = true }: { history?: LiveHistory; queueGauges?: boolean } = {}): Promise<LiveSnapshot> {
  const registry = source.metrics.registry;
  const [requests, grpc, decisions, circuitState, transitions, tasks, wsConns, wsCloses] = await Promise.all([
    read(registry, 'sluice_requests_total'),
    read(registry, 'sluice_grpc_requests_total'),
    read(registry, 'sluice_ratelimit_decisions_total'),
    read(registry, 'sluice_circuit_state'),
    read(registry, 'sluice_circuit_transitions_total'),
    read(registry, 'sluice_queue_tasks_total'),
    read(registry, 'sluice_websocket_connections'),
    read(registry, 'sluice_websocket_closes_total'),
  ]);
  const snap: LiveSnapshot = {
    id: source.opts.id,
    labels: source.opts.labels ?? {},
    configVersion: source.store.current.version,
    at: new Date().toISOString(),
    requests: {}, grpc: {}, rateLimits: {}, circuits: {}, elections: [], queues: {},
    websocket: { connections: wsConns[0]?.value ?? 0, closes: {} },
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
  if (queueGauges && tasks.length > 0) {
    for (const [metric, key] of Object.entries(QUEUE_GAUGES)) {
      for (const v of await read(registry, metric)) queue(label(v, 'queue')).stream[key] = v.value;
    }
  }
  for (const v of wsCloses) snap.websocket.closes[label(v, 'code')] = v.value;
  const status = source.status();
  snap.elections = electionsOf(status);
  const upstreams = upstreamGauges(status);
  if (Object.keys(upstreams).length > 0) snap.upstreams = upstreams;
  if (history) snap.history = history.columns();
  return snap;
}

/**
 * The sidecar's Upstreams (`features.outbound.upstreams` of its status): endpoints ready and
 * ejected per upstream, the gauges the page plots.
 */
function upstreamGauges(status: unknown): Record<string, Record<string, number>> {
  const list = (status as { features?: { outbound?: { upstreams?: unknown } } } | undefined)?.features?.outbound?.upstreams;
  if (!Array.isArray(list)) return {};
  return Object.fromEntries(list.map((u: Record<string, unknown>) => {
    const endpoints = Array.isArray(u.endpoints) ? (u.endpoints as { ejected?: boolean }[]) : [];
    const ejected = endpoints.filter((e) => e.ejected === true).length;
    return [String(u.id ?? ''), { ready: endpoints.length - ejected, ejected }];
  }));
}

/** The latency histogram to the app, summed over its series: bounds (s) and counts per bucket. */
async function latencyOf(registry: Registry): Promise<LiveReading['latency']> {
  const cumulative = new Map<number, number>();
  for (const v of await read(registry, 'sluice_upstream_duration_seconds')) {
    const le = v.metricName?.endsWith('_bucket') ? v.labels.le : undefined;
    if (le === undefined) continue;
    const bound = le === '+Inf' ? Infinity : Number(le);
    cumulative.set(bound, (cumulative.get(bound) ?? 0) + v.value);
  }
  const all = [...cumulative.keys()].sort((a, b) => a - b);
  const bounds = all.filter((b) => b !== Infinity);
  let below = 0;
  const counts = bounds.map((b) => {
    const c = (cumulative.get(b) ?? 0) - below;
    below += c;
    return c;
  });
  counts.push((cumulative.get(Infinity) ?? below) - below);
  return { bounds, counts };
}

/** One reading for the history: cumulative requests by decision, the latency histogram, gauges. */
export async function liveReading(source: LiveSource, clock: Clock, { queueGauges = true }: { queueGauges?: boolean } = {}): Promise<LiveReading> {
  const t = clock.now();
  const [snap, latency] = await Promise.all([liveSnapshot(source, { queueGauges }), latencyOf(source.metrics.registry)]);
  const requests: Record<string, number> = {};
  for (const byDecision of Object.values(snap.requests)) {
    for (const [decision, n] of Object.entries(byDecision)) requests[decision] = (requests[decision] ?? 0) + n;
  }
  const gauges: LiveReading['gauges'] = {};
  for (const [section, read] of Object.entries(GAUGE_SECTIONS)) {
    const values = Object.entries(read(snap) ?? {}).filter(([, fields]) => Object.keys(fields).length > 0);
    if (values.length) gauges[section] = Object.fromEntries(values);
  }
  return { t, at: clock.wallNow(), requests, latency, gauges };
}

/** Queue gauges are sampled while someone has read /v1/live within this long. */
export const WATCHED_MS = 60_000;

/**
 * Samples the sidecar into `history` every interval until the returned stop is called. The timer
 * is unref'd (it never keeps a process alive) and a reading still running skips the next tick.
 * Counters, latency and circuits are in memory and always sampled; the queues' stream gauges cost
 * a Redis query, so they are sampled only while a page is watching (their plot shows a gap for the
 * time nobody looked) — nobody pays for them when nobody looks.
 */
export function startLiveSampling(source: LiveSource, history: LiveHistory, clock: Clock): () => void {
  let busy = false;
  let stopped = false;
  const tick = () => {
    if (busy || stopped) return;
    busy = true;
    const watched = history.lastReadAt !== undefined && clock.now() - history.lastReadAt < WATCHED_MS;
    liveReading(source, clock, { queueGauges: watched })
      .then((r) => {
        if (!stopped) history.record(r);
      })
      .catch(() => {}) // a failed reading leaves a gap in the plots, nothing else
      .finally(() => (busy = false));
  };
  tick();
  const timer = setInterval(tick, history.intervalMs);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
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
export function livePageRoutes(source: LiveSource, history?: LiveHistory): [string, AdminRoute][] {
  return [
    ['/ui', (res) => {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'content-security-policy': LIVE_PAGE_CSP,
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
      if (history) history.lastReadAt = source.clock.now();
      liveSnapshot(source, { history }).then(
        (snap) => res.writeHead(200, headers).end(JSON.stringify(snap)),
        () => res.writeHead(500, headers).end(JSON.stringify({ error: 'live snapshot failed' })),
      );
    }],
  ];
}
