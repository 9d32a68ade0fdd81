import type { Registry } from 'prom-client';
import type { Clock } from '../../../lib/clock.ts';
import type { Logger } from '../../../lib/log.ts';
import type { Plan } from '../../../lib/policy/plan.ts';
import type { UpstreamPlan } from '../../../lib/policy/upstream.ts';
import type { ReadinessCheck } from '../admin/admin-server.ts';
import type { Feature } from '../feature.ts';
import type { PolicyEngine } from '../policy-engine/engine.ts';
import type { Random } from './load-balancer.ts';
import type { OutboundGrpcListener } from './outbound-grpc.ts';
import { OutboundHttpListener } from './outbound-http.ts';
import { OutboundMetrics } from './outbound-metrics.ts';
import { StandaloneEndpoints } from './standalone-endpoints.ts';
import { UpstreamRuntime } from './upstream-runtime.ts';

interface Served {
  runtime: UpstreamRuntime;
  listener: OutboundGrpcListener | OutboundHttpListener;
  bound: Promise<void>;
  state: 'binding' | 'bound' | 'failed';
  error?: string;
  standalone?: StandaloneEndpoints;
}

/**
 * The outbound listeners, following the plan: one per Upstream that selects this pod, bound when
 * it appears, re-bound when its listen address or protocol changes, closed when it goes. Endpoints
 * come from the Upstream's own `endpoints` (standalone) or from the operator's endpoint updates,
 * which may arrive before or after the Upstream itself.
 */
export class OutboundFeature implements Feature {
  readonly name = 'outbound';
  private readonly served = new Map<string, Served>();
  private readonly operatorEndpoints = new Map<string, readonly string[]>();
  private readonly metrics: OutboundMetrics;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly random: Random | undefined;
  /**
   * Loaded with the first gRPC Upstream: node:http2 and the gRPC framing cost every sidecar
   * about 10 MiB of memory, and most pods have no gRPC Upstream.
   */
  private grpcListener: typeof OutboundGrpcListener | undefined;

  private readonly engine: PolicyEngine | undefined;

  constructor(opts: { registry: Registry; clock: Clock; logger: Logger; random?: Random; engine?: PolicyEngine }) {
    this.engine = opts.engine;
    this.clock = opts.clock;
    this.logger = opts.logger.child({ feature: 'outbound' });
    this.random = opts.random;
    this.metrics = new OutboundMetrics(opts.registry, () => this.endpointCounts());
  }

  private *endpointCounts(): Iterable<{ upstream: string; ready: number; ejected: number }> {
    const now = this.clock.now();
    for (const s of this.served.values()) {
      let ejected = 0;
      for (const e of s.runtime.endpoints.all) if (e.isEjected(now)) ejected++;
      yield { upstream: s.runtime.plan.id, ready: s.runtime.endpoints.all.length - ejected, ejected };
    }
  }

  /** The last plan's listeners bound or failed: what `bindErrors` reports is about that plan. */
  private applying: Promise<void> = Promise.resolve();

  applyPlan(plan: Plan): Promise<void> {
    const run = this.applying.then(() => this.follow(plan));
    this.applying = run.catch(() => {});
    return run;
  }

  /** Resolves once every plan given so far has its listeners bound or failed. */
  settled(): Promise<void> {
    return this.applying;
  }

  /**
   * The Upstreams of the plan in force that this sidecar could not put in place (their listen
   * port is taken), one line each: what the ACK reports to the operator and what a standalone
   * sidecar refuses to start with.
   */
  bindErrors(): { kind: 'Upstream'; namespace: string; name: string; error: string }[] {
    return [...this.served.values()].flatMap((s) => (s.state === 'failed' ? [{ kind: 'Upstream' as const, namespace: s.runtime.plan.namespace, name: s.runtime.plan.name, error: s.error ?? 'cannot listen' }] : []));
  }

  private async follow(plan: Plan): Promise<void> {
    const wanted = new Map((plan.upstreams ?? []).map((u) => [u.id, u]));
    const closing: Promise<void>[] = [];
    for (const [id, s] of this.served) {
      const next = wanted.get(id);
      // A listener that failed to bind is tried again with each plan: the port may be free now.
      if (!next || !sameSocket(s.runtime.plan, next) || s.state === 'failed') {
        this.served.delete(id);
        closing.push(this.stopServing(s));
      }
    }
    // Old listeners are closed first, so a port moving from one Upstream to another is free.
    await Promise.all(closing);
    if (!this.grpcListener && [...wanted.values()].some((u) => u.protocol === 'grpc')) {
      this.grpcListener = (await import('./outbound-grpc.ts')).OutboundGrpcListener;
    }
    const binding: Promise<void>[] = [];
    for (const [id, u] of wanted) {
      const s = this.served.get(id);
      if (s) {
        s.runtime.update(u);
        this.restartStandalone(s, u);
        continue;
      }
      binding.push(this.serve(u).bound);
    }
    await Promise.all(binding);
    // Client-side limits and breakers: only Upstreams that a rule names go through the engine.
    const guarded = new Set<string>();
    for (const r of [...plan.rateLimits, ...plan.breakers]) {
      const u = r.source.match?.upstream;
      if (u !== undefined) guarded.add(`${r.policy.slice(0, r.policy.indexOf('/'))}/${u}`);
    }
    for (const [id, s] of this.served) s.runtime.guard = guarded.has(id) ? this.engine : undefined;
  }

