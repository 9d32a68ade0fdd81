export type LockErrorCode =
  /** Another holder has the lock (or no majority of nodes answered) and `wait` ran out. */
  | 'SLUICE_ERR_LOCK_NOT_ACQUIRED'
  /** Extend or release of a lock this caller no longer holds (expired, or taken over). */
  | 'SLUICE_ERR_LOCK_NOT_HELD'
  /** A request the lock API cannot make sense of (bad ttl, missing lockId...). */
  | 'SLUICE_ERR_LOCK_BAD_REQUEST'
  /** No LeaderElection by that name applies to this pod. */
  | 'SLUICE_ERR_ELECTION_NOT_FOUND'
  /** The sidecar runs without --lock-nodes. */
  | 'SLUICE_ERR_LOCK_NODES_MISSING'
  /** The app already holds AppLocks.MAX_HELD locks through this sidecar. */
  | 'SLUICE_ERR_LOCK_TOO_MANY';

/** Every lock and leadership failure the local API reports; `code` is the stable part. */
export class LockError extends Error {
  readonly code: LockErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: LockErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'LockError';
    this.code = code;
    this.details = details;
  }
}

/** The HTTP status each code maps to, in one place. */
export function httpStatusOf(code: LockErrorCode): number {
  switch (code) {
    case 'SLUICE_ERR_LOCK_NOT_ACQUIRED':
    case 'SLUICE_ERR_LOCK_NOT_HELD':
      return 409;
    case 'SLUICE_ERR_LOCK_BAD_REQUEST':
      return 400;
    case 'SLUICE_ERR_ELECTION_NOT_FOUND':
      return 404;
    case 'SLUICE_ERR_LOCK_NODES_MISSING':
      return 503;
    case 'SLUICE_ERR_LOCK_TOO_MANY':
      return 429;
  }
}
