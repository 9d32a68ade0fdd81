import { parseAllDocuments } from 'yaml';
import * as grpc from '@grpc/grpc-js';
import { systemClock } from '../../../lib/clock.ts';
import { compilePlan } from '../../../lib/policy/index.ts';
import { GrpcProxy, type GrpcProxyOptions } from '../../src/grpc/grpc-proxy.ts';
import { silentLogger } from '../../../lib/log.ts';
import { SidecarMetrics } from '../../src/metrics.ts';
import { PolicyEngine } from '../../src/policy-engine/engine.ts';

/** A GrpcProxy in this process, with its policies from a YAML string, listening on a free port. */
export interface ProxyUnderTest {
  proxy: GrpcProxy;
  engine: PolicyEngine;
  metrics: SidecarMetrics;
  port: number;
  address: string;
  /** The value of one sample of a metric, e.g. metric('sluice_grpc_requests_total', {code: 'OK'}). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

export async function startProxy(appAddress: string, yaml: string, opts: Partial<GrpcProxyOptions> = {}): Promise<ProxyUnderTest> {
  const docs = parseAllDocuments(yaml).map((d) => d.toJS() as unknown).filter((d) => d != null);
  const metrics = new SidecarMetrics();
  const engine = new PolicyEngine(compilePlan(docs), { clock: systemClock, metrics });
  const proxy = new GrpcProxy({ engine, appGrpc: appAddress, metrics, logger: silentLogger, ...opts });
  const { port } = await proxy.listen('127.0.0.1', 0);
  return {
    proxy,
    engine,
    metrics,
    port,
    address: `127.0.0.1:${port}`,
    metric: async (name, labels = {}) => {
      const m = metrics.registry.getSingleMetric(name);
      if (!m) return 0;
      const data = await m.get();
      let sum = 0;
      for (const v of data.values) {
        if (Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want)) sum += v.value;
      }
      return sum;
    },
    close: async () => {
      await proxy.close(500);
      engine.close();
    },
  };
}

/** A unary call's outcome as data, so tests can assert on codes and metadata. */
export interface CallResult<T> {
  code: number;
  details: string;
  response: T | undefined;
  metadata: grpc.Metadata | undefined;
  /** Trailers (or, for rejections, the trailers-only headers) as a plain object. */
  trailers: Record<string, unknown>;
}

export function unaryResult<T>(start: (cb: (err: grpc.ServiceError | null, res?: T) => void) => grpc.ClientUnaryCall): Promise<CallResult<T>> {
  return new Promise((resolve) => {
    let metadata: grpc.Metadata | undefined;
    let res: { err: grpc.ServiceError | null; value: T | undefined } | undefined;
    let status: grpc.StatusObject | undefined;
    const finish = () => {
      if (!res || !status) return;
      resolve({
        code: status.code,
        details: status.details,
        response: res.value,
        metadata,
        trailers: status.metadata.getMap(),
      });
    };
    const call = start((err, value) => {
      res = { err, value };
      finish();
    });
    call.on('metadata', (md) => (metadata = md));
    call.on('status', (s) => {
      status = s;
      finish();
    });
  });
}

export const STATUS = grpc.status;
export { grpc };
