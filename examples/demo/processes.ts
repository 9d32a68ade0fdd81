import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One process the demo started, in a process group of its own. */
export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly proc: ChildProcess;
  readonly logFile: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** True while the process runs. */
  running(): boolean;
  /** The last lines it logged (for error messages). */
  tail(lines?: number): string;
}

/**
 * The demo's processes. Each child is the leader of its own process group (`detached`), so a
 * Ctrl-C in the terminal reaches only the demo, which then stops everything in order: apps'
 * sidecars first, then apps, then Redis. Stopping signals the whole group (`kill -PGID`), so
 * anything a child started goes too; whatever ignores SIGTERM past the grace gets SIGKILL.
 * Output goes to one log file per process, so the terminal stays readable.
 */
export class Processes {
  private readonly logDir: string;
  private readonly children: Child[] = [];
  private readonly stopping = new Set<Child>();
  private onUnexpectedExit: ((c: Child) => void) | undefined;

  constructor(logDir: string) {
    this.logDir = logDir;
  }

  /** Called when a child exits without having been asked to. */
  watchExits(listener: (c: Child) => void): void {
    this.onUnexpectedExit = listener;
  }

  start(name: string, command: string, args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Child {
    const logFile = join(this.logDir, `${name}.log`);
    const fd = openSync(logFile, 'a');
    const proc = spawn(command, args, { detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, ...opts.env }, cwd: opts.cwd });
    closeSync(fd); // the child holds its own copy
    if (proc.pid === undefined) throw new Error(`could not start ${name} (${command})`);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    proc.once('error', () => {});
    const child: Child = {
      name, pid: proc.pid, proc, logFile, exited,
      running: () => proc.exitCode === null && proc.signalCode === null,
      tail: (lines = 8) => {
        try {
          return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
        } catch {
          return '';
        }
      },
    };
    void exited.then(() => {
      if (!this.stopping.has(child)) this.onUnexpectedExit?.(child);
    });
    this.children.push(child);
    return child;
  }

  /** Signals the child's process group; after `graceMs`, SIGKILLs what is left of it. */
  async stop(child: Child, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<void> {
    this.stopping.add(child);
    if (child.running()) {
      signalGroup(child.pid, signal);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([child.exited.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)))]);
      clearTimeout(timer);
      if (timedOut) {
        signalGroup(child.pid, 'SIGKILL');
        await child.exited;
      }
    }
    // The group may outlive its leader (a grandchild): make sure it is gone.
    signalGroup(child.pid, 'SIGKILL');
  }

  /** Stops every child, in the given order of names' prefixes first, the rest after (reverse start order). */
  async stopAll(order: ((c: Child) => boolean)[] = [], graceMs = 5_000): Promise<void> {
    const left = [...this.children].reverse();
    for (const pick of order) {
      const batch = left.filter(pick);
      await Promise.all(batch.map((c) => this.stop(c, 'SIGTERM', graceMs)));
      for (const c of batch) left.splice(left.indexOf(c), 1);
    }
    await Promise.all(left.map((c) => this.stop(c, 'SIGTERM', graceMs)));
  }

  /** Every process started (including ones already stopped and restarted). */
  all(): readonly Child[] {
    return this.children;
  }

  /** Pids that still answer signal 0: none after stopAll(). */
  survivors(): number[] {
    return this.children.filter((c) => groupAlive(c.pid)).map((c) => c.pid);
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is already gone
  }
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}
