import { describe, expect, it } from 'vitest';
import { compileInjectionConfig } from '../../src/injection/injection-config.ts';
import { planInjection, type InjectionDecision, type PodLike } from '../../src/injection/pod-patcher.ts';
import { jsonPatch } from '../../../test/helpers/json-patch.ts';

const config = compileInjectionConfig({
  image: 'ghcr.io/sluice-dev/sluice-proxy:0.1.0',
  operatorAddress: 'sluice-discovery.sluice-system.svc:15010',
  resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
  redis: { url: 'redis://redis.shop.svc:6379' },
  lockNodes: ['redis://lock-0:6379', 'redis://lock-1:6379', 'redis://lock-2:6379'],
});

type Obj = Record<string, any>;

function pod(spec: Obj, annotations?: Record<string, string>): PodLike {
  return { metadata: { name: 'p', namespace: 'shop', ...(annotations ? { annotations } : {}) }, spec } as PodLike;
}
const app = (ports?: Obj[], extra: Obj = {}) => ({ name: 'app', image: 'example/app:1', ...(ports ? { ports } : {}), ...extra });

/** Applies the decision's patch (as the API server would) and returns the pod. */
function injected(decision: InjectionDecision, p: PodLike): Obj {
  expect(decision.action, JSON.stringify(decision)).toBe('patch');
  if (decision.action !== 'patch') throw new Error('unreachable');
  return jsonPatch(p, decision.patch) as Obj;
}
const sidecarOf = (p: Obj): Obj => p.spec.initContainers[0];
const envOf = (c: Obj): Record<string, unknown> => Object.fromEntries(c.env.map((e: Obj) => [e.name, e.value ?? e.valueFrom]));

describe('planInjection: whether to inject', () => {
  const cases: { name: string; p: PodLike; nsOptIn: boolean; want: InjectionDecision['action']; reason?: string }[] = [
    { name: 'namespace opted in', p: pod({ containers: [app()] }), nsOptIn: true, want: 'patch' },
    { name: 'namespace not opted in, no annotation', p: pod({ containers: [app()] }), nsOptIn: false, want: 'skip', reason: 'NotOptedIn' },
    { name: 'pod annotation opts in', p: pod({ containers: [app()] }, { 'sluice.dev/inject': 'true' }), nsOptIn: false, want: 'patch' },
    { name: 'pod annotation opts out of an enabled namespace', p: pod({ containers: [app()] }, { 'sluice.dev/inject': 'false' }), nsOptIn: true, want: 'skip', reason: 'OptedOut' },
    { name: 'already injected (sidecar init container)', p: pod({ initContainers: [{ name: 'sluice-proxy', image: 'x' }], containers: [app()] }), nsOptIn: true, want: 'skip', reason: 'AlreadyInjected' },
    { name: 'already injected even when annotated true', p: pod({ initContainers: [{ name: 'sluice-proxy', image: 'x' }], containers: [app()] }, { 'sluice.dev/inject': 'true' }), nsOptIn: false, want: 'skip', reason: 'AlreadyInjected' },
    { name: 'host network', p: pod({ hostNetwork: true, containers: [app()] }), nsOptIn: true, want: 'skip', reason: 'HostNetwork' },
    { name: 'inject annotation with a bad value', p: pod({ containers: [app()] }, { 'sluice.dev/inject': 'yes' }), nsOptIn: true, want: 'deny', reason: 'SLUICE_ERR_INVALID_ANNOTATION' },
  ];
  it.each(cases)('$name → $want', ({ p, nsOptIn, want, reason }) => {
    const d = planInjection({ pod: p, namespaceOptedIn: nsOptIn, config });
    expect(d.action).toBe(want);
    if (d.action === 'skip') expect(d.reason).toBe(reason);
    if (d.action === 'deny') expect(d.code).toBe(reason);
  });

  it('is idempotent: the injected pod gets no second patch', () => {
    const p = pod({ containers: [app([{ name: 'http', containerPort: 8080 }])] });
    const once = injected(planInjection({ pod: p, namespaceOptedIn: true, config }), p);
    expect(planInjection({ pod: once as PodLike, namespaceOptedIn: true, config })).toEqual({ action: 'skip', reason: 'AlreadyInjected' });
  });
});

