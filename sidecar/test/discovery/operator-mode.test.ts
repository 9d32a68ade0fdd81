/**
 * The sidecar in operator mode before it has heard from an operator: it enforces nothing new (the
 * empty plan), /readyz says the config is still waiting, and it keeps retrying.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { eventually } from '../../../test/helpers/eventually.ts';
import { Sidecar } from '../../src/sidecar.ts';

const dir = mkdtempSync(join(tmpdir(), 'sluice-opmode-'));
const tokenFile = join(dir, 'token');
writeFileSync(tokenFile, 'not-checked-because-nobody-answers');
let sidecar: Sidecar | undefined;

afterAll(async () => {
  await sidecar?.stop(100);
});

it('waits for its first snapshot: empty plan, /readyz 503 "config waiting", retrying with backoff', async () => {
  sidecar = new Sidecar({
    operator: '127.0.0.1:1', podName: 'web-1', podNamespace: 'shop', tokenFile,
    listenHttp: '127.0.0.1:0', listenGrpc: '127.0.0.1:0', admin: '127.0.0.1:0', localApi: '127.0.0.1:0',
    id: 'opmode', shutdownGraceMs: 100, logLevel: 'silent',
  });
  const a = await sidecar.start();
  expect(sidecar.store.current.rateLimits).toEqual([]);
  const res = await fetch(`http://127.0.0.1:${a.admin!.port}/readyz`);
  expect(res.status).toBe(503);
  const body = (await res.json()) as { config: string; checks: { name: string; details: { connected: boolean } }[] };
  expect(body.config).toBe('waiting');
  expect(body.checks.find((c) => c.name === 'operator')?.details.connected).toBe(false);
  await eventually(() => expect(sidecar!.discovery!.reconnects).toBeGreaterThanOrEqual(2), { timeoutMs: 10_000 });
  expect(sidecar.discovery!.lastError).toMatch(/UNAVAILABLE/);
});
