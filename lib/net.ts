import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';

/**
 * A loopback port free right now, picked at random below the kernel's ephemeral range. Ports the
 * kernel hands out (port 0) are the ones it also gives to outgoing connections, so one found free
 * that way was often taken by some client socket before the caller could bind it — a busy test
 * run opens thousands. Another process could still take a port first; the process helpers retry
 * on EADDRINUSE. Used by the tests, the benchmarks and the demo.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const [low] = ephemeralRange();
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = FIRST_PICKED_PORT + Math.floor(Math.random() * (low - FIRST_PICKED_PORT));
    if (await bindable(port, host)) return port;
  }
  return kernelPickedPort(host);
}

/** Below this, ports are left to well-known services. */
const FIRST_PICKED_PORT = 10_000;

function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low !== undefined && high !== undefined && low > FIRST_PICKED_PORT + 1_000) return [low, high];
  } catch {
    // not Linux: the common default
  }
  return [32_768, 60_999];
}

function bindable(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

function kernelPickedPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** `n` distinct free ports. */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort(host));
  return [...ports];
}

/** Whether a TCP connection to host:port succeeds right now. */
export function canConnect(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Whether a Redis server answers PING on 127.0.0.1:port within half a second. */
export function redisAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (buf) => done(buf.toString().startsWith('+PONG')));
  });
}

/** Binds `server` to host:port; rejects with the bind error (EADDRINUSE, EACCES) instead of emitting it. */
export function listenOn(server: { listen(port: number, host: string, cb: () => void): unknown; once(e: 'error', f: (err: Error) => void): unknown; off(e: 'error', f: (err: Error) => void): unknown; address(): unknown }, host: string, port: number): Promise<import('node:net').AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as import('node:net').AddressInfo);
    });
  });
}
