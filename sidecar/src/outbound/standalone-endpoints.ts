import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from '../../../lib/log.ts';
import { parseHostPort } from '../../../lib/policy/upstream.ts';

const LOOKUP_TIMEOUT_MS = 2_000;

/**
 * Standalone mode's endpoint source: the `endpoints` of the Upstream as written, with names
 * resolved to every address they have (a headless Service's name yields every pod), again every
 * `resolveEveryMs`. A failed lookup keeps that name's last addresses, so a DNS hiccup drops none.
 */
export class StandaloneEndpoints {
  private readonly entries: readonly string[];
  private readonly resolveEveryMs: number;
  private readonly deliver: (addresses: string[]) => void;
  private readonly logger: Logger;
  private readonly last = new Map<string, string[]>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(opts: { entries: readonly string[]; resolveEveryMs: number; deliver: (addresses: string[]) => void; logger: Logger }) {
    this.entries = opts.entries;
    this.resolveEveryMs = opts.resolveEveryMs;
    this.deliver = opts.deliver;
    this.logger = opts.logger;
  }

  /** Delivers the literal addresses at once, then the resolved names as they come. */
  start(): void {
    const literal = this.entries.every((e) => isIP(parseHostPort(e)?.host ?? '') !== 0);
    if (literal) return this.deliver([...this.entries]);
    void this.resolve();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private async resolve(): Promise<void> {
    const out: string[] = [];
    await Promise.all(this.entries.map(async (entry) => {
      const hp = parseHostPort(entry);
      if (!hp) return;
      if (isIP(hp.host) !== 0) return void out.push(entry);
      try {
        const found = await withTimeout(lookup(hp.host, { all: true }), LOOKUP_TIMEOUT_MS);
        const addrs = found.map((a) => (a.family === 6 ? `[${a.address}]:${hp.port}` : `${a.address}:${hp.port}`));
        this.last.set(entry, addrs);
      } catch (err) {
        this.logger.warn('cannot resolve an upstream endpoint name; keeping its last addresses', { entry, err });
      }
      out.push(...(this.last.get(entry) ?? []));
    }));
    if (this.stopped) return;
    this.deliver(out);
    this.timer = setTimeout(() => void this.resolve(), this.resolveEveryMs);
    this.timer.unref();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`DNS lookup took over ${ms} ms`), { code: 'ETIMEOUT' })), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
