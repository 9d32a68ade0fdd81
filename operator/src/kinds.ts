import type { Kind } from '../../lib/policy/types.ts';

/**
 * The resource types the operator watches. Each Sluice kind gets its own informer, work queue
 * and reconciler; `rules` marks the kinds whose rules can conflict between policies.
 */
export interface ResourceType {
  group: string;
  version: string;
  plural: string;
  kind: string;
}

export interface PolicyKind extends ResourceType {
  kind: Kind;
  /** Rules whose matches can collide with another policy's rules on the same pod. */
  rules: boolean;
}

export const POLICY_KINDS: readonly PolicyKind[] = [
  { group: 'sluice.dev', version: 'v1alpha1', plural: 'ratelimitpolicies', kind: 'RateLimitPolicy', rules: true },
  { group: 'sluice.dev', version: 'v1alpha1', plural: 'circuitbreakerpolicies', kind: 'CircuitBreakerPolicy', rules: true },
  { group: 'sluice.dev', version: 'v1alpha1', plural: 'taskqueues', kind: 'TaskQueue', rules: false },
  { group: 'sluice.dev', version: 'v1alpha1', plural: 'leaderelections', kind: 'LeaderElection', rules: false },
  // Two fencing rules with the same match are both checked (each against its own resource): no conflict.
  { group: 'sluice.dev', version: 'v1alpha1', plural: 'fencingpolicies', kind: 'FencingPolicy', rules: false },
  { group: 'sluice.dev', version: 'v1alpha1', plural: 'upstreams', kind: 'Upstream', rules: false },
];

export const PODS: ResourceType = { group: '', version: 'v1', plural: 'pods', kind: 'Pod' };
export const EVENTS: ResourceType = { group: '', version: 'v1', plural: 'events', kind: 'Event' };
export const LEASES: ResourceType = { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', kind: 'Lease' };
export const TOKEN_REVIEWS: ResourceType = { group: 'authentication.k8s.io', version: 'v1', plural: 'tokenreviews', kind: 'TokenReview' };
/** The ready endpoints of the Services that Upstreams name (list/watch only). */
export const ENDPOINT_SLICES: ResourceType = { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', kind: 'EndpointSlice' };
