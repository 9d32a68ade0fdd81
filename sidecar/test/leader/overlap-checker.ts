import type { LeadershipStatus } from '../../src/leader/leader-elector.ts';

/** One leadership term as its holder announced it: from `since` to the latest `validUntil` it claimed. */
export interface Term {
  holder: string;
  token: number;
  since: number;
  until: number;
}

/**
 * Collects every leader announcement seen on the watch streams and checks the two promises:
 * claimed validity windows of successive leaders never overlap, and the fencing token strictly
 * increases from one leader to the next (ordered by when they became leader).
 */
export class OverlapChecker {
  private readonly terms = new Map<number, Term>();
  /** The token each watched process last announced as its own. */
  private readonly leading = new Map<string, number>();

  /** `source` names the process whose watch stream said `s`. */
  record(source: string, s: LeadershipStatus): void {
    if (!s.leader) {
      // A leader that says it is no longer leader ends its claim there, before its validity would.
      const token = this.leading.get(source);
      const t = token === undefined ? undefined : this.terms.get(token);
      if (t !== undefined) t.until = Math.min(t.until, Date.parse(s.at));
      this.leading.delete(source);
      return;
    }
    if (s.fencingToken === undefined || s.since === undefined || s.validUntil === undefined) return;
    this.leading.set(source, s.fencingToken);
    const since = Date.parse(s.since);
    const until = Date.parse(s.validUntil);
    const t = this.terms.get(s.fencingToken);
    if (t === undefined) this.terms.set(s.fencingToken, { holder: s.holder as string, token: s.fencingToken, since, until });
    else {
      if (t.holder !== s.holder) throw new Error(`token ${s.fencingToken} announced by two holders: ${t.holder} and ${s.holder}`);
      if (this.leading.get(source) === s.fencingToken) t.until = Math.max(t.until, until);
    }
  }

  get all(): Term[] {
    return [...this.terms.values()].sort((a, b) => a.since - b.since);
  }

  /** Every violation found, as sentences (empty when all is well). */
  violations(): string[] {
    const out: string[] = [];
    const terms = this.all;
    for (let i = 1; i < terms.length; i++) {
      const prev = terms[i - 1] as Term;
      const next = terms[i] as Term;
      if (next.token <= prev.token) out.push(`token went from ${prev.token} (${prev.holder}) to ${next.token} (${next.holder})`);
      if (next.since < prev.until) out.push(`${next.holder} (token ${next.token}) led from ${next.since} while ${prev.holder} (token ${prev.token}) was valid until ${prev.until}`);
    }
    return out;
  }
}

/** Follows GET /v1/leadership/{name}/watch (Server-Sent Events) until aborted or the stream ends. */
export async function watchLeadership(localApi: string, name: string, onStatus: (s: LeadershipStatus) => void, signal: AbortSignal): Promise<void> {
  try {
    const res = await fetch(`http://${localApi}/v1/leadership/${name}/watch`, { signal });
    if (res.body === null) return;
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event.split('\n').find((l) => l.startsWith('data: '));
        if (data) onStatus(JSON.parse(data.slice(6)) as LeadershipStatus);
      }
    }
  } catch {
    // The process was killed or the test is over: the stream just ends.
  }
}
