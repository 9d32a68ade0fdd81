/**
 * A quantile estimated from histogram buckets, the way Prometheus' `histogram_quantile` does it:
 * find the bucket holding the rank, then interpolate linearly inside it (observations are assumed
 * spread evenly between the bucket's bounds). A rank in the +Inf bucket answers the highest finite
 * bound: the histogram cannot say more.
 *
 * `bounds` are the finite upper bounds, ascending; `counts` has one more slot (+Inf) and holds the
 * observations per bucket (not cumulative). No observation → null.
 */
export function histogramQuantile(q: number, bounds: readonly number[], counts: ArrayLike<number>): number | null {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile must be within [0, 1] (got ${q})`);
  if (counts.length !== bounds.length + 1) throw new RangeError(`expected ${bounds.length + 1} bucket counts (got ${counts.length})`);
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i] as number;
  if (total <= 0) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < bounds.length; i++) {
    const n = counts[i] as number;
    if (n > 0 && below + n >= rank) {
      const lower = i === 0 ? 0 : (bounds[i - 1] as number);
      const upper = bounds[i] as number;
      return lower + (upper - lower) * ((rank - below) / n);
    }
    below += n;
  }
  return bounds.length ? (bounds[bounds.length - 1] as number) : null;
}
