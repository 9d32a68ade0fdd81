/**
 * A pod's snapshot: the policy documents it must enforce, with a version that identifies the
 * content. The version hashes (kind, namespace, name, uid, generation) of each resource — a
 * generation pins a spec — so the same content always gets the same version, on any replica and
 * after a restart: a sidecar that reconnects with that version needs nothing sent.
 *
 * The snapshot also carries the TaskQueues the pod may produce to (every accepted TaskQueue of
 * its namespace, see PolicyIndex.producibleFor): they are hashed into the version too (so a new
 * queue is pushed to producers), but stay out of `contents` — producing does not make a pod a
 * target of the queue, so its ACK says nothing about the queue's status.
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

export function buildSnapshot(resources: readonly KubeObject[], producibleTaskQueues: readonly KubeObject[] = []): BuiltSnapshot {
  const contents = new Map<string, { uid: string; generation: number }>();
  const hash = createHash('sha256');
  const out = encode(resources, (r, uid, generation) => {
    contents.set(policyRef(r), { uid, generation });
    hash.update(`${policyRef(r)}\0${uid}\0${generation}\n`);
  });
  // Only hashed when present: a snapshot without producible queues keeps the version it had
  // before this list existed (no needless re-apply after an operator upgrade).
  const producible = encode(producibleTaskQueues, (r, uid, generation) => hash.update(`produce\0${policyRef(r)}\0${uid}\0${generation}\n`));
  const snapshot: Snapshot = { version: hash.digest('hex').slice(0, 16), resources: out };
  if (producible.length > 0) snapshot.producibleTaskQueues = producible;
  return { snapshot, contents };
}

function encode(resources: readonly KubeObject[], visit: (r: KubeObject, uid: string, generation: number) => void): PolicyResource[] {
  const sorted = [...resources].sort((a, b) => policyRef(a).localeCompare(policyRef(b)));
  return sorted.map((r) => {
    const uid = r.metadata.uid ?? '';
    const generation = r.metadata.generation ?? 0;
    visit(r, uid, generation);
    return {
      kind: r.kind as string,
      namespace: r.metadata.namespace as string,
      name: r.metadata.name,
      generation,
      json: JSON.stringify(policyDocument(r)),
    };
  });
}
