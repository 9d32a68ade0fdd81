/**
 * The example manifests (examples/k8s/, examples/<app>/k8s/) on the real control plane, with real
 * kubectl: their Deployments get ReplicaSets and Pods from the controller-manager, the Pods pass
 * the real admission chain — the operator's injection webhook running in-process, configured
 * exactly as `helm install -f test/kind/values.yaml` configures it in the kind e2e, then the API
 * server's Pod validation and the namespace's `restricted` Pod Security enforcement — and the
 * scheduler places them on kwok's nodes, where they run.
 *
 * What a broken manifest would do in a cluster, and what here catches it first:
 *  - a policy field misspelled or out of range     → refused by the CRD schema on apply
 *  - a selector that matches no pod (typo in a label) → the selector ↔ template cross-check
 *  - a Service targeting a number, or a name no container declares → bypasses the sidecar
 *  - a values.yaml that breaks injection           → pods come back without the sidecar
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { freePort } from '../../lib/net.ts';
import { injectionOptionsFromEnv, startInjection, type Injection } from '../../operator/src/injection/start-injection.ts';
import { eventually } from '../helpers/eventually.ts';
import { kubectl } from '../helpers/kubectl.ts';
import { TestCluster } from '../../operator/test/helpers/cluster.ts';
import { OPERATOR_RELEASE } from '../cluster/cluster-info.ts';
import { CHART, helmOffline } from '../chart/render-chart.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const BASE_DIR = 'examples/k8s';
const APPS = ['user-service', 'push-hub', 'order-worker'] as const;
/** Deployments of an example beside its app's own: the order producer lives with the worker. */
const PRODUCERS = { 'order-api': 'order-worker' } as const;
const DEPLOYMENTS = [...APPS, ...Object.keys(PRODUCERS)];
const VALUES = join(ROOT, 'test/kind/values.yaml');
const RELEASE_NS = OPERATOR_RELEASE.namespace;
/** The sidecar's listeners, which take over the app's port names (operator/src/injection). */
const TAKEN_OVER = { http: 15080, grpc: 15081 } as const;
const POLICY_KINDS = ['RateLimitPolicy', 'CircuitBreakerPolicy', 'TaskQueue', 'LeaderElection'];

// Manifests are free-form YAML: fields are read as `any` and asserted on.
type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [k: string]: any };
interface Manifest {
  /** Repository-relative path. */
  file: string;
  /** The example directory it belongs to (`base` for examples/k8s). */
  app: string;
  docs: Obj[];
}

function kustomizationResources(dir: string): string[] {
  const k = parse(readFileSync(join(ROOT, dir, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
  return k.resources.map((r) => `${dir}/${r}`);
}

function load(file: string, app: string): Manifest {
  const docs: Obj[] = [];
  for (const d of parseAllDocuments(readFileSync(join(ROOT, file), 'utf8'))) {
    if (d.errors.length) throw new Error(`${file}: ${d.errors[0]?.message}`);
    const obj = d.toJS() as Obj | null;
    if (obj) docs.push(obj);
  }
  return { file, app, docs };
}

// The namespace first (everything else lives in it), then Redis, then the examples.
const manifests: Manifest[] = [
  ...kustomizationResources(BASE_DIR).map((f) => load(f, 'base')),
  ...APPS.flatMap((app) => kustomizationResources(`examples/${app}/k8s`).map((f) => load(f, app))),
];
const all = manifests.flatMap((m) => m.docs.map((doc) => ({ doc, app: m.app, file: m.file })));
const ofKind = (kind: string) => all.filter((e) => e.doc.kind === kind);
const values = parse(readFileSync(VALUES, 'utf8')) as { redis: { url: string }; lockNodes: string[]; sidecar: { image: { repository: string; tag: string; pullPolicy: string } } };

type Selector = { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] };
/** A label selector as the API server reads it (an empty selector selects everything). */
function selects(sel: Selector, labels: Record<string, string> = {}): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const val = labels[e.key];
    const ok = e.operator === 'In' ? has && (e.values ?? []).includes(val as string)
      : e.operator === 'NotIn' ? !has || !(e.values ?? []).includes(val as string)
      : e.operator === 'Exists' ? has
      : e.operator === 'DoesNotExist' ? !has
      : false;
    if (!ok) return false;
  }
  return true;
}

