import { connect } from 'node:net';

/**
 * Sends raw bytes to host:port and collects everything the server answers until it closes the
 * connection (or `timeoutMs` passes). Bad-input tests use it to send what no HTTP client would.
 */
export function rawRequest(port: number, chunks: (string | Buffer)[], { timeoutMs = 10_000, gapMs = 0 } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    const out: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(Buffer.concat(out).toString('latin1'));
    }, timeoutMs);
    sock.on('data', (d) => out.push(d));
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(out).toString('latin1'));
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return;
      clearTimeout(timer);
      reject(err);
    });
    sock.on('connect', async () => {
      for (const c of chunks) {
        if (sock.destroyed) return;
        sock.write(c);
        if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
      }
    });
  });
}

export function statusOf(raw: string): number {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(raw);
  return m ? Number(m[1]) : 0;
}
