import * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type TestApp } from '../../../test/helpers/app-server.ts';
import { eventually } from '../../../test/helpers/eventually.ts';
import { startRedisServers, type RedisServer } from '../../../test/helpers/redis-server.ts';
import { startSidecar, type RunningSidecar } from '../../../test/helpers/sidecar.ts';
import { echoClient, startEchoApp, type EchoApp, type Msg } from '../grpc/echo-app.ts';
import { unaryResult } from '../grpc/harness.ts';

// Two replicas of a protected service, each behind its own in-process sidecar, checking fencing
// tokens against 3 real redis-server lock nodes.
const POLICY = `apiVersion: sluice.dev/v1alpha1
kind: FencingPolicy
metadata: {name: ledger, namespace: shop}
spec:
  selector: {matchLabels: {app: ledger}}
  rules:
    - name: writes
      match: {protocol: http, methods: [POST], paths: [{type: Prefix, value: /ledger}]}
      resource: {kind: Lock, name: ledger-writer}
      token: {source: Header, name: sluice-fencing-token}
    - name: imports
      match: {protocol: http, paths: [{type: Prefix, value: /imports}]}
      resource: {kind: Lock, name: importer}
      token: {source: Header, name: x-fence}
      missingToken: Allow
      failureMode: Open
    - name: rpc
      match: {protocol: grpc, grpcMethods: ["test.echo.Echo/Unary"]}
      resource: {kind: Lock, name: rpc-writer}
      token: {source: GrpcMetadata, name: sluice-fencing-token}
`;

let nodes: RedisServer[];
const apps: TestApp[] = [];
const replicas: RunningSidecar[] = [];
let echo: EchoApp;
let grpcSidecar: RunningSidecar;

beforeAll(async () => {
  nodes = await startRedisServers(3);
  for (let i = 0; i < 2; i++) {
    const app = await startApp();
    apps.push(app);
    replicas.push(await startSidecar(POLICY, { appHttp: app.hostPort, labels: { app: 'ledger' }, lockNodes: nodes.map((n) => n.url) }));
  }
  echo = await startEchoApp();
  grpcSidecar = await startSidecar(POLICY, { appGrpc: echo.address, labels: { app: 'ledger' }, lockNodes: nodes.map((n) => n.url) });
  for (const s of [...replicas, grpcSidecar]) await lockNodesReady(s.admin);
}, 60_000);

/** Until the sidecar's connections to all 3 lock nodes are up (a check before that fails closed). */
async function lockNodesReady(admin: string): Promise<void> {
  await eventually(async () => {
    const r = (await (await fetch(`${admin}/readyz`)).json()) as { checks: { name: string; details?: { ready?: number } }[] };
    expect(r.checks.find((c) => c.name === 'lock-nodes')?.details?.ready).toBe(3);
  }, { timeoutMs: 20_000 });
}


afterAll(async () => {
  await Promise.all([...replicas, grpcSidecar].filter(Boolean).map((s) => s.stop(200)));
  await Promise.all(apps.map((a) => a.close()));
  await echo?.close();
  await Promise.all((nodes ?? []).map((n) => n.stop()));
});

let seq = 0;
async function write(replica: number, token: number | string | undefined, path = '/ledger/entries', header = 'sluice-fencing-token') {
  const body = `write-${++seq}`;
  const res = await fetch(`${replicas[replica]!.url}${path}`, {
    method: 'POST', body, headers: token === undefined ? {} : { [header]: String(token) }, signal: AbortSignal.timeout(5_000),
  });
  const text = await res.text();
  const reached = apps[replica]!.received.some((r) => r.body === body);
  return { status: res.status, json: res.headers.get('content-type')?.includes('json') ? (JSON.parse(text) as Record<string, unknown>) : undefined, reached };
}

