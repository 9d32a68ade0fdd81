/**
 * Wires the operator together:
 *
 *   informers (4 policy kinds + pods) ──► PolicyIndex (verdicts, per-pod resources)
 *        │                                     │
 *        ├──► reconcilers (one per kind) ──► status subresource, Events
 *        └──► DiscoveryServer ──► snapshots to sidecars ──► ACK/NACK ──► ProgrammingTracker ──► reconcilers
 *
 * Every replica keeps its informers warm; only the Lease holder reconciles and serves discovery
 * (ACKs must reach the replica that writes status). Losing the lease stops both at once.
 */
import type { Server } from 'node:http';
import type { KindReconciler } from './kind-reconciler.ts';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { systemClock, type Clock } from '../../lib/clock.ts';
import { selectorMatches } from '../../lib/policy/selector.ts';
import { createLogger, type Logger } from '../../lib/log.ts';
import { createAdminServer } from './admin-server.ts';
import { DiscoveryServer } from './discovery-server.ts';
import { isNotFound } from './errors.ts';
import { EventRecorder } from './event-recorder.ts';
import { CircuitEvents } from './circuit-events.ts';
import { Informer } from './informer.ts';
import { ENDPOINT_SLICES, PODS, POLICY_KINDS, type PolicyKind } from './kinds.ts';
import { upstreamEndpoints } from './upstream-endpoints.ts';
import { KubeClient, objectKey, resourcePath, type KubeObject } from './kube-client.ts';
import { LeaderLease } from './leader-lease.ts';
import { OperatorMetrics } from './metrics.ts';
import type { OperatorOptions } from './operator-options.ts';
import { isTargetPod } from './pod-selection.ts';
import { PolicyIndex } from './policy-index.ts';
import { PolicyReconciler } from './policy/policy-reconciler.ts';
import { ProgrammingTracker } from './programming-tracker.ts';
import { SidecarAuthenticator } from './sidecar-auth.ts';
// TaskQueue and LeaderElection get reconcilers of their own (stream ensure + autoscale; leader label).
import { LeaderElectionReconciler } from './leader-election/leader-election-reconciler.ts';
import { LeaderReports } from './leader-election/leader-reports.ts';
import { LockNodeReader } from './leader-election/lock-node-reader.ts';
import { NetworkPolicyReconciler } from './network-policy-reconciler.ts';
import { TaskQueueReconciler } from './task-queue/task-queue-reconciler.ts';

export interface OperatorAddresses {
  discovery: number;
  admin: number;
}

export class Operator {
  readonly opts: OperatorOptions;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly client: KubeClient;
  readonly metrics = new OperatorMetrics({ defaultMetrics: true });
  readonly tracker = new ProgrammingTracker();
  readonly pods: Informer;
  /** EndpointSlices, for the Services that Upstreams name: their ready endpoints go to the calling sidecars. */
  readonly endpointSlices: Informer;
  readonly policies = new Map<string, Informer>();
  readonly reconcilers = new Map<string, KindReconciler<unknown>>();
  /** The sidecars' latest leadership claims (from discovery reports). */
  readonly leaderReports: LeaderReports;
  /** Namespaces, for the opt-in NetworkPolicy (sluice.dev/network-policy=enabled). */
  private readonly namespaces: Informer;
  private readonly networkPolicies: NetworkPolicyReconciler;
  private readonly lockNodes: LockNodeReader | undefined;
  readonly index: PolicyIndex;
  readonly discovery: DiscoveryServer;
  readonly lease: LeaderLease;
  private admin: Server | undefined;
  private leading = false;
  private stopped = false;

