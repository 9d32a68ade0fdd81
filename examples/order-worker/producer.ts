// The order producer: posts order tasks to its own sidecar's local API. Each order carries an
// Idempotency-Key, so posting the same order twice (a retried checkout) makes one task.
//
//   npx node examples/order-worker/producer.ts --sidecar http://127.0.0.1:15021 --orders 20 [--invalid 1] [--delay 5s]
import { parseArgs } from 'node:util';
import type { Order } from './worker.ts';

export interface Posted {
  readonly orderId: string;
  readonly taskId: string;
  readonly duplicate: boolean;
}

export async function postOrders(opts: { sidecar: string; orders: number; invalid?: number; delay?: string; queue?: string }): Promise<Posted[]> {
  const out: Posted[] = [];
  for (let i = 1; i <= opts.orders; i++) {
    const order: Order = { orderId: `o-${i}`, sku: `SKU-${(i % 7) + 1}`, qty: i <= (opts.invalid ?? 0) ? 0 : (i % 3) + 1 };
    const headers: Record<string, string> = { 'content-type': 'application/json', 'idempotency-key': order.orderId };
    if (opts.delay) headers['sluice-delay'] = opts.delay;
    const res = await fetch(`${opts.sidecar}/v1/queues/${opts.queue ?? 'orders'}/tasks`, { method: 'POST', headers, body: JSON.stringify(order) });
    const body = (await res.json()) as { id?: string; duplicate?: boolean; error?: string; code?: string };
    if (res.status !== 202) throw new Error(`order ${order.orderId}: ${res.status} ${body.code}: ${body.error}`);
    out.push({ orderId: order.orderId, taskId: body.id as string, duplicate: body.duplicate === true });
  }
  return out;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      sidecar: { type: 'string', default: 'http://127.0.0.1:15021' },
      orders: { type: 'string', default: '20' },
      invalid: { type: 'string', default: '0' },
      delay: { type: 'string' },
    },
  });
  const posted = await postOrders({ sidecar: values.sidecar, orders: Number(values.orders), invalid: Number(values.invalid), delay: values.delay });
  for (const p of posted) console.log(`${p.orderId} → task ${p.taskId}${p.duplicate ? ' (duplicate)' : ''}`);
}
