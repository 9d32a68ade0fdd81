import { Counter, Gauge, Histogram, type Registry } from '../prom-client.ts';
import type { QueueStats } from '../../../lib/redis/queue-stats.ts';

/** Results a task can come to in `sluice_queue_tasks_total{queue,result}`. */
export type TaskResult =
  | 'enqueued' // accepted from a producer
  | 'duplicate' // an Idempotency-Key seen within its window: no second task
  | 'acked' // the app succeeded
  | 'retried' // failed, scheduled again after backoff
  | 'dead_lettered' // permanent failure or attempts exhausted
  | 'late' // a result for an entry another consumer had reclaimed: not acknowledged
  | 'released' // handed back untouched on drain, without counting an attempt
  | 'reclaimed' // taken over from a consumer that went silent
  | 'redriven' // a dead letter moved back into the queue by a redrive
  | 'dead_letter_expired' // a dead letter removed by deadLetter.maxLen / maxAge
  | 'lost'; // found deleted from the stream while still pending (trimmed by someone unguarded)

/**
 * The queue feature's fixed metric set, registered once on the sidecar's registry. Gauges that
 * describe Redis state (length, lag, pending, …) are read only when /metrics is scraped, through
 * one cached stats query, so nobody pays for them when nobody looks.
 */
export class QueueMetrics {
  readonly tasks: Counter<'queue' | 'result'>;
  readonly inFlight: Gauge<'queue'>;
  readonly enqueueToDelivery: Histogram<'queue'>;
  readonly deliveryDuration: Histogram<'queue' | 'outcome'>;
  readonly trimmed: Counter<'queue'>;
  readonly trimHeld: Gauge<'queue'>;
  readonly concurrencyLimit: Gauge<'queue'>;
  private statsSource: () => Promise<readonly QueueStats[]> = async () => [];
  private cached: { at: number; value: Promise<readonly QueueStats[]> } | undefined;

  constructor(registry: Registry) {
    const registers = [registry];
    this.tasks = new Counter({
      name: 'sluice_queue_tasks_total',
      help: 'Tasks by result: enqueued, duplicate, acked, retried, dead_lettered, late, released, reclaimed, lost, redriven, dead_letter_expired.',
      labelNames: ['queue', 'result'] as const,
      registers,
    });
    this.inFlight = new Gauge({ name: 'sluice_queue_in_flight', help: 'Tasks this sidecar holds (read, not yet settled).', labelNames: ['queue'] as const, registers });
    this.enqueueToDelivery = new Histogram({
      name: 'sluice_queue_enqueue_to_delivery_seconds',
      help: 'From a task becoming deliverable (its entry appended, by Redis time) to its delivery to the app starting.',
      labelNames: ['queue'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.deliveryDuration = new Histogram({
      name: 'sluice_queue_delivery_duration_seconds',
      help: 'One delivery call to the app, by outcome (ok, failed, timeout).',
      labelNames: ['queue', 'outcome'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.concurrencyLimit = new Gauge({
      name: 'sluice_queue_concurrency_limit',
      help: 'Deliveries a consumer may have at the app at once: the fixed concurrency, or where adaptiveConcurrency has it now.',
      labelNames: ['queue'] as const,
      registers,
    });
    this.trimmed = new Counter({ name: 'sluice_queue_trimmed_total', help: 'Acknowledged entries removed by retention (retention.maxLen).', labelNames: ['queue'] as const, registers });
    this.trimHeld = new Gauge({
      name: 'sluice_queue_trim_held_entries',
      help: 'Entries over retention.maxLen kept because they are pending or not yet delivered.',
      labelNames: ['queue'] as const,
      registers,
    });
    const self = this;
    const statGauge = (name: string, help: string, pick: (s: QueueStats) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ['queue'] as const,
        registers,
        async collect() {
          this.reset();
          for (const s of await self.stats()) {
            const v = pick(s);
            if (v !== undefined) this.set({ queue: s.queue }, v);
          }
        },
      });
    statGauge('sluice_queue_length', 'Entries in the stream (including acknowledged history within retention).', (s) => s.length);
    statGauge('sluice_queue_lag', 'Entries not yet read by the consumer group.', (s) => s.lag);
    statGauge('sluice_queue_pending', 'Entries delivered to a consumer and not yet acknowledged.', (s) => s.pending);
    statGauge('sluice_queue_delayed', 'Tasks waiting for their delay or retry backoff to pass.', (s) => s.delayed);
    statGauge('sluice_queue_dead_letters', 'Entries in the dead-letter stream.', (s) => s.deadLetters);
    statGauge('sluice_queue_consumers', 'Consumers known to the group.', (s) => s.consumers);
  }

  /** Where the Redis-state gauges come from (the feature's consumed and produced queues). */
  setStatsSource(source: () => Promise<readonly QueueStats[]>): void {
    this.statsSource = source;
  }

  private stats(): Promise<readonly QueueStats[]> {
    const now = Date.now();
    // Six gauges collect in one scrape; one query answers them all.
    if (!this.cached || now - this.cached.at > 1_000) this.cached = { at: now, value: this.statsSource().catch(() => []) };
    return this.cached.value;
  }
}
