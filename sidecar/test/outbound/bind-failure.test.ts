/**
 * An Upstream whose listen port is taken: a real port held open by another listener. Standalone,
 * the sidecar refuses to start with a config error naming the Upstream, the field and the port;
 * on a reload it keeps the rest of the config, says what is not in place on /config and /readyz,
 * and binds once the port is free and the config is given again. (Operator mode: the ACK names
 * the Upstream and the operator shows it on the Upstream's status, see
 * operator/test/upstream-endpoints.kube.test.ts.)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { canConnect, freePort } from '../../../lib/net.ts';
import { eventually } from '../../../test/helpers/eventually.ts';
import { startSidecar, type RunningSidecar } from '../../../test/helpers/sidecar.ts';
import { upstreamYaml } from './harness.ts';

const BIN = fileURLToPath(new URL('../../bin/sluice-proxy.ts', import.meta.url));

const held: Server[] = [];
let running: RunningSidecar | undefined;

async function holdPort(): Promise<{ port: number; release(): Promise<void> }> {
  const server = createServer((s) => s.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  held.push(server);
  const port = (server.address() as { port: number }).port;
  return { port, release: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

afterEach(async () => {
  await running?.stop(200);
  running = undefined;
  for (const s of held.splice(0)) s.close();
});

describe('an Upstream whose listen port is taken', () => {
  it('standalone: sluice-proxy refuses to start with a config error naming the Upstream, spec.listen and the port', async () => {
    const { port } = await holdPort();
    const dir = mkdtempSync(join(tmpdir(), 'sluice-bind-'));
    const config = join(dir, 'sluice.yaml');
    writeFileSync(config, upstreamYaml('users', 'grpc', `127.0.0.1:${port}`, ['127.0.0.1:9']));
    const proc = spawn(process.execPath, [BIN, '--config', config, '--admin', '127.0.0.1:0', '--local-api', '127.0.0.1:0', '--listen-http', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
    expect(code).toBe(1);
    expect(out).toContain('sidecar failed to start');
    expect(out).toContain(`Upstream test/users: spec.listen: cannot listen on 127.0.0.1:${port}: the port is already in use by another process or listener (EADDRINUSE)`);
  }, 30_000);

  it('standalone reload: the rest of the config applies, /config and /readyz name the Upstream; once the port is free it binds', async () => {
    const free = await freePort();
    const a = upstreamYaml('a', 'http', `127.0.0.1:${free}`, ['127.0.0.1:9']);
    running = await startSidecar(a);
    await running.sidecar.outbound!.settled();
    expect(running.sidecar.outbound!.bindErrors()).toEqual([]);

    const { port, release } = await holdPort();
    const b = upstreamYaml('b', 'http', `127.0.0.1:${port}`, ['127.0.0.1:9']);
    running.writeConfig(`${a}\n---\n${b}`);
    await running.sidecar.reloadConfig();
    await running.sidecar.outbound!.settled();
    const admin = running.admin;
    const view = (await (await fetch(`${admin}/config`)).json()) as { rules: { upstreams: string[] }; notInPlace: string[] };
    expect(view.rules.upstreams).toEqual(['test/a', 'test/b']);
    expect(view.notInPlace).toEqual([`Upstream test/b: spec.listen: cannot listen on 127.0.0.1:${port}: the port is already in use by another process or listener (EADDRINUSE); choose another port or stop what holds it`]);
    const ready = await fetch(`${admin}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toContain('EADDRINUSE');
    // Upstream a still serves.
    expect(await canConnect(free)).toBe(true);

    // The port is freed; the next config given (any change) binds it.
    await release();
    running.writeConfig(`${a}\n---\n${b}\n# port freed\n`);
    await running.sidecar.reloadConfig();
    await running.sidecar.outbound!.settled();
    expect(running.sidecar.outbound!.bindErrors()).toEqual([]);
    await eventually(async () => expect((await fetch(`${admin}/readyz`)).status).toBe(200));
  }, 30_000);
});
