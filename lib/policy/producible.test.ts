import { describe, expect, it } from 'vitest';
import { compilePlan } from './compile.ts';
import { mayProduceTo, producibleTaskQueues } from './producible.ts';

const queue = (name: string, namespace: string, app: string, autoscale?: unknown) => ({
  apiVersion: 'sluice.dev/v1alpha1', kind: 'TaskQueue', metadata: { name, namespace },
  spec: { selector: { matchLabels: { app } }, stream: name, consumerGroup: `${name}-workers`, delivery: { path: '/tasks' }, ...(autoscale ? { autoscale } : {}) },
});

describe('which TaskQueues an app may produce to', () => {
  it('every queue of its namespace whatever the selector; standalone (no namespace) every queue', () => {
    expect(mayProduceTo({ namespace: 'shop' }, 'shop')).toBe(true);
    expect(mayProduceTo({ namespace: 'billing' }, 'shop')).toBe(false);
    expect(mayProduceTo({ namespace: 'billing' }, undefined)).toBe(true);
  });

  it('a plan offers the consumed queues and the producible-only ones, each once', () => {
    const plan = compilePlan([queue('orders', 'shop', 'worker'), queue('mail', 'shop', 'mailer'), queue('audit', 'billing', 'auditor')], { labels: { app: 'worker' } });
    expect(plan.taskQueues.map((q) => q.id)).toEqual(['shop/orders']);
    expect(producibleTaskQueues(plan).map((q) => q.id)).toEqual(['shop/orders', 'shop/mail', 'billing/audit']);
    const both = Object.freeze({ ...plan, producibleTaskQueues: [...plan.taskQueues, ...(plan.producibleTaskQueues ?? [])] });
    expect(producibleTaskQueues(both).map((q) => q.id)).toEqual(['shop/orders', 'shop/mail', 'billing/audit']);
  });
});

describe('defaults the operator reads from the compiled plan', () => {
  it('autoscale: apps/v1, at least one replica, a five-minute stabilisation window', () => {
    const [q] = compilePlan([queue('orders', 'shop', 'worker', { scaleTargetRef: { kind: 'Deployment', name: 'worker' }, maxReplicas: 5, targetLagPerReplica: 100 })]).taskQueues;
    expect(q!.autoscale).toEqual({
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'worker' },
      minReplicas: 1, maxReplicas: 5, targetLagPerReplica: 100, stabilizationWindowMs: 300_000,
    });
  });

  it('autoscale as written when given', () => {
    const [q] = compilePlan([queue('orders', 'shop', 'worker', { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'w' }, minReplicas: 0, maxReplicas: 3, targetLagPerReplica: 10, stabilizationWindow: '30s' })]).taskQueues;
    expect(q!.autoscale).toMatchObject({ scaleTargetRef: { kind: 'StatefulSet' }, minReplicas: 0, stabilizationWindowMs: 30_000 });
  });
});
