/**
 * Who is on the other end of a discovery stream. A sidecar names its pod in the Hello and proves
 * it with the pod's projected service-account token; the operator asks the API server
 * (TokenReview) whose token it is and accepts only if it is the service account of that very pod
 * and bound to that pod (name, and uid when the token carries one). A token of another pod — even
 * one with the same service account — cannot obtain this pod's snapshot.
 */
import type { Hello } from '../../lib/proto/discovery.ts';
import { SidecarAuthError } from './errors.ts';
import { TOKEN_REVIEWS } from './kinds.ts';
import { resourcePath, type KubeClient, type KubeObject } from './kube-client.ts';

export const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
export const POD_UID_EXTRA = 'authentication.kubernetes.io/pod-uid';
/** The audience sidecars' projected tokens must be issued for; keeps them useless elsewhere. */
export const DEFAULT_TOKEN_AUDIENCE = 'sluice.dev/discovery';

export interface TokenReviewStatus {
  authenticated?: boolean;
  /** The requested audiences the token is valid for; an audience-aware API server fills it in. */
  audiences?: string[];
  error?: string;
  user?: { username?: string; extra?: Record<string, string[]> };
}

/**
 * Pure check of a TokenReview result against the claimed pod (and the pod as read from the API).
 * With `audience`, the review must say the token is valid for it: an authenticator that ignores
 * audiences would otherwise accept a token issued for the API server itself (or any other service).
 */
export function checkPodIdentity(review: TokenReviewStatus, hello: Pick<Hello, 'podNamespace' | 'podName'>, pod: KubeObject | undefined, audience?: string): void {
  const claimed = `${hello.podNamespace}/${hello.podName}`;
  if (!review.authenticated) {
    throw new SidecarAuthError('SLUICE_ERR_UNAUTHENTICATED', `token for pod ${claimed} was not accepted by the API server: ${review.error ?? 'not authenticated'}`);
  }
  if (audience !== undefined && !(review.audiences ?? []).includes(audience)) {
    throw new SidecarAuthError('SLUICE_ERR_UNAUTHENTICATED', `token for pod ${claimed} is not valid for audience ${audience} (the TokenReview's audiences: ${JSON.stringify(review.audiences ?? [])}); mount a projected token with that audience`);
  }
  if (!pod) throw new SidecarAuthError('SLUICE_ERR_PERMISSION_DENIED', `pod ${claimed} does not exist`);
  const sa = (pod.spec?.serviceAccountName as string | undefined) ?? 'default';
  const expected = `system:serviceaccount:${hello.podNamespace}:${sa}`;
  const username = review.user?.username ?? '';
  if (username !== expected) {
    throw new SidecarAuthError('SLUICE_ERR_PERMISSION_DENIED', `token belongs to ${username}, but pod ${claimed} runs as ${expected}`);
  }
  const boundName = review.user?.extra?.[POD_NAME_EXTRA]?.[0];
  if (!boundName) {
    throw new SidecarAuthError('SLUICE_ERR_PERMISSION_DENIED', `token is not bound to a pod; mount a projected service-account token (audience ${DEFAULT_TOKEN_AUDIENCE}) into pod ${claimed}`);
  }
  if (boundName !== hello.podName) {
    throw new SidecarAuthError('SLUICE_ERR_PERMISSION_DENIED', `token is bound to pod ${hello.podNamespace}/${boundName}, not ${claimed}`);
  }
  const boundUid = review.user?.extra?.[POD_UID_EXTRA]?.[0];
  if (boundUid && pod.metadata.uid && boundUid !== pod.metadata.uid) {
    throw new SidecarAuthError('SLUICE_ERR_PERMISSION_DENIED', `token was issued to an earlier pod named ${claimed} (uid ${boundUid})`);
  }
}

export class SidecarAuthenticator {
  private readonly client: KubeClient;
  private readonly audience: string;
  private readonly getPod: (namespace: string, name: string) => Promise<KubeObject | undefined>;

  constructor(opts: { client: KubeClient; audience: string; getPod: (namespace: string, name: string) => Promise<KubeObject | undefined> }) {
    this.client = opts.client;
    this.audience = opts.audience;
    this.getPod = opts.getPod;
  }

  /** The pod the stream belongs to, or throws SidecarAuthError. */
  async authenticate(hello: Hello): Promise<KubeObject> {
    if (!hello.podNamespace || !hello.podName || !hello.token) {
      throw new SidecarAuthError('SLUICE_ERR_UNAUTHENTICATED', 'hello must carry pod_namespace, pod_name and token');
    }
    const review = await this.client.create<{ status?: TokenReviewStatus }>(resourcePath(TOKEN_REVIEWS), {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token: hello.token, audiences: [this.audience] },
    });
    const pod = await this.getPod(hello.podNamespace, hello.podName);
    checkPodIdentity(review.status ?? {}, hello, pod, this.audience);
    return pod as KubeObject;
  }
}
