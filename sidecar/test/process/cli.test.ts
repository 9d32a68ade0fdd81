import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type TestApp } from '../../../test/helpers/app-server.ts';
import { sleep } from '../../../test/helpers/eventually.ts';
import { spawnSidecar } from '../../../test/helpers/sidecar-process.ts';

const BIN = fileURLToPath(new URL('../../bin/sluice-proxy.ts', import.meta.url));
const EXAMPLES = fileURLToPath(new URL('../../../examples/policies.yaml', import.meta.url));

let app: TestApp;
beforeAll(async () => {
  app = await startApp(async (req, res) => {
    if (req.url === '/slow') {
      await sleep(800);
      res.end('slow done');
      return true;
    }
    return false;
  });
});
afterAll(() => app.close());

describe('sluice-proxy, the command', () => {
  it('prints usage with --help and refuses unknown flags with exit code 2', () => {
    const help = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--app-http');
    const bad = spawnSync(process.execPath, [BIN, '--config', 'x.yaml', '--no-such-flag'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/no-such-flag/);
    const none = spawnSync(process.execPath, [BIN], { encoding: 'utf8' });
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/--config .* or --operator/);
  });

  it('refuses to start on an invalid config, saying which field is wrong', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-'));
    writeFileSync(join(dir, 'bad.yaml'), 'apiVersion: sluice.dev/v1alpha1\nkind: RateLimitPolicy\nmetadata: {name: x}\nspec: {selector: {}, rules: [{name: a, limit: {requests: 0, per: 1s}}]}\n');
    const r = spawnSync(process.execPath, [BIN, '--config', join(dir, 'bad.yaml'), '--admin', '127.0.0.1:0', '--local-api', '127.0.0.1:0'], { encoding: 'utf8', timeout: 15_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/spec\.rules\[0\]\.limit\.requests: must be at least 1/);
  });

  it('reads flags from SLUICE_* environment variables', async () => {
    const sp = await spawnSidecar(['--config', EXAMPLES], { env: { SLUICE_APP_HTTP: app.hostPort, SLUICE_LABELS: 'app=user-service' } });
    try {
      const res = await fetch(`${sp.http}/hello`);
      expect(await res.text()).toBe('ok /hello');
    } finally {
      sp.kill('SIGKILL');
    }
  });

  it('loads examples/policies.yaml and enforces what its comments say; unsupported parts are reported, not silent', async () => {
    const sp = await spawnSidecar(['--config', EXAMPLES, '--app-http', app.hostPort, '--labels', 'app=user-service']);
    try {
      // per-user: 100 req/s per x-user-id, bursts up to 200 (GET/POST under /api/).
      const started = performance.now();
      const burst = await Promise.all(Array.from({ length: 230 }, () => fetch(`${sp.http}/api/users/1`, { headers: { 'x-user-id': 'u1' } }).then(async (r) => { await r.arrayBuffer(); return r.status; })));
      const refilled = Math.ceil((100 * (performance.now() - started)) / 1000);
      const ok = burst.filter((s) => s === 200).length;
      expect(ok).toBeGreaterThanOrEqual(200);
      expect(ok).toBeLessThanOrEqual(200 + refilled); // the burst + what refilled while it ran
      expect(burst.filter((s) => s === 429).length).toBe(230 - ok);
      const other = await fetch(`${sp.http}/api/users/1`, { headers: { 'x-user-id': 'u2' } });
      expect(other.status).toBe(200);
      const config = (await (await fetch(`${sp.admin}/config`)).json()) as { rules: { rateLimits: string[]; circuitBreakers: string[] }; warnings: string[] };
      expect(config.rules.rateLimits).toEqual(['shop/user-api/per-user', 'shop/user-api/get-user-rpc', 'shop/user-api/push-sockets']);
      expect(config.rules.circuitBreakers).toEqual(['shop/user-api/backend']);
      expect(config.warnings.join('\n')).toMatch(/get-user-rpc: scope Global needs --redis/);
    } finally {
      sp.kill('SIGKILL');
    }
  });

  it('on SIGTERM stops accepting, finishes in-flight requests within the grace period, and exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-'));
    writeFileSync(join(dir, 'empty.yaml'), '');
    const sp = await spawnSidecar(['--config', join(dir, 'empty.yaml'), '--app-http', app.hostPort, '--shutdown-grace', '5s']);
    const inFlight = fetch(`${sp.http}/slow`).then((r) => r.text());
    await sleep(200);
    sp.kill('SIGTERM');
    expect(await inFlight).toBe('slow done');
    expect((await sp.exited).code).toBe(0);
    await expect(fetch(`${sp.http}/after`)).rejects.toThrow();
    expect(sp.logs()).toMatch(/"msg":"stopped"/);
  });
});
