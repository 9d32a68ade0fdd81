import { Counter, Gauge, Histogram, type Registry } from '../prom-client.ts';

/**
 * The outbound metric set, per upstream (and per endpoint where an endpoint is the subject).
 * Label children are bound once per upstream (UpstreamMetrics) so a call resolves no labels.
 */
export class OutboundMetrics {
  readonly calls: Counter<'upstream' | 'outcome'>;
  readonly tries: Counter<'upstream' | 'endpoint' | 'outcome'>;
  readonly retries: Counter<'upstream'>;
  readonly budgetExhausted: Counter<'upstream'>;
  readonly ejections: Counter<'upstream' | 'endpoint'>;
  readonly endpoints: Gauge<'upstream' | 'state'>;
  readonly duration: Histogram<'upstream'>;

  /** `endpointCounts` is read at scrape time, so the gauge needs no keeping in step. */
  constructor(registry: Registry, endpointCounts: () => Iterable<{ upstream: string; ready: number; ejected: number }> = () => []) {
    const registers = [registry];
    this.calls = new Counter({ name: 'sluice_outbound_calls_total', help: 'Calls through an Upstream by outcome: ok, a gRPC code name or HTTP status class, or a SLUICE_ERR_OUTBOUND_* code.', labelNames: ['upstream', 'outcome'], registers });
    this.tries = new Counter({ name: 'sluice_outbound_tries_total', help: 'Tries per endpoint by outcome: ok, failure, connect_failure, reset, timeout, cancelled.', labelNames: ['upstream', 'endpoint', 'outcome'], registers });
    this.retries = new Counter({ name: 'sluice_outbound_retries_total', help: 'Retries sent.', labelNames: ['upstream'], registers });
    this.budgetExhausted = new Counter({ name: 'sluice_outbound_retry_budget_exhausted_total', help: 'Retries the policy allowed but the retry budget refused.', labelNames: ['upstream'], registers });
    this.ejections = new Counter({ name: 'sluice_outbound_ejections_total', help: 'Endpoints ejected by outlier detection.', labelNames: ['upstream', 'endpoint'], registers });
    const endpoints = new Gauge({
      name: 'sluice_outbound_endpoints', help: 'Endpoints per upstream: ready (taking traffic) or ejected.', labelNames: ['upstream', 'state'], registers,
      collect() {
        endpoints.reset();
        for (const c of endpointCounts()) {
          endpoints.set({ upstream: c.upstream, state: 'ready' }, c.ready);
          endpoints.set({ upstream: c.upstream, state: 'ejected' }, c.ejected);
        }
      },
    });
    this.endpoints = endpoints;
    this.duration = new Histogram({
      name: 'sluice_outbound_duration_seconds', help: 'Time from the app\'s request to the end of the answer, retries included.', labelNames: ['upstream'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers,
    });
  }
}
