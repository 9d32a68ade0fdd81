// The order producer: posts order tasks to its own sidecar's local API. Each order carries an
// Idempotency-Key, so posting the same order twice (a retried checkout) makes one task.
//
//   npx node examples/order-worker/producer.ts --sidecar http://127.0.0.1:15021 --orders 20 [--invalid 1] [--delay 5s]
//
// With --serve PORT it instead stays up as a tiny order API (the `order-api` pods of k8s/): each
// `POST /orders` with an order as JSON is posted to the sidecar, and the sidecar's answer (202
// with the task id, `duplicate` on a re-post) is relayed. It listens on 127.0.0.1 only: in a pod
// its sidecar's inbound HTTP port is the way in. With --user-service host:port, an order that names
// its customer (`customerId`) is first checked with UserService/GetUser at that address — the
// loopback port of an `Upstream` its sidecar serves, which spreads the calls over the
// user-service's pods, retries and times out (k8s/upstream.yaml): the app itself dials one port.
//
//   npx node examples/order-worker/producer.ts --serve 8080 --sidecar http://127.0.0.1:15020 [--user-service 127.0.0.1:16001]
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { status as grpcStatus } from '@grpc/grpc-js';
import { userServiceClient, type UserServiceClient } from '../user-service/user-service.ts';
import type { Order } from './worker.ts';

export interface Posted {
  readonly orderId: string;
  readonly taskId: string;
  readonly duplicate: boolean;
}

interface EnqueueAnswer {
  readonly status: number;
  readonly body: { id?: string; duplicate?: boolean; error?: string; code?: string };
}

/** Posts one order as a task, keyed by its orderId; the sidecar's answer as it came. */
async function enqueueOrder(sidecar: string, order: Order, opts: { delay?: string; queue?: string } = {}): Promise<EnqueueAnswer> {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'idempotency-key': order.orderId };
  if (opts.delay) headers['sluice-delay'] = opts.delay;
  const res = await fetch(`${sidecar}/v1/queues/${opts.queue ?? 'orders'}/tasks`, { method: 'POST', headers, body: JSON.stringify(order) });
  return { status: res.status, body: (await res.json()) as EnqueueAnswer['body'] };
}

export async function postOrders(opts: { sidecar: string; orders: number; invalid?: number; delay?: string; queue?: string }): Promise<Posted[]> {
  const out: Posted[] = [];
  for (let i = 1; i <= opts.orders; i++) {
    const order: Order = { orderId: `o-${i}`, sku: `SKU-${(i % 7) + 1}`, qty: i <= (opts.invalid ?? 0) ? 0 : (i % 3) + 1 };
    const { status, body } = await enqueueOrder(opts.sidecar, order, opts);
    if (status !== 202) throw new Error(`order ${order.orderId}: ${status} ${body.code}: ${body.error}`);
    out.push({ orderId: order.orderId, taskId: body.id as string, duplicate: body.duplicate === true });
  }
  return out;
}

export interface OrderApi {
  readonly server: Server;
  readonly port: number;
  /** Customer lookups through the user-service: answered, and failed (the order was refused 503). */
  readonly lookups: { ok: number; failed: number };
  close(): Promise<void>;
}

/** How long a customer lookup may take, whatever the sidecar's Upstream allows. */
const LOOKUP_DEADLINE_MS = 5_000;

function lookUpCustomer(client: UserServiceClient, id: string): Promise<string | undefined> {
  return new Promise((resolve) => client.GetUser({ id }, { deadline: Date.now() + LOOKUP_DEADLINE_MS }, (err) => {
    resolve(err ? `${grpcStatus[err.code] ?? err.code}: ${err.details}` : undefined);
  }));
}

/**
 * The order API: `POST /orders` (an order as JSON) → a task on the queue through the sidecar;
 * `GET /healthz` → 200. A body that is not an order is answered 400 and never reaches the queue.
 * With `userService`, an order's `customerId` is looked up first; a failed lookup is answered 503
 * (`USER_LOOKUP_FAILED`) and the order is not queued.
 */
export async function serveOrders(opts: { sidecar: string; port?: number; host?: string; queue?: string; userService?: string }): Promise<OrderApi> {
  const users = opts.userService ? userServiceClient(opts.userService) : undefined;
  const lookups = { ok: 0, failed: 0 };
  const server = createServer(async (req, res) => {
    const reply = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (req.method === 'GET' && req.url === '/healthz') return reply(200, { ok: true });
    if (req.method !== 'POST' || req.url !== '/orders') return reply(404, { error: 'POST /orders' });
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let order: Order;
    try {
      order = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Order;
      if (typeof order?.orderId !== 'string' || order.orderId === '' || typeof order.sku !== 'string' || typeof order.qty !== 'number') throw new Error('not an order');
      if (order.customerId !== undefined && typeof order.customerId !== 'string') throw new Error('not an order');
    } catch {
      return reply(400, { error: 'expected {"orderId": string, "sku": string, "qty": number, "customerId"?: string}' });
    }
    if (users && order.customerId !== undefined) {
      const failure = await lookUpCustomer(users, order.customerId);
      if (failure) {
        lookups.failed++;
        return reply(503, { error: `customer ${order.customerId} could not be looked up: ${failure}`, code: 'USER_LOOKUP_FAILED' });
      }
      lookups.ok++;
    }
    try {
      const { status, body } = await enqueueOrder(opts.sidecar, { orderId: order.orderId, sku: order.sku, qty: order.qty, ...(order.customerId !== undefined ? { customerId: order.customerId } : {}) }, { queue: opts.queue });
      reply(status, body);
    } catch (err) {
      reply(502, { error: `the sidecar did not answer: ${(err as Error).message}` });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    lookups,
    close: () => new Promise<void>((resolve) => {
      users?.close();
      server.close(() => resolve());
    }),
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      sidecar: { type: 'string', default: 'http://127.0.0.1:15021' },
      orders: { type: 'string', default: '20' },
      invalid: { type: 'string', default: '0' },
      delay: { type: 'string' },
      serve: { type: 'string' },
      'user-service': { type: 'string' },
    },
  });
  if (values.serve !== undefined) {
    const api = await serveOrders({ sidecar: values.sidecar, port: Number(values.serve), userService: values['user-service'] });
    console.log(`order API on 127.0.0.1:${api.port}: POST /orders → ${values.sidecar}${values['user-service'] ? `, customers looked up at ${values['user-service']}` : ''}`);
    process.once('SIGTERM', () => void api.close().then(() => process.exit(0)));
  } else {
    const posted = await postOrders({ sidecar: values.sidecar, orders: Number(values.orders), invalid: Number(values.invalid), delay: values.delay });
    for (const p of posted) console.log(`${p.orderId} → task ${p.taskId}${p.duplicate ? ' (duplicate)' : ''}`);
  }
}
