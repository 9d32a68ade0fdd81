/**
 * HTTP front of the test API server: authentication, URL → (group, version, resource,
 * namespace, name, subresource) routing, content negotiation (JSON/YAML in; JSON, Table and
 * PartialObjectMetadata out), and Status errors. All semantics live in api.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseYaml } from 'yaml';
import type { KubeApi, PatchType, UserInfo, WriteOptions } from './api.ts';
import type { Authenticator } from './auth.ts';
import { coreVersions, group, groupList, KUBE_VERSION, resourceList } from './discovery.ts';
import { ApiError, badRequest, methodNotAllowed, notFoundPath, unauthorized, unsupportedMediaType } from './errors.ts';
import { groupVersionDocument, rootDocument } from './openapi.ts';
import { decodeKubeProtobuf } from './protobuf.ts';
import { apiVersionOf, type KubeObject, type Obj, type ResourceType } from './resources.ts';
import { toTable, type IncludeObject } from './table.ts';
import { serveWatch } from './watch.ts';

export interface HandlerContext {
  api: KubeApi;
  auth: Authenticator;
  serverAddress: () => string;
  bookmarkIntervalMs: number;
  /** Creates a TokenRequest for serviceaccounts/<name>/token. */
  tokenRequest: (namespace: string, serviceAccount: string, body: Obj) => KubeObject;
  log?: (line: string) => void;
}

interface Route {
  group: string;
  version: string;
  namespace: string | undefined;
  plural: string;
  name: string | undefined;
  subresource: string | undefined;
  watchPath: boolean;
}

const PUBLIC_PATHS = new Set(['/version', '/healthz', '/livez', '/readyz']);

export function createHandler(ctx: HandlerContext) {
  return (req: IncomingMessage, res: ServerResponse) => {
    handle(ctx, req, res).catch((err: unknown) => {
      const e = err instanceof ApiError ? err : new ApiError(500, 'InternalError', `Internal error occurred: ${(err as Error)?.stack ?? String(err)}`);
      if (!(err instanceof ApiError)) ctx.log?.(`internal error on ${req.method} ${req.url}: ${(err as Error)?.stack ?? String(err)}`);
      if (res.headersSent) { res.end(); return; }
      sendJson(res, e.code, e.toStatus());
    });
  };
}

function sendJson(res: ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-cache, private', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Raw request bodies are kept as bytes: protobuf bodies are not text. */
const rawBodies = new WeakMap<IncomingMessage, Buffer>();

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const buf = Buffer.concat(chunks);
  rawBodies.set(req, buf);
  return buf.toString('utf8');
}

async function readObject(req: IncomingMessage): Promise<unknown> {
  const text = await readBody(req);
  const ct = req.headers['content-type'] ?? '';
  const raw = rawBodies.get(req) as Buffer;
  if (raw.length === 0) return undefined;
  if (ct.includes('application/vnd.kubernetes.protobuf')) return decodeKubeProtobuf(raw);
  return parseBody(text, ct);
}

function parseBody(text: string, contentType: string | undefined): unknown {
  const ct = (contentType ?? 'application/json').split(';')[0]?.trim() ?? '';
  if (ct.includes('protobuf') || ct.includes('cbor')) throw unsupportedMediaType(`the body of the request was in an unknown format - accepted media types include: application/json, application/yaml`);
  if (!text.trim()) return undefined;
  try {
    return ct.includes('yaml') ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw badRequest(`the object provided is unrecognized (${(e as Error).message})`);
  }
}

function authenticate(ctx: HandlerContext, req: IncomingMessage): UserInfo | undefined {
  const header = req.headers.authorization ?? '';
  const m = /^Bearer\s+(.+)$/i.exec(header);
  if (!m) return undefined;
  const id = ctx.auth.identify((m[1] as string).trim());
  return id ? { username: id.username, uid: id.uid, groups: id.groups } : undefined;
}

