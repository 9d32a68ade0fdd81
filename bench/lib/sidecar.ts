import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePorts } from '../../lib/net.ts';
import { NODE, waitForHttp, type Child, type ProcessGroup } from './processes.ts';

const SIDECAR_BIN = resolve(import.meta.dirname, '../../sidecar/bin/sluice-proxy.ts');

export interface SidecarStartOptions {
  /** Multi-document YAML of sluice.dev/v1alpha1 resources ('' = no policies). */
  configYaml: string;
  /** Where the app serves HTTP/WebSocket. */
  appHttp: string;
  /** Extra sidecar flags, e.g. ['--app-grpc', '127.0.0.1:50051']. */
  extraArgs?: string[];
  /** Node flags for the sidecar process, e.g. ['--cpu-prof', '--cpu-prof-dir', dir]. */
  nodeArgs?: string[];
  /** Raise the sidecar's soft open-files limit (e.g. for 10k proxied connections). */
  nofile?: number;
  /** Run the sidecar of another checkout of this repository (for before/after comparisons). */
  checkout?: string;
}

export interface SidecarHandle {
  child: Child;
  pid: number;
  httpPort: number;
  adminPort: number;
  localApiPort: number;
  /** Temp dir holding the config file; removed by `cleanup`. */
  dir: string;
  cleanup(): void;
}

/**
 * Starts `sluice-proxy` in standalone mode on free loopback ports with the given config, and
 * resolves once `/readyz` on its admin port says it is ready. Logs at warn, so the hot path does
 * not pay for logging.
 */
export async function startSidecar(group: ProcessGroup, name: string, opts: SidecarStartOptions): Promise<SidecarHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-sluice-'));
  const config = join(dir, 'sluice.yaml');
  writeFileSync(config, opts.configYaml);
  const [httpPort, adminPort, localApiPort, grpcPort] = (await freePorts(4)) as [number, number, number, number];
  const args = [
    ...(opts.nodeArgs ?? []),
    opts.checkout ? resolve(opts.checkout, 'sidecar/bin/sluice-proxy.ts') : SIDECAR_BIN,
    '--config', config,
    '--app-http', opts.appHttp,
    '--listen-http', `127.0.0.1:${httpPort}`,
    '--listen-grpc', `127.0.0.1:${grpcPort}`,
    '--admin', `127.0.0.1:${adminPort}`,
    '--local-api', `127.0.0.1:${localApiPort}`,
    '--log-level', 'warn',
    '--shutdown-grace', '1s',
    ...(opts.extraArgs ?? []),
  ];
  const child = group.start(name, NODE, args, { nofile: opts.nofile });
  // The config lives as long as the sidecar: removed when it exits, whoever stops it.
  void child.exited.then(() => rmSync(dir, { recursive: true, force: true }));
  await Promise.race([
    waitForHttp(`http://127.0.0.1:${adminPort}/readyz`, 200, 20_000),
    child.exited.then((code) => {
      throw new Error(`${name} exited (${code}) before it was ready:\n${child.stderrTail()}`);
    }),
  ]);
  return { child, pid: child.pid, httpPort, adminPort, localApiPort, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A RateLimitPolicy + CircuitBreakerPolicy that apply to every request and never reject. */
export const EVERY_REQUEST_POLICIES = `apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: bench-limit, namespace: bench}
spec:
  selector: {}
  rules:
    - name: every-request
      limit: {requests: 100000000, per: 1s, algorithm: TokenBucket}
---
apiVersion: sluice.dev/v1alpha1
kind: CircuitBreakerPolicy
metadata: {name: bench-breaker, namespace: bench}
spec:
  selector: {}
  rules:
    - name: every-request
      failureConditions: {httpStatuses: ["5xx"], connectErrors: true}
      trip: {consecutiveFailures: 5, failureRatePercent: 50, minimumRequests: 20, window: 10s}
      openDuration: 30s
`;

/** Push-sockets style WebSocket limits, set high enough never to trigger in a benchmark. */
export const UNREACHABLE_WEBSOCKET_LIMITS = `apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: bench-ws, namespace: bench}
spec:
  selector: {}
  rules:
    - name: push-sockets
      match:
        protocol: websocket
      websocket:
        maxConnections: 1000000
        connectionsPerSecond: 1000000
        messagesPerSecond: 1000000
        maxMessageBytes: 1048576
`;

/**
 * The example UserService's limit, breaker and bulkhead with the limit out of reach: every gRPC
 * call runs the whole policy chain without being refused.
 */
export const USER_SERVICE_POLICIES = `apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: user-api, namespace: shop}
spec:
  selector: {}
  rules:
    - name: get-user-rpc
      match: {protocol: grpc, grpcMethods: ["example.UserService/GetUser"]}
      limit: {requests: 100000000, per: 1m, algorithm: SlidingWindow}
      scope: Local
---
apiVersion: sluice.dev/v1alpha1
kind: CircuitBreakerPolicy
metadata: {name: user-api, namespace: shop}
spec:
  selector: {}
  rules:
    - name: backend
      match: {protocol: grpc, grpcMethods: ["example.UserService/*"]}
      failureConditions: {grpcCodes: [UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL], timeout: 2s}
      trip: {consecutiveFailures: 5, failureRatePercent: 50, minimumRequests: 20, window: 10s}
      openDuration: 30s
      bulkhead: {maxConcurrentRequests: 1000, maxPendingRequests: 100}
`;
