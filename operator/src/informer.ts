/**
 * List-then-watch cache of one resource type, the way client-go's reflector does it:
 * - list, then watch from the list's resourceVersion (with bookmarks, so an idle watch still
 *   advances its resourceVersion and a restart does not replay history);
 * - `410 Gone` (the resourceVersion is too old for the server's history) → forget it and
 *   relist; a relist diffs against the cache so deletions missed while away are still seen;
 * - any other watch end or error → restart the watch with capped, jittered backoff.
 * Handlers only enqueue keys (reconcilers re-read the cache), so they cannot fail halfway.
 */
import { Watch } from '@kubernetes/client-node';
import { Backoff } from '../../lib/backoff.ts';
import type { Logger } from '../../lib/log.ts';
import { isGone } from './errors.ts';
import { objectKey, type KubeClient, type KubeObject } from './kube-client.ts';

export type InformerEvent = 'add' | 'update' | 'delete';
export type InformerHandler<T> = (event: InformerEvent, obj: T, old: T | undefined) => void;

/** Objects per LIST page: what client-go's informers ask for. */
export const DEFAULT_PAGE_SIZE = 500;

export interface InformerOptions {
  client: KubeClient;
  /** The collection path, e.g. /api/v1/pods or /apis/sluice.dev/v1alpha1/ratelimitpolicies. */
  path: string;
  labelSelector?: string;
  /** Objects per LIST request (default DEFAULT_PAGE_SIZE). */
  pageSize?: number;
  logger: Logger;
  backoff?: { baseMs: number; capMs: number };
}

export class Informer<T extends KubeObject = KubeObject> {
  readonly path: string;
  private readonly opts: InformerOptions;
  private readonly cache = new Map<string, T>();
  /** The same objects by namespace: reconcilers and the index read one namespace at a time. */
  private readonly byNamespace = new Map<string, Map<string, T>>();
  private readonly handlers: InformerHandler<T>[] = [];
  private readonly backoff: Backoff;
  private resourceVersion: string | undefined;
  private abort: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Bumped per watch: events and endings of a superseded watch are ignored. */
  private epoch = 0;
  private resolveSynced!: () => void;
  /** Resolves after the first successful list. */
  readonly synced: Promise<void>;
  hasSynced = false;
  /** Counts relists after 410 Gone (metrics, tests). */
  relists = 0;

  constructor(opts: InformerOptions) {
    this.opts = opts;
    this.path = opts.path;
    this.backoff = new Backoff(opts.backoff ?? { baseMs: 200, capMs: 10_000 });
    this.synced = new Promise((resolve) => (this.resolveSynced = resolve));
  }

  on(handler: InformerHandler<T>): void {
    this.handlers.push(handler);
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(filter?: (o: T) => boolean): T[] {
    const all = [...this.cache.values()];
    return filter ? all.filter(filter) : all;
  }

  /** The cached objects of one namespace. */
  inNamespace(namespace: string): T[] {
    return [...(this.byNamespace.get(namespace)?.values() ?? [])];
  }

  private put(key: string, obj: T): void {
    this.cache.set(key, obj);
    const ns = obj.metadata.namespace ?? '';
    let m = this.byNamespace.get(ns);
    if (!m) this.byNamespace.set(ns, (m = new Map()));
    m.set(key, obj);
  }

  private remove(key: string): void {
    const old = this.cache.get(key);
    this.cache.delete(key);
    const ns = old?.metadata.namespace ?? '';
    const m = this.byNamespace.get(ns);
    m?.delete(key);
    if (m?.size === 0) this.byNamespace.delete(ns);
  }

  start(): void {
    this.stopped = false;
    void this.relist();
  }

  stop(): void {
    this.stopped = true;
    this.epoch++;
    clearTimeout(this.timer);
    this.abort?.abort();
    this.abort = undefined;
  }

  private emit(event: InformerEvent, obj: T, old: T | undefined): void {
    for (const h of this.handlers) {
      try {
        h(event, obj, old);
      } catch (err) {
        this.opts.logger.error('informer handler failed', { path: this.path, err });
      }
    }
  }

  private async relist(): Promise<void> {
    if (this.stopped) return;
    try {
      const list = await this.listAll();
      if (this.stopped) return;
      const seen = new Set<string>();
      for (const item of list.items) {
        const key = objectKey(item);
        seen.add(key);
        this.upsert(key, item);
      }
      for (const [key, old] of [...this.cache]) {
        if (!seen.has(key)) {
          this.remove(key);
          this.emit('delete', old, old);
        }
      }
      this.resourceVersion = list.metadata.resourceVersion;
      if (!this.hasSynced) {
        this.hasSynced = true;
        this.resolveSynced();
      }
      await this.watch();
    } catch (err) {
      this.opts.logger.warn('list failed; retrying', { path: this.path, err });
      this.retry(() => this.relist());
    }
  }

  /**
   * The whole collection, `pageSize` objects a request: the API server answers a page from one
   * consistent snapshot (the continue token carries its resourceVersion), and no single response
   * holds every Pod of a large cluster. An expired token (410) fails the list; the relist retries.
   */
  private async listAll(): Promise<{ items: T[]; metadata: { resourceVersion?: string } }> {
    const items: T[] = [];
    let cont: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const page = await this.opts.client.list<T>(this.path, {
        labelSelector: this.opts.labelSelector, limit: String(this.opts.pageSize ?? DEFAULT_PAGE_SIZE), continue: cont,
      });
      if (this.stopped) break;
      items.push(...page.items);
      resourceVersion = page.metadata.resourceVersion;
      cont = (page.metadata as { continue?: string }).continue || undefined;
    } while (cont);
    return { items, metadata: { resourceVersion } };
  }

