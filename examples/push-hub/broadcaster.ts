/**
 * The periodic feed that exactly one replica runs: the one whose sidecar holds the
 * LeaderElection. It asks its sidecar (`GET /v1/leadership/{name}` on the local API) and runs
 * only while the answer is "leader" and the lease is still valid; every message carries the
 * fencing token, so a consumer can drop messages from a deposed leader (a lower token).
 */
export interface Leadership {
  leader: boolean;
  holder?: string | null;
  fencingToken?: number | string | null;
  validUntil?: string | null;
}

export class Broadcaster {
  private readonly localApi: string;
  private readonly election: string;
  private readonly tickMs: number;
  private readonly publish: (data: unknown) => Promise<void>;
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;
  private leadership: Leadership = { leader: false };
  /** How many feed messages this replica sent (for the demo and tests). */
  sent = 0;

  constructor(opts: { localApi: string; election: string; tickMs?: number; publish: (data: unknown) => Promise<void> }) {
    this.localApi = opts.localApi;
    this.election = opts.election;
    this.tickMs = opts.tickMs ?? 1_000;
    this.publish = opts.publish;
  }

  get isLeader(): boolean {
    return this.leadership.leader && (!this.leadership.validUntil || Date.parse(this.leadership.validUntil) > Date.now());
  }

  start(): void {
    const loop = async () => {
      await this.refresh();
      if (this.isLeader) {
        try {
          await this.publish({ seq: ++this.seq, fencingToken: this.leadership.fencingToken, from: this.leadership.holder, at: new Date().toISOString() });
          this.sent++;
        } catch {
          // Redis away: skip this tick; the feed resumes when it returns.
        }
      }
      this.timer = setTimeout(loop, this.tickMs);
    };
    void loop();
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private async refresh(): Promise<void> {
    try {
      const res = await fetch(`${this.localApi}/v1/leadership/${encodeURIComponent(this.election)}`, { signal: AbortSignal.timeout(500) });
      this.leadership = res.ok ? ((await res.json()) as Leadership) : { leader: false };
    } catch {
      // The sidecar is unreachable: assume we are not the leader (the safe side).
      this.leadership = { leader: false };
    }
  }
}
