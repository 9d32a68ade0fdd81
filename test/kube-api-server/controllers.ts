/**
 * A stand-in for kube-controller-manager's deployment and replicaset controllers, so that what
 * helm `--wait`, `kubectl rollout status` and the operator observe looks like a cluster:
 *  - `ready`: each Deployment gets a ReplicaSet for its current template (named with a
 *    pod-template-hash, owned by the Deployment), and both report all replicas ready;
 *  - `pods`: additionally each ReplicaSet's Pods are created through the API — so mutating
 *    webhooks run on them, as with a real ReplicaSet — and marked Running and Ready, since no
 *    kubelet exists here.
 * Controllers write through KubeApi like any client, so watches, resourceVersions and
 * generations behave as usual. Work is queued per key and retried after a failure.
 */
import { createHash } from 'node:crypto';
import type { KubeApi } from './api.ts';
import { ApiError } from './errors.ts';
import type { KubeObject, Obj, ResourceType } from './resources.ts';

export type WorkloadMode = 'none' | 'ready' | 'pods';

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const stamp = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

export class WorkloadControllers {
  private readonly api: KubeApi;
  private readonly mode: WorkloadMode;
  private readonly queue = new Map<string, NodeJS.Timeout>();
  /** Keys being reconciled now, and whether they changed meanwhile (one worker per key). */
  private readonly running = new Map<string, boolean>();
  private unsubscribe: (() => void) | undefined;
  private stopped = false;
  private readonly log: (line: string) => void;

  constructor(api: KubeApi, mode: WorkloadMode, log: (line: string) => void = () => undefined) {
    this.api = api;
    this.mode = mode;
    this.log = log;
  }

  start(): void {
    if (this.mode === 'none') return;
    this.unsubscribe = this.api.store.subscribe((e) => {
      const o = e.object;
      if (e.bucket === 'apps/deployments') this.enqueue(`deployment/${o.metadata.namespace}/${o.metadata.name}`);
      if (e.bucket === 'apps/replicasets') {
        this.enqueue(`replicaset/${o.metadata.namespace}/${o.metadata.name}`);
        for (const ref of o.metadata.ownerReferences ?? []) if (ref.kind === 'Deployment') this.enqueue(`deployment/${o.metadata.namespace}/${ref.name}`);
      }
      if (e.bucket === '/pods') {
        for (const ref of o.metadata.ownerReferences ?? []) if (ref.kind === 'ReplicaSet') this.enqueue(`replicaset/${o.metadata.namespace}/${ref.name}`);
      }
    });
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    for (const t of this.queue.values()) clearTimeout(t);
    this.queue.clear();
  }

  private enqueue(key: string, delayMs = 0): void {
    if (this.stopped || this.queue.has(key)) return;
    if (this.running.has(key)) {
      this.running.set(key, true);
      return;
    }
    this.queue.set(key, setTimeout(() => {
      this.queue.delete(key);
      this.running.set(key, false);
      const [kind, ns, name] = key.split('/') as [string, string, string];
      const work = kind === 'deployment' ? this.syncDeployment(ns, name) : this.syncReplicaSet(ns, name);
      work.then(() => {
        const dirty = this.running.get(key);
        this.running.delete(key);
        if (dirty) this.enqueue(key);
      }, (err: unknown) => {
        this.running.delete(key);
        this.log(`controller ${key}: ${(err as Error).message}`);
        this.enqueue(key, 500);
      });
    }, delayMs));
  }

  private type(apiVersion: string, kind: string): ResourceType {
    const rt = this.api.registry.byKind(apiVersion, kind);
    if (!rt) throw new Error(`${kind} is not served`);
    return rt;
  }

