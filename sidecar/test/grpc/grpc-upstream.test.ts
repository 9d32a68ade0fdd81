import http2, { type Http2Server, type ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../lib/log.ts';
import { UpstreamSessions } from '../../src/grpc/grpc-upstream.ts';
import { eventually } from '../../../test/helpers/eventually.ts';

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

/** A raw HTTP/2 "app" that reports the PINGs it receives, and may answer them with GOAWAY. */
async function pingedApp(onPing: (s: ServerHttp2Session) => void): Promise<{ address: string; pings: number[] }> {
  const pings: number[] = [];
  const server: Http2Server = http2.createServer();
  server.on('session', (s) => {
    s.on('error', () => {});
    s.on('ping', () => {
      pings.push(Date.now());
      onPing(s);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.push(() => new Promise((r) => server.close(r)));
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, pings };
}

function pool(target: string, keepaliveIntervalMs: number): UpstreamSessions {
  const p = new UpstreamSessions({ target, sessions: 1, initialWindowSize: 65_535, connectionWindowSize: 1 << 20, keepaliveIntervalMs, keepaliveTimeoutMs: 1_000, logger: silentLogger });
  cleanup.push(() => p.close(100));
  return p;
}

describe('UpstreamSessions keepalive', () => {
  it('PINGs an idle connection every interval, and keeps it while the app answers', async () => {
    const app = await pingedApp(() => {});
    const p = pool(app.address, 50);
    const s = p.session();
    await eventually(() => expect(app.pings.length).toBeGreaterThanOrEqual(3));
    expect(p.session()).toBe(s);
    expect(s.destroyed).toBe(false);
  });

  it('sends no PING with keepalive off', async () => {
    const app = await pingedApp(() => {});
    const p = pool(app.address, 0);
    const s = p.session();
    await new Promise<void>((r) => s.once('connect', () => r()));
    await new Promise((r) => setTimeout(r, 300));
    expect(app.pings).toEqual([]);
  });

  it('doubles the interval when the app answers a PING with GOAWAY(ENHANCE_YOUR_CALM), and dials a new connection', async () => {
    const app = await pingedApp((s) => s.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM));
    const p = pool(app.address, 50);
    const first = p.session();
    await eventually(() => expect(p.keepaliveInterval).toBe(100));
    const second = p.session();
    expect(second).not.toBe(first);
    await eventually(() => expect(p.keepaliveInterval).toBe(200));
    expect(app.pings).toHaveLength(2);
  });

  it('refuses a nonsensical configuration', () => {
    const base = { target: '127.0.0.1:1', sessions: 1, initialWindowSize: 65_535, connectionWindowSize: 65_535, logger: silentLogger };
    expect(() => new UpstreamSessions({ ...base, keepaliveIntervalMs: -1, keepaliveTimeoutMs: 1 })).toThrow(RangeError);
    expect(() => new UpstreamSessions({ ...base, keepaliveIntervalMs: 1, keepaliveTimeoutMs: 0 })).toThrow(RangeError);
  });
});
