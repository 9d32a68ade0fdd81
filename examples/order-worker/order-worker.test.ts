import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from '../../test/helpers/eventually.ts';
import { RedisServer } from '../../test/helpers/redis-server.ts';
import { ProxyProcess } from '../../sidecar/test/queue/helpers/proxy-process.ts';
import { postOrders, serveOrders } from './producer.ts';
import { startOrderWorker } from './worker.ts';
import { queueKeys } from '../../lib/redis/key-layout.ts';

const CONFIG = resolve(import.meta.dirname, 'sluice.yaml');
const cleanup: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  while (cleanup.length) await cleanup.pop()!().catch(() => {});
});

describe('examples/order-worker', () => {
  it('orders posted to the producer sidecar are fulfilled once each by the worker; invalid ones are dead-lettered', { timeout: 60_000 }, async () => {
    const redis = await RedisServer.start();
    cleanup.push(() => redis.stop());
    const worker = await startOrderWorker({ failRate: 0.3 });
    cleanup.push(() => worker.close());
    const workerSidecar = await ProxyProcess.start({ id: 'order-worker-0', config: CONFIG, redisUrl: redis.url, appHttp: `127.0.0.1:${worker.port}`, labels: 'app=order-worker' });
    cleanup.push(() => workerSidecar.kill9());
    const producerSidecar = await ProxyProcess.start({ id: 'order-api-0', config: CONFIG, redisUrl: redis.url, appHttp: '127.0.0.1:1', labels: 'app=order-api' });
    cleanup.push(() => producerSidecar.kill9());

    const posted = await postOrders({ sidecar: producerSidecar.localApi, orders: 20, invalid: 1 });
    const again = await postOrders({ sidecar: producerSidecar.localApi, orders: 20, invalid: 1 });
    expect(again.map((p) => [p.taskId, p.duplicate])).toEqual(posted.map((p) => [p.taskId, true]));

    await eventually(() => expect(worker.fulfilled.size).toBe(19), { timeoutMs: 30_000 });
    expect(new Set(worker.fulfilled.keys())).toEqual(new Set(posted.slice(1).map((p) => p.taskId)));
    const r = new Redis(redis.url);
    cleanup.push(async () => r.disconnect());
    // Sluice keeps the queue's dead letters in its own key space, under the namespace (docs/redis-keys.md).
    const dlq = queueKeys({ namespace: 'shop', stream: 'shop.orders', deadLetterStream: 'shop.orders.dlq' }).deadLetter!;
    await eventually(async () => expect(await r.xlen(dlq)).toBe(1));
    const [entry] = (await r.xrange(dlq, '-', '+')) as [string, string[]][];
    const fields = entry![1];
    expect(fields).toEqual(expect.arrayContaining(['originalId', posted[0]!.taskId, 'cause', 'permanent']));

    // The same producer as an order API (producer.ts --serve, the k8s order-api pods): an order
    // POSTed to it becomes one task through the sidecar, a re-post is the duplicate, junk is 400.
    const api = await serveOrders({ sidecar: producerSidecar.localApi });
    cleanup.push(() => api.close());
    const order = (body: unknown) => fetch(`http://127.0.0.1:${api.port}/orders`, { method: 'POST', body: JSON.stringify(body) });
    const first = await order({ orderId: 'api-1', sku: 'SKU-1', qty: 2 });
    expect(first.status).toBe(202);
    const created = (await first.json()) as { id: string; duplicate: boolean };
    expect(created.duplicate).toBe(false);
    const repost = await order({ orderId: 'api-1', sku: 'SKU-1', qty: 2 });
    expect(await repost.json()).toEqual({ ...created, duplicate: true });
    expect((await order({ sku: 'SKU-1' })).status).toBe(400);
    expect((await fetch(`http://127.0.0.1:${api.port}/healthz`)).status).toBe(200);
    await eventually(() => expect(worker.fulfilled.get(created.id)).toEqual({ orderId: 'api-1', sku: 'SKU-1', qty: 2 }), { timeoutMs: 30_000 });
    expect(worker.fulfilled.size).toBe(20);
  });
});
