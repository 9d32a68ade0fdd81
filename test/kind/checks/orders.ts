/**
 * The order queue end to end. Runs in the app container of an order-api pod — the producer, which
 * the TaskQueue does not select — fed on stdin:
 *
 *   kubectl exec -i -n shop <order-api pod> -c app -- node --input-type=module-typescript - \
 *     <orders> <invalid> <run id> <worker pod IPs, comma-separated> < test/kind/checks/orders.ts
 *
 * Orders go to the pod's order API (producer.ts --serve on 127.0.0.1:8080), which posts each to
 * its own sidecar's local API (127.0.0.1:15020); the queue status is read there too. So a pass
 * also shows that a pod outside the queue's selector can produce to it.
 *
 * Posts `orders` orders (the first `invalid` with qty 0, which the worker refuses with 422) with
 * idempotency keys, re-posts one (must be a duplicate), waits until the queue has drained
 * (nothing pending, lagging or delayed) and the invalid orders are dead letters, then sums the
 * workers' sluice_queue_tasks_total: the valid orders acknowledged, the invalid dead-lettered,
 * and retries seen (the worker fails 30 % of first attempts). Self-contained: node: modules only.
 */
import { setTimeout as sleep } from 'node:timers/promises';

const [ordersArg = '40', invalidArg = '2', run = `run${Date.now()}`, ipsArg = ''] = process.argv.slice(2);
const orders = Number(ordersArg);
const invalid = Number(invalidArg);
const localApi = process.env.SLUICE_LOCAL_API ?? 'http://127.0.0.1:15020';
const orderApi = process.env.ORDER_API ?? 'http://127.0.0.1:8080';
const admins = ipsArg.split(',').filter(Boolean).map((ip) => `http://${ip.includes(':') ? `[${ip}]` : ip}:15000`);

interface QueueStatus {
  length?: number;
  pending?: number;
  lag?: number;
  delayed?: number;
  deadLetters?: number;
  consumers?: number;
}

async function queueStatus(): Promise<QueueStatus> {
  const res = await fetch(`${localApi}/v1/queues/orders`, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`GET /v1/queues/orders: ${res.status} ${await res.text()}`);
  return (await res.json()) as QueueStatus;
}

async function post(i: number): Promise<{ id: string; duplicate: boolean }> {
  const orderId = `${run}-${i}`;
  const order = { orderId, sku: `SKU-${(i % 7) + 1}`, qty: i <= invalid ? 0 : (i % 3) + 1 };
  // The order API keys each task by its orderId (Idempotency-Key) and relays the sidecar's answer.
  const res = await fetch(`${orderApi}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(order),
    signal: AbortSignal.timeout(5_000),
  });
  const body = (await res.json()) as { id?: string; duplicate?: boolean; code?: string; error?: string };
  if (res.status !== 202) throw new Error(`order ${orderId}: ${res.status} ${body.code}: ${body.error}`);
  return { id: String(body.id), duplicate: body.duplicate === true };
}

/** Sums one result of sluice_queue_tasks_total{queue="orders"} over every worker's sidecar. */
async function tasksTotal(result: string): Promise<number> {
  let sum = 0;
  for (const admin of admins) {
    const text = await (await fetch(`${admin}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
    for (const line of text.split('\n')) {
      if (line.startsWith('sluice_queue_tasks_total{') && line.includes('queue="orders"') && line.includes(`result="${result}"`)) {
        sum += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
    }
  }
  return sum;
}

try {
  if (admins.length === 0) throw new Error('no worker pod IPs given');
  const before = await queueStatus();
  const [acked0, dead0, retried0] = [await tasksTotal('acked'), await tasksTotal('dead_lettered'), await tasksTotal('retried')];

  for (let i = 1; i <= orders; i++) {
    const r = await post(i);
    if (r.duplicate) throw new Error(`order ${run}-${i} was new but came back as a duplicate`);
  }
  const again = await post(orders);
  if (!again.duplicate) throw new Error('posting an order again with the same Idempotency-Key made a second task');
  console.log(`ok: posted ${orders} orders (${invalid} invalid); a re-post was recognised as a duplicate`);

  const deadline = Date.now() + 120_000;
  let s = await queueStatus();
  while (!((s.deadLetters ?? 0) >= (before.deadLetters ?? 0) + invalid && s.pending === 0 && s.lag === 0 && (s.delayed ?? 0) === 0)) {
    if (Date.now() > deadline) throw new Error(`the queue did not drain within 120 s: ${JSON.stringify(s)} (before: ${JSON.stringify(before)})`);
    await sleep(1_000);
    s = await queueStatus();
  }
  console.log(`ok: queue drained: ${JSON.stringify(s)}`);

  const acked = (await tasksTotal('acked')) - acked0;
  const dead = (await tasksTotal('dead_lettered')) - dead0;
  const retried = (await tasksTotal('retried')) - retried0;
  console.log(`workers: acked ${acked}, dead-lettered ${dead}, retried ${retried}`);
  if (acked < orders - invalid) throw new Error(`expected at least ${orders - invalid} orders acknowledged, got ${acked}`);
  if (dead < invalid) throw new Error(`expected at least ${invalid} dead letters, got ${dead}`);
  if (retried < 1) throw new Error('expected retries (the worker fails 30 % of first attempts), saw none');
} catch (err) {
  console.error(`FAIL ${(err as Error).message}`);
  process.exitCode = 1;
}
