import { readdirSync, readFileSync } from 'node:fs';

/** Kernel clock ticks per second for /proc/<pid>/stat times (USER_HZ; 100 on Linux everywhere in practice). */
const CLOCK_TICKS = Number(process.env.BENCH_CLK_TCK ?? 100);

/**
 * CPU seconds (user + system) used so far by every live process in process group `pgid` — a
 * child started by ProcessGroup and anything it forked (e.g. nginx's worker).
 *
 * CPU per request is a steadier yardstick than requests per second when something else on the
 * machine competes for the cores: a stolen time slice slows a run down but costs it no CPU.
 */
export function groupCpuSeconds(pgid: number): number {
  const t = groupCpuTimes(pgid);
  return t.user + t.system;
}

/** User and system (kernel) CPU seconds of process group `pgid`, apart. */
export function groupCpuTimes(pgid: number): { user: number; system: number } {
  let user = 0;
  let system = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // Fields after "(comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) !== pgid) continue;
    user += Number(fields[11]);
    system += Number(fields[12]);
  }
  return { user: user / CLOCK_TICKS, system: system / CLOCK_TICKS };
}

/** Measures the CPU seconds process group `pgid` spends while `work` runs. */
export async function cpuDuring<T>(pgid: number, work: () => Promise<T>): Promise<{ result: T; cpuSeconds: number; userSeconds: number; systemSeconds: number }> {
  const before = groupCpuTimes(pgid);
  const result = await work();
  const after = groupCpuTimes(pgid);
  const userSeconds = after.user - before.user;
  const systemSeconds = after.system - before.system;
  return { result, cpuSeconds: userSeconds + systemSeconds, userSeconds, systemSeconds };
}
