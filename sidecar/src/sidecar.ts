import type { Server } from 'node:http';
import { createServer } from './http/node-http.ts';
import type { AddressInfo } from 'node:net';
import { systemClock, type Clock } from '../../lib/clock.ts';
import type { Plan } from '../../lib/policy/plan.ts';
import { createAdminServer } from './admin/admin-server.ts';
import type { ConfigFile } from './config/config-file.ts';
import { PolicyStore } from './config/policy-store.ts';
import { TrustedProxies } from './http/client-address.ts';
import { HttpListener } from './http/http-listener.ts';
import { replyError } from './http/http-errors.ts';
import type { EscapedSlashAction } from './http/path-normalisation.ts';
import { Router, sendJson } from './local-api/router.ts';
import { createLogger, type Level, type Logger } from '../../lib/log.ts';
import { SidecarMetrics } from './metrics.ts';
import { PolicyEngine } from './policy-engine/engine.ts';
import type { GlobalConnectionQuotaFactory, GlobalLimiterFactory } from './policy-engine/chain.ts';
import { splitHostPort } from './websocket/websocket-proxy.ts';
import { websocketDrainRoute } from './websocket/drain-route.ts';
import { registerRedisHealthMetrics } from './redis/health-metrics.ts';
import { LeadershipFeature } from './leader/leadership-feature.ts';
import type { QueueFeature } from './queue/queue-feature.ts';
import type { GrpcProxy } from './grpc/grpc-proxy.ts';
import type { DiscoveryClient } from './discovery/discovery-client.ts';
import { resolvePodIdentity } from './discovery/pod-identity.ts';
import { livePageRoutes, startLiveSampling } from './admin/live-page.ts';
import { LiveHistory } from './admin/live-history.ts';
import { CircuitTransitionReporter } from './breaker/circuit-transition-reporter.ts';
import { OutboundFeature } from './outbound/outbound-feature.ts';
import type { GlobalLimitFeature } from './limit/global/global-limit-feature.ts';
import type { Feature } from './feature.ts';

export interface SidecarOptions {
  /** Standalone mode: policies from this YAML file, reloaded on change. */
  config?: string;
  /** Operator mode: host:port of the operator's PolicyDiscovery server (comma-separated: several replicas). */
  operator?: string;
  /** Operator mode: the pod this sidecar serves and its projected token (see discovery/pod-identity.ts). */
  podName?: string;
  podNamespace?: string;
  tokenFile?: string;
  /** Operator mode: CA bundle (PEM) the operator's certificate must chain to; none = plaintext. */
  operatorCa?: string;
  /** Name checked in the operator's certificate (default: the --operator host), for operators addressed by IP. */
  operatorServerName?: string;
  appHttp?: string;
  appGrpc?: string;
  listenHttp: string;
  listenGrpc: string;
  admin: string;
  localApi: string;
  /** The pod's labels, matched against each policy's spec.selector (none: every policy applies). */
  labels?: Record<string, string>;
  redis?: string;
  /** How long a global-limit decision waits for Redis before its failureMode answers (default 100 ms). */
  redisTimeoutMs?: number;
  lockNodes?: string[];
  /** Identity in Redis (consumer name, lock holder) and towards the operator; defaults to hostname-pid. */
  id: string;
  maxBodyBytes?: number;
  headersTimeoutMs?: number;
  upstreamTimeoutMs?: number;
  shutdownGraceMs: number;
  logLevel: Level | 'silent';
  grpcMaxConcurrentStreams?: number;
  grpcInitialWindowSize?: number;
  grpcMaxMessageBytes?: number;
  grpcKeepaliveMs?: number;
  /** WebSocket: ping a client silent for this long (0: never; default 30 s). */
  websocketPingIntervalMs?: number;
  /** WebSocket: close a pinged client that sends nothing within this (default 10 s). */
  websocketPingTimeoutMs?: number;
  /** WebSocket: on shutdown, closes (1012) are spread over this much of the grace period (default 10 s). */
  websocketDrainWindowMs?: number;
  /** WebSocket: a Global maxConnectionsPerKey slot outlives a sidecar that stopped renewing it by this (default 30 s). */
  websocketQuotaLeaseMs?: number;
  /** `%2F`, `%5C` and `\\` in HTTP/WebSocket paths: reject (default), unescape or keep. */
  pathEscapedSlashes?: EscapedSlashAction;
  /** CIDRs of the proxies whose X-Forwarded-For is believed (default: none). */
  trustedProxies?: string[];
  /** GOAWAY inbound gRPC connections after about this long (off when unset). */
  grpcMaxConnectionAgeMs?: number;
  grpcMaxConnectionAgeGraceMs?: number;
}

