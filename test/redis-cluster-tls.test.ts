import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePorts } from '../lib/net.ts';
import { startApp } from './helpers/app-server.ts';
import { eventually } from './helpers/eventually.ts';
import { runCommand } from './helpers/run-command.ts';
import { spawnSidecar } from './helpers/sidecar-process.ts';
import { admissionsPerUser, perUserGlobalLimit } from './helpers/global-limit-config.ts';

/**
 * `rediss+cluster://`: a real sluice-proxy process against a Redis Cluster that speaks only TLS
 * (data and cluster bus), trusting the cluster's CA the way a pod would be told to
 * (NODE_EXTRA_CA_CERTS from a mounted bundle). Three masters, no replicas: what is under test is
 * the TLS path through the cluster client, not failover (test/redis-cluster.test.ts has that).
 */
const dir = mkdtempSync(join(tmpdir(), 'sluice-tls-cluster-'));
const ca = join(dir, 'ca.pem');
const key = join(dir, 'key.pem');
const nodes: { port: number; proc: ChildProcess }[] = [];
const stops: (() => unknown)[] = [];

const tlsCli = (port: number, ...args: string[]) =>
  runCommand('redis-cli', ['--tls', '--cacert', ca, '-h', '127.0.0.1', '-p', String(port), ...args], { timeoutMs: 30_000 });

beforeAll(async () => {
  // One self-signed certificate for 127.0.0.1 serves as the servers' certificate and the CA.
  const cert = await runCommand('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', ca, '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
  ], { timeoutMs: 30_000 });
  if (cert.code !== 0) throw new Error(`openssl failed: ${cert.stderr}`);
  // All six ports at once, so no two of them can be the same one handed out twice.
  const ports = await freePorts(6);
  for (let i = 0; i < 3; i++) {
    const [port, bus] = [ports[i] as number, ports[i + 3] as number];
    const nodeDir = join(dir, `node-${i}`);
    const proc = spawn('redis-server', [
      '--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--dir', dir,
      '--tls-cert-file', ca, '--tls-key-file', key, '--tls-ca-cert-file', ca, '--tls-auth-clients', 'no',
      '--tls-cluster', 'yes', '--cluster-enabled', 'yes', '--cluster-port', String(bus),
      '--cluster-config-file', `${nodeDir}-nodes.conf`, '--dbfilename', `node-${i}.rdb`,
      '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--loglevel', 'warning',
    ], { stdio: 'ignore' });
    nodes.push({ port, proc });
  }
  await eventually(async () => {
    for (const n of nodes) expect((await tlsCli(n.port, 'PING')).stdout.trim()).toBe('PONG');
  }, { timeoutMs: 20_000, intervalMs: 100 });
  const create = await runCommand('redis-cli', [
    '--tls', '--cacert', ca, '--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-yes',
  ], { timeoutMs: 60_000 });
  if (create.code !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
  await eventually(async () => {
    for (const n of nodes) expect((await tlsCli(n.port, 'CLUSTER', 'INFO')).stdout).toMatch(/cluster_state:ok/);
  }, { timeoutMs: 30_000, intervalMs: 200 });
}, 120_000);

afterAll(async () => {
  for (const s of stops.reverse()) await Promise.resolve().then(s).catch(() => {});
  await Promise.all(nodes.map(async (n) => {
    if (n.proc.exitCode !== null || n.proc.signalCode !== null) return;
    const exited = new Promise((resolve) => n.proc.once('exit', resolve));
    n.proc.kill('SIGKILL');
    await exited;
  }));
  rmSync(dir, { recursive: true, force: true });
});

describe('Redis Cluster over TLS', () => {
  it('the nodes refuse plaintext: only a TLS client gets an answer', async () => {
    const plain = await runCommand('redis-cli', ['-h', '127.0.0.1', '-p', String(nodes[0]!.port), 'PING'], { timeoutMs: 10_000 });
    expect(plain.stdout.trim()).not.toBe('PONG');
    expect((await tlsCli(nodes[0]!.port, 'PING')).stdout.trim()).toBe('PONG');
  });

  it('a sluice-proxy process started with --redis rediss+cluster:// enforces a Global limit across the masters', async () => {
    const config = join(dir, 'sluice.yaml');
    writeFileSync(config, perUserGlobalLimit(10));
    const app = await startApp();
    stops.push(() => app.close());
    const url = `rediss+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`;
    const sidecar = await spawnSidecar(['--config', config, '--labels', 'app=api', '--app-http', app.hostPort, '--redis', url, '--id', 'tls-cluster-sidecar', '--log-level', 'warn'], {
      env: { NODE_EXTRA_CA_CERTS: ca },
    });
    stops.push(async () => {
      sidecar.kill('SIGTERM');
      await sidecar.exited;
    });
    // Ready does not wait for Redis (a Global limit answers by failureMode without it): the
    // connection's own gauge says when the cluster is reached.
    await eventually(async () => {
      expect(await (await fetch(`${sidecar.admin}/metrics`)).text()).toMatch(/sluice_redis_up\{redis="global-limits"\} 1/);
    }, { timeoutMs: 30_000, intervalMs: 100 });
    const users = Array.from({ length: 6 }, (_, i) => `user-${i}`);
    const admitted = await admissionsPerUser(sidecar.http, users, 15, (status) => expect([200, 429]).toContain(status));
    // Closed: had the sidecar not reached Redis over TLS, every request would be a 429.
    for (const n of admitted) expect(n).toBeLessThanOrEqual(10);
    expect(admitted.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(6 * 10 - 10);
    // The counts live in the cluster: the buckets are there, spread over its masters.
    const keys = await Promise.all(nodes.map(async (n) => Number((await tlsCli(n.port, 'DBSIZE')).stdout.trim())));
    expect(keys.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(users.length);
  }, 60_000);

  it('verifies the cluster\'s certificate: without its CA the sidecar reports Redis down, stays up and refuses (failureMode Closed)', async () => {
    const config = join(dir, 'sluice-untrusted.yaml');
    writeFileSync(config, perUserGlobalLimit(10));
    const app = await startApp();
    stops.push(() => app.close());
    const url = `rediss+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`;
    const sidecar = await spawnSidecar(['--config', config, '--labels', 'app=api', '--app-http', app.hostPort, '--redis', url, '--id', 'untrusting-sidecar', '--log-level', 'warn'], { waitReady: false });
    stops.push(async () => {
      sidecar.kill('SIGTERM');
      await sidecar.exited;
    });
    // Given time to try (and fail) the handshake a few times: it stays up and reports Redis down.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(sidecar.proc.exitCode).toBeNull();
    expect(await (await fetch(`${sidecar.admin}/metrics`)).text()).toMatch(/sluice_redis_up\{redis="global-limits"\} 0/);
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${sidecar.http}/x`, { headers: { 'x-user': 'mallory' } });
      await res.arrayBuffer();
      expect(res.status).toBe(429);
    }
  }, 60_000);
});
