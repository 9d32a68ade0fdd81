/**
 * What the sidecar image runs, run here: the sources built as JavaScript by the image's own build
 * script (scripts/build-sidecar.ts), beside a node_modules cut down the way the image's deps stage
 * cuts it (scripts/image-packages.ts sidecar), started with the NODE_OPTIONS the injector gives a
 * sidecar with the default 256Mi limit and with type stripping turned off so that not one .ts
 * module can load — then real HTTP requests and gRPC calls through a limit. The rest of
 * the suite runs the .ts sources; this keeps the build from rotting unseen.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeOptionsFor, v8HeapSettings } from '../../../operator/src/injection/v8-heap.ts';
import { packagesToKeep, type PackageLock } from '../../../scripts/image-packages.ts';
import { startApp, type TestApp } from '../../../test/helpers/app-server.ts';
import { spawnSidecar, type SidecarProcess } from '../../../test/helpers/sidecar-process.ts';
import { echoClient, startEchoApp, type EchoApp, type EchoClient, type Msg } from '../grpc/echo-app.ts';
import { grpc, STATUS, unaryResult } from '../grpc/harness.ts';

const ROOT = resolve(import.meta.dirname, '../../..');

const POLICY = `apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: built, namespace: test}
spec:
  selector: {}
  rules:
    - name: two-a-minute
      match: {protocol: http, paths: [{type: Exact, value: /limited}]}
      limit: {requests: 2, per: 1m}
      scope: Local
    - name: one-call-a-minute
      match: {protocol: grpc, grpcMethods: ["test.echo.Echo/Unary"]}
      limit: {requests: 1, per: 1m}
      scope: Local
`;

/**
 * The image's /app: the build output, and a node_modules as `npm ci --omit=dev` leaves it (a
 * directory per non-dev package; the ones the sidecar keeps copied from this checkout, the others
 * empty) and then pruned by the deps stage's own command.
 */
function buildImageTree(dir: string): { removed: string } {
  execFileSync(process.execPath, [join(ROOT, 'scripts/build-sidecar.ts'), dir], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as PackageLock;
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { imageDependencies: Record<string, string[]> };
  const keep = packagesToKeep(lock, pkg.imageDependencies.sidecar!);
  for (const path of Object.keys(lock.packages)) {
    if (!path.startsWith('node_modules/') || lock.packages[path]!.dev || path.lastIndexOf('/node_modules/') > 0) continue;
    if (keep.has(path)) cpSync(join(ROOT, path), join(dir, path), { recursive: true });
    else {
      mkdirSync(join(dir, path), { recursive: true });
      writeFileSync(join(dir, path, 'package.json'), '{}');
    }
  }
  cpSync(join(ROOT, 'package-lock.json'), join(dir, 'package-lock.json'));
  const removed = execFileSync(process.execPath, [join(ROOT, 'scripts/image-packages.ts'), 'sidecar', dir], { encoding: 'utf8' });
  return { removed };
}

function* walk(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules') continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else yield p;
  }
}

describe('the sidecar as its image runs it (built JavaScript, the image\'s packages)', () => {
  let dir: string;
  let app: TestApp;
  let echo: EchoApp;
  let proxy: SidecarProcess;
  let client: EchoClient;
  let pruned: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-built-'));
    pruned = buildImageTree(dir).removed;
    app = await startApp();
    echo = await startEchoApp();
    writeFileSync(join(dir, 'policy.yaml'), POLICY);
    proxy = await spawnSidecar(['--config', join(dir, 'policy.yaml'), '--app-http', app.hostPort, '--app-grpc', echo.address], {
      bin: 'sidecar/bin/sluice-proxy.js',
      cwd: dir,
      // As the image and the injector run it: production, no compile cache, the heap settings for
      // the default 256Mi limit; and no type stripping, so a .ts import fails.
      env: { NODE_ENV: 'production', NODE_DISABLE_COMPILE_CACHE: '1', NODE_OPTIONS: `${nodeOptionsFor(v8HeapSettings(256 * 2 ** 20))} --no-experimental-strip-types` },
    });
    client = echoClient(`127.0.0.1:${proxy.ports.grpc}`);
  }, 240_000);
  afterAll(async () => {
    client?.close();
    proxy?.kill();
    await proxy?.exited;
    await app?.close();
    await echo?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is built as JavaScript only, with the .proto it reads beside it, and without the Kubernetes client', () => {
    const files = [...walk(dir)].map((f) => f.slice(dir.length + 1));
    expect(files.filter((f) => f.endsWith('.ts'))).toEqual([]);
    expect(files).toContain('sidecar/bin/sluice-proxy.js');
    expect(files.some((f) => f.startsWith('lib/') && f.endsWith('.proto'))).toBe(true);
    expect(existsSync(join(dir, 'node_modules/@kubernetes/client-node'))).toBe(false);
    expect(existsSync(join(dir, 'node_modules/ioredis/package.json'))).toBe(true);
    expect(pruned).toMatch(/@kubernetes\/client-node/);
  });

  it('forwards HTTP requests and answers 429 past the limit', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${proxy.http}/limited`);
      await res.text();
      statuses.push(res.status);
    }
    expect(statuses).toEqual([200, 200, 429]);
    expect(app.received.filter((r) => r.url === '/limited')).toHaveLength(2);
    const other = await fetch(`${proxy.http}/other`);
    expect(await other.text()).toBe('ok /other');
  });

  it('forwards a gRPC call and answers RESOURCE_EXHAUSTED past the limit', async () => {
    const first = await unaryResult<Msg>((cb) => client.Unary({ text: 'built' }, new grpc.Metadata(), {}, cb));
    expect(first.code).toBe(STATUS.OK);
    expect(first.response?.text).toBe('echo: built');
    expect(echo.calls.filter((c) => c.method === 'Unary')).toHaveLength(1);
    const second = await unaryResult<Msg>((cb) => client.Unary({ text: 'again' }, new grpc.Metadata(), {}, cb));
    expect(second.code).toBe(STATUS.RESOURCE_EXHAUSTED);
    expect(echo.calls.filter((c) => c.method === 'Unary')).toHaveLength(1);
  });

  it('serves its metrics (prom-client loads from the pruned tree)', async () => {
    const metrics = await (await fetch(`${proxy.admin}/metrics`)).text();
    expect(metrics).toMatch(/sluice_requests_total\{[^}]*decision="rate_limited"[^}]*\} 1/);
    expect(metrics).toMatch(/nodejs_heap_space_size_total_bytes\{space="new"\}/);
  });
});
