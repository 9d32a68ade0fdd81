import { describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { useCleanup, useRedisServer } from '../../../test/helpers/fixtures.ts';
import type { RedisServer } from '../../../test/helpers/redis-server.ts';
import { QueueHarness, taskQueueDoc } from './helpers/queue-harness.ts';
import { ProxyProcess, writeConfig } from './helpers/proxy-process.ts';
import { WorkerApp } from './helpers/worker-app.ts';

let redis: RedisServer;
useRedisServer((server) => {
  redis = server;
});
const cleanup = useCleanup();

describe('graceful drain on SIGTERM (real sluice-proxy)', () => {
  it('stops reading, finishes in-flight tasks within the grace, hands back the rest without an attempt', { timeout: 60_000 }, async () => {
    const doc = taskQueueDoc('drain', { visibilityTimeout: '30s' });
    const config = writeConfig([doc]);
    const producer = await QueueHarness.start({ redisUrl: redis.url, docs: [doc], labels: { app: 'producer' } });
    const appA = await WorkerApp.start();
    const appB = await WorkerApp.start();
    cleanup.push(() => producer.close(), () => appA.close(), () => appB.close());

    appA.behaviour = (d) => (d.body === '"quick"' ? sleep(300).then(() => 200) : new Promise<number>(() => {}));
    const a = await ProxyProcess.start({ id: 'drain-a', config, redisUrl: redis.url, appHttp: appA.address, grace: '1500ms' });
    cleanup.push(() => a.kill9());
    const quick = (await producer.post('drain', '"quick"')).json.id;
    const stuck = (await producer.post('drain', '"stuck"')).json.id;
    await eventually(() => expect(appA.ids().sort()).toEqual([quick, stuck].sort()));

    const exit = a.terminate();
    await sleep(100);
    const after = (await producer.post('drain', '"after"')).json.id;
    expect(await exit).toEqual({ code: 0, signal: null });
    expect(appA.ids()).not.toContain(after);

    // The quick task was finished and acknowledged by A; the stuck one went back untouched.
    const b = await ProxyProcess.start({ id: 'drain-b', config, redisUrl: redis.url, appHttp: appB.address });
    cleanup.push(() => b.kill9());
    await eventually(() => expect(appB.deliveries.map((d) => [d.id, d.attempt]).sort()).toEqual([[after, 1], [stuck, 1]].sort()));
    expect(appB.ids()).not.toContain(quick);
    await eventually(async () => expect((await (await fetch(`${b.localApi}/v1/queues/drain`)).json()) as object).toMatchObject({ pending: 0, lag: 0 }));
  });
});
