import type { Redis } from 'ioredis';
import { releaseChannel } from './lock-scripts.ts';

/**
 * Tells standbys the moment a lock is released (RELEASE publishes on every node), so a graceful
 * hand-over (SIGTERM) takes one round trip instead of a poll interval. One subscriber connection
 * per lock node; a release seen on any node is enough — it is only a hint to try now, the acquire
 * itself decides. Subscriptions are re-sent whenever a node comes back.
 */
export class ReleaseNotifier {
  private readonly subscribers: readonly Redis[];
  private readonly listeners = new Map<string, Set<() => void>>();

  constructor(subscribers: readonly Redis[]) {
    this.subscribers = subscribers;
    for (const s of subscribers) {
      s.on('message', (channel: string) => {
        for (const l of this.listeners.get(channel) ?? []) l();
      });
      s.on('ready', () => {
        const channels = [...this.listeners.keys()];
        if (channels.length > 0) s.subscribe(...channels).catch(() => {});
      });
    }
  }

  /** Calls `listener` whenever `resource` is released; returns the unsubscribe function. */
  onRelease(resource: string, listener: () => void): () => void {
    const channel = releaseChannel(resource);
    let set = this.listeners.get(channel);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(channel, set);
      for (const s of this.subscribers) if (s.status === 'ready') s.subscribe(channel).catch(() => {});
    }
    set.add(listener);
    return () => {
      const current = this.listeners.get(channel);
      if (current === undefined) return;
      current.delete(listener);
      if (current.size > 0) return;
      this.listeners.delete(channel);
      for (const s of this.subscribers) if (s.status === 'ready') s.unsubscribe(channel).catch(() => {});
    };
  }
}
