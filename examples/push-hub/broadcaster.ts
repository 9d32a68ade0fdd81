/**
 * The periodic feed that exactly one replica runs: the one whose sidecar holds the
 * LeaderElection. Before every tick it asks its sidecar (`GET /v1/leadership/{name}` on the local
 * API) and publishes only while the answer is "leader" and the lease is still valid. Every message
 * carries the fencing token, which strictly increases from one leader to the next, so a consumer
 * can drop messages from a deposed leader (a lower token than one it has already seen).
 *
 * Feed message: {seq, fencingToken, from (the leading sidecar's id), replica, at}
 */
export interface Leadership {
  leader: boolean;
  holder?: string | null;
  fencingToken?: number | null;
  validUntil?: string | null;
}

export interface FeedMessage {
  seq: number;
  fencingToken: number | null;
  from: string | null;
  replica: string | undefined;
  at: string;
}

export class Broadcaster {
  private readonly localApi: string;
  private readonly election: string;
  private readonly tickMs: number;
  private readonly replica: string | undefined;
  private readonly publish: (data: FeedMessage) => Promise<void>;
  private readonly onChange: ((now: Leadership, before: Leadership) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private seq = 0;
  private leadership: Leadership = { leader: false };
  /** How many feed messages this replica sent (for the demo and tests). */
  sent = 0;

  constructor(opts: {
    localApi: string;
    election: string;
    tickMs?: number;
    replica?: string;
    publish: (data: FeedMessage) => Promise<void>;
    /** Called when this replica starts or stops leading (or the token changes). */
    onChange?: (now: Leadership, before: Leadership) => void;
  }) {
    this.localApi = opts.localApi;
    this.election = opts.election;
    this.tickMs = opts.tickMs ?? 1_000;
    this.replica = opts.replica;
    this.publish = opts.publish;
    this.onChange = opts.onChange;
  }

  get isLeader(): boolean {
    return this.leadership.leader && (!this.leadership.validUntil || Date.parse(this.leadership.validUntil) > Date.now());
  }

  start(): void {
    const loop = async () => {
      await this.refresh();
      if (this.stopped) return;
      if (this.isLeader) {
        try {
          const l = this.leadership;
          await this.publish({ seq: ++this.seq, fencingToken: l.fencingToken ?? null, from: l.holder ?? null, replica: this.replica, at: new Date().toISOString() });
          this.sent++;
        } catch {
          // Redis away: skip this tick; the feed resumes when it returns.
        }
      }
      if (!this.stopped) this.timer = setTimeout(loop, this.tickMs);
    };
    void loop();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async refresh(): Promise<void> {
    const before = this.leadership;
    try {
      const res = await fetch(`${this.localApi}/v1/leadership/${encodeURIComponent(this.election)}`, { signal: AbortSignal.timeout(500) });
      this.leadership = res.ok ? ((await res.json()) as Leadership) : { leader: false };
    } catch {
      // The sidecar is unreachable: assume we are not the leader (the safe side).
      this.leadership = { leader: false };
    }
    const now = this.leadership;
    if (now.leader !== before.leader || (now.leader && now.fencingToken !== before.fencingToken)) this.onChange?.(now, before);
  }
}
