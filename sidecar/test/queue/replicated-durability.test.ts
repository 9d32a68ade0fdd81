import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../../lib/clock.ts';
import { silentLogger } from '../../../lib/log.ts';
import { connectRedis, waitReady } from '../../../lib/redis/connection.ts';
import { eventually } from '../../../test/helpers/eventually.ts';
import { RedisServer } from '../../../test/helpers/redis-server.ts';
import { createGlobalLimiter } from '../../src/limit/global/index.ts';
import { globalRule } from '../global-limit/rules.ts';
import { QueueHarness, taskQueueDoc, testQueueKeys } from './helpers/queue-harness.ts';

/**
 * `durability: Replicated` against a real primary and replica: an enqueue is confirmed only when
 * the replica has it; no replica in time is an error the producer sees; and the WAIT runs on a
 * connection of its own, so global-limit decisions go on while it waits.
 */
let primary: RedisServer;
let replica: RedisServer;
let h: QueueHarness;

beforeAll(async () => {
  primary = await RedisServer.start();
  replica = await RedisServer.start({ args: ['--replicaof', '127.0.0.1', String(primary.port)] });
  const probe = connectRedis({ url: replica.url, name: 'probe' });
  await waitReady(probe);
  await eventually(async () => expect(await probe.info('replication')).toMatch(/master_link_status:up/), { timeoutMs: 15_000 });
  probe.disconnect();
  h = await QueueHarness.start({
    redisUrl: primary.url,
    docs: [
      taskQueueDoc('durable', { durability: 'Replicated', replicationTimeout: '2s', selector: { matchLabels: { app: 'nobody' } } }),
      taskQueueDoc('fast', { selector: { matchLabels: { app: 'nobody' } } }),
    ],
  });
});
afterAll(async () => {
  await h?.close();
  await Promise.all([primary?.stop(), replica?.stop()]);
});

describe('durability: Replicated', () => {
  it('confirms an enqueue once the replica has it', async () => {
    const r = await h.post('durable', { n: 1 });
    expect([r.status, r.json.code]).toEqual([202, undefined]);
    // Confirmed means on the replica: read it there, no waiting.
    const onReplica = connectRedis({ url: replica.url, name: 'replica-read' });
    try {
      await waitReady(onReplica);
      const entries = (await onReplica.xrange(testQueueKeys('durable').stream, '-', '+')) as [string, string[]][];
      expect(entries.length).toBe(1);
    } finally {
      onReplica.disconnect();
    }
  });

  it('no replica in time: the producer gets 503 SLUICE_ERR_QUEUE_NOT_REPLICATED, while limits and Async queues go on', async () => {
    const redis = connectRedis({ url: primary.url, name: 'limits', commandTimeoutMs: 200 });
    await waitReady(redis);
    const limiter = createGlobalLimiter(globalRule('durable-side', { requests: 1_000, per: '1h', burst: 1_000 }, 'Closed'), {
      redis, clock: systemClock, logger: silentLogger, registry: new Registry(), sidecarId: 'x', mode: 'strict',
    });
    replica.pause();
    try {
      const waiting = h.post('durable', { n: 2 });
      // While that enqueue waits for a replica, decisions on the shared connection are answered by
      // Redis (Closed would refuse on a timeout) and an Async queue still takes tasks.
      for (let i = 0; i < 20; i++) expect((await limiter.consume('k', systemClock.now())).allowed).toBe(true);
      expect((await h.post('fast', { n: 1 })).status).toBe(202);
      const r = await waiting;
      expect(r.status).toBe(503);
      expect(r.json.code).toBe('SLUICE_ERR_QUEUE_NOT_REPLICATED');
    } finally {
      replica.resume();
      limiter.close();
      redis.disconnect();
    }
    // The replica back: confirmed again.
    await eventually(async () => expect((await h.post('durable', { n: 3 })).status).toBe(202), { timeoutMs: 15_000 });
  });
});
