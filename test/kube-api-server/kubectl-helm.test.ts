import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { helmBinary, runHelm } from '../helpers/helm.ts';
import { kubectl } from '../helpers/kubectl.ts';
import { REPO_CRD_DIR, startKubeApiServer, type KubeApiServer } from './server.ts';

const EXAMPLES = resolve(import.meta.dirname, '../../examples/policies.yaml');

let server: KubeApiServer;
let kc: KubeConfig;
let work: string;
const k = (...args: string[]) => kubectl(server.kubeconfigPath, args);

beforeAll(async () => {
  // No CRDs at start: `kubectl apply -f crds/` registers them, as on a fresh cluster.
  [server] = await Promise.all([startKubeApiServer({ crdDir: null }), helmBinary()]);
  kc = new KubeConfig();
  kc.loadFromString(server.kubeconfig);
  work = mkdtempSync(join(tmpdir(), 'sluice-kubectl-'));
});
afterAll(async () => {
  await server.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('kubectl', () => {
  it('creates a namespace, applies the CRDs and the examples', async () => {
    expect(await k('create', 'namespace', 'shop')).toMatchObject({ code: 0, stdout: 'namespace/shop created\n' });
    const crds = await k('apply', '-f', REPO_CRD_DIR);
    expect(crds.code, crds.stderr).toBe(0);
    expect(crds.stdout).toContain('customresourcedefinition.apiextensions.k8s.io/ratelimitpolicies.sluice.dev created');
    const applied = await k('apply', '-f', EXAMPLES);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout.trim().split('\n')).toEqual([
      'ratelimitpolicy.sluice.dev/user-api created',
      'circuitbreakerpolicy.sluice.dev/user-api created',
      'taskqueue.sluice.dev/orders created',
      'leaderelection.sluice.dev/push-broadcaster created',
      'upstream.sluice.dev/user-service created',
    ]);
  });

  it('shows the printer columns in kubectl get', async () => {
    const custom = kc.makeApiClient(CustomObjectsApi);
    await custom.patchNamespacedCustomObjectStatus({
      group: 'sluice.dev', version: 'v1alpha1', namespace: 'shop', plural: 'ratelimitpolicies', name: 'user-api',
      body: { status: {
        observedGeneration: 1, targets: { selected: 3, programmed: 2 },
        conditions: [
          { type: 'Accepted', status: 'True', reason: 'Valid', message: 'ok', lastTransitionTime: '2026-01-01T00:00:00Z' },
          { type: 'Programmed', status: 'False', reason: 'Pending', message: '2 of 3 pods', lastTransitionTime: '2026-01-01T00:00:00Z' },
        ],
      } },
    }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    const rlp = await k('get', 'rlp', '-n', 'shop');
    expect(rlp.code, rlp.stderr).toBe(0);
    const [header, row] = rlp.stdout.trim().split('\n');
    expect(header?.split(/\s+/)).toEqual(['NAME', 'MODE', 'ACCEPTED', 'PROGRAMMED', 'PODS', 'SYNCED', 'AGE']);
    expect(row?.split(/\s+/).slice(0, 6)).toEqual(['user-api', 'Enforce', 'True', 'False', '3', '2']);
    const tq = await k('get', 'taskqueues', '-n', 'shop');
    expect(tq.stdout.split('\n')[0]?.split(/\s+/)).toEqual(['NAME', 'STREAM', 'READY', 'LAG', 'AGE']);
    expect(tq.stdout).toContain('shop.orders');
    const le = await k('get', 'le', '-n', 'shop', '-o', 'wide');
    expect(le.stdout.split('\n')[0]?.split(/\s+/)).toEqual(['NAME', 'HOLDER', 'TOKEN', 'TTL', 'ACCEPTED', 'AGE']);
    const all = await k('get', 'sluice', '-n', 'shop', '-o', 'name');
    expect(all.stdout.trim().split('\n').sort()).toEqual([
      'circuitbreakerpolicy.sluice.dev/user-api', 'leaderelection.sluice.dev/push-broadcaster',
      'ratelimitpolicy.sluice.dev/user-api', 'taskqueue.sluice.dev/orders',
    ]);
    expect((await k('get', 'pods', '-A')).code).toBe(0);
    const waited = await k('wait', '--for=condition=Accepted', 'rlp/user-api', '-n', 'shop', '--timeout=5s');
    expect(waited.stdout).toBe('ratelimitpolicy.sluice.dev/user-api condition met\n');
  });

  it('describes and explains', async () => {
    const d = await k('describe', 'rlp', 'user-api', '-n', 'shop');
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/Kind:\s+RateLimitPolicy/);
    expect(d.stdout).toMatch(/Grpc Methods:\s+example.UserService\/GetUser/);
    const e = await k('explain', 'ratelimitpolicy.spec.rules.limit');
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toContain('algorithm');
    expect(e.stdout).toContain('TokenBucket (smooth refill, allows bursts)');
  });

  it('applies again: unchanged objects stay unchanged, edits bump generation', async () => {
    const again = await k('apply', '-f', EXAMPLES);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('taskqueue.sluice.dev/orders unchanged');
    expect(again.stdout).toContain('leaderelection.sluice.dev/push-broadcaster unchanged');
    const edited = readFileSync(EXAMPLES, 'utf8').replace('renewEvery: 3s', 'renewEvery: 2s');
    const res = await kubectl(server.kubeconfigPath, ['apply', '-f', '-'], { input: edited });
    expect(res.stdout).toContain('leaderelection.sluice.dev/push-broadcaster configured');
    const le = await k('get', 'le', 'push-broadcaster', '-n', 'shop', '-o', 'jsonpath={.spec.renewEvery} {.metadata.generation}');
    expect(le.stdout).toBe('2s 2');
  });

  it('supports server-side dry runs and server-side apply', async () => {
    const dry = await kubectl(server.kubeconfigPath, ['apply', '--dry-run=server', '-f', '-'], { input: readFileSync(EXAMPLES, 'utf8').replace('ttl: 10s', 'ttl: 11s') });
    expect(dry.stdout).toContain('leaderelection.sluice.dev/push-broadcaster configured (server dry run)');
    expect((await k('get', 'le', 'push-broadcaster', '-n', 'shop', '-o', 'jsonpath={.spec.ttl}')).stdout).toBe('10s');
    const ssa = await kubectl(server.kubeconfigPath, ['apply', '--server-side', '-f', '-'], {
      input: 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa, namespace: shop}\ndata: {a: "1"}\n',
    });
    expect(ssa.stdout).toBe('configmap/ssa serverside-applied\n');
    expect((await k('get', 'cm', 'ssa', '-n', 'shop', '-o', 'jsonpath={.data.a}')).stdout).toBe('1');
    expect((await k('delete', 'cm', 'ssa', '-n', 'shop')).code).toBe(0);
  });

  it('prints the server validation error for an invalid document', async () => {
    const bad = readFileSync(join(REPO_CRD_DIR, 'invalid/le-renew-not-shorter-than-ttl.yaml'), 'utf8');
    const res = await kubectl(server.kubeconfigPath, ['apply', '-f', '-'], { input: bad });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('spec.renewEvery: Invalid value: "object": renewEvery must be shorter than ttl');
    const unknown = await kubectl(server.kubeconfigPath, ['apply', '-f', '-'], { input: bad.replace('ttl: 10s', 'ttl: 10s\n  surprise: 1') });
    expect(unknown.stderr).toContain('unknown field "spec.surprise"');
  });

  it('creates, rolls out and scales a deployment with the imperative commands', async () => {
    expect((await k('create', 'deployment', 'web', '--image=nginx:1.27', '--replicas=2', '-n', 'shop')).stdout).toBe('deployment.apps/web created\n');
    const rollout = await k('rollout', 'status', 'deployment/web', '-n', 'shop', '--timeout=10s');
    expect(rollout.stdout).toContain('deployment "web" successfully rolled out');
    expect((await k('scale', 'deployment/web', '--replicas=5', '-n', 'shop')).code).toBe(0);
    expect((await k('set', 'image', 'deployment/web', 'nginx=nginx:1.28', '-n', 'shop')).code).toBe(0);
    const d = await k('get', 'deployment', 'web', '-n', 'shop', '-o', 'jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.metadata.generation}');
    expect(d.stdout).toBe('5 nginx:1.28 3');
    expect((await k('rollout', 'status', 'deployment/web', '-n', 'shop', '--timeout=10s')).code).toBe(0);
    expect((await k('delete', 'deployment', 'web', '-n', 'shop')).code).toBe(0);
    expect((await k('get', 'rs', '-n', 'shop', '-o', 'name')).stdout).toBe('');
  });

  it('deletes', async () => {
    const del = await k('delete', '-f', EXAMPLES);
    expect(del.code, del.stderr).toBe(0);
    expect(del.stdout).toContain('ratelimitpolicy.sluice.dev "user-api" deleted');
    expect((await k('get', 'rlp', '-n', 'shop')).stderr).toContain('No resources found in shop namespace.');
  });
});

