import { systemClock, type Clock } from '../../../lib/clock.ts';

/**
 * The latest leadership report of each sidecar, as sent on its PolicyDiscovery stream
 * (`{"leadership": {"elections": [...]}}`, the sidecar's LeadershipFeature.status()). Kept after
 * the stream ends: a holder that vanished still holds its lease until the validUntil it reported,
 * and the LeaderElection reconciler decides from these claims — it never trusts a claim for a pod
 * other than the one whose authenticated stream carried it.
 */
export interface ElectionClaim {
  /** `namespace/name` of the LeaderElection. */
  readonly election: string;
  readonly leader: boolean;
  readonly fencingToken: number | undefined;
  /** Wall-clock ms until which the leader may act (leaders only), as the sidecar reported it. */
  readonly validUntil: number | undefined;
  /** Wall-clock ms when the operator received the report: a lease can last at most ttl from here. */
  readonly receivedAt: number;
}

export interface PodReport {
  readonly podKey: string;
  readonly podUid: string;
  readonly claims: ReadonlyMap<string, ElectionClaim>;
}

/** Reads the leadership part of a report; undefined when the report says nothing about leadership. */
export function parseLeadershipReport(report: unknown, receivedAt: number): Map<string, ElectionClaim> | undefined {
  const elections = (report as { leadership?: { elections?: unknown } } | null)?.leadership?.elections;
  if (!Array.isArray(elections)) return undefined;
  const out = new Map<string, ElectionClaim>();
  for (const e of elections as Record<string, unknown>[]) {
    if (typeof e?.election !== 'string') continue;
    const token = typeof e.fencingToken === 'number' && Number.isSafeInteger(e.fencingToken) && e.fencingToken >= 0 ? e.fencingToken : undefined;
    const validUntil = typeof e.validUntil === 'string' ? Date.parse(e.validUntil) : NaN;
    out.set(e.election, { election: e.election, leader: e.leader === true, fencingToken: token, validUntil: Number.isFinite(validUntil) ? validUntil : undefined, receivedAt });
  }
  return out;
}

export class LeaderReports {
  private readonly reports = new Map<string, PodReport>();
  private readonly clock: Clock;

  constructor(clock: Clock = systemClock) {
    this.clock = clock;
  }

  /**
   * Records a pod's report. Returns the elections whose claims may have changed (those named now
   * and those named by the pod's previous report), or [] when the report is not about leadership.
   */
  record(podKey: string, podUid: string, report: unknown): string[] {
    const claims = parseLeadershipReport(report, this.clock.wallNow());
    if (!claims) return [];
    const previous = this.reports.get(podKey);
    this.reports.set(podKey, { podKey, podUid, claims });
    return [...new Set([...claims.keys(), ...(previous?.claims.keys() ?? [])])];
  }

  get(podKey: string): PodReport | undefined {
    return this.reports.get(podKey);
  }

  /** The pod is gone: its claims go with it. Returns the elections it had claims for. */
  forget(podKey: string): string[] {
    const r = this.reports.get(podKey);
    this.reports.delete(podKey);
    return r ? [...r.claims.keys()] : [];
  }
}
