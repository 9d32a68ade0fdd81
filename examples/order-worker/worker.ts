// The order worker: a plain node:http app that receives order tasks from its sidecar as
// POST /tasks and answers them. It knows nothing about Redis, retries or dead letters.
//
//   npx node examples/order-worker/worker.ts --port 8080 [--fail-rate 0.2]
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

export interface Order {
  readonly orderId: string;
  readonly sku: string;
  readonly qty: number;
  /** The customer, checked with the user-service by the order API when it is given. */
  readonly customerId?: string;
}

export interface OrderWorker {
  readonly server: Server;
  readonly port: number;
  /** Orders fulfilled, by task id: the side effect that must happen once per order. */
  readonly fulfilled: Map<string, Order>;
  /** Every delivery seen, including redeliveries of an order already fulfilled. */
  deliveries: number;
  close(): Promise<void>;
}

/**
 * `failRate` makes that share of first attempts fail with 503 (a flaky dependency), to show
 * retries with backoff. An order with qty ≤ 0 is refused with 422: a permanent failure, which the
 * sidecar dead-letters at once instead of retrying.
 */
export async function startOrderWorker(opts: { port?: number; failRate?: number; log?: boolean } = {}): Promise<OrderWorker> {
  const fulfilled = new Map<string, Order>();
  const worker = { fulfilled, deliveries: 0 } as { -readonly [K in keyof OrderWorker]: OrderWorker[K] };
  const server = createServer(async (req, res) => {
    if (req.method !== 'POST' || req.url !== '/tasks') {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    worker.deliveries++;
    const taskId = String(req.headers['sluice-task-id']);
    const attempt = Number(req.headers['sluice-attempt']);
    let order: Order;
    try {
      order = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Order;
    } catch {
      res.writeHead(422).end('not JSON');
      return;
    }
    // The task id is the idempotency key: a redelivery (after a crash, a lost ack) changes nothing.
    if (fulfilled.has(taskId)) {
      res.writeHead(200).end('already fulfilled');
      return;
    }
    if (!(order.qty > 0)) {
      if (opts.log) console.log(`order ${order.orderId}: refused (qty ${order.qty}) — permanent failure`);
      res.writeHead(422).end('qty must be positive');
      return;
    }
    if (attempt === 1 && Math.random() < (opts.failRate ?? 0)) {
      if (opts.log) console.log(`order ${order.orderId}: warehouse busy on attempt ${attempt}, try later`);
      res.writeHead(503).end('warehouse busy');
      return;
    }
    await new Promise((r) => setTimeout(r, 5)); // reserve stock, charge, ship…
    fulfilled.set(taskId, order);
    if (opts.log) console.log(`order ${order.orderId}: fulfilled (${order.qty} × ${order.sku}), task ${taskId}, attempt ${attempt}`);
    res.writeHead(200).end('fulfilled');
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  worker.server = server;
  worker.port = (server.address() as AddressInfo).port;
  worker.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return worker;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '8080' }, 'fail-rate': { type: 'string', default: '0' } } });
  const w = await startOrderWorker({ port: Number(values.port), failRate: Number(values['fail-rate']), log: true });
  console.log(`order worker on 127.0.0.1:${w.port} (POST /tasks)`);
}