function route(segments: string[]): Route | undefined {
  let rest: string[];
  let groupName: string;
  let version: string;
  if (segments[0] === 'api' && segments.length >= 3) {
    groupName = '';
    version = segments[1] as string;
    rest = segments.slice(2);
  } else if (segments[0] === 'apis' && segments.length >= 4) {
    groupName = segments[1] as string;
    version = segments[2] as string;
    rest = segments.slice(3);
  } else return undefined;
  let watchPath = false;
  if (rest[0] === 'watch') { watchPath = true; rest = rest.slice(1); }
  let namespace: string | undefined;
  // /namespaces/<ns>/<plural>/... is namespaced; /namespaces/<name>[/status|/finalize] is the Namespace itself.
  if (rest[0] === 'namespaces' && rest.length >= 3 && rest[2] !== 'status' && rest[2] !== 'finalize') {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [plural, name, subresource] = rest;
  if (!plural || rest.length > 3) return undefined;
  return { group: groupName, version, namespace, plural, name, subresource, watchPath };
}

function wants(req: IncomingMessage, what: string): boolean {
  return (req.headers.accept ?? '').split(',').some((part) => part.includes(`as=${what}`) && part.includes('g=meta.k8s.io'));
}

async function handle(ctx: HandlerContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  const q = url.searchParams;
  const method = req.method ?? 'GET';
  const started = Date.now();
  res.on('finish', () => ctx.log?.(`${method} ${req.url} ${res.statusCode} ${Date.now() - started}ms`));

  if (path === '/healthz' || path === '/livez' || path === '/readyz') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
    return;
  }
  const user = authenticate(ctx, req);
  if (!user && !PUBLIC_PATHS.has(path)) {
    sendJson(res, 401, unauthorized().toStatus());
    return;
  }
  if (path === '/version') return sendJson(res, 200, KUBE_VERSION);
  const { api } = ctx;
  const registry = api.registry;
  if (method === 'GET') {
    if (path === '/api') return sendJson(res, 200, coreVersions(ctx.serverAddress()));
    if (path === '/apis') return sendJson(res, 200, groupList(registry));
    if (path === '/openapi/v3') return sendJson(res, 200, rootDocument(registry));
    if (path.startsWith('/openapi/v3/')) {
      const [kind, g, v] = path.slice('/openapi/v3/'.length).split('/');
      const doc = kind === 'api' ? groupVersionDocument(registry, '', g ?? '') : kind === 'apis' ? groupVersionDocument(registry, g ?? '', v ?? '') : undefined;
      if (!doc) throw notFoundPath();
      return sendJson(res, 200, doc);
    }
    const segs = path.split('/').filter(Boolean);
    if (segs[0] === 'api' && segs.length === 2) {
      const list = resourceList(registry, '', segs[1] as string);
      if (!list) throw notFoundPath();
      return sendJson(res, 200, list);
    }
    if (segs[0] === 'apis' && segs.length === 2) {
      const g = group(registry, segs[1] as string);
      if (!g) throw notFoundPath();
      return sendJson(res, 200, g);
    }
    if (segs[0] === 'apis' && segs.length === 3) {
      const list = resourceList(registry, segs[1] as string, segs[2] as string);
      if (!list) throw notFoundPath();
      return sendJson(res, 200, list);
    }
  }

  const r = route(path.split('/').filter(Boolean));
  if (!r) throw notFoundPath();
  const rt = registry.find(r.group, r.version, r.plural);
  if (!rt) throw notFoundPath();
  if (r.namespace !== undefined && !rt.namespaced) throw notFoundPath();
  const namespace = rt.namespaced ? r.namespace : undefined;
  const writeOpts: WriteOptions = {
    dryRun: q.getAll('dryRun').includes('All'),
    fieldValidation: q.get('fieldValidation') ?? 'Ignore',
    user: user as UserInfo,
    warnings: [],
  };
  const warningHeaders = (): Record<string, string> =>
    writeOpts.warnings?.length ? { warning: writeOpts.warnings.map((w) => `299 - ${JSON.stringify(w)}`).join(', ') } : {};
  const include = (q.get('includeObject') ?? 'Metadata') as IncludeObject;
  const render = (o: KubeObject): unknown => {
    if (wants(req, 'Table')) return toTable(rt, [o], { resourceVersion: o.metadata.resourceVersion }, include);
    if (wants(req, 'PartialObjectMetadata')) return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata };
    return o;
  };

  if (rt.virtual && method !== 'POST') throw methodNotAllowed();

  // Collection: /<plural>
  if (r.name === undefined) {
    if (method === 'GET') {
      const watching = r.watchPath || q.get('watch') === 'true' || q.get('watch') === '1';
      if (watching) {
        serveWatch(api, rt, res, {
          namespace,
          resourceVersion: q.get('resourceVersion'),
          labelSelector: q.get('labelSelector'),
          fieldSelector: q.get('fieldSelector'),
          timeoutSeconds: q.has('timeoutSeconds') ? Number(q.get('timeoutSeconds')) : undefined,
          allowWatchBookmarks: q.get('allowWatchBookmarks') === 'true',
          sendInitialEvents: q.has('sendInitialEvents') ? q.get('sendInitialEvents') === 'true' : undefined,
          bookmarkIntervalMs: ctx.bookmarkIntervalMs,
          render,
        });
        return;
      }
      const list = api.list(rt, namespace, {
        labelSelector: q.get('labelSelector'),
        fieldSelector: q.get('fieldSelector'),
        limit: q.has('limit') ? Number(q.get('limit')) : 0,
        continue: q.get('continue'),
        resourceVersion: q.get('resourceVersion'),
        resourceVersionMatch: q.get('resourceVersionMatch'),
      });
      if (wants(req, 'Table')) return sendJson(res, 200, toTable(rt, list.items, list.metadata, include));
      if (wants(req, 'PartialObjectMetadataList')) {
        return sendJson(res, 200, { kind: 'PartialObjectMetadataList', apiVersion: 'meta.k8s.io/v1', metadata: list.metadata, items: list.items.map((o) => ({ kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata })) });
      }
      return sendJson(res, 200, { kind: rt.listKind, apiVersion: apiVersionOf(rt), metadata: list.metadata, items: list.items });
    }
    if (method === 'POST') {
      const body = await readObject(req);
      const created = await api.create(rt, namespace, body, writeOpts);
      return sendJson(res, 201, created, warningHeaders());
    }
    if (method === 'DELETE') {
      const body = ((await readObject(req)) ?? {}) as Obj;
      const items = await api.deleteCollection(rt, namespace, {
        labelSelector: q.get('labelSelector'), fieldSelector: q.get('fieldSelector'),
        propagationPolicy: (body.propagationPolicy as string | undefined) ?? q.get('propagationPolicy') ?? undefined,
        dryRun: writeOpts.dryRun ?? false,
      });
      return sendJson(res, 200, { kind: rt.listKind, apiVersion: apiVersionOf(rt), metadata: {}, items });
    }
    throw methodNotAllowed();
  }

  const name = r.name;
  const sub = r.subresource;
  if (sub === 'token' && rt.group === '' && rt.plural === 'serviceaccounts') {
    if (method !== 'POST') throw methodNotAllowed();
    const body = ((await readObject(req)) ?? {}) as Obj;
    return sendJson(res, 201, ctx.tokenRequest(namespace as string, name, body));
  }
  if (sub !== undefined && sub !== 'status' && sub !== 'scale' && !(sub === 'finalize' && rt.plural === 'namespaces')) throw notFoundPath();
  if (sub === 'scale' && !rt.scale) throw notFoundPath();
  if (sub === 'status' && !rt.status) throw notFoundPath();
  const subresource = sub === 'finalize' ? undefined : sub;

  switch (method) {
    case 'GET': {
      if (subresource === 'scale') return sendJson(res, 200, api.getScale(rt, namespace, name));
      const o = api.get(rt, namespace, name);
      if (wants(req, 'Table')) return sendJson(res, 200, toTable(rt, [o], { resourceVersion: o.metadata.resourceVersion }, include));
      return sendJson(res, 200, render(o));
    }
    case 'PUT': {
      const body = await readObject(req);
      const updated = await api.update(rt, namespace, name, body, subresource, writeOpts);
      return sendJson(res, 200, updated, warningHeaders());
    }
    case 'PATCH': {
      const ct = (req.headers['content-type'] ?? '').split(';')[0]?.trim();
      const types: Record<string, PatchType> = {
        'application/json-patch+json': 'json',
        'application/merge-patch+json': 'merge',
        'application/strategic-merge-patch+json': 'strategic',
        'application/apply-patch+yaml': 'apply',
      };
      const type = types[ct ?? ''];
      if (!type) throw unsupportedMediaType(`the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml${rt.schema ? '' : ', application/strategic-merge-patch+json'}`);
      const patched = await api.patch(rt, namespace, name, type, await readBody(req), subresource, writeOpts);
      return sendJson(res, 200, patched, warningHeaders());
    }
    case 'DELETE': {
      if (subresource) throw methodNotAllowed();
      const body = ((await readObject(req)) ?? {}) as Obj;
      const { object, finished } = await api.delete(rt, namespace, name, {
        propagationPolicy: (body.propagationPolicy as string | undefined) ?? q.get('propagationPolicy') ?? (body.orphanDependents === true ? 'Orphan' : undefined),
        preconditions: body.preconditions as { uid?: string; resourceVersion?: string } | undefined,
        dryRun: writeOpts.dryRun || (Array.isArray(body.dryRun) && body.dryRun.includes('All')),
      });
      if (!finished) return sendJson(res, 202, object);
      // Custom resources and pods answer with the deleted object; other built-ins with a Status.
      if (rt.schema || (rt.group === '' && (rt.plural === 'pods' || rt.plural === 'namespaces'))) return sendJson(res, 200, object);
      return sendJson(res, 200, {
        kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success',
        details: { name, ...(rt.group ? { group: rt.group } : {}), kind: rt.plural, uid: object.metadata.uid },
      });
    }
    default:
      throw methodNotAllowed();
  }
}

