export { LeadershipFeature, type LeadershipDeps } from './leadership-feature.ts';
export { LeaderElector, type LeadershipStatus, type ElectionTiming } from './leader-elector.ts';
export { RedLock, type LockLease, type AcquireResult } from './redlock.ts';
export { AppLocks, type AppLockView } from './app-locks.ts';
export { LockError, type LockErrorCode } from './errors.ts';
export type { FencingToken } from './fencing-token.ts';
