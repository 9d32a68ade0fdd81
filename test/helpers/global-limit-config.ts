/**
 * A sidecar config with one Global per-user limit over every HTTP path (`x-user` header keys it),
 * failing closed: a decision Redis could not answer is a 429, never an extra admission — so a
 * count of admissions shows whether the sidecar really reached Redis.
 */
export function perUserGlobalLimit(requests: number): string {
  return `apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: api, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  rules:
    - name: per-user
      match: {protocol: http, paths: [{type: Prefix, value: /}]}
      limit: {requests: ${requests}, per: 1h, burst: ${requests}}
      key: {source: Header, name: x-user}
      scope: Global
      failureMode: Closed
`;
}
