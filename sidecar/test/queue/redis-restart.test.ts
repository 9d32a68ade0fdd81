import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { RedisServer } from '../../../test/helpers/redis-server.ts';
import { QueueHarness, taskQueueDoc, testQueueKeys } from './helpers/queue-harness.ts';
import { WorkerApp } from './helpers/worker-app.ts';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!().catch(() => {});
});

describe('Redis restarts', () => {
  it('with AOF: consumers recover, tasks in flight during the outage complete, the group is re-created if gone', async () => {
    const redis = await RedisServer.start({ appendonly: true });
    const app = await WorkerApp.start();
    const h = await QueueHarness.start({ redisUrl: redis.url, docs: [taskQueueDoc('aof', { visibilityTimeout: '1s' })], appHttp: app.address });
    const r = new Redis(redis.url, { lazyConnect: true });
    cleanup.push(() => redis.stop(), () => app.close(), () => h.close(), async () => r.disconnect());

    const before = await h.postBatch('aof', [1, 2, 3].map((n) => ({ payload: n })));
    await eventually(() => expect(app.deliveries).toHaveLength(3));

    // A task is with the app when Redis dies; its ack has to wait for Redis to come back.
    app.behaviour = (d) => (d.body === '"slow"' ? sleep(400).then(() => 200) : 200);
    const slow = (await h.post('aof', '"slow"')).json.id!;
    await eventually(() => expect(app.ids()).toContain(slow));
    await redis.kill();
    await sleep(300);
    await redis.restart();

    const after = await eventually(async () => {
      const res = await h.postBatch('aof', [4, 5].map((n) => ({ payload: n })));
      expect(res.status).toBe(202);
      return res;
    }, { timeoutMs: 10_000 });
    const wanted = [...before.json.tasks, ...after.json.tasks].map((t) => t.id).concat(slow);
    await eventually(() => expect(new Set(app.ids())).toEqual(new Set(wanted)), { timeoutMs: 15_000 });
    await r.connect();
    await eventually(async () => expect(((await r.call('XPENDING', testQueueKeys('aof').stream, 'aof-workers')) as unknown[])[0]).toBe(0), { timeoutMs: 15_000 });

    // The group is lost (FLUSHALL, a failover to a replica without it): consumers re-create it.
    await r.call('XGROUP', 'DESTROY', testQueueKeys('aof').stream, 'aof-workers');
    const lost = (await eventually(async () => {
      const res = await h.post('aof', { after: 'group lost' });
      expect(res.status).toBe(202);
      return res;
    })).json.id!;
    await eventually(() => expect(app.ids()).toContain(lost), { timeoutMs: 10_000 });
    expect(h.feature.status()).toMatchObject({ consumers: [{ groupRecreated: 1 }] });
  });
});
