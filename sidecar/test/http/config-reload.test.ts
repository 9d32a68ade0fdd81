import { fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type TestApp } from '../../../test/helpers/app-server.ts';
import { eventually } from '../../../test/helpers/eventually.ts';
import { startSidecar, type RunningSidecar } from '../../../test/helpers/sidecar.ts';

const limit = (requests: number) => `
apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: reload, namespace: t}
spec:
  selector: {}
  rules:
    - name: all
      match: {paths: [{type: Exact, value: /limited}]}
      limit: {requests: ${requests}, per: 1h}
`;

let app: TestApp;
let sc: RunningSidecar;
beforeAll(async () => {
  app = await startApp();
  sc = await startSidecar(limit(1), { appHttp: app.hostPort });
});
afterAll(async () => {
  await sc.stop(100);
  await app.close();
});

const config = async () => (await fetch(`${sc.admin}/config`)).json() as Promise<{ version: string; lastRejected: { reason: string } | null; rules: { rateLimits: string[] } }>;
const status = async (path: string) => {
  const r = await fetch(`${sc.url}${path}`);
  await r.arrayBuffer();
  return r.status;
};

describe('standalone config', () => {
  it('shows the active plan and its version on /config', async () => {
    const c = await config();
    expect(c.version).toMatch(/^[0-9a-f]{12}$/);
    expect(c.rules.rateLimits).toEqual(['t/reload/all']);
    expect(await status('/limited')).toBe(200);
    expect(await status('/limited')).toBe(429);
  });

  it('reloads a good file on change', async () => {
    const before = (await config()).version;
    sc.writeConfig(limit(5));
    await eventually(async () => expect((await config()).version).not.toBe(before));
    // A changed rule starts with a fresh quota of the new size.
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await status('/limited'));
    expect(results).toEqual([200, 200, 200, 200, 200, 429]);
  });

  it('rejects a bad file whole, keeps the last good plan, and says why', async () => {
    const good = (await config()).version;
    sc.writeConfig(`${limit(100)}---
apiVersion: sluice.dev/v1alpha1
kind: CircuitBreakerPolicy
metadata: {name: broken}
spec:
  selector: {}
  rules:
    - name: r
      trip: {failureRatePercent: 500}
`);
    await eventually(async () => expect((await config()).lastRejected?.reason).toMatch(/spec\.rules\[0\]\.trip\.failureRatePercent: must be at most 100/));
    expect((await config()).version).toBe(good);
    expect(await status('/limited')).toBe(429); // still the old limit of 5, already used up
    const metrics = await (await fetch(`${sc.admin}/metrics`)).text();
    expect(metrics).toMatch(/sluice_config_reloads_total\{result="rejected"\} [1-9]/);
    expect(metrics).toMatch(new RegExp(`sluice_config_version\\{version="${good}",source="file"\\} 1`));
  });

  it('rejects YAML that does not parse', async () => {
    sc.writeConfig('apiVersion: [unclosed');
    await eventually(async () => expect((await config()).lastRejected?.reason).toMatch(/YAML/));
    expect(await status('/limited')).toBe(429);
  });
});
