/**
 * `delivery.protocol: grpc` end to end: a real sidecar (standalone, --redis, --app-grpc) takes
 * tasks on its local API into a real Redis stream and delivers each as a unary gRPC call to a
 * real grpc-js app server, which has no idea of Sluice beyond the metadata.
 */
import { queueKeys } from '../../../lib/redis/key-layout.ts';
import * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { useCleanup, useRedisServer } from '../../../test/helpers/fixtures.ts';
import type { RedisServer } from '../../../test/helpers/redis-server.ts';
import { startSidecar, type RunningSidecar } from '../../../test/helpers/sidecar.ts';

let redis: RedisServer;
let r: Redis;
useRedisServer((server) => {
  redis = server;
  r = new Redis(server.url);
  return () => r.disconnect();
});
const cleanup = useCleanup();

interface Received { payload: Buffer; id: string; attempt: number; queue: string; deadline: number }

/** The app's answer to one call: OK, a gRPC error code, or never (to hit the deadline). */
type Answer = { code: grpc.status } | 'hang';

/** A gRPC app serving orders.Worker/Handle with raw bytes (no .proto needed on either side). */
async function startGrpcApp(answer: (call: Received, n: number) => Answer): Promise<{ address: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server = new grpc.Server();
  const raw = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
  server.addService({
    Handle: {
      path: '/orders.Worker/Handle', requestStream: false, responseStream: false, originalName: 'Handle',
      requestSerialize: raw.serialize, requestDeserialize: raw.deserialize,
      responseSerialize: raw.serialize, responseDeserialize: raw.deserialize,
    },
  }, {
    Handle: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      const md = call.metadata;
      const deadline = call.getDeadline();
      const got: Received = {
        payload: call.request,
        id: String(md.get('sluice-task-id')[0]),
        attempt: Number(md.get('sluice-attempt')[0]),
        queue: String(md.get('sluice-queue')[0]),
        deadline: deadline instanceof Date ? deadline.getTime() : Number(deadline),
      };
      received.push(got);
      const a = answer(got, received.length);
      if (a === 'hang') return;
      if (a.code === grpc.status.OK) callback(null, Buffer.from([0x08, 0x01]));
      else callback({ code: a.code, details: 'refused by the test app' });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return {
    address: `127.0.0.1:${port}`,
    received,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())).then(() => server.forceShutdown()),
  };
}

const queueYaml = (name: string, timeout = '500ms') => `
apiVersion: sluice.dev/v1alpha1
kind: TaskQueue
metadata: {name: ${name}, namespace: shop}
spec:
  selector: {}
  stream: test.${name}
  consumerGroup: ${name}-workers
  delivery: {protocol: grpc, method: orders.Worker/Handle, timeout: ${timeout}}
  concurrency: 4
  retry: {maxAttempts: 3, backoff: {initial: 100ms, max: 500ms, multiplier: 2}}
  deadLetter: {stream: test.${name}.dlq}
  visibilityTimeout: 5s
`;

async function setup(name: string, answer: (call: Received, n: number) => Answer, timeout?: string) {
  const app = await startGrpcApp(answer);
  const sc = await startSidecar(queueYaml(name, timeout), { redis: redis.url, appGrpc: app.address });
  cleanup.push(() => app.close(), () => sc.stop(200));
  await eventually(async () => expect((await fetch(`${sc.admin}/readyz`)).status).toBe(200));
  return { app, sc };
}

/** A protobuf-encoded request as a producer would send it: field 1 (string) "order-42", field 2 (varint) 300. */
const ORDER = Buffer.from([0x0a, 0x08, ...Buffer.from('order-42'), 0x10, 0xac, 0x02]);

