import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ApiextensionsV1Api, CustomObjectsApi, KubernetesObjectApi, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { REPO_CRD_DIR, startKubeApiServer, type KubeApiServer } from './server.ts';
import { rawRequest, refusal, startServer } from './test-support.ts';

const EXAMPLES = resolve(import.meta.dirname, '../../examples/policies.yaml');
const INVALID_DIR = join(REPO_CRD_DIR, 'invalid');

function examples(): KubernetesObject[] {
  return parseAllDocuments(readFileSync(EXAMPLES, 'utf8')).map((d) => d.toJS() as KubernetesObject);
}

let server: KubeApiServer;
let kc: KubeConfig;
beforeAll(async () => {
  ({ server, kc } = await startServer());
});
afterAll(() => server.stop());

describe('CRDs from crds/', () => {
  it('are registered, established and discoverable with short names and categories', async () => {
    const ext = kc.makeApiClient(ApiextensionsV1Api);
    const crds = await ext.listCustomResourceDefinition();
    const names = crds.items.map((c) => c.metadata?.name).sort();
    expect(names).toEqual(['circuitbreakerpolicies.sluice.dev', 'leaderelections.sluice.dev', 'ratelimitpolicies.sluice.dev', 'taskqueues.sluice.dev', 'upstreams.sluice.dev']);
    for (const crd of crds.items) {
      expect(crd.status?.conditions?.find((c) => c.type === 'Established')?.status).toBe('True');
    }
    const res = await fetchJson(server, '/apis/sluice.dev/v1alpha1');
    const byName = new Map((res.resources as { name: string; shortNames?: string[]; categories?: string[]; namespaced: boolean }[]).map((r) => [r.name, r]));
    expect(byName.get('ratelimitpolicies')?.shortNames).toEqual(['rlp']);
    expect(byName.get('circuitbreakerpolicies')?.shortNames).toEqual(['cbp']);
    expect(byName.get('taskqueues')?.shortNames).toEqual(['tq']);
    expect(byName.get('leaderelections')?.shortNames).toEqual(['le']);
    expect(byName.get('taskqueues')?.categories).toEqual(['sluice']);
    expect(byName.get('ratelimitpolicies')?.namespaced).toBe(true);
    expect(byName.has('ratelimitpolicies/status')).toBe(true);
    const groups = await fetchJson(server, '/apis');
    expect((groups.groups as { name: string }[]).map((g) => g.name)).toContain('sluice.dev');
  });

  it('register at runtime through the API and disappear with their objects when deleted', async () => {
    // A raw request: client-node's typed serializer would drop `default` (its model says `_default`).
    const ext = kc.makeApiClient(ApiextensionsV1Api);
    const made = await rawRequest(server, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
        apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition',
        metadata: { name: 'widgets.example.com' },
        spec: {
          group: 'example.com', scope: 'Namespaced',
          names: { kind: 'Widget', plural: 'widgets', singular: 'widget', listKind: 'WidgetList' },
          versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', properties: { size: { type: 'integer', default: 3 } } } } } } }],
        },
    });
    expect(made.status).toBe(201);
    const res = await fetchJson(server, '/apis/example.com/v1');
    expect((res.resources as { name: string }[]).map((r) => r.name)).toEqual(['widgets']);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const w = await custom.createNamespacedCustomObject({ group: 'example.com', version: 'v1', namespace: 'shop', plural: 'widgets', body: { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' }, spec: { junk: 1 } } });
    expect(w.spec).toEqual({ size: 3 });
    await ext.deleteCustomResourceDefinition({ name: 'widgets.example.com' });
    expect((await rawRequest(server, 'GET', '/apis/example.com/v1')).status).toBe(404);
    expect(server.store.list('example.com/widgets')).toEqual([]);
  });

  it('refuse a CRD whose CEL rule does not compile', async () => {
    const { status: code, body: status } = await rawRequest(server, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
        apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition',
        metadata: { name: 'gadgets.example.com' },
        spec: {
          group: 'example.com', scope: 'Namespaced', names: { kind: 'Gadget', plural: 'gadgets' },
          versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-validations': [{ rule: 'self.spec.a ==' }] } } }],
        },
    });
    expect(code).toBe(422);
    expect(status.message).toContain('x-kubernetes-validations[0].rule');
    expect(status.message).toContain('compilation failed');
  });

  it('stop the server from starting when a CRD in the directory cannot be served', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-bad-crds-'));
    try {
      writeFileSync(join(dir, 'bad.yaml'), [
        'apiVersion: apiextensions.k8s.io/v1', 'kind: CustomResourceDefinition', 'metadata: {name: things.example.com}',
        'spec:', '  group: example.com', '  scope: Namespaced', '  names: {kind: Thing, plural: things}',
        '  versions:', '  - name: v1', '    served: true', '    storage: true',
        "    schema: {openAPIV3Schema: {type: object, x-kubernetes-validations: [{rule: 'self.spec.frobnicate()'}]}}", '',
      ].join('\n'));
      await expect(startKubeApiServer({ crdDir: dir })).rejects.toThrow(/cannot register bad.yaml: .*undeclared reference to 'frobnicate'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('use messageExpression for CEL error messages', async () => {
    const made = await rawRequest(server, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
      apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'pools.example.com' },
      spec: {
        group: 'example.com', scope: 'Namespaced', names: { kind: 'Pool', plural: 'pools' },
        versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', properties: { spec: {
          type: 'object', properties: { min: { type: 'integer' }, max: { type: 'integer' } },
          'x-kubernetes-validations': [{ rule: 'self.min <= self.max', messageExpression: "'min (' + string(self.min) + ') exceeds max (' + string(self.max) + ')'" }],
        } } } } }],
      },
    });
    expect(made.status).toBe(201);
    const res = await rawRequest(server, 'POST', '/apis/example.com/v1/namespaces/shop/pools', { apiVersion: 'example.com/v1', kind: 'Pool', metadata: { name: 'p' }, spec: { min: 5, max: 2 } });
    expect(res.status).toBe(422);
    expect(res.body.message).toBe('Pool.example.com "p" is invalid: spec: Invalid value: "object": min (5) exceeds max (2)');
  });
});

