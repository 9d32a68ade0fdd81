import type { FencingPolicy } from './fencing.ts';
import type { Upstream } from './upstream.ts';
import type { CircuitBreakerPolicy, LeaderElection, RateLimitPolicy, TaskQueue } from './types.ts';

/**
 * Any resource of the API. Apart from types.ts because FencingPolicy and Upstream are declared
 * beside their own validation and compilation, which read the shared shapes in types.ts.
 */
export type SluiceResource = RateLimitPolicy | CircuitBreakerPolicy | TaskQueue | LeaderElection | FencingPolicy | Upstream;