/** `expected` is contained in `actual`: every field the manifest sets came back unchanged. */
function containedIn(expected: unknown, actual: unknown, path = ''): string[] {
  if (expected && typeof expected === 'object' && !Array.isArray(expected)) {
    if (!actual || typeof actual !== 'object') return [`${path}: missing`];
    return Object.entries(expected).flatMap(([k, v]) => containedIn(v, (actual as Record<string, unknown>)[k], `${path}.${k}`));
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) return [`${path}: ${JSON.stringify(actual)} ≠ ${JSON.stringify(expected)}`];
    return expected.flatMap((v, i) => containedIn(v, actual[i], `${path}[${i}]`));
  }
  return expected === actual ? [] : [`${path}: ${JSON.stringify(actual)} ≠ ${JSON.stringify(expected)}`];
}

let cluster: TestCluster;
let injection: Injection | undefined;
let work: string;
const k = (...args: string[]) => kubectl(cluster.kubeconfigPath, args);
async function getJson(...args: string[]): Promise<any> {
  const r = await k('get', ...args, '-o', 'json');
  if (r.code !== 0) throw new Error(`kubectl get ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sluice-kind-manifests-'));
  // The manifests create the shop and redis namespaces themselves: none may be left from before.
  cluster = await TestCluster.start([], { absent: ['shop', 'redis'] });

  // What `helm install sluice charts/sluice -f test/kind/values.yaml` gives the cluster: the
  // webhook configuration, and the operator's injection config and environment. The API server
  // here cannot reach a Service, so the webhook is named by URL.
  const port = await freePort();
  const rendered = await helmOffline(['template', 'sluice', CHART, '--namespace', RELEASE_NS, '-f', VALUES, '--set', `webhook.url=https://127.0.0.1:${port}`]);
  if (rendered.code !== 0) throw new Error(`helm template -f test/kind/values.yaml: ${rendered.stderr}`);
  const chart = parseAllDocuments(rendered.stdout).map((d) => d.toJS() as Obj | null).filter((d): d is Obj => d !== null);
  const webhookConfig = chart.find((d) => d.kind === 'MutatingWebhookConfiguration');
  const configMap = chart.find((d) => d.kind === 'ConfigMap' && typeof d.data?.['injection.json'] === 'string');
  const operator = chart.find((d) => d.kind === 'Deployment');
  if (!webhookConfig || !configMap || !operator) throw new Error('the chart rendered no webhook configuration, injection ConfigMap or operator Deployment');
  const applied = await kubectl(cluster.kubeconfigPath, ['apply', '-f', '-'], { input: stringify(webhookConfig) });
  if (applied.code !== 0) throw new Error(`applying the chart's MutatingWebhookConfiguration: ${applied.stderr}`);

  const configFile = join(work, 'injection.json');
  writeFileSync(configFile, configMap.data['injection.json']);
  const env: NodeJS.ProcessEnv = {};
  for (const e of operator.spec.template.spec.containers[0].env as { name: string; value?: string }[]) if (e.value !== undefined) env[e.name] = e.value;
  Object.assign(env, { SLUICE_OPERATOR_INJECTION_CONFIG: configFile, POD_NAMESPACE: RELEASE_NS, SLUICE_OPERATOR_WEBHOOK_LISTEN: `127.0.0.1:${port}` });
  const options = injectionOptionsFromEnv(env, cluster.client);
  if (!options) throw new Error('the rendered chart does not turn injection on');
  expect(options.webhookUrl).toBe(`https://127.0.0.1:${port}`);
  injection = await startInjection(options);
});

