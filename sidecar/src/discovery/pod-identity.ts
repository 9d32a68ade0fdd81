/**
 * Who this sidecar is, towards the operator: its pod's namespace and name (downward API env, or
 * the hostname and service-account namespace file a pod always has) and the projected
 * service-account token that proves it. The token is re-read on every connect because the
 * kubelet rotates it on disk.
 */
import { readTrimmed } from '../../../lib/files.ts';
import { hostname } from 'node:os';

/** Where the injector mounts the projected token (audience sluice.dev/discovery). */
export const DEFAULT_TOKEN_FILE = '/var/run/secrets/sluice.dev/token/token';
const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export interface PodIdentity {
  namespace: string;
  name: string;
  tokenFile: string;
}

export class PodIdentityError extends Error {
  readonly code = 'SLUICE_ERR_POD_IDENTITY';
}

export function resolvePodIdentity(opts: { podName?: string; podNamespace?: string; tokenFile?: string }): PodIdentity {
  const namespace = opts.podNamespace ?? readTrimmed(SA_NAMESPACE_FILE);
  if (!namespace) throw new PodIdentityError('operator mode needs the pod namespace: --pod-namespace or SLUICE_POD_NAMESPACE (downward API metadata.namespace)');
  return { namespace, name: opts.podName ?? hostname(), tokenFile: opts.tokenFile ?? DEFAULT_TOKEN_FILE };
}

export function readToken(identity: PodIdentity): string {
  const token = readTrimmed(identity.tokenFile);
  if (!token) throw new PodIdentityError(`no service-account token at ${identity.tokenFile} (--token-file / SLUICE_TOKEN_FILE)`);
  return token;
}
