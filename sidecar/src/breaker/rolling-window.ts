/**
 * Call outcomes over the last `windowMs`, kept in ten buckets so old outcomes age out in steps of
 * a tenth of the window with constant memory and no timers.
 */
export class RollingWindow {
  private static readonly BUCKETS = 10;
  private readonly bucketMs: number;
  private readonly epochs = new Float64Array(RollingWindow.BUCKETS).fill(-1);
  private readonly totals = new Uint32Array(RollingWindow.BUCKETS);
  private readonly failures = new Uint32Array(RollingWindow.BUCKETS);
  private readonly slows = new Uint32Array(RollingWindow.BUCKETS);

  constructor(windowMs: number) {
    if (!(windowMs > 0)) throw new RangeError('RollingWindow: windowMs must be > 0');
    this.bucketMs = windowMs / RollingWindow.BUCKETS;
  }

  record(now: number, failure: boolean, slow: boolean): void {
    const epoch = Math.floor(now / this.bucketMs);
    const i = epoch % RollingWindow.BUCKETS;
    if (this.epochs[i] !== epoch) {
      this.epochs[i] = epoch;
      this.totals[i] = 0;
      this.failures[i] = 0;
      this.slows[i] = 0;
    }
    this.totals[i]!++;
    if (failure) this.failures[i]!++;
    if (slow) this.slows[i]!++;
  }

  /** Sums the buckets that are still inside the window. */
  snapshot(now: number): { total: number; failures: number; slow: number } {
    const current = Math.floor(now / this.bucketMs);
    let total = 0;
    let failures = 0;
    let slow = 0;
    for (let i = 0; i < RollingWindow.BUCKETS; i++) {
      if (current - (this.epochs[i] as number) < RollingWindow.BUCKETS) {
        total += this.totals[i] as number;
        failures += this.failures[i] as number;
        slow += this.slows[i] as number;
      }
    }
    return { total, failures, slow };
  }

  reset(): void {
    this.epochs.fill(-1);
  }
}
