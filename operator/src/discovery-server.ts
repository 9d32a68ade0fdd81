/**
 * The PolicyDiscovery gRPC server: one bidirectional stream per sidecar (lib/proto). After the
 * Hello is authenticated (sidecar-auth.ts), the server pushes the pod's snapshot whenever its
 * content changes — a policy edit, a pod relabel — and records each ACK/NACK in the
 * ProgrammingTracker, which the reconcilers turn into status.
 *
 * Only the leader serves (isServing): ACKs must reach the replica that writes status, and a
 * follower's refusal (UNAVAILABLE) sends the sidecar on to the next operator address. Pushes are
 * coalesced per pod on the next tick, so a burst of watch events becomes one snapshot.
 *
 * Transport security: with a certificate (`setCertificate`, fed by the operator's CertManager —
 * the same CA and serving certificate as the webhook, whose SANs include the discovery Service)
 * the server listens with TLS only; without one it listens in plaintext (local runs, tests,
 * `--discovery-insecure`). grpc-js cannot swap a bound port's credentials, so a rotated
 * certificate is applied by rebinding: unbind the listener, end the open streams (UNAVAILABLE),
 * bind the same host:port with the new credentials. Sidecars reconnect with their usual jittered
 * backoff (≤ 5s), keep enforcing their snapshot meanwhile, and ACK the re-sent (identical)
 * snapshot without re-applying it. The serving certificate rotates every ~60 days.
 */
import * as grpc from '@grpc/grpc-js';
import { policyDiscovery, type CircuitTransition, type DiscoveryRequest, type Hello, type RedriveRequestMessage, type ServerDiscoveryStream, type UpstreamEndpoints } from '../../lib/proto/discovery.ts';
import type { Logger } from '../../lib/log.ts';
import { systemClock } from '../../lib/clock.ts';
import { AuthThrottle, sourceOf } from './auth-throttle.ts';
import { SidecarAuthError } from './errors.ts';
import { objectKey, type KubeObject } from './kube-client.ts';
import type { OperatorMetrics } from './metrics.ts';
import type { PolicyIndex } from './policy-index.ts';
import type { ProgrammingTracker } from './programming-tracker.ts';
import type { SidecarAuthenticator } from './sidecar-auth.ts';
import { buildSnapshot, type SnapshotContents } from './snapshot.ts';
import { negotiateKinds } from '../../lib/policy/skew.ts';
import { policyRef } from './policy-document.ts';

const HELLO_TIMEOUT_MS = 10_000;

export interface DiscoveryServerOptions {
  /** host:port to listen on (port 0: any free port). */
  listen: string;
  index: PolicyIndex;
  tracker: ProgrammingTracker;
  authenticator: SidecarAuthenticator;
  /** The pod as the informer sees it now (labels decide the snapshot). */
  pod: (key: string) => KubeObject | undefined;
  /** True while this replica leads and its caches are synced. */
  isServing: () => boolean;
  /** A pod's programming state changed (ACK, NACK, connect, disconnect): these policies need status. */
  onProgress: (podKey: string, refs: Iterable<string>) => void;
  /** The ready endpoints of each Upstream among the pod's resources (sent apart from snapshots). */
  endpointsFor?: (upstreams: readonly KubeObject[]) => UpstreamEndpoints[] | undefined;
  /** A sidecar sent a report (leadership, health): the authenticated pod and its JSON. */
  onReport?: (podKey: string, podUid: string, report: unknown) => void;
  /** A sidecar reported a circuit transition: the authenticated pod (as the informer or its Hello knows it). */
  onCircuitTransition?: (pod: KubeObject, transition: CircuitTransition) => void;
  logger: Logger;
  metrics: OperatorMetrics;
  /** Bounds the TokenReviews sources that do not authenticate can cause (default: 20, then 2/s per address). */
  authThrottle?: AuthThrottle;
}

/** PEM key and certificate chain the discovery port presents. */
export interface DiscoveryCertificate {
  certPem: string;
  keyPem: string;
}

