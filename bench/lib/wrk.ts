import { execFile } from 'node:child_process';

export interface WrkOptions {
  url: string;
  threads?: number;
  connections: number;
  durationS: number;
  /** Socket/request timeout passed to wrk (default 5s). */
  timeoutS?: number;
}

export interface WrkResult {
  requests: number;
  requestsPerSec: number;
  /** Latency percentiles in microseconds. */
  p50Us: number;
  p75Us: number;
  p90Us: number;
  p99Us: number;
  /** Responses that were not 2xx/3xx. */
  non2xx: number;
  /** connect/read/write/timeout errors summed. */
  socketErrors: number;
}

/** Runs wrk with --latency and parses its report. */
export function runWrk(opts: WrkOptions): Promise<WrkResult> {
  const args = [
    `-t${opts.threads ?? 1}`, `-c${opts.connections}`, `-d${opts.durationS}s`,
    `--timeout`, `${opts.timeoutS ?? 5}s`, '--latency', opts.url,
  ];
  return new Promise((resolve, reject) => {
    execFile('wrk', args, { timeout: (opts.durationS + 30) * 1000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`wrk ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      try {
        resolve(parseWrk(stdout));
      } catch (e) {
        reject(new Error(`${(e as Error).message}\n--- wrk output ---\n${stdout}${stderr}`));
      }
    });
  });
}

/** Parses wrk's text report (the format of wrk 4.x with --latency). */
export function parseWrk(text: string): WrkResult {
  const pct = (p: string): number => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(text);
    if (!m) throw new Error(`wrk output has no ${p}% latency`);
    return toMicros(Number(m[1]), m[2] as string);
  };
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(text);
  const total = /^\s*(\d+) requests in/m.exec(text);
  if (!rps || !total) throw new Error('wrk output has no Requests/sec');
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(text);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  return {
    requests: Number(total[1]),
    requestsPerSec: Number(rps[1]),
    p50Us: pct('50'),
    p75Us: pct('75'),
    p90Us: pct('90'),
    p99Us: pct('99'),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
  };
}

function toMicros(value: number, unit: string): number {
  if (unit === 'us') return value;
  if (unit === 'ms') return value * 1_000;
  return value * 1_000_000;
}