export interface Addresses {
  http?: AddressInfo;
  grpc?: AddressInfo;
  admin?: AddressInfo;
  localApi?: AddressInfo;
}

/** Wires the sidecar together: config source → policy store → engine and features → listeners. */
export class Sidecar {
  readonly opts: SidecarOptions;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics = new SidecarMetrics({ defaultMetrics: true });
  readonly store: PolicyStore;
  readonly features: Feature[] = [];
  readonly addresses: Addresses = {};
  engine!: PolicyEngine;
  http: HttpListener | undefined;
  grpc: GrpcProxy | undefined;
  private configFile: ConfigFile | undefined;
  /** Operator mode: the PolicyDiscovery client; features may send it reports. */
  discovery: DiscoveryClient | undefined;
  /** Leader elections and app locks (always there; without --lock-nodes it refuses them). */
  leadership!: LeadershipFeature;
  /** Task queues, with --redis. */
  queue: QueueFeature | undefined;
  private admin: Server | undefined;
  private localApi: Server | undefined;
  private stopping: Promise<void> | undefined;
  /** The last minutes for the live page's plots (bounded: five minutes of one-second samples). */
  private readonly liveHistory = new LiveHistory();
  private stopLiveSampling: (() => void) | undefined;
  /** The outbound listeners (Upstreams); operator endpoint updates are delivered to it. */
  outbound: OutboundFeature | undefined;
  /** Set by the global-limit feature when --redis is given; Global rules use it. */
  globalLimiter: GlobalLimiterFactory | undefined;
  globalConnections: GlobalConnectionQuotaFactory | undefined;
  /** Global rate limits, with --redis (tests wait for its connection). */
  globalLimits: GlobalLimitFeature | undefined;
  /** Circuit state changes: a log line each, and (operator mode) a report the operator turns into an Event. */
  readonly circuitTransitions: CircuitTransitionReporter;

  /** Whose X-Forwarded-For is believed: every listener's client address comes from this one list. */
  readonly trustedProxies: TrustedProxies;

  constructor(opts: SidecarOptions, deps: { clock?: Clock; logger?: Logger } = {}) {
    this.opts = opts;
    this.trustedProxies = new TrustedProxies(opts.trustedProxies ?? []);
    this.clock = deps.clock ?? systemClock;
    this.logger = deps.logger ?? createLogger(opts.logLevel, { component: 'sluice-proxy', id: opts.id });
    this.store = new PolicyStore({ labels: opts.labels, metrics: this.metrics, logger: this.logger });
    this.circuitTransitions = new CircuitTransitionReporter({ logger: this.logger.child({ feature: 'breaker' }), clock: this.clock });
  }