  constructor(opts: OperatorOptions, deps: { kubeConfig?: KubeConfig; logger?: Logger; clock?: Clock } = {}) {
    this.opts = opts;
    this.logger = deps.logger ?? createLogger(opts.logLevel, { component: 'sluice-operator', id: opts.id });
    this.clock = deps.clock ?? systemClock;
    this.leaderReports = new LeaderReports(this.clock);
    this.lockNodes = opts.lockNodes && opts.lockNodes.length > 0 ? new LockNodeReader(opts.lockNodes, this.logger) : undefined;
    const kc = deps.kubeConfig ?? loadKubeConfig(opts.kubeconfig);
    this.client = new KubeClient(kc);
    const { client, logger } = this;

    this.pods = new Informer({ client, path: resourcePath(PODS), logger });
    this.namespaces = new Informer({ client, path: '/api/v1/namespaces', logger });
    this.endpointSlices = new Informer({ client, path: resourcePath(ENDPOINT_SLICES), logger });
    for (const k of POLICY_KINDS) this.policies.set(k.kind, new Informer({ client, path: resourcePath(k), logger }));
    this.index = new PolicyIndex({
      policies: (kind, ns) => this.informerOf(kind).inNamespace(ns),
      pods: (ns) => this.pods.inNamespace(ns),
    }, POLICY_KINDS);

    const events = new EventRecorder({ client, logger, instance: opts.id });
    for (const kind of POLICY_KINDS) {
      const common = { kind, informer: this.informerOf(kind), index: this.index, tracker: this.tracker, client, events, logger, metrics: this.metrics, clock: this.clock };
      // TaskQueue and LeaderElection: one reconciler per kind still, writing the whole status.
      if (kind.kind === 'TaskQueue') {
        this.reconcilers.set(kind.kind, new TaskQueueReconciler({
          ...common, redisUrl: opts.redis, resyncMs: opts.queueResyncMs ?? 5_000,
          // The discovery server is built below; by the time a reconcile runs it exists.
          handRedrive: (pods, request, avoid) => this.discovery.handRedrive(pods, request, avoid),
        }));
      } else if (kind.kind === 'LeaderElection') {
        this.reconcilers.set(kind.kind, new LeaderElectionReconciler({ ...common, pods: this.pods, reports: this.leaderReports, lockNodes: this.lockNodes }));
      } else {
        this.reconcilers.set(kind.kind, new PolicyReconciler(common));
      }
    }

    const breakers = this.policies.get('CircuitBreakerPolicy') as Informer;
    const circuitEvents = new CircuitEvents({ policy: (key) => breakers.get(key), events, clock: this.clock, logger, metrics: this.metrics });
    this.networkPolicies = new NetworkPolicyReconciler({ namespaces: this.namespaces, client, logger, metrics: this.metrics });

    this.discovery = new DiscoveryServer({
      listen: bindAddress(opts.discovery),
      index: this.index,
      tracker: this.tracker,
      authenticator: new SidecarAuthenticator({ client, audience: opts.tokenAudience, getPod: (ns, name) => this.getPod(ns, name) }),
      pod: (key) => this.pods.get(key),
      isServing: () => this.leading,
      onProgress: (podKey, refs) => this.onProgress(podKey, refs),
      onReport: (podKey, podUid, report) => this.onReport(podKey, podUid, report),
      onCircuitTransition: (pod, t) => circuitEvents.onTransition(pod, t),
      endpointsFor: (upstreams) => (this.endpointSlices.hasSynced
        ? upstreams.map((u) => ({ upstream: objectKey(u), addresses: upstreamEndpoints(u, this.endpointSlices.inNamespace(u.metadata.namespace as string)) }))
        : undefined),
      logger,
      metrics: this.metrics,
    });

    this.lease = new LeaderLease({
      client, namespace: opts.leaseNamespace, name: opts.leaseName, identity: opts.id,
      leaseDurationMs: opts.leaseDurationMs, renewDeadlineMs: opts.renewDeadlineMs, retryPeriodMs: opts.retryPeriodMs,
      onStartedLeading: () => void this.startLeading(),
      onStoppedLeading: () => this.stopLeading(),
      logger, clock: this.clock,
    });

    this.wireInformers();
  }

  get isLeader(): boolean {
    return this.leading;
  }

  get synced(): boolean {
    return this.pods.hasSynced && [...this.policies.values()].every((i) => i.hasSynced);
  }

