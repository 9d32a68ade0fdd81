import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, waitReady } from '../lib/redis/connection.ts';
import { runFailoverLoad } from './helpers/failover-load.ts';
import { RedisSentinelGroup, SENTINEL_DOWN_AFTER_MS } from './helpers/redis-sentinel.ts';

/**
 * Sentinel on real processes: a primary, a replica and three sentinels (quorum 2), the sentinels
 * with a password of their own. The sidecar's connection finds the primary through them and
 * follows a failover. One group for the file; the last test kills the primary.
 */
let group: RedisSentinelGroup;

beforeAll(async () => {
  group = await RedisSentinelGroup.start({ sentinelPassword: 'sentinel-only-secret' });
}, 60_000);
afterAll(async () => {
  await group?.stop();
});

describe('Redis Sentinel', () => {
  it('finds the primary through the sentinels, with the sentinels’ own credentials', async () => {
    const client = connectRedis({ url: group.url({ sentinelPassword: true }), name: 'sentinel-test', commandTimeoutMs: 1_000 });
    try {
      await waitReady(client, 10_000);
      await client.set('sentinel-probe', 'x');
      expect(await client.call('INFO', 'server').then((s) => /tcp_port:(\d+)/.exec(String(s))?.[1])).toBe(String(group.primary.port));
    } finally {
      client.disconnect();
    }
    // The same credentials can come from apart from the URL (e.g. a Secret of their own).
    const apart = connectRedis({ url: group.url(), name: 'sentinel-apart', sentinelPassword: 'sentinel-only-secret' });
    try {
      await waitReady(apart, 10_000);
      expect(await apart.get('sentinel-probe')).toBe('x');
    } finally {
      apart.disconnect();
    }
    // Without them the sentinels refuse, and the client never becomes ready.
    const refused = connectRedis({ url: group.url(), name: 'sentinel-no-auth' });
    try {
      await expect(waitReady(refused, 1_500)).rejects.toMatchObject({ code: 'SLUICE_ERR_REDIS_UNAVAILABLE' });
    } finally {
      refused.disconnect();
    }
  });

  it('the primary killed under load: limits follow failureMode then recover, consumers resume, no Replicated task is lost', async () => {
    const r = await runFailoverLoad({
      url: group.url({ sentinelPassword: true }),
      replicatedQueue: 'sen-replicated',
      asyncQueue: 'sen-async',
      rule: 'sen-rule',
      replicatedTarget: 4_000,
      kill: () => group.killPrimaryAndWaitForFailover(),
    });
    console.log('sentinel failover:', JSON.stringify({ ...r, asyncLostConfirmedBeforeKillMs: r.asyncLostConfirmedBeforeKillMs.slice(0, 20) }));
    expect(r.recovered).toBe(true);
    expect(r.sawRedisDown).toBe(true);
    expect(r.fallbacks).toBeGreaterThan(0);
    expect(r.replicatedConfirmed).toBeGreaterThanOrEqual(4_000);
    expect(r.replicatedLost).toBe(0);
    // Async: whatever was lost had been confirmed just before the kill — the replication lag
    // (sub-millisecond on loopback) plus the time the dead primary went on accepting writes
    // unnoticed (nothing: it was killed). Generous bound: within the detection window.
    for (const ms of r.asyncLostConfirmedBeforeKillMs) expect(ms).toBeLessThanOrEqual(SENTINEL_DOWN_AFTER_MS);
  }, 120_000);
});
