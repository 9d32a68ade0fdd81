import type { Redis } from 'ioredis';
import { asCluster } from '../../../lib/redis/connection.ts';
import { hashSlot } from '../../../lib/redis/key-layout.ts';
import { QueueError } from './errors.ts';
import { whenReady } from './when-ready.ts';

/** A node connection in these states takes the command now or as soon as it has connected (bounded by the command timeout). */
const USABLE = new Set(['ready', 'wait', 'connect', 'connecting']);
const READY_WAIT_MS = 2_000;

/**
 * `durability: Replicated`: an enqueue is confirmed only once `WAIT 1 <timeout>` says a replica has
 * it. WAIT counts the writes of the connection it is sent on, so the enqueue script and its WAIT
 * go down one connection — the master of the queue's slot — on a client of their own: WAIT holds
 * that connection for up to the timeout, and rate-limit decisions and consumers must never queue
 * behind it.
 *
 * What it does not promise: WAIT does not make Redis strongly consistent. A replica that has the
 * task may still not be the one promoted, and a timed-out WAIT does not undo the write (the
 * producer sees an error, and the task may or may not survive: retry with the same
 * Idempotency-Key).
 */
export class ReplicaAck {
  private readonly client: Redis;

  constructor(client: Redis) {
    this.client = client;
  }

  /** The connection to the master serving `key`'s slot (the client itself off a cluster). */
  async connectionFor(key: string): Promise<Redis> {
    await whenReady(this.client, READY_WAIT_MS);
    const cluster = asCluster(this.client);
    if (!cluster) return this.client;
    const owner = cluster.slots[hashSlot(key)]?.[0];
    const node = owner === undefined ? undefined : cluster.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === owner);
    // Routed commands refresh the slot map when they meet MOVED or a dead node; these bypass the
    // routing, so a miss here asks for a refresh for the next enqueue.
    if (!node || !USABLE.has(node.status)) {
      cluster.refreshSlotsCache();
      throw new QueueError('SLUICE_ERR_QUEUE_UNAVAILABLE', 'the master of the queue\'s slot is not connected');
    }
    return node;
  }

  /** Resolves once a replica has every write sent so far on `conn`; an error after `timeoutMs`. */
  async confirm(conn: Redis, timeoutMs: number): Promise<void> {
    const replicas = Number(await conn.call('WAIT', 1, Math.max(1, Math.round(timeoutMs))));
    if (replicas < 1) {
      throw new QueueError('SLUICE_ERR_QUEUE_NOT_REPLICATED', `no replica confirmed the write within ${timeoutMs} ms; it may or may not survive a failover`);
    }
  }

  disconnect(): void {
    this.client.disconnect();
  }
}
