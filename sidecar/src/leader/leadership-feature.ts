import { Gauge, type Registry } from '../prom-client.ts';
import type { Redis } from 'ioredis';
import type { Clock } from '../../../lib/clock.ts';
import type { Plan } from '../../../lib/policy/plan.ts';
import type { Route } from '../local-api/router.ts';
import type { Logger } from '../../../lib/log.ts';
import type { connectRedis } from '../../../lib/redis/connection.ts';
import { RedisHealth, redactUrl } from '../../../lib/redis/redis-health.ts';
import { loadScriptsOn } from '../redis/lua-script.ts';
import { LOCK_SCRIPTS } from './lock-scripts.ts';
import { ACCEPT_TOKEN } from '../fencing/accept-token-script.ts';
import { TokenFence } from '../fencing/token-fence.ts';
import { AppLocks } from './app-locks.ts';
import { LockError } from './errors.ts';
import { LeaderElector, type LeadershipStatus } from './leader-elector.ts';
import { leadershipRoutes } from './leadership-routes.ts';
import { RedLock } from './redlock.ts';
import { ReleaseNotifier } from './release-notifier.ts';

export interface LeadershipDeps {
  /** `--lock-nodes`: independent Redis servers (3 or 5). Empty: elections and locks answer 503. */
  lockNodes: readonly string[];
  clock: Clock;
  logger: Logger;
  registry: Registry;
  /** This sidecar's identity as a lock holder (the pod name). */
  holderId: string;
  /** The pod's namespace: app locks are per namespace. */
  namespace: string;
  /** Per-node command timeout (ms, default 200): one slow node costs at most this per round. */
  nodeTimeoutMs?: number;
  /**
   * Opens a lock node connection; required with lock nodes. Passed in rather than imported so that
   * a sidecar without lock nodes never loads the Redis client.
   */
  connect?: typeof connectRedis;
}

/**
 * LeaderElection and app locks for one sidecar: the lock node connections, one LeaderElector per
 * LeaderElection in the plan, the local API routes, `sluice_leader{election}`, and the release of
 * everything held on shutdown. Shaped as a sidecar Feature (applyPlan, routes, readiness, status,
 * close).
 */
export class LeadershipFeature {
  readonly name = 'leadership';
  private readonly deps: LeadershipDeps;
  private readonly logger: Logger;
  private readonly clients: Redis[] = [];
  private readonly healths: RedisHealth[] = [];
  private readonly lock: RedLock | undefined;
  private readonly notifier: ReleaseNotifier | undefined;
  private readonly locks: AppLocks | undefined;
  /** FencingPolicy checks run on the same lock nodes (and connections) as the locks whose tokens they check. */
  readonly tokenFence: TokenFence | undefined;
  private readonly electors = new Map<string, { elector: LeaderElector; off: () => void }>();
  private readonly gauge: Gauge<'election'>;
  private readonly closeListeners = new Set<() => void>();
  /** Subscribers to every election's changes (the operator report); see onChange(). */
  private readonly changeListeners = new Set<(s: LeadershipStatus) => void>();
  private warnedNoNodes = false;

  constructor(deps: LeadershipDeps) {
    this.deps = deps;
    this.logger = deps.logger.child({ feature: 'leadership' });
    this.gauge = (deps.registry.getSingleMetric('sluice_leader') as Gauge<'election'> | undefined) ?? new Gauge({
      name: 'sluice_leader',
      help: 'Whether this pod leads each LeaderElection: 1 leader, 0 not.',
      labelNames: ['election'] as const,
      registers: [deps.registry],
    });
    if (deps.lockNodes.length === 0) return;
    if (deps.lockNodes.length < 3) this.logger.warn('fewer than 3 lock nodes: one failure takes leadership away', { nodes: deps.lockNodes.length });
    const connectRedis = deps.connect;
    if (!connectRedis) throw new Error('lock nodes given without a Redis connector');
    const subscribers: Redis[] = [];
    deps.lockNodes.forEach((url, i) => {
      const name = `lock-node-${i}`;
      const client = connectRedis({ url, name, commandTimeoutMs: deps.nodeTimeoutMs ?? 200, connectTimeoutMs: 500 });
      loadScriptsOn(client, [...LOCK_SCRIPTS, ACCEPT_TOKEN]);
      // Subscriptions need a connection of their own; it does no commands with deadlines.
      const sub = connectRedis({ url, name: `${name}-events`, connectTimeoutMs: 500 });
      this.clients.push(client, sub);
      subscribers.push(sub);
      this.healths.push(new RedisHealth(name, client));
      this.logger.info('lock node', { node: name, url: redactUrl(url) });
    });
    const lockClients = this.clients.filter((_, i) => i % 2 === 0);
    this.lock = new RedLock(lockClients, deps.clock);
    this.tokenFence = new TokenFence(lockClients);
    this.notifier = new ReleaseNotifier(subscribers);
    this.locks = new AppLocks({ lock: this.lock, notifier: this.notifier, clock: deps.clock, holderId: deps.holderId, namespace: deps.namespace });
  }

