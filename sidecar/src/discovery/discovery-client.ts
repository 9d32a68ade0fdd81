/**
 * The sidecar's side of sluice.v1.PolicyDiscovery (operator mode, `--operator host:port[,host:port]`).
 *
 * - Identifies its pod (Hello with the projected token), then offers every snapshot to the
 *   PolicyStore, which validates, compiles and swaps it in, and sends back the store's answer: ACK,
 *   or NACK with the validation error while the plan in force stays. This client never compiles.
 * - When the stream breaks it reconnects with capped, jittered backoff, trying the next address
 *   (a follower replica refuses with UNAVAILABLE); meanwhile the last snapshot stays in force.
 * - Before the first snapshot the store holds the empty plan and /readyz says config waiting.
 * - The snapshot's producible TaskQueues (every accepted one of the namespace) are delivered with
 *   it: the app may post to them; only the selected ones are consumed.
 * - With `tls` (the operator's CA bundle, `--operator-ca`) the channel is TLS and
 *   verifies the operator's certificate against that CA and the target's host name (or
 *   `serverName`); plaintext is then never used. Without it the channel is plaintext and a
 *   warning says the token travels in clear (standalone/dev operators only). A handshake failure
 *   (wrong CA, wrong name, plaintext operator) ends the attempt like any other: lastError says
 *   why, and it retries with backoff.
 */
import * as grpc from '@grpc/grpc-js';
import { Backoff } from '../../../lib/backoff.ts';
import { SUPPORTED_KINDS } from '../../../lib/policy/skew.ts';
import { policyDiscovery, type CircuitTransition, type DiscoveryRequest, type DiscoveryResponse, type DiscoveryStream, type EndpointUpdate, type PolicyDiscoveryClient, type RedriveRequestMessage, type ResourceError, type Snapshot } from '../../../lib/proto/discovery.ts';
import type { ReadinessCheck } from '../admin/admin-server.ts';
import type { PolicyStore } from '../config/policy-store.ts';
import type { Logger } from '../../../lib/log.ts';
import { readToken, type PodIdentity } from './pod-identity.ts';

export interface DiscoveryClientOptions {
  /** Operator addresses (host:port), tried in turn. */
  targets: string[];
  identity: PodIdentity;
  sidecarId: string;
  store: PolicyStore;
  logger: Logger;
  /** The kinds named in the Hello (default: SUPPORTED_KINDS); [] plays a sidecar older than negotiation. */
  supportedKinds?: readonly string[];
  backoff?: { baseMs: number; capMs: number };
  /** What the periodic health report says (default: the plan version). */
  health?: () => unknown;
  reportIntervalMs?: number;
  /** Called each time the stream is (re)established (first message received): resend state reports. */
  onConnected?: () => void;
  /** The ready endpoints of one Upstream (`namespace/name`), from an endpoint update. */
  onEndpoints?: (upstream: string, addresses: readonly string[]) => void;
  /** The operator hands this worker a dead-letter redrive to start (the TaskQueue's sluice.dev/redrive annotation). */
  onRedrive?: (request: RedriveRequestMessage) => void;
  /**
   * Once a plan is applied: the resources of it this sidecar could not put in place (an Upstream
   * whose port is taken), sent with the ACK. Awaited, at most ANSWER_WAIT_MS, before the ACK.
   */
  resourceErrors?: () => Promise<ResourceError[]>;
  /** Verify the operator with this CA bundle (PEM); serverName overrides the name checked (targets given as IPs). */
  tls?: { caPem: string; serverName?: string };
}

/** How long an ACK waits for the plan's listeners to bind before it goes without their outcome. */
const ANSWER_WAIT_MS = 10_000;

export class DiscoveryClient {
  readonly name = 'discovery';
  private readonly opts: DiscoveryClientOptions;
  private readonly backoff: Backoff;
  private readonly clients = new Map<string, PolicyDiscoveryClient>();
  private stream: DiscoveryStream | undefined;
  private target = 0;
  private timer: NodeJS.Timeout | undefined;
  private reportTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Answers to snapshots go out in the order the snapshots came, each after its plan is in place. */
  private answering: Promise<void> = Promise.resolve();
  connected = false;
  lastError: string | undefined;
  snapshots = 0;
  endpointUpdates = 0;
  reconnects = 0;