interface Connection {
  podKey: string;
  podUid: string;
  sidecarId: string;
  call: ServerDiscoveryStream;
  lastSent: string | undefined;
  /** The endpoint update last sent, JSON: an unchanged list is not sent again. */
  lastEndpoints: string | undefined;
  /** The pod as authenticated, used until the pod informer has caught up with a brand-new pod. */
  seenPod: KubeObject | undefined;
  /** The sidecar's latest free-form report (leadership, health). */
  report: unknown;
  /** The kinds this sidecar compiles (negotiated from its Hello; lib/policy/skew.ts). */
  kinds: ReadonlySet<string>;
  /** The policies left out of the last snapshot because the sidecar does not know their kind. */
  skipped: string[];
}

export class DiscoveryServer {
  private readonly opts: DiscoveryServerOptions;
  private readonly server = new grpc.Server({ 'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_timeout_ms': 10_000 });
  private readonly connections = new Map<string, Connection>();
  private readonly pending = new Set<string>();
  private flushScheduled = false;
  private cert: DiscoveryCertificate | undefined;
  /** host:port actually bound (the port resolved when `listen` asked for port 0). */
  private bound: string | undefined;
  /** Serializes rebinds: rotations arrive from a timer and may overlap a start or stop. */
  private binding: Promise<unknown> = Promise.resolve();
  private stopped = false;
  port = 0;
  /** How many times the listener was rebound with a new certificate. */
  rebinds = 0;

  private readonly throttle: AuthThrottle;

  constructor(opts: DiscoveryServerOptions) {
    this.opts = opts;
    this.throttle = opts.authThrottle ?? new AuthThrottle({ clock: systemClock });
    this.server.addService(policyDiscovery().service, {
      streamPolicies: (call: ServerDiscoveryStream) => this.onStream(call),
    });
  }

  async start(): Promise<number> {
    const listen = this.opts.listen;
    this.port = await this.bind(listen);
    this.bound = withPort(listen, this.port);
    return this.port;
  }

  /** Whether the listener requires TLS (a certificate was set before or after start). */
  get tls(): boolean {
    return this.cert !== undefined;
  }

  /**
   * Serve with this certificate. Before start: start() binds with it. After: rebinds the same
   * host:port with TLS (see the header) unless the certificate did not change. Resolves once the
   * new listener is bound.
   */
  setCertificate(cert: DiscoveryCertificate): Promise<void> {
    if (this.cert && this.cert.certPem === cert.certPem && this.cert.keyPem === cert.keyPem) return this.binding.then(() => undefined);
    this.cert = { certPem: cert.certPem, keyPem: cert.keyPem };
    if (!this.bound) return Promise.resolve();
    const next = this.binding.then(() => this.rebind(), () => this.rebind());
    this.binding = next.catch(() => undefined);
    return next;
  }

