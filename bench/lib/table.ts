/**
 * Plain-text output for benchmarks: aligned tables, ratios, and one line per aim. A benchmark
 * never fails on a number; it says whether each aim was met and by how much.
 */

export type Cell = string | number;

/** Prints rows under headers, numbers right-aligned, text left-aligned. */
export function printTable(title: string, headers: string[], rows: Cell[][]): void {
  const text = rows.map((r) => r.map((c) => (typeof c === 'number' ? formatNumber(c) : c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[], numeric: boolean[]) =>
    cells.map((c, i) => (numeric[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  const numericCols = headers.map((_, i) => rows.some((r) => typeof r[i] === 'number'));
  console.log(`\n${title}`);
  console.log(line(headers, numericCols));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of text) console.log(line(r, numericCols));
}

/** Prints the same table as Markdown (for pasting into bench/README.md). */
export function printMarkdownTable(headers: string[], rows: Cell[][]): void {
  console.log(`| ${headers.join(' | ')} |`);
  console.log(`|${headers.map((_, i) => (rows.some((r) => typeof r[i] === 'number') ? '---:' : '---')).join('|')}|`);
  for (const r of rows) console.log(`| ${r.map((c) => (typeof c === 'number' ? formatNumber(c) : c)).join(' | ')} |`);
}

export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString('en-US');
  if (Math.abs(n) >= 100) return n.toFixed(0);
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

/** Microseconds as a short human string: 87 µs, 1.24 ms. */
export function formatMicros(us: number): string {
  return us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(0)} µs`;
}

export function formatBytes(bytes: number): string {
  if (Math.abs(bytes) >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  if (Math.abs(bytes) >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes.toFixed(0)} B`;
}

export interface Aim {
  /** What is measured, e.g. "policies-on / policies-off". */
  name: string;
  value: number;
  /** `atLeast`: value ≥ target is met; `atMost`: value ≤ target is met. */
  kind: 'atLeast' | 'atMost';
  target: number;
  /** How to show value and target (default: 2 decimals, as a ratio). */
  format?: (v: number) => string;
}

export function aimMet(aim: Aim): boolean {
  return aim.kind === 'atLeast' ? aim.value >= aim.target : aim.value <= aim.target;
}

/** One line per aim: `met` / `NOT met`, the value and the target. */
export function printAims(title: string, aims: Aim[]): void {
  console.log(`\n${title}`);
  const width = Math.max(...aims.map((a) => a.name.length));
  for (const aim of aims) {
    const fmt = aim.format ?? ((v: number) => v.toFixed(2));
    const op = aim.kind === 'atLeast' ? '≥' : '≤';
    console.log(`  ${aimMet(aim) ? 'met    ' : 'NOT met'}  ${aim.name.padEnd(width)}  ${fmt(aim.value)}  (aim ${op} ${fmt(aim.target)})`);
  }
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return NaN;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
