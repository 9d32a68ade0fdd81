import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestApp {
  server: Server;
  /** host:port for --app-http */
  hostPort: string;
  port: number;
  /** Every request the app received, in order (method, url, headers, body). */
  received: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[];
  close(): Promise<void>;
}

/**
 * A real HTTP app on a free port. By default it answers 200 with the path; `handler` may take
 * over (return true when it answered). Tests read `received` to prove what was or wasn't forwarded.
 */
export async function startApp(
  handler?: (req: IncomingMessage, res: ServerResponse, body: string) => boolean | void | Promise<boolean | void>,
): Promise<TestApp> {
  const received: TestApp['received'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks).toString();
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (handler && (await handler(req, res, body))) return;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`ok ${req.url}`);
    });
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    hostPort: `127.0.0.1:${port}`,
    port,
    received,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
