/**
 * charts/sluice: `helm lint`, and `helm template` parsed document by document with the properties
 * that matter checked on the objects: the operator's availability and security, the webhook's
 * selection and failure policy, the injection config the operator reads, and the CRD copies.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileInjectionConfig } from '../../operator/src/injection/injection-config.ts';
import { CHART, find, helmOffline, renderChart, type Doc } from './render-chart.ts';

const REPO_CRDS = resolve(import.meta.dirname, '../../crds');

let docs: Doc[];
beforeAll(async () => {
  docs = await renderChart();
});

describe('helm lint', () => {
  it('passes with defaults and with every optional part on', async () => {
    const plain = await helmOffline(['lint', CHART]);
    expect(plain.code, plain.stdout + plain.stderr).toBe(0);
    const all = await helmOffline(['lint', CHART, '--set', 'metrics.serviceMonitor.enabled=true', '--set', 'metrics.podMonitor.enabled=true',
      '--set', 'prometheusRule.enabled=true', '--set', 'redis.url=redis://redis:6379', '--set', 'lockNodes={redis://a:6379,redis://b:6379,redis://c:6379}']);
    expect(all.code, all.stdout + all.stderr).toBe(0);
  });

  it('refuses a failurePolicy that is neither Fail nor Ignore', async () => {
    const bad = await helmOffline(['template', 'sluice', CHART, '--set', 'webhook.failurePolicy=Sometimes']);
    expect(bad.code).not.toBe(0);
    // The schema's refusal names the value and the allowed ones (helm 3.22 words it "at '/webhook/failurePolicy': value must be one of 'Fail', 'Ignore'").
    expect(bad.stderr).toMatch(/webhook[./]failurePolicy/);
    expect(bad.stderr).toMatch(/must be one of.*Fail.*Ignore/);
  });
});

describe('helm template', () => {
  it('renders the expected objects, all in the release namespace unless cluster-scoped', () => {
    const kinds = docs.map((d) => `${d.kind}/${d.metadata.name}`).sort();
    expect(kinds).toEqual([
      'ClusterRole/sluice-operator', 'ClusterRoleBinding/sluice-operator',
      'ConfigMap/sluice-dashboard', 'ConfigMap/sluice-injection',
      'CustomResourceDefinition/circuitbreakerpolicies.sluice.dev', 'CustomResourceDefinition/fencingpolicies.sluice.dev', 'CustomResourceDefinition/leaderelections.sluice.dev',
      'CustomResourceDefinition/ratelimitpolicies.sluice.dev', 'CustomResourceDefinition/taskqueues.sluice.dev',
      'CustomResourceDefinition/upstreams.sluice.dev',
      'Deployment/sluice-operator', 'MutatingWebhookConfiguration/sluice-sidecar-injector', 'NetworkPolicy/sluice-operator',
      'PodDisruptionBudget/sluice-operator', 'Role/sluice-operator', 'RoleBinding/sluice-operator',
      'Service/sluice-discovery', 'Service/sluice-webhook', 'ServiceAccount/sluice',
    ]);
    const clusterScoped = new Set(['ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'MutatingWebhookConfiguration']);
    for (const d of docs) {
      if (clusterScoped.has(d.kind)) expect(d.metadata.namespace, `${d.kind}/${d.metadata.name}`).toBeUndefined();
      else expect(d.metadata.namespace, `${d.kind}/${d.metadata.name}`).toBe('sluice-system');
    }
  });

  it('runs two operator replicas, spread over nodes, kept up by a PDB', () => {
    const deploy = find(docs, 'Deployment');
    expect(deploy.spec.replicas).toBe(2);
    expect(deploy.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
    const selector = deploy.spec.selector.matchLabels;
    expect(deploy.spec.template.metadata.labels).toMatchObject(selector);
    const anti = deploy.spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0];
    expect(anti.podAffinityTerm).toEqual({ topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selector } });
    const pdb = find(docs, 'PodDisruptionBudget');
    expect(pdb.spec).toEqual({ minAvailable: 1, selector: { matchLabels: selector } });
  });

  it('can require anti-affinity', async () => {
    const hard = find(await renderChart(['operator.antiAffinity=hard']), 'Deployment');
    expect(hard.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey).toBe('kubernetes.io/hostname');
  });

  it('runs the operator with the restricted security context, probes and resources', () => {
    const pod = find(docs, 'Deployment').spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    const c = pod.containers[0];
    expect(c.securityContext).toMatchObject({
      runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, privileged: false,
      capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(c.resources.requests).toEqual({ cpu: '100m', memory: '128Mi' });
    expect(c.resources.limits.memory).toBe('512Mi');
    expect(c.image).toBe('ghcr.io/sluice-dev/sluice-operator:0.1.0');
    expect(pod.serviceAccountName).toBe('sluice');
  });

  it('gives the operator the injection wiring it reads (start-injection.ts)', () => {
    const c = find(docs, 'Deployment').spec.template.spec.containers[0];
    const env = Object.fromEntries(c.env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
    expect(env).toMatchObject({
      POD_NAMESPACE: { fieldRef: { fieldPath: 'metadata.namespace' } },
      SLUICE_OPERATOR_INJECTION_CONFIG: '/etc/sluice/injection/injection.json',
      SLUICE_OPERATOR_WEBHOOK_LISTEN: ':9443',
      SLUICE_OPERATOR_WEBHOOK_SERVICE: 'sluice-webhook',
      SLUICE_OPERATOR_WEBHOOK_SECRET: 'sluice-webhook-tls',
      SLUICE_OPERATOR_WEBHOOK_CONFIG: 'sluice-sidecar-injector',
      SLUICE_OPERATOR_DISCOVERY: ':15010',
      SLUICE_OPERATOR_ADMIN: ':15011',
      // The certificate's SANs name the discovery Service; TLS unless told otherwise.
      SLUICE_OPERATOR_DISCOVERY_SERVICE: 'sluice-discovery',
    });
    expect(env.SLUICE_OPERATOR_DISCOVERY_SERVICE).toBe(find(docs, 'Service', 'sluice-discovery').metadata.name);
    expect(env).not.toHaveProperty('SLUICE_OPERATOR_DISCOVERY_INSECURE');
    expect(c.volumeMounts).toContainEqual({ name: 'injection', mountPath: '/etc/sluice/injection', readOnly: true });
    expect(find(docs, 'Deployment').spec.template.metadata.annotations['checksum/injection']).toMatch(/^[0-9a-f]{64}$/);
  });

  it('operator.discoveryInsecure=true turns discovery plaintext (explicitly)', async () => {
    const rendered = await renderChart(['operator.discoveryInsecure=true']);
    const env = Object.fromEntries(find(rendered, 'Deployment').spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]));
    expect(env.SLUICE_OPERATOR_DISCOVERY_INSECURE).toBe('true');
  });

  it('renders an injection config the operator accepts, with values flowing through', async () => {
    const rendered = await renderChart(['redis.url=redis://redis.data.svc:6379', 'lockNodes={redis://l0:6379,redis://l1:6379,redis://l2:6379}',
      'sidecar.image.tag=1.2.3', 'sidecar.resources.limits.cpu=500m']);
    const json = JSON.parse(find(rendered, 'ConfigMap', 'sluice-injection').data['injection.json']);
    const cfg = compileInjectionConfig(json);
    expect(cfg).toMatchObject({
      image: 'ghcr.io/sluice-dev/sluice-proxy:1.2.3', operatorAddress: 'sluice-discovery.sluice-system.svc:15010',
      redisUrl: 'redis://redis.data.svc:6379', lockNodes: ['redis://l0:6379', 'redis://l1:6379', 'redis://l2:6379'],
      resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
      tokenAudience: 'sluice.dev/discovery', tokenExpirationSeconds: 3600,
    });
    const env = Object.fromEntries(find(rendered, 'Deployment').spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]));
    expect(env.SLUICE_OPERATOR_REDIS).toBe('redis://redis.data.svc:6379');
    expect(env.SLUICE_OPERATOR_LOCK_NODES).toBe('redis://l0:6379,redis://l1:6379,redis://l2:6379');
  });

  it('takes a Redis Cluster or Sentinel URL for redis.url, and refuses other schemes', async () => {
    for (const url of ['redis+cluster://r0.data.svc:6379,r1.data.svc:6379', 'rediss+sentinel://s0.data.svc:26379,s1.data.svc:26379/mymaster']) {
      // --set splits on commas unless escaped (a values file needs nothing).
      const rendered = await renderChart([`redis.url=${url.replaceAll(',', '\\,')}`]);
      expect(compileInjectionConfig(JSON.parse(find(rendered, 'ConfigMap', 'sluice-injection').data['injection.json'])).redisUrl).toBe(url);
    }
    // The sentinels' password from a Secret of its own reaches the injection config and the operator.
    const withSentinelSecret = await renderChart(['redis.urlSecret.name=redis-url', 'redis.sentinelPasswordSecret.name=sentinel-auth']);
    expect(compileInjectionConfig(JSON.parse(find(withSentinelSecret, 'ConfigMap', 'sluice-injection').data['injection.json'])).redisSentinelPasswordSecret)
      .toEqual({ name: 'sentinel-auth', key: 'password' });
    const env = Object.fromEntries(find(withSentinelSecret, 'Deployment').spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
    expect(env.SLUICE_OPERATOR_REDIS_SENTINEL_PASSWORD).toEqual({ secretKeyRef: { name: 'sentinel-auth', key: 'password' } });
    const bad = await helmOffline(['template', 'sluice', CHART, '--set', 'redis.url=memcached://m:11211']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/redis[./]url/);
  });

  it('passes the Redis URL and the lock node URLs as Secrets to the injection config when asked', async () => {
    const rendered = await renderChart(['redis.urlSecret.name=redis-auth', 'lockNodesSecret.name=lock-nodes']);
    const cfg = compileInjectionConfig(JSON.parse(find(rendered, 'ConfigMap', 'sluice-injection').data['injection.json']));
    expect(cfg).toMatchObject({ redisUrlSecret: { name: 'redis-auth', key: 'url' }, lockNodesSecret: { name: 'lock-nodes', key: 'nodes' }, lockNodes: [] });
    // The operator reads the lock nodes too (leader claims are checked against the fencing counter).
    const env = Object.fromEntries(find(rendered, 'Deployment').spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
    expect(env.SLUICE_OPERATOR_LOCK_NODES).toEqual({ secretKeyRef: { name: 'lock-nodes', key: 'nodes' } });
  });

  it('points the webhook Service at the webhook port and the discovery Service at gRPC', () => {
    expect(find(docs, 'Service', 'sluice-webhook').spec.ports).toEqual([{ name: 'https', port: 443, targetPort: 'webhook', protocol: 'TCP' }]);
    expect(find(docs, 'Service', 'sluice-discovery').spec.ports[0]).toMatchObject({ name: 'grpc', port: 15010, targetPort: 'discovery', appProtocol: 'grpc' });
  });

  it('configures the webhook: selection, exclusions, opt-out, short timeout, failurePolicy, no side effects', () => {
    const mwc = find(docs, 'MutatingWebhookConfiguration');
    expect(mwc.webhooks.map((w: any) => w.name)).toEqual(['namespace.inject.sluice.dev', 'annotation.inject.sluice.dev']);
    for (const w of mwc.webhooks) {
      expect(w.sideEffects).toBe('None');
      expect(w.admissionReviewVersions).toEqual(['v1']);
      expect(w.timeoutSeconds).toBe(5);
      expect(w.rules).toEqual([{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' }]);
      expect(w.clientConfig.service).toMatchObject({ name: 'sluice-webhook', namespace: 'sluice-system', port: 443 });
      // The operator owns caBundle; a rendered one would fight it on every upgrade.
      expect(w.clientConfig.caBundle).toBeUndefined();
      expect(w.namespaceSelector.matchExpressions).toContainEqual({
        key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kube-public', 'kube-node-lease', 'sluice-system'],
      });
      expect(w.objectSelector).toEqual({ matchExpressions: [{ key: 'sluice.dev/inject', operator: 'NotIn', values: ['false'] }] });
    }
    const [ns, ann] = mwc.webhooks;
    expect(ns.clientConfig.service.path).toBe('/mutate-pods');
    expect(ns.failurePolicy).toBe('Fail');
    expect(ns.namespaceSelector.matchExpressions).toContainEqual({ key: 'sluice.dev/injection', operator: 'In', values: ['enabled'] });
    expect(ann.clientConfig.service.path).toBe('/mutate-pods/annotated');
    expect(ann.failurePolicy).toBe('Ignore');
    expect(ann.namespaceSelector.matchExpressions).toContainEqual({ key: 'sluice.dev/injection', operator: 'NotIn', values: ['enabled'] });
  });

  it('takes failurePolicy, extra exclusions and the annotation webhook switch from values', async () => {
    const mwc = find(await renderChart(['webhook.failurePolicy=Ignore', 'webhook.excludeNamespaces={istio-system}', 'webhook.annotationOptIn.enabled=false']), 'MutatingWebhookConfiguration');
    expect(mwc.webhooks).toHaveLength(1);
    expect(mwc.webhooks[0].failurePolicy).toBe('Ignore');
    expect(mwc.webhooks[0].namespaceSelector.matchExpressions[1].values).toContain('istio-system');
  });

  it('calls the webhook at webhook.url instead of the Service when set, and tells the operator', async () => {
    const all = await renderChart(['webhook.url=https://10.0.0.5:9443/']);
    const [ns, ann] = find(all, 'MutatingWebhookConfiguration').webhooks;
    expect(ns.clientConfig).toEqual({ url: 'https://10.0.0.5:9443/mutate-pods' });
    expect(ann.clientConfig).toEqual({ url: 'https://10.0.0.5:9443/mutate-pods/annotated' });
    const env = find(all, 'Deployment').spec.template.spec.containers[0].env;
    expect(env).toContainEqual({ name: 'SLUICE_OPERATOR_WEBHOOK_URL', value: 'https://10.0.0.5:9443/' });
    expect(find(docs, 'Deployment').spec.template.spec.containers[0].env.map((e: { name: string }) => e.name)).not.toContain('SLUICE_OPERATOR_WEBHOOK_URL');
    const lint = await helmOffline(['lint', CHART, '--set', 'webhook.url=http://10.0.0.5:9443']);
    expect(lint.code).not.toBe(0);
  });

  it('ships a NetworkPolicy that admits the webhook, discovery and metrics', () => {
    const np = find(docs, 'NetworkPolicy');
    expect(np.spec.policyTypes).toEqual(['Ingress']);
    expect(np.spec.podSelector.matchLabels).toEqual(find(docs, 'Deployment').spec.selector.matchLabels);
    const ports = np.spec.ingress.flatMap((r: any) => r.ports.map((p: any) => p.port)).sort();
    expect(ports).toEqual([15010, 15011, 9443]);
  });

  it('ships a Grafana dashboard for the sidecar loader, on the metrics the sidecar exports', () => {
    const cm = find(docs, 'ConfigMap', 'sluice-dashboard');
    expect(cm.metadata.labels?.grafana_dashboard).toBe('1');
    const dash = JSON.parse(cm.data['sluice.json']);
    expect(dash.uid).toBe('sluice-overview');
    const exprs = JSON.stringify(dash.panels.map((p: any) => p.targets ?? []));
    for (const m of ['sluice_requests_total', 'sluice_circuit_state', 'sluice_queue_lag', 'sluice_queue_dead_letters', 'sluice_leader', 'sluice_upstream_duration_seconds_bucket']) {
      expect(exprs).toContain(m);
    }
  });

  it('renders the optional Prometheus Operator objects', async () => {
    const all = await renderChart(['metrics.serviceMonitor.enabled=true', 'metrics.podMonitor.enabled=true', 'prometheusRule.enabled=true']);
    const sm = find(all, 'ServiceMonitor');
    expect(sm.spec.endpoints[0]).toMatchObject({ port: 'admin', path: '/metrics' });
    expect(sm.spec.selector.matchLabels).toEqual({ 'app.kubernetes.io/instance': 'sluice', 'app.kubernetes.io/component': 'discovery' });
    expect(find(all, 'PodMonitor').spec.selector.matchLabels).toEqual({ 'sluice.dev/proxy': 'injected' });
    const rules = find(all, 'PrometheusRule').spec.groups[0].rules;
    expect(rules.map((r: any) => r.alert)).toEqual(['SluiceCircuitOpenTooLong', 'SluiceNoLeader', 'SluiceQueueLagHigh', 'SluiceDeadLettersGrowing', 'SluiceInjectionErrors']);
    expect(rules[0].expr).toContain('sluice_circuit_state');
    expect(rules[1].expr).toContain('sluice_leader');
    expect(rules[2].expr).toContain('sluice_queue_lag');
    expect(rules[3].expr).toContain('sluice_queue_dead_letters');
    // Prometheus templating survives helm templating.
    expect(rules[0].annotations.summary).toContain('{{ $labels.rule }}');
    expect(docs.some((d) => d.kind === 'ServiceMonitor' || d.kind === 'PrometheusRule')).toBe(false);
  });
});

describe('CRDs in the chart', () => {
  it('are byte-for-byte copies of crds/ (run `cp crds/*.yaml charts/sluice/crds/` after changing a CRD)', () => {
    const wanted = readdirSync(REPO_CRDS).filter((f) => f.endsWith('.yaml')).sort();
    const shipped = readdirSync(join(CHART, 'crds')).sort();
    expect(shipped).toEqual(wanted);
    for (const f of wanted) {
      expect(readFileSync(join(CHART, 'crds', f), 'utf8'), `charts/sluice/crds/${f} has drifted from crds/${f}`).toBe(readFileSync(join(REPO_CRDS, f), 'utf8'));
      expect(parse(readFileSync(join(CHART, 'crds', f), 'utf8')).kind).toBe('CustomResourceDefinition');
    }
  });
});
