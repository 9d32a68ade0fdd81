import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One task as the app received it (a batch call records one per task). */
export interface Delivery {
  readonly id: string;
  readonly attempt: number;
  readonly queue: string;
  readonly contentType: string;
  readonly body: string;
  /** Date.now() when the request arrived. */
  readonly at: number;
  readonly batchSize: number;
}

export type Behaviour = (d: Delivery) => number | Promise<number>;

/**
 * One task of every outcome, chosen by its JSON payload: `{fail: 'perm'}` is refused for good
 * (422), `{fail: 'retry'}` fails its first attempt (500), `{slow: true}` outlives a 1 s visibility
 * timeout; anything else succeeds.
 */
export const mixedOutcomes: Behaviour = (d) => {
  const body = JSON.parse(d.body) as { fail?: string; slow?: boolean };
  if (body.fail === 'perm') return 422;
  if (body.fail === 'retry' && d.attempt === 1) return 500;
  if (body.slow) return new Promise((resolve) => setTimeout(() => resolve(200), 1_500));
  return 200;
};

/**
 * A real worker app on a loopback port: node:http, as a user would write it. It records every
 * delivery and answers with whatever status `behaviour` returns (it may also wait first). Batch
 * calls are answered with per-task results.
 */
export class WorkerApp {
  readonly deliveries: Delivery[] = [];
  behaviour: Behaviour = () => 200;
  private readonly server: Server;
  private readonly open = new Set<import('node:net').Socket>();

  private constructor(server: Server) {
    this.server = server;
    server.on('connection', (s) => {
      this.open.add(s);
      s.on('close', () => this.open.delete(s));
    });
  }

  static async start(behaviour?: Behaviour): Promise<WorkerApp> {
    const server = createServer();
    const app = new WorkerApp(server);
    if (behaviour) app.behaviour = behaviour;
    server.on('request', (req, res) => {
      void app.handle(req).then(
        (r) => {
          res.writeHead(r.status, { 'content-type': 'application/json' });
          res.end(r.body);
        },
        () => {
          res.writeHead(500);
          res.end();
        },
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return app;
  }

  get address(): string {
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  ids(): string[] {
    return this.deliveries.map((d) => d.id);
  }

  async close(): Promise<void> {
    for (const s of this.open) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage): Promise<{ status: number; body: string }> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const at = Date.now();
    const queue = String(req.headers['sluice-queue'] ?? '');
    const batch = req.headers['sluice-batch-size'];
    if (batch === undefined) {
      const d: Delivery = {
        id: String(req.headers['sluice-task-id']),
        attempt: Number(req.headers['sluice-attempt']),
        queue,
        contentType: String(req.headers['content-type']),
        body: text,
        at,
        batchSize: 1,
      };
      this.deliveries.push(d);
      return { status: await this.behaviour(d), body: '' };
    }
    const doc = JSON.parse(text) as { tasks: { id: string; attempt: number; contentType: string; payload?: unknown; body?: string }[] };
    const results = await Promise.all(
      doc.tasks.map(async (t) => {
        const d: Delivery = {
          id: t.id,
          attempt: t.attempt,
          queue,
          contentType: t.contentType,
          body: t.payload !== undefined ? JSON.stringify(t.payload) : Buffer.from(t.body ?? '', 'base64').toString('utf8'),
          at,
          batchSize: doc.tasks.length,
        };
        this.deliveries.push(d);
        return { id: t.id, status: await this.behaviour(d) };
      }),
    );
    return { status: 200, body: JSON.stringify({ results }) };
  }
}
