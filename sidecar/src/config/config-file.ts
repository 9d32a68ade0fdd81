import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { PolicyValidationError } from '../../../lib/policy/errors.ts';
import type { Answer, PolicyStore } from './policy-store.ts';

/** Reads a multi-document YAML file of sluice.dev resources into documents; throws with line numbers. */
export function parseDocuments(text: string): unknown[] {
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  if (!Array.isArray(docs)) throw new PolicyValidationError('config', [{ path: 'file', message: 'is not a YAML stream' }]);
  const values: unknown[] = [];
  for (const [i, doc] of docs.entries()) {
    if (doc.errors.length > 0) {
      throw new PolicyValidationError('config', doc.errors.map((e) => ({ path: `document ${i + 1}`, message: `YAML: ${e.message}` })));
    }
    const v = doc.toJS({ maxAliasCount: 100 });
    if (v !== null && v !== undefined) values.push(v);
  }
  return values;
}

/**
 * Standalone mode: policies from a YAML file, reloaded when it changes. The directory is watched
 * (editors and ConfigMap mounts replace files by rename, which a watch on the file itself misses),
 * and a slow poll backs the watch up on filesystems that do not deliver events. It only reads:
 * the store validates, compiles and reports.
 */
export class ConfigFile {
  private readonly path: string;
  private readonly store: PolicyStore;
  private watcher: FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private lastMtime = 0;
  private loading: Promise<void> = Promise.resolve();

  constructor(opts: { path: string; store: PolicyStore }) {
    this.path = resolve(opts.path);
    this.store = opts.store;
  }

  /** Loads once (throws if the first load fails: a sidecar must not start without its policies). */
  async start({ pollMs = 1000 }: { pollMs?: number } = {}): Promise<void> {
    const answer = await this.load();
    if (!answer.ack) throw new Error(`config ${this.path} is invalid: ${answer.reason}`);
    const name = basename(this.path);
    this.watcher = watch(dirname(this.path), (_event, file) => {
      if (file === null || file === name || file.startsWith(`..`)) this.schedule();
    });
    this.watcher.on('error', () => {});
    this.poll = setInterval(() => this.schedule(), pollMs);
    this.poll.unref();
  }

  stop(): void {
    this.watcher?.close();
    clearInterval(this.poll);
    clearTimeout(this.debounce);
  }

  /** Reloads now; resolves after the attempt (used by tests and on SIGHUP). */
  reload(): Promise<void> {
    this.loading = this.loading.then(() => this.load().then(() => undefined));
    return this.loading;
  }

  private schedule(): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.reloadIfChanged(), 50);
  }

  private async reloadIfChanged(): Promise<void> {
    try {
      const st = await stat(this.path);
      if (st.mtimeMs === this.lastMtime) return;
    } catch {
      // Missing for a moment during an atomic replace; load() reports it if it stays missing.
    }
    await this.reload();
  }

  private async load(): Promise<Answer> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
      this.lastMtime = (await stat(this.path)).mtimeMs;
    } catch (err) {
      return this.store.refuse({ source: 'file', version: undefined }, `cannot read ${this.path}: ${(err as Error).message}`);
    }
    const version = createHash('sha256').update(text).digest('hex').slice(0, 12);
    return this.store.offer({ source: 'file', origin: this.path, version, read: () => parseDocuments(text) });
  }
}
