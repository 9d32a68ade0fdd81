import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import { canConnect, freePort, redisAnswers } from '../../lib/net.ts';
import type { Child, Processes } from './processes.ts';

const path = (p: string) => fileURLToPath(new URL(p, import.meta.url));
export const ROOT = path('../../');
export const CONFIG = path('./sluice.yaml');
const SLUICE_PROXY = path('../../sidecar/bin/sluice-proxy.ts');
const NODE = process.execPath;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, child: Child, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!child.running()) throw new Error(`${what} exited:\n${child.tail()}`);
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${what} did not come up within ${timeoutMs / 1000}s:\n${child.tail()}`);
    await sleep(50);
  }
}

export interface Redis {
  name: string;
  child: Child;
  port: number;
  url: string;
}

export interface SidecarPorts {
  http: number;
  grpc: number;
  admin: number;
  localApi: number;
}

/** One app's sluice-proxy: how to start it (again, on the same ports) and where it listens. */
export interface Sidecar {
  id: string;
  labels: string;
  ports: SidecarPorts;
  args: string[];
  child: Child;
  admin: string;
  localApi: string;
  http: string;
  grpc: string;
}

/** A user-service replica the order API reaches through its Upstream. */
export interface UserReplica {
  name: string;
  app: Child;
  port: number;
}

export interface Stack {
  redis: Redis;
  lockNodes: Redis[];
  userService: { app: Child; port: number; sidecar: Sidecar };
  /** Every user-service replica, the first being userService.app (the others have no sidecar of their own: see sluice.yaml). */
  userReplicas: UserReplica[];
  /** The order API (producer.ts --serve), which checks customers through its sidecar's Upstream `listen`. */
  orderApi: { app: Child; port: number; sidecar: Sidecar; upstream: string };
  pushHub: { name: string; app: Child; port: number; sidecar: Sidecar }[];
  orderWorker: { app: Child; port: number; sidecar: Sidecar };
  sidecars: Sidecar[];
}

async function startRedis(procs: Processes, name: string, dir: string): Promise<Redis> {
  const port = await freePort();
  const child = procs.start(name, 'redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no',
    '--protected-mode', 'no', '--daemonize', 'no', '--loglevel', 'warning',
  ]);
  await waitFor(name, child, () => redisAnswers(port), 10_000);
  return { name, child, port, url: `redis://127.0.0.1:${port}` };
}

async function sidecarPorts(): Promise<SidecarPorts> {
  return { http: await freePort(), grpc: await freePort(), admin: await freePort(), localApi: await freePort() };
}

function sidecarSpec(config: string, id: string, labels: string, ports: SidecarPorts, extra: string[]): Omit<Sidecar, 'child'> {
  const args = [
    SLUICE_PROXY, '--config', config, '--labels', labels, '--id', id,
    '--listen-http', `127.0.0.1:${ports.http}`, '--listen-grpc', `127.0.0.1:${ports.grpc}`,
    '--admin', `127.0.0.1:${ports.admin}`, '--local-api', `127.0.0.1:${ports.localApi}`,
    '--shutdown-grace', '2s', '--log-level', 'warn', ...extra,
  ];
  return {
    id, labels, ports, args,
    admin: `http://127.0.0.1:${ports.admin}`, localApi: `http://127.0.0.1:${ports.localApi}`,
    http: `http://127.0.0.1:${ports.http}`, grpc: `127.0.0.1:${ports.grpc}`,
  };
}

/** Starts (or restarts, on the same ports) a sidecar and waits until /readyz answers 200. */
export async function startSidecar(procs: Processes, spec: Omit<Sidecar, 'child'>): Promise<Sidecar> {
  const child = procs.start(`sidecar-${spec.id}`, NODE, spec.args, { cwd: ROOT });
  await waitFor(`sluice-proxy ${spec.id}`, child, async () => (await fetch(`${spec.admin}/readyz`)).ok);
  return { ...spec, child };
}

/**
 * sluice.yaml with the Upstream's ports made real: on one machine there is no Service to resolve,
 * so its `listen` and `endpoints` (the user-service replicas) are the free ports this run got.
 */
function demoConfig(runDir: string, listen: number, replicaPorts: number[]): string {
  const docs = parseAllDocuments(readFileSync(CONFIG, 'utf8')).map((d) => d.toJS() as { kind: string; spec: Record<string, unknown> });
  const upstream = docs.find((d) => d.kind === 'Upstream');
  if (!upstream) throw new Error(`${CONFIG} has no Upstream`);
  upstream.spec.listen = `127.0.0.1:${listen}`;
  upstream.spec.endpoints = replicaPorts.map((p) => `127.0.0.1:${p}`);
  const file = join(runDir, 'sluice.yaml');
  writeFileSync(file, docs.map((d) => stringify(d)).join('---\n'));
  return file;
}

