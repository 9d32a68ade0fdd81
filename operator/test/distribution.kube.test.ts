/**
 * kubectl apply → operator → PolicyDiscovery → sidecars enforce, and status tells the truth.
 * Real kube-apiserver (test/cluster), real kubectl, in-process operator and sidecars, real app servers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../test/helpers/eventually.ts';
import { condition, rateLimitPolicy, startOperator, startPodWithSidecar, statuses, TestCluster, type PodWithSidecar, type StartedOperator } from './helpers/cluster.ts';

let cluster: TestCluster;
let op: StartedOperator;
const pods: PodWithSidecar[] = [];

beforeAll(async () => {
  cluster = await TestCluster.start();
  op = await startOperator(cluster);
  pods.push(await startPodWithSidecar(cluster, op.address, 'shop', 'web-1', { app: 'web' }));
  pods.push(await startPodWithSidecar(cluster, op.address, 'shop', 'web-2', { app: 'web' }));
  pods.push(await startPodWithSidecar(cluster, op.address, 'shop', 'other-1', { app: 'other' }));
});

afterAll(async () => {
  for (const p of pods) await p.stop();
  await op?.operator.stop();
  await cluster?.stop();
});

const version = async (p: PodWithSidecar) => ((await (await fetch(`${p.admin}/config`)).json()) as { version: string; source: string });

describe('policy distribution', () => {
  it('makes sidecars ready once the first snapshot (empty) arrives', async () => {
    await eventually(async () => {
      for (const p of pods) expect((await fetch(`${p.admin}/readyz`)).status).toBe(200);
    });
  });

  it('kubectl apply → selected sidecars enforce it, status Programmed with targets 2/2', async () => {
    await cluster.apply(rateLimitPolicy('api-limit', { requests: 2 }));
    await eventually(async () => {
      const s = await cluster.getStatus('ratelimitpolicies', 'shop', 'api-limit');
      expect(condition(s, 'Accepted')?.status).toBe('True');
      expect(condition(s, 'Programmed')).toMatchObject({ status: 'True', reason: 'Programmed', observedGeneration: 1 });
      expect(s.targets).toEqual({ selected: 2, programmed: 2 });
    });
    const [web1, web2, other] = pods as [PodWithSidecar, PodWithSidecar, PodWithSidecar];
    expect(await statuses(web1.url, 3)).toEqual([200, 200, 429]);
    expect(await statuses(web2.url, 3)).toEqual([200, 200, 429]);
    expect(await statuses(other.url, 3)).toEqual([200, 200, 200]);
    const table = await cluster.kubectl('get', 'ratelimitpolicies', '-n', 'shop');
    expect(table).toMatch(/api-limit\s+Enforce\s+True\s+True\s+2\s+2/);
  });

  it('an edit reaches the sidecars as the new limit, and status follows the generation', async () => {
    await cluster.apply(rateLimitPolicy('api-limit', { requests: 3 }));
    await eventually(async () => {
      const s = await cluster.getStatus('ratelimitpolicies', 'shop', 'api-limit');
      expect(condition(s, 'Programmed')).toMatchObject({ status: 'True', observedGeneration: 2 });
      expect(s.targets).toEqual({ selected: 2, programmed: 2 });
    });
    expect(await statuses(pods[0]!.url, 4)).toEqual([200, 200, 200, 429]);
  });

  it('a semantically invalid edit is Accepted=False with the field, and sidecars keep the last good generation', async () => {
    const before = await version(pods[0]!);
    // Passes the CRD schema (a string) but is not a regular expression.
    await cluster.apply(rateLimitPolicy('api-limit', { requests: 1, path: '^/api/(' }));
    await eventually(async () => {
      const s = await cluster.getStatus('ratelimitpolicies', 'shop', 'api-limit');
      expect(condition(s, 'Accepted')).toMatchObject({ status: 'False', reason: 'Invalid', observedGeneration: 3 });
      expect(condition(s, 'Accepted')?.message).toContain('spec.rules[0].match.paths[0].value');
      expect(condition(s, 'Programmed')).toMatchObject({ status: 'False', reason: 'NotAccepted' });
    });
    expect(await version(pods[0]!)).toEqual(before);
    // Still the generation-2 limit (3 per hour), already used up by the previous test.
    expect(await statuses(pods[0]!.url, 1)).toEqual([429]);
    const events = await cluster.kubectl('get', 'events', '-n', 'shop', '--field-selector', 'involvedObject.name=api-limit', '-o', 'json');
    expect((JSON.parse(events).items as { reason: string; type: string }[]).some((e) => e.reason === 'Invalid' && e.type === 'Warning')).toBe(true);
  });

  it('fixing the spec makes it Accepted and Programmed again', async () => {
    await cluster.apply(rateLimitPolicy('api-limit', { requests: 5 }));
    await eventually(async () => {
      const s = await cluster.getStatus('ratelimitpolicies', 'shop', 'api-limit');
      expect(condition(s, 'Accepted')).toMatchObject({ status: 'True', observedGeneration: 4 });
      expect(condition(s, 'Programmed')).toMatchObject({ status: 'True', observedGeneration: 4 });
    });
    expect(await statuses(pods[0]!.url, 6)).toEqual([200, 200, 200, 200, 200, 429]);
  });

  it('a conflicting newer policy is Accepted=False (Conflicted) and left out; the older one keeps working', async () => {
    await cluster.apply(rateLimitPolicy('api-limit-dup', { requests: 1, ruleName: 'dup' }));
    await eventually(async () => {
      const s = await cluster.getStatus('ratelimitpolicies', 'shop', 'api-limit-dup');
      expect(condition(s, 'Accepted')).toMatchObject({ status: 'False', reason: 'Conflicted' });
      expect(condition(s, 'Accepted')?.message).toContain('RateLimitPolicy shop/api-limit');
      expect(condition(s, 'Programmed')?.reason).toBe('NotAccepted');
    });
    const s = await cluster.getStatus('ratelimitpolicies', 'shop', 'api-limit');
    expect(condition(s, 'Accepted')?.status).toBe('True');
    const config = (await (await fetch(`${pods[1]!.admin}/config`)).json()) as { rules: { rateLimits: string[] } };
    expect(config.rules.rateLimits).toEqual(['shop/api-limit/all']);
    await cluster.kubectl('delete', 'ratelimitpolicy', 'api-limit-dup', '-n', 'shop');
  });

  it('a relabelled pod gets the snapshot of its new labels, and targets follow', async () => {
    const other = pods[2]!;
    await cluster.kubectl('label', 'pod', 'other-1', '-n', 'shop', 'app=web', '--overwrite');
    await eventually(async () => {
      const config = (await (await fetch(`${other.admin}/config`)).json()) as { rules: { rateLimits: string[] } };
      expect(config.rules.rateLimits).toEqual(['shop/api-limit/all']);
      const s = await cluster.getStatus('ratelimitpolicies', 'shop', 'api-limit');
      expect(s.targets).toEqual({ selected: 3, programmed: 3 });
    });
    expect(await statuses(other.url, 6)).toEqual([200, 200, 200, 200, 200, 429]);
    await cluster.kubectl('label', 'pod', 'other-1', '-n', 'shop', 'app=other', '--overwrite');
    await eventually(async () => {
      const config = (await (await fetch(`${other.admin}/config`)).json()) as { rules: { rateLimits: string[] } };
      expect(config.rules.rateLimits).toEqual([]);
      const s = await cluster.getStatus('ratelimitpolicies', 'shop', 'api-limit');
      expect(s.targets).toEqual({ selected: 2, programmed: 2 });
    });
    expect(await statuses(other.url, 3)).toEqual([200, 200, 200]);
  });

  it('kubectl delete → the limit is gone from every sidecar', async () => {
    await cluster.kubectl('delete', '-n', 'shop', 'ratelimitpolicy', 'api-limit');
    await eventually(async () => {
      for (const p of pods) {
        const config = (await (await fetch(`${p.admin}/config`)).json()) as { rules: { rateLimits: string[] } };
        expect(config.rules.rateLimits).toEqual([]);
      }
    });
    expect(await statuses(pods[0]!.url, 3)).toEqual([200, 200, 200]);
  });

  it('a policy selecting no sidecar-carrying pod says NoTargets', async () => {
    await cluster.createPod('shop', 'plain-1', { app: 'plain' }, { sidecar: false });
    await cluster.apply(rateLimitPolicy('plain-limit', { requests: 1, selector: { app: 'plain' } }));
    await eventually(async () => {
      const s = await cluster.getStatus('ratelimitpolicies', 'shop', 'plain-limit');
      expect(condition(s, 'Programmed')).toMatchObject({ status: 'False', reason: 'NoTargets' });
      expect(s.targets).toEqual({ selected: 0, programmed: 0 });
    });
  });

  it('serves /healthz, /readyz and /metrics on the admin port, and keeps what sidecars report', async () => {
    expect((await fetch(`${op.admin}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${op.admin}/readyz`)).json()).toMatchObject({ status: 'ready', isLeader: true, sidecars: 3 });
    const metrics = await (await fetch(`${op.admin}/metrics`)).text();
    expect(metrics).toMatch(/^sluice_operator_leader 1$/m);
    expect(metrics).toMatch(/^sluice_operator_sidecars_connected 3$/m);
    expect(metrics).toMatch(/^sluice_operator_snapshot_answers_total\{result="ack"\} \d+$/m);
    pods[0]!.sidecar.discovery!.report({ leadership: { 'push-broadcaster': true } });
    await eventually(() => expect(op.operator.discovery.reports()['shop/web-1']).toEqual({ leadership: { 'push-broadcaster': true } }));
  });
});
