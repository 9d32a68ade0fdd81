/**
 * The CRDs of crds/ on a real kube-apiserver: they install (the API server's structural-schema and
 * CEL cost checks pass), are discoverable with their short names, fill in their defaults, accept
 * every API example, and refuse every document of crds/invalid/ with the expected field path.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { KubeApiError } from '../../operator/src/errors.ts';
import { resourcePath, type KubeObject } from '../../operator/src/kube-client.ts';
import { TestCluster } from '../../operator/test/helpers/cluster.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const CRD_DIR = join(ROOT, 'crds');
const INVALID_DIR = join(CRD_DIR, 'invalid');
const EXAMPLES = join(ROOT, 'examples/policies.yaml');

const PLURALS: Record<string, string> = {
  RateLimitPolicy: 'ratelimitpolicies', CircuitBreakerPolicy: 'circuitbreakerpolicies', TaskQueue: 'taskqueues', LeaderElection: 'leaderelections',
  Upstream: 'upstreams', FencingPolicy: 'fencingpolicies',
};

function crdFiles(): string[] {
  return readdirSync(CRD_DIR).filter((f) => f.endsWith('.yaml')).sort();
}

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await TestCluster.start(['shop']);
});
afterAll(() => cluster?.stop());

function create(doc: KubeObject): Promise<KubeObject> {
  const [group = '', version = ''] = String(doc.apiVersion).split('/');
  const path = resourcePath({ group, version, plural: PLURALS[doc.kind as string] as string }, doc.metadata.namespace ?? 'shop');
  return cluster.client.create(path, doc);
}

describe('CRDs from crds/', () => {
  it('are established on the real API server, each with its short name and the sluice category', async () => {
    const names = crdFiles().map((f) => f.replace(/\.yaml$/, ''));
    for (const name of names) {
      const crd = await cluster.client.get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
      const conditions = (crd.status as { conditions: { type: string; status: string }[] }).conditions;
      expect(conditions.find((c) => c.type === 'Established')?.status, name).toBe('True');
      expect(conditions.find((c) => c.type === 'NamesAccepted')?.status, name).toBe('True');
      expect(conditions.find((c) => c.type === 'NonStructuralSchema'), `${name} must be structural`).toBeUndefined();
    }
    const resources = await cluster.kubectl('api-resources', '--api-group=sluice.dev', '-o', 'wide', '--no-headers');
    for (const [plural, short] of [['ratelimitpolicies', 'rlp'], ['circuitbreakerpolicies', 'cbp'], ['taskqueues', 'tq'], ['leaderelections', 'le'], ['fencingpolicies', 'fp']]) {
      expect(resources).toMatch(new RegExp(`^${plural}\\s+${short}\\s+sluice.dev/v1alpha1\\s+true`, 'm'));
    }
    expect(await cluster.kubectl('get', 'sluice', '-n', 'shop')).toBe('');
  });

  it('re-apply cleanly with kubectl (the second apply changes nothing)', async () => {
    const out = await cluster.kubectl('apply', '--server-side', '-f', CRD_DIR);
    for (const f of crdFiles()) expect(out).toContain(`customresourcedefinition.apiextensions.k8s.io/${f.replace(/\.yaml$/, '')} serverside-applied`);
  });
});

describe('examples/policies.yaml', () => {
  it('every document is accepted, with the schema defaults filled in', async () => {
    const created = new Map<string, KubeObject & { spec?: any }>();
    for (const d of parseAllDocuments(readFileSync(EXAMPLES, 'utf8'))) {
      const doc = d.toJS() as KubeObject;
      const o = await create(doc);
      created.set(`${o.kind}/${o.metadata.name}`, o as KubeObject & { spec?: any });
      expect(o.metadata.generation).toBe(1);
    }
    expect(created.size).toBeGreaterThanOrEqual(4);
    const rlp = created.get('RateLimitPolicy/user-api')?.spec;
    expect(rlp.mode).toBe('Enforce');
    expect(rlp.rules[0].limit.algorithm).toBe('TokenBucket');
    expect(rlp.rules[1].key).toEqual({ source: 'None' });
    expect(rlp.rules[2].scope).toBe('Local');
    expect(rlp.rules[2].failureMode).toBeUndefined();
    expect(rlp.rules[0].match.paths[0].type).toBe('Prefix');
    const cbp = created.get('CircuitBreakerPolicy/user-api')?.spec;
    expect(cbp.rules[0].failureConditions.connectErrors).toBe(true);
    expect(cbp.rules[0].halfOpen).toEqual({ maxProbes: 3, successesToClose: 3 });
    expect(cbp.rules[0].bulkhead.maxPendingRequests).toBe(100);
    const tq = created.get('TaskQueue/orders')?.spec;
    expect(tq.deletionPolicy).toBe('Retain');
    expect(tq.delivery.batchSize).toBe(1);
    expect(tq.retry.maxAttempts).toBe(5);
    expect(tq.autoscale.scaleTargetRef.apiVersion).toBe('apps/v1');
    expect(tq.autoscale.stabilizationWindow).toBe('5m');
    const le = created.get('LeaderElection/push-broadcaster')?.spec;
    expect(le).toEqual({ selector: { matchLabels: { app: 'push-hub' } }, ttl: '10s', renewEvery: '3s' });
    expect(created.get('Upstream/user-service')?.spec.loadBalancer.algorithm).toBe('LeastRequest');
    const fp = created.get('FencingPolicy/ledger')?.spec;
    expect(fp.rules[0]).toMatchObject({ resource: { kind: 'LeaderElection', name: 'push-broadcaster' }, missingToken: 'Reject', failureMode: 'Closed' });
  });

  it('a minimal policy gets every default', async () => {
    const o = await create({
      apiVersion: 'sluice.dev/v1alpha1', kind: 'CircuitBreakerPolicy', metadata: { name: 'minimal', namespace: 'shop' },
      spec: { selector: {}, rules: [{ name: 'r', trip: { consecutiveFailures: 3 } }] },
    });
    expect(o.spec).toEqual({
      selector: {}, mode: 'Enforce',
      rules: [{
        name: 'r', match: {}, failureConditions: { connectErrors: true },
        trip: { consecutiveFailures: 3, minimumRequests: 10, window: '10s' },
        openDuration: '30s', halfOpen: { maxProbes: 1, successesToClose: 1 },
      }],
    });
  });
});

describe('crds/invalid corpus', () => {
  const files = readdirSync(INVALID_DIR).filter((f) => f.endsWith('.yaml')).sort();

  it('has documents for every kind', () => {
    expect(files.length).toBeGreaterThanOrEqual(20);
    for (const prefix of ['rlp-', 'cbp-', 'tq-', 'le-', 'fp-', 'ups-']) expect(files.some((f) => f.startsWith(prefix))).toBe(true);
  });

  it.each(files)('%s is refused by the API server with its expected message', async (file) => {
    const text = readFileSync(join(INVALID_DIR, file), 'utf8');
    const expected = /^# expect: (.+)$/m.exec(text)?.[1];
    expect(expected, `${file} needs a "# expect:" line`).toBeTruthy();
    const doc = parseAllDocuments(text)[0]?.toJS() as KubeObject;
    const err = await create(doc).then(() => undefined, (e: unknown) => e);
    expect(err, `${file} was accepted`).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).statusCode).toBe(422);
    expect((err as KubeApiError).reason).toBe('Invalid');
    expect((err as KubeApiError).message).toContain(expected as string);
  });
});
