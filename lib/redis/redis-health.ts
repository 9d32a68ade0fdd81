import type { Redis } from 'ioredis';

/**
 * Removes credentials from a Redis URL so it can be logged: the data nodes' password and a
 * Sentinel password in the query. Works on every topology's URL (several hosts are not a WHATWG URL).
 */
export function redactUrl(url: string): string {
  const m = /^([a-z+]+:\/\/)(?:([^@/?#]*)@)?([^\s]*)$/i.exec(url.trim());
  if (!m) return '<invalid url>';
  const [, scheme, userinfo, rest = ''] = m;
  const colon = userinfo?.indexOf(':') ?? -1;
  const user = userinfo === undefined ? '' : colon < 0 ? `${userinfo}@` : `${userinfo.slice(0, colon)}:***@`;
  return `${scheme}${user}${rest.replace(/([?&]sentinelPassword=)[^&#]*/gi, '$1***')}`;
}

export type RedisState = 'connecting' | 'ready' | 'down';

/** Follows a client's connection state for /readyz and the `sluice_redis_up` metric. */
export class RedisHealth {
  state: RedisState = 'connecting';
  lastError: string | undefined;
  since = Date.now();
  readonly name: string;

  constructor(name: string, client: Redis) {
    this.name = name;
    const set = (s: RedisState) => {
      if (s !== this.state) {
        this.state = s;
        this.since = Date.now();
      }
    };
    client.on('ready', () => {
      set('ready');
      this.lastError = undefined;
    });
    client.on('error', (err: Error) => {
      this.lastError = err.message;
    });
    client.on('close', () => set('down'));
    client.on('end', () => set('down'));
    if (client.status === 'ready') set('ready');
  }

  toJSON(): object {
    return { name: this.name, state: this.state, since: new Date(this.since).toISOString(), lastError: this.lastError };
  }
}
