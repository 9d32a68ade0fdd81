import type { Registry } from 'prom-client';

/**
 * Metrics for the request path. prom-client hashes and validates labels on every inc/observe,
 * even through a bound child; here a label set is resolved once — when a plan is compiled or a
 * route first seen — into a plain cell, and the request path only does `cell.n++`. The registry
 * reads the cells when /metrics is scraped, through prom-client's metric interface.
 */
export interface CounterCell {
  n: number;
}

export interface HistogramCell {
  /** Observations per bucket (not cumulative); the last slot is +Inf. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

interface Series<C> {
  labels: Record<string, string>;
  cell: C;
}

abstract class HotMetric<C> {
  readonly name: string;
  readonly help: string;
  abstract readonly type: 'counter' | 'histogram';
  readonly aggregator = 'sum';
  protected readonly labelNames: readonly string[];
  protected readonly series = new Map<string, Series<C>>();

  constructor(opts: { name: string; help: string; labelNames: readonly string[]; registers: Registry[] }) {
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = opts.labelNames;
    for (const r of opts.registers) r.registerMetric(this as never);
  }

  /** The cell for one label set; call this off the hot path and keep the result. */
  cell(...values: string[]): C {
    const key = values.join('\u0000');
    let s = this.series.get(key);
    if (!s) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((n, i) => {
        labels[n] = values[i] ?? '';
      });
      s = { labels, cell: this.newCell() };
      this.series.set(key, s);
    }
    return s.cell;
  }

  protected abstract newCell(): C;
  abstract get(): Promise<unknown>;

  /** prom-client calls these on registry.clear()/resetMetrics(). */
  reset(): void {
    this.series.clear();
  }
}

export class HotCounter extends HotMetric<CounterCell> {
  readonly type = 'counter';

  protected newCell(): CounterCell {
    return { n: 0 };
  }

  async get(): Promise<unknown> {
    return {
      name: this.name, help: this.help, type: this.type, aggregator: this.aggregator,
      values: [...this.series.values()].map((s) => ({ labels: s.labels, value: s.cell.n })),
    };
  }
}

export class HotHistogram extends HotMetric<HistogramCell> {
  readonly type = 'histogram';
  private readonly buckets: readonly number[];

  constructor(opts: { name: string; help: string; labelNames: readonly string[]; buckets: readonly number[]; registers: Registry[] }) {
    super(opts);
    this.buckets = opts.buckets;
  }

  protected newCell(): HistogramCell {
    return { counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 };
  }

  /** Records one observation: a short scan of the (few) bucket bounds, no allocation. */
  observe(cell: HistogramCell, value: number): void {
    const b = this.buckets;
    let i = 0;
    while (i < b.length && value > (b[i] as number)) i++;
    cell.counts[i] = (cell.counts[i] as number) + 1;
    cell.sum += value;
    cell.count++;
  }

  async get(): Promise<unknown> {
    const values: unknown[] = [];
    for (const s of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += s.cell.counts[i] as number;
        values.push({ metricName: `${this.name}_bucket`, labels: { ...s.labels, le }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { ...s.labels, le: '+Inf' }, value: s.cell.count });
      values.push({ metricName: `${this.name}_sum`, labels: s.labels, value: s.cell.sum });
      values.push({ metricName: `${this.name}_count`, labels: s.labels, value: s.cell.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
