/**
 * A word with the control plane's etcd through its JSON gateway: compaction, which is how a
 * resourceVersion really expires (what a watch that was away too long meets as 410 Gone).
 */
async function call(etcd: string, path: string, body: unknown): Promise<any> {
  const res = await fetch(`${etcd}${path}`, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`etcd ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** Compacts etcd's history up to its current revision. */
export async function compactEtcd(etcd: string): Promise<number> {
  const range = await call(etcd, '/v3/kv/range', { key: Buffer.from('/').toString('base64'), limit: 1 });
  const revision = Number(range.header.revision);
  await call(etcd, '/v3/kv/compaction', { revision: String(revision), physical: true });
  return revision;
}