  private find(rt: ResourceType, ns: string, name: string): KubeObject | undefined {
    try {
      return this.api.get(rt, ns, name);
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) return undefined;
      throw err;
    }
  }

  private async syncDeployment(ns: string, name: string): Promise<void> {
    const deployments = this.type('apps/v1', 'Deployment');
    const replicaSets = this.type('apps/v1', 'ReplicaSet');
    const d = this.find(deployments, ns, name);
    if (!d || d.metadata.deletionTimestamp) return;
    const spec = (d.spec ?? {}) as Obj;
    const replicas = typeof spec.replicas === 'number' ? spec.replicas : 1;
    const template = structuredClone((spec.template ?? {}) as Obj);
    const hash = createHash('sha256').update(JSON.stringify(template)).digest('hex').slice(0, 10).replace(/[0-9]/g, (c) => 'bcdfghjkmn'[Number(c)] as string);
    const rsName = `${name}-${hash}`;
    const owned = this.api.list(replicaSets, ns).items.filter((rs) => (rs.metadata.ownerReferences ?? []).some((r) => r.uid === d.metadata.uid && r.controller));
    const revision = String(1 + Math.max(0, ...owned.map((rs) => Number(rs.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? 0))));
    let current = owned.find((rs) => rs.metadata.name === rsName);
    if (!current) {
      const meta = (template.metadata ?? {}) as Obj;
      const labels = { ...(meta.labels as Record<string, string> | undefined), 'pod-template-hash': hash };
      template.metadata = { ...meta, labels };
      const selector = structuredClone((spec.selector ?? {}) as Obj);
      selector.matchLabels = { ...(selector.matchLabels as Record<string, string> | undefined), 'pod-template-hash': hash };
      current = await this.api.create(replicaSets, ns, {
        metadata: {
          name: rsName, namespace: ns, labels,
          annotations: { 'deployment.kubernetes.io/desired-replicas': String(replicas), 'deployment.kubernetes.io/max-replicas': String(replicas + 1), 'deployment.kubernetes.io/revision': revision },
          ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name, uid: d.metadata.uid as string, controller: true, blockOwnerDeletion: true }],
        },
        spec: { replicas, selector, template },
      });
    } else if ((current.spec as Obj).replicas !== replicas) {
      current = await this.api.patch(replicaSets, ns, rsName, 'merge', JSON.stringify({ spec: { replicas } }), undefined);
    }
    // Older ReplicaSets are scaled to zero (an instant rollout).
    for (const rs of owned) {
      if (rs.metadata.name !== rsName && (rs.spec as Obj).replicas !== 0) {
        await this.api.patch(replicaSets, ns, rs.metadata.name as string, 'merge', JSON.stringify({ spec: { replicas: 0 } }), undefined);
      }
    }
    const rsStatus = (current.status ?? {}) as Obj;
    const ready = (rsStatus.readyReplicas as number | undefined) ?? 0;
    const old = (d.status ?? {}) as Obj;
    const oldConditions = (old.conditions as Obj[] | undefined) ?? [];
    const condition = (type: string, status: string, reason: string, message: string): Obj => {
      const prev = oldConditions.find((c) => c.type === type);
      const same = prev && prev.status === status && prev.reason === reason;
      return { type, status, reason, message, lastUpdateTime: same ? prev.lastUpdateTime : stamp(), lastTransitionTime: same ? prev.lastTransitionTime : stamp() };
    };
    const available = ready >= replicas;
    const status: Obj = {
      observedGeneration: d.metadata.generation,
      ...(replicas > 0 ? { replicas, updatedReplicas: replicas } : {}),
      ...(ready > 0 ? { readyReplicas: ready, availableReplicas: ready } : {}),
      ...(replicas - ready > 0 ? { unavailableReplicas: replicas - ready } : {}),
      conditions: [
        condition('Available', available ? 'True' : 'False', available ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable', available ? 'Deployment has minimum availability.' : 'Deployment does not have minimum availability.'),
        condition('Progressing', 'True', available ? 'NewReplicaSetAvailable' : 'ReplicaSetUpdated', `ReplicaSet "${rsName}" ${available ? 'has successfully progressed' : 'is progressing'}.`),
      ],
    };
    if (JSON.stringify(status) !== JSON.stringify(old)) {
      await this.api.update(deployments, ns, name, { ...d, status }, 'status');
    }
  }

  private async syncReplicaSet(ns: string, name: string): Promise<void> {
    const replicaSets = this.type('apps/v1', 'ReplicaSet');
    const rs = this.find(replicaSets, ns, name);
    if (!rs || rs.metadata.deletionTimestamp) return;
    const spec = (rs.spec ?? {}) as Obj;
    const replicas = typeof spec.replicas === 'number' ? spec.replicas : 1;
    let ready = replicas;
    if (this.mode === 'pods') ready = await this.syncPods(rs, replicas);
    const status: Obj = {
      ...(replicas > 0 ? { replicas, fullyLabeledReplicas: replicas } : { replicas: 0 }),
      ...(ready > 0 ? { readyReplicas: ready, availableReplicas: ready } : {}),
      observedGeneration: rs.metadata.generation,
    };
    if (JSON.stringify(status) !== JSON.stringify(rs.status ?? {})) {
      await this.api.update(replicaSets, ns, name, { ...rs, status }, 'status');
    }
  }

  /** Creates or deletes the ReplicaSet's Pods and marks them Running; returns how many are ready. */
  private async syncPods(rs: KubeObject, replicas: number): Promise<number> {
    const pods = this.type('v1', 'Pod');
    const ns = rs.metadata.namespace as string;
    const mine = this.api.list(pods, ns).items.filter((p) => (p.metadata.ownerReferences ?? []).some((r) => r.uid === rs.metadata.uid) && !p.metadata.deletionTimestamp);
    for (const extra of mine.slice(replicas)) await this.api.delete(pods, ns, extra.metadata.name as string);
    const template = ((rs.spec as Obj).template ?? {}) as Obj;
    const tmeta = (template.metadata ?? {}) as Obj;
    for (let i = mine.length; i < replicas; i++) {
      await this.api.create(pods, ns, {
        metadata: {
          generateName: `${rs.metadata.name}-`, namespace: ns,
          labels: tmeta.labels, ...(isObj(tmeta.annotations) ? { annotations: tmeta.annotations } : {}),
          ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs.metadata.name as string, uid: rs.metadata.uid as string, controller: true, blockOwnerDeletion: true }],
        },
        spec: structuredClone(template.spec ?? {}),
      });
    }
    let ready = 0;
    for (const p of this.api.list(pods, ns).items.filter((x) => (x.metadata.ownerReferences ?? []).some((r) => r.uid === rs.metadata.uid))) {
      const st = (p.status ?? {}) as Obj;
      if (st.phase !== 'Running') await this.api.update(pods, ns, p.metadata.name as string, { ...p, status: runningStatus(p) }, 'status');
      ready++;
    }
    return Math.min(ready, replicas);
  }
}

let nextPodIp = 1;

/** What a kubelet would report for a started pod: Running, Ready, every container running. */
export function runningStatus(p: KubeObject): Obj {
  const now = stamp();
  const spec = (p.spec ?? {}) as Obj;
  const n = nextPodIp++;
  const ip = `10.244.${Math.floor(n / 250) % 250}.${(n % 250) + 1}`;
  const cs = (list: unknown) => ((list as Obj[] | undefined) ?? []).map((c) => ({
    name: c.name, image: c.image, imageID: '', ready: true, restartCount: 0, started: true,
    state: { running: { startedAt: now } },
  }));
  return {
    phase: 'Running', qosClass: 'BestEffort', podIP: ip, podIPs: [{ ip }], hostIP: '10.0.0.1', startTime: now,
    conditions: ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'].map((type) => ({ type, status: 'True', lastTransitionTime: now })),
    containerStatuses: cs(spec.containers),
    ...(Array.isArray(spec.initContainers) ? { initContainerStatuses: cs(spec.initContainers) } : {}),
  };
}
