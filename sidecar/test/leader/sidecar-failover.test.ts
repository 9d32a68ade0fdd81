import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServers, type RedisServer } from '../../../test/helpers/redis-server.ts';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { SidecarProcess, electionConfig } from './sidecar-process.ts';

// Real sluice-proxy processes in standalone mode electing a leader over 3 real lock nodes.
const TTL_MS = 1_500;
const RENEW_MS = 500;
let nodes: RedisServer[];
let config: string;
const running: SidecarProcess[] = [];

beforeAll(async () => {
  nodes = await startRedisServers(3);
  config = electionConfig(`${TTL_MS}ms`, `${RENEW_MS}ms`);
});
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});

async function pair(tag: string): Promise<{ leader: SidecarProcess; standby: SidecarProcess }> {
  const [a, b] = await Promise.all(['a', 'b'].map((id) => SidecarProcess.start({ id: `${tag}-${id}`, config, lockNodes: nodes.map((n) => n.url) })));
  running.push(a!, b!);
  const leader = await eventually(async () => {
    const [sa, sb] = await Promise.all([a!.leadership(), b!.leadership()]);
    expect(sa.leader !== sb.leader).toBe(true);
    return sa.leader ? a! : b!;
  }, { timeoutMs: 30_000 });
  return { leader, standby: leader === a ? b! : a! };
}

describe('LeaderElection between sluice-proxy processes', () => {
  it('SIGTERM the leader → it releases, and the standby leads within 1 s with a higher token', async () => {
    const { leader, standby } = await pair('term');
    const before = (await leader.leadership()).fencingToken as number;
    await eventually(async () => expect((await standby.leadership()).holder).toBe(leader.id));
    leader.signal('SIGTERM');
    const after = await eventually(async () => {
      const s = await standby.leadership();
      expect(s.leader).toBe(true);
      return s;
    }, { timeoutMs: 1_000, intervalMs: 10 });
    expect(after.fencingToken).toBeGreaterThan(before);
    expect(await leader.exited).toBe(0);
  });

  it('SIGSTOP the leader past its ttl → the standby leads; after SIGCONT the old one says not-leader at once', async () => {
    const { leader, standby } = await pair('stop');
    const before = (await leader.leadership()).fencingToken as number;
    leader.signal('SIGSTOP');
    const taken = await eventually(async () => {
      const s = await standby.leadership();
      expect(s.leader).toBe(true);
      return s;
    }, { timeoutMs: TTL_MS + RENEW_MS + 2_000 });
    expect(taken.fencingToken).toBeGreaterThan(before);
    leader.signal('SIGCONT');
    // Its first answer after waking, before any renewal could have told it anything.
    const woke = await leader.leadership();
    expect(woke.leader).toBe(false);
    await sleep(RENEW_MS * 2);
    expect(await leader.leadership()).toMatchObject({ leader: false, holder: standby.id });
    expect(await standby.leadership()).toMatchObject({ leader: true, fencingToken: taken.fencingToken });
  });

  it('kill -9 the leader → the standby leads within ttl + renewEvery', async () => {
    const { leader, standby } = await pair('kill');
    const before = (await leader.leadership()).fencingToken as number;
    leader.signal('SIGKILL');
    const after = await eventually(async () => {
      const s = await standby.leadership();
      expect(s.leader).toBe(true);
      return s;
    }, { timeoutMs: TTL_MS + RENEW_MS + 500, intervalMs: 10 });
    expect(after.fencingToken).toBeGreaterThan(before);
  });
});

describe('app locks on the local API', () => {
  it('acquire, conflict, wait, extend, release — with fencing tokens and stable error codes', async () => {
    const { leader: a, standby: b } = await pair('locks');
    const path = '/v1/locks/orders%2F42';
    const got = await a.request('POST', path, { ttl: '5s' });
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ resource: 'orders/42', ttlMs: 5_000 });
    const lockId = got.body.lockId as string;

    const busy = await b.request('POST', path, { ttl: 5_000 });
    expect(busy).toMatchObject({ status: 409, body: { code: 'SLUICE_ERR_LOCK_NOT_ACQUIRED', holder: a.id } });

    // b waits; a releases meanwhile; b gets it with a larger token.
    const waiting = b.request('POST', path, { ttl: '5s', wait: '3s' });
    await sleep(100);
    expect(await a.request('POST', `${path}/extend`, { lockId, ttl: '6s' })).toMatchObject({ status: 200, body: { ttlMs: 6_000 } });
    expect(await a.request('DELETE', `${path}?lockId=${encodeURIComponent(lockId)}`)).toMatchObject({ status: 200 });
    const second = await waiting;
    expect(second.status).toBe(200);
    expect(second.body.fencingToken).toBeGreaterThan(got.body.fencingToken as number);

    expect(await a.request('POST', `${path}/extend`, { lockId })).toMatchObject({ status: 409, body: { code: 'SLUICE_ERR_LOCK_NOT_HELD' } });
    expect(await b.request('POST', `${path}/release`, { lockId: second.body.lockId })).toMatchObject({ status: 200 });
    expect(await a.request('POST', path, { ttl: 'soon' })).toMatchObject({ status: 400, body: { code: 'SLUICE_ERR_LOCK_BAD_REQUEST' } });
    expect(await a.request('GET', '/v1/leadership/nope')).toMatchObject({ status: 404, body: { code: 'SLUICE_ERR_ELECTION_NOT_FOUND' } });
  });
});