  async start(): Promise<Addresses> {
    const { opts, logger } = this;
    if (!opts.config && !opts.operator) throw new Error('either --config (standalone) or --operator is required');

    await this.createFeatures();
    registerRedisHealthMetrics(this.metrics.registry, () => this.features.flatMap((f) => f.redisHealths?.() ?? []));
    this.store.subscribe((plan) => this.onPlan(plan));

    if (opts.config) {
      // The YAML parser only standalone: in operator mode policies arrive as protobuf.
      const { ConfigFile } = await import('./config/config-file.ts');
      this.configFile = new ConfigFile({ path: opts.config, store: this.store });
      await this.configFile.start();
      // A listen port taken is a config error like any other: the sidecar does not start half-served.
      await this.outbound?.settled();
      const unbound = this.outbound?.bindErrors() ?? [];
      if (unbound.length > 0) throw new Error(`config ${opts.config} cannot be put in place: ${unbound.map((e) => e.error).join('; ')}`);
    }

    // Operator mode: until the first snapshot arrives the store holds the empty plan and /readyz
    // says config waiting.
    if (opts.operator) {
      // Loaded only here: the gRPC client and proto loader cost a standalone sidecar memory for nothing.
      const { DiscoveryClient } = await import('./discovery/discovery-client.ts');
      this.discovery = new DiscoveryClient({
        targets: opts.operator.split(',').map((t) => t.trim()).filter(Boolean),
        identity: resolvePodIdentity(opts),
        sidecarId: opts.id,
        store: this.store,
        logger: logger.child({ feature: 'discovery' }),
        // A new operator replica knows nothing of this pod's leadership until told.
        onConnected: () => this.reportLeadership(),
        onEndpoints: (upstream, addresses) => this.outbound?.setEndpoints(upstream, addresses),
        // An Upstream whose listen port is taken is named in the ACK, so its status says why.
        resourceErrors: async () => {
          await this.outbound?.settled();
          return this.outbound?.bindErrors() ?? [];
        },
        onRedrive: (r) => void this.queue?.redriveFromOperator(r),
        ...(opts.operatorCa ? { tls: { caPem: opts.operatorCa, ...(opts.operatorServerName ? { serverName: opts.operatorServerName } : {}) } } : {}),
      });
      this.features.push(this.discovery);
      const discovery = this.discovery;
      this.circuitTransitions.send = (t) => discovery.sendCircuitTransition(t);
      // The operator labels the leader pod from these reports: on every change (and renewal) of any election.
      this.leadership.onChange(() => this.reportLeadership());
      this.discovery.start();
    }

    if (opts.appHttp) {
      this.http = new HttpListener({
        engine: this.engine, appHttp: opts.appHttp, metrics: this.metrics, logger, clock: this.clock,
        maxBodyBytes: opts.maxBodyBytes, headersTimeoutMs: opts.headersTimeoutMs, upstreamTimeoutMs: opts.upstreamTimeoutMs,
        websocket: {
          heartbeat: { intervalMs: opts.websocketPingIntervalMs ?? 30_000, timeoutMs: opts.websocketPingTimeoutMs ?? 10_000 },
          drainWindowMs: opts.websocketDrainWindowMs,
        },
        pathEscapedSlashes: opts.pathEscapedSlashes, trustedProxies: this.trustedProxies,
      });
      const [host, port] = splitHostPort(opts.listenHttp);
      const a = await this.http.listen(host, port);
      this.addresses.http = { address: a.host, port: a.port, family: '' };
    }

    if (opts.appGrpc) {
      const { GrpcProxy } = await import('./grpc/grpc-proxy.ts');
      this.grpc = new GrpcProxy({
        engine: this.engine, appGrpc: opts.appGrpc, metrics: this.metrics, logger: logger.child({ listener: 'grpc' }), clock: this.clock,
        maxConcurrentStreams: opts.grpcMaxConcurrentStreams, initialWindowSize: opts.grpcInitialWindowSize, maxMessageBytes: opts.grpcMaxMessageBytes,
        keepaliveIntervalMs: opts.grpcKeepaliveMs, trustedProxies: this.trustedProxies,
        maxConnectionAgeMs: opts.grpcMaxConnectionAgeMs, maxConnectionAgeGraceMs: opts.grpcMaxConnectionAgeGraceMs,
      });
      const [host, port] = splitHostPort(opts.listenGrpc);
      this.addresses.grpc = await this.grpc.listen(host, port);
    }

    this.admin = createAdminServer({
      store: this.store,
      metrics: this.metrics,
      readiness: () => this.features.flatMap((f) => (f.readiness ? [f.readiness()] : [])),
      configView: () => this.configView(),
      extraRoutes: new Map([
        ['/v1/leadership', (res) => sendJson(res, 200, this.leadership.status())],
        ['/v1/status', (res) => sendJson(res, 200, this.status())],
        ...livePageRoutes(this, this.liveHistory),
      ]),
    });
    this.stopLiveSampling = startLiveSampling(this, this.liveHistory, this.clock);
    this.addresses.admin = await listen(this.admin, opts.admin);

    const routes = this.features.flatMap((f) => f.routes?.() ?? []);
    const router = new Router();
    for (const r of routes) router.add(r);
    router.add({ method: 'GET', pattern: '/v1/status', handler: (_req, res) => sendJson(res, 200, this.status()) });
    router.add(websocketDrainRoute(() => this.http?.websockets, this.opts.shutdownGraceMs));
    this.localApi = createServer((req, res) => {
      router.handle(req, res).catch((err: Error) => {
        logger.error('local api handler failed', { err, path: req.url });
        replyError(res, 'SLUICE_ERR_INTERNAL');
      });
    });
    // Whole-request deadlines are the router's (60 s), per route: a lock held by a stream keeps its
    // request open for as long as the app heartbeats on it.
    this.localApi.requestTimeout = 0;
    this.addresses.localApi = await listen(this.localApi, opts.localApi);

    logger.info('sidecar started', {
      mode: opts.config ? 'standalone' : 'operator',
      http: fmt(this.addresses.http), grpc: fmt(this.addresses.grpc), admin: fmt(this.addresses.admin), localApi: fmt(this.addresses.localApi),
      version: this.store.current.version,
    });
    return this.addresses;
  }

