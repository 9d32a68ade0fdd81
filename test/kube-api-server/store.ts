/**
 * The object store: one bucket per resource, a single monotonically increasing resourceVersion
 * (like etcd's revision), and a bounded history of change events. Watches replay history after
 * the resourceVersion they start from; a start older than the history answers 410 Gone, as the
 * real server does once etcd has compacted — tests shrink `historySize` to provoke it.
 */
import type { KubeObject } from './resources.ts';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  type: EventType;
  rv: number;
  bucket: string;
  object: KubeObject;
  /** The object before a MODIFIED/DELETED event (to send DELETED/ADDED when it leaves/enters a selector). */
  old: KubeObject | undefined;
}

export type Listener = (e: StoreEvent) => void;

export class Store {
  private rv = 1000;
  private readonly buckets = new Map<string, Map<string, KubeObject>>();
  private readonly history: StoreEvent[] = [];
  private readonly historySize: number;
  /** Highest resourceVersion evicted from history: watches must start at or after it. */
  private compactedRv = 0;
  private readonly listeners = new Set<Listener>();

  constructor(historySize = 10_000) {
    this.historySize = historySize;
  }

  get resourceVersion(): number {
    return this.rv;
  }

  get oldestWatchableRv(): number {
    return this.compactedRv;
  }

  static key(namespace: string | undefined, name: string): string {
    return `${namespace ?? ''}/${name}`;
  }

  get(bucket: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const o = this.buckets.get(bucket)?.get(Store.key(namespace, name));
    return o ? structuredClone(o) : undefined;
  }

  /** Objects of a bucket (optionally one namespace), sorted by namespace/name like etcd keys. */
  list(bucket: string, namespace?: string): KubeObject[] {
    const b = this.buckets.get(bucket);
    if (!b) return [];
    return [...b.entries()]
      .filter(([, o]) => namespace === undefined || o.metadata.namespace === namespace)
      .sort(([a], [c]) => (a < c ? -1 : a > c ? 1 : 0))
      .map(([, o]) => structuredClone(o));
  }

  bucketNames(): string[] {
    return [...this.buckets.keys()];
  }

  /** Stores the object with a fresh resourceVersion and records the event. */
  put(bucket: string, obj: KubeObject): KubeObject {
    const key = Store.key(obj.metadata.namespace, obj.metadata.name as string);
    let b = this.buckets.get(bucket);
    if (!b) this.buckets.set(bucket, (b = new Map()));
    const old = b.get(key);
    const stored = structuredClone(obj);
    stored.metadata.resourceVersion = String(++this.rv);
    b.set(key, stored);
    this.record({ type: old ? 'MODIFIED' : 'ADDED', rv: this.rv, bucket, object: stored, old });
    return structuredClone(stored);
  }

  remove(bucket: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const key = Store.key(namespace, name);
    const b = this.buckets.get(bucket);
    const old = b?.get(key);
    if (!b || !old) return undefined;
    b.delete(key);
    const gone = structuredClone(old);
    gone.metadata.resourceVersion = String(++this.rv);
    this.record({ type: 'DELETED', rv: this.rv, bucket, object: gone, old });
    return structuredClone(gone);
  }

  /** Events after `rv` for a bucket, or undefined when history no longer reaches back that far. */
  since(bucket: string, rv: number): StoreEvent[] | undefined {
    if (rv < this.compactedRv) return undefined;
    return this.history.filter((e) => e.rv > rv && e.bucket === bucket);
  }

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private record(e: StoreEvent): void {
    this.history.push(e);
    while (this.history.length > this.historySize) this.compactedRv = (this.history.shift() as StoreEvent).rv;
    for (const fn of this.listeners) {
      try {
        fn(e);
      } catch {
        // A broken watcher must not stop the write or the other watchers.
      }
    }
  }
}
