import { describe, expect, it } from 'vitest';
import { SidecarAuthError } from '../src/errors.ts';
import { checkPodIdentity, POD_NAME_EXTRA, POD_UID_EXTRA, type TokenReviewStatus } from '../src/sidecar-auth.ts';
import type { KubeObject } from '../src/kube-client.ts';

const pod: KubeObject = { metadata: { name: 'web-1', namespace: 'shop', uid: 'uid-1' }, spec: { serviceAccountName: 'web' } };
const hello = { podNamespace: 'shop', podName: 'web-1' };
const review = (over: Partial<TokenReviewStatus['user']> = {}, authenticated = true): TokenReviewStatus => ({
  authenticated,
  user: { username: 'system:serviceaccount:shop:web', extra: { [POD_NAME_EXTRA]: ['web-1'], [POD_UID_EXTRA]: ['uid-1'] }, ...over },
});

function codeOf(fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(SidecarAuthError);
    return (err as SidecarAuthError).code;
  }
}

describe('checkPodIdentity', () => {
  it('accepts the token of the pod it names', () => {
    expect(codeOf(() => checkPodIdentity(review(), hello, pod))).toBeUndefined();
  });

  it.each([
    ['an unauthenticated token', review({}, false), pod, 'SLUICE_ERR_UNAUTHENTICATED'],
    ['a pod that does not exist', review(), undefined, 'SLUICE_ERR_PERMISSION_DENIED'],
    ['another service account', review({ username: 'system:serviceaccount:shop:other' }), pod, 'SLUICE_ERR_PERMISSION_DENIED'],
    ['another namespace', review({ username: 'system:serviceaccount:other:web' }), pod, 'SLUICE_ERR_PERMISSION_DENIED'],
    ['a token not bound to a pod', review({ extra: {} }), pod, 'SLUICE_ERR_PERMISSION_DENIED'],
    ['a token bound to another pod of the same service account', review({ extra: { [POD_NAME_EXTRA]: ['web-2'] } }), pod, 'SLUICE_ERR_PERMISSION_DENIED'],
    ['a token of an earlier pod with the same name', review({ extra: { [POD_NAME_EXTRA]: ['web-1'], [POD_UID_EXTRA]: ['uid-0'] } }), pod, 'SLUICE_ERR_PERMISSION_DENIED'],
  ] as const)('refuses %s', (_t, r, p, code) => {
    expect(codeOf(() => checkPodIdentity(r, hello, p))).toBe(code);
  });

  it('requires the discovery audience among the review\'s audiences when asked for one', () => {
    const aud = 'sluice.dev/discovery';
    expect(codeOf(() => checkPodIdentity({ ...review(), audiences: [aud] }, hello, pod, aud))).toBeUndefined();
    expect(codeOf(() => checkPodIdentity(review(), hello, pod, aud))).toBe('SLUICE_ERR_UNAUTHENTICATED');
    expect(codeOf(() => checkPodIdentity({ ...review(), audiences: ['https://kubernetes.default.svc'] }, hello, pod, aud))).toBe('SLUICE_ERR_UNAUTHENTICATED');
  });

  it('uses the default service account when the pod names none', () => {
    const plain: KubeObject = { metadata: { name: 'web-1', namespace: 'shop' }, spec: {} };
    expect(codeOf(() => checkPodIdentity(review({ username: 'system:serviceaccount:shop:default', extra: { [POD_NAME_EXTRA]: ['web-1'] } }), hello, plain))).toBeUndefined();
  });
});