  private async rebind(): Promise<void> {
    const address = this.bound;
    if (!address || this.stopped) return;
    this.server.unbind(address);
    this.closeAll('the operator\'s serving certificate was rotated; reconnect');
    // The old listener's socket closes asynchronously; a rebind racing it gets EADDRINUSE.
    for (let attempt = 0; ; attempt++) {
      try {
        await this.bind(address);
        break;
      } catch (err) {
        // ~10s: only another process taking the port could hold it that long. Then the error is
        // logged by the caller and the replica serves no discovery until the next certificate.
        if (attempt >= 100 || this.stopped) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    this.rebinds++;
    this.opts.logger.info('discovery serving certificate reloaded (listener rebound; sidecars reconnect)', { address });
  }

  private bind(address: string): Promise<number> {
    const creds = this.cert
      ? grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(this.cert.keyPem), cert_chain: Buffer.from(this.cert.certPem) }], false)
      : grpc.ServerCredentials.createInsecure();
    return new Promise<number>((resolve, reject) =>
      this.server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port))));
  }

  get connected(): number {
    return this.connections.size;
  }

  /** The latest report of each connected sidecar, by pod (for /debug and tests). */
  reports(): Record<string, unknown> {
    return Object.fromEntries([...this.connections.values()].map((c) => [c.podKey, c.report]));
  }

  /**
   * Hands a dead-letter redrive to one connected sidecar among `podKeys` (a TaskQueue's worker
   * pods), preferring one not in `avoid` (tried before). Returns the pod it went to, or undefined
   * when none of them is connected.
   */
  handRedrive(podKeys: readonly string[], request: RedriveRequestMessage, avoid: ReadonlySet<string> = new Set()): string | undefined {
    const connected = podKeys.filter((k) => this.connections.has(k));
    const pick = connected.find((k) => !avoid.has(k)) ?? connected[0];
    if (pick === undefined) return undefined;
    (this.connections.get(pick) as Connection).call.write({ redrive: request });
    this.opts.logger.info('redrive handed to a worker sidecar', { pod: pick, queue: `${request.queueNamespace}/${request.queueName}`, id: request.id });
    return pick;
  }

  /** Recompute and push (if changed) the snapshot of one pod, or of every connected pod in a namespace. */
  resyncPod(podKey: string): void {
    if (!this.connections.has(podKey)) return;
    this.pending.add(podKey);
    this.scheduleFlush();
  }

  /** Recompute and push what changed for every connected pod (endpoints became known). */
  resyncAll(): void {
    for (const key of this.connections.keys()) this.pending.add(key);
    this.scheduleFlush();
  }

  resyncNamespace(namespace: string): void {
    for (const key of this.connections.keys()) if (key.startsWith(`${namespace}/`)) this.pending.add(key);
    this.scheduleFlush();
  }

  /** Ends every stream (leadership lost, shutdown): sidecars keep their snapshot and reconnect. */
  closeAll(details: string): void {
    for (const c of [...this.connections.values()]) this.end(c, grpc.status.UNAVAILABLE, details);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.binding;
    this.closeAll('operator shutting down');
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    this.server.forceShutdown();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      const keys = [...this.pending];
      this.pending.clear();
      for (const k of keys) {
        const c = this.connections.get(k);
        if (c) this.push(c);
      }
    });
  }

  private push(c: Connection): void {
    const cached = this.opts.pod(c.podKey);
    // Once the informer has the pod, its copy is the truth (labels change); a pod that then
    // leaves the cache was deleted and must not get snapshots from the stale authenticated copy.
    if (cached) c.seenPod = undefined;
    const pod = cached ?? c.seenPod;
    // The pod is gone (or replaced): its sidecar is shutting down; nothing to enforce anew.
    if (!pod || pod.metadata.uid !== c.podUid) return;
    const fits = (r: KubeObject) => c.kinds.has(r.kind as string);
    const all = this.opts.index.resourcesFor(pod);
    const left = all.filter((r) => !fits(r));
    const skipped = left.map((r) => `${r.kind} ${r.metadata.namespace}/${r.metadata.name}`);
    const { snapshot, contents } = buildSnapshot(all.filter(fits), this.opts.index.producibleFor(pod).filter(fits));
    if (skipped.join() !== c.skipped.join()) {
      c.skipped = skipped;
      // On the policy's status too (Programmed=False, Rejected, for this pod): the sidecar did not refuse it, it never got it.
      const why = new Map(left.map((r) => [policyRef(r), `sidecar of pod ${c.podKey} does not know kind ${String(r.kind)} (it is older than this operator); recreate the pod to get the current sidecar`]));
      this.opts.tracker.unsupported(c.podKey, c.podUid, why);
      if (skipped.length > 0) {
        this.opts.metrics.skewSkipped.inc(skipped.length);
        this.opts.logger.warn('sidecar too old for some policies; left out of its snapshot', { pod: c.podKey, kinds: [...c.kinds], skipped });
        queueMicrotask(() => this.opts.onProgress(c.podKey, why.keys()));
      }
    }
    if (snapshot.version !== c.lastSent) {
      c.lastSent = snapshot.version;
      this.opts.tracker.sent(c.podKey, c.podUid, snapshot.version, contents);
      this.opts.metrics.snapshotsSent.inc();
      this.opts.logger.debug('snapshot sent', { pod: c.podKey, version: snapshot.version, resources: snapshot.resources.length, producible: snapshot.producibleTaskQueues?.length ?? 0 });
      c.call.write({ snapshot });
    }
    this.pushEndpoints(c, all.filter(fits));
  }

  /** After the snapshot, so a sidecar usually knows an Upstream before its endpoints (either order works). */
  private pushEndpoints(c: Connection, resources: readonly KubeObject[]): void {
    const upstreams = resources.filter((r) => r.kind === 'Upstream');
    if (!this.opts.endpointsFor || (upstreams.length === 0 && c.lastEndpoints === undefined)) return;
    const list = this.opts.endpointsFor(upstreams);
    if (!list) return; // endpoints not known yet (cache still listing): send nothing rather than "none"
    const update = { upstreams: list };
    const json = JSON.stringify(update);
    if (json === c.lastEndpoints) return;
    c.lastEndpoints = json;
    this.opts.logger.debug('endpoints sent', { pod: c.podKey, upstreams: update.upstreams.length });
    c.call.write({ endpoints: update });
  }

  private onStream(call: ServerDiscoveryStream): void {
    const { logger, metrics, tracker } = this.opts;
    let conn: Connection | undefined;
    let authenticating = false;
    let hungUp = false;
    const helloTimer = setTimeout(() => fail(grpc.status.DEADLINE_EXCEEDED, `no hello within ${HELLO_TIMEOUT_MS}ms`), HELLO_TIMEOUT_MS);
    helloTimer.unref();
    const fail = (code: grpc.status, details: string) => {
      clearTimeout(helloTimer);
      call.emit('error', { code, details });
      call.end();
    };
    if (!this.opts.isServing()) {
      fail(grpc.status.UNAVAILABLE, 'this operator replica is not the leader; try another');
      return;
    }

    call.on('data', (msg: DiscoveryRequest) => {
      if ('hello' in msg && msg.hello) {
        if (conn || authenticating) return fail(grpc.status.INVALID_ARGUMENT, 'hello sent twice');
        const source = sourceOf(call.getPeer());
        if (!this.throttle.take(source)) {
          metrics.authFailures.inc();
          return fail(grpc.status.RESOURCE_EXHAUSTED, `too many unauthenticated hellos from ${source}; retry in ${this.throttle.retryAfterSeconds(source)}s`);
        }
        authenticating = true;
        void this.accept(call, msg.hello).then(
          (c) => {
            this.throttle.refund(source);
            clearTimeout(helloTimer);
            conn = c;
            // The sidecar hung up while we were checking its token: drop what accept() registered.
            if (hungUp) closed();
          },
          (err: unknown) => {
            // Only a refused token is the caller's doing; an API server or leadership hiccup is ours.
            if (err instanceof SidecarAuthError) metrics.authFailures.inc();
            else this.throttle.refund(source);
            const code = err instanceof SidecarAuthError
              ? (err.code === 'SLUICE_ERR_UNAUTHENTICATED' ? grpc.status.UNAUTHENTICATED : grpc.status.PERMISSION_DENIED)
              : grpc.status.UNAVAILABLE;
            logger.warn('sidecar refused', { pod: `${msg.hello.podNamespace}/${msg.hello.podName}`, err });
            fail(code, (err as Error).message);
          },
        );
        return;
      }
      if (!conn) return fail(grpc.status.FAILED_PRECONDITION, 'the first message must be a hello');
      if ('ack' in msg && msg.ack) {
        metrics.acks.inc({ result: 'ack' });
        if (msg.ack.warnings && msg.ack.warnings.length > 0) {
          metrics.acks.inc({ result: 'ack-with-warnings' });
          logger.warn('sidecar accepted snapshot but ignored parts it does not know', { pod: conn.podKey, version: msg.ack.version, warnings: msg.ack.warnings.slice(0, 20) });
        }
        const errors = new Map((msg.ack.resourceErrors ?? []).map((e) => [`${e.kind}/${e.namespace}/${e.name}`, e.error]));
        if (errors.size > 0) logger.warn('sidecar could not program resources of its snapshot', { pod: conn.podKey, version: msg.ack.version, errors: [...errors].slice(0, 20) });
        this.progress(conn.podKey, tracker.ack(conn.podKey, msg.ack.version, errors));
      } else if ('nack' in msg && msg.nack) {
        metrics.acks.inc({ result: 'nack' });
        logger.warn('sidecar refused snapshot', { pod: conn.podKey, version: msg.nack.version, error: msg.nack.error });
        this.progress(conn.podKey, tracker.nack(conn.podKey, msg.nack.version, msg.nack.error));
      } else if ('report' in msg && msg.report) {
        try {
          conn.report = JSON.parse(msg.report.json);
        } catch {
          conn.report = { unparsable: msg.report.json.slice(0, 200) };
        }
        this.opts.onReport?.(conn.podKey, conn.podUid, conn.report); // leadership reports
      } else if ('circuitTransition' in msg && msg.circuitTransition) {
        const pod = this.opts.pod(conn.podKey) ?? conn.seenPod;
        if (pod && pod.metadata.uid === conn.podUid) this.opts.onCircuitTransition?.(pod, msg.circuitTransition);
      }
    });
    const closed = () => {
      hungUp = true;
      clearTimeout(helloTimer);
      if (!conn || this.connections.get(conn.podKey) !== conn) return;
      this.connections.delete(conn.podKey);
      metrics.sidecarsConnected.set(this.connections.size);
      tracker.disconnected(conn.podKey);
      this.progress(conn.podKey, undefined);
      logger.info('sidecar disconnected', { pod: conn.podKey });
    };
    call.on('end', () => {
      closed();
      call.end();
    });
    call.on('error', closed);
    call.on('cancelled', closed);
    call.on('close', closed);
  }

  private async accept(call: ServerDiscoveryStream, hello: Hello): Promise<Connection> {
    const pod = await this.opts.authenticator.authenticate(hello);
    if (!this.opts.isServing()) throw new Error('this operator replica stopped leading; try another');
    const podKey = objectKey(pod);
    const previous = this.connections.get(podKey);
    // One stream per pod: a sidecar that reconnects before its old stream timed out replaces it.
    if (previous) this.end(previous, grpc.status.ABORTED, 'replaced by a newer stream from the same pod');
    const conn: Connection = {
      podKey, podUid: pod.metadata.uid ?? '', sidecarId: hello.sidecarId, call, lastSent: undefined, lastEndpoints: undefined, seenPod: pod, report: undefined,
      kinds: negotiateKinds(hello.supportedKinds), skipped: [],
    };
    this.connections.set(podKey, conn);
    this.opts.metrics.sidecarsConnected.set(this.connections.size);
    this.opts.tracker.connected(podKey, conn.podUid);
    this.opts.logger.info('sidecar connected', { pod: podKey, sidecar: hello.sidecarId, version: hello.currentVersion });

    // Always send the snapshot, even when the Hello says the sidecar already enforces that
    // version (operator restart, failover): the sidecar ACKs an identical version without
    // re-applying it (its limiters keep their counters), and the ACK is what marks it programmed.
    this.push(conn);
    this.progress(podKey, undefined);
    return conn;
  }

  private progress(podKey: string, contents: SnapshotContents | undefined): void {
    this.opts.onProgress(podKey, contents?.keys() ?? []);
  }

  private end(c: Connection, code: grpc.status, details: string): void {
    if (this.connections.get(c.podKey) === c) {
      this.connections.delete(c.podKey);
      this.opts.tracker.disconnected(c.podKey);
      this.opts.metrics.sidecarsConnected.set(this.connections.size);
    }
    try {
      c.call.emit('error', { code, details });
      c.call.end();
    } catch {
      // already closed
    }
  }
}

/** `listen` with its port replaced by the bound one ("127.0.0.1:0" → "127.0.0.1:43123"). */
function withPort(listen: string, port: number): string {
  const i = listen.lastIndexOf(':');
  return `${i < 0 ? listen : listen.slice(0, i)}:${port}`;
}