describe('helm', () => {
  let chart: string;
  const helm = (...args: string[]) => runHelm(args, { kubeconfig: server.kubeconfigPath, workDir: work });

  beforeAll(() => {
    chart = join(work, 'tiny');
    mkdirSync(join(chart, 'templates'), { recursive: true });
    mkdirSync(join(chart, 'crds'), { recursive: true });
    writeFileSync(join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: tiny\nversion: 0.1.0\nappVersion: "1.0"\n');
    writeFileSync(join(chart, 'values.yaml'), 'replicas: 1\nimage: nginx:1.27\nmessage: hello\n');
    // A throwaway CRD of its own, so the chart's crds/ step is exercised independently of crds/.
    writeFileSync(join(chart, 'crds', 'gizmos.yaml'), [
      'apiVersion: apiextensions.k8s.io/v1', 'kind: CustomResourceDefinition', 'metadata: {name: gizmos.tiny.example.com}',
      'spec:', '  group: tiny.example.com', '  scope: Namespaced', '  names: {kind: Gizmo, plural: gizmos}',
      '  versions:', '  - name: v1', '    served: true', '    storage: true',
      '    schema: {openAPIV3Schema: {type: object, properties: {spec: {type: object, properties: {size: {type: integer, minimum: 1}}}}}}', '',
    ].join('\n'));
    writeFileSync(join(chart, 'templates', 'all.yaml'), `
apiVersion: v1
kind: ServiceAccount
metadata: {name: "{{ .Release.Name }}-sa"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: "{{ .Release.Name }}-cfg"}
data: {message: {{ .Values.message | quote }}}
---
apiVersion: v1
kind: Secret
metadata: {name: "{{ .Release.Name }}-secret"}
stringData: {password: s3cret}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "{{ .Release.Name }}-cr"}
rules: [{apiGroups: [sluice.dev], resources: ["*"], verbs: ["*"]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: "{{ .Release.Name }}-rb"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "{{ .Release.Name }}-cr"}
subjects: [{kind: ServiceAccount, name: "{{ .Release.Name }}-sa", namespace: "{{ .Release.Namespace }}"}]
---
apiVersion: v1
kind: Service
metadata: {name: "{{ .Release.Name }}-svc"}
spec:
  selector: {app: "{{ .Release.Name }}"}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: "{{ .Release.Name }}-app"}
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: "{{ .Release.Name }}"}}
  template:
    metadata: {labels: {app: "{{ .Release.Name }}"}}
    spec:
      serviceAccountName: "{{ .Release.Name }}-sa"
      containers:
        - name: app
          image: {{ .Values.image }}
          env: [{name: MESSAGE, value: {{ .Values.message | quote }}}]
---
apiVersion: tiny.example.com/v1
kind: Gizmo
metadata: {name: "{{ .Release.Name }}-gizmo"}
spec: {size: {{ .Values.replicas }}}
`);
  });

  it('installs, upgrades and uninstalls a chart with CRDs, workloads, RBAC, config and secrets', async () => {
    // --wait: the simulated deployment controller reports the Deployment ready, as a cluster would.
    const install = await helm('install', 'tiny', chart, '--namespace', 'shop', '--wait', '--timeout', '20s');
    expect(install.code, install.stderr).toBe(0);
    expect(install.stdout).toContain('STATUS: deployed');
    const deploy = await k('get', 'deploy', 'tiny-app', '-n', 'shop', '-o', 'jsonpath={.spec.replicas} {.metadata.labels.app\\.kubernetes\\.io/managed-by}');
    expect(deploy.stdout).toBe('1 Helm');
    expect((await k('get', 'gizmo', 'tiny-gizmo', '-n', 'shop', '-o', 'jsonpath={.spec.size}')).stdout).toBe('1');
    const list = await helm('list', '-n', 'shop', '-o', 'json');
    expect(JSON.parse(list.stdout)).toMatchObject([{ name: 'tiny', revision: '1', status: 'deployed' }]);

    const upgrade = await helm('upgrade', 'tiny', chart, '--namespace', 'shop', '--set', 'replicas=3', '--set', 'message=bye', '--wait', '--timeout', '20s');
    expect(upgrade.code, upgrade.stderr).toBe(0);
    const after = await k('get', 'deploy', 'tiny-app', '-n', 'shop', '-o', 'jsonpath={.spec.replicas} {.metadata.generation} {.spec.template.spec.containers[0].env[0].value}');
    expect(after.stdout).toBe('3 2 bye');
    expect((await k('get', 'cm', 'tiny-cfg', '-n', 'shop', '-o', 'jsonpath={.data.message}')).stdout).toBe('bye');
    const history = await helm('history', 'tiny', '-n', 'shop', '-o', 'json');
    expect(JSON.parse(history.stdout).map((r: { revision: number; status: string }) => `${r.revision}:${r.status}`)).toEqual(['1:superseded', '2:deployed']);

    const uninstall = await helm('uninstall', 'tiny', '--namespace', 'shop');
    expect(uninstall.code, uninstall.stderr).toBe(0);
    const left = await k('get', 'deploy,rs,svc,cm,secret,sa,rolebinding', '-n', 'shop', '-o', 'name');
    // Only the namespace's default ServiceAccount remains; helm's release Secrets are purged too.
    expect(left.stdout.trim().split('\n')).toEqual(['serviceaccount/default']);
    expect((await k('get', 'clusterrole', 'tiny-cr')).code).not.toBe(0);
  });
});
