import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** The operator's fixed metric set (/metrics on the admin port), declared once, prefixed sluice_operator_. */
export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({ name: 'sluice_operator_reconciles_total', help: 'Reconciles by kind and result (ok, error).', labelNames: ['kind', 'result'] as const, registers: [this.registry] });
  readonly statusWrites = new Counter({ name: 'sluice_operator_status_writes_total', help: 'Status subresource writes by kind.', labelNames: ['kind'] as const, registers: [this.registry] });
  readonly sidecarsConnected = new Gauge({ name: 'sluice_operator_sidecars_connected', help: 'Sidecars with an open PolicyDiscovery stream.', registers: [this.registry] });
  readonly snapshotsSent = new Counter({ name: 'sluice_operator_snapshots_sent_total', help: 'Snapshots pushed to sidecars.', registers: [this.registry] });
  readonly skewSkipped = new Counter({ name: 'sluice_operator_snapshot_skew_skipped_total', help: 'Policies left out of a snapshot because the sidecar does not know their kind (version skew).', registers: [this.registry] });
  readonly acks = new Counter({ name: 'sluice_operator_snapshot_answers_total', help: 'Sidecar answers to snapshots (ack, nack).', labelNames: ['result'] as const, registers: [this.registry] });
  readonly authFailures = new Counter({ name: 'sluice_operator_sidecar_auth_failures_total', help: 'Discovery streams refused because the sidecar could not prove its pod.', registers: [this.registry] });
  readonly circuitTransitions = new Counter({ name: 'sluice_operator_circuit_transitions_total', help: 'Circuit transitions reported by sidecars, by result (recorded as an Event, throttled, refused).', labelNames: ['result'] as const, registers: [this.registry] });
  readonly leader = new Gauge({ name: 'sluice_operator_leader', help: '1 while this replica holds the leader lease.', registers: [this.registry] });
  readonly queueDepth = new Gauge({ name: 'sluice_operator_queue_depth', help: 'Keys waiting in each reconciler work queue.', labelNames: ['kind'] as const, registers: [this.registry],
    collect: () => { for (const [kind, depth] of Object.entries(this.queueDepths())) this.queueDepth.set({ kind }, depth); } });
  /** Set by the operator: the current depth of each reconciler's queue, read at scrape time. */
  queueDepths: () => Record<string, number> = () => ({});

  constructor({ defaultMetrics = false }: { defaultMetrics?: boolean } = {}) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'sluice_operator_' });
  }
}