/**
 * Everything the demo runs, on free loopback ports: Redis for queues and pub/sub, three
 * independent Redis lock nodes, each example app behind its own sluice-proxy, two more
 * user-service replicas, and the order API calling them through its sidecar's Upstream.
 */
export async function startStack(procs: Processes, runDir: string, opts: { failRate: number }): Promise<Stack> {
  const [redis, ...lockNodes] = await Promise.all([
    startRedis(procs, 'redis', runDir),
    ...[1, 2, 3].map((i) => startRedis(procs, `redis-lock-${i}`, runDir)),
  ]) as [Redis, ...Redis[]];
  const lockUrls = lockNodes.map((n) => n.url).join(',');

  const [usPort, pushPorts, owPort] = await Promise.all([freePort(), Promise.all([freePort(), freePort()]), freePort()]);
  const [replicaPorts, oaPort, upstreamPort] = await Promise.all([Promise.all([freePort(), freePort()]), freePort(), freePort()]);
  const config = demoConfig(runDir, upstreamPort, [usPort, ...replicaPorts]);

  // The apps first: a sidecar forwards to its app, and the push hubs ask theirs about leadership
  // (until it answers, a hub simply does not lead).
  const usSpec = sidecarSpec(config, 'user-service-0', 'app=user-service', await sidecarPorts(), ['--app-grpc', `127.0.0.1:${usPort}`, '--redis', redis.url]);
  const owSpec = sidecarSpec(config, 'order-worker-0', 'app=order-worker', await sidecarPorts(), ['--app-http', `127.0.0.1:${owPort}`, '--redis', redis.url]);
  const oaSpec = sidecarSpec(config, 'order-api-0', 'app=order-api', await sidecarPorts(), ['--app-http', `127.0.0.1:${oaPort}`, '--redis', redis.url]);
  const hubNames = ['push-hub-a', 'push-hub-b'];
  const hubSpecs = await Promise.all(hubNames.map(async (name, i) => sidecarSpec(config, name, 'app=push-hub', await sidecarPorts(), ['--app-http', `127.0.0.1:${pushPorts[i]}`, '--lock-nodes', lockUrls])));

  const usApp = procs.start('user-service', NODE, ['examples/user-service/server.ts', '--port', String(usPort)], { cwd: ROOT });
  const replicas: UserReplica[] = [
    { name: 'user-service', app: usApp, port: usPort },
    ...replicaPorts.map((port, i) => ({ name: `user-service-${i + 1}`, app: procs.start(`user-service-${i + 1}`, NODE, ['examples/user-service/server.ts', '--port', String(port)], { cwd: ROOT }), port })),
  ];
  const oaApp = procs.start('order-api', NODE, ['examples/order-worker/producer.ts', '--serve', String(oaPort), '--sidecar', oaSpec.localApi, '--user-service', `127.0.0.1:${upstreamPort}`], { cwd: ROOT });
  const owApp = procs.start('order-worker', NODE, ['examples/order-worker/worker.ts', '--port', String(owPort), '--fail-rate', String(opts.failRate)], { cwd: ROOT });
  const hubApps = hubNames.map((name, i) => procs.start(name, NODE, ['examples/push-hub/main.ts'], {
    cwd: ROOT,
    env: { PORT: String(pushPorts[i]), REDIS_URL: redis.url, REPLICA: name, SLUICE_LOCAL_API: (hubSpecs[i] as Sidecar).localApi, FEED_EVERY_MS: '500' },
  }));
  await Promise.all([
    ...replicas.map((r) => waitFor(r.name, r.app, () => canConnect(r.port))),
    waitFor('order-api', oaApp, async () => (await fetch(`http://127.0.0.1:${oaPort}/healthz`)).ok),
    waitFor('order-worker', owApp, () => canConnect(owPort)),
    ...hubApps.map((app, i) => waitFor(hubNames[i] as string, app, async () => (await fetch(`http://127.0.0.1:${pushPorts[i]}/healthz`)).ok)),
  ]);

  // Push-hub-a's sidecar first, so it usually wins the first election (either outcome is shown right).
  const hubA = await startSidecar(procs, hubSpecs[0] as Sidecar);
  const [us, ow, hubB, oa] = await Promise.all([startSidecar(procs, usSpec), startSidecar(procs, owSpec), startSidecar(procs, hubSpecs[1] as Sidecar), startSidecar(procs, oaSpec)]);
  const hubs = [hubA, hubB];
  return {
    redis,
    lockNodes,
    userService: { app: usApp, port: usPort, sidecar: us },
    userReplicas: replicas,
    orderApi: { app: oaApp, port: oaPort, sidecar: oa, upstream: `127.0.0.1:${upstreamPort}` },
    pushHub: hubNames.map((name, i) => ({ name, app: hubApps[i] as Child, port: pushPorts[i] as number, sidecar: hubs[i] as Sidecar })),
    orderWorker: { app: owApp, port: owPort, sidecar: ow },
    sidecars: [us, hubA, hubB, ow, oa],
  };
}
