/**
 * V8's heap sized to the sidecar's memory limit, given to the sidecar as NODE_OPTIONS. Per pod,
 * not baked into the image, so a pod's `sluice.dev/proxy-memory-limit` moves it too.
 *
 * Why these two settings (bench/README.md, "Footprint", has the measurements):
 *  - the young generation (`--max-semi-space-size`, MiB per semi-space). On its own V8 lets a
 *    busy process grow each semi-space to 16 MiB (the young generation to ~48 MiB), and under
 *    gRPC load the sidecar's peak memory is mostly that garbage. A semi-space of limit/128 — 2 MiB
 *    under the default 256Mi limit — halved the peak at 1,000 gRPC calls/s with no CPU cost
 *    measurable; the price is more frequent (shorter) scavenges, which the queue's
 *    enqueue→delivery tail feels. Between 1 and 16 MiB: below 1 MiB scavenges run every few
 *    hundred kilobytes of allocation; 16 MiB is V8's own ceiling.
 *  - the old generation (`--max-old-space-size`, MiB): half the limit, leaving the other half to
 *    the young generation, code, and what lives outside the V8 heap (Node itself, socket and
 *    HTTP/2 buffers). V8 then collects hard as it nears its limit instead of the kernel killing
 *    the container at the cgroup's. Explicit because Node's own guess from the cgroup depends on
 *    which cgroup version and libuv the node runs. Never below 32 MiB: the sidecar's live heap
 *    under load is a few tens of MiB, and a smaller cap turns a slow pod into a crash-looping one.
 * Without a memory limit there is no cgroup to protect: only the young generation is set, as
 * for the default limit.
 */

const MiB = 2 ** 20;

export interface V8HeapSettings {
  maxSemiSpaceMiB: number;
  /** Absent without a memory limit. */
  maxOldSpaceMiB?: number;
}

/** The heap settings for a sidecar whose container may use `memoryLimitBytes` (undefined: no limit). */
export function v8HeapSettings(memoryLimitBytes: number | undefined): V8HeapSettings {
  if (memoryLimitBytes === undefined || !(memoryLimitBytes > 0)) return { maxSemiSpaceMiB: 2 };
  const limitMiB = memoryLimitBytes / MiB;
  return {
    maxSemiSpaceMiB: Math.min(16, Math.max(1, Math.floor(limitMiB / 128))),
    maxOldSpaceMiB: Math.max(32, Math.floor(limitMiB / 2)),
  };
}

/** The settings as Node command-line flags, for the container's NODE_OPTIONS. */
export function nodeOptionsFor(settings: V8HeapSettings): string {
  return [
    `--max-semi-space-size=${settings.maxSemiSpaceMiB}`,
    ...(settings.maxOldSpaceMiB !== undefined ? [`--max-old-space-size=${settings.maxOldSpaceMiB}`] : []),
  ].join(' ');
}
