/**
 * Admission webhooks (mutating, then — after schema validation — validating), called the way the
 * real apiserver calls them: configurations in
 * name order, each webhook matched by rules (groups/versions/resources/operations/scope),
 * namespaceSelector and objectSelector; an AdmissionReview v1 POSTed over HTTPS verified with
 * `caBundle`; the returned base64 JSONPatch applied; `failurePolicy` and `timeoutSeconds` honoured.
 * Webhooks given as a Service are reached through a resolver the test provides, with TLS still
 * checked against `<service>.<namespace>.svc` as in a cluster.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { checkServerIdentity } from 'node:tls';
import { ApiError, internalError } from './errors.ts';
import { jsonPatch } from './patch.ts';
import { apiVersionOf, type KubeObject, type ResourceType } from './resources.ts';
import { labelSelectorRequirements, matchesLabels } from './selectors.ts';

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

/** Maps a webhook's `clientConfig.service` to a base URL reachable from the test process. */
export type ServiceResolver = (svc: { namespace: string; name: string; port: number }) => string | undefined;

interface Rule { apiGroups?: string[]; apiVersions?: string[]; operations?: string[]; resources?: string[]; scope?: string }
interface Webhook {
  name: string;
  clientConfig: { url?: string; service?: { namespace: string; name: string; path?: string; port?: number }; caBundle?: string };
  rules?: Rule[];
  failurePolicy?: 'Fail' | 'Ignore';
  namespaceSelector?: unknown;
  objectSelector?: unknown;
  timeoutSeconds?: number;
  admissionReviewVersions?: string[];
}

export interface AdmissionRequest {
  rt: ResourceType;
  subresource?: string;
  operation: Operation;
  object: KubeObject;
  oldObject?: KubeObject;
  namespace?: string;
  namespaceLabels?: Record<string, string>;
  user: { username: string; uid?: string; groups: string[] };
  dryRun: boolean;
}

const anyOf = (list: string[] | undefined, v: string) => (list ?? []).some((x) => x === '*' || x === v);

function ruleMatches(rule: Rule, req: AdmissionRequest): boolean {
  const { rt } = req;
  if (!anyOf(rule.apiGroups, rt.group) || !anyOf(rule.apiVersions, rt.version) || !anyOf(rule.operations, req.operation)) return false;
  const scope = rule.scope ?? '*';
  if (scope === 'Namespaced' && !rt.namespaced) return false;
  if (scope === 'Cluster' && rt.namespaced) return false;
  const full = req.subresource ? `${rt.plural}/${req.subresource}` : rt.plural;
  return (rule.resources ?? []).some((r) => {
    if (r === '*/*' || r === full) return true;
    const [res, sub] = r.split('/');
    if (sub === undefined) return !req.subresource && (res === '*' || res === rt.plural);
    return (res === '*' || res === rt.plural) && (sub === '*' ? req.subresource !== undefined : sub === req.subresource);
  });
}

function selects(selector: unknown, labels: Record<string, string> | undefined): boolean {
  const reqs = labelSelectorRequirements(selector ?? {});
  return reqs !== null && matchesLabels(reqs, labels);
}

export function webhookMatches(wh: Webhook, req: AdmissionRequest): boolean {
  if (!(wh.rules ?? []).some((r) => ruleMatches(r, req))) return false;
  // namespaceSelector applies to namespaced objects (by their namespace's labels) and to Namespaces themselves.
  if (req.rt.kind === 'Namespace' && req.rt.group === '') {
    if (!selects(wh.namespaceSelector, req.object.metadata.labels)) return false;
  } else if (req.rt.namespaced && !selects(wh.namespaceSelector, req.namespaceLabels)) return false;
  const objLabels = req.object.metadata.labels;
  const oldLabels = req.oldObject?.metadata.labels;
  return selects(wh.objectSelector, objLabels) || (req.oldObject !== undefined && selects(wh.objectSelector, oldLabels));
}

/** Runs every matching mutating webhook in order and returns the mutated object. */
export async function runMutatingWebhooks(configs: KubeObject[], req: AdmissionRequest, resolve: ServiceResolver): Promise<KubeObject> {
  return runWebhooks(configs, req, resolve, true);
}

/** Runs every matching validating webhook; any denial refuses the request. Patches are not allowed. */
export async function runValidatingWebhooks(configs: KubeObject[], req: AdmissionRequest, resolve: ServiceResolver): Promise<void> {
  await runWebhooks(configs, req, resolve, false);
}

async function runWebhooks(configs: KubeObject[], req: AdmissionRequest, resolve: ServiceResolver, mutating: boolean): Promise<KubeObject> {
  let object = req.object;
  const sorted = [...configs].sort((a, b) => String(a.metadata.name).localeCompare(String(b.metadata.name)));
  for (const cfg of sorted) {
    for (const wh of (cfg.webhooks as Webhook[] | undefined) ?? []) {
      const current = { ...req, object };
      if (!webhookMatches(wh, current)) continue;
      try {
        const result = await callWebhook(wh, current, resolve);
        if (mutating) object = result;
        else if (result !== current.object) throw new Error('validating webhooks may not return a patch');
      } catch (err) {
        if (err instanceof ApiError && err.reason !== 'InternalError') throw err; // a denial is never ignored
        if ((wh.failurePolicy ?? 'Fail') === 'Ignore') continue;
        throw internalError(`failed calling webhook "${wh.name}": ${(err as Error).message}`);
      }
    }
  }
  return object;
}

