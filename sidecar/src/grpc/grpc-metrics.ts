import { Counter } from '../prom-client.ts';
import type { Counter as PromCounter } from 'prom-client';
import type { SidecarMetrics } from '../metrics.ts';
import type { ConnectionErrorCode, GrpcProxyErrorCode } from './grpc-errors.ts';
import { grpcCodeName } from './grpc-status.ts';
import { HotCounter, HotHistogram, type CounterCell, type HistogramCell } from '../hot-metrics.ts';

/** Method label for calls past the cardinality cap: clients choose paths, so labels must be bounded. */
export const OTHER_METHOD = '_other';

/** Label children for one gRPC method, bound once so a call only increments. */
export interface MethodMetrics {
  /** Counts one finished call by its gRPC status code and observes its duration. */
  finish(code: number, seconds: number): void;
  /** The same, for a call that went to the app: also timed as the app's latency (sluice_upstream_duration_seconds). */
  finishForwarded(code: number, outcome: 'ok' | 'error' | 'timeout' | 'connect_error', seconds: number): void;
}

/**
 * gRPC metrics per method and status code, registered into the sidecar's registry:
 *   sluice_grpc_requests_total{method,code}            every call the listener finished
 *   sluice_grpc_request_duration_seconds{method}       from headers received to status sent
 *   sluice_grpc_proxy_errors_total{error}              bad input and upstream failures, by stable code
 * `method` is `pkg.Service/Method`; past `maxMethods` distinct names the rest share `_other`.
 * The two touched by every call are HotCounter/HotHistogram (hot-metrics.ts): a call increments
 * plain cells instead of going through prom-client's label hashing.
 */
export class GrpcMetrics {
  private readonly requests: HotCounter;
  private readonly duration: HotHistogram;
  private readonly errors: Counter<'error'>;
  private readonly methods = new Map<string, MethodMetrics>();
  private readonly errorChildren = new Map<string, PromCounter.Internal>();
  private readonly maxMethods: number;
  private readonly upstream: SidecarMetrics['upstreamDuration'];
  /** sluice_upstream_duration_seconds{protocol="grpc",outcome}, bound once per outcome for every method. */
  private readonly upstreamCells = new Map<string, HistogramCell>();

  constructor(metrics: SidecarMetrics, { maxMethods = 500 }: { maxMethods?: number } = {}) {
    const registers = [metrics.registry];
    this.upstream = metrics.upstreamDuration;
    this.maxMethods = maxMethods;
    // A second GrpcProxy on the same registry (tests, reloads) shares the metrics rather than throwing.
    this.requests = (metrics.registry.getSingleMetric('sluice_grpc_requests_total') as HotCounter | undefined) ?? new HotCounter({
      name: 'sluice_grpc_requests_total',
      help: 'gRPC calls through the sidecar by method (pkg.Service/Method) and final status code (OK, RESOURCE_EXHAUSTED, ...).',
      labelNames: ['method', 'code'] as const,
      registers,
    });
    this.duration = (metrics.registry.getSingleMetric('sluice_grpc_request_duration_seconds') as HotHistogram | undefined) ?? new HotHistogram({
      name: 'sluice_grpc_request_duration_seconds',
      help: 'gRPC call duration through the sidecar, from request headers to final status.',
      labelNames: ['method'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.errors = (metrics.registry.getSingleMetric('sluice_grpc_proxy_errors_total') as Counter<'error'> | undefined) ?? new Counter({
      name: 'sluice_grpc_proxy_errors_total',
      help: 'Calls and connections the gRPC listener refused or failed itself, by stable error code (SLUICE_ERR_GRPC_*).',
      labelNames: ['error'] as const,
      registers,
    });
  }

  method(name: string): MethodMetrics {
    let m = this.methods.get(name);
    if (m) return m;
    if (this.methods.size >= this.maxMethods && name !== OTHER_METHOD) return this.method(OTHER_METHOD);
    const counters: Array<CounterCell | undefined> = [];
    const duration = this.duration;
    const durationCell = duration.cell(name);
    const requests = this.requests;
    const upstream = this.upstream;
    const upstreamCells = this.upstreamCells;
    const finish = (code: number, seconds: number) => {
      let c = counters[code];
      if (!c) c = counters[code] = requests.cell(name, grpcCodeName(code));
      c.n++;
      duration.observe(durationCell, seconds);
    };
    m = {
      finish,
      finishForwarded: (code, outcome, seconds) => {
        finish(code, seconds);
        let cell = upstreamCells.get(outcome);
        if (!cell) upstreamCells.set(outcome, (cell = upstream.cell('grpc', outcome)));
        upstream.observe(cell, seconds);
      },
    };
    this.methods.set(name, m);
    return m;
  }

  error(code: GrpcProxyErrorCode | ConnectionErrorCode): void {
    let c = this.errorChildren.get(code);
    if (!c) {
      c = this.errors.labels(code);
      this.errorChildren.set(code, c);
    }
    c.inc();
  }
}
