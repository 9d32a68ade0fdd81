import { describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../test/helpers/eventually.ts';
import { WorkQueue } from '../src/work-queue.ts';

describe('WorkQueue', () => {
  it('deduplicates keys added before a worker takes them', async () => {
    const seen: string[] = [];
    const q = new WorkQueue({ handler: async (k) => void seen.push(k) });
    for (let i = 0; i < 5; i++) q.add('shop/a');
    q.add('shop/b');
    q.start();
    await q.idle();
    expect(seen.sort()).toEqual(['shop/a', 'shop/b']);
  });

  it('never processes one key concurrently, and re-runs a key added while it was processing', async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const q = new WorkQueue({
      concurrency: 4,
      handler: async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        runs++;
        await sleep(20);
        running--;
      },
    });
    q.start();
    q.add('shop/a');
    await sleep(5);
    q.add('shop/a'); // while processing: marked dirty
    q.add('shop/a');
    await eventually(() => expect(runs).toBe(2));
    await q.idle();
    expect(maxRunning).toBe(1);
    expect(runs).toBe(2);
  });

  it('processes different keys in parallel up to the concurrency', async () => {
    let running = 0;
    let maxRunning = 0;
    const q = new WorkQueue({
      concurrency: 3,
      handler: async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await sleep(20);
        running--;
      },
    });
    for (let i = 0; i < 10; i++) q.add(`shop/${i}`);
    q.start();
    await eventually(async () => {
      await q.idle();
      expect(running).toBe(0);
    });
    expect(maxRunning).toBe(3);
  });

  it('retries a failing key with growing delays and forgets the failures after a success', async () => {
    const attempts: number[] = [];
    const delays: number[] = [];
    const q = new WorkQueue({
      retryBaseMs: 10,
      handler: async () => {
        attempts.push(Date.now());
        if (attempts.length < 4) throw new Error('boom');
      },
      onError: (_k, _e, retryInMs) => delays.push(retryInMs),
    });
    q.start();
    q.add('shop/a');
    await eventually(() => expect(attempts).toHaveLength(4));
    expect(delays).toEqual([10, 20, 40]);
  });

  it('requeues after the delay a handler asks for', async () => {
    let runs = 0;
    const q = new WorkQueue({ handler: async () => (++runs === 1 ? { requeueAfter: 20 } : undefined) });
    q.start();
    q.add('shop/a');
    await eventually(() => expect(runs).toBe(2));
    q.stop();
  });
});