  /**
   * Builds the features in the order they need each other: global limits and leadership give the
   * engine its Redis limiters and fencing; the queue and outbound features then get the engine
   * (their deliveries and calls go through its breakers and limits). Each Redis-backed feature is
   * imported only when configured: a sidecar without Redis never loads the Redis client.
   */
  private async createFeatures(): Promise<void> {
    if (this.opts.redis) {
      const { GlobalLimitFeature } = await import('./limit/global/global-limit-feature.ts');
      this.globalLimits = new GlobalLimitFeature({
        url: this.opts.redis, clock: this.clock, logger: this.logger, registry: this.metrics.registry, sidecarId: this.opts.id, commandTimeoutMs: this.opts.redisTimeoutMs,
        connectionLeaseMs: this.opts.websocketQuotaLeaseMs,
      });
      this.globalLimiter = this.globalLimits.factory;
      this.globalConnections = this.globalLimits.connectionQuotaFactory;
      this.features.push(this.globalLimits);
    }
    const lockNodes = this.opts.lockNodes ?? [];
    this.leadership = new LeadershipFeature({
      lockNodes, connect: lockNodes.length > 0 ? (await import('../../lib/redis/connection.ts')).connectRedis : undefined, clock: this.clock, logger: this.logger, registry: this.metrics.registry, holderId: this.opts.id,
      namespace: this.appNamespace(),
    });
    this.features.push(this.leadership);

    this.engine = new PolicyEngine(this.store.current, {
      clock: this.clock, metrics: this.metrics, globalLimiter: this.globalLimiter, globalConnections: this.globalConnections,
      onCircuitChange: (rule, change) => this.circuitTransitions.record(rule, change), fence: this.leadership.tokenFence,
    });

    if (this.opts.redis) {
      const { createSidecarQueueFeature } = await import('./queue/sidecar-queue-feature.ts');
      const queue = createSidecarQueueFeature({
        redisUrl: this.opts.redis, consumerName: this.opts.id, registry: this.metrics.registry, clock: this.clock, logger: this.logger,
        appHttp: this.opts.appHttp, appGrpc: this.opts.appGrpc, breakers: this.engine,
      });
      this.queue = queue.queue;
      this.features.push(queue);
    }
    // One loopback listener per Upstream selecting this pod (no flags: the plan decides).
    this.outbound = new OutboundFeature({ registry: this.metrics.registry, clock: this.clock, logger: this.logger, engine: this.engine });
    this.features.push(this.outbound);
  }