  constructor(opts: DiscoveryClientOptions) {
    if (opts.targets.length === 0) throw new RangeError('at least one operator address is needed');
    this.opts = opts;
    // Capped at 5s: an operator restart (new pod, lease takeover) takes seconds, and sidecars
    // should be back soon after; jitter keeps thousands of them from reconnecting in lockstep.
    this.backoff = new Backoff(opts.backoff ?? { baseMs: 250, capMs: 5_000 });
    // Fail at start on an unusable CA rather than retrying forever.
    if (opts.tls && !/-----BEGIN CERTIFICATE-----/.test(opts.tls.caPem)) throw new RangeError('the operator CA must be PEM certificates');
    if (!opts.tls) opts.logger.warn('no operator CA (--operator-ca): the discovery stream is plaintext and the pod token travels in clear', { operator: opts.targets.join(',') });
  }

  /** Whether the channel to the operator is TLS. */
  get tls(): boolean {
    return this.opts.tls !== undefined;
  }

  start(): void {
    this.closed = false;
    this.connect();
    const every = this.opts.reportIntervalMs ?? 30_000;
    this.reportTimer = setInterval(() => this.report({ health: this.opts.health?.() ?? { version: this.opts.store.current.version } }), every);
    this.reportTimer.unref();
  }

  /** Sends a free-form report (leadership, health) if connected; dropped otherwise (reports are state, not events). */
  report(data: unknown): void {
    if (this.connected) this.stream?.write({ report: { json: JSON.stringify(data) } });
  }

  /**
   * Sends a circuit transition (the operator records it as an Event on the policy); false when
   * not connected — transitions are a narrative, not state, so they are not queued for later.
   */
  sendCircuitTransition(t: CircuitTransition): boolean {
    if (!this.connected || !this.stream) return false;
    this.stream.write({ circuitTransition: t });
    return true;
  }

  readiness(): ReadinessCheck {
    // Readiness is about having a config (the admin server checks store.loaded); losing the
    // operator later does not make the pod unready — it keeps enforcing its last snapshot.
    return {
      name: 'operator',
      check: () => ({ ok: true, details: { connected: this.connected, tls: this.tls, operator: this.currentTarget(), lastError: this.lastError ?? null } }),
    };
  }

  status(): unknown {
    return { operator: this.currentTarget(), tls: this.tls, connected: this.connected, snapshots: this.snapshots, endpointUpdates: this.endpointUpdates, reconnects: this.reconnects, lastError: this.lastError ?? null };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.reportTimer);
    this.stream?.cancel();
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  private currentTarget(): string {
    return this.opts.targets[this.target % this.opts.targets.length] as string;
  }

  private client(target: string): PolicyDiscoveryClient {
    let c = this.clients.get(target);
    if (!c) {
      const { Client } = policyDiscovery();
      const tls = this.opts.tls;
      const creds = tls ? grpc.credentials.createSsl(Buffer.from(tls.caPem)) : grpc.credentials.createInsecure();
      c = new Client(target, creds, {
        ...(tls?.serverName ? { 'grpc.ssl_target_name_override': tls.serverName, 'grpc.default_authority': tls.serverName } : {}),
        // Notice a vanished operator within ~30s even when no snapshot is due.
        'grpc.keepalive_time_ms': 20_000,
        'grpc.keepalive_timeout_ms': 10_000,
        'grpc.keepalive_permit_without_calls': 1,
        // Our own backoff decides when to retry; don't let the channel sit in its own.
        'grpc.initial_reconnect_backoff_ms': 200,
        'grpc.max_reconnect_backoff_ms': 2_000,
      });
      this.clients.set(target, c);
    }
    return c;
  }

