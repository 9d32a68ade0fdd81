import { describe, expect, it } from 'vitest';
import { GrpcMetrics, OTHER_METHOD } from '../../src/grpc/grpc-metrics.ts';
import { SidecarMetrics } from '../../src/metrics.ts';

async function samples(m: SidecarMetrics, name: string) {
  return (await m.registry.getSingleMetric(name)!.get()).values;
}

describe('GrpcMetrics', () => {
  it('counts calls by method and status name, and times them', async () => {
    const metrics = new SidecarMetrics();
    const g = new GrpcMetrics(metrics);
    g.method('pkg.Svc/A').finish(0, 0.002);
    g.method('pkg.Svc/A').finish(8, 0.001);
    g.method('pkg.Svc/A').finish(8, 0.001);
    const counts = await samples(metrics, 'sluice_grpc_requests_total');
    expect(counts.map((v) => [v.labels.method, v.labels.code, v.value])).toEqual([
      ['pkg.Svc/A', 'OK', 1],
      ['pkg.Svc/A', 'RESOURCE_EXHAUSTED', 2],
    ]);
    const hist = await samples(metrics, 'sluice_grpc_request_duration_seconds');
    expect(hist.find((v) => (v as { metricName?: string }).metricName === 'sluice_grpc_request_duration_seconds_count')?.value).toBe(3);
  });

  it('bounds the method label: names past the cap share _other', async () => {
    const metrics = new SidecarMetrics();
    const g = new GrpcMetrics(metrics, { maxMethods: 2 });
    for (const name of ['a.S/1', 'a.S/2', 'a.S/3', 'a.S/4']) g.method(name).finish(0, 0);
    const methods = (await samples(metrics, 'sluice_grpc_requests_total')).map((v) => [v.labels.method, v.value]);
    expect(methods).toEqual([['a.S/1', 1], ['a.S/2', 1], [OTHER_METHOD, 2]]);
  });

  it('two proxies on one registry share the metrics instead of failing to register', () => {
    const metrics = new SidecarMetrics();
    new GrpcMetrics(metrics);
    expect(() => new GrpcMetrics(metrics)).not.toThrow();
  });
});
