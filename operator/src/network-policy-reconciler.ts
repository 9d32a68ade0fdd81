/**
 * The thin I/O shell around planNetworkPolicy(): per namespace, read the namespace from the
 * informer, plan, then create / replace / delete the one NetworkPolicy the operator manages there.
 * Level-triggered and idempotent; it only ever deletes an object carrying its own managed-by label.
 */
import type { Logger } from '../../lib/log.ts';
import { isNotFound } from './errors.ts';
import type { Informer } from './informer.ts';
import type { KubeClient, KubeObject } from './kube-client.ts';
import type { OperatorMetrics } from './metrics.ts';
import { MANAGED_BY, NETWORK_POLICY_NAME, planNetworkPolicy } from './plan-network-policy.ts';
import { reconcileQueue, type WorkQueue } from './work-queue.ts';

const path = (namespace: string, name?: string) =>
  `/apis/networking.k8s.io/v1/namespaces/${namespace}/networkpolicies${name ? `/${name}` : ''}`;

export class NetworkPolicyReconciler {
  readonly queue: WorkQueue;
  private readonly namespaces: Informer;
  private readonly client: KubeClient;
  private readonly logger: Logger;

  constructor(opts: { namespaces: Informer; client: KubeClient; logger: Logger; metrics: OperatorMetrics }) {
    this.namespaces = opts.namespaces;
    this.client = opts.client;
    this.logger = opts.logger;
    this.queue = reconcileQueue({ kind: 'NetworkPolicy', handler: (key) => this.reconcile(key), metrics: opts.metrics, logger: opts.logger });
    opts.namespaces.on((_event, obj) => this.queue.add(obj.metadata.name));
  }

  start(): void {
    this.queue.start();
    for (const ns of this.namespaces.list()) this.queue.add(ns.metadata.name);
  }

  stop(): void {
    this.queue.stop();
  }

  async reconcile(namespace: string): Promise<void> {
    const ns = this.namespaces.get(namespace);
    if (!ns || ns.metadata.deletionTimestamp) return; // the namespace takes its objects with it
    const plan = planNetworkPolicy(ns);
    const existing = await this.client.get<KubeObject>(path(namespace, NETWORK_POLICY_NAME)).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
    const ours = existing?.metadata.labels?.['app.kubernetes.io/managed-by'] === MANAGED_BY['app.kubernetes.io/managed-by'];
    switch (plan.action) {
      case 'invalid':
        this.logger.warn('namespace asks for a NetworkPolicy the operator cannot build; left as it is', { namespace, reason: plan.message });
        return;
      case 'remove':
        if (existing && ours) {
          await this.client.delete(path(namespace, NETWORK_POLICY_NAME)).catch((err: unknown) => {
            if (!isNotFound(err)) throw err;
          });
          this.logger.info('network policy removed', { namespace });
        }
        return;
      case 'apply': {
        if (!existing) {
          await this.client.create(path(namespace), plan.policy);
          this.logger.info('network policy created', { namespace, name: NETWORK_POLICY_NAME });
          return;
        }
        if (!ours) {
          this.logger.warn('a NetworkPolicy of that name exists and is not the operator\'s; left as it is', { namespace, name: NETWORK_POLICY_NAME });
          return;
        }
        if (JSON.stringify(existing.spec) === JSON.stringify(plan.policy.spec)) return;
        // With the resourceVersion, a concurrent change makes this a 409 and a retry from fresh state.
        await this.client.replace(path(namespace, NETWORK_POLICY_NAME), { ...plan.policy, metadata: { ...plan.policy.metadata, resourceVersion: existing.metadata.resourceVersion } });
        this.logger.info('network policy updated', { namespace, name: NETWORK_POLICY_NAME });
      }
    }
  }
}
