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
  let ticks = 0;
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
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / CLOCK_TICKS;
}

/** Measures the CPU seconds process group `pgid` spends while `work` runs. */
export async function cpuDuring<T>(pgid: number, work: () => Promise<T>): Promise<{ result: T; cpuSeconds: number }> {
  const before = groupCpuSeconds(pgid);
  const result = await work();
  return { result, cpuSeconds: groupCpuSeconds(pgid) - before };
}