  async start(): Promise<OperatorAddresses> {
    this.pods.start();
    this.namespaces.start();
    for (const i of this.policies.values()) i.start();
    this.endpointSlices.start();
    // Endpoints are sent only once the slices are listed; then every connected pod gets its own.
    void this.endpointSlices.synced.then(() => this.discovery.resyncAll());
    const discovery = await this.discovery.start();
    this.admin = createAdminServer(this.metrics, {
      synced: () => this.synced,
      leader: () => ({ isLeader: this.leading, holder: this.lease.holder }),
      sidecars: () => this.discovery.connected,
    });
    const [host, port] = splitHostPort(this.opts.admin);
    await new Promise<void>((resolve, reject) => {
      this.admin?.once('error', reject);
      this.admin?.listen(port, host, () => resolve());
    });
    this.metrics.queueDepths = () => Object.fromEntries([...this.reconcilers.values()].map((r) => [r.kind.kind, r.queue.length]));
    this.lease.start();
    const admin = (this.admin.address() as AddressInfo).port;
    this.logger.info('operator started', { discovery, discoveryTls: this.discovery.tls, admin, id: this.opts.id, lease: `${this.opts.leaseNamespace}/${this.opts.leaseName}` });
    // Plaintext means sidecar tokens cross the network in clear: say so.
    if (!this.discovery.tls) this.logger.warn('PolicyDiscovery is served in plaintext: sidecar tokens travel unencrypted (local/test use only)', { insecureFlag: this.opts.discoveryInsecure === true });
    return { discovery, admin };
  }

