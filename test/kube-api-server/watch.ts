/**
 * Watch streams: newline-delimited JSON events over a chunked response. A watch without a
 * resourceVersion (or with "0") first replays the current objects as ADDED; one with a
 * resourceVersion replays history after it, or — when history no longer reaches back that far —
 * sends an ERROR event carrying a 410 Expired Status and ends, so clients relist. Objects moving
 * into or out of a selector appear as ADDED / DELETED, as with the real watch cache.
 */
import type { ServerResponse } from 'node:http';
import type { KubeApi } from './api.ts';
import { apiVersionOf, type KubeObject, type ResourceType } from './resources.ts';
import { checkFieldLabels, matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from './selectors.ts';
import type { StoreEvent } from './store.ts';

export interface WatchOptions {
  namespace: string | undefined;
  resourceVersion: string | null;
  labelSelector: string | null;
  fieldSelector: string | null;
  timeoutSeconds: number | undefined;
  allowWatchBookmarks: boolean;
  sendInitialEvents: boolean | undefined;
  bookmarkIntervalMs: number;
  /** Renders each event's object (a Table row for kubectl get -w, or the object itself). */
  render: (o: KubeObject) => unknown;
}

export function serveWatch(api: KubeApi, rt: ResourceType, res: ServerResponse, opts: WatchOptions): void {
  const labels = parseLabelSelector(opts.labelSelector);
  const fields = parseFieldSelector(opts.fieldSelector);
  checkFieldLabels(fields, rt.fieldLabels);
  const inScope = (o: KubeObject | undefined): o is KubeObject =>
    o !== undefined && (!rt.namespaced || opts.namespace === undefined || o.metadata.namespace === opts.namespace);
  const selected = (o: KubeObject | undefined) => {
    if (!inScope(o)) return false;
    const shown = api.present(rt, o);
    return matchesLabels(labels, shown.metadata.labels) && matchesFields(fields, shown);
  };

  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache, private', 'transfer-encoding': 'chunked' });
  res.flushHeaders();
  let open = true;
  const send = (type: string, object: unknown) => {
    if (open) res.write(`${JSON.stringify({ type, object })}\n`);
  };
  const sendObj = (type: string, o: KubeObject) => send(type, opts.render(api.present(rt, o)));
  const bookmark = (rv: number, initialEnd = false) => send('BOOKMARK', {
    kind: rt.kind, apiVersion: apiVersionOf(rt),
    metadata: { resourceVersion: String(rv), ...(initialEnd ? { annotations: { 'k8s.io/initial-events-end': 'true' } } : {}) },
  });

  const toClient = (e: StoreEvent) => {
    if (e.bucket !== rt.storageKey) return;
    const now = selected(e.object);
    const before = e.type === 'MODIFIED' && selected(e.old);
    if (e.type === 'ADDED' && now) sendObj('ADDED', e.object);
    else if (e.type === 'DELETED' && selected(e.object)) sendObj('DELETED', e.object);
    else if (e.type === 'MODIFIED') {
      if (now && before) sendObj('MODIFIED', e.object);
      else if (now) sendObj('ADDED', e.object);
      else if (before) sendObj('DELETED', e.object);
    }
  };

  const rvParam = opts.resourceVersion;
  const fromRv = rvParam && rvParam !== '0' ? Number(rvParam) : undefined;
  // Subscribe first, buffering, so nothing written between replay and live streaming is lost.
  const buffered: StoreEvent[] = [];
  let live = false;
  const unsubscribe = api.store.subscribe((e) => (live ? toClient(e) : buffered.push(e)));
  let lastRv = api.store.resourceVersion;
  if (fromRv === undefined || opts.sendInitialEvents === true) {
    for (const o of api.store.list(rt.storageKey, rt.namespaced ? opts.namespace : undefined)) if (selected(o)) sendObj('ADDED', o);
    if (opts.sendInitialEvents && opts.allowWatchBookmarks) bookmark(lastRv, true);
  } else {
    const history = api.store.since(rt.storageKey, fromRv);
    if (history === undefined) {
      send('ERROR', {
        kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure',
        message: `too old resource version: ${fromRv} (${api.store.oldestWatchableRv + 1})`, reason: 'Expired', code: 410,
      });
      unsubscribe();
      open = false;
      res.end();
      return;
    }
    for (const e of history) toClient(e);
  }
  for (const e of buffered) if (e.rv > lastRv) toClient(e);
  live = true;

  const timers: NodeJS.Timeout[] = [];
  if (opts.allowWatchBookmarks) {
    timers.push(setInterval(() => bookmark(api.store.resourceVersion), opts.bookmarkIntervalMs));
  }
  const close = () => {
    if (!open) return;
    open = false;
    unsubscribe();
    for (const t of timers) clearInterval(t);
    res.end();
  };
  if (opts.timeoutSeconds !== undefined && opts.timeoutSeconds > 0) timers.push(setTimeout(close, opts.timeoutSeconds * 1000));
  res.on('close', close);
  res.on('error', close);
  lastRv = api.store.resourceVersion;
}