describe('examples.yaml', () => {
  it('every document is accepted, with the schema defaults filled in', async () => {
    const client = KubernetesObjectApi.makeApiClient(kc);
    const created = new Map<string, KubernetesObject & { spec?: any }>();
    for (const doc of examples()) {
      const o = await client.create(doc);
      created.set(`${o.kind}/${o.metadata?.name}`, o as KubernetesObject & { spec?: any });
      expect(o.metadata?.generation).toBe(1);
      expect(o.metadata?.resourceVersion).toMatch(/^\d+$/);
    }
    expect(created.size).toBe(5);
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
  });

  it('a minimal policy gets every default', async () => {
    const custom = kc.makeApiClient(CustomObjectsApi);
    const o = await custom.createNamespacedCustomObject({
      group: 'sluice.dev', version: 'v1alpha1', namespace: 'shop', plural: 'circuitbreakerpolicies',
      body: { apiVersion: 'sluice.dev/v1alpha1', kind: 'CircuitBreakerPolicy', metadata: { name: 'minimal' }, spec: { selector: {}, rules: [{ name: 'r', trip: { consecutiveFailures: 3 } }] } },
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
    for (const prefix of ['rlp-', 'cbp-', 'tq-', 'le-', 'ups-']) expect(files.some((f) => f.startsWith(prefix))).toBe(true);
  });

  it.each(files)('%s is refused with its expected message', async (file) => {
    const text = readFileSync(join(INVALID_DIR, file), 'utf8');
    const expected = /^# expect: (.+)$/m.exec(text)?.[1];
    expect(expected, `${file} needs a "# expect:" line`).toBeTruthy();
    const doc = parseAllDocuments(text)[0]?.toJS() as KubernetesObject;
    const status = await refusal(KubernetesObjectApi.makeApiClient(kc).create(doc));
    expect(status.code).toBe(422);
    expect(status.reason).toBe('Invalid');
    expect(status.message).toContain(expected as string);
    expect(status.details?.causes?.length).toBeGreaterThan(0);
  });
});

async function fetchJson(server: KubeApiServer, path: string): Promise<Record<string, unknown>> {
  const res = await rawRequest(server, 'GET', path);
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status}`);
  return res.body as Record<string, unknown>;
}
