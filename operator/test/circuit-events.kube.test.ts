/**
 * A sidecar's circuit opens, probes and closes → Kubernetes Events on the CircuitBreakerPolicy,
 * naming the pod. Real kube-apiserver (test/cluster), real kubectl, in-process operator and sidecar (operator
 * mode, token-authenticated discovery stream), a real app server that is made to fail.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../test/helpers/eventually.ts';
import { condition, startOperator, startPodWithSidecar, statuses, TestCluster, type PodWithSidecar, type StartedOperator } from './helpers/cluster.ts';

let cluster: TestCluster;
let op: StartedOperator;
let pod: PodWithSidecar;
let other: PodWithSidecar;
const app = { status: 200 };

beforeAll(async () => {
  cluster = await TestCluster.start();
  op = await startOperator(cluster);
  const appHandler = (_req: unknown, res: import('node:http').ServerResponse) => {
    res.writeHead(app.status);
    res.end(String(app.status));
    return true;
  };
  pod = await startPodWithSidecar(cluster, op.address, 'shop', 'web-1', { app: 'web' }, { appHandler });
  // Not selected by the policy: its reports about it must not become Events.
  other = await startPodWithSidecar(cluster, op.address, 'shop', 'other-1', { app: 'other' });
});

afterAll(async () => {
  await pod?.stop();
  await other?.stop();
  await op?.operator.stop();
  await cluster?.stop();
});

interface Event { reason: string; type: string; message: string; involvedObject: { kind: string; name: string; namespace: string } }

async function eventsOf(name: string): Promise<Event[]> {
  const out = await cluster.kubectl('get', 'events', '-n', 'shop', '--field-selector', `involvedObject.name=${name}`, '-o', 'json');
  return JSON.parse(out).items as Event[];
}

describe('circuit transitions become Events on the CircuitBreakerPolicy', () => {
  it('opening, probing and closing a circuit each record an Event naming the pod', async () => {
    await cluster.apply(`apiVersion: sluice.dev/v1alpha1
kind: CircuitBreakerPolicy
metadata: {name: web-backend, namespace: shop}
spec:
  selector:
    matchLabels: {app: web}
  rules:
    - name: upstream
      match: {protocol: http}
      failureConditions: {httpStatuses: ["5xx"]}
      trip: {consecutiveFailures: 3}
      openDuration: 1s
      halfOpen: {maxProbes: 1, successesToClose: 1}
`);
    await eventually(async () => {
      const s = await cluster.getStatus('circuitbreakerpolicies', 'shop', 'web-backend');
      expect(condition(s, 'Programmed')?.status).toBe('True');
    }, { timeoutMs: 20_000 });

    app.status = 500;
    expect(await statuses(pod.url, 4)).toEqual([500, 500, 500, 503]);
    const opened = await eventually(async () => {
      const e = (await eventsOf('web-backend')).find((x) => x.reason === 'CircuitOpened');
      expect(e).toBeDefined();
      return e as Event;
    }, { timeoutMs: 20_000 });
    expect(opened.type).toBe('Warning');
    expect(opened.involvedObject).toMatchObject({ kind: 'CircuitBreakerPolicy', name: 'web-backend', namespace: 'shop' });
    expect(opened.message).toContain('pod shop/web-1');
    expect(opened.message).toContain('upstream');
    expect(opened.message).toContain('closed → open (ConsecutiveFailures)');

    app.status = 200;
    await sleep(1_100);
    await eventually(async () => expect(await statuses(pod.url, 1)).toEqual([200]));
    await eventually(async () => {
      const events = await eventsOf('web-backend');
      expect(events.find((x) => x.reason === 'CircuitHalfOpen')?.message).toContain('open → half-open (OpenDurationElapsed)');
      expect(events.find((x) => x.reason === 'CircuitClosed')).toMatchObject({ type: 'Normal' });
      expect(events.find((x) => x.reason === 'CircuitClosed')?.message).toContain('half-open → closed (ProbesSucceeded)');
    }, { timeoutMs: 20_000 });
    const metrics = await (await fetch(`${op.admin}/metrics`)).text();
    expect(metrics).toMatch(/sluice_operator_circuit_transitions_total\{result="recorded"\} 3/);
  });

  it('a report about a policy that does not select the pod records nothing', async () => {
    // The unselected pod's sidecar claims a transition of web-backend on its authenticated stream.
    const sent = other.sidecar.discovery!.sendCircuitTransition({
      policyNamespace: 'shop', policyName: 'web-backend', rule: 'upstream', from: 'closed', to: 'open',
      reason: 'ConsecutiveFailures', timeUnixMs: Date.now(), openMs: 1000, dropped: 0,
    });
    expect(sent).toBe(true);
    await eventually(async () => {
      const metrics = await (await fetch(`${op.admin}/metrics`)).text();
      expect(metrics).toMatch(/sluice_operator_circuit_transitions_total\{result="refused"\} 1/);
    });
    expect((await eventsOf('web-backend')).filter((e) => e.message.includes('other-1'))).toEqual([]);
  });

  it('a flapping circuit cannot flood the API server: Events per policy and reason are throttled', async () => {
    const opened = async () => (await eventsOf('web-backend')).filter((e) => e.reason === 'CircuitOpened').length;
    const before = await opened();
    // Straight onto the stream, past the sidecar's own rate limit: the operator must hold the line.
    for (let i = 0; i < 20; i++) {
      expect(pod.sidecar.discovery!.sendCircuitTransition({
        policyNamespace: 'shop', policyName: 'web-backend', rule: 'upstream', from: 'half-open', to: 'open',
        reason: 'ProbeFailed', timeUnixMs: Date.now(), openMs: 2000, dropped: 0,
      })).toBe(true);
    }
    const metric = async (result: string) => Number(new RegExp(`sluice_operator_circuit_transitions_total\\{result="${result}"\\} (\\d+)`).exec(await (await fetch(`${op.admin}/metrics`)).text())?.[1] ?? 0);
    await eventually(async () => expect(await metric('recorded') + await metric('throttled')).toBe(3 + 20));
    // The first test used one of the burst of 5 for CircuitOpened; the rest refill at one per 30 s.
    expect(await metric('throttled')).toBeGreaterThanOrEqual(14);
    const throttled = await metric('throttled');
    await eventually(async () => expect(await opened()).toBe(before + 20 - throttled));
    expect(await opened()).toBeLessThanOrEqual(6);
  });
});
