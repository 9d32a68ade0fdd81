import type { FencedResourceKind } from '../../../lib/policy/fencing.ts';

/**
 * Where a lock node keeps the newest fencing token accepted for one lease or lock. The namespace
 * is part of the hash tag, so every key of one resource lives in one slot and two namespaces that
 * share lock nodes never read each other's tokens. Names are labels inside Sluice's key space.
 */
export function acceptedTokenKey(namespace: string, kind: FencedResourceKind, name: string): string {
  return `sluice:{${namespace}/fence/${kind}/${name}}:accepted`;
}
