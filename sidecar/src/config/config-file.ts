import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { compilePlan } from '../../../lib/policy/compile.ts';
import { PolicyValidationError } from '../../../lib/policy/errors.ts';
import type { Plan } from '../../../lib/policy/plan.ts';
import type { Logger } from '../../../lib/log.ts';
import type { SidecarMetrics } from '../metrics.ts';
import type { PolicyStore } from './policy-store.ts';

/** Parses a multi-document YAML file of sluice.dev resources into a plan; throws with line numbers. */
export function parsePlan(text: string, labels: Readonly<Record<string, string>> | undefined): Plan {
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
  const version = createHash('sha256').update(text).digest('hex').slice(0, 12);
  return compilePlan(values, { labels, version });
}

/**
 * Standalone mode: policies from a YAML file, reloaded when it changes. The directory is watched
 * (editors and ConfigMap mounts replace files by rename, which a watch on the file itself misses),
 * and a slow poll backs the watch up on filesystems that do not deliver events.
 */
export class ConfigFile {
  private readonly path: string;
  private readonly labels: Readonly<Record<string, string>> | undefined;
  private readonly store: PolicyStore;
  private readonly logger: Logger;
  private readonly metrics: SidecarMetrics;
  private watcher: FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private lastText: string | undefined;
  private lastMtime = 0;
  private loading: Promise<void> = Promise.resolve();

  constructor(opts: { path: string; labels?: Readonly<Record<string, string>>; store: PolicyStore; logger: Logger; metrics: SidecarMetrics }) {
    this.path = resolve(opts.path);
    this.labels = opts.labels;
    this.store = opts.store;
    this.logger = opts.logger;
    this.metrics = opts.metrics;
  }

  /** Loads once (throws if the first load fails: a sidecar must not start without its policies). */
  async start({ pollMs = 1000 }: { pollMs?: number } = {}): Promise<void> {
    const ok = await this.load();
    if (!ok) throw new Error(`config ${this.path} is invalid: ${this.store.lastRejected?.reason ?? 'unreadable'}`);
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

  private async load(): Promise<boolean> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
      this.lastMtime = (await stat(this.path)).mtimeMs;
    } catch (err) {
      this.refuse(undefined, `cannot read ${this.path}: ${(err as Error).message}`);
      return false;
    }
    if (text === this.lastText) {
      this.metrics.configReloads.labels('unchanged').inc();
      return true;
    }
    let plan: Plan;
    try {
      plan = parsePlan(text, this.labels);
    } catch (err) {
      this.refuse(createHash('sha256').update(text).digest('hex').slice(0, 12), (err as Error).message);
      return false;
    }
    this.lastText = text;
    const previous = this.store.current.version;
    this.store.apply(plan, `file:${this.path}`);
    this.metrics.configVersion.reset();
    this.metrics.configVersion.labels(plan.version, 'file').set(1);
    this.metrics.configReloads.labels('applied').inc();
    this.logger.info('config applied', {
      version: plan.version, previous, rateLimitRules: plan.rateLimits.length, breakerRules: plan.breakers.length,
      taskQueues: plan.taskQueues.length, leaderElections: plan.leaderElections.length,
    });
    return true;
  }

  private refuse(version: string | undefined, reason: string): void {
    this.store.reject(version, reason);
    this.metrics.configReloads.labels('rejected').inc();
    this.logger.error('config rejected; the last good config stays in force', { version, reason, active: this.store.current.version });
  }
}
