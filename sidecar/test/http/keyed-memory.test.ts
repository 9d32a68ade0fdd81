import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startSidecar, type RunningSidecar } from '../../../test/helpers/sidecar.ts';
import type { LimitStep } from '../../src/policy-engine/chain.ts';
import type { TokenBucket } from '../../src/limit/token-bucket.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapAfterGc = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};

// An app that keeps nothing of what it receives (the shared test app logs every request).
let app: Server;
let sc: RunningSidecar;
beforeAll(async () => {
  app = createServer((_req, res) => {
    res.writeHead(204);
    res.end();
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  sc = await startSidecar(`
apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: per-path, namespace: shop}
spec:
  selector: {}
  rules:
    - name: per-path
      limit: {requests: 10, per: 1h}
      key: {source: Path}`, { appHttp: `127.0.0.1:${(app.address() as AddressInfo).port}` });
});
afterAll(async () => {
  await sc.stop(100);
  app.closeAllConnections();
  await new Promise((r) => app.close(r));
});

describe('keyed state under a flood of distinct long keys', () => {
  it('20 000 requests with distinct 12 KB paths leave the Path-keyed state under 8 MiB and the heap under +64 MiB', async () => {
    const heapBefore = heapAfterGc();
    const agent = new Agent({ connections: 16, pipelining: 1 });
    const pad = 'p'.repeat(12 * 1024);
    let next = 0;
    let statuses = 0;
    const codes = new Map<number, number>();
    const worker = async () => {
      while (next < 20_000) {
        const i = next++;
        const res = await request(`${sc.url}/${i}/${pad}`, { dispatcher: agent });
        await res.body.dump();
        if (res.statusCode === 204) statuses++;
        else codes.set(res.statusCode, (codes.get(res.statusCode) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    await agent.close();
    expect({ statuses, other: [...codes] }).toEqual({ statuses: 20_000, other: [] });
    const grown = heapAfterGc() - heapBefore;
    // Before keys were bounded the state held the paths themselves: 20 000 × 12 KB ≈ 240 MB.
    expect(grown).toBeLessThan(64 * 1024 * 1024);
    const step = (sc.sidecar.engine as unknown as { chain: { limits: LimitStep[] } }).chain.limits[0]!;
    const bucket = step.limiter as TokenBucket;
    expect(bucket.keys).toBe(20_000);
    expect(bucket.bytes).toBeLessThan(8 * 1024 * 1024);
  }, 180_000);
});