  /** Starts electors for new LeaderElections, retimes changed ones, stops (and releases) removed ones. */
  applyPlan(plan: Plan): void {
    const wanted = new Map(plan.leaderElections.map((l) => [l.id, l]));
    for (const [id, { elector, off }] of this.electors) {
      if (wanted.has(id)) continue;
      off();
      this.electors.delete(id);
      this.gauge.remove(id);
      void elector.stop();
    }
    if (wanted.size > 0 && this.lock === undefined) {
      if (!this.warnedNoNodes) this.logger.error('LeaderElection in the plan but no --lock-nodes: nobody here can lead', { elections: [...wanted.keys()] });
      this.warnedNoNodes = true;
      return;
    }
    for (const [id, l] of wanted) {
      const timing = { ttlMs: l.ttlMs, renewEveryMs: l.renewEveryMs };
      const current = this.electors.get(id);
      if (current) {
        current.elector.retime(timing);
        continue;
      }
      const elector = new LeaderElector({
        id, name: l.name, namespace: l.namespace, timing, lock: this.lock as RedLock, clock: this.deps.clock, logger: this.logger, holderId: this.deps.holderId,
      });
      const offChange = elector.onChange((s) => {
        this.gauge.set({ election: id }, s.leader ? 1 : 0);
        for (const l of this.changeListeners) l(s);
      });
      const offRelease = (this.notifier as ReleaseNotifier).onRelease(elector.resource, () => elector.released());
      this.electors.set(id, { elector, off: () => { offChange(); offRelease(); } });
      this.gauge.set({ election: id }, 0);
      elector.start();
    }
  }

  routes(): Route[] {
    return leadershipRoutes({
      electors: () => [...this.electors.values()].map((e) => e.elector),
      elector: (name) => this.find(name),
      appLocks: () => {
        if (this.locks === undefined) throw new LockError('SLUICE_ERR_LOCK_NODES_MISSING', 'this sidecar runs without --lock-nodes');
        return this.locks;
      },
      onClose: (l) => {
        this.closeListeners.add(l);
        return () => this.closeListeners.delete(l);
      },
      clock: this.deps.clock,
    });
  }

  /** For /readyz details: lock nodes never make the pod unready — losing them costs leadership, not traffic. */
  readiness(): { name: string; check(): { ok: boolean; details?: unknown } } {
    return {
      name: 'lock-nodes',
      check: () => {
        const ready = this.healths.filter((h) => h.state === 'ready').length;
        return { ok: true, details: { nodes: this.healths.map((h) => h.toJSON()), ready, quorum: this.lock?.quorum ?? null, quorate: this.lock !== undefined && ready >= this.lock.quorum } };
      },
    };
  }

  /**
   * Calls `listener` on every leadership change of any election (including each
   * renewal, which moves validUntil). Returns the unsubscribe function.
   */
  onChange(listener: (s: LeadershipStatus) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Leadership of every election (for /v1/status and the operator's reports). */
  status(): { elections: LeadershipStatus[]; appLocksHeld: number } {
    return { elections: [...this.electors.values()].map((e) => e.elector.status()), appLocksHeld: this.locks?.count ?? 0 };
  }

  /** The health trackers of the lock node connections (for `sluice_redis_up`). */
  redisHealths(): readonly RedisHealth[] {
    return this.healths;
  }

  isLeader(election: string): boolean {
    return this.find(election)?.isLeader() ?? false;
  }

  /** SIGTERM: release every election and app lock so standbys take over at once, then disconnect. */
  async close(): Promise<void> {
    const electors = [...this.electors.values()];
    this.electors.clear();
    for (const e of electors) e.off();
    // Stopping tells watchers "not leader" before the release lets a standby in; then the streams end.
    await Promise.all([...electors.map((e) => e.elector.stop()), this.locks?.close()]);
    for (const l of this.closeListeners) l();
    this.closeListeners.clear();
    for (const e of electors) this.gauge.remove(e.elector.id);
    for (const c of this.clients) c.disconnect();
  }

  /** By `namespace/name`, or by name alone (a pod rarely has two elections of one name). */
  private find(name: string): LeaderElector | undefined {
    const byId = this.electors.get(name)?.elector;
    if (byId) return byId;
    for (const { elector } of this.electors.values()) if (elector.name === name) return elector;
    return undefined;
  }
}
