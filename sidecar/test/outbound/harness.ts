import { freePort } from '../../../lib/net.ts';
import { eventually } from '../../../test/helpers/eventually.ts';
import { startSidecar, type RunningSidecar } from '../../../test/helpers/sidecar.ts';

export interface OutboundUnderTest {
  sc: RunningSidecar;
  /** host:port the app dials. */
  listen: string;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  stop(): Promise<void>;
}

/** An Upstream document for standalone mode; `extra` is YAML for the spec, indented by the caller's choice of keys. */
export function upstreamYaml(name: string, protocol: 'grpc' | 'http', listen: string, endpoints: string[], extra: Record<string, unknown> = {}): string {
  const spec = { selector: {}, protocol, listen, endpoints, ...extra };
  return JSON.stringify({ apiVersion: 'sluice.dev/v1alpha1', kind: 'Upstream', metadata: { name, namespace: 'test' }, spec });
}

/** A standalone sidecar in this process serving one Upstream, ready once its listener is bound. */
export async function startOutbound(protocol: 'grpc' | 'http', endpoints: string[], extra: Record<string, unknown> = {}, moreYaml = ''): Promise<OutboundUnderTest> {
  const port = await freePort();
  const listen = `127.0.0.1:${port}`;
  const sc = await startSidecar(upstreamYaml('users', protocol, listen, endpoints, extra) + (moreYaml ? `\n---\n${moreYaml}` : ''));
  await eventually(() => {
    const r = sc.sidecar.outbound!.readiness!().check();
    if (!r.ok || (r.details as unknown[]).length !== 1) throw new Error(`outbound not ready: ${JSON.stringify(r.details)}`);
  });
  return {
    sc,
    listen,
    metric: async (name, labels = {}) => {
      const m = sc.sidecar.metrics.registry.getSingleMetric(name);
      if (!m) return 0;
      let sum = 0;
      for (const v of (await m.get()).values) {
        if (Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want)) sum += v.value;
      }
      return sum;
    },
    stop: () => sc.stop(500),
  };
}
