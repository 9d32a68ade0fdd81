import { histogramQuantile } from './histogram-quantile.ts';

/**
 * The last few minutes of a sidecar, for the live page's plots: a ring buffer of per-interval
 * samples turned from cumulative readings into rates (requests per second by decision), latency
 * quantiles (from the histogram's bucket deltas over the interval) and gauges as read.
 *
 * Memory is bounded: `capacity` samples (300 at one per second: five minutes), each holding one
 * value per decision, per gauge field of the rules in the active plan — nothing a client chooses.
 * Pure: readings carry their own times, so tests feed it without a timer.
 */

/** One reading of the sidecar's cumulative counters and current gauges. */
export interface LiveReading {
  /** Monotonic ms (clock.now()): intervals are measured with it. */
  t: number;
  /** Wall-clock ms (clock.wallNow()): the time axis people read. */
  at: number;
  /** Requests so far by decision (summed over protocols and routes). */
  requests: Record<string, number>;
  /** Calls to the app so far: the histogram's finite bounds (seconds) and counts per bucket, +Inf last. */
  latency: { bounds: readonly number[]; counts: readonly number[] };
  /**
   * Gauges as they are now, by section → name → field: `circuits` (state 0 closed, 1 open,
   * 2 half-open), `queues` (length, lag), and any section a feature adds (see GAUGE_SECTIONS).
   */
  gauges: Record<string, Record<string, Record<string, number>>>;
}

/** The `history` of `/v1/live`: one column per series, oldest first, one entry per interval. */
export interface LiveHistoryColumns {
  intervalMs: number;
  /** What the buffer can hold (capacity × interval): the width of the page's time axis. */
  windowMs: number;
  /** Wall-clock ms at the end of each interval. */
  at: number[];
  /** Requests per second by decision. */
  requests: Record<string, number[]>;
  /** Latency of calls to the app that ended within the interval (null: none ended). */
  latencyMs: { p50: (number | null)[]; p99: (number | null)[] };
  /** section → name → field → values (null: not present then). */
  gauges: Record<string, Record<string, Record<string, (number | null)[]>>>;
}

interface Sample {
  at: number;
  rates: Record<string, number>;
  p50: number | null;
  p99: number | null;
  gauges: LiveReading['gauges'];
}

const round = (n: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
};

export class LiveHistory {
  readonly capacity: number;
  readonly intervalMs: number;
  private readonly samples: Sample[] = [];
  private last: LiveReading | undefined;
  /** The columns of the current samples: built once per sample, however many pages poll. */
  private built: LiveHistoryColumns | undefined;
  /** clock.now() when the history was last read for a page (the sampler reads costly gauges only while watched). */
  lastReadAt: number | undefined;

  constructor({ capacity = 300, intervalMs = 1_000 }: { capacity?: number; intervalMs?: number } = {}) {
    if (!Number.isInteger(capacity) || capacity < 2) throw new RangeError(`capacity must be an integer of at least 2 (got ${capacity})`);
    if (!(intervalMs > 0)) throw new RangeError(`intervalMs must be positive (got ${intervalMs})`);
    this.capacity = capacity;
    this.intervalMs = intervalMs;
  }

  get size(): number {
    return this.samples.length;
  }

  /** Adds the interval since the previous reading (the first reading only sets the baseline). */
  record(reading: LiveReading): void {
    const prev = this.last;
    this.last = reading;
    if (!prev) return;
    const seconds = (reading.t - prev.t) / 1000;
    if (!(seconds > 0)) return;
    const rates: Record<string, number> = {};
    for (const [decision, n] of Object.entries(reading.requests)) {
      const before = prev.requests[decision] ?? 0;
      // A counter that went down was reset: everything it holds is new.
      rates[decision] = round((n >= before ? n - before : n) / seconds, 2);
    }
    const delta = bucketDelta(prev.latency, reading.latency);
    const quantile = (q: number) => {
      const s = histogramQuantile(q, reading.latency.bounds, delta);
      return s === null ? null : round(s * 1000, 3);
    };
    this.samples.push({ at: reading.at, rates, p50: quantile(0.5), p99: quantile(0.99), gauges: reading.gauges });
    if (this.samples.length > this.capacity) this.samples.shift();
    this.built = undefined;
  }

  /** Columns for the JSON (do not modify): a series that appears later is 0 (rates) or null (gauges) before. */
  columns(): LiveHistoryColumns {
    return (this.built ??= this.build());
  }

  private build(): LiveHistoryColumns {
    const s = this.samples;
    const out: LiveHistoryColumns = {
      intervalMs: this.intervalMs,
      windowMs: this.capacity * this.intervalMs,
      at: s.map((x) => x.at),
      requests: {},
      latencyMs: { p50: s.map((x) => x.p50), p99: s.map((x) => x.p99) },
      gauges: {},
    };
    s.forEach((x, i) => {
      for (const [decision, rate] of Object.entries(x.rates)) (out.requests[decision] ??= new Array<number>(s.length).fill(0))[i] = rate;
      for (const [section, names] of Object.entries(x.gauges)) {
        const sec = (out.gauges[section] ??= {});
        for (const [name, fields] of Object.entries(names)) {
          const row = (sec[name] ??= {});
          for (const [field, v] of Object.entries(fields)) (row[field] ??= new Array<number | null>(s.length).fill(null))[i] = v;
        }
      }
    });
    return out;
  }
}

/** Observations per bucket within the interval; a histogram that shrank or changed shape was reset. */
function bucketDelta(prev: LiveReading['latency'], now: LiveReading['latency']): number[] {
  const same = prev.counts.length === now.counts.length && prev.bounds.every((b, i) => b === now.bounds[i]);
  const delta = now.counts.map((n, i) => n - (same ? (prev.counts[i] as number) : 0));
  return delta.some((d) => d < 0) ? [...now.counts] : delta;
}
