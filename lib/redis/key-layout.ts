/**
 * Sluice's Redis key layout, version 2: the one place that names keys. The sidecar (producers,
 * consumers, global limits, locks) and the operator (queue status, deletion, migration) both read
 * it, so they can never disagree on where a queue or a counter lives.
 *
 * Three rules shape every name:
 *  - every key carries the namespace of the resource it belongs to, so two teams that pick the
 *    same names in their own namespaces never share data;
 *  - all keys of one queue, one rate-limit rule or one lock share a hash tag (`{…}`), so every
 *    script and multi-key command touches one slot and the layout works on Redis Cluster;
 *  - names users choose (a TaskQueue's `stream`, `deadLetter.stream`) are labels inside Sluice's
 *    own key space, escaped so that they can never close a hash tag or reach another key.
 *
 * The layout version is stored in LAYOUT_VERSION_KEY. Version 1 (before namespaces) is described
 * by the `legacy*` functions at the end: only the migration reads those names.
 */

export const LAYOUT_VERSION = 2;

/** Holds the layout version the data is in; a process that finds a newer one refuses to write. */
export const LAYOUT_VERSION_KEY = 'sluice:layout';

/**
 * A user-chosen name as a label: `%`, `{` and `}` are percent-escaped so a label can neither end a
 * hash tag early nor open another one, and distinct names stay distinct.
 */
