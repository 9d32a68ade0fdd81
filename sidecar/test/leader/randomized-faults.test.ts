import { afterAll, describe, expect, it } from 'vitest';
import { startRedisServers, type RedisServer } from '../../../test/helpers/redis-server.ts';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { SidecarProcess, electionConfig } from './sidecar-process.ts';
import { OverlapChecker, watchLeadership } from './overlap-checker.ts';

// A run of random faults against 3 sluice-proxy processes and 3 lock nodes, within the documented
// assumptions: lock nodes keep their data (appendonly, fsync always) and a killed node comes back
// only after a ttl; clocks are the machine's own. Every announced leadership is checked for overlap.
// Random faults alone may never touch the leader, so every fourth fault crashes whoever leads:
// the run is sure to go through failovers, and the count of terms can be checked against them.
const TTL_MS = 1_000;
const RENEW_MS = 300;
const RUN_MS = 20_000;
const abort = new AbortController();
const sidecars: (SidecarProcess | undefined)[] = [];
let nodes: RedisServer[] = [];

afterAll(async () => {
  abort.abort();
  await Promise.all(sidecars.map((s) => s?.stop()));
  await Promise.all(nodes.map((n) => n.stop()));
});

describe('randomised faults', () => {
  it('never has two leaders with overlapping validity, and tokens strictly increase', async () => {
    nodes = await startRedisServers(3, { appendonly: true });
    const config = electionConfig(`${TTL_MS}ms`, `${RENEW_MS}ms`);
    const checker = new OverlapChecker();
    let generation = 0;
    const launch = async (slot: number) => {
      const s = await SidecarProcess.start({ id: `s${slot}-${generation++}`, config, lockNodes: nodes.map((n) => n.url) });
      sidecars[slot] = s;
      void watchLeadership(s.localApi, 'push-broadcaster', (st) => checker.record(s.id, st), abort.signal);
    };
    await Promise.all([0, 1, 2].map(launch));

    const rand = (n: number) => Math.floor(Math.random() * n);
    const nodeBackAt: number[] = [0, 0, 0];
    const faults: string[] = [];
    let leaderCrashes = 0;
    const restartNodes = async (all: boolean) => {
      for (let i = 0; i < 3; i++) {
        if (nodeBackAt[i] !== 0 && (all || Date.now() >= (nodeBackAt[i] as number))) {
          await nodes[i]!.restart();
          nodeBackAt[i] = 0;
        }
      }
    };
    const end = Date.now() + RUN_MS;
    for (let round = 1; Date.now() < end; round++) {
      if (round % 4 === 0) {
        // With every lock node up, someone must lead within a few ttl: find them and crash them.
        await restartNodes(true);
        const slot = await eventually(async () => {
          const states = await Promise.all(sidecars.map((s) => (s as SidecarProcess).leadership()));
          const i = states.findIndex((st) => st.leader);
          if (i < 0) throw new Error(`no leader among ${sidecars.map((s) => s?.id).join(', ')}`);
          return i;
        }, { timeoutMs: 30_000, intervalMs: 50 }); // a relaunched sidecar must start before it can lead
        const leader = sidecars[slot] as SidecarProcess;
        faults.push(`kill -9 leader ${leader.id}`);
        leaderCrashes++;
        await leader.stop();
        await launch(slot);
        continue;
      }
      const slot = rand(3);
      const s = sidecars[slot] as SidecarProcess;
      switch (rand(6)) {
        case 0: // crash a sidecar, start a new one in its place
          faults.push(`kill -9 ${s.id}`);
          await s.stop();
          await launch(slot);
          break;
        case 1: // pause a sidecar for up to 2 ttl
          faults.push(`SIGSTOP ${s.id}`);
          s.signal('SIGSTOP');
          await sleep(rand(2 * TTL_MS));
          s.signal('SIGCONT');
          break;
        case 2: // graceful stop and replacement
          faults.push(`SIGTERM ${s.id}`);
          s.signal('SIGTERM');
          await s.exited;
          await launch(slot);
          break;
        case 3: { // kill a lock node (it comes back after a ttl, with its data)
          const i = rand(3);
          if (nodeBackAt[i] !== 0) break;
          faults.push(`kill -9 node ${i}`);
          await nodes[i]!.kill();
          nodeBackAt[i] = Date.now() + TTL_MS + rand(TTL_MS);
          break;
        }
        case 4: { // pause a lock node
          const i = rand(3);
          faults.push(`SIGSTOP node ${i}`);
          nodes[i]!.pause();
          await sleep(rand(TTL_MS));
          nodes[i]!.resume();
          break;
        }
        default:
          await sleep(rand(500));
      }
      await restartNodes(false);
      await sleep(100 + rand(400));
    }
    await restartNodes(true);
    await sleep(2 * TTL_MS);

    const terms = checker.all;
    expect(checker.violations(), `faults: ${faults.join(', ')}`).toEqual([]);
    // Each crashed leader's term was followed by another's: the run did exercise failover.
    expect(leaderCrashes).toBeGreaterThanOrEqual(2);
    expect(terms.length, `faults: ${faults.join(', ')}`).toBeGreaterThan(leaderCrashes);
  }, 60_000);
});
