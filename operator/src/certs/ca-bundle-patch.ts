/**
 * The JSON Patch that makes every webhook of a MutatingWebhookConfiguration trust `caBundlePem`.
 * Pure. Each op is guarded by a `test` of the webhook's name, so a concurrent edit that reorders
 * the list makes the patch fail (and the caller re-reads) instead of writing into the wrong entry.
 * An empty list means the configuration already trusts the bundle.
 */
import type { JsonPatchOp } from '../injection/json-patch.ts';

export interface WebhookConfiguration {
  metadata: { name: string; resourceVersion?: string };
  webhooks?: { name: string; clientConfig?: { caBundle?: string } }[];
}

export function caBundlePatch(config: WebhookConfiguration, caBundlePem: string): JsonPatchOp[] {
  const want = Buffer.from(caBundlePem, 'utf8').toString('base64');
  const ops: JsonPatchOp[] = [];
  (config.webhooks ?? []).forEach((wh, i) => {
    if (wh.clientConfig?.caBundle === want) return;
    ops.push({ op: 'test', path: `/webhooks/${i}/name`, value: wh.name });
    // `add` replaces an existing member and creates a missing one (RFC 6902 §4.1).
    if (wh.clientConfig) ops.push({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: want });
    else ops.push({ op: 'add', path: `/webhooks/${i}/clientConfig`, value: { caBundle: want } });
  });
  return ops;
}
