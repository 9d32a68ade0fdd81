/**
 * What each pod's sidecar has been sent and has acknowledged: the ground truth behind
 * `status.targets.programmed` and the Programmed condition. A policy generation counts as
 * programmed on a pod only when that pod's sidecar ACKed a snapshot containing exactly it.
 *
 * An ACK outlives the stream that carried it: a sidecar that loses the operator keeps enforcing
 * its last snapshot, so it still counts until its pod goes away or it reports
 * another version.
 */
import type { SnapshotContents } from './snapshot.ts';

export type PodProgramState =
  | { state: 'programmed' }
  | { state: 'pending' }
  | { state: 'disconnected' }
  | { state: 'rejected'; error: string }
  /** The pod enforces the snapshot, but could not put this resource in place (an Upstream's port taken). */
  | { state: 'failed'; error: string };

interface PodProgress {
  podUid: string;
  connected: boolean;
  /** Versions sent and not yet answered (a few, newest last). */
  sent: Map<string, SnapshotContents>;
  acked?: { version: string; contents: SnapshotContents; errors?: ReadonlyMap<string, string> };
  nacked?: { version: string; contents: SnapshotContents; error: string };
  /** Policies left out of this pod's snapshots because its sidecar does not know their kind (version skew). */
  unsupported?: ReadonlyMap<string, string>;
}

const KEEP_SENT = 8;

export class ProgrammingTracker {
  private readonly pods = new Map<string, PodProgress>();

  private entry(podKey: string, podUid: string): PodProgress {
    let p = this.pods.get(podKey);
    if (!p || p.podUid !== podUid) {
      // A new pod with the same name knows nothing its predecessor acknowledged.
      p = { podUid, connected: false, sent: new Map() };
      this.pods.set(podKey, p);
    }
    return p;
  }

  connected(podKey: string, podUid: string): void {
    this.entry(podKey, podUid).connected = true;
  }

  disconnected(podKey: string): void {
    const p = this.pods.get(podKey);
    if (p) p.connected = false;
  }

  forget(podKey: string): void {
    this.pods.delete(podKey);
  }

  sent(podKey: string, podUid: string, version: string, contents: SnapshotContents): void {
    const p = this.entry(podKey, podUid);
    p.sent.delete(version);
    p.sent.set(version, contents);
    while (p.sent.size > KEEP_SENT) p.sent.delete(p.sent.keys().next().value as string);
  }

  /**
   * Records an ACK, with the resources (by ref) the sidecar could not program; returns the
   * contents it covers (undefined for a version never sent).
   */
  ack(podKey: string, version: string, errors?: ReadonlyMap<string, string>): SnapshotContents | undefined {
    const p = this.pods.get(podKey);
    const contents = p?.sent.get(version);
    if (!p || !contents) return undefined;
    p.acked = { version, contents, ...(errors && errors.size > 0 ? { errors } : {}) };
    if (p.nacked && p.nacked.version !== version) p.nacked = undefined;
    return contents;
  }

  nack(podKey: string, version: string, error: string): SnapshotContents | undefined {
    const p = this.pods.get(podKey);
    const contents = p?.sent.get(version);
    if (!p || !contents) return undefined;
    p.nacked = { version, contents, error };
    return contents;
  }

  /** Records the policies (by ref, with why) the pod's sidecar is too old to be sent. */
  unsupported(podKey: string, podUid: string, refs: ReadonlyMap<string, string>): void {
    const p = this.entry(podKey, podUid);
    p.unsupported = refs.size > 0 ? refs : undefined;
  }

  ackedVersion(podKey: string): string | undefined {
    return this.pods.get(podKey)?.acked?.version;
  }

  /** Whether the sidecar of `podKey` (uid `podUid`) enforces `ref` at `uid`/`generation`. */
  state(podKey: string, podUid: string, ref: string, uid: string, generation: number): PodProgramState {
    const p = this.pods.get(podKey);
    if (!p || p.podUid !== podUid) return { state: 'disconnected' };
    const has = (c: SnapshotContents | undefined) => {
      const e = c?.get(ref);
      return e !== undefined && e.uid === uid && e.generation === generation;
    };
    if (has(p.acked?.contents)) {
      const error = p.acked?.errors?.get(ref);
      return error === undefined ? { state: 'programmed' } : { state: 'failed', error };
    }
    if (p.nacked && has(p.nacked.contents)) return { state: 'rejected', error: p.nacked.error };
    const unsupported = p.unsupported?.get(ref);
    if (unsupported !== undefined) return { state: 'rejected', error: unsupported };
    return p.connected ? { state: 'pending' } : { state: 'disconnected' };
  }
}