  /** Graceful stop: release the lease (a successor takes over at once), close streams, stop watching. */
  async stop({ releaseLease = true }: { releaseLease?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.lease.stop({ release: releaseLease });
    this.stopLeading();
    await this.discovery.stop();
    this.pods.stop();
    this.namespaces.stop();
    this.endpointSlices.stop();
    for (const i of this.policies.values()) i.stop();
    for (const r of this.reconcilers.values()) if (r instanceof TaskQueueReconciler) r.close(); // its Redis connection
    await new Promise<void>((resolve) => {
      if (!this.admin) return resolve();
      this.admin.close(() => resolve());
      this.admin.closeAllConnections();
    });
    this.lockNodes?.close();
    this.client.close();
    this.logger.info('operator stopped');
  }

  private informerOf(kind: PolicyKind): Informer {
    return this.policies.get(kind.kind) as Informer;
  }

  private async startLeading(): Promise<void> {
    // Serve and reconcile only from complete caches: a half-listed cache would push snapshots
    // missing policies, and sidecars would drop limits they should keep.
    await Promise.all([this.pods.synced, this.namespaces.synced, ...[...this.policies.values()].map((i) => i.synced)]);
    if (!this.lease.isLeader || this.stopped) return;
    this.leading = true;
    this.metrics.leader.set(1);
    for (const r of this.reconcilers.values()) r.start();
    this.networkPolicies.start();
  }

  private stopLeading(): void {
    if (!this.leading) return;
    this.leading = false;
    this.metrics.leader.set(0);
    for (const r of this.reconcilers.values()) r.stop();
    this.networkPolicies.stop();
    this.discovery.closeAll('this operator replica is no longer the leader');
  }

  private wireInformers(): void {
    for (const kind of POLICY_KINDS) {
      this.informerOf(kind).on((event, obj, old) => {
        const ns = obj.metadata.namespace as string;
        const r = this.reconcilers.get(kind.kind) as KindReconciler<unknown>;
        // A status-only update (our own writes, mostly) changes no verdict and no snapshot:
        // re-check just this object's status (someone may have overwritten it).
        if (event === 'update' && old && !specChanged(old, obj)) {
          r.enqueue(objectKey(obj));
          return;
        }
        this.index.invalidate(ns);
        this.discovery.resyncNamespace(ns);
        // Conflicts are decided among all policies of a kind in a namespace, so any change can
        // move another policy's verdict.
        // (Upstreams, too, are judged together: one may take another's listen address.)
        if (kind.rules || kind.kind === 'Upstream') for (const o of this.informerOf(kind).inNamespace(ns)) r.enqueue(objectKey(o));
        r.enqueue(objectKey(obj));
      });
    }
    // Endpoint churn reaches sidecars as endpoint updates only: no snapshot, no status change.
    // Slices churn in every namespace; only those with Upstreams have sidecars that care.
    this.endpointSlices.on((_event, slice) => {
      const ns = slice.metadata.namespace as string;
      if (this.policies.get('Upstream')?.inNamespace(ns).length) this.discovery.resyncNamespace(ns);
    });
    this.pods.on((event, pod, old) => {
      // Pods change status all the time; only labels and target-ness matter here.
      if (event === 'update' && old && !podSelectionChanged(old, pod)) return;
      const ns = pod.metadata.namespace as string;
      const key = objectKey(pod);
      if (event === 'delete') {
        this.tracker.forget(key);
        this.enqueueElections(this.leaderReports.forget(key));
      }
      this.index.invalidate(ns);
      this.discovery.resyncPod(key);
      // Targets and conflicts of every policy that selected the pod before or after may change.
      this.enqueuePoliciesSelecting(ns, [pod.metadata.labels ?? {}, old?.metadata.labels ?? {}]);
    });
  }

  private onProgress(podKey: string, refs: Iterable<string>): void {
    for (const ref of refs) {
      const [kind, ns, name] = ref.split('/');
      this.reconcilers.get(kind as string)?.enqueue(`${ns}/${name}`);
    }
    const pod = this.pods.get(podKey);
    if (pod) this.enqueuePoliciesSelecting(pod.metadata.namespace as string, [pod.metadata.labels ?? {}]);
  }

  /** A sidecar's report: leadership claims move the elections they name. */
  private onReport(podKey: string, podUid: string, report: unknown): void {
    this.enqueueElections(this.leaderReports.record(podKey, podUid, report));
  }

  private enqueueElections(elections: readonly string[]): void {
    const r = this.reconcilers.get('LeaderElection');
    for (const e of elections) r?.enqueue(e);
  }

  private enqueuePoliciesSelecting(ns: string, labelSets: Record<string, string>[]): void {
    for (const kind of POLICY_KINDS) {
      const r = this.reconcilers.get(kind.kind) as KindReconciler<unknown>;
      for (const p of this.informerOf(kind).inNamespace(ns)) {
        if (kind.rules || labelSets.some((l) => selectorMatches(p.spec?.selector ?? {}, l))) r.enqueue(objectKey(p));
      }
    }
  }

  /** The pod from the cache, or from the API when the cache has not seen it yet (brand-new pod). */
  private async getPod(namespace: string, name: string): Promise<KubeObject | undefined> {
    const cached = this.pods.get(`${namespace}/${name}`);
    if (cached) return cached;
    try {
      return await this.client.get(resourcePath(PODS, namespace, name));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
}

function specChanged(old: KubeObject, obj: KubeObject): boolean {
  return old.metadata.generation !== obj.metadata.generation
    || old.metadata.uid !== obj.metadata.uid
    || old.metadata.deletionTimestamp !== obj.metadata.deletionTimestamp;
}

function podSelectionChanged(old: KubeObject, pod: KubeObject): boolean {
  return JSON.stringify(old.metadata.labels ?? {}) !== JSON.stringify(pod.metadata.labels ?? {})
    || isTargetPod(old) !== isTargetPod(pod)
    || old.metadata.uid !== pod.metadata.uid;
}

function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromCluster();
  return kc;
}

/** ":15010" → ["0.0.0.0", 15010]; "127.0.0.1:0" → ["127.0.0.1", 0]. */
export function splitHostPort(hostPort: string): [string, number] {
  const i = hostPort.lastIndexOf(':');
  if (i < 0) throw new RangeError(`"${hostPort}" is not host:port`);
  const host = hostPort.slice(0, i).replace(/^\[|\]$/g, '') || '0.0.0.0';
  const port = Number(hostPort.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`"${hostPort}" has no valid port`);
  return [host, port];
}

function bindAddress(hostPort: string): string {
  const [host, port] = splitHostPort(hostPort);
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}