describe('planInjection: the sidecar', () => {
  const p = pod({ containers: [app([{ name: 'http', containerPort: 8080 }])] });
  const out = injected(planInjection({ pod: p, namespaceOptedIn: true, config }), p);
  const sc = sidecarOf(out);

  it('is a native sidecar placed first', () => {
    expect(sc).toMatchObject({ name: 'sluice-proxy', image: config.image, restartPolicy: 'Always' });
    expect(out.spec.containers.map((c: Obj) => c.name)).toEqual(['app']);
  });

  it('runs with the restricted security context', () => {
    expect(sc.securityContext).toEqual({
      runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false,
      privileged: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  it('gets pod identity from the downward API and the operator, Redis and lock nodes from config', () => {
    const env = envOf(sc);
    expect(env.SLUICE_OPERATOR).toBe('sluice-discovery.sluice-system.svc:15010');
    expect(env.SLUICE_POD_NAME).toEqual({ fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } });
    expect(env.SLUICE_POD_NAMESPACE).toEqual({ fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } });
    expect(env.SLUICE_NODE_NAME).toEqual({ fieldRef: { apiVersion: 'v1', fieldPath: 'spec.nodeName' } });
    expect(env.SLUICE_ID).toEqual({ fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } });
    expect(env.SLUICE_REDIS).toBe('redis://redis.shop.svc:6379');
    expect(env.SLUICE_LOCK_NODES).toBe('redis://lock-0:6379,redis://lock-1:6379,redis://lock-2:6379');
    expect(env.SLUICE_TOKEN_FILE).toBe('/var/run/secrets/sluice.dev/token/token');
    const podinfo = out.spec.volumes.find((v: Obj) => v.name === 'sluice-podinfo');
    expect(podinfo.downwardAPI.items).toContainEqual({ path: 'labels', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.labels' } });
  });

  it('takes the Redis URL and the lock node URLs from Secrets when configured so (passwords stay out of the pod spec)', () => {
    const fromSecrets = compileInjectionConfig({
      image: config.image, operatorAddress: config.operatorAddress,
      redis: { urlSecret: { name: 'redis-auth', key: 'url' } },
      lockNodesSecret: { name: 'lock-nodes', key: 'nodes' },
    });
    const e = envOf(sidecarOf(injected(planInjection({ pod: p, namespaceOptedIn: true, config: fromSecrets }), p)));
    expect(e.SLUICE_REDIS).toEqual({ secretKeyRef: { name: 'redis-auth', key: 'url' } });
    expect(e.SLUICE_LOCK_NODES).toEqual({ secretKeyRef: { name: 'lock-nodes', key: 'nodes' } });
    expect(e.SLUICE_REDIS_SENTINEL_PASSWORD).toBeUndefined();
  });

  it('gives the sidecar the sentinels’ own password from its own Secret', () => {
    const sentinel = compileInjectionConfig({
      image: config.image, operatorAddress: config.operatorAddress,
      redis: { url: 'redis+sentinel://s0.data.svc:26379,s1.data.svc:26379/mymaster', sentinelPasswordSecret: { name: 'sentinel-auth', key: 'password' } },
    });
    const e = envOf(sidecarOf(injected(planInjection({ pod: p, namespaceOptedIn: true, config: sentinel }), p)));
    expect(e.SLUICE_REDIS).toBe('redis+sentinel://s0.data.svc:26379,s1.data.svc:26379/mymaster');
    expect(e.SLUICE_REDIS_SENTINEL_PASSWORD).toEqual({ secretKeyRef: { name: 'sentinel-auth', key: 'password' } });
  });

  it('mounts a projected service-account token for the discovery stream', () => {
    const token = out.spec.volumes.find((v: Obj) => v.name === 'sluice-token');
    expect(token.projected.sources).toEqual([{ serviceAccountToken: { audience: 'sluice.dev/discovery', expirationSeconds: 3600, path: 'token' } }]);
    expect(sc.volumeMounts).toContainEqual({ name: 'sluice-token', mountPath: '/var/run/secrets/sluice.dev/token', readOnly: true });
  });

  it('probes the admin port', () => {
    expect(sc.startupProbe.httpGet).toEqual({ path: '/healthz', port: 15000, scheme: 'HTTP' });
    expect(sc.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 15000, scheme: 'HTTP' });
    expect(sc.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 15000, scheme: 'HTTP' });
  });

  it('takes resources from config and marks the pod injected', () => {
    expect(sc.resources).toEqual({ requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } });
    expect(out.metadata.annotations).toEqual({ 'sluice.dev/injected': config.image });
    expect(out.metadata.labels).toEqual({ 'sluice.dev/proxy': 'injected' });
  });
});