async function enqueue(sc: RunningSidecar, queue: string, body: Buffer = ORDER): Promise<string> {
  const res = await fetch(`${sc.localApi}/v1/queues/${queue}/tasks`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

async function stats(sc: RunningSidecar, queue: string): Promise<Record<string, number>> {
  return (await (await fetch(`${sc.localApi}/v1/queues/${queue}`)).json()) as Record<string, number>;
}

/** The dead letters of the queue `name` (its dead-letter stream, under the queue's own keys). */
async function deadLetters(name: string): Promise<Record<string, string>[]> {
  const key = queueKeys({ namespace: 'shop', stream: `test.${name}`, deadLetterStream: `test.${name}.dlq` }).deadLetter as string;
  const entries = (await r.xrange(key, '-', '+')) as [string, string[]][];
  return entries.map(([, f]) => Object.fromEntries(f.flatMap((_, i) => (i % 2 ? [] : [[f[i], f[i + 1]]]))));
}

describe('TaskQueue delivery over gRPC', () => {
  it('calls the method with the payload bytes unchanged and the task metadata, then acks', async () => {
    // A timeout no loaded machine reaches: a second delivery here would be a retry after a
    // timeout (at-least-once), not the single delivery this test is about.
    const { app, sc } = await setup('grpc-ok', () => ({ code: grpc.status.OK }), '4s');
    const before = Date.now();
    const id = await enqueue(sc, 'grpc-ok');
    await eventually(() => expect(app.received).toHaveLength(1));
    const call = app.received[0]!;
    expect(call).toMatchObject({ id, attempt: 1, queue: 'grpc-ok' });
    expect(call.payload.equals(ORDER)).toBe(true);
    // delivery.timeout travels as the call's deadline.
    expect(call.deadline).toBeGreaterThan(before + 3_000);
    expect(call.deadline).toBeLessThanOrEqual(Date.now() + 4_100);
    await eventually(async () => expect(await stats(sc, 'grpc-ok')).toMatchObject({ pending: 0, lag: 0, deadLetters: 0 }));
    await sleep(300);
    expect(app.received).toHaveLength(1);
  });

  it('retries UNAVAILABLE after backoff with the next attempt number', async () => {
    const { app, sc } = await setup('grpc-retry', (_c, n) => (n === 1 ? { code: grpc.status.UNAVAILABLE } : { code: grpc.status.OK }));
    const id = await enqueue(sc, 'grpc-retry');
    await eventually(() => expect(app.received).toHaveLength(2));
    expect(app.received.map((c) => [c.id, c.attempt])).toEqual([[id, 1], [id, 2]]);
    expect(app.received[1]!.payload.equals(ORDER)).toBe(true);
    await eventually(async () => expect(await stats(sc, 'grpc-retry')).toMatchObject({ pending: 0, deadLetters: 0 }));
  });

  it('dead-letters INVALID_ARGUMENT at once: the app refused the task itself', async () => {
    const { app, sc } = await setup('grpc-bad', () => ({ code: grpc.status.INVALID_ARGUMENT }));
    const id = await enqueue(sc, 'grpc-bad');
    await eventually(async () => expect(await deadLetters('grpc-bad')).toHaveLength(1));
    const [dead] = await deadLetters('grpc-bad');
    expect(dead).toMatchObject({ originalId: id, attempts: '1', cause: 'permanent', error: 'grpc INVALID_ARGUMENT' });
    await sleep(300);
    expect(app.received).toHaveLength(1);
    expect(await stats(sc, 'grpc-bad')).toMatchObject({ pending: 0, deadLetters: 1 });
  });

  it('a call past delivery.timeout fails as a timeout and is retried; maxAttempts failures dead-letter it', async () => {
    const { app, sc } = await setup('grpc-slow', () => 'hang');
    const id = await enqueue(sc, 'grpc-slow');
    await eventually(async () => expect(await deadLetters('grpc-slow')).toHaveLength(1), { timeoutMs: 15_000 });
    expect(app.received.map((c) => c.attempt)).toEqual([1, 2, 3]);
    const [dead] = await deadLetters('grpc-slow');
    expect(dead).toMatchObject({ originalId: id, attempts: '3', error: 'timeout' });
  });
});
