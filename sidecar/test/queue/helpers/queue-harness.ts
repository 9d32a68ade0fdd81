import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { compilePlan } from '../../../../lib/policy/index.ts';
import { createLogger } from '../../../../lib/log.ts';
import { Router } from '../../../src/local-api/router.ts';
import { queueKeys, type QueueKeys } from '../../../../lib/redis/key-layout.ts';
import { QueueFeature, type QueueFeatureDeps } from '../../../src/queue/index.ts';

/** A TaskQueue document as a user writes it, with test-friendly defaults (fast backoff, short timeouts). */
export function taskQueueDoc(name: string, spec: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'sluice.dev/v1alpha1',
    kind: 'TaskQueue',
    metadata: { name, namespace: 'shop' },
    spec: {
      selector: { matchLabels: { app: 'worker' } },
      stream: `test.${name}`,
      consumerGroup: `${name}-workers`,
      delivery: { protocol: 'http', path: '/tasks', timeout: '5s' },
      concurrency: 8,
      retry: { maxAttempts: 3, backoff: { initial: '100ms', max: '1s', multiplier: 2 } },
      deadLetter: { stream: `test.${name}.dlq` },
      visibilityTimeout: '2s',
      ...spec,
    },
  };
}

/** The Redis keys of the queue taskQueueDoc(name) declares (namespace shop, stream test.<name>). */
export function testQueueKeys(name: string): QueueKeys {
  return queueKeys({ namespace: 'shop', stream: `test.${name}`, deadLetterStream: `test.${name}.dlq` });
}

export const WORKER_LABELS = { app: 'worker' };

/**
 * The queue feature in this process, as the sidecar would run it: a real Redis connection, the
 * local API on a real port, a real worker app address.
 */
export class QueueHarness {
  readonly feature: QueueFeature;
  readonly registry: Registry;
  private readonly server: Server;

  private constructor(feature: QueueFeature, registry: Registry, server: Server) {
    this.feature = feature;
    this.registry = registry;
    this.server = server;
  }

  static async start(opts: {
    redisUrl: string;
    docs: readonly unknown[];
    appHttp?: string;
    consumerName?: string;
    labels?: Record<string, string>;
    deps?: Partial<QueueFeatureDeps>;
  }): Promise<QueueHarness> {
    const registry = new Registry();
    const feature = new QueueFeature({
      redisUrl: opts.redisUrl,
      consumerName: opts.consumerName ?? 'test-consumer',
      registry,
      appHttp: opts.appHttp,
      logger: createLogger(process.env.SLUICE_TEST_LOG === '1' ? 'debug' : 'silent'),
      ...opts.deps,
    });
    feature.applyPlan(compilePlan(opts.docs, { labels: opts.labels ?? WORKER_LABELS }));
    await feature.ready();
    const router = new Router();
    for (const r of feature.routes()) router.add(r);
    const server = createServer((req, res) => void router.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new QueueHarness(feature, registry, server);
  }

  get api(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** POST a single task; resolves to the status and JSON answer. */
  async post(queue: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: { id?: string; duplicate?: boolean; code?: string } }> {
    const res = await fetch(`${this.api}/v1/queues/${queue}/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as { id?: string } };
  }

  async postBatch(queue: string, tasks: unknown[]): Promise<{ status: number; json: { tasks: { id: string; duplicate: boolean }[]; code?: string } }> {
    const res = await fetch(`${this.api}/v1/queues/${queue}/tasks:batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tasks }),
    });
    return { status: res.status, json: (await res.json()) as { tasks: { id: string; duplicate: boolean }[] } };
  }

  async counter(name: string, labels: Record<string, string>): Promise<number> {
    const metric = (await this.registry.getMetricsAsJSON()).find((m) => m.name === name);
    const v = metric?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
    return v ? Number(v.value) : 0;
  }

  async close(): Promise<void> {
    await this.feature.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A CircuitBreakerPolicy guarding the worker's task deliveries: 3 failures open it for `openDuration`. */
export function workerBreakerDoc(openDuration: string): Record<string, unknown> {
  return {
    apiVersion: 'sluice.dev/v1alpha1',
    kind: 'CircuitBreakerPolicy',
    metadata: { name: 'worker', namespace: 'shop' },
    spec: {
      selector: { matchLabels: WORKER_LABELS },
      rules: [{ name: 'tasks', match: { paths: [{ type: 'Exact', value: '/tasks' }] }, trip: { consecutiveFailures: 3 }, openDuration, halfOpen: { maxProbes: 1, successesToClose: 1 } }],
    },
  };
}
