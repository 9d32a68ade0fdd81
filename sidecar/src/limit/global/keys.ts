/**
 * Redis keys of a Global rule. The rule id sits in a hash tag, so on a Redis Cluster
 * every partition of one rule lands on one slot; a partition value is used as it is — it comes from
 * a header or an address, and Redis keys are binary-safe.
 */
export function bucketKey(ruleId: string, partition: string): string {
  return `sluice:rl:{${ruleId}}:${partition === '' ? '-' : partition}`;
}

/** The sorted set of live sidecars sharing a rule (see HEARTBEAT). */
export function presenceKey(ruleId: string): string {
  return `sluice:rl:{${ruleId}}:~sidecars`;
}

/**
 * The sorted set of open WebSocket connections under one key of a rule's maxConnectionsPerKey:
 * connection ids scored by when their lease expires (see websocket/global-connection-quota.ts).
 */
export function connectionsKey(ruleId: string, partition: string): string {
  return `sluice:ws:{${ruleId}}:${partition === '' ? '-' : partition}`;
}