describe('planInjection: ports', () => {
  it('takes over named http and grpc ports and leaves numbered ones alone', () => {
    const p = pod({ containers: [app([
      { name: 'http', containerPort: 8080 }, { name: 'grpc', containerPort: 50051 }, { containerPort: 9090 }, { name: 'metrics', containerPort: 9100 },
    ])] });
    const out = injected(planInjection({ pod: p, namespaceOptedIn: true, config }), p);
    expect(out.spec.containers[0].ports).toEqual([
      { name: 'app-http', containerPort: 8080 }, { name: 'app-grpc', containerPort: 50051 }, { containerPort: 9090 }, { name: 'metrics', containerPort: 9100 },
    ]);
    const sc = sidecarOf(out);
    expect(sc.ports).toEqual([
      { name: 'http', containerPort: 15080, protocol: 'TCP' },
      { name: 'grpc', containerPort: 15081, protocol: 'TCP' },
      { name: 'sluice-admin', containerPort: 15000, protocol: 'TCP' },
    ]);
    expect(envOf(sc)).toMatchObject({ SLUICE_APP_HTTP: '127.0.0.1:8080', SLUICE_APP_GRPC: '127.0.0.1:50051' });
  });

  it('numbered-only ports: no takeover, the sidecar keeps its own port names and no app address', () => {
    const p = pod({ containers: [app([{ containerPort: 8080 }])] });
    const out = injected(planInjection({ pod: p, namespaceOptedIn: true, config }), p);
    expect(out.spec.containers[0].ports).toEqual([{ containerPort: 8080 }]);
    expect(sidecarOf(out).ports.map((x: Obj) => x.name)).toEqual(['sluice-http', 'sluice-grpc', 'sluice-admin']);
    expect(envOf(sidecarOf(out)).SLUICE_APP_HTTP).toBeUndefined();
  });

  it('pods without container ports are injected', () => {
    const p = pod({ containers: [app()] });
    const out = injected(planInjection({ pod: p, namespaceOptedIn: true, config }), p);
    expect(out.spec.containers[0].ports).toBeUndefined();
    expect(sidecarOf(out).name).toBe('sluice-proxy');
  });

  it('multiple containers: each name is taken from whichever container declares it', () => {
    const p = pod({ containers: [
      app([{ name: 'grpc', containerPort: 50051 }]),
      { name: 'web', image: 'example/web:1', ports: [{ name: 'http', containerPort: 3000 }] },
    ] });
    const out = injected(planInjection({ pod: p, namespaceOptedIn: true, config }), p);
    expect(out.spec.containers[0].ports[0].name).toBe('app-grpc');
    expect(out.spec.containers[1].ports[0].name).toBe('app-http');
    expect(envOf(sidecarOf(out))).toMatchObject({ SLUICE_APP_HTTP: '127.0.0.1:3000', SLUICE_APP_GRPC: '127.0.0.1:50051' });
  });

  it('renames probes and hooks that refer to a taken-over port by name', () => {
    const p = pod({ containers: [app([{ name: 'http', containerPort: 8080 }], {
      readinessProbe: { httpGet: { path: '/ready', port: 'http' } },
      livenessProbe: { tcpSocket: { port: 'http' } },
      startupProbe: { httpGet: { path: '/up', port: 8080 } },
      lifecycle: { preStop: { httpGet: { path: '/drain', port: 'http' } } },
    })] });
    const out = injected(planInjection({ pod: p, namespaceOptedIn: true, config }), p);
    const c = out.spec.containers[0];
    expect(c.readinessProbe.httpGet.port).toBe('app-http');
    expect(c.livenessProbe.tcpSocket.port).toBe('app-http');
    expect(c.startupProbe.httpGet.port).toBe(8080);
    expect(c.lifecycle.preStop.httpGet.port).toBe('app-http');
  });

  it('a UDP port named http is not taken over', () => {
    const p = pod({ containers: [app([{ name: 'http', containerPort: 8080, protocol: 'UDP' }])] });
    const out = injected(planInjection({ pod: p, namespaceOptedIn: true, config }), p);
    expect(out.spec.containers[0].ports[0].name).toBe('http');
    expect(sidecarOf(out).ports[0].name).toBe('sluice-http');
  });

  const refused: { name: string; containers: Obj[]; code: string; message: RegExp }[] = [
    { name: 'app uses a sidecar port', containers: [app([{ name: 'web', containerPort: 15080 }])], code: 'SLUICE_ERR_PORT_CONFLICT', message: /declares port 15080/ },
    { name: 'two containers name a port http', containers: [app([{ name: 'http', containerPort: 8080 }]), { name: 'b', image: 'b', ports: [{ name: 'http', containerPort: 8081 }] }], code: 'SLUICE_ERR_PORT_TAKEOVER', message: /more than one container \(app, b\)/ },
    { name: 'app already has app-http', containers: [app([{ name: 'http', containerPort: 8080 }, { name: 'app-http', containerPort: 8081 }])], code: 'SLUICE_ERR_PORT_TAKEOVER', message: /already has a port named "app-http"/ },
  ];
  it.each(refused)('refuses: $name', ({ containers, code, message }) => {
    const d = planInjection({ pod: pod({ containers }), namespaceOptedIn: true, config });
    expect(d).toMatchObject({ action: 'deny', code });
    if (d.action === 'deny') expect(d.message).toMatch(message);
  });
});

