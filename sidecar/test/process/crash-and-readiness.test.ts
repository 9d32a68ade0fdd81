import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetch } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../../lib/net.ts';
import { sleep } from '../../../test/helpers/eventually.ts';
import { spawnSidecar, type SidecarProcess } from '../../../test/helpers/sidecar-process.ts';
import { startSidecar, type RunningSidecar } from '../../../test/helpers/sidecar.ts';

const dir = mkdtempSync(join(tmpdir(), 'sluice-crash-'));
const config = join(dir, 'sluice.yaml');
writeFileSync(config, '');
// Loaded into the real sluice-proxy process: SIGUSR2 makes a bug throw on the event loop, the
// way a defect in a request handler would, after the sidecar installed its handlers.
const fault = join(dir, 'fault.mjs');
writeFileSync(fault, "process.on('SIGUSR2', () => setImmediate(() => { throw new Error('injected fault'); }));\n");

let proc: SidecarProcess | undefined;
let sc: RunningSidecar | undefined;
afterEach(async () => {
  if (proc && proc.proc.exitCode === null && proc.proc.signalCode === null) proc.kill('SIGKILL');
  proc = undefined;
  await sc?.stop(100);
  sc = undefined;
});

describe('a broken sidecar exits; readiness depends only on what is used', () => {
  it('an uncaught exception is logged and the process exits non-zero (the kubelet restarts it)', async () => {
    proc = await spawnSidecar(['--config', config, '--log-level', 'error'], { env: { NODE_OPTIONS: `--import=${fault}` } });
    expect((await fetch(`${proc.admin}/healthz`)).status).toBe(200);
    proc.kill('SIGUSR2');
    const outcome = await Promise.race([proc.exited, sleep(15_000).then(() => 'still running' as const)]);
    expect(outcome).not.toBe('still running');
    expect((outcome as { code: number | null }).code).not.toBe(0);
    expect((outcome as { code: number | null }).code).not.toBeNull();
    expect(proc.logs()).toMatch(/uncaught exception/);
    expect(proc.logs()).toMatch(/injected fault/);
  }, 60_000);

  it('/readyz is ready with --redis unreachable when no configured feature uses Redis', async () => {
    const nobody = await freePort();
    sc = await startSidecar('', { redis: `redis://127.0.0.1:${nobody}` });
    const res = await fetch(`${sc.admin}/readyz`);
    const body = (await res.json()) as { checks: { name: string; ok: boolean }[] };
    expect(res.status, JSON.stringify(body)).toBe(200);
  });

  it('/readyz still waits for Redis when a TaskQueue is configured', async () => {
    const nobody = await freePort();
    sc = await startSidecar(`
apiVersion: sluice.dev/v1alpha1
kind: TaskQueue
metadata: {name: orders, namespace: shop}
spec:
  selector: {}
  stream: orders
  consumerGroup: workers
  delivery: {protocol: http, path: /tasks, timeout: 5s}
`, { redis: `redis://127.0.0.1:${nobody}`, appHttp: '127.0.0.1:1' });
    const res = await fetch(`${sc.admin}/readyz`);
    expect(res.status).toBe(503);
  });
});