afterAll(async () => {
  await cluster?.client.delete('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/sluice-sidecar-injector').catch(() => {});
  await injection?.stop();
  // The examples' Deployments would keep their Pods running for the files after this one.
  await k('delete', 'namespace', 'shop', 'redis', '--wait=false').catch(() => {});
  await cluster?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('example manifests on the real control plane', () => {
  it('kubectl apply -f accepts every manifest, the shop namespace first', async () => {
    expect(manifests[0]?.docs[0]).toMatchObject({ kind: 'Namespace', metadata: { name: 'shop', labels: { 'sluice.dev/injection': 'enabled' } } });
    for (const m of manifests) {
      const r = await k('apply', '-f', join(ROOT, m.file));
      expect(r.stderr, m.file).toBe('');
      expect(r.code, m.file).toBe(0);
      // One line per object: `<kind>.<group>/<name> created`.
      for (const d of m.docs) expect(r.stdout, `${m.file}: ${d.kind}/${d.metadata.name}`).toMatch(new RegExp(`^${d.kind.toLowerCase()}[\\w.]*/${d.metadata.name} created$`, 'm'));
    }
    expect(all.length).toBeGreaterThanOrEqual(20);
  });

  it('stores the policies as written (nothing pruned) with the CRD defaults filled in, and refuses a misspelled one', async () => {
    const policies = all.filter((e) => POLICY_KINDS.includes(e.doc.kind));
    expect(policies.map((e) => `${e.doc.kind}/${e.doc.metadata.name}`).sort()).toEqual([
      'CircuitBreakerPolicy/user-api', 'LeaderElection/push-broadcaster', 'RateLimitPolicy/push-hub', 'RateLimitPolicy/user-api', 'TaskQueue/orders',
    ]);
    let defaulted = 0;
    for (const { doc } of policies) {
      const stored = await getJson(doc.kind.toLowerCase(), doc.metadata.name, '-n', doc.metadata.namespace as string);
      expect(containedIn(doc.spec, stored.spec), `${doc.kind}/${doc.metadata.name}`).toEqual([]);
      if (JSON.stringify(stored.spec) !== JSON.stringify(doc.spec)) defaulted++;
    }
    // Defaults (e.g. the TokenBucket algorithm, the key of an unkeyed rule) came from the schemas.
    expect(defaulted).toBeGreaterThan(0);

    // The same schemas refuse a typo, so the acceptance above means something.
    const rlp = structuredClone(ofKind('RateLimitPolicy').find((e) => e.doc.metadata.name === 'user-api')!.doc);
    rlp.metadata.name = 'user-api-typo';
    rlp.spec.rules[1].scope = 'global';
    const refused = await kubectl(cluster.kubeconfigPath, ['apply', '-f', '-'], { input: stringify(rlp) });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('scope');
  });

  it('kubectl get rlp,cbp,tq,le -n shop lists them with their printer columns', async () => {
    const r = await k('get', 'rlp,cbp,tq,le', '-n', 'shop');
    expect(r.code, r.stderr).toBe(0);
    const headers = r.stdout.split('\n').filter((l) => l.startsWith('NAME'));
    expect(headers.map((h) => h.split(/\s+/).filter(Boolean))).toEqual([
      ['NAME', 'MODE', 'ACCEPTED', 'PROGRAMMED', 'PODS', 'SYNCED', 'AGE'],
      ['NAME', 'MODE', 'ACCEPTED', 'PROGRAMMED', 'PODS', 'SYNCED', 'AGE'],
      // Columns of priority 1 (LENGTH, PENDING, CONSUMERS, REPLICAS, TTL) only show with -o wide.
      ['NAME', 'STREAM', 'READY', 'LAG', 'AGE'],
      ['NAME', 'HOLDER', 'TOKEN', 'AGE'],
    ]);
    for (const row of [/^ratelimitpolicy\.sluice\.dev\/user-api\s+Enforce\s/m, /^ratelimitpolicy\.sluice\.dev\/push-hub\s+Enforce\s/m,
      /^circuitbreakerpolicy\.sluice\.dev\/user-api\s+Enforce\s/m, /^taskqueue\.sluice\.dev\/orders\s+shop\.orders\s/m, /^leaderelection\.sluice\.dev\/push-broadcaster\s/m]) {
      expect(r.stdout).toMatch(row);
    }
  });

  it('each policy selects the pods of its own example\'s Deployment, and only those', () => {
    const deployments = ofKind('Deployment').filter((e) => e.app !== 'base');
    expect(deployments.map((e) => e.doc.metadata.name).sort()).toEqual([...DEPLOYMENTS].sort());
    for (const [producer, app] of Object.entries(PRODUCERS)) expect(deployments.find((d) => d.doc.metadata.name === producer)?.app, producer).toBe(app);
    for (const { doc, app } of all.filter((e) => POLICY_KINDS.includes(e.doc.kind))) {
      const selected = deployments.filter((d) => d.doc.metadata.namespace === doc.metadata.namespace && selects(doc.spec.selector, d.doc.spec.template.metadata.labels));
      expect(selected.map((d) => d.doc.metadata.name), `${doc.kind}/${doc.metadata.name} in ${app}`).toEqual([app]);
    }
    // The order producer posts to the queue from its own sidecar, but no policy — the TaskQueue
    // orders least of all — selects it: it must never become a consumer.
    for (const producer of Object.keys(PRODUCERS)) {
      const labels = deployments.find((d) => d.doc.metadata.name === producer)!.doc.spec.template.metadata.labels;
      const selecting = all.filter((e) => POLICY_KINDS.includes(e.doc.kind) && selects(e.doc.spec.selector, labels));
      expect(selecting.map((e) => `${e.doc.kind}/${e.doc.metadata.name}`), producer).toEqual([]);
      expect(Object.keys(labels).length, producer).toBeGreaterThan(0);
    }
    for (const { doc } of deployments) {
      // A Deployment's own selector must match its template, or the API server refuses it.
      expect(selects(doc.spec.selector, doc.spec.template.metadata.labels), doc.metadata.name).toBe(true);
    }
    const queue = ofKind('TaskQueue')[0]!.doc;
    const target = queue.spec.autoscale.scaleTargetRef;
    expect(ofKind(target.kind).map((e) => e.doc.metadata.name)).toContain(target.name);
    // The autoscaler owns the replica count: a replicas field would be reset by every apply.
    expect(ofKind('Deployment').find((e) => e.doc.metadata.name === target.name)!.doc.spec.replicas).toBeUndefined();
  });

  it('each Service targets a port name the sidecar takes over, declared by the pods it selects', () => {
    const services = ofKind('Service').filter((e) => e.app !== 'base');
    expect(services.map((e) => e.doc.metadata.name).sort()).toEqual(['push-hub', 'user-service']);
    for (const { doc: svc, app } of services) {
      const backends = ofKind('Deployment').filter((d) => d.doc.metadata.namespace === svc.metadata.namespace && selects({ matchLabels: svc.spec.selector }, d.doc.spec.template.metadata.labels));
      expect(backends.map((d) => d.doc.metadata.name), svc.metadata.name).toEqual([app]);
      const containers = backends[0]!.doc.spec.template.spec.containers as { ports?: { name?: string }[] }[];
      for (const port of svc.spec.ports as { targetPort: unknown; name: string }[]) {
        expect(Object.keys(TAKEN_OVER), `${svc.metadata.name} port ${port.name}`).toContain(port.targetPort);
        const declaring = containers.filter((c) => (c.ports ?? []).some((p) => p.name === port.targetPort));
        expect(declaring, `${svc.metadata.name}: exactly one container names a port ${String(port.targetPort)}`).toHaveLength(1);
      }
    }
    // The worker has no Service, but still names its port: that is how its sidecar finds the app.
    const worker = ofKind('Deployment').find((e) => e.doc.metadata.name === 'order-worker')!.doc;
    expect(worker.spec.template.spec.containers[0].ports.map((p: { name: string }) => p.name)).toEqual(['http']);
  });

  it('the kustomizations render exactly the files listed, and list every manifest of their directory', async () => {
    for (const dir of [BASE_DIR, ...APPS.map((a) => `examples/${a}/k8s`)]) {
      const files = readdirSync(join(ROOT, dir)).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml').map((f) => `${dir}/${f}`).sort();
      expect(kustomizationResources(dir).sort(), dir).toEqual(files);
      const r = await k('kustomize', join(ROOT, dir));
      expect(r.code, r.stderr).toBe(0);
      const rendered = parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj).map((o) => `${o.kind}/${o.metadata.name}`).sort();
      const fromFiles = all.filter((e) => e.file.startsWith(`${dir}/`)).map((e) => `${e.doc.kind}/${e.doc.metadata.name}`).sort();
      expect(rendered, dir).toEqual(fromFiles);
    }
  });

  it('Redis: a primary and three independent lock nodes, each behind its own Service, where values.yaml points', () => {
    const redis = ofKind('Deployment').filter((e) => e.app === 'base');
    const services = ofKind('Service').filter((e) => e.app === 'base');
    expect(redis.map((e) => e.doc.metadata.name).sort()).toEqual(['redis', 'redis-lock-0', 'redis-lock-1', 'redis-lock-2']);
    for (const { doc } of redis) {
      const own = services.filter((s) => selects({ matchLabels: s.doc.spec.selector }, doc.spec.template.metadata.labels));
      expect(own.map((s) => s.doc.metadata.name), doc.metadata.name).toEqual([doc.metadata.name]);
      expect(doc.spec.replicas).toBe(1);
    }
    const serviceUrl = (name: string) => {
      const svc = services.find((s) => s.doc.metadata.name === name)!.doc;
      return `redis://${name}.${svc.metadata.namespace}.svc.cluster.local:${svc.spec.ports[0].port}`;
    };
    expect(values.redis.url).toBe(serviceUrl('redis'));
    expect(values.lockNodes).toEqual(['redis-lock-0', 'redis-lock-1', 'redis-lock-2'].map(serviceUrl));
    // The push hub's own Redis client (pub/sub) uses the same primary.
    const hub = ofKind('Deployment').find((e) => e.app === 'push-hub')!.doc.spec.template.spec.containers[0];
    expect(hub.env.find((e: { name: string }) => e.name === 'REDIS_URL').value).toBe(values.redis.url);
  });

  it('pods of each Deployment come back injected, with port-name takeover and the Redis nodes of values.yaml', async () => {
    for (const app of DEPLOYMENTS) {
      const deploy = ofKind('Deployment').find((e) => e.app !== 'base' && e.doc.metadata.name === app)!.doc;
      const replicas = deploy.spec.replicas ?? 1;
      const pods = await eventually(async () => {
        const list = (await getJson('pods', '-n', 'shop', '-l', `app=${app}`)).items as Obj[];
        expect(list).toHaveLength(replicas);
        // Scheduled onto a kwok node, and running there.
        for (const p of list) expect(`${p.spec.nodeName} ${p.status?.phase}`).toMatch(/^kwok-node-\d+ Running$/);
        return list;
      }, { timeoutMs: 60_000, intervalMs: 250 });
      for (const pod of pods) {
        const where = `${app} pod ${pod.metadata.name}`;
        expect(pod.metadata.labels?.['sluice.dev/proxy'], where).toBe('injected');
        const init = pod.spec.initContainers as { name: string }[];
        expect(init.map((c) => c.name), where).toEqual(['sluice-proxy']);
        const sidecar = init[0] as any;
        expect(sidecar.restartPolicy).toBe('Always');
        expect(sidecar.image).toBe(`${values.sidecar.image.repository}:${values.sidecar.image.tag}`);
        expect(sidecar.imagePullPolicy).toBe(values.sidecar.image.pullPolicy);
        const env = Object.fromEntries((sidecar.env as { name: string; value?: string }[]).map((e) => [e.name, e.value]));
        expect(env.SLUICE_REDIS).toBe(values.redis.url);
        expect(env.SLUICE_LOCK_NODES).toBe(values.lockNodes.join(','));

        // Every name the template declared is now the sidecar's; the app keeps its port as app-<name>.
        const declared = (deploy.spec.template.spec.containers[0].ports as { name: string; containerPort: number }[]);
        const app0 = pod.spec.containers[0];
        for (const p of declared) {
          const name = p.name as keyof typeof TAKEN_OVER;
          expect(sidecar.ports.find((sp: { name: string }) => sp.name === name)?.containerPort, `${where}: sidecar port ${name}`).toBe(TAKEN_OVER[name]);
          expect(app0.ports.find((ap: { containerPort: number }) => ap.containerPort === p.containerPort)?.name, where).toBe(`app-${name}`);
          expect(env[`SLUICE_APP_${name.toUpperCase()}`], where).toBe(`127.0.0.1:${p.containerPort}`);
        }
        // Probes that used the name follow the app's port, so they keep checking the app.
        for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
          const port = app0[probe]?.tcpSocket?.port ?? app0[probe]?.httpGet?.port;
          if (port !== undefined) expect(port, `${where} ${probe}`).toMatch(/^app-/);
        }
      }
    }
    // Redis lives outside the injected namespace.
    const redisPods = await eventually(async () => {
      const list = (await getJson('pods', '-n', 'redis')).items as Obj[];
      expect(list).toHaveLength(4);
      return list;
    }, { timeoutMs: 60_000, intervalMs: 250 });
    for (const pod of redisPods) expect(pod.spec.initContainers ?? [], pod.metadata.name).toEqual([]);
  });

  it('every container of every injected pod, sidecar included, meets the restricted Pod Security Standard', async () => {
    const pods = (await getJson('pods', '-n', 'shop')).items as any[];
    expect(pods.length).toBe(2 + 3 + 1 + 1);
    const allowedVolumes = new Set(['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret']);
    for (const pod of pods) {
      const podSc = pod.spec.securityContext ?? {};
      for (const v of pod.spec.volumes ?? []) expect(Object.keys(v).filter((key) => key !== 'name').every((t) => allowedVolumes.has(t)), `${pod.metadata.name} volume ${v.name}`).toBe(true);
      for (const c of [...(pod.spec.initContainers ?? []), ...pod.spec.containers]) {
        const where = `${pod.metadata.name}/${c.name}`;
        const sc = c.securityContext ?? {};
        expect(sc.runAsNonRoot ?? podSc.runAsNonRoot, where).toBe(true);
        expect(sc.runAsUser ?? podSc.runAsUser, where).not.toBe(0);
        expect(sc.allowPrivilegeEscalation, where).toBe(false);
        expect(sc.readOnlyRootFilesystem, where).toBe(true);
        expect(sc.capabilities?.drop, where).toEqual(['ALL']);
        expect(sc.capabilities?.add ?? [], where).toEqual([]);
        expect(sc.privileged ?? false, where).toBe(false);
        expect((sc.seccompProfile ?? podSc.seccompProfile)?.type, where).toBe('RuntimeDefault');
        expect(c.resources?.requests?.memory && c.resources?.limits?.memory, `${where} memory request and limit`).toBeTruthy();
        expect(c.resources?.requests?.cpu, `${where} cpu request`).toBeTruthy();
      }
    }
  });
});
