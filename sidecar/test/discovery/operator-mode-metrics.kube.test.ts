/**
 * In operator mode — how the chart runs — the config metrics on /metrics come from the same policy
 * store as standalone: the version in force with source "operator", and each applied snapshot
 * counted, so the dashboard's config panels are not empty for injected pods.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually } from '../../../test/helpers/eventually.ts';
import { rateLimitPolicy, startOperator, startPodWithSidecar, TestCluster, type PodWithSidecar, type StartedOperator } from '../../../operator/test/helpers/cluster.ts';

const NS = 'config-metrics';
let cluster: TestCluster;
let op: StartedOperator;
let pod: PodWithSidecar | undefined;

beforeAll(async () => {
  cluster = await TestCluster.start([NS]);
  op = await startOperator(cluster);
});

afterAll(async () => {
  await pod?.stop();
  await op?.operator.stop();
  await cluster?.stop();
});

const metricValue = (text: string, series: RegExp): number | undefined => {
  const line = text.split('\n').find((l) => series.test(l));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
};

it('sets sluice_config_version (source="operator") and counts applied snapshots in sluice_config_reloads_total', async () => {
  await cluster.apply(rateLimitPolicy('api', { requests: 10, selector: { app: 'api' }, namespace: NS }));
  pod = await startPodWithSidecar(cluster, op.address, NS, 'api-1', { app: 'api' });
  const sidecar = pod.sidecar;
  await eventually(() => expect(sidecar.store.current.rateLimits.map((r) => r.id)).toEqual([`${NS}/api/all`]));
  const first = sidecar.store.current.version;
  const metrics = async () => (await fetch(`${pod!.admin}/metrics`)).text();
  let text = await metrics();
  expect(metricValue(text, new RegExp(`^sluice_config_version\\{version="${first}",source="operator"\\} `))).toBe(1);
  const applied = metricValue(text, /^sluice_config_reloads_total\{result="applied"\} /) ?? 0;
  expect(applied).toBeGreaterThanOrEqual(1);

  // A new snapshot moves the version series (only the one in force is set) and counts once more.
  await cluster.apply(rateLimitPolicy('api', { requests: 20, selector: { app: 'api' }, namespace: NS }));
  await eventually(() => expect(sidecar.store.current.version).not.toBe(first));
  const second = sidecar.store.current.version;
  text = await metrics();
  expect(metricValue(text, new RegExp(`^sluice_config_version\\{version="${second}",source="operator"\\} `))).toBe(1);
  expect(metricValue(text, new RegExp(`^sluice_config_version\\{version="${first}"`))).toBeUndefined();
  expect(metricValue(text, /^sluice_config_reloads_total\{result="applied"\} /)).toBeGreaterThan(applied);
});
