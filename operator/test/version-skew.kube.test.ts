/**
 * Version skew on the discovery stream, against the real API server and the real operator:
 * sidecars name the kinds they compile in their Hello and the operator sends only those,
 * reporting what it left out (log and metric) instead of the sidecar refusing the whole snapshot.
 * An old sidecar — one from before negotiation, which names no kinds and compiles strictly — is
 * served the first release's kinds and keeps acknowledging the new operator's snapshots.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PolicyValidationError } from '../../lib/policy/errors.ts';
import { compilePlan } from '../../lib/policy/compile.ts';
import { BASELINE_KINDS } from '../../lib/policy/skew.ts';
import { silentLogger } from '../../lib/log.ts';
import { eventually } from '../../test/helpers/eventually.ts';
import { PolicyStore, type CompileSnapshot } from '../../sidecar/src/config/policy-store.ts';
import { DiscoveryClient } from '../../sidecar/src/discovery/discovery-client.ts';
import type { KubeObject } from '../src/kube-client.ts';
import { condition, rateLimitPolicy, startOperator, TestCluster, type StartedOperator } from './helpers/cluster.ts';

let cluster: TestCluster;
let op: StartedOperator;
const clients: DiscoveryClient[] = [];

beforeAll(async () => {
  cluster = await TestCluster.start(['skew']);
  op = await startOperator(cluster);
});

afterAll(async () => {
  for (const c of clients) await c.close();
  await op?.operator.stop();
  await cluster?.stop();
});

/** A sidecar build that compiles only `kinds`, strictly (as every sidecar did before skew handling). */
const strictFor = (kinds: readonly string[]): CompileSnapshot => (resources, version) => {
  const i = (resources as { kind?: string }[]).findIndex((r) => !kinds.includes(String(r.kind)));
  if (i >= 0) throw new PolicyValidationError('config', [{ path: `resources[${i}].kind`, message: `unknown kind ${String((resources[i] as { kind?: string }).kind)}` }]);
  return compilePlan(resources, { version });
};

async function connect(pod: KubeObject, supportedKinds: readonly string[], compile: CompileSnapshot) {
  const store = new PolicyStore({ compileSnapshot: compile });
  const client = new DiscoveryClient({
    targets: [op.address],
    identity: { namespace: 'skew', name: pod.metadata.name, tokenFile: await cluster.tokenFileFor(pod) },
    sidecarId: `skew-${pod.metadata.name}`, store, logger: silentLogger, supportedKinds,
    backoff: { baseMs: 50, capMs: 500 },
  });
  clients.push(client);
  client.start();
  return store;
}

const breaker = (name: string, app: string) => `apiVersion: sluice.dev/v1alpha1
kind: CircuitBreakerPolicy
metadata: {name: ${name}, namespace: skew}
spec:
  selector: {matchLabels: {app: ${app}}}
  rules:
    - name: backend
      match: {protocol: http}
      failureConditions: {httpStatuses: ["5xx"]}
      trip: {consecutiveFailures: 5}
      openDuration: 10s
`;

async function skippedTotal(): Promise<number> {
  const text = await (await fetch(`${op.admin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('sluice_operator_snapshot_skew_skipped_total '));
  return Number(line?.split(' ')[1] ?? 0);
}

describe('version skew between the operator and its sidecars', () => {
  it('sends a sidecar only the kinds it names, and reports the rest as skipped rather than NACKed', async () => {
    await cluster.apply(rateLimitPolicy('narrow', { requests: 10, selector: { app: 'narrow' }, namespace: 'skew' }));
    await cluster.apply(breaker('narrow-breaker', 'narrow'));
    const before = await skippedTotal();
    const pod = await cluster.createPod('skew', 'narrow-1', { app: 'narrow' });
    const store = await connect(pod, ['RateLimitPolicy'], strictFor(['RateLimitPolicy']));
    await eventually(() => {
      expect(store.loaded).toBe(true);
      expect(store.current.rateLimits.map((r) => r.id)).toEqual(['skew/narrow/all']);
    }, { timeoutMs: 20_000 });
    expect(store.current.breakers).toEqual([]);
    expect(store.lastRejected).toBeUndefined();
    await eventually(async () => expect(await skippedTotal()).toBeGreaterThan(before));
    await eventually(async () => {
      expect(condition(await cluster.getStatus('ratelimitpolicies', 'skew', 'narrow'), 'Programmed')?.status).toBe('True');
    }, { timeoutMs: 20_000 });
    // The policy the sidecar is too old for says so on its status, naming the pod and the kind.
    await eventually(async () => {
      const s = await cluster.getStatus('circuitbreakerpolicies', 'skew', 'narrow-breaker');
      expect(condition(s, 'Programmed')).toMatchObject({ status: 'False', reason: 'Rejected' });
      expect(condition(s, 'Programmed')?.message).toContain('sidecar of pod skew/narrow-1 does not know kind CircuitBreakerPolicy');
    }, { timeoutMs: 20_000 });
  });

  it('serves an old sidecar (no kinds named, strict compile) the first release\'s kinds, which it acknowledges', async () => {
    await cluster.apply(rateLimitPolicy('old', { requests: 10, selector: { app: 'old' }, namespace: 'skew' }));
    await cluster.apply(breaker('old-breaker', 'old'));
    const pod = await cluster.createPod('skew', 'old-1', { app: 'old' });
    const store = await connect(pod, [], strictFor(BASELINE_KINDS));
    await eventually(() => {
      expect(store.current.rateLimits.map((r) => r.id)).toEqual(['skew/old/all']);
      expect(store.current.breakers.map((b) => b.id)).toEqual(['skew/old-breaker/backend']);
    }, { timeoutMs: 20_000 });
    expect(store.lastRejected).toBeUndefined();
    await eventually(async () => {
      expect(condition(await cluster.getStatus('circuitbreakerpolicies', 'skew', 'old-breaker'), 'Programmed')?.status).toBe('True');
    }, { timeoutMs: 20_000 });
  });
});
