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

/**
 * Sends `tries` requests one after another for each user (all users at once) through a sidecar
 * running `perUserGlobalLimit`, and returns how many each had admitted. Any other answer than 200
 * or 429 fails the calling test.
 */
export async function admissionsPerUser(sidecarHttp: string, users: readonly string[], tries: number, expectStatus: (status: number) => void): Promise<number[]> {
  return Promise.all(users.map(async (user) => {
    let ok = 0;
    for (let i = 0; i < tries; i++) {
      const res = await fetch(`${sidecarHttp}/x`, { headers: { 'x-user': user } });
      await res.arrayBuffer();
      expectStatus(res.status);
      if (res.status === 200) ok++;
    }
    return ok;
  }));
}