  private upsert(key: string, obj: T): void {
    const old = this.cache.get(key);
    if (old && old.metadata.resourceVersion === obj.metadata.resourceVersion) return;
    this.put(key, obj);
    this.emit(old ? 'update' : 'add', obj, old);
  }

  private async watch(): Promise<void> {
    if (this.stopped) return;
    let gone = false;
    let gotEvent = false;
    const startedAt = Date.now();
    const epoch = ++this.epoch;
    const current = () => epoch === this.epoch && !this.stopped;
    const query: Record<string, string | boolean | undefined> = {
      resourceVersion: this.resourceVersion,
      allowWatchBookmarks: true,
      labelSelector: this.opts.labelSelector,
      // Ask the server to end the watch before client-node's inactivity timer would (30s).
      timeoutSeconds: String(25 + Math.floor(Math.random() * 5)),
    };
    const controller = await new Watch(this.opts.client.kubeConfig).watch(
      this.path,
      query as Record<string, string | boolean | undefined>,
      (type, obj: any) => {
        if (!current()) return;
        gotEvent = true;
        if (type === 'ERROR') {
          if (obj?.code === 410) gone = true;
          else this.opts.logger.warn('watch error event', { path: this.path, status: obj });
          return;
        }
        const rv: string | undefined = obj?.metadata?.resourceVersion;
        if (type === 'BOOKMARK') {
          if (rv) this.resourceVersion = rv;
          return;
        }
        const key = objectKey(obj as T);
        if (type === 'DELETED') {
          const old = this.cache.get(key);
          this.remove(key);
          this.emit('delete', obj as T, old);
        } else {
          this.upsert(key, obj as T);
        }
        if (rv) this.resourceVersion = rv;
      },
      (err: any) => {
        if (!current()) return;
        if (gone || err?.statusCode === 410 || isGone(err)) {
          // Our resourceVersion fell out of the server's history: start over from a fresh list.
          this.relists++;
          this.resourceVersion = undefined;
          this.opts.logger.info('watch expired (410 Gone); relisting', { path: this.path });
          void this.relist();
          return;
        }
        if (gotEvent && !err) this.backoff.reset();
        if (err && err.name !== 'AbortError') this.opts.logger.debug('watch ended', { path: this.path, err });
        // A server-side timeout is routine: resume at once. Errors (and a watch that ends as soon
        // as it starts, which would otherwise spin) back off.
        if (!err && Date.now() - startedAt > 1_000) void this.watch();
        else this.retry(() => this.watch());
      },
    );
    // watch() resolves once the response headers arrive; stop() may have come first.
    if (current()) this.abort = controller;
    else controller.abort();
  }

  private retry(fn: () => Promise<void>): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void fn(), this.backoff.next());
    this.timer.unref?.();
  }
}
