/**
 * Redis stream entry ids are `<ms>-<seq>`; they order entries and cannot be compared as strings
 * ("9-0" < "10-0" numerically, not lexically). Both parts fit in a bigint.
 */
export interface StreamId {
  readonly ms: bigint;
  readonly seq: bigint;
}

export function parseStreamId(id: string): StreamId {
  const dash = id.indexOf('-');
  if (dash < 0) return { ms: BigInt(id), seq: 0n };
  return { ms: BigInt(id.slice(0, dash)), seq: BigInt(id.slice(dash + 1)) };
}

export function compareStreamIds(a: string, b: string): number {
  const x = parseStreamId(a);
  const y = parseStreamId(b);
  if (x.ms !== y.ms) return x.ms < y.ms ? -1 : 1;
  if (x.seq !== y.seq) return x.seq < y.seq ? -1 : 1;
  return 0;
}

/** The smallest id strictly greater than `id` (what "everything after id" starts at). */
export function nextStreamId(id: string): string {
  const { ms, seq } = parseStreamId(id);
  return `${ms}-${seq + 1n}`;
}

/** The millisecond part of an entry id: when Redis appended the entry, by its own clock. */
export function streamIdTime(id: string): number {
  const dash = id.indexOf('-');
  return Number(dash < 0 ? id : id.slice(0, dash));
}