describe('planInjection: existing init containers, volumes and annotations', () => {
  it('puts the sidecar before existing init containers and appends its volumes', () => {
    const p = pod({
      initContainers: [{ name: 'migrate', image: 'example/migrate:1' }],
      containers: [app()],
      volumes: [{ name: 'data', emptyDir: {} }],
    }, { team: 'shop' });
    const out = injected(planInjection({ pod: p, namespaceOptedIn: true, config }), p);
    expect(out.spec.initContainers.map((c: Obj) => c.name)).toEqual(['sluice-proxy', 'migrate']);
    expect(out.spec.volumes.map((v: Obj) => v.name)).toEqual(['data', 'sluice-token', 'sluice-podinfo', 'sluice-tmp']);
    expect(out.metadata.annotations).toEqual({ team: 'shop', 'sluice.dev/injected': config.image });
  });

  it('adds the proxy label next to existing labels', () => {
    const p = { metadata: { name: 'p', labels: { app: 'user-service' } }, spec: { containers: [app()] } } as PodLike;
    const out = injected(planInjection({ pod: p, namespaceOptedIn: true, config }), p);
    expect(out.metadata.labels).toEqual({ app: 'user-service', 'sluice.dev/proxy': 'injected' });
  });

  it('refuses a pod that already uses one of the sidecar volume names', () => {
    const d = planInjection({ pod: pod({ containers: [app()], volumes: [{ name: 'sluice-token', emptyDir: {} }] }), namespaceOptedIn: true, config });
    expect(d).toMatchObject({ action: 'deny', code: 'SLUICE_ERR_NAME_CONFLICT' });
  });
});