  /**
   * The namespace the app's own Redis state (app locks) lives in: the pod's namespace in operator
   * mode, `--pod-namespace` or `default` standalone — the same default a policy without one gets.
   */
  private appNamespace(): string {
    if (this.opts.podNamespace) return this.opts.podNamespace;
    return this.opts.operator ? resolvePodIdentity(this.opts).namespace : 'default';
  }

  private onPlan(plan: Plan): void {
    this.engine.apply(plan);
    for (const w of this.engine.warnings) this.logger.warn('rule not enforced as written', { warning: w });
    for (const f of this.features) {
      try {
        const r = f.applyPlan?.(plan);
        if (r instanceof Promise) r.catch((err: Error) => this.logger.error('feature failed to apply plan', { feature: f.name, err }));
      } catch (err) {
        this.logger.error('feature failed to apply plan', { feature: f.name, err });
      }
    }
  }

  /** Operator mode: the leadership of every election, on the discovery stream (dropped while disconnected). */
  private reportLeadership(): void {
    this.discovery?.report({ leadership: this.leadership.status() });
  }

  configView(): unknown {
    const plan = this.store.current;
    return {
      version: plan.version,
      source: this.store.source,
      appliedAt: this.store.appliedAt,
      labels: this.opts.labels ?? null,
      lastRejected: this.store.lastRejected ?? null,
      // Resources of the plan in force that could not be put in place (an Upstream's port taken).
      notInPlace: this.outbound?.bindErrors().map((e) => e.error) ?? [],
      warnings: this.engine?.warnings ?? [],
      rules: {
        rateLimits: plan.rateLimits.map((r) => r.id),
        circuitBreakers: plan.breakers.map((r) => r.id),
        taskQueues: plan.taskQueues.map((q) => q.id),
        leaderElections: plan.leaderElections.map((l) => l.id),
        fencing: plan.fencing.map((r) => r.id),
        upstreams: plan.upstreams.map((u) => u.id),
      },
      resources: plan.resources,
    };
  }

  status(): unknown {
    return {
      id: this.opts.id,
      config: { version: this.store.current.version, source: this.store.source },
      features: Object.fromEntries(this.features.map((f) => [f.name, f.status?.() ?? null])),
    };
  }

  reloadConfig(): Promise<void> {
    return this.configFile?.reload() ?? Promise.resolve();
  }

  /** Graceful shutdown: stop taking new work, finish in-flight work within the grace period, release. */
  stop(graceMs = this.opts.shutdownGraceMs): Promise<void> {
    this.stopping ??= (async () => {
      this.logger.info('shutting down', { graceMs });
      this.configFile?.stop();
      this.stopLiveSampling?.();
      const closing: Promise<unknown>[] = [];
      if (this.http) closing.push(this.http.close(graceMs));
      if (this.grpc) closing.push(this.grpc.close(graceMs));
      for (const f of this.features) if (f.close) closing.push(f.close(graceMs).catch((err: Error) => this.logger.error('feature close failed', { feature: f.name, err })));
      await Promise.all(closing);
      this.engine?.close();
      await Promise.all([closeServer(this.localApi), closeServer(this.admin)]);
      this.logger.info('stopped');
    })();
    return this.stopping;
  }
}

function listen(server: Server, hostPort: string): Promise<AddressInfo> {
  const [host, port] = splitHostPort(hostPort);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server.address() as AddressInfo));
  });
}

function closeServer(server: Server | undefined): Promise<void> {
  if (!server) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function fmt(a: AddressInfo | undefined): string | undefined {
  return a && `${a.address}:${a.port}`;
}
