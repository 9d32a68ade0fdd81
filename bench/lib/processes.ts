import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

/**
 * Processes a benchmark starts, stopped together at the end — on success, on error, on Ctrl-C.
 * Every child runs in its own process group, so stopping one also stops whatever it forked
 * (nginx's worker, a shell's exec'd program).
 */
export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Resolves with the exit code (or the signal name) when the process ends. */
  readonly exited: Promise<number | string>;
  /** The last lines the process wrote to stderr, for error messages. */
  stderrTail(): string;
  /** Resolves with the first stdout line matching `pattern`; rejects if the process exits first or on timeout. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Raise the soft open-files limit of the child to this (capped at the hard limit). */
  nofile?: number;
  /** Forward the child's stderr to ours as it comes (default: keep only a tail for errors). */
  inheritStderr?: boolean;
}

/** The Node that runs the benchmark (Node 24 from node_modules/.bin under npm). */
export const NODE = process.execPath;

export class ProcessGroup {
  private readonly children = new Set<Child>();
  private stopping: Promise<void> | undefined;

  constructor() {
    const onSignal = (signal: NodeJS.Signals) => {
      process.stderr.write(`\n${signal}: stopping benchmark processes\n`);
      void this.stopAll().finally(() => process.exit(130));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    // Last resort: whatever is still running when we exit gets SIGKILL (synchronous, no awaiting here).
    process.once('exit', () => {
      for (const c of this.children) killGroup(c.pid, 'SIGKILL');
    });
  }

  start(name: string, command: string, args: string[], opts: StartOptions = {}): Child {
    let cmd = command;
    let argv = args;
    if (opts.nofile !== undefined) {
      const limit = Math.min(opts.nofile, hardNofileLimit());
      cmd = 'bash';
      argv = ['-c', `ulimit -Sn ${limit} && exec "$@"`, 'bash', command, ...args];
    }
    const proc = spawn(cmd, argv, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', opts.inheritStderr ? 'inherit' : 'pipe'],
      detached: true, // own process group: see killGroup
    });
    if (proc.pid === undefined) throw new Error(`${name}: could not start ${command}`);
    const tail: string[] = [];
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (s: string) => {
      tail.push(s);
      if (tail.length > 40) tail.shift();
    });
    const exited = new Promise<number | string>((resolve) => {
      proc.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
      proc.once('error', (err) => resolve(err.message));
    });
    const lines = createInterface({ input: proc.stdout! });
    const lineWaiters = new Set<(line: string) => void>();
    lines.on('line', (line) => {
      for (const w of lineWaiters) w(line);
    });
    const child: Child = {
      name,
      proc,
      pid: proc.pid,
      exited,
      stderrTail: () => tail.join('').split('\n').slice(-15).join('\n'),
      waitForLine: (pattern, timeoutMs = 30_000) =>
        new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => finish(new Error(`${name}: no line matching ${pattern} within ${timeoutMs} ms\n${child.stderrTail()}`)), timeoutMs);
          const onLine = (line: string) => {
            if (pattern.test(line)) finish(undefined, line);
          };
          const finish = (err?: Error, line?: string) => {
            clearTimeout(timer);
            lineWaiters.delete(onLine);
            if (err) reject(err);
            else resolve(line as string);
          };
          lineWaiters.add(onLine);
          void exited.then((code) => finish(new Error(`${name} exited (${code}) before printing ${pattern}\n${child.stderrTail()}`)));
        }),
    };
    this.children.add(child);
    void exited.then(() => this.children.delete(child));
    return child;
  }

  /** Stops one child: SIGTERM to its group, SIGKILL after `graceMs`. */
  async stop(child: Child, graceMs = 5_000): Promise<void> {
    if (!this.children.has(child)) return;
    killGroup(child.pid, 'SIGTERM');
    const timer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), graceMs);
    await child.exited;
    clearTimeout(timer);
    // The leader exited; anything it left in its group goes too.
    killGroup(child.pid, 'SIGKILL');
  }

  stopAll(): Promise<void> {
    this.stopping ??= Promise.all([...this.children].map((c) => this.stop(c))).then(() => undefined);
    return this.stopping;
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** The hard RLIMIT_NOFILE of this process (children cannot go above it without privileges). */
export function hardNofileLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  const hard = line?.trim().split(/\s+/)[4];
  return hard === undefined || hard === 'unlimited' ? 1_048_576 : Number(hard);
}

/** Resident set size of a process, in bytes (VmRSS from /proc). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** Polls `check` until it returns true (or throws on timeout). */
export async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Resolves when GET `url` answers `status` (default 200). */
export function waitForHttp(url: string, status = 200, timeoutMs = 15_000): Promise<void> {
  return waitUntil(url, async () => (await fetch(url, { signal: AbortSignal.timeout(1_000) })).status === status, timeoutMs);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