export function label(name: string): string {
  return name.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

// ── task queues ──────────────────────────────────────────────────────────────────────────────────

/** What a queue's keys are derived from: its namespace and the labels its TaskQueue gives. */
export interface QueueIdentity {
  readonly namespace: string;
  /** TaskQueue `spec.stream`: the queue's label (two TaskQueues naming one stream share it). */
  readonly stream: string;
  /** TaskQueue `spec.deadLetter.stream`: a label for the queue's dead letters. */
  readonly deadLetterStream?: string | undefined;
}

export interface QueueKeys {
  /** The hash tag every key of this queue carries (without braces). */
  readonly tag: string;
  /** The Redis Stream of tasks; the consumer group lives inside it. */
  readonly stream: string;
  /** The dead-letter stream, when the TaskQueue names one. */
  readonly deadLetter: string | undefined;
  /** Sorted set: delayed task id scored by the Redis time (ms) it becomes due. */
  readonly delayed: string;
  /** Hash: delayed task id → the packed entry fields it will be appended with. */
  readonly delayedTasks: string;
  /** Counter that numbers delayed tasks (they need an id before they have an entry). */
  readonly seq: string;
  /** Hash: `Idempotency-Key` → task id. */
  readonly idempotency: string;
  /** Sorted set: `Idempotency-Key` scored by the Redis time (ms) its record expires. */
  readonly idempotencyExpiry: string;
  /** The layout version this queue's data is in (set when it was created or migrated). */
  readonly layout: string;
  /**
   * Hash: the queue's dead-letter redrive — its state, cursor, end, counts, owner and lease. One
   * per queue: a redrive is idempotent because the script that moves a dead letter back also
   * advances this cursor, in the same call.
   */
  readonly redrive: string;
  /** Hash: ordering key → the id of the one task of that key in the stream (delivered or due). */
  readonly orderActive: string;
  /**
   * Sorted set (all scores 0, ordered by member): `<ordering key>\0<20-digit sequence>` followed by
   * the packed task id and entry fields, for each task waiting behind its key's active task — so a
   * key's line is one ZRANGEBYLEX and taking its next task one ZREM.
   */
  readonly orderWaiting: string;
  /** Every key the queue owns, for deletion: one slot, so one DEL. */
  readonly all: readonly string[];
}

/**
 * `sluice:q:{<namespace>/<stream label>}:<part>`. Ordering keys live in two fixed keys (never one
 * key per ordering key), so a queue still owns a fixed list of keys, deleted by one DEL.
 */
export function queueKeys(q: QueueIdentity): QueueKeys {
  const tag = `${q.namespace}/${label(q.stream)}`;
  const base = `sluice:q:{${tag}}`;
  const deadLetter = q.deadLetterStream === undefined ? undefined : `${base}:dead:${label(q.deadLetterStream)}`;
  const keys = {
    tag,
    stream: `${base}:stream`,
    deadLetter,
    delayed: `${base}:delayed`,
    delayedTasks: `${base}:delayed:tasks`,
    seq: `${base}:seq`,
    idempotency: `${base}:idem`,
    idempotencyExpiry: `${base}:idem:expiry`,
    layout: `${base}:layout`,
    redrive: `${base}:redrive`,
    orderActive: `${base}:order:active`,
    orderWaiting: `${base}:order:waiting`,
  };
  const all = [
    keys.stream, keys.delayed, keys.delayedTasks, keys.seq, keys.idempotency, keys.idempotencyExpiry, keys.layout, keys.redrive,
    keys.orderActive, keys.orderWaiting,
  ];
  if (deadLetter !== undefined) all.push(deadLetter);
  return { ...keys, all };
}

// ── global rate limits ───────────────────────────────────────────────────────────────────────────

/**
 * Keys of a Global rule, `sluice:rl:{<namespace>/<policy>/<rule>}:…`: the rule id is Kubernetes
 * names only, so it needs no escaping. The names are unchanged from version 1 (they already carried
 * the namespace and one tag): old and new sidecars share one budget during a rolling upgrade.
 * A partition value is used as it is — it comes from a header or an address, it sits after the tag,
 * and Redis keys are binary-safe.
 */
export function rateLimitBucketKey(ruleId: string, partition: string): string {
  return `sluice:rl:{${ruleId}}:${partition === '' ? '-' : partition}`;
}

/**
 * A TokenBucket partition of a rule with warm-up: a hash (tat, coldness, last update) instead of
 * the plain TAT string, under its own name so that turning warm-up on or off never meets a key of
 * the other type.
 */
export function rateLimitWarmBucketKey(ruleId: string, partition: string): string {
  return `sluice:rl:{${ruleId}}:~warm:${partition === '' ? '-' : partition}`;
}

/** The sorted set of live sidecars sharing a rule. */
export function rateLimitPresenceKey(ruleId: string): string {
  return `sluice:rl:{${ruleId}}:~sidecars`;
}

/**
 * The sorted set of open WebSocket connections under one key of a rule's maxConnectionsPerKey:
 * connection ids scored by when their lease expires. In the rule's slot, like its limits.
 */
export function connectionsKey(ruleId: string, partition: string): string {
  return `sluice:ws:{${ruleId}}:${partition === '' ? '-' : partition}`;
}

// ── locks (on the lock nodes) ────────────────────────────────────────────────────────────────────

/**
 * Where a lock node keeps the newest fencing token a FencingPolicy accepted for one lease or lock.
 * The namespace is in the hash tag, so two namespaces that share lock nodes never read each
 * other's tokens; the names are labels inside Sluice's key space.
 */
export function acceptedTokenKey(namespace: string, kind: 'LeaderElection' | 'Lock', name: string): string {
  return `sluice:{${namespace}/fence/${kind}/${name}}:accepted`;
}

/** The lock resource of a LeaderElection: unchanged from version 1, which already carried the namespace. */
export function electionResource(namespace: string, name: string): string {
  return `election/${namespace}/${name}`;
}

/**
 * The lock resource of an app lock (`/v1/locks/{resource}`) taken by a pod of `namespace`. Version 1
 * keyed app locks by resource alone (`app/<resource>`), so two namespaces shared them; the new
 * prefix (`applock/`) keeps the two layouts from ever naming the same key.
 */
export function appLockResource(namespace: string, resource: string): string {
  return `applock/${namespace}/${label(resource)}`;
}

/** A lock and its fencing counter share the resource as their tag: the lock scripts touch one slot. */
export function lockKey(resource: string): string {
  return `sluice:lock:{${resource}}`;
}

export function fenceKey(resource: string): string {
  return `sluice:fence:{${resource}}`;
}

/** Pub/sub channel announcing a release (a channel, not a key: no slot). */
export function releaseChannel(resource: string): string {
  return `sluice:lock:released:${resource}`;
}

// ── version 1 (before namespaces), read only by the migration ──────────────────────────────────

export interface LegacyQueueKeys {
  readonly stream: string;
  readonly deadLetter: string | undefined;
  readonly delayed: string;
  readonly delayedTasks: string;
  readonly seq: string;
  /** Idempotency records were one string per key under this prefix. */
  readonly idempotencyPrefix: string;
}

/** Version 1: the stream and dead-letter stream were the raw user names, side keys `sluice:tq:{stream}:…`. */
export function legacyQueueKeys(q: QueueIdentity): LegacyQueueKeys {
  const base = `sluice:tq:{${q.stream}}`;
  return {
    stream: q.stream,
    deadLetter: q.deadLetterStream,
    delayed: `${base}:delayed`,
    delayedTasks: `${base}:delayed:tasks`,
    seq: `${base}:seq`,
    idempotencyPrefix: `${base}:idem:`,
  };
}

/** Version 1 app locks: no namespace. */
export function legacyAppLockResource(resource: string): string {
  return `app/${resource}`;
}

// ── slots ────────────────────────────────────────────────────────────────────────────────────────

/** The part of a key Redis Cluster hashes: the first non-empty `{…}`, else the whole key. */
export function hashTagOf(key: string): string {
  const open = key.indexOf('{');
  if (open === -1) return key;
  const close = key.indexOf('}', open + 1);
  if (close === -1 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

/** The Redis Cluster slot of a key (CRC16/XMODEM of its hash tag, mod 16384), as CLUSTER KEYSLOT answers. */
export function hashSlot(key: string): number {
  const bytes = Buffer.from(hashTagOf(key), 'utf8');
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}
