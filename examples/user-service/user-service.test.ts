import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../test/helpers/eventually.ts';
import { freePort } from '../../lib/net.ts';
import { retryOnPortClash } from '../../test/helpers/port-retry.ts';
import * as grpc from '@grpc/grpc-js';
import { startUserService, userAdminClient, userServiceClient, type UserServiceClient } from './user-service.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The example end to end, through the real `sluice-proxy` process started from the command line
 * with examples/user-service/sluice.yaml: the `get-user-rpc` limit and the `backend` breaker do
 * what their comments in examples.yaml say.
 */
describe('UserService behind sluice-proxy (examples/user-service)', () => {
  let app: Awaited<ReturnType<typeof startUserService>>;
  let sidecar: ChildProcess;
  let grpcPort: number;
  let adminPort: number;
  let client: UserServiceClient;
  let stderr = '';

  beforeAll(async () => {
    app = await startUserService();
    // A port found free can be taken by another test's process before the sidecar binds it; the
    // sidecar then exits, and the test must not go on to call whoever holds the port.
    await retryOnPortClash(async () => {
      grpcPort = await freePort();
      adminPort = await freePort();
      const localApi = await freePort();
      stderr = '';
      sidecar = spawn(process.execPath, [
        'sidecar/bin/sluice-proxy.ts',
        '--config', 'examples/user-service/sluice.yaml',
        '--labels', 'app=user-service',
        '--app-grpc', `127.0.0.1:${app.port}`,
        '--listen-grpc', `127.0.0.1:${grpcPort}`,
        '--admin', `127.0.0.1:${adminPort}`,
        '--local-api', `127.0.0.1:${localApi}`,
        '--log-level', 'warn',
      ], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
      sidecar.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      // Ready means every listener is bound; alive is checked on each try so an exit ends the wait.
      await eventually(async () => {
        if (sidecar.exitCode !== null) return stderr;
        expect((await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status).toBe(200);
        return undefined;
      }, { timeoutMs: 20_000, intervalMs: 100 }).then((exited) => {
        if (exited !== undefined) throw new Error(`sluice-proxy exited: ${exited}`);
      });
    });
    client = userServiceClient(`127.0.0.1:${grpcPort}`);
  });

  afterAll(async () => {
    client?.close();
    if (sidecar && sidecar.exitCode === null) {
      const exited = new Promise((r) => sidecar.once('exit', r));
      sidecar.kill('SIGTERM');
      await exited;
    }
    await app?.close();
  });

  const getUser = (id: string) => new Promise<grpc.ServiceError | null>((resolve) => client.GetUser({ id }, {}, (err) => resolve(err)));

  it('get-user-rpc: 5000 GetUser calls per minute pass, the rest get RESOURCE_EXHAUSTED with pushback', async () => {
    const counts = new Map<number, number>();
    let pushback: string | undefined;
    let next = 0;
    const worker = async () => {
      while (next < 5_100) {
        next++;
        const err = await getUser(String(next % 100));
        const code = err ? err.code : grpc.status.OK;
        counts.set(code, (counts.get(code) ?? 0) + 1);
        if (err) pushback ??= err.metadata.get('grpc-retry-pushback-ms')[0] as string | undefined;
      }
    };
    await Promise.all(Array.from({ length: 50 }, worker));
    expect(Object.fromEntries(counts)).toEqual({ [grpc.status.OK]: 5_000, [grpc.status.RESOURCE_EXHAUSTED]: 100 });
    expect(Number(pushback)).toBeGreaterThan(0);
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    expect(metrics).toContain('sluice_grpc_requests_total{method="example.UserService/GetUser",code="RESOURCE_EXHAUSTED"} 100');
    expect(metrics).toContain('sluice_grpc_requests_total{method="example.UserService/GetUser",code="OK"} 5000');
  });

  it('backend: five UNAVAILABLE answers in a row open the circuit for every UserService method', async () => {
    const admin = userAdminClient(`127.0.0.1:${app.port}`);
    await new Promise((resolve, reject) => admin.SetBehavior({ failCode: grpc.status.UNAVAILABLE, delayMs: 0 }, (err) => (err ? reject(err) : resolve(null))));
    admin.close();
    const list = () => new Promise<grpc.StatusObject>((resolve) => {
      const s = client.ListUsers({ limit: 3 });
      s.on('data', () => {});
      s.on('error', () => {});
      s.on('status', resolve);
    });
    for (let i = 0; i < 5; i++) {
      const st = await list();
      expect(st.code).toBe(grpc.status.UNAVAILABLE);
      expect(st.details).toContain('told to fail');
    }
    const open = await list();
    expect(open.code).toBe(grpc.status.UNAVAILABLE);
    expect(open.details).toContain('SLUICE_ERR_CIRCUIT_OPEN');
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    expect(metrics).toContain('sluice_circuit_state{rule="shop/user-api/backend"} 1');
  });
});
