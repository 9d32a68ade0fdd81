import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { echoClient, type EchoClient, type Msg } from './echo-app.ts';
import { grpc, startProxy, STATUS, unaryResult, type ProxyUnderTest } from './harness.ts';

const APP = fileURLToPath(new URL('./echo-app-process.ts', import.meta.url));
const KEEPALIVE = { keepaliveIntervalMs: 200, keepaliveTimeoutMs: 400 };

/** The echo app in a child process (so it can be frozen), resolved once it listens. */
function startAppProcess(): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(process.execPath, [APP], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the app process did not start: ${out}`)), 15_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, port: Number(m[1]) });
      }
    });
    proc.once('exit', (code) => reject(new Error(`the app process exited (${code}): ${out}`)));
  });
}

/**
 * Keepalive PINGs on the connections to the app. Node answers PINGs by itself while its event loop
 * runs, so only a frozen process (SIGSTOP) is an app that truly stops answering: its kernel keeps
 * the TCP connection up, and without keepalive calls on it would wait forever.
 */
describe('keepalive on the connection to the app', () => {
  let app: { proc: ChildProcess; port: number };
  let proxy: ProxyUnderTest;
  let client: EchoClient;
  const unary = (text: string, deadline?: number) =>
    unaryResult<Msg>((cb) => client.Unary({ text }, new grpc.Metadata(), deadline ? { deadline: Date.now() + deadline } : {}, cb));
  const keepaliveDrops = () => proxy.metric('sluice_grpc_proxy_errors_total', { error: 'SLUICE_ERR_GRPC_UPSTREAM_KEEPALIVE' });

  beforeAll(async () => {
    app = await startAppProcess();
    proxy = await startProxy(`127.0.0.1:${app.port}`, '', KEEPALIVE);
    client = echoClient(proxy.address);
  });
  afterAll(async () => {
    client?.close();
    await proxy?.close();
    if (app && app.proc.exitCode === null) {
      app.proc.kill('SIGCONT');
      app.proc.kill('SIGKILL');
    }
  });

  it('keeps an idle connection whose app answers its PINGs', async () => {
    expect((await unary('first')).code).toBe(STATUS.OK);
    await sleep(KEEPALIVE.keepaliveIntervalMs * 5); // several PINGs, all answered
    expect(await keepaliveDrops()).toBe(0);
    expect((await unary('still')).code).toBe(STATUS.OK);
  });

  it('drops the connection of a frozen app (its hung call ends UNAVAILABLE), and dials anew once the app is back', async () => {
    app.proc.kill('SIGSTOP');
    try {
      // A call with no deadline on the frozen app: without keepalive it would never end.
      const hung = unary('into the void');
      await eventually(async () => expect(await keepaliveDrops()).toBe(1), { timeoutMs: 10_000 });
      const r = await hung;
      expect(r.code).toBe(STATUS.UNAVAILABLE);
      expect(r.details).toContain('connection to the app lost: SLUICE_ERR_GRPC_UPSTREAM_KEEPALIVE');
    } finally {
      app.proc.kill('SIGCONT');
    }
    const again = await unary('back', 10_000);
    expect(again.code).toBe(STATUS.OK);
    expect(again.response?.text).toBe('echo: back');
    // The new connection answers its PINGs: it is not dropped in turn.
    await sleep(KEEPALIVE.keepaliveIntervalMs * 5);
    expect(await keepaliveDrops()).toBe(1);
    expect((await unary('steady', 10_000)).code).toBe(STATUS.OK);
  });
});