  private connect(): void {
    if (this.closed) return;
    const target = this.currentTarget();
    const { logger, identity, store } = this.opts;
    let token: string;
    try {
      token = readToken(identity);
    } catch (err) {
      return this.retry((err as Error).message);
    }
    const stream = this.client(target).streamPolicies();
    this.stream = stream;
    let ended = false;
    const onEnd = (why: string) => {
      if (ended || this.stream !== stream) return;
      ended = true;
      this.connected = false;
      this.stream = undefined;
      if (!this.closed) logger.warn('operator stream ended; keeping the last snapshot', { operator: target, reason: why, version: store.current.version });
      this.retry(why);
    };
    stream.on('data', (msg: DiscoveryResponse) => {
      if (!this.connected) {
        this.connected = true;
        this.lastError = undefined;
        this.backoff.reset();
        logger.info('connected to operator', { operator: target });
        // After the ack of this first snapshot (below), so the operator knows the pod.
        if (this.opts.onConnected) queueMicrotask(() => this.opts.onConnected?.());
      }
      if (msg.snapshot) this.onSnapshot(stream, target, msg.snapshot);
      else if (msg.endpoints) this.onEndpoints(msg.endpoints);
      else if (msg.redrive) this.opts.onRedrive?.(msg.redrive);
    });
    stream.on('error', (err: grpc.ServiceError) => onEnd(`${grpc.status[err.code] ?? err.code}: ${err.details || err.message}`));
    stream.on('end', () => onEnd('stream closed by operator'));
    stream.write({
      hello: {
        podNamespace: identity.namespace, podName: identity.name, token,
        sidecarId: this.opts.sidecarId,
        // Only an operator-sourced plan may be claimed as current: a standalone plan with the
        // same hash would otherwise be mistaken for the operator's snapshot.
        currentVersion: store.source.startsWith('operator:') ? store.current.version : 'none',
        supportedKinds: [...(this.opts.supportedKinds ?? SUPPORTED_KINDS)],
      },
    });
  }

  /** Endpoint updates travel apart from snapshots: delivered as they are, never ACKed, never a new plan. */
  private onEndpoints(update: EndpointUpdate): void {
    this.endpointUpdates++;
    for (const u of update.upstreams ?? []) this.opts.onEndpoints?.(u.upstream, u.addresses ?? []);
  }

  private onSnapshot(stream: DiscoveryStream, target: string, snapshot: Snapshot): void {
    this.snapshots++;
    const answer = this.opts.store.offer({
      source: 'operator', origin: target, version: snapshot.version,
      read: () => snapshot.resources.map((r) => JSON.parse(r.json) as unknown),
      producible: (snapshot.producibleTaskQueues ?? []).map((r) => ({ ref: `${r.namespace}/${r.name}`, read: () => JSON.parse(r.json) as unknown })),
    });
    if (answer.ack) this.answer(stream, { ack: { version: snapshot.version, ...(answer.warnings ? { warnings: [...answer.warnings] } : {}) } });
    else this.answer(stream, { nack: { version: snapshot.version, error: answer.reason } });
  }

  /**
   * Sends an ACK or NACK in snapshot order. An ACK waits for the plan's listeners and names the
   * resources that could not be put in place (the operator shows them on their status).
   */
  private answer(stream: DiscoveryStream, msg: DiscoveryRequest): void {
    const errorsOf = this.opts.resourceErrors;
    this.answering = this.answering.then(async () => {
      if ('ack' in msg && msg.ack && errorsOf) {
        let timer: NodeJS.Timeout | undefined;
        const errors = await Promise.race([
          errorsOf().catch(() => []),
          new Promise<ResourceError[]>((resolve) => (timer = setTimeout(() => resolve([]), ANSWER_WAIT_MS))),
        ]);
        clearTimeout(timer);
        if (errors.length > 0) {
          msg.ack.resourceErrors = errors;
          this.opts.logger.error('snapshot applied, but some of it is not in place', { version: msg.ack.version, errors: errors.map((e) => e.error) });
        }
      }
      if (this.stream === stream) stream.write(msg);
    });
  }

  private retry(why: string): void {
    if (this.closed) return;
    this.lastError = why;
    this.reconnects++;
    // Next address first: a follower (or a dead replica) should not be retried before the others.
    this.target = (this.target + 1) % this.opts.targets.length;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), this.backoff.next());
    this.timer.unref();
  }
}
