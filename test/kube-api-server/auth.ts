/**
 * Authentication: every request needs a bearer token — the admin token written into the
 * kubeconfig, or a service-account token this server minted (TokenRequest, or the test API
 * `mintServiceAccountToken`). TokenReview answers for exactly those tokens, with the username and
 * pod-binding extras a real apiserver reports for projected service-account tokens.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';

export interface ServiceAccountTokenRequest {
  namespace: string;
  serviceAccount: string;
  /** Binds the token to a pod, like a projected volume token: TokenReview reports pod-name/pod-uid. */
  podName?: string;
  podUid?: string;
  audiences?: string[];
  expirationSeconds?: number;
}

export interface TokenIdentity {
  username: string;
  uid: string;
  groups: string[];
  extra: Record<string, string[]>;
  audiences: string[];
  expiresAt: number;
}

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

export class Authenticator {
  readonly adminToken = `admin-${randomBytes(16).toString('hex')}`;
  private readonly secret = randomBytes(32);
  private readonly tokens = new Map<string, TokenIdentity>();
  private readonly saUids = new Map<string, string>();

  /** A JWT-shaped token (decodable claims, like a real projected token) that this server accepts. */
  mint(req: ServiceAccountTokenRequest): { token: string; expirationTimestamp: string } {
    const now = Math.floor(Date.now() / 1000);
    const exp = now + (req.expirationSeconds ?? 3600);
    const saKey = `${req.namespace}/${req.serviceAccount}`;
    let saUid = this.saUids.get(saKey);
    if (!saUid) this.saUids.set(saKey, (saUid = randomUUID()));
    const audiences = req.audiences ?? ['https://kubernetes.default.svc'];
    const claims = {
      aud: audiences, exp, iat: now, nbf: now,
      iss: 'https://kubernetes.default.svc',
      sub: `system:serviceaccount:${req.namespace}:${req.serviceAccount}`,
      'kubernetes.io': {
        namespace: req.namespace,
        serviceaccount: { name: req.serviceAccount, uid: saUid },
        ...(req.podName ? { pod: { name: req.podName, uid: req.podUid ?? '' } } : {}),
      },
    };
    const unsigned = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(claims)}`;
    const token = `${unsigned}.${createHmac('sha256', this.secret).update(unsigned).digest('base64url')}`;
    const extra: Record<string, string[]> = {};
    if (req.podName) {
      extra['authentication.kubernetes.io/pod-name'] = [req.podName];
      extra['authentication.kubernetes.io/pod-uid'] = [req.podUid ?? ''];
    }
    this.tokens.set(token, {
      username: claims.sub,
      uid: saUid,
      groups: ['system:serviceaccounts', `system:serviceaccounts:${req.namespace}`, 'system:authenticated'],
      extra, audiences, expiresAt: exp * 1000,
    });
    return { token, expirationTimestamp: new Date(exp * 1000).toISOString().replace(/\.\d+Z$/, 'Z') };
  }

  /** Who a bearer token belongs to, or undefined when it is unknown or expired. */
  identify(token: string): TokenIdentity | undefined {
    if (token === this.adminToken) {
      return { username: 'kubernetes-admin', uid: 'admin', groups: ['system:masters', 'system:authenticated'], extra: {}, audiences: [], expiresAt: Infinity };
    }
    const id = this.tokens.get(token);
    if (!id || id.expiresAt < Date.now()) return undefined;
    return id;
  }

  /** authentication.k8s.io/v1 TokenReview status for a token and requested audiences. */
  review(token: string, audiences: string[] | undefined): Record<string, unknown> {
    const id = this.identify(token);
    if (!id || token === this.adminToken) return { authenticated: false, error: '[invalid bearer token, token lookup failed]', user: {} };
    const wanted = audiences && audiences.length > 0 ? audiences : id.audiences;
    const matched = wanted.filter((a) => id.audiences.includes(a));
    if (matched.length === 0) return { authenticated: false, error: '[invalid bearer token, token audiences is invalid]', user: {} };
    return {
      authenticated: true,
      user: { username: id.username, uid: id.uid, groups: id.groups, ...(Object.keys(id.extra).length ? { extra: id.extra } : {}) },
      audiences: matched,
    };
  }
}
