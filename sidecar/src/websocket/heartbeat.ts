import { randomBytes } from 'node:crypto';

/**
 * Heartbeats on proxied WebSocket connections: the sidecar pings a client it has not heard from
 * for `intervalMs` and closes the connection when nothing comes back within `timeoutMs`, so a
 * peer that vanished (a phone that lost its network, a NAT that forgot the flow) stops holding a
 * socket, a connection slot and a place in maxConnectionsPerKey. Anything the client sends counts
 * as a sign of life, not only the pong.
 *
 * The pings carry this process's own payload; the pongs that echo it are the sidecar's business
 * and are taken out of the stream (FrameInspector `ownPong`): the app never sees them and they
 * never count as messages. Pongs answering the app's own pings pass through as before.
 */
export interface HeartbeatSettings {
  /** Ping a client silent for this long; 0 turns heartbeats off. */
  readonly intervalMs: number;
  /** Close a pinged client that sent nothing within this. */
  readonly timeoutMs: number;
}

export const DEFAULT_HEARTBEAT: HeartbeatSettings = { intervalMs: 30_000, timeoutMs: 10_000 };

/** What a connection's heartbeat remembers: plain fields, written on the data path as a flag only. */
export interface Liveness {
  /** Set on every chunk from the client; folded into lastHeardAt by the next sweep. */
  heard: boolean;
  lastHeardAt: number;
  /** When the outstanding ping went out; undefined when none is outstanding. */
  pingSentAt: number | undefined;
}

export type HeartbeatAction = 'none' | 'ping' | 'dead';

/**
 * The decision for one connection at one sweep. `canPing` is false while the app→client stream is
 * in the middle of a frame: a control frame may only go between frames, so the ping waits — but a
 * client silent for interval + timeout is dead whether or not the ping could be sent.
 */
export function heartbeatAction(l: Liveness, now: number, s: HeartbeatSettings, canPing: boolean): HeartbeatAction {
  if (l.heard) {
    l.heard = false;
    l.lastHeardAt = now;
    l.pingSentAt = undefined;
    return 'none';
  }
  if (l.pingSentAt !== undefined) return now - l.pingSentAt >= s.timeoutMs ? 'dead' : 'none';
  const silent = now - l.lastHeardAt;
  if (silent < s.intervalMs) return 'none';
  if (canPing) {
    l.pingSentAt = now;
    return 'ping';
  }
  return silent >= s.intervalMs + s.timeoutMs ? 'dead' : 'none';
}

/** How often the sweep runs: often enough that a timeout is noticed within half of itself. */
export function sweepEveryMs(s: HeartbeatSettings): number {
  return Math.min(1_000, Math.max(10, Math.floor(Math.min(s.intervalMs, s.timeoutMs) / 2)));
}

/**
 * The payload of this process's pings: recognisable among the app's own pings (which carry
 * whatever the app chose) and short, so recognising a pong costs one small compare.
 */
export const PING_PAYLOAD: Buffer = Buffer.from(`sluice:${randomBytes(6).toString('hex')}`);

/** A server→client ping frame (unmasked, RFC 6455 §5.5.2) carrying PING_PAYLOAD. */
export const PING_FRAME: Buffer = Buffer.concat([Buffer.from([0x89, PING_PAYLOAD.length]), PING_PAYLOAD]);