describe('planInjection: resource annotations', () => {
  it('overrides the configured resources', () => {
    const p = pod({ containers: [app()] }, {
      'sluice.dev/proxy-cpu-request': '200m', 'sluice.dev/proxy-cpu-limit': '1',
      'sluice.dev/proxy-memory-request': '128Mi', 'sluice.dev/proxy-memory-limit': '512Mi',
    });
    const out = injected(planInjection({ pod: p, namespaceOptedIn: true, config }), p);
    expect(sidecarOf(out).resources).toEqual({ requests: { cpu: '200m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } });
  });

  it('overrides only what is annotated', () => {
    const p = pod({ containers: [app()] }, { 'sluice.dev/proxy-memory-limit': '1Gi' });
    const out = injected(planInjection({ pod: p, namespaceOptedIn: true, config }), p);
    expect(sidecarOf(out).resources).toEqual({ requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '1Gi' } });
  });

  // V8's heap follows the sidecar's memory limit (operator/src/injection/v8-heap.ts): a semi-space
  // of limit/128 between 1 and 16 MiB, an old space of half the limit but at least 32 MiB.
  const heap: [string, string | undefined, string][] = [
    ['the configured 256Mi', undefined, '--max-semi-space-size=2 --max-old-space-size=128'],
    ['64Mi', '64Mi', '--max-semi-space-size=1 --max-old-space-size=32'],
    ['128Mi', '128Mi', '--max-semi-space-size=1 --max-old-space-size=64'],
    ['512Mi', '512Mi', '--max-semi-space-size=4 --max-old-space-size=256'],
    ['1.5Gi', '1.5Gi', '--max-semi-space-size=12 --max-old-space-size=768'],
    ['4Gi (young generation at V8\'s ceiling)', '4Gi', '--max-semi-space-size=16 --max-old-space-size=2048'],
    ['300M (decimal)', '300M', '--max-semi-space-size=2 --max-old-space-size=143'],
  ];
  it.each(heap)('sets NODE_OPTIONS from a memory limit of %s', (_, limit, want) => {
    const p = pod({ containers: [app()] }, limit ? { 'sluice.dev/proxy-memory-limit': limit } : undefined);
    const out = injected(planInjection({ pod: p, namespaceOptedIn: true, config }), p);
    expect(envOf(sidecarOf(out)).NODE_OPTIONS).toBe(want);
    expect(sidecarOf(out).env.filter((e: Obj) => e.name === 'NODE_OPTIONS')).toHaveLength(1);
  });

  it('sets only the young generation when the sidecar has no memory limit', () => {
    const unlimited = compileInjectionConfig({
      image: 'ghcr.io/sluice-dev/sluice-proxy:0.1.0',
      operatorAddress: 'sluice-discovery.sluice-system.svc:15010',
      resources: { requests: { cpu: '50m', memory: '64Mi' } },
    });
    const p = pod({ containers: [app()] });
    const out = injected(planInjection({ pod: p, namespaceOptedIn: true, config: unlimited }), p);
    expect(sidecarOf(out).resources.limits).toBeUndefined();
    expect(envOf(sidecarOf(out)).NODE_OPTIONS).toBe('--max-semi-space-size=2');
  });

  const hostile: [string, string, RegExp][] = [
    ['sluice.dev/proxy-cpu-request', '100m\n  privileged: true', /is not a Kubernetes quantity/],
    ['sluice.dev/proxy-cpu-request', '1"}, "securityContext": {"privileged": true', /is not a Kubernetes quantity/],
    ['sluice.dev/proxy-memory-limit', '128Mi ', /is not a Kubernetes quantity/],
    ['sluice.dev/proxy-memory-limit', '-1Gi', /is not a Kubernetes quantity/],
    ['sluice.dev/proxy-memory-limit', '1e9', /is not a Kubernetes quantity/],
    ['sluice.dev/proxy-memory-limit', '', /is not a Kubernetes quantity/],
    ['sluice.dev/proxy-memory-limit', `${'9'.repeat(200)}`, /is not a Kubernetes quantity/],
    ['sluice.dev/proxy-cpu-limit', '100000', /exceeds the maximum of 16/],
    ['sluice.dev/proxy-memory-limit', '8Ei', /exceeds the maximum of 16Gi/],
    ['sluice.dev/proxy-memory-limit', '1', /below the minimum of 16Mi/],
    ['sluice.dev/proxy-cpu-request', '0', /below the minimum of 1m/],
    ['sluice.dev/proxy-memory-request', '1Gi', /memory request 1Gi is above its limit 256Mi/],
  ];
  it.each(hostile)('refuses %s: %j', (key, value, message) => {
    const d = planInjection({ pod: pod({ containers: [app()] }, { [key]: value }), namespaceOptedIn: true, config });
    expect(d).toMatchObject({ action: 'deny', code: 'SLUICE_ERR_INVALID_ANNOTATION' });
    if (d.action !== 'deny') return;
    expect(d.message).toMatch(message);
    // The message names the value escaped: no raw newline or quote ends up in the API response text.
    expect(d.message).not.toContain('\n');
  });

  it('does not judge the annotations of a pod it does not inject', () => {
    const d = planInjection({ pod: pod({ containers: [app()] }, { 'sluice.dev/inject': 'false', 'sluice.dev/proxy-cpu-request': 'lots' }), namespaceOptedIn: true, config });
    expect(d).toEqual({ action: 'skip', reason: 'OptedOut' });
  });
});

// The operator's CA bundle reaches the sidecar as SLUICE_OPERATOR_CA (inline PEM),
// from the live CA at admission time; no volume, no ConfigMap in the pod's namespace.
describe('planInjection: the operator CA (discovery TLS)', () => {
  const CA = '-----BEGIN CERTIFICATE-----\nMIIBnew\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIBold\n-----END CERTIFICATE-----\n';
  const cases: { name: string; operatorCaPem?: string; want: string | undefined }[] = [
    { name: 'CA bundle given (operator serves TLS)', operatorCaPem: CA, want: CA },
    { name: 'no CA (operator serves plaintext)', want: undefined },
    { name: 'empty CA (no certificate yet) is treated as none', operatorCaPem: '', want: undefined },
  ];
  it.each(cases)('$name → SLUICE_OPERATOR_CA $want', ({ operatorCaPem, want }) => {
    const p = pod({ containers: [app([{ name: 'http', containerPort: 8080 }])] });
    const out = injected(planInjection({ pod: p, namespaceOptedIn: true, config, ...(operatorCaPem !== undefined ? { operatorCaPem } : {}) }), p);
    const sc = sidecarOf(out);
    expect(envOf(sc).SLUICE_OPERATOR_CA).toBe(want);
    const names = sc.env.map((e: Obj) => e.name);
    if (want !== undefined) expect(names.indexOf('SLUICE_OPERATOR_CA')).toBe(names.indexOf('SLUICE_OPERATOR') + 1);
    // Least privilege: the CA travels in the pod spec; nothing is mounted for it.
    expect(out.spec.volumes.map((v: Obj) => v.name)).toEqual(['sluice-token', 'sluice-podinfo', 'sluice-tmp']);
    expect(sc.volumeMounts.map((m: Obj) => m.name)).toEqual(['sluice-token', 'sluice-podinfo', 'sluice-tmp']);
  });

  it('a pod injected before a CA rotation is not re-patched with the new CA (it keeps the old one until recreated)', () => {
    const p = pod({ containers: [app()] });
    const once = injected(planInjection({ pod: p, namespaceOptedIn: true, config, operatorCaPem: CA }), p);
    expect(planInjection({ pod: once as PodLike, namespaceOptedIn: true, config, operatorCaPem: '-----BEGIN CERTIFICATE-----\nMIIBrotated\n-----END CERTIFICATE-----\n' }))
      .toEqual({ action: 'skip', reason: 'AlreadyInjected' });
  });
});

describe('planInjection on reinvocation, after a later webhook added ports', () => {
  it('takes over an http port another injector added, and then leaves the pod alone', () => {
    const first = injected(planInjection({ pod: pod({ containers: [app([{ containerPort: 9090 }])] }), namespaceOptedIn: true, config }), pod({ containers: [app([{ containerPort: 9090 }])] }));
    expect(sidecarOf(first).ports[0].name).toBe('sluice-http');
    // A later webhook adds a container whose port a Service targets by the name "http".
    const later = { ...first, spec: { ...first.spec, containers: [...first.spec.containers, { name: 'late', image: 'late:1', ports: [{ name: 'http', containerPort: 9000 }] }] } } as PodLike;
    const again = injected(planInjection({ pod: later, namespaceOptedIn: true, config }), later);
    expect(again.spec.containers[1].ports[0].name).toBe('app-http');
    expect(sidecarOf(again).ports[0].name).toBe('http');
    expect(envOf(sidecarOf(again)).SLUICE_APP_HTTP).toBe('127.0.0.1:9000');
    expect(planInjection({ pod: again as PodLike, namespaceOptedIn: true, config })).toEqual({ action: 'skip', reason: 'AlreadyInjected' });
  });

  it('changes nothing when the name was taken over at injection already, or cannot be', () => {
    const withHttp = pod({ containers: [app([{ name: 'http', containerPort: 8080 }])] });
    const first = injected(planInjection({ pod: withHttp, namespaceOptedIn: true, config }), withHttp);
    const clash = { ...first, spec: { ...first.spec, containers: [...first.spec.containers, { name: 'late', ports: [{ name: 'http', containerPort: 9000 }] }] } } as PodLike;
    expect(planInjection({ pod: clash, namespaceOptedIn: true, config })).toEqual({ action: 'skip', reason: 'AlreadyInjected' });
  });
});
