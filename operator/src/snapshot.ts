/**
 * A pod's snapshot: the policy documents it must enforce, with a version that identifies the
 * content. The version hashes (kind, namespace, name, uid, generation) of each resource — a
 * generation pins a spec — so the same content always gets the same version, on any replica and
 * after a restart: a sidecar that reconnects with that version needs nothing sent.
 */
import { createHash } from 'node:crypto';
import type { PolicyResource, Snapshot } from '../../lib/proto/discovery.ts';
import type { KubeObject } from './kube-client.ts';
import { policyDocument, policyRef } from './policy-document.ts';

/** What a snapshot holds, by policy reference: the uid and generation of each resource. */
export type SnapshotContents = ReadonlyMap<string, { uid: string; generation: number }>;

export interface BuiltSnapshot {
  snapshot: Snapshot;
  contents: SnapshotContents;
}

export function buildSnapshot(resources: readonly KubeObject[]): BuiltSnapshot {
  const sorted = [...resources].sort((a, b) => policyRef(a).localeCompare(policyRef(b)));
  const contents = new Map<string, { uid: string; generation: number }>();
  const hash = createHash('sha256');
  const out: PolicyResource[] = [];
  for (const r of sorted) {
    const uid = r.metadata.uid ?? '';
    const generation = r.metadata.generation ?? 0;
    contents.set(policyRef(r), { uid, generation });
    hash.update(`${policyRef(r)}\0${uid}\0${generation}\n`);
    out.push({
      kind: r.kind as string,
      namespace: r.metadata.namespace as string,
      name: r.metadata.name,
      generation,
      json: JSON.stringify(policyDocument(r)),
    });
  }
  return { snapshot: { version: hash.digest('hex').slice(0, 16), resources: out }, contents };
}