  /** Operator mode: the ready endpoints of an Upstream's Service (`namespace/name`). */
  setEndpoints(upstreamId: string, addresses: readonly string[]): void {
    this.operatorEndpoints.set(upstreamId, addresses);
    const s = this.served.get(upstreamId);
    if (s && !s.standalone) s.runtime.setEndpoints(addresses);
  }

  /** The runtime of one Upstream, for tests and the admin views. */
  runtime(id: string): UpstreamRuntime | undefined {
    return this.served.get(id)?.runtime;
  }

  readiness(): ReadinessCheck {
    return {
      name: 'outbound',
      check: () => {
        const states = [...this.served.values()].map((s) => ({ upstream: s.runtime.plan.id, listen: `${s.runtime.plan.listen.host}:${s.runtime.plan.listen.port}`, state: s.state, ...(s.error ? { error: s.error } : {}) }));
        return { ok: states.every((s) => s.state === 'bound'), details: states };
      },
    };
  }

  status(): unknown {
    return { upstreams: [...this.served.values()].map((s) => ({ ...s.runtime.snapshot(), state: s.state, ...(s.error ? { error: s.error } : {}) })) };
  }

  async close(graceMs: number): Promise<void> {
    const all = [...this.served.values()];
    this.served.clear();
    await Promise.all(all.map((s) => this.stopServing(s, graceMs)));
  }

  private serve(u: UpstreamPlan): Served {
    let listener: OutboundGrpcListener | OutboundHttpListener | undefined;
    const runtime = new UpstreamRuntime(u, {
      clock: this.clock, metrics: this.metrics, ...(this.random ? { random: this.random } : {}),
      onEndpointRemoved: (ep) => listener?.endpointRemoved(ep),
    });
    const log = this.logger.child({ upstream: u.id });
    listener = u.protocol === 'grpc' ? new this.grpcListener!(runtime, log) : new OutboundHttpListener(runtime, log);
    const s: Served = { runtime, listener, state: 'binding', bound: Promise.resolve() };
    this.served.set(u.id, s);
    this.restartStandalone(s, u);
    if (!s.standalone) runtime.setEndpoints(this.operatorEndpoints.get(u.id) ?? []);
    s.bound = listener.listen().then(
      (a) => {
        s.state = 'bound';
        log.info('outbound listener bound', { listen: `${a.address}:${a.port}`, protocol: u.protocol });
      },
      (err: Error & { code?: string }) => {
        s.state = 'failed';
        s.error = `Upstream ${u.id}: spec.listen: cannot listen on ${u.listen.host}:${u.listen.port}: ${bindReason(err)}`;
        log.error('outbound listener failed to bind; the Upstream is not served', { listen: `${u.listen.host}:${u.listen.port}`, error: s.error });
      },
    );
    return s;
  }

  private restartStandalone(s: Served, u: UpstreamPlan): void {
    if (s.standalone && JSON.stringify(s.runtime.plan.endpoints) === JSON.stringify(u.endpoints) && s.runtime.plan === u) return;
    s.standalone?.stop();
    s.standalone = undefined;
    if (u.endpoints.length === 0) return;
    s.standalone = new StandaloneEndpoints({ entries: u.endpoints, resolveEveryMs: u.resolveEveryMs, logger: this.logger, deliver: (a) => s.runtime.setEndpoints(a) });
    s.standalone.start();
  }

  private async stopServing(s: Served, graceMs = 5_000): Promise<void> {
    s.standalone?.stop();
    await s.bound;
    if (s.state === 'bound') await s.listener.close(graceMs);
  }
}

function sameSocket(a: UpstreamPlan, b: UpstreamPlan): boolean {
  return a.protocol === b.protocol && a.listen.host === b.listen.host && a.listen.port === b.listen.port;
}

/** Why a listener could not bind, in words a user can act on. */
function bindReason(err: Error & { code?: string }): string {
  switch (err.code) {
    case 'EADDRINUSE': return 'the port is already in use by another process or listener (EADDRINUSE); choose another port or stop what holds it';
    case 'EADDRNOTAVAIL': return 'the address is not on this host (EADDRNOTAVAIL)';
    case 'EACCES': return 'permission denied (EACCES): ports below 1024 need privileges the sidecar does not have';
    default: return err.code ?? err.message;
  }
}