describe('FencingPolicy at the protected sidecar', () => {
  it('forwards a newer or equal token and refuses an older one with 409, without reaching the app', async () => {
    expect(await write(0, 10)).toMatchObject({ status: 200, reached: true });
    expect(await write(0, 10)).toMatchObject({ status: 200, reached: true });
    expect(await write(0, 12)).toMatchObject({ status: 200, reached: true });
    const stale = await write(0, 11);
    expect(stale).toMatchObject({ status: 409, reached: false });
    expect(stale.json).toMatchObject({
      code: 'SLUICE_ERR_FENCING_TOKEN_STALE', rule: 'shop/ledger/writes',
      resource: { kind: 'Lock', name: 'ledger-writer' }, fencingToken: 11, newestFencingToken: 12,
    });
    // Requests the rule does not match are not checked.
    const get = await fetch(`${replicas[0]!.url}/ledger/entries`, { headers: { 'sluice-fencing-token': '1' } });
    expect(get.status).toBe(200);
  });

  it('a replica that never saw the newest token still refuses an older one: the newest lives on the lock nodes', async () => {
    expect(await write(1, 20)).toMatchObject({ status: 200, reached: true });
    expect(await write(0, 19)).toMatchObject({ status: 409, reached: false });
    expect(await write(0, 20)).toMatchObject({ status: 200, reached: true });
  });

  it('keeps the newest token on every node, so one node coming back empty does not roll it back', async () => {
    expect(await write(0, 30)).toMatchObject({ status: 200 });
    await nodes[0]!.kill();
    await nodes[0]!.restart(); // no persistence: it comes back without the token
    expect(await write(1, 29)).toMatchObject({ status: 409, reached: false });
    expect(await write(1, 31)).toMatchObject({ status: 200, reached: true });
  });

  it('still checks after the nodes forgot the script (SCRIPT FLUSH): it falls back to EVAL', async () => {
    for (const n of nodes) {
      const c = new Redis(n.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
      await c.connect();
      await c.script('FLUSH');
      c.disconnect();
    }
    expect(await write(1, 29)).toMatchObject({ status: 409, reached: false });
    expect(await write(1, 32)).toMatchObject({ status: 200, reached: true });
  });

  it('answers 428 without a token, 400 for a token that is not a number; Allow lets a tokenless request through', async () => {
    const missing = await write(0, undefined);
    expect(missing).toMatchObject({ status: 428, reached: false });
    expect(missing.json?.code).toBe('SLUICE_ERR_FENCING_TOKEN_MISSING');
    for (const bad of ['abc', '-1', '1e3', '99999999999999999']) {
      const r = await write(0, bad);
      expect(r, bad).toMatchObject({ status: 400, reached: false });
      expect(r.json?.code).toBe('SLUICE_ERR_FENCING_TOKEN_MALFORMED');
    }
    expect(await write(0, undefined, '/imports/1', 'x-fence')).toMatchObject({ status: 200, reached: true });
  });

  it('refuses a stale gRPC call with ABORTED before it reaches the app', async () => {
    const client = echoClient(grpcSidecar.sidecar.addresses.grpc ? `127.0.0.1:${grpcSidecar.sidecar.addresses.grpc.port}` : '');
    const call = (token: string | undefined, text: string) => {
      const md = new grpc.Metadata();
      if (token !== undefined) md.set('sluice-fencing-token', token);
      return unaryResult<Msg>((cb) => client.Unary({ text }, md, { deadline: Date.now() + 5_000 }, cb));
    };
    try {
      expect((await call('7', 'a')).code).toBe(grpc.status.OK);
      const stale = await call('6', 'b');
      expect(stale.code).toBe(grpc.status.ABORTED);
      expect(stale.details).toContain('SLUICE_ERR_FENCING_TOKEN_STALE');
      expect((await call(undefined, 'c')).code).toBe(grpc.status.FAILED_PRECONDITION);
      expect((await call('x', 'd')).code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(echo.calls.filter((c) => c.method === 'Unary')).toHaveLength(1);
    } finally {
      client.close();
    }
  });

  it('with no majority of lock nodes: Closed answers 503, Open forwards unchecked; one node down is fine', async () => {
    await nodes[1]!.kill();
    expect(await write(0, 40)).toMatchObject({ status: 200, reached: true });
    await nodes[2]!.kill();
    const closed = await write(0, 41);
    expect(closed).toMatchObject({ status: 503, reached: false });
    expect(closed.json?.code).toBe('SLUICE_ERR_FENCING_UNAVAILABLE');
    expect(await write(0, 5, '/imports/2', 'x-fence')).toMatchObject({ status: 200, reached: true });
    await Promise.all([nodes[1]!.restart(), nodes[2]!.restart()]);
    await eventually(async () => expect((await write(0, 41)).status).toBe(200), { timeoutMs: 15_000 });
    const metrics = await (await fetch(`${replicas[0]!.admin}/metrics`)).text();
    expect(metrics).toMatch(/sluice_fencing_checks_total\{rule="shop\/ledger\/writes",result="stale"\} [1-9]/);
    expect(metrics).toMatch(/sluice_fencing_checks_total\{rule="shop\/ledger\/writes",result="unavailable"\} [1-9]/);
    expect(metrics).toMatch(/sluice_fencing_checks_total\{rule="shop\/ledger\/imports",result="failed_open"\} [1-9]/);
    expect(metrics).toMatch(/sluice_requests_total\{direction="inbound",protocol="http",route="shop\/ledger\/writes",decision="fencing_stale"\} [1-9]/);
  });
});
