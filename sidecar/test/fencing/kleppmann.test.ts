/**
 * The scenario Kleppmann uses against RedLock ("How to do distributed locking", 2016), end to end
 * with real processes: leader A's pod — app and sidecar — pauses past its lease; B is elected with
 * a higher token and writes; A resumes and writes with its old token. The protected service's
 * sidecars (a FencingPolicy) refuse every write of A after B's first, so the resource never sees
 * them — also when A writes to a replica of the protected service that has not seen B's token.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type TestApp } from '../../../test/helpers/app-server.ts';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { startRedisServers, type RedisServer } from '../../../test/helpers/redis-server.ts';
import { spawnSidecar, type SidecarProcess } from '../../../test/helpers/sidecar-process.ts';

const WRITER = new URL('./writer-app.ts', import.meta.url).pathname;
const TTL_MS = 1_500;

const CONFIG = `apiVersion: sluice.dev/v1alpha1
kind: LeaderElection
metadata: {name: push-broadcaster, namespace: shop}
spec:
  selector: {matchLabels: {app: push-hub}}
  ttl: ${TTL_MS}ms
  renewEvery: 500ms
---
apiVersion: sluice.dev/v1alpha1
kind: FencingPolicy
metadata: {name: ledger, namespace: shop}
spec:
  selector: {matchLabels: {app: ledger}}
  rules:
    - name: writes
      match: {protocol: http, methods: [POST], paths: [{type: Prefix, value: /ledger}]}
      resource: {kind: LeaderElection, name: push-broadcaster}
      token: {source: Header, name: sluice-fencing-token}
`;

interface Entry { writer: string; token: number; seq: number }
interface Pod { name: string; sidecar: SidecarProcess; app: ChildProcess; appUrl: string }

let nodes: RedisServer[];
let configPath: string;
const cleanup: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  nodes = await startRedisServers(3);
  configPath = join(mkdtempSync(join(tmpdir(), 'sluice-fence-')), 'sluice.yaml');
  writeFileSync(configPath, CONFIG);
});
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});
afterAll(async () => {
  await Promise.all((nodes ?? []).map((n) => n.stop()));
});

const lockNodes = () => nodes.map((n) => n.url).join(',');

/** The protected service: `replicas` apps appending to one shared log, each behind its own sidecar process. */
async function protectedService(replicas: number): Promise<{ log: Entry[]; urls: string[] }> {
  const log: Entry[] = [];
  const urls: string[] = [];
  for (let i = 0; i < replicas; i++) {
    const app: TestApp = await startApp((_req, _res, body) => void log.push(JSON.parse(body) as Entry));
    cleanup.push(() => app.close());
    const sidecar = await spawnSidecar(['--config', configPath, '--app-http', app.hostPort, '--labels', 'app=ledger', '--lock-nodes', lockNodes(), '--log-level', 'error']);
    cleanup.push(async () => {
      sidecar.kill('SIGKILL');
      await sidecar.exited;
    });
    urls.push(sidecar.http);
  }
  return { log, urls };
}

/** A leader pod: its sidecar process and its app process, writing to `target`. */
async function leaderPod(name: string, target: string): Promise<Pod> {
  const sidecar = await spawnSidecar(['--config', configPath, '--labels', 'app=push-hub', '--lock-nodes', lockNodes(), '--id', name, '--log-level', 'error']);
  const app = spawn(process.execPath, [WRITER, sidecar.localApi, 'push-broadcaster', target, name], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pod: Pod = { name, sidecar, app, appUrl: '' };
  cleanup.push(async () => {
    for (const p of [app, sidecar.proc]) {
      if (p.exitCode !== null || p.signalCode !== null) continue;
      const exited = new Promise((resolve) => p.once('exit', resolve));
      p.kill('SIGCONT');
      p.kill('SIGKILL');
      await exited;
    }
  });
  const port = await new Promise<number>((resolve, reject) => {
    app.stdout!.once('data', (b: Buffer) => resolve((JSON.parse(b.toString()) as { port: number }).port));
    app.once('exit', (code) => reject(new Error(`writer app exited with ${code}`)));
  });
  pod.appUrl = `http://127.0.0.1:${port}`;
  return pod;
}

async function writesOf(pod: Pod): Promise<{ token?: number; writes: { seq: number; token: number; status: number }[] }> {
  return (await (await fetch(`${pod.appUrl}/log`, { signal: AbortSignal.timeout(2_000) })).json()) as never;
}

function pause(pod: Pod, signal: 'SIGSTOP' | 'SIGCONT'): void {
  pod.app.kill(signal);
  pod.sidecar.proc.kill(signal);
}

describe("Kleppmann's paused leader, fenced at the protected service", () => {
  it.each([
    ['one replica of the protected service', 1],
    ['two replicas, A writing to the one that has not seen B\'s token', 2],
  ])('%s', async (_title, replicas) => {
    const ledger = await protectedService(replicas);
    const a = await leaderPod('pod-a', ledger.urls[0]!);
    // A leads (alone) and writes a while.
    const tokenA = await eventually(async () => {
      const w = await writesOf(a);
      expect(w.writes.filter((x) => x.status === 200).length).toBeGreaterThan(3);
      return w.token as number;
    }, { timeoutMs: 30_000 });
    const b = await leaderPod('pod-b', ledger.urls[replicas - 1]!);

    // A's whole pod stops (a long GC pause, a frozen VM) with its lease still believed valid.
    pause(a, 'SIGSTOP');
    // B is elected once A's lease has run out, with a higher token, and writes.
    const tokenB = await eventually(async () => {
      const w = await writesOf(b);
      expect(w.writes.filter((x) => x.status === 200).length).toBeGreaterThan(3);
      return w.token as number;
    }, { timeoutMs: TTL_MS + 30_000 });
    expect(tokenB).toBeGreaterThan(tokenA);

    // A resumes: its app still believes it leads and writes with its old token.
    const beforeResume = (await writesOf(b)).writes.length;
    pause(a, 'SIGCONT');
    const refused = await eventually(async () => {
      const w = await writesOf(a);
      const late = w.writes.filter((x) => x.status === 409);
      expect(late.length).toBeGreaterThan(0);
      return late;
    }, { timeoutMs: 30_000 });
    expect(refused.every((x) => x.token === tokenA)).toBe(true);
    await sleep(300);
    expect((await writesOf(b)).writes.length).toBeGreaterThan(beforeResume); // B kept writing meanwhile

    // The resource saw none of A's writes after B's first.
    const firstOfB = ledger.log.findIndex((e) => e.writer === 'pod-b');
    expect(firstOfB).toBeGreaterThan(0);
    expect(ledger.log.slice(0, firstOfB).every((e) => e.writer === 'pod-a' && e.token === tokenA)).toBe(true);
    expect(ledger.log.slice(firstOfB).filter((e) => e.writer === 'pod-a')).toEqual([]);
    expect(ledger.log.slice(firstOfB).every((e) => e.token === tokenB)).toBe(true);
    // Every one of A's writes after the pause was answered 409, none reached the app.
    const aAccepted = ledger.log.filter((e) => e.writer === 'pod-a').length;
    expect((await writesOf(a)).writes.filter((x) => x.status === 200).length).toBe(aAccepted);
  }, 120_000);
});