async function callWebhook(wh: Webhook, req: AdmissionRequest, resolve: ServiceResolver): Promise<KubeObject> {
  if (!(wh.admissionReviewVersions ?? ['v1']).includes('v1')) {
    throw new Error(`webhook does not accept v1 AdmissionReview`);
  }
  const { rt } = req;
  const uid = randomUUID();
  const gvk = { group: rt.group, version: rt.version, kind: rt.kind };
  const gvr = { group: rt.group, version: rt.version, resource: rt.plural };
  const review = {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid, kind: gvk, resource: gvr, requestKind: gvk, requestResource: gvr,
      ...(req.subresource ? { subResource: req.subresource, requestSubResource: req.subresource } : {}),
      name: req.object.metadata.name ?? '',
      ...(req.namespace ? { namespace: req.namespace } : {}),
      operation: req.operation,
      userInfo: req.user,
      object: { apiVersion: apiVersionOf(rt), kind: rt.kind, ...req.object },
      oldObject: req.oldObject ?? null,
      dryRun: req.dryRun,
      options: { apiVersion: 'meta.k8s.io/v1', kind: req.operation === 'CREATE' ? 'CreateOptions' : req.operation === 'UPDATE' ? 'UpdateOptions' : 'DeleteOptions' },
    },
  };
  let url: URL;
  let serverName: string | undefined;
  const cc = wh.clientConfig;
  if (cc.url) url = new URL(cc.url);
  else if (cc.service) {
    const port = cc.service.port ?? 443;
    const base = resolve({ namespace: cc.service.namespace, name: cc.service.name, port });
    if (!base) throw new Error(`failed to call webhook: service "${cc.service.namespace}/${cc.service.name}" has no endpoints (no test resolver entry)`);
    url = new URL((cc.service.path ?? '/').replace(/^\//, ''), base.endsWith('/') ? base : `${base}/`);
    serverName = `${cc.service.name}.${cc.service.namespace}.svc`;
  } else throw new Error('webhook has neither clientConfig.url nor clientConfig.service');
  const body = JSON.stringify(review);
  const timeoutMs = (wh.timeoutSeconds ?? 10) * 1000;
  const text = await post(url, body, timeoutMs, cc.caBundle, serverName);
  let answer: { response?: { uid?: string; allowed?: boolean; patch?: string; patchType?: string; status?: { code?: number; message?: string; reason?: string } } };
  try {
    answer = JSON.parse(text);
  } catch {
    throw new Error(`failed to call webhook: the response is not an AdmissionReview`);
  }
  const resp = answer.response;
  if (!resp) throw new Error('failed to call webhook: the response had no response field');
  if (resp.uid !== uid) throw new Error(`expected response.uid="${uid}", got "${String(resp.uid)}"`);
  if (!resp.allowed) {
    const st = resp.status ?? {};
    const denied = `admission webhook "${wh.name}" denied the request`;
    const msg = st.message ? `${denied}: ${st.message}` : st.reason ? `${denied}: ${st.reason}` : `${denied} without explanation`;
    throw new ApiError(st.code && st.code >= 400 ? st.code : 400, st.reason ?? '', msg);
  }
  if (!resp.patch) return req.object;
  if (resp.patchType && resp.patchType !== 'JSONPatch') throw new Error(`unsupported patch type "${resp.patchType}"`);
  const ops = JSON.parse(Buffer.from(resp.patch, 'base64').toString('utf8'));
  const patched = jsonPatch({ apiVersion: apiVersionOf(rt), kind: rt.kind, ...req.object }, ops) as KubeObject;
  return patched;
}

function post(url: URL, body: string, timeoutMs: number, caBundle: string | undefined, serverName: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const isHttps = url.protocol === 'https:';
    const options: https.RequestOptions = {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(body) },
      timeout: timeoutMs,
    };
    if (isHttps) {
      if (caBundle) options.ca = Buffer.from(caBundle, 'base64').toString('utf8');
      if (serverName) {
        options.servername = serverName;
        options.checkServerIdentity = (_host, cert) => checkServerIdentity(serverName, cert);
      }
    }
    const fail = (e: Error) => reject(new Error(`failed to call webhook: Post "${url.href}": ${e.message}`));
    const r = (isHttps ? https : http).request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if ((res.statusCode ?? 0) >= 400) fail(new Error(`the server responded with status ${res.statusCode}: ${text.slice(0, 200)}`));
        else resolve(text);
      });
      res.on('error', fail);
    });
    r.on('timeout', () => r.destroy(new Error(`context deadline exceeded (timeout ${timeoutMs / 1000}s)`)));
    r.on('error', fail);
    r.end(body);
  });
}
